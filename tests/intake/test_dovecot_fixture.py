"""The Dovecot fixture itself: append, list, restart, and the mail is still there."""

from __future__ import annotations

import pytest

from tests.servers.dovecot import DovecotServer

pytestmark = pytest.mark.imap

USER = "fe-credito"


def _mail(n: int) -> bytes:
    return (
        f"From: cittadino{n}@example.org\r\nTo: {USER}@inps.example\r\n"
        f"Subject: prova {n}\r\nMessage-ID: <prova-{n}@example.org>\r\n\r\nCorpo {n}\r\n"
    ).encode()


def test_append_survives_restart(dovecot: DovecotServer) -> None:
    dovecot.append_many(USER, [_mail(n) for n in range(3)])
    assert len(dovecot.list_uids(USER, "INBOX")) == 3
    assert dovecot.list_uids(USER, "non-esiste") == []
    port = dovecot.port
    dovecot.restart()
    assert dovecot.port == port
    assert len(dovecot.list_uids(USER, "INBOX")) == 3
    assert [b"Corpo 0" in raw for raw in dovecot.fetch_all(USER, "INBOX")] == [True, False, False]
    with dovecot.client(USER) as c:
        assert c.folder_exists("Elaborati")
