"""Fixtures of the PEC tests: the test certification authority and the trust built on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.pec import PecTrust
from tests.pec.factory import Pki, default_pki
from tests.support.paths import ROOT

SHIPPED_BUNDLE = ROOT / "certs" / "pec-ca-bundle.pem"


@pytest.fixture
def pki() -> Pki:
    return default_pki()


@pytest.fixture
def test_ca_path(tmp_path: Path, pki: Pki) -> Path:
    """The test CA as a PEM bundle, as an admin would configure it in pec.ca_bundle."""
    return pki.write_bundle(tmp_path)


@pytest.fixture
def trust(test_ca_path: Path) -> PecTrust:
    return PecTrust(ca_bundle=test_ca_path)


@pytest.fixture
def shipped_trust() -> PecTrust:
    return PecTrust(ca_bundle=SHIPPED_BUNDLE)
