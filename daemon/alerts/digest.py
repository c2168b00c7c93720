"""The admins' digest email: the first alert of a kind is told at once, then at most one email an hour.

Each alert is told once: the digest marks what it lists (`notified_at`) in the transaction that puts the
email in the outbox, and an instance that finds the rows already marked by another one sends nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select, update

from daemon.clock import utcnow
from daemon.config import Config, Mailbox
from daemon.outbound.outbox import EmailRequest, outbox_row
from daemon.outbound.templates import TemplateRenderer
from storage.db import SessionFactory
from storage.models import Alert

__all__ = ["DIGEST_INTERVAL", "DIGEST_TEMPLATE", "AlertDigest", "digest_due", "start_digest_job"]

log = logging.getLogger("sportello.alerts")

DIGEST_TEMPLATE = "segnalazioni_amministratori"
DIGEST_INTERVAL = timedelta(hours=1)
LISTED = 100  # alerts described in one email; the counts per kind cover them all


def digest_due(
    pending_kinds: Collection[str], recently_told: Collection[str], last_sent: datetime | None, now: datetime
) -> bool:
    """Whether to send now: something is pending and either a kind not told within the last hour is among
    it (the first of its kind), or the last digest is an hour old."""
    if not pending_kinds:
        return False
    if last_sent is None or now - last_sent >= DIGEST_INTERVAL:
        return True
    return not set(pending_kinds) <= set(recently_told)


class AlertDigest:
    def __init__(
        self,
        config: Config,
        session_factory: SessionFactory,
        renderer: TemplateRenderer,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.session_factory = session_factory
        self.renderer = renderer
        self.clock = clock
        self.on_outbox = on_outbox

    def run(self) -> int:
        """The scheduler's job: never raises (the next run retries). Returns the alerts told."""
        try:
            told = self.send(self.clock())
        except Exception:
            log.exception("invio delle segnalazioni agli amministratori non riuscito")
            return 0
        if told and self.on_outbox is not None:
            self.on_outbox()
        return told

    def send(self, now: datetime) -> int:
        admins = self.config.admin_addresses
        if not admins:
            return 0
        with self.session_factory() as session, session.begin():
            pending = list(
                session.execute(
                    select(Alert)
                    .where(Alert.notified_at.is_(None), Alert.acknowledged_at.is_(None))
                    .order_by(Alert.at, Alert.id)
                ).scalars()
            )
            last_sent = session.execute(select(func.max(Alert.notified_at))).scalar_one()
            recent = set(
                session.execute(
                    select(Alert.kind).where(Alert.notified_at >= now - DIGEST_INTERVAL).distinct()
                ).scalars()
            )
            if not digest_due({a.kind for a in pending}, recent, _aware(last_sent), now):
                return 0
            ids = [a.id for a in pending]
            result = session.execute(
                update(Alert).where(Alert.id.in_(ids), Alert.notified_at.is_(None)).values(notified_at=now)
            )
            claimed = result.rowcount  # type: ignore[attr-defined]  # a CursorResult for an UPDATE
            if claimed != len(ids):  # another instance is telling the same alerts
                session.rollback()
                return 0
            box = _sender_mailbox(self.config)
            counts = Counter(a.kind for a in pending)
            context = {
                "totale": len(pending),
                "per_tipo": sorted(counts.items()),
                "segnalazioni": [
                    {
                        "id": a.id,
                        "quando": a.at,
                        "tipo": a.kind,
                        "casella": a.mailbox,
                        "pratica": a.ticket_id,
                        "nota": a.note,
                    }
                    for a in pending[-LISTED:]
                ],
                "elencate": min(len(pending), LISTED),
                "casella": {"id": box.id, "indirizzo": box.address, "nome": box.name, "tipo": box.kind},
            }
            session.add(
                outbox_row(
                    self.config,
                    self.renderer,
                    EmailRequest(mailbox_id=box.id, to=admins, template=DIGEST_TEMPLATE, context=context),
                    now=now,
                )
            )
        log.info("segnalazioni inviate agli amministratori: %d", len(pending))
        return len(pending)


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _sender_mailbox(config: Config) -> Mailbox:
    """The first active ordinary mailbox: the digest comes from an address people recognise."""
    active = [m for m in config.mailboxes if m.status == "attiva"]
    ordinary = [m for m in active if m.kind == "ordinaria"]
    return (ordinary or active or list(config.mailboxes))[0]


def start_digest_job(digest: AlertDigest, check_seconds: float = 60.0) -> BackgroundScheduler | None:
    """Check for alerts to tell every `check_seconds` (the first check at once); None without admins.
    The caller calls `.shutdown()` on the result at stop."""
    if not digest.config.admin_addresses:
        log.warning("nessun amministratore in config.yaml (admins): le segnalazioni restano in 'sportello alerts list'")
        return None
    scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
    scheduler.add_job(
        digest.run,
        IntervalTrigger(seconds=check_seconds),
        id="alert_digest",
        name="segnalazioni agli amministratori",
        next_run_time=utcnow(),
    )
    scheduler.start()
    return scheduler
