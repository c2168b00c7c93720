"""A local SMTP sink (a real SMTP exchange over aiosmtpd) for the demo, the tests and the benchmark.

Every accepted message is recorded in memory and, with a spool directory, written there atomically
as `NNNNNN-<sha1>.eml` with the acceptance time as its mtime. `set_mode` simulates outages: a
temporary failure at DATA, a permanent refusal at RCPT, or a closed listening socket.

Run as `python -m daemon.demo.smtp_sink --host 127.0.0.1 --port 0 --spool DIR`: it prints
`sink in ascolto su HOST PORT` on one stdout line and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal, get_args

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

__all__ = ["SinkMode", "SmtpSink", "SunkMessage", "main"]

SinkMode = Literal["accept", "tempfail", "permfail", "down"]
_MODES: frozenset[str] = frozenset(get_args(SinkMode))
_HEADER_END = re.compile(rb"\r?\n\r?\n")

ACCEPT_REPLY = "250 2.0.0 messaggio accettato"
TEMPFAIL_REPLY = "451 4.3.0 sink in errore temporaneo"
PERMFAIL_REPLY = "550 5.1.1 destinatario inesistente"

DATA_SIZE_LIMIT = 50 * 1024 * 1024
SERVER_HOSTNAME = "localhost"
IDENT = "sportello SMTP sink"
_SPOOL_NAME = re.compile(r"^(\d{6,})-[0-9a-f]{40}\.eml$")


@dataclass(frozen=True)
class SunkMessage:
    """One message the sink accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes  # the DATA exactly as received (dot-unstuffed)
    message_id: str | None  # Message-ID header without < >, None if absent
    accepted_at: float  # time.time() at acceptance
    path: Path | None  # spool file, if the sink has a spool directory


def _message_id(raw: bytes) -> str | None:
    """The Message-ID header of `raw`, without angle brackets and whitespace; None if absent/empty."""
    try:
        # The header block only: the parser would otherwise read every line of the body too.
        end = _HEADER_END.search(raw)
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw[: end.start()] if end else raw)
        value = headers.get("Message-ID")
    except Exception:  # a malformed header block must not make the sink refuse mail
        return None
    if value is None:
        return None
    cleaned = "".join(str(value).split()).strip("<>")
    return cleaned or None


def _free_port(host: str) -> int:
    """A port currently free on `host` (bind to port 0, read it, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class _Handler:
    """aiosmtpd handler: applies the sink's current mode and records accepted messages."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self._sink.mode == "permfail":
            return PERMFAIL_REPLY
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._sink.mode == "tempfail":
            return TEMPFAIL_REPLY
        raw = envelope.original_content
        if raw is None:
            content = envelope.content
            raw = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else (content or b"")
        self._sink._record(envelope.mail_from or "", tuple(envelope.rcpt_tos), bytes(raw))
        return ACCEPT_REPLY


def _xoauth2_fields(blob: bytes) -> tuple[str, str] | None:
    """`user=U\x01auth=Bearer T\x01\x01` -> (U, T); None if it is not that."""
    fields = dict(part.split("=", 1) for part in blob.decode("utf-8", "replace").split("\x01") if "=" in part)
    user, auth = fields.get("user"), fields.get("auth", "")
    if not user or not auth.startswith("Bearer "):
        return None
    return user, auth[len("Bearer ") :]


class _XOAuth2Handler(_Handler):
    """Also AUTH XOAUTH2 (as Exchange Online and Gmail offer it), tokens checked by `check(user, token)`."""

    def __init__(self, sink: SmtpSink, check: Callable[[str, str], bool]) -> None:
        super().__init__(sink)
        self._check = check

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802 - aiosmtpd's naming
        if len(args) == 2:
            try:
                blob: object = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                return AuthResult(success=False, handled=False, message="501 5.5.2 base64 non valido")
        else:
            blob = await server.challenge_auth(b"")
        if not isinstance(blob, bytes):  # the client aborted
            return AuthResult(success=False, handled=True)
        fields = _xoauth2_fields(blob)
        if fields is not None and self._check(*fields):
            self._sink._authenticated(fields[0])
            return AuthResult(success=True, auth_data=fields[0])
        # As the big providers do: a JSON error as a challenge, answered by the client with an empty line.
        await server.challenge_auth(b'{"status":"401","schemes":"bearer"}')
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535


class SmtpSink:
    """A local SMTP server that records every accepted message and can simulate outages."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        spool_dir: Path | None = None,
        xoauth2: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.host = host
        # With a token check, mail is accepted only after AUTH XOAUTH2 with a token it accepts.
        self.xoauth2 = xoauth2
        self.logins: list[str] = []  # users authenticated, in order
        self.port = port  # the actual port once start() has run
        self.spool_dir = Path(spool_dir) if spool_dir is not None else None
        self._mode: SinkMode = "accept"
        self._messages: list[SunkMessage] = []
        self._cond = threading.Condition(threading.Lock())  # guards _messages, _counter, _mode
        self._control = threading.RLock()  # serialises start/stop/set_mode
        self._controller: Controller | None = None
        self._running = False  # start() called and stop() not yet
        self._counter = 0

    # -- public API -------------------------------------------------------------------------

    @property
    def messages(self) -> list[SunkMessage]:
        """A snapshot of the accepted messages, in acceptance order."""
        with self._cond:
            return list(self._messages)

    @property
    def mode(self) -> SinkMode:
        with self._cond:
            return self._mode

    def start(self) -> None:
        """Pick the port (if 0), prepare the spool and listen (unless the mode is "down"). No-op if running."""
        with self._control:
            if self._running:
                return
            if self.spool_dir is not None:
                self.spool_dir.mkdir(parents=True, exist_ok=True)
                with self._cond:
                    self._counter = max(self._counter, self._last_spooled())
            if self.port == 0:
                self.port = _free_port(self.host)
            self._running = True
            if self.mode != "down":
                try:
                    self._listen()
                except BaseException:
                    self._running = False
                    raise

    def stop(self) -> None:
        """Close the listening socket and any open session. Idempotent."""
        with self._control:
            self._running = False
            self._unlisten()

    def set_mode(self, mode: SinkMode) -> None:
        """Switch behaviour; "down" closes the socket, leaving "down" listens again on the same port."""
        if mode not in _MODES:
            raise ValueError(f"modalità del sink sconosciuta: {mode!r}")
        with self._control:
            with self._cond:
                self._mode = mode
            if not self._running:
                return
            if mode == "down":
                self._unlisten()
            elif self._controller is None:
                self._listen()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait up to `timeout` seconds until at least `count` messages were accepted."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._messages) >= count, timeout=max(0.0, timeout))

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------

    def _listen(self) -> None:
        handler = _Handler(self) if self.xoauth2 is None else _XOAuth2Handler(self, self.xoauth2)
        auth: dict[str, Any] = {} if self.xoauth2 is None else {"auth_required": True, "auth_require_tls": False}
        controller = Controller(
            handler,
            hostname=self.host,
            port=self.port,
            server_hostname=SERVER_HOSTNAME,
            ident=IDENT,
            enable_SMTPUTF8=True,
            decode_data=False,
            data_size_limit=DATA_SIZE_LIMIT,
            **auth,
        )
        controller.start()
        self._controller = controller

    def _unlisten(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            # Stopping the loop cancels open sessions too, so clients see the connection drop.
            controller.stop(no_assert=True)

    def _last_spooled(self) -> int:
        """The highest counter already used in the spool directory (0 if none)."""
        assert self.spool_dir is not None
        last = 0
        for entry in self.spool_dir.iterdir():
            m = _SPOOL_NAME.match(entry.name)
            if m:
                last = max(last, int(m.group(1)))
        return last

    def _authenticated(self, user: str) -> None:
        with self._cond:
            self.logins.append(user)

    def _record(self, mail_from: str, rcpt_tos: tuple[str, ...], raw: bytes) -> None:
        """Spool (if configured) and record one accepted message; runs in the server thread."""
        accepted_at = time.time()
        path: Path | None = None
        if self.spool_dir is not None:
            with self._cond:
                self._counter += 1
                number = self._counter
            path = self.spool_dir / f"{number:06d}-{hashlib.sha1(raw).hexdigest()}.eml"
            tmp = path.with_name(f".{path.name}.tmp")  # not *.eml, so readers globbing the spool skip it
            tmp.write_bytes(raw)
            os.utime(tmp, (accepted_at, accepted_at))
            os.replace(tmp, path)
        message = SunkMessage(
            mail_from=mail_from,
            rcpt_tos=rcpt_tos,
            raw=raw,
            message_id=_message_id(raw),
            accepted_at=accepted_at,
            path=path,
        )
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()


# -- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m daemon.demo.smtp_sink", description="Server SMTP locale di prova.")
    parser.add_argument("--host", default="127.0.0.1", help="indirizzo di ascolto (predefinito 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="porta di ascolto; 0 sceglie una porta libera")
    parser.add_argument("--spool", type=Path, default=None, help="cartella dove salvare i messaggi accettati")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Install the handlers before listening, so an early SIGTERM still ends in a clean stop.
    previous: dict[int, Any] = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    sink = SmtpSink(args.host, args.port, spool_dir=args.spool)
    try:
        sink.start()
        sys.stdout.write(f"sink in ascolto su {args.host} {sink.port}\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        sink.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
