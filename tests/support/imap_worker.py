"""An IMAP worker on the test Dovecot, run in a thread: for the intake tests and the storage-failure tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from daemon.config import Config, Mailbox
from daemon.intake.imap import FetchedMessage, ImapWorker

USER = "fe-credito"


def _mailbox(cfg: Config, port: int, **imap: object) -> Mailbox:
    box = cfg.mailbox(USER)
    assert box.imap is not None
    return box.model_copy(update={"imap": box.imap.model_copy(update={"port": port, "poll_seconds": 0.2, **imap})})


def _worker(
    cfg: Config, port: int, handler: Callable[[Sequence[FetchedMessage]], None], stop: threading.Event, **options: Any
) -> ImapWorker:
    imap = {k: options.pop(k) for k in ("folder", "idle") if k in options}
    settings = {"max_message_bytes": 10**7, "reconnect_min": 0.1, "reconnect_max": 0.2, "password": "demo", **options}
    return ImapWorker(_mailbox(cfg, port, **imap), handler, stop, **settings)


def _run(worker: ImapWorker) -> threading.Thread:
    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    return t
