"""The conversation around a ticket, in the database: notices to the people who work it, a referent's
reply relayed to the requester (new text only, from the institutional address), commands by mail,
notices to the requester at each state change, and status by email."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.config import Config, Person
from daemon.conversation.commands import parse_commands
from daemon.conversation.quotes import new_text
from daemon.conversation.tokens import ReplyTokens
from daemon.core.context import ContextBuilder
from daemon.core.tickets import TicketService, TicketWriter
from daemon.mail.message import safe_filename
from daemon.ops.logmask import mask
from daemon.outbound.compose import OutgoingAttachment
from daemon.outbound.outbox import EmailRequest
from daemon.workcalendar import WorkingCalendar
from storage.archive import RawArchive
from storage.models import InboundMessage, Ticket, TicketMessage, TicketState

if TYPE_CHECKING:  # the outcomes call in here; their Arrival is only a type for us
    from daemon.core.outcomes import Arrival

__all__ = ["Conversation", "Plan", "plan_reply"]

NOTICE_TEMPLATE = "notifica_referente"
ERROR_TEMPLATE = "errore_comando"
ANSWER_TEMPLATE = "risposta_ufficio"
STATE_TEMPLATES = {
    TicketState.IN_CARICO: "notifica_in_carico",
    TicketState.IN_ATTESA: "notifica_in_attesa",
    TicketState.CHIUSA: "notifica_chiusura",
}
DEFAULT_OUTCOME = "risolta"
MAX_ATTACHMENT_BYTES = 20 * 2**20  # carried to the requester; larger ones stay in the archive


@dataclass(frozen=True)
class Plan:
    """What a referent's reply will do, decided before anything is written."""

    text: str  # the new text to relay ("" for none)
    note: str  # an internal note (never relayed)
    new_state: TicketState | None
    outcome: str | None  # esito of a closing
    assignee: Person | None
    queue: str | None
    forward_to: str | None  # one of our mailboxes: the ticket goes to another level
    errors: tuple[str, ...]
    commands: tuple[str, ...] = ()  # the commands' names, as written (for the audit trail)


def plan_reply(
    body: str,
    *,
    state: TicketState,
    authorised: bool,
    config: Config,
    queues: Collection[str],
) -> Plan:
    """Pure: the plan of a staff member's reply, or the errors that stop it (then nothing is done)."""
    parsed = parse_commands(body)
    errors = list(parsed.errors)
    if not authorised:
        errors.append("non risulta tra i referenti di questa pratica: la risposta non è stata inoltrata")
    names = {c.name: c for c in parsed.commands}
    new_state: TicketState | None = None
    outcome = None
    assignee = None
    queue = None
    forward_to = None
    note = ""
    text = parsed.text.strip()
    if "nota" in names:
        note, text = text, ""
    if "chiudi" in names:
        new_state = TicketState.CHIUSA
        outcome = names["chiudi"].argument.strip() or DEFAULT_OUTCOME
    elif "attesa" in names:
        new_state = TicketState.IN_ATTESA
        if not text:
            errors.append(
                "#attesa: scriva sotto il comando che cosa serve al richiedente (il testo gli sarà inoltrato)"
            )
    elif "incarico" in names or (text and state in (TicketState.APERTA, TicketState.IN_ATTESA)):
        new_state = TicketState.IN_CARICO
    if state == TicketState.CHIUSA and new_state is not TicketState.CHIUSA and (text or names):
        errors.append("la pratica è chiusa: per riaprirla deve scrivere il richiedente")
    if "assegna" in names:
        wanted = names["assegna"].argument.strip()
        assignee = config.person(wanted) or config.person_by_address(wanted)
        if assignee is None:
            errors.append(f"#assegna: persona sconosciuta «{wanted}» (indicare l'id o l'indirizzo di config.yaml)")
    if "inoltra" in names:
        wanted = names["inoltra"].argument.strip()
        box = next((m for m in config.mailboxes if wanted.lower() in (m.id, m.address.lower())), None)
        if box is not None:
            forward_to = box.id
        elif wanted in queues:
            queue = wanted
        else:
            known = ", ".join(sorted(queues))
            errors.append(f"#inoltra: coda o casella sconosciuta «{wanted}» (code: {known})")
    if not parsed.commands and not text:
        errors.append("la risposta non contiene testo nuovo né comandi")
    return Plan(text, note, new_state, outcome, assignee, queue, forward_to, tuple(errors), tuple(names))


class Conversation:
    def __init__(
        self,
        config: Config,
        tickets: TicketService,
        context: ContextBuilder,
        tokens: ReplyTokens,
        archive: RawArchive,
        calendars: dict[str, WorkingCalendar],
        queues: Callable[[], Collection[str]],
    ) -> None:
        self.config = config
        self.tickets = tickets
        self.context = context
        self.tokens = tokens
        self.archive = archive
        self.calendars = calendars
        self.queues = queues

    # -- who works a ticket ---------------------------------------------------------------------

    def workers(self, ticket: Ticket) -> list[Person]:
        """The assignee if any, else the office's referents."""
        person = self.config.person(ticket.assignee) if ticket.assignee else None
        if person is not None:
            return [person]
        return self.config.people_with_role("referente", ticket.office)

    def notify_workers(self, a: Arrival, ticket: Ticket, *, first: bool) -> bool:
        """A notice to each person who works the ticket, with the requester's message attached byte
        for byte; its Message-ID is a token bound to (ticket, person), so their reply can act."""
        people = self.workers(ticket)
        if not people or not self.config.conversation.notify_workers:
            return False
        msg = a.analysis.effective or a.analysis.envelope
        for person in people:
            ctx = self.context.for_ticket(
                ticket,
                persona={"id": person.id, "nome": person.name},
                nuova=first,
                testo=(msg.text_body if msg else "")[:20000],
                mittente=a.analysis.requester,
                data_ricezione=a.received_at,
            )
            self._to_person(a.w, ticket, person, NOTICE_TEMPLATE, ctx, a.now, attached=a.raw)
        return True

    # -- a staff member's reply -----------------------------------------------------------------

    def staff_reply(self, a: Arrival, ticket: Ticket) -> bool:
        speaker = a.analysis.speaker
        msg = a.analysis.effective or a.analysis.envelope
        assert speaker is not None and msg is not None
        person = self.config.person(speaker.person_id or "")
        assert person is not None
        body = new_text(msg.text_body, msg.html_body)
        plan = plan_reply(
            body,
            state=TicketState(ticket.state),
            authorised=speaker.acts_as_referent,
            config=self.config,
            queues=self.queues(),
        )
        w, now, actor = a.w, a.now, person.address
        w.message(
            ticket.id,
            direction="note",
            at=a.received_at,
            author=actor,
            subject=msg.subject,
            body=body,
            message_id=msg.message_id,
            inbound=a.inbound,
        )
        if plan.errors:
            w.event(ticket.id, "comando_rifiutato", actor=actor, at=now, note="; ".join(plan.errors))
            ctx = self.context.for_ticket(ticket, persona={"id": person.id, "nome": person.name}, errori=plan.errors)
            self._to_person(w, ticket, person, ERROR_TEMPLATE, ctx, now, in_reply_to=msg.message_id)
            return True
        commands = ", ".join(f"#{c}" for c in plan.commands)
        w.event(
            ticket.id,
            "risposta_referente",
            actor=actor,
            at=now,
            note=commands or "risposta",
            data={"comandi": commands},
        )
        if plan.note:
            w.message(ticket.id, direction="note", at=now, author=actor, subject="nota interna", body=plan.note)
            w.event(ticket.id, "nota", actor=actor, at=now, note=plan.note[:500])
        mailed = False
        if plan.assignee is not None:
            self.tickets.assign(w, ticket, plan.assignee.id, actor=actor, at=now)
            mailed |= self._notice_after_move(a, ticket)
        if plan.queue is not None:
            self.tickets.move_queue(w, ticket, plan.queue, actor=actor, at=now)
            mailed |= self._notice_after_move(a, ticket)
        if plan.forward_to is not None:
            mailed |= self._escalate(a, ticket, plan.forward_to, actor)
        changed = plan.new_state is not None and self.tickets.change_state(
            w, ticket, plan.new_state, actor=actor, at=now, note=commands, outcome=plan.outcome
        )
        if plan.text or changed:
            template = STATE_TEMPLATES[plan.new_state] if changed and plan.new_state else ANSWER_TEMPLATE
            self._to_requester(a, ticket, template, plan.text, actor)
            mailed = True
            if plan.text and plan.new_state is not TicketState.IN_ATTESA or plan.new_state is TicketState.CHIUSA:
                self.tickets.mark_answered(w, ticket, actor=actor, at=now)
        return mailed

    def _notice_after_move(self, a: Arrival, ticket: Ticket) -> bool:
        for person in self.workers(ticket):
            ctx = self.context.for_ticket(ticket, persona={"id": person.id, "nome": person.name}, nuova=True, testo="")
            self._to_person(a.w, ticket, person, NOTICE_TEMPLATE, ctx, a.now)
        return True

    def _escalate(self, a: Arrival, ticket: Ticket, mailbox_id: str, actor: str) -> bool:
        """The ticket goes to another level we also read: it arrives there as work, linked to this one."""
        target = self.config.mailbox(mailbox_id)
        ctx = self.context.for_ticket(ticket, destinazione={"indirizzo": target.address, "nome": target.name})
        first = self._first_incoming(a.session, ticket.id)
        self.tickets.send(
            a.w,
            ticket,
            EmailRequest(
                mailbox_id=ticket.mailbox,
                to=(target.address,),
                template="inoltro_livello",
                context=ctx,
                ticket_id=ticket.id,
                ticket=ticket,
                attached_message=first,
                hop=a.analysis.hop,
            ),
            now=a.now,
            actor=actor,
            note=f"pratica inoltrata a {target.address}",
        )
        return True

    def _to_requester(self, a: Arrival, ticket: Ticket, template: str, text: str, actor: str) -> None:
        last_in = self._last_incoming_id(a.session, ticket)
        attachments = _attachments(a.raw) if text else ()
        ctx = self.context.for_ticket(ticket, risposta=text)
        self.tickets.send(
            a.w,
            ticket,
            EmailRequest(
                mailbox_id=ticket.mailbox,
                to=(ticket.requester,),
                template=template,
                context=ctx,
                ticket_id=ticket.id,
                ticket=ticket,
                inbound=a.inbound,
                in_reply_to=last_in,
                references=(last_in,) if last_in else (),
                attachments=attachments,
                automatic=False,
                hop=a.analysis.hop,
            ),
            now=a.now,
            actor=actor,
            body=text,
            note=f"{template} a {mask(ticket.requester)}"
            + (f" (testo di {mask(actor)}, {len(attachments)} allegati)" if text else ""),
        )

    def _to_person(
        self,
        w: TicketWriter,
        ticket: Ticket,
        person: Person,
        template: str,
        ctx: dict[str, Any],
        now: datetime,
        *,
        attached: bytes | None = None,
        in_reply_to: str | None = None,
    ) -> None:
        box = self.config.mailbox(ticket.mailbox)
        self.tickets.send(
            w,
            ticket,
            EmailRequest(
                mailbox_id=box.id,
                to=(person.address,),
                template=template,
                context=ctx,
                ticket_id=ticket.id,
                ticket=ticket,
                attached_message=attached,
                reply_to=box.address,  # never the citizen: the answer comes back to us
                message_id=self.tokens.message_id(ticket.id, person.address),
                in_reply_to=in_reply_to,
            ),
            now=now,
        )

    # -- requester side -------------------------------------------------------------------------

    def may_reopen(self, ticket: Ticket, now: datetime) -> bool:
        if ticket.closed_at is None:
            return True
        cal = self.calendars.get(ticket.office)
        if cal is None:
            return (now - ticket.closed_at).days <= self.config.conversation.reopen_working_days
        return cal.working_days_between(ticket.closed_at, now) <= self.config.conversation.reopen_working_days

    def status_view(self, session: Session, ticket: Ticket) -> dict[str, Any]:
        last = session.execute(
            select(TicketMessage)
            .where(TicketMessage.ticket_id == ticket.id, TicketMessage.direction == "out", TicketMessage.body != "")
            .order_by(TicketMessage.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        view = self.context.ticket(ticket)
        view["ultimo_aggiornamento"] = {"data": last.at, "testo": last.body[:4000]} if last is not None else None
        return view

    @staticmethod
    def _last_incoming_id(session: Session, ticket: Ticket) -> str | None:
        return session.execute(
            select(TicketMessage.message_id)
            .where(
                TicketMessage.ticket_id == ticket.id,
                TicketMessage.direction == "in",
                TicketMessage.author == ticket.requester,
                TicketMessage.message_id.is_not(None),
            )
            .order_by(TicketMessage.id.desc())
            .limit(1)
        ).scalar_one_or_none()

    def _first_incoming(self, session: Session, ticket_id: str) -> bytes | None:
        ref = session.execute(
            select(InboundMessage.archive_ref)
            .where(InboundMessage.ticket_id == ticket_id)
            .order_by(InboundMessage.id)
            .limit(1)
        ).scalar_one_or_none()
        return self.archive.load(ref) if ref else None


def _attachments(raw: bytes) -> tuple[OutgoingAttachment, ...]:
    """The files of a referent's message, to carry to the requester (names made safe, size bounded)."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    out: list[OutgoingAttachment] = []
    total = 0
    for part in parsed.walk():
        if part.is_multipart() or part.get_content_disposition() != "attachment":
            continue
        if part.get_content_type() == "message/rfc822":
            continue  # our own notice's original message, quoted back: never sent to the requester
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        total += len(data)
        if total > MAX_ATTACHMENT_BYTES:
            break
        out.append(OutgoingAttachment(safe_filename(part.get_filename()), part.get_content_type(), data))
    return tuple(out)
