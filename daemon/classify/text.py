"""Text normalisation and tolerant phrase matching for the vocabularies (pure functions).

Case, accents and punctuation do not matter; phrases match whole words; a word of seven letters
or more still matches with one typo (insertion, deletion, substitution or swap of two letters).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Phrase", "Tokens", "normalise", "phrase", "tokens", "within_one_edit"]

_NON_WORD = re.compile(r"[^0-9a-z]+")
FUZZY_MIN_LEN = 7


def normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", ascii_only).strip()


@dataclass(frozen=True)
class Tokens:
    words: tuple[str, ...]
    index: dict[str, tuple[int, ...]]
    by_length: dict[int, tuple[str, ...]]  # distinct words by length, for the tolerant first-word search

    def __hash__(self) -> int:
        return hash(self.words)


def tokens(text: str) -> Tokens:
    words = tuple(normalise(text).split())
    index: dict[str, list[int]] = {}
    for i, w in enumerate(words):
        index.setdefault(w, []).append(i)
    by_length: dict[int, list[str]] = {}
    for w in index:
        by_length.setdefault(len(w), []).append(w)
    return Tokens(words, {k: tuple(v) for k, v in index.items()}, {k: tuple(v) for k, v in by_length.items()})


@dataclass(frozen=True)
class Phrase:
    text: str  # as the admin wrote it
    words: tuple[str, ...]

    @property
    def weight(self) -> int:
        return len(self.words)


def phrase(text: str) -> Phrase:
    return Phrase(text, tuple(normalise(text).split()))


@lru_cache(maxsize=200_000)
def within_one_edit(a: str, b: str) -> bool:
    """Optimal string alignment distance <= 1, for words long enough that a typo is unambiguous."""
    if a == b:
        return True
    if min(len(a), len(b)) < FUZZY_MIN_LEN - 1 or max(len(a), len(b)) < FUZZY_MIN_LEN:
        return False
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    i = 0
    while i < min(la, lb) and a[i] == b[i]:
        i += 1
    if la == lb:
        if a[i + 1 :] == b[i + 1 :]:
            return True  # substitution
        return i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]  # swap
    if la > lb:
        return a[i + 1 :] == b[i:]
    return a[i:] == b[i + 1 :]


def _word_matches(word: str, candidate: str) -> bool:
    return word == candidate or within_one_edit(word, candidate)


def find_phrase(p: Phrase, text: Tokens) -> bool:
    """Whether the phrase occurs as consecutive whole words of `text`, tolerating one typo per long word."""
    if not p.words:
        return False
    first = p.words[0]
    starts: Sequence[int]
    if len(first) >= FUZZY_MIN_LEN:
        n = len(first)
        candidates = [w for k in (n - 1, n, n + 1) for w in text.by_length.get(k, ()) if _word_matches(first, w)]
        starts = sorted(i for w in candidates for i in text.index[w])
    else:
        starts = text.index.get(first, ())
    n = len(p.words)
    for s in starts:
        if s + n > len(text.words):
            continue
        if all(_word_matches(p.words[k], text.words[s + k]) for k in range(1, n)):
            return True
    return False
