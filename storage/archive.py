"""Content-addressed archive of raw inbound messages: the exact bytes, kept for replay and proof.

A file is written (and optionally fsynced) before the transaction that references it commits; an
orphan left by a crash is harmless because the same bytes map to the same name.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from storage.errors import StorageUnavailable

PREFIX = "sha256:"


class ArchiveError(Exception):
    pass


class RawArchive:
    def __init__(self, root: Path | str, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self._pending: list[Path] = []
        self._dirs: set[Path] = set()  # fan-out directories known to exist
        self._lock = threading.Lock()

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / f"{digest}.eml"

    def store(self, raw: bytes, digest: str | None = None, *, defer_sync: bool = False) -> str:
        """Write the bytes; with `defer_sync`, durability comes from `sync_pending()`, which the
        caller must call before committing the transaction that references the file. A directory that
        cannot be written (read-only, full) raises StorageUnavailable."""
        try:
            return self._store(raw, digest, defer_sync)
        except OSError as exc:
            raise StorageUnavailable("archivio", f"{self.root}: {exc.strerror or exc}") from exc

    def _store(self, raw: bytes, digest: str | None, defer_sync: bool) -> str:
        digest = digest or hashlib.sha256(raw).hexdigest()
        path = self._path(digest)
        if path.exists():
            return PREFIX + digest
        if path.parent not in self._dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(path.parent)
        # A name of our own (digest, process, thread) spares mkstemp's random retries; a leftover of
        # a killed process with a recycled pid is the only clash, and then mkstemp decides.
        tmp = str(path.parent / f".tmp-{digest[:16]}-{os.getpid()}-{threading.get_ident()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        except FileExistsError:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                if self.fsync and not defer_sync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
            if self.fsync and defer_sync:
                with self._lock:
                    self._pending.append(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return PREFIX + digest

    def sync_pending(self) -> None:
        """Make every deferred file durable: one syncfs() of the archive's filesystem for a whole
        batch instead of one fsync per message (fsync per file where syncfs is unavailable)."""
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            if _syncfs(self.root):
                return
            for path in pending:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise StorageUnavailable("archivio", f"{self.root}: {exc.strerror or exc}") from exc

    def load(self, ref: str) -> bytes:
        if not ref.startswith(PREFIX):
            raise ArchiveError(f"riferimento d'archivio non valido: {ref}")
        digest = ref[len(PREFIX) :]
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ArchiveError(f"riferimento d'archivio non valido: {ref}")
        data = self._path(digest).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise ArchiveError(f"archivio corrotto: {ref}")
        return data


@functools.cache
def _libc_syncfs() -> Any | None:
    """libc's syncfs, looked up once (find_library runs ldconfig: milliseconds, not per batch)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    return getattr(ctypes.CDLL(name, use_errno=True), "syncfs", None)


def _syncfs(root: Path) -> bool:
    syncfs = _libc_syncfs()
    if syncfs is None:
        return False
    fd = os.open(root, os.O_RDONLY)
    try:
        return int(syncfs(fd)) == 0
    finally:
        os.close(fd)
