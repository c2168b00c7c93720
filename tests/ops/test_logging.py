"""Logs a collector can read: one JSON object per line with the message's fields; codici fiscali masked in
both formats, tracebacks included."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterator

import pytest

from daemon.config import Config, LoggingConfig
from daemon.core.pipeline import InboundItem
from daemon.ops.logsetup import configure_logging
from tests.support.stack import citizen_mail

CF = "RSSMRA85T10A562S"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _log_with_a_traceback(logger: logging.Logger) -> None:
    try:
        raise ValueError(f"oggetto non leggibile: CF {CF}")
    except ValueError:
        logger.exception("messaggio di %s non elaborato", CF)


def test_json_lines_parse_one_by_one_and_carry_no_codice_fiscale(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(LoggingConfig(format="json"), stream=stream)
    logger = logging.getLogger("sportello.prova")
    logger.info("pratica aperta", extra={"mailbox": "fe-credito", "ticket_id": "FE-2026-000001"})
    _log_with_a_traceback(logger)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "pratica aperta" and first["level"] == "INFO" and first["logger"] == "sportello.prova"
    assert first["mailbox"] == "fe-credito" and first["ticket_id"] == "FE-2026-000001" and "timestamp" in first
    assert second["level"] == "ERROR" and "ValueError" in second["exc_info"]
    assert CF not in stream.getvalue()
    assert "RS************2S" in second["message"] and "RS************2S" in second["exc_info"]


def test_text_lines_mask_the_codice_fiscale_in_the_traceback_too(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(LoggingConfig(format="text"), stream=stream)
    _log_with_a_traceback(logging.getLogger("sportello.prova"))
    text = stream.getvalue()
    assert "ValueError: oggetto non leggibile: CF RS************2S" in text
    assert CF not in text


def test_each_processed_message_is_one_json_line_with_its_fields(shipped_config: Config, restore_logging: None) -> None:
    from daemon.service import Service

    stream = io.StringIO()
    configure_logging(LoggingConfig(format="json"), stream=stream)
    service = Service(shipped_config)
    try:
        raw = citizen_mail(
            "GestioneCredito.Ferrara@inps.example",
            1,
            subject=f"CF {CF} - Coltivatori diretti - avviso bonario n. 1/2026",
        )
        [outcome] = service.ingest([InboundItem(raw=raw, mailbox_id="fe-credito", source="ingest")])
    finally:
        service.close()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    [record] = [r for r in records if r.get("digest")]
    assert record["digest"] == hashlib.sha256(raw).hexdigest()
    assert record["mailbox"] == "fe-credito" and record["outcome"] == "opened"
    assert record["ticket_id"] == outcome.ticket_id and outcome.ticket_id
    assert CF not in stream.getvalue()
