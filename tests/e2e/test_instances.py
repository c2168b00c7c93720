"""Two `sportello run` processes on one PostgreSQL schema and one Dovecot: each mailbox read by one of
them at a time (a lease in the database); one is SIGKILLed in the middle and the other takes its
mailboxes over when the leases expire. Every message has exactly one outcome, no ticket is opened
twice, no email is sent twice (a copy only as the same Message-ID, from the kill), and `sportello
status` says who reads what."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from daemon.cli.main import app
from daemon.config import Config
from daemon.demo.smtp_sink import SmtpSink
from tests.servers.dovecot import DovecotServer
from tests.support.daemon_process import kill_daemon, start_daemon, stop_daemon
from tests.support.instances import instance_config, lease_holders
from tests.support.stack import citizen_mail, stack_config, wait_until, write_config

MAILBOXES = ("fe-credito", "fe-anagrafica", "fe-durc", "fe-direzione")
TOTAL = 500
LATE = 40  # appended after the kill: read only once the survivor has taken the mailboxes over
LEASE_SECONDS = 3.0


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    with SmtpSink("127.0.0.1", 0, spool_dir=tmp_path / "sink") as server:
        yield server


@pytest.mark.slow
def test_two_instances_share_the_mailboxes_and_survive_a_sigkill(
    shipped_config: Config, dovecot: DovecotServer, sink: SmtpSink, pg_schema_url: str, tmp_path: Path
) -> None:
    imap = dovecot
    base = stack_config(
        shipped_config, tmp_path / "data", imap_port=imap.port, smtp_port=sink.port, mailboxes=MAILBOXES
    )
    paths = {
        name: write_config(instance_config(base, f"sportello-{name}", pg_schema_url, LEASE_SECONDS), tmp_path / name)
        for name in ("uno", "due")
    }
    early = TOTAL - LATE
    for i, box in enumerate(MAILBOXES):
        address = base.mailbox(box).address
        imap.append_many(box, [citizen_mail(address, n) for n in range(i, early, len(MAILBOXES))])

    db = sa.create_engine(pg_schema_url)

    def count(sql: str) -> int:
        try:
            with db.connect() as conn:
                return int(conn.exec_driver_sql(sql).scalar_one())
        except sa.exc.ProgrammingError:  # the schema is not there yet
            return 0

    logs = {name: tmp_path / f"{name}.log" for name in paths}
    procs = {name: start_daemon(path, logs[name]) for name, path in paths.items()}
    survivor = None
    try:
        assert wait_until(lambda: count("SELECT count(*) FROM inbound_messages") >= 120, 120, interval=0.01), logs[
            "uno"
        ].read_text()[-3000:]
        # The instances share the mailboxes out as they start: wait until every mailbox has its holder.
        assert wait_until(lambda: set(lease_holders(db)) == set(MAILBOXES), LEASE_SECONDS, interval=0.05), (
            lease_holders(db)
        )
        held = lease_holders(db)
        # Kill the instance reading the first mailbox (possibly all of them), in the middle of its work.
        victim = next(n for n, p in procs.items() if held[MAILBOXES[0]].endswith(f":{p.pid}"))
        survivor = next(n for n in procs if n != victim)
        kill_daemon(procs[victim])
        killed_at = time.monotonic()
        survivor_pid = f":{procs[survivor].pid}"
        assert wait_until(
            lambda: all(h.endswith(survivor_pid) for h in lease_holders(db).values()), LEASE_SECONDS + 10, interval=0.05
        ), f"caselle non riprese: {lease_holders(db)}"
        takeover = time.monotonic() - killed_at
        # Within the lease time, plus the survivor's polling and a scheduling margin on a busy machine.
        assert takeover <= LEASE_SECONDS + 2.0, f"caselle riprese dopo {takeover:.1f} s"

        for i, box in enumerate(MAILBOXES):
            address = base.mailbox(box).address
            imap.append_many(box, [citizen_mail(address, n) for n in range(early + i, TOTAL, len(MAILBOXES))])
        done = wait_until(
            lambda: (
                count("SELECT count(*) FROM inbound_messages") >= TOTAL
                and count("SELECT count(*) FROM outbox WHERE status != 'sent'") == 0
            ),
            240,
            interval=0.1,
        )
        assert done, logs[survivor].read_text()[-3000:]

        result = CliRunner().invoke(
            app, ["status", "--json", "--config", str(paths[survivor])], env={"SPORTELLO_DATABASE_URL": pg_schema_url}
        )
        shown = {row["mailbox"]: row for row in json.loads(result.output)["leases"]}
        assert set(shown) == set(MAILBOXES)
        assert all(row["holder"].endswith(survivor_pid) for row in shown.values())
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                stop_daemon(proc)

    assert count("SELECT count(*) FROM inbound_messages") == TOTAL
    assert count("SELECT count(DISTINCT raw_sha256) FROM inbound_messages") == TOTAL
    assert count("SELECT count(*) FROM inbound_messages WHERE outcome IS NULL OR outcome = ''") == 0
    opened = count("SELECT count(*) FROM inbound_messages WHERE outcome = 'opened'")
    assert opened > 0
    assert count("SELECT count(*) FROM tickets") == opened, "una pratica per messaggio che la apre"
    assert count("SELECT count(DISTINCT ticket_id) FROM inbound_messages WHERE outcome = 'opened'") == opened
    for box in MAILBOXES:
        assert imap.list_uids(box, "INBOX") == []

    with db.connect() as conn:
        outbox_ids = set(conn.exec_driver_sql("SELECT message_id FROM outbox").scalars())
    db.dispose()
    sent = Counter(m.message_id for m in sink.messages)
    assert set(sent) == outbox_ids
    # The only copy possible: accepted by the sink, then the sender killed before recording it.
    assert sum(c - 1 for c in sent.values()) <= 1
