"""config.yaml: the shipped file, environment overrides, and clear Italian errors with lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]

EXPECTED_MAILBOXES = {
    "fe-pec": "direzione.provinciale.ferrara@postacert.inps.example",
    "fe-credito": "GestioneCredito.Ferrara@inps.example",
    "fe-anagrafica": "AnagraficaFlussi.Ferrara@inps.example",
    "fe-durc": "preavvisodiaccertamento.ferrara@inps.example",
    "fe-direzione": "direzione.ferrara@inps.example",
    "fe-dismessa": "soggettocontribuente.ferrara@inps.example",
    "fe-verifica-dismessa": "verificamministrativa.ferrara@inps.example",
    "er-lavoro-occasionale": "lavoro.occasionale.emiliaromagna@inps.example",
    "dg-lavoro-occasionale": "lavoro.occasionale@inps.example",
    "er-consulenza": "ConsulenzaFlussiContributivi.EmiliaRomagna@inps.example",
    "er-direzione": "direzione.emiliaromagna@inps.example",
}


def test_shipped_config_describes_the_ferrara_offices() -> None:
    cfg = load_config(ROOT / "config.yaml", env={})
    assert {m.id: m.address for m in cfg.mailboxes} == EXPECTED_MAILBOXES
    assert cfg.mailbox("fe-pec").kind == "pec"
    assert cfg.mailbox("fe-dismessa").status == "dismessa"
    assert cfg.mailbox("fe-verifica-dismessa").status == "dismessa"
    assert all(m.address.endswith(".example") for m in cfg.mailboxes)
    assert [p.address for p in cfg.people_with_role("ordine")] == ["info@odcec-fe.example"]


def test_environment_overrides_database_and_archive(tmp_path: Path) -> None:
    cfg = load_config(
        ROOT / "config.yaml",
        env={
            "SPORTELLO_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/x",
            "SPORTELLO_ARCHIVE_DIR": str(tmp_path / "arch"),
        },
    )
    assert cfg.database_url == "postgresql+psycopg://u@127.0.0.1/x"
    assert cfg.archive_dir == tmp_path / "arch"


def write_variant(tmp_path: Path, old: str, new: str) -> Path:
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "config.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("      port: 1143\n", "      port: tanti\n", "mailboxes[0].imap.port: atteso un numero intero"),
        ("    kind: pec\n", "    kind: certificata\n", "mailboxes[0].kind: valore non ammesso"),
        ("  fsync: true\n", "  fsync: true\n  compressione: si\n", "archive.compressione: chiave sconosciuta"),
        (
            "      password_env: SPORTELLO_IMAP_PASSWORD\n",
            "      password: segreta\n",
            "i segreti non vanno scritti nel file",
        ),
        ("    office: FE\n    kind: pec\n", "    office: XX\n    kind: pec\n", "ufficio sconosciuto: XX"),
        ("    smtp_profile: pec-locale\n", "    smtp_profile: nessuno\n", "profilo SMTP sconosciuto: nessuno"),
        ("  - id: fe-credito\n", "  - id: fe-pec\n", "identificativo duplicato: fe-pec"),
        (
            "      host: 127.0.0.1\n      port: 1143\n      security: plain\n",
            "      host: imap.inps.example\n      port: 1143\n      security: plain\n",
            "plain è ammesso solo verso 127.0.0.1",
        ),
        ("offices:\n", "offices: [\n", "YAML non valido"),
    ],
)
def test_each_problem_is_reported_with_line_and_key(tmp_path: Path, old: str, new: str, expected: str) -> None:
    path = write_variant(tmp_path, old, new)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    text = str(info.value)
    assert expected in text
    assert f"{path}:" in text  # file and line
    line = int(text.split(f"{path}:", 1)[1].split(":", 1)[0])
    changed = [ln for ln in new.splitlines() if ln not in old.splitlines()][0]
    if "YAML" not in expected:
        assert path.read_text().splitlines()[line - 1] == changed


def test_cli_reports_bad_config_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "      port: 1143\n", "      port: tanti\n")
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli.main", "tickets", "list", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "Configurazione non valida" in proc.stderr
    assert "mailboxes[0].imap.port" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_cli_reports_missing_config(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli.main", "tickets", "list", "--config", str(tmp_path / "manca.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "file di configurazione non trovato" in proc.stderr
