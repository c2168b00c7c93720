"""Mailbox leases: which instance reads each mailbox, since when, and until when unless it renews; and the
instances alive on the database, so that they share the mailboxes out evenly."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base

__all__ = ["InstanceBeat", "MailboxLease"]


class MailboxLease(Base):
    __tablename__ = "mailbox_leases"

    mailbox: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))  # instance name @ host : pid
    acquired_at: Mapped[datetime]
    renewed_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class InstanceBeat(Base):
    """An instance running on this database, as of its last heartbeat."""

    __tablename__ = "instance_beats"

    holder: Mapped[str] = mapped_column(String(255), primary_key=True)
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]
