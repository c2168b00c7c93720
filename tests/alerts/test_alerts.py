"""Alerts someone reads: `sportello alerts list/ack`, and the admins' digest email (first of a kind at once,
then at most hourly), from the scenarios that raise them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.alerts.digest import DIGEST_TEMPLATE, AlertDigest, digest_due
from daemon.config import Config, load_config
from daemon.core.pipeline import InboundItem
from daemon.service import Service
from storage.models import Alert, Outbox
from tests.support.cli import cli, project_copy

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def service(shipped_config: Config) -> Service:
    return Service(shipped_config, clock=lambda: T0)


def add_alert(service: Service, kind: str, at: datetime) -> None:
    with service.session_factory() as s, s.begin():
        s.add(Alert(at=at, kind=kind, mailbox="fe-credito", note=f"prova {kind}"))


def digests(service: Service) -> list[Outbox]:
    with service.session_factory() as s:
        return list(s.execute(select(Outbox).where(Outbox.template == DIGEST_TEMPLATE).order_by(Outbox.id)).scalars())


def test_the_first_alert_of_a_kind_is_mailed_at_once_then_at_most_hourly(service: Service) -> None:
    digest = AlertDigest(service.config, service.session_factory, service.renderer)
    service.ingest([InboundItem(b"\x00\x01 non e' una email", "fe-credito")])  # quarantined
    assert digest.send(T0) == 1
    [first] = digests(service)
    assert first.to == ["amministratore.sportello@inps.example"]
    text = message_from_bytes(first.raw, policy=email_policy.default).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "quarantena" in first.subject and "quarantena" in text and "sportello alerts ack" in text

    add_alert(service, "quarantena", T0 + timedelta(minutes=5))
    assert digest.send(T0 + timedelta(minutes=10)) == 0  # same kind within the hour: it waits
    add_alert(service, "casella_non_leggibile", T0 + timedelta(minutes=20))
    assert digest.send(T0 + timedelta(minutes=21)) == 2  # a new kind: at once, with what was waiting
    add_alert(service, "quarantena", T0 + timedelta(minutes=30))
    assert digest.send(T0 + timedelta(minutes=50)) == 0
    assert digest.send(T0 + timedelta(minutes=81)) == 1  # an hour after the last digest
    assert digest.send(T0 + timedelta(minutes=200)) == 0  # nothing new: no email
    assert len(digests(service)) == 3


def test_acknowledged_alerts_are_not_mailed(service: Service) -> None:
    add_alert(service, "invio_fallito", T0)
    with service.session_factory() as s, s.begin():
        s.execute(select(Alert)).scalar_one().acknowledged_at = T0
    assert AlertDigest(service.config, service.session_factory, service.renderer).send(T0) == 0


def test_without_admins_nothing_is_mailed(service: Service) -> None:
    config = service.config.model_copy(update={"admins": ()})
    add_alert(service, "quarantena", T0)
    assert AlertDigest(config, service.session_factory, service.renderer).send(T0) == 0


@pytest.mark.parametrize(
    ("pending", "recent", "minutes_since_last", "due"),
    [
        ({"quarantena"}, set(), None, True),
        ({"quarantena"}, {"quarantena"}, 59, False),
        ({"quarantena"}, {"quarantena"}, 60, True),
        ({"quarantena", "pec_non_verificata"}, {"quarantena"}, 1, True),
        (set(), set(), None, False),
    ],
)
def test_digest_due(pending: set[str], recent: set[str], minutes_since_last: int | None, due: bool) -> None:
    last = None if minutes_since_last is None else T0 - timedelta(minutes=minutes_since_last)
    assert digest_due(pending, recent, last, T0) is due


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return project_copy(tmp_path, monkeypatch)


def test_alerts_list_shows_every_kind_and_ack_takes_one_off_the_open_list(workdir: Path) -> None:
    garbage = workdir / "garbage.eml"
    garbage.write_bytes(b"\x00\x01\x02 not an email")
    cli(workdir, "ingest", str(garbage), "--mailbox", "fe-credito")  # exit 3: something was quarantined
    service = Service(load_config(workdir / "config.yaml"))
    service._record_outage("fe-anagrafica", "ConnectionRefusedError")
    add_alert(service, "risposta_referente_sospetta", T0)  # a kind another component adds

    code, output = cli(workdir, "alerts", "list", "--json")
    assert code == 0, output
    kinds = {a["kind"] for a in json.loads(output)}
    assert kinds == {"quarantena", "casella_non_leggibile", "risposta_referente_sospetta"}
    code, output = cli(workdir, "alerts", "list", "--open")
    assert code == 0 and "casella_non_leggibile" in output and "quarantena" in output

    first = min(a["id"] for a in json.loads(cli(workdir, "alerts", "list", "--json")[1]))
    code, output = cli(workdir, "alerts", "ack", str(first))
    assert code == 0 and str(first) in output
    still_open = json.loads(cli(workdir, "alerts", "list", "--open", "--json")[1])
    assert first not in {a["id"] for a in still_open} and len(still_open) == 2

    code, output = cli(workdir, "alerts", "ack", "9999")
    assert code == 2 and "inesistente" in output
