"""The SLA clock: working-day terms, reminders, escalation ladders and daily digests by templated email.

`install_hooks(service)` is called by every Service: it builds the runtime (calendars from the
`calendar:` section of config.yaml, policies from routing_rules/sla.yaml, the template renderer),
files it under the service's database engine, and registers the ticket hooks once per process.
The hooks are module-level functions: they find the runtime through the session they are given,
so several services (and tests) in one process each get their own configuration, and a session on
an engine without a runtime (a bare Pipeline in a test) is left alone.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.sla.policies import POLICIES_FILE, PolicyError, PolicySet, PolicyStore
from daemon.sla.recipients import RecipientResolver
from daemon.workcalendar import CalendarSettings, WorkingCalendar, calendars_from_config

__all__ = [
    "PolicyError",
    "SlaRuntime",
    "build_runtime",
    "install_hooks",
    "runtime_for",
    "runtime_for_engine",
]

log = logging.getLogger("sportello.sla")


@dataclass
class SlaRuntime:
    """Everything the hooks, the sweep and the digest need, for one configuration."""

    config: Any
    settings: CalendarSettings
    calendars: dict[str, WorkingCalendar]
    store: PolicyStore
    renderer: Any  # daemon.outbound.templates.TemplateRenderer
    recipients: RecipientResolver
    _fallback: WorkingCalendar = field(init=False)
    mailboxes: dict[str, Any] = field(init=False)
    offices: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self._fallback = WorkingCalendar(timezone=s.timezone, cutoff_hour=s.cutoff_hour, opening_hour=s.opening_hour)
        self.mailboxes = {m.id: m for m in self.config.mailboxes}
        self.offices = {o.id: o for o in self.config.offices}

    @property
    def policies(self) -> PolicySet:
        return self.store.current

    def calendar(self, office: str | None) -> WorkingCalendar:
        return self.calendars.get(office or "", self._fallback)


def build_runtime(config: Any, rules_dir: Path | str, renderer: Any) -> SlaRuntime | None:
    """Raise PolicyError (with `.problems`) if sla.yaml is invalid (the calendar section of config.yaml
    was checked when the configuration was loaded);
    None (SLA clock off) if there is no sla.yaml at all."""
    if not (Path(rules_dir) / POLICIES_FILE).exists():
        log.warning("%s assente: scadenze, promemoria e solleciti disattivati", Path(rules_dir) / POLICIES_FILE)
        return None
    settings = config.calendar
    calendars = calendars_from_config(config)
    store = PolicyStore(rules_dir, config, known_templates=renderer.names())
    return SlaRuntime(config, settings, calendars, store, renderer, RecipientResolver(config))


_RUNTIMES: weakref.WeakKeyDictionary[Engine, SlaRuntime] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def runtime_for_engine(engine: Engine) -> SlaRuntime | None:
    return _RUNTIMES.get(engine)


def runtime_for(session: Session) -> SlaRuntime | None:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else getattr(bind, "engine", None)
    return _RUNTIMES.get(engine) if engine is not None else None


def install_hooks(service: Any) -> SlaRuntime | None:
    """Build this service's runtime and register the ticket hooks (once per process)."""
    from daemon.core import pipeline, tickets
    from daemon.sla import hooks

    rules_dir = getattr(service, "rules_dir", None) or Path(service.config.base_dir) / "routing_rules"
    runtime = build_runtime(service.config, rules_dir, service.renderer)
    with _LOCK:
        if runtime is None:
            _RUNTIMES.pop(service.engine, None)
        else:
            _RUNTIMES[service.engine] = runtime
        if hooks.on_ticket_opened not in pipeline.opened_hooks:
            pipeline.opened_hooks.append(hooks.on_ticket_opened)
        if hooks.on_state_changed not in tickets.state_hooks:
            tickets.state_hooks.append(hooks.on_state_changed)
    if runtime is not None:
        _warn_unknown_policies(service, runtime)
    return runtime


def _warn_unknown_policies(service: Any, runtime: SlaRuntime) -> None:
    rules = getattr(getattr(service, "rules", None), "current", None)
    for rule in getattr(rules, "rules", ()):
        policy = getattr(rule, "sla", None)
        if policy and policy not in runtime.policies:
            log.warning(
                "la regola %s indica la politica SLA %s che non esiste in sla.yaml: si applica %s",
                rule.id,
                policy,
                runtime.policies.default,
            )
