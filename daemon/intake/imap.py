"""One IMAP worker per mailbox: fetch new messages in batches, hand them to the pipeline, and only
after the pipeline has committed move them to the processed folder.

IDLE when the server offers it, polling otherwise; any network or server error closes the session
and reconnects with exponential backoff. The worker never decides anything about a message.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from daemon.config import ImapSettings, Mailbox
from daemon.intake.oauth2 import OAuth2Error, TokenProvider, token_provider
from daemon.ops.memory import return_free_memory
from storage.errors import StorageUnavailable

__all__ = ["FetchedMessage", "ImapWorker"]

log = logging.getLogger("sportello.imap")

Handler = Callable[[Sequence["FetchedMessage"]], None]


class Turn(Protocol):
    """Whether this instance may read a mailbox now (daemon.intake.leases.LeaseKeeper)."""

    def held(self, box: str) -> bool: ...
    def wait(self, box: str, stop: threading.Event) -> bool: ...


_NETWORK_ERRORS = (
    OSError,
    socket.timeout,
    ssl.SSLError,
    IMAPClientError,
    imaplib.IMAP4.error,
    EOFError,
    OAuth2Error,
)
_STOP_CHECK_SECONDS = 0.5


@dataclass(frozen=True)
class FetchedMessage:
    raw: bytes
    uid: int
    uidvalidity: int
    internaldate: datetime | None
    size: int
    oversized: bool  # only the header was fetched: the message is larger than the configured limit


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


class ImapWorker:
    def __init__(
        self,
        mailbox: Mailbox,
        handler: Handler,
        stop: threading.Event,
        *,
        max_message_bytes: int,
        reconnect_min: float,
        reconnect_max: float,
        password: str | None = None,
        alert_after: float = 300.0,
        on_outage: Callable[[str, str], None] | None = None,
        tokens: TokenProvider | None = None,
        turn: Turn | None = None,
    ) -> None:
        if mailbox.imap is None:
            raise ValueError(f"la casella {mailbox.id} non ha impostazioni IMAP")
        self.mailbox = mailbox
        self.settings: ImapSettings = mailbox.imap
        self.handler = handler
        self.stop = stop
        self.max_message_bytes = max_message_bytes
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.password = password if password is not None else self.settings.password()
        self.tokens = tokens
        if self.tokens is None and self.settings.auth == "oauth2" and self.settings.oauth2 is not None:
            self.tokens = token_provider(self.settings.oauth2)
        self.uidvalidity: int | None = None
        self.last_uid = 0
        self.connected = threading.Event()
        self.sessions = 0  # how many times a session was opened (observable reconnects)
        # time.time() of the last batch handed over or the last look that found nothing new (health, metrics).
        self.last_sync: float | None = None
        # A mailbox that cannot be read must not go quiet: after `alert_after` seconds of failures,
        # on_outage(mailbox_id, last error) is called once per outage (the service records an alert).
        self.alert_after = alert_after
        self.on_outage = on_outage
        self._failing_since: float | None = None
        self._outage_reported = False
        # With several instances on one database, the mailbox is read only while its lease is held.
        self.turn = turn

    def _my_turn(self) -> bool:
        return self.turn is None or self.turn.held(self.mailbox.id)

    # -- lifecycle ----------------------------------------------------------------------------

    def run(self) -> None:
        delay = self.reconnect_min
        while not self.stop.is_set():
            if self.turn is not None and not self.turn.wait(self.mailbox.id, self.stop):
                return
            try:
                self._session()
                delay = self.reconnect_min
            except _NETWORK_ERRORS as exc:
                self.connected.clear()
                self._failing(f"{type(exc).__name__}: {exc}")
                log.warning(
                    "casella %s: connessione IMAP interrotta (%s: %s); nuovo tentativo tra %.1f s",
                    self.mailbox.id,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                self.stop.wait(delay)
                delay = min(delay * 2, self.reconnect_max)
            except StorageUnavailable:  # logged and alerted by the handler; the messages stay unflagged
                self.connected.clear()
                self.stop.wait(delay)
                delay = min(delay * 2, self.reconnect_max)
            except Exception as exc:  # a bug in a handler must not kill the worker: log, back off, retry
                self.connected.clear()
                self._failing(f"{type(exc).__name__}: {exc}")
                log.exception("casella %s: errore inatteso; nuovo tentativo tra %.1f s", self.mailbox.id, delay)
                self.stop.wait(delay)
                delay = min(delay * 2, self.reconnect_max)

    def _failing(self, error: str) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if not self._outage_reported and now - self._failing_since >= self.alert_after:
            self._outage_reported = True
            log.error("casella %s: non leggibile da %.0f s (%s)", self.mailbox.id, now - self._failing_since, error)
            if self.on_outage is not None:
                try:
                    self.on_outage(self.mailbox.id, error)
                except Exception:  # the alert is best effort; the worker keeps retrying regardless
                    log.exception("casella %s: avviso di interruzione non registrato", self.mailbox.id)

    def _connect(self) -> IMAPClient:
        s = self.settings
        client = IMAPClient(s.host, port=s.port, ssl=s.security == "tls", timeout=s.timeout_seconds, use_uid=True)
        try:
            if s.security == "starttls":
                client.starttls(ssl.create_default_context())
            if self.tokens is not None:
                self._oauth2_login(client)
            elif self.password is None:
                raise imaplib.IMAP4.error(f"password IMAP assente (variabile {s.password_env} non impostata)")
            else:
                client.login(s.username, self.password)
            if not client.folder_exists(s.processed_folder):
                client.create_folder(s.processed_folder)
        except BaseException:
            _close(client)
            raise
        return client

    def _oauth2_login(self, client: IMAPClient) -> None:
        assert self.tokens is not None
        try:
            client.oauth2_login(self.settings.username, self.tokens.token())
        except LoginError:
            # Refused before its expiry (revoked, clocks apart): one new token, one more try.
            log.info("casella %s: token OAuth2 rifiutato, se ne chiede uno nuovo", self.mailbox.id)
            self.tokens.invalidate()
            client.oauth2_login(self.settings.username, self.tokens.token())

    def _session(self) -> None:
        client = self._connect()
        self.sessions += 1
        self.connected.set()
        if self._outage_reported:
            log.info("casella %s: di nuovo leggibile", self.mailbox.id)
        self._failing_since, self._outage_reported = None, False
        log.info("casella %s: connessa a %s:%s", self.mailbox.id, self.settings.host, self.settings.port)
        try:
            can_idle = self.settings.idle and client.has_capability("IDLE")
            full_scan = True  # at each new session: also what an earlier session failed to move
            while not self.stop.is_set() and self._my_turn():
                self._drain(client, full_scan)
                full_scan = False
                if can_idle:
                    self._idle(client)
                else:
                    self._poll_wait()
            if not self.stop.is_set():
                log.info("casella %s: turno passato a un'altra istanza, sessione chiusa", self.mailbox.id)
        finally:
            self.connected.clear()
            _close(client)

    # -- fetching -----------------------------------------------------------------------------

    def _select(self, client: IMAPClient) -> int:
        info = client.select_folder(self.settings.folder)
        uidvalidity = int(info[b"UIDVALIDITY"])
        if self.uidvalidity is not None and uidvalidity != self.uidvalidity:
            # The server renumbered the folder: UIDs mean nothing any more. Rescan all; the
            # pipeline recognises what it has seen by Message-ID and content hash.
            log.warning(
                "casella %s: UIDVALIDITY cambiata (%s -> %s), nuova scansione completa",
                self.mailbox.id,
                self.uidvalidity,
                uidvalidity,
            )
            self.last_uid = 0
        self.uidvalidity = uidvalidity
        return uidvalidity

    def _drain(self, client: IMAPClient, full_scan: bool) -> None:
        """Fetch and hand over everything new, batch by batch, until the folder has nothing new."""
        for _round in range(10_000):  # bounded: each round handles at least one message or stops
            if self.stop.is_set():
                return
            uidvalidity = self._select(client)
            criteria: list[object] = ["NOT", "DELETED"]
            if not full_scan and self.last_uid:
                criteria = ["UID", f"{self.last_uid + 1}:*", "NOT", "DELETED"]
            uids = sorted(u for u in client.search(criteria) if full_scan or u > self.last_uid)
            if not uids:
                self.last_sync = time.time()
                return
            for batch in _chunks(uids, self.settings.batch_size):
                if self.stop.is_set() or not self._my_turn():
                    return
                self._handle_batch(client, batch, uidvalidity)
                return_free_memory()  # the batch's messages are garbage now
            full_scan = False

    def _handle_batch(self, client: IMAPClient, batch: list[int], uidvalidity: int) -> None:
        meta = client.fetch(batch, ["RFC822.SIZE", "INTERNALDATE"])
        small = [u for u in batch if u in meta and int(meta[u].get(b"RFC822.SIZE", 0)) <= self.max_message_bytes]
        large = [u for u in batch if u in meta and u not in small]
        bodies = client.fetch(small, ["BODY.PEEK[]"]) if small else {}
        headers = client.fetch(large, ["BODY.PEEK[HEADER]"]) if large else {}
        items: list[FetchedMessage] = []
        for uid in batch:
            if uid not in meta:
                continue  # expunged meanwhile by someone else
            size = int(meta[uid].get(b"RFC822.SIZE", 0))
            if uid in bodies:
                raw, oversized = bodies[uid].get(b"BODY[]"), False
            elif uid in headers:
                raw, oversized = headers[uid].get(b"BODY[HEADER]"), True
            else:
                continue
            if not isinstance(raw, bytes):
                continue
            items.append(FetchedMessage(raw, uid, uidvalidity, _aware(meta[uid].get(b"INTERNALDATE")), size, oversized))
        if items:
            self.handler(items)  # returns only after the pipeline's commit
            self._move(client, [m.uid for m in items])
        self.last_uid = max(self.last_uid, *batch)
        self.last_sync = time.time()

    def _move(self, client: IMAPClient, uids: list[int]) -> None:
        target = self.settings.processed_folder
        if client.has_capability("MOVE"):
            client.move(uids, target)
            return
        client.copy(uids, target)
        client.add_flags(uids, [b"\\Deleted"])
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            client.expunge()

    # -- waiting ------------------------------------------------------------------------------

    def _idle(self, client: IMAPClient) -> None:
        """IDLE until the server reports new mail, the IDLE period ends, or we are asked to stop."""
        client.idle()
        try:
            waited = 0.0
            while not self.stop.is_set() and waited < self.settings.idle_timeout_seconds and self._my_turn():
                responses = client.idle_check(timeout=_STOP_CHECK_SECONDS)
                waited += _STOP_CHECK_SECONDS
                if any(len(r) >= 2 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    break
                if any(r and r[0] == b"BYE" for r in responses):
                    raise ConnectionResetError("il server IMAP ha chiuso la sessione (BYE)")
        finally:
            client.idle_done()

    def _poll_wait(self) -> None:
        self.stop.wait(self.settings.poll_seconds)


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # the connection may already be gone; nothing to save
        with contextlib.suppress(Exception):
            client.shutdown()
