"""Synthetic PEC messages signed by a test CA: genuine ones verify, every tampering does not.

Also malformed and hostile input: each one gives a PecAnalysis, never an exception.
"""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from daemon.pec import RECEIPT_TYPES, PecAnalysis, PecTrust, analyse_pec
from tests.pec.factory import (
    ITALY_WINTER,
    MAILBOX,
    SIGNED_AT,
    Part,
    Pki,
    Signed,
    anomaly,
    daticert_part,
    daticert_xml,
    envelope,
    make_ca,
    make_signer,
    original_message,
    postacert_part,
    receipt,
    text_part,
)

# Index of the parts in a factory envelope: [text body, daticert.xml, postacert.eml].
BODY, DATICERT, POSTACERT = 0, 1, 2


def _daticert(**changes: object) -> bytes:
    values: dict = {
        "mittente": "mario.rossi@pec.example",
        "oggetto": "Istanza di rimborso contributi",
        "identificativo": "opec-test.20240312101503.00001.01.1.1@pec.gestore-prova.example",
        "msgid": "<istanza-0001@pec.example>",
    }
    values.update(changes)
    tipo = str(values.pop("tipo", "posta-certificata"))
    return daticert_xml(tipo, **values)  # type: ignore[arg-type]


def _assert_not_genuine(result: PecAnalysis, looks_like: str = "posta-certificata") -> None:
    assert result.kind == "non_verificata"
    assert result.verified is False
    assert result.looks_like == looks_like
    assert result.failure
    # Nothing of an unverified message is reported as certified.
    assert (result.mittente, result.identificativo, result.data, result.inner_raw) == (None, None, None, None)


# -- genuine ------------------------------------------------------------------------------------


def test_genuine_envelope_verifies_and_unwraps(trust: PecTrust) -> None:
    original = original_message()
    result = analyse_pec(envelope(original=original).raw(), trust)
    assert result.kind == "posta-certificata"
    assert result.verified is True
    assert result.failure is None
    assert result.mittente == "mario.rossi@pec.example"
    assert result.data == SIGNED_AT and result.data.utcoffset() == timedelta(hours=1)
    assert result.identificativo == "opec-test.20240312101503.00001.01.1.1@pec.gestore-prova.example"
    assert result.riferimento_message_id == "istanza-0001@pec.example"
    assert result.inner_raw == original  # byte for byte, as signed
    assert result.signer and "CN=Posta Certificata Test" in result.signer
    assert result.issuer and "CN=CA PEC di prova" in result.issuer
    assert result.signature_valid is True
    assert result.chain_checked_at == SIGNED_AT
    dati = result.daticert
    assert dati is not None
    assert dati.destinatari == ((MAILBOX, "certificato"),)
    assert dati.oggetto == "Istanza di rimborso contributi"
    assert dati.gestore_emittente == "Gestore PEC di prova S.p.A."
    assert result.to_dict() == {
        "pec_kind": "posta-certificata",
        "pec_verified": True,
        "pec_receipt_type": None,
        "pec_identificativo": "opec-test.20240312101503.00001.01.1.1@pec.gestore-prova.example",
        "pec_mittente": "mario.rossi@pec.example",
        "pec_data": "2024-03-12T10:15:03+01:00",
        "pec_failure": None,
        "pec_wrapped": False,
        "pec_addressed_to_us": None,  # no receiving mailbox given
    }


def test_genuine_envelope_with_lf_line_ends(trust: PecTrust) -> None:
    result = analyse_pec(envelope().raw(linesep=b"\n"), trust)
    assert (result.kind, result.verified) == ("posta-certificata", True)


def test_x_pkcs7_signature_type(trust: PecTrust) -> None:
    env = envelope()
    legacy = dataclasses.replace(env, signature_type="application/x-pkcs7-signature")
    result = analyse_pec(legacy.raw(), trust)
    assert (result.kind, result.verified) == ("posta-certificata", True)


def test_doubled_subject_and_lowercase_header_names(trust: PecTrust) -> None:
    raw = envelope().raw()
    raw = raw.replace(b"Subject: POSTA CERTIFICATA: ", b"subject: POSTA CERTIFICATA: POSTA CERTIFICATA: ")
    raw = raw.replace(b"X-Trasporto:", b"x-trasporto:").replace(
        b"Content-Type: multipart/signed", b"content-type: multipart/signed"
    )
    result = analyse_pec(raw, trust)
    assert (result.kind, result.verified) == ("posta-certificata", True)


def test_daticert_with_doctype_but_no_entities_verifies(trust: PecTrust, pki: Pki) -> None:
    """Some providers name the DTD in daticert.xml: that alone must not make a genuine PEC fail."""
    xml = _daticert().replace(
        b"<postacert ",
        b'<!DOCTYPE postacert PUBLIC "posta certificata" "https://gestore.example/dtd/postacert.dtd">\n<postacert ',
        1,
    )
    result = analyse_pec(envelope(daticert=xml).raw(), trust)
    assert (result.kind, result.verified) == ("posta-certificata", True)


def test_headers_are_not_signed_and_never_decide(trust: PecTrust) -> None:
    """From/Reply-To rewritten after signing: still a genuine envelope, the sender is the daticert's."""
    env = envelope()
    headers = tuple(
        (k, '"Per conto di: truffatore@example.org" <posta-certificata@pec.gestore-prova.example>')
        if k == "From"
        else (k, "truffatore@example.org")
        if k == "Reply-To"
        else (k, v)
        for k, v in env.headers
    )
    result = analyse_pec(dataclasses.replace(env, headers=headers).raw(), trust)
    assert (result.kind, result.verified) == ("posta-certificata", True)
    assert result.mittente == "mario.rossi@pec.example"


def test_daticert_decides_the_kind_not_the_x_headers(trust: PecTrust) -> None:
    """A genuine receipt whose X- headers say "envelope" is still a receipt."""
    raw = receipt("accettazione").raw()
    raw = raw.replace(b"X-Ricevuta: accettazione\r\n", b"X-Trasporto: posta-certificata\r\n")
    result = analyse_pec(raw, trust)
    assert (result.kind, result.receipt_type, result.verified) == ("ricevuta", "accettazione", True)


def test_signer_valid_at_signing_but_expired_now_verifies(trust: PecTrust, pki: Pki) -> None:
    """Provider certificates expire after about three years: the chain is checked as of the signed time."""
    old = make_signer(pki.ca, not_before=datetime(2019, 1, 1, tzinfo=UTC), not_after=datetime(2022, 1, 1, tzinfo=UTC))
    signed_at = datetime(2021, 6, 1, 9, 30, 0, tzinfo=timezone(timedelta(hours=2)))  # summer time
    result = analyse_pec(envelope(signer=old, data=signed_at).raw(), trust)
    assert (result.kind, result.verified) == ("posta-certificata", True)
    assert result.data == signed_at and result.chain_checked_at == signed_at


# -- tampering ----------------------------------------------------------------------------------


def test_edited_daticert_keeping_the_signature(trust: PecTrust) -> None:
    env = envelope()
    forged = env.replace(DATICERT, daticert_part(_daticert(mittente="truffatore@example.org")))
    result = analyse_pec(forged.raw(), trust)
    _assert_not_genuine(result)
    assert result.signature_valid is False
    assert "firma non valida" in (result.failure or "")


def test_edited_daticert_reserialised_with_a_mail_library(trust: PecTrust) -> None:
    raw = envelope().raw()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    (signed, _p7s) = msg.get_payload()
    for part in signed.walk():
        if part.get_filename() == "daticert.xml":
            xml = part.get_payload(decode=True).replace(b"2024", b"2023")
            part.set_payload(base64.encodebytes(xml).decode())
    forged = msg.as_bytes()
    reparsed = email.message_from_bytes(forged, policy=email.policy.default)
    dati = [p.get_payload(decode=True) for p in reparsed.walk() if p.get_filename() == "daticert.xml"]
    assert dati and b"<giorno>12/03/2023</giorno>" in dati[0]  # the edit is really there
    _assert_not_genuine(analyse_pec(forged, trust))


def test_edited_body(trust: PecTrust) -> None:
    env = envelope()
    forged = env.replace(BODY, text_part("Messaggio di posta certificata\nIl giorno 01/01/2020 ..."))
    _assert_not_genuine(analyse_pec(forged.raw(), trust))


def test_one_byte_changed_in_the_original(trust: PecTrust) -> None:
    env = envelope()
    raw = env.raw().replace(b"RSSMRA80A01D548U", b"RSSMRA80A01D548V")
    assert raw != env.raw()
    _assert_not_genuine(analyse_pec(raw, trust))


def test_swapped_attachment(trust: PecTrust) -> None:
    env = envelope()
    other = original_message(subject="Istanza di rimborso contributi", body="Chiedo invece la cancellazione.\n")
    forged = env.replace(POSTACERT, postacert_part(other))
    _assert_not_genuine(analyse_pec(forged.raw(), trust))


def test_signature_of_another_genuine_message(trust: PecTrust) -> None:
    """A genuine smime.p7s moved onto other content does not make it genuine."""
    donor = envelope(subject="Altro")
    victim = envelope()
    forged = dataclasses.replace(victim, signature=donor.signature)
    _assert_not_genuine(analyse_pec(forged.raw(), trust))


def test_copied_x_headers_on_an_unsigned_message(trust: PecTrust) -> None:
    result = analyse_pec(envelope().unsigned(), trust)
    _assert_not_genuine(result)
    assert result.failure == "messaggio non firmato"


def test_copied_receipt_headers_on_an_unsigned_message(trust: PecTrust) -> None:
    result = analyse_pec(receipt("avvenuta-consegna").unsigned(), trust)
    _assert_not_genuine(result, looks_like="ricevuta")
    assert result.receipt_type == "avvenuta-consegna"  # what it claims, for the report
    assert result.riferimento_message_id is None


def test_signed_by_a_certificate_of_another_authority(trust: PecTrust) -> None:
    other_ca = make_ca("Altra CA")
    impostor = make_signer(other_ca, "Posta Certificata Test")  # same name, other issuer
    result = analyse_pec(envelope(signer=impostor, chain=[other_ca.cert]).raw(), trust)
    _assert_not_genuine(result)
    assert result.signature_valid is True  # the signature itself is fine...
    assert "catena del firmatario non valida" in (result.failure or "")  # ...the signer is not a PEC provider
    assert result.chain_checked_at == SIGNED_AT


def test_signed_by_a_self_signed_certificate(trust: PecTrust) -> None:
    own = make_ca("Posta Certificata Test")
    result = analyse_pec(envelope(signer=own, chain=[]).raw(), trust)
    _assert_not_genuine(result)


def test_signed_by_the_authority_itself(trust: PecTrust, pki: Pki) -> None:
    result = analyse_pec(envelope(signer=pki.ca, chain=[]).raw(), trust)
    _assert_not_genuine(result)
    assert "autorità" in (result.failure or "")


def test_signer_expired_at_signing_time(trust: PecTrust, pki: Pki) -> None:
    expired = make_signer(
        pki.ca, not_before=datetime(2018, 1, 1, tzinfo=UTC), not_after=datetime(2021, 1, 1, tzinfo=UTC)
    )
    result = analyse_pec(envelope(signer=expired).raw(), trust)
    _assert_not_genuine(result)
    assert "scaduto" in (result.failure or "")
    assert result.chain_checked_at == SIGNED_AT


def test_signer_not_yet_valid_at_signing_time(trust: PecTrust, pki: Pki) -> None:
    future = make_signer(pki.ca, not_before=datetime(2025, 1, 1, tzinfo=UTC))
    result = analyse_pec(envelope(signer=future).raw(), trust)
    _assert_not_genuine(result)
    assert "non ancora valido" in (result.failure or "")


# -- anomaly envelopes --------------------------------------------------------------------------


def test_anomaly_envelope_is_ordinary_mail(trust: PecTrust) -> None:
    original = original_message(sender="mario.rossi@gmail.example", message_id="<ordinaria@gmail.example>")
    result = analyse_pec(anomaly(original), trust)
    assert result.kind == "anomalia"
    assert result.verified is False
    assert result.inner_raw == original
    assert result.mittente is None and result.identificativo is None


def test_signed_anomaly_envelope_without_daticert(trust: PecTrust, pki: Pki) -> None:
    original = original_message(sender="mario.rossi@gmail.example", message_id="<ordinaria@gmail.example>")
    result = analyse_pec(anomaly(original, signer=pki.signer), trust)
    assert result.kind == "anomalia"
    assert result.inner_raw == original
    assert result.identificativo is None


# -- receipts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tipo", RECEIPT_TYPES)
def test_receipts(tipo: str, trust: PecTrust) -> None:
    result = analyse_pec(receipt(tipo, our_msgid="<risposta-42@sportello.inps.example>").raw(), trust)
    assert result.kind == "ricevuta"
    assert result.receipt_type == tipo
    assert result.verified is True
    assert result.riferimento_message_id == "risposta-42@sportello.inps.example"
    assert result.identificativo and result.data == SIGNED_AT
    assert result.mittente == MAILBOX  # a receipt is about a message we sent


def test_complete_delivery_receipt_carries_the_delivered_message(trust: PecTrust) -> None:
    ours = original_message(sender=MAILBOX, to="mario.rossi@pec.example", message_id="<risposta-7@sportello.example>")
    result = analyse_pec(
        receipt("avvenuta-consegna", our_msgid="<risposta-7@sportello.example>", original=ours).raw(), trust
    )
    assert (result.kind, result.receipt_type) == ("ricevuta", "avvenuta-consegna")
    assert result.inner_raw == ours
    assert result.daticert is not None and result.daticert.consegna == "mario.rossi@pec.example"


def test_delivery_error_receipt(trust: PecTrust) -> None:
    result = analyse_pec(receipt("errore-consegna", our_msgid="<risposta-9@sportello.inps.example>").raw(), trust)
    assert (result.kind, result.receipt_type, result.verified) == ("ricevuta", "errore-consegna", True)
    assert result.riferimento_message_id == "risposta-9@sportello.inps.example"
    assert result.errore_esteso == "5.1.1 - Utente inesistente"
    assert result.daticert is not None and result.daticert.errore == "no-dest"


def test_receipt_is_filed_by_the_signed_msgid_not_the_header(trust: PecTrust) -> None:
    raw = receipt("errore-consegna", our_msgid="<risposta-1@sportello.inps.example>").raw()
    raw = raw.replace(
        b"X-Riferimento-Message-ID: <risposta-1@sportello.inps.example>",
        b"X-Riferimento-Message-ID: <pratica-altrui@sportello.inps.example>",
    )
    result = analyse_pec(raw, trust)
    assert result.verified is True
    assert result.riferimento_message_id == "risposta-1@sportello.inps.example"


def test_receipt_header_and_daticert_disagree(trust: PecTrust) -> None:
    raw = receipt("errore-consegna").raw().replace(b"X-Ricevuta: errore-consegna", b"X-Ricevuta: avvenuta-consegna")
    result = analyse_pec(raw, trust)
    assert (result.kind, result.receipt_type) == ("ricevuta", "errore-consegna")


# -- malformed and hostile ----------------------------------------------------------------------


def _resigned(env: Signed, pki: Pki, index: int, part: Part) -> bytes:
    """A part changed and then signed again by the genuine provider: only the content is wrong."""
    return env.replace(index, part).resigned(pki.signer, [pki.ca.cert]).raw()


def test_truncated_base64_signature(trust: PecTrust) -> None:
    raw = envelope().raw()
    start = raw.index(b'filename="smime.p7s"')
    body_start = raw.index(b"\r\n\r\n", start) + 4
    truncated = raw[: body_start + 300] + b"\r\n--" + envelope().outer_boundary.encode() + b"--\r\n"
    result = analyse_pec(truncated, trust)
    _assert_not_genuine(result)
    assert result.signature_valid is False


def test_truncated_message(trust: PecTrust) -> None:
    raw = envelope().raw()
    for cut in (len(raw) // 3, len(raw) // 2, len(raw) - 40):
        assert analyse_pec(raw[:cut], trust).kind == "non_verificata"


def test_garbage_signature(trust: PecTrust) -> None:
    env = envelope()
    result = analyse_pec(dataclasses.replace(env, signature=b"\x30\x82\x01\x00" + b"\x00" * 64).raw(), trust)
    _assert_not_genuine(result)


def test_broken_xml_daticert(trust: PecTrust, pki: Pki) -> None:
    broken = _daticert().replace(b"</intestazione>", b"</intestazion>")
    result = analyse_pec(_resigned(envelope(), pki, DATICERT, daticert_part(broken)), trust)
    _assert_not_genuine(result)
    assert "daticert.xml non leggibile" in (result.failure or "")


def test_billion_laughs_in_daticert(trust: PecTrust, pki: Pki) -> None:
    entities = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE postacert [<!ENTITY l0 "ha">{entities}]>'
        '<postacert tipo="posta-certificata" errore="nessuno"><intestazione><mittente>&l9;</mittente>'
        "</intestazione></postacert>"
    ).encode()
    result = analyse_pec(_resigned(envelope(), pki, DATICERT, daticert_part(bomb)), trust)
    _assert_not_genuine(result)
    assert "EntitiesForbidden" in (result.failure or "")


def test_external_entity_in_daticert(trust: PecTrust, pki: Pki) -> None:
    xxe = _daticert().replace(
        b"<postacert ", b'<!DOCTYPE postacert [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<postacert ', 1
    )
    xxe = xxe.replace(b"<oggetto>", b"<oggetto>&x;")
    result = analyse_pec(_resigned(envelope(), pki, DATICERT, daticert_part(xxe)), trust)
    _assert_not_genuine(result)


def test_resigned_control(trust: PecTrust, pki: Pki) -> None:
    """The helper below changes a part and signs again: with an unchanged daticert, still genuine."""
    result = analyse_pec(_resigned(envelope(), pki, DATICERT, daticert_part(_daticert())), trust)
    assert (result.kind, result.verified) == ("posta-certificata", True)


def test_daticert_of_unknown_tipo(trust: PecTrust, pki: Pki) -> None:
    result = analyse_pec(_resigned(envelope(), pki, DATICERT, daticert_part(_daticert(tipo="sconosciuto"))), trust)
    _assert_not_genuine(result)
    assert "tipo di daticert sconosciuto" in (result.failure or "")


def test_daticert_zone_with_colon(trust: PecTrust, pki: Pki) -> None:
    xml = _daticert().replace(b'zona="+0100"', b'zona="+01:00"')
    result = analyse_pec(_resigned(envelope(), pki, DATICERT, daticert_part(xml)), trust)
    assert result.verified is True
    assert result.data == datetime(2024, 3, 12, 10, 15, 3, tzinfo=ITALY_WINTER)


def test_daticert_without_date(trust: PecTrust, pki: Pki) -> None:
    xml = re.sub(rb"<data zona[^>]*>.*?</data>", b"", _daticert(), flags=re.S)
    result = analyse_pec(_resigned(envelope(), pki, DATICERT, daticert_part(xml)), trust)
    _assert_not_genuine(result)
    assert "senza data" in (result.failure or "")


def test_daticert_with_impossible_date(trust: PecTrust, pki: Pki) -> None:
    xml = _daticert().replace(b"<giorno>12/03/2024</giorno>", b"<giorno>31/02/2024</giorno>")
    result = analyse_pec(_resigned(envelope(), pki, DATICERT, daticert_part(xml)), trust)
    _assert_not_genuine(result)


def test_envelope_without_postacert(trust: PecTrust, pki: Pki) -> None:
    env = envelope()
    stripped = dataclasses.replace(env, parts=env.parts[:2]).resigned(pki.signer, [pki.ca.cert])
    result = analyse_pec(stripped.raw(), trust)
    _assert_not_genuine(result)
    assert "postacert.eml" in (result.failure or "")


def test_envelopes_nested_ten_deep(trust: PecTrust) -> None:
    original = original_message()
    raw = original
    for level in range(10):
        raw = envelope(original=raw, identificativo=f"opec-test.livello-{level}@pec.gestore-prova.example").raw()
    seen = 0
    while True:
        result = analyse_pec(raw, trust)
        if result.kind == "none":
            break
        assert (result.kind, result.verified) == ("posta-certificata", True)
        assert result.inner_raw is not None
        raw, seen = result.inner_raw, seen + 1
    assert seen == 10
    assert raw == original


def test_anomalies_nested_ten_deep(trust: PecTrust) -> None:
    raw = original_message(sender="mario.rossi@gmail.example")
    for _ in range(10):
        raw = anomaly(raw)
    result = analyse_pec(raw, trust)
    assert result.kind == "anomalia"
    assert result.inner_raw is not None and b"ANOMALIA MESSAGGIO:" in result.inner_raw


def test_hostile_nesting_inside_a_valid_signature(trust: PecTrust) -> None:
    """Thousands of nested multiparts signed by someone: bounded work, no recursion error."""
    body = b"Content-Type: text/plain\r\n\r\nciao\r\n"
    for i in range(3000):
        boundary = f"n{i}".encode()
        body = (
            b"Content-Type: multipart/mixed; boundary="
            + boundary
            + b"\r\n\r\n--"
            + boundary
            + b"\r\n"
            + body
            + b"\r\n--"
            + boundary
            + b"--\r\n"
        )
    intruder = make_ca("Posta Certificata Intrusa")
    env = envelope(signer=intruder, chain=[])
    deep = Part((("Content-Type", "multipart/mixed; boundary=n2999"),), body.split(b"\r\n\r\n", 1)[1])
    nested = Signed(env.headers, (deep,), b"").resigned(intruder)
    result = analyse_pec(nested.raw(), trust)
    assert result.kind == "non_verificata"
    # And unsigned, wrapped as an anomaly.
    unsigned = b"X-Trasporto: errore\r\nSubject: ANOMALIA MESSAGGIO: x\r\n" + body
    assert analyse_pec(unsigned, trust).kind == "anomalia"


def test_huge_header(trust: PecTrust) -> None:
    raw = envelope().raw()
    huge_subject = raw.replace(b"Subject: POSTA CERTIFICATA: ", b"Subject: POSTA CERTIFICATA: " + b"A" * 5_000_000, 1)
    result = analyse_pec(huge_subject, trust)
    assert (result.kind, result.verified) == ("posta-certificata", True)
    many = b"X-Trasporto: posta-certificata\r\n" + b"X-Rumore: x\r\n" * 200_000 + b"\r\nbody\r\n"
    assert analyse_pec(many, trust).kind == "non_verificata"
    folded = b"X-Trasporto: posta-certificata\r\nSubject: POSTA CERTIFICATA:\r\n" + b" a\r\n" * 200_000 + b"\r\n"
    assert analyse_pec(folded, trust).kind == "non_verificata"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff" * 100,
        b"X-Trasporto: posta-certificata\r\n",
        b"X-Trasporto: posta-certificata\r\nContent-Type: multipart/signed\r\n\r\n",
        b'X-Trasporto: posta-certificata\r\nContent-Type: multipart/signed; boundary="b"\r\n\r\n--b\r\n\r\n--b--\r\n',
        b"X-Ricevuta: accettazione\r\nContent-Type: multipart/signed; boundary=b; protocol=x\r\n\r\n--b--",
        b"X-Trasporto: errore\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
        b"Subject: =?UTF-8?B?UE9TVEEgQ0VSVElGSUNBVEE6IHByb3Zh?=\r\n\r\ntesto",
        b"Subject: =?bogus?Q?POSTA?= \xff\xfe\r\n\r\n",
    ],
)
def test_malformed_input_gives_an_outcome(raw: bytes, trust: PecTrust) -> None:
    result = analyse_pec(raw, trust)
    assert isinstance(result, PecAnalysis)
    assert result.verified is False
    assert result.kind in ("none", "non_verificata", "anomalia")


def test_rfc2047_subject_is_recognised(trust: PecTrust) -> None:
    raw = b"Subject: =?UTF-8?B?UE9TVEEgQ0VSVElGSUNBVEE6IHByb3Zh?=\r\n\r\ntesto"  # "POSTA CERTIFICATA: prova"
    assert analyse_pec(raw, trust).looks_like == "posta-certificata"


def test_ordinary_mail_is_not_pec(trust: PecTrust) -> None:
    result = analyse_pec(original_message(), trust)
    assert result == PecAnalysis(kind="none")
