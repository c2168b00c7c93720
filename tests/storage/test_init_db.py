"""Start-up migrations: a database behind the newest migration is brought up to it; one already there is
left alone (without loading Alembic)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text

from storage.db import alembic_config, init_db, make_engine


def test_a_database_behind_is_migrated_and_one_up_to_date_is_left_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    assert not inspect(engine).has_table("mailbox_leases")

    init_db(engine)
    assert inspect(engine).has_table("mailbox_leases")
    with engine.connect() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert head > "0003"

    init_db(engine)  # nothing to do the second time
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
    engine.dispose()
