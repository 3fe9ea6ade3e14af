"""The progress query (ticket_query) over the fake channel and an in-memory ticket lookup."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta, timezone

import pytest

from flow_helpers import FakeChannel, call, compile_text, make_catalog
from ivr import cli
from ivr.hot_reload import compile_config
from ivr.flows.runner import run_call
from ivr.flows.lint import timing_for
from ivr.flows.progress import date_prompts, deadline_prompts, number_prompts, time_prompts
from ivr.flows.simulator import InMemoryTickets, script, simulate
from ivr.prompts import catalog as prompts_module
from ivr.core.route import HangupRoute, QueueRoute
from tickets.model import Deadline, Ticket

CALLER = "13800000000"
NUMBER = "20261201-12345-00017"
KEYED = "202612011234500017"
MONDAY_10 = datetime(2026, 11, 23, 10, 0)

QUERY_FLOW = """
    nodes:
      query:
        type: ticket_query
        min_digits: 17
        max_digits: 20
        timeout: 2s
        retries: 1
        next: bye
        on_not_found: lost
        on_error: agent
        on_exhausted: agent
      bye: {type: hangup, prompt: goodbye}
      lost: {type: queue, queue: general, prompt: transfer_notice}
      agent: {type: queue, queue: general}
    """

# What a found accepted ticket due 2026-10-15 sounds like after the number is keyed.
READOUT_2026_10_15 = [
    "ticket_number_is", f"digits {KEYED}", "ticket_status_accepted", "ticket_due",
    "digit_2", "digit_0", "digit_2", "digit_6", "date_year",  # 二零二六年
    "number_10", "date_month",  # 十月
    "number_10", "digit_5", "date_day",  # 十五日
]


def ticket(number: str = NUMBER, caller: str = CALLER, status: str = "accepted", due: str = "2026-10-15",
           provisional: bool = False) -> Ticket:
    return Ticket(linkedid="1700000000.1", line="12345", caller=caller, received="2026-09-30T09:00:00+08:00",
                  number=number, status=status, deadline=Deadline(due, "7 working days", provisional))


class Book(InMemoryTickets):
    """The in-memory lookup, remembering what it was asked."""

    def __init__(self, *tickets: Ticket):
        super().__init__(tickets)
        self.asked: list[str] = []

    async def find(self, number: str) -> Ticket | None:
        self.asked.append(number)
        return await super().find(number)


class Broken:
    async def find(self, number: str) -> Ticket | None:
        raise ConnectionError("redis is down")


class Hanging:
    async def find(self, number: str) -> Ticket | None:
        await asyncio.Event().wait()  # never answers: the node's lookup_timeout must end it
        raise AssertionError("unreachable")


def heard(channel: FakeChannel) -> list[str]:
    """Prompt ids and digits in the order the caller hears them."""
    out = []
    for c in channel.calls:
        if c[0] in ("stream", "get_data"):
            out.append(c[1].removeprefix("ivr12345/"))
        elif c[0] == "say_digits":
            out.append(f"digits {c[1]}")
    return out


async def run(config, catalog, channel, tickets, text=QUERY_FLOW, caller=CALLER):  # type: ignore[no-untyped-def]
    flows = compile_text(config, catalog, text)
    return await run_call(flows, call(caller=caller), channel, now=lambda: MONDAY_10, tickets=tickets)


# --- found ---------------------------------------------------------------------------------


async def test_given_the_callers_own_ticket_when_keyed_then_number_status_and_deadline_are_said_in_order(bare_config, catalog):
    channel, book = FakeChannel([KEYED]), Book(ticket())
    record = await run(bare_config, catalog, channel, book)
    assert channel.calls[0] == ("get_data", "ivr12345/progress_query_prompt", 2000, 20)
    assert heard(channel) == ["progress_query_prompt", *READOUT_2026_10_15, "goodbye"]
    assert book.asked == [KEYED]
    assert record.route == HangupRoute()
    assert [(v.node, v.outcome) for v in record.visits] == [("query", "found"), ("bye", "route")]
    assert record.variables["ticket_number"] == KEYED


async def test_given_digits_ended_by_hash_then_the_lookup_gets_digits_only(bare_config, catalog):
    channel, book = FakeChannel([KEYED + "#"]), Book(ticket())
    record = await run(bare_config, catalog, channel, book)
    assert book.asked == [KEYED]
    assert record.visits[0].outcome == "found"


async def test_given_a_ticket_number_with_or_without_dashes_then_the_in_memory_lookup_finds_it():
    book = InMemoryTickets([ticket()])
    assert await book.find(KEYED) == ticket()
    assert await book.find(NUMBER) == ticket()
    assert await book.find(KEYED[:-1]) is None


@pytest.mark.parametrize(("status", "prompt"), [
    ("dispatched", "ticket_status_dispatched"), ("handling", "ticket_status_handling"),
    ("replied", "ticket_status_replied"), ("closed", "ticket_status_closed"), ("revisited", "ticket_status_other"),
    ("returned", "ticket_status_returned"),  # back with the hotline for re-dispatch: 已退回，正在重新派发
])
async def test_given_a_later_status_then_its_own_prompt_is_said(bare_config, catalog, status, prompt):
    channel = FakeChannel([KEYED])
    await run(bare_config, catalog, channel, Book(ticket(status=status)))
    assert heard(channel)[3] == prompt


async def test_given_a_provisional_deadline_then_the_caller_is_told_it_may_move(bare_config, catalog):
    channel = FakeChannel([KEYED])
    await run(bare_config, catalog, channel, Book(ticket(due="2027-10-15", provisional=True)))
    assert heard(channel)[-3:] == ["date_day", "ticket_due_provisional", "goodbye"]


async def test_given_a_crisis_deadline_then_the_hour_and_minute_are_said_in_local_time(bare_config, catalog):
    channel = FakeChannel([KEYED])
    local = timezone(timedelta(hours=8))
    flows = compile_text(bare_config, catalog, QUERY_FLOW)
    due = "2026-10-02T06:30:00+00:00"  # 14:30 in Beijing
    await run_call(flows, call(), channel, now=lambda: datetime(2026, 10, 1, 10, 0, tzinfo=local), tickets=Book(ticket(due=due)))
    said = heard(channel)
    assert said[said.index("ticket_due") + 1:-1] == [
        "digit_2", "digit_0", "digit_2", "digit_6", "date_year", "number_10", "date_month", "digit_2", "date_day",
        "number_10", "digit_4", "time_hour", "digit_3", "number_10", "time_minute",
    ]


async def test_given_an_unreadable_deadline_then_status_is_said_and_the_deadline_left_out(bare_config, catalog):
    channel = FakeChannel([KEYED])
    record = await run(bare_config, catalog, channel, Book(ticket(due="soon")))
    assert heard(channel) == ["progress_query_prompt", "ticket_number_is", f"digits {KEYED}", "ticket_status_accepted", "goodbye"]
    assert record.visits[0].outcome == "found"


async def test_given_a_key_pressed_during_the_greeting_then_it_is_not_left_for_the_menu_after_the_query(bare_config, catalog):
    text = """
        nodes:
          hello: {type: play, prompts: welcome_12345, interruptible: true, next: query}
          query: {type: ticket_query, min_digits: 17, next: after, on_not_found: agent, on_error: agent, on_exhausted: agent}
          after: {type: menu, prompt: progress_after_menu, keys: {"0": agent}, retries: 0, on_exhausted: bye}
          bye: {type: hangup}
          agent: {type: queue, queue: general}
        """
    channel = FakeChannel([KEYED, "0"], barge=["5"])
    record = await run(bare_config, catalog, channel, Book(ticket()), text=text)
    assert [(v.node, v.outcome) for v in record.visits][-2:] == [("after", "key 0"), ("agent", "route")]


# --- not found -----------------------------------------------------------------------------


async def test_given_an_unknown_number_then_a_notice_and_a_retry_find_the_right_one(bare_config, catalog):
    wrong = "202612011234500018"
    channel, book = FakeChannel([wrong, KEYED]), Book(ticket())
    record = await run(bare_config, catalog, channel, book)
    assert heard(channel) == ["progress_query_prompt", "ticket_not_found", "progress_query_prompt", *READOUT_2026_10_15, "goodbye"]
    assert book.asked == [wrong, KEYED]
    assert record.visits[0].outcome == "found"


async def test_given_unknown_numbers_until_the_retries_run_out_then_on_not_found(bare_config, catalog):
    channel = FakeChannel([KEYED, KEYED])
    record = await run(bare_config, catalog, channel, Book())
    assert heard(channel) == ["progress_query_prompt", "ticket_not_found", "progress_query_prompt", "ticket_not_found_end",
                              "transfer_notice"]
    assert [(v.node, v.outcome) for v in record.visits] == [("query", "not found"), ("lost", "route")]


async def test_given_another_callers_ticket_then_the_call_goes_exactly_as_for_an_unknown_number(bare_config, catalog):
    unknown, others = FakeChannel([KEYED, KEYED]), FakeChannel([KEYED, KEYED])
    unknown_record = await run(bare_config, catalog, unknown, Book())
    others_record = await run(bare_config, catalog, others, Book(ticket(caller="13900000000")))
    assert others.calls == unknown.calls
    assert [(v.node, v.outcome) for v in others_record.visits] == [(v.node, v.outcome) for v in unknown_record.visits]
    assert others_record.route == unknown_record.route


async def test_given_another_callers_ticket_then_the_simulated_call_is_identical_to_an_unknown_one_to_the_tenth_of_a_second(
        bare_config, catalog):
    flows = compile_text(bare_config, catalog, QUERY_FLOW)

    async def heard_on_simulator(book: InMemoryTickets) -> list[str]:
        lines: list[str] = []
        await simulate(flows, "12345", script([KEYED, KEYED]), lines.append, caller=CALLER, at=MONDAY_10, tickets=book)
        return lines[1:]  # the first line names the config version, compiled at another time

    assert await heard_on_simulator(InMemoryTickets([ticket(caller="13900000000")])) == await heard_on_simulator(InMemoryTickets())


async def test_given_a_withheld_caller_number_then_even_a_ticket_without_caller_is_not_revealed(bare_config, catalog):
    channel = FakeChannel([KEYED, KEYED])
    record = await run(bare_config, catalog, channel, Book(ticket(caller="anonymous")), caller="anonymous")
    assert record.visits[0].outcome == "not found"


async def test_given_too_few_digits_or_silence_then_collect_notices_and_finally_on_exhausted(bare_config, catalog):
    channel, book = FakeChannel(["2026#", ""]), Book(ticket())
    record = await run(bare_config, catalog, channel, book)
    assert heard(channel) == ["progress_query_prompt", "invalid_key", "progress_query_prompt"]
    assert book.asked == []
    assert [(v.node, v.outcome) for v in record.visits] == [("query", "retries exhausted"), ("agent", "route")]


# --- no lookup -----------------------------------------------------------------------------


async def test_given_no_lookup_then_the_caller_hears_unavailable_at_once_and_goes_to_on_error(bare_config, catalog):
    channel = FakeChannel([KEYED])
    record = await run(bare_config, catalog, channel, None)
    assert heard(channel) == ["ticket_query_unavailable"]
    assert [(v.node, v.outcome) for v in record.visits] == [("query", "no ticket lookup"), ("agent", "route")]
    assert record.route == QueueRoute("general") and record.error is None


async def test_given_a_failing_lookup_then_unavailable_and_on_error_without_a_retry(bare_config, catalog):
    channel = FakeChannel([KEYED, KEYED])
    record = await run(bare_config, catalog, channel, Broken())
    assert heard(channel) == ["progress_query_prompt", "ticket_query_unavailable"]
    assert [(v.node, v.outcome) for v in record.visits] == [("query", "lookup failed"), ("agent", "route")]
    assert record.error is None


async def test_given_a_lookup_that_never_answers_then_lookup_timeout_ends_it_as_unavailable(bare_config, catalog):
    channel = FakeChannel([KEYED])
    text = QUERY_FLOW.replace("timeout: 2s", "timeout: 2s\n        lookup_timeout: 50ms")
    record = await run(bare_config, catalog, channel, Hanging(), text=text)
    assert heard(channel)[-1] == "ticket_query_unavailable"
    assert record.visits[0].outcome == "lookup failed"


# --- the lint ------------------------------------------------------------------------------


def test_edges_give_the_lint_each_exits_worst_seconds(bare_config, catalog):
    flows = compile_text(bare_config, catalog, QUERY_FLOW)
    edges = {e.label: e.seconds for e in flows.flows["t"].nodes["query"].edges(_timing(flows))}
    # one attempt: prompt 3 + 20 digits × 2 s + lookup 3 = 46; a retry adds 46 + the longest
    # notice (ticket_not_found, 4) = 50. Readout: number prompt 2 + 20 digits × 0.8 + longest
    # status 4 (returned; closed 1.5 + its reply notice 2 is shorter) + due 1.5 + longest deadline
    # (2029年12月29日23点59分: 4 × 0.5 + 0.5 + 1.5 + 2 + 2 + 2) + provisional 3.5 = 37.
    assert edges == pytest.approx({"found": 50 + 46 + 37, "not found": 50 + 46 + 2, "lookup failed": 50 + 46 + 4,
                                   "exhausted": 50 + 43})


def test_the_lint_counts_a_query_on_the_way_to_a_seat(bare_config, catalog):
    to_queue = QUERY_FLOW.replace("bye: {type: hangup, prompt: goodbye}", "bye: {type: queue, queue: general}")
    flows = compile_text(bare_config, catalog, to_queue)
    report = flows.lint["t"]
    assert [(s.node, s.label) for s in report.worst_path] == [("query", "found"), ("bye", "queue")]
    assert report.worst_seconds == pytest.approx(133)


async def test_the_longest_deadline_takes_exactly_the_readout_the_lint_counts(bare_config, catalog):
    flows = compile_text(bare_config, catalog, QUERY_FLOW)
    node = flows.flows["t"].nodes["query"]
    longest = ticket(number="20261201-3022782-00017", status="returned", due="2029-12-29T23:59:00", provisional=True)
    record = await simulate(flows, "12345", script(["20261201302278200017"]), lambda _line: None, at=MONDAY_10,
                            tickets=InMemoryTickets([longest]))
    query = record.visits[0]
    assert query.outcome == "found"
    assert query.seconds == pytest.approx(3 + 1 + node.readout_worst_seconds(_timing(flows)))  # prompt, typing, readout
    assert node.readout_worst_seconds(_timing(flows)) == pytest.approx(37)


def _timing(flows):  # type: ignore[no-untyped-def]
    return timing_for(flows.catalog, flows.flows)


# --- reachable -----------------------------------------------------------------------------


async def test_given_the_shipped_demo_number_when_2_is_pressed_then_the_progress_query_reads_the_ticket(config_dir, catalog):
    flows = compile_config(config_dir, catalog, environ={}, strict_lint=True)
    channel = FakeChannel(["2", KEYED, ""])
    record = await run_call(flows, call(dialed="8000"), channel, now=lambda: MONDAY_10, tickets=Book(ticket()))
    assert [f"{v.flow}/{v.node}" for v in record.visits] == ["sample/welcome", "sample/top", "sample/progress",
                                                            "progress/query", "progress/after", "progress/goodbye"]
    assert heard(channel)[3:3 + len(READOUT_2026_10_15)] == READOUT_2026_10_15
    assert flows.lint["main"].budget == 15 and not flows.lint["main"].over_budget


def test_given_ivr_simulate_on_the_demo_number_then_the_demo_ticket_is_read_back(config_dir, monkeypatch, capsys):
    monkeypatch.setattr(prompts_module, "load_catalog", lambda _dir: make_catalog(), raising=False)
    assert cli.main(["--config", str(config_dir), "simulate", "8000", "--keys", f"2,{KEYED}#,-", "--at", "2026-12-02T10:00"]) == 0
    out = capsys.readouterr().out
    assert f"tickets: demo ticket {NUMBER} of {CALLER} (key {KEYED})" in out
    assert f"say digits {KEYED}" in out and "play ticket_status_accepted" in out
    assert "progress/query → progress/after → progress/goodbye" in out


# --- numbers and dates ---------------------------------------------------------------------


@pytest.mark.parametrize(("n", "prompts"), [
    (0, ["digit_0"]), (1, ["number_1"]), (2, ["digit_2"]), (10, ["number_10"]), (11, ["number_10", "number_1"]),
    (20, ["digit_2", "number_10"]), (31, ["digit_3", "number_10", "number_1"]),
])
def test_numbers_are_said_as_mandarin_numbers_with_yi_for_one(n, prompts):
    assert number_prompts(n) == prompts


def test_a_date_says_the_year_digit_by_digit_and_month_and_day_as_numbers():
    assert date_prompts(date(2031, 1, 10)) == ["digit_2", "digit_0", "digit_3", "number_1", "date_year",
                                              "number_1", "date_month", "number_10", "date_day"]


@pytest.mark.parametrize(("at", "prompts"), [
    (time(2, 0), ["number_liang", "time_hour"]),  # 两点
    (time(0, 0), ["digit_0", "time_hour"]),  # 零点
    (time(12, 5), ["number_10", "digit_2", "time_hour", "digit_0", "digit_5", "time_minute"]),  # 十二点零五分
    (time(22, 40), ["digit_2", "number_10", "digit_2", "time_hour", "digit_4", "number_10", "time_minute"]),
])
def test_a_time_says_hour_and_minute(at, prompts):
    assert time_prompts(at) == prompts


def test_a_deadline_is_a_date_or_a_date_and_time_or_nothing():
    assert deadline_prompts("2026-10-15") == date_prompts(date(2026, 10, 15))
    assert deadline_prompts("2026-10-02T14:30:00") == date_prompts(date(2026, 10, 2)) + time_prompts(time(14, 30))
    assert deadline_prompts("next week") is None
