"""A write the archive or the database refused: one log line and one alert per hour, never a traceback."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from storage.db import SessionFactory
from storage.errors import StorageUnavailable
from storage.models import Alert

__all__ = ["ALERT_KIND", "storage_failed"]

log = logging.getLogger("sportello.storage")

ALERT_KIND = "archiviazione_non_riuscita"
_REPEAT = timedelta(hours=1)  # while the failure lasts, a new alert at most this often per mailbox


def storage_failed(
    session_factory: SessionFactory, exc: StorageUnavailable, mailbox: str | None, now: datetime
) -> None:
    """Log the failure in one line and alert the admins (when the database itself can still take it)."""
    log.error("casella %s: messaggi non registrati, %s; restano sul server per il prossimo tentativo", mailbox, exc)
    try:
        with session_factory() as session, session.begin():
            recent = session.execute(
                select(Alert.id).where(
                    Alert.kind == ALERT_KIND,
                    Alert.mailbox == mailbox,
                    Alert.acknowledged_at.is_(None),
                    Alert.at >= now - _REPEAT,
                )
            ).first()
            if recent is None:
                session.add(
                    Alert(
                        at=now,
                        kind=ALERT_KIND,
                        mailbox=mailbox,
                        note=f"{exc}; i messaggi restano sul server e si riprova a ogni lettura della casella",
                    )
                )
    except Exception as alert_exc:  # the database is the broken part: the log line is all there is
        log.error("segnalazione non registrata: %s", " ".join(str(alert_exc).split())[:300])
