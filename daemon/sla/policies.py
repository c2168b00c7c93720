"""SLA policies: `routing_rules/sla.yaml`, referenced by the routing rules (`sla: <id>`).

A policy is an answer term in working days, whether the clock pauses while the ticket waits for the
requester (and which policy runs meanwhile), and a ladder of steps. Each step is due at a number of
working days before/at/after the term (or from the start of the clock) and may send a template to
recipients, change priority, queue or state, or hand the ticket over to another policy.

Problems are reported in Italian with file, line and key path; `PolicyStore` keeps the last valid
policies in force when the file is edited badly (DESIGN.md invariant 5).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from daemon.conversation.speaker import REQUESTER_ROLES
from daemon.yamlfiles.hotreload import Reloading
from daemon.yamlfiles.source import (
    YamlDocument,
    YamlProblem,
    YamlProblems,
    YamlSyntaxError,
    load_yaml,
    pydantic_problems,
)

__all__ = [
    "ANCHOR_DUE",
    "ANCHOR_START",
    "POLICIES_FILE",
    "Policy",
    "PolicyError",
    "PolicySet",
    "PolicyStore",
    "START_ON_RECEIPT",
    "START_ON_WAITING",
    "Step",
    "load_policies",
]
from storage.models import TICKET_STATES, TicketState

if TYPE_CHECKING:
    from daemon.config import Config

log = logging.getLogger("sportello.sla")

POLICIES_FILE = "sla.yaml"
ANCHOR_DUE = "scadenza"
ANCHOR_START = "avvio"
START_ON_RECEIPT = "ricezione"
START_ON_WAITING = "attesa"
MAILBOX_LEVELS = ("provinciale", "regionale", "nazionale")
CONDITION_KEYS = ("livello_casella", "casella", "coda", "stato", "ufficio", "ruolo_richiedente")
_ID = r"^[a-z0-9][a-z0-9_]*$"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _StepSpec(_Strict):
    """One rung of the ladder as written in sla.yaml. Exactly one of the timing keys says when it is due."""

    id: str = Field(pattern=_ID)
    descrizione: str = ""
    prima_della_scadenza: int | None = Field(default=None, ge=1)
    alla_scadenza: bool | None = None
    dopo_la_scadenza: int | None = Field(default=None, ge=1)
    dall_avvio: int | None = Field(default=None, ge=0)
    # The step applies only if every condition holds (value or list of values).
    se: dict[str, str | tuple[str, ...]] = Field(default_factory=dict)
    modello: str | None = None
    a: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    # Quote the text of the original message in the email (to forward it).
    testo_originale: bool = False
    priorita: str | None = None
    coda: str | None = None
    stato: TicketState | None = None
    esito: str | None = None
    politica: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> _StepSpec:
        timings = [
            self.prima_della_scadenza is not None,
            self.alla_scadenza is True,
            self.dopo_la_scadenza is not None,
            self.dall_avvio is not None,
        ]
        if sum(timings) != 1:
            raise ValueError(
                "indicare uno (e uno solo) tra prima_della_scadenza, alla_scadenza, dopo_la_scadenza, dall_avvio"
            )
        if self.modello and not self.a:
            raise ValueError("un passo con modello deve indicare i destinatari in 'a'")
        if (self.a or self.cc) and not self.modello:
            raise ValueError("destinatari senza modello: indicare il modello dell'email")
        if self.esito and self.stato is not TicketState.CHIUSA:
            raise ValueError("l'esito si indica solo con stato: chiusa")
        for key, value in self.se.items():
            if key not in CONDITION_KEYS:
                raise ValueError(f"condizione sconosciuta: {key} (ammesse: {', '.join(CONDITION_KEYS)})")
            values = (value,) if isinstance(value, str) else value
            if key == "stato" and any(v not in TICKET_STATES for v in values):
                raise ValueError(f"stato sconosciuto in se.stato (ammessi: {', '.join(TICKET_STATES)})")
            if key == "ruolo_richiedente" and any(v not in REQUESTER_ROLES for v in values):
                raise ValueError(f"ruolo sconosciuto in se.ruolo_richiedente (ammessi: {', '.join(REQUESTER_ROLES)})")
            if key == "livello_casella" and any(v not in MAILBOX_LEVELS for v in values):
                raise ValueError(f"livello sconosciuto in se.livello_casella (ammessi: {', '.join(MAILBOX_LEVELS)})")
        return self

    def translate(self) -> Step:
        if self.dall_avvio is not None:
            anchor, offset = ANCHOR_START, self.dall_avvio
        elif self.prima_della_scadenza is not None:
            anchor, offset = ANCHOR_DUE, -self.prima_della_scadenza
        elif self.dopo_la_scadenza is not None:
            anchor, offset = ANCHOR_DUE, self.dopo_la_scadenza
        else:
            anchor, offset = ANCHOR_DUE, 0
        return Step(
            id=self.id,
            description=self.descrizione,
            anchor=anchor,
            offset=offset,
            conditions={k: (v,) if isinstance(v, str) else tuple(v) for k, v in self.se.items()},
            template=self.modello,
            to=self.a,
            cc=self.cc,
            quote_original=self.testo_originale,
            priority=self.priorita,
            queue=self.coda,
            state=self.stato,
            outcome=self.esito,
            hand_over_to=self.politica,
        )


@dataclass(frozen=True)
class Step:
    """One rung of the ladder, as the sweep uses it (sla.yaml's Italian keys translated by the loader)."""

    id: str
    description: str
    anchor: str  # ANCHOR_DUE or ANCHOR_START
    offset: int  # working days from the anchor: negative before the term, 0 at it, positive after it
    conditions: Mapping[str, tuple[str, ...]]  # `se`: every fact must have one of its values
    template: str | None  # `modello`
    to: tuple[str, ...]  # `a`: recipient specs (assegnatario, richiedente, ruolo:..., casella:..., ...)
    cc: tuple[str, ...]
    quote_original: bool  # `testo_originale`
    priority: str | None  # `priorita`
    queue: str | None  # `coda`
    state: TicketState | None  # `stato`
    outcome: str | None  # `esito`, with state chiusa
    hand_over_to: str | None  # `politica`: the policy that takes over once the step has run

    def position(self, answer_days: int) -> int:
        """Working days after the receipt day at whose opening the step is due (before any pause).

        A term of N days ends with the N-th working day after the receipt; "at the term" is the
        opening of the next working day, when the ticket has just become late."""
        if self.anchor == ANCHOR_START:
            return self.offset
        return answer_days + self.offset + 1

    def applies(self, facts: Mapping[str, str | None]) -> bool:
        return all((facts.get(key) or "") in values for key, values in self.conditions.items())


class _PolicySpec(_Strict):
    descrizione: str = ""
    # ricezione: the clock starts at the receipt of the message; attesa: when the ticket waits for the requester.
    avvio: Literal["ricezione", "attesa"] = "ricezione"
    giorni_risposta: int = Field(ge=1, le=365)
    pausa_in_attesa: bool = True
    in_attesa: str | None = None
    passi: tuple[_StepSpec, ...] = ()

    def translate(self, policy_id: str) -> Policy:
        return Policy(
            id=policy_id,
            description=self.descrizione,
            starts_on=self.avvio,
            answer_days=self.giorni_risposta,
            pause_while_waiting=self.pausa_in_attesa,
            while_waiting=self.in_attesa,
            steps=tuple(s.translate() for s in self.passi),
        )


@dataclass(frozen=True)
class Policy:
    """An answer term and its ladder, as the clock and the sweep use it."""

    id: str
    description: str
    starts_on: str  # START_ON_RECEIPT or START_ON_WAITING (`avvio`)
    answer_days: int  # `giorni_risposta`, working days
    pause_while_waiting: bool  # `pausa_in_attesa`
    while_waiting: str | None  # `in_attesa`: the policy whose clock runs while the ticket waits
    steps: tuple[Step, ...]

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)


class _PolicyFile(_Strict):
    predefinita: str
    politiche: dict[str, _PolicySpec] = Field(min_length=1)


@dataclass(frozen=True)
class PolicySet:
    policies: Mapping[str, Policy]
    default: str
    version: str
    file: str

    def get(self, policy_id: str | None) -> Policy | None:
        return self.policies.get(policy_id or "")

    def for_ticket(self, policy_id: str | None) -> Policy:
        """The ticket's policy, or the default one when the rule named none (or one that is gone)."""
        return self.policies.get(policy_id or "") or self.policies[self.default]

    def __contains__(self, policy_id: object) -> bool:
        return policy_id in self.policies


class PolicyError(YamlProblems):
    """Problems in sla.yaml."""


def _recipient_problem(spec: str, config: Config | None) -> str | None:
    if spec in ("assegnatario", "richiedente"):
        return None
    if spec.startswith("ruolo:"):
        role = spec[len("ruolo:") :]
        if config is not None and not config.people_with_role(role):
            return f"nessuna persona ha il ruolo {role} in config.yaml"
        return None
    if spec.startswith("casella:"):
        box = spec[len("casella:") :]
        if config is not None and box not in {m.id for m in config.mailboxes}:
            return f"casella sconosciuta: {box}"
        return None
    if _EMAIL.match(spec):
        return None
    if config is not None and spec not in {p.id for p in config.people}:
        return (
            f"destinatario sconosciuto: {spec} (ammessi: assegnatario, richiedente, ruolo:<ruolo>, "
            "casella:<id>, id di persona o indirizzo email)"
        )
    return None


def _cross_check(
    doc: YamlDocument, parsed: _PolicyFile, config: Config | None, known_templates: Collection[str] | None
) -> list[YamlProblem]:
    problems: list[YamlProblem] = []
    policies = parsed.politiche
    if parsed.predefinita not in policies:
        problems.append(doc.problem(["predefinita"], f"politica sconosciuta: {parsed.predefinita}"))
    elif policies[parsed.predefinita].avvio != START_ON_RECEIPT:
        problems.append(doc.problem(["predefinita"], "la politica predefinita deve avere avvio: ricezione"))
    for pid, policy in policies.items():
        base: list[str | int] = ["politiche", pid]
        if not re.match(_ID, pid):
            problems.append(doc.problem(base, "identificativo non valido: lettere minuscole, cifre e _"))
        if policy.in_attesa is not None:
            other = policies.get(policy.in_attesa)
            if other is None:
                problems.append(doc.problem([*base, "in_attesa"], f"politica sconosciuta: {policy.in_attesa}"))
            elif other.avvio != START_ON_WAITING:
                problems.append(
                    doc.problem([*base, "in_attesa"], f"la politica {policy.in_attesa} deve avere avvio: attesa")
                )
        if policy.avvio == START_ON_WAITING and policy.in_attesa is not None:
            problems.append(doc.problem([*base, "in_attesa"], "una politica di attesa non ne avvia un'altra"))
        seen: set[str] = set()
        for i, step in enumerate(policy.passi):
            path: list[str | int] = [*base, "passi", i]
            if step.id in seen:
                problems.append(doc.problem([*path, "id"], f"passo duplicato: {step.id}"))
            seen.add(step.id)
            if step.prima_della_scadenza is not None and step.prima_della_scadenza > policy.giorni_risposta:
                problems.append(
                    doc.problem(
                        [*path, "prima_della_scadenza"],
                        f"più giorni dei {policy.giorni_risposta} del termine: il passo sarebbe prima dell'avvio",
                    )
                )
            if step.modello and known_templates is not None and step.modello not in known_templates:
                problems.append(
                    doc.problem(
                        [*path, "modello"], f"modello inesistente: {step.modello} (manca templates/{step.modello}.j2)"
                    )
                )
            for key in ("a", "cc"):
                for j, spec in enumerate(getattr(step, key)):
                    message = _recipient_problem(spec, config)
                    if message:
                        problems.append(doc.problem([*path, key, j], message))
            if step.politica is not None:
                other = policies.get(step.politica)
                if other is None:
                    problems.append(doc.problem([*path, "politica"], f"politica sconosciuta: {step.politica}"))
                elif other.avvio != START_ON_RECEIPT or step.politica == pid:
                    problems.append(
                        doc.problem([*path, "politica"], "si passa solo a un'altra politica con avvio: ricezione")
                    )
                if policy.avvio == START_ON_WAITING:
                    problems.append(doc.problem([*path, "politica"], "una politica di attesa non cambia politica"))
            if step.stato is TicketState.IN_ATTESA and policy.avvio == START_ON_WAITING:
                problems.append(doc.problem([*path, "stato"], "la pratica è già in attesa"))
    return problems


def load_policies(
    rules_dir: Path | str,
    config: Config | None = None,
    known_templates: Collection[str] | None = None,
    *,
    text: str | None = None,
) -> PolicySet:
    """Load and check `<rules_dir>/sla.yaml`; raise `PolicyError` with every problem found."""
    path = Path(rules_dir) / POLICIES_FILE
    try:
        doc = load_yaml(path, text)
    except YamlSyntaxError as exc:
        raise PolicyError([exc.problem]) from exc
    if not isinstance(doc.data, dict):
        raise PolicyError([doc.problem([], "il file deve contenere una mappa chiave: valore")])
    try:
        parsed = _PolicyFile.model_validate(doc.data)
    except ValidationError as exc:
        raise PolicyError(pydantic_problems(doc, exc)) from None
    problems = _cross_check(doc, parsed, config, known_templates)
    if problems:
        raise PolicyError(problems)
    policies = {pid: p.translate(pid) for pid, p in parsed.politiche.items()}
    raw = text if text is not None else path.read_text(encoding="utf-8")
    version = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:12]
    return PolicySet(policies=policies, default=parsed.predefinita, version=version, file=str(path))


class PolicyStore(Reloading[PolicySet, PolicyError]):
    """The policies in force, reloaded when sla.yaml changes; a bad file never replaces good policies."""

    error = PolicyError
    log = logging.getLogger("sportello.sla")
    invalid = "politiche SLA non valide, restano in vigore quelle precedenti"
    failed = "politiche SLA non caricate, restano in vigore quelle precedenti"
    reloaded = "politiche SLA ricaricate (versione {new})"

    def __init__(
        self, rules_dir: Path | str, config: Config | None = None, known_templates: Collection[str] | None = None
    ):
        self.rules_dir = Path(rules_dir)
        self.config = config
        self.known_templates = known_templates
        super().__init__(self.rules_dir / POLICIES_FILE)

    def _load(self) -> PolicySet:
        return load_policies(self.rules_dir, self.config, self.known_templates)
