"""The message model: one parsed email as plain data, and the parser that builds it.

The parser never raises on bad input; it raises `UnparseableMessage` only when the bytes cannot be
an email at all (the pipeline quarantines those). Everything else, however broken, is parsed as far
as it goes and its defects are listed.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header, decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime

from daemon.mail.html_text import html_to_text

__all__ = [
    "Attachment",
    "ParsedMessage",
    "UnparseableMessage",
    "one_line",
    "parse_message",
    "safe_filename",
]

_HEADER_LINE = re.compile(rb"^[!-9;-~]+:")
_MSGID = re.compile(r"<([^<>\s]+)>")
_MAX_FILENAME = 120


class UnparseableMessage(ValueError):
    """The bytes are not an email message; `reason` is a short machine code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Attachment:
    filename: str  # sanitised: no directories, no control characters, bounded length
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str | None  # without angle brackets
    subject: str
    sender: str  # lower-case address of From, "" if absent
    sender_name: str
    reply_to: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: datetime | None  # the sender's Date header: never used as receipt time
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text_body: str
    html_body: str | None
    attachments: tuple[Attachment, ...]
    headers: dict[str, tuple[str, ...]]  # lower-case name -> values, decoded
    raw_size: int
    content_type: str
    defects: tuple[str, ...] = field(default=())

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def raw_sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


_SPACE_RUN = re.compile(r"\s+")  # str patterns: also NEL, U+2028/9, VT, FF and the separators \x1c-\x1f
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(value: str) -> str:
    """A header value as one line of our text: a display name or subject with an encoded CR/LF must not
    become a line of its own ("Gentile Mario" / "Bcc: ...") in a reply or a referent's notice. Line breaks
    and space runs become one space; other control characters go."""
    return _CONTROL.sub("", _SPACE_RUN.sub(" ", value)).strip()


def safe_filename(name: str | None, fallback: str = "allegato") -> str:
    """An attachment name that cannot escape a folder or hide control characters."""
    if not name:
        return fallback
    name = one_line(name)
    name = name.replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '<>:"|?*')
    name = name.strip().lstrip(".").strip()
    if not name:
        return fallback
    if len(name) > _MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:10] if dot else ""
        name = (stem if dot else name)[: _MAX_FILENAME - len(ext) - 1] + ("." + ext if ext else "")
    return name


def parse_message_ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    found = _MSGID.findall(value)
    if not found and value.strip() and " " not in value.strip():
        found = [value.strip()]
    return tuple(dict.fromkeys(found))


_FOLD = re.compile(r"\r?\n[ \t]")


# The stdlib decodes RFC 2047 words with a Python call per encoded byte (about 4 µs): a header value is
# decoded up to this length (a real one is far shorter), and a message's headers up to the total below.
MAX_HEADER_CHARS = 16_384
_MAX_DECODED_HEADERS = 262_144


def decode_header_value(value: object) -> str:
    """Unfold and decode RFC 2047 words; undecodable input keeps its raw form rather than failing."""
    text = _FOLD.sub(" ", str(value)) if not isinstance(value, Header) else str(value)
    text = text[:MAX_HEADER_CHARS]
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except Exception:
        return text


def _safe_header(msg: Message, name: str) -> str | None:
    value = msg.get(name)
    return None if value is None else decode_header_value(value)


def _raw_header(msg: Message, name: str) -> str | None:
    """Unfolded but not decoded: addresses are split before their names are decoded."""
    value = msg.get(name)
    return None if value is None else _FOLD.sub(" ", str(value))


def _all_headers(msg: Message) -> dict[str, tuple[str, ...]]:
    # compat32 parsing with decoding on demand: the header registry of the modern policy costs
    # milliseconds per message, which is most of the intake time at a few hundred messages a second.
    out: dict[str, list[str]] = {}
    budget = _MAX_DECODED_HEADERS
    for key, value in msg.items():
        text = str(value)
        budget -= len(text)
        # Past the budget (a hostile pile of headers), values are kept unfolded but not decoded.
        out.setdefault(key.lower(), []).append(
            decode_header_value(text) if budget >= 0 else _FOLD.sub(" ", text[:MAX_HEADER_CHARS])
        )
    return {k: tuple(v) for k, v in out.items()}


def _first_address(value: str | None) -> tuple[str, str]:
    if not value:
        return "", ""
    pairs = getaddresses([value])
    for name, addr in pairs:
        if addr and "@" in addr:
            return addr.strip().lower(), one_line(decode_header_value(name))
    return "", ""


def _addresses(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a.strip().lower() for _, a in getaddresses(values) if a and "@" in a))


def _decode_part(part: Message) -> str:
    try:
        if isinstance(part, EmailMessage):
            content = part.get_content()
            if isinstance(content, str):
                return content
    except Exception:
        pass
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("latin-1", errors="replace")


def _walk_body(msg: Message) -> tuple[str, str | None, list[Attachment]]:
    text_parts: list[str] = []
    html_parts: list[str] = []
    attachments: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        try:
            filename = part.get_filename()
            filename = decode_header_value(filename) if filename else None
        except Exception:
            filename = None
        if disposition == "attachment" or filename or ctype not in ("text/plain", "text/html"):
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            attachments.append(
                Attachment(
                    filename=safe_filename(filename),
                    content_type=ctype,
                    size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                )
            )
            continue
        (text_parts if ctype == "text/plain" else html_parts).append(_decode_part(part))
    html_body = "\n".join(html_parts) if html_parts else None
    text = "\n".join(text_parts)
    if not text.strip() and html_body:
        text = html_to_text(html_body)
    return text, html_body, attachments


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse raw RFC 5322 bytes into a `ParsedMessage`."""
    if not raw or not raw.strip():
        raise UnparseableMessage("vuoto", "messaggio vuoto")
    first_line = raw.lstrip(b"\r\n").split(b"\n", 1)[0]
    if first_line.startswith(b"From ") and b"\n" in raw:  # mbox separator line
        raw = raw.split(b"\n", 1)[1]
        first_line = raw.split(b"\n", 1)[0]
    if not _HEADER_LINE.match(first_line):
        raise UnparseableMessage("intestazioni_illeggibili", "nessuna intestazione riconoscibile")
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception as exc:  # pragma: no cover - the stdlib parser is lenient
        raise UnparseableMessage("intestazioni_illeggibili", type(exc).__name__) from exc

    headers = _all_headers(msg)
    sender, sender_name = _first_address(_raw_header(msg, "From"))
    if not sender:
        sender, sender_name = _first_address(_raw_header(msg, "Sender"))
    if not sender and not headers.get("message-id") and not headers.get("subject"):
        raise UnparseableMessage("intestazioni_illeggibili", "mancano mittente, oggetto e Message-ID")
    reply_to, _ = _first_address(_raw_header(msg, "Reply-To"))
    date: datetime | None
    try:
        date_header = _safe_header(msg, "Date")
        date = parsedate_to_datetime(date_header) if date_header else None
    except Exception:
        date = None
    message_ids = parse_message_ids(_safe_header(msg, "Message-ID"))
    subject = one_line(_safe_header(msg, "Subject") or "")
    try:
        text, html_body, attachments = _walk_body(msg)
    except Exception as exc:
        raise UnparseableMessage("corpo_illeggibile", type(exc).__name__) from exc

    defects = [type(d).__name__ for d in msg.defects]
    return ParsedMessage(
        message_id=message_ids[0] if message_ids else None,
        subject=subject,
        sender=sender,
        sender_name=sender_name,
        reply_to=reply_to or None,
        to=_addresses([str(v) for v in headers.get("to", ())]),
        cc=_addresses([str(v) for v in headers.get("cc", ())]),
        date=date,
        in_reply_to=parse_message_ids(_safe_header(msg, "In-Reply-To")),
        references=parse_message_ids(_safe_header(msg, "References")),
        text_body=text,
        html_body=html_body,
        attachments=tuple(attachments),
        headers=headers,
        raw_size=len(raw),
        content_type=msg.get_content_type(),
        defects=tuple(defects),
    )


def format_address(addr: str, name: str = "") -> str:
    if not name:
        return addr
    user, _, domain = addr.partition("@")
    return str(Address(display_name=name, username=user, domain=domain))
