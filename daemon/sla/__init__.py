"""The SLA clock: working-day terms, reminders, escalation ladders and daily digests by templated email.

The composition root (daemon.service) builds one `SlaRuntime` (calendars from the `calendar:` section
of config.yaml, policies from routing_rules/sla.yaml, the template renderer) and registers its clock
as a listener on the ticket service; the sweep and the digest receive the same runtime.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from daemon.config import Config, Mailbox
from daemon.conversation.tokens import ReplyTokens
from daemon.core.context import ContextBuilder
from daemon.outbound.templates import TemplateRenderer
from daemon.rules.model import Ruleset
from daemon.sla.policies import POLICIES_FILE, PolicyError, PolicySet, PolicyStore
from daemon.sla.recipients import RecipientResolver
from daemon.workcalendar import CalendarSettings, WorkingCalendar, calendars_from_config

__all__ = [
    "PolicyError",
    "SlaRuntime",
    "build_runtime",
    "warn_unknown_policies",
]

log = logging.getLogger("sportello.sla")


@dataclass
class SlaRuntime:
    """Everything the hooks, the sweep and the digest need, for one configuration."""

    config: Config
    settings: CalendarSettings
    calendars: dict[str, WorkingCalendar]
    store: PolicyStore
    renderer: TemplateRenderer
    recipients: RecipientResolver
    tokens: ReplyTokens | None = None  # signs the hop header of the steps' emails
    _fallback: WorkingCalendar = field(init=False)
    mailboxes: dict[str, Mailbox] = field(init=False)
    context: ContextBuilder = field(init=False)  # the ticket as every template sees it

    def __post_init__(self) -> None:
        s = self.settings
        self._fallback = WorkingCalendar(timezone=s.timezone, cutoff_hour=s.cutoff_hour, opening_hour=s.opening_hour)
        self.mailboxes = {m.id: m for m in self.config.mailboxes}
        self.context = ContextBuilder(self.config)

    @property
    def policies(self) -> PolicySet:
        return self.store.current

    def calendar(self, office: str | None) -> WorkingCalendar:
        return self.calendars.get(office or "", self._fallback)


def build_runtime(
    config: Config, rules_dir: Path | str, renderer: TemplateRenderer, tokens: ReplyTokens | None = None
) -> SlaRuntime | None:
    """Raise PolicyError (with `.problems`) if sla.yaml is invalid (the calendar section of config.yaml
    was checked when the configuration was loaded);
    None (SLA clock off) if there is no sla.yaml at all."""
    if not (Path(rules_dir) / POLICIES_FILE).exists():
        log.warning("%s assente: scadenze, promemoria e solleciti disattivati", Path(rules_dir) / POLICIES_FILE)
        return None
    settings = config.calendar
    calendars = calendars_from_config(config)
    store = PolicyStore(rules_dir, config, known_templates=renderer.names())
    return SlaRuntime(config, settings, calendars, store, renderer, RecipientResolver(config), tokens)


def warn_unknown_policies(runtime: SlaRuntime, rules: Ruleset) -> None:
    """A rule naming a policy sla.yaml does not define gets the default one: say so at start."""
    for rule in rules.rules:
        if rule.sla and rule.sla not in runtime.policies:
            log.warning(
                "la regola %s indica la politica SLA %s che non esiste in sla.yaml: si applica %s",
                rule.id,
                rule.sla,
                runtime.policies.default,
            )
