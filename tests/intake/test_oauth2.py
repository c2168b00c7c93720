"""XOAUTH2 with tokens from a local OAuth2 server: IMAP against Dovecot (oauth2 passdb, token introspection),
SMTP against the sink; a token is renewed when it expires and when a server refuses it."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from daemon.config import Config, ImapSettings, OAuth2Settings, SmtpProfile
from daemon.demo.smtp_sink import SmtpSink
from daemon.intake.imap import FetchedMessage, ImapWorker
from daemon.intake.oauth2 import TokenProvider, token_provider
from daemon.outbound.smtp import SmtpConnection
from tests.servers.dovecot import DOVECOT_BIN, start_dovecot
from tests.support.oauth_server import OAuthServer
from tests.support.stack import citizen_mail, wait_until

USER = "fe-credito"
SECRET_ENV = "SPORTELLO_TEST_OAUTH_SECRET"


@pytest.fixture
def oauth(monkeypatch: pytest.MonkeyPatch) -> Iterator[OAuthServer]:
    monkeypatch.setenv(SECRET_ENV, "segreto-di-prova")
    server = OAuthServer("sportello", "segreto-di-prova", USER).start()
    try:
        yield server
    finally:
        server.stop()


def _settings(server: OAuthServer, **extra: object) -> OAuth2Settings:
    return OAuth2Settings(
        provider="generic",
        client_id="sportello",
        client_secret_env=SECRET_ENV,
        token_url=f"{server.url}/token",
        refresh_before_seconds=60,
        **extra,  # type: ignore[arg-type]
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_imap_xoauth2_on_dovecot_renews_the_token_after_expiry_and_after_a_refusal(
    oauth: OAuthServer, tmp_path: Path, shipped_config: Config
) -> None:
    if not DOVECOT_BIN.exists():
        pytest.skip("dovecot-imapd non installato (/usr/sbin/dovecot mancante)")
    dovecot = start_dovecot(tmp_path / "dovecot", [USER], oauth2_introspection=f"{oauth.url}/introspect")
    clock = FakeClock()
    tokens: TokenProvider = token_provider(_settings(oauth), clock)
    settings = ImapSettings(
        host="127.0.0.1",
        port=dovecot.port,
        security="plain",
        username=USER,
        auth="oauth2",
        oauth2=_settings(oauth),
        idle_timeout_seconds=5,
    )
    mailbox = shipped_config.mailbox(USER).model_copy(update={"imap": settings})
    received: list[bytes] = []

    def handler(batch: Sequence[FetchedMessage]) -> None:
        received.extend(m.raw for m in batch)

    stop = threading.Event()
    worker = ImapWorker(
        mailbox, handler, stop, max_message_bytes=1 << 20, reconnect_min=0.2, reconnect_max=0.5, tokens=tokens
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    try:
        dovecot.append(USER, citizen_mail(mailbox.address, 1))
        thread.start()
        assert wait_until(lambda: len(received) == 1, 30), dovecot.log_path.read_text()[-2000:]
        assert oauth.grants == ["client_credentials"] and worker.sessions == 1

        # The token expires: the server no longer accepts it, and the next login brings a new one.
        clock.now += 3600
        oauth.revoke_all()
        dovecot.restart()
        dovecot.append(USER, citizen_mail(mailbox.address, 2))
        assert wait_until(lambda: len(received) == 2, 30), dovecot.log_path.read_text()[-2000:]
        assert oauth.grants == ["client_credentials"] * 2

        # Refused while still valid for us (revoked): the login is retried at once with a new token.
        oauth.revoke_all()
        sessions = worker.sessions
        dovecot.restart()
        dovecot.append(USER, citizen_mail(mailbox.address, 3))
        assert wait_until(lambda: len(received) == 3, 30), dovecot.log_path.read_text()[-2000:]
        assert oauth.grants == ["client_credentials"] * 3
        assert worker.sessions == sessions + 1  # the same connection attempt, not a reconnect later
        assert "method=XOAUTH2" in dovecot.log_path.read_text()
    finally:
        stop.set()
        thread.join(timeout=10)
        dovecot.close()


def test_a_refresh_token_is_used_and_replaced_when_the_endpoint_rotates_it(
    oauth: OAuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPORTELLO_TEST_REFRESH", oauth.refresh_token)
    clock = FakeClock()
    tokens = token_provider(_settings(oauth, refresh_token_env="SPORTELLO_TEST_REFRESH"), clock)
    first = tokens.token()
    assert tokens.token() == first  # reused while valid
    clock.now += 3600 - 59  # within a minute of the expiry: renewed beforehand
    second = tokens.token()
    assert second != first and oauth.grants == ["refresh_token", "refresh_token"]
    assert oauth.user_of(second) == USER


def test_smtp_xoauth2_against_the_sink_with_a_new_token_after_a_refusal(oauth: OAuthServer, tmp_path: Path) -> None:
    sink = SmtpSink("127.0.0.1", 0, xoauth2=lambda user, token: oauth.user_of(token) == user)
    sink.start()
    try:
        profile = SmtpProfile(
            id="m365",
            host="127.0.0.1",
            port=sink.port,
            security="plain",
            username=USER,
            auth="oauth2",
            oauth2=_settings(oauth),
        )
        tokens = token_provider(profile.oauth2)  # type: ignore[arg-type]
        raw = citizen_mail("x@posta.example", 5)
        for _ in range(2):
            conn = SmtpConnection(profile, tokens=tokens)
            conn.open()
            assert conn.send("a@inps.example", ["x@posta.example"], raw).result == "sent"
            conn.close()
            oauth.revoke_all()  # the next session's first try is refused
        assert len(sink.messages) == 2 and sink.logins == [USER, USER]
        assert oauth.grants == ["client_credentials", "client_credentials"]
        # Without a valid token nothing is accepted.
        unauthenticated = SmtpProfile(id="x", host="127.0.0.1", port=sink.port, security="plain")
        conn = SmtpConnection(unauthenticated)
        conn.open()
        assert conn.send("a@inps.example", ["x@posta.example"], raw).result != "sent"
        conn.close()
    finally:
        sink.stop()


def test_the_outbox_sender_logs_in_with_xoauth2_and_its_sessions_share_one_token(
    oauth: OAuthServer, shipped_config: Config, tmp_path: Path
) -> None:
    from daemon.core.pipeline import InboundItem
    from daemon.outbound.sender import OutboxSender
    from daemon.service import Service
    from tests.support.stack import stack_config

    sink = SmtpSink("127.0.0.1", 0, xoauth2=lambda user, token: oauth.user_of(token) == user)
    sink.start()
    try:
        cfg = stack_config(
            shipped_config, tmp_path / "data", imap_port=1, smtp_port=sink.port, mailboxes=[], notices=False
        )
        oauth2 = {"auth": "oauth2", "username": USER, "oauth2": _settings(oauth)}
        cfg = cfg.model_copy(update={"smtp_profiles": tuple(p.model_copy(update=oauth2) for p in cfg.smtp_profiles)})
        service = Service(cfg)
        try:
            sender = OutboxSender(service.session_factory, cfg)
            address = cfg.mailbox(USER).address
            for n in (1, 2):
                service.ingest([InboundItem(raw=citizen_mail(address, n), mailbox_id=USER)])
                assert sender.send_due() == 1
            assert len(sink.messages) == 2 and sink.logins == [USER, USER]
            assert oauth.grants == ["client_credentials"]  # the second session reused the token
        finally:
            service.close()
    finally:
        sink.stop()
