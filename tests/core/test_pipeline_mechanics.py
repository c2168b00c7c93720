"""The pipeline's bookkeeping, with a minimal analyser: outcomes, idempotency, dedupe, quarantine.

The analyser here is the smallest real one (parse + loop detection + open a ticket) so that these
tests exercise the transactional half on its own; the full chain is tested in test_end_to_end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from daemon.config import Config, Mailbox
from daemon.core.analysis import Analysis, Lookups
from daemon.core.pipeline import InboundItem, Pipeline
from storage.archive import RawArchive
from storage.db import init_db, make_engine, make_session_factory
from storage.models import Alert, InboundMessage, Outbox, Ticket, TicketEvent, TicketMessage
from tests.support.pipeline import NOW, count, mail, minimal_analyser, recording


def test_opens_ticket_with_protocol_id_and_queues_acknowledgement(pipeline: Pipeline) -> None:
    o1 = pipeline.process(mail(1), "fe-credito")
    o2 = pipeline.process(mail(2), "fe-credito")
    assert (o1.outcome, o1.ticket_id) == ("opened", "FE-2026-000001")
    assert o2.ticket_id == "FE-2026-000002"
    with pipeline.session_factory() as s:
        rows = s.execute(select(Outbox).order_by(Outbox.id)).scalars().all()
        assert [r.to for r in rows] == [["mario.rossi1@example.org"], ["mario.rossi2@example.org"]]
        assert rows[0].subject.startswith("[FE-2026-000001] ")
        assert rows[0].sender == "GestioneCredito.Ferrara@inps.example"
        body = rows[0].raw.decode()
        assert "FE-2026-000001" in body and "10 giorni lavorativi" in body
        assert "Auto-Submitted: auto-replied" in body
        ticket = s.get(Ticket, "FE-2026-000001")
        assert ticket is not None and ticket.requester == "mario.rossi1@example.org"
        assert [m.direction for m in ticket.messages] == ["in", "out"]


def test_redelivery_is_a_no_op(pipeline: Pipeline) -> None:
    first = pipeline.process(mail(1), "fe-credito", uidvalidity=7, uid=1)
    again = pipeline.process(mail(1), "fe-credito", uidvalidity=7, uid=1)
    other_uid = pipeline.process(mail(1), "fe-credito", uidvalidity=7, uid=2)
    assert again.duplicate and other_uid.duplicate
    assert again.ticket_id == other_uid.ticket_id == first.ticket_id
    assert count(pipeline, InboundMessage) == 1 and count(pipeline, Outbox) == 1


def test_same_message_id_in_another_mailbox_joins_the_same_ticket(pipeline: Pipeline) -> None:
    first = pipeline.process(mail(1), "fe-credito")
    copy = pipeline.process(mail(1) + b"\r\n", "fe-anagrafica")
    assert copy.outcome == "appended" and copy.ticket_id == first.ticket_id
    assert count(pipeline, Ticket) == 1 and count(pipeline, Outbox) == 1


def test_auto_reply_and_own_mail_are_ignored_without_answer(pipeline: Pipeline) -> None:
    ooo = pipeline.process(mail(3, "Risposta automatica: fuori sede", "Auto-Submitted: auto-replied\r\n"), "fe-credito")
    loop = pipeline.process(mail(4, extra="X-Sportello-Loop: sportello-ferrara\r\n"), "fe-credito")
    assert (ooo.outcome, ooo.reason) == ("ignored", "auto_reply")
    assert (loop.outcome, loop.reason) == ("ignored", "loop")
    assert count(pipeline, Outbox) == 0


def test_garbage_is_quarantined_and_admin_alerted(pipeline: Pipeline, tmp_path: Path) -> None:
    o = pipeline.process(b"\x00\x01\x02 not an email at all", "fe-credito")
    assert (o.outcome, o.reason) == ("quarantined", "intestazioni_illeggibili")
    assert count(pipeline, Alert) == 1
    with pipeline.session_factory() as s:
        row = s.get(InboundMessage, o.inbound_id)
        assert row is not None
        assert pipeline.archive.load(row.archive_ref) == b"\x00\x01\x02 not an email at all"


def test_batch_records_each_message_even_when_one_breaks_the_analyser(shipped_config: Config, tmp_path: Path) -> None:
    engine = make_engine(shipped_config.database_url)
    init_db(engine)
    base = minimal_analyser(shipped_config)

    def flaky(raw: bytes, mailbox: Mailbox, lookups: Lookups) -> Analysis:
        if b"BOOM" in raw:
            raise RuntimeError("bug")
        return base(raw, mailbox, lookups)

    archive = RawArchive(tmp_path / "a")
    p = Pipeline(
        shipped_config,
        make_session_factory(engine),
        archive,
        flaky,
        recording(shipped_config, archive),
        clock=lambda: NOW,
    )
    outcomes = p.process_batch(
        [
            InboundItem(mail(1), "fe-credito"),
            InboundItem(mail(2, "BOOM"), "fe-credito"),
            InboundItem(mail(3), "fe-credito"),
        ]
    )
    assert [o.outcome for o in outcomes] == ["opened", "quarantined", "opened"]
    assert outcomes[1].reason == "errore_interno"
    assert [o.ticket_id for o in outcomes if o.ticket_id] == ["FE-2026-000001", "FE-2026-000002"]
    engine.dispose()


def test_acknowledgements_stop_after_the_daily_budget(pipeline: Pipeline) -> None:
    limit = pipeline.config.outbound.max_acks_per_sender_per_day
    for i in range(limit + 3):
        raw = mail(1).replace(b"<m1@", f"<x{i}@".encode())
        pipeline.process(raw, "fe-credito")
    assert count(pipeline, Ticket) == limit + 3
    assert count(pipeline, Outbox) == limit


def test_the_daily_budget_counts_earlier_batches_and_the_batch_itself(pipeline: Pipeline) -> None:
    limit = pipeline.config.outbound.max_acks_per_sender_per_day
    raws = [mail(1).replace(b"<m1@", f"<y{i}@".encode()) for i in range(limit + 4)]
    first, second = limit // 2, limit + 4 - limit // 2
    pipeline.process_batch([InboundItem(r, "fe-credito") for r in raws[:first]])
    assert count(pipeline, Outbox) == first
    outcomes = pipeline.process_batch([InboundItem(r, "fe-credito") for r in raws[first : first + second]])
    assert [o.outcome for o in outcomes] == ["opened"] * second  # every message still gets its ticket
    assert count(pipeline, Outbox) == limit
    other = mail(2)  # another sender has a budget of its own
    pipeline.process(other, "fe-credito")
    assert count(pipeline, Outbox) == limit + 1


def test_a_batch_links_each_ticket_to_its_messages_and_events(pipeline: Pipeline) -> None:
    outcomes = pipeline.process_batch([InboundItem(mail(n), "fe-credito") for n in (1, 2, 3)])
    with pipeline.session_factory() as s:
        for outcome in outcomes:
            assert outcome.ticket_id is not None
            messages = list(
                s.execute(
                    select(TicketMessage).where(TicketMessage.ticket_id == outcome.ticket_id).order_by(TicketMessage.id)
                ).scalars()
            )
            assert [m.direction for m in messages] == ["in", "out"]
            incoming, ack = messages
            assert incoming.inbound_id == outcome.inbound_id
            assert "chiedo l'estratto conto" in incoming.body
            outbox = s.get(Outbox, ack.outbox_id)
            assert outbox is not None
            assert (outbox.ticket_id, outbox.inbound_id, outbox.message_id) == (
                outcome.ticket_id,
                outcome.inbound_id,
                ack.message_id,
            )
            kinds = s.execute(
                select(TicketEvent.kind).where(TicketEvent.ticket_id == outcome.ticket_id).order_by(TicketEvent.id)
            ).scalars()
            assert list(kinds) == ["aperta", "email_in_uscita"]


def test_ticket_numbers_restart_each_year_and_office(pipeline: Pipeline) -> None:
    a = pipeline.process(mail(1), "fe-credito", received_at=datetime(2025, 12, 31, 12, tzinfo=UTC))
    b = pipeline.process(mail(2), "fe-credito", received_at=datetime(2026, 1, 2, 12, tzinfo=UTC))
    c = pipeline.process(mail(3), "er-consulenza", received_at=datetime(2026, 1, 2, 12, tzinfo=UTC))
    assert (a.ticket_id, b.ticket_id, c.ticket_id) == ("FE-2025-000001", "FE-2026-000001", "ER-2026-000001")


def test_ticket_numbers_follow_the_offices_local_year(pipeline: Pipeline) -> None:
    # 00:30 on 1 January 2027 in Rome is still 31 December 2026 in UTC: the protocol year is Rome's.
    new_year = pipeline.process(mail(1), "fe-credito", received_at=datetime(2026, 12, 31, 23, 30, tzinfo=UTC))
    # 23:30 on 31 December in Rome (22:30 UTC) is still 2026.
    old_year = pipeline.process(mail(2), "fe-credito", received_at=datetime(2026, 12, 31, 22, 30, tzinfo=UTC))
    assert (new_year.ticket_id, old_year.ticket_id) == ("FE-2027-000001", "FE-2026-000001")
