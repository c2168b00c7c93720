"""The outbox sender in its own process, so that delivering mail and taking mail in use both cores.

The child dies with its parent (PR_SET_PDEATHSIG on Linux, and a parent watch everywhere): a
SIGKILL of `sportello run` leaves no orphan sender behind. Coordination is through the database
(leases on outbox rows) and two events: wake (new rows) and stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing
import multiprocessing.synchronize
import os
import signal
import sys
import threading
from collections.abc import Iterator

from daemon.config import Config

__all__ = ["SenderProcess"]

log = logging.getLogger("sportello.outbox")

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int, stop: multiprocessing.synchronize.Event) -> None:
    name = ctypes.util.find_library("c")
    if name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        # The parent died while we were starting, before the death signal was armed: without this
        # check we would send for up to a second (the watch below) next to its successor.
        os._exit(0)

    def watch() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent_pid:
                os._exit(0)  # the parent is gone: nobody will ever stop us

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _child(
    config: Config,
    parent_pid: int,
    wake: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
    log_level: int,
) -> None:
    from daemon.ops.logsetup import configure_logging
    from daemon.ops.memory import limit_arenas
    from daemon.outbound.sender import OutboxSender
    from storage.db import make_engine, make_session_factory

    limit_arenas()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    _die_with_parent(parent_pid, stop)
    configure_logging(config.logging, role="invio")
    logging.getLogger().setLevel(log_level)
    engine = make_engine(config.database_url)
    sender = OutboxSender(make_session_factory(engine), config)
    try:
        sender.run(stop, wake)  # process-shared events: set by the parent, waited on here
    finally:
        engine.dispose()


@contextlib.contextmanager
def _parent_main_hidden() -> Iterator[None]:
    """While the child is launched: `spawn` would import the parent's __main__ in it (`sportello`, the
    whole CLI and service, twice the memory the sender needs); with no name or path to it, it does not."""
    main = sys.modules["__main__"]
    saved: dict[str, object] = {k: main.__dict__[k] for k in ("__spec__", "__file__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class SenderProcess:
    def __init__(self, config: Config) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._wake = ctx.Event()
        self._stop = ctx.Event()
        self._process = ctx.Process(
            target=_child,
            args=(config, os.getpid(), self._wake, self._stop, logging.getLogger().getEffectiveLevel()),
            name="sportello-invio",
            daemon=True,
        )

    def start(self) -> None:
        with _parent_main_hidden():
            self._process.start()
        log.info("processo di invio avviato (pid %s)", self._process.pid)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 20.0) -> None:
        self._stop.set()
        self._wake.set()  # end the sender's wait for new rows at once
        self._process.join(timeout)
        if self._process.is_alive():
            log.warning("il processo di invio non si è fermato in %.0f s: terminato", timeout)
            self._process.kill()
            self._process.join(5)
