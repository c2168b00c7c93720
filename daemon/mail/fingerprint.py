"""A message's identity apart from its transport: a hash of its body and identifying headers."""

from __future__ import annotations

import hashlib
import re

__all__ = ["IDENTIFYING_HEADERS", "content_fingerprint"]

# What the author wrote. Received, Return-Path, Delivered-To, Authentication-Results, X-Original-To and
# the like are added on the way and differ between two deliveries of the same message.
IDENTIFYING_HEADERS = (
    "from",
    "sender",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "content-type",
    "content-transfer-encoding",
)

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD = re.compile(rb"^([!-9;-~]+):[ \t]*(.*)$")
_SPACES = re.compile(rb"\s+")


def content_fingerprint(raw: bytes) -> str:
    """SHA-256 over the identifying headers (unfolded, whitespace collapsed, in a fixed order) and the
    body (line endings normalised, trailing blank space dropped), so that the same message delivered
    twice with other transport headers has the same fingerprint and any other message has another."""
    end = _HEADER_END.search(raw)
    head, body = (raw[: end.start()], raw[end.end() :]) if end else (raw, b"")
    fields: dict[bytes, list[bytes]] = {}
    name: bytes | None = None
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        if line[:1] in (b" ", b"\t") and name is not None:
            fields[name][-1] += b" " + line.strip()
            continue
        m = _FIELD.match(line)
        name = m.group(1).lower() if m else None
        if m and name is not None:
            fields.setdefault(name, []).append(m.group(2))
    digest = hashlib.sha256()
    for header in IDENTIFYING_HEADERS:
        for value in fields.get(header.encode(), ()):
            digest.update(header.encode() + b":" + _SPACES.sub(b" ", value).strip() + b"\n")
    digest.update(b"\n")
    digest.update(body.replace(b"\r\n", b"\n").rstrip())
    return digest.hexdigest()
