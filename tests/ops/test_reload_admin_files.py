"""Everything an admin edits reloads without a restart: templates and vocabularies like the rules; a broken
edit keeps the last good version in force and raises an alert (once), naming the file and the line."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from daemon.config import Config
from daemon.core.pipeline import InboundItem
from daemon.ops.reloader import ALERT_KIND
from daemon.service import Service
from storage.models import Alert, InboundMessage, Outbox
from tests.support.files import rewrite
from tests.support.paths import ROOT
from tests.support.stack import citizen_mail

MAILBOX = "fe-credito"
ADDRESS = "GestioneCredito.Ferrara@inps.example"


@pytest.fixture
def service(tmp_path: Path, shipped_config: Config) -> Iterator[Service]:
    project = tmp_path / "project"
    for name in ("routing_rules", "templates", "certs"):
        shutil.copytree(ROOT / name, project / name)
    service = Service(shipped_config.model_copy(update={"base_dir": str(project)}))
    try:
        yield service
    finally:
        service.close()


def _ack_subject(service: Service, n: int, subject: str | None = None) -> str:
    [outcome] = service.ingest([InboundItem(raw=citizen_mail(ADDRESS, n, subject=subject), mailbox_id=MAILBOX)])
    with service.session_factory() as session:
        return session.execute(select(Outbox.subject).where(Outbox.inbound_id == outcome.inbound_id)).scalar_one()


def _alerts(service: Service) -> list[str]:
    with service.session_factory() as session:
        return list(session.execute(select(Alert.note).where(Alert.kind == ALERT_KIND)).scalars())


def test_a_template_edit_is_in_force_without_restart_and_a_broken_one_keeps_the_last_good(service: Service) -> None:
    path = Path(service.config.base_dir) / "templates" / "conferma_ricezione.j2"
    assert _ack_subject(service, 1).startswith("[FE-2026-") and "Conferma di ricezione:" in _ack_subject(service, 2)
    text = path.read_text(encoding="utf-8")
    rewrite(path, text.replace("{% block oggetto %}Conferma di ricezione:", "{% block oggetto %}Abbiamo ricevuto:"))
    service.admin_files.refresh()
    assert "Abbiamo ricevuto:" in _ack_subject(service, 3)

    broken = text.replace("{% endif %}", "{% endiff %}", 1)
    line = next(i for i, row in enumerate(broken.splitlines(), 1) if "endiff" in row)
    rewrite(path, broken)
    service.admin_files.refresh()
    service.admin_files.refresh()  # nothing new: no second alert
    [note] = _alerts(service)
    assert f"{path}:{line}: modello non valido" in note
    assert "Abbiamo ricevuto:" in _ack_subject(service, 4)  # the last good version, not a failure


def test_a_vocabulary_edit_classifies_new_words_and_a_broken_file_keeps_the_last_good(service: Service) -> None:
    path = Path(service.config.base_dir) / "routing_rules" / "gestioni.yaml"
    subject = "Zanzibarri - richiesta informazioni avviso bonario"

    def gestione(n: int) -> object:
        [o] = service.ingest([InboundItem(raw=citizen_mail(ADDRESS, n, subject=subject), mailbox_id=MAILBOX)])
        with service.session_factory() as session:
            analysis = session.get(InboundMessage, o.inbound_id).analysis  # type: ignore[union-attr]
        return analysis["gestione"]

    assert gestione(1) != "artigiani"
    text = path.read_text(encoding="utf-8")
    rewrite(path, text.replace("errori: [artiggiani]", "errori: [artiggiani, zanzibarri]", 1))
    service.admin_files.refresh()
    assert gestione(2) == "artigiani"

    rewrite(path, text.replace("gestioni:\n", "gestioni: [\n", 1))
    service.admin_files.refresh()
    [note] = _alerts(service)
    assert "vocabolari" in note and str(path) in note
    assert gestione(3) == "artigiani"  # still the last good vocabulary


def test_a_partial_with_macros_is_imported_by_templates_and_reloads_with_them(service: Service) -> None:
    templates = Path(service.config.base_dir) / "templates"
    partial = templates / "_etichette.j2"
    partial.write_text("{% macro sportello() %}Sportello di Ferrara{% endmacro %}\n", encoding="utf-8")
    path = templates / "conferma_ricezione.j2"
    text = path.read_text(encoding="utf-8")
    # Each block is rendered on its own: the import goes inside the block that uses it.
    block = '{% block oggetto %}{% from "_etichette.j2" import sportello %}{{ sportello() }}:'
    rewrite(path, text.replace("{% block oggetto %}Conferma di ricezione:", block))
    service.admin_files.refresh()
    assert "Sportello di Ferrara:" in _ack_subject(service, 1)
    assert "_etichette" not in service.renderer.names()  # a partial is not an email a rule can send

    rewrite(partial, "{% macro sportello() %}Sede di Ferrara{% endmacro %}\n")
    service.admin_files.refresh()
    assert "Sede di Ferrara:" in _ack_subject(service, 2)
    assert _alerts(service) == []
