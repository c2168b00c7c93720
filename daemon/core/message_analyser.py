"""The pure analysis of one message: parse, PEC, automatic-mail detection, classification, routing.

`MessageAnalyser` is what the pipeline, `sportello explain` and `sportello rules test` all call, so
the three can never disagree. Database questions arrive through `Lookups`.
"""

from __future__ import annotations

import dataclasses
import re

from daemon.classify import Classification, Vocabularies, classify, find_ticket_ids
from daemon.config import Config, Mailbox
from daemon.conversation.authentication import AuthPolicy, authenticate
from daemon.conversation.speaker import Role, Speaker, TicketFacts, identify
from daemon.conversation.tokens import ReplyTokens
from daemon.core.analysis import Analysis, DecisionLike, Lookups, SystemDecision, oversized_decision
from daemon.mail.autoreply import HOP_HEADER, TICKET_HEADER, automatic_reason, wants_no_autoreply
from daemon.mail.message import ParsedMessage, UnparseableMessage, parse_message
from daemon.pec import PecAnalysis, PecTrust, analyse_pec
from daemon.rules import RoutingFacts, RuleStore, evaluate

__all__ = ["INTERNAL_QUEUE", "STATUS_REQUEST", "MessageAnalyser"]

INTERNAL_QUEUE = "segnalazioni_uffici"  # tickets handed on by another of our offices

# "stato FE-2026-000123", any case, with or without brackets, possibly after "Re:".
STATUS_REQUEST = re.compile(
    r"^\s*(?:(?:re|r|ri|fw|fwd|i|inoltro)\s*:\s*)*stato\s*(?:pratica\s*)?\[?\s*([A-Za-z]{2,4}-\d{4}-\d{6})\s*\]?\s*$",
    re.IGNORECASE,
)


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
    speaker: Speaker,
) -> RoutingFacts:
    allowed = {a.lower() for a in mailbox.allowed_senders}
    # An allowed sender counts only when authenticated (or when it is our own signed mail).
    return RoutingFacts(
        mailbox=mailbox.id,
        mailbox_kind=mailbox.kind,
        mailbox_status=mailbox.status,
        mailbox_level=mailbox.level,
        mailbox_office=mailbox.office,
        sender=sender,
        sender_domain=sender.rsplit("@", 1)[-1] if "@" in sender else "",
        sender_allowed=not allowed or (sender in allowed and speaker.authenticated),
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
    def __init__(
        self,
        config: Config,
        vocab: Vocabularies,
        trust: PecTrust | None,
        rules: RuleStore,
        tokens: ReplyTokens,
    ) -> None:
        self.config = config
        self.vocab = vocab
        self.trust = trust
        self.rules = rules
        self.tokens = tokens
        self.auth_policy = AuthPolicy(frozenset(a.lower() for a in config.authentication.trusted_authserv_ids))
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
        # Our own mail, signed: between our mailboxes it is work (an escalation), up to a hop limit.
        own_hop = self.tokens.read_stamp(envelope.header(HOP_HEADER), envelope.message_id)
        automatic = None
        if own_hop is not None:
            if own_hop >= self.config.conversation.max_hops:
                automatic = "loop"
            elif (envelope.header("auto-submitted") or "").strip().lower() == "auto-replied":
                automatic = "loop"  # our answer to one of our own mailboxes: never answered again
        elif pec is None or pec.kind == "none":
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
        requester = (
            (effective.reply_to or sender) if not (pec is not None and pec.verified and pec.mittente) else sender
        )
        linked_to: str | None = None
        if own_hop is not None and automatic is None:
            # An escalation from another of our offices: a ticket of this level, linked to the origin.
            linked_to = (envelope.header(TICKET_HEADER) or "").strip().upper() or None
            reply_to_ticket = ticket_ref = None
        cited = ticket_ref or reply_to_ticket
        facts_of_cited = lookups.ticket_facts(cited) if cited else None
        speaker = self._speaker(envelope, effective, mailbox, sender, requester, facts_of_cited, own_hop)
        decision: DecisionLike | None = None
        if automatic is None and speaker.suspicious:
            decision = SystemDecision("quarantine", "mittente_sospetto")
        elif automatic is None and (status := STATUS_REQUEST.match(effective.subject)) is not None:
            decision = SystemDecision("status", "richiesta_stato", target_ticket=status.group(1).upper())
        elif (
            automatic is None
            and facts_of_cited is not None
            and speaker.role in (Role.REFERENT, Role.STAFF)
            and speaker.authenticated
        ):
            decision = SystemDecision("reply", None, target_ticket=facts_of_cited.id)
        elif automatic is None and own_hop is not None:
            # Work handed on by another of our offices: a ticket here, whatever its subject's form.
            decision = SystemDecision("open_ticket", None, rule_id="inoltro_tra_uffici", queue=INTERNAL_QUEUE)
        elif (
            automatic is None
            and facts_of_cited is not None
            and speaker.role is Role.STRANGER
            and (pec is None or pec.kind != "ricevuta")
        ):
            # Someone else's ticket is never written into: a new ticket, linked to the cited one.
            linked_to = facts_of_cited.id
            reply_to_ticket = ticket_ref = None
        if decision is None:
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
                speaker,
            )
            decision = evaluate(self.rules.current, facts)
            if decision.action == "append" and not decision.target_ticket:
                decision = dataclasses.replace(decision, target_ticket=ticket_ref or reply_to_ticket)  # type: ignore[type-var]
            if pec is not None and pec.kind == "ricevuta" and pec.riferimento_message_id:
                target = lookups.ticket_for_sent_message_id(pec.riferimento_message_id)
                if target:
                    decision = dataclasses.replace(decision, target_ticket=target)  # type: ignore[type-var]
        signed_at = pec.data if pec is not None and pec.verified and pec.kind == "posta-certificata" else None
        return Analysis(
            mailbox_id=mailbox.id,
            decision=decision,
            envelope=envelope,
            effective=effective,
            automatic=automatic,
            # We never acknowledge ourselves (an escalation from another of our offices).
            suppress_ack=wants_no_autoreply(envelope) or own_hop is not None,
            classification=cls,
            pec=pec,
            reply_to_ticket=reply_to_ticket,
            signed_at=signed_at,
            speaker=speaker,
            linked_to=linked_to,
            hop=own_hop or 0,
        )

    def _speaker(
        self,
        envelope: ParsedMessage,
        msg: ParsedMessage,
        mailbox: Mailbox,
        sender: str,
        requester: str,
        ticket: TicketFacts | None,
        own_hop: int | None,
    ) -> Speaker:
        verdict = authenticate(envelope.headers.get("authentication-results", ()), sender, self.auth_policy)
        token_ticket = None
        for mid in (*msg.in_reply_to, *reversed(msg.references)):
            token_ticket = self.tokens.verify(mid, sender)
            if token_ticket is not None:
                break
        return identify(
            sender,
            ticket=ticket,
            mailbox=mailbox,
            config=self.config,
            auth_passed=verdict.passed,
            auth_reason=verdict.reason,
            token_ticket=token_ticket,
            own_hop=own_hop,
            requester=requester,
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
