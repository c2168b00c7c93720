"""The message parser on what real mail looks like: encodings, odd headers, hostile attachment names."""

from __future__ import annotations

import pytest

from daemon.mail.message import UnparseableMessage, parse_message, safe_filename


def test_encoded_headers_and_quoted_printable_body() -> None:
    raw = (
        b"From: =?utf-8?q?Rossi=2C_Mario?= <Mario.Rossi@Posta.Example>\r\n"
        b"To: GestioneCredito.Ferrara@inps.example, altro@inps.example\r\n"
        b"Subject: =?utf-8?b?TGF2b3JhdG9yaSBkb21lc3RpY2kgLSBww6xjY29sYQ==?=\r\n"
        b" =?utf-8?q?_richiesta?=\r\n"
        b"Message-ID: <abc@posta.example>\r\n"
        b"In-Reply-To: <prev@sportello.example>\r\n"
        b"References: <first@x> <prev@sportello.example>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Citt=C3=A0 di Ferrara\r\n"
    )
    msg = parse_message(raw)
    assert msg.sender == "mario.rossi@posta.example"
    assert msg.sender_name == "Rossi, Mario"
    assert msg.subject == "Lavoratori domestici - pìccola richiesta"
    assert msg.to == ("gestionecredito.ferrara@inps.example", "altro@inps.example")
    assert msg.message_id == "abc@posta.example"
    assert msg.in_reply_to == ("prev@sportello.example",)
    assert msg.references == ("first@x", "prev@sportello.example")
    assert "Città di Ferrara" in msg.text_body


def test_html_only_body_becomes_text_and_attachments_are_listed_safely() -> None:
    raw = (
        b"From: a@b.example\r\nSubject: allegati\r\nMessage-ID: <m@b.example>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p>Buongiorno<br>allego<script>alert(1)</script> il documento</p>\r\n"
        b"--XX\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="../../etc/passwd"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n"
        b"--XX--\r\n"
    )
    msg = parse_message(raw)
    assert "Buongiorno" in msg.text_body and "alert" not in msg.text_body
    assert [a.filename for a in msg.attachments] == ["passwd"]
    assert msg.attachments[0].size == len(b"%PDF-1.4")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
        ("/etc/shadow", "shadow"),
        ("...", "allegato"),
        ("a\x00b\x1bc.pdf", "abc.pdf"),
        ("x" * 500 + ".pdf", "x" * 200 + ".pdf"),
    ],
)
def test_attachment_names_cannot_escape_or_hide(name: str, expected: str) -> None:
    safe = safe_filename(name)
    assert "/" not in safe and "\\" not in safe and not safe.startswith(".")
    if len(expected) > 200:
        assert safe.endswith(".pdf") and len(safe) <= 255
    else:
        assert safe == expected


@pytest.mark.parametrize(
    "raw",
    [b"", b"   \r\n", b"\x00\x01binary garbage", b"not a header line\r\n\r\nbody"],
)
def test_garbage_is_unparseable_with_a_reason(raw: bytes) -> None:
    with pytest.raises(UnparseableMessage) as info:
        parse_message(raw)
    assert info.value.reason in {"vuoto", "intestazioni_illeggibili"}


def test_mbox_separator_line_is_tolerated() -> None:
    raw = b"From MAILER-DAEMON Fri Jul  8 12:08:34 2011\nFrom: a@b.example\nSubject: ciao\n\ntesto\n"
    msg = parse_message(raw)
    assert msg.subject == "ciao" and msg.sender == "a@b.example"
