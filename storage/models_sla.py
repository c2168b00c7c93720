"""Tables of the SLA clock: one clock per ticket and track, the log of executed steps, the digest log.

A clock's `next_at` is the time its next step is due (NULL when nothing is pending: paused, stopped,
or no step left); the sweep finds due clocks through the partial index on it. Every executed step is
a `sla_step_runs` row, unique per (clock, cycle, policy, step), written in the same transaction as
the step's event and outbox rows: a step is sent once even across crashes and concurrent instances.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models import Base, Outbox, Ticket

__all__ = ["SLA_TRACKS", "SlaClock", "SlaDigest", "SlaStepRun"]

# "risposta": the office's answer term; "attesa": the requester's term while the ticket waits for them.
SLA_TRACKS = ("risposta", "attesa")


class SlaClock(Base):
    __tablename__ = "sla_clocks"
    __table_args__ = (
        UniqueConstraint("ticket_id", "track", name="uq_sla_clock_ticket_track"),
        Index(
            "ix_sla_clocks_next_at",
            "next_at",
            postgresql_where=text("next_at IS NOT NULL"),
            sqlite_where=text("next_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"))
    track: Mapped[str] = mapped_column(String(16))
    policy: Mapped[str] = mapped_column(String(64))
    # Incremented each time the clock starts again (a new wait, a reopened ticket): steps run once per cycle.
    cycle: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime]
    due_at: Mapped[datetime]
    paused_at: Mapped[datetime | None]
    paused_days: Mapped[int] = mapped_column(Integer, default=0)
    next_step: Mapped[str | None] = mapped_column(String(64))
    next_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    stop_reason: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime]

    ticket: Mapped[Ticket] = relationship(foreign_keys=[ticket_id])


class SlaStepRun(Base):
    __tablename__ = "sla_step_runs"
    __table_args__ = (
        UniqueConstraint("clock_id", "cycle", "policy", "step", name="uq_sla_step_once"),
        Index("ix_sla_step_runs_ticket", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    clock_id: Mapped[int] = mapped_column(ForeignKey("sla_clocks.id"))
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"))
    cycle: Mapped[int] = mapped_column(Integer)
    policy: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(64))
    scheduled_at: Mapped[datetime]
    executed_at: Mapped[datetime]
    # sent | skipped (condition not met) | no_recipients
    result: Mapped[str] = mapped_column(String(16))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    note: Mapped[str] = mapped_column(Text, default="")

    clock: Mapped[SlaClock] = relationship(foreign_keys=[clock_id])
    outbox: Mapped[Outbox | None] = relationship(foreign_keys=[outbox_id])


class SlaDigest(Base):
    """One daily digest per person and day (sent, or recorded as empty)."""

    __tablename__ = "sla_digests"
    __table_args__ = (UniqueConstraint("person", "day", name="uq_sla_digest_person_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    sent_at: Mapped[datetime]
    tickets: Mapped[int] = mapped_column(Integer, default=0)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))

    outbox: Mapped[Outbox | None] = relationship(foreign_keys=[outbox_id])
