"""Several `sportello run` instances on one database: each instance's configuration, and who holds
which mailbox's lease."""

from __future__ import annotations

import sqlalchemy as sa

from daemon.config import Config


def instance_config(cfg: Config, name: str, url: str, lease: float) -> Config:
    """`cfg` as instance `name` on the database at `url`, with mailbox leases of `lease` seconds."""
    return cfg.model_copy(
        update={
            "instance": cfg.instance.model_copy(update={"name": name}),
            "database": cfg.database.model_copy(update={"url": url}),
            "intake": cfg.intake.model_copy(update={"lease_seconds": lease}),
        }
    )


def lease_holders(engine: sa.Engine) -> dict[str, str]:
    """Mailbox -> holder of its lease; empty while the schema is not migrated yet."""
    try:
        with engine.connect() as conn:
            return dict(conn.exec_driver_sql("SELECT mailbox, holder FROM mailbox_leases").all())
    except sa.exc.ProgrammingError:
        return {}
