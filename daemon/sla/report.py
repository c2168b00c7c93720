"""SLA figures per queue: open, overdue, answered in time (%), median answer time in working days.

"Answered" means closed with an outcome other than `mancato_riscontro` (closed because the
requester never answered). The answer time is counted on the office's calendar from the receipt day
to the closing day, less the working days the clock was paused waiting for the requester.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from daemon.sla import SlaRuntime
from daemon.sla.hooks import RESPONSE
from storage.models import Ticket
from storage.models_sla import SlaClock

__all__ = ["NO_ANSWER", "QueueFigures", "sla_report"]

NO_ANSWER = "mancato_riscontro"


@dataclass
class QueueFigures:
    office: str
    queue: str
    received: int = 0
    open: int = 0
    overdue: int = 0
    answered: int = 0
    answered_in_time: int = 0
    closed_no_answer: int = 0
    in_time_percent: float | None = None
    median_working_days: float | None = None
    _days: list[int] = field(default_factory=list, repr=False)

    def finish(self) -> QueueFigures:
        if self.answered:
            self.in_time_percent = round(100.0 * self.answered_in_time / self.answered, 1)
            self.median_working_days = float(statistics.median(self._days))
        return self

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("_days")
        return out


def sla_report(
    session: Session,
    runtime: SlaRuntime,
    now: datetime,
    *,
    office: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> list[QueueFigures]:
    """Figures per (office, queue) for the tickets received between `date_from` and `date_to`
    (local days, both included), plus a last row "totale" over all of them."""
    cal = runtime.calendar(office)
    q = (
        select(
            Ticket.office,
            Ticket.queue,
            Ticket.state,
            Ticket.received_at,
            Ticket.due_at,
            Ticket.closed_at,
            Ticket.close_outcome,
            Ticket.answered_at,
            SlaClock.started_at,
            SlaClock.paused_days,
        )
        .outerjoin(SlaClock, and_(SlaClock.ticket_id == Ticket.id, SlaClock.track == RESPONSE))
        .order_by(Ticket.office, Ticket.queue)
    )
    if office:
        q = q.where(Ticket.office == office)
    if date_from:
        q = q.where(Ticket.received_at >= cal.at_local(date_from, 0))
    if date_to:
        q = q.where(Ticket.received_at < cal.at_local(date_to + timedelta(days=1), 0))
    groups: dict[tuple[str, str], QueueFigures] = {}
    total = QueueFigures(office=office or "tutti", queue="totale")
    for row in session.execute(q.execution_options(yield_per=5000)):
        key = (row.office, row.queue or "-")
        figures = groups.get(key)
        if figures is None:
            figures = groups[key] = QueueFigures(office=row.office, queue=row.queue or "-")
        _count(runtime, figures, total, row, now)
    return [f.finish() for f in groups.values()] + [total.finish()]


def _count(runtime: SlaRuntime, figures: QueueFigures, total: QueueFigures, row: Any, now: datetime) -> None:
    """The office's answer is its first reply relayed to the requester (or, without one, the closing)."""
    targets: Iterable[QueueFigures] = (figures, total)
    for f in targets:
        f.received += 1
    closed = row.state == "chiusa"
    answer_at = row.answered_at
    if answer_at is None and closed and row.close_outcome != NO_ANSWER:
        answer_at = row.closed_at
    if not closed:
        late = answer_at is None and row.due_at is not None and row.due_at < now and row.state != "in_attesa"
        for f in targets:
            f.open += 1
            f.overdue += int(late)
    elif answer_at is None:
        for f in targets:
            f.closed_no_answer += 1
        return
    if answer_at is None:
        return
    in_time = row.due_at is None or answer_at <= row.due_at
    cal = runtime.calendar(row.office)
    start = row.started_at or row.received_at
    days = max(0, cal.count_working_days(cal.receipt_day(start), cal.local_date(answer_at)) - (row.paused_days or 0))
    for f in targets:
        f.answered += 1
        f.answered_in_time += int(in_time)
        f._days.append(days)
