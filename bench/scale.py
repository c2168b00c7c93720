"""Two `sportello run` instances on one PostgreSQL schema, a real Dovecot and an SMTP sink.

Phase 1 (throughput): N messages (default 10,000) spread over M mailboxes are appended to Dovecot, then
both instances start; they share the mailboxes through their leases. Measured from the first message
recorded to the last acknowledgement accepted by the sink.
Phase 2 (takeover): the instance reading the first mailbox is killed with SIGKILL; one new message is
appended to each of its mailboxes. Measured: the time until the survivor holds every lease, and until
those messages are recorded (the lease time bounds both).
Finally each message must have exactly one outcome and every acknowledgement be distinct.

    .venv/bin/python bench/scale.py [-n 10000] [--mailboxes 4] [--lease 30]
                                    [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from email.parser import BytesHeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from daemon.config import load_config  # noqa: E402
from tests.servers.dovecot import start_dovecot  # noqa: E402
from tests.support.daemon_process import count_spooled, start_daemon, start_sink_process, stop_daemon  # noqa: E402
from tests.support.instances import instance_config, lease_holders  # noqa: E402
from tests.support.stack import citizen_mail, stack_config, wait_until, write_config  # noqa: E402

BOXES = ("fe-credito", "fe-anagrafica", "fe-durc", "fe-direzione", "er-consulenza", "er-lavoro-occasionale")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--mailboxes", type=int, default=4, choices=range(2, len(BOXES) + 1))
    ap.add_argument("--lease", type=float, default=30.0, help="intake.lease_seconds")
    ap.add_argument(
        "--pg-url", default=os.environ.get("SPORTELLO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    )
    args = ap.parse_args()
    boxes = BOXES[: args.mailboxes]

    work = Path(tempfile.mkdtemp(prefix="sportello-scale-"))
    schema = "bench_" + uuid.uuid4().hex[:8]
    admin = sa.create_engine(args.pg_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = f"{args.pg_url}{'&' if '?' in args.pg_url else '?'}options=-csearch_path%3D{schema}"
    db = sa.create_engine(url)
    base = load_config(ROOT / "config.yaml", env={})
    dovecot = start_dovecot(work / "dovecot", [base.mailbox(b).imap.username for b in boxes])  # type: ignore[union-attr]
    spool = work / "spool"
    spool.mkdir()
    sink, smtp_port = start_sink_process(spool)
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def scalar(sql: str) -> object:
        try:
            with db.connect() as conn:
                return conn.exec_driver_sql(sql).scalar_one()
        except sa.exc.ProgrammingError:  # the schema is not migrated yet
            return None

    try:
        cfg = stack_config(base, work / "data", imap_port=dovecot.port, smtp_port=smtp_port, mailboxes=boxes)
        paths = {
            n: write_config(instance_config(cfg, f"sportello-{n}", url, args.lease), work / n) for n in ("uno", "due")
        }
        started = time.monotonic()
        for i, box in enumerate(boxes):
            address = cfg.mailbox(box).address
            dovecot.append_many(box, [citizen_mail(address, k) for k in range(i, args.n, len(boxes))])
        print(f"appended {args.n} messages to {len(boxes)} mailboxes in {time.monotonic() - started:.1f} s")
        os.sync()

        for name, path in paths.items():
            procs[name] = start_daemon(path, work / f"{name}.log")

        def settled(messages: int) -> bool:
            """Every message recorded and every email it caused (acknowledgement, notices) at the sink."""
            recorded, emails = scalar("SELECT count(*) FROM inbound_messages"), scalar("SELECT count(*) FROM outbox")
            if not isinstance(recorded, int) or not isinstance(emails, int):
                return False
            return recorded >= messages and count_spooled(spool) >= emails

        if not wait_until(lambda: settled(args.n), 3600, interval=0.2):
            print(f"TIMEOUT: {count_spooled(spool)} emails at the sink; logs in {work}")
            return 1
        last_ack = max(p.stat().st_mtime for p in spool.glob("*.eml"))
        first = scalar("SELECT extract(epoch FROM min(processed_at)) FROM inbound_messages")
        span = last_ack - float(first)  # type: ignore[arg-type]
        per_instance = Counter(h.split("@")[0] for h in lease_holders(db).values())
        print(
            f"throughput: {args.n} messages ({count_spooled(spool)} emails), two instances, first recorded -> "
            f"last email accepted {span:.2f} s = "
            f"{args.n / span:.0f} msg/s (mailboxes held at the end: {dict(per_instance)})"
        )

        # Phase 2: SIGKILL the instance reading the first mailbox; the survivor takes its leases over.
        held = lease_holders(db)
        victim = next(n for n, p in procs.items() if held[boxes[0]].endswith(f":{p.pid}"))
        survivor_pid = f":{procs[next(n for n in procs if n != victim)].pid}"
        orphaned = [b for b, h in held.items() if not h.endswith(survivor_pid)]
        os.kill(procs[victim].pid, signal.SIGKILL)
        killed = time.monotonic()
        procs[victim].wait()
        for k, box in enumerate(orphaned):
            dovecot.append(box, citizen_mail(cfg.mailbox(box).address, args.n + k))
        total = args.n + len(orphaned)
        wait_until(
            lambda: all(h.endswith(survivor_pid) for h in lease_holders(db).values()), args.lease * 3, interval=0.05
        )
        taken = time.monotonic() - killed
        wait_until(lambda: scalar("SELECT count(*) FROM inbound_messages") == total, args.lease * 3, interval=0.05)
        served = time.monotonic() - killed
        print(
            f"takeover after SIGKILL (lease {args.lease:.0f} s): {len(orphaned)} mailboxes held by the survivor "
            f"after {taken:.1f} s, their new mail recorded after {served:.1f} s"
        )

        wait_until(lambda: settled(total), 300, interval=0.2)
        inbound = scalar("SELECT count(*) FROM inbound_messages")
        distinct = scalar("SELECT count(DISTINCT (mailbox, raw_sha256)) FROM inbound_messages")
        tickets = scalar("SELECT count(*) FROM tickets")
        parser = BytesHeaderParser()
        sent = Counter(parser.parsebytes(p.read_bytes())["Message-ID"] for p in spool.glob("*.eml"))
        print(
            f"check: {inbound} messages recorded ({distinct} distinct) of {total}, {tickets} tickets, "
            f"{len(sent)} distinct emails, {sum(c - 1 for c in sent.values())} sent twice"
        )
        return 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                stop_daemon(proc)
        sink.terminate()
        sink.wait(timeout=10)
        dovecot.close()
        db.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
