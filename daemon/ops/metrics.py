"""Prometheus metrics of a running sportello: what it processed (counted as it happens) and the state of
the mailboxes and of the database (read at each scrape, so that they are right across restarts and for
what the separate sender process did)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from storage.db import SessionFactory
from storage.models import OPEN_STATES, Alert, Outbox, Ticket
from storage.models_sla import SlaStepRun

__all__ = ["MailboxState", "Metrics"]

log = logging.getLogger("sportello.metrics")

# Seconds, from a message read alone to a batch of hundreds on a slow disk.
_PROCESSING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class MailboxState:
    """What an IMAP worker knows of its mailbox, as the metrics and /readyz read it."""

    mailbox: str
    connected: bool
    last_sync: float | None  # time.time() of the last successful sync, None before the first
    window_seconds: float  # a healthy worker syncs at least this often
    held: bool = True  # False while another instance holds the mailbox's lease (it is read there)


class _StateCollector(Collector):
    """Gauges read at scrape time from the workers and from the database."""

    def __init__(
        self,
        session_factory: SessionFactory,
        mailboxes: Callable[[], Sequence[MailboxState]],
        clock: Callable[[], datetime],
    ) -> None:
        self.session_factory = session_factory
        self.mailboxes = mailboxes
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield from self._imap()
        try:
            families = list(self._database(self.clock()))
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("metriche del database non lette: %s", exc)
            families = []
        up = GaugeMetricFamily("sportello_database_up", "1 if the database answered this scrape.")
        up.add_metric([], 1.0 if families else 0.0)
        yield up
        yield from families

    def _imap(self) -> Iterator[GaugeMetricFamily]:
        connected = GaugeMetricFamily(
            "sportello_imap_connected", "1 while the IMAP session of the mailbox is open.", labels=["mailbox"]
        )
        since = GaugeMetricFamily(
            "sportello_imap_seconds_since_last_sync",
            "Seconds since the mailbox was last synced (NaN before the first sync).",
            labels=["mailbox"],
        )
        now = time.time()
        for state in self.mailboxes():
            connected.add_metric([state.mailbox], 1.0 if state.connected else 0.0)
            since.add_metric([state.mailbox], math.nan if state.last_sync is None else max(0.0, now - state.last_sync))
        yield connected
        yield since

    def _database(self, now: datetime) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        with self.session_factory() as session:
            by_status = session.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all()
            oldest = session.execute(select(func.min(Outbox.created_at)).where(Outbox.status == "pending")).scalar()
            overdue = case((Ticket.due_at < now, 1), else_=0)
            # Grouped in the order of ix_ticket_state_queue, so that the index alone answers.
            by_state = session.execute(
                select(Ticket.state, Ticket.office, Ticket.queue, func.count(), func.sum(overdue))
                .where(Ticket.state.in_(OPEN_STATES))
                .group_by(Ticket.state, Ticket.office, Ticket.queue)
            ).all()
            steps = session.execute(
                select(SlaStepRun.step, func.count()).where(SlaStepRun.result == "sent").group_by(SlaStepRun.step)
            ).all()
            alerts = session.execute(
                select(Alert.kind, func.count()).where(Alert.acknowledged_at.is_(None)).group_by(Alert.kind)
            ).all()
        outbox = GaugeMetricFamily("sportello_outbox_messages", "Emails in the outbox by status.", labels=["status"])
        for status, count in by_status:
            outbox.add_metric([status], float(count))
        age = GaugeMetricFamily(
            "sportello_outbox_oldest_pending_age_seconds", "Age of the oldest email not sent yet (0 if none)."
        )
        age.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
        open_ = GaugeMetricFamily(
            "sportello_tickets_open", "Tickets not closed, by office and queue.", labels=["office", "queue"]
        )
        late = GaugeMetricFamily(
            "sportello_tickets_overdue", "Tickets not closed past their due date.", labels=["office", "queue"]
        )
        tickets: dict[tuple[str, str], list[float]] = {}
        for _state, office, queue, count, overdue_count in by_state:
            totals = tickets.setdefault((office, queue or ""), [0.0, 0.0])
            totals[0] += count
            totals[1] += overdue_count or 0
        for labels, (open_count, late_count) in sorted(tickets.items()):
            open_.add_metric(list(labels), open_count)
            late.add_metric(list(labels), late_count)
        sent = CounterMetricFamily(
            "sportello_sla_steps_sent", "SLA steps sent (reminders, escalations).", labels=["step"]
        )
        for step, count in steps:
            sent.add_metric([step], float(count))
        open_alerts = GaugeMetricFamily("sportello_alerts_open", "Alerts not acknowledged, by kind.", labels=["kind"])
        for kind, count in alerts:
            open_alerts.add_metric([kind], float(count))
        return [outbox, age, open_, late, sent, open_alerts]


class Metrics:
    """One registry per service (tests run several in one process)."""

    def __init__(
        self,
        session_factory: SessionFactory,
        mailboxes: Callable[[], Sequence[MailboxState]],
        clock: Callable[[], datetime],
    ) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "sportello_messages",
            "Inbound messages processed, by mailbox and outcome (duplicate: a re-delivery recognised).",
            ["mailbox", "outcome"],
            registry=self.registry,
        )
        self.processing = Histogram(
            "sportello_message_processing_seconds",
            "Processing time of one message (its share of the batch it came in).",
            buckets=_PROCESSING_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(session_factory, mailboxes, clock))

    def processed(self, mailboxes: Sequence[str], outcomes: Sequence[str], seconds: float) -> None:
        """One batch: the mailbox and the outcome of each message, and how long the whole batch took."""
        if not outcomes:
            return
        share = seconds / len(outcomes)
        for mailbox, outcome in zip(mailboxes, outcomes, strict=True):
            self.messages.labels(mailbox=mailbox, outcome=outcome).inc()
            self.processing.observe(share)
