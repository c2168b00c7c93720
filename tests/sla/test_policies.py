"""routing_rules/sla.yaml: the shipped policies, the problems an admin can make (Italian, with line),
and live reloading that never replaces good policies with a bad file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from daemon.config import Config
from daemon.outbound.templates import TemplateRenderer
from daemon.sla.clock import due_for, plan
from daemon.sla.policies import PolicyError, PolicyStore, load_policies
from daemon.workcalendar import calendars_from_config
from storage.models import TicketState
from tests.support.bench import rome

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = TemplateRenderer(ROOT / "templates").names()


def test_shipped_policies_load_and_cover_the_routing_rules(shipped_config: Config) -> None:
    policies = load_policies(ROOT / "routing_rules", shipped_config, TEMPLATES)
    assert set(policies.policies) >= {
        "risposta_10gg",
        "attesa_requester",
        "normativa_ordine",
        "lavoro_occasionale_regionale",
    }
    assert policies.default == "risposta_10gg"
    rules = yaml.safe_load((ROOT / "routing_rules" / "rules.yaml").read_text(encoding="utf-8"))["regole"]
    referenced = {r["sla"] for r in rules if r.get("sla")}
    assert referenced and referenced <= set(policies.policies)
    for policy in policies.policies.values():
        for step in policy.steps:
            assert step.template is None or step.template in TEMPLATES


def test_the_shipped_ladders_on_the_calendar(shipped_config: Config) -> None:
    policies = load_policies(ROOT / "routing_rules", shipped_config, TEMPLATES)
    fe = calendars_from_config(shipped_config)["FE"]
    start = rome(2026, 11, 16, 10)
    policy = policies.policies["risposta_10gg"]
    due = due_for(fe, start, policy)
    steps = [(p.step.id, p.at.astimezone(fe.tz).strftime("%a %d/%m %H:%M")) for p in plan(fe, policy, start, due)]
    assert steps == [
        ("promemoria", "Fri 27/11 08:00"),
        ("sollecito", "Tue 01/12 08:00"),
        ("escalation_regionale", "Fri 11/12 08:00"),  # the Ordine's and professionals' tickets
        ("escalation_regionale_interna", "Fri 11/12 08:00"),  # everyone else's: the Ordine not copied
    ]


def _project(tmp_path: Path, text: str) -> Path:
    rules = tmp_path / "routing_rules"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "sla.yaml").write_text(text, encoding="utf-8")
    return rules


GOOD = """\
predefinita: base
politiche:
  base:
    giorni_risposta: 10
    passi:
      - id: promemoria
        prima_della_scadenza: 2
        modello: sla_promemoria
        a: [assegnatario]
"""


def test_problems_are_reported_in_italian_with_file_and_line(shipped_config: Config, tmp_path: Path) -> None:
    bad = """\
predefinita: manca
politiche:
  base:
    giorni_risposta: 10
    in_attesa: base
    passi:
      - id: promemoria
        modello: sla_inesistente
        a: [ruolo:astronauta, casella:nessuna, chi.sei]
      - id: sollecito
        alla_scadenza: true
        dopo_la_scadenza: 3
        modello: sla_sollecito
        a: [assegnatario]
        politica: altrove
"""
    rules = _project(tmp_path, bad)
    with pytest.raises(PolicyError) as info:
        load_policies(rules, shipped_config, TEMPLATES)
    text = "\n".join(str(p) for p in info.value.problems)
    file = str(rules / "sla.yaml")
    assert f"{file}:7: politiche.base.passi[0]: indicare uno (e uno solo) tra prima_della_scadenza" in text
    assert f"{file}:10: politiche.base.passi[1]: indicare uno (e uno solo)" in text
    # The structure is wrong: the cross-checks wait until it is fixed.
    fixed = bad.replace("        dopo_la_scadenza: 3\n", "").replace(
        "      - id: promemoria\n", "      - id: promemoria\n        prima_della_scadenza: 20\n"
    )
    rules = _project(tmp_path, fixed)
    with pytest.raises(PolicyError) as info:
        load_policies(rules, shipped_config, TEMPLATES)
    text = "\n".join(str(p) for p in info.value.problems)
    assert f"{file}:1: predefinita: politica sconosciuta: manca" in text
    assert "politiche.base.in_attesa: la politica base deve avere avvio: attesa" in text
    assert "prima_della_scadenza: più giorni dei 10 del termine" in text
    assert "modello inesistente: sla_inesistente (manca templates/sla_inesistente.j2)" in text
    assert "politiche.base.passi[0].a[0]: nessuna persona ha il ruolo astronauta in config.yaml" in text
    assert "politiche.base.passi[0].a[1]: casella sconosciuta: nessuna" in text
    assert "politiche.base.passi[0].a[2]: destinatario sconosciuto: chi.sei" in text
    assert "politiche.base.passi[1].politica: politica sconosciuta: altrove" in text


def test_a_step_with_an_unknown_state_names_the_four_states_in_italian(tmp_path: Path) -> None:
    text = "predefinita: base\npolitiche:\n  base:\n    giorni_risposta: 5\n    passi:\n"
    text += "      - id: chiudi\n        alla_scadenza: true\n        stato: sospesa\n"
    rules = _project(tmp_path, text)
    with pytest.raises(PolicyError) as info:
        load_policies(rules)
    assert [str(p) for p in info.value.problems] == [
        f"{rules / 'sla.yaml'}:8: politiche.base.passi[0].stato: valore non ammesso, atteso uno tra: "
        "'aperta', 'in_carico', 'in_attesa' o 'chiusa'"
    ]


def test_a_closing_step_keeps_its_state_and_outcome_when_loaded(tmp_path: Path) -> None:
    text = "predefinita: base\npolitiche:\n  base:\n    giorni_risposta: 5\n    passi:\n"
    text += "      - id: chiudi\n        dopo_la_scadenza: 2\n        stato: chiusa\n        esito: mancato_riscontro\n"
    step = load_policies(_project(tmp_path, text)).policies["base"].steps[0]
    assert (step.state, step.outcome, step.anchor, step.offset) == (
        TicketState.CHIUSA,
        "mancato_riscontro",
        "scadenza",
        2,
    )


def test_yaml_syntax_errors_are_located(tmp_path: Path) -> None:
    rules = _project(tmp_path, "predefinita: base\npolitiche:\n  base: [\n")
    with pytest.raises(PolicyError) as info:
        load_policies(rules)
    assert "YAML non valido" in str(info.value) and "sla.yaml:" in str(info.value)


def test_a_bad_edit_keeps_the_policies_in_force(shipped_config: Config, tmp_path: Path) -> None:
    rules = _project(tmp_path, GOOD)
    store = PolicyStore(rules, shipped_config, TEMPLATES)
    version = store.current.version
    (rules / "sla.yaml").write_text(GOOD.replace("giorni_risposta: 10", "giorni_risposta: dieci"), encoding="utf-8")
    assert store.refresh() is False
    assert store.current.version == version and store.last_error is not None
    assert "giorni_risposta: atteso un numero intero" in str(store.last_error)
    (rules / "sla.yaml").write_text(GOOD.replace("giorni_risposta: 10", "giorni_risposta: 5 "), encoding="utf-8")
    assert store.refresh() is True
    assert store.current.policies["base"].answer_days == 5 and store.last_error is None


def test_cli_check_reports_problems_and_exits_1(shipped_config: Config, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from daemon.cli.main import app
    from tests.support.stack import write_config

    etc = tmp_path / "etc"
    shutil.copytree(ROOT / "routing_rules", etc / "routing_rules")
    config = write_config(shipped_config, etc)
    runner = CliRunner()
    result = runner.invoke(app, ["sla", "check", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "Politiche SLA valide" in result.output
    sla_file = etc / "routing_rules" / "sla.yaml"
    sla_file.write_text(sla_file.read_text(encoding="utf-8").replace("modello: sla_sollecito\n", "modello: sla_x\n", 1))
    result = runner.invoke(app, ["sla", "check", "--config", str(config)])
    assert result.exit_code == 1
    assert "modello inesistente: sla_x" in result.output
