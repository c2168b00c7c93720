"""Text normalisation and tolerant phrase matching for the vocabularies (pure functions).

Case, accents and punctuation do not matter; phrases match whole words; a word of eight letters
or more still matches with one typo (insertion, deletion, substitution or swap of two letters).

Matching is compiled once per vocabulary (`Lexicon`): every distinct word of the text is mapped to
the vocabulary words it can stand for (exactly, or through a one-deletion index for the tolerant
match), and only the phrases whose first word occurs are then checked, so the cost grows with the
text, not with the size of the vocabularies.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "FUZZY_MIN_LEN",
    "Lexicon",
    "Phrase",
    "Tokens",
    "find_phrase",
    "fold",
    "normalise",
    "phrase",
    "tokens",
    "within_one_edit",
]

_NON_WORD = re.compile(r"[^0-9a-z]+")
_WORD = re.compile(r"[0-9A-Za-z]+")
_MEMO_LIMIT = 200_000
FUZZY_MIN_LEN = 8  # "ricorso"/"ricordo", "domanda"/"domande": seven letters are too few to guess a typo


def _fold_table() -> dict[int, str]:
    """Accented Latin letters -> their base letter, one character for one (offsets are preserved)."""
    table: dict[int, str] = {}
    for cp in list(range(0xC0, 0x250)) + list(range(0x1E00, 0x1F00)) + list(range(0xFF21, 0xFF5B)):
        ch = chr(cp)
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        if len(base) == 1 and base.isascii() and base.isalnum():
            table[cp] = base
    for quote in "\u2018\u2019\u02bc\u00b4":  # typographic apostrophes: "dell’avviso" is "dell avviso"
        table[ord(quote)] = "'"
    return table


_FOLD = _fold_table()


def fold(text: str) -> str:
    """The text without accents, same length and case: offsets in it are offsets in the text."""
    return text if text.isascii() else text.translate(_FOLD)


def normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", ascii_only).strip()


@dataclass(frozen=True, eq=False)
class Tokens:
    """The words of one text (subject or body), lower-case, with where each starts in `folded`."""

    folded: str  # the text with accents removed (same length as the text)
    words: tuple[str, ...]
    starts: tuple[int, ...]
    index: dict[str, tuple[int, ...]]

    def position(self, offset: int) -> int:
        """The index of the word at or after character `offset` of `folded`."""
        lo, hi = 0, len(self.starts)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.starts[mid] < offset:
                lo = mid + 1
            else:
                hi = mid
        return lo


def tokens(text: str) -> Tokens:
    folded = fold(text)
    words: list[str] = []
    starts: list[int] = []
    for m in _WORD.finditer(folded):
        words.append(m.group(0).lower())
        starts.append(m.start())
    index: dict[str, list[int]] = {}
    for i, w in enumerate(words):
        index.setdefault(w, []).append(i)
    return Tokens(folded, tuple(words), tuple(starts), {k: tuple(v) for k, v in index.items()})


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
    if a.isdigit() or b.isdigit():
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


def _deletions(word: str) -> set[str]:
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


class Lexicon:
    """Every phrase of the vocabularies, compiled for matching many phrases against one text at once."""

    def __init__(self, phrases: Iterable[Phrase]) -> None:
        self._by_first: dict[str, list[tuple[str, ...]]] = {}
        self._meaning: dict[str, frozenset[str]] = {}  # text word -> vocabulary words (memo, bounded)
        self._words: set[str] = set()
        self._deletes: dict[str, set[str]] = {}
        for p in phrases:
            if not p.words:
                continue
            starts = self._by_first.setdefault(p.words[0], [])
            if p.words not in starts:
                starts.append(p.words)
            for w in p.words:
                if w in self._words:
                    continue
                self._words.add(w)
                if len(w) >= FUZZY_MIN_LEN - 1 and not w.isdigit():
                    for d in _deletions(w):
                        self._deletes.setdefault(d, set()).add(w)

    def _lexicon_words(self, word: str) -> frozenset[str]:
        """The vocabulary words `word` (from a text) stands for: itself, or one typo away."""
        known = self._meaning.get(word)
        if known is not None:
            return known
        if len(self._meaning) >= _MEMO_LIMIT:
            self._meaning.clear()
        found = {word} if word in self._words else set()
        if len(word) >= FUZZY_MIN_LEN - 1 and not word.isdigit():
            for d in _deletions(word):
                for cand in self._deletes.get(d, ()):
                    if cand not in found and within_one_edit(word, cand):
                        found.add(cand)
        meaning = self._meaning[word] = frozenset(found)
        return meaning

    def scan(self, text: Tokens) -> dict[tuple[str, ...], list[tuple[int, int]]]:
        """phrase words -> every (start, end) word span where the phrase occurs in the text."""
        meaning = {w: m for w in text.index if (m := self._lexicon_words(w))}
        positions: dict[str, list[int]] = {}
        for w, ms in meaning.items():
            for lexeme in ms:
                positions.setdefault(lexeme, []).extend(text.index[w])
        words = text.words
        n_words = len(words)
        empty: frozenset[str] = frozenset()
        out: dict[tuple[str, ...], list[tuple[int, int]]] = {}
        for first, where in positions.items():
            for pw in self._by_first.get(first, ()):
                n = len(pw)
                for s in sorted(where):
                    if s + n > n_words:
                        continue
                    if all(pw[k] in meaning.get(words[s + k], empty) for k in range(1, n)):
                        out.setdefault(pw, []).append((s, s + n))
        return out


def find_phrase(p: Phrase, text: Tokens) -> bool:
    """Whether the phrase occurs as consecutive whole words of `text`, tolerating one typo per long word."""
    return bool(Lexicon([p]).scan(text).get(p.words))
