"""The vocabularies are data: editing them changes the classification without code changes, and a
broken file is reported with its name and the line to fix."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.classify import Classification, VocabularyError, classify, load_vocabularies
from daemon.classify.vocabulary import FILES
from tests.classify.corpus import RULES
from tests.support.messages import message


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    """A private copy of the shipped vocabularies."""
    target = tmp_path / "routing_rules"
    target.mkdir()
    for name in FILES:
        shutil.copy(RULES / name, target / name)
    return target


def edit(path: Path, old: str, new: str) -> int:
    """Replace `old` (which must occur once) by `new`; the 1-based line where `new` starts."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    at = text.index(old)
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[:at].count("\n") + 1


def append(path: Path, addition: str) -> int:
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + addition, encoding="utf-8")
    return text.count("\n") + 1


def run(rules_dir: Path, subject: str, body: str = "") -> Classification:
    return classify(message(subject, body), load_vocabularies(rules_dir))


# --- editing a vocabulary changes the result ---------------------------------------------------------


def test_adding_a_word_to_a_gestione(rules: Path) -> None:
    subject = "Braccianti stagionali - contributi 2025"
    assert run(rules, subject).gestione is None
    edit(rules / "gestioni.yaml", "parole: [aziende agricole,", "parole: [braccianti, aziende agricole,")
    cls = run(rules, subject)
    assert cls.gestione == "aziende_agricole"
    assert any(e.field == "gestione" and e.term == "braccianti" and e.where == "oggetto" for e in cls.evidence)
    # a typo of one letter in the new word is tolerated, as for every long word
    assert run(rules, "Bracciandi stagionali - contributi").gestione == "aziende_agricole"
    assert run(RULES, subject).gestione is None  # the shipped files are untouched


def test_adding_an_abbreviation_and_an_exception(rules: Path) -> None:
    assert run(rules, "GEST.DOM. - contributi").gestione is None
    edit(rules / "gestioni.yaml", "abbreviazioni: [DM, ACD]", "abbreviazioni: [DM, ACD, GEST.DOM.]")
    assert run(rules, "GEST.DOM. - contributi").gestione == "aziende_con_dipendenti"
    # "prestatore di lavoro" is not a prestatore of PrestO once the admin says so
    assert run(rules, "Prestatore di lavoro - orario").gestione == "lavoro_occasionale"
    edit(rules / "gestioni.yaml", "eccezioni: [al piu presto,", "eccezioni: [prestatore di lavoro, al piu presto,")
    assert run(rules, "Prestatore di lavoro - orario").gestione is None


def test_new_telematizzata_and_istanza_words(rules: Path) -> None:
    subject = "Commercianti - si chiede il bonus nuove imprese"
    assert not run(rules, subject).istanza
    edit(rules / "istanze.yaml", "  oggetti: [rimborso,", "  oggetti: [bonus, rimborso,")
    assert run(rules, subject).istanza and run(rules, subject).telematizzata is None
    append(
        rules / "istanze.yaml",
        "  bonus_imprese:\n"
        "    etichetta: Bonus nuove imprese\n"
        '    servizio_online: "Servizio online «Bonus nuove imprese»"\n'
        "    parole: [bonus nuove imprese]\n",
    )
    cls = run(rules, subject)
    assert cls.telematizzata == "bonus_imprese"
    assert cls.servizio_online == "Servizio online «Bonus nuove imprese»"


def test_argomento_and_its_unit_come_from_the_file(rules: Path) -> None:
    subject = "Artigiani - NASpI anticipata"
    assert run(rules, subject).argomento is None
    append(
        rules / "argomenti.yaml",
        "  naspi:\n    etichetta: NASpI\n    unita: verifica\n    parole: [naspi, disoccupazione]\n",
    )
    cls = run(rules, subject)
    assert (cls.argomento, cls.unita) == ("naspi", "verifica")


def test_a_telematizzata_can_depend_on_the_gestione(rules: Path) -> None:
    body = "Chiedo il rimborso dei contributi versati due volte."
    assert run(rules, "LD - rimborso", body).telematizzata == "rimborso_domestici"
    assert run(rules, "Artigiani - rimborso", body).telematizzata is None
    edit(rules / "istanze.yaml", "    gestioni: [lavoratori_domestici]\n    parole: [rimborso,",
         "    gestioni: [lavoratori_domestici, artigiani]\n    parole: [rimborso,")  # fmt: skip
    assert run(rules, "Artigiani - rimborso", body).telematizzata == "rimborso_domestici"


# --- broken vocabularies are reported with file and line ----------------------------------------------


def _problem_at(exc: VocabularyError, file: Path, line: int, fragment: str) -> None:
    located = [p for p in exc.problems if p.file == str(file) and p.line == line]
    assert located, f"nessun problema a {file.name}:{line}; segnalati:\n{exc}"
    assert any(fragment in p.message for p in located), str(exc)
    assert f"{file.name}:{line}" in str(exc)


Breakage = Callable[[Path], tuple[Path, int, str]]


def duplicate_word(rules: Path) -> tuple[Path, int, str]:
    path = rules / "gestioni.yaml"
    return path, edit(path, "parole: [commercianti,", "parole: [colf, commercianti,"), "già una parola di"


def duplicate_word_in_argomenti(rules: Path) -> tuple[Path, int, str]:
    path = rules / "argomenti.yaml"
    line = edit(path, "parole: [quesito normativo,", "parole: [durc, quesito normativo,")
    return path, line, "«durc» è già una parola di durc"


def id_without_words(rules: Path) -> tuple[Path, int, str]:
    path = rules / "gestioni.yaml"
    return path, append(path, "  nuova_gestione:\n    etichetta: Nuova gestione\n"), "nuova_gestione: nessuna parola"


def bad_regular_expression(rules: Path) -> tuple[Path, int, str]:
    path = rules / "istanze.yaml"
    line = edit(path, r"espressioni: ['\b191\s*/\s*2009\b']", "espressioni: ['(191/2009']")
    return path, line, "espressione regolare errata"


def unknown_unit(rules: Path) -> tuple[Path, int, str]:
    path = rules / "argomenti.yaml"
    line = edit(path, "    etichetta: DURC\n    unita: verifica\n", "    etichetta: DURC\n    unita: ispettorato\n")
    return path, line + 1, "unità sconosciuta 'ispettorato'"


def unknown_key(rules: Path) -> tuple[Path, int, str]:
    path = rules / "gestioni.yaml"
    line = edit(path, "    abbreviazioni: [DM, ACD]\n", "    abbreviazoni: [DM, ACD]\n")
    return path, line, "chiave sconosciuta «abbreviazoni»"


def unknown_gestione(rules: Path) -> tuple[Path, int, str]:
    path = rules / "istanze.yaml"
    line = edit(path, "    gestioni: [lavoratori_domestici]\n    parole: [rimborso,",
                "    gestioni: [domestici]\n    parole: [rimborso,")  # fmt: skip
    return path, line, "gestione sconosciuta 'domestici'"


def empty_word(rules: Path) -> tuple[Path, int, str]:
    path = rules / "gestioni.yaml"
    return path, edit(path, "    errori: [artiggiani]", "    errori: [artiggiani, '--']"), "parola vuota"


def bad_distance(rules: Path) -> tuple[Path, int, str]:
    path = rules / "istanze.yaml"
    return path, edit(path, "  distanza: 4", "  distanza: molte"), "numero intero"


def yaml_syntax_error(rules: Path) -> tuple[Path, int, str]:
    path = rules / "gestioni.yaml"
    return path, edit(path, "    errori: [artiggiani]", "\terrori: [artiggiani]"), "YAML non valido"


@pytest.mark.parametrize(
    "breakage",
    [
        duplicate_word,
        duplicate_word_in_argomenti,
        id_without_words,
        bad_regular_expression,
        unknown_unit,
        unknown_key,
        unknown_gestione,
        empty_word,
        bad_distance,
        yaml_syntax_error,
    ],
)
def test_broken_vocabulary_names_file_and_line(rules: Path, breakage: Breakage) -> None:
    path, line, fragment = breakage(rules)
    with pytest.raises(VocabularyError) as info:
        load_vocabularies(rules)
    _problem_at(info.value, path, line, fragment)


def test_every_problem_is_reported_at_once(rules: Path) -> None:
    first = duplicate_word(rules)
    second = bad_regular_expression(rules)
    third = unknown_unit(rules)
    with pytest.raises(VocabularyError) as info:
        load_vocabularies(rules)
    for path, line, fragment in (first, second, third):
        _problem_at(info.value, path, line, fragment)


def test_missing_file(rules: Path) -> None:
    (rules / "argomenti.yaml").unlink()
    with pytest.raises(VocabularyError, match="argomenti.yaml: file del vocabolario non trovato"):
        load_vocabularies(rules)


def test_shipped_vocabularies_load() -> None:
    vocab = load_vocabularies(RULES)
    assert {e.id for e in vocab.gestioni} == {
        "aziende_con_dipendenti",
        "lavoratori_domestici",
        "artigiani",
        "commercianti",
        "gestione_separata",
        "aziende_agricole",
        "autonomi_agricoli",
        "sport_spettacolo",
        "dipendenti_pubblici",
        "lavoro_occasionale",
    }
    assert all(e.online_service for e in vocab.telematizzate)
    assert all(a.unit in vocab.units for a in vocab.argomenti)


def test_an_expression_with_a_leading_inline_flag_works_like_the_others(rules: Path) -> None:
    # `(?i)` is legal on its own; the expressions are searched together, where a global flag is not.
    subject = "Artigiani - agevolazioni legge 191/2009 richiesta"
    assert run(rules, subject).argomento == "sgravi_agevolazioni"
    edit(rules / "istanze.yaml", r"espressioni: ['\b191\s*/\s*2009\b']", r"espressioni: ['(?i)\b191\s*/\s*2009\b']")
    cls = run(rules, subject)
    assert cls.argomento == "sgravi_agevolazioni"
    assert any(e.field == "argomento" and e.term == "191/2009" for e in cls.evidence)
