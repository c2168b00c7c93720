"""What the PEC analysis of one message found: plain data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["RECEIPT_TYPES", "Daticert", "PecAnalysis"]

RECEIPT_TYPES = (
    "accettazione",
    "non-accettazione",
    "presa-in-carico",
    "avvenuta-consegna",
    "errore-consegna",
    "preavviso-errore-consegna",
    "rilevazione-virus",
)


@dataclass(frozen=True)
class Daticert:
    tipo: str
    errore: str | None
    mittente: str | None
    destinatari: tuple[tuple[str, str], ...]  # (address, certificato|esterno)
    risposte: str | None
    oggetto: str | None
    gestore_emittente: str | None
    data: datetime | None
    identificativo: str | None
    msgid: str | None
    ricevuta: str | None
    consegna: str | None
    errore_esteso: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tipo": self.tipo,
            "errore": self.errore,
            "mittente": self.mittente,
            "destinatari": [{"indirizzo": a, "tipo": t} for a, t in self.destinatari],
            "risposte": self.risposte,
            "oggetto": self.oggetto,
            "gestore_emittente": self.gestore_emittente,
            "data": self.data.isoformat() if self.data else None,
            "identificativo": self.identificativo,
            "msgid": self.msgid,
            "ricevuta": self.ricevuta,
            "consegna": self.consegna,
            "errore_esteso": self.errore_esteso,
        }


@dataclass(frozen=True)
class PecAnalysis:
    kind: str  # none | posta-certificata | anomalia | ricevuta | non_verificata
    verified: bool = False
    receipt_type: str | None = None
    identificativo: str | None = None
    mittente: str | None = None
    data: datetime | None = None
    failure: str | None = None
    inner_raw: bytes | None = None  # postacert.eml (envelope) or the wrapped original (anomalia)
    riferimento_message_id: str | None = None
    errore_esteso: str | None = None
    daticert: Daticert | None = None
    signer: str | None = None
    issuer: str | None = None
    looks_like: str | None = None  # what the unsigned structure claims (for non_verificata)
    signature_valid: bool | None = None  # the signature over the body; None when not checked
    chain_checked_at: datetime | None = None  # the signer chain was checked as of this time (daticert)
    wrapped: bool = False  # found inside another message (a list's re-wrap, a forward as attachment)
    # Whether the daticert's destinatari include the receiving mailbox; None when not checked (receipts,
    # unverified mail, no mailbox given). False: genuine, but not certified mail to us.
    addressed_to_us: bool | None = None

    @property
    def rules_kind(self) -> str:
        """The pec_kind the routing rules see: a posta-certificata that is not verified (or not addressed
        to this mailbox) is not certified."""
        return "non_verificata" if self.kind == "posta-certificata" and not self.verified else self.kind

    def to_dict(self) -> dict[str, Any]:
        return {
            "pec_kind": self.kind,
            "pec_verified": self.verified,
            "pec_receipt_type": self.receipt_type,
            "pec_identificativo": self.identificativo,
            "pec_mittente": self.mittente,
            "pec_data": self.data.isoformat() if self.data else None,
            "pec_failure": self.failure,
            "pec_wrapped": self.wrapped,
            "pec_addressed_to_us": self.addressed_to_us,
        }

    def report_dict(self) -> dict[str, Any]:
        """Everything the verification found, for `sportello pec verify --json`."""
        return {
            **self.to_dict(),
            "looks_like": self.looks_like,
            "signature_valid": self.signature_valid,
            "signer": self.signer,
            "issuer": self.issuer,
            "chain_checked_at": self.chain_checked_at.isoformat() if self.chain_checked_at else None,
            "riferimento_message_id": self.riferimento_message_id,
            "errore_esteso": self.errore_esteso,
            "daticert": self.daticert.to_dict() if self.daticert else None,
            "inner_bytes": len(self.inner_raw) if self.inner_raw is not None else None,
        }
