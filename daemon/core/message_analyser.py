"""The pure analysis of one message: parse, PEC, automatic-mail detection, classification, routing.

`MessageAnalyser` is what the pipeline, `sportello explain` and `sportello rules test` all call, so
the three can never disagree. Database questions arrive through `Lookups`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from daemon.classify import Classification, Vocabularies, classify, find_ticket_ids
from daemon.config import Config, Mailbox
from daemon.core.analysis import Analysis, Lookups, SystemDecision, oversized_decision
from daemon.mail.autoreply import automatic_reason, wants_no_autoreply
from daemon.mail.message import ParsedMessage, UnparseableMessage, parse_message
from daemon.pec import PecAnalysis, PecTrust, analyse_pec
from daemon.rules import RoutingFacts, RuleStore, evaluate

__all__ = ["MessageAnalyser"]


def _facts(
    mailbox: Mailbox,
    msg: ParsedMessage,
    automatic: str | None,
    pec: PecAnalysis | None,
    cls: Classification,
    ticket_ref: str | None,
    reply_to_ticket: str | None,
    argomento_cassetto: bool,
    sender: str,
) -> RoutingFacts:
    allowed = {a.lower() for a in mailbox.allowed_senders}
    return RoutingFacts(
        mailbox=mailbox.id,
        mailbox_kind=mailbox.kind,
        mailbox_status=mailbox.status,
        mailbox_level=mailbox.level,
        mailbox_office=mailbox.office,
        sender=sender,
        sender_domain=sender.rsplit("@", 1)[-1] if "@" in sender else "",
        sender_allowed=not allowed or sender in allowed,
        automatic=automatic,
        pec_kind=pec.rules_kind if pec else "none",
        pec_receipt_type=pec.receipt_type if pec else None,
        gestione=cls.gestione,
        gestione_candidates=cls.gestione_candidates,
        argomento=cls.argomento,
        argomento_cassetto=argomento_cassetto,
        unita=cls.unita,
        istanza=cls.istanza,
        telematizzata=cls.telematizzata,
        servizio_online=cls.servizio_online,
        sollecito=cls.sollecito,
        has_valid_cf=bool(cls.codici_fiscali),
        codici_fiscali_non_validi=cls.codici_fiscali_non_validi,
        ticket_ref=ticket_ref,
        reply_to_ticket=reply_to_ticket,
        subject=msg.subject,
        body=msg.text_body,
        attachment_count=len(msg.attachments),
        attachment_bytes=sum(a.size for a in msg.attachments),
        email_ammessa=cls.email_ammessa,
        oggetto_mancante=cls.oggetto_mancante,
    )


class MessageAnalyser:
    def __init__(self, config: Config, vocab: Vocabularies, trust: PecTrust | None, rules: RuleStore) -> None:
        self.config = config
        self.vocab = vocab
        self.trust = trust
        self.rules = rules
        # Our addresses, as loop evidence, per receiving mailbox; except those the mailbox expects mail
        # from (the regional mailbox writing to the national one is an office handing on a case, not a
        # loop). Our Message-IDs and the loop header still catch a real loop between them.
        own = config.own_addresses
        self._loop_addresses = {m.id: own - {a.lower() for a in m.allowed_senders} for m in config.mailboxes}

    def __call__(self, raw: bytes, mailbox: Mailbox, lookups: Lookups) -> Analysis:
        try:
            envelope = parse_message(raw)
        except UnparseableMessage as exc:
            return Analysis(
                mailbox_id=mailbox.id,
                decision=SystemDecision("quarantine", exc.reason),
                envelope=None,
                effective=None,
                failure=exc,
            )
        if len(raw) > self.config.intake.max_message_bytes:
            return Analysis(
                mailbox_id=mailbox.id,
                decision=oversized_decision(self.config.intake.max_message_bytes),
                envelope=envelope,
                effective=envelope,
                automatic=automatic_reason(
                    envelope,
                    message_id_domain=self.config.instance.message_id_domain,
                    own_addresses=self._own_addresses(mailbox),
                ),
            )

        pec = analyse_pec(raw, self.trust, mailbox.address) if self.trust is not None else None
        effective = envelope
        if pec is not None and pec.inner_raw and pec.kind in ("posta-certificata", "anomalia"):
            try:
                effective = parse_message(pec.inner_raw)
            except UnparseableMessage:
                effective = envelope
        automatic = None
        if pec is None or pec.kind == "none":
            automatic = automatic_reason(
                envelope,
                message_id_domain=self.config.instance.message_id_domain,
                own_addresses=self._own_addresses(mailbox),
            )

        lookups = lookups.memoized()
        cls = classify(effective, self.vocab, resolve_message_id=lookups.ticket_for_message_id)
        reply_to_ticket = self._reply_to_ticket(effective, lookups)
        ticket_ref = cls.ticket_ref if cls.ticket_ref and lookups.ticket_exists(cls.ticket_ref) else None
        sender = self._sender(envelope, effective, pec)
        facts = _facts(
            mailbox,
            effective,
            automatic,
            pec,
            cls,
            ticket_ref,
            reply_to_ticket,
            self.vocab.is_cassetto(cls.argomento),
            sender,
        )
        decision: Any = evaluate(self.rules.current, facts)
        if decision.action == "append" and not decision.target_ticket:
            decision = dataclasses.replace(decision, target_ticket=ticket_ref or reply_to_ticket)
        if pec is not None and pec.kind == "ricevuta" and pec.riferimento_message_id:
            target = lookups.ticket_for_sent_message_id(pec.riferimento_message_id)
            if target:
                decision = dataclasses.replace(decision, target_ticket=target)
        signed_at = pec.data if pec is not None and pec.verified and pec.kind == "posta-certificata" else None
        return Analysis(
            mailbox_id=mailbox.id,
            decision=decision,
            envelope=envelope,
            effective=effective,
            automatic=automatic,
            suppress_ack=wants_no_autoreply(envelope),
            classification=cls,
            pec=pec,
            reply_to_ticket=reply_to_ticket,
            signed_at=signed_at,
        )

    def _own_addresses(self, mailbox: Mailbox) -> frozenset[str]:
        return self._loop_addresses.get(mailbox.id, self.config.own_addresses)

    @staticmethod
    def _sender(envelope: ParsedMessage, effective: ParsedMessage, pec: PecAnalysis | None) -> str:
        if pec is not None and pec.verified and pec.mittente:
            return pec.mittente.lower()
        # Identity for the rules is the author (From), never Reply-To, which anyone can set.
        return effective.sender or envelope.sender

    @staticmethod
    def _reply_to_ticket(msg: ParsedMessage, lookups: Lookups) -> str | None:
        for ticket_id in find_ticket_ids(msg.subject):
            if lookups.ticket_exists(ticket_id):
                return ticket_id.upper()
        for mid in (*msg.in_reply_to, *reversed(msg.references)):
            found = lookups.ticket_for_message_id(mid)
            if found:
                return found
        return None
