"""LMTP intake: the mail server delivers to sportello, which answers each recipient only after recording.

RCPT TO is matched to a mailbox by its address (550 for an unknown one, that recipient only). After
DATA each accepted recipient gets its own reply (RFC 2033): 250 once the transaction recording the
message in its mailbox has committed, 451 when the database or the archive is unavailable (the mail
server keeps the message and retries), 552 over the size limit. One message is recorded per mailbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiosmtpd.controller import BaseThreadedController, Controller, UnixSocketController
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from daemon.config import Config, split_listen
from daemon.core.pipeline import InboundItem, Outcome

__all__ = ["LmtpIntake", "LmtpHandler"]

log = logging.getLogger("sportello.lmtp")

Ingest = Callable[[Sequence[InboundItem]], list[Outcome]]

SERVER_HOSTNAME = "sportello"
IDENT = "sportello LMTP"


def _reply(code: str, address: str, text: str) -> str:
    return f"{code} <{address}> {text}"


class LmtpHandler:
    """aiosmtpd hooks: recipients to mailboxes, then the pipeline, then one reply per recipient."""

    def __init__(self, mailboxes: Mapping[str, str], ingest: Ingest) -> None:
        self._by_address = {address.lower(): box for address, box in mailboxes.items()}
        self._ingest = ingest

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() not in self._by_address:
            return _reply("550 5.1.1", address, "casella sconosciuta")
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return _reply("250 2.1.5", address, "casella accettata")

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = bytes(envelope.original_content or b"")
        boxes = list(dict.fromkeys(self._by_address[a.lower()] for a in envelope.rcpt_tos))
        items = [InboundItem(raw=raw, mailbox_id=box, source="lmtp") for box in boxes]
        try:
            # The pipeline blocks (database, archive fsync): run it off the event loop.
            await asyncio.get_running_loop().run_in_executor(None, self._ingest, items)
        except Exception as exc:  # not recorded: the mail server keeps the message and tries again
            log.error("consegna LMTP non registrata (%s: %s): risposta 451", type(exc).__name__, exc)
            text = "database o archivio non disponibili, riprovare più tardi"
            return "\r\n".join(_reply("451 4.3.0", a, text) for a in envelope.rcpt_tos)
        return "\r\n".join(_reply("250 2.0.0", a, "messaggio registrato") for a in envelope.rcpt_tos)


class _LmtpServer(LMTP):
    """aiosmtpd's LMTP, with the errors it raises itself at the end of DATA (too much data, a line too
    long) repeated once per recipient, as an LMTP client expects one reply for each."""

    _in_data = False

    async def smtp_DATA(self, arg: str) -> None:
        self._in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self._in_data = False

    async def push(self, status: Any) -> None:
        rcpts = self.envelope.rcpt_tos if self.envelope is not None else []
        if self._in_data and isinstance(status, str) and status[:3] in ("552", "500") and len(rcpts) > 1:
            status = "\r\n".join([status] * len(rcpts))
        await super().push(status)


class _InetController(Controller):
    def factory(self) -> SMTP:
        return _LmtpServer(self.handler, **self.SMTP_kwargs)


class _UnixController(UnixSocketController):
    def factory(self) -> SMTP:
        return _LmtpServer(self.handler, **self.SMTP_kwargs)


class LmtpIntake:
    """The LMTP listener of `sportello run`, on its own thread (aiosmtpd's event loop)."""

    def __init__(self, config: Config, ingest: Ingest) -> None:
        if config.lmtp is None:
            raise ValueError("sezione lmtp assente nella configurazione")
        self.where = split_listen(config.lmtp.listen)
        handler = LmtpHandler({m.address: m.id for m in config.mailboxes}, ingest)
        options: dict[str, Any] = {
            "server_hostname": SERVER_HOSTNAME,
            "ident": IDENT,
            "data_size_limit": config.intake.max_message_bytes,
            "enable_SMTPUTF8": True,
            "decode_data": False,
        }
        self._controller: BaseThreadedController
        if isinstance(self.where, tuple):
            host, port = self.where
            self._controller = _InetController(handler, hostname=host, port=port, **options)
        else:
            self.where = str(config.resolve_path(self.where))
            self._controller = _UnixController(handler, unix_socket=self.where, **options)

    def start(self) -> None:
        if isinstance(self.where, str):
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(os.stat(self.where).st_mode):
                    os.unlink(self.where)  # left by a killed instance; any other file is an error
        self._controller.start()
        log.info("consegna LMTP in ascolto su %s", self.describe())

    def stop(self) -> None:
        self._controller.stop()

    def describe(self) -> str:
        return self.where if isinstance(self.where, str) else f"{self.where[0]}:{self.where[1]}"
