"""An embedded IMAP server for `sportello demo` (pymap, in memory): no root, no system packages.

The tests and the benchmark use a real Dovecot instead (tests/servers/dovecot.py).
"""

from __future__ import annotations

import asyncio
import threading
from argparse import Namespace
from collections.abc import Mapping
from contextlib import AsyncExitStack

from imapclient import IMAPClient

__all__ = ["DemoImap", "start_demo_imap"]


class DemoImap:
    def __init__(self, host: str, port: int, users: Mapping[str, str]) -> None:
        self.host = host
        self.port = port
        self.users = dict(users)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="demo-imap", daemon=True)

    def start(self, timeout: float = 60.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("il server IMAP dimostrativo non è partito")
        if self._error is not None:
            raise RuntimeError(f"il server IMAP dimostrativo non è partito: {self._error}") from self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() through _error
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        from pymap.backend.dict import DictBackend, Identity
        from pymap.imap import IMAPService
        from pymap.user import Passwords, UserMetadata

        args = Namespace(
            demo_data=False,
            demo_user="demouser",
            demo_password="demopass",
            host=[self.host],
            port=str(self.port),
            cert=None,
            key=None,
            tls=False,
            inherited_sockets=None,
            proxy_protocol=None,
            debug=False,
            passlib_cfg=None,
            skip_services=[],
        )
        backend, config = await DictBackend.init(args)
        config.apply_context()
        passwords = Passwords(config)
        for name, password in self.users.items():
            hashed = await passwords.hash_password(password)
            await Identity(name, backend.login, None, frozenset()).set(UserMetadata(config, name, password=hashed))
        self._stopped = asyncio.Event()
        async with AsyncExitStack() as stack:
            await IMAPService(backend, config).start(stack)
            self._ready.set()
            await self._stopped.wait()

    def append(self, username: str, raw: bytes, folder: str = "INBOX") -> None:
        with IMAPClient(self.host, port=self.port, ssl=False, timeout=10) as client:
            client.login(username, self.users[username])
            if not client.folder_exists(folder):
                client.create_folder(folder)
            client.append(folder, raw)

    def stop(self) -> None:
        if self._stopped is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=10)


def start_demo_imap(host: str, port: int, users: Mapping[str, str]) -> DemoImap:
    server = DemoImap(host, port, users)
    server.start()
    return server
