"""Storage that cannot take a write (archive or database): one clear error, for callers to retry later."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import OperationalError

__all__ = ["StorageUnavailable", "storage_errors"]


class StorageUnavailable(Exception):
    """The archive or the database refused a write (read-only, full, unreachable). Nothing of the batch was
    recorded; the messages stay where they were (unflagged on the IMAP server) for the next try."""

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(f"{where} non disponibile in scrittura: {detail}")
        self.where = where
        self.detail = detail


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn the database's operational errors (disk full, read-only file, server gone) into
    StorageUnavailable with a one-line message; the archive raises it itself."""
    try:
        yield
    except OperationalError as exc:
        detail = " ".join(str(exc.orig or exc).split())[:300]
        raise StorageUnavailable("database", detail) from exc
