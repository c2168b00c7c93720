"""Message-ID deduplication that a reused or guessed id cannot fool: same id counts only with same content."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from daemon.core.tickets import TicketWriter
from daemon.mail.fingerprint import content_fingerprint
from storage.models import Alert, InboundMessage

__all__ = ["EVENT_KIND", "note_reuse", "split_by_content"]

log = logging.getLogger("sportello.pipeline")

EVENT_KIND = "message_id_riutilizzato"


def split_by_content(
    earlier: Sequence[InboundMessage], raw: bytes, digest: str, load: Callable[[str], bytes]
) -> tuple[list[InboundMessage], list[InboundMessage]]:
    """Split the rows recorded under this message's Message-ID into (the same message, other messages).

    The same message: the same bytes, or the same body and identifying headers delivered with other
    transport headers. An earlier copy the archive cannot give back counts as another message: recording
    a message twice is recoverable, dropping it is not."""
    same: list[InboundMessage] = []
    other: list[InboundMessage] = []
    mine: str | None = None
    for row in earlier:
        if row.raw_sha256 == digest:
            same.append(row)
            continue
        mine = mine or content_fingerprint(raw)
        try:
            theirs = content_fingerprint(load(row.archive_ref))
        except Exception as exc:  # missing or tampered archive copy
            log.warning("copia d'archivio %s illeggibile (%s): confronto impossibile", row.archive_ref, exc)
            theirs = None
        (same if theirs == mine else other).append(row)
    return same, other


def note_reuse(
    w: TicketWriter, inbound: InboundMessage, others: Sequence[InboundMessage], mailbox: str, now: datetime
) -> None:
    """Record that `inbound` carries the Message-ID of other messages: on its ticket if it has one, else as
    an alert (a forged id aimed at suppressing mail is worth an admin's look)."""
    where = ", ".join(sorted({f"{o.mailbox} n. {o.id}" if o.id else o.mailbox for o in others}))
    note = f"Message-ID <{inbound.message_id}> già usato da un altro messaggio ({where}); registrato a parte"
    ticket = inbound.ticket
    if ticket is not None:
        w.event(ticket.id, EVENT_KIND, actor="sistema", at=now, note=note)
        return
    w.session.add(Alert(at=now, kind=EVENT_KIND, mailbox=mailbox, inbound=inbound, note=note))
