"""Recognising PEC by its structure: what an envelope, receipt or anomaly claims to be (unverified).

Only a hint for the analysis and the report: the decision is taken from the verified daticert.

The parts of a PEC message are found with a small byte-level MIME walker instead of the `email`
parser: it returns postacert.eml exactly as signed (the parser re-serialises it), it is iterative and
bounded (no recursion on hostile nesting), and it never parses more than the parts it needs.
"""

from __future__ import annotations

import base64
import binascii
import email.errors
import email.header
import email.parser
import email.policy
import quopri
import re
from dataclasses import dataclass
from email.message import Message

from daemon.mail.message import decode_header_value
from daemon.pec.model import RECEIPT_TYPES

__all__ = ["Claim", "find_parts", "find_wrapped_envelope", "header_block", "parse_headers", "read_claim"]

MAX_DEPTH = 8
MAX_PARTS = 200

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_NOT_B64 = re.compile(rb"[^A-Za-z0-9+/=]")


@dataclass(frozen=True)
class Claim:
    kind: str  # none | posta-certificata | anomalia | ricevuta
    receipt_type: str | None
    signed: bool
    riferimento: str | None


def read_claim(msg: Message) -> Claim:
    # One pass over the headers: a hostile message may carry hundreds of thousands of them.
    wanted = {"x-trasporto": "", "x-ricevuta": "", "subject": "", "x-riferimento-message-id": ""}
    for key, value in msg.items():
        name = key.lower()
        if name in wanted and not wanted[name]:
            wanted[name] = " ".join(str(value).split())
    trasporto = wanted["x-trasporto"].lower()
    ricevuta = wanted["x-ricevuta"].lower()
    subject = decode_header_value(wanted["subject"]).upper().lstrip()
    signed = msg.get_content_type() == "multipart/signed"
    riferimento = wanted["x-riferimento-message-id"].strip("<>") or None
    if ricevuta in RECEIPT_TYPES:
        return Claim("ricevuta", ricevuta, signed, riferimento)
    if trasporto == "posta-certificata" or subject.startswith("POSTA CERTIFICATA:"):
        return Claim("posta-certificata", None, signed, riferimento)
    if trasporto == "errore" or subject.startswith("ANOMALIA MESSAGGIO:"):
        return Claim("anomalia", None, signed, riferimento)
    return Claim("none", None, signed, riferimento)


def header_block(raw: bytes) -> bytes:
    """The header lines of `raw` without the body (the header parser would still read every line of
    a large body only to keep it as an unparsed payload)."""
    blank = _BLANK_LINE.search(raw)
    return raw if blank is None else raw[: blank.start()] + b"\r\n\r\n"


def parse_headers(raw: bytes) -> Message:
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)


def split_entity(raw: bytes) -> tuple[Message, bytes]:
    """(headers, body still transfer-encoded) of one MIME entity, exactly as in `raw`."""
    if raw.startswith((b"\r\n", b"\n")):  # no headers at all
        return parse_headers(b"\r\n"), raw[2 if raw.startswith(b"\r\n") else 1 :]
    blank = _BLANK_LINE.search(raw)
    if blank is None:
        return parse_headers(raw), b""
    return parse_headers(raw[: blank.start()] + b"\r\n\r\n"), raw[blank.end() :]


def split_multipart(body: bytes, boundary: str) -> list[bytes]:
    """The body parts of a multipart body (RFC 2046), the line end before each delimiter excluded."""
    marker = re.escape(boundary.encode("utf-8", "surrogateescape"))
    delimiter = re.compile(rb"(?m)^--" + marker + rb"(--)?[ \t]*\r?$\n?")
    parts: list[bytes] = []
    start: int | None = None
    closed = False
    for match in delimiter.finditer(body):
        if start is not None:
            parts.append(_strip_line_end(body[start : match.start()]))
            if len(parts) >= MAX_PARTS:
                return parts
        if match.group(1):
            closed = True
            break
        start = match.end()
    if start is not None and not closed:  # truncated: the last part runs to the end
        parts.append(body[start:])
    return parts


def _strip_line_end(part: bytes) -> bytes:
    if part.endswith(b"\r\n"):
        return part[:-2]
    if part.endswith(b"\n"):
        return part[:-1]
    return part


def decode_body(headers: Message, body: bytes) -> bytes | None:
    """The body with its Content-Transfer-Encoding undone; None when it cannot be decoded."""
    cte = str(headers.get("Content-Transfer-Encoding", "")).strip().lower()
    if cte == "base64":
        clean = _NOT_B64.sub(b"", body).rstrip(b"=")
        if b"=" in clean:
            return None
        clean = clean[: len(clean) - 1] if len(clean) % 4 == 1 else clean  # truncated: drop the stray char
        clean += b"=" * (-len(clean) % 4)
        try:
            return base64.b64decode(clean)
        except (binascii.Error, ValueError):
            return None
    if cte == "quoted-printable":
        return quopri.decodestring(body)
    return body


def _filename(headers: Message) -> str:
    try:
        return decode_header_value(headers.get_filename() or "").strip().lower()
    except (ValueError, LookupError, UnicodeError):  # broken RFC 2231 parameters
        return ""


def find_parts(raw: bytes) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(daticert.xml, postacert.eml, first other attached message) in a MIME entity, bounded.

    Attached messages are not opened: PEC-looking parts inside postacert.eml belong to the
    original message, not to this envelope.
    """
    daticert = postacert = attached = None
    count = 0
    queue: list[tuple[bytes, int]] = [(raw, 0)]
    while queue and count < MAX_PARTS:
        entity, depth = queue.pop(0)
        count += 1
        headers, body = split_entity(entity)
        name = _filename(headers) if depth else ""
        ctype = headers.get_content_type()
        if depth and (ctype == "message/rfc822" or name.endswith(".eml")):
            payload = decode_body(headers, body)
            if name == "postacert.eml" and postacert is None:
                postacert = payload
            elif attached is None:
                attached = payload
            continue
        is_daticert = name == "daticert.xml" or (ctype == "application/xml" and name.startswith("daticert"))
        if depth and daticert is None and is_daticert:
            daticert = decode_body(headers, body)
            continue
        if ctype.startswith("multipart/"):
            queue.extend(_children(headers, body, depth))
    return daticert, postacert, attached


def _children(headers: Message, body: bytes, depth: int) -> list[tuple[bytes, int]]:
    """The parts of a multipart entity, one level deeper; none below MAX_DEPTH."""
    boundary = headers.get_boundary() if depth < MAX_DEPTH else None
    return [(part, depth + 1) for part in split_multipart(body, boundary)] if boundary else []


_WRAP_HINT = re.compile(rb"multipart/signed|message/rfc822", re.IGNORECASE)


def find_wrapped_envelope(raw: bytes, outer: Claim) -> tuple[bytes, Claim] | None:
    """A PEC envelope inside another message, with what it claims to be, or None.

    Two shapes: a mailing list that adds a footer turns the envelope into multipart/mixed around its
    multipart/signed body (the PEC headers stay outside, so the claim is the outer one); a forward as
    attachment carries the whole envelope as message/rfc822 (the claim is in its own headers). Only the
    wrapped bytes are returned: whether they are genuine is for their own signature to say.
    """
    if _WRAP_HINT.search(raw) is None:  # most mail: no walk at all
        return None
    count = 0
    queue: list[tuple[bytes, int]] = [(raw, 0)]
    while queue and count < MAX_PARTS:
        entity, depth = queue.pop(0)
        count += 1
        headers, body = split_entity(entity)
        ctype = headers.get_content_type()
        if depth and ctype == "multipart/signed" and outer.kind != "none":
            return entity, Claim(outer.kind, outer.receipt_type, True, outer.riferimento)
        if depth and ctype == "message/rfc822":
            payload = decode_body(headers, body)
            if payload:
                claim = read_claim(parse_headers(header_block(payload)))
                if claim.kind != "none":
                    return payload, claim
            continue
        if ctype.startswith("multipart/") and ctype != "multipart/signed":
            queue.extend(_children(headers, body, depth))
    return None
