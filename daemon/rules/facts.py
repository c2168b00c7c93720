"""What the rules can test: the facts of one message, plain data built by daemon.core.message_analyser."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["FACT_NAMES", "RoutingFacts"]


@dataclass(frozen=True)
class RoutingFacts:
    mailbox: str
    mailbox_kind: str  # ordinaria | pec
    mailbox_status: str  # attiva | dismessa
    mailbox_level: str  # provinciale | regionale | nazionale
    mailbox_office: str
    sender: str
    sender_domain: str
    sender_allowed: bool
    automatic: str | None  # auto_reply | bounce | loop | bulk
    pec_kind: str  # none | posta-certificata | anomalia | ricevuta | non_verificata
    pec_receipt_type: str | None
    gestione: str | None
    gestione_candidates: tuple[str, ...]
    argomento: str | None
    argomento_cassetto: bool
    unita: str | None
    istanza: bool
    telematizzata: str | None
    servizio_online: str | None
    sollecito: bool
    has_valid_cf: bool
    codici_fiscali_non_validi: tuple[str, ...]
    ticket_ref: str | None
    reply_to_ticket: str | None
    subject: str
    body: str
    attachment_count: int
    attachment_bytes: int
    # The text keeps institutional email open where a Cassetto is otherwise exclusive (002, 2.2).
    email_ammessa: bool = False
    # What the subject lacks under the rule of 002 (gestione, codice_fiscale, nome, contenuto).
    oggetto_mancante: tuple[str, ...] = ()

    def get(self, name: str) -> Any:
        return getattr(self, name)

    def summary(self) -> dict[str, Any]:
        """The facts without the body, for traces and explain output."""
        data = dataclasses.asdict(self)
        data.pop("body")
        return data


FACT_NAMES = frozenset(f.name for f in dataclasses.fields(RoutingFacts))
