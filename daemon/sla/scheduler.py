"""The SLA jobs on APScheduler: the sweep every `calendar.sweep_seconds`, the digest at the opening hour
on weekdays (holidays and closures are checked by the job itself).

Both jobs coalesce and never overlap: after a suspension or a long stop the sweep runs once and
catches up every step due meanwhile (each once), and the digest goes out once for the day. The first
sweep also gives a clock to tickets opened without one and sends the day's digest if it was missed.
The jobs read the time from the service's clock, so tests can drive them with a fake one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from daemon.clock import utcnow
from daemon.core.tickets import TicketService
from daemon.sla import SlaRuntime
from daemon.sla.digest import send_digests
from daemon.sla.hooks import ensure_clock
from daemon.sla.sweep import SlaSweeper, SweepStats
from storage.db import SessionFactory
from storage.models import Ticket

__all__ = ["SlaJobs", "ensure_clocks", "start_scheduler"]

log = logging.getLogger("sportello.sla")


def ensure_clocks(runtime: SlaRuntime, session_factory: SessionFactory, now: datetime, chunk: int = 500) -> int:
    """Clocks (and due dates) for open tickets that have none: opened before this component existed."""
    total = 0
    while True:
        with session_factory() as session, session.begin():
            rows = list(
                session.execute(
                    select(Ticket).where(Ticket.due_at.is_(None), Ticket.state != "chiusa").limit(chunk)
                ).scalars()
            )
            for ticket in rows:
                ensure_clock(session, runtime, ticket, now)
            total += len(rows)
        if len(rows) < chunk:
            break
    if total:
        log.info("scadenze calcolate per %d pratiche che ne erano prive", total)
    return total


class SlaJobs:
    """The job bodies; each catches and logs its errors so that the scheduler keeps running."""

    def __init__(
        self,
        runtime: SlaRuntime,
        session_factory: SessionFactory,
        tickets: TicketService,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.session_factory = session_factory
        self.clock = clock
        self.on_outbox = on_outbox
        self.sweeper = SlaSweeper(runtime, session_factory, tickets, clock=clock, on_outbox=on_outbox)
        self._started = False
        self._lock = threading.Lock()

    def startup(self) -> None:
        now = self.clock()
        ensure_clocks(self.runtime, self.session_factory, now)
        self._digest(now, catch_up=True)

    def sweep(self) -> SweepStats | None:
        with self._lock:
            try:
                if not self._started:
                    self._started = True
                    self.startup()
                return self.sweeper.sweep(self.clock())
            except Exception:  # the database may be briefly unavailable: the next run retries
                log.exception("controllo delle scadenze non riuscito")
                return None

    def digest(self) -> int:
        with self._lock:
            try:
                return self._digest(self.clock(), catch_up=False)
            except Exception:
                log.exception("invio dei riepiloghi giornalieri non riuscito")
                return 0

    def _digest(self, now: datetime, *, catch_up: bool) -> int:
        sent = send_digests(self.runtime, self.session_factory, now, catch_up=catch_up)
        if sent and self.on_outbox is not None:
            self.on_outbox()
        return sent


def start_scheduler(jobs: SlaJobs) -> BackgroundScheduler:
    """Start the SLA jobs; the caller calls `.shutdown()` on the result at stop."""
    runtime = jobs.runtime
    settings = runtime.settings
    tz = runtime.calendar(None).tz
    scheduler = BackgroundScheduler(
        timezone=tz,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )
    scheduler.add_job(
        jobs.sweep,
        IntervalTrigger(seconds=settings.sweep_seconds, timezone=tz),
        id="sla_sweep",
        name="scadenze SLA",
        next_run_time=datetime.now(tz),
    )
    scheduler.add_job(
        jobs.digest,
        CronTrigger(day_of_week="mon-fri", hour=settings.opening_hour, minute=0, timezone=tz),
        id="sla_digest",
        name="riepilogo giornaliero",
    )
    scheduler.start()
    scheduler.sla_jobs = jobs  # type: ignore[attr-defined]  # for tests and diagnostics
    log.info(
        "scadenze SLA attive: controllo ogni %d s, riepilogo alle %02d:00 dei giorni lavorativi",
        settings.sweep_seconds,
        settings.opening_hour,
    )
    return scheduler
