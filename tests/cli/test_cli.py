"""The CLI as an admin uses it: ingest, tickets, outbox, explain; bad input gives a message, not a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.cli import cli, project_copy
from tests.support.paths import ROOT
from tests.support.stack import citizen_mail


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return project_copy(tmp_path, monkeypatch)


def test_ingest_then_list_and_show_tickets_as_json(workdir: Path) -> None:
    eml = workdir / "m.eml"
    eml.write_bytes(citizen_mail("GestioneCredito.Ferrara@inps.example", 1))
    code, output = cli(workdir, "ingest", str(eml), "--mailbox", "fe-credito", "--received-at", "2026-11-20T09:30")
    assert code == 0, output
    code, output = cli(workdir, "tickets", "list", "--json")
    tickets = json.loads(output)
    assert len(tickets) == 1
    ticket = tickets[0]
    assert ticket["id"].startswith("FE-2026-")
    assert ticket["received_at"].startswith("2026-11-20T08:30")  # 09:30 in Rome is 08:30 UTC
    code, output = cli(workdir, "tickets", "show", ticket["id"], "--json")
    detail = json.loads(output)
    for key in (
        "id",
        "office",
        "state",
        "mailbox",
        "requester",
        "subject",
        "codici_fiscali",
        "queue",
        "assignee",
        "received_at",
        "due_at",
        "closed_at",
        "messages",
        "events",
    ):
        assert key in detail
    assert detail["messages"][0]["direction"] == "in"
    code, output = cli(workdir, "outbox", "list", "--json")
    rows = json.loads(output)
    # The requester's acknowledgement and the notice to the person who works the ticket.
    assert sorted(r["template"] for r in rows) == ["conferma_ricezione", "notifica_referente"]
    for row in rows:
        for key in ("to", "cc", "subject", "template", "status", "attempts", "reply_to", "in_reply_to", "references"):
            assert key in row
        assert f"[{ticket['id']}]" in row["subject"]


def test_malformed_eml_is_quarantined_with_exit_3_and_no_traceback(workdir: Path) -> None:
    bad = workdir / "bad.eml"
    bad.write_bytes(b"\x00\x01\x02 this is not an email at all\n\n\xff\xfe")
    code, output = cli(workdir, "ingest", str(bad), "--mailbox", "fe-credito")
    assert code == 3
    assert "in quarantena" in output
    assert "Traceback" not in output


def test_missing_file_unknown_mailbox_and_bad_time_are_clear_errors(workdir: Path) -> None:
    code, output = cli(workdir, "ingest", str(workdir / "nope.eml"), "--mailbox", "fe-credito")
    assert code == 2 and "impossibile leggere" in output and "Traceback" not in output
    eml = workdir / "m.eml"
    eml.write_bytes(citizen_mail("x@inps.example", 2))
    code, output = cli(workdir, "ingest", str(eml), "--mailbox", "nessuna")
    assert code == 2 and "casella sconosciuta" in output
    code, output = cli(workdir, "ingest", str(eml), "--mailbox", "fe-credito", "--received-at", "ieri")
    assert code == 2 and "--received-at non valido" in output


def test_explain_writes_nothing_and_says_why(workdir: Path) -> None:
    eml = workdir / "m.eml"
    eml.write_bytes(citizen_mail("GestioneCredito.Ferrara@inps.example", 3, subject="Richiesta rimborso contributi"))
    code, output = cli(workdir, "explain", str(eml), "--mailbox", "fe-credito", "--json")
    assert code == 0, output
    data = json.loads(output)
    assert data["action"] == "reject" and data["reason"] == "istanza_non_pec"
    assert data["istanza"] is True
    code, output = cli(workdir, "tickets", "list", "--json")
    assert json.loads(output) == []


def test_a_bad_calendar_section_is_a_configuration_problem_with_file_line_and_reason(workdir: Path) -> None:
    config = workdir / "config.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("timezone: Europe/Rome", "timezone: Europe/Roma"), encoding="utf-8")
    line = next(i for i, row in enumerate(config.read_text().splitlines(), 1) if "Europe/Roma" in row)
    code, output = cli(workdir, "tickets", "list")
    assert code == 2 and "Traceback" not in output
    assert "Configurazione non valida (1 problema):" in output
    assert f"{config}:{line}: calendar.timezone: fuso orario sconosciuto: Europe/Roma" in output


def test_invalid_rules_stop_the_start_with_file_line_and_reason(workdir: Path) -> None:
    (workdir / "routing_rules").unlink()
    shutil.copytree(ROOT / "routing_rules", workdir / "routing_rules")
    rules = workdir / "routing_rules" / "rules.yaml"
    rules.write_text(
        rules.read_text(encoding="utf-8").replace("quando: {mailbox: fe-durc}", "quando: {mailbox: fe-drc}"),
        encoding="utf-8",
    )
    line = next(i for i, row in enumerate(rules.read_text().splitlines(), 1) if "fe-drc" in row)
    code, output = cli(workdir, "tickets", "list")
    assert code == 2 and "Traceback" not in output
    assert "Avvio non riuscito, correggere i file indicati:" in output
    assert f"{rules}:{line}: regole" in output and "valore sconosciuto per mailbox: fe-drc" in output
