"""A reused Message-ID: the same message again is a no-op, any other message is recorded on its own."""

from __future__ import annotations

from sqlalchemy import select

from daemon.core.pipeline import InboundItem, Pipeline
from daemon.mail.fingerprint import content_fingerprint
from storage.models import Alert, InboundMessage, TicketEvent
from tests.support.pipeline import count, mail

RELAYED = b"Received: from mx2.example.org by mx.inps.example; Fri, 20 Nov 2026 10:00:05 +0100\r\n"


def test_another_message_with_a_known_message_id_gets_its_own_outcome(pipeline: Pipeline) -> None:
    first = pipeline.process(mail(1), "fe-credito")
    # Same id, another subject and text: a client that reuses ids, or someone who knows the id.
    second_raw = mail(1, "Richiesta DURC").replace(b"chiedo l'estratto conto", b"chiedo il DURC")
    second = pipeline.process(second_raw, "fe-credito")
    assert not second.duplicate
    assert second.outcome == "opened" and second.ticket_id not in (None, first.ticket_id)
    assert count(pipeline, InboundMessage) == 2
    with pipeline.session_factory() as s:
        kinds = s.execute(select(TicketEvent.kind).where(TicketEvent.ticket_id == second.ticket_id)).scalars().all()
        assert "message_id_riutilizzato" in kinds


def test_the_same_message_delivered_again_with_other_transport_headers_is_a_no_op(pipeline: Pipeline) -> None:
    first = pipeline.process(mail(1), "fe-credito")
    again = pipeline.process(RELAYED + mail(1).replace(b"\r\n", b"\n"), "fe-credito")
    assert again.duplicate and again.inbound_id == first.inbound_id
    assert count(pipeline, InboundMessage) == 1


def test_a_reused_id_in_one_batch_is_recorded_twice(pipeline: Pipeline) -> None:
    raws = [mail(1), mail(1, "Altro oggetto"), RELAYED + mail(1)]
    outcomes = pipeline.process_batch([InboundItem(r, "fe-credito") for r in raws])
    assert [o.duplicate for o in outcomes] == [False, False, True]
    assert outcomes[1].ticket_id != outcomes[0].ticket_id
    assert count(pipeline, InboundMessage) == 2


def test_a_reused_id_in_another_mailbox_is_not_taken_for_a_copy(pipeline: Pipeline) -> None:
    first = pipeline.process(mail(1), "fe-credito")
    other = pipeline.process(mail(1, "Tutt'altro"), "fe-anagrafica")
    assert other.outcome == "opened" and other.ticket_id != first.ticket_id


def test_a_reused_id_on_a_message_without_ticket_is_an_alert(pipeline: Pipeline) -> None:
    pipeline.process(mail(1), "fe-credito")
    ooo = pipeline.process(mail(1, "Risposta automatica", "Auto-Submitted: auto-replied\r\n"), "fe-credito")
    assert ooo.outcome == "ignored"
    with pipeline.session_factory() as s:
        assert s.execute(select(Alert.kind)).scalars().all() == ["message_id_riutilizzato"]


def test_fingerprint_ignores_transport_headers_only() -> None:
    base = content_fingerprint(mail(1))
    assert content_fingerprint(RELAYED + mail(1)) == base
    assert content_fingerprint(mail(1).replace(b"estratto", b"Estratto")) != base
    assert content_fingerprint(mail(1).replace(b"Mario Rossi", b"Maria Rossi")) != base
