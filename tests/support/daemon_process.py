"""`sportello run` as a separate process for the crash tests: started, killed with SIGKILL, and its
SQLite database read from outside without disturbing it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stack import ROOT, imap_env, wait_until


def start_daemon(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "daemon.cli.main", "run", "--config", str(config_path)],
        cwd=ROOT,
        env=imap_env(),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def start_sink_process(spool: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The demo SMTP sink (`daemon.demo.smtp_sink`) in its own process, spooling into `spool`: the
    process and the port it listens on (the last word of the line it prints when ready)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.demo.smtp_sink", "--host", "127.0.0.1", "--port", "0", "--spool", str(spool)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline().decode().split()[-1])


def count_spooled(spool: Path) -> int:
    """How many emails (`*.eml` files) the sink has spooled."""
    with os.scandir(spool) as it:
        return sum(1 for e in it if e.name.endswith(".eml"))


def kill_daemon(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def stop_daemon(proc: subprocess.Popen[bytes], timeout: float = 30) -> bool:
    """SIGTERM and wait; False (after a SIGKILL) if it did not stop in time."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_daemon(proc)
        return False
    return True


def db_count(db: Path, sql: str) -> int:
    """A count read-only; 0 while the schema does not exist yet or the file is briefly locked."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def run_until_done(config_path: Path, log: Path, db: Path, count_sql: str, total: int, timeout: float) -> None:
    """Start the daemon, wait until `count_sql` reaches `total` with nothing left to send, stop it
    with SIGTERM; fail the test (with the end of the log) if it does not get there or does not stop."""
    proc = start_daemon(config_path, log)
    try:
        done = wait_until(
            lambda: (
                db_count(db, count_sql) == total
                and db_count(db, "SELECT count(*) FROM outbox WHERE status != 'sent'") == 0
            ),
            timeout,
            interval=0.1,
        )
        assert done, f"lavoro incompleto ({db_count(db, count_sql)}/{total}):\n{log.read_text()[-3000:]}"
    finally:
        if not stop_daemon(proc):
            pytest.fail("il servizio non si è fermato entro 30 s da SIGTERM")
