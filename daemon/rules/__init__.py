"""The routing rule engine: YAML rules (routing_rules/rules.yaml) evaluated over a message's facts."""

from daemon.rules.engine import FALLBACK_RULE, evaluate
from daemon.rules.facts import FACT_NAMES, RoutingFacts
from daemon.rules.loader import REASONS, RulesError, load_ruleset
from daemon.rules.model import Decision, Rule, Ruleset
from daemon.rules.store import RuleStore

__all__ = [
    "FACT_NAMES",
    "FALLBACK_RULE",
    "REASONS",
    "Decision",
    "Rule",
    "RuleStore",
    "RoutingFacts",
    "Ruleset",
    "RulesError",
    "evaluate",
    "load_ruleset",
]
