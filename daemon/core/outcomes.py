"""What each routing decision becomes in the database: the ticket opened or appended to, the reply or
acknowledgement in the outbox, the receipt filed, the alert for the admin. All in the caller's
transaction; nothing here sends mail.

`Outcomes` owns the table from a decision's action to the method that records it; the pipeline
(batches, idempotency, the write transaction) hands it each arrival with the state of its batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.config import Config, Mailbox
from daemon.conversation.replies import Conversation
from daemon.core.analysis import Analysis
from daemon.core.context import ContextBuilder
from daemon.core.tickets import NewTicket, TicketService, TicketWriter
from daemon.ops.logmask import mask
from daemon.outbound.outbox import EmailRequest
from storage.archive import RawArchive
from storage.models import Alert, InboundMessage, Ticket, TicketState

__all__ = [
    "ACK_TEMPLATE",
    "ACK_WINDOW",
    "Arrival",
    "BatchIndex",
    "Outcomes",
    "json_safe",
    "recent_message_counts",
]

log = logging.getLogger("sportello.pipeline")

ACK_TEMPLATE = "conferma_ricezione"
PEC_FAILURE_TEMPLATE = "avviso_pec_non_consegnata"
FORWARD_TEMPLATE = "inoltro"
STATUS_TEMPLATE = "stato_pratica"
PEC_FAILURE_RECEIPTS = frozenset(
    {"non-accettazione", "errore-consegna", "preavviso-errore-consegna", "rilevazione-virus"}
)
ACK_WINDOW = timedelta(days=1)  # automatic replies per requester are counted over this window
# What a requester's message does to their ticket: back to the office after waiting, reopened after closing.
REQUESTER_MOVES = {
    TicketState.IN_ATTESA: (TicketState.IN_CARICO, "risposta del richiedente"),
    TicketState.CHIUSA: (TicketState.APERTA, "riaperta dal richiedente"),
}
BODY_LIMIT = 200_000  # characters of body text kept on the ticket; the archive has the rest


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
    """One message being recorded, as every outcome action sees it, with the state of its batch."""

    w: TicketWriter
    mailbox: Mailbox
    inbound: InboundMessage
    raw: bytes  # the bytes archived under inbound.archive_ref, already in hand
    analysis: Analysis
    received_at: datetime
    now: datetime
    batch: BatchIndex

    @property
    def session(self) -> Session:
        return self.w.session


class Outcomes:
    """One method per routing action; each records the outcome on the inbound row and returns whether
    mail was put in the outbox."""

    def __init__(
        self,
        config: Config,
        archive: RawArchive,
        tickets: TicketService,
        context: ContextBuilder,
        conversation: Conversation,
    ) -> None:
        self.config = config
        self.archive = archive
        self.tickets = tickets
        self.context = context
        self.conversation = conversation
        self._actions = {
            "open_ticket": self._open,
            "append": self._append,
            "reject": self._reject,
            "ignore": self._ignore,
            "forward": self._forward,
            "quarantine": self._quarantine,
            "reply": self._staff_reply,
            "status": self._status,
        }

    def record(self, a: Arrival) -> bool:
        """Record the arrival's outcome; True if mail was put in the outbox."""
        action = self._actions.get(a.analysis.decision.action, self._quarantine)
        mailed = action(a)
        if a.analysis.pec is not None and a.analysis.pec.kind == "non_verificata":
            self._alert_unverified_pec(a)
        return mailed

    # -- actions ------------------------------------------------------------------------------

    def _open(self, a: Arrival, *, linked_to: str | None = None) -> bool:
        d = a.analysis.decision
        msg = a.analysis.effective or a.analysis.envelope
        assert msg is not None
        cls = a.analysis.classification
        pec = a.analysis.pec
        ticket = self.tickets.open(
            a.w,
            NewTicket(
                office=a.mailbox.office,
                mailbox=a.mailbox.id,
                requester=a.analysis.requester,
                requester_name=msg.sender_name,
                subject=msg.subject,
                received_at=a.received_at,
                queue=d.queue,
                assignee=d.assignees[0] if d.assignees else None,
                codici_fiscali=tuple(cls.codici_fiscali) if cls is not None else (),
                classification=json_safe(cls.to_dict()) if cls is not None else None,
                tags=d.tags,
                priority=d.priority,
                sla_policy=d.sla,
                pec_identificativo=pec.identificativo if pec is not None else None,
                linked_to=linked_to or a.analysis.linked_to,
            ),
            now=a.now,
        )
        # no flush: the batch's single flush fills every key
        self._file_incoming(a, ticket, "opened")
        if a.analysis.envelope is not None and a.analysis.envelope is not msg and a.analysis.envelope.message_id:
            # Replies may quote the PEC envelope's id rather than the inner message's.
            a.w.message(
                ticket.id,
                direction="note",
                at=a.received_at,
                author="sistema",
                subject="busta PEC",
                body="",
                message_id=a.analysis.envelope.message_id,
                inbound=a.inbound,
            )
        if ticket.linked_to:
            a.w.event(
                ticket.linked_to,
                "pratica_collegata",
                actor=a.analysis.requester or "sistema",
                at=a.now,
                note=f"nuova pratica {ticket.id} collegata a questa",
                data={"pratica": ticket.id},
            )
        mailed = self.conversation.notify_workers(a, ticket, first=True)
        if a.analysis.suppress_ack or self._ack_budget_exhausted(a, a.analysis.requester):
            a.w.event(
                ticket.id,
                "conferma_non_inviata",
                actor="sistema",
                at=a.now,
                note="il mittente non riceve risposte automatiche (limite, richiesta o ufficio interno)",
            )
            return mailed
        for template in d.templates or (ACK_TEMPLATE,):
            self._send(a, template, ticket)
        return True

    def _file_incoming(self, a: Arrival, ticket: Ticket, outcome: str) -> None:
        """The message as an incoming message of the ticket, and the inbound row pointing at it."""
        msg = a.analysis.effective or a.analysis.envelope
        assert msg is not None
        a.inbound.outcome = outcome
        a.inbound.ticket = ticket
        a.w.message(
            ticket.id,
            direction="in",
            at=a.received_at,
            author=a.analysis.requester,
            subject=msg.subject,
            body=msg.text_body[:BODY_LIMIT],
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
        from_requester = a.analysis.requester == ticket.requester
        if ticket.state == TicketState.CHIUSA and from_requester and not self.conversation.may_reopen(ticket, a.now):
            # Closed too long ago: a new ticket, linked to the old one.
            return self._open(a, linked_to=ticket.id)
        self._file_incoming(a, ticket, "appended")
        cls = a.analysis.classification
        kind = "sollecito" if cls is not None and cls.sollecito else "messaggio"
        a.w.event(
            ticket.id,
            kind,
            actor=a.analysis.requester,
            at=a.now,
            note=f"da {a.mailbox.id}",
            data={"archivio": a.inbound.archive_ref},
        )
        ticket.updated_at = a.now
        mailed = False
        if from_requester:
            move = REQUESTER_MOVES.get(TicketState(ticket.state))
            if move is not None:
                self.tickets.change_state(a.w, ticket, move[0], actor=a.analysis.requester, at=a.now, note=move[1])
            mailed = self.conversation.notify_workers(a, ticket, first=False)
        for template in d.templates:
            self._send(a, template, ticket)
            mailed = True
        return mailed

    def _staff_reply(self, a: Arrival) -> bool:
        target = a.analysis.decision.target_ticket
        ticket = a.session.get(Ticket, target) if target else None
        if ticket is None:
            return self._quarantine(a)
        a.inbound.outcome = "appended"
        a.inbound.ticket = ticket
        return self.conversation.staff_reply(a, ticket)

    def _status(self, a: Arrival) -> bool:
        a.inbound.outcome = "ignored"
        target = a.analysis.decision.target_ticket
        ticket = a.session.get(Ticket, target) if target else None
        if a.analysis.automatic or not a.analysis.requester or self._ack_budget_exhausted(a, a.analysis.requester):
            a.inbound.detail = "nessuna risposta: mittente automatico, assente o oltre il limite giornaliero"
            return False
        own = ticket is not None and ticket.requester == a.analysis.requester
        if own and ticket is not None:
            a.inbound.ticket = ticket
            a.w.event(
                ticket.id, "richiesta_stato", actor=a.analysis.requester, at=a.now, note="stato richiesto per email"
            )
        extra = {"stato_richiesto": self.conversation.status_view(a.session, ticket) if own and ticket else None}
        self._send(a, STATUS_TEMPLATE, ticket if own else None, extra=extra)
        return True

    def _reject(self, a: Arrival) -> bool:
        a.inbound.outcome = "rejected"
        if a.analysis.automatic or not a.analysis.requester:
            a.inbound.detail = "nessuna risposta: mittente automatico o assente"
            return False
        if self._ack_budget_exhausted(a, a.analysis.requester):
            a.inbound.detail = "nessuna risposta: limite giornaliero di risposte automatiche"
            return False
        for template in a.analysis.decision.templates:
            self._send(a, template, None)
        return bool(a.analysis.decision.templates)

    def _ignore(self, a: Arrival) -> bool:
        a.inbound.outcome = "ignored"
        target = a.analysis.decision.target_ticket
        ticket = a.session.get(Ticket, target) if target else None
        if ticket is None:
            return False
        # e.g. a PEC receipt filed on the ticket it refers to, as proof of acceptance and delivery
        a.inbound.ticket = ticket
        pec = a.analysis.pec
        receipt = pec.receipt_type if pec is not None and pec.kind == "ricevuta" else None
        data: dict[str, Any] = {"archivio": a.inbound.archive_ref}
        if receipt and pec is not None:
            data.update(
                ricevuta=receipt,
                identificativo=pec.identificativo,
                riferimento=pec.riferimento_message_id,
                data=pec.data.isoformat() if pec.data else None,
            )
        a.w.event(
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
        referents = self.conversation.workers(ticket)
        if not referents:
            return False
        pec = a.analysis.pec
        ctx = self.context.for_arrival(a.analysis, a.mailbox, a.inbound.received_at, ticket)
        ctx["ricevuta"] = {"tipo": receipt, "errore": pec.errore_esteso if pec is not None else None}
        self.tickets.send(
            a.w,
            ticket,
            EmailRequest(
                mailbox_id=a.mailbox.id,
                to=tuple(p.address for p in referents),
                template=PEC_FAILURE_TEMPLATE,
                context=ctx,
                ticket_id=ticket.id,
                ticket=ticket,
                inbound=a.inbound,
            ),
            now=a.now,
        )
        return True

    def _alert_unverified_pec(self, a: Arrival) -> None:
        """Looks like PEC but does not verify: never genuine, and the admin must know (forgery or breakage)."""
        pec = a.analysis.pec
        assert pec is not None
        a.session.add(
            Alert(
                at=a.now,
                kind="pec_non_verificata",
                mailbox=a.mailbox.id,
                inbound=a.inbound,
                note=(
                    f"messaggio con aspetto di PEC ({pec.looks_like or '?'}) non verificato: "
                    f"{pec.failure or 'motivo sconosciuto'}; copia esatta in {a.inbound.archive_ref}"
                ),
            )
        )

    def _forward(self, a: Arrival) -> bool:
        a.inbound.outcome = "forwarded"
        d = a.analysis.decision
        if not d.forward_to:
            return False
        ctx = self.context.for_arrival(a.analysis, a.mailbox, a.inbound.received_at, None)
        self.tickets.send(
            a.w,
            None,
            EmailRequest(
                mailbox_id=a.mailbox.id,
                to=tuple(d.forward_to),
                template=FORWARD_TEMPLATE,
                context=ctx,
                inbound=a.inbound,
                # The recipient gets the message itself (a PEC with its envelope and signature).
                attached_message=a.raw,
                reply_to=a.analysis.requester or None,  # the recipient answers the sender directly
                hop=a.analysis.hop,
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
        speaker = a.analysis.speaker
        if a.inbound.reason == "mittente_sospetto" and speaker is not None:
            a.inbound.detail = speaker.reason
            cited = a.analysis.reply_to_ticket
            note = (
                f"messaggio che si presenta come {speaker.role.value} ({mask(a.analysis.requester)}) "
                f"non autenticato: {speaker.reason}; nulla è stato inoltrato; copia esatta in {a.inbound.archive_ref}"
            )
            a.session.add(
                Alert(
                    at=a.now,
                    kind="mittente_sospetto",
                    mailbox=a.mailbox.id,
                    ticket_id=cited,
                    inbound=a.inbound,
                    note=note,
                )
            )
            if cited and a.session.get(Ticket, cited) is not None:
                a.w.event(cited, "risposta_sospetta", actor="sistema", at=a.now, note=note)
            return False
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

    def _ack_budget_exhausted(self, a: Arrival, requester: str) -> bool:
        if not requester:
            return True
        known = a.batch
        recent = known.recent_by_sender if known.deferred else None
        if recent is not None and requester in recent:
            count = recent[requester]
        else:
            count = recent_message_counts(a.session, {requester}, a.now - ACK_WINDOW)[requester]
        if known.deferred:
            count += known.requesters.get(requester, 0)  # this batch's rows are not flushed yet
        # the current message is already counted
        return int(count) > self.config.outbound.max_acks_per_sender_per_day

    def _send(self, a: Arrival, template: str, ticket: Ticket | None, extra: dict[str, Any] | None = None) -> None:
        msg = a.analysis.effective or a.analysis.envelope
        ctx = self.context.for_arrival(a.analysis, a.mailbox, a.inbound.received_at, ticket)
        ctx.update(extra or {})
        self.tickets.send(
            a.w,
            ticket,
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
                hop=a.analysis.hop,
            ),
            now=a.now,
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
