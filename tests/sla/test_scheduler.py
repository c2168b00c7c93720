"""The SLA jobs wired into the running daemon (APScheduler with the service's clock), the hooks shared
by several services in one process, and the sweep on PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from daemon.service import Service
from daemon.sla.hooks import SlaClockListener
from storage.models import Outbox, Ticket
from storage.models_sla import SlaClock, SlaStepRun
from tests.support.bench import ANNA, DR, LUCIA, SlaBench, credito_ticket, rome
from tests.support.stack import running_service, wait_until


def test_each_service_has_its_own_clock_listener_and_configuration(sla: SlaBench, shipped_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other_cfg = shipped_config.model_copy(
        update={"calendar": shipped_config.calendar.model_copy(update={"cutoff_hour": 9})}
    )
    other = Service(other_cfg, clock=lambda: rome(2026, 11, 16, 10))
    try:
        # One clock listener per ticket service, on its own runtime: nothing shared between services.
        mine = [lst for lst in sla.service.tickets.listeners if isinstance(lst, SlaClockListener)]
        theirs = [lst for lst in other.tickets.listeners if isinstance(lst, SlaClockListener)]
        assert len(mine) == len(theirs) == 1 and mine[0].runtime is not theirs[0].runtime
        # Each service's tickets follow its own configuration: 10:00 is after the other's cut-off.
        tid = credito_ticket(sla, rome(2026, 11, 16, 10))
        assert sla.ticket(tid).due_at.astimezone(rome(2026, 1, 1).tzinfo).date() == dt.date(2026, 11, 30)
        runtime = other.sla
        assert runtime is not None and runtime.settings.cutoff_hour == 9
        from daemon.core.pipeline import InboundItem
        from tests.support.bench import mail

        raw = mail(other_cfg.mailbox("fe-credito").address, "x@posta.example", "Artigiani - avviso bonario 9/2026")
        out = other.ingest([InboundItem(raw=raw, mailbox_id="fe-credito", received_at=rome(2026, 11, 16, 10))])[0]
        with other.session_factory() as s:
            due = s.get(Ticket, out.ticket_id).due_at  # type: ignore[union-attr]
        assert due.astimezone(rome(2026, 1, 1).tzinfo).date() == dt.date(2026, 12, 1)
    finally:
        other.close()


def test_running_daemon_sweeps_at_start_with_its_clock_and_delivers(sla: SlaBench) -> None:
    tid = credito_ticket(sla, rome(2026, 11, 16, 10))
    sla.deliver()
    # The daemon starts on Friday 27 November at 09:00 (its clock): the reminder is due since 08:00.
    with running_service(sla.config, clock=lambda: rome(2026, 11, 27, 9)):
        assert wait_until(lambda: any(set(m.rcpt_tos) == {ANNA, LUCIA} for m in sla.sink.messages), 20)
    with sla.service.session_factory() as s:
        runs = list(s.execute(select(SlaStepRun)).scalars())
        assert [(r.ticket_id, r.step, r.result) for r in runs] == [(tid, "promemoria", "sent")]
        sent = s.execute(select(Outbox).where(Outbox.template == "sla_promemoria")).scalar_one()
        assert sent.status == "sent"
        clock = s.execute(select(SlaClock).where(SlaClock.ticket_id == tid)).scalar_one()
        assert clock.next_step == "sollecito" and clock.next_at == rome(2026, 12, 1, 8)


def test_tickets_without_a_clock_get_one_at_start(sla: SlaBench) -> None:
    from daemon.sla.scheduler import SlaJobs

    tid = credito_ticket(sla, rome(2026, 11, 16, 10))
    with sla.service.session_factory() as s, s.begin():  # as if opened before the SLA component
        s.execute(SlaClock.__table__.delete())
        s.get(Ticket, tid).due_at = None  # type: ignore[union-attr]
    jobs = SlaJobs(sla.runtime, sla.service.session_factory, sla.service.tickets, clock=lambda: rome(2026, 11, 20, 9))
    jobs.sweep()
    assert sla.ticket(tid).due_at == rome(2026, 11, 30, 23, 59).replace(second=59)
    with sla.service.session_factory() as s:
        assert s.execute(select(func.count()).select_from(SlaClock)).scalar_one() == 1


def test_ladder_on_postgresql(sla_pg: SlaBench) -> None:
    sla = sla_pg
    tid = credito_ticket(sla, rome(2026, 11, 16, 10))
    assert sla.ticket(tid).due_at == rome(2026, 11, 30, 23, 59).replace(second=59)
    sla.deliver()
    mails = sla.step(rome(2026, 12, 11, 9))  # three steps caught up at once
    assert [m.template for m in mails] == ["sla_promemoria", "sla_sollecito", "sla_escalation_regionale"]
    assert mails[2].to == [DR] and mails[2].cc == []  # a citizen's ticket: the Ordine is not copied
    assert sla.step(rome(2026, 12, 11, 9, 5)) == []
    # Pause and resume on PostgreSQL too.
    other = credito_ticket(sla, rome(2026, 12, 14, 10), n=2)
    sla.set_state(other, "in_attesa", rome(2026, 12, 15, 10))
    sla.set_state(other, "in_carico", rome(2026, 12, 17, 10))
    assert sla.ticket(other).due_at.astimezone(rome(2026, 1, 1).tzinfo).date() == dt.date(2027, 1, 5)


def test_without_sla_yaml_the_clock_is_off_and_nothing_breaks(shipped_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from tests.support.bench import mail
    from tests.support.stack import ROOT, stack_config

    project = tmp_path / "project"
    shutil.copytree(ROOT / "routing_rules", project / "routing_rules")
    (project / "routing_rules" / "sla.yaml").unlink()
    (project / "templates").symlink_to(ROOT / "templates")
    (project / "certs").symlink_to(ROOT / "certs")
    cfg = stack_config(shipped_config, tmp_path / "data", imap_port=1, smtp_port=1, mailboxes=[])
    cfg = cfg.model_copy(update={"base_dir": str(project)})
    service = Service(cfg, clock=lambda: rome(2026, 11, 16, 10))
    try:
        assert service.sla is None and service.sla_jobs() is None
        assert not service.tickets.listeners
        raw = mail(cfg.mailbox("fe-credito").address, "x@posta.example", "Artigiani - avviso bonario 3/2026")
        from daemon.core.pipeline import InboundItem

        [out] = service.ingest([InboundItem(raw=raw, mailbox_id="fe-credito", received_at=rome(2026, 11, 16, 10))])
        assert out.outcome == "opened"
        with service.session_factory() as s:
            assert s.get(Ticket, out.ticket_id).due_at is None  # type: ignore[union-attr]
            assert s.execute(select(func.count()).select_from(SlaClock)).scalar_one() == 0
    finally:
        service.close()


def test_a_step_that_fails_does_not_block_the_others_and_is_retried(sla: SlaBench, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from storage.models import Alert

    good = credito_ticket(sla, rome(2026, 11, 16, 10), n=1)
    bad = credito_ticket(sla, rome(2026, 11, 16, 11), n=2)
    sla.deliver()
    original = sla.runtime.recipients.resolve

    def flaky(to, cc, ticket):  # type: ignore[no-untyped-def]
        if ticket.id == bad:
            raise RuntimeError("rubrica non disponibile")
        return original(to, cc, ticket)

    monkeypatch.setattr(sla.runtime.recipients, "resolve", flaky)
    sent = sla.step(rome(2026, 11, 27, 8))
    assert [(m.template, m.ticket_id) for m in sent] == [("sla_promemoria", good)]
    with sla.service.session_factory() as s:
        alert = s.execute(select(Alert).where(Alert.kind == "sla_errore")).scalar_one()
        assert alert.ticket_id == bad and "rubrica non disponibile" in alert.note
        clock = s.execute(select(SlaClock).where(SlaClock.ticket_id == bad)).scalar_one()
        assert clock.next_at == rome(2026, 11, 27, 9)
    monkeypatch.setattr(sla.runtime.recipients, "resolve", original)
    assert sla.step(rome(2026, 11, 27, 8, 30)) == []
    retried = sla.step(rome(2026, 11, 27, 9))
    assert [(m.template, m.ticket_id) for m in retried] == [("sla_promemoria", bad)]
