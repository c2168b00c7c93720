"""Recognising PEC by its structure: what an envelope, receipt or anomaly claims to be (unverified).

Only a hint for the analysis and the report: the decision is taken from the verified daticert.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
from dataclasses import dataclass
from email.message import Message

from daemon.pec.model import RECEIPT_TYPES

__all__ = ["Claim", "find_parts", "read_claim"]

MAX_DEPTH = 8
MAX_PARTS = 200


@dataclass(frozen=True)
class Claim:
    kind: str  # none | posta-certificata | anomalia | ricevuta
    receipt_type: str | None
    signed: bool
    riferimento: str | None


def _header(msg: Message, name: str) -> str:
    for key, value in msg.items():
        if key.lower() == name.lower():
            return " ".join(str(value).split())
    return ""


def read_claim(msg: Message) -> Claim:
    trasporto = _header(msg, "X-Trasporto").lower()
    ricevuta = _header(msg, "X-Ricevuta").lower()
    subject = _header(msg, "Subject").upper()
    signed = msg.get_content_type() == "multipart/signed"
    riferimento = _header(msg, "X-Riferimento-Message-ID").strip("<>") or None
    if ricevuta in RECEIPT_TYPES:
        return Claim("ricevuta", ricevuta, signed, riferimento)
    if trasporto == "posta-certificata" or subject.startswith("POSTA CERTIFICATA:"):
        return Claim("posta-certificata", None, signed, riferimento)
    if trasporto == "errore" or subject.startswith("ANOMALIA MESSAGGIO:"):
        return Claim("anomalia", None, signed, riferimento)
    return Claim("none", None, signed, riferimento)


def find_parts(content: Message) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(daticert.xml, postacert.eml, first attached message) found in the signed content, bounded."""
    daticert = postacert = attached = None
    count = 0
    stack: list[tuple[Message, int]] = [(content, 0)]
    while stack:
        part, depth = stack.pop(0)
        count += 1
        if count > MAX_PARTS or depth > MAX_DEPTH:
            break
        name = (part.get_filename() or "").lower()
        ctype = part.get_content_type()
        if ctype == "message/rfc822" or name.endswith(".eml"):
            payload = _message_bytes(part)
            if name == "postacert.eml" and postacert is None:
                postacert = payload
            elif attached is None:
                attached = payload
            continue
        if name == "daticert.xml" or (ctype == "application/xml" and daticert is None and name.startswith("daticert")):
            raw = part.get_payload(decode=True)
            daticert = raw if isinstance(raw, bytes) else None
            continue
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend((c, depth + 1) for c in children if isinstance(c, Message))
    return daticert, postacert, attached


def _message_bytes(part: Message) -> bytes | None:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return inner[0].as_bytes(policy=email.policy.compat32)
        return None
    raw = part.get_payload(decode=True)
    return raw if isinstance(raw, bytes) else None


def parse_headers(raw: bytes) -> Message:
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)


def parse_bytes(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=email.policy.compat32)
