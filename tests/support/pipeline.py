"""A bare pipeline for tests of the transactional half: the smallest real analyser (parse, loop
detection, open a ticket) and the outcome actions as the service builds them, without the SLA clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.config import Config, Mailbox
from daemon.conversation.tokens import ReplyTokens
from daemon.core.analysis import Analysis, Lookups, SystemDecision
from daemon.core.outcomes import Outcomes
from daemon.core.pipeline import Pipeline
from daemon.mail.autoreply import automatic_reason
from daemon.mail.message import UnparseableMessage, parse_message
from daemon.outbound.templates import TemplateRenderer
from daemon.service import build_outcomes
from storage.archive import RawArchive
from storage.db import init_db, make_engine, make_session_factory

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def recording(config: Config, archive: RawArchive) -> Outcomes:
    """The outcome actions as the service builds them, without the SLA clock."""
    tokens = ReplyTokens(b"test-secret", config.instance.message_id_domain)
    # One email per ticket (the acknowledgement): the notices to referents have their own tests.
    quiet = config.model_copy(update={"conversation": config.conversation.model_copy(update={"notify_workers": False})})
    return build_outcomes(quiet, archive, TemplateRenderer(ROOT / "templates"), tokens, None)


def minimal_analyser(config: Config) -> Callable[[bytes, Mailbox, Lookups], Analysis]:
    def analyse(raw: bytes, mailbox: Mailbox, lookups: Lookups) -> Analysis:
        try:
            msg = parse_message(raw)
        except UnparseableMessage as exc:
            return Analysis(mailbox.id, SystemDecision("quarantine", exc.reason), None, None, failure=exc)
        auto = automatic_reason(
            msg, message_id_domain=config.instance.message_id_domain, own_addresses=config.own_addresses
        )
        if auto:
            return Analysis(mailbox.id, SystemDecision("ignore", auto), msg, msg, automatic=auto)
        return Analysis(mailbox.id, SystemDecision("open_ticket", None, queue="generale"), msg, msg)

    return analyse


@pytest.fixture
def pipeline(shipped_config: Config, tmp_path: Path) -> Iterator[Pipeline]:
    engine = make_engine(shipped_config.database_url)
    init_db(engine)
    factory = make_session_factory(engine)
    archive = RawArchive(tmp_path / "archive")
    p = Pipeline(
        shipped_config,
        factory,
        archive,
        minimal_analyser(shipped_config),
        recording(shipped_config, archive),
        clock=lambda: NOW,
    )
    yield p
    engine.dispose()


def mail(n: int, subject: str = "Richiesta estratto conto", extra: str = "") -> bytes:
    return (
        f"From: Mario Rossi <mario.rossi{n}@example.org>\r\nTo: GestioneCredito.Ferrara@inps.example\r\n"
        f"Subject: {subject}\r\nMessage-ID: <m{n}@example.org>\r\nDate: Fri, 20 Nov 2026 10:00:00 +0100\r\n"
        f"{extra}\r\nBuongiorno, chiedo l'estratto conto.\r\n"
    ).encode()


def count(p: Pipeline, model: type) -> int:
    with p.session_factory() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()
