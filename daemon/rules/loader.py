"""routing_rules/rules.yaml -> Ruleset, with every problem reported in Italian with file and line."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from daemon.config import Config
from daemon.rules.facts import FACT_NAMES
from daemon.rules.model import ACTIONS, Condition, Rule, Ruleset
from daemon.yamlsource import YamlDocument, YamlProblem, YamlSyntaxError, load_yaml

__all__ = ["REASONS", "RulesError", "load_ruleset", "parse_ruleset"]

RULES_FILE = "rules.yaml"
REJECT_REASONS = frozenset(
    {
        "istanza_non_pec",
        "domanda_telematizzata",
        "oggetto_non_conforme",
        "mittente_non_abilitato",
        "casella_non_competente",
        "casella_dismessa",
        "canale_non_ammesso",
        "allegati_eccessivi",
        "sollecito_senza_riferimenti",
    }
)
IGNORE_REASONS = frozenset({"auto_reply", "bounce", "loop", "ricevuta_pec"})
REASONS = REJECT_REASONS | IGNORE_REASONS
OPERATORS = frozenset({"uguale", "tra", "non", "non_tra", "presente", "contiene", "regex", "almeno", "al_massimo"})
_KEYS = frozenset(
    {
        "id",
        "descrizione",
        "quando",
        "eccetto",
        "azione",
        "motivo",
        "coda",
        "sla",
        "assegnatari",
        "modelli",
        "inoltra_a",
        "etichette",
        "priorita",
        "parametri",
    }
)


class RulesError(Exception):
    def __init__(self, problems: list[YamlProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


class _Parser:
    def __init__(self, doc: YamlDocument, config: Config | None, known_templates: Collection[str] | None) -> None:
        self.doc = doc
        self.config = config
        self.templates = known_templates
        self.problems: list[YamlProblem] = []

    def fail(self, path: list[str | int], message: str) -> None:
        self.problems.append(self.doc.problem(path, message))

    def conditions(self, path: list[str | int], node: Any) -> tuple[Condition, ...]:
        if node is None:
            return ()
        if not isinstance(node, dict):
            self.fail(path, "atteso un elenco fatto: condizione")
            return ()
        out: list[Condition] = []
        for fact, test in node.items():
            where = [*path, fact]
            if fact not in FACT_NAMES:
                self.fail(where, f"fatto sconosciuto: {fact} (disponibili: {', '.join(sorted(FACT_NAMES))})")
                continue
            if isinstance(test, dict):
                for op, value in test.items():
                    out.extend(self._condition([*where, op], str(fact), str(op), value))
            elif isinstance(test, list):
                out.extend(self._condition(where, str(fact), "tra", test))
            else:
                out.extend(self._condition(where, str(fact), "uguale", test))
        return tuple(out)

    def _condition(self, path: list[str | int], fact: str, op: str, value: Any) -> list[Condition]:
        if op not in OPERATORS:
            self.fail(path, f"operatore sconosciuto: {op} (ammessi: {', '.join(sorted(OPERATORS))})")
            return []
        if op in ("tra", "non_tra") and not isinstance(value, list):
            self.fail(path, f"«{op}» vuole un elenco di valori")
            return []
        if op in ("almeno", "al_massimo") and not isinstance(value, int | float):
            self.fail(path, f"«{op}» vuole un numero")
            return []
        pattern = None
        if op == "regex":
            try:
                pattern = re.compile(str(value), re.IGNORECASE)
            except re.error as exc:
                self.fail(path, f"espressione regolare errata: {exc}")
                return []
        return [Condition(fact, op, value, pattern)]

    def targets(self, path: list[str | int], specs: tuple[str, ...]) -> None:
        if self.config is None:
            return
        people = {p.id for p in self.config.people}
        roles = {r for p in self.config.people for r in p.roles}
        boxes = {m.id for m in self.config.mailboxes}
        for spec in specs:
            if spec.startswith("ruolo:") and spec[6:] not in roles:
                self.fail(path, f"nessuna persona ha il ruolo {spec[6:]}")
            elif spec.startswith("casella:") and spec[8:] not in boxes:
                self.fail(path, f"casella sconosciuta: {spec[8:]}")
            elif not spec.startswith(("ruolo:", "casella:")) and "@" not in spec and spec not in people:
                self.fail(path, f"persona sconosciuta: {spec}")

    def rule(self, index: int, node: Any, seen: set[str]) -> Rule | None:
        path: list[str | int] = ["regole", index]
        if not isinstance(node, dict):
            self.fail(path, "ogni regola è una mappa con id, quando, azione")
            return None
        for key in node:
            if key not in _KEYS:
                self.fail([*path, key], f"chiave sconosciuta: {key} (ammesse: {', '.join(sorted(_KEYS))})")
        rule_id = str(node.get("id") or "")
        if not re.match(r"^[a-z0-9_]+$", rule_id):
            self.fail([*path, "id"] if "id" in node else path, "ogni regola ha un id (minuscole, cifre e _)")
        elif rule_id in seen:
            self.fail([*path, "id"], f"id di regola duplicato: {rule_id}")
        seen.add(rule_id)
        action = node.get("azione")
        if action not in ACTIONS:
            self.fail([*path, "azione"] if "azione" in node else path, f"azione non valida: {action!r} (ammesse: {', '.join(ACTIONS)})")
            return None
        reason = node.get("motivo")
        if action in ("reject", "ignore"):
            allowed = REJECT_REASONS if action == "reject" else IGNORE_REASONS
            if reason is None:
                self.fail(path, f"l'azione {action} richiede un motivo ({', '.join(sorted(allowed))})")
            elif "{" not in str(reason) and reason not in allowed:
                self.fail([*path, "motivo"], f"motivo sconosciuto: {reason} (ammessi: {', '.join(sorted(allowed))})")
        templates = _strings(node.get("modelli"))
        if self.templates is not None:
            for t in templates:
                if t not in self.templates:
                    self.fail([*path, "modelli"], f"modello inesistente: {t} (manca templates/{t}.j2)")
        if action == "reject" and not templates:
            self.fail(path, "un rifiuto deve indicare il modello della risposta (modelli)")
        forward = _strings(node.get("inoltra_a"))
        if action == "forward" and not forward:
            self.fail(path, "un inoltro deve indicare i destinatari (inoltra_a)")
        assignees = _strings(node.get("assegnatari"))
        self.targets([*path, "assegnatari"], assignees)
        self.targets([*path, "inoltra_a"], forward)
        params = node.get("parametri") or {}
        if not isinstance(params, dict):
            self.fail([*path, "parametri"], "attesa una mappa nome: valore")
            params = {}
        return Rule(
            id=rule_id,
            description=str(node.get("descrizione") or ""),
            when=self.conditions([*path, "quando"], node.get("quando")),
            unless=self.conditions([*path, "eccetto"], node.get("eccetto")),
            action=str(action),
            reason=str(reason) if reason is not None else None,
            queue=str(node["coda"]) if node.get("coda") else None,
            sla=str(node["sla"]) if node.get("sla") else None,
            assignees=assignees,
            templates=templates,
            forward_to=forward,
            tags=_strings(node.get("etichette")),
            priority=str(node["priorita"]) if node.get("priorita") else None,
            params={str(k): str(v) for k, v in params.items()},
            line=self.doc.line_of(path),
        )


def parse_ruleset(
    doc: YamlDocument, text: bytes, config: Config | None = None, known_templates: Collection[str] | None = None
) -> Ruleset:
    parser = _Parser(doc, config, known_templates)
    data = doc.data if isinstance(doc.data, dict) else None
    if data is None or not isinstance(data.get("regole"), list):
        raise RulesError([doc.problem([], "il file deve contenere «regole:» con un elenco di regole")])
    seen: set[str] = set()
    rules = [r for i, node in enumerate(data["regole"]) if (r := parser.rule(i, node, seen))]
    if parser.problems:
        raise RulesError(parser.problems)
    people = {p.id: p.address for p in config.people} if config else {}
    roles: dict[tuple[str, str], list[str]] = {}
    if config:
        for p in config.people:
            for office in p.offices or tuple(o.id for o in config.offices):
                for role in p.roles:
                    roles.setdefault((office, role), []).append(p.id)
    return Ruleset(
        version=hashlib.sha256(text).hexdigest()[:12],
        rules=tuple(rules),
        people=people,
        roles={k: tuple(v) for k, v in roles.items()},
        mailboxes={m.id: m.address for m in config.mailboxes} if config else {},
    )


def load_ruleset(
    rules_dir: Path | str, config: Config | None = None, known_templates: Collection[str] | None = None
) -> Ruleset:
    path = Path(rules_dir) / RULES_FILE
    if not path.exists():
        raise RulesError([YamlProblem(str(path), None, "", "file delle regole non trovato")])
    text = path.read_bytes()
    try:
        doc = load_yaml(path, text.decode("utf-8", errors="replace"))
    except YamlSyntaxError as exc:
        raise RulesError([exc.problem]) from exc
    return parse_ruleset(doc, text, config, known_templates)
