"""A parsed message built directly, for tests of the pure analysis (no bytes, no parser)."""

from __future__ import annotations

from datetime import datetime

from daemon.mail.message import ParsedMessage


def message(subject: str, body: str = "", references: tuple[str, ...] = ()) -> ParsedMessage:
    """A plain-text message; with `references`, a reply (In-Reply-To the first of them)."""
    return ParsedMessage(
        message_id="m@example.org",
        subject=subject,
        sender="utente@example.org",
        sender_name="",
        reply_to=None,
        to=("sede@example.org",),
        cc=(),
        date=datetime(2026, 3, 16),
        in_reply_to=references[:1],
        references=references,
        text_body=body,
        html_body=None,
        attachments=(),
        headers={},
        raw_size=len(subject) + len(body),
        content_type="text/plain",
    )
