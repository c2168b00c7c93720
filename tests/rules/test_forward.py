"""The `forward` action: the competent person receives the message itself, and a forward that would
come back to this instance as a loop is refused when the rules are checked, not lost at run time."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from daemon.config import Config
from daemon.core.pipeline import InboundItem
from daemon.demo.smtp_sink import SmtpSink
from daemon.outbound.sender import OutboxSender
from daemon.rules.loader import RulesError, load_ruleset
from daemon.service import Service
from storage.models import Outbox, Ticket
from tests.support.stack import stack_config

ROOT = Path(__file__).resolve().parents[2]
PATRONATO = "ufficio@patronato.example"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"

FORWARD_RULE = """  - id: patronati_a_bologna
    descrizione: Le richieste dei patronati vanno alla sede di Bologna.
    quando: {{sender_domain: patronato.example}}
    eccetto: {{automatic: {{presente: true}}}}
    azione: forward
    inoltra_a: [{target}]

"""


def project_with(tmp_path: Path, target: str) -> Path:
    project = tmp_path / "project"
    for name in ("templates", "certs"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "routing_rules", project / "routing_rules")
    rules = project / "routing_rules" / "rules.yaml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text.replace("regole:\n", "regole:\n" + FORWARD_RULE.format(target=target), 1), encoding="utf-8")
    return project


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    s = SmtpSink("127.0.0.1", 0)
    s.start()
    yield s
    s.stop()


def patronato_mail(to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Patronato Ferrara <{PATRONATO}>"
    msg["To"] = to
    msg["Subject"] = "Pratica RSSMRA85T10A562S: richiesta di ricostituzione — urgente"
    msg["Date"] = "Fri, 20 Nov 2026 10:00:00 +0100"
    msg["Message-ID"] = "<patronato-42@patronato.example>"
    msg.set_content("Buongiorno,\nin allegato la delega dell'assistito.\nCordiali saluti\n")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="delega.pdf")
    return msg.as_bytes()


def test_the_forward_carries_the_original_message_byte_for_byte(
    shipped_config: Config, sink: SmtpSink, tmp_path: Path
) -> None:
    project = project_with(tmp_path, "sede.bologna")
    cfg = stack_config(shipped_config, tmp_path / "data", imap_port=1, smtp_port=sink.port, mailboxes=[])
    cfg = cfg.model_copy(update={"base_dir": str(project)})
    service = Service(cfg)
    try:
        raw = patronato_mail(cfg.mailbox("fe-credito").address)
        [outcome] = service.ingest([InboundItem(raw=raw, mailbox_id="fe-credito")])
        assert (outcome.outcome, outcome.rule_id, outcome.ticket_id) == ("forwarded", "patronati_a_bologna", None)
        with service.session_factory() as s:
            assert s.execute(select(func.count()).select_from(Ticket)).scalar_one() == 0
            [row] = s.execute(select(Outbox)).scalars()
            assert (row.template, row.to) == ("inoltro", ["lavoro.occasionale.bologna@inps.example"])

        OutboxSender(service.session_factory, cfg).send_due()
    finally:
        service.close()

    [sunk] = sink.messages
    assert sunk.rcpt_tos == ("lavoro.occasionale.bologna@inps.example",)
    forward = message_from_bytes(sunk.raw, policy=default_policy)
    assert forward["Subject"].startswith("Inoltro: Pratica RSSMRA85T10A562S")
    assert forward["Reply-To"] == PATRONATO  # answering goes to the sender, not back to us
    text = forward.get_body(preferencelist=("plain",))
    assert text is not None and PATRONATO in text.get_content()
    [attached] = list(forward.iter_attachments())  # type: ignore[attr-defined]
    assert attached.get_content_type() == "message/rfc822"
    assert attached.get_filename() == "messaggio-originale.eml"
    original = attached.get_content()
    assert original["Message-ID"] == "<patronato-42@patronato.example>"
    assert original["Subject"] == "Pratica RSSMRA85T10A562S: richiesta di ricostituzione — urgente"
    [pdf] = [p for p in original.iter_attachments() if p.get_filename() == "delega.pdf"]
    assert pdf.get_content() == PDF
    # Exactly the bytes received (only line ends made CRLF for the wire).
    assert raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") in sunk.raw


def test_a_forward_to_a_mailbox_this_instance_reads_is_refused_with_the_reason(
    shipped_config: Config, tmp_path: Path
) -> None:
    project = project_with(tmp_path, "casella:fe-anagrafica")
    with pytest.raises(RulesError) as err:
        load_ruleset(project / "routing_rules", shipped_config)
    assert "la casella fe-anagrafica è letta da questa istanza" in str(err.value)

    # By address too.
    project2 = project_with(tmp_path / "due", "anagraficaflussi.ferrara@inps.example")
    with pytest.raises(RulesError, match="la casella fe-anagrafica è letta da questa istanza"):
        load_ruleset(project2 / "routing_rules", shipped_config)

    # A mailbox of the configuration that another system reads (no IMAP here) is a fine target.
    boxes = tuple(
        m.model_copy(update={"imap": None}) if m.id == "fe-anagrafica" else m for m in shipped_config.mailboxes
    )
    elsewhere = shipped_config.model_copy(update={"mailboxes": boxes})
    ruleset = load_ruleset(project / "routing_rules", elsewhere)
    assert ruleset.rules[0].id == "patronati_a_bologna"
