"""evaluate(ruleset, facts) -> Decision: the first rule whose conditions all hold decides (pure)."""

from __future__ import annotations

import dataclasses
import string
from typing import Any

from daemon.rules.facts import RoutingFacts
from daemon.rules.model import Condition, Decision, Rule, Ruleset

__all__ = ["FALLBACK_RULE", "evaluate", "test_condition"]

FALLBACK_RULE = "predefinita"


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == () or value == [] or value is False


def _all(conds: tuple[Condition, ...], facts: RoutingFacts) -> bool:
    return all(test_condition(c, facts) for c in conds)


def test_condition(cond: Condition, facts: RoutingFacts) -> bool:
    op, expected = cond.op, cond.value
    if op == "non" and cond.fact == "*":
        return not _all(expected[0], facts)
    if op == "una_di":
        return any(_all(group, facts) for group in expected)
    if op == "tutte":
        return all(_all(group, facts) for group in expected)
    value = facts.get(cond.fact)
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

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        # `{casella_indirizzi[id]}` of a mailbox that is gone must not break routing: it becomes ''.
        try:
            return super().get_field(field_name, args, kwargs)
        except (KeyError, IndexError, AttributeError, TypeError):
            return "", field_name


_FORMATTER = _Facts()


def _format(text: str, values: dict[str, Any]) -> str:
    return _FORMATTER.format(text, **values) if "{" in text else text


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


def _values(rule: Rule, ruleset: Ruleset, facts: RoutingFacts) -> dict[str, Any]:
    """What `{...}` in the rule's texts may name; computed only when the rule has placeholders."""
    return {**facts.summary(), "casella_indirizzi": dict(ruleset.mailboxes)} if rule.placeholders else {}


def _decide(rule: Rule, ruleset: Ruleset, facts: RoutingFacts, trace: list[dict[str, Any]]) -> Decision:
    values = _values(rule, ruleset, facts)
    params = {k: _format(v, values) for k, v in rule.params.items()}
    for spec in rule.forward_to:
        if spec.startswith("casella:"):
            params.setdefault("indirizzo_corretto", ruleset.mailboxes.get(spec[8:], ""))
    return Decision(
        rule_id=rule.id,
        rules_version=ruleset.version,
        action=rule.action,
        reason=_format(rule.reason, values) if rule.reason else None,
        queue=_format(rule.queue, values) if rule.queue else None,
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
    carried: list[Rule] = []  # matching rules with `continua: true`, applied under the deciding rule
    for rule in ruleset.rules:
        failed = next((c for c in rule.when if not test_condition(c, facts)), None)
        if failed is not None:
            trace.append({"rule": rule.id, "matched": False, "why": f"non vale: {failed.describe()}"})
            continue
        excepted = rule.unless and all(test_condition(c, facts) for c in rule.unless)
        if excepted:
            trace.append({"rule": rule.id, "matched": False, "why": "esclusa da «eccetto»"})
            continue
        if rule.continues:
            trace.append({"rule": rule.id, "matched": True, "why": "vale; si prosegue («continua»)"})
            carried.append(rule)
            continue
        trace.append({"rule": rule.id, "matched": True, "why": "tutte le condizioni valgono"})
        return _carry(_decide(rule, ruleset, facts, trace), carried, ruleset, facts)
    trace.append({"rule": FALLBACK_RULE, "matched": True, "why": "nessuna regola applicabile"})
    fallback = Decision(rule_id=FALLBACK_RULE, rules_version=ruleset.version, action="open_ticket", trace=tuple(trace))
    return _carry(fallback, carried, ruleset, facts)


def _carry(decision: Decision, carried: list[Rule], ruleset: Ruleset, facts: RoutingFacts) -> Decision:
    """The deciding rule's own settings win; earlier `continua` rules fill what it leaves empty."""
    if not carried:
        return decision
    tags = list(decision.tags)
    queue, sla, priority, assignees = decision.queue, decision.sla, decision.priority, decision.assignees
    for rule in carried:
        tags.extend(t for t in rule.tags if t not in tags)
        if not queue and rule.queue:
            queue = _format(rule.queue, _values(rule, ruleset, facts))  # `coda: "x_{mailbox}"` as when deciding
        sla = sla or rule.sla
        priority = priority or rule.priority
        assignees = assignees or _resolve(rule.assignees, ruleset, facts, addresses=False)
    return dataclasses.replace(decision, tags=tuple(tags), queue=queue, sla=sla, priority=priority, assignees=assignees)
