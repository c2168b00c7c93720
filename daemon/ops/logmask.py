"""Keep personal data out of log lines: codici fiscali and partite IVA are masked."""

from __future__ import annotations

import logging
import re

__all__ = ["MaskingFilter", "mask"]

_CF = re.compile(
    r"\b([A-Za-z]{3}[\s.]?[A-Za-z]{3})[\s.]?([0-9LMNPQRSTUVlmnpqrstuv]{2}[A-Za-z][0-9LMNPQRSTUVlmnpqrstuv]{2})[\s.]?"
    r"([A-Za-z][0-9LMNPQRSTUVlmnpqrstuv]{3})[\s.]?([A-Za-z])\b"
)
_PIVA = re.compile(r"\b\d{11}\b")


def mask(text: str) -> str:
    """`RSSMRA85T10A562S` -> `RS************2S`; 11-digit numbers -> `12*******01`."""

    def _cf(m: re.Match[str]) -> str:
        whole = re.sub(r"[\s.]", "", "".join(m.groups()))
        return whole[:2] + "*" * 12 + whole[-2:]

    text = _CF.sub(_cf, text)
    return _PIVA.sub(lambda m: m.group(0)[:2] + "*" * 7 + m.group(0)[-2:], text)


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            try:
                record.msg = record.getMessage()
            except Exception:
                return True
            record.args = None
        record.msg = mask(str(record.msg))
        return True
