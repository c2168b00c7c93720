"""Every step of every shipped policy, walked with an injected clock on real dates, checked at a real
SMTP sink: recipients, cc, template, the analytic data of the communication, ticket changes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from daemon.core.tickets import NewTicket, TicketWriter
from daemon.sla.digest import send_digests
from storage.models import Outbox, Ticket, TicketMessage
from storage.models_sla import SlaClock, SlaDigest, SlaStepRun
from tests.support.bench import (
    ANNA,
    CITIZEN,
    CODER,
    DR,
    GIULIA,
    LUCA,
    LUCIA,
    NAZIONALE,
    ORDINE,
    PAOLO,
    SARA,
    SlaBench,
    credito_ticket,
    mail,
    normativa_ticket,
    only,
    rome,
)


def assert_analytic_data(m, ticket_id: str, received_text: str, sender: str, subject: str, message_id: str) -> None:  # type: ignore[no-untyped-def]
    assert f"[{ticket_id}]" in m.subject
    assert m.headers["X-Sportello-Ticket"] == ticket_id
    text = m.text
    assert f"Pratica (protocollo): {ticket_id}" in text
    assert received_text in text
    assert sender in text
    assert subject in text
    assert f"<{message_id}@posta.example>" in text


def test_risposta_10gg_reminder_sollecito_and_regional_escalation(sla: SlaBench) -> None:
    # Monday 16 November 2026 at 10:00 (IMAP arrival; the Date header says 2020): due Monday 30.
    tid = credito_ticket(sla, rome(2026, 11, 16, 10))
    ticket = sla.ticket(tid)
    assert ticket.sla_policy == "risposta_10gg" and ticket.assignee == "referente.credito"
    assert ticket.due_at == rome(2026, 11, 30, 23, 59).replace(second=59)
    ack = only(sla.deliver(), "conferma_ricezione")
    assert "entro lunedì 30 novembre 2026" in ack.text and "16 novembre 2026 alle 10:00" in ack.text

    # Nothing before the reminder: two working days before the term, Friday 27 at 08:00.
    assert sla.step(rome(2026, 11, 27, 7, 59)) == []
    reminder = only(sla.step(rome(2026, 11, 27, 8, 0)), "sla_promemoria")
    assert reminder.to == [ANNA, LUCIA] and reminder.cc == [] and reminder.rcpt == {ANNA, LUCIA}
    assert "scade lunedì 30 novembre 2026" in reminder.text
    assert_analytic_data(
        reminder, tid, "lunedì 16 novembre 2026 alle 10:00", CITIZEN, "avviso bonario n. 1/2026", "credito1"
    )

    # The term ends on Monday 30: on Tuesday 1 December at 08:00 the sollecito goes out.
    assert sla.step(rome(2026, 11, 30, 18)) == []
    sollecito = only(sla.step(rome(2026, 12, 1, 8, 5)), "sla_sollecito")
    assert sollecito.to == [PAOLO] and sollecito.cc == [GIULIA] and sollecito.rcpt == {PAOLO, GIULIA}
    assert "scaduto lunedì 30 novembre 2026" in sollecito.text and "Anna Bianchi" in sollecito.text
    assert_analytic_data(
        sollecito, tid, "lunedì 16 novembre 2026 alle 10:00", CITIZEN, "avviso bonario n. 1/2026", "credito1"
    )
    assert sla.ticket(tid).priority == "alta"

    # Seven working days after the term (8 December is a holiday): Friday 11 December at 08:00.
    assert sla.step(rome(2026, 12, 10, 17)) == []
    escalation = only(sla.step(rome(2026, 12, 11, 8)), "sla_escalation_regionale")
    # A citizen's ticket: the Ordine is not copied (its copy is for the Ordine's and professionals' tickets).
    assert escalation.to == [DR] and escalation.cc == [] and escalation.rcpt == {DR}
    assert_analytic_data(
        escalation, tid, "lunedì 16 novembre 2026 alle 10:00", CITIZEN, "avviso bonario n. 1/2026", "credito1"
    )
    assert "Scadenza: lunedì 30 novembre 2026" in escalation.text
    assert "Mario Rossi <mario.rossi@posta.example>" in escalation.text
    assert sla.ticket(tid).priority == "urgente"

    # The ladder is over; each step is an event with its outbox message.
    assert sla.step(rome(2027, 2, 1, 9)) == []
    events = sla.events(tid, "sla_passo")
    assert [e.data["passo"] for e in events] == ["promemoria", "sollecito", "escalation_regionale_interna"]
    assert [e.data["message_id"] for e in events] == [
        m.headers["Message-ID"].strip("<>") for m in (reminder, sollecito, escalation)
    ]


def test_one_sweep_files_each_steps_email_on_its_own_ticket(sla: SlaBench) -> None:
    # Three tickets of the same minute: their reminders are written in one batch, in bulk.
    tickets = [credito_ticket(sla, rome(2026, 11, 16, 10, n), n) for n in (1, 2, 3)]
    sla.deliver()
    reminders = sla.step(rome(2026, 11, 27, 8))
    assert sorted(m.ticket_id for m in reminders) == sorted(tickets)
    with sla.service.session_factory() as s:
        runs = list(s.execute(select(SlaStepRun).where(SlaStepRun.result == "sent")).scalars())
        assert sorted(r.ticket_id for r in runs) == sorted(tickets)
        sent = {}
        for run in runs:
            email = s.get(Outbox, run.outbox_id)
            assert email is not None and email.ticket_id == run.ticket_id
            filed = s.execute(select(TicketMessage).where(TicketMessage.outbox_id == run.outbox_id)).scalars().all()
            assert [(m.ticket_id, m.direction, m.message_id) for m in filed] == [
                (run.ticket_id, "out", email.message_id)
            ]
            sent[run.ticket_id] = email.message_id
    for ticket_id, message_id in sent.items():
        # The step's event names the email; no second event for it.
        events = [e for e in sla.events(ticket_id) if (e.data or {}).get("message_id") == message_id]
        assert [e.kind for e in events] == ["sla_passo"]


def test_waiting_for_the_requester_pauses_the_clock_and_moves_the_due_date(sla: SlaBench) -> None:
    tid = credito_ticket(sla, rome(2026, 11, 16, 10))
    sla.deliver()
    # Wednesday 18: the office asks the requester for documents.
    sla.set_state(tid, "in_attesa", rome(2026, 11, 18, 11))
    # The requester answers on Monday 23 (a reply quoting the ticket): three working days of waiting.
    reply = mail(
        sla.config.mailbox("fe-credito").address,
        CITIZEN,
        f"Re: [{tid}] Conferma di ricezione",
        "Ecco i documenti richiesti.",
        message_id="risposta1",
    )
    outcome = sla.ingest(reply, "fe-credito", rome(2026, 11, 23, 9, 30))
    assert outcome.outcome == "appended" and outcome.ticket_id == tid
    ticket = sla.ticket(tid)
    assert ticket.state == "in_carico"  # the requester answered: back to the office, clock resumed
    assert ticket.due_at.astimezone(rome(2026, 1, 1).tzinfo).date() == dt.date(2026, 12, 3)  # 30 Nov + 3
    assert [e.kind for e in sla.events(tid) if e.kind.startswith("sla_")] == ["sla_pausa", "sla_ripresa"]
    assert "giovedì 3 dicembre 2026" in sla.events(tid, "sla_ripresa")[0].note

    # The reminder moved too: not on Friday 27 November any more but on Wednesday 2 December.
    assert sla.step(rome(2026, 11, 27, 9)) == []
    reminder = only(sla.step(rome(2026, 12, 2, 8)), "sla_promemoria")
    assert "scade giovedì 3 dicembre 2026" in reminder.text
    sollecito = only(sla.step(rome(2026, 12, 4, 8)), "sla_sollecito")
    assert "scaduto giovedì 3 dicembre 2026" in sollecito.text
    # While the ticket was waiting, the requester's own clock ran and stopped at the answer.
    with sla.service.session_factory() as s:
        wait = s.execute(select(SlaClock).where(SlaClock.ticket_id == tid, SlaClock.track == "attesa")).scalar_one()
        assert wait.stopped_at is not None and wait.next_at is None and wait.stop_reason == "fine_attesa"
        main = s.execute(select(SlaClock).where(SlaClock.ticket_id == tid, SlaClock.track == "risposta")).scalar_one()
        assert main.paused_days == 3


def test_attesa_requester_reminds_then_reports_to_the_ordine_and_closes(sla: SlaBench) -> None:
    tid = credito_ticket(sla, rome(2026, 11, 2, 10))
    with sla.service.session_factory() as s, s.begin():
        ticket = s.get(Ticket, tid)
        assert ticket is not None
        ticket.tags = ["professionista"]  # as a rule tags a professional's mail: the Ordine's ladder applies
    sla.deliver()
    # Tuesday 3 November 2026: waiting for the requester. The office's clock stops.
    sla.set_state(tid, "in_attesa", rome(2026, 11, 3, 10))
    # The office's own reminder (due Friday 13 November) does not go out while waiting.
    assert sla.step(rome(2026, 11, 13, 9)) == []
    # Ten working days without an answer (4..17 November): on Wednesday 18 the requester is reminded.
    assert sla.step(rome(2026, 11, 17, 20)) == []
    reminder = only(sla.step(rome(2026, 11, 18, 8)), "sla_promemoria_richiedente")
    assert reminder.to == [CITIZEN] and reminder.cc == [] and reminder.rcpt == {CITIZEN}
    assert reminder.headers["In-Reply-To"] == "<credito1@posta.example>"
    assert "martedì 3 novembre 2026" in reminder.text
    assert "dal mercoledì 2 dicembre 2026 la pratica sarà chiusa" in reminder.text
    # Ten more working days: on Wednesday 2 December the director reports to the Ordine; the ticket closes.
    assert sla.step(rome(2026, 12, 1, 20)) == []
    report = only(sla.step(rome(2026, 12, 2, 8)), "sla_mancato_riscontro")
    assert report.to == [ORDINE]
    assert report.cc == [CODER, DR, GIULIA] and report.rcpt == {ORDINE, CODER, DR, GIULIA}
    assert_analytic_data(
        report, tid, "lunedì 2 novembre 2026 alle 10:00", CITIZEN, "avviso bonario n. 1/2026", "credito1"
    )
    assert "Giulia Russo" in report.text and "Direttore provinciale" in report.text
    ticket = sla.ticket(tid)
    assert ticket.state == "chiusa" and ticket.close_outcome == "mancato_riscontro"
    # Nothing more, ever: both clocks stopped.
    assert sla.step(rome(2027, 3, 1, 9)) == []
    with sla.service.session_factory() as s:
        clocks = list(s.execute(select(SlaClock).where(SlaClock.ticket_id == tid)).scalars())
        assert {c.track for c in clocks} == {"risposta", "attesa"}
        assert all(c.next_at is None and c.stopped_at is not None for c in clocks)


def test_normativa_ordine_goes_to_the_regional_directorate_after_seven_days(sla: SlaBench) -> None:
    tid = normativa_ticket(sla, rome(2026, 11, 16, 10))
    assert sla.ticket(tid).sla_policy == "normativa_ordine" and sla.ticket(tid).assignee == "direttore.fe"
    sla.deliver()
    # Day 6 (Tuesday 24) at 08:00: the director is reminded of the 7-day limit.
    reminder = only(sla.step(rome(2026, 11, 24, 8)), "sla_normativa_promemoria")
    assert reminder.to == [GIULIA] and reminder.cc == []
    assert "lunedì 30 novembre 2026" in reminder.text and "giovedì 26 novembre 2026" in reminder.text
    # Not taken in charge by the end of day 7: on Thursday 26 the question goes to the regional
    # directorate (with its text), and the Ordine is told in the same sweep.
    mails = sla.step(rome(2026, 11, 26, 8))
    assert [m.template for m in mails] == ["sla_normativa_trasmissione", "sla_normativa_informativa"]
    forward, notice = mails
    assert forward.to == [DR] and forward.cc == [GIULIA]
    assert "Si chiede il parere della Direzione" in forward.text
    assert_analytic_data(
        forward, tid, "lunedì 16 novembre 2026 alle 10:00", ORDINE, "Quesito normativo n. 1", "quesito1"
    )
    # The regional term is 7 working days plus one for the feedback: Wednesday 9 December (8 is a holiday).
    assert notice.to == [ORDINE] and notice.cc == [DR, GIULIA] and notice.rcpt == {ORDINE, DR, GIULIA}
    assert "entro mercoledì 9 dicembre 2026" in notice.text
    ticket = sla.ticket(tid)
    assert ticket.queue == "normativa_regionale"
    assert ticket.due_at.astimezone(rome(2026, 1, 1).tzinfo).date() == dt.date(2026, 12, 9)
    # The old ladder's sollecito (Tuesday 1 December) does not go out any more.
    assert sla.step(rome(2026, 12, 1, 9)) == []
    # 7 working days after the transmission (Wednesday 9 at 08:00): sollecito to the region.
    regional = only(sla.step(rome(2026, 12, 9, 8)), "sla_sollecito_regionale")
    assert regional.to == [DR] and regional.cc == [GIULIA]
    assert "giovedì 26 novembre 2026" in regional.text
    # The feedback to the Ordine is late from Thursday 10.
    late = only(sla.step(rome(2026, 12, 10, 8)), "sla_sollecito")
    assert late.to == [GIULIA] and late.cc == [DR]
    assert sla.ticket(tid).priority == "urgente"
    assert sla.step(rome(2027, 1, 31, 9)) == []


def test_normativa_taken_in_charge_is_not_transmitted_and_is_solicited_at_the_term(sla: SlaBench) -> None:
    tid = normativa_ticket(sla, rome(2026, 11, 16, 10), n=2)
    sla.deliver()
    sla.set_state(tid, "in_carico", rome(2026, 11, 19, 9))
    only(sla.step(rome(2026, 11, 24, 8)), "sla_normativa_promemoria")
    assert sla.step(rome(2026, 11, 26, 8)) == []  # in charge: no transmission
    sollecito = only(sla.step(rome(2026, 12, 1, 8)), "sla_sollecito")
    assert sollecito.to == [GIULIA] and sollecito.cc == [DR]
    with sla.service.session_factory() as s:
        runs = {r.step: r.result for r in s.execute(select(SlaStepRun).where(SlaStepRun.ticket_id == tid)).scalars()}
    assert runs == {"promemoria_direttore": "sent", "trasmissione_regionale": "skipped", "sollecito": "sent"}
    assert sla.ticket(tid).queue == "normativa"


def test_lavoro_occasionale_regional_referents_then_national_mailbox(sla: SlaBench) -> None:
    raw = mail(
        sla.config.mailbox("er-lavoro-occasionale").address,
        CITIZEN,
        "Libretto Famiglia - pagamento non ricevuto",
        "Il pagamento della prestazione di ottobre non risulta accreditato.",
        message_id="lo1",
    )
    outcome = sla.ingest(raw, "er-lavoro-occasionale", rome(2026, 11, 16, 10))
    assert outcome.rule_id == "lavoro_occasionale_regionale" and outcome.ticket_id
    tid = outcome.ticket_id
    assert tid.startswith("ER-") and sla.ticket(tid).assignee == "referente.lo.er"
    sla.deliver()
    # Five working days: the term ends on Monday 23; that morning the referents are reminded.
    reminder = only(sla.step(rome(2026, 11, 23, 8)), "sla_promemoria")
    assert reminder.to == [SARA] and reminder.cc == []
    # Tuesday 24: up to the national mailbox, the regional referents in cc, with the original text.
    forward = only(sla.step(rome(2026, 11, 24, 8)), "sla_inoltro_nazionale")
    assert forward.to == [NAZIONALE] and forward.cc == [SARA] and forward.rcpt == {NAZIONALE, SARA}
    assert "Il pagamento della prestazione di ottobre" in forward.text
    assert_analytic_data(forward, tid, "lunedì 16 novembre 2026 alle 10:00", CITIZEN, "Libretto Famiglia", "lo1")
    assert forward.headers["From"].addresses[0].addr_spec == sla.config.mailbox("er-lavoro-occasionale").address
    assert sla.step(rome(2027, 1, 29, 9)) == []

    # On the national mailbox the same policy solicits the national referents instead of forwarding.
    national = open_directly(sla, "dg-lavoro-occasionale", "lavoro_occasionale_regionale", rome(2027, 2, 1, 10))
    only(sla.step(rome(2027, 2, 8, 8)), "sla_promemoria")
    sollecito = only(sla.step(rome(2027, 2, 9, 8)), "sla_sollecito")
    assert sollecito.to == [LUCA] and sollecito.cc == []
    assert sollecito.ticket_id == national


def open_directly(sla: SlaBench, mailbox_id: str, policy: str, received: dt.datetime) -> str:
    """A ticket opened by the ticket service with the given policy, as a routing rule would."""
    box = sla.config.mailbox(mailbox_id)
    people = {p.id for p in sla.config.people if box.office in p.offices and "referente" in p.roles}
    sla.set_time(received)
    with sla.service.session_factory() as s, s.begin():
        ticket = sla.service.tickets.open(
            TicketWriter(s),
            NewTicket(
                office=box.office,
                mailbox=box.id,
                requester="lavoro.occasionale.bologna@inps.example",
                requester_name="",
                subject="Libretto Famiglia - segnalazione non risolta in sede regionale",
                received_at=received,
                assignee=sorted(people)[0],
                sla_policy=policy,
            ),
            now=received,
        )
        return ticket.id


def test_a_daemon_down_for_weeks_catches_up_every_step_once_in_order(sla: SlaBench) -> None:
    tid = credito_ticket(sla, rome(2026, 11, 16, 10))
    sla.deliver()
    # No sweep at all until January: one sweep sends the three steps, in order, once.
    mails = sla.step(rome(2027, 1, 11, 9))
    assert [m.template for m in mails] == ["sla_promemoria", "sla_sollecito", "sla_escalation_regionale"]
    assert sla.step(rome(2027, 1, 11, 9, 1)) == []
    assert sla.sweeper.sweep().steps == 0
    with sla.service.session_factory() as s:
        runs = dict(s.execute(select(SlaStepRun.step, SlaStepRun.result)).all())
    # The Ordine's variant of the escalation is recorded as skipped for a citizen's ticket.
    assert runs == {
        "promemoria": "sent",
        "sollecito": "sent",
        "escalation_regionale": "skipped",
        "escalation_regionale_interna": "sent",
    }
    assert len(sla.events(tid, "sla_passo")) == 3


def test_closed_ticket_stops_the_ladder_and_reopening_starts_a_new_term(sla: SlaBench) -> None:
    tid = credito_ticket(sla, rome(2026, 11, 16, 10))
    sla.deliver()
    sla.set_state(tid, "chiusa", rome(2026, 11, 20, 12))
    assert sla.step(rome(2026, 12, 1, 9)) == []
    # The requester writes again on Wednesday 2 December, within the reopen window of 10 working days:
    # the ticket reopens with a new term (10 working days, 8 December is a holiday: Thursday 17).
    reply = mail(sla.config.mailbox("fe-credito").address, CITIZEN, f"Re: [{tid}] altra domanda", message_id="r2")
    assert sla.ingest(reply, "fe-credito", rome(2026, 12, 2, 10)).outcome == "appended"
    ticket = sla.ticket(tid)
    assert ticket.state == "aperta"
    assert ticket.due_at.astimezone(rome(2026, 1, 1).tzinfo).date() == dt.date(2026, 12, 17)
    only(sla.step(rome(2026, 12, 16, 8)), "sla_promemoria")


def test_daily_digest_to_each_referent_once_per_working_day(sla: SlaBench) -> None:
    first = credito_ticket(sla, rome(2026, 11, 16, 10), n=1)
    second = credito_ticket(sla, rome(2026, 11, 10, 10), n=2)  # older: due earlier
    sla.deliver()
    # Before the opening hour, nothing; at 08:00 each referent gets their list.
    assert send_digests(sla.runtime, sla.service.session_factory, rome(2026, 11, 17, 7, 59)) == 0
    # Only Anna has open tickets (both assigned to her): the others get no empty email.
    assert send_digests(sla.runtime, sla.service.session_factory, rome(2026, 11, 17, 8, 0)) == 1
    sla.set_time(rome(2026, 11, 17, 8, 0))
    mails = {m.to[0]: m for m in sla.deliver()}
    assert {m.template for m in mails.values()} == {"sla_riepilogo"}
    assert set(mails) == {ANNA}
    anna = mails[ANNA]
    assert "2 pratiche aperte" in anna.subject
    assert anna.text.index(second) < anna.text.index(first), "ordinate per scadenza"
    assert "scadenza martedì 24 novembre 2026" in anna.text
    # Once a day, whatever happens; not on holidays (Tuesday 8 December) nor at weekends.
    assert send_digests(sla.runtime, sla.service.session_factory, rome(2026, 11, 17, 15)) == 0
    assert send_digests(sla.runtime, sla.service.session_factory, rome(2026, 12, 8, 9)) == 0
    assert send_digests(sla.runtime, sla.service.session_factory, rome(2026, 11, 21, 9)) == 0
    assert send_digests(sla.runtime, sla.service.session_factory, rome(2026, 11, 18, 9)) == 1
    with sla.service.session_factory() as s:
        # One row per referent and day, empty digests included: each is decided once.
        assert s.execute(select(func.count()).select_from(SlaDigest)).scalar_one() == 8


def test_digest_catch_up_at_start_only_once_and_not_on_a_fresh_database(sla: SlaBench) -> None:
    credito_ticket(sla, rome(2026, 11, 16, 10))
    factory = sla.service.session_factory
    # A fresh database has no digest history: a start at 10:00 does not send one.
    assert send_digests(sla.runtime, factory, rome(2026, 11, 17, 10), catch_up=True) == 0
    assert send_digests(sla.runtime, factory, rome(2026, 11, 17, 8)) == 1
    # Down for days, restarted on Monday 23 at 11:00: that day's digest, once.
    assert send_digests(sla.runtime, factory, rome(2026, 11, 23, 11), catch_up=True) == 1
    assert send_digests(sla.runtime, factory, rome(2026, 11, 23, 11, 1), catch_up=True) == 0
