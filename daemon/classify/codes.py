"""Codici fiscali, partite IVA and matricole found in free text (pure functions).

A personal codice fiscale is 16 characters (omocodia letters allowed in the digit positions) and
is accepted only if python-codicefiscale validates it; a company code is 11 digits with a valid
Luhn-like check digit. Things that have the shape of a code but fail the check are reported
separately, so the acknowledgement can tell the sender.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from codicefiscale import codicefiscale

__all__ = ["CodeScan", "find_codes", "find_matricola", "valid_partita_iva"]

_OMO = "[0-9LMNPQRSTUV]"
# Groups of a personal code: surname(3) name(3) year(2) month(1) day(2) place(4) check(1).
# Users write them with spaces, dots or dashes between the groups; allow one separator per group.
_SEP = r"[ .\-]?"
_CF_PATTERN = re.compile(
    rf"(?<![A-Z0-9])([A-Z]{{3}}){_SEP}([A-Z]{{3}}){_SEP}({_OMO}{{2}}){_SEP}([ABCDEHLMPRST]){_SEP}"
    rf"({_OMO}{{2}}){_SEP}([A-Z]{_OMO}{{3}}){_SEP}([A-Z])(?![A-Z0-9])",
    re.IGNORECASE,
)
# Looser shape: 16 alphanumerics with letters and digits where a code has them; used to report
# near-misses ("looks like a codice fiscale but the check fails").
_CF_SHAPE = re.compile(r"(?<![A-Z0-9])[A-Z]{6}[0-9A-Z]{2}[A-Z][0-9A-Z]{2}[A-Z][0-9A-Z]{3}[A-Z](?![A-Z0-9])", re.I)
_PIVA_PATTERN = re.compile(r"(?<![0-9])([0-9]{11})(?![0-9])")
_MATRICOLA_PATTERN = re.compile(r"\bmatr(?:icola)?(?:\s+aziendale)?\.?\s*(?:n\.?|nr\.?|:)?\s*([0-9]{10})(?![0-9])", re.I)
# A labelled partita IVA / codice fiscale numerico: we only report failures of labelled ones,
# since any 11-digit number (a phone number, a protocol) is not a claim to be a company code.
_PIVA_LABEL = re.compile(r"\b(?:p\.?\s?iva|partita\s+iva|c\.?\s?f\.?|codice\s+fiscale)\s*:?\s*([0-9]{11})\b", re.I)


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


def find_codes(text: str) -> CodeScan:
    """Every valid codice fiscale (personal or numeric) in `text`, in order, plus the invalid look-alikes."""
    valid: list[str] = []
    invalid: list[str] = []
    spans: list[tuple[int, int]] = []
    for m in _CF_PATTERN.finditer(text):
        code = "".join(m.groups()).upper()
        spans.append(m.span())
        target = valid if codicefiscale.is_valid(code) else invalid
        if code not in target:
            target.append(code)
    for m in _CF_SHAPE.finditer(text):
        if any(a <= m.start() < b for a, b in spans):
            continue
        code = m.group(0).upper()
        # A plain word of 16 letters is not a code: require digits where a code has them.
        if sum(ch.isdigit() for ch in code) >= 4 and code not in invalid and code not in valid:
            invalid.append(code)
    labelled = {m.group(1) for m in _PIVA_LABEL.finditer(text)}
    for m in _PIVA_PATTERN.finditer(text):
        code = m.group(1)
        if valid_partita_iva(code):
            if code not in valid:
                valid.append(code)
        elif code in labelled and code not in invalid:
            invalid.append(code)
    return CodeScan(tuple(valid), tuple(invalid))


def find_matricola(text: str) -> str | None:
    m = _MATRICOLA_PATTERN.search(text)
    return m.group(1) if m else None
