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
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache

__all__ = [
    "FUZZY_MIN_LEN",
    "Found",
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
_LOWER_WORD = re.compile(r"[0-9a-z]+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
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


_FOLD = {chr(cp): base for cp, base in _fold_table().items()}


def fold(text: str) -> str:
    """The text without accents, same length and case: offsets in it are offsets in the text."""
    if text.isascii():
        return text
    # str.translate() would look up every character; replacing only the distinct non-ASCII ones is
    # several times faster, and the same since every replacement is ASCII.
    for ch in set("".join(_NON_ASCII.findall(text))):
        if (base := _FOLD.get(ch)) is not None:
            text = text.replace(ch, base)
    return text


def normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", ascii_only).strip()


@dataclass(frozen=True, eq=False)
class Tokens:
    """The words of one text (subject or body), lower-case, with where each starts in `folded`."""

    folded: str  # the text with accents removed (same length as the text)
    words: tuple[str, ...]

    @cached_property
    def starts(self) -> tuple[int, ...]:
        """Where each word starts in `folded` (computed on demand: most texts never need it)."""
        return tuple(m.start() for m in _WORD.finditer(self.folded))

    def position(self, offset: int) -> int:
        """The index of the word at or after character `offset` of `folded`."""
        return bisect_left(self.starts, offset)


def tokens(text: str) -> Tokens:
    folded = fold(text)
    # Lower-casing the whole text finds the same words at the same offsets: no character left by
    # fold() becomes an ASCII letter or changes length, except the Kelvin sign (which is no letter here).
    lowered = folded.replace("\u212a", " ").lower()
    return Tokens(folded, tuple(_LOWER_WORD.findall(lowered)))


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


Found = dict[tuple[str, ...], list[tuple[int, int]]]  # phrase words -> (start, end) word spans, ascending


class Lexicon:
    """Every phrase of the vocabularies, compiled for matching many phrases against one text at once."""

    def __init__(self, phrases: Iterable[Phrase]) -> None:
        by_first: dict[str, list[tuple[str, ...]]] = {}
        self._meaning: dict[str, tuple[str, ...]] = {}  # text word -> vocabulary words (memo, bounded)
        self._words: set[str] = set()
        self._deletes: dict[str, set[str]] = {}
        self._longest = 0  # a text word longer by two or more is no typo of any: its deletions are not built
        for p in phrases:
            if not p.words:
                continue
            starts = by_first.setdefault(p.words[0], [])
            if p.words not in starts:
                starts.append(p.words)
            for w in p.words:
                if w in self._words:
                    continue
                self._words.add(w)
                self._longest = max(self._longest, len(w))
                if len(w) >= FUZZY_MIN_LEN - 1 and not w.isdigit():
                    for d in _deletions(w):
                        self._deletes.setdefault(d, set()).add(w)
        # For scan(): by first word, each phrase with its length and its other words (offset, word).
        self._plans = {
            first: [(pw, len(pw), tuple(enumerate(pw[1:], 1))) for pw in phrases] for first, phrases in by_first.items()
        }

    def stands_for(self, word: str) -> tuple[str, ...]:
        """The vocabulary words `word` (from a text) stands for: itself, or one typo away; sorted, so
        that the order of the matches (and so the evidence shown) does not depend on string hashing."""
        known = self._meaning.get(word)
        if known is not None:
            return known
        if len(self._meaning) >= _MEMO_LIMIT:
            self._meaning.clear()
        found = {word} if word in self._words else set()
        if FUZZY_MIN_LEN - 1 <= len(word) <= self._longest + 1 and not word.isdigit():
            for d in _deletions(word):
                for cand in self._deletes.get(d, ()):
                    if cand not in found and within_one_edit(word, cand):
                        found.add(cand)
        meaning = self._meaning[word] = tuple(sorted(found))
        return meaning

    def scan(self, text: Tokens) -> Found:
        """phrase words -> every (start, end) word span where the phrase occurs in the text."""
        words = text.words
        known = self._meaning.get
        meaning: dict[str, tuple[str, ...]] = {}  # distinct text word (first seen first) -> vocabulary words
        for w in dict.fromkeys(words):
            m = known(w)
            if m is None:
                m = self.stands_for(w)
            if m:
                meaning[w] = m
        if not meaning:
            return {}
        at: dict[str, list[int]] = {w: [] for w in meaning}  # where each meaningful word occurs
        for i, w in enumerate(words):
            if w in at:
                at[w].append(i)
        # Vocabulary word -> its positions in the text (ascending), in order of first appearance: phrases
        # are tried in this order (then in vocabulary order), which is the order of the result.
        positions: dict[str, list[int]] = {}
        for w, lexemes in meaning.items():
            for lexeme in lexemes:
                known_at = positions.get(lexeme)
                positions[lexeme] = at[w] if known_at is None else sorted(known_at + at[w])
        position_sets: dict[str, set[int]] = {}  # the same, as sets, when needed
        out: Found = {}
        for first, where in positions.items():
            for pw, n, rest in self._plans.get(first, ()):
                starts = where
                for k, later in rest:  # keep the starts followed, k words later, by the phrase's k-th word
                    if later not in positions:
                        starts = []
                        break
                    if (after := position_sets.get(later)) is None:
                        after = position_sets[later] = set(positions[later])
                    if not (starts := [s for s in starts if s + k in after]):
                        break
                if starts:
                    out[pw] = [(s, s + n) for s in starts]
        return out

    def scan_prefix(self, text: Tokens, whole: Tokens, found: Found) -> Found:
        """scan(text), where the text of `text` is a prefix of that of `whole`, scanned as `found`.

        The words they share give the same phrases in the same order; the last word of `text` may be a
        word of `whole` cut short, and then only a cut word that still means something needs a new scan.
        """
        n = len(text.words)
        if n and text.words[-1] != whole.words[n - 1]:
            if self.stands_for(text.words[-1]):
                return self.scan(text)
            n -= 1
        return {pw: kept for pw, spans in found.items() if (kept := [sp for sp in spans if sp[1] <= n])}


def find_phrase(p: Phrase, text: Tokens) -> bool:
    """Whether the phrase occurs as consecutive whole words of `text`, tolerating one typo per long word."""
    return bool(Lexicon([p]).scan(text).get(p.words))
