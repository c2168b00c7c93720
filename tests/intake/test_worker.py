"""The IMAP worker against a real Dovecot: move only after the handler returns, oversized messages,
UIDVALIDITY changes, polling without IDLE."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from daemon.config import Config
from daemon.intake.imap import FetchedMessage
from tests.support.imap_worker import USER, _run, _worker
from tests.support.stack import citizen_mail, wait_until


def test_messages_move_only_after_the_handler_returns(shipped_config: Config, dovecot) -> None:
    for n in range(3):
        dovecot.append(USER, citizen_mail("x@inps.example", n))
    stop = threading.Event()
    calls: list[int] = []

    def failing(batch: Sequence[FetchedMessage]) -> None:
        calls.append(len(batch))
        raise RuntimeError("database non disponibile")

    worker = _worker(shipped_config, dovecot.port, failing, stop)
    t = _run(worker)
    try:
        assert wait_until(lambda: len(calls) >= 2, 20), "il worker deve riprovare dopo l'errore"
        assert len(dovecot.list_uids(USER, "INBOX")) == 3, "nulla si sposta se il gestore non ha registrato"
        assert dovecot.list_uids(USER, "Elaborati") == []
    finally:
        stop.set()
        t.join(10)

    got: list[FetchedMessage] = []
    stop = threading.Event()
    worker = _worker(shipped_config, dovecot.port, got.extend, stop)
    t = _run(worker)
    try:
        assert wait_until(lambda: len(dovecot.list_uids(USER, "Elaborati")) == 3, 20)
        assert dovecot.list_uids(USER, "INBOX") == []
        assert len(got) == 3 and all(m.uidvalidity and m.internaldate for m in got)
    finally:
        stop.set()
        t.join(10)


def test_oversized_message_is_fetched_as_header_only(shipped_config: Config, dovecot) -> None:
    big = citizen_mail("x@inps.example", 1, attachment=b"x" * 300_000)
    dovecot.append(USER, big)
    got: list[FetchedMessage] = []
    stop = threading.Event()
    worker = _worker(shipped_config, dovecot.port, got.extend, stop, max_message_bytes=100_000)
    t = _run(worker)
    try:
        assert wait_until(lambda: len(got) == 1, 20)
    finally:
        stop.set()
        t.join(10)
    msg = got[0]
    assert msg.oversized and msg.size > 300_000
    assert len(msg.raw) < 5_000 and b"Subject:" in msg.raw
    assert len(dovecot.list_uids(USER, "Elaborati")) == 1, "l'originale resta intero sul server"


def test_uidvalidity_change_rescans_the_folder(shipped_config: Config, dovecot) -> None:
    folder = "Arrivi"
    raws = [citizen_mail("x@inps.example", n) for n in range(2)]
    for raw in raws:
        dovecot.append(USER, raw, folder=folder)
    got: list[FetchedMessage] = []
    stop = threading.Event()
    worker = _worker(shipped_config, dovecot.port, got.extend, stop, folder=folder, idle=False)
    t = _run(worker)
    try:
        assert wait_until(lambda: len(got) == 2, 20)
        first_validity = worker.uidvalidity
        # The admin deletes and recreates the folder: new UIDVALIDITY, UIDs start again from 1.
        with dovecot.client(USER) as c:
            c.delete_folder(folder)
            c.create_folder(folder)
        dovecot.append(USER, raws[0], folder=folder)
        assert wait_until(lambda: len(got) == 3, 20), "il messaggio con UID già visto va comunque letto"
        assert worker.uidvalidity != first_validity
        assert got[-1].uid == 1
    finally:
        stop.set()
        t.join(10)


def test_unreadable_mailbox_raises_one_alert_per_outage(shipped_config: Config, dovecot) -> None:
    outages: list[tuple[str, str]] = []
    stop = threading.Event()
    worker = _worker(
        shipped_config,
        dovecot.port,
        lambda _batch: None,
        stop,
        reconnect_min=0.05,
        reconnect_max=0.1,
        password="password sbagliata",
        alert_after=0.3,
        on_outage=lambda box, error: outages.append((box, error)),
    )
    t = _run(worker)
    try:
        assert wait_until(lambda: len(outages) == 1, 20)
        stop.wait(1.0)
        assert len(outages) == 1, "un solo avviso per interruzione"
        box, error = outages[0]
        assert box == USER
        assert "LoginError" in error or "AUTHENTICATIONFAILED" in error.upper()
        worker.password = "demo"  # the admin fixes the password: the worker reconnects by itself
        assert wait_until(worker.connected.is_set, 20)
    finally:
        stop.set()
        t.join(10)
