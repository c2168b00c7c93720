"""Replies built the way the mail clients the offices use build them: Italian quote headers, the
quoted history below the new text, Outlook's separator, an HTML-only body."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage, Message
from email.utils import format_datetime, make_msgid

CLIENTS = ("thunderbird", "outlook", "gmail", "apple", "outlook_html")


def reply(
    client: str,
    *,
    sender: str,
    name: str,
    to: str,
    subject: str,
    in_reply_to: str,
    references: tuple[str, ...] = (),
    text: str,
    quoted: str,
    quoted_from: str = "Gestione del credito — Ferrara <GestioneCredito.Ferrara@inps.example>",
    attachment: tuple[str, bytes] | None = None,
) -> bytes:
    """A reply by `client` with `text` on top of the quoted message `quoted`."""
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = to
    msg["Subject"] = (
        subject
        if subject.lower().startswith(("re:", "r:"))
        else f"R: {subject}"
        if client.startswith("outlook")
        else f"Re: {subject}"
    )
    msg["Date"] = format_datetime(dt.datetime(2026, 11, 18, 9, 0, tzinfo=dt.UTC))
    msg["Message-ID"] = make_msgid(idstring=client, domain="inps.example")
    msg["In-Reply-To"] = f"<{in_reply_to}>"
    msg["References"] = " ".join(f"<{r}>" for r in (*references, in_reply_to))
    quoted_lines = quoted.strip().splitlines()
    if client == "thunderbird":
        body = f"{text}\n\nIl 16/11/2026 10:15, {quoted_from} ha scritto:\n" + "\n".join(f"> {q}" for q in quoted_lines)
        body += "\n\n-- \nAnna Bianchi\nINPS - Direzione provinciale di Ferrara\n"
        msg.set_content(body)
    elif client == "gmail":
        body = f"{text}\n\nIl giorno lun 16 nov 2026 alle ore 10:15 {quoted_from} ha scritto:\n\n" + "\n".join(
            f"> {q}" for q in quoted_lines
        )
        msg.set_content(body)
    elif client == "apple":
        body = (
            f"{text}\n\nInviato da iPhone\n\nIl giorno 16 nov 2026, alle ore 10:15, {quoted_from} ha scritto:\n\n"
            + "\n".join(f"> {q}" for q in quoted_lines)
        )
        msg.set_content(body)
    elif client == "outlook":
        body = (
            f"{text}\n\n________________________________\nDa: {quoted_from}\nInviato: lunedì 16 novembre 2026 10:15\n"
            f"A: {sender}\nOggetto: {subject}\n\n" + "\n".join(quoted_lines)
        )
        msg.set_content(body)
    elif client == "outlook_html":
        paragraphs = "".join(f"<p>{line}</p>" for line in text.splitlines() if line.strip())
        html = (
            "<html><body><div>" + paragraphs + "</div>"
            '<div id="appendonsend"></div><hr style="display:inline-block;width:98%">'
            f"<div><b>Da:</b> {quoted_from}<br><b>Inviato:</b> lunedì 16 novembre 2026 10:15<br>"
            f"<b>A:</b> {sender}<br><b>Oggetto:</b> {subject}</div>"
            "<blockquote>" + "".join(f"<p>{q}</p>" for q in quoted_lines) + "</blockquote></body></html>"
        )
        msg.set_content(html, subtype="html")
    else:
        raise ValueError(client)
    if attachment is not None:
        msg.add_attachment(attachment[1], maintype="application", subtype="pdf", filename=attachment[0])
    return msg.as_bytes()


def reply_to_notice(
    client: str,
    notice: Message,
    text: str,
    *,
    to: str,
    sender: str = "anna.bianchi@inps.example",
    name: str = "Anna Bianchi",
    attachment: tuple[str, bytes] | None = None,
) -> bytes:
    """The referent's reply by `client` to `notice` (parsed with the default policy), sent to the
    mailbox `to`: the notice's subject and Message-ID, its plain-text body quoted below `text`."""
    return reply(
        client,
        sender=sender,
        name=name,
        to=to,
        subject=str(notice["Subject"]),
        in_reply_to=str(notice["Message-ID"]).strip("<>"),
        text=text,
        quoted=notice.get_body(preferencelist=("plain",)).get_content(),  # type: ignore[attr-defined]
        attachment=attachment,
    )
