"""Cost of evaluating the shipped routing rules (routing_rules/rules.yaml) on one message's facts.

A few thousand varied RoutingFacts (every mailbox, automatic mail, PEC kinds, gestioni, argomenti,
istanze, solleciti, replies) are built from the shipped config and vocabularies; each is evaluated
`--rounds` times. Prints the mean and the 99th percentile per message and which rules decided.
Target: under 0.2 ms per message on average.

    .venv/bin/python bench/rules.py [-n 5000] [--rounds 5] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from daemon.classify import load_vocabularies  # noqa: E402
from daemon.config import Config, load_config  # noqa: E402
from daemon.outbound.templates import TemplateRenderer  # noqa: E402
from daemon.rules import RoutingFacts, evaluate, load_ruleset  # noqa: E402
from daemon.rules.loader import vocabulary_ids  # noqa: E402

TARGET_MS = 0.2
SUBJECTS = [
    "Artigiani - richiesta informazioni avviso bonario n. {n}/2026",
    "Lavoratori domestici - RSSMRA80A01D548U Rossi Maria - estratto contributivo",
    "Aziende con dipendenti - UniEmens mese di ottobre",
    "Sollecito pratica FE-2026-{n:06d}",
    "Re: [FE-2026-{n:06d}] Conferma di ricezione",
    "Richiesta informazioni",
    "Libretto Famiglia - compenso non ricevuto",
    "Quesito normativo sulla circolare {n}/2026",
]


def make_facts(config: Config, vocab: object, n: int, rng: random.Random) -> list[RoutingFacts]:
    gestioni = [e.id for e in vocab.gestioni]  # type: ignore[attr-defined]
    argomenti = list(vocab.argomenti)  # type: ignore[attr-defined]
    telematizzate = [e for e in vocab.telematizzate]  # type: ignore[attr-defined]
    allowed = [a for m in config.mailboxes for a in m.allowed_senders]
    out = []
    for i in range(n):
        box = rng.choice(config.mailboxes)
        sender = rng.choice([f"utente{i}@posta.example", f"studio{i % 50}@commercialisti.example", *allowed])
        allowed_here = not box.allowed_senders or sender in box.allowed_senders
        pec_kind = "none"
        if box.kind == "pec":
            pec_kind = rng.choice(["posta-certificata", "posta-certificata", "ricevuta", "none", "anomalia"])
        argomento = rng.choice([None, *argomenti])
        gestione_roll = rng.random()
        gestione = rng.choice(gestioni) if gestione_roll < 0.75 else None
        candidates = tuple(rng.sample(gestioni, 2)) if gestione is None and gestione_roll < 0.85 else ()
        istanza = rng.random() < 0.2
        tele = rng.choice(telematizzate) if istanza and rng.random() < 0.3 else None
        ticket = f"FE-2026-{i:06d}"
        out.append(
            RoutingFacts(
                mailbox=box.id,
                mailbox_kind=box.kind,
                mailbox_status=box.status,
                mailbox_level=box.level,
                mailbox_office=box.office,
                sender=sender,
                sender_domain=sender.rsplit("@", 1)[-1],
                sender_allowed=allowed_here,
                automatic=rng.choice(["auto_reply", "bounce", "loop"]) if rng.random() < 0.08 else None,
                pec_kind=pec_kind,
                pec_receipt_type="avvenuta-consegna" if pec_kind == "ricevuta" else None,
                gestione=gestione,
                gestione_candidates=candidates,
                argomento=argomento.id if argomento else None,
                argomento_cassetto=bool(argomento and argomento.cassetto),
                unita=argomento.unit if argomento else None,
                istanza=istanza,
                telematizzata=tele.id if tele else None,
                servizio_online=tele.online_service if tele else None,
                sollecito=rng.random() < 0.1,
                has_valid_cf=rng.random() < 0.5,
                codici_fiscali_non_validi=(),
                ticket_ref=ticket if rng.random() < 0.08 else None,
                reply_to_ticket=ticket if rng.random() < 0.1 else None,
                subject=rng.choice(SUBJECTS).format(n=i),
                body="Buongiorno,\nchiedo chiarimenti.\n" * rng.randint(1, 20),
                attachment_count=rng.randint(0, 3),
                attachment_bytes=rng.randint(0, 3_000_000),
            )
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="messaggi diversi (predefinito 5000)")
    parser.add_argument("--rounds", type=int, default=5, help="valutazioni di ciascun messaggio (predefinito 5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    args = parser.parse_args()

    config = load_config(args.config, env={})
    base = Path(config.base_dir)
    vocab = load_vocabularies(base / "routing_rules")
    ruleset = load_ruleset(
        base / "routing_rules", config, TemplateRenderer(base / "templates").names(), vocabulary_ids(vocab)
    )
    facts = make_facts(config, vocab, args.n, random.Random(args.seed))

    decided = Counter(evaluate(ruleset, f).rule_id for f in facts)  # also the warm-up
    per_message: list[float] = []
    started = time.perf_counter()
    for _ in range(args.rounds):
        for f in facts:
            t0 = time.perf_counter_ns()
            evaluate(ruleset, f)
            per_message.append((time.perf_counter_ns() - t0) / 1e6)
    wall = time.perf_counter() - started
    total = len(per_message)
    mean = wall * 1000 / total
    p99 = statistics.quantiles(per_message, n=100)[98]

    print(f"Regole: {len(ruleset.rules)} (versione {ruleset.version}); {args.n} messaggi x {args.rounds} giri")
    print(f"Tempo medio di valutazione: {mean:.4f} ms per messaggio (obiettivo < {TARGET_MS} ms)")
    median = statistics.median(per_message)
    print(f"Mediana {median:.4f} ms, 99° percentile {p99:.4f} ms, massimo {max(per_message):.4f} ms")
    print("Regole che hanno deciso:")
    for rule_id, count in decided.most_common():
        print(f"  {rule_id:45} {count:6d}  ({count * 100 / args.n:4.1f}%)")
    return 0 if mean < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
