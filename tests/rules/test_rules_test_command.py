"""`sportello rules test`: the admin's suite of example messages with their expected outcome."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from typer.testing import CliRunner

from daemon.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "config.yaml")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["rules", "test", "--config", CONFIG, *args])
    return result.exit_code, result.output


def test_shipped_suite_passes() -> None:
    code, output = run()
    assert code == 0, output
    assert "Casi superati:" in output and "FALLITO" not in output


def test_a_folder_is_accepted_in_place_of_the_file() -> None:
    code, output = run(str(ROOT / "routing_rules"))
    assert code == 0, output


def test_wrong_expectation_fails_with_the_difference_and_the_rule_that_decided(tmp_path: Path) -> None:
    suite = tmp_path / "casi.yaml"
    suite.write_text(
        """casi:
  - nome: avviso_bonario
    casella: fe-credito
    oggetto: "Artigiani - richiesta informazioni avviso bonario n. 3/2026"
    testo: Chiedo chiarimenti.
    atteso: {regola: generale, azione: open_ticket, coda: generale}
  - nome: giusto
    casella: fe-credito
    oggetto: "Gestione separata - informazioni"
    atteso: {regola: per_casella, coda: fe-credito}
""",
        encoding="utf-8",
    )
    code, output = run(str(suite))
    assert code == 1
    assert f"FALLITO avviso_bonario ({suite}:2)" in output
    assert "regola: atteso generale, ottenuto unita_credito" in output
    assert "coda: atteso generale, ottenuto credito" in output
    assert "generale: non raggiunta, decide prima unita_credito" in output
    assert "Casi superati: 1 su 2" in output


def test_case_from_an_eml_file_beside_the_suite(tmp_path: Path) -> None:
    msg = EmailMessage()
    msg["From"] = "Anna Verdi <anna.verdi@posta.example>"
    msg["To"] = "soggettocontribuente.ferrara@inps.example"
    msg["Subject"] = "Commercianti - estratto conto"
    msg["Message-ID"] = "<eml-1@posta.example>"
    msg.set_content("Buongiorno.")
    (tmp_path / "dismessa.eml").write_bytes(msg.as_bytes())
    (tmp_path / "rules-tests.yaml").write_text(
        """casi:
  - nome: da_file
    casella: fe-dismessa
    file: dismessa.eml
    atteso: {regola: casella_dismessa, azione: reject, motivo: casella_dismessa, modelli: rifiuto_casella_dismessa}
""",
        encoding="utf-8",
    )
    code, output = run(str(tmp_path))
    assert code == 0, output


def test_invalid_suite_exits_2_with_file_and_line(tmp_path: Path) -> None:
    suite = tmp_path / "casi.yaml"
    suite.write_text(
        """casi:
  - nome: uno
    casella: fe-nessuna
    oggeto: refuso
    atteso: {regola: regola_che_non_esiste}
""",
        encoding="utf-8",
    )
    code, output = run(str(suite))
    assert code == 2
    assert f"{suite}:3: casi[0].casella: casella sconosciuta: fe-nessuna" in output
    assert f"{suite}:4: casi[0].oggeto: chiave sconosciuta: oggeto" in output
    assert f"{suite}:5: casi[0].atteso.regola: regola inesistente: regola_che_non_esiste" in output


def test_invalid_rules_exit_1_before_any_case(tmp_path: Path) -> None:
    import shutil

    draft = tmp_path / "bozza"
    shutil.copytree(ROOT / "routing_rules", draft)
    rules = draft / "rules.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("azione: append", "azione: accoda", 1), encoding="utf-8")
    code, output = run("--rules-dir", str(draft))
    assert code == 1
    assert "azione non valida: 'accoda'" in output and str(rules) in output
