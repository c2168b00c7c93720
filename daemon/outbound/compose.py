"""Build the RFC 5322 bytes of an email we send, with the headers that keep loops away."""

from __future__ import annotations

import email.policy
import secrets
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from daemon.autoreply import LOOP_HEADER

__all__ = ["compose_email", "new_message_id"]


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
    msg = EmailMessage()
    msg["Message-ID"] = f"<{message_id}>"
    msg["Date"] = format_datetime(date)
    msg["From"] = f"{sender_name} <{sender}>" if sender_name else sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
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
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    # CRLF line ends: this is what goes on the wire (smtplib sends bytes unchanged).
    return msg.as_bytes(policy=email.policy.SMTP)
