"""The heart: process(raw bytes, mailbox) -> one recorded outcome, in one transaction.

Every intake path (IMAP, `ingest`, LMTP) calls this. The pure analysis (parse, PEC, classify,
route) is injected; this module turns its decision into rows: archive reference, inbound record
with its outcome, ticket and messages, audit events, outbox rows. Nothing here sends mail or
touches IMAP; callers act only after the commit.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.analysis import Analysis, Lookups
from daemon.config import Config, Mailbox
from daemon.logmask import mask
from daemon.outbound.outbox import EmailRequest, enqueue_email
from daemon.outbound.templates import TemplateRenderer
from daemon.tickets import NewTicket, add_event, add_message, change_state, open_ticket
from storage.archive import RawArchive
from storage.db import SessionFactory
from storage.models import Alert, InboundMessage, Ticket, TicketMessage

__all__ = ["InboundItem", "Outcome", "Pipeline", "Analyser", "session_lookups", "opened_hooks"]

log = logging.getLogger("sportello.pipeline")

Analyser = Callable[[bytes, Mailbox, Lookups], Analysis]

# Called as hook(session, ticket, analysis, now) after a ticket is opened; the SLA clock registers here.
opened_hooks: list[Callable[[Session, Ticket, Analysis, datetime], None]] = []

ACK_TEMPLATE = "conferma_ricezione"
PEC_FAILURE_TEMPLATE = "avviso_pec_non_consegnata"
PEC_FAILURE_RECEIPTS = frozenset(
    {"non-accettazione", "errore-consegna", "preavviso-errore-consegna", "rilevazione-virus"}
)
_BODY_LIMIT = 200_000  # characters of body text kept on the ticket; the archive has the rest


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

    return Lookups(ticket_exists=ticket_exists, ticket_for_message_id=ticket_for_message_id)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Pipeline:
    def __init__(
        self,
        config: Config,
        session_factory: SessionFactory,
        archive: RawArchive,
        renderer: TemplateRenderer,
        analyser: Analyser,
        *,
        clock: Callable[[], datetime] = _utcnow,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.session_factory = session_factory
        self.archive = archive
        self.renderer = renderer
        self.analyser = analyser
        self.clock = clock
        self.on_outbox = on_outbox

    # -- public -------------------------------------------------------------------------------

    def process(self, raw: bytes, mailbox_id: str, **kwargs: Any) -> Outcome:
        return self.process_batch([InboundItem(raw=raw, mailbox_id=mailbox_id, **kwargs)])[0]

    def process_batch(self, items: Sequence[InboundItem]) -> list[Outcome]:
        """Record every item; commit once. Each item is atomic on its own (a savepoint)."""
        outcomes: list[Outcome] = []
        enqueued = False
        with self.session_factory() as session, session.begin():
            for item in items:
                try:
                    with session.begin_nested():
                        outcome, mailed = self._process_one(session, item)
                except Exception as exc:  # a bug must not block the mailbox: quarantine, tell admin
                    log.exception("errore interno su %s uid=%s", item.mailbox_id, item.uid)
                    with session.begin_nested():
                        outcome, mailed = self._record_internal_error(session, item, exc)
                outcomes.append(outcome)
                enqueued = enqueued or mailed
        if enqueued and self.on_outbox:
            self.on_outbox()
        return outcomes

    # -- one message --------------------------------------------------------------------------

    def _existing(self, session: Session, item: InboundItem, digest: str) -> InboundMessage | None:
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

    def _same_message_id(self, session: Session, message_id: str) -> list[InboundMessage]:
        return list(
            session.execute(select(InboundMessage).where(InboundMessage.message_id == message_id).limit(20)).scalars()
        )

    def _process_one(self, session: Session, item: InboundItem) -> tuple[Outcome, bool]:
        digest = hashlib.sha256(item.raw).hexdigest()
        existing = self._existing(session, item, digest)
        if existing is not None:
            return _as_outcome(existing, duplicate=True), False

        mailbox = self.config.mailbox(item.mailbox_id)
        now = self.clock()
        archive_ref = self.archive.store(item.raw, digest)
        analysis = self.analyser(item.raw, mailbox, session_lookups(session))
        msg = analysis.effective or analysis.envelope
        received_at = analysis.signed_at or item.received_at or now

        # The same Message-ID already recorded: here a no-op; in another of our mailboxes, a copy.
        if msg is not None and msg.message_id and analysis.decision.action != "quarantine":
            earlier = self._same_message_id(session, msg.message_id)
            same_box = [e for e in earlier if e.mailbox == item.mailbox_id]
            if same_box:
                return _as_outcome(same_box[0], duplicate=True), False
            with_ticket = [e for e in earlier if e.ticket_id]
            if with_ticket:
                return self._record_copy(
                    session, item, analysis, digest, archive_ref, received_at, now, with_ticket[0]
                ), False

        inbound = InboundMessage(
            mailbox=item.mailbox_id,
            source=item.source,
            uidvalidity=item.uidvalidity,
            uid=item.uid,
            message_id=msg.message_id if msg else None,
            raw_sha256=digest,
            archive_ref=archive_ref,
            size=item.size or len(item.raw),
            sender=analysis.requester,
            subject=(msg.subject if msg else "")[:2000],
            received_at=received_at,
            processed_at=now,
            outcome="",
            reason=analysis.decision.reason,
            rule_id=analysis.decision.rule_id,
            rules_version=analysis.decision.rules_version,
            analysis=_json_safe(analysis.to_dict()),
        )
        session.add(inbound)
        session.flush()

        action = analysis.decision.action
        handler = {
            "open_ticket": self._open,
            "append": self._append,
            "reject": self._reject,
            "ignore": self._ignore,
            "forward": self._forward,
            "quarantine": self._quarantine,
        }.get(action, self._quarantine)
        mailed = handler(session, mailbox, inbound, analysis, received_at, now)
        log.info(
            "casella=%s uid=%s esito=%s motivo=%s regola=%s pratica=%s",
            item.mailbox_id,
            item.uid,
            inbound.outcome,
            inbound.reason,
            inbound.rule_id,
            inbound.ticket_id,
        )
        return _as_outcome(inbound), mailed

    # -- actions ------------------------------------------------------------------------------

    def _open(
        self,
        session: Session,
        mailbox: Mailbox,
        inbound: InboundMessage,
        analysis: Analysis,
        received_at: datetime,
        now: datetime,
    ) -> bool:
        d = analysis.decision
        msg = analysis.effective or analysis.envelope
        assert msg is not None
        cls = analysis.classification
        ticket = open_ticket(
            session,
            NewTicket(
                office=mailbox.office,
                mailbox=mailbox.id,
                requester=analysis.requester,
                requester_name=msg.sender_name,
                subject=msg.subject,
                received_at=received_at,
                queue=d.queue,
                assignee=d.assignees[0] if d.assignees else None,
                codici_fiscali=tuple(getattr(cls, "codici_fiscali", ()) or ()),
                classification=_json_safe(cls.to_dict()) if cls is not None else None,
                tags=d.tags,
                priority=d.priority,
                sla_policy=d.sla,
                pec_identificativo=getattr(analysis.pec, "identificativo", None) if analysis.pec else None,
            ),
            now=now,
        )
        session.flush()
        inbound.outcome = "opened"
        inbound.ticket_id = ticket.id
        add_message(
            session,
            ticket.id,
            direction="in",
            at=received_at,
            author=analysis.requester,
            subject=msg.subject,
            body=msg.text_body[:_BODY_LIMIT],
            message_id=msg.message_id,
            inbound_id=inbound.id,
        )
        if analysis.envelope is not None and analysis.envelope is not msg and analysis.envelope.message_id:
            # Replies may quote the PEC envelope's id rather than the inner message's.
            add_message(
                session,
                ticket.id,
                direction="note",
                at=received_at,
                author="sistema",
                subject="busta PEC",
                body="",
                message_id=analysis.envelope.message_id,
                inbound_id=inbound.id,
            )
        for hook in opened_hooks:
            hook(session, ticket, analysis, now)
        if analysis.suppress_ack or self._ack_budget_exhausted(session, analysis.requester, now):
            add_event(
                session,
                ticket.id,
                "conferma_non_inviata",
                actor="sistema",
                at=now,
                note="il mittente non riceve risposte automatiche (limite o richiesta)",
            )
            return False
        templates = d.templates or (ACK_TEMPLATE,)
        for template in templates:
            self._send(session, mailbox, inbound, analysis, template, ticket, now)
        return True

    def _append(
        self,
        session: Session,
        mailbox: Mailbox,
        inbound: InboundMessage,
        analysis: Analysis,
        received_at: datetime,
        now: datetime,
    ) -> bool:
        d = analysis.decision
        msg = analysis.effective or analysis.envelope
        assert msg is not None
        target = d.target_ticket or analysis.reply_to_ticket
        ticket = session.get(Ticket, target.upper()) if target else None
        if ticket is None:  # the rule pointed to a ticket that is gone: open one rather than lose it
            return self._open(session, mailbox, inbound, analysis, received_at, now)
        inbound.outcome = "appended"
        inbound.ticket_id = ticket.id
        add_message(
            session,
            ticket.id,
            direction="in",
            at=received_at,
            author=analysis.requester,
            subject=msg.subject,
            body=msg.text_body[:_BODY_LIMIT],
            message_id=msg.message_id,
            inbound_id=inbound.id,
        )
        kind = "sollecito" if getattr(analysis.classification, "sollecito", False) else "messaggio"
        add_event(
            session,
            ticket.id,
            kind,
            actor=analysis.requester,
            at=now,
            note=f"da {mailbox.id}",
            data={"inbound_id": inbound.id},
        )
        ticket.updated_at = now
        if ticket.state in ("in_attesa", "chiusa") and analysis.requester == ticket.requester:
            change_state(
                session, ticket, "aperta", actor=analysis.requester, at=now, note="nuovo messaggio del richiedente"
            )
        mailed = False
        for template in d.templates:
            self._send(session, mailbox, inbound, analysis, template, ticket, now)
            mailed = True
        return mailed

    def _reject(
        self,
        session: Session,
        mailbox: Mailbox,
        inbound: InboundMessage,
        analysis: Analysis,
        received_at: datetime,
        now: datetime,
    ) -> bool:
        inbound.outcome = "rejected"
        if analysis.automatic or not analysis.requester:
            inbound.detail = "nessuna risposta: mittente automatico o assente"
            return False
        if self._ack_budget_exhausted(session, analysis.requester, now):
            inbound.detail = "nessuna risposta: limite giornaliero di risposte automatiche"
            return False
        for template in analysis.decision.templates:
            self._send(session, mailbox, inbound, analysis, template, None, now)
        return bool(analysis.decision.templates)

    def _ignore(
        self,
        session: Session,
        mailbox: Mailbox,
        inbound: InboundMessage,
        analysis: Analysis,
        received_at: datetime,
        now: datetime,
    ) -> bool:
        inbound.outcome = "ignored"
        ticket = session.get(Ticket, analysis.decision.target_ticket) if analysis.decision.target_ticket else None
        if ticket is None:
            return False
        # e.g. a PEC receipt filed on the ticket it refers to, as proof of acceptance and delivery
        inbound.ticket_id = ticket.id
        pec = analysis.pec
        receipt = getattr(pec, "receipt_type", None) if pec is not None and pec.kind == "ricevuta" else None
        data: dict[str, Any] = {"inbound_id": inbound.id}
        if receipt:
            data.update(
                ricevuta=receipt,
                identificativo=pec.identificativo,
                riferimento=pec.riferimento_message_id,
                data=pec.data.isoformat() if pec.data else None,
                archivio=inbound.archive_ref,
            )
        add_event(
            session,
            ticket.id,
            f"ricevuta_pec_{receipt}" if receipt else (analysis.decision.reason or "archiviato"),
            actor="sistema",
            at=now,
            note=f"ricevuta PEC di {receipt}" if receipt else "",
            data=data,
        )
        if receipt in PEC_FAILURE_RECEIPTS:
            return self._pec_delivery_failed(session, mailbox, inbound, analysis, ticket, receipt, now)
        return False

    def _pec_delivery_failed(
        self,
        session: Session,
        mailbox: Mailbox,
        inbound: InboundMessage,
        analysis: Analysis,
        ticket: Ticket,
        receipt: str,
        now: datetime,
    ) -> bool:
        """Our PEC did not reach its recipient: the admin gets an alert, the ticket's referents an email."""
        session.add(
            Alert(
                at=now,
                kind="pec_non_consegnata",
                mailbox=mailbox.id,
                ticket_id=ticket.id,
                inbound_id=inbound.id,
                note=f"ricevuta PEC di {receipt} per la pratica {ticket.id}",
            )
        )
        referents = self._referents(ticket)
        if not referents:
            return False
        ctx = self._context(mailbox, analysis, ticket, now)
        ctx["ricevuta"] = {"tipo": receipt, "errore": getattr(analysis.pec, "errore_esteso", None)}
        ctx["pratica"] = {"id": ticket.id, "oggetto": ticket.subject, "richiedente": ticket.requester}
        enqueue_email(
            session,
            self.config,
            self.renderer,
            EmailRequest(
                mailbox_id=mailbox.id,
                to=tuple(referents),
                template=PEC_FAILURE_TEMPLATE,
                context=ctx,
                ticket_id=ticket.id,
                inbound_id=inbound.id,
            ),
            now=now,
        )
        return True

    def _referents(self, ticket: Ticket) -> list[str]:
        """The assignee if any, else the office's referents."""
        people = {p.id: p for p in self.config.people}
        if ticket.assignee and ticket.assignee in people:
            return [people[ticket.assignee].address]
        return [p.address for p in self.config.people_with_role("referente", ticket.office)]

    def _forward(
        self,
        session: Session,
        mailbox: Mailbox,
        inbound: InboundMessage,
        analysis: Analysis,
        received_at: datetime,
        now: datetime,
    ) -> bool:
        inbound.outcome = "forwarded"
        d = analysis.decision
        if not d.forward_to:
            return False
        ctx = self._context(mailbox, analysis, None, now)
        enqueue_email(
            session,
            self.config,
            self.renderer,
            EmailRequest(
                mailbox_id=mailbox.id, to=tuple(d.forward_to), template="inoltro", context=ctx, inbound_id=inbound.id
            ),
            now=now,
        )
        return True

    def _quarantine(
        self,
        session: Session,
        mailbox: Mailbox,
        inbound: InboundMessage,
        analysis: Analysis,
        received_at: datetime,
        now: datetime,
    ) -> bool:
        inbound.outcome = "quarantined"
        inbound.reason = inbound.reason or (analysis.failure.reason if analysis.failure else "quarantena")
        inbound.detail = analysis.failure.detail if analysis.failure else None
        session.add(
            Alert(
                at=now,
                kind="quarantena",
                mailbox=mailbox.id,
                inbound_id=inbound.id,
                note=f"messaggio in quarantena ({inbound.reason}); copia esatta in {inbound.archive_ref}",
            )
        )
        return False

    def _record_copy(
        self,
        session: Session,
        item: InboundItem,
        analysis: Analysis,
        digest: str,
        archive_ref: str,
        received_at: datetime,
        now: datetime,
        earlier: InboundMessage,
    ) -> Outcome:
        msg = analysis.effective or analysis.envelope
        inbound = InboundMessage(
            mailbox=item.mailbox_id,
            source=item.source,
            uidvalidity=item.uidvalidity,
            uid=item.uid,
            message_id=msg.message_id if msg else None,
            raw_sha256=digest,
            archive_ref=archive_ref,
            size=item.size or len(item.raw),
            sender=analysis.requester,
            subject=(msg.subject if msg else "")[:2000],
            received_at=received_at,
            processed_at=now,
            outcome="appended",
            reason="copia",
            ticket_id=earlier.ticket_id,
            detail=f"stesso messaggio già ricevuto su {earlier.mailbox}",
        )
        session.add(inbound)
        session.flush()
        assert earlier.ticket_id is not None
        add_event(
            session,
            earlier.ticket_id,
            "copia_ricevuta",
            actor="sistema",
            at=now,
            note=f"lo stesso messaggio è arrivato anche su {item.mailbox_id}",
        )
        return _as_outcome(inbound)

    def _record_internal_error(self, session: Session, item: InboundItem, exc: Exception) -> tuple[Outcome, bool]:
        digest = hashlib.sha256(item.raw).hexdigest()
        now = self.clock()
        existing = self._existing(session, item, digest)
        if existing is not None:
            return _as_outcome(existing, duplicate=True), False
        ref = self.archive.store(item.raw, digest)
        inbound = InboundMessage(
            mailbox=item.mailbox_id,
            source=item.source,
            uidvalidity=item.uidvalidity,
            uid=item.uid,
            message_id=None,
            raw_sha256=digest,
            archive_ref=ref,
            size=len(item.raw),
            received_at=item.received_at or now,
            processed_at=now,
            outcome="quarantined",
            reason="errore_interno",
            detail=type(exc).__name__,
        )
        session.add(inbound)
        session.flush()
        session.add(
            Alert(
                at=now,
                kind="errore_interno",
                mailbox=item.mailbox_id,
                inbound_id=inbound.id,
                note=f"errore interno ({type(exc).__name__}); messaggio in quarantena, copia in {ref}",
            )
        )
        return _as_outcome(inbound), False

    # -- helpers ------------------------------------------------------------------------------

    def _ack_budget_exhausted(self, session: Session, requester: str, now: datetime) -> bool:
        if not requester:
            return True
        count = session.execute(
            select(func.count())
            .select_from(InboundMessage)
            .where(
                InboundMessage.sender == requester,
                InboundMessage.processed_at >= now - timedelta(days=1),
            )
        ).scalar_one()
        # the current message is already counted
        return int(count) > self.config.outbound.max_acks_per_sender_per_day

    def _context(self, mailbox: Mailbox, analysis: Analysis, ticket: Ticket | None, now: datetime) -> dict[str, Any]:
        msg = analysis.effective or analysis.envelope
        office = self.config.office(mailbox.office)
        return {
            "messaggio": {
                "oggetto": msg.subject if msg else "",
                "mittente": analysis.requester,
                "nome_mittente": msg.sender_name if msg else "",
                "data_ricezione": analysis.signed_at or now,
                "message_id": msg.message_id if msg else None,
            },
            "casella": {"id": mailbox.id, "indirizzo": mailbox.address, "nome": mailbox.name, "tipo": mailbox.kind},
            "ufficio": {"id": office.id, "nome": office.name},
            "ticket": None
            if ticket is None
            else {
                "id": ticket.id,
                "scadenza": ticket.due_at,
                "coda": ticket.queue,
            },
            "motivo": analysis.decision.reason,
            "classificazione": analysis.classification.to_dict() if analysis.classification is not None else {},
            "parametri": dict(analysis.decision.params),
            "giorni_risposta": self.config.instance.answer_working_days,
        }

    def _send(
        self,
        session: Session,
        mailbox: Mailbox,
        inbound: InboundMessage,
        analysis: Analysis,
        template: str,
        ticket: Ticket | None,
        now: datetime,
    ) -> None:
        msg = analysis.effective or analysis.envelope
        ctx = self._context(mailbox, analysis, ticket, now)
        ctx["messaggio"]["data_ricezione"] = inbound.received_at
        row = enqueue_email(
            session,
            self.config,
            self.renderer,
            EmailRequest(
                mailbox_id=mailbox.id,
                to=(analysis.requester,),
                template=template,
                context=ctx,
                ticket_id=ticket.id if ticket else None,
                inbound_id=inbound.id,
                in_reply_to=msg.message_id if msg else None,
                references=tuple(
                    (msg.references if msg else ()) + ((msg.message_id,) if msg and msg.message_id else ())
                ),
            ),
            now=now,
        )
        if ticket is not None:
            session.flush()
            add_message(
                session,
                ticket.id,
                direction="out",
                at=now,
                author=mailbox.address,
                subject=row.subject,
                body="",
                message_id=row.message_id,
                outbox_id=row.id,
            )
            add_event(
                session,
                ticket.id,
                "email_in_uscita",
                actor="sistema",
                at=now,
                note=f"{template} a {mask(analysis.requester)}",
                data={"outbox_id": row.id},
            )


def _as_outcome(row: InboundMessage, duplicate: bool = False) -> Outcome:
    return Outcome(
        inbound_id=row.id,
        outcome=row.outcome,
        reason=row.reason,
        ticket_id=row.ticket_id,
        rule_id=row.rule_id,
        duplicate=duplicate,
    )


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    return value
