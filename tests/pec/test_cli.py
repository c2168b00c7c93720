"""`sportello pec verify FILE.eml`: the Italian verification report and its exit codes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from daemon.cli.main import app
from tests.pec.factory import Pki, anomaly, envelope, make_signer, original_message, receipt
from tests.support.paths import PEC_SAMPLES, ROOT

SHIPPED_CONFIG = ROOT / "config.yaml"
GENUINE_SAMPLE = "oca_7.0_pec_messages_message1_posta-certificata.eml"
FORGED_SAMPLE = "oca_b59241d_fatturapa_pec_Normal_email_edited_envelope.eml"


def verify(*args: str | Path) -> Result:
    # A wide terminal, so that no table cell is wrapped in the middle of a value.
    return CliRunner().invoke(app, ["pec", "verify", *map(str, args)], env={"COLUMNS": "250"})


def report(result: Result) -> dict:
    return json.loads(result.stdout)


def sample(name: str) -> Path:
    if not PEC_SAMPLES.is_dir():  # external data (../shared): skipped, with the reason, where it is absent
        pytest.skip(f"campioni PEC condivisi assenti: {PEC_SAMPLES}")
    return PEC_SAMPLES / name


def config_with_bundle(directory: Path, bundle: Path | str | None) -> Path:
    """config.yaml as shipped, with pec.ca_bundle pointing elsewhere (or the pec section removed)."""
    text = SHIPPED_CONFIG.read_text(encoding="utf-8")
    shipped = "  ca_bundle: certs/pec-ca-bundle.pem"
    assert shipped in text
    text = text.replace(shipped, f"  ca_bundle: {bundle}" if bundle is not None else "  {}")
    if bundle is None:
        text = re.sub(r"(?m)^pec:\n(?:\s+#.*\n)*\s+\{\}\n", "", text)
    path = directory / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def test_config(tmp_path: Path, test_ca_path: Path) -> Path:
    return config_with_bundle(tmp_path, test_ca_path)


def write(tmp_path: Path, raw: bytes, name: str = "messaggio.eml") -> Path:
    path = tmp_path / name
    path.write_bytes(raw)
    return path


# -- real samples with the shipped configuration ------------------------------------------------


def test_genuine_sample_report() -> None:
    result = verify(sample(GENUINE_SAMPLE), "--config", SHIPPED_CONFIG)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in (
        "busta di trasporto (posta certificata)",
        "valida (contenuto integro)",
        "CN=Posta Certificata ARUBA PEC",  # signer
        "CN=DigitPA CA1",  # issuer
        "valida, verificata alla data certificata 2014-11-07T16:52:00+01:00",  # chain as of the signed time
        "pec-ca-bundle.pem",
        "opec275.20141107165200.03048.08.1.17@pec.aruba.it",
        "thinkstudio@pec.it",
        "PEC AUTENTICA",
        "Dati di certificazione (daticert.xml, firmati e verificati)",
        "l.battistini@pec.it (certificato)",
        "ARUBA PEC S.p.A.",
    ):
        assert expected in out, expected


def test_genuine_sample_json() -> None:
    result = verify(sample(GENUINE_SAMPLE), "--config", SHIPPED_CONFIG, "--json")
    assert result.exit_code == 0, result.output
    data = report(result)
    assert data["genuine"] is True
    assert data["pec_kind"] == "posta-certificata"
    assert data["pec_verified"] is True
    assert data["pec_data"] == "2014-11-07T16:52:00+01:00"
    assert data["chain_checked_at"] == "2014-11-07T16:52:00+01:00"
    assert data["pec_failure"] is None
    assert "DigitPA CA1" in data["issuer"]
    assert data["daticert"]["tipo"] == "posta-certificata"
    assert data["ca_bundle"].endswith("certs/pec-ca-bundle.pem")


def test_forged_sample() -> None:
    result = verify(sample(FORGED_SAMPLE), "--config", SHIPPED_CONFIG)
    assert result.exit_code == 1, result.output
    assert "NON è una PEC autentica" in result.stdout
    assert "firma non valida" in result.stdout
    assert "si presenta come busta di trasporto" in result.stdout
    assert "PEC AUTENTICA" not in result.stdout.replace("NON è una PEC autentica", "")


def test_genuine_receipt_sample_json() -> None:
    result = verify(sample("oca_7.0_pec_messages_message2_accettazione.eml"), "-c", SHIPPED_CONFIG, "--json")
    assert result.exit_code == 0, result.output
    data = report(result)
    assert (data["pec_kind"], data["pec_receipt_type"]) == ("ricevuta", "accettazione")


# -- synthetic messages -------------------------------------------------------------------------


def test_synthetic_genuine_envelope(tmp_path: Path, test_config: Path) -> None:
    file = write(tmp_path, envelope().raw())
    result = verify(file, "--config", test_config)
    assert result.exit_code == 0, result.output
    assert "PEC AUTENTICA" in result.stdout
    assert "CN=Posta Certificata Test" in result.stdout
    assert "verificata alla data certificata 2024-03-12T10:15:03+01:00" in result.stdout
    assert "mario.rossi@pec.example" in result.stdout

    data = report(verify(file, "--config", test_config, "--json"))
    assert data["genuine"] is True
    assert data["pec_identificativo"] == "opec-test.20240312101503.00001.01.1.1@pec.gestore-prova.example"
    assert data["pec_mittente"] == "mario.rossi@pec.example"
    assert data["inner_bytes"] == len(original_message())


def test_synthetic_receipt(tmp_path: Path, test_config: Path) -> None:
    file = write(tmp_path, receipt("errore-consegna").raw())
    result = verify(file, "--config", test_config)
    assert result.exit_code == 0, result.output
    assert "ricevuta PEC di errore-consegna" in result.stdout
    assert "5.1.1 - Utente inesistente" in result.stdout


def test_synthetic_envelope_against_the_shipped_authorities(tmp_path: Path) -> None:
    """The test CA is not a PEC authority of the shipped bundle: not genuine, and the report says why."""
    result = verify(write(tmp_path, envelope().raw()), "--config", SHIPPED_CONFIG)
    assert result.exit_code == 1, result.output
    assert "NON è una PEC autentica" in result.stdout
    assert "catena del firmatario non valida" in result.stdout
    assert "NON valida, verificata alla data certificata 2024-03-12T10:15:03+01:00" in result.stdout
    assert "NON verificati: non fanno fede" in result.stdout


def test_synthetic_expired_signer(tmp_path: Path, test_config: Path, pki: Pki) -> None:
    expired = make_signer(
        pki.ca, not_before=datetime(2018, 1, 1, tzinfo=UTC), not_after=datetime(2021, 1, 1, tzinfo=UTC)
    )
    result = verify(write(tmp_path, envelope(signer=expired).raw()), "--config", test_config, "--json")
    assert result.exit_code == 1, result.output
    data = report(result)
    assert data["genuine"] is False
    assert data["pec_kind"] == "non_verificata"
    assert "scaduto" in data["pec_failure"]


def test_unsigned_copy(tmp_path: Path, test_config: Path) -> None:
    result = verify(write(tmp_path, envelope().unsigned()), "--config", test_config)
    assert result.exit_code == 1, result.output
    assert "messaggio non firmato" in result.stdout


def test_anomaly_is_not_genuine_pec(tmp_path: Path, test_config: Path) -> None:
    result = verify(write(tmp_path, anomaly()), "--config", test_config)
    assert result.exit_code == 1, result.output
    assert "busta di anomalia" in result.stdout


def test_ordinary_mail_is_not_pec(tmp_path: Path, test_config: Path) -> None:
    result = verify(write(tmp_path, original_message()), "--config", test_config)
    assert result.exit_code == 1, result.output
    assert "non è un messaggio PEC" in result.stdout
    data = report(verify(write(tmp_path, original_message()), "--config", test_config, "--json"))
    assert (data["pec_kind"], data["genuine"]) == ("none", False)


def test_malformed_file_gives_a_report(tmp_path: Path, test_config: Path) -> None:
    raw = b"X-Trasporto: posta-certificata\r\nContent-Type: multipart/signed; boundary=x\r\n\r\n--x\r\n\xff\xfe"
    result = verify(write(tmp_path, raw), "--config", test_config)
    assert result.exit_code == 1, result.output
    assert "NON è una PEC autentica" in result.stdout


# -- unusable input -----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path, test_config: Path) -> None:
    result = verify(tmp_path / "assente.eml", "--config", test_config)
    assert result.exit_code == 2
    assert "impossibile leggere" in result.stderr


def test_directory_instead_of_file(tmp_path: Path, test_config: Path) -> None:
    result = verify(tmp_path, "--config", test_config)
    assert result.exit_code == 2
    assert "impossibile leggere" in result.stderr


def test_missing_config(tmp_path: Path) -> None:
    result = verify(write(tmp_path, envelope().raw()), "--config", tmp_path / "nessuna.yaml")
    assert result.exit_code == 2
    assert "Configurazione non valida" in result.stderr


def test_bundle_not_found(tmp_path: Path) -> None:
    config = config_with_bundle(tmp_path, tmp_path / "manca.pem")
    result = verify(write(tmp_path, envelope().raw()), "--config", config)
    assert result.exit_code == 2
    assert "pec.ca_bundle" in result.stderr and "non trovato" in result.stderr


def test_bundle_without_certificates(tmp_path: Path) -> None:
    bundle = tmp_path / "vuoto.pem"
    bundle.write_text("# nessun certificato\n", encoding="utf-8")
    result = verify(write(tmp_path, envelope().raw()), "--config", config_with_bundle(tmp_path, bundle))
    assert result.exit_code == 2
    assert "nessun certificato" in result.stderr


def test_pec_not_configured(tmp_path: Path) -> None:
    result = verify(write(tmp_path, envelope().raw()), "--config", config_with_bundle(tmp_path, None))
    assert result.exit_code == 2
    assert "non configurata" in result.stderr


def test_help_lists_verify() -> None:
    result = CliRunner().invoke(app, ["pec", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "verify" in result.stdout


def test_verify_for_a_mailbox_checks_the_destinatari_and_finds_a_forwarded_envelope(
    tmp_path: Path, test_config: Path
) -> None:
    elsewhere = write(tmp_path, envelope(recipient="altro.ufficio@pec.example").raw(), "altrove.eml")
    result = verify(elsewhere, "--config", test_config, "--mailbox", "fe-pec")
    assert result.exit_code == 1 and "NO: non è tra i destinatari" in result.stdout
    assert (
        report(verify(elsewhere, "--config", test_config, "--mailbox", "fe-pec", "--json"))["pec_addressed_to_us"]
        is False
    )
    forwarded = write(
        tmp_path,
        b'From: collega@posta.example\r\nSubject: I: PEC\r\nContent-Type: multipart/mixed; boundary="f"\r\n\r\n'
        b"--f\r\nContent-Type: message/rfc822\r\n\r\n" + envelope().raw() + b"\r\n--f--\r\n",
        "inoltro.eml",
    )
    data = report(verify(forwarded, "--config", test_config, "--mailbox", "fe-pec", "--json"))
    assert (data["genuine"], data["pec_wrapped"], data["pec_addressed_to_us"]) == (True, True, True)
