"""Plain text of an HTML mail body as a client would write it: blocks on their own lines, quotes marked with `> `."""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from typing import Literal

__all__ = ["reply_text"]

# Elements whose content is never text a person wrote.
_INVISIBLE = frozenset({"head", "style", "script", "title", "template", "noscript", "xml"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt", "figure", "footer",
        "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "li", "main", "nav", "ol", "p", "pre", "section",
        "table", "tbody", "tfoot", "thead", "tr", "ul",
    }
)  # fmt: skip
# Where a client puts the message being answered: everything from there on is history.
_HISTORY_IDS = frozenset(
    {"appendonsend", "divrplyfwdmsg", "mail-editor-reference-message-container", "olk_src_body_section"}
)
_HISTORY_CLASSES = frozenset({"gmail_quote", "moz-cite-prefix", "moz-forward-container", "yahoo_quoted"})
# Where a client puts the sender's signature.
_SIGNATURE_IDS = frozenset({"signature"})
_SIGNATURE_CLASSES = frozenset({"moz-signature", "gmail_signature"})
# Browsers bound nesting too; it keeps memory and the unwinding at an end tag bounded on hostile input.
_MAX_DEPTH = 512
_PIECE = 64 * 1024
_MAX_HTML = 1024 * 1024
_SPACES = re.compile(r"[ \t\n\r\f\v\xa0\u200b]+")
_OUTLOOK_SEPARATOR = "_" * 32  # what Outlook writes for <hr> in its own plain-text part


def _role(attrs: list[tuple[str, str | None]]) -> Literal["history", "signature"] | None:
    """Whether an element is where a client put the quoted message or the sender's signature."""
    for name, value in attrs:
        if not value:
            continue
        if name == "id":
            element_id = value.strip().lower()
            if element_id in _HISTORY_IDS:
                return "history"
            if element_id in _SIGNATURE_IDS:
                return "signature"
        elif name == "class":
            classes = set(value.lower().split())
            if classes & _HISTORY_CLASSES:
                return "history"
            if classes & _SIGNATURE_CLASSES:
                return "signature"
        elif name == "data-smartmail" and value == "gmail_signature":
            return "signature"
    return None


class _ReplyText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._line_quote = 0
        self._open: list[str] = []
        self._open_count: Counter[str] = Counter()  # keeps the test for a stray end tag constant-time
        self._hidden_at: int | None = None  # depth of the element whose content is skipped
        self._quote = 0
        self._pre = 0
        self.done = False

    def _end_line(self) -> None:
        text = "".join(self._line).rstrip()
        self.lines.append(("> " * self._line_quote + text).rstrip() if text else ">" * self._line_quote)
        self._line = []

    def _block_boundary(self) -> None:
        if self._line:
            self._end_line()

    def _text(self, text: str) -> None:
        if not self._line:
            self._line_quote = self._quote
            if not self._pre:
                text = text.lstrip()
        if text:
            self._line.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done or self._hidden_at is not None:
            self._push(tag)
            return
        role = _role(attrs) if attrs else None
        if role == "history":
            self._block_boundary()
            self.done = True
            return
        if tag == "br":
            if not self._line:
                self._line_quote = self._quote
            self._end_line()
        elif tag == "hr":
            self._block_boundary()
            self.lines.append(_OUTLOOK_SEPARATOR)
        elif tag in ("td", "th"):
            self._text(" ")
        elif tag in _BLOCK:
            self._block_boundary()
        if tag in _VOID:
            return
        self._push(tag)
        if tag in _INVISIBLE or role == "signature":
            self._hidden_at = len(self._open)
        elif tag == "blockquote":
            self._quote += 1
        elif tag == "pre":
            self._pre += 1

    def _push(self, tag: str) -> None:
        if tag not in _VOID and len(self._open) < _MAX_DEPTH:
            self._open.append(tag)
            self._open_count[tag] += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self._open_count[tag]:
            return  # a stray end tag, as browsers ignore it
        while self._open:
            closed = self._open.pop()
            self._open_count[closed] -= 1
            if self._hidden_at is not None and len(self._open) < self._hidden_at:
                self._hidden_at = None
            elif self._hidden_at is None and not self.done:
                if closed == "blockquote":
                    self._block_boundary()
                    self._quote = max(0, self._quote - 1)
                elif closed == "pre":
                    self._block_boundary()
                    self._pre = max(0, self._pre - 1)
                elif closed in _BLOCK:
                    self._block_boundary()
            if closed == tag:
                return

    def text(self) -> str:
        self._block_boundary()
        return "\n".join(self.lines)

    def handle_data(self, data: str) -> None:
        if self.done or self._hidden_at is not None:
            return
        if self._pre:
            pieces = data.replace("\r\n", "\n").split("\n")
            for number, piece in enumerate(pieces):
                if number:
                    self._end_line()
                self._text(piece)
            return
        self._text(_SPACES.sub(" ", data))


def reply_text(html: str) -> str:
    """The text of an HTML reply, stopping where the client placed the quoted message; signatures left out.

    Read in pieces, and no further than the quoted message or the first MiB: what a person writes in a reply
    stands at its top, and the history below can be megabytes of markup.
    """
    parser = _ReplyText()
    for start in range(0, min(len(html), _MAX_HTML), _PIECE):
        parser.feed(html[start : start + _PIECE])
        if parser.done:
            break
    parser.close()
    return parser.text()
