"""What the pure part of the pipeline hands to the transactional part: the analysis of one message."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from daemon.classify import Classification
from daemon.conversation.speaker import Speaker, TicketFacts
from daemon.mail.message import ParsedMessage, UnparseableMessage
from daemon.pec.model import PecAnalysis

__all__ = ["Analysis", "DecisionLike", "Lookups", "SystemDecision", "oversized_decision"]


class DecisionLike(Protocol):
    """The routing decision (daemon.rules.Decision satisfies this)."""

    @property
    def rule_id(self) -> str: ...
    @property
    def rules_version(self) -> str: ...
    @property
    def action(self) -> str: ...  # open_ticket | append | reject | ignore | forward | quarantine | reply | status
    @property
    def reason(self) -> str | None: ...
    @property
    def queue(self) -> str | None: ...
    @property
    def sla(self) -> str | None: ...
    @property
    def assignees(self) -> tuple[str, ...]: ...
    @property
    def templates(self) -> tuple[str, ...]: ...
    @property
    def forward_to(self) -> tuple[str, ...]: ...
    @property
    def tags(self) -> tuple[str, ...]: ...
    @property
    def priority(self) -> str | None: ...
    @property
    def params(self) -> Mapping[str, str]: ...
    @property
    def target_ticket(self) -> str | None: ...

    def to_dict(self) -> dict[str, Any]: ...


_NO_PEC = PecAnalysis(kind="none")  # what the analysis says of mail that is not PEC


@dataclass(frozen=True)
class Lookups:
    """Read-only questions the analysis asks of the database, injected so the heart stays pure."""

    ticket_exists: Callable[[str], bool]
    ticket_for_message_id: Callable[[str], str | None]
    # Only the mail we sent: PEC receipts refer to it, and must never attach to anything else.
    ticket_for_sent_message_id: Callable[[str], str | None] = lambda _m: None
    # The cited ticket's requester, office and assignee: who is speaking depends on them.
    ticket_facts: Callable[[str], TicketFacts | None] = lambda _t: None

    def memoized(self) -> Lookups:
        """The same questions, each asked of the database once: classification and threading both
        look up a reply's In-Reply-To and References, and the subject's ticket id."""
        return Lookups(
            ticket_exists=functools.lru_cache(maxsize=64)(self.ticket_exists),
            ticket_for_message_id=functools.lru_cache(maxsize=64)(self.ticket_for_message_id),
            ticket_for_sent_message_id=functools.lru_cache(maxsize=64)(self.ticket_for_sent_message_id),
            ticket_facts=functools.lru_cache(maxsize=16)(self.ticket_facts),
        )

    @staticmethod
    def empty() -> Lookups:
        return Lookups(ticket_exists=lambda _t: False, ticket_for_message_id=lambda _m: None)


@dataclass(frozen=True)
class Analysis:
    mailbox_id: str
    decision: DecisionLike
    envelope: ParsedMessage | None  # the message as it arrived
    effective: ParsedMessage | None  # what the ticket is about: postacert.eml for a genuine PEC
    failure: UnparseableMessage | None = None
    automatic: str | None = None
    suppress_ack: bool = False
    classification: Classification | None = None
    pec: PecAnalysis | None = None
    reply_to_ticket: str | None = None
    signed_at: datetime | None = None  # PEC signed time: the receipt time for genuine PEC
    speaker: Speaker | None = None
    # A new ticket continues this one (a reply to a ticket closed too long ago, a cited ticket of
    # someone else, an escalation from another of our offices).
    linked_to: str | None = None
    hop: int = 0  # for mail between our own mailboxes: how many times it has passed through us

    @property
    def requester(self) -> str:
        msg = self.effective or self.envelope
        if self.pec is not None and self.pec.mittente and self.pec.verified:
            return str(self.pec.mittente).lower()
        if msg is None:
            return ""
        return msg.reply_to or msg.sender

    def to_dict(self) -> dict[str, Any]:
        msg = self.effective or self.envelope
        out: dict[str, Any] = {
            "mailbox": self.mailbox_id,
            "message_id": msg.message_id if msg else None,
            "sender": self.requester or None,
            "subject": msg.subject if msg else None,
            "automatic": self.automatic,
            "unparseable": self.failure.reason if self.failure else None,
        }
        if self.classification is not None:
            out.update(self.classification.to_dict())
        out.update((self.pec if self.pec is not None else _NO_PEC).to_dict())
        out.update(self.decision.to_dict())
        out["reply_to_ticket"] = self.reply_to_ticket
        if self.speaker is not None:
            out.update(self.speaker.to_dict())
        out["linked_to"] = self.linked_to
        return out


@dataclass(frozen=True)
class SystemDecision:
    """A decision taken before the rules can run (unparseable or oversized input)."""

    action: str
    reason: str | None
    templates: tuple[str, ...] = ()
    rule_id: str = "sistema"
    rules_version: str = "-"
    queue: str | None = None
    sla: str | None = None
    assignees: tuple[str, ...] = ()
    forward_to: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    priority: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    target_ticket: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "action": self.action,
            "reason": self.reason,
            "queue": None,
            "sla": None,
            "templates": list(self.templates),
        }


def oversized_decision(limit_bytes: int) -> SystemDecision:
    """Too large to take in: the sender is told the limit (the message itself is kept)."""
    return SystemDecision(
        "reject",
        "allegati_eccessivi",
        ("rifiuto_allegati_eccessivi",),
        params={"limite_mb": str(limit_bytes // 2**20)},
    )
