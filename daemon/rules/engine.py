"""evaluate(ruleset, facts) -> Decision: the first rule whose conditions all hold decides (pure)."""

from __future__ import annotations

import string
from typing import Any

from daemon.rules.facts import RoutingFacts
from daemon.rules.model import Condition, Decision, Rule, Ruleset

__all__ = ["FALLBACK_RULE", "evaluate", "test_condition"]

FALLBACK_RULE = "predefinita"


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == () or value == [] or value is False


def test_condition(cond: Condition, facts: RoutingFacts) -> bool:
    value = facts.get(cond.fact)
    op, expected = cond.op, cond.value
    if op == "presente":
        return (not _empty(value)) == bool(expected)
    if op == "uguale":
        return _norm(value) == _norm(expected)
    if op == "non":
        return _norm(value) != _norm(expected)
    if op == "tra":
        return _norm(value) in {_norm(v) for v in expected}
    if op == "non_tra":
        return _norm(value) not in {_norm(v) for v in expected}
    if op == "contiene":
        if isinstance(value, tuple | list):
            return _norm(expected) in {_norm(v) for v in value}
        return str(expected).lower() in str(value or "").lower()
    if op == "regex":
        return cond.pattern is not None and cond.pattern.search(str(value or "")) is not None
    if op == "almeno":
        return value is not None and value >= expected
    if op == "al_massimo":
        return value is not None and value <= expected
    raise ValueError(f"operatore sconosciuto: {op}")  # the loader rejects these; never reached


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class _Facts(string.Formatter):
    """Formats `{fact}` placeholders in parameters; an unknown or empty fact becomes ''."""

    def get_value(self, key: int | str, args: Any, kwargs: Any) -> Any:
        value = kwargs.get(str(key))
        if isinstance(value, tuple | list):
            return ", ".join(str(v) for v in value)
        return "" if value is None else value


_FORMATTER = _Facts()


def _resolve(specs: tuple[str, ...], ruleset: Ruleset, facts: RoutingFacts, *, addresses: bool) -> tuple[str, ...]:
    out: list[str] = []
    for spec in specs:
        if spec.startswith("ruolo:"):
            ids = ruleset.roles.get((facts.mailbox_office, spec[6:]), ())
            out.extend([ruleset.people[i] for i in ids] if addresses else ids)
        elif spec.startswith("casella:"):
            address = ruleset.mailboxes.get(spec[8:])
            if address:
                out.append(address)
        elif "@" in spec:
            out.append(spec)
        elif spec in ruleset.people:
            out.append(ruleset.people[spec] if addresses else spec)
    return tuple(dict.fromkeys(out))


def _decide(rule: Rule, ruleset: Ruleset, facts: RoutingFacts, trace: list[dict[str, Any]]) -> Decision:
    values = {**facts.summary(), "casella_indirizzi": dict(ruleset.mailboxes)}
    params = {k: _FORMATTER.format(v, **values) for k, v in rule.params.items()}
    for spec in rule.forward_to:
        if spec.startswith("casella:"):
            params.setdefault("indirizzo_corretto", ruleset.mailboxes.get(spec[8:], ""))
    return Decision(
        rule_id=rule.id,
        rules_version=ruleset.version,
        action=rule.action,
        reason=_FORMATTER.format(rule.reason, **values) if rule.reason else None,
        queue=_FORMATTER.format(rule.queue, **values) if rule.queue else None,
        sla=rule.sla,
        assignees=_resolve(rule.assignees, ruleset, facts, addresses=False),
        templates=rule.templates,
        forward_to=_resolve(rule.forward_to, ruleset, facts, addresses=True),
        tags=rule.tags,
        priority=rule.priority,
        params=params,
        trace=tuple(trace),
    )


def evaluate(ruleset: Ruleset, facts: RoutingFacts) -> Decision:
    trace: list[dict[str, Any]] = []
    for rule in ruleset.rules:
        failed = next((c for c in rule.when if not test_condition(c, facts)), None)
        if failed is not None:
            trace.append({"rule": rule.id, "matched": False, "why": f"non vale: {failed.describe()}"})
            continue
        excepted = rule.unless and all(test_condition(c, facts) for c in rule.unless)
        if excepted:
            trace.append({"rule": rule.id, "matched": False, "why": "esclusa da «eccetto»"})
            continue
        trace.append({"rule": rule.id, "matched": True, "why": "tutte le condizioni valgono"})
        return _decide(rule, ruleset, facts, trace)
    trace.append({"rule": FALLBACK_RULE, "matched": True, "why": "nessuna regola applicabile"})
    return Decision(rule_id=FALLBACK_RULE, rules_version=ruleset.version, action="open_ticket", trace=tuple(trace))
