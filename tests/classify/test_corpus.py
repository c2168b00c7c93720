"""The classifier against the labelled corpus (tests/corpus/messages.yaml).

Each message is built as a real email, parsed with the intake parser and classified with the shipped
vocabularies. Codici fiscali, istanza, domanda telematizzata, sollecito, ticket and matricola are
asserted message by message. Gestione and argomento keep a few genuinely ambiguous messages (the
labels say what a human would answer, not what the classifier does), so they are held to accuracy
thresholds instead, with every miss listed.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from daemon.classify import Classification, classify, load_vocabularies
from daemon.mail.message import parse_message
from tests.classify.corpus import FIELDS, OPTIONAL_FIELDS, RULES, Case, load_corpus, mismatches, raw_email

CASES = load_corpus()
PER_MESSAGE = (
    "codici_fiscali",
    "codici_fiscali_non_validi",
    "istanza",
    "telematizzata",
    "sollecito",
    "ticket_ref",
    "matricola",
)
# The acceptance targets of issue 3, plus argomento (optional label, only where a human would be sure).
THRESHOLDS = {
    "codici_fiscali": 0.99,
    "codici_fiscali_non_validi": 0.99,
    "gestione": 0.99,
    "istanza": 0.99,
    "telematizzata": 0.99,
    "sollecito": 0.99,
    "ticket_ref": 0.99,
    "argomento": 0.99,  # issue 13: >= 99 % on every field
}


@pytest.fixture(scope="module")
def results() -> dict[str, Classification]:
    vocab = load_vocabularies(RULES)
    return {case.id: classify(parse_message(raw_email(case)), vocab) for case in CASES}


def test_corpus_is_large_and_well_formed() -> None:
    vocab = load_vocabularies(RULES)
    gestioni = {e.id for e in vocab.gestioni}
    argomenti = {e.id for e in vocab.argomenti}
    assert len(CASES) >= 537  # 387 before issue 13, which added at least 150
    assert len({c.id for c in CASES}) == len(CASES), "id ripetuti nel corpus"
    cf = re.compile(r"^(?:[A-Z0-9]{16}|[0-9]{11})$")
    for case in CASES:
        exp = case.expected
        assert set(FIELDS) <= set(exp), case.id
        assert set(exp) <= set(FIELDS) | set(OPTIONAL_FIELDS), case.id
        assert exp["gestione"] is None or exp["gestione"] in gestioni, case.id
        assert exp.get("argomento") is None or exp["argomento"] in argomenti, case.id
        for code in exp["codici_fiscali"] + exp["codici_fiscali_non_validi"]:
            assert cf.match(code), f"{case.id}: {code} non normalizzato"
        assert not exp["telematizzata"] or exp["istanza"], f"{case.id}: telematizzata senza istanza"
        assert not (exp["sollecito"] and exp["istanza"]), f"{case.id}: un sollecito non è una nuova istanza"


def test_corpus_covers_the_hard_cases() -> None:
    """The corpus keeps the kinds of message the issue asks for; a trimmed corpus would test less."""
    subjects = [c.subject for c in CASES]
    texts = [c.subject + "\n" + c.body for c in CASES]
    kinds: Counter[str] = Counter()
    for case, text in zip(CASES, texts, strict=True):
        exp = case.expected
        kinds["forwarded"] += bool(re.match(r"^((I|R|RE|Re|Fwd|fw|FW|Fw):\s*)+", case.subject))
        kinds["spaced_code"] += bool(re.search(r"\b[A-Z]{3}[ .-][A-Z]{3}[ .-][0-9]{2} ?[A-Z] ?[0-9]{2}", text, re.I))
        kinds["lower_code"] += bool(re.search(r"\b[a-z]{6}[0-9]{2}[a-z][0-9]{2}[a-z][0-9]{3}[a-z]\b", text))
        kinds["invalid_code"] += bool(exp["codici_fiscali_non_validi"])
        kinds["partita_iva"] += any(c.isdigit() for c in "".join(exp["codici_fiscali"]))
        kinds["telematizzata"] += exp["telematizzata"]
        kinds["istanza"] += exp["istanza"]
        kinds["sollecito"] += exp["sollecito"]
        kinds["sollecito_with_ticket"] += exp["sollecito"] and exp["ticket_ref"] is not None
        kinds["sollecito_without_ticket"] += exp["sollecito"] and exp["ticket_ref"] is None
        kinds["no_gestione"] += exp["gestione"] is None
        kinds["phone"] += bool(re.search(r"\b(tel|cell|telefono|cellulare|numero)\b", text, re.I))
        kinds["sixteen_letter_word"] += bool(re.search(r"\b[A-Za-z]{16}\b", text))
    for kind in ("forwarded", "spaced_code", "lower_code", "invalid_code", "partita_iva", "phone"):
        assert kinds[kind] >= 5, kind
    for kind in ("telematizzata", "istanza", "sollecito", "no_gestione"):
        assert kinds[kind] >= 25, kind
    assert kinds["sollecito_with_ticket"] >= 8 and kinds["sollecito_without_ticket"] >= 8
    assert kinds["sixteen_letter_word"] >= 2
    assert any(s.startswith("CF ") and " - LD - " in s for s in subjects)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_message(case: Case, results: dict[str, Classification]) -> None:
    cls = results[case.id]
    wrong = mismatches(case, cls, PER_MESSAGE)
    assert not wrong, "\n".join(
        [f"{case.id}: {case.subject!r}"] + [f"  {f}: atteso {w!r}, ottenuto {g!r}" for f, (w, g) in wrong.items()]
    )


def test_accuracy_per_field(results: dict[str, Classification]) -> None:
    """Every labelled field at or above its threshold; the message lists every miss."""
    totals: Counter[str] = Counter()
    misses: dict[str, list[str]] = {f: [] for f in THRESHOLDS}
    for case in CASES:
        wrong = mismatches(case, results[case.id], THRESHOLDS)
        for f in THRESHOLDS:
            if f in case.expected:
                totals[f] += 1
        for f, (want, got) in wrong.items():
            misses[f].append(f"{case.id} {case.subject!r}: atteso {want!r}, ottenuto {got!r}")
    report = []
    failed = []
    for f, threshold in THRESHOLDS.items():
        accuracy = 1 - len(misses[f]) / totals[f]
        report.append(f"{f}: {accuracy:.1%} (soglia {threshold:.0%}, errori {len(misses[f])} su {totals[f]})")
        report += [f"    {m}" for m in misses[f]]
        if accuracy < threshold:
            failed.append(f)
    assert not failed, "\n".join(report)
