"""The pure part of the SLA clock: terms, step times, pauses. No database, no mail.

A clock starts at an instant (the receipt of the message, or the start of a wait); its receipt day
is the day that instant counts as (see WorkingCalendar.receipt_day). The term of N working days
ends at the end of the N-th working day after the receipt day. Steps are due at the office's opening
hour: a step anchored to the term with offset k is due at the opening of the working day k + 1 after
the last day of the term (k = 0: the ticket has just become late; k = -2: two working days before
the term ends); a step anchored to the start with offset k at the opening of the k-th working day
after the receipt day, shifted by the working days the clock was paused.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from daemon.sla.policies import ANCHOR_START, Policy, Step
from daemon.workcalendar import WorkingCalendar

__all__ = ["PlannedStep", "due_for", "next_pending", "plan", "resume_due", "step_time", "working_days_late"]


@dataclass(frozen=True)
class PlannedStep:
    step: Step
    at: datetime  # UTC
    index: int  # position in the policy's list, to order steps due at the same time


def due_for(cal: WorkingCalendar, started_at: datetime, policy: Policy) -> datetime:
    """The end of the term of `policy` for a clock started at `started_at` (UTC)."""
    return cal.deadline(started_at, policy.answer_days).astimezone(UTC)


def step_time(
    cal: WorkingCalendar, step: Step, started_at: datetime, due_at: datetime, paused_days: int = 0
) -> datetime:
    if step.anchor == ANCHOR_START:
        day = cal.add_working_day_count(cal.receipt_day(started_at), step.offset + paused_days)
    else:
        day = cal.add_working_day_count(cal.local_date(due_at), step.offset + 1)
    return cal.opening(day).astimezone(UTC)


def plan(
    cal: WorkingCalendar, policy: Policy, started_at: datetime, due_at: datetime, paused_days: int = 0
) -> list[PlannedStep]:
    """Every step of the policy with its time, in the order they fall due."""
    planned = [
        PlannedStep(step, step_time(cal, step, started_at, due_at, paused_days), i)
        for i, step in enumerate(policy.steps)
    ]
    return sorted(planned, key=lambda p: (p.at, p.index))


def next_pending(planned: Iterable[PlannedStep], done: Collection[str]) -> PlannedStep | None:
    """The first step, in time order, that has not run yet."""
    return next((p for p in planned if p.step.id not in done), None)


def resume_due(
    cal: WorkingCalendar, due_at: datetime, paused_at: datetime, resumed_at: datetime
) -> tuple[datetime, int]:
    """(the term moved by the working days of the pause, those days). A pause within one day moves nothing."""
    days = max(0, cal.count_working_days(cal.local_date(paused_at), cal.local_date(resumed_at)))
    if days == 0:
        return due_at, 0
    day = cal.add_working_day_count(cal.local_date(due_at), days)
    return cal.end_of_day(day).astimezone(UTC), days


def working_days_late(cal: WorkingCalendar, due_at: datetime, now: datetime) -> int:
    """Working days elapsed since the term ended (0 while it runs)."""
    return max(0, cal.count_working_days(cal.local_date(due_at), cal.local_date(now)))
