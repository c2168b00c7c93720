"""Migration 0003 creates exactly the SLA tables of storage/models_sla.py, and can be undone."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from storage.db import alembic_config, init_db, make_engine
from storage.models_all import metadata

SLA_TABLES = {"sla_clocks", "sla_step_runs", "sla_digests"}


def _sla_diffs(engine) -> list:  # type: ignore[no-untyped-def]
    """Differences between the migrated schema and the models that concern the SLA tables."""
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    return [d for d in diffs if any(name in repr(d) for name in SLA_TABLES)]


def test_migration_matches_the_models_and_downgrades(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = make_engine(url)
    init_db(engine)
    assert set(inspect(engine).get_table_names()) >= SLA_TABLES
    indexes = {i["name"] for i in inspect(engine).get_indexes("sla_clocks")}
    assert "ix_sla_clocks_next_at" in indexes
    assert _sla_diffs(engine) == []
    cfg = alembic_config(url)
    command.downgrade(cfg, "0002")
    assert not SLA_TABLES & set(inspect(engine).get_table_names())
    command.upgrade(cfg, "head")
    assert set(inspect(engine).get_table_names()) >= SLA_TABLES
    engine.dispose()
