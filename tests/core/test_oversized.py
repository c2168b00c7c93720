"""A message over the size limit: the sender is told the limit, the outcome is recorded, nothing is lost."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from daemon.config import Config
from daemon.core.pipeline import InboundItem
from daemon.mail.message import parse_message
from daemon.service import Service
from storage.models import InboundMessage, Outbox
from tests.support.stack import citizen_mail


def test_header_only_oversized_message_is_rejected_with_the_limit(shipped_config: Config, tmp_path: Path) -> None:
    service = Service(shipped_config)
    raw = citizen_mail(shipped_config.mailbox("fe-credito").address, 1)
    header = raw.split(b"\n\n", 1)[0] + b"\n\n"
    [outcome] = service.ingest(
        [
            InboundItem(
                raw=header,
                mailbox_id="fe-credito",
                source="imap",
                uid=7,
                uidvalidity=1,
                oversized=True,
                size=40 * 2**20,
            )
        ]
    )
    assert outcome.outcome == "rejected" and outcome.reason == "allegati_eccessivi"
    with service.session_factory() as s:
        row = s.execute(select(InboundMessage)).scalar_one()
        reply = s.execute(select(Outbox)).scalar_one()
    assert row.size == 40 * 2**20
    assert reply.template == "rifiuto_allegati_eccessivi"
    assert reply.to == ["cittadino1@posta.example"]
    assert "(25 MB)" in parse_message(reply.raw).text_body


def test_whole_message_over_the_limit_is_rejected_too(shipped_config: Config) -> None:
    cfg = shipped_config.model_copy(
        update={"intake": shipped_config.intake.model_copy(update={"max_message_bytes": 50_000})}
    )
    service = Service(cfg)
    raw = citizen_mail(cfg.mailbox("fe-credito").address, 2, attachment=b"y" * 80_000)
    [outcome] = service.ingest([InboundItem(raw=raw, mailbox_id="fe-credito")])
    assert outcome.reason == "allegati_eccessivi"
