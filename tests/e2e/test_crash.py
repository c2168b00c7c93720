"""Invariants 1-3 under SIGKILL: `sportello run` killed at several points while it ingests and sends.

After every restart each message has exactly one outcome and one ticket; at the end every
acknowledgement has reached the sink, the distinct Message-IDs there equal the tickets, and a copy
arrives twice only as the same Message-ID (a kill between the sink's acceptance and the outbox update).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from tests.support.daemon_process import db_count, kill_daemon, run_until_done, start_daemon
from tests.support.stack import citizen_mail, wait_until, write_config

MAILBOX = "fe-credito"
TOTAL = 300
# Kill points: number of recorded inbound messages at which the daemon is killed.
KILL_AT = (1, 40, 110, 190, 260)


@pytest.mark.slow
def test_sigkill_at_several_points_loses_nothing_and_duplicates_nothing(stack, tmp_path: Path) -> None:
    cfg, imap, sink = stack.config, stack.imap, stack.sink
    config_path = write_config(cfg, tmp_path / "etc")
    db = Path(cfg.database_url.removeprefix("sqlite:///"))
    address = cfg.mailbox(MAILBOX).address
    for n in range(TOTAL):
        imap.append(MAILBOX, citizen_mail(address, n))
    log = tmp_path / "daemon.log"

    inbound = "SELECT count(*) FROM inbound_messages"
    kills = 0
    for target in KILL_AT:
        proc = start_daemon(config_path, log)
        try:
            reached = wait_until(lambda t=target: db_count(db, inbound) >= t, 120, interval=0.01)
            assert reached, f"il servizio non ha elaborato {target} messaggi:\n{log.read_text()[-3000:]}"
        finally:
            kill_daemon(proc)
        kills += 1
        # After each kill, each recorded message has one outcome and at most one ticket.
        assert (
            db_count(
                db,
                "SELECT count(*) FROM (SELECT raw_sha256 FROM inbound_messages GROUP BY raw_sha256 "
                "HAVING count(*) > 1)",
            )
            == 0
        )
    # One more kill while the sender is busy: wait for some acks to be accepted, then kill.
    proc = start_daemon(config_path, log)
    try:
        assert wait_until(lambda: len(sink.messages) >= TOTAL // 2, 180, interval=0.01)
    finally:
        kill_daemon(proc)
    kills += 1

    run_until_done(config_path, log, db, inbound, TOTAL, 240)

    assert db_count(db, inbound) == TOTAL
    assert db_count(db, "SELECT count(DISTINCT raw_sha256) FROM inbound_messages") == TOTAL
    assert db_count(db, "SELECT count(*) FROM inbound_messages WHERE outcome IS NULL OR outcome = ''") == 0
    tickets = db_count(db, "SELECT count(*) FROM tickets")
    assert tickets == TOTAL, "un messaggio, una pratica"
    assert db_count(db, "SELECT count(DISTINCT ticket_id) FROM inbound_messages") == TOTAL
    assert imap.list_uids(MAILBOX, "INBOX") == []

    sent = Counter(m.message_id for m in sink.messages)
    assert len(sent) == tickets, "le conferme distinte al server SMTP sono quante le pratiche"
    with sqlite3.connect(db) as conn:
        outbox_ids = {row[0] for row in conn.execute("SELECT message_id FROM outbox")}
    assert set(sent) == outbox_ids
    duplicates = {mid: c for mid, c in sent.items() if c > 1}
    # Only a kill between the sink's acceptance and the outbox update sends a copy again, with the
    # same Message-ID; that can happen at most once per kill.
    assert sum(c - 1 for c in duplicates.values()) <= kills
