"""The stack the end-to-end tests run the daemon against: Dovecot, an SMTP sink, a private database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.config import Config
from tests.support.stack import stack_config


@dataclass
class Stack:
    config: Config
    imap: object  # tests.servers.dovecot.DovecotServer
    sink: object  # daemon.demo.smtp_sink.SmtpSink


@pytest.fixture
def stack(shipped_config: Config, dovecot: object, tmp_path: Path) -> Iterator[Stack]:
    yield from _stack(shipped_config, dovecot, tmp_path, notices=False)  # one acknowledgement per ticket


@pytest.fixture
def conversation_stack(shipped_config: Config, dovecot: object, tmp_path: Path) -> Iterator[Stack]:
    yield from _stack(shipped_config, dovecot, tmp_path, notices=True)


def _stack(shipped_config: Config, dovecot: object, tmp_path: Path, *, notices: bool) -> Iterator[Stack]:
    from daemon.demo.smtp_sink import SmtpSink

    sink = SmtpSink("127.0.0.1", 0, spool_dir=tmp_path / "sink")
    sink.start()
    try:
        cfg = stack_config(
            shipped_config,
            tmp_path / "data",
            imap_port=dovecot.port,  # type: ignore[attr-defined]
            smtp_port=sink.port,
            mailboxes=["fe-credito", "fe-pec"],
            notices=notices,
        )
        yield Stack(cfg, dovecot, sink)
    finally:
        sink.stop()
