"""`sportello rules ...`: check the routing rules and try them on example messages before they go live.

`rules check` validates rules.yaml, the vocabularies and the templates against the configuration;
`rules test` runs a suite of example messages (routing_rules/rules-tests.yaml) through the same
analysis as the pipeline and compares the rule, action and reason with the expected ones.
Messages for users are in Italian.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from daemon.cli.common import ConfigOpt, get_config
from daemon.config import Config
from daemon.rules.model import Ruleset
from daemon.yamlfiles.source import YamlDocument, YamlProblem, YamlProblems, YamlSyntaxError, load_yaml

if TYPE_CHECKING:  # imported when needed: the CLI starts fast
    from daemon.core.analysis import Lookups
    from daemon.core.message_analyser import MessageAnalyser

app = typer.Typer(help="Regole di smistamento: verifica e prova su messaggi di esempio.", no_args_is_help=True)

SUITE_FILE = "rules-tests.yaml"
RULES_DIR = "routing_rules"
TEMPLATES_DIR = "templates"

RulesDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--rules-dir",
        "--rules",
        help="Cartella delle regole (predefinita: routing_rules/ accanto alla configurazione).",
    ),
]


def _console() -> Console:
    # soft_wrap: a problem line "file:line: message" is never broken, so it can be searched and copied.
    console = Console(soft_wrap=True, highlight=False)
    if not console.is_terminal:  # piped or captured (CI logs): a wide table rather than a folded one
        console = Console(soft_wrap=True, highlight=False, width=max(console.width, 150))
    return console


def _config(path: Path | None) -> Config:
    return get_config(path)


def _print_problems(console: Console, title: str, problems: list[YamlProblem]) -> None:
    console.print(f"{title} ({len(problems)} {'problema' if len(problems) == 1 else 'problemi'}):", markup=False)
    for problem in problems:
        console.print(f"  {problem}", markup=False)


# -- check --------------------------------------------------------------------------------------


def _template_problems(templates_dir: Path, names: set[str]) -> list[YamlProblem]:
    """Jinja syntax errors and missing `oggetto`/`testo` blocks, found now rather than at send time."""
    from daemon.outbound.templates import PARTIAL_PREFIX, TemplateRenderer

    problems = TemplateRenderer(templates_dir).templates.problems
    # A broken partial breaks every email that imports it.
    return [p for file, p in sorted(problems.items()) if file[:-3] in names or file.startswith(PARTIAL_PREFIX)]


@dataclass
class CheckResult:
    problems: list[YamlProblem]
    ruleset: Ruleset | None = None  # when valid
    warnings: list[YamlProblem] = field(default_factory=list)  # valid, but worth the admin's attention


def source_warnings(ruleset: Ruleset, rules_file: Path) -> list[YamlProblem]:
    """A rule without `fonte:` cannot be traced to the document it applies (FONTI.md)."""
    return [
        YamlProblem(
            str(rules_file),
            rule.line,
            "",
            f"la regola {rule.id} non indica la fonte (aggiungere «fonte:» con documento e punto, "
            "e la riga corrispondente in FONTI.md)",
        )
        for rule in ruleset.rules
        if not rule.source
    ]


def check_rules(cfg: Config, rules_dir: Path, templates_dir: Path) -> CheckResult:
    """Every problem of the vocabularies, the rules and the templates, all at once."""
    from daemon.classify import load_vocabularies
    from daemon.classify.vocabulary import VocabularyError
    from daemon.outbound.templates import TemplateRenderer
    from daemon.rules import RulesError, load_ruleset
    from daemon.rules.loader import vocabulary_ids

    problems: list[YamlProblem] = []
    vocabulary = None
    try:
        vocabulary = vocabulary_ids(load_vocabularies(rules_dir))
    except VocabularyError as exc:
        problems.extend(exc.problems)
    names = TemplateRenderer(templates_dir).names() if templates_dir.is_dir() else set()
    ruleset = None
    try:
        ruleset = load_ruleset(rules_dir, cfg, names, vocabulary)
    except RulesError as exc:
        problems.extend(exc.problems)
    problems.extend(_template_problems(templates_dir, names))
    warnings = source_warnings(ruleset, rules_dir / "rules.yaml") if ruleset is not None else []
    return CheckResult(problems, ruleset, warnings)


@app.command("check")
def check(config: ConfigOpt = None, rules_dir: RulesDirOpt = None) -> None:
    """Controlla regole, vocabolari e modelli: 0 se validi, 1 con l'elenco dei problemi (file:riga)."""
    cfg = _config(config)
    base = Path(cfg.base_dir)
    rules_dir = rules_dir or base / RULES_DIR
    result = check_rules(cfg, rules_dir, base / TEMPLATES_DIR)
    console = _console()
    if result.problems:
        _print_problems(console, "Regole non valide", result.problems)
        console.print(
            "Finché il file non è corretto, il servizio in esecuzione continua con l'ultima versione valida.",
            markup=False,
        )
        raise typer.Exit(1)
    rs = result.ruleset
    assert rs is not None  # valid: no problems
    console.print(f"Regole valide: {len(rs.rules)} regole, versione {rs.version}", markup=False)
    if result.warnings:
        n = len(result.warnings)
        console.print(f"Avvisi ({n} {'avviso' if n == 1 else 'avvisi'}):", markup=False)
        for warning in result.warnings:
            console.print(f"  {warning}", markup=False)


# -- test ---------------------------------------------------------------------------------------

DEFAULT_SENDER = "Mario Rossi <mario.rossi@posta.example>"
DEFAULT_DATE = "Fri, 20 Nov 2026 10:00:00 +0100"
_CASE_KEYS = frozenset(
    {
        "nome",
        "descrizione",
        "casella",
        "mittente",
        "a",
        "oggetto",
        "testo",
        "intestazioni",
        "allegati",
        "file",
        "pratiche_esistenti",
        "messaggi_di_pratiche",
        "atteso",
    }
)
_EXPECT_KEYS = {"regola": "rule", "azione": "action", "motivo": "reason", "coda": "queue", "modelli": "templates"}
_MESSAGE_KEYS = ("mittente", "a", "oggetto", "testo", "intestazioni", "allegati")


@dataclass
class Case:
    name: str
    line: int | None
    mailbox: str
    raw: bytes
    expected: dict[str, Any]
    tickets: frozenset[str] = frozenset()
    message_ids: dict[str, str] = field(default_factory=dict)


@dataclass
class CaseResult:
    case: Case
    obtained: dict[str, Any]
    mismatches: list[str]

    @property
    def passed(self) -> bool:
        return not self.mismatches


class SuiteError(YamlProblems):
    """Problems in a rules test suite file."""


def _build_message(mailbox_address: str, name: str, node: dict[str, Any]) -> bytes:
    msg = EmailMessage()
    msg["From"] = str(node.get("mittente") or DEFAULT_SENDER)
    msg["To"] = str(node.get("a") or mailbox_address)
    msg["Subject"] = str(node.get("oggetto") or "")
    msg["Date"] = DEFAULT_DATE
    msg["Message-ID"] = f"<{re.sub(r'[^A-Za-z0-9._-]', '-', name)}@prova-regole.example>"
    msg.set_content(str(node.get("testo") or ""))
    for spec in node.get("allegati") or []:
        size = int(spec.get("dimensione", 1000))
        filename = str(spec.get("nome", "allegato.pdf"))
        msg.add_attachment(b"%" * size, maintype="application", subtype="octet-stream", filename=filename)
    for key, value in (node.get("intestazioni") or {}).items():
        del msg[str(key)]
        msg[str(key)] = str(value)
    return msg.as_bytes()


def load_suite(path: Path, cfg: Config, rule_ids: Collection[str] | None = None) -> list[Case]:
    """Read a suite of cases; raise SuiteError with every problem (file:line)."""
    if not path.is_file():
        raise SuiteError([YamlProblem(str(path), None, "", "file dei casi di prova non trovato")])
    try:
        doc = load_yaml(path)
    except YamlSyntaxError as exc:
        raise SuiteError([exc.problem]) from exc
    data = doc.data if isinstance(doc.data, dict) else {}
    nodes = data.get("casi")
    if not isinstance(nodes, list) or not nodes:
        raise SuiteError([doc.problem([], "il file deve contenere «casi:» con un elenco di casi di prova")])
    boxes = {m.id: m for m in cfg.mailboxes}
    problems: list[YamlProblem] = []
    cases: list[Case] = []
    seen: set[str] = set()
    for i, node in enumerate(nodes):
        case = _case(doc, path, ["casi", i], node, boxes, seen, problems, rule_ids)
        if case is not None:
            cases.append(case)
    if problems:
        raise SuiteError(problems)
    return cases


def _case(
    doc: YamlDocument,
    path: Path,
    where: list[str | int],
    node: Any,
    boxes: dict[str, Any],
    seen: set[str],
    problems: list[YamlProblem],
    rule_ids: Collection[str] | None,
) -> Case | None:
    def fail(sub: list[str | int], message: str) -> None:
        problems.append(doc.problem([*where, *sub], message))

    if not isinstance(node, dict):
        fail([], "ogni caso è una mappa con nome, casella, oggetto, testo, atteso")
        return None
    before = len(problems)
    for key in node:
        if key not in _CASE_KEYS:
            fail([key], f"chiave sconosciuta: {key} (ammesse: {', '.join(sorted(_CASE_KEYS))})")
    name = str(node.get("nome") or "")
    if not name:
        fail([], "ogni caso ha un nome")
    elif name in seen:
        fail(["nome"], f"nome di caso duplicato: {name}")
    seen.add(name)
    mailbox = str(node.get("casella") or "")
    if mailbox not in boxes:
        fail(["casella"] if "casella" in node else [], f"casella sconosciuta: {mailbox or '(mancante)'}")
    expected = node.get("atteso")
    if not isinstance(expected, dict) or "regola" not in expected:
        fail(["atteso"] if "atteso" in node else [], "manca «atteso» con almeno la regola attesa")
        expected = {}
    if rule_ids is not None and expected.get("regola") is not None and str(expected["regola"]) not in rule_ids:
        fail(["atteso", "regola"], f"regola inesistente: {expected['regola']} (non è in rules.yaml)")
    for key in expected:
        if key not in _EXPECT_KEYS:
            fail(["atteso", key], f"chiave sconosciuta: {key} (ammesse: {', '.join(_EXPECT_KEYS)})")
    for key in ("intestazioni", "messaggi_di_pratiche"):
        if node.get(key) is not None and not isinstance(node[key], dict):
            fail([key], "attesa una mappa nome: valore")
    for key in ("allegati", "pratiche_esistenti"):
        if node.get(key) is not None and not isinstance(node[key], list):
            fail([key], "atteso un elenco")
    if node.get("file") and any(k in node for k in _MESSAGE_KEYS):
        fail(["file"], "con «file» il messaggio è quello del file: togliere mittente, oggetto, testo, ...")
    raw: bytes | None = None
    if node.get("file"):
        eml = path.parent / str(node["file"])
        try:
            raw = eml.read_bytes()
        except OSError as exc:
            fail(["file"], f"impossibile leggere {eml}: {exc.strerror}")
    if len(problems) > before:
        return None
    if raw is None:
        try:
            raw = _build_message(boxes[mailbox].address, name, node)
        except (TypeError, ValueError, AttributeError) as exc:
            fail([], f"messaggio non costruibile: {exc}")
            return None
    message_ids = {str(k).strip("<>"): str(v).upper() for k, v in (node.get("messaggi_di_pratiche") or {}).items()}
    tickets = frozenset(str(t).upper() for t in node.get("pratiche_esistenti") or ()) | frozenset(message_ids.values())
    return Case(name, doc.line_of(where), mailbox, raw, dict(expected), tickets, message_ids)


def _lookups(case: Case) -> Lookups:
    from daemon.core.analysis import Lookups

    return Lookups(
        ticket_exists=lambda t: t.upper() in case.tickets,
        ticket_for_message_id=lambda mid: case.message_ids.get(mid.strip("<>")),
        ticket_for_sent_message_id=lambda mid: case.message_ids.get(mid.strip("<>")),
    )


def run_case(analyser: MessageAnalyser, cfg: Config, case: Case) -> CaseResult:
    obtained = analyser(case.raw, cfg.mailbox(case.mailbox), _lookups(case)).to_dict()
    mismatches = []
    for key, value in case.expected.items():
        got = obtained.get(_EXPECT_KEYS[key])
        want: Any = list(value) if isinstance(value, list) else value
        if key == "modelli" and isinstance(value, str):
            want = [value]
        if got != want:
            mismatches.append(f"{key}: atteso {_show(want)}, ottenuto {_show(got)}")
    return CaseResult(case, obtained, mismatches)


def _show(value: Any) -> str:
    if value is None:
        return "nessuno"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _summary(values: dict[str, Any]) -> str:
    """`regola` on one line, `azione · motivo` on the next."""
    rule = values.get("rule") or "-"
    rest = [str(values[k]) for k in ("action", "reason") if values.get(k) is not None]
    return rule + ("\n" + " · ".join(rest) if rest else "")


def build_analyser(cfg: Config, rules_dir: Path) -> MessageAnalyser:
    """The pipeline's MessageAnalyser over `rules_dir`, without a database."""
    from daemon.classify import load_vocabularies
    from daemon.conversation.tokens import ReplyTokens
    from daemon.core.message_analyser import MessageAnalyser
    from daemon.outbound.templates import TemplateRenderer
    from daemon.pec.settings import load_pec_trust
    from daemon.rules import RuleStore
    from daemon.rules.loader import vocabulary_ids

    vocab = load_vocabularies(rules_dir)
    names = TemplateRenderer(Path(cfg.base_dir) / TEMPLATES_DIR).names()
    store = RuleStore(rules_dir, cfg, known_templates=names, vocabulary=vocabulary_ids(vocab))
    # Replies by referents cannot be tested here: a random secret verifies no token.
    tokens = ReplyTokens(secrets.token_bytes(32), cfg.instance.message_id_domain)
    return MessageAnalyser(cfg, vocab, load_pec_trust(cfg), store, tokens)


@app.command("test")
def run_tests(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="File dei casi di prova, o la cartella che lo contiene (predefinito routing_rules/rules-tests.yaml)."
        ),
    ] = None,
    config: ConfigOpt = None,
    rules_dir: RulesDirOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Mostra anche il percorso nelle regole.")] = False,
) -> None:
    """Prova le regole sui casi di esempio: 0 se tutti danno l'esito atteso, 1 altrimenti (2: file non valido)."""
    from daemon.classify.vocabulary import VocabularyError
    from daemon.pec.settings import PecSettingsError
    from daemon.rules import FALLBACK_RULE, RulesError

    cfg = _config(config)
    console = _console()
    base = Path(cfg.base_dir)
    rules_dir = rules_dir or base / RULES_DIR
    suite = file or rules_dir / SUITE_FILE
    if suite.is_dir():
        suite = suite / SUITE_FILE
    try:
        analyser = build_analyser(cfg, rules_dir)
    except (RulesError, VocabularyError) as exc:
        _print_problems(console, "Regole non valide, nessun caso provato", exc.problems)
        raise typer.Exit(1) from None
    except PecSettingsError as exc:
        console.print(f"Configurazione PEC non valida: {exc}", markup=False)
        raise typer.Exit(2) from None
    try:
        rule_ids = {r.id for r in analyser.rules.current.rules} | {FALLBACK_RULE, "sistema"}
        cases = load_suite(suite, cfg, rule_ids)
    except SuiteError as exc:
        _print_problems(console, "Casi di prova non validi", exc.problems)
        raise typer.Exit(2) from None

    results = [run_case(analyser, cfg, case) for case in cases]
    version = analyser.rules.version
    table = Table(title=f"Prova delle regole (versione {version})")
    table.add_column("caso", overflow="fold")
    table.add_column("atteso", overflow="fold")
    table.add_column("ottenuto", overflow="fold")
    table.add_column("esito", no_wrap=True)
    for r in results:
        expected = {_EXPECT_KEYS[k]: v for k, v in r.case.expected.items()}
        table.add_row(
            r.case.name,
            _summary(expected),
            _summary(r.obtained),
            "[green]superato[/]" if r.passed else "[bold red]FALLITO[/]",
        )
    console.print(table)
    failed = [r for r in results if not r.passed]
    for r in results if verbose else failed:
        console.print(
            f"\n{'FALLITO' if r.mismatches else 'superato'} {r.case.name} ({suite}:{r.case.line}):", markup=False
        )
        for m in r.mismatches:
            console.print(f"  {m}", markup=False)
        trace = r.obtained.get("trace", [])
        for step in trace:
            if verbose or step["rule"] == r.case.expected.get("regola") or step["matched"]:
                console.print(f"  - {step['rule']}: {step['why']}", markup=False)
        wanted = r.case.expected.get("regola")
        if r.mismatches and wanted not in {step["rule"] for step in trace}:
            console.print(f"  - {wanted}: non raggiunta, decide prima {r.obtained.get('rule')}", markup=False)
    console.print(f"\nCasi superati: {len(results) - len(failed)} su {len(results)}", markup=False)
    if failed:
        raise typer.Exit(1)
