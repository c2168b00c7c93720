"""Log output of the daemon's processes: readable lines or one JSON object per line, codici fiscali masked."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from daemon.config import LoggingConfig
from daemon.ops.logmask import mask

__all__ = ["configure_logging"]

# Libraries that narrate their routine at INFO (Alembic's "Context impl", APScheduler's "Running job").
_CHATTY = ("imapclient", "mail.log", "alembic", "apscheduler")


class _MaskedText(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # The whole line, traceback included: an exception message can quote a subject.
        return mask(super().format(record))


class _MaskedJson(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        # Masking keeps every character class and length outside the codes, so the JSON stays valid.
        return mask(super().format(record))


def _formatter(settings: LoggingConfig, role: str | None) -> logging.Formatter:
    if settings.format == "json":
        return _MaskedJson(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
            static_fields={"process_role": role or "principale"},
            json_ensure_ascii=False,
        )
    where = f"[{role}]" if role else ""
    return _MaskedText(f"%(asctime)s %(levelname)s %(name)s{where}: %(message)s")


def configure_logging(
    settings: LoggingConfig, *, verbose: bool = False, role: str | None = None, stream: TextIO | None = None
) -> None:
    """One handler on the root logger, to stderr (the journal under systemd); `role` names a child process."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_formatter(settings, role))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else settings.level.upper())
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
