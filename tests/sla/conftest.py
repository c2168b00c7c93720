"""Fixtures of the SLA tests: the bench of tests/support/bench.py on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.config import Config
from tests.support.bench import SlaBench, sla_bench, sqlite_bench
from tests.support.stack import stack_config


@pytest.fixture
def sla(shipped_config: Config, tmp_path: Path) -> Iterator[SlaBench]:
    yield from sqlite_bench(shipped_config, tmp_path)


@pytest.fixture
def sla_pg(shipped_config: Config, tmp_path: Path, pg_schema_url: str) -> Iterator[SlaBench]:
    cfg = stack_config(shipped_config, tmp_path / "data", imap_port=1, smtp_port=1, mailboxes=[])
    cfg = cfg.model_copy(update={"database": cfg.database.model_copy(update={"url": pg_schema_url})})
    with sla_bench(cfg) as bench:
        yield bench
