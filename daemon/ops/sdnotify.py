"""systemd's notification protocol (Type=notify): READY, RELOADING, STOPPING, STATUS and watchdog pings.

The protocol is one datagram on the socket named by $NOTIFY_SOCKET, so it is written here rather than
pulled in with libsystemd bindings that need a compiler; without systemd every call does nothing."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Mapping

__all__ = ["Notifier"]


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written with a leading "@" and addressed with a leading NUL.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_seconds = self._watchdog(env)

    @staticmethod
    def _watchdog(env: Mapping[str, str]) -> float | None:
        """The watchdog period systemd expects pings within, if it watches this very process."""
        pid = env.get("WATCHDOG_PID")
        if pid and pid != str(os.getpid()):
            return None
        try:
            usec = int(env.get("WATCHDOG_USEC", ""))
        except ValueError:
            return None
        return usec / 1_000_000 if usec > 0 else None

    def notify(self, *fields: str) -> bool:
        if not self.address:
            return False
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(self.address)
            sock.sendall("\n".join(fields).encode("utf-8"))
            return True
        return False

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets systemd (253+) tell this reload from an earlier one.
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1", "STATUS=arresto in corso")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")
