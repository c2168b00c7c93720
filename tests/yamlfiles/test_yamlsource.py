"""YAML syntax errors as an admin reads them: in Italian, on the line to fix."""

from __future__ import annotations

import pytest

from daemon.yamlfiles.source import YamlSyntaxError, load_yaml

CASES = [
    (
        "graffa_non_chiusa",
        "regole:\n  - id: a\n    quando: {mailbox: fe-durc\n    azione: ignore\n",
        "f.yaml:4: YAML non valido: una mappa { } non è chiusa o manca una virgola (la struttura inizia alla riga 3)",
    ),
    ("tabulazione", "regole:\n\t- id: a\n", "f.yaml:2: YAML non valido: tabulazione: per i rientri usare spazi"),
    (
        "due_punti_nel_valore",
        "regole:\n  - id: a\n    quando: x: y\n",
        "f.yaml:3: YAML non valido: «chiave: valore» non ammesso qui (rientro o virgolette?)",
    ),
    (
        "elenco_non_chiuso",
        "a: [1, 2\nb: 3\n",
        "f.yaml:2: YAML non valido: un elenco [ ] non è chiuso o manca una virgola (la struttura inizia alla riga 1)",
    ),
    (
        "virgolette_non_chiuse",
        'a: "ciao\nb: 3\n',
        "f.yaml:3: YAML non valido: il file finisce prima della chiusura (virgolette o parentesi aperte?)",
    ),
    ("alias", "a: *x\n", "f.yaml:1: YAML non valido: alias (*nome) non definito"),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_syntax_errors_are_explained_in_italian_with_their_line(name: str, text: str, expected: str) -> None:
    with pytest.raises(YamlSyntaxError) as info:
        load_yaml("f.yaml", text)
    assert str(info.value).startswith(expected)


def test_an_unlisted_problem_keeps_pyyaml_s_own_words() -> None:
    with pytest.raises(YamlSyntaxError, match=r"f\.yaml:1: YAML non valido: "):
        load_yaml("f.yaml", "a: !!python/object:os.system x\n")
