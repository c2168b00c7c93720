"""The outbox sender: delivers due outbox rows over SMTP, with retries and backoff.

Each row is committed as "sent" right after the server accepts it, so the only duplicate a crash
can cause (accepted, then killed before that commit) carries the same Message-ID. Rows are leased
by pushing their next attempt into the future before sending, so two instances never send the same
row at once (PostgreSQL also skips rows another instance has locked).
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import insert, select, update

from daemon.config import Config
from daemon.logmask import mask
from daemon.outbound.smtp import SendResult, SmtpConnection
from daemon.tickets import add_event
from storage.db import SessionFactory
from storage.models import Alert, Outbox, OutboxAttempt

__all__ = ["OutboxSender"]

log = logging.getLogger("sportello.outbox")


class Signal(Protocol):
    """threading.Event or multiprocessing.Event: the sender runs in a thread or in its own process."""

    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...
    def clear(self) -> None: ...


LEASE = timedelta(seconds=60)
CLAIM_BATCH = 20  # small claims: a crash strands few rows, and only until their lease ends


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxSender:
    def __init__(
        self,
        session_factory: SessionFactory,
        config: Config,
        *,
        clock: Callable[[], datetime] = _utcnow,
        connect: Callable[[str], SmtpConnection] | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.config = config
        self.clock = clock
        self._connect = connect or (lambda profile_id: SmtpConnection(config.smtp_profile(profile_id)))

    def backoff(self, attempts: int) -> timedelta:
        o = self.config.outbound
        return timedelta(seconds=min(o.retry_max_seconds, o.retry_min_seconds * 2 ** max(attempts - 1, 0)))

    # -- running ------------------------------------------------------------------------------

    def release_stale_leases(self) -> int:
        """At start on SQLite (one instance per database file): leases of a killed process end now."""
        with self.session_factory() as session, session.begin():
            if session.get_bind().dialect.name != "sqlite":
                return 0
            now = self.clock()
            rows = list(
                session.execute(
                    select(Outbox).where(Outbox.status == "pending", Outbox.next_attempt_at > now)
                ).scalars()
            )
            for row in rows:
                row.next_attempt_at = now
            return len(rows)

    def run(self, stop: Signal, wake: Signal) -> None:
        try:
            self.release_stale_leases()
        except Exception:
            log.exception("impossibile rilasciare le email in sospeso")
        while not stop.is_set():
            try:
                sent_any = self.send_due(stop)
            except Exception:  # the database may be briefly unavailable; never die
                log.exception("invio della coda in uscita non riuscito")
                sent_any = False
            if sent_any:
                continue
            wake.wait(self.config.outbound.poll_seconds)
            wake.clear()

    def send_due(self, stop: Signal | None = None) -> int:
        """Send what is due now; return how many rows were attempted."""
        claimed = self._claim()
        if not claimed:
            return 0
        by_profile: dict[str, list[int]] = {}
        for row_id, profile in claimed:
            by_profile.setdefault(profile, []).append(row_id)
        for profile, ids in by_profile.items():
            self._send_profile(profile, ids, stop)
        return len(claimed)

    def _claim(self) -> list[tuple[int, str]]:
        now = self.clock()
        with self.session_factory() as session, session.begin():
            q = (
                select(Outbox)
                .where(Outbox.status == "pending", Outbox.next_attempt_at <= now)
                .order_by(Outbox.next_attempt_at, Outbox.id)
                .limit(min(CLAIM_BATCH, self.config.outbound.batch_size))
            )
            if session.get_bind().dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)
            rows = list(session.execute(q).scalars())
            for row in rows:
                row.next_attempt_at = now + LEASE
            return [(r.id, r.smtp_profile) for r in rows]

    def _send_profile(self, profile: str, ids: list[int], stop: Signal | None) -> None:
        conn = self._connect(profile)
        try:
            conn.open()
        except (OSError, smtplib.SMTPException) as exc:
            detail = f"connessione SMTP non riuscita ({type(exc).__name__}: {exc})"
            code = getattr(exc, "smtp_code", None)
            for row_id in ids:
                self._record(row_id, SendResult("temporary", code, detail))
            return
        try:
            with self.session_factory() as session:
                rows = {
                    r.id: (r.sender, list(r.to) + list(r.cc), r.raw)
                    for r in session.execute(
                        select(Outbox.id, Outbox.sender, Outbox.to, Outbox.cc, Outbox.raw).where(
                            Outbox.id.in_(ids), Outbox.status == "pending"
                        )
                    )
                }
            for position, row_id in enumerate(ids):
                if row_id not in rows:
                    continue
                if stop is not None and stop.is_set():
                    self._release(row_id)
                    continue
                sender, recipients, raw = rows[row_id]
                try:
                    result = conn.send(sender, recipients, raw)
                except (OSError, smtplib.SMTPException) as exc:
                    self._record(row_id, SendResult("temporary", None, f"{type(exc).__name__}: {exc}"))
                    conn.close()  # the session is gone; the other rows wait for the next round
                    for rest in ids[position + 1 :]:
                        self._release(rest)
                    return
                if result.result == "sent":
                    self._record_sent(row_id, result)
                else:
                    self._record(row_id, result)
        finally:
            conn.close()

    def _record_sent(self, row_id: int, result: SendResult) -> None:
        """Committed at once, row by row: a crash can repeat at most the message being sent."""
        now = self.clock()
        with self.session_factory() as session, session.begin():
            session.execute(
                update(Outbox)
                .where(Outbox.id == row_id)
                .values(status="sent", sent_at=now, last_error=None, attempts=Outbox.attempts + 1)
            )
            session.execute(
                insert(OutboxAttempt).values(
                    outbox_id=row_id, at=now, result="sent", smtp_code=result.code, detail=result.detail[:2000]
                )
            )
        log.info("inviata email n. %s", row_id)

    def _release(self, row_id: int) -> None:
        with self.session_factory() as session, session.begin():
            row = session.get(Outbox, row_id)
            if row is not None and row.status == "pending":
                row.next_attempt_at = self.clock()

    def _record(self, row_id: int, result: SendResult) -> None:
        now = self.clock()
        with self.session_factory() as session, session.begin():
            row = session.get(Outbox, row_id)
            if row is None:
                return
            row.attempts += 1
            session.add(
                OutboxAttempt(
                    outbox_id=row.id, at=now, result=result.result, smtp_code=result.code, detail=result.detail[:2000]
                )
            )
            if result.result == "sent":
                row.status = "sent"
                row.sent_at = now
                row.last_error = None
                log.info("inviata email %s a %s", row.message_id, ", ".join(mask(t) for t in row.to))
                return
            row.last_error = result.detail[:2000]
            give_up = result.result == "permanent" or row.attempts >= self.config.outbound.max_attempts
            if not give_up:
                row.next_attempt_at = now + self.backoff(row.attempts)
                log.warning(
                    "email %s non inviata (%s), nuovo tentativo alle %s",
                    row.message_id,
                    result.detail,
                    row.next_attempt_at,
                )
                return
            row.status = "failed"
            note = (
                f"email {row.template} a {', '.join(row.to)} non recapitata "
                f"dopo {row.attempts} tentativi: {result.detail}"
            )
            session.add(
                Alert(at=now, kind="invio_fallito", mailbox=row.mailbox, ticket_id=row.ticket_id, note=note[:2000])
            )
            if row.ticket_id:
                add_event(
                    session,
                    row.ticket_id,
                    "email_non_recapitata",
                    actor="sistema",
                    at=now,
                    note=note[:2000],
                    data={"outbox_id": row.id},
                )
            log.error("email %s definitivamente non inviata: %s", row.message_id, result.detail)
