"""What `sportello run` adds around a Service: SIGTERM/SIGINT stop it, SIGHUP reloads the admins' files,
and systemd hears READY, RELOADING, STOPPING and a watchdog ping."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from daemon.ops.sdnotify import Notifier
from daemon.service import Service

__all__ = ["Supervisor"]

log = logging.getLogger("sportello")


class Supervisor:
    def __init__(self, service: Service, notifier: Notifier | None = None) -> None:
        self.service = service
        self.notifier = notifier or Notifier()
        self.stop = threading.Event()

    def run(self) -> None:
        """Until SIGTERM/SIGINT; call from the main thread (signal handlers are installed there)."""
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        period = self.notifier.watchdog_seconds
        if period is not None:
            threading.Thread(target=self._watchdog, args=(period / 2,), name="watchdog", daemon=True).start()
        self.service.run(self.stop, on_started=self._started)

    def _started(self) -> None:
        self.notifier.ready(f"in servizio: {len(self.service.workers)} caselle")

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("segnale %s ricevuto: arresto in corso", signum)
        self.notifier.stopping()
        self.stop.set()

    def _on_reload(self, _signum: int, _frame: FrameType | None) -> None:
        # Not in the handler itself: the main thread may be inside the very code a reload takes locks in.
        threading.Thread(target=self.reload, name="reload", daemon=True).start()

    def reload(self) -> None:
        log.info("SIGHUP: ricarico regole, vocabolari, modelli e politiche SLA")
        self.notifier.reloading()
        try:
            self.service.admin_files.refresh()
        except Exception:  # a reload problem must never stop the service
            log.exception("ricaricamento non riuscito")
        self._started()

    def _watchdog(self, interval: float) -> None:
        # The ping stops if the process hangs (or the stop begins): systemd then restarts it.
        while not self.stop.wait(interval):
            self.notifier.watchdog()
