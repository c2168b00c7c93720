"""The vocabularies in routing_rules/ (gestioni, argomenti, istanze), loaded and checked.

Admins edit these files; every problem (duplicate word across ids, id without words, bad regular
expression, unknown unit or gestione, unknown key) is reported in Italian with file and line, all at once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.classify.text import Lexicon, Phrase, fold, phrase
from daemon.yamlfiles.source import YamlDocument, YamlProblem, YamlProblems, YamlSyntaxError, load_yaml

__all__ = ["Entry", "Grammar", "Vocabularies", "VocabularyError", "load_vocabularies"]

FILES = ("gestioni.yaml", "argomenti.yaml", "istanze.yaml")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_GLOBAL_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")


def _scoped(pattern: str) -> str:
    """Leading inline flags (`(?i)...`) made scoped (`(?i:...)`): the expressions of every entry are
    searched as one pattern, inside which a global flag is an error."""
    flags = ""
    while m := _GLOBAL_FLAGS.match(pattern):
        flags += m.group(1)
        pattern = pattern[m.end() :]
    return f"(?{flags}:{pattern})" if flags else pattern


# Keys each kind of entry may have: anything else is a typo the admin should hear about.
_COMMON_KEYS = {"etichetta", "parole", "errori", "abbreviazioni", "espressioni", "indizi", "eccezioni", "fonte"}
_KEYS = {
    "gestioni": _COMMON_KEYS,
    "argomenti": _COMMON_KEYS | {"unita", "cassetto"},
    "telematizzate": _COMMON_KEYS | {"servizio_online", "gestioni"},
    "istanza": _COMMON_KEYS | {"verbi", "nomi", "oggetti", "distanza", "interruzioni"},
    "informativa": _COMMON_KEYS | {"nel_testo"},
    "sollecito": _COMMON_KEYS,
    "email_ammessa": _COMMON_KEYS,
}


class VocabularyError(YamlProblems):
    """Problems in the vocabulary files."""


@dataclass(frozen=True)
class Grammar:
    """A request written as a verb ("si chiede", "chiedo") or a noun ("richiesta di") followed, within
    `window` words, by the procedure asked for ("rimborso", "sgravio"); a stop word in between
    ("se", "informazioni") means the sentence asks something else."""

    verbs: tuple[Phrase, ...] = ()
    nouns: tuple[Phrase, ...] = ()
    objects: tuple[Phrase, ...] = ()
    stops: frozenset[str] = frozenset()
    window: int = 4


@dataclass(frozen=True)
class Entry:
    id: str
    label: str
    phrases: tuple[Phrase, ...]
    abbreviations: tuple[str, ...] = ()  # matched case-sensitively as whole words ("LD", "GS")
    patterns: tuple[re.Pattern[str], ...] = ()  # matched on the text without accents, any case
    unit: str | None = None
    cassetto: bool = False
    online_service: str | None = None
    hints: tuple[Phrase, ...] = ()  # weak words: they count only when no entry has a proper word
    exceptions: tuple[Phrase, ...] = ()  # phrases inside which this entry's words do not count
    gestioni: tuple[str, ...] = ()  # telematizzate: the words count only for these gestioni
    context: tuple[Phrase, ...] = ()  # informativa: words of the body that make a request informational
    grammar: Grammar | None = None  # istanza: verb/noun + procedure
    source: str | None = None  # `fonte`: the source document and passage the entry comes from

    def roles(self) -> list[tuple[str, tuple[Phrase, ...]]]:
        """Every phrase list of the entry with the role it plays."""
        out = [("phrase", self.phrases), ("hint", self.hints), ("exception", self.exceptions)]
        out.append(("context", self.context))
        if self.grammar is not None:
            out += [("verb", self.grammar.verbs), ("noun", self.grammar.nouns), ("object", self.grammar.objects)]
        return out

    def all_phrases(self) -> list[Phrase]:
        return [p for _, phrases in self.roles() for p in phrases]


def abbreviation_pattern(abbrs: tuple[str, ...]) -> re.Pattern[str]:
    """Whole-word, case-sensitive; not when followed by a dot and a number ("ART. 116" is an article)."""
    # "(?<![A-Za-z0-9])LD" written as "L(?<![A-Za-z0-9]L)D": the same match, but a pattern that starts
    # with plain letters lets `re` skip quickly to where they are (several times faster on a long body).
    alternatives = "|".join(
        f"{re.escape(a[:1])}(?<![A-Za-z0-9]{re.escape(a[:1])}){re.escape(a[1:])}"
        for a in sorted(abbrs, key=len, reverse=True)
    )
    return re.compile(r"(?:" + alternatives + r")(?![A-Za-z0-9])(?!\.\s?[0-9])")


@dataclass(frozen=True)
class Vocabularies:
    gestioni: tuple[Entry, ...]
    argomenti: tuple[Entry, ...]
    units: dict[str, str]  # unit id -> label
    istanza: Entry  # words of a service request
    informativa: Entry  # words of an information request: they win over istanza words in the subject
    telematizzate: tuple[Entry, ...]
    sollecito: Entry
    # Phrases that keep institutional email open where a Cassetto is otherwise exclusive (inactive
    # positions, general problems: 002, allegato 1, 2.2); None when argomenti.yaml has no such section.
    email_ammessa: Entry | None = None
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256, for the explain output
    # Compiled for matching (built from the entries above):
    lexicon: Lexicon = field(init=False, compare=False, repr=False)
    owners: dict[tuple[str, ...], list[tuple[int, str, Phrase]]] = field(init=False, compare=False, repr=False)
    abbreviations: re.Pattern[str] | None = field(init=False, compare=False, repr=False)
    abbreviation_owners: dict[str, list[Entry]] = field(init=False, compare=False, repr=False)
    # Every expression of every entry in one pattern: most texts match none, and one search says so.
    expressions: re.Pattern[str] | None = field(init=False, compare=False, repr=False)
    # id(entry) -> (list, position, entry) for gestioni (0), argomenti (1) and telematizzate (2).
    index: dict[int, tuple[int, int, Entry]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        entries = [*self.gestioni, *self.argomenti, *self.telematizzate, self.istanza, self.informativa, self.sollecito]
        if self.email_ammessa is not None:
            entries.append(self.email_ammessa)
        owners: dict[tuple[str, ...], list[tuple[int, str, Phrase]]] = {}
        for e in entries:
            for role, phrases in e.roles():
                for p in phrases:
                    owners.setdefault(p.words, []).append((id(e), role, p))
        abbreviation_owners: dict[str, list[Entry]] = {}
        for e in entries:
            for a in e.abbreviations:
                abbreviation_owners.setdefault(a, []).append(e)
        object.__setattr__(self, "lexicon", Lexicon(p for e in entries for p in e.all_phrases()))
        object.__setattr__(self, "owners", owners)
        object.__setattr__(self, "abbreviation_owners", abbreviation_owners)
        pattern = abbreviation_pattern(tuple(abbreviation_owners)) if abbreviation_owners else None
        sources = list(dict.fromkeys(rx.pattern for e in entries for rx in e.patterns))
        combined = re.compile("|".join(f"(?:{p})" for p in sources), re.IGNORECASE) if sources else None
        object.__setattr__(self, "expressions", combined)
        index = {
            id(e): (group, pos, e)
            for group, lst in enumerate((self.gestioni, self.argomenti, self.telematizzate))
            for pos, e in enumerate(lst)
        }
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "abbreviations", pattern)

    def is_cassetto(self, argomento: str | None) -> bool:
        return any(a.id == argomento and a.cassetto for a in self.argomenti)


class _Reader:
    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.problems: list[YamlProblem] = []

    def entry(self, path: list[str | int], entry_id: str, node: Any, seen: dict[str, str], kind: str) -> Entry | None:
        if not isinstance(node, dict):
            self.problems.append(self.doc.problem(path, "atteso un elenco di chiavi (etichetta, parole, ...)"))
            return None
        if not _ID.match(entry_id):
            self.problems.append(
                self.doc.problem(path, f"identificativo non valido: {entry_id!r} (minuscole, cifre e _)")
            )
        allowed = _KEYS[kind]
        for key in node:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                message = f"chiave sconosciuta «{key}» (ammesse: {known})"
                self.problems.append(self.doc.problem([*path, str(key)], message))
        abbreviations = self._strings(path, node, "abbreviazioni")
        regexes = self._strings(path, node, "espressioni")
        patterns: list[re.Pattern[str]] = []
        for i, rx in enumerate(regexes):
            try:
                re.compile(rx)
                patterns.append(re.compile(_scoped(fold(rx)), re.IGNORECASE))
            except re.error as exc:
                self.problems.append(self.doc.problem([*path, "espressioni", i], f"espressione regolare errata: {exc}"))
        phrases = self._phrases(path, node, ("parole", "errori"), entry_id, seen)
        hints = self._phrases(path, node, ("indizi",), entry_id, seen)
        exceptions = self._phrases(path, node, ("eccezioni",), entry_id, None)
        context = self._phrases(path, node, ("nel_testo",), entry_id, None)
        grammar = self._grammar(path, node, entry_id) if kind == "istanza" else None
        has_grammar = grammar is not None and bool(grammar.objects) and bool(grammar.verbs or grammar.nouns)
        if not phrases and not hints and not abbreviations and not regexes and not has_grammar:
            self.problems.append(self.doc.problem(path, f"{entry_id}: nessuna parola, abbreviazione o espressione"))
        unlabelled = ("istanza", "informativa", "sollecito", "email_ammessa")
        label = node.get("etichetta", entry_id if kind in unlabelled else None)
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
            hints=tuple(hints),
            exceptions=tuple(exceptions),
            gestioni=tuple(self._strings(path, node, "gestioni")),
            context=tuple(context),
            grammar=grammar,
            source=str(node["fonte"]) if node.get("fonte") else None,
        )

    def _phrases(
        self,
        path: list[str | int],
        node: dict[str, Any],
        keys: tuple[str, ...],
        entry_id: str,
        seen: dict[str, str] | None,
    ) -> list[Phrase]:
        """The phrases under `keys`; with `seen`, a phrase already used by another id is a problem."""
        out: list[Phrase] = []
        for key in keys:
            for i, w in enumerate(self._strings(path, node, key)):
                p = phrase(w)
                if not p.words:
                    self.problems.append(self.doc.problem([*path, key, i], "parola vuota"))
                    continue
                if seen is not None:
                    norm = " ".join(p.words)
                    if norm in seen and seen[norm] != entry_id:
                        where = [*path, key, i]
                        self.problems.append(self.doc.problem(where, f"«{w}» è già una parola di {seen[norm]}"))
                    seen[norm] = entry_id
                out.append(p)
        return out

    def _grammar(self, path: list[str | int], node: dict[str, Any], entry_id: str) -> Grammar:
        verbs = self._phrases(path, node, ("verbi",), entry_id, None)
        nouns = self._phrases(path, node, ("nomi",), entry_id, None)
        objects = self._phrases(path, node, ("oggetti",), entry_id, None)
        stops = frozenset(w for p in self._phrases(path, node, ("interruzioni",), entry_id, None) for w in p.words)
        window = node.get("distanza", 4)
        if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= 20:
            self.problems.append(self.doc.problem([*path, "distanza"], "atteso un numero intero di parole tra 0 e 20"))
            window = 4
        if (verbs or nouns) and not objects:
            self.problems.append(self.doc.problem(path, f"{entry_id}: verbi o nomi senza oggetti"))
        return Grammar(tuple(verbs), tuple(nouns), tuple(objects), stops, window)

    def _strings(self, path: list[str | int], node: dict[str, Any], key: str) -> list[str]:
        value = node.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
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
    gestioni = [
        e for k, v in g.section("gestioni").items() if (e := g.entry(["gestioni", k], str(k), v, seen, "gestioni"))
    ]
    gestione_ids = {e.id for e in gestioni}

    a = _Reader(docs["argomenti.yaml"])
    units_raw = a.section("unita")
    units = {str(k): str(v.get("etichetta", k)) if isinstance(v, dict) else str(v) for k, v in units_raw.items()}
    seen = {}
    argomenti = []
    for k, v in a.section("argomenti").items():
        e = a.entry(["argomenti", k], str(k), v, seen, "argomenti")
        if e is None:
            continue
        if e.unit is None or e.unit not in units:
            where: list[str | int] = ["argomenti", k, "unita"] if e.unit is not None else ["argomenti", k]
            a.problems.append(a.doc.problem(where, f"{k}: unità sconosciuta {e.unit!r} (definite: {', '.join(units)})"))
        argomenti.append(e)
    email_ammessa = None
    node = a.doc.data.get("email_ammessa") if isinstance(a.doc.data, dict) else None
    if node is not None:
        email_ammessa = a.entry(["email_ammessa"], "email_ammessa", node, {}, "email_ammessa")

    s = _Reader(docs["istanze.yaml"])
    seen = {}
    singles: dict[str, Entry] = {}
    for key in ("istanza", "informativa", "sollecito"):
        node = (s.doc.data or {}).get(key) if isinstance(s.doc.data, dict) else None
        if node is None:
            s.problems.append(s.doc.problem([], f"manca la sezione «{key}»"))
            continue
        entry = s.entry([key], key, node, {}, key)
        if entry:
            singles[key] = entry
    telematizzate = [
        e
        for k, v in s.section("telematizzate").items()
        if (e := s.entry(["telematizzate", k], str(k), v, seen, "telematizzate"))
    ]
    for e in telematizzate:
        if not e.online_service:
            s.problems.append(
                s.doc.problem(["telematizzate", e.id], f"{e.id}: manca servizio_online (dove presentarla)")
            )
        known = ", ".join(sorted(gestione_ids))
        for i, gid in enumerate(e.gestioni):
            if gid not in gestione_ids:
                where = ["telematizzate", e.id, "gestioni", i]
                message = f"{e.id}: gestione sconosciuta {gid!r} (definite in gestioni.yaml: {known})"
                s.problems.append(s.doc.problem(where, message))

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
        email_ammessa=email_ammessa,
        files={n: hashlib.sha256((rules_dir / n).read_bytes()).hexdigest()[:12] for n in FILES},
    )
