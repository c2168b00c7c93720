"""The outbox sender against a real SMTP sink: retries with backoff, permanent failures, every attempt recorded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.config import Config
from daemon.core.pipeline import InboundItem
from daemon.demo.smtp_sink import SmtpSink
from daemon.outbound.sender import CLAIM_BATCH, OutboxSender
from daemon.outbound.smtp import SendResult, SmtpConnection
from daemon.service import Service
from storage.models import Alert, Outbox, OutboxAttempt, TicketEvent
from tests.support.stack import citizen_mail, stack_config


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    s = SmtpSink("127.0.0.1", 0)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def setup(shipped_config: Config, sink: SmtpSink, tmp_path: Path) -> tuple[Service, OutboxSender, Clock, Config]:
    # One email per ticket (the acknowledgement): the notices to referents have their own tests.
    cfg = stack_config(shipped_config, tmp_path / "data", imap_port=1, smtp_port=sink.port, mailboxes=[], notices=False)
    outbound = cfg.outbound.model_copy(update={"retry_min_seconds": 60, "retry_max_seconds": 600, "max_attempts": 4})
    cfg = cfg.model_copy(update={"outbound": outbound})
    clock = Clock()
    service = Service(cfg, clock=clock)
    address = cfg.mailbox("fe-credito").address
    service.ingest([InboundItem(raw=citizen_mail(address, 1), mailbox_id="fe-credito")])
    return service, OutboxSender(service.session_factory, cfg, clock=clock), clock, cfg


def _row(service: Service) -> Outbox:
    with service.session_factory() as s:
        return s.execute(select(Outbox)).scalar_one()


def _attempts(service: Service) -> list[tuple[str, int | None]]:
    with service.session_factory() as s:
        return [(a.result, a.smtp_code) for a in s.execute(select(OutboxAttempt).order_by(OutboxAttempt.id)).scalars()]


def test_temporary_failure_waits_with_backoff_then_delivers_once(setup, sink: SmtpSink) -> None:
    service, sender, clock, _cfg = setup
    sink.set_mode("tempfail")
    assert sender.send_due() == 1
    row = _row(service)
    assert row.status == "pending" and row.attempts == 1
    assert "errore temporaneo" in (row.last_error or "")
    assert row.next_attempt_at == clock.now + timedelta(seconds=60)
    assert sender.send_due() == 0  # not due yet
    clock.now += timedelta(seconds=61)
    sender.send_due()
    assert _row(service).next_attempt_at == clock.now + timedelta(seconds=120)  # doubled
    sink.set_mode("accept")
    clock.now += timedelta(seconds=121)
    assert sender.send_due() == 1
    assert _row(service).status == "sent"
    assert _attempts(service) == [("temporary", 451), ("temporary", 451), ("sent", 250)]
    assert len(sink.messages) == 1
    assert sink.messages[0].message_id == _row(service).message_id


def test_server_down_is_temporary_and_recorded(setup, sink: SmtpSink) -> None:
    service, sender, _clock, _cfg = setup
    sink.set_mode("down")
    sender.send_due()
    row = _row(service)
    assert row.status == "pending"
    assert "connessione SMTP non riuscita" in (row.last_error or "")
    assert _attempts(service) == [("temporary", None)]


def test_permanent_refusal_fails_at_once_and_tells_admin_and_ticket(setup, sink: SmtpSink) -> None:
    service, sender, _clock, _cfg = setup
    sink.set_mode("permfail")
    sender.send_due()
    row = _row(service)
    assert row.status == "failed" and row.attempts == 1
    assert _attempts(service) == [("permanent", 550)]
    with service.session_factory() as s:
        alerts = list(s.execute(select(Alert).where(Alert.kind == "invio_fallito")).scalars())
        events = list(s.execute(select(TicketEvent).where(TicketEvent.kind == "email_non_recapitata")).scalars())
    assert len(alerts) == 1 and alerts[0].ticket_id == row.ticket_id
    assert len(events) == 1 and events[0].ticket_id == row.ticket_id


def test_gives_up_after_max_attempts(setup, sink: SmtpSink) -> None:
    service, sender, clock, cfg = setup
    sink.set_mode("tempfail")
    for _ in range(cfg.outbound.max_attempts):
        sender.send_due()
        clock.now += timedelta(seconds=cfg.outbound.retry_max_seconds + 1)
    row = _row(service)
    assert row.status == "failed" and row.attempts == cfg.outbound.max_attempts
    assert sender.send_due() == 0
    assert sink.messages == []


class _Sessions:
    """The sender's SMTP connections, counted; `closing_at`: sends the server answers 421 and hangs up."""

    def __init__(self, cfg: Config, closing_at: frozenset[int] = frozenset()) -> None:
        self.cfg = cfg
        self.closing_at = closing_at
        self.opened = self.closed = self.sends = 0

    def __call__(self, profile_id: str) -> SmtpConnection:
        sessions = self

        class Counted(SmtpConnection):
            def open(self) -> None:
                super().open()
                sessions.opened += 1

            def send(self, sender: str, recipients: list[str], raw: bytes) -> SendResult:
                sessions.sends += 1
                if sessions.sends in sessions.closing_at:
                    assert self._smtp is not None
                    self._smtp.close()
                    return SendResult("temporary", 421, "4.3.2 chiusura del canale")
                return super().send(sender, recipients, raw)

            def close(self) -> None:
                if self._smtp is not None:
                    sessions.closed += 1
                super().close()

        return Counted(self.cfg.smtp_profile(profile_id))


def _more_mail(service: Service, cfg: Config, count: int) -> None:
    address = cfg.mailbox("fe-credito").address
    service.ingest([InboundItem(raw=citizen_mail(address, n), mailbox_id="fe-credito") for n in range(2, 2 + count)])


def test_one_smtp_session_serves_every_claim_while_there_is_work(setup, sink: SmtpSink) -> None:
    service, _sender, clock, cfg = setup
    _more_mail(service, cfg, 2 * CLAIM_BATCH + 4)
    sessions = _Sessions(cfg)
    sender = OutboxSender(service.session_factory, cfg, clock=clock, connect=sessions)
    total = 2 * CLAIM_BATCH + 5
    assert sender.send_due() == total  # three claims, then nothing more is due
    assert (sessions.opened, sessions.closed) == (1, 1)  # closed once idle
    with service.session_factory() as s:
        assert set(s.execute(select(Outbox.status)).scalars()) == {"sent"}
    assert _attempts(service) == [("sent", 250)] * total
    assert len(sink.messages) == total
    assert sender.send_due() == 0
    assert sessions.opened == 1


def test_a_session_carries_at_most_the_profile_s_limit_of_messages(setup, sink: SmtpSink) -> None:
    service, _sender, clock, cfg = setup
    _more_mail(service, cfg, 4)  # 5 acknowledgements in all
    profiles = tuple(p.model_copy(update={"max_messages_per_connection": 2}) for p in cfg.smtp_profiles)
    cfg = cfg.model_copy(update={"smtp_profiles": profiles})
    sessions = _Sessions(cfg)
    sender = OutboxSender(service.session_factory, cfg, clock=clock, connect=sessions)
    assert sender.send_due() == 5
    assert (sessions.opened, sessions.closed) == (3, 3)  # 2 + 2 + 1
    assert _attempts(service) == [("sent", 250)] * 5
    assert len(sink.messages) == 5


def test_421_ends_the_session_and_the_rest_of_the_claim_goes_on_a_new_one(setup, sink: SmtpSink) -> None:
    service, _sender, clock, cfg = setup
    _more_mail(service, cfg, 4)
    sessions = _Sessions(cfg, closing_at=frozenset({2}))
    sender = OutboxSender(service.session_factory, cfg, clock=clock, connect=sessions)
    sender.send_due()
    assert (sessions.opened, sessions.closed) == (2, 2)
    with service.session_factory() as s:
        rows = list(s.execute(select(Outbox).order_by(Outbox.id)).scalars())
    assert [(r.status, r.attempts) for r in rows] == [("sent", 1), ("pending", 1)] + [("sent", 1)] * 3
    assert rows[1].next_attempt_at == clock.now + timedelta(seconds=60)
    assert sorted(_attempts(service)) == sorted([("sent", 250)] * 4 + [("temporary", 421)])
    assert len(sink.messages) == 4


def test_stop_mid_claim_releases_the_rest_due_at_once(setup, sink: SmtpSink) -> None:
    service, _sender, clock, cfg = setup
    _more_mail(service, cfg, 4)
    stop = threading.Event()
    sessions = _Sessions(cfg)
    real = sessions.__call__

    def connect(profile_id: str) -> SmtpConnection:
        conn = real(profile_id)
        send = conn.send

        def send_then_stop(sender: str, recipients: list[str], raw: bytes) -> SendResult:
            stop.set()  # asked to stop while the first message is out
            return send(sender, recipients, raw)

        conn.send = send_then_stop  # type: ignore[method-assign]
        return conn

    sender = OutboxSender(service.session_factory, cfg, clock=clock, connect=connect)
    sender.send_due(stop)
    assert (sessions.opened, sessions.closed) == (1, 1)
    with service.session_factory() as s:
        rows = list(s.execute(select(Outbox).order_by(Outbox.id)).scalars())
    assert [(r.status, r.attempts) for r in rows] == [("sent", 1)] + [("pending", 0)] * 4
    assert all(r.next_attempt_at == clock.now for r in rows[1:])  # not held until the lease ends
    assert _attempts(service) == [("sent", 250)]
    assert len(sink.messages) == 1
