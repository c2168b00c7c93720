"""A message that looks like PEC but does not verify: rejected as not PEC, and the admin is alerted."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from daemon.config import Config
from daemon.core.pipeline import InboundItem
from daemon.service import Service
from storage.models import Alert, InboundMessage, Ticket
from tests.support.paths import PEC_SAMPLES

FORGED = PEC_SAMPLES / "oca_b59241d_fatturapa_pec_Normal_email_edited_envelope.eml"


def test_forged_pec_envelope_is_rejected_and_alerts_the_admin(shipped_config: Config) -> None:
    if not FORGED.exists():
        pytest.skip(f"campione PEC assente: {FORGED}")
    service = Service(shipped_config)
    [outcome] = service.ingest([InboundItem(raw=FORGED.read_bytes(), mailbox_id="fe-pec")])
    assert outcome.outcome == "rejected" and outcome.reason == "istanza_non_pec"
    with service.session_factory() as s:
        alert = s.execute(select(Alert).where(Alert.kind == "pec_non_verificata")).scalar_one()
        row = s.get(InboundMessage, outcome.inbound_id)
        assert s.execute(select(Ticket)).first() is None
    assert alert.inbound_id == outcome.inbound_id
    assert "firma non valida" in alert.note
    assert row is not None and row.analysis is not None and row.analysis["pec_kind"] == "non_verificata"
