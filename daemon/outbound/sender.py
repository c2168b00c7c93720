"""The outbox sender: delivers due outbox rows over SMTP, with retries and backoff.

Each row is committed as "sent" right after the server accepts it, so the only duplicate a crash
can cause (accepted, then killed before that commit) carries the same Message-ID. Rows are leased
by pushing their next attempt into the future before sending, so two instances never send the same
row at once (PostgreSQL also skips rows another instance has locked).
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol, cast

from sqlalchemy import Connection, Engine, Table, bindparam, insert, select, update

from daemon.clock import utcnow
from daemon.config import Config
from daemon.core.tickets import TicketWriter
from daemon.intake.oauth2 import token_provider
from daemon.ops.logmask import mask
from daemon.outbound.smtp import SendResult, SmtpConnection
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

# The hot statements are built once and run as plain Core with parameter dicts: building them per
# row (expression construction, cache key) cost more CPU than the database work itself.
_OUTBOX = cast(Table, Outbox.__table__)
_O = _OUTBOX.c
_AT = _O.next_attempt_at.type
_DUE = (
    select(_O.id, _O.smtp_profile, _O.sender, _O.to, _O.cc, _O.raw)
    .where(_O.status == "pending", _O.next_attempt_at <= bindparam("now", type_=_AT))
    .order_by(_O.next_attempt_at, _O.id)
    .limit(bindparam("limit"))
)
_DUE_SKIP_LOCKED = _DUE.with_for_update(skip_locked=True)  # PostgreSQL: rows another instance holds
_LEASE = (
    update(_OUTBOX)
    .where(_O.id.in_(bindparam("ids", expanding=True)))
    .values(next_attempt_at=bindparam("until", type_=_AT))
)
_RELEASE = (
    update(_OUTBOX)
    .where(_O.id.in_(bindparam("ids", expanding=True)), _O.status == "pending")
    .values(next_attempt_at=bindparam("at", type_=_AT))
)
_MARK_SENT = (
    update(_OUTBOX)
    .where(_O.id == bindparam("row_id"))
    .values(status="sent", sent_at=bindparam("at", type_=_AT), last_error=None, attempts=_O.attempts + 1)
)
_ADD_ATTEMPT = insert(cast(Table, OutboxAttempt.__table__))


class _Due(NamedTuple):
    """A claimed row and what sending it needs."""

    id: int
    profile: str
    sender: str
    recipients: list[str]
    raw: bytes


class OutboxSender:
    def __init__(
        self,
        session_factory: SessionFactory,
        config: Config,
        *,
        clock: Callable[[], datetime] = utcnow,
        connect: Callable[[str], SmtpConnection] | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.config = config
        self.clock = clock
        # One token provider per OAuth2 profile, so that its sessions share the token until it expires.
        tokens = {p.id: token_provider(p.oauth2) for p in config.smtp_profiles if p.auth == "oauth2" and p.oauth2}
        self._connect = connect or (
            lambda profile_id: SmtpConnection(config.smtp_profile(profile_id), tokens=tokens.get(profile_id))
        )
        self._engine = engine  # by default the engine the session factory is bound to
        self._claim_limit = min(CLAIM_BATCH, config.outbound.batch_size)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self.session_factory() as session:
                bind = session.get_bind()
            self._engine = bind if isinstance(bind, Engine) else bind.engine
        return self._engine

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
        """Send what is due now, claim after claim; return how many rows were attempted.

        The SMTP session of each profile serves every claim of the round: it is closed when nothing
        more is due, after an error, or on stop.
        """
        attempted = 0
        smtp: dict[str, SmtpConnection] = {}
        try:
            with self.engine.connect() as db:
                while stop is None or not stop.is_set():
                    claimed = self._claim(db)
                    if not claimed:
                        break
                    attempted += len(claimed)
                    by_profile: dict[str, list[_Due]] = {}
                    for row in claimed:
                        by_profile.setdefault(row.profile, []).append(row)
                    for profile, rows in by_profile.items():
                        self._send_profile(db, smtp, profile, rows, stop)
        finally:
            for conn in smtp.values():
                conn.close()
        return attempted

    def _claim(self, db: Connection) -> list[_Due]:
        """Lease the next due rows (with what sending them needs) in one short transaction."""
        now = self.clock()
        with db.begin():
            due = _DUE_SKIP_LOCKED if db.dialect.name == "postgresql" else _DUE
            rows = [
                _Due(row_id, profile, sender, [*to, *cc], raw)
                for row_id, profile, sender, to, cc, raw in db.execute(due, {"now": now, "limit": self._claim_limit})
            ]
            if rows:
                db.execute(_LEASE, {"ids": [row.id for row in rows], "until": now + LEASE})
        return rows

    def _send_profile(
        self,
        db: Connection,
        smtp: dict[str, SmtpConnection],
        profile: str,
        rows: list[_Due],
        stop: Signal | None,
    ) -> None:
        if stop is not None and stop.is_set():
            self._release(db, rows)
            return
        conn = smtp.get(profile) or self._open(smtp, profile, rows)
        if conn is None:
            return
        for position, row in enumerate(rows):
            if stop is not None and stop.is_set():
                self._release(db, rows[position:])
                return
            try:
                result = conn.send(row.sender, row.recipients, row.raw)
            except (OSError, smtplib.SMTPException) as exc:
                self._record(row.id, SendResult("temporary", None, f"{type(exc).__name__}: {exc}"))
                del smtp[profile]
                conn.close()  # the session is gone; the other rows wait for the next claim
                self._release(db, rows[position + 1 :])
                return
            if result.result == "sent":
                self._record_sent(db, row.id, result)
                if conn.exhausted:  # the next message of the claim opens a new session
                    del smtp[profile]
                    conn.close()
                    conn = self._open(smtp, profile, rows[position + 1 :])
                    if conn is None:
                        return
                continue
            self._record(row.id, result)
            if result.code == 421:  # the server is closing the session (RFC 5321, 3.8)
                del smtp[profile]
                conn.close()
                self._release(db, rows[position + 1 :])
                return

    def _open(self, smtp: dict[str, SmtpConnection], profile: str, rows: list[_Due]) -> SmtpConnection | None:
        """A new session for the profile; if it cannot be opened, each of `rows` records a try."""
        if not rows:
            return None
        conn = self._connect(profile)
        try:
            conn.open()
        except (OSError, smtplib.SMTPException) as exc:
            detail = f"connessione SMTP non riuscita ({type(exc).__name__}: {exc})"
            code = getattr(exc, "smtp_code", None)
            for row in rows:
                self._record(row.id, SendResult("temporary", code, detail))
            return None
        smtp[profile] = conn
        return conn

    def _record_sent(self, db: Connection, row_id: int, result: SendResult) -> None:
        """Committed at once, row by row: a crash can repeat at most the message being sent."""
        now = self.clock()
        with db.begin():
            db.execute(_MARK_SENT, {"row_id": row_id, "at": now})
            db.execute(
                _ADD_ATTEMPT,
                {
                    "outbox_id": row_id,
                    "at": now,
                    "result": "sent",
                    "smtp_code": result.code,
                    "detail": result.detail[:2000],
                },
            )
        log.info("inviata email n. %s", row_id)

    def _release(self, db: Connection, rows: Sequence[_Due]) -> None:
        """Rows claimed but not tried: due again now instead of at the end of their lease."""
        if rows:
            with db.begin():
                db.execute(_RELEASE, {"ids": [row.id for row in rows], "at": self.clock()})

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
                TicketWriter(session).event(
                    row.ticket_id,
                    "email_non_recapitata",
                    actor="sistema",
                    at=now,
                    note=note[:2000],
                    data={"outbox_id": row.id},
                )
            log.error("email %s definitivamente non inviata: %s", row.message_id, result.detail)
