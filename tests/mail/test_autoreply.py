"""Mail that must get no automatic answer (RFC 3834): other systems' loop markers, lists and bulk mail."""

from __future__ import annotations

import pytest

from daemon.mail.autoreply import automatic_reason, wants_no_autoreply
from daemon.mail.message import parse_message


def message(*headers: str) -> bytes:
    head = "".join(h + "\r\n" for h in headers)
    return (
        "From: Studio Bianchi <studio@bianchi.example>\r\nTo: GestioneCredito.Ferrara@inps.example\r\n"
        f"Subject: Artigiani - novita contributive\r\nMessage-ID: <n1@bianchi.example>\r\n{head}\r\nTesto.\r\n"
    ).encode()


def reason(raw: bytes) -> str | None:
    return automatic_reason(parse_message(raw), message_id_domain="sportello.inps.example")


@pytest.mark.parametrize("header", ["X-Loop: helpdesk@bianchi.example", "X-Mailer-Loop: 1"])
def test_loop_markers_of_other_systems_are_loops(header: str) -> None:
    assert reason(message(header)) == "loop"
    assert wants_no_autoreply(parse_message(message(header)))


@pytest.mark.parametrize(
    "header",
    [
        "List-Id: Notizie <notizie.bianchi.example>",
        "List-Unsubscribe: <mailto:esci@bianchi.example>",
        "Precedence: list",
        "Precedence: bulk",
        "Precedence: junk",
    ],
)
def test_list_and_bulk_mail_is_bulk_and_never_answered(header: str) -> None:
    assert reason(message(header)) == "bulk"
    # Even when a rule opens a ticket for it, no acknowledgement goes out.
    assert wants_no_autoreply(parse_message(message(header)))


def test_ordinary_mail_is_answered() -> None:
    assert reason(message()) is None
    assert not wants_no_autoreply(parse_message(message("Precedence: first-class")))
