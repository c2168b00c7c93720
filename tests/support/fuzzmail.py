"""Malformed mail for fuzzing the pipeline: well-formed seeds and the mutations that break them.

Shared by the in-suite fuzz test (hypothesis draws the seeds and mutations) and bench/fuzz.py (a seeded
random draws 10,000). Every mutation is a pure function of (bytes, an integer): the same draw gives the
same message, so a failure is replayable.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["MUTATIONS", "mutate", "seed_messages"]

TO = "GestioneCredito.Ferrara@inps.example"


def _head(n: int, extra: str = "", subject: str = "Artigiani - richiesta estratto conto") -> str:
    return (
        f"From: Cittadino {n} <cittadino{n}@posta.example>\r\nTo: {TO}\r\nSubject: {subject}\r\n"
        f"Date: Fri, 20 Nov 2026 10:00:00 +0100\r\nMessage-ID: <fuzz-{n}@posta.example>\r\nMIME-Version: 1.0\r\n{extra}"
    )


def seed_messages(pec_samples: Path | None = None) -> list[bytes]:
    """Well-formed messages of every shape the office receives; PEC samples too when the folder exists."""
    seeds = [
        (_head(1) + "Content-Type: text/plain; charset=utf-8\r\n\r\nBuongiorno, chiedo l'estratto conto.\r\n").encode(),
        (
            _head(2, subject="=?utf-8?q?Lavoratori_domestici_-_RSSMRA80A01D548U_Mario_Rossi?=")
            + 'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n--alt\r\n'
            "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            "Colf assunta il 1=B0 ottobre.\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            "<p>Colf <b>assunta</b> il 1&deg; ottobre.</p>\r\n--alt--\r\n"
        ).encode(),
        (
            _head(3) + 'Content-Type: multipart/mixed; boundary="mix"\r\n\r\n--mix\r\nContent-Type: text/plain\r\n\r\n'
            "In allegato il modulo.\r\n--mix\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            'Content-Disposition: attachment; filename="modulo.pdf"\r\n\r\n'
            + base64.encodebytes(b"%PDF-1.4 " + bytes(range(256)) * 4).decode().replace("\n", "\r\n")
            + "--mix\r\nContent-Type: message/rfc822\r\n\r\n"
            + _head(30, subject="Messaggio inoltrato")
            + "\r\nTesto inoltrato.\r\n--mix--\r\n"
        ).encode(),
        (
            _head(4) + "Content-Type: text/html\r\n\r\n<html><body><div><p>Solo HTML &amp; niente testo</p></div>"
        ).encode(),
        (
            _head(5, "Auto-Submitted: auto-replied\r\n", subject="Risposta automatica: fuori sede")
            + "\r\nSono fuori sede.\r\n"
        ).encode(),
        (
            "From: MAILER-DAEMON@posta.example\r\nTo: " + TO + "\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n--r\r\n\r\n'
            "Non recapitato.\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\n--r--\r\n"
        ).encode(),
    ]
    if pec_samples is not None and pec_samples.is_dir():
        seeds += [p.read_bytes() for p in sorted(pec_samples.glob("*.eml"))[:4]]
    return seeds


def _truncate(raw: bytes, k: int) -> bytes:
    return raw[: k % (len(raw) + 1)]


def _bit_flip(raw: bytes, k: int) -> bytes:
    if not raw:
        return raw
    data = bytearray(raw)
    for j in range(1 + k % 8):
        pos = (k * 2654435761 + j * 40503) % len(data)
        data[pos] ^= 1 << ((k >> 3) + j) % 8
    return bytes(data)


def _break_boundaries(raw: bytes, k: int) -> bytes:
    for marker in (b"--mix", b"--alt", b"--r"):
        raw = raw.replace(marker + b"--", b"" if k % 2 else marker + b"-")
    return raw.replace(b'boundary="', b'boundary="x' if k % 3 == 0 else b'boundary="', 1)


def _bad_charset(raw: bytes, k: int) -> bytes:
    name = (b"x-unknown-8", b"utf-7", b"utf-16", b"", b'"', b"iso-8859-1\x00")[k % 6]
    return raw.replace(b"charset=utf-8", b"charset=" + name).replace(b"charset=iso-8859-1", b"charset=" + name)


def _bad_encoding(raw: bytes, k: int) -> bytes:
    cte = (b"base64", b"quoted-printable", b"x-uuencode", b"8bit")[k % 4]
    head, sep, body = raw.partition(b"\r\n\r\n")
    garbage = (b"====\r\n=ZZ=\r\n\xff\xfe", b"!!notbase64!!" * 50, b"=" * 999)[k % 3]
    return head + b"\r\nContent-Transfer-Encoding: " + cte + sep + garbage + body[: k % 200]


def _deep_nesting(raw: bytes, k: int) -> bytes:
    depth = 20 + k % 300
    head = _head(9000 + k % 1000).encode()
    opening = b"".join(b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (i, i) for i in range(depth))
    closing = b"".join(b"\r\n--n%d--\r\n" % i for i in reversed(range(depth)))
    return head + opening + b"Content-Type: text/plain\r\n\r\nprofondo\r\n" + closing


def _huge_header(raw: bytes, k: int) -> bytes:
    size = 10_000 + (k % 20) * 20_000
    line = (b"X-Lunga: " + b"a" * size) if k % 2 else (b"Subject: " + b"=?utf-8?q?" + b"=C3=A8" * (size // 6) + b"?=")
    return line + b"\r\n" + raw


def _nuls(raw: bytes, k: int) -> bytes:
    data = bytearray(raw)
    for j in range(1 + k % 16):
        if data:
            data.insert((k * 7919 + j * 104729) % len(data), 0)
    return bytes(data)


def _html_bomb(raw: bytes, k: int) -> bytes:
    unit = (b"<", b"<a ", b"<!--", b"<div>", b"&amp;", b"<script>")[k % 6]
    return _head(8000 + k % 1000).encode() + b"Content-Type: text/html\r\n\r\n" + unit * (20_000 + k % 50_000)


def _crlf_mix(raw: bytes, k: int) -> bytes:
    return raw.replace(b"\r\n", (b"\n", b"\r", b"\r\r\n", b"\n\r")[k % 4])


def _duplicate_headers(raw: bytes, k: int) -> bytes:
    head, sep, body = raw.partition(b"\r\n\r\n")
    return head + b"\r\n" + head * (1 + k % 5) + sep + body


MUTATIONS: dict[str, Callable[[bytes, int], bytes]] = {
    "truncate": _truncate,
    "bit_flip": _bit_flip,
    "break_boundaries": _break_boundaries,
    "bad_charset": _bad_charset,
    "bad_encoding": _bad_encoding,
    "deep_nesting": _deep_nesting,
    "huge_header": _huge_header,
    "nuls": _nuls,
    "html_bomb": _html_bomb,
    "crlf_mix": _crlf_mix,
    "duplicate_headers": _duplicate_headers,
}


def mutate(raw: bytes, steps: Sequence[tuple[str, int]]) -> bytes:
    """`raw` with each named mutation applied in turn."""
    for name, k in steps:
        raw = MUTATIONS[name](raw, k)
    return raw
