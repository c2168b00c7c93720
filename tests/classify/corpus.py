"""The labelled corpus in tests/corpus/messages.yaml: loading, raw email building, field comparison.

Shared by the corpus tests and bench/classify.py so both judge the classifier the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml

from daemon.classify import Classification

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "messages.yaml"
RULES = ROOT / "routing_rules"

# Fields every entry labels, and the optional ones checked when present.
FIELDS = (
    "codici_fiscali",
    "codici_fiscali_non_validi",
    "gestione",
    "istanza",
    "telematizzata",
    "sollecito",
    "ticket_ref",
)
OPTIONAL_FIELDS = ("argomento", "matricola")


@dataclass(frozen=True)
class Case:
    id: str
    subject: str
    body: str
    sender: str
    expected: dict[str, Any]


def load_corpus(path: Path = CORPUS) -> list[Case]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    cases = []
    for item in data["messages"]:
        cases.append(
            Case(
                id=item["id"],
                subject=item["subject"],
                body=item.get("body") or "",
                sender=item.get("from") or "utente@example.org",
                expected=item["expected"],
            )
        )
    return cases


def raw_email(case: Case) -> bytes:
    msg = EmailMessage()
    msg["From"] = case.sender
    msg["To"] = "sede.ferrara@inps.example.it"
    msg["Subject"] = case.subject
    msg["Message-ID"] = f"<{case.id}@corpus.example.org>"
    msg["Date"] = "Mon, 16 Mar 2026 09:30:00 +0100"
    msg.set_content(case.body or "\n")
    return msg.as_bytes()


def actual(cls: Classification, field: str) -> Any:
    """The classifier's answer in the corpus's terms (telematizzata: whether one was found)."""
    if field == "telematizzata":
        return cls.telematizzata is not None
    value = getattr(cls, field)
    return list(value) if isinstance(value, tuple) else value


def mismatches(case: Case, cls: Classification, fields: Iterable[str] | None = None) -> dict[str, tuple[Any, Any]]:
    """field -> (expected, actual) for every labelled field the classification gets wrong."""
    out: dict[str, tuple[Any, Any]] = {}
    names = list(fields) if fields is not None else [*FIELDS, *(f for f in OPTIONAL_FIELDS if f in case.expected)]
    for name in names:
        if name not in case.expected:
            continue
        want, got = case.expected[name], actual(cls, name)
        if want != got:
            out[name] = (want, got)
    return out
