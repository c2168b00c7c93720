"""Header values that reach our text are one line: an encoded CR/LF cannot add a line to a reply."""

from __future__ import annotations

from email import message_from_bytes, policy

from sqlalchemy import select

from daemon.core.pipeline import Pipeline
from daemon.mail.message import parse_message
from storage.models import Outbox

FORGED = (
    b'From: "=?utf-8?q?Mario_Rossi=0D=0ABcc=3A_spia=40evil=2Eexample?=" <mario.rossi@example.org>\r\n'
    b"To: GestioneCredito.Ferrara@inps.example\r\n"
    b"Subject: =?utf-8?q?Estratto_conto=0D=0A=0D=0AClicca_qui=E2=80=A8http://evil.example?=\r\n"
    b"Message-ID: <forged@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n\r\nBuongiorno.\r\n"
    b"--b\r\nContent-Type: application/pdf\r\n"
    b'Content-Disposition: attachment; filename="=?utf-8?q?modulo=0A=0Dfirmato.pdf?="\r\n\r\n%PDF\r\n--b--\r\n'
)


def test_display_name_subject_and_file_names_are_one_line() -> None:
    msg = parse_message(FORGED)
    assert msg.sender_name == "Mario Rossi Bcc: spia@evil.example"
    assert msg.subject == "Estratto conto Clicca qui http://evil.example"
    assert [a.filename for a in msg.attachments] == ["modulo firmato.pdf"]


def test_the_acknowledgement_has_no_line_made_by_the_sender(pipeline: Pipeline) -> None:
    outcome = pipeline.process(FORGED, "fe-credito")
    assert outcome.outcome == "opened"
    with pipeline.session_factory() as s:
        raw = s.execute(select(Outbox.raw)).scalar_one()
    sent = message_from_bytes(raw, policy=policy.default)
    assert sent["Bcc"] is None
    text = sent.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    lines = text.splitlines()
    assert "Gentile Mario Rossi Bcc: spia@evil.example," in lines
    assert not any(line.startswith(("Bcc:", "Clicca qui")) for line in lines)
