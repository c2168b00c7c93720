"""routing_rules/rules.yaml -> Ruleset, with every problem reported in Italian with file and line."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import string
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from daemon.classify.subject import MISSING_FIELDS
from daemon.classify.vocabulary import Vocabularies
from daemon.config import Config
from daemon.rules.facts import FACT_NAMES
from daemon.rules.model import ACTIONS, Condition, Rule, Ruleset
from daemon.yamlfiles.source import YamlDocument, YamlProblem, YamlProblems, YamlSyntaxError, load_yaml

__all__ = ["REASONS", "RulesError", "load_ruleset", "parse_ruleset", "vocabulary_ids", "vocabulary_values"]

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
IGNORE_REASONS = frozenset({"auto_reply", "bounce", "loop", "bulk", "ricevuta_pec"})
REASONS = REJECT_REASONS | IGNORE_REASONS
_COMBINATORS = frozenset({"non", "una_di", "tutte"})
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
        "continua",
        "fonte",
    }
)


class RulesError(YamlProblems):
    """Problems in rules.yaml."""


# Facts whose values form a closed set: a condition naming another value can never hold, so it is a typo.
_BOOL_FACTS = frozenset(
    {"sender_allowed", "argomento_cassetto", "istanza", "sollecito", "has_valid_cf", "email_ammessa"}
)
_NUMBER_FACTS = frozenset({"attachment_count", "attachment_bytes"})
_FIXED_VALUES: dict[str, frozenset[str]] = {
    "mailbox_kind": frozenset({"ordinaria", "pec"}),
    "mailbox_status": frozenset({"attiva", "dismessa"}),
    "mailbox_level": frozenset({"provinciale", "regionale", "nazionale"}),
    "automatic": frozenset({"auto_reply", "bounce", "loop", "bulk"}),
    "pec_kind": frozenset({"none", "posta-certificata", "anomalia", "ricevuta", "non_verificata"}),
    "oggetto_mancante": frozenset(MISSING_FIELDS),
}
_VALUE_OPS = frozenset({"uguale", "non", "tra", "non_tra"})
# What `{...}` in motivo, coda and parametri may name, besides the facts.
_PLACEHOLDER_EXTRA = frozenset({"casella_indirizzi"})
_PLACEHOLDER = re.compile(r"(\w+)(?:\[([^\]]+)\])?")


def vocabulary_ids(vocab: Vocabularies) -> dict[str, frozenset[str]]:
    """The ids the vocabulary facts (gestione, argomento, unita, telematizzata) can take, from loaded
    daemon.classify.Vocabularies (gestioni.yaml, argomenti.yaml, istanze.yaml)."""
    gestioni = frozenset(e.id for e in vocab.gestioni)
    return {
        "gestione": gestioni,
        "gestione_candidates": gestioni,
        "argomento": frozenset(e.id for e in vocab.argomenti),
        "unita": frozenset(vocab.units),
        "telematizzata": frozenset(e.id for e in vocab.telematizzate),
    }


def vocabulary_values(rules_dir: Path | str) -> dict[str, frozenset[str]] | None:
    """vocabulary_ids of the vocabulary files beside the rules; None if they do not load (their own
    check reports that, and the rules are then checked without them)."""
    from daemon.classify import load_vocabularies
    from daemon.classify.vocabulary import VocabularyError

    try:
        return vocabulary_ids(load_vocabularies(rules_dir))
    except VocabularyError:
        return None


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


class _Parser:
    def __init__(
        self,
        doc: YamlDocument,
        config: Config | None,
        known_templates: Collection[str] | None,
        vocabulary: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        self.doc = doc
        self.config = config
        self.templates = known_templates
        self.problems: list[YamlProblem] = []
        self.allowed: dict[str, Collection[str]] = dict(_FIXED_VALUES)
        if config is not None:
            self.allowed["mailbox"] = frozenset(m.id for m in config.mailboxes)
            self.allowed["mailbox_office"] = frozenset(o.id for o in config.offices)
        for fact, ids in (vocabulary or {}).items():
            self.allowed[fact] = ids

    def fail(self, path: list[str | int], message: str) -> None:
        self.problems.append(self.doc.problem(path, message))

    def strings(self, path: list[str | int], value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(_scalar(v) and v is not None for v in value):
            return tuple(str(v) for v in value)
        self.fail(path, "atteso un valore o un elenco di valori, per esempio [a, b]")
        return ()

    def placeholders(self, path: list[str | int], text: str) -> None:
        """`{fatto}` and `{casella_indirizzi[id]}` in a text: check they name something that exists."""
        try:
            fields = [name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name is not None]
        except ValueError as exc:
            self.fail(path, f"parentesi graffe non bilanciate ({exc}); per scrivere una graffa usare {{{{ o }}}}")
            return
        for name in fields:
            m = _PLACEHOLDER.fullmatch(name)
            root, key = (m.group(1), m.group(2)) if m else (name, None)
            if m is None or (root not in FACT_NAMES and root not in _PLACEHOLDER_EXTRA):
                self.fail(path, f"segnaposto sconosciuto: {{{name}}} (ammessi: {{fatto}} o {{casella_indirizzi[id]}})")
            elif root == "casella_indirizzi":
                if key is None:
                    self.fail(path, f"segnaposto non valido: {{{name}}} (si scrive {{casella_indirizzi[id-casella]}})")
                elif "mailbox" in self.allowed and key not in self.allowed["mailbox"]:
                    self.fail(path, f"casella sconosciuta nel segnaposto: {key}")
            elif key is not None:
                self.fail(path, f"segnaposto non valido: {{{name}}} (si scrive {{{root}}})")

    def conditions(self, path: list[str | int], node: Any) -> tuple[Condition, ...]:
        if node is None:
            return ()
        if not isinstance(node, dict):
            self.fail(path, "attesa una mappa fatto: condizione, per esempio {mailbox: fe-credito, istanza: true}")
            return ()
        out: list[Condition] = []
        for fact, test in node.items():
            where = [*path, fact]
            if fact in _COMBINATORS:
                out.extend(self._combinator(where, str(fact), test))
                continue
            if fact not in FACT_NAMES:
                self.fail(where, f"fatto sconosciuto: {fact} (disponibili: {', '.join(sorted(FACT_NAMES))})")
                continue
            if isinstance(test, dict):
                if not test:
                    self.fail(where, "condizione vuota: indicare un operatore, per esempio {presente: true}")
                for op, value in test.items():
                    out.extend(self._condition([*where, op], str(fact), str(op), value))
            elif isinstance(test, list):
                out.extend(self._condition(where, str(fact), "tra", test))
            else:
                out.extend(self._condition(where, str(fact), "uguale", test))
        return tuple(out)

    def _combinator(self, path: list[str | int], op: str, value: Any) -> list[Condition]:
        """non: {conditions} (not all of them); una_di / tutte: [{conditions}, ...] (any / all groups)."""
        if op == "non":
            if not isinstance(value, dict) or not value:
                self.fail(path, "«non» vuole una mappa di condizioni, per esempio non: {mailbox: fe-durc}")
                return []
            return [Condition("*", "non", (self.conditions(path, value),))]
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) and v for v in value):
            self.fail(
                path, f"«{op}» vuole un elenco di mappe di condizioni, per esempio {op}: [{{istanza: true}}, ...]"
            )
            return []
        return [Condition("*", op, tuple(self.conditions([*path, i], v) for i, v in enumerate(value)))]

    def _condition(self, path: list[str | int], fact: str, op: str, value: Any) -> list[Condition]:
        if op not in OPERATORS:
            self.fail(path, f"operatore sconosciuto: {op} (ammessi: {', '.join(sorted(OPERATORS))})")
            return []
        if op in ("tra", "non_tra") and not isinstance(value, list):
            self.fail(path, f"«{op}» vuole un elenco di valori, per esempio {op}: [a, b]")
            return []
        if op in ("tra", "non_tra") and not all(_scalar(v) for v in value):
            self.fail(path, f"«{op}» vuole un elenco di valori semplici (testi, numeri, true/false)")
            return []
        if op in ("uguale", "non", "contiene") and not _scalar(value):
            self.fail(path, f"«{op}» vuole un solo valore; per più valori usare tra / non_tra")
            return []
        if op == "presente" and not isinstance(value, bool):
            self.fail(path, "«presente» vuole true o false")
            return []
        if op in ("almeno", "al_massimo"):
            if fact not in _NUMBER_FACTS:
                self.fail(path, f"«{op}» vale solo per fatti numerici ({', '.join(sorted(_NUMBER_FACTS))})")
                return []
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(path, f"«{op}» vuole un numero")
                return []
        if fact in _BOOL_FACTS and op in ("uguale", "non") and not isinstance(value, bool):
            self.fail(path, f"{fact} vale true o false, non {value!r}")
            return []
        whole_values = op in _VALUE_OPS or (op == "contiene" and fact in ("gestione_candidates", "oggetto_mancante"))
        if whole_values and fact in self.allowed:
            allowed = self.allowed[fact]
            known = {str(a).lower() for a in allowed}  # the engine compares without case
            values = value if isinstance(value, list) else [value]
            for v in values:
                if v is not None and str(v).lower() not in known:
                    self.fail(path, f"valore sconosciuto per {fact}: {v} (ammessi: {', '.join(sorted(allowed))})")
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
                self.fail(path, f"nessuna persona ha il ruolo {spec[6:]} (ruoli definiti: {', '.join(sorted(roles))})")
            elif spec.startswith("casella:") and spec[8:] not in boxes:
                self.fail(path, f"casella sconosciuta: {spec[8:]}")
            elif not spec.startswith(("ruolo:", "casella:")) and "@" not in spec and spec not in people:
                self.fail(path, f"persona sconosciuta: {spec} (persone in config.yaml: {', '.join(sorted(people))})")

    def forward_targets(self, path: list[str | int], specs: tuple[str, ...]) -> None:
        """A forward to a mailbox this instance reads would come back as our own automatic mail and be
        archived as a loop, without a ticket: say so now rather than lose the message then."""
        if self.config is None:
            return
        read = {m.id: m.address.lower() for m in self.config.mailboxes if m.imap is not None}
        for spec in specs:
            box = spec[8:] if spec.startswith("casella:") else None
            if box is None and "@" in spec:
                box = next((i for i, a in read.items() if a == spec.lower()), None)
            if box in read:
                self.fail(
                    path,
                    f"la casella {box} è letta da questa istanza: l'inoltro vi tornerebbe come messaggio "
                    "automatico e sarebbe archiviato senza pratica; per affidarlo a un altro ufficio usare "
                    "open_ticket con la sua coda",
                )

    def rule(self, index: int, node: Any, seen: set[str]) -> Rule | None:
        path: list[str | int] = ["regole", index]
        if not isinstance(node, dict):
            self.fail(path, "ogni regola è una mappa con id, quando, azione")
            return None
        before = len(self.problems)
        for key in node:
            if key not in _KEYS:
                self.fail([*path, key], f"chiave sconosciuta: {key} (ammesse: {', '.join(sorted(_KEYS))})")
        rule_id = str(node.get("id") or "")
        if not re.match(r"^[a-z0-9_]+$", rule_id):
            self.fail([*path, "id"] if "id" in node else path, "ogni regola ha un id (minuscole, cifre e _)")
        elif rule_id in seen:
            self.fail([*path, "id"], f"id di regola duplicato: {rule_id}")
        seen.add(rule_id)
        if "quando" not in node:
            self.fail(path, "manca «quando» (per una regola che vale sempre: quando: {})")
        continues = node.get("continua", False)
        if not isinstance(continues, bool):
            self.fail([*path, "continua"], "«continua» vuole true o false")
            continues = False
        action = node.get("azione")
        if continues:
            # A rule that continues only adds tags, priority, queue, SLA or assignees for the rule that decides.
            if action is not None:
                self.fail(
                    [*path, "azione"], "una regola con «continua: true» non ha azione: decide una regola successiva"
                )
            for key in ("motivo", "modelli", "inoltra_a"):
                if key in node:
                    self.fail([*path, key], f"una regola con «continua: true» non può avere «{key}»")
            action = "continue"
        elif action not in ACTIONS:
            where = [*path, "azione"] if "azione" in node else path
            self.fail(where, f"azione non valida: {action!r} (ammesse: {', '.join(ACTIONS)})")
        reason = node.get("motivo")
        if action in ("reject", "ignore"):
            allowed = REJECT_REASONS if action == "reject" else IGNORE_REASONS
            if reason is None:
                self.fail(path, f"l'azione {action} richiede un motivo ({', '.join(sorted(allowed))})")
            elif "{" not in str(reason) and reason not in allowed:
                self.fail([*path, "motivo"], f"motivo sconosciuto: {reason} (ammessi: {', '.join(sorted(allowed))})")
        elif reason is not None and "{" not in str(reason) and reason not in REASONS:
            self.fail([*path, "motivo"], f"motivo sconosciuto: {reason} (ammessi: {', '.join(sorted(REASONS))})")
        templates = self.strings([*path, "modelli"], node.get("modelli"))
        if self.templates is not None:
            for t in templates:
                if t not in self.templates:
                    self.fail([*path, "modelli"], f"modello inesistente: {t} (manca templates/{t}.j2)")
        if action == "reject" and not templates:
            self.fail(path, "un rifiuto deve indicare il modello della risposta (modelli)")
        forward = self.strings([*path, "inoltra_a"], node.get("inoltra_a"))
        if action == "forward" and not forward:
            self.fail(path, "un inoltro deve indicare i destinatari (inoltra_a)")
        assignees = self.strings([*path, "assegnatari"], node.get("assegnatari"))
        self.targets([*path, "assegnatari"], assignees)
        self.targets([*path, "inoltra_a"], forward)
        if action == "forward":
            self.forward_targets([*path, "inoltra_a"], forward)
        params = node.get("parametri") or {}
        if not isinstance(params, dict):
            self.fail([*path, "parametri"], "attesa una mappa nome: valore")
            params = {}
        for key in ("motivo", "coda"):
            if node.get(key) is not None:
                self.placeholders([*path, key], str(node[key]))
        for key, value in params.items():
            self.placeholders([*path, "parametri", key], str(value))
        when = self.conditions([*path, "quando"], node.get("quando"))
        unless = self.conditions([*path, "eccetto"], node.get("eccetto"))
        if len(self.problems) > before:
            return None
        return Rule(
            id=rule_id,
            description=str(node.get("descrizione") or ""),
            when=when,
            unless=unless,
            action=str(action),
            reason=str(reason) if reason is not None else None,
            queue=str(node["coda"]) if node.get("coda") else None,
            sla=str(node["sla"]) if node.get("sla") else None,
            assignees=assignees,
            templates=templates,
            forward_to=forward,
            tags=self.strings([*path, "etichette"], node.get("etichette")),
            priority=str(node["priorita"]) if node.get("priorita") else None,
            params={str(k): str(v) for k, v in params.items()},
            line=self.doc.line_of(path),
            continues=continues,
            source=(str(node["fonte"]).strip() or None) if node.get("fonte") else None,
        )

    def unreachable(self, rules: list[tuple[int, Rule]]) -> None:
        """A rule that always holds (no conditions, no exceptions) hides every rule after it."""
        for pos, (_index, rule) in enumerate(rules):
            if rule.when or rule.unless or rule.continues:
                continue
            for later_index, later in rules[pos + 1 :]:
                self.fail(
                    ["regole", later_index, "id"],
                    f"regola irraggiungibile: {later.id} viene dopo «{rule.id}» (riga {rule.line}), che vale "
                    "sempre; spostarla prima o togliere la regola che vale sempre",
                )
            return


def parse_ruleset(
    doc: YamlDocument,
    text: bytes,
    config: Config | None = None,
    known_templates: Collection[str] | None = None,
    vocabulary: Mapping[str, Collection[str]] | None = None,
    sla_policies: Collection[str] | None = None,
) -> Ruleset:
    parser = _Parser(doc, config, known_templates, vocabulary)
    data = doc.data if isinstance(doc.data, dict) else None
    if data is None or not isinstance(data.get("regole"), list):
        message = "il file deve contenere «regole:» con un elenco di regole"
        where: list[str | int] = []
        if data is not None and "regole" in data:
            where = ["regole"]
        elif data:
            where = [next((k for k in data if k != "code"), next(iter(data)))]
            message += f" (trovato «{where[0]}:»)"
        problem = doc.problem(where, message)
        raise RulesError([dataclasses.replace(problem, line=problem.line or 1)])
    for key in data:
        if key not in ("regole", "code"):
            parser.fail([key], f"chiave sconosciuta: {key} (il file contiene «code:» e «regole:»)")
    queues = data.get("code")
    if queues is not None and (not isinstance(queues, dict) or not queues):
        parser.fail(["code"], "«code» è una mappa id_coda: descrizione")
        queues = None
    seen: set[str] = set()
    rules = [(i, r) for i, node in enumerate(data["regole"]) if (r := parser.rule(i, node, seen))]
    parser.unreachable(rules)
    for i, rule in rules:
        # Queues with placeholders ({mailbox}) are named at routing time and cannot be checked here.
        if queues is not None and rule.queue and "{" not in rule.queue and rule.queue not in queues:
            parser.fail(
                ["regole", i, "coda"],
                f"coda sconosciuta: {rule.queue} (definite in «code:»: {', '.join(sorted(map(str, queues)))})",
            )
        if sla_policies is not None and rule.sla and rule.sla not in sla_policies:
            parser.fail(
                ["regole", i, "sla"],
                f"politica SLA sconosciuta: {rule.sla} (definite in sla.yaml: {', '.join(sorted(sla_policies))})",
            )
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
        rules=tuple(r for _i, r in rules),
        people=people,
        roles={k: tuple(v) for k, v in roles.items()},
        mailboxes={m.id: m.address for m in config.mailboxes} if config else {},
    )


def load_ruleset(
    rules_dir: Path | str,
    config: Config | None = None,
    known_templates: Collection[str] | None = None,
    vocabulary: Mapping[str, Collection[str]] | None = None,
) -> Ruleset:
    """Read and check rules.yaml; raise RulesError listing every problem.

    `config` checks mailbox, office, person and role names; `known_templates` the reply templates;
    `vocabulary` (see vocabulary_values) the gestione, argomento, unita and telematizzata ids."""
    path = Path(rules_dir) / RULES_FILE
    if not path.exists():
        raise RulesError([YamlProblem(str(path), None, "", "file delle regole non trovato")])
    text = path.read_bytes()
    try:
        doc = load_yaml(path, text.decode("utf-8", errors="replace"))
    except YamlSyntaxError as exc:
        raise RulesError([exc.problem]) from exc
    return parse_ruleset(doc, text, config, known_templates, vocabulary, _sla_policy_ids(Path(rules_dir)))


def _sla_policy_ids(rules_dir: Path) -> frozenset[str] | None:
    """The policy ids of sla.yaml beside the rules, to check `sla:` of each rule (None: not checked).
    The file's own problems are reported by `sportello sla check` and at start by the SLA component."""
    path = rules_dir / "sla.yaml"
    try:
        data = load_yaml(path).data if path.exists() else None
    except YamlSyntaxError:
        return None
    policies = data.get("politiche") if isinstance(data, dict) else None
    return frozenset(str(k) for k in policies) if isinstance(policies, dict) else None
