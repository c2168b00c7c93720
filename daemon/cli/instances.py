"""For `sportello status`: which instance reads each mailbox (its lease in the database) and since when."""

from __future__ import annotations

from datetime import datetime

from rich.table import Table

from daemon.cli.tables import Column, fitted_table
from daemon.clock import utcnow
from daemon.config import Config

__all__ = ["lease_rows", "lease_table"]


def lease_rows(config: Config, now: datetime | None = None) -> list[dict[str, object]]:
    """One row per mailbox read over IMAP: its holder (None: no instance yet), since, until."""
    from daemon.intake.leases import lease_views
    from storage.db import init_db, make_engine

    now = now or utcnow()
    engine = make_engine(config.database_url)
    try:
        init_db(engine)
        views = lease_views(engine, [m.id for m in config.mailboxes if m.imap is not None])
    finally:
        engine.dispose()
    return [
        {
            "mailbox": v.mailbox,
            "holder": v.holder,
            "since": v.acquired_at.isoformat() if v.acquired_at else None,
            "renewed_at": v.renewed_at.isoformat() if v.renewed_at else None,
            "expires_at": v.expires_at.isoformat() if v.expires_at else None,
            "expired": v.expires_at is not None and v.expires_at <= now,
        }
        for v in views
    ]


def lease_table(rows: list[dict[str, object]], width: int) -> Table:
    columns = [
        Column("casella", 10, 9),
        Column("istanza", 12, 8),
        Column("dal", 16, 2),
        Column("ultimo rinnovo", 16, 1),
        Column("scadenza", 16, 5),
    ]
    cells = []
    for r in rows:
        if r["holder"] is None:
            cells.append([str(r["mailbox"]), "nessuna (in attesa)", "", "", ""])
            continue
        until = str(r["expires_at"])[:16].replace("T", " ") + (" (scaduto: subentra un'altra)" if r["expired"] else "")
        since, renewed = (str(r[key])[:16].replace("T", " ") for key in ("since", "renewed_at"))
        cells.append([str(r["mailbox"]), str(r["holder"]), since, renewed, until])
    return fitted_table("Lettura delle caselle", columns, cells, width)
