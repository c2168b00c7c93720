"""The new text of a reply: quoted history and signature removed (mail-parser-reply plus the Italian clients' forms)."""

from __future__ import annotations

import re

from mailparser_reply.parser import EmailMessage

from daemon.conversation.htmltext import reply_text
from daemon.mail.html_text import html_to_text

__all__ = ["new_text"]

# mail-parser-reply's attribution patterns are quadratic in the length of a line that starts with "Il"/"On":
# it sees only the head of the reply, each line cut short with a mark none of its patterns accepts at a line
# end. Our own rules below are linear and see every line.
_LIBRARY_LINES = 200
_LIBRARY_WIDTH = 100
_CUT_MARK = "…"
# The library rewrites runs of 32+ '_'/'-' after a blank line, which would shift its lines against ours.
_RULE_LINE = re.compile(r"[_-]{32}")

# "Inviato da iPhone" ends the text it signs; "Inviato da noi il modulo..." followed by more text is a sentence.
_DEVICE_SIGNATURE = re.compile(r"(?:inviato\s+da|sent\s+from|get\s+outlook)", re.IGNORECASE)

_QUOTE_MARKS = re.compile(r"(?:>\s?)+")
_ATTRIBUTION_START = re.compile(r"(?:il|on)\s", re.IGNORECASE)
# "Il 16/11/2026 10:15, Mario Rossi ha scritto:", "Il giorno lun 16 nov 2026 alle ore 10:15 ... ha scritto:",
# "On Mon, Nov 16, 2026 at 10:15 AM ... wrote:"; a date or time in it keeps ordinary sentences out.
_ATTRIBUTION_END = re.compile(r"\s(?:ha\s+scritto|wrote)\s*:\Z", re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_ATTRIBUTION_WIDTH = 400
_ORIGINAL_MESSAGE = re.compile(
    r"-{2,}\s*(?:messaggio\s+originale|original\s+message|messaggio\s+inoltrato|forwarded\s+message)\s*-{2,}",
    re.IGNORECASE,
)
_OUTLOOK_SEPARATOR = re.compile(r"_{32,}")
_SIGNATURE_SEPARATOR = "--"


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]


def _unquoted(line: str) -> str:
    return _QUOTE_MARKS.sub("", line.strip(), count=1) if line.lstrip().startswith(">") else line.strip()


def _attribution_length(lines: list[str], index: int) -> int:
    """How many lines (1 to 3, as clients wrap it) the attribution starting at `index` spans, 0 if none."""
    first = _unquoted(lines[index])
    if not _ATTRIBUTION_START.match(first):
        return 0
    joined = first
    for extra in range(3):
        if extra:
            if index + extra >= len(lines) or not lines[index + extra].strip():
                return 0
            joined += " " + _unquoted(lines[index + extra])
        if len(joined) > _ATTRIBUTION_WIDTH:
            return 0
        if joined.endswith(":") and _ATTRIBUTION_END.search(joined) and _DIGIT.search(joined):
            return extra + 1
    return 0


def _starts_history(lines: list[str], index: int) -> bool:
    line = lines[index].strip()
    return bool(
        _attribution_length(lines, index)
        or _ORIGINAL_MESSAGE.fullmatch(line)
        or _OUTLOOK_SEPARATOR.fullmatch(line)
        or line == _SIGNATURE_SEPARATOR
    )


def _is_quoted_or_blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith(">")


def _bottom_posted(lines: list[str]) -> list[str]:
    """A reply written below the quote: attribution, quoted block, then the new text."""
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start == len(lines):
        return lines
    span = _attribution_length(lines, start)
    if not span:
        return lines
    end = start + span
    while end < len(lines) and _is_quoted_or_blank(lines[end]):
        end += 1
    return lines[end:]


def _library_keeps(lines: list[str]) -> int:
    """How many leading lines mail-parser-reply keeps as new text (headers, signatures, "Inviato da ...")."""
    last_written = max((index for index, line in enumerate(lines) if line.strip()), default=-1)
    window = []
    for index, line in enumerate(lines[:_LIBRARY_LINES]):
        line = line.strip()
        if _RULE_LINE.match(line):
            line = _CUT_MARK
        elif len(line) > _LIBRARY_WIDTH:
            line = line[:_LIBRARY_WIDTH] + _CUT_MARK
        elif index < last_written and _DEVICE_SIGNATURE.match(_unquoted(line)):
            line += _CUT_MARK
        window.append(line)
    skeleton = "\n".join(window)
    first = EmailMessage(text=skeleton, languages=["it"], keep_hyphen_lists=True).read().replies[0]
    if first.headers:
        return 0  # the library skips an empty first part: the text opens with quoted history
    kept = first.content
    if first.signatures and kept.endswith(first.signatures):
        kept = kept[: -len(first.signatures)]
    kept = kept.rstrip()
    if not kept:
        return 0
    if len(window) == len(lines) or kept != skeleton.strip():
        leading = len(skeleton) - len(skeleton.lstrip())
        return skeleton[: leading + len(kept)].count("\n") + 1
    return len(lines)  # nothing found in the head: the rest is beyond its reach


def _has_text_part(text: str | None, html: str | None) -> bool:
    if not text or not text.strip():
        return False
    # Intake gives an HTML-only message the HTML's words as its text (ParsedMessage.text_body): that flat
    # rendering has lost the quote marks and the client's containers, so the HTML is read instead.
    return not html or text != html_to_text(html)


def new_text(text: str | None, html: str | None) -> str:
    """The text a person wrote in a reply, without the quoted history, the signature and the blank edges.

    `text` is the text/plain part; the HTML is read when there is none, or when `text` is only intake's
    rendering of the HTML.
    """
    source = text if text is not None and _has_text_part(text, html) else reply_text(html) if html else ""
    lines = _bottom_posted(_lines(source))
    end = next((index for index in range(len(lines)) if _starts_history(lines, index)), len(lines))
    lines = lines[:end]
    lines = lines[: _library_keeps(lines)] if lines else lines
    while lines and _is_quoted_or_blank(lines[-1]):
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines)
