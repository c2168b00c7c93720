"""SQLAlchemy 2 models: inbound messages, tickets, ticket messages, events, outbox, alerts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes stored as UTC; SQLite returns naive values, we re-attach UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        from datetime import UTC

        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        from datetime import UTC

        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON, list[Any]: JSON}


# Outcomes of an inbound message (DESIGN.md invariant 4).
OUTCOMES = ("opened", "appended", "rejected", "ignored", "quarantined", "forwarded")


class InboundMessage(Base):
    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_inbound_imap_uid"),
        UniqueConstraint("mailbox", "raw_sha256", name="uq_inbound_raw"),
        Index("ix_inbound_message_id", "message_id"),
        Index("ix_inbound_outcome", "outcome", "received_at"),
        Index("ix_inbound_sender_processed", "sender", "processed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # imap | ingest | lmtp
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[str | None] = mapped_column(String(998))
    raw_sha256: Mapped[str] = mapped_column(String(64))
    archive_ref: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    sender: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    rule_id: Mapped[str | None] = mapped_column(String(64))
    rules_version: Mapped[str | None] = mapped_column(String(64))
    ticket_id: Mapped[str | None] = mapped_column(ForeignKey("tickets.id"))
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    ticket: Mapped[Ticket | None] = relationship(foreign_keys=[ticket_id])


class TicketCounter(Base):
    __tablename__ = "ticket_counters"

    office: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class TicketState(StrEnum):
    """The states Comunicazione Bidirezionale shows to users."""

    APERTA = "aperta"
    IN_CARICO = "in_carico"
    IN_ATTESA = "in_attesa"
    CHIUSA = "chiusa"


TICKET_STATES: tuple[str, ...] = tuple(s.value for s in TicketState)
OPEN_STATES: tuple[str, ...] = (TicketState.APERTA, TicketState.IN_CARICO, TicketState.IN_ATTESA)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("office", "year", "number", name="uq_ticket_number"),
        Index("ix_ticket_state_due", "state", "due_at"),
        # The open tickets per office and queue (metrics) are counted from this index alone.
        Index("ix_ticket_state_queue", "state", "office", "queue", "due_at"),
        Index("ix_ticket_requester", "requester"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # FE-2026-000123
    office: Mapped[str] = mapped_column(String(8))
    year: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="aperta")
    mailbox: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(64))
    assignee: Mapped[str | None] = mapped_column(String(64))
    requester: Mapped[str] = mapped_column(String(320))
    requester_name: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    codici_fiscali: Mapped[list[Any]] = mapped_column(JSON, default=list)
    classification: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    priority: Mapped[str | None] = mapped_column(String(16))
    sla_policy: Mapped[str | None] = mapped_column(String(64))
    pec_identificativo: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    close_outcome: Mapped[str | None] = mapped_column(String(64))
    # The office's first answer relayed to the requester (the SLA's "answered" moment).
    answered_at: Mapped[datetime | None]
    # The ticket this one continues or was escalated from (a reopened-too-late or cited ticket).
    linked_to: Mapped[str | None] = mapped_column(String(32))

    messages: Mapped[list[TicketMessage]] = relationship(back_populates="ticket", order_by="TicketMessage.id")
    events: Mapped[list[TicketEvent]] = relationship(back_populates="ticket", order_by="TicketEvent.id")


class TicketMessage(Base):
    __tablename__ = "ticket_messages"
    __table_args__ = (Index("ix_ticket_messages_message_id", "message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # in | out | note
    at: Mapped[datetime]
    author: Mapped[str] = mapped_column(String(320), default="")
    message_id: Mapped[str | None] = mapped_column(String(998))
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    # Set the objects rather than the ids and one flush per batch fills the keys (bulk inserts).
    inbound: Mapped[InboundMessage | None] = relationship(foreign_keys=[inbound_id])
    outbox: Mapped[Outbox | None] = relationship(foreign_keys=[outbox_id])


class TicketEvent(Base):
    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    ticket: Mapped[Ticket] = relationship(back_populates="events")


OUTBOX_STATUSES = ("pending", "sent", "failed", "held")


class Outbox(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    ticket_id: Mapped[str | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    mailbox: Mapped[str] = mapped_column(String(64))
    smtp_profile: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(320))
    to: Mapped[list[Any]] = mapped_column(JSON)
    cc: Mapped[list[Any]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(64))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]

    inbound: Mapped[InboundMessage | None] = relationship(foreign_keys=[inbound_id])
    ticket: Mapped[Ticket | None] = relationship(foreign_keys=[ticket_id])


class OutboxAttempt(Base):
    __tablename__ = "outbox_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), index=True)
    at: Mapped[datetime]
    result: Mapped[str] = mapped_column(String(16))  # sent | temporary | permanent
    smtp_code: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="")


class Alert(Base):
    """Things an admin must look at: quarantined mail, failed PEC verification, undeliverable mail."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(64))
    mailbox: Mapped[str | None] = mapped_column(String(64))
    ticket_id: Mapped[str | None] = mapped_column(String(32))
    inbound_id: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    acknowledged_at: Mapped[datetime | None]
    notified_at: Mapped[datetime | None]  # when the admins' digest email told of it

    # No database constraint (alerts outlive what they point at), but set through the object the key is
    # filled at the batch's single flush, like the other rows of a message.
    inbound: Mapped[InboundMessage | None] = relationship(
        primaryjoin="Alert.inbound_id == InboundMessage.id", foreign_keys=[inbound_id]
    )
