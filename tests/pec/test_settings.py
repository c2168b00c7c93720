"""pec.ca_bundle in config.yaml: the shipped bundle and the errors an admin can make."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from daemon.config import Config
from daemon.pec.settings import PecSettingsError, load_pec_trust
from tests.support.paths import ROOT


def _with(config: Config, pec: dict) -> Config:
    return config.model_copy(update={"pec": pec})


def test_shipped_config_uses_the_shipped_bundle(shipped_config: Config) -> None:
    trust = load_pec_trust(shipped_config)
    assert trust is not None
    assert trust.ca_bundle == ROOT / "certs" / "pec-ca-bundle.pem"
    certs = x509.load_pem_x509_certificates(trust.ca_bundle.read_bytes())
    names = {c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in certs}
    assert {"DigitPA CA1", "AgID CA1"} <= names
    text = trust.ca_bundle.read_text(encoding="utf-8")
    assert "agid.gov.it" in text  # where admins get the current official list


def test_no_pec_section_means_no_trust(shipped_config: Config) -> None:
    assert load_pec_trust(_with(shipped_config, {})) is None


def test_missing_bundle(shipped_config: Config, tmp_path: Path) -> None:
    with pytest.raises(PecSettingsError, match="non trovato"):
        load_pec_trust(_with(shipped_config, {"ca_bundle": str(tmp_path / "manca.pem")}))


def test_bundle_without_certificates(shipped_config: Config, tmp_path: Path) -> None:
    empty = tmp_path / "vuoto.pem"
    empty.write_text("# solo commenti\n", encoding="utf-8")
    with pytest.raises(PecSettingsError, match="nessun certificato"):
        load_pec_trust(_with(shipped_config, {"ca_bundle": str(empty)}))


def test_relative_bundle_is_resolved_from_the_config_folder(shipped_config: Config) -> None:
    trust = load_pec_trust(_with(shipped_config, {"ca_bundle": "certs/pec-ca-bundle.pem"}))
    assert trust is not None and trust.ca_bundle.is_file()
