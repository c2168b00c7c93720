"""The classification travels with the ticket and into the acknowledgement the sender reads."""

from __future__ import annotations

from sqlalchemy import select

from daemon.config import Config
from daemon.core.pipeline import InboundItem
from daemon.mail.message import parse_message
from daemon.service import Service
from storage.models import Outbox, Ticket
from tests.support.stack import citizen_mail


def test_ticket_keeps_the_codes_and_the_ack_flags_an_invalid_one(shipped_config: Config) -> None:
    service = Service(shipped_config)
    raw = citizen_mail(
        shipped_config.mailbox("fe-credito").address,
        1,
        subject="LD - RSSMRA85T10A562S Rossi Mario e RSSMRA85T10A562X - avviso di pagamento n. 7/2026",
    )
    [outcome] = service.ingest([InboundItem(raw=raw, mailbox_id="fe-credito")])
    assert outcome.outcome == "opened"
    with service.session_factory() as s:
        ticket = s.get(Ticket, outcome.ticket_id)
        ack = s.execute(select(Outbox).where(Outbox.template == "conferma_ricezione")).scalar_one()
        assert ticket is not None
        assert ticket.codici_fiscali == ["RSSMRA85T10A562S"]
        assert ticket.classification is not None and ticket.classification["gestione"] == "lavoratori_domestici"
    text = parse_message(ack.raw).text_body
    assert "il codice fiscale RSSMRA85T10A562X indicato non risulta valido" in " ".join(text.split())
