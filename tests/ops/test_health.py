"""Readiness checks an admin relies on: each names what failed and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.ops.health import check_archive, check_mailboxes, check_outbox
from daemon.ops.metrics import MailboxState
from storage.db import init_db, make_engine, make_session_factory
from storage.models import Outbox

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _outbox_row(n: int, due: datetime, status: str = "pending") -> Outbox:
    return Outbox(
        message_id=f"m{n}@sportello.invalid",
        mailbox="fe-credito",
        smtp_profile="locale",
        sender="a@inps.example",
        to=["b@posta.example"],
        subject="s",
        template="conferma_ricezione",
        raw=b"x",
        status=status,
        next_attempt_at=due,
        created_at=due,
    )


def test_an_email_due_long_ago_and_never_sent_makes_the_outbox_stuck(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    init_db(engine)
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        session.add(_outbox_row(1, NOW - timedelta(hours=5), status="sent"))  # sent long ago: fine
        session.add(_outbox_row(2, NOW - timedelta(seconds=60)))  # due a minute ago: the sender is on it
    assert check_outbox(factory, NOW, stuck_seconds=900).ok
    with factory() as session, session.begin():
        session.add(_outbox_row(3, NOW - timedelta(seconds=1000)))
    stuck = check_outbox(factory, NOW, stuck_seconds=900)
    assert not stuck.ok and "1000 s" in stuck.detail
    engine.dispose()


def test_an_archive_that_cannot_be_written_is_reported(tmp_path: Path) -> None:
    assert check_archive(tmp_path / "archive").ok
    blocker = tmp_path / "file"
    blocker.write_text("")
    failed = check_archive(blocker / "archive")
    assert not failed.ok and str(blocker / "archive") in failed.detail


def test_a_mailbox_is_late_past_its_period_plus_the_grace() -> None:
    now = 10_000.0
    states = [
        MailboxState("fe-credito", True, now - 350, window_seconds=300),
        MailboxState("fe-pec", False, now - 450, window_seconds=300),
        MailboxState("fe-durc", False, None, window_seconds=300),
        MailboxState("fe-direzione", False, None, window_seconds=300, held=False),
    ]
    checks = {c.name: c for c in check_mailboxes(states, grace_seconds=120, now=now)}
    assert checks["casella:fe-credito"].ok
    assert not checks["casella:fe-pec"].ok and "450 s" in checks["casella:fe-pec"].detail
    assert not checks["casella:fe-durc"].ok and "mai" in checks["casella:fe-durc"].detail
    # Read by another instance (its lease): not this instance's failure.
    assert checks["casella:fe-direzione"].ok and "altra istanza" in checks["casella:fe-direzione"].detail
