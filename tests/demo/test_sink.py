"""The local SMTP sink: a real smtplib exchange, the spool, the simulated outages and the CLI."""

from __future__ import annotations

import hashlib
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from daemon.demo.smtp_sink import SmtpSink

ROOT = Path(__file__).resolve().parents[2]


def _mail(message_id: str = "<abc.123@sportello.example>", subject: str = "Prova") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "sportello@inps.example"
    msg["To"] = "cittadino@example.org"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content("Buongiorno,\n.riga che inizia con un punto\nsaluti\n")
    return msg


def _send(port: int, msg: EmailMessage, rcpts: list[str]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(msg, from_addr="sportello@inps.example", to_addrs=rcpts)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    with SmtpSink("127.0.0.1", 0, spool_dir=tmp_path / "spool") as s:
        yield s


def test_accept_records_the_message_and_spools_it(sink: SmtpSink, tmp_path: Path) -> None:
    assert sink.port > 0
    before = time.time()
    _send(sink.port, _mail(), ["a@example.org", "b@example.org"])
    assert sink.wait_for(1, 5)

    [m] = sink.messages
    assert m.mail_from == "sportello@inps.example"
    assert m.rcpt_tos == ("a@example.org", "b@example.org")
    assert m.message_id == "abc.123@sportello.example"
    assert b"Subject: Prova" in m.raw
    assert b"\r\n.riga che inizia con un punto\r\n" in m.raw  # dot-unstuffed, CRLF as on the wire
    assert before <= m.accepted_at <= time.time()

    spool = tmp_path / "spool"
    files = sorted(spool.glob("*.eml"))
    assert files == [m.path]
    assert m.path is not None
    assert m.path.name == f"000001-{hashlib.sha1(m.raw).hexdigest()}.eml"
    assert m.path.read_bytes() == m.raw
    assert m.path.stat().st_mtime == pytest.approx(m.accepted_at, abs=0.01)
    assert not [p for p in spool.iterdir() if p.suffix != ".eml"]  # no temporary file left behind

    _send(sink.port, _mail("<second@sportello.example>"), ["c@example.org"])
    assert sink.wait_for(2, 5)
    assert [p.name[:6] for p in sorted(spool.glob("*.eml"))] == ["000001", "000002"]


def test_message_without_message_id() -> None:
    with SmtpSink() as sink:
        msg = _mail()
        del msg["Message-ID"]
        _send(sink.port, msg, ["a@example.org"])
        assert sink.wait_for(1, 5)
        assert sink.messages[0].message_id is None
        assert sink.messages[0].path is None


def test_tempfail_answers_451_at_data_and_records_nothing(sink: SmtpSink, tmp_path: Path) -> None:
    sink.set_mode("tempfail")
    with pytest.raises(smtplib.SMTPDataError) as err:
        _send(sink.port, _mail(), ["a@example.org"])
    assert err.value.smtp_code == 451
    assert b"sink in errore temporaneo" in err.value.smtp_error
    assert sink.messages == []
    assert list((tmp_path / "spool").glob("*.eml")) == []


def test_permfail_refuses_the_recipient(sink: SmtpSink) -> None:
    sink.set_mode("permfail")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
        _send(sink.port, _mail(), ["a@example.org"])
    code, text = err.value.recipients["a@example.org"]
    assert code == 550
    assert b"destinatario inesistente" in text
    assert sink.messages == []


def test_down_refuses_connections_then_accepts_again_on_the_same_port(sink: SmtpSink) -> None:
    port = sink.port
    sink.set_mode("down")
    with pytest.raises(ConnectionRefusedError):
        _send(port, _mail(), ["a@example.org"])
    sink.set_mode("down")  # idempotent
    sink.set_mode("accept")
    assert sink.port == port
    _send(port, _mail(), ["a@example.org"])
    assert sink.wait_for(1, 5)
    assert len(sink.messages) == 1


def test_wait_for_is_bounded_and_stop_is_idempotent() -> None:
    sink = SmtpSink()
    sink.start()
    started = time.monotonic()
    assert sink.wait_for(1, 0.2) is False
    assert time.monotonic() - started < 2
    sink.stop()
    sink.stop()
    with pytest.raises(ConnectionRefusedError):
        _send(sink.port, _mail(), ["a@example.org"])


def test_cli_prints_the_port_spools_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    spool = tmp_path / "cli-spool"
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.demo.smtp_sink", "--host", "127.0.0.1", "--port", "0", "--spool", str(spool)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("sink in ascolto su 127.0.0.1 ")
        port = int(line.split()[-1])

        _send(port, _mail(), ["a@example.org"])
        deadline = time.monotonic() + 10
        while not list(spool.glob("*.eml")) and time.monotonic() < deadline:
            time.sleep(0.05)
        [spooled] = list(spool.glob("*.eml"))
        assert b"Message-ID: <abc.123@sportello.example>" in spooled.read_bytes()

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err.decode()
        assert out == b""  # exactly one stdout line, already read
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
