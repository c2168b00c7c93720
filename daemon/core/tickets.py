"""The ticket service: every ticket's opening, state change, event, message and email goes through it.

Writes happen in the caller's transaction through a `TicketWriter`; nothing here commits. Components
that follow tickets (the SLA clock) register as listeners on the service the composition root builds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from daemon.config import Config
from daemon.conversation.tokens import ReplyTokens
from daemon.ops.logmask import mask
from daemon.outbound.outbox import EmailRequest, outbox_row
from daemon.outbound.templates import TemplateRenderer
from storage.models import (
    InboundMessage,
    Outbox,
    Ticket,
    TicketCounter,
    TicketEvent,
    TicketMessage,
    TicketState,
)

__all__ = [
    "TICKET_ID_RE",
    "NewTicket",
    "TicketListener",
    "TicketNumbers",
    "TicketService",
    "TicketWriter",
    "allocate_ticket_id",
    "format_ticket_id",
]

TICKET_ID_RE = re.compile(r"\b([A-Z]{2,4})-(\d{4})-(\d{6})\b")


def format_ticket_id(office: str, year: int, number: int) -> str:
    return f"{office}-{year:04d}-{number:06d}"


def allocate_ticket_id(session: Session, office: str, year: int) -> tuple[str, int]:
    """Next number for (office, year), atomic under concurrent writers on SQLite and PostgreSQL."""
    for _ in range(3):
        number = session.execute(
            update(TicketCounter)
            .where(TicketCounter.office == office, TicketCounter.year == year)
            .values(last=TicketCounter.last + 1)
            .returning(TicketCounter.last)
        ).scalar_one_or_none()
        if number is not None:
            return format_ticket_id(office, year, number), number
        try:
            with session.begin_nested():
                session.add(TicketCounter(office=office, year=year, last=1))
            return format_ticket_id(office, year, 1), 1
        except IntegrityError:
            continue  # another writer created the counter first
    raise RuntimeError("impossibile assegnare un numero di pratica")


class TicketNumbers:
    """Ticket numbers for one transaction: the counter row is updated (and so locked) once, numbers
    are handed out in memory, and `close()` writes the last one back before the commit."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, int], int] = {}

    def allocate(self, session: Session, office: str, year: int) -> tuple[str, int]:
        key = (office, year)
        if key in self._last:
            self._last[key] += 1
        else:
            self._last[key] = allocate_ticket_id(session, office, year)[1]
        number = self._last[key]
        return format_ticket_id(office, year, number), number

    def close(self, session: Session) -> None:
        for (office, year), last in self._last.items():
            session.execute(
                update(TicketCounter)
                .where(TicketCounter.office == office, TicketCounter.year == year)
                .values(last=last)
            )
        self._last.clear()


class TicketWriter:
    """The writes of one transaction to tickets. In bulk mode the rows nobody reads back in the same
    transaction (emails, events, ticket messages) are kept aside and written after the batch's flush
    with one executemany per table: at intake and sweep speed the ORM unit of work (and its INSERT ..
    RETURNING for each email) costs more than the insert. Otherwise they go through the session."""

    def __init__(self, session: Session, *, bulk: bool = False, numbers: TicketNumbers | None = None) -> None:
        self.session = session
        self.bulk = bulk
        self.numbers = numbers or TicketNumbers()
        self._events: list[dict[str, Any]] = []
        self._messages: list[tuple[dict[str, Any], InboundMessage | None, Outbox | None]] = []
        self._emails: list[Outbox] = []

    def email(self, row: Outbox) -> None:
        """An outbox row; in bulk mode its `id` is set by `write_buffered`."""
        if self.bulk:
            self._emails.append(row)
        else:
            self.session.add(row)

    def event(
        self,
        ticket_id: str,
        kind: str,
        *,
        actor: str,
        at: datetime,
        note: str = "",
        data: dict[str, Any] | None = None,
    ) -> None:
        values = {"ticket_id": ticket_id, "at": at, "actor": actor, "kind": kind, "note": note[:4000], "data": data}
        if self.bulk:
            self._events.append(values)
        else:
            self.session.add(TicketEvent(**values))

    def message(
        self,
        ticket_id: str,
        *,
        direction: str,
        at: datetime,
        author: str,
        subject: str,
        body: str,
        message_id: str | None = None,
        inbound: InboundMessage | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "ticket_id": ticket_id,
            "direction": direction,
            "at": at,
            "author": author,
            "subject": subject,
            "body": body,
            "message_id": message_id,
            "inbound_id": None,
            "outbox_id": None,
        }
        if self.bulk:
            self._messages.append((values, inbound, outbox))
            return
        msg = TicketMessage(**values)
        if inbound is not None:
            msg.inbound = inbound
        if outbox is not None:
            msg.outbox = outbox
        self.session.add(msg)

    def write_buffered(self) -> None:
        """Bulk mode: after the flush that gave the tickets and inbound rows their keys."""
        self.numbers.close(self.session)
        self.session.flush()
        if self._emails:
            self._write_emails()
        if self._messages:
            rows = []
            for values, inbound, outbox in self._messages:
                if inbound is not None:
                    values["inbound_id"] = inbound.id
                if outbox is not None:
                    values["outbox_id"] = outbox.id
                rows.append(values)
            self.session.execute(insert(_table(TicketMessage)), rows)
        if self._events:
            self.session.execute(insert(_table(TicketEvent)), self._events)
        self._messages.clear()
        self._events.clear()

    def _write_emails(self) -> None:
        rows = []
        for email in self._emails:
            values = {c: getattr(email, c) for c in _OUTBOX_COLUMNS}
            if email.inbound is not None:
                values["inbound_id"] = email.inbound.id
            if email.ticket is not None:
                values["ticket_id"] = email.ticket.id
            rows.append(values)
        self.session.execute(insert(_table(Outbox)), rows)
        wanted = [email.message_id for email in self._emails]
        ids = dict(
            self.session.execute(select(Outbox.message_id, Outbox.id).where(Outbox.message_id.in_(wanted))).all()
        )
        for email in self._emails:
            # The row objects stay outside the session: the key lets the caller refer to the email.
            email.id = ids[email.message_id]
        self._emails.clear()

    def discard(self) -> None:
        self._emails.clear()
        self._messages.clear()
        self._events.clear()


_OUTBOX_COLUMNS = tuple(c.key for c in Outbox.__table__.columns if c.key != "id")


def _table(model: type[TicketMessage] | type[TicketEvent] | type[Outbox]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


class TicketListener(Protocol):
    """Follows tickets (the SLA clock does): called inside the transaction of the change."""

    def ticket_opened(self, w: TicketWriter, ticket: Ticket, now: datetime) -> None: ...

    def state_changed(
        self, w: TicketWriter, ticket: Ticket, old: TicketState, new: TicketState, at: datetime
    ) -> None: ...

    def ticket_answered(self, w: TicketWriter, ticket: Ticket, at: datetime) -> None: ...


@dataclass(frozen=True)
class NewTicket:
    office: str
    mailbox: str
    requester: str
    requester_name: str
    subject: str
    received_at: datetime
    queue: str | None = None
    assignee: str | None = None
    codici_fiscali: tuple[str, ...] = ()
    classification: dict[str, Any] | None = None
    tags: tuple[str, ...] = ()
    priority: str | None = None
    sla_policy: str | None = None
    pec_identificativo: str | None = None
    linked_to: str | None = None


class TicketService:
    """One way in for every change of a ticket, as every change in Request Tracker goes through one
    transaction API: the state machine, the audit trail, the ticket's messages and its emails."""

    def __init__(self, config: Config, renderer: TemplateRenderer, tokens: ReplyTokens | None = None) -> None:
        self.config = config
        self.renderer = renderer
        self.tokens = tokens
        self._listeners: list[TicketListener] = []
        self._tz = ZoneInfo(config.calendar.timezone)

    def add_listener(self, listener: TicketListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    @property
    def listeners(self) -> tuple[TicketListener, ...]:
        return tuple(self._listeners)

    def open(self, w: TicketWriter, new: NewTicket, *, now: datetime, actor: str = "sistema") -> Ticket:
        # Protocol-like numbering follows the office's calendar year, not UTC's.
        year = new.received_at.astimezone(self._tz).year
        ticket_id, number = w.numbers.allocate(w.session, new.office, year)
        ticket = Ticket(
            id=ticket_id,
            office=new.office,
            year=year,
            number=number,
            state=TicketState.APERTA.value,
            mailbox=new.mailbox,
            queue=new.queue,
            assignee=new.assignee,
            requester=new.requester,
            requester_name=new.requester_name,
            subject=new.subject,
            codici_fiscali=list(new.codici_fiscali),
            classification=new.classification,
            tags=list(new.tags),
            priority=new.priority,
            sla_policy=new.sla_policy,
            pec_identificativo=new.pec_identificativo,
            received_at=new.received_at,
            created_at=now,
            updated_at=now,
            due_at=None,
            closed_at=None,
            linked_to=new.linked_to,
        )
        w.session.add(ticket)
        note = f"coda {new.queue or '-'}" + (f"; collegata a {new.linked_to}" if new.linked_to else "")
        w.event(ticket_id, "aperta", actor=actor, at=now, note=note)
        for listener in self._listeners:
            listener.ticket_opened(w, ticket, now)
        return ticket

    def change_state(
        self,
        w: TicketWriter,
        ticket: Ticket,
        new_state: TicketState | str,
        *,
        actor: str,
        at: datetime,
        note: str = "",
        outcome: str | None = None,
    ) -> bool:
        """Move the ticket; False if it already was in that state."""
        new = TicketState(new_state)
        old = TicketState(ticket.state)
        if old == new:
            return False
        ticket.state = new.value
        ticket.updated_at = at
        ticket.closed_at = at if new is TicketState.CHIUSA else None
        if new is TicketState.CHIUSA:
            ticket.close_outcome = outcome or ticket.close_outcome
        data: dict[str, Any] = {"da": old.value, "a": new.value}
        if outcome:
            data["esito"] = outcome
        w.event(ticket.id, "stato", actor=actor, at=at, note=note, data=data)
        for listener in self._listeners:
            listener.state_changed(w, ticket, old, new, at)
        return True

    def assign(self, w: TicketWriter, ticket: Ticket, person_id: str, *, actor: str, at: datetime) -> None:
        old = ticket.assignee
        ticket.assignee = person_id
        ticket.updated_at = at
        w.event(
            ticket.id,
            "assegnazione",
            actor=actor,
            at=at,
            note=f"{old or '-'} → {person_id}",
            data={"da": old, "a": person_id},
        )

    def move_queue(self, w: TicketWriter, ticket: Ticket, queue: str, *, actor: str, at: datetime) -> None:
        old = ticket.queue
        ticket.queue = queue
        ticket.assignee = None
        ticket.updated_at = at
        w.event(
            ticket.id, "inoltro_coda", actor=actor, at=at, note=f"{old or '-'} → {queue}", data={"da": old, "a": queue}
        )

    def amend(
        self, ticket: Ticket, *, at: datetime, priority: str | None = None, queue: str | None = None
    ) -> dict[str, str]:
        """Set priority and queue (an SLA step escalating); returns what changed, for the caller's event.
        Unlike `move_queue` the assignee keeps the ticket: an escalation raises it, nobody hands it over."""
        changes: dict[str, str] = {}
        if priority and ticket.priority != priority:
            ticket.priority = changes["priorita"] = priority
        if queue and ticket.queue != queue:
            ticket.queue = changes["coda"] = queue
        if changes:
            ticket.updated_at = at
        return changes

    def mark_answered(self, w: TicketWriter, ticket: Ticket, *, actor: str, at: datetime) -> None:
        """The office's first answer: the SLA counts it as answered (listeners stop the office clock)."""
        if ticket.answered_at is not None:
            return
        ticket.answered_at = at
        w.event(ticket.id, "prima_risposta", actor=actor, at=at, note="prima risposta dell'ufficio al richiedente")
        for listener in self._listeners:
            listener.ticket_answered(w, ticket, at)

    def send(
        self,
        w: TicketWriter,
        ticket: Ticket | None,
        request: EmailRequest,
        *,
        now: datetime,
        actor: str = "sistema",
        body: str = "",
        note: str | None = None,
        record_event: bool = True,
    ) -> Outbox:
        """Put an email in the outbox; about a ticket, also file it on the ticket and note it (unless the
        caller's own event names it: `record_event=False`)."""
        row = outbox_row(self.config, self.renderer, request, now=now, tokens=self.tokens)
        w.email(row)
        if ticket is not None:
            w.message(
                ticket.id,
                direction="out",
                at=now,
                author=row.sender,
                subject=row.subject,
                body=body,
                message_id=row.message_id,
                outbox=row,
            )
            if not record_event:
                return row
            recipients = ", ".join(mask(a) for a in (*request.to, *request.cc))
            w.event(
                ticket.id,
                "email_in_uscita",
                actor=actor,
                at=now,
                note=note or f"{request.template} a {recipients}",
                data={"message_id": row.message_id, "modello": request.template, "a": list(request.to)},
            )
        return row
