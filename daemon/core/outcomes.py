"""What each routing decision becomes in the database: the ticket opened or appended to, the reply or
acknowledgement in the outbox, the receipt filed, the alert for the admin. All in the caller's
transaction; nothing here sends mail.

`OutcomeActions` is the half of the pipeline that records outcomes; `daemon.core.pipeline.Pipeline`
(batches, idempotency, the write transaction) builds on it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.config import Config, Mailbox
from daemon.core.analysis import Analysis
from daemon.core.tickets import NewTicket, TicketNumbers, add_event, add_message, change_state, open_ticket
from daemon.ops.logmask import mask
from daemon.outbound.outbox import EmailRequest, enqueue_email
from daemon.outbound.templates import TemplateRenderer
from storage.archive import RawArchive
from storage.models import Alert, InboundMessage, Ticket

__all__ = [
    "ACK_TEMPLATE",
    "ACK_WINDOW",
    "BatchIndex",
    "OutcomeActions",
    "json_safe",
    "opened_hooks",
    "recent_message_counts",
]

log = logging.getLogger("sportello.pipeline")

# Called as hook(session, ticket, analysis, now) after a ticket is opened; the SLA clock registers here.
opened_hooks: list[Callable[[Session, Ticket, Analysis, datetime], None]] = []

ACK_TEMPLATE = "conferma_ricezione"
PEC_FAILURE_TEMPLATE = "avviso_pec_non_consegnata"
FORWARD_TEMPLATE = "inoltro"
PEC_FAILURE_RECEIPTS = frozenset(
    {"non-accettazione", "errore-consegna", "preavviso-errore-consegna", "rilevazione-virus"}
)
ACK_WINDOW = timedelta(days=1)  # automatic replies per requester are counted over this window
_BODY_LIMIT = 200_000  # characters of body text kept on the ticket; the archive has the rest


@dataclass
class BatchIndex:
    """What one batch already knows: the rows recorded for its items (in the database or, in deferred
    mode, added in this batch), by IMAP identity and by content hash."""

    rows: dict[tuple[object, ...], InboundMessage] = field(default_factory=dict)
    # Deferred mode (one flush per batch): what the database cannot tell yet about this batch.
    deferred: bool = False
    requesters: dict[str, int] = field(default_factory=dict)
    by_message_id: dict[str, list[InboundMessage]] = field(default_factory=dict)
    # Rows already in the database for the Message-IDs the batch's headers announce.
    recorded_ids: dict[str, list[InboundMessage]] = field(default_factory=dict)
    numbers: TicketNumbers = field(default_factory=TicketNumbers)
    # Deferred mode: messages recorded in the last day per requester of the batch, before the batch.
    recent_by_sender: dict[str, int] | None = None

    def remember(self, row: InboundMessage) -> None:
        self.rows[(row.mailbox, "sha", row.raw_sha256)] = row
        if row.uid is not None:
            self.rows[(row.mailbox, "uid", row.uidvalidity, row.uid)] = row

    def find(self, mailbox: str, uidvalidity: int | None, uid: int | None, digest: str) -> InboundMessage | None:
        by_uid = self.rows.get((mailbox, "uid", uidvalidity, uid)) if uid is not None else None
        return by_uid or self.rows.get((mailbox, "sha", digest))


@dataclass(frozen=True)
class Arrival:
    """One message being recorded, as every outcome action sees it."""

    session: Session
    mailbox: Mailbox
    inbound: InboundMessage
    analysis: Analysis
    received_at: datetime
    now: datetime


class OutcomeActions:
    """One method per routing action; each records the outcome on the inbound row and returns whether
    mail was put in the outbox."""

    config: Config
    renderer: TemplateRenderer
    archive: RawArchive
    _local: threading.local  # .known: the BatchIndex of the batch this thread is recording

    # -- actions ------------------------------------------------------------------------------

    def _open(self, a: Arrival) -> bool:
        d = a.analysis.decision
        msg = a.analysis.effective or a.analysis.envelope
        assert msg is not None
        cls = a.analysis.classification
        ticket = open_ticket(
            a.session,
            NewTicket(
                office=a.mailbox.office,
                mailbox=a.mailbox.id,
                requester=a.analysis.requester,
                requester_name=msg.sender_name,
                subject=msg.subject,
                received_at=a.received_at,
                queue=d.queue,
                assignee=d.assignees[0] if d.assignees else None,
                codici_fiscali=tuple(getattr(cls, "codici_fiscali", ()) or ()),
                classification=json_safe(cls.to_dict()) if cls is not None else None,
                tags=d.tags,
                priority=d.priority,
                sla_policy=d.sla,
                pec_identificativo=getattr(a.analysis.pec, "identificativo", None) if a.analysis.pec else None,
            ),
            now=a.now,
            numbers=known.numbers if (known := getattr(self._local, "known", None)) is not None else None,
        )
        # no flush: the batch's single flush fills every key
        self._file_incoming(a, ticket, "opened")
        if a.analysis.envelope is not None and a.analysis.envelope is not msg and a.analysis.envelope.message_id:
            # Replies may quote the PEC envelope's id rather than the inner message's.
            add_message(
                a.session,
                ticket.id,
                direction="note",
                at=a.received_at,
                author="sistema",
                subject="busta PEC",
                body="",
                message_id=a.analysis.envelope.message_id,
                inbound=a.inbound,
            )
        for hook in opened_hooks:
            hook(a.session, ticket, a.analysis, a.now)
        if a.analysis.suppress_ack or self._ack_budget_exhausted(a.session, a.analysis.requester, a.now):
            add_event(
                a.session,
                ticket.id,
                "conferma_non_inviata",
                actor="sistema",
                at=a.now,
                note="il mittente non riceve risposte automatiche (limite o richiesta)",
            )
            return False
        templates = d.templates or (ACK_TEMPLATE,)
        for template in templates:
            self._send(a, template, ticket)
        return True

    def _file_incoming(self, a: Arrival, ticket: Ticket, outcome: str) -> None:
        """The message as an incoming message of the ticket, and the inbound row pointing at it."""
        msg = a.analysis.effective or a.analysis.envelope
        assert msg is not None
        a.inbound.outcome = outcome
        a.inbound.ticket = ticket
        add_message(
            a.session,
            ticket.id,
            direction="in",
            at=a.received_at,
            author=a.analysis.requester,
            subject=msg.subject,
            body=msg.text_body[:_BODY_LIMIT],
            message_id=msg.message_id,
            inbound=a.inbound,
        )

    def _append(self, a: Arrival) -> bool:
        d = a.analysis.decision
        msg = a.analysis.effective or a.analysis.envelope
        assert msg is not None
        target = d.target_ticket or a.analysis.reply_to_ticket
        ticket = a.session.get(Ticket, target.upper()) if target else None
        if ticket is None:  # the rule pointed to a ticket that is gone: open one rather than lose it
            return self._open(a)
        self._file_incoming(a, ticket, "appended")
        kind = "sollecito" if getattr(a.analysis.classification, "sollecito", False) else "messaggio"
        add_event(
            a.session,
            ticket.id,
            kind,
            actor=a.analysis.requester,
            at=a.now,
            note=f"da {a.mailbox.id}",
            data={"archivio": a.inbound.archive_ref},
        )
        ticket.updated_at = a.now
        if ticket.state in ("in_attesa", "chiusa") and a.analysis.requester == ticket.requester:
            change_state(
                a.session,
                ticket,
                "aperta",
                actor=a.analysis.requester,
                at=a.now,
                note="nuovo messaggio del richiedente",
            )
        mailed = False
        for template in d.templates:
            self._send(a, template, ticket)
            mailed = True
        return mailed

    def _reject(self, a: Arrival) -> bool:
        a.inbound.outcome = "rejected"
        if a.analysis.automatic or not a.analysis.requester:
            a.inbound.detail = "nessuna risposta: mittente automatico o assente"
            return False
        if self._ack_budget_exhausted(a.session, a.analysis.requester, a.now):
            a.inbound.detail = "nessuna risposta: limite giornaliero di risposte automatiche"
            return False
        for template in a.analysis.decision.templates:
            self._send(a, template, None)
        return bool(a.analysis.decision.templates)

    def _ignore(self, a: Arrival) -> bool:
        a.inbound.outcome = "ignored"
        ticket = a.session.get(Ticket, a.analysis.decision.target_ticket) if a.analysis.decision.target_ticket else None
        if ticket is None:
            return False
        # e.g. a PEC receipt filed on the ticket it refers to, as proof of acceptance and delivery
        a.inbound.ticket = ticket
        pec = a.analysis.pec
        receipt = getattr(pec, "receipt_type", None) if pec is not None and pec.kind == "ricevuta" else None
        data: dict[str, Any] = {"archivio": a.inbound.archive_ref}
        if receipt:
            data.update(
                ricevuta=receipt,
                identificativo=pec.identificativo,
                riferimento=pec.riferimento_message_id,
                data=pec.data.isoformat() if pec.data else None,
                archivio=a.inbound.archive_ref,
            )
        add_event(
            a.session,
            ticket.id,
            f"ricevuta_pec_{receipt}" if receipt else (a.analysis.decision.reason or "archiviato"),
            actor="sistema",
            at=a.now,
            note=f"ricevuta PEC di {receipt}" if receipt else "",
            data=data,
        )
        if receipt in PEC_FAILURE_RECEIPTS:
            return self._pec_delivery_failed(a, ticket, receipt)
        return False

    def _pec_delivery_failed(self, a: Arrival, ticket: Ticket, receipt: str) -> bool:
        """Our PEC did not reach its recipient: the admin gets an alert, the ticket's referents an email."""
        a.session.add(
            Alert(
                at=a.now,
                kind="pec_non_consegnata",
                mailbox=a.mailbox.id,
                ticket_id=ticket.id,
                inbound=a.inbound,
                note=f"ricevuta PEC di {receipt} per la pratica {ticket.id}",
            )
        )
        referents = self._referents(ticket)
        if not referents:
            return False
        ctx = self._context(a, ticket)
        ctx["ricevuta"] = {"tipo": receipt, "errore": getattr(a.analysis.pec, "errore_esteso", None)}
        ctx["pratica"] = {"id": ticket.id, "oggetto": ticket.subject, "richiedente": ticket.requester}
        enqueue_email(
            a.session,
            self.config,
            self.renderer,
            EmailRequest(
                mailbox_id=a.mailbox.id,
                to=tuple(referents),
                template=PEC_FAILURE_TEMPLATE,
                context=ctx,
                ticket_id=ticket.id,
                inbound=a.inbound,
            ),
            now=a.now,
        )
        return True

    def _alert_unverified_pec(self, a: Arrival) -> None:
        """Looks like PEC but does not verify: never genuine, and the admin must know (forgery or breakage)."""
        pec = a.analysis.pec
        a.session.add(
            Alert(
                at=a.now,
                kind="pec_non_verificata",
                mailbox=a.mailbox.id,
                inbound=a.inbound,
                note=(
                    f"messaggio con aspetto di PEC ({getattr(pec, 'looks_like', None) or '?'}) non verificato: "
                    f"{getattr(pec, 'failure', None) or 'motivo sconosciuto'}; copia esatta in {a.inbound.archive_ref}"
                ),
            )
        )

    def _referents(self, ticket: Ticket) -> list[str]:
        """The assignee if any, else the office's referents."""
        people = {p.id: p for p in self.config.people}
        if ticket.assignee and ticket.assignee in people:
            return [people[ticket.assignee].address]
        return [p.address for p in self.config.people_with_role("referente", ticket.office)]

    def _forward(self, a: Arrival) -> bool:
        a.inbound.outcome = "forwarded"
        d = a.analysis.decision
        if not d.forward_to:
            return False
        ctx = self._context(a, None)
        ctx["messaggio"]["data_ricezione"] = a.inbound.received_at
        enqueue_email(
            a.session,
            self.config,
            self.renderer,
            EmailRequest(
                mailbox_id=a.mailbox.id,
                to=tuple(d.forward_to),
                template=FORWARD_TEMPLATE,
                context=ctx,
                inbound=a.inbound,
                # The recipient gets the message itself (a PEC with its envelope and signature).
                attached_message=self.archive.load(a.inbound.archive_ref),
                reply_to=a.analysis.requester or None,  # the recipient answers the sender directly
            ),
            now=a.now,
        )
        for template in d.templates:  # e.g. telling the sender where the message went
            self._send(a, template, None)
        return True

    def _quarantine(self, a: Arrival) -> bool:
        a.inbound.outcome = "quarantined"
        a.inbound.reason = a.inbound.reason or (a.analysis.failure.reason if a.analysis.failure else "quarantena")
        a.inbound.detail = a.analysis.failure.detail if a.analysis.failure else None
        a.session.add(
            Alert(
                at=a.now,
                kind="quarantena",
                mailbox=a.mailbox.id,
                inbound=a.inbound,
                note=f"messaggio in quarantena ({a.inbound.reason}); copia esatta in {a.inbound.archive_ref}",
            )
        )
        return False

    def _ack_budget_exhausted(self, session: Session, requester: str, now: datetime) -> bool:
        if not requester:
            return True
        known: BatchIndex | None = getattr(self._local, "known", None)
        deferred = known is not None and known.deferred
        recent = known.recent_by_sender if known is not None and deferred else None
        if recent is not None and requester in recent:
            count = recent[requester]
        else:
            count = recent_message_counts(session, {requester}, now - ACK_WINDOW)[requester]
        if deferred and known is not None:
            count += known.requesters.get(requester, 0)  # this batch's rows are not flushed yet
        # the current message is already counted
        return int(count) > self.config.outbound.max_acks_per_sender_per_day

    def _context(self, a: Arrival, ticket: Ticket | None) -> dict[str, Any]:
        msg = a.analysis.effective or a.analysis.envelope
        office = self.config.office(a.mailbox.office)
        return {
            "messaggio": {
                "oggetto": msg.subject if msg else "",
                "mittente": a.analysis.requester,
                "nome_mittente": msg.sender_name if msg else "",
                "data_ricezione": a.analysis.signed_at or a.now,
                "message_id": msg.message_id if msg else None,
            },
            "casella": {
                "id": a.mailbox.id,
                "indirizzo": a.mailbox.address,
                "nome": a.mailbox.name,
                "tipo": a.mailbox.kind,
            },
            "ufficio": {"id": office.id, "nome": office.name},
            "ticket": None
            if ticket is None
            else {
                "id": ticket.id,
                "scadenza": ticket.due_at,
                "coda": ticket.queue,
            },
            "motivo": a.analysis.decision.reason,
            "classificazione": a.analysis.classification.to_dict() if a.analysis.classification is not None else {},
            "parametri": dict(a.analysis.decision.params),
            "giorni_risposta": self.config.instance.answer_working_days,
        }

    def _send(self, a: Arrival, template: str, ticket: Ticket | None) -> None:
        msg = a.analysis.effective or a.analysis.envelope
        ctx = self._context(a, ticket)
        ctx["messaggio"]["data_ricezione"] = a.inbound.received_at
        row = enqueue_email(
            a.session,
            self.config,
            self.renderer,
            EmailRequest(
                mailbox_id=a.mailbox.id,
                to=(a.analysis.requester,),
                template=template,
                context=ctx,
                ticket_id=ticket.id if ticket else None,
                ticket=ticket,
                inbound=a.inbound,
                in_reply_to=msg.message_id if msg else None,
                references=tuple(
                    (msg.references if msg else ()) + ((msg.message_id,) if msg and msg.message_id else ())
                ),
            ),
            now=a.now,
        )
        if ticket is not None:
            # the outbox key is filled at the batch's flush, through the relationship
            add_message(
                a.session,
                ticket.id,
                direction="out",
                at=a.now,
                author=a.mailbox.address,
                subject=row.subject,
                body="",
                message_id=row.message_id,
                outbox=row,
            )
            add_event(
                a.session,
                ticket.id,
                "email_in_uscita",
                actor="sistema",
                at=a.now,
                note=f"{template} a {mask(a.analysis.requester)}",
                data={"message_id": row.message_id},
            )


_JSON_PLAIN = frozenset({str, int, float, bool, type(None)})


def recent_message_counts(session: Session, senders: set[str], since: datetime) -> dict[str, int]:
    """Messages recorded from each sender since `since` (0 for none), in one query."""
    found = dict.fromkeys(senders, 0)
    rows = session.execute(
        select(InboundMessage.sender, func.count())
        .where(InboundMessage.sender.in_(senders), InboundMessage.processed_at >= since)
        .group_by(InboundMessage.sender)
    )
    for sender, count in rows:
        found[sender] = int(count)
    return found


def json_safe(value: Any) -> Any:
    if type(value) in _JSON_PLAIN:  # most values: checked first, it runs for every leaf
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    return value
