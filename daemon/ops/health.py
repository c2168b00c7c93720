"""Readiness of a running sportello: database reachable, archive writable, mailboxes synced, outbox moving."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from daemon.ops.metrics import MailboxState
from storage.db import SessionFactory
from storage.models import Outbox

__all__ = ["Check", "Readiness", "check_archive", "check_database", "check_mailboxes", "check_outbox", "readiness"]


@dataclass(frozen=True)
class Check:
    name: str  # database | archive | outbox | casella:<id>
    ok: bool
    detail: str  # Italian: what an admin reads in `sportello status` and in the /readyz body


@dataclass(frozen=True)
class Readiness:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, object]:
        return {
            "status": "ok" if self.ok else "non pronto",
            "failed": [c.name for c in self.checks if not c.ok],
            "checks": [asdict(c) for c in self.checks],
        }


def check_database(session_factory: SessionFactory) -> Check:
    try:
        with session_factory() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        return Check("database", False, f"database non raggiungibile: {type(exc).__name__}: {exc}")
    return Check("database", True, "raggiungibile")


def check_archive(directory: Path) -> Check:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix=".readyz-")
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return Check("archive", False, f"archivio {directory} non scrivibile: {exc.strerror or exc}")
    return Check("archive", True, f"{directory} scrivibile")


def check_mailboxes(states: Sequence[MailboxState], grace_seconds: float, now: float | None = None) -> list[Check]:
    now = time.time() if now is None else now
    checks = []
    for state in states:
        name = f"casella:{state.mailbox}"
        window = state.window_seconds + grace_seconds
        if not state.held:
            checks.append(Check(name, True, "letta da un'altra istanza"))
        elif state.last_sync is None:
            checks.append(Check(name, False, "mai sincronizzata dall'avvio"))
        elif now - state.last_sync > window:
            ago = now - state.last_sync
            checks.append(Check(name, False, f"ultima sincronizzazione {ago:.0f} s fa (limite {window:.0f} s)"))
        else:
            checks.append(Check(name, True, f"sincronizzata {max(0.0, now - state.last_sync):.0f} s fa"))
    return checks


def check_outbox(session_factory: SessionFactory, now: datetime, stuck_seconds: float) -> Check:
    """Stuck: an email due for sending has not been attempted for `stuck_seconds` (the sender is not working)."""
    try:
        with session_factory() as session:
            oldest_due = session.execute(
                select(func.min(Outbox.next_attempt_at)).where(Outbox.status == "pending")
            ).scalar()
    except Exception as exc:
        return Check("outbox", False, f"stato delle email in uscita non leggibile: {type(exc).__name__}")
    if oldest_due is not None and now - oldest_due > timedelta(seconds=stuck_seconds):
        late = (now - oldest_due).total_seconds()
        return Check("outbox", False, f"un'email da inviare attende da {late:.0f} s (limite {stuck_seconds:.0f} s)")
    return Check("outbox", True, "nessuna email ferma")


def readiness(
    session_factory: SessionFactory,
    archive_dir: Path,
    mailboxes: Sequence[MailboxState],
    *,
    now: datetime,
    stuck_seconds: float,
    grace_seconds: float,
) -> Readiness:
    database = check_database(session_factory)
    checks = [database, check_archive(archive_dir)]
    checks += check_mailboxes(mailboxes, grace_seconds)
    if database.ok:
        checks.append(check_outbox(session_factory, now, stuck_seconds))
    return Readiness(tuple(checks))
