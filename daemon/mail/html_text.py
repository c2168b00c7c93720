"""HTML to plain text with bounded work: time linear in the input whatever its shape, in C-speed passes.

A tag regular expression backtracks on unterminated tags (200,000 `<` took 10 s) and a full HTML5 parser
builds a tree whose cost grows with nesting depth; mail bodies only need the words and the line breaks.
Every pattern here either cannot fail after it starts (each `<` it scans has a `>` after it) or is
searched for once per element it removes.
"""

from __future__ import annotations

import html
import re

__all__ = ["html_to_text"]

_RAW_OPEN = re.compile(r"<(script|style)\b", re.IGNORECASE)  # code up to the closing tag, not text
_CLOSING = {name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in ("script", "style")}
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG_START = re.compile(r"<[A-Za-z/!?]")
_BREAK_TAG = re.compile(r"<(?:br|p|div|tr|li|h[1-6]|table|blockquote|hr|/p|/div|/tr|/li|/h[1-6]|/table)\b[^>]*>", re.I)
_TAG = re.compile(r"<[A-Za-z/!?][^>]*>")
_SPACES = re.compile(r"[ \t\r\f\v\xa0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_COMMON_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&nbsp;", " "))


def html_to_text(source: str) -> str:
    """The text a reader sees: tags, comments and script/style content dropped, entities decoded, a line
    break at block boundaries. A `<` that starts no tag is kept as text ("a < b")."""
    text = _drop_raw_text(source)
    if "<!--" in text:
        end = text.rfind("-->")
        # A comment left open hides the rest, as in a browser; searched only where a close exists.
        head, tail = (text[: end + 3], text[end + 3 :]) if end >= 0 else ("", text)
        text = _COMMENT.sub(" ", head) + _cut_open(tail, "<!--")
    # After the last `>` no tag can be complete: what follows the first tag start there is an unclosed tag.
    last = text.rfind(">")
    head, tail = text[: last + 1], text[last + 1 :]
    start = _TAG_START.search(tail)
    if start is not None:
        tail = tail[: start.start()]
    text = _TAG.sub(" ", _BREAK_TAG.sub("\n", head)) + tail
    text = _unescape(text)
    text = _SPACES.sub(" ", text)
    text = text.replace(" \n", "\n").replace("\n ", "\n")  # spaces are single by now
    return _BLANK_LINES.sub("\n\n", text).strip()


def _drop_raw_text(source: str) -> str:
    """Without the content of script and style elements; one unclosed element drops the rest."""
    if "<" not in source:
        return source
    parts: list[str] = []
    i = 0
    while (m := _RAW_OPEN.search(source, i)) is not None:
        parts.append(source[i : m.start()])
        close = _CLOSING[m.group(1).lower()].search(source, m.end())
        if close is None:
            return "".join(parts)
        parts.append(" ")
        i = close.end()
    parts.append(source[i:])
    return "".join(parts)


def _cut_open(text: str, opener: str) -> str:
    at = text.find(opener)
    return text if at < 0 else text[:at]


def _unescape(text: str) -> str:
    """html.unescape calls back into Python per entity: the common ones go by plain replacement first."""
    if "&" not in text:
        return text
    for entity, char in _COMMON_ENTITIES:
        text = text.replace(entity, char)
    if text.count("&") != text.count("&amp;"):
        return html.unescape(text)
    return text.replace("&amp;", "&")
