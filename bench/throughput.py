"""End-to-end throughput and latency of the daemon on SQLite, a real Dovecot and an SMTP sink.

Phase 1 (throughput): N messages (mixed sizes, a third with a 20 KB attachment) are appended to
Dovecot, then the daemon starts; measured from the first fetched batch to the last acknowledgement
accepted by the sink.
Phase 2 (latency): with the daemon idle in IMAP IDLE, messages are appended one at a time; measured
from APPEND to the acknowledgement accepted by the sink (p50, p95), split at the moment the server
announces the message (EXISTS, seen by a watching IDLE session of our own): before it, Dovecot's own
notification delay; after it, the daemon's part (fetch, record, send the acknowledgement).
Phase 3 (LMTP): messages delivered one at a time over LMTP; measured from the end of DATA to the 250
reply, and to the acknowledgement accepted by the sink.
The daemon runs as `sportello run` in its own process tree (intake + sender) with 20 mailboxes
configured (each with its IMAP worker); peak RSS is of that tree.

    .venv/bin/python bench/throughput.py [-n 2000] [--latency-samples 100] [--lmtp-samples 100]
"""

from __future__ import annotations

import argparse
import email
import os
import random
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.policy import default as default_policy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from daemon.config import Config, LmtpConfig, load_config  # noqa: E402
from tests.servers.dovecot import start_dovecot  # noqa: E402
from tests.support.daemon_process import count_spooled, start_daemon, start_sink_process, stop_daemon  # noqa: E402
from tests.support.stack import citizen_mail, stack_config, wait_until, write_config  # noqa: E402

MAILBOX = "fe-credito"
CONFIGURED_MAILBOXES = 20


def _with_mailboxes(cfg: Config, total: int) -> Config:
    """The shipped mailboxes plus copies of the first ordinary one, up to `total` read over IMAP."""
    template = cfg.mailbox(MAILBOX)
    assert template.imap is not None
    extra = [
        template.model_copy(
            update={
                "id": f"extra-{k:02d}",
                "address": f"extra{k:02d}.ferrara@inps.example",
                "imap": template.imap.model_copy(update={"username": f"extra-{k:02d}"}),
            }
        )
        for k in range(1, total - sum(1 for m in cfg.mailboxes if m.imap) + 1)
    ]
    return cfg.model_copy(update={"mailboxes": (*cfg.mailboxes, *extra)})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ExistsWatch:
    """An IDLE session of our own on the mailbox: when the server announces each new message (EXISTS),
    as it announces it to the daemon's session."""

    def __init__(self, dovecot: object, user: str) -> None:
        self.times: list[float] = []
        self._stop = threading.Event()
        self._client = dovecot.client(user)  # type: ignore[attr-defined]
        self._imap = self._client.__enter__()
        self._imap.select_folder("INBOX", readonly=True)
        self._imap.idle()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for response in self._imap.idle_check(timeout=0.2):
                if len(response) >= 2 and response[1] == b"EXISTS":
                    self.times.append(time.time())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self._imap.idle_done()
        finally:
            self._client.__exit__(None, None, None)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _spooled(spool: Path) -> list[Path]:
    return list(spool.glob("*.eml"))


def _messages(address: str, n: int, offset: int, rng: random.Random) -> list[bytes]:
    out = []
    for i in range(n):
        k = offset + i
        body = "Buongiorno,\nchiedo chiarimenti sull'avviso bonario.\n" + (
            "Testo della richiesta. " * rng.choice((5, 50, 400))
        )
        attachment = os.urandom(20 * 1024) if i % 3 == 0 else None
        out.append(citizen_mail(address, k, body=body, attachment=attachment))
    return out


def _settled(db: Path, spool: Path, messages: int) -> bool:
    """All `messages` recorded and every email they caused (acknowledgements, notices to referents)
    accepted by the sink: the outbox rows are written with the message, so their number is final."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            recorded = conn.execute("SELECT count(*) FROM inbound_messages").fetchone()[0]
            emails = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    except sqlite3.Error:  # the daemon has not created its database yet
        return False
    return recorded >= messages and count_spooled(spool) >= emails


def _emails(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])


def _first_processed(db: Path) -> float | None:
    """When the daemon recorded its first message (UTC epoch), from its own database."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        row = conn.execute("SELECT min(processed_at) FROM inbound_messages").fetchone()
    if not row or not row[0]:
        return None
    return _epoch(str(row[0]))


def _processed_times(db: Path, message_ids: list[str]) -> dict[str, float]:
    """When the daemon recorded each message (UTC epoch), by Message-ID."""
    out: dict[str, float] = {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        for mid in message_ids:
            row = conn.execute("SELECT processed_at FROM inbound_messages WHERE message_id = ?", (mid,)).fetchone()
            if row and row[0]:
                out[mid] = _epoch(str(row[0]))
    return out


def _epoch(stamp: str) -> float:
    parsed = datetime.fromisoformat(stamp)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User+system CPU of each process and its children (the sender is the daemon's child)."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
            for p in procs:
                t = p.cpu_times()
                label = name if p.pid == pid else f"{name} child {p.name()}"
                out[label] = out.get(label, 0.0) + t.user + t.system
        except psutil.Error:
            continue
    return out


class RssWatch:
    """Peak resident memory of the daemon's process tree (the intake process and the sender process)."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak_total = 0
        self.peak_single = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                rss = [p.memory_info().rss for p in procs]
            except psutil.Error:
                continue
            self.peak_total = max(self.peak_total, sum(rss))
            self.peak_single = max(self.peak_single, max(rss))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2000, help="messages for the throughput phase")
    ap.add_argument("--latency-samples", type=int, default=100)
    ap.add_argument("--latency-interval", type=float, default=0.2, help="seconds between appends in phase 2")
    ap.add_argument("--lmtp-samples", type=int, default=100)
    ap.add_argument(
        "--no-notices",
        action="store_true",
        help="no notices to the referents (as before the conversation): one email per message",
    )
    args = ap.parse_args()

    rng = random.Random(7)
    work = Path(tempfile.mkdtemp(prefix="sportello-bench-"))
    base = _with_mailboxes(load_config(ROOT / "config.yaml", env={}), CONFIGURED_MAILBOXES)
    dovecot = start_dovecot(work / "dovecot", [m.imap.username for m in base.mailboxes if m.imap])
    spool = work / "spool"
    spool.mkdir()
    sink, smtp_port = start_sink_process(spool)
    daemon: subprocess.Popen[bytes] | None = None
    try:
        cfg = stack_config(
            base, work / "data", imap_port=dovecot.port, smtp_port=smtp_port, notices=not args.no_notices
        )
        lmtp_port = _free_port()
        cfg = cfg.model_copy(
            update={
                "archive": cfg.archive.model_copy(update={"fsync": True}),
                "lmtp": LmtpConfig(listen=f"127.0.0.1:{lmtp_port}"),
            }
        )
        config_path = write_config(cfg, work / "etc")
        db = Path(cfg.database_url.removeprefix("sqlite:///"))
        address = cfg.mailbox(MAILBOX).address
        t = time.monotonic()
        dovecot.append_many(MAILBOX, _messages(address, args.n, 0, rng))
        print(f"appended {args.n} messages in {time.monotonic() - t:.1f} s")
        # Dovecot's own writes of the appended mail are not the daemon's work: flushed now, so that the
        # daemon's first archive sync (syncfs covers the whole file system) does not pay for them.
        os.sync()

        # The daemon exactly as deployed: `sportello run` in its own process.
        started = time.monotonic()
        daemon = start_daemon(config_path, work / "daemon.log")
        rss = RssWatch(daemon.pid)
        ok = wait_until(lambda: _settled(db, spool, args.n), 1800, interval=0.2)
        end = time.monotonic()
        cpu = _cpu_seconds({"daemon (intake)": daemon.pid, "sink": sink.pid, "dovecot": dovecot.pid or 0})
        if not ok:
            print(f"TIMEOUT: {count_spooled(spool)} emails at the sink; log in {work / 'daemon.log'}")
            return 1
        # The sink stamps each accepted message by its file's mtime: wall-clock time on both sides.
        last_ack = max(p.stat().st_mtime for p in _spooled(spool))
        first = _first_processed(db)
        assert first is not None
        span = last_ack - first
        emails = _emails(db)
        print(
            f"throughput: {args.n} messages ({emails} emails: acknowledgements and notices), first recorded -> "
            f"last email accepted {span:.2f} s = {args.n / span:.0f} msg/s"
        )
        print(f"            (from daemon start, imports included, to seeing all emails: {end - started:.2f} s)")
        print("CPU seconds used for phase 1: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))

        # Phase 2: latency with IDLE, one message at a time.
        before = {p.name for p in _spooled(spool)}
        appended: dict[str, float] = {}
        announced: dict[str, float] = {}
        msgs = _messages(address, args.latency_samples, 100_000, rng)
        watch = ExistsWatch(dovecot, MAILBOX)
        with dovecot.client(MAILBOX) as c:
            for raw in msgs:
                mid = email.message_from_bytes(raw, policy=default_policy)["Message-ID"].strip("<>")
                seen = len(watch.times)
                appended[mid] = time.time()
                c.append("INBOX", raw)
                wait_until(lambda s=seen: len(watch.times) > s, 5, interval=0.002)
                if len(watch.times) > seen:
                    announced[mid] = watch.times[seen]
                time.sleep(args.latency_interval)
        watch.stop()
        wait_until(lambda: _settled(db, spool, args.n + args.latency_samples), 120, interval=0.1)
        latencies = []
        acked: dict[str, float] = {}
        for p in _spooled(spool):
            if p.name in before:
                continue
            ack = email.message_from_bytes(p.read_bytes(), policy=default_policy)
            mid = str(ack["In-Reply-To"] or "").strip().strip("<>")
            if mid in appended:
                latencies.append(p.stat().st_mtime - appended[mid])
                acked[mid] = p.stat().st_mtime
        latencies.sort()
        if latencies:
            p50 = statistics.median(latencies)
            p95 = _percentile(latencies, 0.95)
            print(
                f"latency APPEND -> ack at sink ({len(latencies)} samples, IDLE): p50 {p50 * 1000:.0f} ms, "
                f"p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
            )
            # Where the time goes: until the daemon recorded the message (IMAP notification + fetch +
            # processing), then until the sink accepted the acknowledgement (sender wake-up + SMTP).
            recorded = _processed_times(db, list(acked))
            before = sorted(recorded[m] - appended[m] for m in recorded)
            after = sorted(acked[m] - recorded[m] for m in recorded)
            if before:
                print(
                    f"  of which APPEND -> recorded p50 {statistics.median(before) * 1000:.0f} ms, "
                    f"recorded -> ack p50 {statistics.median(after) * 1000:.0f} ms"
                )
            server = [announced[m] - appended[m] for m in acked if m in announced]
            ours = [acked[m] - announced[m] for m in acked if m in announced]
            if ours:
                print(
                    f"  split at the server's EXISTS ({len(ours)} samples): Dovecot APPEND -> EXISTS p50 "
                    f"{statistics.median(server) * 1000:.0f} ms; daemon EXISTS -> ack p50 "
                    f"{statistics.median(ours) * 1000:.0f} ms, p99 {_percentile(ours, 0.99) * 1000:.0f} ms"
                )

        # Phase 3: delivery over LMTP, one message at a time.
        lmtp_msgs = _messages(address, args.lmtp_samples, 200_000, rng)
        data_end: dict[str, float] = {}
        replied: list[float] = []
        client = smtplib.LMTP("127.0.0.1", lmtp_port, timeout=30)
        client.ehlo()
        for raw in lmtp_msgs:
            mid = email.message_from_bytes(raw, policy=default_policy)["Message-ID"].strip("<>")
            client.mail("cittadino@posta.example")
            client.rcpt(address)
            wire = raw.replace(b"\n", b"\r\n")
            client.send(b"DATA\r\n")
            client.getreply()
            client.send(wire + (b"" if wire.endswith(b"\r\n") else b"\r\n"))
            data_end[mid] = time.time()
            client.send(b".\r\n")
            code, _ = client.getreply()
            replied.append(time.time() - data_end[mid])
            assert code == 250, code
            time.sleep(args.latency_interval)
        client.quit()
        total = args.n + args.latency_samples + args.lmtp_samples
        wait_until(lambda: _settled(db, spool, total), 120, interval=0.1)
        lmtp_acks = []
        for p in _spooled(spool):
            ack = email.message_from_bytes(p.read_bytes(), policy=default_policy)
            mid = str(ack["In-Reply-To"] or "").strip().strip("<>")
            if mid in data_end:
                lmtp_acks.append(p.stat().st_mtime - data_end[mid])
        if replied and lmtp_acks:
            print(
                f"LMTP: DATA -> 250 p50 {statistics.median(replied) * 1000:.0f} ms, "
                f"DATA -> ack p50 {statistics.median(lmtp_acks) * 1000:.0f} ms "
                f"({len(replied)} samples; 250 p99 {_percentile(replied, 0.99) * 1000:.0f} ms, "
                f"ack p99 {_percentile(lmtp_acks, 0.99) * 1000:.0f} ms)"
            )
        rss.stop()
        print(
            f"peak RSS of the daemon ({CONFIGURED_MAILBOXES} mailboxes configured): {rss.peak_total / 2**20:.0f} MiB "
            f"for both processes, {rss.peak_single / 2**20:.0f} MiB for the largest"
        )
        return 0
    finally:
        if daemon is not None:
            stop_daemon(daemon)
        sink.terminate()
        sink.wait(timeout=10)
        dovecot.stop()


if __name__ == "__main__":
    raise SystemExit(main())
