"""Fixtures of the conversation tests: the ticket bench (service, clock, sweep, real SMTP sink)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.config import Config
from tests.support.bench import SlaBench, sqlite_bench


@pytest.fixture
def bench(shipped_config: Config, tmp_path: Path) -> Iterator[SlaBench]:
    yield from sqlite_bench(shipped_config, tmp_path)
