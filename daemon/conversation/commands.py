"""The command lines (`#chiudi`, `#attesa`, ...) at the top of a referent's reply, and the text below them."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["COMMAND_NAMES", "Command", "ParsedReply", "parse_commands"]

_NO_ARGUMENT = ("incarico", "attesa", "nota")
_OPTIONAL_ARGUMENT = ("chiudi",)
# The one word each of these needs, as the error names it.
_ONE_ARGUMENT = {"assegna": "la persona a cui assegnare la pratica", "inoltra": "la coda a cui inoltrare la pratica"}
COMMAND_NAMES = ("incarico", "attesa", "chiudi", "nota", "assegna", "inoltra")
# A note is never relayed, a wait is not a closure.
_INCOMPATIBLE = (
    frozenset({"attesa", "chiudi"}),
    frozenset({"nota", "attesa"}),
    frozenset({"nota", "chiudi"}),
)

# `#` then a word that starts with a letter: "#123", "#FE-2026-000123" or "##" are text.
_COMMAND = re.compile(r"#([^\W\d_]\w*)(?:(?::|\s)\s*(.*))?")
_SPACED = re.compile(r"#\s+(\w+)(?:\s.*)?")
_QUOTE_WIDTH = 60


@dataclass(frozen=True)
class Command:
    """One command line: its name (one of COMMAND_NAMES) and its argument, "" when it has none."""

    name: str
    argument: str


@dataclass(frozen=True)
class ParsedReply:
    """The commands of a reply, the text below them, and what was wrong (in Italian, one line each).

    Commands with an error are left out; a caller should run none of them while `errors` is not empty.
    """

    commands: tuple[Command, ...]
    text: str
    errors: tuple[str, ...]


def _one_typo_apart(word: str, known: str) -> bool:
    """One letter replaced, added, removed, or two neighbours swapped."""
    if word == known or abs(len(word) - len(known)) > 1:
        return False
    if len(word) == len(known):
        diffs = [index for index, (a, b) in enumerate(zip(word, known, strict=True)) if a != b]
        if len(diffs) == 1:
            return True
        first = diffs[0]
        return (
            len(diffs) == 2
            and diffs[1] == first + 1
            and word[first] == known[first + 1]
            and word[first + 1] == known[first]
        )
    shorter, longer = sorted((word, known), key=len)
    index = next((i for i, (a, b) in enumerate(zip(shorter, longer, strict=False)) if a != b), len(shorter))
    return shorter[index:] == longer[index + 1 :]


def _shown(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _where(number: int, line: str) -> str:
    return f"riga {number} «{_shown(line, _QUOTE_WIDTH)}»"


def _argument_error(name: str, argument: str) -> str | None:
    if name in _NO_ARGUMENT and argument:
        return f"#{name} non vuole argomenti" + (": la nota è il testo sotto i comandi" if name == "nota" else "")
    if name in _ONE_ARGUMENT:
        wanted = _ONE_ARGUMENT[name]
        if not argument:
            return f"#{name} vuole {wanted}"
        if len(argument.split()) > 1:
            return f"#{name} vuole una sola parola, {wanted}"
    return None


def _command_line(line: str) -> bool:
    spaced = _SPACED.fullmatch(line)
    return bool(_COMMAND.fullmatch(line) or spaced and spaced.group(1).lower() in COMMAND_NAMES)


def parse_commands(text: str) -> ParsedReply:
    """The command block at the top of `text` (blank lines allowed within it) and the text from its first other line."""
    lines = text.replace("\r\n", "\n").split("\n")
    commands: list[Command] = []
    seen: dict[str, int] = {}
    errors: list[str] = []
    start = len(lines)
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if not _command_line(line):
            start = number - 1
            break
        where = _where(number, line)
        found = _COMMAND.fullmatch(line)
        if found is None:
            errors.append(f"{where}: scrivere #{line.lstrip('#').split()[0].lower()} senza spazio dopo #")
            continue
        name, argument = found.group(1).lower(), (found.group(2) or "").strip()
        if name not in COMMAND_NAMES:
            close = next((known for known in COMMAND_NAMES if _one_typo_apart(name, known)), None)
            hint = f"forse #{close}?" if close else "i comandi sono " + ", ".join(f"#{c}" for c in COMMAND_NAMES)
            errors.append(f"{where}: comando sconosciuto #{_shown(name, 20)}; {hint}")
            continue
        problem = _argument_error(name, argument)
        if problem:
            errors.append(f"{where}: {problem}")
            continue
        if name in seen:
            errors.append(f"{where}: #{name} ripetuto (già alla riga {seen[name]})")
            continue
        clash = next((other for other in seen if frozenset({name, other}) in _INCOMPATIBLE), None)
        if clash:
            errors.append(f"{where}: #{name} non va insieme a #{clash} (riga {seen[clash]})")
            continue
        seen[name] = number
        commands.append(Command(name=name, argument=argument))
    body = "\n".join(line.rstrip() for line in lines[start:]).strip("\n")
    return ParsedReply(commands=tuple(commands), text=body, errors=tuple(errors))
