"""What a Service exposes to the people who run it: the metrics, the readiness checks and their endpoint."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from daemon.config import Config
from daemon.core.pipeline import InboundItem, Outcome
from daemon.intake.imap import ImapWorker
from daemon.ops.endpoint import OpsEndpoint
from daemon.ops.health import Readiness, readiness
from daemon.ops.metrics import MailboxState, Metrics
from storage.db import SessionFactory

__all__ = ["Monitor"]

log = logging.getLogger("sportello.messages")


class Monitor:
    def __init__(
        self,
        config: Config,
        session_factory: SessionFactory,
        clock: Callable[[], datetime],
        workers: Callable[[], Sequence[ImapWorker]],
    ) -> None:
        self.config = config
        self.session_factory = session_factory
        self.clock = clock
        self.workers = workers
        self.metrics = Metrics(session_factory, self.mailbox_states, clock)
        self.endpoint: OpsEndpoint | None = None

    def mailbox_states(self) -> list[MailboxState]:
        return [
            MailboxState(
                w.mailbox.id,
                w.connected.is_set(),
                w.last_sync,
                w.settings.sync_period_seconds,
                held=w.turn is None or w.turn.held(w.mailbox.id),
            )
            for w in self.workers()
        ]

    def readiness(self) -> Readiness:
        settings = self.config.metrics
        return readiness(
            self.session_factory,
            self.config.archive_dir,
            self.mailbox_states(),
            now=self.clock(),
            stuck_seconds=settings.outbox_stuck_seconds,
            grace_seconds=settings.sync_grace_seconds,
        )

    def processed(self, items: Sequence[InboundItem], outcomes: Sequence[Outcome], seconds: float) -> None:
        """A committed batch: one log line per message (with its fields for JSON logs), and the metrics."""
        labels = ["duplicate" if o.duplicate else o.outcome for o in outcomes]
        for item, outcome, label in zip(items, outcomes, labels, strict=True):
            fields = {
                "mailbox": item.mailbox_id,
                "uid": item.uid,
                "digest": item.digest,
                "outcome": label,
                "reason": outcome.reason,
                "rule": outcome.rule_id,
                "ticket_id": outcome.ticket_id,
            }
            log.info(
                "casella=%s uid=%s esito=%s motivo=%s regola=%s pratica=%s",
                item.mailbox_id,
                item.uid,
                label,
                outcome.reason,
                outcome.rule_id,
                outcome.ticket_id,
                extra=fields,
            )
        self.metrics.processed([i.mailbox_id for i in items], labels, seconds)

    def start(self) -> None:
        """Serve /metrics, /healthz and /readyz when `metrics.listen` is set."""
        address = self.config.metrics.address
        if address is None or self.endpoint is not None:
            return
        self.endpoint = OpsEndpoint(address[0], address[1], self.metrics.registry, self.readiness)
        self.endpoint.start()

    def stop(self) -> None:
        if self.endpoint is not None:
            self.endpoint.stop()
            self.endpoint = None
