"""The bytes of an email we send: line ends on the wire, the original carried unchanged, MIME structure."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy

from daemon.outbound.compose import compose_email


def _forward(original: bytes, *, html: str | None = None) -> bytes:
    return compose_email(
        message_id="fe-2026-000001.abc@sportello.example",
        sender="credito.ferrara@inps.example",
        sender_name="INPS Direzione provinciale di Ferrara - Unità credito e recupero crediti",
        to=["anna.bianchi@inps.example"],
        cc=[],
        subject="[FE-2026-000001] Nuova pratica: Artigiani - richiesta informazioni avviso bonario n. 1/2026",
        text="È arrivata una nuova pratica.\n",
        html=html,
        date=datetime(2026, 11, 30, 9, tzinfo=UTC),
        instance="sportello-test",
        attached_message=original,
        ticket_id="FE-2026-000001",
    )


def test_the_attached_original_gets_crlf_line_ends_and_keeps_a_lone_cr() -> None:
    original = b"From: a@posta.example\r\nSubject: x\n\nriga uno\r\nriga due\nc\rd\n"
    raw = _forward(original)
    assert b"From: a@posta.example\r\nSubject: x\r\n\r\nriga uno\r\nriga due\r\nc\rd\r\n" in raw
    assert b"\r\r\n" not in raw


def test_an_original_that_imitates_our_boundaries_stays_one_attachment() -> None:
    # A sender cannot know the boundaries of the email we build around their message.
    fake = b"--=_sportello_00000000000000000000000000000000\r\nContent-Type: text/plain\r\n\r\nfalso\r\n"
    original = b"From: a@posta.example\r\nSubject: x\r\n\r\n" + fake
    for html in (None, "<p>È arrivata una nuova pratica.</p>"):
        msg = message_from_bytes(_forward(original, html=html), policy=default_policy)
        attachments = list(msg.iter_attachments())  # type: ignore[attr-defined]
        assert [a.get_content_type() for a in attachments] == ["message/rfc822"]
        assert fake.replace(b"\r\n", b"\n") in attachments[0].get_content().as_bytes()
        body = msg.get_body(preferencelist=("plain",))
        assert body is not None and body.get_content().strip() == "È arrivata una nuova pratica."


def test_each_email_has_boundaries_of_its_own() -> None:
    first = message_from_bytes(_forward(b"Subject: x\r\n\r\nuno\r\n"), policy=default_policy)
    second = message_from_bytes(_forward(b"Subject: x\r\n\r\nuno\r\n"), policy=default_policy)
    assert first.get_boundary() != second.get_boundary()
