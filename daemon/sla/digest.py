"""The daily digest: on working days at the opening hour, each referent gets the list of their open
tickets (assigned to them, and the unassigned ones of their offices), ordered by due date.

One digest per person and day, recorded in `sla_digests` in the same transaction as its outbox row:
never twice, whatever the restarts. A daemon that was down at the opening hour sends the day's digest
when it starts again (once, not once per missed day); on a database that never sent one (a fresh
install) the first digest is the next morning's.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from daemon.config import Config, Mailbox, Person
from daemon.outbound.outbox import EmailRequest, outbox_row
from daemon.sla import SlaRuntime
from daemon.sla.clock import working_days_late
from storage.db import SessionFactory
from storage.models import OPEN_STATES, Ticket
from storage.models_sla import SlaDigest

__all__ = ["DIGEST_ROLE", "DIGEST_TEMPLATE", "send_digests"]

log = logging.getLogger("sportello.sla")

DIGEST_ROLE = "referente"
DIGEST_TEMPLATE = "sla_riepilogo"
DIGEST_LIMIT = 300  # tickets listed in one email; the count says how many there are in all


def send_digests(runtime: SlaRuntime, session_factory: SessionFactory, now: datetime, *, catch_up: bool = False) -> int:
    """Send today's digests not sent yet, if today is a working day past the opening hour.

    `catch_up`: a start-up run; it sends only if digests were sent before on this database.
    Returns the number of digests sent."""
    config = runtime.config
    if catch_up:
        with session_factory() as session:
            if session.execute(select(SlaDigest.id).limit(1)).first() is None:
                return 0
    sent = 0
    for person in config.people:
        if DIGEST_ROLE not in person.roles:
            continue
        office = person.offices[0] if person.offices else None
        cal = runtime.calendar(office)
        today = cal.local_date(now)
        if not cal.is_working_day(today) or now < cal.opening(today):
            continue
        try:
            with session_factory() as session, session.begin():
                done = session.execute(
                    select(SlaDigest.id).where(SlaDigest.person == person.id, SlaDigest.day == today)
                ).first()
                if done is not None:
                    continue
                sent += _one(session, runtime, person, today, now)
        except IntegrityError:  # another daemon on the same database sent it first
            log.info("riepilogo di %s per il %s già inviato da un'altra istanza", person.id, today)
    if sent:
        log.info("riepiloghi giornalieri inviati: %d", sent)
    return sent


def _one(session: Session, runtime: SlaRuntime, person: Person, today: date, now: datetime) -> int:
    config = runtime.config
    mine = or_(
        Ticket.assignee == person.id,
        and_(Ticket.assignee.is_(None), Ticket.office.in_(person.offices or ("-",))),
    )
    where = (Ticket.state.in_(OPEN_STATES), mine)
    total = int(session.execute(select(func.count()).select_from(Ticket).where(*where)).scalar_one())
    rows = list(
        session.execute(
            select(Ticket).where(*where).order_by(Ticket.due_at.is_(None), Ticket.due_at, Ticket.id).limit(DIGEST_LIMIT)
        ).scalars()
    )
    outbox = None
    if rows:
        box = _digest_mailbox(config, person)
        cal = runtime.calendar(person.offices[0] if person.offices else None)
        tickets = [
            {
                "id": t.id,
                "oggetto": t.subject,
                "richiedente": t.requester,
                "stato": t.state,
                "coda": t.queue,
                "priorita": t.priority,
                "ricevuta_il": t.received_at,
                "scadenza": t.due_at,
                "scaduta": t.due_at is not None and t.due_at < now and t.state != "in_attesa",
                "giorni_ritardo": working_days_late(cal, t.due_at, now) if t.due_at else 0,
                "giorni_residui": max(0, cal.count_working_days(cal.local_date(now), cal.local_date(t.due_at)))
                if t.due_at
                else None,
                "assegnata": t.assignee == person.id,
            }
            for t in rows
        ]
        context = {
            "persona": {"id": person.id, "nome": person.name, "indirizzo": person.address},
            "oggi": now,
            "oggi_breve": today.strftime("%d/%m/%Y"),
            "pratiche": tickets,
            "totale": total,
            "scadute": sum(1 for t in tickets if t["scaduta"]),
            "elencate": len(tickets),
            "casella": runtime.context.mailbox(box),
        }
        outbox = outbox_row(
            config,
            runtime.renderer,
            EmailRequest(mailbox_id=box.id, to=(person.address,), template=DIGEST_TEMPLATE, context=context),
            now=now,
            tokens=runtime.tokens,
        )
        session.add(outbox)
    session.add(SlaDigest(person=person.id, day=today, sent_at=now, tickets=total, outbox=outbox))
    return 1 if outbox is not None else 0


def _digest_mailbox(config: Config, person: Person) -> Mailbox:
    """The first active ordinary mailbox of the person's office: digests come from there."""
    boxes = [m for m in config.mailboxes if m.office in person.offices and m.status == "attiva"]
    ordinary = [m for m in boxes if m.kind == "ordinaria"]
    return (ordinary or boxes or list(config.mailboxes))[0]
