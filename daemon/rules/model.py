"""The parsed rule set: conditions, rules, and the decision a rule produces."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

__all__ = ["ACTIONS", "Condition", "Decision", "Rule", "Ruleset", "Target"]

ACTIONS = ("open_ticket", "append", "reject", "ignore", "forward", "quarantine")


@dataclass(frozen=True)
class Condition:
    """One test of one fact. `op` is one of: uguale, tra, non, non_tra, presente, contiene, regex,
    almeno, al_massimo."""

    fact: str
    op: str
    value: Any
    pattern: re.Pattern[str] | None = None

    def describe(self) -> str:
        if self.fact == "*" and self.op == "non":
            return "non (" + " e ".join(c.describe() for c in self.value[0]) + ")"
        if self.fact == "*" and self.op in ("una_di", "tutte"):
            joiner = " oppure " if self.op == "una_di" else " e inoltre "
            return joiner.join("(" + " e ".join(c.describe() for c in group) + ")" for group in self.value)
        return f"{self.fact} {self.op} {self.value!r}"


@dataclass(frozen=True)
class Target:
    """Who a rule addresses: a person id, `ruolo:<role>` (of the mailbox's office) or `casella:<id>`."""

    spec: str


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    when: tuple[Condition, ...]
    unless: tuple[Condition, ...]
    action: str
    reason: str | None
    queue: str | None
    sla: str | None
    assignees: tuple[str, ...]
    templates: tuple[str, ...]
    forward_to: tuple[str, ...]
    tags: tuple[str, ...]
    priority: str | None
    params: Mapping[str, str]
    line: int | None = None
    continues: bool = False  # `continua: true`: adds its tags/priority/queue/SLA/assignees and goes on
    source: str | None = None  # `fonte`: the passage of the source document the rule comes from

    @cached_property
    def placeholders(self) -> bool:
        """Whether motivo, coda or parametri contain `{...}` to fill from the facts."""
        texts = (self.reason or "", self.queue or "", *self.params.values())
        return any("{" in t for t in texts)


@dataclass(frozen=True)
class Ruleset:
    version: str
    rules: tuple[Rule, ...]
    # person id -> address; (office, role) -> person ids; mailbox id -> address. Resolved at evaluation.
    people: Mapping[str, str] = field(default_factory=dict)
    roles: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    mailboxes: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def queues(self) -> frozenset[str]:
        """The work queues the rules file names (those without placeholders)."""
        return frozenset(r.queue for r in self.rules if r.queue and "{" not in r.queue)


@dataclass(frozen=True)
class Decision:
    rule_id: str
    rules_version: str
    action: str
    reason: str | None = None
    queue: str | None = None
    sla: str | None = None
    assignees: tuple[str, ...] = ()
    templates: tuple[str, ...] = ()
    forward_to: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    priority: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    target_ticket: str | None = None
    trace: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "rules_version": self.rules_version,
            "action": self.action,
            "reason": self.reason,
            "queue": self.queue,
            "sla": self.sla,
            "assignees": list(self.assignees),
            "templates": list(self.templates),
            "forward_to": list(self.forward_to),
            "tags": list(self.tags),
            "priority": self.priority,
            "params": dict(self.params),
            "target_ticket": self.target_ticket,
            "trace": [dict(t) for t in self.trace],
        }
