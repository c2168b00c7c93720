"""Build the RFC 5322 bytes of an email we send, with the headers that keep loops away."""

from __future__ import annotations

import secrets
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import format_datetime, formataddr

from daemon.autoreply import LOOP_HEADER

__all__ = ["compose_email", "new_message_id"]

# Quoted-printable keeps the Italian text readable in the raw message and in the archive.
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


class _WirePolicy(Compat32):
    """compat32 on the wire (CRLF), with a shortcut: a short one-line ASCII header needs no folding,
    and compat32 would build and encode a Header object just to return it unchanged."""

    def fold_binary(self, name: str, value: str) -> bytes:  # type: ignore[override]
        limit = self.max_line_length or 78
        if (
            isinstance(value, str)
            and value.isascii()
            and len(name) + len(value) + 2 <= limit
            and "\r" not in value
            and "\n" not in value
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


# CRLF line ends: this is what goes on the wire (smtplib sends bytes unchanged).
_WIRE = _WirePolicy(linesep="\r\n")


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
) -> bytes:
    # compat32 building blocks: the modern header registry costs milliseconds per email, and the
    # acknowledgement is written in the same transaction as the ticket, at intake speed.
    body = MIMEText(text, "plain", _UTF8_QP)  # type: ignore[arg-type]
    msg: Message
    if html:
        msg = MIMEMultipart("alternative")
        msg.attach(body)
        msg.attach(MIMEText(html, "html", _UTF8_QP))  # type: ignore[arg-type]
    else:
        msg = body
    msg["Message-ID"] = f"<{message_id}>"
    msg["Date"] = format_datetime(date)
    msg["From"] = _address(sender, sender_name)
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = _header(subject)  # type: ignore[assignment]  # compat32 takes Header objects
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = " ".join(f"<{r}>" for r in (references or [in_reply_to]))
    if automatic:
        # RFC 3834: well-behaved responders will not answer this.
        msg["Auto-Submitted"] = "auto-replied" if in_reply_to else "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = instance
    if ticket_id:
        msg["X-Sportello-Ticket"] = ticket_id
    return msg.as_bytes(policy=_WIRE)


def _header(value: str) -> str | Header:
    return value if value.isascii() else Header(value, "utf-8")


def _address(address: str, name: str) -> str:
    return formataddr((name, address), charset="utf-8") if name else address
