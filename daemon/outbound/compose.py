"""Build the RFC 5322 bytes of an email we send, with the headers that keep loops away."""

from __future__ import annotations

import functools
import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import encoders
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime, formataddr

from daemon.mail.autoreply import HOP_HEADER, LOOP_HEADER, TICKET_HEADER

__all__ = ["OutgoingAttachment", "compose_email", "new_message_id"]


@dataclass(frozen=True)
class OutgoingAttachment:
    """A file carried on an email we send (a referent's attachment relayed to the requester)."""

    filename: str
    content_type: str
    data: bytes


# Quoted-printable keeps the Italian text readable in the raw message and in the archive.
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


class _WirePolicy(Compat32):
    """compat32 on the wire (CRLF), with two shortcuts: a short one-line ASCII header needs no folding,
    and compat32 would build and encode a Header object just to return it unchanged; a long one that
    comes back (a mailbox's From with its name) is folded once."""

    def fold_binary(self, name: str, value: str) -> bytes:  # type: ignore[override]
        if not isinstance(value, str):
            return super().fold_binary(name, value)
        limit = self.max_line_length or 78
        if value.isascii() and len(name) + len(value) + 2 <= limit and "\r" not in value and "\n" not in value:
            return f"{name}: {value}{self.linesep}".encode("ascii")
        if name in _REPEATED:
            return self._fold_repeated(name, value)
        return super().fold_binary(name, value)

    @functools.lru_cache(maxsize=256)  # noqa: B019  # one policy object lives as long as the process
    def _fold_repeated(self, name: str, value: str) -> bytes:
        return super().fold_binary(name, value)


_REPEATED = frozenset({"From", "Reply-To"})  # the same few values on every email of a mailbox


# CRLF line ends: this is what goes on the wire (smtplib sends bytes unchanged).
_WIRE = _WirePolicy(linesep="\r\n")


class _WireGenerator(BytesGenerator):
    """Writes a message/rfc822 part given as (surrogate-escaped) raw text unchanged: the stock
    generator would refuse its 8-bit bytes, or re-serialise a parsed copy and change them."""

    def _handle_message(self, msg: Message) -> None:
        # get_payload() would decode the escaped bytes with the part's charset: the raw text is wanted.
        payload = msg._payload  # type: ignore[attr-defined]
        if isinstance(payload, str):
            self.write(payload)
            return
        super()._handle_message(msg)  # type: ignore[misc]


def new_message_id(domain: str, tag: str = "") -> str:
    """A stable id chosen before sending, so a resend is recognisable as the same message."""
    token = secrets.token_hex(12)
    return f"{tag.lower()}.{token}@{domain}" if tag else f"{token}@{domain}"


def compose_email(
    *,
    message_id: str,
    sender: str,
    sender_name: str,
    to: list[str],
    cc: list[str],
    subject: str,
    text: str,
    html: str | None,
    date: datetime,
    instance: str,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    automatic: bool = True,
    ticket_id: str | None = None,
    attached_message: bytes | None = None,
    reply_to: str | None = None,
    hop_stamp: str | None = None,
    attachments: Sequence[OutgoingAttachment] = (),
) -> bytes:
    """`attached_message`: raw RFC 5322 bytes carried unchanged as a message/rfc822 part (a forward),
    only the line ends made CRLF."""
    # compat32 building blocks: the modern header registry costs milliseconds per email, and the
    # acknowledgement is written in the same transaction as the ticket, at intake speed.
    body = MIMEText(text, "plain", _UTF8_QP)  # type: ignore[arg-type]
    msg: Message
    if html:
        msg = MIMEMultipart("alternative", boundary=_boundary())
        msg.attach(body)
        msg.attach(MIMEText(html, "html", _UTF8_QP))  # type: ignore[arg-type]
    else:
        msg = body
    if attached_message is not None or attachments:
        mixed = MIMEMultipart("mixed", boundary=_boundary())
        mixed.attach(msg)
        if attached_message is not None:
            mixed.attach(_rfc822(attached_message))
        for attachment in attachments:
            mixed.attach(_attachment(attachment))
        msg = mixed
    msg["Message-ID"] = f"<{message_id}>"
    msg["Date"] = format_datetime(date)
    msg["From"] = _address(sender, sender_name)
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = _header(subject)  # type: ignore[assignment]  # compat32 takes Header objects
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = " ".join(f"<{r}>" for r in (references or [in_reply_to]))
    if automatic:
        # RFC 3834: well-behaved responders will not answer this.
        msg["Auto-Submitted"] = "auto-replied" if in_reply_to else "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = instance
    if hop_stamp:
        msg[HOP_HEADER] = hop_stamp
    if ticket_id:
        msg[TICKET_HEADER] = ticket_id
    out = io.BytesIO()
    _WireGenerator(out, mangle_from_=False, policy=_WIRE).flatten(msg)
    return out.getvalue()


def _boundary() -> str:
    """A boundary nobody can put in the parts (they are unknown until now): the generator would
    otherwise search every part's text for its own guess, compiling a pattern per email."""
    return f"=_sportello_{secrets.token_hex(16)}"


def _rfc822(raw: bytes) -> Message:
    """The original message as an attachment, byte for byte: a payload string is written out as it is
    (RFC 2046 allows no transfer encoding here, so 8-bit content is declared as such)."""
    wire = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # every line end CRLF, lone CRs kept
    part = Message()
    part["Content-Type"] = "message/rfc822"
    part["Content-Disposition"] = 'attachment; filename="messaggio-originale.eml"'
    if not wire.isascii():
        part["Content-Transfer-Encoding"] = "8bit"
    part.set_payload(wire.decode("ascii", "surrogateescape"))
    return part


def _attachment(attachment: OutgoingAttachment) -> Message:
    maintype, _, subtype = attachment.content_type.partition("/")
    part = MIMEBase(maintype or "application", subtype or "octet-stream")
    part.set_payload(attachment.data)
    encoders.encode_base64(part)
    part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", attachment.filename))
    return part


def _header(value: str) -> str | Header:
    return value if value.isascii() else Header(value, "utf-8")


@functools.lru_cache(maxsize=256)
def _address(address: str, name: str) -> str:
    return formataddr((name, address), charset="utf-8") if name else address
