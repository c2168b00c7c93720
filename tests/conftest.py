"""Fixtures shared by every test folder: the shipped configuration on a private database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.config import Config, load_config
from tests.support.paths import PEC_SAMPLES, ROOT, SHARED  # noqa: F401  (re-exported for fixtures)

pytest_plugins = ["tests.servers.dovecot"]


@pytest.fixture
def shipped_config(tmp_path: Path) -> Config:
    """config.yaml as shipped, with the database and archive under tmp_path."""
    env = {
        "SPORTELLO_DATABASE_URL": f"sqlite:///{tmp_path / 'sportello.db'}",
        "SPORTELLO_ARCHIVE_DIR": str(tmp_path / "archive"),
    }
    return load_config(ROOT / "config.yaml", env=env)


@pytest.fixture
def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def postgres_url_or_skip() -> str:
    """A PostgreSQL URL for tests; skip outside CI when the server is not reachable."""
    import sqlalchemy as sa

    url = os.environ.get("SPORTELLO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception as exc:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            raise
        pytest.skip(f"PostgreSQL non raggiungibile su {url}: {type(exc).__name__}")
    return url


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A fresh schema on the local PostgreSQL, dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    base = postgres_url_or_skip()
    schema = "t_" + uuid.uuid4().hex[:10]
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        engine.dispose()
