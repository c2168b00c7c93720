"""The ticket service: protocol-like ids, opening, appending, state changes, audit events.

Functions take an open SQLAlchemy session and never commit: the caller's transaction decides.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import TICKET_STATES, InboundMessage, Outbox, Ticket, TicketCounter, TicketEvent, TicketMessage

__all__ = [
    "DEFERRED_ROWS",
    "TICKET_ID_RE",
    "DeferredRows",
    "NewTicket",
    "add_event",
    "add_message",
    "allocate_ticket_id",
    "change_state",
    "format_ticket_id",
    "open_ticket",
    "state_hooks",
]

TICKET_ID_RE = re.compile(r"\b([A-Z]{2,4})-(\d{4})-(\d{6})\b")

# Called as hook(session, ticket, old_state, new_state, at); the SLA clock registers here.
state_hooks: list[Callable[[Session, Ticket, str, str, datetime], None]] = []


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


def open_ticket(
    session: Session,
    new: NewTicket,
    *,
    now: datetime,
    actor: str = "sistema",
    numbers: TicketNumbers | None = None,
) -> Ticket:
    tz_year = new.received_at.year
    if numbers is not None:
        ticket_id, number = numbers.allocate(session, new.office, tz_year)
    else:
        ticket_id, number = allocate_ticket_id(session, new.office, tz_year)
    ticket = Ticket(
        id=ticket_id,
        office=new.office,
        year=tz_year,
        number=number,
        state="aperta",
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
    )
    session.add(ticket)
    add_event(session, ticket_id, "aperta", actor=actor, at=now, note=f"coda {new.queue or '-'}")
    return ticket


DEFERRED_ROWS = "sportello.deferred_rows"  # key of a DeferredRows in Session.info


class DeferredRows:
    """Rows nobody reads back in the transaction that adds them (audit events, ticket messages), kept
    as plain values and written after the batch's flush as one multi-row INSERT per table: the ORM
    unit of work costs more than the insert itself at intake speed. The pipeline installs one in
    `Session.info[DEFERRED_ROWS]` for a batch recorded in one piece; without it rows go through the ORM.
    """

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.messages: list[tuple[dict[str, Any], InboundMessage | None, Outbox | None]] = []

    def write(self, session: Session) -> None:
        """After the flush that gave the inbound and outbox rows their keys."""
        if self.messages:
            rows = []
            for values, inbound, outbox in self.messages:
                if inbound is not None:
                    values["inbound_id"] = inbound.id
                if outbox is not None:
                    values["outbox_id"] = outbox.id
                rows.append(values)
            session.execute(insert(_table(TicketMessage)), rows)
        if self.events:
            session.execute(insert(_table(TicketEvent)), self.events)
        self.messages.clear()
        self.events.clear()


def _table(model: type[TicketMessage] | type[TicketEvent]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def add_message(
    session: Session,
    ticket_id: str,
    *,
    direction: str,
    at: datetime,
    author: str,
    subject: str,
    body: str,
    message_id: str | None = None,
    inbound_id: int | None = None,
    outbox_id: int | None = None,
    inbound: InboundMessage | None = None,
    outbox: Outbox | None = None,
) -> None:
    deferred: DeferredRows | None = session.info.get(DEFERRED_ROWS)
    if deferred is not None:
        values = {
            "ticket_id": ticket_id,
            "direction": direction,
            "at": at,
            "author": author,
            "subject": subject,
            "body": body,
            "message_id": message_id,
            "inbound_id": inbound_id,
            "outbox_id": outbox_id,
        }
        deferred.messages.append((values, inbound, outbox))
        return
    msg = TicketMessage(
        ticket_id=ticket_id,
        direction=direction,
        at=at,
        author=author,
        subject=subject,
        body=body,
        message_id=message_id,
        inbound_id=inbound_id,
        outbox_id=outbox_id,
    )
    if inbound is not None:
        msg.inbound = inbound
    if outbox is not None:
        msg.outbox = outbox
    session.add(msg)


def add_event(
    session: Session,
    ticket_id: str,
    kind: str,
    *,
    actor: str,
    at: datetime,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    deferred: DeferredRows | None = session.info.get(DEFERRED_ROWS)
    if deferred is not None:
        values = {"ticket_id": ticket_id, "at": at, "actor": actor, "kind": kind, "note": note, "data": data}
        deferred.events.append(values)
        return
    session.add(TicketEvent(ticket_id=ticket_id, at=at, actor=actor, kind=kind, note=note, data=data))


def change_state(session: Session, ticket: Ticket, new_state: str, *, actor: str, at: datetime, note: str = "") -> None:
    if new_state not in TICKET_STATES:
        raise ValueError(f"stato sconosciuto: {new_state}")
    old = ticket.state
    if old == new_state:
        return
    ticket.state = new_state
    ticket.updated_at = at
    ticket.closed_at = at if new_state == "chiusa" else None
    add_event(session, ticket.id, "stato", actor=actor, at=at, note=note, data={"da": old, "a": new_state})
    for hook in state_hooks:
        hook(session, ticket, old, new_state, at)


def find_ticket(session: Session, ticket_id: str) -> Ticket | None:
    return session.get(Ticket, ticket_id.upper())


def ticket_for_message_id(session: Session, message_id: str) -> str | None:
    """The ticket a known Message-ID (inbound or sent by us) belongs to."""
    return session.execute(
        select(TicketMessage.ticket_id).where(TicketMessage.message_id == message_id).limit(1)
    ).scalar_one_or_none()
