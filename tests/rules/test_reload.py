"""Hot reload of routing_rules/rules.yaml: a broken file never replaces the rules in force.

The broken file is reported in the log with file and line and routing goes on with the previous
version; a fixed file is picked up by the next refresh, without a restart. File times are bumped with
os.utime so that a rewrite within the file system's time granularity is still noticed.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from daemon.config import Config
from daemon.core.pipeline import InboundItem
from daemon.outbound.templates import TemplateRenderer
from daemon.rules import RoutingFacts, RuleStore, evaluate
from daemon.service import Service
from storage.models import InboundMessage, Ticket
from tests.rules.facts import make_facts
from tests.support.files import rewrite
from tests.support.stack import wait_until

ROOT = Path(__file__).resolve().parents[2]
BROKEN_MARKER = "{esiste: true}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("routing_rules", "templates", "certs"):
        shutil.copytree(ROOT / name, tmp_path / "project" / name)
    return tmp_path / "project"


def rules_file(project: Path) -> Path:
    return project / "routing_rules" / "rules.yaml"


def break_rules(path: Path) -> int:
    """An unknown operator in messaggi_automatici; returns the line that names it."""
    text = path.read_text(encoding="utf-8").replace("{automatic: {presente: true}}", "{automatic: {esiste: true}}")
    rewrite(path, text)
    return next(i for i, line in enumerate(text.splitlines(), 1) if BROKEN_MARKER in line)


NEW_RULE = """  - id: gestione_separata_dedicata
    descrizione: La gestione separata ha una coda sua.
    quando: {gestione: gestione_separata}
    azione: open_ticket
    coda: anagrafica
    sla: risposta_10gg

  - id: per_casella
"""


def fix_rules_with_a_new_rule(path: Path) -> None:
    """The shipped rules, with a new rule just before per_casella (the mailbox queue of fe-credito)."""
    original = (ROOT / "routing_rules" / "rules.yaml").read_text(encoding="utf-8")
    assert original.count("  - id: per_casella\n") == 1
    rewrite(path, original.replace("  - id: per_casella\n", NEW_RULE))


def facts(**changes: object) -> RoutingFacts:
    return make_facts(
        **{
            "gestione": "gestione_separata",
            "argomento": None,
            "unita": None,
            "subject": "Gestione separata - informazioni",
            **changes,
        }
    )


@pytest.fixture
def store(project: Path, shipped_config: Config) -> RuleStore:
    return RuleStore(
        project / "routing_rules", shipped_config, known_templates=TemplateRenderer(project / "templates").names()
    )


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "sportello.rules" and r.levelno >= logging.ERROR]


def test_unchanged_file_is_not_reloaded(store: RuleStore) -> None:
    version = store.version
    assert store.refresh() is False
    assert store.version == version


def test_broken_file_keeps_previous_rules_and_logs_file_and_line(
    store: RuleStore, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sportello.rules")
    old = store.version
    auto = facts(automatic="auto_reply")
    assert evaluate(store.current, auto).rule_id == "messaggi_automatici"

    path = rules_file(project)
    line = break_rules(path)
    assert store.refresh() is False
    assert store.version == old
    assert store.last_error is not None
    [record] = errors(caplog)
    logged = record.getMessage()
    assert f"{path}:{line}:" in logged and "operatore sconosciuto: esiste" in logged
    assert old in logged, "il log dice quale versione resta in vigore"

    # Routing goes on with the previous rules, the broken one included.
    decision = evaluate(store.current, auto)
    assert (decision.rule_id, decision.reason, decision.rules_version) == ("messaggi_automatici", "auto_reply", old)

    # The same broken file is reported once, not at every poll.
    assert store.refresh() is False
    assert len(errors(caplog)) == 1


def test_fixed_file_is_picked_up_without_restart(
    store: RuleStore, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sportello.rules")
    old = store.version
    assert evaluate(store.current, facts()).rule_id == "per_casella"
    path = rules_file(project)
    break_rules(path)
    assert store.refresh() is False

    fix_rules_with_a_new_rule(path)
    assert store.refresh() is True
    assert store.version != old
    assert store.last_error is None
    decision = evaluate(store.current, facts())
    assert (decision.rule_id, decision.queue, decision.rules_version) == (
        "gestione_separata_dedicata",
        "anagrafica",
        store.version,
    )
    assert evaluate(store.current, facts(gestione="artigiani")).rule_id == "per_casella"
    assert any(f"{old} -> {store.version}" in r.getMessage() for r in caplog.records if r.name == "sportello.rules")


DAMAGES = [
    (
        "yaml_non_valido",
        lambda text: text.replace("  - id: generale\n", "  - id: generale\n   coda: x\n"),
        "YAML non valido",
    ),
    ("file_vuoto", lambda text: "", "il file deve contenere «regole:»"),
    (
        "valore_non_ammesso",
        lambda text: text.replace("quando: {mailbox: fe-durc}", "quando: {mailbox: fe-drc}"),
        "valore sconosciuto per mailbox: fe-drc",
    ),
    (
        "una_di_senza_elenco",
        lambda text: text.replace(
            "una_di: [{ticket_ref: {presente: true}}, {reply_to_ticket: {presente: true}}]",
            "una_di: {ticket_ref: {presente: true}}",
        ),
        "«una_di» vuole un elenco di mappe di condizioni",
    ),
    (
        "continua_con_azione",
        lambda text: text.replace(
            "    azione: open_ticket\n    coda: generale\n",
            "    continua: true\n    azione: open_ticket\n    coda: generale\n",
        ),
        "una regola con «continua: true» non ha azione",
    ),
]


@pytest.mark.parametrize(("name", "damage", "problem"), DAMAGES, ids=[d[0] for d in DAMAGES])
def test_other_damage_keeps_previous_rules(store: RuleStore, project: Path, name: str, damage, problem: str) -> None:
    old = store.version
    path = rules_file(project)
    rewrite(path, damage(path.read_text(encoding="utf-8")))
    assert store.refresh() is False
    assert store.version == old and store.last_error is not None
    assert str(path) in str(store.last_error)
    assert problem in str(store.last_error)
    assert evaluate(store.current, facts(mailbox="fe-durc", argomento="durc")).rule_id == "durc_preavvisi"


def test_deleted_file_keeps_previous_rules(store: RuleStore, project: Path) -> None:
    old = store.version
    rules_file(project).unlink()
    assert store.refresh() is False
    assert store.version == old
    assert "file delle regole non trovato" in str(store.last_error)


# -- the service: what gets recorded while the file is broken and after it is fixed -------------


def _mail(n: int, subject: str = "Gestione separata - informazioni") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Cittadino {n} <cittadino{n}@posta.example>"
    msg["To"] = "GestioneCredito.Ferrara@inps.example"
    msg["Subject"] = subject
    msg["Date"] = "Fri, 20 Nov 2026 10:00:00 +0100"
    msg["Message-ID"] = make_msgid(idstring=f"r{n}", domain="posta.example")
    msg.set_content("Buongiorno, vorrei un appuntamento.")
    return msg.as_bytes()


@pytest.fixture
def service(project: Path, shipped_config: Config) -> Iterator[Service]:
    cfg = shipped_config.model_copy(update={"base_dir": str(project)})
    service = Service(cfg)
    try:
        yield service
    finally:
        service.close()


def _recorded(service: Service, inbound_id: int) -> tuple[str | None, str | None, str | None]:
    with service.session_factory() as s:
        row = s.get(InboundMessage, inbound_id)
        assert row is not None
        ticket = s.get(Ticket, row.ticket_id) if row.ticket_id else None
        return row.rule_id, row.rules_version, ticket.queue if ticket else None


def test_pipeline_records_the_rules_version_across_a_broken_and_a_fixed_file(
    service: Service, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sportello.rules")
    old = service.rules.version
    [first] = service.ingest([InboundItem(raw=_mail(1), mailbox_id="fe-credito")])
    assert _recorded(service, first.inbound_id) == ("per_casella", old, "fe-credito")

    path = rules_file(project)
    line = break_rules(path)
    service.rules.refresh()
    assert any(f"{path}:{line}:" in r.getMessage() for r in errors(caplog))
    [second] = service.ingest([InboundItem(raw=_mail(2), mailbox_id="fe-credito")])
    assert second.outcome == "opened"
    assert _recorded(service, second.inbound_id) == ("per_casella", old, "fe-credito")

    fix_rules_with_a_new_rule(path)
    assert service.rules.refresh() is True
    new = service.rules.version
    [third] = service.ingest([InboundItem(raw=_mail(3), mailbox_id="fe-credito")])
    assert _recorded(service, third.inbound_id) == ("gestione_separata_dedicata", new, "anagrafica")
    assert new != old


def test_the_running_watcher_swaps_rules_without_restart(
    service: Service, project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The thread `sportello run` starts (Service._watch_rules, every 2 s) does the same on its own."""
    caplog.set_level(logging.INFO, logger="sportello.rules")
    old = service.rules.version
    stop = threading.Event()
    watcher = threading.Thread(target=service._watch_rules, args=(stop,), daemon=True)
    watcher.start()
    try:
        path = rules_file(project)
        time.sleep(0.1)
        line = break_rules(path)
        assert wait_until(lambda: service.rules.last_error is not None, 10), "il file errato non è stato notato"
        assert any(f"{path}:{line}:" in r.getMessage() for r in errors(caplog))
        [during] = service.ingest([InboundItem(raw=_mail(10), mailbox_id="fe-credito")])
        assert _recorded(service, during.inbound_id) == ("per_casella", old, "fe-credito")

        fix_rules_with_a_new_rule(path)
        assert wait_until(lambda: service.rules.version != old, 10), "il file corretto non è stato ripreso"
        [after] = service.ingest([InboundItem(raw=_mail(11), mailbox_id="fe-credito")])
        assert _recorded(service, after.inbound_id)[0] == "gestione_separata_dedicata"
    finally:
        stop.set()
        watcher.join(timeout=5)
