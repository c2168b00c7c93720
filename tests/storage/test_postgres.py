"""The same code on PostgreSQL: migrations, the pipeline, ticket numbering and the outbox sender."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from daemon.config import Config
from daemon.core.pipeline import InboundItem
from daemon.demo.smtp_sink import SmtpSink
from daemon.outbound.sender import OutboxSender
from daemon.service import Service
from storage.models import InboundMessage, Outbox, Ticket
from tests.support.stack import citizen_mail, stack_config


def test_pipeline_and_sender_run_on_postgresql(shipped_config: Config, pg_schema_url: str, tmp_path: Path) -> None:
    sink = SmtpSink("127.0.0.1", 0)
    sink.start()
    try:
        cfg = stack_config(shipped_config, tmp_path, imap_port=1, smtp_port=sink.port, mailboxes=[], notices=False)
        cfg = cfg.model_copy(update={"database": cfg.database.model_copy(update={"url": pg_schema_url})})
        service = Service(cfg)
        address = cfg.mailbox("fe-credito").address
        raws = [citizen_mail(address, n) for n in range(25)]
        outcomes = service.ingest([InboundItem(raw=r, mailbox_id="fe-credito") for r in raws])
        assert [o.outcome for o in outcomes] == ["opened"] * 25
        # Redelivery of the same batch is a no-op.
        again = service.ingest([InboundItem(raw=r, mailbox_id="fe-credito") for r in raws])
        assert all(o.duplicate for o in again)
        with service.session_factory() as s:
            ids = sorted(s.execute(select(Ticket.id)).scalars())
            assert ids == [f"FE-{ids[0][3:7]}-{n:06d}" for n in range(1, 26)]
            assert s.execute(select(func.count()).select_from(InboundMessage)).scalar_one() == 25
        sender = OutboxSender(service.session_factory, cfg)
        while sender.send_due():
            pass
        assert sink.wait_for(25, 10)
        with service.session_factory() as s:
            statuses = set(s.execute(select(Outbox.status)).scalars())
            outbox_ids = set(s.execute(select(Outbox.message_id)).scalars())
        assert statuses == {"sent"}
        assert {m.message_id for m in sink.messages} == outbox_ids
        service.close()
    finally:
        sink.stop()
