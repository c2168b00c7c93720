"""`sportello ingest -`: one message on standard input from a mail server's pipe, with sysexits codes.

0 once the message is recorded (whatever its outcome), 67 (EX_NOUSER) for an unknown mailbox, 75
(EX_TEMPFAIL) when it could not be recorded (configuration, database or archive unavailable): the mail
server keeps the message and delivers it again later.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import typer

from daemon.cli.common import err, out
from daemon.config import ConfigError, load_config

__all__ = ["EX_NOUSER", "EX_TEMPFAIL", "deliver"]

EX_NOUSER = 67
EX_TEMPFAIL = 75

log = logging.getLogger("sportello.ingest")


def _give_up(message: str, code: int) -> None:
    err.print(f"[bold red]errore:[/] {message}", highlight=False)
    raise typer.Exit(code)


def deliver(
    config_path: Path | None, mailbox: str, received_at: datetime | None, stream: BinaryIO | None = None
) -> None:
    """Record the message read from `stream` (standard input) in `mailbox`; exit with a sysexits code."""
    from daemon.core.pipeline import InboundItem

    raw = (stream or sys.stdin.buffer).read()
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        problems = "; ".join(str(p) for p in exc.problems)
        _give_up(f"configurazione non valida, messaggio non registrato ({problems})", EX_TEMPFAIL)
        raise
    if mailbox not in {m.id for m in config.mailboxes}:
        _give_up(f"casella sconosciuta: {mailbox}", EX_NOUSER)
    try:
        from daemon.service import Service

        service = Service(config)
        try:
            item = InboundItem(raw=raw, mailbox_id=mailbox, source="ingest", received_at=received_at)
            (outcome,) = service.ingest([item])
        finally:
            service.close()
    except Exception as exc:  # not recorded: a temporary failure for the mail server, which retries
        log.debug("messaggio non registrato", exc_info=True)
        _give_up(f"messaggio non registrato, riprovare più tardi ({type(exc).__name__}: {exc})", EX_TEMPFAIL)
        raise
    ticket = f", pratica {outcome.ticket_id}" if outcome.ticket_id else ""
    again = " (già ricevuto)" if outcome.duplicate else ""
    out.print(f"registrato: esito {outcome.outcome}{again}{ticket}", highlight=False, markup=False)
