"""The vocabularies in routing_rules/ (gestioni, argomenti, istanze), loaded and checked.

Admins edit these files; every problem (duplicate word across ids, id without words, bad regular
expression, unknown unit) is reported in Italian with file and line, all at once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.classify.text import Phrase, phrase
from daemon.yamlsource import YamlDocument, YamlProblem, YamlSyntaxError, load_yaml

__all__ = ["Entry", "Vocabularies", "VocabularyError", "load_vocabularies"]

FILES = ("gestioni.yaml", "argomenti.yaml", "istanze.yaml")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class VocabularyError(Exception):
    def __init__(self, problems: list[YamlProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Entry:
    id: str
    label: str
    phrases: tuple[Phrase, ...]
    abbreviations: tuple[str, ...] = ()  # matched case-sensitively as whole words ("LD", "GS")
    patterns: tuple[re.Pattern[str], ...] = ()
    unit: str | None = None
    cassetto: bool = False
    online_service: str | None = None


@dataclass(frozen=True)
class Vocabularies:
    gestioni: tuple[Entry, ...]
    argomenti: tuple[Entry, ...]
    units: dict[str, str]  # unit id -> label
    istanza: Entry  # words of a service request
    informativa: Entry  # words of an information request: they win over istanza words in the subject
    telematizzate: tuple[Entry, ...]
    sollecito: Entry
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256, for the explain output

    def is_cassetto(self, argomento: str | None) -> bool:
        return any(a.id == argomento and a.cassetto for a in self.argomenti)

    def label(self, kind: str, entry_id: str | None) -> str | None:
        pool = {"gestione": self.gestioni, "argomento": self.argomenti, "telematizzata": self.telematizzate}[kind]
        return next((e.label for e in pool if e.id == entry_id), None)


class _Reader:
    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.problems: list[YamlProblem] = []

    def entry(self, path: list[str | int], entry_id: str, node: Any, seen: dict[str, str]) -> Entry | None:
        if not isinstance(node, dict):
            self.problems.append(self.doc.problem(path, "atteso un elenco di chiavi (etichetta, parole, ...)"))
            return None
        if not _ID.match(entry_id):
            self.problems.append(
                self.doc.problem(path, f"identificativo non valido: {entry_id!r} (minuscole, cifre e _)")
            )
        words = self._strings(path, node, "parole") + self._strings(path, node, "errori")
        abbreviations = self._strings(path, node, "abbreviazioni")
        regexes = self._strings(path, node, "espressioni")
        patterns: list[re.Pattern[str]] = []
        for i, rx in enumerate(regexes):
            try:
                patterns.append(re.compile(rx, re.IGNORECASE))
            except re.error as exc:
                self.problems.append(self.doc.problem([*path, "espressioni", i], f"espressione regolare errata: {exc}"))
        if not words and not abbreviations and not regexes:
            self.problems.append(self.doc.problem(path, f"{entry_id}: nessuna parola, abbreviazione o espressione"))
        phrases: list[Phrase] = []
        for key in ("parole", "errori"):
            for i, w in enumerate(node.get(key) or []):
                p = phrase(str(w))
                if not p.words:
                    self.problems.append(self.doc.problem([*path, key, i], "parola vuota"))
                    continue
                norm = " ".join(p.words)
                if norm in seen and seen[norm] != entry_id:
                    self.problems.append(
                        self.doc.problem([*path, key, i], f"«{w}» è già una parola di {seen[norm]}")
                    )
                seen[norm] = entry_id
                phrases.append(p)
        label = node.get("etichetta")
        if not isinstance(label, str) or not label.strip():
            self.problems.append(self.doc.problem(path, f"{entry_id}: manca l'etichetta"))
            label = entry_id
        unit = node.get("unita")
        online = node.get("servizio_online")
        return Entry(
            id=entry_id,
            label=label,
            phrases=tuple(phrases),
            abbreviations=tuple(abbreviations),
            patterns=tuple(patterns),
            unit=str(unit) if unit is not None else None,
            cassetto=bool(node.get("cassetto", False)),
            online_service=str(online) if online else None,
        )

    def _strings(self, path: list[str | int], node: dict[str, Any], key: str) -> list[str]:
        value = node.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            self.problems.append(self.doc.problem([*path, key], "atteso un elenco di testi"))
            return []
        return [str(v) for v in value]

    def section(self, key: str) -> dict[str, Any]:
        data = self.doc.data if isinstance(self.doc.data, dict) else {}
        value = data.get(key)
        if not isinstance(value, dict) or not value:
            self.problems.append(self.doc.problem([key] if key in data else [], f"manca la sezione «{key}»"))
            return {}
        return value


def load_vocabularies(rules_dir: Path | str) -> Vocabularies:
    """Read and check the three vocabulary files; raise VocabularyError listing every problem."""
    rules_dir = Path(rules_dir)
    problems: list[YamlProblem] = []
    docs: dict[str, YamlDocument] = {}
    for name in FILES:
        path = rules_dir / name
        if not path.exists():
            problems.append(YamlProblem(str(path), None, "", "file del vocabolario non trovato"))
            continue
        try:
            docs[name] = load_yaml(path)
        except YamlSyntaxError as exc:
            problems.append(exc.problem)
    if problems:
        raise VocabularyError(problems)

    g = _Reader(docs["gestioni.yaml"])
    seen: dict[str, str] = {}
    gestioni = [e for k, v in g.section("gestioni").items() if (e := g.entry(["gestioni", k], str(k), v, seen))]

    a = _Reader(docs["argomenti.yaml"])
    units_raw = a.section("unita")
    units = {str(k): str(v.get("etichetta", k)) if isinstance(v, dict) else str(v) for k, v in units_raw.items()}
    seen = {}
    argomenti = []
    for k, v in a.section("argomenti").items():
        e = a.entry(["argomenti", k], str(k), v, seen)
        if e is None:
            continue
        if e.unit is None or e.unit not in units:
            a.problems.append(
                a.doc.problem(["argomenti", k], f"{k}: unità sconosciuta {e.unit!r} (definite: {', '.join(units)})")
            )
        argomenti.append(e)

    s = _Reader(docs["istanze.yaml"])
    seen = {}
    singles: dict[str, Entry] = {}
    for key in ("istanza", "informativa", "sollecito"):
        node = (s.doc.data or {}).get(key) if isinstance(s.doc.data, dict) else None
        if node is None:
            s.problems.append(s.doc.problem([], f"manca la sezione «{key}»"))
            continue
        entry = s.entry([key], key, {"etichetta": key, **node} if isinstance(node, dict) else node, {})
        if entry:
            singles[key] = entry
    telematizzate = [
        e for k, v in s.section("telematizzate").items() if (e := s.entry(["telematizzate", k], str(k), v, seen))
    ]
    for e, k in ((e, e.id) for e in telematizzate):
        if not e.online_service:
            s.problems.append(s.doc.problem(["telematizzate", k], f"{k}: manca servizio_online (dove presentarla)"))

    problems = g.problems + a.problems + s.problems
    if problems:
        raise VocabularyError(problems)
    return Vocabularies(
        gestioni=tuple(gestioni),
        argomenti=tuple(argomenti),
        units=units,
        istanza=singles["istanza"],
        informativa=singles["informativa"],
        telematizzate=tuple(telematizzate),
        sollecito=singles["sollecito"],
        files={n: hashlib.sha256((rules_dir / n).read_bytes()).hexdigest()[:12] for n in FILES},
    )
