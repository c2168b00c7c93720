"""Fixtures of the conversation tests: the ticket bench (service, clock, sweep, real SMTP sink)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.config import Config
from tests.support.bench import SlaBench, sla_bench
from tests.support.stack import stack_config


@pytest.fixture
def bench(shipped_config: Config, tmp_path: Path) -> Iterator[SlaBench]:
    cfg = stack_config(shipped_config, tmp_path / "data", imap_port=1, smtp_port=1, mailboxes=[])
    with sla_bench(cfg) as b:
        yield b
