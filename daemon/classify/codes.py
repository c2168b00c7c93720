"""Codici fiscali, partite IVA and matricole found in free text (pure functions).

A personal codice fiscale is 16 characters (omocodia letters allowed in the digit positions) and is
accepted only if it is what python-codicefiscale calls valid: check character, date of birth and a
birthplace code that existed on that date. The common case is decided here from the library's own
tables (its full decoding costs about a millisecond a code); anything unusual is asked to the library.
A company code is 11 digits with a valid check digit, unless the text labels it as a telephone or
protocol number. Things that have the shape of a code but fail the check are reported separately,
so the acknowledgement can tell the sender.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from codicefiscale import codicefiscale

__all__ = ["CodeScan", "find_codes", "find_matricola", "valid_codice_fiscale", "valid_partita_iva"]

# Upper and lower case spelled out rather than re.IGNORECASE: the same matches, about twice as fast.
_LETTER = "[A-Za-z]"
_ALNUM = "[0-9A-Za-z]"
_OMO = "[0-9LMNPQRSTUVlmnpqrstuv]"
_MONTH = "[ABCDEHLMPRSTabcdehlmprst]"
# Groups of a personal code: surname(3) name(3) year(2) month(1) day(2) place(4) check(1).
# Users write them with spaces, dots or dashes between the groups; allow one separator per group.
_SEP = r"[ .\-]?"
_CF_PATTERN = re.compile(
    rf"(?<!{_ALNUM})({_LETTER}{{3}}){_SEP}({_LETTER}{{3}}){_SEP}({_OMO}{{2}}){_SEP}({_MONTH}){_SEP}"
    rf"({_OMO}{{2}}){_SEP}({_LETTER}{_OMO}{{3}}){_SEP}({_LETTER})(?!{_ALNUM})"
)
# Looser shape: 16 alphanumerics with letters and digits where a code has them; used to report
# near-misses ("looks like a codice fiscale but the check fails").
_CF_SHAPE = re.compile(
    rf"(?<!{_ALNUM}){_LETTER}{{6}}{_ALNUM}{{2}}{_LETTER}{_ALNUM}{{2}}{_LETTER}{_ALNUM}{{3}}{_LETTER}(?!{_ALNUM})"
)
_MIN_DIGITS_FOR_INVALID = 4  # a failed 16-character word is reported only if it has digits like a code
# "(?<![0-9])[0-9]{11}" with the look-behind after the first digit: a pattern that starts with a digit
# lets `re` skip quickly to the digits of the text.
_PIVA_PATTERN = re.compile(r"([0-9](?<![0-9]{2})[0-9]{10})(?![0-9])")
_MATRICOLA_PATTERN = re.compile(
    r"\bmatr(?:icola)?(?:\s+aziendale)?(?:\s+inps)?\.?\s*(?:n\.?|nr\.?|:)?\s*([0-9]{10})(?![0-9])", re.I
)
# A labelled partita IVA / codice fiscale numerico: we only report failures of labelled ones,
# since any 11-digit number (a phone number, a protocol) is not a claim to be a company code.
_PIVA_LABEL = re.compile(
    r"\b(?:p\.?\s?iva|partita\s+iva|c\.?\s?f\.?|cod(?:ice)?\.?\s+fisc(?:ale)?\.?)\s*(?:n\.?|nr\.?)?\s*:?\s*$", re.I
)
# What a number is when the words just before it say so: not a company code.
_NOT_A_CODE_LABEL = re.compile(
    r"\b(?:tel|telefono|telefonico|cell|cellulare|fax|numero|recapito|chiamare|whatsapp|prot|protocollo)\b"
    r"[^0-9\n]{0,8}$",
    re.I,
)
_CONTEXT = 30  # characters looked at before an 11-digit number

_MONTHS = "ABCDEHLMPRST"
_OMOCODIA = str.maketrans("LMNPQRSTUV", "0123456789")
_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21,
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
], strict=True))  # fmt: skip
_EVEN = {ch: (int(ch) if ch.isdigit() else ord(ch) - ord("A")) for ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


@dataclass(frozen=True)
class CodeScan:
    valid: tuple[str, ...]
    invalid: tuple[str, ...]


def valid_partita_iva(code: str) -> bool:
    if len(code) != 11 or not code.isdigit() or code == "00000000000":
        return False
    total = 0
    for i, ch in enumerate(code[:10]):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return (10 - total % 10) % 10 == int(code[10])


def check_character(code15: str) -> str:
    """The control character of the first 15 characters of a personal code (upper case)."""
    total = sum(map(_ODD.__getitem__, code15[::2])) + sum(map(_EVEN.__getitem__, code15[1::2]))
    return chr(ord("A") + total % 26)


@lru_cache(maxsize=1)
def _places() -> dict[str, list[dict[str, Any]]]:
    from codicefiscale.data import get_indexed_data

    return get_indexed_data()["codes"]


@lru_cache(maxsize=20_000)
def _place_periods(code: str) -> tuple[tuple[datetime, datetime], ...]:
    periods = []
    for option in _places().get(code, ()):
        created = datetime.fromisoformat(option["date_created"]) if option.get("date_created") else datetime.min
        deleted = datetime.fromisoformat(option["date_deleted"]) if option.get("date_deleted") else datetime.max
        periods.append((created, deleted))
    return tuple(periods)


@lru_cache(maxsize=100_000)
def _library_valid(code: str) -> bool:
    return bool(codicefiscale.is_valid(code))


def valid_codice_fiscale(code: str) -> bool:
    """Whether a 16-character personal code (upper case, no separators) is valid for python-codicefiscale."""
    if len(code) != 16 or not code.isalnum() or not code.isascii():
        return False
    code = code.upper()
    if _CF_PATTERN.fullmatch(code) is None or check_character(code[:15]) != code[15]:
        return False
    # The library's first reading: this century unless that is in the future, then the birthplace
    # must have existed on that date. When this holds the library agrees; otherwise let it decide.
    try:
        year = int(code[6:8].translate(_OMOCODIA))
        day = int(code[9:11].translate(_OMOCODIA))
        month = _MONTHS.index(code[8]) + 1
        today = date.today()
        year += today.year - today.year % 100
        if year > today.year:
            year -= 100
        born = datetime(year, month, day - 40 if day > 40 else day)
    except ValueError:
        return _library_valid(code)
    place = code[11] + code[12:15].translate(_OMOCODIA)
    if any(created <= born <= deleted for created, deleted in _place_periods(place)):
        return True
    return _library_valid(code)


def _numeric_is_labelled_other(text: str, start: int) -> bool:
    before = text[max(0, start - _CONTEXT) : start]
    return _PIVA_LABEL.search(before) is None and _NOT_A_CODE_LABEL.search(before) is not None


_NO_CODES = CodeScan((), ())


def find_codes(text: str) -> CodeScan:
    """Every valid codice fiscale (personal or numeric) in `text`, in order, plus the invalid look-alikes."""
    found: list[tuple[int, bool, str]] = []  # (position, valid, code)
    spans: list[tuple[int, int]] = []
    pos = 0
    while (m := _CF_PATTERN.search(text, pos)) is not None:
        code = "".join(m.groups()).upper()
        valid_code = valid_codice_fiscale(code)  # about 5 µs: asked once
        if not valid_code:
            # Separators make the pattern greedy across words ("ABC RSSMRA85..."): a valid code that
            # starts inside this failed match wins over it.
            inner = _CF_PATTERN.search(text, m.start() + 1)
            if inner is not None and inner.start() < m.end() and valid_codice_fiscale("".join(inner.groups()).upper()):
                pos = inner.start()
                continue
        spans.append(m.span())
        if valid_code:
            found.append((m.start(), True, code))
        elif sum(ch.isdigit() for ch in code) >= _MIN_DIGITS_FOR_INVALID:
            found.append((m.start(), False, code))
        pos = m.end()
    for m in _CF_SHAPE.finditer(text):
        if any(a <= m.start() < b for a, b in spans):
            continue
        code = m.group(0).upper()
        # A plain word of 16 letters is not a code: require digits where a code has them.
        if sum(ch.isdigit() for ch in code) >= _MIN_DIGITS_FOR_INVALID:
            found.append((m.start(), False, code))
    for m in _PIVA_PATTERN.finditer(text):
        code = m.group(1)
        if _numeric_is_labelled_other(text, m.start()):
            continue
        if valid_partita_iva(code):
            found.append((m.start(), True, code))
        elif _PIVA_LABEL.search(text[max(0, m.start() - _CONTEXT) : m.start()]):
            found.append((m.start(), False, code))
    if not found:
        return _NO_CODES
    valid: list[str] = []
    invalid: list[str] = []
    for _, ok, code in sorted(found, key=lambda f: f[0]):
        target = valid if ok else invalid
        if code not in target:
            target.append(code)
    return CodeScan(tuple(valid), tuple(invalid))


def find_matricola(text: str) -> str | None:
    if "matr" not in text.lower():  # much cheaper than the pattern, which needs these letters in any case
        return None
    m = _MATRICOLA_PATTERN.search(text)
    return m.group(1) if m else None
