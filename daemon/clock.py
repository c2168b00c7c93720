"""The wall clock, in one place: every component takes a clock argument defaulting to this one."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)
