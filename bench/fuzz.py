"""Fuzz run at scale: N generated and mutated messages (default 10,000) through the real pipeline on SQLite.

The messages come from tests/support/fuzzmail.py (the in-suite fuzz test's generator) with a seeded
random draw, so a run is replayable with --seed. Prints the crashes (exceptions escaping the pipeline,
and messages the pipeline had to quarantine as an internal error), the messages left without an outcome,
the distinct messages, the outcomes, and the analysis time per message (median, 99th percentile, the
slowest, with its mutations).

    .venv/bin/python bench/fuzz.py [-n 10000] [--seed 12] [--batch 50]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from daemon.config import Mailbox, load_config  # noqa: E402
from daemon.core.analysis import Analysis, Lookups  # noqa: E402
from daemon.core.pipeline import InboundItem  # noqa: E402
from daemon.service import Service  # noqa: E402
from storage.models import InboundMessage  # noqa: E402
from tests.support.fuzzmail import MUTATIONS, mutate, seed_messages  # noqa: E402
from tests.support.paths import PEC_SAMPLES  # noqa: E402

MAILBOXES = ("fe-credito", "fe-anagrafica", "fe-pec", "er-lavoro-occasionale")


def draw(rng: random.Random, seeds: list[bytes]) -> tuple[bytes, str]:
    if rng.random() < 0.05:
        return rng.randbytes(rng.randint(0, 600)), "random bytes"
    steps = [(rng.choice(sorted(MUTATIONS)), rng.getrandbits(31)) for _ in range(rng.randint(0, 3))]
    seed = rng.randrange(len(seeds))
    label = f"seed {seed} " + " ".join(f"{name}({k})" for name, k in steps)
    return mutate(seeds[seed], steps), label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    seeds = seed_messages(PEC_SAMPLES)
    with tempfile.TemporaryDirectory(prefix="sportello-fuzz-") as tmp:
        env = {"SPORTELLO_DATABASE_URL": f"sqlite:///{tmp}/fuzz.db", "SPORTELLO_ARCHIVE_DIR": f"{tmp}/archive"}
        config = load_config(ROOT / "config.yaml", env=env)
        service = Service(config)
        timings: list[tuple[float, str]] = []
        inner = service.pipeline.analyser
        current: dict[bytes, str] = {}

        def timed(raw: bytes, mailbox: Mailbox, lookups: Lookups) -> Analysis:
            started = time.perf_counter()
            try:
                return inner(raw, mailbox, lookups)
            finally:
                timings.append((time.perf_counter() - started, current.get(raw, "?")))

        service.pipeline.analyser = timed
        crashes = 0
        without_outcome = 0
        outcomes: Counter[str] = Counter()
        digests: set[str] = set()
        started = time.perf_counter()
        done = 0
        while done < args.n:
            batch = [draw(rng, seeds) for _ in range(min(args.batch, args.n - done))]
            current = {raw: label for raw, label in batch}
            items = [InboundItem(raw=raw, mailbox_id=rng.choice(MAILBOXES)) for raw, _ in batch]
            digests.update(i.digest for i in items)
            try:
                results = service.ingest(items)
            except Exception as exc:  # a crash: the pipeline let an exception escape
                crashes += len(items)
                print(f"ECCEZIONE su un lotto: {type(exc).__name__}: {exc}", file=sys.stderr)
                done += len(items)
                continue
            with service.session_factory() as session:
                for result in results:
                    row = session.get(InboundMessage, result.inbound_id)
                    if row is None or not row.outcome:
                        without_outcome += 1
                    else:
                        outcomes[f"{row.outcome}/{row.reason or '-'}"] += 1
                        crashes += row.reason == "errore_interno" and not result.duplicate
            done += len(items)
        elapsed = time.perf_counter() - started
        service.close()

    times = sorted(t for t, _ in timings)
    slowest, slowest_label = max(timings)
    print(f"messaggi: {args.n} ({len(digests)} distinti), seme {args.seed}, lotti da {args.batch}")
    print(f"arresti (eccezioni o errori interni): {crashes}")
    print(f"messaggi senza esito: {without_outcome}")
    print(f"tempo totale: {elapsed:.1f} s ({args.n / elapsed:.0f} messaggi/s)")
    print(
        f"analisi per messaggio: mediana {statistics.median(times) * 1000:.1f} ms, "
        f"99° percentile {times[int(len(times) * 0.99) - 1] * 1000:.1f} ms, "
        f"la più lenta {slowest * 1000:.0f} ms ({slowest_label})"
    )
    print("esiti:")
    for key, count in outcomes.most_common():
        print(f"  {key}: {count}")


if __name__ == "__main__":
    main()
