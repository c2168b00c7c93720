"""routing_rules/FONTI.md traces every rule and every vocabulary entry to its source document."""

from __future__ import annotations

import re

from daemon.classify import load_vocabularies
from daemon.rules import load_ruleset
from tests.support.paths import ROOT

FONTI = (ROOT / "routing_rules" / "FONTI.md").read_text(encoding="utf-8")
# The table rows: `id` in the first column, the source document (000-004 or the project) in a later one.
ROWS = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z0-9_.]+)`[^|]*\|(.*)$", FONTI, flags=re.MULTILINE)}


def _source_of(entry_id: str) -> str:
    assert entry_id in ROWS, f"{entry_id} non è in FONTI.md"
    return ROWS[entry_id]


def test_every_rule_has_a_row_with_its_source_document() -> None:
    for rule in load_ruleset(ROOT / "routing_rules").rules:
        row = _source_of(rule.id)
        assert rule.source and rule.source in row, f"{rule.id}: la fonte di FONTI.md non è quella di rules.yaml"
        assert re.search(r"\b00[0-4]\b|DESIGN\.md", row), rule.id


def test_every_vocabulary_entry_has_a_row_with_its_source_document() -> None:
    vocab = load_vocabularies(ROOT / "routing_rules")
    ids = [e.id for e in vocab.gestioni] + [e.id for e in vocab.argomenti]
    ids += [f"telematizzate.{e.id}" for e in vocab.telematizzate] + ["istanza", "informativa", "sollecito"]
    for entry_id in ids:
        assert re.search(r"\b00[0-4]\b", _source_of(entry_id)), entry_id
    for entry in vocab.argomenti:
        assert entry.source and entry.source in _source_of(entry.id), entry.id
