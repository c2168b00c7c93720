"""The heart: process(raw bytes, mailbox) -> one recorded outcome, in one transaction.

Every intake path (IMAP, `ingest`) calls this. The pure analysis (parse, PEC, classify, route) is
injected and runs before the write transaction; this module owns batches, idempotency (IMAP UID,
content hash, Message-ID) and the transaction; daemon.core.outcomes turns each decision into rows (ticket,
messages, audit events, outbox). Nothing here sends mail or touches IMAP; callers act only after the
commit.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from daemon.clock import utcnow
from daemon.config import Config, Mailbox
from daemon.conversation.speaker import TicketFacts
from daemon.core.analysis import Analysis, Lookups, oversized_decision
from daemon.core.message_id_reuse import note_reuse, split_by_content
from daemon.core.outcomes import ACK_WINDOW, Arrival, BatchIndex, Outcomes, json_safe, recent_message_counts
from daemon.core.tickets import TicketWriter
from storage.archive import RawArchive
from storage.db import SessionFactory
from storage.errors import StorageUnavailable, storage_errors
from storage.models import Alert, InboundMessage, Outbox, Ticket, TicketMessage

__all__ = ["InboundItem", "Outcome", "Pipeline", "Analyser", "session_lookups"]

log = logging.getLogger("sportello.pipeline")

Analyser = Callable[[bytes, Mailbox, Lookups], Analysis]


@dataclass(frozen=True)
class InboundItem:
    raw: bytes
    mailbox_id: str
    source: str = "ingest"
    uidvalidity: int | None = None
    uid: int | None = None
    received_at: datetime | None = None
    oversized: bool = False  # only the header was fetched; the whole is on the IMAP server
    size: int | None = None

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 of the bytes: the archive's name for them and the duplicate check's key."""
        return hashlib.sha256(self.raw).hexdigest()


@dataclass(frozen=True)
class _Prepared:
    archive_ref: str
    analysis: Analysis
    now: datetime


@dataclass(frozen=True)
class Outcome:
    inbound_id: int
    outcome: str
    reason: str | None
    ticket_id: str | None
    rule_id: str | None
    duplicate: bool = False


def session_lookups(session: Session) -> Lookups:
    def ticket_exists(ticket_id: str) -> bool:
        return session.get(Ticket, ticket_id.upper()) is not None

    def ticket_for_message_id(message_id: str) -> str | None:
        return session.execute(
            select(TicketMessage.ticket_id).where(TicketMessage.message_id == message_id).limit(1)
        ).scalar_one_or_none()

    def ticket_for_sent_message_id(message_id: str) -> str | None:
        return session.execute(
            select(Outbox.ticket_id).where(Outbox.message_id == message_id).limit(1)
        ).scalar_one_or_none()

    def ticket_facts(ticket_id: str) -> TicketFacts | None:
        t = session.get(Ticket, ticket_id.upper())
        if t is None:
            return None
        return TicketFacts(t.id, t.requester, t.office, t.assignee)

    return Lookups(
        ticket_exists=ticket_exists,
        ticket_for_message_id=ticket_for_message_id,
        ticket_for_sent_message_id=ticket_for_sent_message_id,
        ticket_facts=ticket_facts,
    )


class Pipeline:
    def __init__(
        self,
        config: Config,
        session_factory: SessionFactory,
        archive: RawArchive,
        analyser: Analyser,
        outcomes: Outcomes,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_outbox: Callable[[], None] | None = None,
        read_session_factory: SessionFactory | None = None,
    ) -> None:
        self.config = config
        self.session_factory = session_factory
        # Analysis only reads: with its own sessions it runs without holding the write lock, so the
        # outbox sender (another process on SQLite) is not kept waiting while a batch is analysed.
        self.read_session_factory = read_session_factory or session_factory
        self.archive = archive
        self.analyser = analyser
        self.outcomes = outcomes
        self.clock = clock
        self.on_outbox = on_outbox

    # -- public -------------------------------------------------------------------------------

    def process(self, raw: bytes, mailbox_id: str, **kwargs: Any) -> Outcome:
        return self.process_batch([InboundItem(raw=raw, mailbox_id=mailbox_id, **kwargs)])[0]

    def process_batch(self, items: Sequence[InboundItem]) -> list[Outcome]:
        """Record every item; commit once.

        Fast path: the whole batch in one transaction. If anything in it fails, the transaction is
        rolled back and the batch is redone item by item, each in its own savepoint, so that one bad
        message is quarantined and the others are recorded (the archive is content-addressed, so
        storing again is harmless).
        """
        with storage_errors():  # a full or read-only store: one clear error, nothing recorded, retried later
            try:
                return self._batch(items, isolate=False)
            except StorageUnavailable:
                raise
            except Exception:
                log.warning("lotto di %d messaggi non registrato in blocco; si riprova uno alla volta", len(items))
                return self._batch(items, isolate=True)

    def _prepare(self, items: Sequence[InboundItem]) -> list[_Prepared | None]:
        """The pure, slow part of each item (archive copy, analysis), before the write transaction."""
        out: list[_Prepared | None] = []
        with self.read_session_factory() as session:
            lookups = session_lookups(session)
            for item in items:
                try:
                    now = self.clock()
                    ref = self.archive.store(item.raw, item.digest, defer_sync=True)
                    analysis = self.analyser(item.raw, self.config.mailbox(item.mailbox_id), lookups)
                except Exception:  # redone, and then recorded as an internal error, in the write phase
                    out.append(None)
                    continue
                out.append(_Prepared(ref, analysis, now))
        return out

    def _batch(self, items: Sequence[InboundItem], *, isolate: bool) -> list[Outcome]:
        results: list[tuple[InboundMessage, bool]] = []
        enqueued = False
        prepared = self._prepare(items) if not isolate else [None] * len(items)
        with self.session_factory() as session, session.begin():
            known = self._preload(session, items)
            if not isolate:
                known.recent_by_sender = self._recent_by_sender(session, prepared)
            known.deferred = not isolate
            w = TicketWriter(session, bulk=not isolate)
            if not isolate:
                # No flush per message: the rows of the whole batch go to the database in one flush,
                # as multi-row inserts. Queries in the loop do not see this batch; BatchIndex does.
                with session.no_autoflush:
                    for item, ready in zip(items, prepared, strict=True):
                        row, duplicate, mailed = self._process_one(w, item, known, ready)
                        results.append((row, duplicate))
                        enqueued = enqueued or mailed
            else:
                for item in items:
                    try:
                        with session.begin_nested():
                            row, duplicate, mailed = self._process_one(w, item, known)
                    except StorageUnavailable:
                        raise
                    except Exception as exc:  # a bug must not block the mailbox: quarantine, tell admin
                        log.exception("errore interno su %s uid=%s", item.mailbox_id, item.uid)
                        with session.begin_nested():
                            row, duplicate, mailed = self._record_internal_error(session, item, exc)
                    results.append((row, duplicate))
                    enqueued = enqueued or mailed
            w.write_buffered()
            self.archive.sync_pending()  # the raw bytes are durable before the rows that name them
            outcomes = [_as_outcome(row, duplicate=duplicate) for row, duplicate in results]
        if enqueued and self.on_outbox:
            self.on_outbox()
        return outcomes

    def _preload(self, session: Session, items: Sequence[InboundItem]) -> BatchIndex:
        """Rows already recorded for any item of the batch, by IMAP identity and by content hash."""
        found = BatchIndex()
        by_box: dict[str, list[InboundItem]] = {}
        for item in items:
            by_box.setdefault(item.mailbox_id, []).append(item)
        for box, group in by_box.items():
            digests = [i.digest for i in group]
            uids = [i.uid for i in group if i.uid is not None]
            cond: ColumnElement[bool] = InboundMessage.raw_sha256.in_(digests)
            if uids:
                cond = or_(cond, InboundMessage.uid.in_(uids))
            for row in session.execute(select(InboundMessage).where(InboundMessage.mailbox == box, cond)).scalars():
                found.remember(row)
        announced = {mid for item in items if (mid := _header_message_id(item.raw))}
        if announced:
            found.recorded_ids = {mid: [] for mid in announced}
            for row in session.execute(
                select(InboundMessage).where(InboundMessage.message_id.in_(announced))
            ).scalars():
                found.recorded_ids[row.message_id or ""].append(row)
        return found

    def _recent_by_sender(self, session: Session, prepared: Sequence[_Prepared | None]) -> dict[str, int]:
        """Messages recorded in the last day from each requester of the batch, in one query.

        Counted from the batch's earliest clock reading: at the window's edge a row may count for a
        few seconds longer, which errs towards fewer automatic replies, never more."""
        ready = [p for p in prepared if p is not None]
        senders = {p.analysis.requester for p in ready if p.analysis.requester}
        if not senders:
            return {}
        return recent_message_counts(session, senders, min(p.now for p in ready) - ACK_WINDOW)

    # -- one message --------------------------------------------------------------------------

    def _existing(
        self, session: Session, item: InboundItem, digest: str, known: BatchIndex | None = None
    ) -> InboundMessage | None:
        if known is not None:
            hit = known.find(item.mailbox_id, item.uidvalidity, item.uid, digest)
            if hit is not None or known.deferred:
                # Deferred: the database knows nothing this batch has not preloaded or added itself.
                return hit
        if item.uid is not None and item.uidvalidity is not None:
            found = session.execute(
                select(InboundMessage).where(
                    InboundMessage.mailbox == item.mailbox_id,
                    InboundMessage.uidvalidity == item.uidvalidity,
                    InboundMessage.uid == item.uid,
                )
            ).scalar_one_or_none()
            if found:
                return found
        return session.execute(
            select(InboundMessage).where(InboundMessage.mailbox == item.mailbox_id, InboundMessage.raw_sha256 == digest)
        ).scalar_one_or_none()

    def _same_message_id(
        self, session: Session, message_id: str, known: BatchIndex | None = None
    ) -> list[InboundMessage]:
        if known is not None and known.deferred and message_id in known.recorded_ids:
            rows = list(known.recorded_ids[message_id])
        else:
            rows = list(
                session.execute(
                    select(InboundMessage).where(InboundMessage.message_id == message_id).limit(20)
                ).scalars()
            )
        if known is not None and known.deferred:
            rows.extend(known.by_message_id.get(message_id, ()))
        return rows

    def _process_one(
        self,
        w: TicketWriter,
        item: InboundItem,
        known: BatchIndex,
        ready: _Prepared | None = None,
    ) -> tuple[InboundMessage, bool, bool]:
        """(recorded row, whether it was recorded before, whether mail was enqueued)."""
        session = w.session
        digest = item.digest
        existing = self._existing(session, item, digest, known)
        if existing is not None:
            return existing, True, False

        mailbox = self.config.mailbox(item.mailbox_id)
        if ready is not None:
            now, archive_ref, analysis = ready.now, ready.archive_ref, ready.analysis
        else:
            now = self.clock()
            archive_ref = self.archive.store(item.raw, digest, defer_sync=True)
            analysis = self.analyser(item.raw, mailbox, session_lookups(session))
        if item.oversized and analysis.envelope is not None:
            # Only the header was fetched; the message stays whole on the IMAP server.
            analysis = dataclasses.replace(analysis, decision=oversized_decision(self.config.intake.max_message_bytes))
        msg = analysis.effective or analysis.envelope
        received_at = analysis.signed_at or item.received_at or now

        # The same message already recorded under its Message-ID: here a no-op; in another of our
        # mailboxes, a copy. Another message reusing the id is recorded on its own (message_id_reuse).
        reused: list[InboundMessage] = []
        if msg is not None and msg.message_id and analysis.decision.action != "quarantine":
            earlier, reused = split_by_content(
                self._same_message_id(session, msg.message_id, known), item.raw, digest, self.archive.load
            )
            same_box = [e for e in earlier if e.mailbox == item.mailbox_id]
            if same_box:
                return same_box[0], True, False
            with_ticket = [e for e in earlier if e.ticket_id]
            if with_ticket:
                copy = self._record_copy(w, item, analysis, digest, archive_ref, received_at, now, with_ticket[0])
                if known.deferred:
                    known.remember(copy)
                return copy, False, False

        inbound = _inbound_row(
            item,
            digest,
            archive_ref,
            received_at,
            now,
            analysis,
            outcome="",
            reason=analysis.decision.reason,
            rule_id=analysis.decision.rule_id,
            rules_version=analysis.decision.rules_version,
            analysis=json_safe(analysis.to_dict()),
        )
        session.add(inbound)
        if known.deferred:
            known.remember(inbound)
            known.requesters[inbound.sender] = known.requesters.get(inbound.sender, 0) + 1
            if inbound.message_id:
                known.by_message_id.setdefault(inbound.message_id, []).append(inbound)
        else:
            session.flush()

        mailed = self.outcomes.record(Arrival(w, mailbox, inbound, item.raw, analysis, received_at, now, known))
        if reused:
            note_reuse(w, inbound, reused, item.mailbox_id, now)
        # Before the commit (and before a batch's ticket ids exist): the recorded outcome is logged,
        # with its fields, by daemon.ops.monitor once the batch has committed.
        log.debug(
            "casella=%s uid=%s esito=%s motivo=%s regola=%s pratica=%s",
            item.mailbox_id,
            item.uid,
            inbound.outcome,
            inbound.reason,
            inbound.rule_id,
            inbound.ticket_id,
        )
        return inbound, False, mailed

    def _record_copy(
        self,
        w: TicketWriter,
        item: InboundItem,
        analysis: Analysis,
        digest: str,
        archive_ref: str,
        received_at: datetime,
        now: datetime,
        earlier: InboundMessage,
    ) -> InboundMessage:
        inbound = _inbound_row(
            item,
            digest,
            archive_ref,
            received_at,
            now,
            analysis,
            outcome="appended",
            reason="copia",
            ticket_id=earlier.ticket_id,
            detail=f"stesso messaggio già ricevuto su {earlier.mailbox}",
        )
        w.session.add(inbound)
        assert earlier.ticket_id is not None
        w.event(
            earlier.ticket_id,
            "copia_ricevuta",
            actor="sistema",
            at=now,
            note=f"lo stesso messaggio è arrivato anche su {item.mailbox_id}",
        )
        return inbound

    def _record_internal_error(
        self, session: Session, item: InboundItem, exc: Exception
    ) -> tuple[InboundMessage, bool, bool]:
        digest = item.digest
        now = self.clock()
        existing = self._existing(session, item, digest)
        if existing is not None:
            return existing, True, False
        ref = self.archive.store(item.raw, digest)
        inbound = _inbound_row(
            item,
            digest,
            ref,
            item.received_at or now,
            now,
            size=len(item.raw),
            outcome="quarantined",
            reason="errore_interno",
            detail=type(exc).__name__,
        )
        session.add(inbound)
        session.add(
            Alert(
                at=now,
                kind="errore_interno",
                mailbox=item.mailbox_id,
                inbound=inbound,
                note=f"errore interno ({type(exc).__name__}); messaggio in quarantena, copia in {ref}",
            )
        )
        return inbound, False, False

    # -- helpers ------------------------------------------------------------------------------


def _inbound_row(
    item: InboundItem,
    digest: str,
    archive_ref: str,
    received_at: datetime,
    now: datetime,
    found: Analysis | None = None,
    **fields: Any,
) -> InboundMessage:
    """The row recording one inbound message: where it came from, its bytes, what the analysis read in
    it (`found`); `fields` add the outcome (and may override any of these)."""
    msg = (found.effective or found.envelope) if found is not None else None
    values: dict[str, Any] = {
        "mailbox": item.mailbox_id,
        "source": item.source,
        "uidvalidity": item.uidvalidity,
        "uid": item.uid,
        "message_id": msg.message_id if msg else None,
        "raw_sha256": digest,
        "archive_ref": archive_ref,
        "size": item.size or len(item.raw),
        "sender": found.requester if found is not None else "",
        "subject": (msg.subject if msg else "")[:2000],
        "received_at": received_at,
        "processed_at": now,
    }
    values.update(fields)
    return InboundMessage(**values)


_MESSAGE_ID_HEADER = re.compile(rb"^message-id:[ \t]*<([^>\r\n]{1,900})>", re.IGNORECASE | re.MULTILINE)


def _header_message_id(raw: bytes) -> str | None:
    """The Message-ID of the outer header block, cheaply (a hint for preloading, nothing more)."""
    head = raw[: raw.find(b"\r\n\r\n") if b"\r\n\r\n" in raw[:65536] else 65536]
    m = _MESSAGE_ID_HEADER.search(head)
    return m.group(1).decode("utf-8", "replace").strip() if m else None


def _as_outcome(row: InboundMessage, duplicate: bool = False) -> Outcome:
    return Outcome(
        inbound_id=row.id,
        outcome=row.outcome,
        reason=row.reason,
        ticket_id=row.ticket_id,
        rule_id=row.rule_id,
        duplicate=duplicate,
    )
