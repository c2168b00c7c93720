"""Content-addressed archive of raw inbound messages: the exact bytes, kept for replay and proof.

A file is written (and optionally fsynced) before the transaction that references it commits; an
orphan left by a crash is harmless because the same bytes map to the same name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

PREFIX = "sha256:"


class ArchiveError(Exception):
    pass


class RawArchive:
    def __init__(self, root: Path | str, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / f"{digest}.eml"

    def store(self, raw: bytes, digest: str | None = None) -> str:
        digest = digest or hashlib.sha256(raw).hexdigest()
        path = self._path(digest)
        if path.exists():
            return PREFIX + digest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return PREFIX + digest

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
