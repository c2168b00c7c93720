"""What the people who keep sportello running see of it: `sportello run` on Dovecot, scraped over HTTP
(/metrics, /healthz, /readyz) while it processes mail, and `sportello status`."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from daemon.cli.main import app
from tests.support.daemon_process import start_daemon, stop_daemon
from tests.support.stack import citizen_mail, wait_until, write_config

MAILBOX = "fe-credito"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


@pytest.mark.slow
def test_metrics_health_and_status_of_a_running_daemon(stack, tmp_path: Path) -> None:
    port = _free_port()
    boxes = tuple(
        m.model_copy(update={"imap": m.imap.model_copy(update={"idle_timeout_seconds": 5})}) if m.imap else m
        for m in stack.config.mailboxes
    )
    metrics = stack.config.metrics.model_copy(update={"listen": f"127.0.0.1:{port}", "sync_grace_seconds": 1.0})
    cfg = stack.config.model_copy(update={"mailboxes": boxes, "metrics": metrics})
    config_path = write_config(cfg, tmp_path / "etc")
    address = cfg.mailbox(MAILBOX).address
    stack.imap.append_many(MAILBOX, [citizen_mail(address, n) for n in range(3)])
    stack.imap.append(MAILBOX, citizen_mail(address, 9, subject="Richiesta rimborso contributi"))
    log = tmp_path / "daemon.log"
    base = f"http://127.0.0.1:{port}"
    proc = start_daemon(config_path, log)
    try:
        assert wait_until(lambda: _get(base + "/healthz")[0] == 200, 30), log.read_text()[-3000:]

        def processed() -> bool:
            values = _samples(_get(base + "/metrics")[1])
            opened = values.get(("sportello_messages_total", (("mailbox", MAILBOX), ("outcome", "opened")))) or 0
            sent = values.get(("sportello_outbox_messages", (("status", "sent"),))) or 0
            return opened == 3 and sent == 4

        assert wait_until(processed, 60, interval=0.3), log.read_text()[-3000:]
        values = _samples(_get(base + "/metrics")[1])
        assert values[("sportello_messages_total", (("mailbox", MAILBOX), ("outcome", "rejected")))] == 1
        assert values[("sportello_message_processing_seconds_count", ())] == 4
        assert values[("sportello_tickets_open", (("office", "FE"), ("queue", "credito")))] == 3
        assert values[("sportello_tickets_overdue", (("office", "FE"), ("queue", "credito")))] == 0
        assert values[("sportello_outbox_oldest_pending_age_seconds", ())] == 0
        assert values[("sportello_imap_connected", (("mailbox", MAILBOX),))] == 1
        assert 0 <= values[("sportello_imap_seconds_since_last_sync", (("mailbox", MAILBOX),))] < 30
        assert values[("sportello_database_up", ())] == 1

        code, body = _get(base + "/readyz")
        ready = json.loads(body)
        assert code == 200 and ready["status"] == "ok", ready
        assert {c["name"] for c in ready["checks"]} >= {"database", "archive", "outbox", f"casella:{MAILBOX}"}

        result = CliRunner().invoke(app, ["--config", str(config_path), "status"])
        assert result.exit_code == 0, result.output
        assert "Pronto" in result.output and f"casella {MAILBOX}" in result.output

        # The IMAP server goes away: the mailboxes stop syncing and readiness says which, and why.
        stack.imap.stop()

        def down() -> list[str]:
            code, body = _get(base + "/readyz")
            failed = json.loads(body)["failed"] if code == 503 else []
            return [name.removeprefix("casella:") for name in failed if name.startswith("casella:")]

        assert wait_until(lambda: MAILBOX in down(), 30, interval=0.5), _get(base + "/readyz")
        mailbox = MAILBOX
        assert _get(base + "/healthz")[0] == 200  # alive all the same
        values = _samples(_get(base + "/metrics")[1])
        assert values[("sportello_imap_connected", (("mailbox", mailbox),))] == 0
        result = CliRunner().invoke(app, ["status", "--config", str(config_path)])
        assert result.exit_code == 1 and "Non pronto" in result.output
        assert f"NO  casella {mailbox}" in result.output
    finally:
        assert stop_daemon(proc), "il servizio non si è fermato entro 30 s da SIGTERM"
    text = log.read_text()
    assert "alembic" not in text.lower() and "Traceback" not in text, text[-3000:]
    # Stopped: `status` says the service does not answer.
    result = CliRunner().invoke(app, ["status", "--config", str(config_path)])
    assert result.exit_code == 1 and "servizio non raggiungibile" in result.output
