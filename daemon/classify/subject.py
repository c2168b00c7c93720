"""The subject rule of the Ferrara protocol (002, allegato 1, 2.2 and 2.3), checked on the subject alone.

The subject states the gestione and a short content; for lavoratori domestici also the codice fiscale
and the name of the contribuente. `check_subject` says what is missing and proposes the subject the
sender should have written, built from what the message does contain (the body's codice fiscale, the
name written beside it, the gestione and argomento found anywhere).

A name is recognised through the codice fiscale itself: the surname and first name written in the
text must give the code's first three and next three letters (the rules of the codice fiscale), so a
word that merely looks like a name does not count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from daemon.classify.codes import _CF_PATTERN, _CF_SHAPE

__all__ = [
    "MISSING_FIELDS",
    "TICKET_ID_PATTERN",
    "SubjectCheck",
    "check_subject",
    "find_name",
    "name_code",
    "surname_code",
]

# What may be missing, in the order the reply lists it (the template words each one).
MISSING_FIELDS = ("gestione", "codice_fiscale", "nome", "contenuto")
_WORD = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)
_NUMERIC_CODE = re.compile(r"(?<!\d)\d{11}(?!\d)")
# A ticket id as mail cites it (FE-2026-000123, any case): the classifier finds them with it too.
TICKET_ID_PATTERN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2,4}-20[0-9]{2}-[0-9]{6}(?![0-9])")
_VOWELS = frozenset("AEIOU")
_NAME_WINDOW = 160  # characters around a code where its name is looked for
# Words that say nothing about the content: forwarding and reply prefixes, courtesy, the office, and
# generic nouns ("informazioni") that need an object to say what the request is about.
_FILLER = frozenset(
    {
        "a",
        "ai",
        "al",
        "alla",
        "alle",
        "allo",
        "aw",
        "buongiorno",
        "c",
        "cf",
        "cliente",
        "cod",
        "codice",
        "con",
        "contribuente",
        "contributi",
        "contributivo",
        "da",
        "dei",
        "del",
        "della",
        "delle",
        "dello",
        "di",
        "dott",
        "dr",
        "e",
        "ed",
        "f",
        "ferrara",
        "fisc",
        "fiscale",
        "fra",
        "fw",
        "fwd",
        "gentili",
        "gestione",
        "gli",
        "i",
        "il",
        "in",
        "inoltrato",
        "inoltro",
        "inps",
        "la",
        "lavoratore",
        "lavoratori",
        "le",
        "lo",
        "mia",
        "mie",
        "miei",
        "mio",
        "n",
        "nostra",
        "nostro",
        "nr",
        "num",
        "numero",
        "oggetto",
        "per",
        "posizione",
        "pratica",
        "r",
        "ra",
        "rag",
        "re",
        "rif",
        "risp",
        "salve",
        "sede",
        "sig",
        "sigra",
        "spett",
        "spettabile",
        "su",
        "sv",
        "tr",
        "tra",
        "un",
        "una",
        "uno",
        "urgente",
        "urgentissimo",
    }
)


@dataclass(frozen=True)
class SubjectCheck:
    missing: tuple[str, ...]  # of MISSING_FIELDS, in order
    proposal: str  # the subject to write; [placeholders] for what the message does not contain


def _letters(word: str) -> tuple[list[str], list[str]]:
    up = [c for c in word.upper() if "A" <= c <= "Z"]
    return [c for c in up if c not in _VOWELS], [c for c in up if c in _VOWELS]


@lru_cache(maxsize=20_000)
def surname_code(surname: str) -> str:
    """The three letters a surname gives in the codice fiscale: consonants, then vowels, then X."""
    cons, vow = _letters(surname)
    return "".join((cons + vow + ["X"] * 3)[:3])


@lru_cache(maxsize=20_000)
def name_code(name: str) -> str:
    """The three letters a first name gives: the 1st, 3rd and 4th consonant if it has four or more."""
    cons, vow = _letters(name)
    if len(cons) >= 4:
        cons = [cons[0], cons[2], cons[3]]
    return "".join((cons + vow + ["X"] * 3)[:3])


def _groups(words: Sequence[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Single words and pairs of adjacent words (double surnames and names: "De Luca", "Maria Grazia")."""
    out = [(i, i + 1, w) for i, (_s, _e, w) in enumerate(words)]
    out += [(i, i + 2, words[i][2] + words[i + 1][2]) for i in range(len(words) - 1)]
    return out


def find_name(text: str, code: str) -> tuple[int, int] | None:
    """Character span of the surname and name, written together in `text`, that match the personal
    codice fiscale `code` (either order: "Rossi Mario" or "Mario Rossi"), or None."""
    if len(code) != 16 or not code[:6].isalpha():
        return None
    # In a long text the name is written near its code ("Rossi Mario, CF RSS..."): look around it.
    lo, hi = 0, len(text)
    if hi > 2 * _NAME_WINDOW and (at := text.upper().find(code)) >= 0:
        lo, hi = max(0, at - _NAME_WINDOW), at + len(code) + _NAME_WINDOW
    words = [(m.start(), m.end(), m.group(0)) for m in _WORD.finditer(text, lo, hi) if not m.group(0).isdigit()]
    words = [w for w in words if len(w[2]) >= 2 and w[2].upper() != code]
    groups = _groups(words)
    surnames = [(a, b) for a, b, w in groups if surname_code(w) == code[:3]]
    if not surnames:
        return None
    names = [(a, b) for a, b, w in groups if name_code(w) == code[3:6]]
    for s_a, s_b in surnames:
        for n_a, n_b in names:
            if s_b == n_a or n_b == s_a:  # side by side, without overlapping
                first, last = min(s_a, n_a), max(s_b, n_b) - 1
                return words[first][0], words[last][1]
    return None


def _blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in spans:
        chars[a:b] = " " * (b - a)
    return "".join(chars)


def _code_spans(text: str) -> list[tuple[int, int]]:
    spans = [m.span() for m in _CF_PATTERN.finditer(text)]
    spans += [m.span() for m in _CF_SHAPE.finditer(text)]
    spans += [m.span() for m in _NUMERIC_CODE.finditer(text)]
    spans += [m.span() for m in TICKET_ID_PATTERN.finditer(text)]
    return spans


def check_subject(
    subject: str,
    body: str,
    *,
    gestione_spans: Sequence[tuple[int, int]],
    gestione_label: str | None,
    domestic: bool,
    subject_codes: Sequence[str],
    body_codes: Sequence[str],
    argomento_in_subject: bool,
    argomento_label: str | None,
) -> SubjectCheck:
    """What the subject lacks under the rule of 002, and the subject to write instead.

    `gestione_spans`: character spans of the gestione words found in the subject (empty: none named);
    `gestione_label`: the gestione of the message, wherever it was found (for the proposal);
    `domestic`: the message is about lavoratori domestici (codice fiscale and name required)."""
    excluded = list(gestione_spans) + _code_spans(subject)
    # Only domestic work requires the name: elsewhere a name in the subject is just more words.
    person_codes = [c for c in (*subject_codes, *body_codes) if len(c) == 16] if domestic else []
    name_span = next((s for c in person_codes if (s := find_name(subject, c)) is not None), None)
    if name_span is not None:
        excluded.append(name_span)
    content_words = [
        m.group(0)
        for m in _WORD.finditer(_blank(subject, excluded))
        if not m.group(0).isdigit() and len(m.group(0)) >= 3 and m.group(0).lower() not in _FILLER
    ]
    has_content = argomento_in_subject or bool(content_words)

    missing: list[str] = []
    if not gestione_spans:
        missing.append("gestione")
    if domestic:
        if not any(len(c) == 16 for c in subject_codes):
            missing.append("codice_fiscale")
        if person_codes and name_span is None:
            missing.append("nome")
    if not has_content:
        missing.append("contenuto")

    if not missing:  # a conforming subject needs no proposal
        return SubjectCheck((), "")
    parts = [gestione_label or "[gestione]"]
    if domestic:
        code = next((c for c in person_codes), None)
        name = None
        if code is not None:
            span = name_span or find_name(body, code)
            source = subject if name_span is not None else body
            if span is not None:
                name = " ".join(w.capitalize() for w in source[span[0] : span[1]].split())
        parts.append(f"{code or '[codice fiscale]'} {name or '[cognome e nome del contribuente]'}")
    content = _content_text(subject, excluded) if content_words else None
    parts.append(content or argomento_label or "[breve descrizione della richiesta]")
    return SubjectCheck(tuple(missing), " - ".join(parts))


def _content_text(subject: str, excluded: Sequence[tuple[int, int]]) -> str:
    """The subject without the gestione, codes and name: its words, joined as written."""
    kept = _blank(subject, excluded)
    kept = re.sub(r"^\s*(?:(?:re|r|fw|fwd|i|tr|aw|sv)\s*:\s*)+", "", kept, flags=re.IGNORECASE)
    words = kept.split()
    # Separators left dangling where the removed parts were ("Artigiani - " -> "-").
    words = [w for w in words if re.search(r"\w", w)]
    return " ".join(words).strip(" -:;,/")
