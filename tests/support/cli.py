"""The CLI run on a copy of the project: its config.yaml copied (the rules, templates and certificates
linked), the archive and, unless asked otherwise, the SQLite database in the test's directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from daemon.cli.main import app
from tests.support.paths import ROOT

runner = CliRunner()


def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, database: bool = True) -> Path:
    """`tmp_path` made a working copy of the project; with `database`, SPORTELLO_DATABASE_URL points at a
    SQLite file there (without it, each command is given its database)."""
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    for name in ("routing_rules", "templates", "certs"):
        (tmp_path / name).symlink_to(ROOT / name)
    if database:
        monkeypatch.setenv("SPORTELLO_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv("SPORTELLO_ARCHIVE_DIR", str(tmp_path / "archive"))
    return tmp_path


def cli(workdir: Path, *args: str) -> tuple[int, str]:
    """`sportello <args> --config <workdir>/config.yaml`: the exit code and the output."""
    result = runner.invoke(app, [*args, "--config", str(workdir / "config.yaml")])
    return result.exit_code, result.output
