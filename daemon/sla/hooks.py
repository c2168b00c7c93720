"""The clock follows the ticket: started when a ticket opens, paused while it waits for the requester
(the waiting policy runs meanwhile), resumed with the term moved, stopped when the office answers or
the ticket closes, restarted when a closed ticket is reopened.

`SlaClockListener` is registered on the ticket service by the composition root and runs inside the
transaction of the change. Nothing here flushes: new rows are tied to the ticket object, not its id.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.core.tickets import TicketWriter
from daemon.outbound.templates import data_it
from daemon.sla import SlaRuntime
from daemon.sla.clock import due_for, next_pending, plan, resume_due, step_time
from daemon.sla.policies import Policy
from storage.models import Ticket, TicketState
from storage.models_sla import SlaClock

__all__ = [
    "RESPONSE",
    "WAIT",
    "SlaClockListener",
    "clocks_of",
    "ensure_clock",
    "start_clock",
]

log = logging.getLogger("sportello.sla")

RESPONSE = "risposta"
WAIT = "attesa"
ACTOR = "sla"


class SlaClockListener:
    """The ticket service's listener that keeps each ticket's clocks."""

    def __init__(self, runtime: SlaRuntime) -> None:
        self.runtime = runtime

    def ticket_opened(self, w: TicketWriter, ticket: Ticket, now: datetime) -> None:
        runtime = self.runtime
        policy = _ticket_policy(runtime, ticket)
        if not ticket.sla_policy:
            ticket.sla_policy = policy.id  # the default policy, named on the ticket
        clock = SlaClock(ticket=ticket, track=RESPONSE, cycle=1, paused_days=0)
        w.session.add(clock)
        start_clock(runtime, clock, ticket, policy, ticket.received_at, now)

    def ticket_answered(self, w: TicketWriter, ticket: Ticket, at: datetime) -> None:
        """The office answered: the office-late ladder stops (the waiting ladder is the state's business)."""
        main = clocks_of(w.session, ticket).get(RESPONSE)
        if main is not None and main.stopped_at is None:
            stop_clock(self.runtime, main, ticket, at, "risposta")
            w.event(ticket.id, "sla_risposta", actor=ACTOR, at=at, note="risposta data: conteggio del termine concluso")

    def state_changed(self, w: TicketWriter, ticket: Ticket, old: TicketState, new: TicketState, at: datetime) -> None:
        runtime = self.runtime
        session = w.session
        clocks = clocks_of(session, ticket)
        main = clocks.get(RESPONSE)
        wait = clocks.get(WAIT)
        if new == "chiusa":
            for clock in (main, wait):
                if clock is not None and clock.stopped_at is None:
                    stop_clock(runtime, clock, ticket, at, "chiusa")
            return
        if main is None:
            main = ensure_clock(session, runtime, ticket, at)
        elif old == "chiusa":
            # A closed ticket reopened (the requester wrote again): a new term from now.
            main.cycle += 1
            ticket.answered_at = None
            start_clock(runtime, main, ticket, _ticket_policy(runtime, ticket), at, at)
            w.event(ticket.id, "sla_riavvio", actor=ACTOR, at=at, note=_due_note(runtime, ticket, main))
        policy = runtime.policies.for_ticket(main.policy)
        if new == "in_attesa" and old != "in_attesa":
            if policy.pause_while_waiting and main.stopped_at is None and main.paused_at is None:
                main.paused_at = at
                main.next_at = None
                main.updated_at = at
                w.event(ticket.id, "sla_pausa", actor=ACTOR, at=at, note="conteggio sospeso: in attesa del richiedente")
            waiting = runtime.policies.get(policy.while_waiting)
            if waiting is not None:
                if wait is None:
                    wait = SlaClock(ticket=ticket, track=WAIT, cycle=1, paused_days=0)
                    session.add(wait)
                else:
                    wait.cycle += 1
                start_clock(runtime, wait, ticket, waiting, at, at)
        elif old == "in_attesa" and new != "in_attesa":
            if wait is not None and wait.stopped_at is None:
                stop_clock(runtime, wait, ticket, at, "fine_attesa")
            if main.paused_at is not None:
                resume_clock(w, runtime, main, ticket, at)


# -- clock operations -------------------------------------------------------------------------


def start_clock(
    runtime: SlaRuntime, clock: SlaClock, ticket: Ticket, policy: Policy, started_at: datetime, now: datetime
) -> None:
    """(Re)start `clock` under `policy` from `started_at`: term, first step, the ticket's due date."""
    cal = runtime.calendar(ticket.office)
    started_at = started_at.astimezone(UTC)
    due = due_for(cal, started_at, policy)
    clock.policy = policy.id
    clock.started_at = started_at
    clock.due_at = due
    clock.paused_at = None
    clock.paused_days = 0
    clock.stopped_at = None
    clock.stop_reason = None
    clock.updated_at = now
    first = next_pending(plan(cal, policy, started_at, due), ())
    clock.next_step = first.step.id if first else None
    clock.next_at = first.at if first else None
    if clock.track == RESPONSE:
        ticket.due_at = due


def stop_clock(runtime: SlaRuntime, clock: SlaClock, ticket: Ticket, at: datetime, reason: str) -> None:
    if clock.paused_at is not None:
        cal = runtime.calendar(ticket.office)
        clock.paused_days += max(0, cal.count_working_days(cal.local_date(clock.paused_at), cal.local_date(at)))
        clock.paused_at = None
    clock.stopped_at = at
    clock.stop_reason = reason
    clock.next_at = None
    clock.updated_at = at


def resume_clock(w: TicketWriter, runtime: SlaRuntime, clock: SlaClock, ticket: Ticket, at: datetime) -> None:
    """End a pause: the term moves by the working days it lasted, and so does the next step."""
    assert clock.paused_at is not None
    cal = runtime.calendar(ticket.office)
    clock.due_at, days = resume_due(cal, clock.due_at, clock.paused_at, at)
    clock.paused_days += days
    clock.paused_at = None
    clock.updated_at = at
    if clock.track == RESPONSE:
        ticket.due_at = clock.due_at
    policy = runtime.policies.for_ticket(clock.policy)
    step = policy.step(clock.next_step or "")
    clock.next_at = step_time(cal, step, clock.started_at, clock.due_at, clock.paused_days) if step else None
    w.event(
        ticket.id,
        "sla_ripresa",
        actor=ACTOR,
        at=at,
        note=f"conteggio ripreso dopo {days} giorni lavorativi di attesa; {_due_note(runtime, ticket, clock)}",
        data={"giorni_attesa": days, "scadenza": clock.due_at.isoformat()},
    )


def ensure_clock(session: Session, runtime: SlaRuntime, ticket: Ticket, now: datetime) -> SlaClock:
    """A clock for a ticket opened before the SLA component (or without it): from its receipt."""
    clock = SlaClock(ticket=ticket, track=RESPONSE, cycle=1, paused_days=0)
    session.add(clock)
    start_clock(runtime, clock, ticket, _ticket_policy(runtime, ticket), ticket.received_at, now)
    return clock


def clocks_of(session: Session, ticket: Ticket) -> dict[str, SlaClock]:
    """The ticket's clocks by track, including ones added in this (unflushed) transaction."""
    found: dict[str, SlaClock] = {}
    for obj in session.new:
        if isinstance(obj, SlaClock) and obj.ticket is ticket:
            found[obj.track] = obj
    if ticket not in session.new:
        q = select(SlaClock).where(SlaClock.ticket_id == ticket.id)
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        with session.no_autoflush:
            for clock in session.execute(q).scalars():
                found.setdefault(clock.track, clock)
    return found


def _ticket_policy(runtime: SlaRuntime, ticket: Ticket) -> Policy:
    policies = runtime.policies
    policy = policies.for_ticket(ticket.sla_policy)
    if ticket.sla_policy and ticket.sla_policy not in policies:
        log.warning("pratica %s: politica SLA %s sconosciuta, si applica %s", ticket.id, ticket.sla_policy, policy.id)
    return policy


def _due_note(runtime: SlaRuntime, ticket: Ticket, clock: SlaClock) -> str:
    return f"scadenza {data_it(clock.due_at.astimezone(runtime.calendar(ticket.office).tz), with_time=False)}"
