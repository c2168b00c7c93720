"""Cost of finding the new text of a reply (daemon/conversation/quotes.py), on ordinary and on hostile bodies.

Ordinary: replies as Thunderbird, Gmail, Outlook (text and HTML-only) and Apple Mail build them, each
parsed `--rounds` times; prints the mean per reply. Hostile: bodies that make mail-parser-reply's own
patterns quadratic (a long line, or thousands of lines, starting with "Il"), deep and broken HTML; prints
the time of new_text on each and, with --library, of mail-parser-reply alone on the same text.

    .venv/bin/python bench/quotes.py [--rounds 200] [--library]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailparser_reply.parser import EmailMessage  # noqa: E402

from daemon.conversation.quotes import new_text  # noqa: E402

QUOTE = "".join(f"> riga {n} del messaggio originale, con il testo del cittadino.\n" for n in range(40))
ORDINARY: list[tuple[str | None, str | None]] = [
    (f"Va bene, procedo.\n\nIl 16/11/2026 10:15, Mario Rossi ha scritto:\n{QUOTE}", None),
    (f"Grazie.\n\nIl giorno lun 16 nov 2026 alle ore 10:15 Mario Rossi <m@x.it>\nha scritto:\n\n{QUOTE}", None),
    (
        "La pratica è in lavorazione.\n\nLuigi Bianchi\n\n________________________________\n"
        "Da: Mario Rossi <m@x.it>\nInviato: lunedì 16 novembre 2026 10:15\nA: Sportello\nOggetto: X\n\n" + QUOTE,
        None,
    ),
    (f"Ok.\n\nInviato da iPhone\n\n> Il giorno 16 nov 2026, alle ore 10:15, Mario Rossi ha scritto:\n{QUOTE}", None),
    (
        None,
        "<html><body><div>Presa in carico.</div><div id='Signature'>Luigi</div><div id='appendonsend'></div>"
        "<hr><div id='divRplyFwdMsg'><b>Da:</b> Mario</div>"
        + "".join(f"<div>riga {n}</div>" for n in range(200))
        + "</body></html>",
    ),
]


def _hostile() -> list[tuple[str, str | None, str | None]]:
    line = "Il " + "parola " * 2300  # 16 KB
    many = ("Il " + "x " * 40 + "\n") * 10_000
    on_lines = ("On " + "x" * 80 + "\n") * 10_000
    deep = "<div>" * 100_000 + "testo" + "</span>" * 100_000
    unclosed = "<p>a " * 100_000
    return [
        ("una riga di 16 KB che comincia con 'Il'", line, None),
        ("10.000 righe che cominciano con 'Il'", many, None),
        ("10.000 righe che cominciano con 'On'", on_lines, None),
        ("HTML: 100.000 div aperti e 100.000 chiusure spaiate", None, deep),
        ("HTML: 100.000 paragrafi non chiusi", None, unclosed),
    ]


def _seconds(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--library", action="store_true", help="misura anche mail-parser-reply da solo (lento)")
    args = parser.parse_args()

    started = time.perf_counter()
    for _ in range(args.rounds):
        for text, html in ORDINARY:
            new_text(text, html)
    per_reply = (time.perf_counter() - started) / (args.rounds * len(ORDINARY))
    print(f"Risposte ordinarie: {len(ORDINARY)} x {args.rounds} giri, {per_reply * 1000:.3f} ms per risposta")

    print("Corpi ostili (secondi):")
    for label, text, html in _hostile():
        size = len(text or html or "")
        ours = _seconds(lambda text=text, html=html: new_text(text, html))
        line = f"  {label:55} {size / 1024:7.0f} KB  new_text {ours:7.3f}"
        if args.library and text is not None:
            alone = _seconds(lambda text=text: EmailMessage(text=text, languages=["it"]).read())
            line += f"  mail-parser-reply da solo {alone:8.3f}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
