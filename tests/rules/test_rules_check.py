"""`sportello rules check`: 0 on the shipped rules; 1 on broken variants, naming file, line and problem.

Each variant edits a copy of routing_rules/ (beside a copy of config.yaml, templates/ and certs/) and
states the line the message must point at by a marker: the first line of the edited file that
contains it.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from daemon.cli.main import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what `rules check` reads: config.yaml, routing_rules/, templates/, certs/."""
    for name in ("routing_rules", "templates", "certs"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    return tmp_path


def check(project: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["rules", "check", "--config", str(project / "config.yaml"), *extra])
    return result.exit_code, result.output


def edit(path: Path, old: str, new: str) -> str:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= 1, f"{old!r} non è in {path.name}"
    text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    return text


def line_of(text: str, marker: str, occurrence: int = 1) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if marker in line]
    assert len(lines) >= occurrence, f"{marker!r} non trovato"
    return lines[occurrence - 1]


def test_shipped_rules_are_valid() -> None:
    code, output = check(ROOT)
    assert code == 0, output
    assert re.search(r"Regole valide: 37 regole, versione [0-9a-f]{12}", output), output


def test_copy_of_the_project_is_valid(project: Path) -> None:
    code, output = check(project)
    assert code == 0, output
    assert "Regole valide:" in output


@dataclass(frozen=True)
class Variant:
    name: str
    old: str
    new: str
    marker: str  # text of the line the message must name
    message: str  # a fragment of the Italian message
    occurrence: int = 1


UNA_DI = "una_di: [{ticket_ref: {presente: true}}, {reply_to_ticket: {presente: true}}]"
CONTINUA = """  - id: etichetta_urgente
    descrizione: I messaggi urgenti hanno priorità alta, chiunque decida.
    quando: {subject: {contiene: urgente}}
    continua: true
"""

VARIANTS = [
    Variant(
        "sintassi_yaml",
        "  - id: casella_dismessa\n",
        "  - id: casella_dismessa\n   descrizione: rientro sbagliato\n",
        "rientro sbagliato",
        "YAML non valido",
    ),
    Variant(
        "sintassi_yaml_valore_sotto_un_altro",
        "    quando: {reply_to_ticket: {presente: true}}\n    azione: append\n",
        "    quando: {reply_to_ticket: {presente: true}}\n    azione: append\n      coda: sbagliata\n",
        "coda: sbagliata",
        "YAML non valido",
    ),
    Variant(
        "fatto_sconosciuto",
        "quando: {mailbox_status: dismessa}",
        "quando: {stato_casella: dismessa}",
        "stato_casella",
        "fatto sconosciuto: stato_casella",
    ),
    Variant(
        "operatore_sconosciuto",
        "quando: {automatic: {presente: true}}",
        "quando: {automatic: {esiste: true}}",
        "esiste: true",
        "operatore sconosciuto: esiste",
    ),
    Variant(
        "azione_sconosciuta",
        "    azione: reject\n    motivo: casella_dismessa\n",
        "    azione: rifiuta\n    motivo: casella_dismessa\n",
        "azione: rifiuta",
        "azione non valida: 'rifiuta'",
    ),
    Variant(
        "rifiuto_senza_motivo",
        "    motivo: casella_dismessa\n",
        "",
        "- id: casella_dismessa",
        "l'azione reject richiede un motivo",
    ),
    Variant(
        "motivo_sconosciuto",
        "motivo: casella_dismessa",
        "motivo: casella_chiusa",
        "casella_chiusa",
        "motivo sconosciuto: casella_chiusa",
    ),
    Variant(
        "modello_inesistente",
        "modelli: [rifiuto_casella_dismessa]",
        "modelli: [rifiuto_casella_chiusa]",
        "rifiuto_casella_chiusa",
        "modello inesistente: rifiuto_casella_chiusa (manca templates/rifiuto_casella_chiusa.j2)",
    ),
    Variant(
        "id_duplicato",
        "- id: unita_anagrafica",
        "- id: unita_credito",
        "- id: unita_credito",
        "id di regola duplicato: unita_credito",
        occurrence=2,
    ),
    Variant(
        "espressione_regolare_errata",
        "quando: {reply_to_ticket: {presente: true}}",
        'quando: {reply_to_ticket: {presente: true}, subject: {regex: "pratica ([0-9]+"}}',
        "pratica ([0-9]+",
        "espressione regolare errata",
    ),
    Variant(
        "persona_sconosciuta",
        "assegnatari: [direttore.fe]",
        "assegnatari: [direttore.ferrara]",
        "direttore.ferrara",
        "persona sconosciuta: direttore.ferrara",
    ),
    Variant(
        "ruolo_sconosciuto",
        "assegnatari: [ruolo:unita_credito]",
        "assegnatari: [ruolo:unita_crediti]",
        "ruolo:unita_crediti",
        "nessuna persona ha il ruolo unita_crediti",
    ),
    Variant(
        "tra_senza_elenco",
        "eccetto: {mailbox: [fe-durc, fe-direzione]}",
        "eccetto: {mailbox: {tra: fe-durc}}",
        "{tra: fe-durc}",
        "«tra» vuole un elenco di valori",
    ),
    Variant(
        "manca_regole",
        "regole:\n",
        "regola:\n",
        "regola:",
        "il file deve contenere «regole:» con un elenco di regole (trovato «regola:»)",
    ),
    Variant(
        "chiave_sconosciuta",
        "    descrizione: Tutto il resto",
        "    descrizzione: Tutto il resto",
        "descrizzione:",
        "chiave sconosciuta: descrizzione",
    ),
    Variant(
        "casella_sconosciuta_in_condizione",
        "quando: {mailbox: fe-durc}",
        "quando: {mailbox: fe-drc}",
        "fe-drc",
        "valore sconosciuto per mailbox: fe-drc",
    ),
    Variant(
        "gestione_sconosciuta",
        "gestione: aziende_agricole\n",
        "gestione: aziende_agricoli\n",
        "aziende_agricoli",
        "valore sconosciuto per gestione: aziende_agricoli",
    ),
    Variant(
        "vero_falso_scritto_come_testo",
        "quando: {sollecito: true, ticket_ref",
        "quando: {sollecito: si, ticket_ref",
        "sollecito: si",
        "sollecito vale true o false, non 'si'",
    ),
    Variant(
        "almeno_su_un_fatto_non_numerico",
        "quando: {mailbox: fe-durc}",
        "quando: {mailbox: fe-durc, subject: {almeno: 3}}",
        "almeno: 3",
        "«almeno» vale solo per fatti numerici",
    ),
    Variant(
        "segnaposto_di_casella_sconosciuta",
        'indirizzo_corretto: "{casella_indirizzi[er-lavoro-occasionale]}"',
        'indirizzo_corretto: "{casella_indirizzi[er-lavoro]}"',
        "casella_indirizzi[er-lavoro]",
        "casella sconosciuta nel segnaposto: er-lavoro",
    ),
    Variant(
        "regola_senza_quando",
        "    quando: {mailbox: fe-direzione}\n",
        "",
        "- id: quesito_normativo_ordine",
        "manca «quando»",
    ),
    Variant(
        "regola_irraggiungibile_dopo_una_che_vale_sempre",
        "quando: {unita: credito}",
        "quando: {}",
        "- id: unita_anagrafica",
        "regola irraggiungibile: unita_anagrafica viene dopo «unita_credito»",
    ),
    # Combinators: non (a map of conditions), una_di and tutte (a list of maps), inside quando and eccetto.
    Variant(
        "una_di_senza_elenco",
        UNA_DI,
        "una_di: {ticket_ref: {presente: true}}",
        "una_di: {ticket_ref",
        "«una_di» vuole un elenco di mappe di condizioni",
    ),
    Variant(
        "una_di_elenco_vuoto",
        UNA_DI,
        "una_di: []",
        "una_di: []",
        "«una_di» vuole un elenco di mappe di condizioni",
    ),
    Variant(
        "una_di_con_fatto_sconosciuto",
        UNA_DI,
        "una_di: [{ticket_ref: {presente: true}}, {risposta_a: {presente: true}}]",
        "risposta_a",
        "fatto sconosciuto: risposta_a",
    ),
    Variant(
        "tutte_con_un_elemento_che_non_e_una_mappa",
        "      sollecito: true\n      una_di:",
        "      tutte: [{sollecito: true}, ticket_ref]\n      una_di:",
        "tutte: [",
        "«tutte» vuole un elenco di mappe di condizioni",
    ),
    Variant(
        "non_con_un_elenco",
        "quando: {mailbox: fe-durc, argomento: {non: durc}}",
        "quando: {mailbox: fe-durc, non: [{argomento: durc}]}",
        "non: [{argomento",
        "«non» vuole una mappa di condizioni",
    ),
    Variant(
        "non_con_un_valore_sconosciuto",
        "quando: {mailbox: fe-durc, argomento: {non: durc}}",
        "quando: {mailbox: fe-durc, non: {argomento: drc}}",
        "non: {argomento: drc}",
        "valore sconosciuto per argomento: drc",
    ),
    Variant(
        "combinatore_in_eccetto",
        "eccetto: {mailbox: [fe-durc, fe-direzione]}",
        "eccetto: {una_di: {mailbox: fe-durc}}",
        "eccetto: {una_di",
        "«una_di» vuole un elenco di mappe di condizioni",
    ),
    Variant(
        "combinatori_annidati_su_piu_righe",
        UNA_DI,
        "una_di:\n"
        "        - ticket_ref: {presente: true}\n"
        "        - tutte:\n"
        "            - reply_to_ticket: {presente: true}\n"
        '            - non: {subject: {regex: "(["}}',
        '{regex: "(["}',
        "espressione regolare errata",
    ),
    Variant(
        "combinatori_annidati_operatore_sconosciuto",
        UNA_DI,
        "una_di:\n"
        "        - ticket_ref: {presente: true}\n"
        "        - non:\n"
        "            reply_to_ticket: {presenza: false}",
        "presenza: false",
        "operatore sconosciuto: presenza",
    ),
    # `continua: true`: no action of its own; it adds tags, priority, queue, SLA for the rule that decides.
    Variant(
        "continua_con_azione",
        "  - id: generale\n",
        CONTINUA + "    azione: open_ticket  # azione di troppo\n    priorita: alta\n\n  - id: generale\n",
        "# azione di troppo",
        "una regola con «continua: true» non ha azione",
    ),
    Variant(
        "continua_con_motivo",
        "  - id: generale\n",
        CONTINUA + "    motivo: loop\n    priorita: alta\n\n  - id: generale\n",
        "motivo: loop",
        "una regola con «continua: true» non può avere «motivo»",
    ),
    Variant(
        "continua_con_modelli",
        "  - id: generale\n",
        CONTINUA + "    modelli: [rifiuto_casella_dismessa]  # di troppo\n\n  - id: generale\n",
        "# di troppo",
        "una regola con «continua: true» non può avere «modelli»",
    ),
    Variant(
        "continua_non_vero_o_falso",
        "  - id: generale\n",
        CONTINUA.replace("continua: true", "continua: forse") + "    priorita: alta\n\n  - id: generale\n",
        "continua: forse",
        "«continua» vuole true o false",
    ),
]


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_broken_variant_exits_1_naming_file_line_and_problem(project: Path, variant: Variant) -> None:
    rules = project / "routing_rules" / "rules.yaml"
    text = edit(rules, variant.old, variant.new)
    line = line_of(text, variant.marker, variant.occurrence)
    code, output = check(project)
    assert code == 1, output
    assert "Regole non valide" in output
    located = [row for row in output.splitlines() if f"{rules}:{line}:" in row]
    assert located, f"nessun problema alla riga {line}:\n{output}"
    assert any(variant.message in row for row in located), output


def test_combinators_and_continua_rules_are_valid(project: Path) -> None:
    """A `continua` rule that always holds hides nothing after it; combinators nest in quando and eccetto."""
    rules = project / "routing_rules" / "rules.yaml"
    edit(
        rules,
        "regole:\n",
        "regole:\n"
        "  - id: etichetta_smistata\n"
        "    quando: {}\n"
        "    continua: true\n"
        "    etichette: [smistata]\n"
        "    priorita: normale\n"
        "  - id: urgenti\n"
        "    quando:\n"
        "      una_di:\n"
        "        - subject: {contiene: urgente}\n"
        "        - tutte: [{sollecito: true}, {non: {ticket_ref: {presente: true}}}]\n"
        "    eccetto: {non: {mailbox: [fe-credito, fe-anagrafica]}}\n"
        "    continua: true\n"
        "    priorita: alta\n"
        "    coda: normativa\n",
    )
    code, output = check(project)
    assert code == 0, output
    assert "Regole valide: 39 regole" in output


def test_every_problem_is_reported_at_once(project: Path) -> None:
    rules = project / "routing_rules" / "rules.yaml"
    edit(rules, "quando: {mailbox_status: dismessa}", "quando: {stato_casella: dismessa}")
    edit(rules, "modelli: [rifiuto_canale_non_ammesso]", "modelli: [rifiuto_canale]")
    edit(rules, "assegnatari: [direttore.fe]", "assegnatari: [direttore.ferrara]")
    code, output = check(project)
    assert code == 1
    assert "(3 problemi)" in output
    for fragment in ("stato_casella", "rifiuto_canale ", "direttore.ferrara"):
        assert fragment in output


def test_empty_rules_file_names_line_1(project: Path) -> None:
    rules = project / "routing_rules" / "rules.yaml"
    rules.write_text("# tutte le regole cancellate per errore\n", encoding="utf-8")
    code, output = check(project)
    assert code == 1
    assert f"{rules}:1: il file deve contenere «regole:»" in output


def test_missing_rules_file(project: Path) -> None:
    (project / "routing_rules" / "rules.yaml").unlink()
    code, output = check(project)
    assert code == 1
    assert "rules.yaml: file delle regole non trovato" in output


def test_broken_vocabulary_is_reported_with_file_and_line(project: Path) -> None:
    gestioni = project / "routing_rules" / "gestioni.yaml"
    text = edit(gestioni, "    etichetta: Artigiani\n", "    etichetta: Artigiani: rientro sbagliato\n")
    line = line_of(text, "rientro sbagliato")
    code, output = check(project)
    assert code == 1, output
    assert f"{gestioni}:{line}: YAML non valido" in output


def test_broken_template_is_reported_with_file_and_line(project: Path) -> None:
    template = project / "templates" / "rifiuto_casella_dismessa.j2"
    text = template.read_text(encoding="utf-8")
    template.write_text(text.replace("{% endblock %}", "{% endblok %}", 1), encoding="utf-8")
    code, output = check(project)
    assert code == 1, output
    assert re.search(rf"{re.escape(str(template))}:\d+: modello non valido", output), output


def test_rules_dir_option_checks_a_draft_folder(project: Path, tmp_path: Path) -> None:
    draft = tmp_path / "bozza"
    shutil.copytree(project / "routing_rules", draft)
    edit(draft / "rules.yaml", "motivo: casella_dismessa", "motivo: casella_chiusa")
    code, output = check(project, "--rules-dir", str(draft))
    assert code == 1
    assert str(draft / "rules.yaml") in output
    assert check(project)[0] == 0  # the rules in force are untouched


def test_invalid_configuration_exits_2(project: Path) -> None:
    config = project / "config.yaml"
    edit(config, "  answer_working_days: 10", "  answer_working_days: dieci")
    result = CliRunner().invoke(app, ["rules", "check", "--config", str(config)])
    assert result.exit_code == 2
    assert "Configurazione non valida" in result.output


@pytest.mark.parametrize(
    ("old", "new", "marker", "message"),
    [
        (
            "    coda: istanze\n",
            "    coda: istanze_urgenti\n",
            "coda: istanze_urgenti",
            "coda sconosciuta: istanze_urgenti",
        ),
        (
            "    sla: normativa_ordine\n",
            "    sla: normativa_veloce\n",
            "sla: normativa_veloce",
            "politica SLA sconosciuta: normativa_veloce",
        ),
    ],
    ids=["coda_non_definita_in_code", "politica_sla_non_definita"],
)
def test_queues_and_sla_policies_must_exist(project: Path, old: str, new: str, marker: str, message: str) -> None:
    rules = project / "routing_rules" / "rules.yaml"
    text = edit(rules, old, new)
    code, output = check(project)
    assert code == 1, output
    assert f"{rules}:{line_of(text, marker)}:" in output and message in output


def test_shipped_rules_all_name_their_source() -> None:
    code, output = check(ROOT)
    assert code == 0, output
    assert "non indica la fonte" not in output, output


def test_rule_without_source_is_a_warning_with_file_and_line(project: Path) -> None:
    rules = project / "routing_rules" / "rules.yaml"
    text = edit(rules, '    fonte: "002, allegato 1, punto 2.1.b"\n', "")
    code, output = check(project)
    assert code == 0, "un avviso non rende le regole non valide"
    line = line_of(text, "id: cassetto_aziende_agricole")
    assert f"rules.yaml:{line}: la regola cassetto_aziende_agricole non indica la fonte" in output, output
    assert output.count("non indica la fonte") == 1, "solo la regola senza fonte"
