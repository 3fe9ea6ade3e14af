"""The queue priority policy: the highest priority among a call's reasons, and why."""

from __future__ import annotations

import pytest

from queues.priority import Decision, ElderlySettings, PrioritySettings, Reason, decide

SETTINGS = PrioritySettings(one_key=5, repeat=3, elderly=ElderlySettings(priority=10))


def test_given_no_reason_then_the_call_waits_in_time_order_at_priority_0() -> None:
    assert decide(SETTINGS, 0, []) == Decision(0, None, ())
    assert decide(SETTINGS, 0, []).variables() == {"IVR_PRIORITY_REASON": ""}


def test_given_only_the_routes_own_priority_then_it_is_kept_and_named_route() -> None:
    assert decide(SETTINGS, 1, []) == Decision(1, Reason.ROUTE, (Reason.ROUTE,))


@pytest.mark.parametrize(("reasons", "priority", "reason"), [
    ({Reason.ONE_KEY}, 5, Reason.ONE_KEY),
    ({Reason.REPEAT}, 3, Reason.REPEAT),
    ({Reason.ONE_KEY, Reason.REPEAT}, 5, Reason.ONE_KEY),
    ({Reason.ELDERLY, Reason.ONE_KEY, Reason.REPEAT}, 10, Reason.ELDERLY),
])
def test_given_several_reasons_then_the_highest_wins_and_they_do_not_add_up(reasons, priority, reason) -> None:
    decision = decide(SETTINGS, 1, reasons)
    assert (decision.priority, decision.reason) == (priority, reason)
    assert decision.reasons[0] is reason and set(decision.reasons) == reasons | {Reason.ROUTE}
    assert decision.variables() == {"IVR_PRIORITY_REASON": reason.value}


def test_given_a_route_ranked_above_a_reason_then_the_route_wins() -> None:
    assert decide(SETTINGS, 7, {Reason.ONE_KEY}).reason is Reason.ROUTE
    assert decide(SETTINGS, 7, {Reason.ONE_KEY}).priority == 7


def test_given_a_tie_then_the_more_specific_reason_is_named() -> None:
    tied = PrioritySettings(one_key=5, repeat=5)
    assert decide(tied, 5, {Reason.ONE_KEY, Reason.REPEAT}).reasons == (Reason.REPEAT, Reason.ONE_KEY, Reason.ROUTE)


def test_given_a_reason_configured_0_then_it_is_recorded_but_raises_nothing() -> None:
    off = PrioritySettings(elderly=ElderlySettings(priority=0))
    assert decide(off, 0, {Reason.ELDERLY}) == Decision(0, None, (Reason.ELDERLY,))


def test_given_priorities_out_of_range_then_the_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        PrioritySettings(one_key=101)
    with pytest.raises(ValueError):
        PrioritySettings(elderly={"priority": -1})  # type: ignore[arg-type]
