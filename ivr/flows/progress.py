"""``ticket_query``: the self-service progress query (办理进度自助查询, 001 §9).

The caller keys a ticket number the way ``collect`` reads digits (``#`` ends it early, the
length and pattern checks, bounded retries with the same notices); the node looks it up
through ``ctx.tickets`` and reads back the number digit by digit, the ticket's status and
its handling deadline, all from prompts, then goes to ``next``.

A caller learns only about tickets of the number they call from: another caller's ticket is
handled exactly like an unknown number (same prompts, same retries, same outcome in the
call record), so keying someone else's number reveals nothing. An unknown number is
answered with ``not_found_prompt`` and costs a retry; after the last one the caller hears
``not_found_end_prompt`` and goes to ``on_not_found``. Without a lookup, or when it fails or
takes longer than ``lookup_timeout``, the caller hears ``unavailable_prompt`` and goes to
``on_error`` — the call always continues.

Dates are spoken the Mandarin way from single-syllable prompts: the year digit by digit, the
month and day as numbers (二零二六年十月十五日); a crisis-mode deadline adds the hour and
minute (十四点三十分).

Issue 22 (the 12345 main menu's key 4):

* ``own_first``: on the node's first visit the caller hears their own newest open ticket (else
  their newest recent one) at once, found by the engine's look-up of the calling number, without
  keying anything; a later visit ("查询其他工单请按1") asks for a number as before. That readout
  says the number last: the caller keyed none to confirm, and came for the status, which the
  number's ~20 syllables would otherwise hold back (a caller who hangs up once told loses nothing).
* ``on_human``: the human key (0) works while keying digits: an input that starts with 0 (0 then
  ``#``, or 0 and the digit timeout) goes there. A ticket number starts with its year (2…), so
  no ticket number is lost to it. With ``on_human`` a menu key into the node is a self-service
  choice for the lint (:mod:`ivr.flows.lint`).
* The readout adds the department the ticket went to, when ``departments`` names a prompt for it
  (a department without one is skipped: nothing is ever read from what a caller or a
  department typed), and for a closed ticket ``reply_prompt`` (the reply was sent).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from typing import TYPE_CHECKING, Iterable, Literal

from pydantic import Field

from ivr.flows.base import (
    OWN_TICKETS_WAIT, CallContext, Edge, PromptId, Seconds, Step, Target, TicketLookup, Timing, VarName, keyed_number,
    node_type,
)
from ivr.flows.collect import Collect

if TYPE_CHECKING:
    from tickets.model import Ticket

log = logging.getLogger(__name__)

# --- numbers and dates from prompts ----------------------------------------------------------

# Digits inside numbers and years: 1 is 一 here, not the 幺 that SAY DIGITS says for codes.
DIGIT_PROMPTS = ("digit_0", "number_1", "digit_2", "digit_3", "digit_4", "digit_5", "digit_6", "digit_7", "digit_8", "digit_9")
TEN = "number_10"  # 十
TWO_OCLOCK = "number_liang"  # 两, as in 两点 (never 二点)
YEAR, MONTH, DAY, HOUR, MINUTE = "date_year", "date_month", "date_day", "time_hour", "time_minute"


def number_prompts(n: int) -> list[str]:
    """0–99 as spoken: 5 → 五, 10 → 十, 15 → 十五, 20 → 二十, 31 → 三十一."""
    if not 0 <= n < 100:
        raise ValueError(f"{n} is not between 0 and 99")
    tens, ones = divmod(n, 10)
    if tens == 0:
        return [DIGIT_PROMPTS[ones]]
    return ([] if tens == 1 else [DIGIT_PROMPTS[tens]]) + [TEN] + ([DIGIT_PROMPTS[ones]] if ones else [])


def date_prompts(day: date) -> list[str]:
    """二零二六年十月十五日: the year digit by digit, month and day as numbers."""
    year = [DIGIT_PROMPTS[int(c)] for c in f"{day.year:04d}"]
    return year + [YEAR] + number_prompts(day.month) + [MONTH] + number_prompts(day.day) + [DAY]


def hour_prompts(hour: int) -> list[str]:
    return ([TWO_OCLOCK] if hour == 2 else number_prompts(hour)) + [HOUR]


def minute_prompts(minute: int) -> list[str]:
    """零五分, 三十分; nothing on the full hour (十四点, not 十四点零分)."""
    if minute == 0:
        return []
    return ([DIGIT_PROMPTS[0]] if minute < 10 else []) + number_prompts(minute) + [MINUTE]


def time_prompts(at: time) -> list[str]:
    return hour_prompts(at.hour) + minute_prompts(at.minute)


def deadline_prompts(due: str, local: tzinfo | None = None) -> list[str] | None:
    """``Deadline.due`` as prompts: ``2026-10-15`` → the date; ``2026-10-02T14:30:00+08:00`` →
    date and time (in ``local`` when both carry a zone); None when it is not an ISO date."""
    try:
        return date_prompts(date.fromisoformat(due))
    except ValueError:
        pass
    try:
        at = datetime.fromisoformat(due)
    except ValueError:
        return None
    if at.tzinfo is not None and local is not None:
        at = at.astimezone(local)
    return date_prompts(at.date()) + time_prompts(at.time())


def _longest(timing: Timing, options: Iterable[list[str]]) -> float:
    return max(sum(timing.prompt(p) for p in option) for option in options)


def deadline_worst_seconds(timing: Timing) -> float:
    """The longest deadline there is: any year, month, day, hour and minute, each at its longest."""
    return (
        4 * _longest(timing, ([p] for p in DIGIT_PROMPTS))
        + _longest(timing, (number_prompts(m) + [MONTH] for m in range(1, 13)))
        + _longest(timing, (number_prompts(d) + [DAY] for d in range(1, 32)))
        + timing.prompt(YEAR)
        + _longest(timing, (hour_prompts(h) for h in range(24)))
        + _longest(timing, (minute_prompts(m) for m in range(60)))
    )


SPOKEN_NUMBER_PROMPTS = (*DIGIT_PROMPTS, TEN, TWO_OCLOCK, YEAR, MONTH, DAY, HOUR, MINUTE)

# --- statuses -------------------------------------------------------------------------------

# Ticket.status → what the caller hears. The platform writes "accepted" (受理); the later steps
# of the workflow (001 §9) move it on. A status not listed gets OTHER_STATUS.
STATUS_PROMPTS = {
    "accepted": "ticket_status_accepted",  # 已受理，正在办理
    "dispatched": "ticket_status_dispatched",  # 已派发至承办单位
    "handling": "ticket_status_handling",  # 承办单位正在办理
    "replied": "ticket_status_replied",  # 承办单位已答复
    "closed": "ticket_status_closed",  # 已办结
    "returned": "ticket_status_returned",  # 已退回，正在重新派发 (a department's 退回)
}
HUMAN_KEY = "0"  # never the first digit of a ticket number (yyyymmdd…)
OTHER_STATUS = "ticket_status_other"


@dataclass(frozen=True)
class SaidDigits:
    """Digits for the channel's SAY DIGITS, as the ``say`` node reads them (1 as 幺)."""

    digits: str


Spoken = str | SaidDigits  # a prompt id, or digits


def own_ticket(ticket: "Ticket", caller: str) -> bool:
    """Only the number that called in may hear a ticket; a withheld number matches none."""
    return any(c.isdigit() for c in caller) and ticket.caller == caller


# --- the node -------------------------------------------------------------------------------


@node_type
class TicketQuery(Collect):
    """Read a ticket number (as ``collect`` does), look it up, say its status and deadline."""

    type: Literal["ticket_query"] = "ticket_query"  # type: ignore[assignment]
    prompt: PromptId = Field("progress_query_prompt", description="asks for the ticket number")
    var: VarName = Field("ticket_number", description="variable that keeps the number keyed")
    max_digits: int = Field(20, ge=1, le=32, description="date (8) + line + sequence (5): 17 for a 4-digit line, 20 for 7")
    lookup_timeout: Seconds = Field(3.0, gt=0, le=30, description="longest wait for the ticket store; then as if it failed")
    number_prompt: PromptId = Field("ticket_number_is", description="said before the number is read back")
    due_prompt: PromptId = Field("ticket_due", description="said before the deadline")
    provisional_prompt: PromptId | None = Field("ticket_due_provisional", description="said after a provisional deadline")
    not_found_prompt: PromptId = Field("ticket_not_found", description="said before retrying an unknown number")
    not_found_end_prompt: PromptId | None = Field("ticket_not_found_end", description="said before on_not_found")
    unavailable_prompt: PromptId = Field("ticket_query_unavailable", description="said before on_error")
    next: Target = Field(description="where to go after the ticket was read out")
    on_not_found: Target = Field(description="where to go when the last attempt found no ticket")
    on_error: Target = Field(description="where to go when the lookup is missing or fails")
    on_human: Target | None = Field(None, description="where an input starting with 0 goes (0#, or 0 and the timeout)")
    own_first: bool = Field(False, description="first visit: say the caller's own newest open ticket without asking")
    departments: dict[str, PromptId] = Field({}, description="department (as on the ticket) → its prompt; others skipped")
    reply_prompt: PromptId | None = Field("ticket_reply_sent", description="said for a closed ticket: the reply was sent")

    def prompt_refs(self) -> list[tuple[tuple[str | int, ...], str]]:
        fixed = [*STATUS_PROMPTS.values(), OTHER_STATUS, *SPOKEN_NUMBER_PROMPTS]
        departments = [(("departments", name), p) for name, p in self.departments.items()]
        return super().prompt_refs() + [(("type",), p) for p in fixed] + departments

    def human_escape(self) -> str | None:
        return self.on_human

    # --- worst cases, for the lint ---

    def lookup_attempt_seconds(self, timing: Timing) -> float:
        """One attempt that reaches the store: the prompt, every digit's timeout, the lookup."""
        return self.attempt_seconds(timing, self.max_digits) + self.lookup_timeout

    def readout_worst_seconds(self, timing: Timing) -> float:
        """The longest readout: ``max_digits`` digits, the longest status (a closed one with its
        reply notice), the longest department, date and time."""
        reply = timing.prompt(self.reply_prompt) if self.reply_prompt else 0.0  # closed only
        statuses = max(timing.prompt(p) + (reply if s == "closed" else 0.0)
                       for s, p in (*STATUS_PROMPTS.items(), ("", OTHER_STATUS)))
        provisional = timing.prompt(self.provisional_prompt) if self.provisional_prompt else 0.0
        department = max((timing.prompt(p) for p in self.departments.values()), default=0.0)
        return (
            department
            +
            timing.prompt(self.number_prompt)
            + timing.digits(self.max_digits)
            + statuses
            + timing.prompt(self.due_prompt)
            + deadline_worst_seconds(timing)
            + provisional
        )

    def edges(self, timing: Timing) -> list[Edge]:
        """Every exit after all retries, each earlier attempt a lookup and the longest notice
        (after the own ticket's look-up that found nothing to say, with ``own_first``)."""
        own = OWN_TICKETS_WAIT + self.lookup_timeout if self.own_first else 0.0
        notices = (self.invalid_prompt, self.timeout_prompt, self.not_found_prompt)
        notice = max((timing.prompt(p) for p in notices if p), default=0.0)
        retries = own + self.retries * (self.lookup_attempt_seconds(timing) + notice)
        last = retries + self.lookup_attempt_seconds(timing)
        not_found_end = timing.prompt(self.not_found_end_prompt) if self.not_found_end_prompt else 0.0
        escape = [Edge(f"key {HUMAN_KEY}", self.on_human, ("on_human",), last, limit=self.max_visits)] if self.on_human else []
        return escape + [
            Edge("found", self.next, ("next",), last + self.readout_worst_seconds(timing), limit=self.max_visits),
            Edge("not found", self.on_not_found, ("on_not_found",), last + not_found_end, limit=self.max_visits),
            Edge("lookup failed", self.on_error, ("on_error",), last + timing.prompt(self.unavailable_prompt), limit=self.max_visits),
            Edge("exhausted", self.on_exhausted, ("on_exhausted",), retries + self.attempt_seconds(timing, self.max_digits)),
        ]

    # --- the call ---

    async def run(self, ctx: CallContext) -> Step:
        if ctx.count_visit() > self.max_visits:
            return Step(goto=self.on_exhausted, outcome="visits exhausted")
        ctx.typeahead = ""  # a ticket number is never a single key pressed ahead
        if ctx.tickets is None:
            await ctx.play(self.unavailable_prompt)
            return Step(goto=self.on_error, outcome="no ticket lookup")
        if self.own_first and ctx.counters[ctx.node_id] == 1 and (step := await self._own(ctx, ctx.tickets)):
            return step
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            keyed = await ctx.channel.get_data(ctx.sound(self.prompt), int(self.timeout * 1000), self.max_digits)
            number = ctx.press(keyed.rstrip("#"))  # GET DATA drops the #; strip it where a channel keeps it
            if self.on_human and number.startswith(HUMAN_KEY):
                return Step(goto=self.on_human, outcome=f"key {HUMAN_KEY}")
            if not self.valid(number):
                if last:
                    break
                await ctx.play(self.invalid_prompt if number else self.timeout_prompt)
                continue
            ctx.variables[self.var] = number
            ok, ticket = await self._find(ctx.tickets, number)
            if not ok:
                await ctx.play(self.unavailable_prompt)
                return Step(goto=self.on_error, outcome="lookup failed")
            if ticket is not None and own_ticket(ticket, ctx.call.caller):
                await self._read_out(ctx, number, ticket)
                return Step(goto=self.next, outcome="found")
            if last:  # unknown, or another caller's: the same words either way
                await ctx.play(self.not_found_end_prompt)
                return Step(goto=self.on_not_found, outcome="not found")
            await ctx.play(self.not_found_prompt)
        return Step(goto=self.on_exhausted, outcome="retries exhausted")

    async def _own(self, ctx: CallContext, lookup: TicketLookup) -> Step | None:
        """The caller's own newest open ticket (else newest recent one), read out; None when the
        engine's look-up knows none or the store cannot give it: then the caller keys a number."""
        recent = await ctx.recent_tickets()
        numbers = [n for n, is_open in recent if is_open] or [n for n, _ in recent]
        if not numbers:
            return None
        number = keyed_number(numbers[-1])
        ok, ticket = await self._find(lookup, number)
        if not ok or ticket is None or not own_ticket(ticket, ctx.call.caller):
            return None
        ctx.variables[self.var] = number
        await self._read_out(ctx, number, ticket, own=True)
        return Step(goto=self.next, outcome="own ticket")

    async def _read_out(self, ctx: CallContext, number: str, ticket: "Ticket", *, own: bool = False) -> None:
        for part in self.readout(number, ticket, ctx.now().tzinfo, own=own):
            await self._say(ctx, part)

    async def _find(self, lookup: TicketLookup, number: str) -> tuple[bool, "Ticket | None"]:
        """(True, ticket or None) — or (False, None) when the store failed or was too slow."""
        try:
            async with asyncio.timeout(self.lookup_timeout):
                return True, await lookup.find(number)
        except Exception:  # the store down, a bug in it, a timeout: the caller hears "unavailable"
            log.warning("ticket lookup failed for a %d-digit number", len(number), exc_info=True)
            return False, None

    def readout(self, number: str, ticket: "Ticket", local: tzinfo | None, *, own: bool = False) -> list[Spoken]:
        """What a found ticket sounds like: number, status, department (when it has a prompt),
        deadline (when it has a readable one), and for a closed ticket that the reply was sent;
        ``own`` (the caller's own, read without keying): the number last, the status first."""
        said: list[Spoken] = [self.number_prompt, SaidDigits(number)]
        parts: list[Spoken] = [STATUS_PROMPTS.get(ticket.status, OTHER_STATUS)]
        if ticket.department in self.departments:
            parts.append(self.departments[ticket.department])
        due = deadline_prompts(ticket.deadline.due, local) if ticket.deadline else None
        if ticket.deadline and due is None:
            log.warning("ticket deadline %r is not an ISO date or time: not said", ticket.deadline.due)
        if ticket.deadline and due:
            parts += [self.due_prompt, *due]
            if ticket.deadline.provisional and self.provisional_prompt:
                parts.append(self.provisional_prompt)
        if ticket.status == "closed" and self.reply_prompt:
            parts.append(self.reply_prompt)
        return parts + said if own else said + parts

    @staticmethod
    async def _say(ctx: CallContext, part: Spoken) -> None:
        if isinstance(part, SaidDigits):
            await ctx.channel.say_digits(part.digits)
        else:
            await ctx.play(part)
