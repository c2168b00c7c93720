"""The cost of one Prometheus scrape of `sportello run` on a large SQLite database: N tickets (default
1,000,000; a fifth open, in 3 offices x 4 queues), N/2 outbox rows (a few pending), N/100 alerts and N/10
SLA step records. Prints the median time of one /metrics body over `--runs` scrapes.

    .venv/bin/python bench/metrics_scrape.py [-n 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from prometheus_client import generate_latest  # noqa: E402

from daemon.ops.metrics import MailboxState, Metrics  # noqa: E402
from storage.db import init_db, make_engine, make_session_factory  # noqa: E402
from storage.models import Alert, Outbox, Ticket  # noqa: E402
from storage.models_sla import SlaClock, SlaStepRun  # noqa: E402

NOW = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
CHUNK = 50_000


def fill(engine: sa.Engine, n: int) -> None:
    offices, queues = ("FE", "BO", "RA"), ("credito", "anagrafica", "verifica", "normativa")
    with engine.begin() as conn:
        for start in range(0, n, CHUNK):
            rows = []
            for i in range(start, min(n, start + CHUNK)):
                open_ = i % 5 == 0
                rows.append(
                    {
                        "id": f"T-{i}",
                        "office": offices[i % 3],
                        "year": 2026,
                        "number": i,
                        "state": "aperta" if open_ else "chiusa",
                        "mailbox": "fe-credito",
                        "queue": queues[i % 4],
                        "requester": f"r{i}@posta.example",
                        "requester_name": "",
                        "subject": "",
                        "codici_fiscali": [],
                        "tags": [],
                        "received_at": NOW - timedelta(days=i % 60),
                        "created_at": NOW - timedelta(days=i % 60),
                        "updated_at": NOW,
                        "due_at": NOW + timedelta(days=(i % 40) - 20),
                    }
                )
            conn.execute(sa.insert(Ticket), rows)
        for start in range(0, n // 2, CHUNK):
            conn.execute(
                sa.insert(Outbox),
                [
                    {
                        "message_id": f"m{i}@bench.invalid",
                        "mailbox": "fe-credito",
                        "smtp_profile": "locale",
                        "sender": "a@inps.example",
                        "to": ["b@posta.example"],
                        "cc": [],
                        "subject": "s",
                        "template": "conferma_ricezione",
                        "raw": b"x",
                        "status": "pending" if i % 1000 == 0 else "sent",
                        "attempts": 1,
                        "next_attempt_at": NOW,
                        "created_at": NOW - timedelta(minutes=i % 600),
                    }
                    for i in range(start, min(n // 2, start + CHUNK))
                ],
            )
        conn.execute(
            sa.insert(Alert), [{"at": NOW, "kind": f"tipo_{i % 7}", "note": ""} for i in range(max(1, n // 100))]
        )
        clocks = max(1, n // 10)
        conn.execute(
            sa.insert(SlaClock),
            [
                {
                    "ticket_id": f"T-{i}",
                    "track": "risposta",
                    "policy": "risposta_10gg",
                    "cycle": 1,
                    "started_at": NOW,
                    "due_at": NOW,
                    "paused_days": 0,
                    "updated_at": NOW,
                }
                for i in range(clocks)
            ],
        )
        conn.execute(
            sa.insert(SlaStepRun),
            [
                {
                    "clock_id": i + 1,
                    "ticket_id": f"T-{i}",
                    "cycle": 1,
                    "policy": "risposta_10gg",
                    "step": ("promemoria", "sollecito", "escalation")[i % 3],
                    "scheduled_at": NOW,
                    "executed_at": NOW,
                    "result": "sent",
                    "note": "",
                }
                for i in range(clocks)
            ],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        init_db(engine)
        started = time.perf_counter()
        fill(engine, args.n)
        print(f"database: {args.n} pratiche, {args.n // 2} email, riempito in {time.perf_counter() - started:.1f} s")
        states = [MailboxState(f"casella-{i}", True, time.time(), 300) for i in range(10)]
        metrics = Metrics(make_session_factory(engine), lambda: states, lambda: NOW)
        times, size = [], 0
        for _ in range(args.runs):
            started = time.perf_counter()
            size = len(generate_latest(metrics.registry))
            times.append(time.perf_counter() - started)
        print(f"scrape /metrics: mediana {statistics.median(times) * 1000:.0f} ms su {args.runs} ({size} byte)")
        engine.dispose()


if __name__ == "__main__":
    main()
