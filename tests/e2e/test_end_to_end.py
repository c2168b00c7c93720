"""The walking skeleton end to end: a real Dovecot, the daemon as `sportello run` runs it, a real SMTP sink.

Acceptance 2, 4 and 5 of the skeleton issue: mail appended over IMAP becomes tickets, the
acknowledgements reach the sink tagged with the ticket id, the originals end in the processed folder;
a sink that is down delays mail but loses none and sends none twice; a Dovecot restart under the
running daemon loses nothing.
"""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

from sqlalchemy import func, select

from storage.models import InboundMessage, Outbox, OutboxAttempt, Ticket
from tests.support.stack import citizen_mail, running_service, wait_until

MAILBOX = "fe-credito"


def _count(service: object, model: type, *where: object) -> int:
    with service.session_factory() as s:  # type: ignore[attr-defined]
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def _tickets(service: object) -> list[Ticket]:
    with service.session_factory() as s:  # type: ignore[attr-defined]
        return list(s.execute(select(Ticket).order_by(Ticket.id)).scalars())


def _sink_message_ids(sink: object) -> list[str]:
    return [m.message_id for m in sink.messages]  # type: ignore[attr-defined]


def test_mail_appended_over_imap_becomes_tickets_and_acknowledgements(stack) -> None:
    cfg, imap, sink = stack.config, stack.imap, stack.sink
    address = cfg.mailbox(MAILBOX).address
    for n in range(5):
        imap.append(MAILBOX, citizen_mail(address, n))
    with running_service(cfg) as service:
        assert wait_until(lambda: len(sink.messages) >= 5, 60), "le conferme non sono arrivate al server SMTP"
        tickets = _tickets(service)
        # The sender marks rows sent right after the sink accepted them.
        assert wait_until(lambda: _count(service, Outbox, Outbox.status == "sent") == 5, 10)

    assert len(tickets) == 5
    assert {t.requester for t in tickets} == {f"cittadino{n}@posta.example" for n in range(5)}
    assert all(t.mailbox == MAILBOX and t.state == "aperta" for t in tickets)
    ids = {t.id for t in tickets}
    acks = [message_from_bytes(m.raw, policy=default_policy) for m in sink.messages]
    tagged = {next(i for i in ids if f"[{i}]" in str(a["Subject"])) for a in acks}
    assert tagged == ids, "ogni conferma porta nell'oggetto il numero della sua pratica"
    recipients = {r for m in sink.messages for r in m.rcpt_tos}
    assert recipients == {t.requester for t in tickets}
    for a in acks:
        assert a["Auto-Submitted"], "le conferme automatiche devono dichiararsi tali (RFC 3834)"
        body = a.get_body(preferencelist=("plain",)).get_content()
        assert "10 giorni lavorativi" in body or "giorni lavorativi" in body
    # The originals left INBOX for the processed folder, only after they were recorded.
    assert imap.list_uids(MAILBOX, "INBOX") == []
    assert len(imap.list_uids(MAILBOX, cfg.mailbox(MAILBOX).imap.processed_folder)) == 5


def test_smtp_down_mail_waits_and_is_delivered_once_when_it_returns(stack) -> None:
    cfg, imap, sink = stack.config, stack.imap, stack.sink
    address = cfg.mailbox(MAILBOX).address
    sink.set_mode("down")
    with running_service(cfg) as service:
        for n in range(8):
            imap.append(MAILBOX, citizen_mail(address, 100 + n))
        assert wait_until(lambda: _count(service, Ticket) == 8, 60)
        # With the sink down the acknowledgements wait in the outbox, with failed attempts recorded.
        assert wait_until(lambda: _count(service, OutboxAttempt, OutboxAttempt.result == "temporary") >= 1, 30)
        assert _count(service, Outbox, Outbox.status == "sent") == 0
        assert sink.messages == []
        sink.set_mode("accept")
        assert wait_until(lambda: _count(service, Outbox, Outbox.status == "sent") == 8, 60)
    ids = _sink_message_ids(sink)
    assert len(ids) == 8 and len(set(ids)) == 8, "ogni conferma consegnata una e una sola volta"


def test_dovecot_restart_under_the_running_daemon_loses_nothing(stack) -> None:
    cfg, imap, sink = stack.config, stack.imap, stack.sink
    address = cfg.mailbox(MAILBOX).address
    with running_service(cfg) as service:
        for n in range(5):
            imap.append(MAILBOX, citizen_mail(address, 200 + n))
        assert wait_until(lambda: _count(service, InboundMessage) == 5, 60)
        imap.restart()
        for n in range(5, 10):
            imap.append(MAILBOX, citizen_mail(address, 200 + n))
        assert wait_until(lambda: _count(service, InboundMessage) == 10, 90), "messaggi persi dopo il riavvio"
        assert wait_until(lambda: len(sink.messages) == 10, 60)
        assert wait_until(lambda: imap.list_uids(MAILBOX, "INBOX") == [], 30)
        assert _count(service, Ticket) == 10
    assert len(set(_sink_message_ids(sink))) == 10
