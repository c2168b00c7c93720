"""The state metrics read at scrape time: overdue tickets by office and queue, open alerts by kind, outbox age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.config import Config
from daemon.core.pipeline import InboundItem
from daemon.ops.metrics import MailboxState, Metrics
from daemon.service import Service
from storage.models import Alert
from tests.support.stack import citizen_mail

RECEIVED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday


def test_overdue_tickets_open_alerts_and_the_oldest_pending_email(shipped_config: Config, tmp_path: Path) -> None:
    # One email per ticket (the acknowledgement): the notices to referents are counted in tests/conversation.
    quiet = shipped_config.model_copy(
        update={"conversation": shipped_config.conversation.model_copy(update={"notify_workers": False})}
    )
    service = Service(quiet, clock=lambda: RECEIVED)
    try:
        address = shipped_config.mailbox("fe-credito").address
        service.ingest([InboundItem(raw=citizen_mail(address, n), mailbox_id="fe-credito") for n in range(2)])
        with service.session_factory() as session, session.begin():
            session.add(Alert(at=RECEIVED, kind="file_non_valido", note="x"))
            session.add(Alert(at=RECEIVED, kind="file_non_valido", note="y"))
            session.add(Alert(at=RECEIVED, kind="pec_non_verificata", note="z", acknowledged_at=RECEIVED))
        now = [RECEIVED + timedelta(days=1)]
        states = [MailboxState("fe-credito", True, None, 300)]
        metrics = Metrics(service.session_factory, lambda: states, lambda: now[0])

        def value(name: str, **labels: str) -> float | None:
            return metrics.registry.get_sample_value(name, labels)

        queue = {"office": "FE", "queue": "credito"}
        assert value("sportello_tickets_open", **queue) == 2
        assert value("sportello_tickets_overdue", **queue) == 0
        assert value("sportello_alerts_open", kind="file_non_valido") == 2
        assert value("sportello_alerts_open", kind="pec_non_verificata") is None  # acknowledged
        assert value("sportello_outbox_messages", status="pending") == 2
        assert value("sportello_outbox_oldest_pending_age_seconds") == 86400
        assert value("sportello_imap_connected", mailbox="fe-credito") == 1
        now[0] = RECEIVED + timedelta(days=30)  # past the 10 working days
        assert value("sportello_tickets_overdue", **queue) == 2
    finally:
        service.close()
