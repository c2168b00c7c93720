"""The outbox row of an email, rendered and composed, for the caller to write in the transaction of its
cause (DESIGN.md invariant 3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from daemon.config import Config
from daemon.conversation.tokens import ReplyTokens
from daemon.outbound.compose import OutgoingAttachment, compose_email, new_message_id
from daemon.outbound.templates import TemplateRenderer
from storage.models import InboundMessage, Outbox, Ticket

__all__ = ["EmailRequest", "outbox_row"]


@dataclass(frozen=True)
class EmailRequest:
    mailbox_id: str  # sent from this mailbox's address through its SMTP profile
    to: tuple[str, ...]
    template: str
    context: dict[str, Any]
    cc: tuple[str, ...] = ()
    ticket_id: str | None = None
    inbound_id: int | None = None
    inbound: InboundMessage | None = None  # preferred to inbound_id: the key is filled at flush
    ticket: Ticket | None = None  # likewise, for a ticket opened in the same (unflushed) batch
    in_reply_to: str | None = None
    references: tuple[str, ...] = field(default=())
    attached_message: bytes | None = None  # raw bytes carried as a message/rfc822 part (a forward)
    reply_to: str | None = None  # where the recipients' replies should go, when not to us
    message_id: str | None = None  # a signed reply token (notices to referents); else a random id
    attachments: tuple[OutgoingAttachment, ...] = ()
    automatic: bool = True  # False for a person's words relayed (no Auto-Submitted header)
    hop: int = 0  # times the cause of this email already passed through us (mail between our offices)


def outbox_row(
    config: Config,
    renderer: TemplateRenderer,
    request: EmailRequest,
    *,
    now: datetime,
    tokens: ReplyTokens | None = None,
) -> Outbox:
    """The outbox row of a request, rendered and composed, not yet in any session.
    `tokens` signs the hop header, by which our own mail coming back is recognised."""
    mailbox = config.mailbox(request.mailbox_id)
    rendered = renderer.render(request.template, request.context)
    subject = rendered.subject
    if request.ticket_id and f"[{request.ticket_id}]" not in subject:
        subject = f"[{request.ticket_id}] {subject}"
    message_id = request.message_id or new_message_id(config.instance.message_id_domain, request.ticket_id or "")
    raw = compose_email(
        message_id=message_id,
        sender=mailbox.address,
        sender_name=mailbox.name,
        to=list(request.to),
        cc=list(request.cc),
        subject=subject,
        text=rendered.text,
        html=rendered.html,
        date=now,
        instance=config.instance.name,
        in_reply_to=request.in_reply_to,
        references=list(request.references) or None,
        ticket_id=request.ticket_id,
        attached_message=request.attached_message,
        reply_to=request.reply_to,
        automatic=request.automatic,
        hop_stamp=tokens.stamp(message_id, request.hop + 1) if tokens is not None else None,
        attachments=request.attachments,
    )
    row = Outbox(
        message_id=message_id,
        ticket_id=request.ticket_id,
        inbound_id=request.inbound_id,
        mailbox=mailbox.id,
        smtp_profile=mailbox.smtp_profile,
        sender=mailbox.address,
        to=list(request.to),
        cc=list(request.cc),
        subject=subject,
        template=request.template,
        raw=raw,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    if request.inbound is not None:
        row.inbound = request.inbound
    if request.ticket is not None:
        row.ticket = request.ticket
    return row
