"""The SLA sweep over a large database: N tickets (default 1,000,000), of which D (default 1,000) have a
step due now; the others are open with their next step in the coming weeks, or closed.

The database is filled with bulk inserts (executemany on SQLite, COPY on PostgreSQL), then the sweep
the daemon runs every minute is timed: the indexed query for due clocks, the steps (templates
rendered, emails composed, outbox rows, events, step records, clocks moved on), all committed.
Templates are compiled once beforehand, as in a running daemon after its first minute. The same
steps are then made due again and swept again (`--runs`, default 3): each run's time and the median.

    .venv/bin/python bench/sla_sweep.py [--backend sqlite|postgresql|both] [-n 1000000] [--due 1000]
                                        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from daemon.config import Config, load_config  # noqa: E402
from daemon.service import Service  # noqa: E402
from daemon.sla import SlaRuntime  # noqa: E402
from daemon.sla.clock import due_for, next_pending, plan  # noqa: E402
from daemon.sla.sweep import SlaSweeper  # noqa: E402

ROME = ZoneInfo("Europe/Rome")
NOW = datetime(2026, 11, 18, 10, 0, tzinfo=ROME).astimezone(UTC)  # a Wednesday, mid-morning
POLICY = "risposta_10gg"
CHUNK = 50_000
OPEN_SHARE = 0.2  # open tickets with a step in the coming weeks; the rest are closed

TICKET_COLUMNS = [
    "id",
    "office",
    "year",
    "number",
    "state",
    "mailbox",
    "queue",
    "assignee",
    "requester",
    "requester_name",
    "subject",
    "codici_fiscali",
    "tags",
    "priority",
    "sla_policy",
    "received_at",
    "created_at",
    "updated_at",
    "due_at",
    "closed_at",
    "close_outcome",
]
CLOCK_COLUMNS = [
    "ticket_id",
    "track",
    "policy",
    "cycle",
    "started_at",
    "due_at",
    "paused_days",
    "next_step",
    "next_at",
    "stopped_at",
    "stop_reason",
    "updated_at",
]


def _config(url: str, workdir: Path) -> Config:
    env = {"SPORTELLO_DATABASE_URL": url, "SPORTELLO_ARCHIVE_DIR": str(workdir / "archive")}
    return load_config(ROOT / "config.yaml", env=env)


def _schedule(runtime: SlaRuntime, received: datetime) -> tuple[datetime, str | None, datetime | None]:
    """(due, next step, its time) of a risposta_10gg clock started at `received`, nothing run yet."""
    cal = runtime.calendar("FE")
    policy = runtime.policies.policies[POLICY]
    due = due_for(cal, received, policy)
    first = next_pending(plan(cal, policy, received, due), ())
    return due, (first.step.id if first else None), (first.at if first else None)


def _due_received(runtime: SlaRuntime) -> datetime:
    """A receipt time whose first step (the reminder) is due at NOW and whose second is not."""
    cal = runtime.calendar("FE")
    policy = runtime.policies.policies[POLICY]
    received = cal.add_working_days(NOW, -9).replace(hour=10, minute=0)
    due = due_for(cal, received, policy)
    times = [p.at for p in plan(cal, policy, received, due)]
    assert times[0] <= NOW < times[1], times
    return received


def _rows(runtime: SlaRuntime, n: int, due: int, seed: int = 7) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(ticket row, clock row) in TICKET_COLUMNS / CLOCK_COLUMNS order."""
    rng = random.Random(seed)
    due_received = _due_received(runtime)
    due_schedule = _schedule(runtime, due_received)
    open_count = int((n - due) * OPEN_SHARE)
    recent = [NOW - timedelta(days=d, hours=h) for d in range(0, 8) for h in range(0, 10)]
    recent_schedules = {r: _schedule(runtime, r) for r in recent}
    old = NOW - timedelta(days=200)
    old_due = _schedule(runtime, old)[0]
    due_slots = set(rng.sample(range(n), due))
    open_slots = set(rng.sample(sorted(set(range(n)) - due_slots), open_count))
    for i in range(n):
        tid = f"FE-2026-{i + 1:07d}"
        who = f"cittadino{i}@posta.example"
        subject = f"Artigiani - richiesta informazioni avviso bonario n. {i}/2026"
        if i in due_slots:
            received = due_received
            due_at, step, step_at = due_schedule
            state, closed, stopped = "aperta", None, None
        elif i in open_slots:
            received = recent[i % len(recent)]
            due_at, step, step_at = recent_schedules[received]
            state, closed, stopped = rng.choice(("aperta", "in_carico")), None, None
        else:
            received, due_at, step, step_at = old, old_due, None, None
            closed = old + timedelta(days=rng.randint(1, 20))
            state, stopped = "chiusa", closed
        ticket = (
            tid, "FE", 2026, i + 1, state, "fe-credito", "credito", "referente.credito", who, f"Cittadino {i}",
            subject, "[]", "[]", None, POLICY, received, received, closed or received, due_at, closed, None,
        )  # fmt: skip
        clock = (
            tid, "risposta", POLICY, 1, received, due_at, 0, step, step_at, stopped, "chiusa" if stopped else None,
            closed or received,
        )  # fmt: skip
        yield ticket, clock


def _fill_sqlite(engine: sa.Engine, rows: Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> None:
    # Same text format as SQLAlchemy's SQLite DateTime (naive UTC), so comparisons in the sweep hold.
    def ts(v: Any) -> Any:
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v

    t_sql = f"INSERT INTO tickets ({', '.join(TICKET_COLUMNS)}) VALUES ({', '.join('?' * len(TICKET_COLUMNS))})"
    c_sql = f"INSERT INTO sla_clocks ({', '.join(CLOCK_COLUMNS)}) VALUES ({', '.join('?' * len(CLOCK_COLUMNS))})"
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("BEGIN")
        tickets: list[tuple[Any, ...]] = []
        clocks: list[tuple[Any, ...]] = []
        for t, c in rows:
            tickets.append(tuple(ts(v) for v in t))
            clocks.append(tuple(ts(v) for v in c))
            if len(tickets) >= CHUNK:
                cur.executemany(t_sql, tickets)
                cur.executemany(c_sql, clocks)
                tickets, clocks = [], []
        if tickets:
            cur.executemany(t_sql, tickets)
            cur.executemany(c_sql, clocks)
        cur.execute("COMMIT")
        cur.execute("ANALYZE")
    finally:
        raw.close()


def _fill_postgres(engine: sa.Engine, rows: Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> None:
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        assert dbapi is not None
        clocks: list[tuple[Any, ...]] = []
        with dbapi.cursor() as cur:
            with cur.copy(f"COPY tickets ({', '.join(TICKET_COLUMNS)}) FROM STDIN") as copy:
                for t, c in rows:
                    copy.write_row(t)
                    clocks.append(c)
            with cur.copy(f"COPY sla_clocks ({', '.join(CLOCK_COLUMNS)}) FROM STDIN") as copy:
                for c in clocks:
                    copy.write_row(c)
        dbapi.commit()
        with dbapi.cursor() as cur:
            cur.execute("ANALYZE tickets")
            cur.execute("ANALYZE sla_clocks")
        dbapi.commit()
    finally:
        raw.close()


def _plan_text(engine: sa.Engine) -> str:
    sql = "SELECT id FROM sla_clocks WHERE next_at <= :now ORDER BY next_at, id LIMIT 200"
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(sa.text("EXPLAIN QUERY PLAN " + sql), {"now": NOW.strftime("%Y-%m-%d %H:%M:%S.%f")})
            return "; ".join(str(r[-1]) for r in rows)
        rows = conn.execute(sa.text("EXPLAIN " + sql), {"now": NOW})
        return "; ".join(str(r[0]).strip() for r in rows)


def run(backend: str, url: str, n: int, due: int, workdir: Path, runs: int) -> dict[str, Any]:
    cfg = _config(url, workdir)
    service = Service(cfg, clock=lambda: NOW)
    runtime = service.sla
    assert runtime is not None
    engine = service.engine
    started = time.perf_counter()
    rows = _rows(runtime, n, due)
    (_fill_sqlite if backend == "sqlite" else _fill_postgres)(engine, rows)
    fill = time.perf_counter() - started
    print(f"[{backend}] populated {n:,} tickets and clocks in {fill:.1f} s", flush=True)
    query_plan = _plan_text(engine)
    print(f"[{backend}] due-clock query plan: {query_plan}", flush=True)

    # Templates compiled once, as in a daemon that has been running for a minute.
    for name in runtime.renderer.names():
        runtime.renderer.env.get_template(f"{name}.j2")
    with engine.connect() as conn:
        armed = conn.execute(
            sa.text("SELECT id, next_step, next_at FROM sla_clocks WHERE next_at <= :now"), {"now": _bind(engine, NOW)}
        ).all()
    sweeper = SlaSweeper(runtime, service.session_factory, service.tickets, clock=lambda: NOW)
    times: list[float] = []
    for i in range(runs):
        if i:
            _rearm(engine, armed)
        stats = sweeper.sweep(NOW)
        with engine.connect() as conn:
            outbox = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE template = 'sla_promemoria'")).scalar_one()
            records = conn.execute(sa.text("SELECT count(*) FROM sla_step_runs")).scalar_one()
        ok = stats.steps == due and stats.emails == due and outbox == due and records == due
        times.append(stats.seconds)
        print(
            f"[{backend}] sweep {i + 1}: {stats.steps} steps due among {n:,} tickets -> {stats.emails} emails, "
            f"{outbox} outbox rows, {records} step records in {stats.seconds:.3f} s{'' if ok else ' (COUNTS WRONG)'}",
            flush=True,
        )
    idle = sweeper.sweep(NOW)
    service.close()
    median = statistics.median(times)
    verdict = "OK" if median <= 0.5 else "OVER TARGET"
    print(
        f"[{backend}] sweep time: median {median:.3f} s, best {min(times):.3f} s, worst {max(times):.3f} s "
        f"over {runs} runs ({verdict}; target ≤ 0.5 s); next sweep with nothing due: {idle.seconds * 1000:.1f} ms",
        flush=True,
    )
    return {
        "backend": backend,
        "tickets": n,
        "due_steps": due,
        "populate_s": round(fill, 1),
        "sweep_s": [round(t, 3) for t in times],
        "sweep_median_s": round(median, 3),
        "idle_sweep_s": round(idle.seconds, 4),
        "query_plan": query_plan,
    }


def _bind(engine: sa.Engine, when: datetime) -> Any:
    """A datetime as the SQLite columns hold it (naive UTC text), or as is for PostgreSQL."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if engine.dialect.name == "sqlite" else when


def _rearm(engine: sa.Engine, armed: list[Any]) -> None:
    """Undo a sweep: the same 1,000 steps due again, nothing of the previous run left."""
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM sla_step_runs"))
        conn.execute(sa.text("DELETE FROM ticket_messages"))
        conn.execute(sa.text("DELETE FROM ticket_events"))
        conn.execute(sa.text("DELETE FROM outbox"))
        conn.execute(
            sa.text("UPDATE sla_clocks SET next_step = :step, next_at = :at WHERE id = :id"),
            [{"id": row.id, "step": row.next_step, "at": row.next_at} for row in armed],
        )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE sla_clocks, outbox, sla_step_runs, ticket_events, ticket_messages")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("-n", "--tickets", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3, help="sweeps of the same due steps (re-armed in between)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SPORTELLO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sportello-sla-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    if args.backend in ("sqlite", "both"):
        db = workdir / "sla-bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        results.append(run("sqlite", f"sqlite:///{db}", args.tickets, args.due, workdir, args.runs))
    if args.backend in ("postgresql", "both"):
        schema = "bench_sla_" + uuid.uuid4().hex[:8]
        admin = sa.create_engine(args.pg_url)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        sep = "&" if "?" in args.pg_url else "?"
        try:
            url = f"{args.pg_url}{sep}options=-csearch_path%3D{schema}"
            results.append(run("postgresql", url, args.tickets, args.due, workdir, args.runs))
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
