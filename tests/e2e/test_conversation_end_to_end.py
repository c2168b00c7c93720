"""The conversation over the real servers: a citizen's mail on Dovecot, the notice to the referent at
the SMTP sink, her Outlook reply back on Dovecot, the relay to the citizen, his answer, the closing."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from storage.models import Ticket
from tests.support.mail import authenticated
from tests.support.replies import reply_to_notice
from tests.support.stack import citizen_mail, running_service, wait_until

pytestmark = pytest.mark.imap

MAILBOX = "fe-credito"
ANNA = "anna.bianchi@inps.example"


def _sunk(sink: object, predicate) -> list:  # type: ignore[no-untyped-def]
    out = []
    for m in sink.messages:  # type: ignore[attr-defined]
        msg = message_from_bytes(m.raw, policy=default_policy)
        if predicate(m, msg):
            out.append((m, msg))
    return out


def test_referent_runs_a_ticket_from_her_mail_client_over_imap_and_smtp(conversation_stack) -> None:  # type: ignore[no-untyped-def]
    cfg, imap, sink = conversation_stack.config, conversation_stack.imap, conversation_stack.sink
    address = cfg.mailbox(MAILBOX).address
    citizen = "cittadino1@posta.example"
    imap.append(MAILBOX, citizen_mail(address, 1))
    with running_service(cfg) as service:
        assert wait_until(lambda: len(_sunk(sink, lambda m, _x: ANNA in m.rcpt_tos)) == 1, 60), "nessuna notifica"
        [(_n, notice)] = _sunk(sink, lambda m, _x: ANNA in m.rcpt_tos)
        assert str(notice["Reply-To"]) == address
        imap.append(
            MAILBOX,
            authenticated(
                reply_to_notice(
                    "outlook", notice, "Gentile cittadino,\nl'avviso risulta pagato.", to=address, sender=ANNA
                ),
                "inps.example",
            ),
        )

        def to_citizen(template_text: str) -> list:  # type: ignore[no-untyped-def]
            return _sunk(
                sink,
                lambda m, msg: (
                    citizen in m.rcpt_tos and template_text in msg.get_body(preferencelist=("plain",)).get_content()
                ),
            )

        assert wait_until(lambda: len(to_citizen("l'avviso risulta pagato.")) == 1, 60), "risposta non inoltrata"
        [(raw_relay, relay)] = to_citizen("l'avviso risulta pagato.")
        assert relay["From"].addresses[0].addr_spec == address and ANNA.encode() not in raw_relay.raw
        assert "Da:" not in relay.get_body(preferencelist=("plain",)).get_content()

        # The citizen answers the relay: Anna gets a new notice, and closes the ticket from it.
        answer = message_from_bytes(citizen_mail(address, 1, subject=f"Re: {relay['Subject']}", body="Grazie."))
        answer["In-Reply-To"] = str(relay["Message-ID"])
        imap.append(MAILBOX, answer.as_bytes())
        assert wait_until(lambda: len(_sunk(sink, lambda m, _x: ANNA in m.rcpt_tos)) == 2, 60)
        second = _sunk(sink, lambda m, _x: ANNA in m.rcpt_tos)[1][1]
        imap.append(
            MAILBOX,
            authenticated(
                reply_to_notice("thunderbird", second, "#chiudi risolta", to=address, sender=ANNA), "inps.example"
            ),
        )
        assert wait_until(lambda: len(to_citizen("è chiusa")) == 1, 60), "avviso di chiusura non arrivato"
        with service.session_factory() as s:  # type: ignore[attr-defined]
            [ticket] = s.query(Ticket).all()
            assert (ticket.state, ticket.close_outcome) == ("chiusa", "risolta")
            assert ticket.answered_at is not None
    # Everything read left INBOX for the processed folder.
    assert imap.list_uids(MAILBOX, "INBOX") == []
