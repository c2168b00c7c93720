"""The rule language's combinators (`non`, `una_di`, `tutte`) and rules with `continua: true`.

Small rule files are written to a temporary folder and loaded with the shipped configuration,
templates and vocabularies, as the daemon loads them; decisions are checked on facts, the trace as
`sportello explain` shows it, and, for `continua`, what the pipeline records on the ticket.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from daemon.cli.main import app
from daemon.config import Config, load_config
from daemon.core.explain import render_explanation
from daemon.core.pipeline import InboundItem
from daemon.outbound.templates import TemplateRenderer
from daemon.rules import RoutingFacts, RulesError, Ruleset, evaluate, load_ruleset
from daemon.rules.loader import vocabulary_values
from daemon.service import Service
from storage.models import Ticket
from tests.rules.facts import make_facts
from tests.support.stack import citizen_mail

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(ROOT / "config.yaml", env={})
TEMPLATES = TemplateRenderer(ROOT / "templates").names()
VOCABULARY = vocabulary_values(ROOT / "routing_rules")


def write_rules(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "rules.yaml"
    path.write_text("regole:\n" + body, encoding="utf-8")
    return path


def ruleset(tmp_path: Path, body: str) -> Ruleset:
    write_rules(tmp_path / "regole", body)
    return load_ruleset(tmp_path / "regole", CONFIG, TEMPLATES, VOCABULARY)


def facts(**changes: object) -> RoutingFacts:
    return make_facts(**changes)


def catch_all(rule_id: str = "generale") -> str:
    return f"""  - id: {rule_id}
    quando: {{}}
    azione: open_ticket
    coda: generale
"""


def one_rule(when: str, unless: str | None = None) -> str:
    """A rule `prova` (ignore, bounce) with the given conditions, then a catch-all."""
    rule = f"  - id: prova\n    quando: {when}\n"
    if unless is not None:
        rule += f"    eccetto: {unless}\n"
    return rule + "    azione: ignore\n    motivo: bounce\n" + catch_all()


def decides(rules: Ruleset, **changes: object) -> bool:
    return evaluate(rules, facts(**changes)).rule_id == "prova"


# -- non / una_di / tutte: evaluation ----------------------------------------------------------


@pytest.mark.parametrize(
    ("mailbox", "istanza", "holds"),
    [("fe-durc", True, False), ("fe-durc", False, True), ("fe-credito", True, True), ("fe-credito", False, True)],
)
def test_non_holds_unless_all_its_conditions_hold(tmp_path: Path, mailbox: str, istanza: bool, holds: bool) -> None:
    rules = ruleset(tmp_path, one_rule("{non: {mailbox: fe-durc, istanza: true}}"))
    assert decides(rules, mailbox=mailbox, istanza=istanza) is holds


@pytest.mark.parametrize(
    ("mailbox", "istanza", "sollecito", "holds"),
    [
        ("fe-durc", False, False, True),  # first group
        ("fe-credito", True, True, True),  # second group, both of its conditions
        ("fe-credito", True, False, False),  # second group only in part
        ("fe-credito", False, True, False),
        ("fe-durc", True, True, True),  # both groups
    ],
)
def test_una_di_holds_when_any_of_its_groups_holds(
    tmp_path: Path, mailbox: str, istanza: bool, sollecito: bool, holds: bool
) -> None:
    rules = ruleset(tmp_path, one_rule("{una_di: [{mailbox: fe-durc}, {istanza: true, sollecito: true}]}"))
    assert decides(rules, mailbox=mailbox, istanza=istanza, sollecito=sollecito) is holds


@pytest.mark.parametrize(
    ("mailbox", "holds"), [("fe-credito", True), ("fe-anagrafica", False), ("fe-durc", False), ("fe-pec", False)]
)
def test_tutte_holds_when_every_group_holds(tmp_path: Path, mailbox: str, holds: bool) -> None:
    rules = ruleset(tmp_path, one_rule("{tutte: [{mailbox: [fe-credito, fe-durc]}, {non: {mailbox: fe-durc}}]}"))
    assert decides(rules, mailbox=mailbox) is holds


def test_combinators_and_plain_conditions_must_all_hold(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, one_rule("{sollecito: true, una_di: [{ticket_ref: {presente: true}}, {istanza: true}]}"))
    assert decides(rules, sollecito=True, ticket_ref="FE-2026-000001")
    assert decides(rules, sollecito=True, istanza=True)
    assert not decides(rules, sollecito=False, ticket_ref="FE-2026-000001")
    assert not decides(rules, sollecito=True)


def test_nested_combinators(tmp_path: Path) -> None:
    """Not on fe-durc, and either an istanza or a message with attachments over 1 MB that is not a reply."""
    when = (
        "\n      non: {mailbox: fe-durc}"
        "\n      una_di:"
        "\n        - istanza: true"
        "\n        - tutte: [{attachment_bytes: {almeno: 1000000}}, {non: {reply_to_ticket: {presente: true}}}]"
    )
    rules = ruleset(tmp_path, one_rule(when))
    assert decides(rules, istanza=True)
    assert decides(rules, attachment_bytes=2_000_000)
    assert not decides(rules, attachment_bytes=2_000_000, reply_to_ticket="FE-2026-000001")
    assert not decides(rules, attachment_bytes=10)
    assert not decides(rules, mailbox="fe-durc", istanza=True)


def test_combinators_in_eccetto(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path, one_rule("{sollecito: true}", unless="{una_di: [{mailbox: fe-durc}, {non: {gestione: artigiani}}]}")
    )
    assert decides(rules, sollecito=True)
    assert not decides(rules, sollecito=True, mailbox="fe-durc")
    assert not decides(rules, sollecito=True, gestione="commercianti")
    decision = evaluate(rules, facts(sollecito=True, mailbox="fe-durc"))
    assert decision.trace[0] == {"rule": "prova", "matched": False, "why": "esclusa da «eccetto»"}


def test_trace_says_which_combinator_did_not_hold(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        "  - id: prova\n"
        "    quando: {una_di: [{ticket_ref: {presente: true}}, {reply_to_ticket: {presente: true}}]}\n"
        "    azione: append\n"
        "  - id: negata\n"
        "    quando: {non: {mailbox: fe-credito}}\n"
        "    azione: append\n"
        "  - id: entrambe\n"
        "    quando: {tutte: [{istanza: true}, {sollecito: true}]}\n"
        "    azione: append\n" + catch_all(),
    )
    trace = {step["rule"]: step["why"] for step in evaluate(rules, facts()).trace}
    assert trace["prova"] == "non vale: (ticket_ref presente True) oppure (reply_to_ticket presente True)"
    assert trace["negata"] == "non vale: non (mailbox uguale 'fe-credito')"
    assert trace["entrambe"] == "non vale: (istanza uguale True) e inoltre (sollecito uguale True)"


@pytest.fixture(scope="module")
def shipped() -> Ruleset:
    return load_ruleset(ROOT / "routing_rules", CONFIG, TEMPLATES, VOCABULARY)


@pytest.mark.parametrize(
    ("ticket_ref", "reply_to_ticket", "rule"),
    [
        ("FE-2026-000001", None, "sollecito_con_riferimento"),
        (None, "FE-2026-000001", "sollecito_con_riferimento"),
        ("FE-2026-000001", "FE-2026-000002", "sollecito_con_riferimento"),
        (None, None, "sollecito_senza_riferimenti"),
    ],
)
def test_shipped_sollecito_rule_uses_una_di(
    shipped: Ruleset, ticket_ref: str | None, reply_to_ticket: str | None, rule: str
) -> None:
    decision = evaluate(shipped, facts(sollecito=True, ticket_ref=ticket_ref, reply_to_ticket=reply_to_ticket))
    assert decision.rule_id == rule


@pytest.mark.parametrize("argomento", ["avviso_bonario", None])
def test_shipped_durc_rule_negates_the_argomento(shipped: Ruleset, argomento: str | None) -> None:
    decision = evaluate(shipped, facts(mailbox="fe-durc", argomento=argomento, unita=None))
    assert (decision.rule_id, decision.reason) == ("durc_casella_non_competente", "casella_non_competente")
    assert evaluate(shipped, facts(mailbox="fe-durc", argomento="durc")).rule_id == "durc_preavvisi"


# -- non / una_di / tutte: validation, with file and line -------------------------------------


@dataclasses.dataclass(frozen=True)
class Bad:
    name: str
    when: str  # the text after `quando:` of rule `prova`
    marker: str  # text of the line the problem must name
    message: str


BAD_SHAPES = [
    Bad("non_con_un_elenco", "{non: [{mailbox: fe-durc}]}", "non: [", "«non» vuole una mappa di condizioni"),
    Bad("non_vuoto", "{non: {}}", "non: {}", "«non» vuole una mappa di condizioni"),
    Bad("non_con_un_valore", "{non: fe-durc}", "non: fe-durc", "«non» vuole una mappa di condizioni"),
    Bad("una_di_con_una_mappa", "{una_di: {mailbox: fe-durc}}", "una_di: {", "«una_di» vuole un elenco di mappe"),
    Bad("una_di_vuoto", "{una_di: []}", "una_di: []", "«una_di» vuole un elenco di mappe"),
    Bad("una_di_con_un_testo", "{una_di: [fe-durc]}", "una_di: [fe", "«una_di» vuole un elenco di mappe"),
    Bad("tutte_con_una_mappa_vuota", "{tutte: [{istanza: true}, {}]}", "tutte: [", "«tutte» vuole un elenco di mappe"),
    Bad(
        "fatto_sconosciuto_in_non",
        "\n      non:\n        casella: fe-durc",
        "casella: fe-durc",
        "fatto sconosciuto: casella",
    ),
    Bad(
        "valore_sconosciuto_in_una_di",
        "\n      una_di:\n        - mailbox: fe-credito\n        - mailbox: fe-crediti",
        "fe-crediti",
        "valore sconosciuto per mailbox: fe-crediti",
    ),
    Bad(
        "operatore_sconosciuto_in_tutte_dentro_non",
        "\n      non:\n        tutte:\n          - istanza: true\n          - subject: {comincia: Re}",
        "comincia: Re",
        "operatore sconosciuto: comincia",
    ),
    Bad(
        "regex_errata_in_una_di",
        '\n      una_di:\n        - istanza: true\n        - subject: {regex: "(["}',
        'regex: "(["',
        "espressione regolare errata",
    ),
]


@pytest.mark.parametrize("bad", BAD_SHAPES, ids=[b.name for b in BAD_SHAPES])
def test_bad_combinator_is_reported_with_file_and_line(tmp_path: Path, bad: Bad) -> None:
    path = write_rules(tmp_path / "regole", "  - id: primo\n    quando: {istanza: true}\n    azione: append\n")
    path.write_text(path.read_text(encoding="utf-8") + one_rule(bad.when), encoding="utf-8")
    line = next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if bad.marker in text)
    with pytest.raises(RulesError) as caught:
        load_ruleset(tmp_path / "regole", CONFIG, TEMPLATES, VOCABULARY)
    located = [str(p) for p in caught.value.problems if str(p).startswith(f"{path}:{line}:")]
    assert any(bad.message in p for p in located), [str(p) for p in caught.value.problems]


def test_every_bad_combinator_is_reported_at_once(tmp_path: Path) -> None:
    body = (
        "  - id: uno\n    quando: {non: [x]}\n    azione: append\n"
        "  - id: due\n    quando: {una_di: {}}\n    azione: append\n"
        "  - id: tre\n    quando: {istanza: true}\n    eccetto: {tutte: fe-durc}\n    azione: append\n" + catch_all()
    )
    path = write_rules(tmp_path / "regole", body)
    with pytest.raises(RulesError) as caught:
        load_ruleset(tmp_path / "regole", CONFIG, TEMPLATES, VOCABULARY)
    problems = [str(p) for p in caught.value.problems]
    assert len(problems) == 3, problems
    assert problems[0].startswith(f"{path}:3:") and "«non»" in problems[0]
    assert problems[1].startswith(f"{path}:6:") and "«una_di»" in problems[1]
    assert problems[2].startswith(f"{path}:10:") and "«tutte»" in problems[2]


# -- continua: true ---------------------------------------------------------------------------

URGENT = """  - id: urgente
    descrizione: Priorità alta e un'etichetta per i messaggi urgenti, chiunque decida.
    quando: {subject: {contiene: urgente}}
    continua: true
    etichette: [urgente]
    priorita: alta
    coda: verifica
    sla: risposta_10gg
    assegnatari: [direttore.fe]
"""

BARE = """  - id: nuda
    descrizione: Decide senza dire coda, SLA, priorità, etichette o assegnatari.
    quando: {gestione: artigiani}
    azione: open_ticket
"""

OWN = """  - id: propria
    descrizione: Decide con i suoi valori.
    quando: {gestione: commercianti}
    azione: open_ticket
    etichette: [credito, urgente]
    priorita: normale
    coda: credito
    sla: lavoro_occasionale_regionale
    assegnatari: [ruolo:unita_credito]
"""


def test_continua_carries_its_settings_to_the_rule_that_decides(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, URGENT + BARE + catch_all())
    decision = evaluate(rules, facts(subject="Artigiani - URGENTE avviso bonario"))
    assert (decision.rule_id, decision.action) == ("nuda", "open_ticket")
    assert decision.tags == ("urgente",)
    assert (decision.priority, decision.queue, decision.sla) == ("alta", "verifica", "risposta_10gg")
    assert decision.assignees == ("direttore.fe",)


def test_the_deciding_rule_wins_where_it_sets_its_own(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, URGENT + OWN + catch_all())
    decision = evaluate(rules, facts(subject="Commercianti - urgente", gestione="commercianti"))
    assert decision.rule_id == "propria"
    assert (decision.priority, decision.queue, decision.sla) == ("normale", "credito", "lavoro_occasionale_regionale")
    assert decision.assignees == ("referente.credito",)
    assert decision.tags == ("credito", "urgente"), "le etichette si sommano, senza doppioni"


def test_continua_that_does_not_hold_carries_nothing(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, URGENT + BARE + catch_all())
    decision = evaluate(rules, facts(subject="Artigiani - avviso bonario"))
    assert decision.rule_id == "nuda"
    assert (decision.tags, decision.priority, decision.queue, decision.sla, decision.assignees) == (
        (),
        None,
        None,
        None,
        (),
    )


def test_continua_excluded_by_eccetto_carries_nothing(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, URGENT + "    eccetto: {mailbox: fe-credito}\n" + BARE + catch_all())
    decision = evaluate(rules, facts(subject="urgente"))
    assert (decision.rule_id, decision.priority, decision.tags) == ("nuda", None, ())
    assert decision.trace[0] == {"rule": "urgente", "matched": False, "why": "esclusa da «eccetto»"}


def test_continua_reaches_a_reject_and_the_rule_that_stops_before_it_is_not_affected(tmp_path: Path) -> None:
    """A `continua` rule only adds to rules after it: a rule that decides earlier does not get its values."""
    body = (
        "  - id: prima\n    quando: {sollecito: true}\n    azione: ignore\n    motivo: loop\n"
        + URGENT
        + "  - id: rifiuto\n    quando: {istanza: true}\n    azione: reject\n    motivo: istanza_non_pec\n"
        "    modelli: [rifiuto_istanza_non_pec]\n" + catch_all()
    )
    rules = ruleset(tmp_path, body)
    earlier = evaluate(rules, facts(subject="urgente", sollecito=True))
    assert (earlier.rule_id, earlier.priority, earlier.tags) == ("prima", None, ())
    reject = evaluate(rules, facts(subject="urgente", istanza=True))
    assert (reject.rule_id, reject.reason, reject.templates) == (
        "rifiuto",
        "istanza_non_pec",
        ("rifiuto_istanza_non_pec",),
    )
    assert (reject.priority, reject.tags) == ("alta", ("urgente",))


def test_several_continua_rules_add_up(tmp_path: Path) -> None:
    more = """  - id: artigiani
    quando: {gestione: artigiani}
    continua: true
    etichette: [artigiani, urgente]
"""
    rules = ruleset(tmp_path, URGENT + more + BARE + catch_all())
    decision = evaluate(rules, facts(subject="urgente"))
    assert decision.rule_id == "nuda"
    assert decision.tags == ("urgente", "artigiani")
    assert [s["rule"] for s in decision.trace if s["matched"]] == ["urgente", "artigiani", "nuda"]


def test_continua_also_applies_when_no_rule_decides(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, URGENT + BARE)
    decision = evaluate(rules, facts(subject="urgente", gestione="commercianti"))
    assert (decision.rule_id, decision.action) == ("predefinita", "open_ticket")
    assert (decision.priority, decision.queue, decision.tags) == ("alta", "verifica", ("urgente",))


def test_queue_placeholder_of_a_continua_rule_is_filled(tmp_path: Path) -> None:
    rules = ruleset(
        tmp_path,
        '  - id: per_casella\n    quando: {}\n    continua: true\n    coda: "coda_{mailbox}"\n' + BARE,
    )
    assert evaluate(rules, facts()).queue == "coda_fe-credito"


def test_continua_that_always_holds_does_not_hide_later_rules(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, "  - id: sempre\n    quando: {}\n    continua: true\n    priorita: bassa\n" + BARE)
    decision = evaluate(rules, facts())
    assert (decision.rule_id, decision.priority) == ("nuda", "bassa")


def test_continua_rule_is_shown_as_matched_in_the_trace(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, URGENT + BARE + catch_all())
    decision = evaluate(rules, facts(subject="urgente"))
    assert decision.trace[0] == {"rule": "urgente", "matched": True, "why": "vale; si prosegue («continua»)"}
    assert decision.trace[1] == {"rule": "nuda", "matched": True, "why": "tutte le condizioni valgono"}
    text = render_explanation({"mailbox": "fe-credito", **decision.to_dict()})
    assert "✔ urgente: vale; si prosegue («continua»)" in text
    assert "✔ nuda: tutte le condizioni valgono" in text


# -- continua: validation -------------------------------------------------------------------------

CONTINUA_ERRORS = [
    ("azione", "    azione: open_ticket\n", "azione: open_ticket", "una regola con «continua: true» non ha azione"),
    ("motivo", "    motivo: loop\n", "motivo: loop", "una regola con «continua: true» non può avere «motivo»"),
    (
        "modelli",
        "    modelli: [rifiuto_casella_dismessa]\n",
        "modelli:",
        "una regola con «continua: true» non può avere «modelli»",
    ),
    (
        "inoltra_a",
        "    inoltra_a: [casella:fe-credito]\n",
        "inoltra_a:",
        "una regola con «continua: true» non può avere «inoltra_a»",
    ),
]


@pytest.mark.parametrize(("name", "extra", "marker", "message"), CONTINUA_ERRORS, ids=[c[0] for c in CONTINUA_ERRORS])
def test_continua_rule_cannot_decide(tmp_path: Path, name: str, extra: str, marker: str, message: str) -> None:
    path = write_rules(tmp_path / "regole", URGENT + extra + BARE + catch_all())
    line = next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if marker in text)
    with pytest.raises(RulesError) as caught:
        load_ruleset(tmp_path / "regole", CONFIG, TEMPLATES, VOCABULARY)
    [problem] = caught.value.problems
    assert str(problem).startswith(f"{path}:{line}: regole[0].{name}: {message}"), str(problem)


def test_continua_must_be_true_or_false(tmp_path: Path) -> None:
    path = write_rules(tmp_path / "regole", URGENT.replace("continua: true", "continua: sì") + BARE)
    line = next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "continua: sì" in text)
    with pytest.raises(RulesError) as caught:
        load_ruleset(tmp_path / "regole", CONFIG, TEMPLATES, VOCABULARY)
    problems = [str(p) for p in caught.value.problems]
    assert any(p.startswith(f"{path}:{line}: ") and "«continua» vuole true o false" in p for p in problems), problems


def test_continua_false_is_an_ordinary_rule(tmp_path: Path) -> None:
    rules = ruleset(tmp_path, BARE.replace("    azione:", "    continua: false\n    azione:") + catch_all())
    assert evaluate(rules, facts()).rule_id == "nuda"
    with pytest.raises(RulesError, match="azione non valida"):
        ruleset(tmp_path, "  - id: senza_azione\n    quando: {}\n    continua: false\n")


# -- explain and the pipeline with a continua rule in the rules file ------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project whose rules.yaml starts with the `urgente` continua rule."""
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    for name in ("templates", "certs"):
        (tmp_path / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "routing_rules", tmp_path / "routing_rules")
    rules = tmp_path / "routing_rules" / "rules.yaml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text.replace("regole:\n", "regole:\n" + URGENT + "\n", 1), encoding="utf-8")
    monkeypatch.setenv("SPORTELLO_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv("SPORTELLO_ARCHIVE_DIR", str(tmp_path / "archive"))
    return tmp_path


URGENT_MAIL = {
    "subject": "Artigiani - urgente: richiesta informazioni avviso bonario n. 5/2026",
    "body": "Buongiorno,\nchiedo chiarimenti sull'avviso bonario n. 5/2026.\n",
}


def test_explain_shows_the_continua_rule_as_matched(workdir: Path) -> None:
    eml = workdir / "urgente.eml"
    eml.write_bytes(citizen_mail("GestioneCredito.Ferrara@inps.example", 5, **URGENT_MAIL))
    config = ["--config", str(workdir / "config.yaml")]

    result = CliRunner().invoke(app, ["explain", str(eml), "--mailbox", "fe-credito", "--json", *config])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["rule"], data["action"], data["queue"]) == ("unita_credito", "open_ticket", "credito")
    assert (data["priority"], data["tags"]) == ("alta", ["urgente"])
    assert data["assignees"] == ["referente.credito"], "gli assegnatari della regola che decide prevalgono"
    assert data["trace"][0] == {"rule": "urgente", "matched": True, "why": "vale; si prosegue («continua»)"}
    assert data["trace"][-1]["rule"] == "unita_credito" and data["trace"][-1]["matched"] is True

    result = CliRunner().invoke(app, ["explain", str(eml), "--mailbox", "fe-credito", *config])
    assert result.exit_code == 0, result.output
    assert "✔ urgente: vale; si prosegue («continua»)" in result.output
    assert "✔ unita_credito: tutte le condizioni valgono" in result.output


def test_pipeline_records_what_a_continua_rule_carries(workdir: Path) -> None:
    cfg: Config = load_config(workdir / "config.yaml")
    service = Service(cfg)
    try:
        raw = citizen_mail(cfg.mailbox("fe-credito").address, 6, **URGENT_MAIL)
        [outcome] = service.ingest([InboundItem(raw=raw, mailbox_id="fe-credito")])
        assert (outcome.outcome, outcome.rule_id) == ("opened", "unita_credito")
        with service.session_factory() as s:
            ticket = s.get(Ticket, outcome.ticket_id)
            assert ticket is not None
            assert (ticket.queue, ticket.priority, ticket.tags) == ("credito", "alta", ["urgente"])
    finally:
        service.close()
