"""The real and public PEC samples in ../shared/pec-samples, as their MANIFEST describes them.

The MANIFEST table is the expectation: each file is recognised as the kind stated there; with the
shipped CA bundle the ones whose signature is valid verify, and the others (forged, unsigned,
unparseable signature) are `non_verificata` with a reason, never genuine PEC.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.pec import PecAnalysis, PecTrust, analyse_pec
from tests.support.paths import PEC_SAMPLES

if not PEC_SAMPLES.is_dir():  # external data (../shared): skipped, with the reason, where it is absent
    pytest.skip(
        f"campioni PEC condivisi assenti ({PEC_SAMPLES}): test sui messaggi reali saltati", allow_module_level=True
    )

MANIFEST = PEC_SAMPLES / "MANIFEST.md"


@dataclass(frozen=True)
class Expected:
    file: str
    kind: str  # posta-certificata | ricevuta
    receipt_type: str | None
    valid: bool  # the MANIFEST says the signature is valid


def _manifest_rows() -> list[Expected]:
    rows = []
    for line in MANIFEST.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        # | file | origin | kind | licence | notes |
        if len(cells) < 5 or not cells[0].endswith(".eml"):
            continue
        file, kind_text, notes = cells[0], cells[2].lower(), cells[4].lower()
        if kind_text.startswith("transport envelope"):
            kind, receipt = "posta-certificata", None
        else:
            match = re.match(r"receipt:\s*([a-z-]+)", kind_text)
            assert match, f"MANIFEST: tipo non riconosciuto per {file}: {kind_text}"
            kind, receipt = "ricevuta", match.group(1)
        rows.append(Expected(file, kind, receipt, "signature valid" in notes))
    return rows


ROWS = _manifest_rows()
BY_NAME = {r.file: r for r in ROWS}
VALID = [r for r in ROWS if r.valid]
INVALID = [r for r in ROWS if not r.valid]


def _analyse(name: str, trust: PecTrust) -> PecAnalysis:
    return analyse_pec((PEC_SAMPLES / name).read_bytes(), trust)


def test_manifest_lists_every_sample_and_is_read_correctly() -> None:
    on_disk = {p.name for p in PEC_SAMPLES.iterdir() if p.suffix == ".eml"}
    assert on_disk == set(BY_NAME)
    # The reading of the table itself, on rows whose meaning is certain.
    assert BY_NAME["oca_7.0_pec_messages_message2_accettazione.eml"] == Expected(
        "oca_7.0_pec_messages_message2_accettazione.eml", "ricevuta", "accettazione", True
    )
    assert BY_NAME["biagioT__consegna.eml"].receipt_type == "errore-consegna"
    forged = BY_NAME["oca_b59241d_fatturapa_pec_Normal_email_edited_envelope.eml"]
    assert (forged.kind, forged.valid) == ("posta-certificata", False)
    assert len(VALID) == 4 and len(INVALID) == 5


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.file)
def test_every_sample_is_recognised_as_its_manifest_kind(row: Expected, shipped_trust: PecTrust) -> None:
    result = _analyse(row.file, shipped_trust)
    if row.valid:
        assert result.kind == row.kind
    else:
        # Unsigned or unparseable signature: what it claims to be, never genuine.
        assert result.kind == "non_verificata"
        assert result.looks_like == row.kind
    assert result.receipt_type == row.receipt_type


@pytest.mark.parametrize("row", VALID, ids=lambda r: r.file)
def test_valid_samples_verify_with_the_shipped_bundle(row: Expected, shipped_trust: PecTrust) -> None:
    result = _analyse(row.file, shipped_trust)
    assert result.kind in ("posta-certificata", "ricevuta")
    assert result.verified is True
    assert result.failure is None
    assert result.mittente and "@" in result.mittente
    assert result.identificativo and result.identificativo.endswith("@pec.aruba.it")
    assert result.data is not None and result.data.utcoffset() is not None
    assert result.to_dict()["pec_data"].endswith("+01:00")
    assert result.signer and "CN=Posta Certificata ARUBA PEC" in result.signer
    assert result.issuer and "CN=DigitPA CA1" in result.issuer
    # The Aruba certificate of 2014 expired long ago: the chain is checked as of the signed time.
    assert result.chain_checked_at == result.data
    assert result.data.year == 2014
    assert result.daticert is not None and result.daticert.tipo == (row.receipt_type or row.kind)


@pytest.mark.parametrize("row", INVALID, ids=lambda r: r.file)
def test_invalid_samples_are_not_verified_and_say_why(row: Expected, shipped_trust: PecTrust) -> None:
    result = _analyse(row.file, shipped_trust)
    assert result.kind == "non_verificata"
    assert result.verified is False
    assert result.failure
    # Nothing unverified is reported as certified.
    assert (result.mittente, result.identificativo, result.data, result.inner_raw) == (None, None, None, None)
    assert result.to_dict()["pec_failure"] == result.failure


def test_forged_envelope_fails_on_its_signature(shipped_trust: PecTrust) -> None:
    result = _analyse("oca_b59241d_fatturapa_pec_Normal_email_edited_envelope.eml", shipped_trust)
    assert result.kind == "non_verificata"
    assert result.signature_valid is False
    assert "firma non valida" in (result.failure or "")


def test_envelope_unwraps_postacert_exactly_as_signed(shipped_trust: PecTrust) -> None:
    result = _analyse("oca_7.0_pec_messages_message2_posta-certificata.eml", shipped_trust)
    assert result.kind == "posta-certificata" and result.inner_raw
    inner = email.message_from_bytes(result.inner_raw, policy=email.policy.default)
    assert inner["Subject"] == "Re: test"
    assert "thinkstudio@pec.it" in inner["From"]
    assert result.daticert is not None
    assert result.riferimento_message_id == result.daticert.msgid
    # The signed form is CRLF throughout: the bytes are the signed ones, not a re-serialisation.
    assert b"\r\n" in result.inner_raw and b"\n" not in result.inner_raw.replace(b"\r\n", b"")


def test_delivery_receipt_refers_to_our_message(shipped_trust: PecTrust) -> None:
    result = _analyse("oca_7.0_pec_messages_message2_avvenuta-consegna.eml", shipped_trust)
    assert (result.kind, result.receipt_type) == ("ricevuta", "avvenuta-consegna")
    assert result.riferimento_message_id == (
        "1415985992.182905912399292.346704098667155-openerp-private@elbati-Vostro-3550"
    )
    assert result.inner_raw  # a complete receipt carries the delivered message


def test_no_public_root_fallback(tmp_path: Path, test_ca_path: Path) -> None:
    """Without DigitPA CA1 in the configured bundle the Aruba samples must not verify, although their
    chain reaches a public root (Baltimore CyberTrust) that the system store may hold."""
    trust = PecTrust(ca_bundle=test_ca_path)
    for row in VALID:
        result = _analyse(row.file, trust)
        assert result.kind == "non_verificata", row.file
        assert result.signature_valid is True
        assert "catena del firmatario non valida" in (result.failure or "")


@pytest.mark.parametrize("row", VALID, ids=lambda r: r.file)
def test_line_ends_do_not_matter(row: Expected, shipped_trust: PecTrust) -> None:
    raw = (PEC_SAMPLES / row.file).read_bytes()
    lf = raw.replace(b"\r\n", b"\n")
    crlf = lf.replace(b"\n", b"\r\n")
    for variant in (lf, crlf):
        result = analyse_pec(variant, shipped_trust)
        assert (result.kind, result.verified) == (row.kind, True)


def test_header_names_in_any_case(shipped_trust: PecTrust) -> None:
    raw = (PEC_SAMPLES / "oca_7.0_pec_messages_message1_posta-certificata.eml").read_bytes()
    head, sep, body = raw.partition(b"\n\n")
    for name in (b"X-Trasporto", b"X-Riferimento-Message-ID", b"Subject", b"Content-Type"):
        head = re.sub(rb"(?mi)^" + name + rb":", name.upper() + b":", head)
    result = analyse_pec(head + sep + body, shipped_trust)
    assert (result.kind, result.verified) == ("posta-certificata", True)
