"""YAML loading that remembers where each value was written, for errors an admin can act on.

Configuration, routing rules and vocabularies are all edited by hand; every problem found in them
is reported as "file:line: key path: what is wrong". This module gives the line for a key path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

__all__ = ["YamlDocument", "YamlProblem", "YamlProblems", "file_stamp", "format_path", "load_yaml", "pydantic_problems"]

PathPart = str | int


@dataclass(frozen=True)
class YamlProblem:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class YamlDocument:
    """Parsed data plus a map from key paths to 1-based line numbers."""

    def __init__(self, file: str, data: Any, lines: dict[tuple[PathPart, ...], int]) -> None:
        self.file = file
        self.data = data
        self._lines = lines

    def line_of(self, path: Sequence[PathPart]) -> int | None:
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return self._lines.get((), None)

    def problem(self, path: Sequence[PathPart], message: str) -> YamlProblem:
        return YamlProblem(self.file, self.line_of(path), format_path(path), message)


class YamlProblems(Exception):
    """One or more problems in an admin's file, each in Italian with its file, line and key."""

    def __init__(self, problems: list[YamlProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class YamlSyntaxError(Exception):
    def __init__(self, problem: YamlProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def format_path(path: Sequence[PathPart]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _index(node: yaml.Node, path: tuple[PathPart, ...], lines: dict[tuple[PathPart, ...], int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            _index(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = (*path, i)
            lines[child] = item.start_mark.line + 1
            _index(item, child, lines)


# PyYAML's problems as an admin should read them (the original text when not listed).
_SYNTAX_IT: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), italian)
    for pattern, italian in (
        (r"expected ',' or '\}'|did not find expected ',' or '\}'", "una mappa { } non è chiusa o manca una virgola"),
        (r"expected ',' or '\]'|did not find expected ',' or '\]'", "un elenco [ ] non è chiuso o manca una virgola"),
        (r"found character '\\t' that cannot start any token", "tabulazione: per i rientri usare spazi"),
        (r"mapping values are not allowed here", "«chiave: valore» non ammesso qui (rientro o virgolette?)"),
        (r"expected <block end>|did not find expected key", "rientro non allineato con le righe precedenti"),
        (r"could not find expected ':'", "manca «:» dopo la chiave"),
        (r"found unexpected end of stream", "il file finisce prima della chiusura (virgolette o parentesi aperte?)"),
        (r"found undefined alias", "alias (*nome) non definito"),
        (r"found unknown escape character", "sequenza con \\ sconosciuta tra virgolette doppie (usare apici singoli)"),
    )
)


def _syntax_problem(exc: yaml.MarkedYAMLError) -> tuple[int | None, str, str]:
    """(line, path, message) of a YAML syntax error: the line where PyYAML noticed it, and the line where
    the unclosed structure began when that is earlier (an unclosed `{` is noticed a line later)."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    problem = exc.problem or "sintassi non valida"
    what = next((italian for rx, italian in _SYNTAX_IT if rx.search(problem)), problem)
    if exc.context_mark is not None and line is not None and exc.context_mark.line + 1 < line:
        what += f" (la struttura inizia alla riga {exc.context_mark.line + 1})"
    return line, "", f"YAML non valido: {what}"


def load_yaml(path: Path | str, text: str | None = None) -> YamlDocument:
    """Load one YAML file; raise `YamlSyntaxError` (Italian message with line) if it is not YAML."""
    file = str(path)
    try:
        if text is None:
            text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlSyntaxError(YamlProblem(file, None, "", f"impossibile leggere il file ({exc.strerror})")) from exc
    except UnicodeDecodeError as exc:
        raise YamlSyntaxError(YamlProblem(file, None, "", "il file non è in UTF-8")) from exc
    try:
        # One parse: the node tree gives the line numbers, and the data is built from it.
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise YamlSyntaxError(YamlProblem(file, *_syntax_problem(exc))) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(YamlProblem(file, None, "", f"YAML non valido: {exc}")) from exc
    lines: dict[tuple[PathPart, ...], int] = {}
    if node is not None:
        _index(node, (), lines)
    return YamlDocument(file, data, lines)


_PYDANTIC_IT = {
    "missing": "campo obbligatorio mancante",
    "extra_forbidden": "chiave sconosciuta (controllare il nome)",
    "string_type": "atteso un testo",
    "int_type": "atteso un numero intero",
    "int_parsing": "atteso un numero intero",
    "float_parsing": "atteso un numero",
    "bool_type": "atteso true o false",
    "bool_parsing": "atteso true o false",
    "list_type": "attesa una lista",
    "dict_type": "attesa una mappa chiave: valore",
    "model_type": "attesa una mappa chiave: valore",
    "greater_than_equal": "valore troppo piccolo",
    "less_than_equal": "valore troppo grande",
    "greater_than": "valore troppo piccolo",
    "less_than": "valore troppo grande",
    "string_too_short": "testo vuoto o troppo corto",
    "too_short": "lista vuota o troppo corta",
    "url_parsing": "indirizzo non valido",
}


def pydantic_problems(doc: YamlDocument, error: ValidationError, prefix: Sequence[PathPart] = ()) -> list[YamlProblem]:
    """Translate a pydantic ValidationError into Italian problems located in the YAML file."""
    problems: list[YamlProblem] = []
    for err in error.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        path = (*prefix, *loc)
        kind = err["type"]
        if kind in ("literal_error", "enum"):  # a Literal or a StrEnum field
            expected = str(err.get("ctx", {}).get("expected", "")).replace(" or ", " o ")
            message = f"valore non ammesso, atteso uno tra: {expected}"
        elif kind in ("value_error", "assertion_error"):
            message = str(err.get("ctx", {}).get("error", err["msg"]))
        else:
            message = _PYDANTIC_IT.get(kind, err["msg"])
        problems.append(doc.problem(path, message))
    return problems


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(modification time, size) of an admin's file, to notice edits cheaply; None if it is missing."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)
