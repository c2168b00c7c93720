"""Plain-data views of stored rows, for JSON output and tables."""

from __future__ import annotations

import email.policy
from datetime import datetime
from email.parser import BytesHeaderParser
from typing import Any

from storage.models import InboundMessage, Outbox, Ticket

# What a person reads for the stored values (JSON output keeps the stored values: scripts read them).
OUTCOME_LABELS = {
    "opened": "aperta",
    "appended": "accodata",
    "rejected": "respinta",
    "ignored": "ignorata",
    "quarantined": "in quarantena",
    "forwarded": "inoltrata",
}
OUTBOX_STATUS_LABELS = {"pending": "da inviare", "sent": "inviata", "failed": "non consegnata", "held": "trattenuta"}


def outcome_label(outcome: str) -> str:
    return OUTCOME_LABELS.get(outcome, outcome)


def outbox_status_label(status: str) -> str:
    return OUTBOX_STATUS_LABELS.get(status, status)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def ticket_summary(t: Ticket) -> dict[str, Any]:
    return {
        "id": t.id,
        "office": t.office,
        "state": t.state,
        "mailbox": t.mailbox,
        "requester": t.requester,
        "subject": t.subject,
        "codici_fiscali": list(t.codici_fiscali or []),
        "queue": t.queue,
        "assignee": t.assignee,
        "priority": t.priority,
        "sla_policy": t.sla_policy,
        "received_at": _iso(t.received_at),
        "due_at": _iso(t.due_at),
        "closed_at": _iso(t.closed_at),
    }


def ticket_detail(t: Ticket) -> dict[str, Any]:
    out = ticket_summary(t)
    out["requester_name"] = t.requester_name
    out["tags"] = list(t.tags or [])
    out["classification"] = t.classification
    out["pec_identificativo"] = t.pec_identificativo
    out["answered_at"] = _iso(t.answered_at)
    out["linked_to"] = t.linked_to
    out["close_outcome"] = t.close_outcome
    out["messages"] = [
        {
            "direction": m.direction,
            "at": _iso(m.at),
            "author": m.author,
            "to": list(m.outbox.to) if m.outbox is not None else [],
            "template": m.outbox.template if m.outbox is not None else None,
            "subject": m.subject,
            "message_id": m.message_id,
            "body": m.body,
        }
        for m in t.messages
    ]
    out["events"] = [
        {"at": _iso(e.at), "actor": e.actor, "kind": e.kind, "note": e.note, "data": e.data} for e in t.events
    ]
    return out


def _threading_headers(raw: bytes) -> dict[str, Any]:
    """Reply-To, In-Reply-To and References of an email we composed (its header block only)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    msg = BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    refs = " ".join(str(v) for v in msg.get_all("References") or [])
    return {
        "reply_to": str(msg["Reply-To"]) if msg["Reply-To"] else None,
        "in_reply_to": str(msg["In-Reply-To"]).strip("<> ") if msg["In-Reply-To"] else None,
        "references": [r.strip("<>") for r in refs.split()],
    }


def outbox_view(o: Outbox) -> dict[str, Any]:
    return {
        "id": o.id,
        "message_id": o.message_id,
        "ticket_id": o.ticket_id,
        "from": o.sender,
        "to": list(o.to),
        "cc": list(o.cc or []),
        "subject": o.subject,
        "template": o.template,
        "status": o.status,
        "attempts": o.attempts,
        "last_error": o.last_error,
        "created_at": _iso(o.created_at),
        "sent_at": _iso(o.sent_at),
        **_threading_headers(o.raw),
    }


def inbound_view(m: InboundMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "mailbox": m.mailbox,
        "source": m.source,
        "uid": m.uid,
        "message_id": m.message_id,
        "sender": m.sender,
        "subject": m.subject,
        "received_at": _iso(m.received_at),
        "outcome": m.outcome,
        "reason": m.reason,
        "rule": m.rule_id,
        "rules_version": m.rules_version,
        "ticket_id": m.ticket_id,
        "archive_ref": m.archive_ref,
    }


DIRECTION_LABELS = {"in": "ricevuto", "out": "inviato", "note": "annotato"}


def conversation_lines(messages: list[dict[str, Any]], body_lines: int = 6) -> list[str]:
    """The ticket's messages in order, readably: who wrote, to whom it was sent, the text's first lines."""
    lines: list[str] = []
    for m in messages:
        when = (m["at"] or "")[:16].replace("T", " ")
        who = m["author"] or "-"
        head = f"{when}  {DIRECTION_LABELS.get(m['direction'], m['direction'])}  da {who}"
        if m.get("to"):
            head += f" a {', '.join(m['to'])}"
        if m.get("template"):
            head += f" [{m['template']}]"
        lines.append(head)
        lines.append(f"    oggetto: {m['subject'] or '(senza oggetto)'}")
        text = [t for t in (m.get("body") or "").strip().splitlines() if t.strip()]
        for t in text[:body_lines]:
            lines.append(f"    | {t[:200]}")
        if len(text) > body_lines:
            lines.append(f"    | … ({len(text) - body_lines} righe in più)")
    return lines
