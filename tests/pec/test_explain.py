"""`sportello explain --json` carries the PEC analysis: kind, verification, receipt, certified fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.config import Config
from daemon.service import Service
from tests.pec.factory import anomaly, envelope, original_message, receipt

PEC_KEYS = {
    "pec_kind",
    "pec_verified",
    "pec_receipt_type",
    "pec_identificativo",
    "pec_mittente",
    "pec_data",
    "pec_failure",
}


@pytest.fixture
def service(shipped_config: Config, test_ca_path: Path) -> Iterator[Service]:
    config = shipped_config.model_copy(update={"pec": {"ca_bundle": str(test_ca_path)}})
    svc = Service(config)
    yield svc
    svc.close()


@pytest.fixture
def shipped_service(shipped_config: Config) -> Iterator[Service]:
    svc = Service(shipped_config)
    yield svc
    svc.close()


def test_genuine_pec_in_explain(service: Service) -> None:
    result = service.explain(envelope().raw(), "fe-pec", use_db=False)
    assert set(result) >= PEC_KEYS
    assert {k: result[k] for k in PEC_KEYS} == {
        "pec_kind": "posta-certificata",
        "pec_verified": True,
        "pec_receipt_type": None,
        "pec_identificativo": "opec-test.20240312101503.00001.01.1.1@pec.gestore-prova.example",
        "pec_mittente": "mario.rossi@pec.example",
        "pec_data": "2024-03-12T10:15:03+01:00",
        "pec_failure": None,
    }
    # The ticket is about postacert.eml, from the certified sender.
    assert result["sender"] == "mario.rossi@pec.example"
    assert result["subject"] == "Istanza di rimborso contributi"
    json.dumps(result, default=str)


def test_receipt_in_explain(service: Service) -> None:
    result = service.explain(receipt("avvenuta-consegna").raw(), "fe-pec", use_db=False)
    assert (result["pec_kind"], result["pec_receipt_type"], result["pec_verified"]) == (
        "ricevuta",
        "avvenuta-consegna",
        True,
    )


def test_unverified_pec_in_explain(shipped_service: Service) -> None:
    """The test CA is not among the shipped PEC authorities."""
    result = shipped_service.explain(envelope().raw(), "fe-pec", use_db=False)
    assert result["pec_kind"] == "non_verificata"
    assert result["pec_verified"] is False
    assert result["pec_failure"] and "catena" in result["pec_failure"]
    assert result["pec_mittente"] is None and result["pec_data"] is None


def test_anomaly_and_ordinary_mail_in_explain(service: Service) -> None:
    wrapped = service.explain(anomaly(), "fe-pec", use_db=False)
    assert (wrapped["pec_kind"], wrapped["pec_verified"]) == ("anomalia", False)
    plain = service.explain(original_message(), "fe-pec", use_db=False)
    assert {k: plain[k] for k in PEC_KEYS} == {
        "pec_kind": "none",
        "pec_verified": False,
        "pec_receipt_type": None,
        "pec_identificativo": None,
        "pec_mittente": None,
        "pec_data": None,
        "pec_failure": None,
    }
