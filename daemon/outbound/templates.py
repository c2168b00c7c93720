"""Jinja2 email templates: one file per email, `templates/<name>.j2`, blocks `oggetto`, `testo`, `html`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, StrictUndefined, TemplateNotFound, TemplateSyntaxError

from daemon.outbound.template_store import SnapshotLoader, TemplateStore
from daemon.yamlfiles.source import YamlProblem

__all__ = ["RenderedEmail", "TemplateRenderer", "TemplateError", "data_it"]

ROME = ZoneInfo("Europe/Rome")
# `_etichette.j2`: not an email, a partial the emails import; each block is rendered on its own, so the
# import goes inside the block that uses it ({% block oggetto %}{% from "_etichette.j2" import x %}...).
PARTIAL_PREFIX = "_"
_GIORNI = ["lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"]
_MESI = [
    "gennaio",
    "febbraio",
    "marzo",
    "aprile",
    "maggio",
    "giugno",
    "luglio",
    "agosto",
    "settembre",
    "ottobre",
    "novembre",
    "dicembre",
]


def data_it(value: datetime | None, with_time: bool = True) -> str:
    """`lunedì 23 novembre 2026 alle 10:15` in the office's time zone."""
    if value is None:
        return "-"
    local = value.astimezone(ROME) if value.tzinfo else value
    text = f"{_GIORNI[local.weekday()]} {local.day} {_MESI[local.month - 1]} {local.year}"
    return f"{text} alle {local:%H:%M}" if with_time else text


class TemplateError(Exception):
    pass


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str | None


class TemplateRenderer:
    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.env = Environment(
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["data_it"] = data_it
        self.env.filters["giorno_it"] = lambda v: data_it(v, with_time=False)
        # Checked with the filters above, so after them; `refresh()` takes in edits (see TemplateStore).
        self.templates = TemplateStore(self.directory, self._problem)
        self.env.loader = SnapshotLoader(self.templates)

    def _problem(self, file_name: str, path: Path, source: str) -> YamlProblem | None:
        """Jinja syntax errors (unknown filters too) and missing `oggetto`/`testo` blocks; a partial
        (`_name.j2`: macros or text that templates import or include) needs no blocks."""
        try:
            template = self.env.from_string(source)
        except TemplateSyntaxError as exc:
            return YamlProblem(str(path), exc.lineno, "", f"modello non valido: {exc.message}")
        if file_name.startswith(PARTIAL_PREFIX):
            return None
        missing = [b for b in ("oggetto", "testo") if b not in template.blocks]
        if missing:
            blocks = " e ".join(f"{{% block {b} %}}" for b in missing)
            return YamlProblem(str(path), None, "", f"nel modello manca {blocks}")
        return None

    def names(self) -> set[str]:
        """The emails that can be sent (partials are not emails)."""
        return {p.name[: -len(".j2")] for p in self.directory.glob("*.j2") if not p.name.startswith(PARTIAL_PREFIX)}

    def render(self, name: str, context: dict[str, Any]) -> RenderedEmail:
        try:
            template = self.env.get_template(f"{name}.j2")
        except TemplateNotFound as exc:
            raise TemplateError(f"modello email non trovato: {name}") from exc
        ctx = template.new_context(context)
        blocks = template.blocks
        if "oggetto" not in blocks or "testo" not in blocks:
            raise TemplateError(f"il modello {name} deve definire i blocchi 'oggetto' e 'testo'")
        subject = " ".join("".join(blocks["oggetto"](ctx)).split())
        text = "".join(blocks["testo"](ctx)).strip() + "\n"
        html = "".join(blocks["html"](ctx)).strip() if "html" in blocks else None
        return RenderedEmail(subject=subject, text=text, html=html or None)
