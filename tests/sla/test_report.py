"""`sportello sla report`: per queue open, overdue, answered in time (%), median answer time in working days."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from daemon.cli.main import app
from daemon.sla.report import sla_report
from storage.models import Ticket
from tests.support.bench import SlaBench, credito_ticket, normativa_ticket, rome
from tests.support.stack import write_config


def _close(sla: SlaBench, ticket_id: str, when, outcome: str | None = None) -> None:  # type: ignore[no-untyped-def]
    if outcome:
        with sla.service.session_factory() as s, s.begin():
            t = s.get(Ticket, ticket_id)
            assert t is not None
            t.close_outcome = outcome
    sla.set_state(ticket_id, "chiusa", when)


def _scenario(sla: SlaBench) -> None:
    t1 = credito_ticket(sla, rome(2026, 11, 2, 10), n=1)  # due 16 Nov, answered 10 Nov: 6 days
    t2 = credito_ticket(sla, rome(2026, 11, 2, 11), n=2)  # due 16 Nov, answered 20 Nov: 14 days, late
    credito_ticket(sla, rome(2026, 11, 3, 10), n=3)  # due 17 Nov, still open: overdue
    t6 = credito_ticket(sla, rome(2026, 11, 3, 11), n=6)  # closed for lack of answer: not an answer
    t7 = credito_ticket(sla, rome(2026, 11, 2, 12), n=7)  # 3 days waiting; due 19 Nov, answered 18: 9 days
    t5 = normativa_ticket(sla, rome(2026, 11, 2, 10))  # waiting for the Ordine: not overdue
    sla.set_state(t7, "in_attesa", rome(2026, 11, 3, 12))
    sla.set_state(t7, "aperta", rome(2026, 11, 6, 12))
    sla.set_state(t5, "in_attesa", rome(2026, 11, 4, 12))
    _close(sla, t1, rome(2026, 11, 10, 12))
    _close(sla, t2, rome(2026, 11, 20, 12))
    _close(sla, t6, rome(2026, 11, 20, 12), outcome="mancato_riscontro")
    _close(sla, t7, rome(2026, 11, 18, 16))
    credito_ticket(sla, rome(2026, 11, 20, 10), n=4)  # due 4 Dec: open, in time


def test_report_per_queue(sla: SlaBench) -> None:
    _scenario(sla)
    with sla.service.session_factory() as s:
        rows = {r.queue: r for r in sla_report(s, sla.runtime, rome(2026, 11, 25, 10))}
    credito = rows["credito"]
    assert (credito.received, credito.open, credito.overdue) == (6, 2, 1)
    assert (credito.answered, credito.answered_in_time, credito.closed_no_answer) == (3, 2, 1)
    assert credito.in_time_percent == 66.7 and credito.median_working_days == 9.0
    normativa = rows["normativa"]
    assert (normativa.received, normativa.open, normativa.overdue, normativa.answered) == (1, 1, 0, 0)
    assert normativa.in_time_percent is None and normativa.median_working_days is None
    total = rows["totale"]
    assert (total.received, total.open, total.overdue, total.answered, total.in_time_percent) == (7, 3, 1, 3, 66.7)

    with sla.service.session_factory() as s:
        late = sla_report(s, sla.runtime, rome(2026, 11, 25, 10), office="FE", date_from=rome(2026, 11, 20).date())
        assert [(r.queue, r.received, r.open) for r in late] == [("credito", 1, 1), ("totale", 1, 1)]
        assert sla_report(s, sla.runtime, rome(2026, 11, 25, 10), office="ER")[-1].received == 0


def test_report_command(sla: SlaBench, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _scenario(sla)
    config = write_config(sla.config, tmp_path / "etc")
    runner = CliRunner()
    result = runner.invoke(app, ["sla", "report", "--config", str(config), "--office", "FE", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["queue"]: r for r in json.loads(result.output)}
    assert rows["credito"]["answered"] == 3 and rows["credito"]["in_time_percent"] == 66.7
    assert rows["credito"]["median_working_days"] == 9.0
    result = runner.invoke(
        app, ["sla", "report", "--config", str(config), "--from", "2026-11-20", "--to", "2026-11-30"]
    )
    assert result.exit_code == 0, result.output
    assert "credito" in result.output and "Scadenze per coda" in result.output
    result = runner.invoke(app, ["sla", "report", "--config", str(config), "--from", "20/11/2026"])
    assert result.exit_code == 2 and "--from non valido" in result.output
    result = runner.invoke(app, ["sla", "report", "--config", str(config), "--office", "XX"])
    assert result.exit_code == 2 and "ufficio sconosciuto: XX" in result.output
    result = runner.invoke(app, ["sla", "show", "FE-2026-000003", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert [(p["passo"], p["stato"]) for p in shown["passi"]] == [
        ("promemoria", "previsto"),
        ("sollecito", "previsto"),
        ("escalation_regionale", "previsto"),
        ("escalation_regionale_interna", "previsto"),
    ]
