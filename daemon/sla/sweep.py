"""The sweep: finds the clocks whose next step is due (indexed on `next_at`), runs their due steps
and moves each clock to its next step.

Each batch is one transaction: the step's run row (unique per clock, cycle, policy and step), its
ticket event, its outbox row and ticket message, the ticket's changes and the clock's new position
are committed together. A crash before the commit leaves the clock where it was and nothing sent;
after it, the step is recorded as done. So a step is sent once, even across crashes, restarts and
(on PostgreSQL, with SKIP LOCKED) several daemons. A daemon that was down catches up: every step
that fell due meanwhile runs once, in order, at the first sweep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from daemon.clock import utcnow
from daemon.config import Mailbox, Person
from daemon.conversation.speaker import requester_role
from daemon.core.tickets import TicketService, TicketWriter
from daemon.ops.logmask import mask
from daemon.outbound.outbox import EmailRequest
from daemon.sla import SlaRuntime
from daemon.sla.clock import PlannedStep, due_for, plan, working_days_late
from daemon.sla.hooks import ACTOR, RESPONSE, start_clock
from daemon.sla.policies import Policy
from storage.db import SessionFactory
from storage.models import Alert, Outbox, Ticket, TicketMessage
from storage.models_sla import SlaClock, SlaStepRun

__all__ = ["SlaSweeper", "SweepStats", "email_context", "sender_mailbox"]

log = logging.getLogger("sportello.sla")

RETRY_AFTER = timedelta(hours=1)  # a clock whose step fails is retried after this
_MAX_SWITCHES = 8  # policy hand-overs followed in one go (a guard against cycles)


@dataclass
class SweepStats:
    clocks: int = 0
    steps: int = 0
    emails: int = 0
    failures: int = 0
    seconds: float = 0.0


@dataclass
class _BatchData:
    tickets: dict[str, Ticket]
    done: dict[tuple[int, int, str], set[str]]
    origins: dict[str, str] = field(default_factory=dict)
    # The batch's step records, written after the flush that gives their emails a key (see _flush).
    runs: list[tuple[dict[str, Any], Outbox | None]] = field(default_factory=list)


class SlaSweeper:
    def __init__(
        self,
        runtime: SlaRuntime,
        session_factory: SessionFactory,
        tickets: TicketService,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_outbox: Callable[[], None] | None = None,
        batch: int | None = None,
    ) -> None:
        self.runtime = runtime
        self.tickets = tickets
        self.session_factory = session_factory
        self.clock = clock
        self.on_outbox = on_outbox
        self.batch = batch or runtime.settings.sweep_batch

    # -- the sweep ----------------------------------------------------------------------------

    def sweep(self, now: datetime | None = None) -> SweepStats:
        """Run every step due at `now` (default: the clock). Safe to call at any time, any number of times."""
        started = time.perf_counter()
        now = now or self.clock()
        self.runtime.store.refresh()
        stats = SweepStats()
        while True:
            try:
                count = self._batch(now, stats, isolate=False)
            except Exception:
                log.warning(
                    "scadenze: lotto non registrato in blocco; si riprova una pratica alla volta", exc_info=True
                )
                count = self._batch(now, stats, isolate=True)
            if count < self.batch:
                break
        stats.seconds = time.perf_counter() - started
        if stats.steps:
            log.info(
                "scadenze: %d passi eseguiti su %d pratiche, %d email in %.3f s",
                stats.steps,
                stats.clocks,
                stats.emails,
                stats.seconds,
            )
        if stats.emails and self.on_outbox is not None:
            self.on_outbox()
        return stats

    def _due(self, session: Session, now: datetime) -> list[SlaClock]:
        q = select(SlaClock).where(SlaClock.next_at <= now).order_by(SlaClock.next_at, SlaClock.id).limit(self.batch)
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        return list(session.execute(q).scalars())

    def _load(self, session: Session, clocks: list[SlaClock]) -> _BatchData:
        ticket_ids = list({c.ticket_id for c in clocks})
        tickets = {t.id: t for t in session.execute(select(Ticket).where(Ticket.id.in_(ticket_ids))).scalars()}
        done: dict[tuple[int, int, str], set[str]] = {}
        runs = select(SlaStepRun.clock_id, SlaStepRun.cycle, SlaStepRun.policy, SlaStepRun.step).where(
            SlaStepRun.clock_id.in_([c.id for c in clocks])
        )
        for clock_id, cycle, policy, step in session.execute(runs):
            done.setdefault((clock_id, cycle, policy), set()).add(step)
        origins: dict[str, str] = {}
        first_in = (
            select(TicketMessage.ticket_id, TicketMessage.message_id)
            .where(
                TicketMessage.ticket_id.in_(ticket_ids),
                TicketMessage.direction == "in",
                TicketMessage.message_id.is_not(None),
            )
            .order_by(TicketMessage.id)
        )
        for ticket_id, message_id in session.execute(first_in):
            if message_id:
                origins.setdefault(ticket_id, message_id)
        return _BatchData(tickets, done, origins)

    def _batch(self, now: datetime, stats: SweepStats, *, isolate: bool) -> int:
        with self.session_factory() as session, session.begin():
            clocks = self._due(session, now)
            if not clocks:
                return 0
            data = self._load(session, clocks)
            # Emails, events and ticket messages are buffered and written with one executemany per table:
            # at a thousand steps per sweep the ORM's unit of work would be most of the cost.
            w = TicketWriter(session, bulk=True)
            for clock in clocks:
                if not isolate:
                    self._process(w, clock, data, now, stats)
                    continue
                try:
                    with session.begin_nested():
                        self._process(w, clock, data, now, stats)
                        _flush(w, data)
                except Exception as exc:
                    w.discard()
                    data.runs.clear()
                    log.exception("scadenze: pratica %s non elaborata", clock.ticket_id)
                    stats.failures += 1
                    clock.next_at = now + RETRY_AFTER
                    note = f"passo SLA non eseguito ({type(exc).__name__}: {exc}); nuovo tentativo tra un'ora"
                    session.add(Alert(at=now, kind="sla_errore", ticket_id=clock.ticket_id, note=note[:2000]))
            _flush(w, data)
            return len(clocks)

    # -- one clock ----------------------------------------------------------------------------

    def _process(self, w: TicketWriter, clock: SlaClock, data: _BatchData, now: datetime, stats: SweepStats) -> None:
        stats.clocks += 1
        ticket = data.tickets.get(clock.ticket_id)
        if ticket is None or ticket.state == "chiusa" or clock.stopped_at is not None or clock.paused_at is not None:
            clock.next_at = None  # nothing can be due on it; the state hooks set it again if needed
            return
        runtime = self.runtime
        cal = runtime.calendar(ticket.office)
        for _ in range(_MAX_SWITCHES):
            policy = runtime.policies.for_ticket(clock.policy)
            done = data.done.setdefault((clock.id, clock.cycle, policy.id), set())
            planned = plan(cal, policy, clock.started_at, clock.due_at, clock.paused_days)
            handed_over = False
            pending = [p for p in planned if p.step.id not in done]
            clock.next_step = clock.next_at = None
            for i, p in enumerate(pending):
                if p.at > now:
                    clock.next_step, clock.next_at = p.step.id, p.at
                    break
                following = pending[i + 1] if i + 1 < len(pending) else None
                applied = self._run_step(w, clock, ticket, policy, p, following, data, now, stats)
                done.add(p.step.id)
                if clock.stopped_at is not None or clock.paused_at is not None or ticket.state == "chiusa":
                    clock.next_step = clock.next_at = None
                    clock.updated_at = now
                    return
                if applied and p.step.hand_over_to:
                    new_policy = runtime.policies.get(p.step.hand_over_to)
                    if new_policy is not None:
                        start_clock(runtime, clock, ticket, new_policy, now, now)
                        handed_over = True
                        break
            clock.updated_at = now
            if not handed_over:
                return
        log.error("pratica %s: troppi passaggi di politica in un colpo solo", ticket.id)

    def _run_step(
        self,
        w: TicketWriter,
        clock: SlaClock,
        ticket: Ticket,
        policy: Policy,
        planned: PlannedStep,
        following: PlannedStep | None,
        data: _BatchData,
        now: datetime,
        stats: SweepStats,
    ) -> bool:
        """Run one due step; False if its conditions did not hold (recorded as skipped)."""
        runtime = self.runtime
        config = runtime.config
        step = planned.step
        own = runtime.mailboxes.get(ticket.mailbox)
        facts = {
            "livello_casella": own.level if own is not None else "",
            "casella": ticket.mailbox,
            "coda": ticket.queue,
            "stato": ticket.state,
            "ufficio": ticket.office,
        }
        if "ruolo_richiedente" in step.conditions:  # a search of the people, only for steps that ask
            facts["ruolo_richiedente"] = requester_role(config, ticket.requester, ticket.tags or ())
        stats.steps += 1
        event: dict[str, Any] = {
            "politica": policy.id,
            "passo": step.id,
            "ciclo": clock.cycle,
            "conteggio": clock.track,
            "previsto": planned.at.isoformat(),
        }
        if not step.applies(facts):
            data.runs.append(
                (
                    _run(clock, ticket, policy.id, step.id, planned.at, now, "skipped", "condizioni non soddisfatte"),
                    None,
                )
            )
            return False
        outbox = None
        result = "done"
        note = step.description or step.id
        if step.template:
            recipients = runtime.recipients.resolve(step.to, step.cc, ticket)
            if recipients.to:
                origin = data.origins.get(ticket.id)
                text = _original_text(w.session, ticket.id) if step.quote_original else None
                context = email_context(runtime, ticket, clock, policy, planned, following, now, origin, text)
                to_requester = "richiedente" in step.to
                outbox = self.tickets.send(
                    w,
                    ticket,
                    EmailRequest(
                        mailbox_id=sender_mailbox(runtime, ticket).id,
                        to=recipients.to,
                        cc=recipients.cc,
                        template=step.template,
                        context=context,
                        ticket_id=ticket.id,
                        in_reply_to=origin if to_requester else None,
                        references=(origin,) if to_requester and origin else (),
                    ),
                    now=now,
                    actor=ACTOR,
                    record_event=False,  # the step's own event below names the email
                )
                stats.emails += 1
                result = "sent"
                note = f"{note}: {step.template} a {mask(', '.join(recipients.to))}"
                if recipients.cc:
                    note += f" (cc {mask(', '.join(recipients.cc))})"
                event.update(message_id=outbox.message_id, a=list(recipients.to), cc=list(recipients.cc))
            else:
                result = "no_recipients"
                note = f"{note}: nessun destinatario per {', '.join(step.to)}"
                w.session.add(
                    Alert(
                        at=now,
                        kind="sla_senza_destinatari",
                        mailbox=ticket.mailbox,
                        ticket_id=ticket.id,
                        note=f"passo {policy.id}/{step.id}: nessun destinatario per {', '.join(step.to)}",
                    )
                )
        changes = self.tickets.amend(ticket, priority=step.priority, queue=step.queue, at=now)
        if changes:
            event["modifiche"] = changes
        data.runs.append((_run(clock, ticket, policy.id, step.id, planned.at, now, result, note), outbox))
        w.event(ticket.id, "sla_passo", actor=ACTOR, at=now, note=note[:2000], data=event)
        if step.state:
            self.tickets.change_state(
                w, ticket, step.state, actor=ACTOR, at=now, note=step.description or step.id, outcome=step.outcome
            )
        return True


def _flush(w: TicketWriter, data: _BatchData) -> None:
    """Write what the batch buffered: the writer's events and messages, then the step records, whose
    emails have their keys once the writer has flushed."""
    w.write_buffered()
    if data.runs:
        rows = []
        for values, outbox in data.runs:
            values["outbox_id"] = outbox.id if outbox is not None else None
            rows.append(values)
        w.session.execute(insert(SlaStepRun), rows)
        data.runs.clear()


def sender_mailbox(runtime: SlaRuntime, ticket: Ticket) -> Mailbox:
    """The ticket's own mailbox; if it is gone from config.yaml, an active one of the same office."""
    box = runtime.mailboxes.get(ticket.mailbox)
    if box is not None:
        return box
    boxes = runtime.config.mailboxes
    same_office = [m for m in boxes if m.office == ticket.office and m.status == "attiva"]
    return (same_office or list(boxes))[0]


def _original_text(session: Session, ticket_id: str) -> str | None:
    return session.execute(
        select(TicketMessage.body)
        .where(TicketMessage.ticket_id == ticket_id, TicketMessage.direction == "in")
        .order_by(TicketMessage.id)
        .limit(1)
    ).scalar_one_or_none()


def _person(person: Person | None) -> dict[str, str] | None:
    return {"id": person.id, "nome": person.name, "indirizzo": person.address} if person is not None else None


def email_context(
    runtime: SlaRuntime,
    ticket: Ticket,
    clock: SlaClock,
    policy: Policy,
    planned: PlannedStep,
    following: PlannedStep | None,
    now: datetime,
    origin_message_id: str | None,
    original_text: str | None,
) -> dict[str, Any]:
    """What the SLA templates see: the analytic data of the communication, the term, the step."""
    cal = runtime.calendar(ticket.office)
    box = sender_mailbox(runtime, ticket)
    directors = runtime.recipients.people_with_role("direttore_provinciale", ticket.office)
    main_policy = runtime.policies.for_ticket(ticket.sla_policy)
    due = ticket.due_at or (clock.due_at if clock.track == RESPONSE else due_for(cal, ticket.received_at, main_policy))

    def short(when: datetime) -> str:
        # Numeric dates in subjects: plain ASCII, cheap to encode in the header.
        return cal.local_date(when).strftime("%d/%m/%Y")

    # The ticket as every template sees it (daemon.core.context), with what the SLA steps add.
    pratica = runtime.context.ticket(ticket, origin_message_id=origin_message_id)
    pratica.update(
        ricevuta_breve=short(ticket.received_at),
        scadenza=due,
        scadenza_breve=short(due),
        giorni_ritardo=working_days_late(cal, due, now),
        casella=box.address,
    )
    return {
        "pratica": pratica,
        "conteggio": {
            "politica": policy.id,
            "descrizione": policy.description,
            "giorni": policy.answer_days,
            "avvio": clock.started_at,
            "scadenza": clock.due_at,
            "scadenza_breve": short(clock.due_at),
            "giorni_sospesi": clock.paused_days,
        },
        "passo": {"id": planned.step.id, "descrizione": planned.step.description, "previsto_il": planned.at},
        "prossimo_passo": None
        if following is None
        else {"id": following.step.id, "descrizione": following.step.description, "previsto_il": following.at},
        "ufficio": runtime.context.office(ticket.office),
        "casella": runtime.context.mailbox(box),
        "assegnatario": _person(runtime.recipients.person(ticket.assignee)),
        "direttore": _person(directors[0]) if directors else None,
        "giorni_risposta": main_policy.answer_days,
        "testo_originale": original_text,
        "oggi": now,
    }


def _run(
    clock: SlaClock,
    ticket: Ticket,
    policy_id: str,
    step_id: str,
    scheduled_at: datetime,
    now: datetime,
    result: str,
    note: str,
) -> dict[str, Any]:
    """The row that records one step of one clock as done, skipped or without recipients."""
    return {
        "clock_id": clock.id,
        "ticket_id": ticket.id,
        "cycle": clock.cycle,
        "policy": policy_id,
        "step": step_id,
        "scheduled_at": scheduled_at,
        "executed_at": now,
        "result": result,
        "note": note[:2000],
    }
