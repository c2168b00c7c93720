"""What a person sees at the terminal: --config before the command, tables that fit 80 columns, outcomes
in Italian (while --json keeps the stored values that scripts read)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from daemon.cli.main import app
from daemon.cli.tables import Column, fitted_table
from tests.support.cli import project_copy
from tests.support.stack import citizen_mail

runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project_copy(tmp_path, monkeypatch)
    # Without the global option the commands would look here and fail: the test proves it is used.
    monkeypatch.setenv("SPORTELLO_CONFIG", str(tmp_path / "absent.yaml"))
    return tmp_path


def _ingest_three(workdir: Path) -> None:
    files = []
    for n, subject in enumerate(
        [
            "Artigiani - richiesta informazioni avviso bonario n. 41/2026 per la ditta individuale di famiglia",
            "Richiesta rimborso contributi versati in eccesso nel 2025 dalla ditta individuale",
            None,
        ]
    ):
        eml = workdir / f"m{n}.eml"
        eml.write_bytes(citizen_mail("GestioneCredito.Ferrara@inps.example", 40 + n, subject=subject))
        files.append(str(eml))
    result = runner.invoke(app, ["--config", str(workdir / "config.yaml"), "ingest", *files, "--mailbox", "fe-credito"])
    assert result.exit_code == 0, result.output


def test_config_before_the_command_is_used(workdir: Path) -> None:
    _ingest_three(workdir)
    result = runner.invoke(app, ["--config", str(workdir / "config.yaml"), "tickets", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 2


def test_the_option_after_the_command_wins_over_the_one_before(workdir: Path) -> None:
    _ingest_three(workdir)
    args = ["--config", str(workdir / "absent.yaml"), "inbound", "list", "--json"]
    result = runner.invoke(app, [*args, "--config", str(workdir / "config.yaml")])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)) == 3


def test_lists_fit_80_columns_one_line_per_row_with_outcomes_in_italian(workdir: Path) -> None:
    _ingest_three(workdir)
    config = ["--config", str(workdir / "config.yaml")]
    inbound = runner.invoke(app, [*config, "inbound", "list"], terminal_width=80, env={"COLUMNS": "80"})
    assert inbound.exit_code == 0, inbound.output
    lines = inbound.output.splitlines()
    assert max(len(line) for line in lines) <= 80, inbound.output
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == 3, inbound.output  # a wrapped cell would add lines
    assert sum("aperta" in r for r in rows) == 2 and sum("respinta" in r for r in rows) == 1, inbound.output
    assert "opened" not in inbound.output and "rejected" not in inbound.output
    tickets = runner.invoke(app, [*config, "tickets", "list"], env={"COLUMNS": "80"})
    rows = [line for line in tickets.output.splitlines() if line.startswith("│")]
    assert len(rows) == 2 and all("FE-2026-" in r for r in rows), tickets.output
    assert max(len(line) for line in tickets.output.splitlines()) <= 80
    # Scripts keep reading the stored values.
    data = json.loads(runner.invoke(app, [*config, "inbound", "list", "--json"]).output)
    assert sorted(r["outcome"] for r in data) == ["opened", "opened", "rejected"]


def test_a_narrow_terminal_drops_the_least_useful_columns_first() -> None:
    columns = [Column("pratica", 14, 9), Column("regola", 10, 1), Column("oggetto", 16, 5)]
    row = ["FE-2026-000001", "una-regola-lunga", "Un oggetto molto lungo " * 5]
    console = Console(width=40, record=True, file=io.StringIO())
    console.print(fitted_table("t", columns, [row], 40))
    text = console.export_text()
    assert "FE-2026-000001" in text and "regola" not in text and "oggetto" in text
    assert all(len(line) <= 40 for line in text.splitlines())
    wide = Console(width=200, record=True, file=io.StringIO())
    wide.print(fitted_table("t", columns, [row], 200))
    assert "una-regola-lunga" in wide.export_text()
