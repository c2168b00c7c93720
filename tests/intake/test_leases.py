"""Mailbox leases between instances on one database: one reader per mailbox, takeover only after expiry
(or at once from a dead predecessor of this host), an even share when instances come and go."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from daemon.intake.leases import LeaseKeeper, MailboxLeases, instance_holder, lease_views
from storage.db import init_db, make_engine
from tests.support.stack import wait_until

BOXES = ["a", "b", "c", "d"]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    init_db(engine)
    yield engine
    engine.dispose()


def test_a_lease_is_taken_over_only_once_it_has_expired(engine: Engine) -> None:
    clock = Clock()
    one = MailboxLeases(engine, "uno@host-a:1", 30, clock=clock)
    two = MailboxLeases(engine, "due@host-b:1", 30, clock=clock)
    assert one.take(BOXES, limit=4) == set(BOXES)
    assert two.take(BOXES, limit=4) == set()
    clock.now += timedelta(seconds=20)
    assert one.renew(BOXES) == set(BOXES)
    clock.now += timedelta(seconds=29)  # 49 s after the start, 29 s after the renewal: still alive
    assert two.take(BOXES, limit=4) == set()
    clock.now += timedelta(seconds=2)
    assert two.take(BOXES, limit=4) == set(BOXES)
    # The old holder finds out at its next renewal and must stop reading.
    assert one.renew(BOXES) == set()
    views = {v.mailbox: v for v in lease_views(engine, BOXES)}
    assert views["a"].holder == "due@host-b:1"
    assert views["a"].acquired_at == clock.now


def test_a_dead_predecessor_on_this_host_is_not_waited_for_a_live_stranger_is(engine: Engine) -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # its pid now belongs to no process
    me = instance_holder("sportello")
    host = me.split("@", 1)[1].rsplit(":", 1)[0]
    assert MailboxLeases(engine, f"sportello@{host}:{ended.pid}", 30).take(["a"], limit=1) == {"a"}
    stranger = MailboxLeases(engine, f"altra@{host}:{ended.pid}", 30)
    assert stranger.take(["a"], limit=1) == set()  # another instance's name: it waits for the expiry
    assert MailboxLeases(engine, me, 30).take(["a"], limit=1) == {"a"}


def test_instances_share_the_mailboxes_and_the_survivor_takes_all_back(engine: Engine) -> None:
    stop_one, stop_two = threading.Event(), threading.Event()
    one = LeaseKeeper(MailboxLeases(engine, "uno@host-a:1", 1.0), BOXES, poll_seconds=0.05)
    two = LeaseKeeper(MailboxLeases(engine, "due@host-b:1", 1.0), BOXES, poll_seconds=0.05)
    threads = [threading.Thread(target=one.run, args=(stop_one,), daemon=True)]
    threads[0].start()
    try:
        assert wait_until(lambda: all(one.held(b) for b in BOXES), 10, interval=0.02)
        threads.append(threading.Thread(target=two.run, args=(stop_two,), daemon=True))
        threads[1].start()

        def shared() -> bool:
            mine = [b for b in BOXES if one.held(b)]
            theirs = [b for b in BOXES if two.held(b)]
            return len(mine) == 2 and len(theirs) == 2 and not set(mine) & set(theirs)

        assert wait_until(shared, 10, interval=0.02), "le caselle non sono state divise tra le istanze"
        # A clean stop releases at once; the other instance reads everything again.
        stop_two.set()
        threads[1].join(5)
        two.release()
        assert wait_until(lambda: all(one.held(b) for b in BOXES), 10, interval=0.02)
        assert not any(two.held(b) for b in BOXES)
    finally:
        stop_one.set()
        stop_two.set()
        for t in threads:
            t.join(5)
