"""PEC re-wrapped by a mailing list or forwarded as an attachment is found and verified on its own
signature; and a genuine PEC counts as certified mail to us only if its daticert names our mailbox."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.config import Config
from daemon.core.pipeline import InboundItem
from daemon.pec import PecAnalysis, PecTrust, analyse_pec
from daemon.service import Service
from tests.pec.factory import MAILBOX, default_pki, envelope, original_message, postacert_part

POSTACERT = 2  # index of postacert.eml among a factory envelope's parts


def list_rewrap(raw: bytes) -> bytes:
    """What a list manager adding a footer does: the PEC headers stay, the signed body becomes the
    first part of a multipart/mixed, the footer the second."""
    head, _, body = raw.partition(b"\r\n\r\n")
    signed_type = re.search(rb"(?im)^Content-Type: (multipart/signed[^\r\n]*)", head)
    assert signed_type is not None
    outer_head = re.sub(rb"(?im)^Content-Type: multipart/signed[^\r\n]*\r\n?", b"", head + b"\r\n")
    return (
        outer_head
        + b'List-Id: Pratiche <pratiche.lists.example>\r\nContent-Type: multipart/mixed; boundary="lista"\r\n\r\n'
        + b"--lista\r\nContent-Type: "
        + signed_type.group(1)
        + b"\r\n\r\n"
        + body
        + b"\r\n--lista\r\nContent-Type: text/plain\r\n\r\n-- \r\nLista pratiche: per uscire esci@lists.example\r\n"
        + b"--lista--\r\n"
    )


def forwarded(raw: bytes, to: str = MAILBOX) -> bytes:
    return (
        (
            f"From: Collega <collega@posta.example>\r\nTo: {to}\r\nSubject: I: PEC ricevuta per errore\r\n"
            'Message-ID: <inoltro-1@posta.example>\r\nContent-Type: multipart/mixed; boundary="fw"\r\n\r\n'
            "--fw\r\nContent-Type: text/plain\r\n\r\nVi inoltro la PEC in allegato.\r\n"
            '--fw\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename="pec.eml"\r\n\r\n'
        ).encode()
        + raw
        + b"\r\n--fw--\r\n"
    )


def test_a_pec_re_wrapped_by_a_list_is_found_and_verified(trust: PecTrust) -> None:
    result = analyse_pec(list_rewrap(envelope().raw()), trust, MAILBOX)
    assert (result.kind, result.verified, result.wrapped, result.addressed_to_us) == (
        "posta-certificata",
        True,
        True,
        True,
    )
    assert result.to_dict()["pec_wrapped"] is True


def test_a_pec_forwarded_as_attachment_is_found_and_verified(trust: PecTrust) -> None:
    result = analyse_pec(forwarded(envelope().raw()), trust, MAILBOX)
    assert (result.kind, result.verified, result.wrapped) == ("posta-certificata", True, True)
    assert result.mittente == "mario.rossi@pec.example"


@pytest.mark.parametrize("wrap", [list_rewrap, forwarded])
def test_a_wrapped_pec_is_never_genuine_unless_its_own_signature_verifies(trust: PecTrust, wrap) -> None:
    tampered = envelope().replace(POSTACERT, postacert_part(original_message(subject="Altro testo")))
    result = analyse_pec(wrap(tampered.raw()), trust, MAILBOX)
    assert result.kind == "non_verificata" and not result.verified and result.wrapped


def test_plain_mail_is_not_taken_for_wrapped_pec(trust: PecTrust) -> None:
    ordinary = forwarded(b"From: a@posta.example\r\nSubject: ciao\r\n\r\ntesto\r\n")
    assert analyse_pec(ordinary, trust, MAILBOX) == PecAnalysis(kind="none")


def test_a_genuine_pec_to_someone_else_is_not_certified_mail_to_us(trust: PecTrust) -> None:
    result = analyse_pec(envelope(recipient="ufficio.altrove@pec.example").raw(), trust, MAILBOX)
    assert (result.kind, result.verified, result.addressed_to_us) == ("posta-certificata", False, False)
    assert result.rules_kind == "non_verificata"
    assert result.to_dict()["pec_addressed_to_us"] is False and MAILBOX in (result.failure or "")
    mine = analyse_pec(envelope().raw(), trust, MAILBOX)
    assert (mine.verified, mine.addressed_to_us, mine.rules_kind) == (True, True, "posta-certificata")


NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


@pytest.fixture
def pec_service(shipped_config: Config, tmp_path: Path) -> Iterator[Service]:
    bundle = default_pki().write_bundle(tmp_path)
    service = Service(shipped_config.model_copy(update={"pec": {"ca_bundle": str(bundle)}}), clock=lambda: NOW)
    yield service
    service.close()


def test_the_pec_rules_reject_an_istanza_certified_for_someone_else(pec_service: Service) -> None:
    subject = "Artigiani - istanza di rimborso contributi"
    [mine, theirs] = pec_service.ingest(
        [
            InboundItem(envelope(subject=subject, msgid="<a@pec.example>").raw(), "fe-pec"),
            InboundItem(
                envelope(subject=subject, msgid="<b@pec.example>", recipient="altro@pec.example").raw(), "fe-pec"
            ),
        ]
    )
    assert mine.outcome == "opened"
    assert (theirs.outcome, theirs.reason) == ("rejected", "istanza_non_pec")
