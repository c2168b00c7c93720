"""Reading and acknowledging the alerts table (any kind: every component adds its own)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Alert

__all__ = ["AlertView", "acknowledge", "list_alerts"]


@dataclass(frozen=True)
class AlertView:
    id: int
    at: datetime
    kind: str
    mailbox: str | None
    ticket_id: str | None
    inbound_id: int | None
    note: str
    notified_at: datetime | None
    acknowledged_at: datetime | None

    @classmethod
    def of(cls, row: Alert) -> AlertView:
        return cls(
            id=row.id,
            at=row.at,
            kind=row.kind,
            mailbox=row.mailbox,
            ticket_id=row.ticket_id,
            inbound_id=row.inbound_id,
            note=row.note,
            notified_at=row.notified_at,
            acknowledged_at=row.acknowledged_at,
        )

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        for key in ("at", "notified_at", "acknowledged_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


def list_alerts(
    session: Session, *, open_only: bool = False, kind: str | None = None, limit: int = 200
) -> list[AlertView]:
    """The newest alerts first; `open_only`: those nobody has acknowledged yet."""
    query = select(Alert).order_by(Alert.at.desc(), Alert.id.desc()).limit(limit)
    if open_only:
        query = query.where(Alert.acknowledged_at.is_(None))
    if kind:
        query = query.where(Alert.kind == kind)
    return [AlertView.of(row) for row in session.execute(query).scalars()]


def acknowledge(session: Session, alert_id: int, now: datetime) -> AlertView | None:
    """Mark an alert as seen (idempotent: the first acknowledgement's time stays); None if unknown."""
    row = session.get(Alert, alert_id)
    if row is None:
        return None
    if row.acknowledged_at is None:
        row.acknowledged_at = now
    return AlertView.of(row)
