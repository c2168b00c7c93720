"""What the admin is told when something needs a person: an unreadable mailbox becomes an alert row."""

from __future__ import annotations

from sqlalchemy import select

from daemon.config import Config
from daemon.service import Service
from storage.models import Alert


def test_mailbox_outage_is_recorded_as_an_alert(shipped_config: Config) -> None:
    service = Service(shipped_config)
    service._record_outage("fe-credito", "ConnectionRefusedError: [Errno 111] Connection refused")
    with service.session_factory() as s:
        alert = s.execute(select(Alert)).scalar_one()
    assert alert.kind == "casella_non_leggibile" and alert.mailbox == "fe-credito"
    assert "Connection refused" in alert.note and "300 s" in alert.note
