"""Signed Message-IDs that bind a notice to (ticket, person), signed loop stamps, and the instance secret."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

__all__ = ["ReplyTokens", "load_secret"]

# 128 bits of MAC: forging one token by guessing is out of reach, and the Message-ID stays readable.
_MAC_HEX = 32
_NONCE_BYTES = 8
_TICKET = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_HEX = re.compile(r"[0-9a-f]+")
_STAMP = re.compile(r"\s*hop\s*=\s*(\d{1,6})\s*;\s*sig\s*=\s*([0-9a-fA-F]{" + str(_MAC_HEX) + r"})\s*")
_MAX_ID_LENGTH = 998  # a header line; anything longer is not one of ours


def _bare(message_id: str) -> str:
    return message_id.strip().removeprefix("<").removesuffix(">").strip()


def _same_hex(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii"))


class ReplyTokens:
    """Mints and verifies the tokens of one instance; the domain is the right-hand side of our Message-IDs."""

    def __init__(self, secret: bytes, domain: str) -> None:
        if not secret:
            raise ValueError("il segreto dell'istanza è vuoto")
        self._secret = secret
        self._domain = domain.strip().lower()

    def _mac(self, purpose: str, *fields: str) -> str:
        # The purpose keeps a stamp signature from ever passing as a token MAC; NUL separators keep the
        # fields from sliding into each other ("a"+"bc" vs "ab"+"c").
        data = "\x00".join((purpose, *fields)).encode("utf-8")
        return hmac.new(self._secret, data, hashlib.sha256).hexdigest()[:_MAC_HEX]

    def message_id(self, ticket_id: str, address: str) -> str:
        """A new Message-ID (no angle brackets) for a notice about `ticket_id` sent to `address`."""
        ticket = ticket_id.strip().lower()
        if not _TICKET.fullmatch(ticket):
            raise ValueError(f"identificativo di pratica non valido per un Message-ID: {ticket_id!r}")
        nonce = secrets.token_hex(_NONCE_BYTES)
        mac = self._mac("reply-token", ticket.upper(), address.strip().lower(), nonce)
        return f"{ticket}.{nonce}.{mac}@{self._domain}"

    def verify(self, message_id: str, address: str) -> str | None:
        """The ticket id (upper case) if we minted `message_id` for `address`, else None; never raises."""
        if not isinstance(message_id, str) or not isinstance(address, str) or len(message_id) > _MAX_ID_LENGTH:
            return None
        local, at, domain = _bare(message_id).lower().rpartition("@")
        if not at or domain != self._domain:
            return None
        parts = local.rsplit(".", 2)
        if len(parts) != 3:
            return None
        ticket, nonce, mac = parts
        if not (_TICKET.fullmatch(ticket) and _HEX.fullmatch(nonce) and len(mac) == _MAC_HEX and _HEX.fullmatch(mac)):
            return None
        expected = self._mac("reply-token", ticket.upper(), address.strip().lower(), nonce)
        return ticket.upper() if _same_hex(expected, mac) else None

    def stamp(self, message_id: str, hop: int) -> str:
        """The loop-stamp header value for mail we send: `hop=1; sig=<hex>`."""
        if hop < 0:
            raise ValueError(f"numero di passaggi negativo: {hop}")
        return f"hop={hop}; sig={self._mac('loop-stamp', _bare(message_id).lower(), str(hop))}"

    def read_stamp(self, value: str | None, message_id: str | None) -> int | None:
        """The hop count of a stamp we signed for that Message-ID, else None; never raises."""
        if not isinstance(value, str) or not isinstance(message_id, str) or len(value) > _MAX_ID_LENGTH:
            return None
        found = _STAMP.fullmatch(value)
        if found is None:
            return None
        hop = int(found.group(1))
        expected = self._mac("loop-stamp", _bare(message_id).lower(), str(hop))
        return hop if _same_hex(expected, found.group(2).lower()) else None


def load_secret(env_name: str, fallback_file: Path) -> bytes:
    """The instance secret: the environment variable if set, else the file, created with a random one on first use.

    The file holds the secret as hex text and the key is that text, so copying the file's content into the
    variable keeps every token already sent valid.
    """
    value = os.environ.get(env_name, "").strip()
    if value:
        return value.encode("utf-8")
    if not fallback_file.exists():
        _create_secret_file(fallback_file)
    secret = fallback_file.read_text(encoding="ascii").strip()
    if not secret:
        raise ValueError(f"il file del segreto {fallback_file} è vuoto: cancellarlo per generarne uno nuovo")
    return secret.encode("ascii")


def _create_secret_file(path: Path) -> None:
    # Written under a private name and linked into place, so a concurrent starter either creates the file
    # whole or finds the other's complete file; never a half-written secret.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
