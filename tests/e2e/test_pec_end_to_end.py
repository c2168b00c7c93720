"""PEC end to end: a real Dovecot, the daemon as `sportello run` runs it, a real SMTP sink.

Acceptance 3 and 4 of the PEC issue. On the PEC box of the shipped config, trusting the test CA:
a genuine PEC istanza opens a ticket for the real sender (daticert mittente) with the signed time and
the PEC identificativo; a forged PEC and an ordinary email istanza are rejected with `istanza_non_pec`
and a reply to their real sender; the receipts for our PEC acknowledgement are filed on the ticket, and
a delivery error alerts the referents. Malformed PEC appended over IMAP each get a recorded outcome
and the daemon keeps working.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.config import Config
from storage.models import Alert, InboundMessage, Outbox, Ticket, TicketEvent, TicketMessage
from tests.pec.factory import (
    ITALY_WINTER,
    MAILBOX,
    PROVIDER,
    daticert_part,
    daticert_xml,
    default_pki,
    envelope,
    make_ca,
    make_signer,
    original_message,
    receipt,
)
from tests.support.stack import running_service, wait_until

PEC_BOX = "fe-pec"
ISTANZA = "Istanza di rimborso contributi versati in eccesso - Artigiani"
CITIZEN = "mario.rossi@pec.example"
FORGER = "falsario@posta.example"
ORDINARY = "luigi.bianchi@gmail.example"
OFFICE_REFERENTS = {"anna.bianchi@inps.example", "marco.verdi@inps.example"}  # role referente, office FE


@pytest.fixture
def pec_stack(stack, tmp_path: Path):
    """The e2e stack with `pec.ca_bundle` pointing at the test certification authority."""
    bundle = default_pki().write_bundle(tmp_path)
    stack.config = stack.config.model_copy(update={"pec": {"ca_bundle": str(bundle)}})
    return stack


# -- helpers ----------------------------------------------------------------------------------


def _user(cfg: Config) -> str:
    imap = cfg.mailbox(PEC_BOX).imap
    assert imap is not None
    return imap.username


def _count(service: object, model: type, *where: object) -> int:
    with service.session_factory() as s:  # type: ignore[attr-defined]
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def _inbound(service: object, message_id: str) -> InboundMessage | None:
    with service.session_factory() as s:  # type: ignore[attr-defined]
        return s.execute(select(InboundMessage).where(InboundMessage.message_id == message_id)).scalars().first()


def _recorded(service: object, message_ids: Iterable[str]) -> bool:
    return all(_inbound(service, mid) is not None for mid in message_ids)


def _sunk_to(sink: object, address: str) -> list[EmailMessage]:
    return [
        message_from_bytes(m.raw, policy=default_policy)  # type: ignore[misc]
        for m in sink.messages  # type: ignore[attr-defined]
        if address in m.rcpt_tos
    ]


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def _signed_now() -> datetime:
    """Now, to the second, in the zone daticert states (+01:00): a signing time the SLA takes as is."""
    return datetime.now(ITALY_WINTER).replace(microsecond=0)


def _ordinary_istanza(sender: str, name: str = "Luigi Bianchi") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = MAILBOX
    msg["Subject"] = ISTANZA
    msg["Message-ID"] = make_msgid(idstring="ordinaria", domain="gmail.example")
    msg["Date"] = format_datetime(datetime.now(ITALY_WINTER))
    msg.set_content(
        "Buongiorno,\nchiedo il rimborso dei contributi versati in eccesso.\nCodice fiscale BNCLGU75C12D548X\n"
    )
    return msg.as_bytes()


def _message_id(raw: bytes) -> str:
    value = message_from_bytes(raw, policy=default_policy)["Message-ID"]
    return str(value).strip().strip("<>")


# -- acceptance 3 -----------------------------------------------------------------------------


def test_pec_istanze_rejections_and_receipts_end_to_end(pec_stack) -> None:
    cfg, imap, sink = pec_stack.config, pec_stack.imap, pec_stack.sink
    user = _user(cfg)
    signed_at = _signed_now()

    # (1) A genuine PEC istanza: the envelope's From is the provider; the real sender is in daticert.
    genuine = envelope(
        sender=CITIZEN,
        subject=ISTANZA,
        data=signed_at,
        identificativo=f"opec-e2e.{signed_at:%Y%m%d%H%M%S}.00001.01.1.1@{PROVIDER}",
        msgid="<istanza-e2e-0001@pec.example>",
    )
    # (2a) A forgery: a real envelope from the forger, its daticert edited to claim another sender.
    forged_base = envelope(
        sender=FORGER,
        subject=ISTANZA,
        data=signed_at,
        identificativo=f"opec-e2e.{signed_at:%Y%m%d%H%M%S}.00002.01.1.1@{PROVIDER}",
        msgid="<istanza-e2e-0002@posta.example>",
    )
    forged_xml = daticert_xml(
        "posta-certificata",
        mittente=CITIZEN,
        oggetto=ISTANZA,
        data=signed_at,
        identificativo=f"opec-e2e.{signed_at:%Y%m%d%H%M%S}.00002.01.1.1@{PROVIDER}",
        msgid="<istanza-e2e-0002@posta.example>",
    )
    forged = forged_base.replace(1, daticert_part(forged_xml)).raw()
    # (2b) Another forgery: the X- headers and parts of an envelope copied onto an unsigned message.
    copied = envelope(
        sender=FORGER,
        subject=ISTANZA,
        data=signed_at,
        identificativo=f"opec-e2e.{signed_at:%Y%m%d%H%M%S}.00003.01.1.1@{PROVIDER}",
        msgid="<istanza-e2e-0003@posta.example>",
    ).unsigned()
    # (3) The same istanza by ordinary email.
    ordinary = _ordinary_istanza(ORDINARY)

    genuine_id = "istanza-e2e-0001@pec.example"  # the ticket's inbound row carries postacert's id
    forged_ids = [_message_id(forged), _message_id(copied)]
    ordinary_id = _message_id(ordinary)

    with running_service(cfg) as service:
        imap.append_many(user, [genuine.raw(), forged, copied, ordinary])  # type: ignore[attr-defined]
        assert wait_until(lambda: _recorded(service, [genuine_id, *forged_ids, ordinary_id]), 60), (
            "non tutti i messaggi PEC sono stati registrati"
        )

        # (1) One ticket, for the real sender, received at the signed time, with the PEC identificativo.
        with service.session_factory() as s:
            tickets = list(s.execute(select(Ticket)).scalars())
            assert len(tickets) == 1, [t.subject for t in tickets]
            ticket = tickets[0]
            assert ticket.requester == CITIZEN
            assert ticket.subject == ISTANZA, "la pratica ha l'oggetto originale, non quello della busta"
            assert ticket.mailbox == PEC_BOX
            assert ticket.received_at == signed_at
            assert ticket.pec_identificativo == f"opec-e2e.{signed_at:%Y%m%d%H%M%S}.00001.01.1.1@{PROVIDER}"
            row = s.execute(select(InboundMessage).where(InboundMessage.message_id == genuine_id)).scalar_one()
            assert (row.outcome, row.rule_id, row.ticket_id) == ("opened", "istanza_pec", ticket.id)
            assert row.sender == CITIZEN
            assert row.received_at == signed_at
            assert row.analysis["pec_kind"] == "posta-certificata" and row.analysis["pec_verified"] is True
            ticket_id = ticket.id

        # (2) and (3): rejected, nothing opened, each with its failure recorded.
        for mid in [*forged_ids, ordinary_id]:
            row = _inbound(service, mid)
            assert row is not None
            assert (row.outcome, row.reason, row.ticket_id) == ("rejected", "istanza_non_pec", None), mid
        for mid in forged_ids:
            row = _inbound(service, mid)
            assert row is not None and row.analysis is not None
            assert row.analysis["pec_kind"] == "non_verificata" and row.analysis["pec_verified"] is False
            assert row.analysis["pec_failure"], "il motivo della mancata verifica è registrato"
            assert row.sender == FORGER, "la PEC falsa non vale come inviata dal mittente dichiarato in daticert"
        row = _inbound(service, ordinary_id)
        assert row is not None and row.analysis is not None and row.analysis["pec_kind"] == "none"

        # The acknowledgement of the PEC ticket goes out from the PEC box through the PEC SMTP profile.
        assert wait_until(lambda: _count(service, Outbox, Outbox.status == "sent") >= 4, 60), (
            "conferma e rifiuti non inviati"
        )
        with service.session_factory() as s:
            ack = s.execute(select(Outbox).where(Outbox.ticket_id == ticket_id)).scalar_one()
            assert ack.smtp_profile == "pec-locale" and ack.mailbox == PEC_BOX
            assert ack.to == [CITIZEN]
            out = s.execute(
                select(TicketMessage).where(TicketMessage.ticket_id == ticket_id, TicketMessage.direction == "out")
            ).scalar_one()
            assert out.message_id == ack.message_id
            ack_id, ack_subject = ack.message_id, ack.subject
        assert wait_until(lambda: ack_id in [m.message_id for m in sink.messages], 30)  # type: ignore[attr-defined]

    # The replies reached the sink, addressed to the real senders; the forged daticert's claim got nothing.
    (ack_mail,) = _sunk_to(sink, CITIZEN)
    assert ack_mail["Message-ID"].strip("<>") == ack_id
    assert MAILBOX in str(ack_mail["From"])
    assert ticket_id in str(ack_mail["Subject"])
    rejections = _sunk_to(sink, FORGER)
    assert len(rejections) == 2
    (rejection,) = _sunk_to(sink, ORDINARY)
    for reply in (*rejections, rejection):
        assert MAILBOX in str(reply["From"])
        assert "Istanza non accettata" in str(reply["Subject"])
        text = _body(reply)
        assert "Posta Elettronica Certificata" in text and MAILBOX in text

    # (4) The receipts for our acknowledgement: filed on the ticket, no new ticket, no reply.
    stamp = f"{signed_at:%Y%m%d%H%M%S}"
    common = {"our_msgid": f"<{ack_id}>", "recipient": CITIZEN, "subject": ack_subject, "data": _signed_now()}
    accettazione = receipt("accettazione", identificativo=f"opec-e2e.{stamp}.00011.01.1.1@{PROVIDER}", **common)
    consegna = receipt("avvenuta-consegna", identificativo=f"opec-e2e.{stamp}.00012.01.1.1@{PROVIDER}", **common)
    errore = receipt("errore-consegna", identificativo=f"opec-e2e.{stamp}.00013.01.1.1@{PROVIDER}", **common)
    receipt_ids = {
        "accettazione": f"opec-e2e.{stamp}.00011.01.1.1@{PROVIDER}",
        "avvenuta-consegna": f"opec-e2e.{stamp}.00012.01.1.1@{PROVIDER}",
        "errore-consegna": f"opec-e2e.{stamp}.00013.01.1.1@{PROVIDER}",
    }
    # Receipts that do not verify are no receipts: a delivery error forged by copying the X- headers
    # onto an unsigned message, and an acceptance signed by an authority the admin did not configure.
    fake_ids = [f"opec-e2e.{stamp}.00021.01.1.1@{PROVIDER}", f"opec-e2e.{stamp}.00022.01.1.1@{PROVIDER}"]
    fake_errore = receipt("errore-consegna", identificativo=fake_ids[0], **common).unsigned()
    stranger = make_ca("CA non configurata")
    fake_accettazione = receipt(
        "accettazione", identificativo=fake_ids[1], signer=make_signer(stranger), chain=[stranger.cert], **common
    ).raw()
    sunk_before = len(sink.messages)  # type: ignore[attr-defined]

    with running_service(cfg) as service:
        imap.append_many(user, [accettazione.raw(), consegna.raw(), fake_errore, fake_accettazione])  # type: ignore[attr-defined]
        ok = [receipt_ids["accettazione"], receipt_ids["avvenuta-consegna"], *fake_ids]
        assert wait_until(lambda: _recorded(service, ok), 60), "ricevute non registrate"
        for mid in fake_ids:
            row = _inbound(service, mid)
            assert row is not None and row.analysis is not None
            assert row.analysis["pec_kind"] == "non_verificata" and row.analysis["pec_failure"], mid
            assert row.outcome == "ignored" and row.ticket_id is None, (
                f"{mid}: una ricevuta non verificata non apre pratiche e non si archivia sulla pratica"
            )
        for tipo in ("accettazione", "avvenuta-consegna"):
            row = _inbound(service, receipt_ids[tipo])
            assert row is not None
            assert (row.outcome, row.reason, row.ticket_id) == ("ignored", "ricevuta_pec", ticket_id), tipo
            assert row.analysis is not None and row.analysis["pec_receipt_type"] == tipo
        with service.session_factory() as s:
            events = list(s.execute(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)).scalars())
        filed = {e.kind: e for e in events if e.kind.startswith("ricevuta_pec_")}
        assert sorted(e.kind for e in events if e.kind.startswith("ricevuta_pec_")) == [
            "ricevuta_pec_accettazione",
            "ricevuta_pec_avvenuta-consegna",
        ], "solo le ricevute verificate sono archiviate sulla pratica"
        for tipo in ("accettazione", "avvenuta-consegna"):
            data = filed[f"ricevuta_pec_{tipo}"].data or {}
            assert data.get("ricevuta") == tipo
            assert data.get("identificativo") == receipt_ids[tipo]
            assert data.get("riferimento") == ack_id
            assert data.get("archivio"), "la ricevuta resta nell'archivio come prova"
        assert _count(service, Ticket) == 1, "le ricevute non aprono pratiche"
        assert _count(service, Alert, Alert.kind == "pec_non_consegnata") == 0

        # (5) A delivery error: filed too, and it alerts the admin and the ticket's referents.
        imap.append(user, errore.raw())  # type: ignore[attr-defined]
        assert wait_until(lambda: _recorded(service, [receipt_ids["errore-consegna"]]), 60)
        row = _inbound(service, receipt_ids["errore-consegna"])
        assert row is not None
        assert (row.outcome, row.reason, row.ticket_id) == ("ignored", "ricevuta_pec", ticket_id)
        with service.session_factory() as s:
            alerts = list(s.execute(select(Alert).where(Alert.kind == "pec_non_consegnata")).scalars())
            assert len(alerts) == 1
            assert alerts[0].ticket_id == ticket_id and alerts[0].mailbox == PEC_BOX
            assert alerts[0].inbound_id == row.id
            kinds = [e.kind for e in s.execute(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)).scalars()]
            assert "ricevuta_pec_errore-consegna" in kinds
            notice = s.execute(select(Outbox).where(Outbox.template == "avviso_pec_non_consegnata")).scalar_one()
            assert set(notice.to) == OFFICE_REFERENTS
            assert notice.ticket_id == ticket_id
        assert _count(service, Ticket) == 1
        assert wait_until(
            lambda: any(set(m.rcpt_tos) == OFFICE_REFERENTS for m in sink.messages[sunk_before:]),  # type: ignore[attr-defined]
            30,
        ), "avviso ai referenti non inviato"

    # The admins' alert digest (first pec_non_consegnata alert) goes out too; it is not a reply.
    admins = set(cfg.admin_addresses)
    new = [m for m in sink.messages[sunk_before:] if not set(m.rcpt_tos) <= admins]  # type: ignore[attr-defined]
    assert len(new) == 1, "solo l'avviso ai referenti: le ricevute non ricevono risposta"
    assert set(new[0].rcpt_tos) == OFFICE_REFERENTS
    notice_mail = message_from_bytes(new[0].raw, policy=default_policy)
    assert ticket_id in str(notice_mail["Subject"])
    text = _body(notice_mail)
    assert "errore-consegna" in text and "Utente inesistente" in text and CITIZEN in text
    # Every message left INBOX for the processed folder.
    assert imap.list_uids(user, "INBOX") == []  # type: ignore[attr-defined]


# -- acceptance 4 -----------------------------------------------------------------------------


def _truncated_signature(raw: bytes) -> bytes:
    """The smime.p7s base64 cut in the middle (a length that is no multiple of 4), boundaries kept."""
    at = raw.index(b'filename="smime.p7s"')
    start = raw.index(b"\r\n\r\n", at) + 4
    end = raw.index(b"\r\n--", start)
    return raw[:start] + raw[start : start + (end - start) // 2 - 3] + raw[end:]


def _cut_off(raw: bytes) -> bytes:
    """The whole message cut off in the middle of the signature: no closing boundary."""
    at = raw.index(b'filename="smime.p7s"')
    start = raw.index(b"\r\n\r\n", at) + 4
    end = raw.index(b"\r\n--", start)
    return raw[: start + (end - start) // 2 + 1]


def _billion_laughs() -> bytes:
    entities = [b'<!ENTITY lol0 "lol">']
    entities += [f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">'.encode() for n in range(1, 10)]
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE postacert [\n'
        + b"\n".join(entities)
        + b'\n]>\n<postacert tipo="posta-certificata" errore="nessuno"><intestazione>'
        + b"<mittente>&lol9;</mittente><oggetto>&lol9;</oggetto></intestazione><dati>"
        + b"<identificativo>&lol9;</identificativo></dati></postacert>\n"
    )


def _nested(depth: int, stamp: str) -> bytes:
    """A genuine envelope whose postacert.eml is an envelope, and so on, `depth` envelopes deep."""
    inner = original_message(sender=CITIZEN, subject=ISTANZA, message_id="<nido-0@pec.example>")
    for n in range(1, depth + 1):
        inner = envelope(
            original=inner,
            sender=CITIZEN,
            subject=ISTANZA,
            identificativo=f"opec-nido.{stamp}.{n:05d}@{PROVIDER}",
            msgid=f"<nido-{n - 1}@pec.example>",
        ).raw()
    return inner


def test_malformed_pec_over_imap_gets_recorded_outcomes_and_the_daemon_keeps_running(pec_stack) -> None:
    cfg, imap, sink = pec_stack.config, pec_stack.imap, pec_stack.sink
    user = _user(cfg)
    stamp = f"{_signed_now():%Y%m%d%H%M%S}"

    def genuine(n: int, **kwargs: object) -> bytes:
        return envelope(
            sender=f"cittadino{n}@pec.example",
            subject=ISTANZA,
            identificativo=f"opec-rotto.{stamp}.{n:05d}@{PROVIDER}",
            msgid=f"<rotto-{n}@pec.example>",
            **kwargs,  # type: ignore[arg-type]
        ).raw()

    broken_xml = daticert_xml(
        "posta-certificata",
        mittente="cittadino3@pec.example",
        oggetto=ISTANZA,
        identificativo=f"opec-rotto.{stamp}.00003@{PROVIDER}",
        msgid="<rotto-3@pec.example>",
    )
    malformed = {
        "base64 troncato": _truncated_signature(genuine(1)),
        "messaggio troncato": _cut_off(genuine(2)),
        "XML rotto": genuine(3, daticert=broken_xml[: len(broken_xml) // 2]),
        "billion laughs": genuine(4, daticert=_billion_laughs()),
        "dieci buste annidate": _nested(10, stamp),
    }
    ids = {name: _message_id(raw) for name, raw in malformed.items()}
    ids["dieci buste annidate"] = f"opec-nido.{stamp}.00009@{PROVIDER}"  # the outer one's postacert
    assert len(set(ids.values())) == len(ids)

    with running_service(cfg) as service:
        imap.append_many(user, list(malformed.values()))  # type: ignore[attr-defined]
        assert wait_until(lambda: _recorded(service, ids.values()), 90), {
            name: _inbound(service, mid) is not None for name, mid in ids.items()
        }
        rows = {name: _inbound(service, mid) for name, mid in ids.items()}
        for name, row in rows.items():
            assert row is not None
            assert row.outcome in {"opened", "rejected", "ignored", "quarantined", "appended"}, name
            assert row.reason != "errore_interno", f"{name}: errore interno invece di un esito"
            assert row.analysis is not None, name
        for name in ("base64 troncato", "messaggio troncato", "XML rotto", "billion laughs"):
            row = rows[name]
            assert row is not None and row.analysis is not None
            assert row.analysis["pec_kind"] == "non_verificata", name
            assert row.analysis["pec_verified"] is False, name
            assert row.analysis["pec_failure"], f"{name}: motivo non registrato"
            assert (row.outcome, row.reason, row.ticket_id) == ("rejected", "istanza_non_pec", None), name
        assert "Entit" in rows["billion laughs"].analysis["pec_failure"]  # type: ignore[union-attr,index]
        nested = rows["dieci buste annidate"]
        assert nested is not None and nested.analysis is not None
        # The outer envelope is genuine PEC: one level is unwrapped, the rest stays an attachment.
        assert nested.analysis["pec_kind"] == "posta-certificata" and nested.analysis["pec_verified"] is True
        assert nested.outcome == "opened" and nested.sender == CITIZEN

        # Still running: a genuine istanza appended afterwards is processed as usual.
        after = envelope(
            sender="dopo@pec.example",
            subject=ISTANZA,
            identificativo=f"opec-dopo.{stamp}@{PROVIDER}",
            msgid="<dopo-0001@pec.example>",
        ).raw()
        imap.append(user, after)  # type: ignore[attr-defined]
        assert wait_until(lambda: _recorded(service, ["dopo-0001@pec.example"]), 60), "il servizio si è fermato"
        row = _inbound(service, "dopo-0001@pec.example")
        assert row is not None and row.outcome == "opened" and row.sender == "dopo@pec.example"
        assert wait_until(lambda: imap.list_uids(user, "INBOX") == [], 30)  # type: ignore[attr-defined]
        assert _count(service, Alert, Alert.kind == "errore_interno") == 0
        assert wait_until(lambda: any("dopo@pec.example" in m.rcpt_tos for m in sink.messages), 30)  # type: ignore[attr-defined]
