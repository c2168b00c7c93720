"""Delivery by the mail server over LMTP: one reply per recipient, 250 only once the message is recorded,
451 while the database or the archive is unavailable (and the retry records it once), 552 over the size
limit; `sportello ingest -` with the exit codes a mail server's pipe understands."""

from __future__ import annotations

import shutil
import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from daemon.cli.main import app
from daemon.config import Config, LmtpConfig
from daemon.demo.smtp_sink import SmtpSink
from storage.models import InboundMessage
from tests.support.cli import project_copy
from tests.support.paths import ROOT
from tests.support.stack import citizen_mail, running_service, stack_config, wait_until
from tests.support.tcp_proxy import TcpProxy

CREDITO = "GestioneCredito.Ferrara@inps.example"
ANAGRAFICA = "AnagraficaFlussi.Ferrara@inps.example"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink("127.0.0.1", 0) as server:
        yield server


def _lmtp_config(base: Config, workdir: Path, smtp_port: int, *, max_bytes: int | None = None) -> Config:
    cfg = stack_config(base, workdir, imap_port=1, smtp_port=smtp_port, mailboxes=[])
    intake = cfg.intake if max_bytes is None else cfg.intake.model_copy(update={"max_message_bytes": max_bytes})
    return cfg.model_copy(
        update={
            "lmtp": LmtpConfig(listen=f"127.0.0.1:{_free_port()}"),
            "intake": intake,
            "outbound": cfg.outbound.model_copy(update={"sender_process": False}),
        }
    )


def _connect(cfg: Config) -> smtplib.LMTP:
    assert cfg.lmtp is not None
    host, port = cfg.lmtp.listen.rsplit(":", 1)

    def listening() -> bool:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            return False
        return True

    assert wait_until(listening, 15), "il servizio LMTP non è in ascolto"
    client = smtplib.LMTP(host, int(port), timeout=30)
    code, _ = client.ehlo()  # smtplib's LMTP sends LHLO
    assert code == 250
    return client


def _deliver(client: smtplib.LMTP, raw: bytes, recipients: list[str]) -> tuple[list[int], list[int]]:
    """One LMTP transaction: the reply to each RCPT, then the reply for each accepted recipient."""
    assert client.mail("cittadino@posta.example")[0] == 250
    at_rcpt = [client.rcpt(r)[0] for r in recipients]
    accepted = sum(1 for code in at_rcpt if code == 250)
    first = client.data(raw.replace(b"\n", b"\r\n"))[0]  # on the wire as a mail server sends it
    after_data = [first] + [client.getreply()[0] for _ in range(accepted - 1)]
    return at_rcpt, after_data


def _recorded(url: str) -> list[tuple[str, str, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(InboundMessage.mailbox, InboundMessage.source, InboundMessage.raw_sha256).order_by(
                    InboundMessage.id
                )
            )
            return [tuple(r) for r in rows]  # type: ignore[misc]
    finally:
        engine.dispose()


def test_one_transaction_records_one_message_per_mailbox_and_refuses_only_the_unknown_recipient(
    shipped_config: Config, sink: SmtpSink, tmp_path: Path
) -> None:
    cfg = _lmtp_config(shipped_config, tmp_path, sink.port)
    with running_service(cfg):
        client = _connect(cfg)
        at_rcpt, after_data = _deliver(
            client, citizen_mail(CREDITO, 1), [CREDITO, "nessuno@inps.example", ANAGRAFICA.upper()]
        )
        # The replies are read before anything else: a 250 promises the message is already recorded.
        recorded = _recorded(cfg.database_url)
        client.quit()
        assert at_rcpt == [250, 550, 250]
        assert after_data == [250, 250]
        assert sorted((box, source) for box, source, _ in recorded) == [
            ("fe-anagrafica", "lmtp"),
            ("fe-credito", "lmtp"),
        ]
        # Each mailbox answers its requester as it would for mail read over IMAP.
        assert sink.wait_for(1, 15)


def test_a_message_over_the_size_limit_gets_552_for_each_recipient_and_is_not_recorded(
    shipped_config: Config, sink: SmtpSink, tmp_path: Path
) -> None:
    cfg = _lmtp_config(shipped_config, tmp_path, sink.port, max_bytes=4096)
    with running_service(cfg):
        client = _connect(cfg)
        big = citizen_mail(CREDITO, 2, attachment=b"x" * 20_000)
        _, after_data = _deliver(client, big, [CREDITO, ANAGRAFICA])
        # The session stays usable: a small message goes through afterwards.
        _, small = _deliver(client, citizen_mail(CREDITO, 3), [CREDITO])
        client.quit()
    assert after_data == [552, 552]
    assert small == [250]
    assert [box for box, _, _ in _recorded(cfg.database_url)] == ["fe-credito"]


def test_archive_unavailable_gives_451_and_the_retry_records_the_message_once(
    shipped_config: Config, sink: SmtpSink, tmp_path: Path
) -> None:
    cfg = _lmtp_config(shipped_config, tmp_path, sink.port)
    archive = cfg.archive_dir
    with running_service(cfg):
        client = _connect(cfg)
        assert _deliver(client, citizen_mail(CREDITO, 1), [CREDITO])[1] == [250]
        shutil.rmtree(archive)
        archive.write_text("non una cartella")  # the archive's disk is gone
        raw = citizen_mail(CREDITO, 2)
        assert _deliver(client, raw, [CREDITO, ANAGRAFICA])[1] == [451, 451]
        archive.unlink()
        archive.mkdir()
        assert _deliver(client, raw, [CREDITO, ANAGRAFICA])[1] == [250, 250]
        client.quit()
    assert len(_recorded(cfg.database_url)) == 3


def test_database_outage_in_the_middle_of_a_session(
    shipped_config: Config, sink: SmtpSink, tmp_path: Path, pg_schema_url: str
) -> None:
    parts = urlsplit(pg_schema_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    proxy.up()
    try:
        via_proxy = pg_schema_url.replace(f"@{parts.netloc.split('@')[-1]}", f"@127.0.0.1:{proxy.port}", 1)
        cfg = _lmtp_config(shipped_config, tmp_path, sink.port)
        cfg = cfg.model_copy(update={"database": cfg.database.model_copy(update={"url": via_proxy})})
        first, second, third = (citizen_mail(CREDITO, n) for n in (1, 2, 3))
        with running_service(cfg):
            client = _connect(cfg)
            assert _deliver(client, first, [CREDITO])[1] == [250]
            proxy.down()
            assert _deliver(client, second, [CREDITO, ANAGRAFICA])[1] == [451, 451]
            proxy.up()
            # The mail server delivers the deferred message again; then a new one.
            assert _deliver(client, second, [CREDITO, ANAGRAFICA])[1] == [250, 250]
            assert _deliver(client, third, [CREDITO])[1] == [250]
            client.quit()
        rows = _recorded(pg_schema_url)
    finally:
        proxy.down()
    assert len(rows) == 4
    assert len(set(rows)) == 4, "nessun messaggio registrato due volte"


runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return project_copy(tmp_path, monkeypatch, database=False)


def _ingest_stdin(workdir: Path, database_url: str, mailbox: str, raw: bytes) -> tuple[int, str]:
    result = runner.invoke(
        app,
        ["ingest", "-", "--mailbox", mailbox, "--config", str(workdir / "config.yaml")],
        input=raw,
        env={"SPORTELLO_DATABASE_URL": database_url},
    )
    return result.exit_code, result.output


def test_ingest_from_standard_input_exits_75_when_the_database_is_unavailable(workdir: Path) -> None:
    raw = citizen_mail(CREDITO, 1)
    not_a_database = workdir / "db-is-a-directory"
    not_a_database.mkdir()
    code, output = _ingest_stdin(workdir, f"sqlite:///{not_a_database}", "fe-credito", raw)
    assert code == 75, output
    assert "riprovare" in output

    url = f"sqlite:///{workdir / 'db.sqlite'}"
    code, output = _ingest_stdin(workdir, url, "fe-credito", raw)
    assert code == 0, output
    code, output = _ingest_stdin(workdir, url, "fe-credito", raw)  # the mail server's retry
    assert code == 0, output
    assert "già ricevuto" in output
    assert [(box, source) for box, source, _ in _recorded(url)] == [("fe-credito", "ingest")]

    code, output = _ingest_stdin(workdir, url, "casella-inesistente", raw)
    assert code == 67, output


@pytest.mark.parametrize(
    ("listen", "accepted"),
    [("127.0.0.1:2424", True), ("/run/sportello/lmtp.sock", True), ("192.0.2.10:2424", False), ("2424", False)],
)
def test_lmtp_listens_only_on_loopback_or_a_unix_socket(tmp_path: Path, listen: str, accepted: bool) -> None:
    from daemon.config import ConfigError, load_config

    text = (ROOT / "config.yaml").read_text(encoding="utf-8") + f'\nlmtp:\n  listen: "{listen}"\n'
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    if accepted:
        assert load_config(path, env={}).lmtp == LmtpConfig(listen=listen)
        return
    with pytest.raises(ConfigError) as problems:
        load_config(path, env={})
    assert "lmtp.listen" in str(problems.value)
