"""RoutingFacts for rule tests: a plain message on fe-credito, with the changes each test needs."""

from __future__ import annotations

import dataclasses

from daemon.rules import RoutingFacts

_BASE = RoutingFacts(
    mailbox="fe-credito",
    mailbox_kind="ordinaria",
    mailbox_status="attiva",
    mailbox_level="provinciale",
    mailbox_office="FE",
    sender="mario.rossi@posta.example",
    sender_domain="posta.example",
    sender_allowed=True,
    automatic=None,
    pec_kind="none",
    pec_receipt_type=None,
    gestione="artigiani",
    gestione_candidates=(),
    argomento="avviso_bonario",
    argomento_cassetto=False,
    unita="credito",
    istanza=False,
    telematizzata=None,
    servizio_online=None,
    sollecito=False,
    has_valid_cf=False,
    codici_fiscali_non_validi=(),
    ticket_ref=None,
    reply_to_ticket=None,
    subject="Artigiani - avviso bonario",
    body="Buongiorno",
    attachment_count=0,
    attachment_bytes=0,
)


def make_facts(**changes: object) -> RoutingFacts:
    return dataclasses.replace(_BASE, **changes)  # type: ignore[arg-type]
