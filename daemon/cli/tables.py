"""Tables that fit the terminal: one line per row, the least useful columns left out when it is narrow."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.table import Table

__all__ = ["Column", "fitted_table"]

# What a column costs besides its text: one space of padding on each side and one border.
_COLUMN_OVERHEAD = 3


@dataclass(frozen=True)
class Column:
    header: str
    min_width: int  # narrower than this the column says nothing useful: drop it instead
    keep: int  # the higher, the longer the column stays as the terminal narrows
    max_width: int | None = None


def _widths(columns: Sequence[Column], rows: Sequence[Sequence[str]], room: int) -> list[int]:
    """Each column as wide as its longest cell, then the widest cut one character at a time until all fit."""
    widths = []
    for i, column in enumerate(columns):
        natural = max([len(column.header), *(len(row[i]) for row in rows)])
        widths.append(min(natural, column.max_width) if column.max_width else natural)
    for _ in range(sum(widths)):  # bounded: each round takes one character off or stops
        if sum(widths) <= room:
            break
        shrinkable = [i for i, w in enumerate(widths) if w > columns[i].min_width]
        if not shrinkable:
            break
        widths[max(shrinkable, key=lambda i: widths[i])] -= 1
    return widths


def fitted_table(title: str, columns: Sequence[Column], rows: Iterable[Sequence[str]], width: int) -> Table:
    """A table of `rows` (one cell per column, in order) within `width` characters: columns with the
    lowest `keep` are dropped until the others fit at their minimum width, the widest are then cut, and
    every cell stays on one line (cut with an ellipsis) so that a row is a line."""
    shown = list(range(len(columns)))
    while len(shown) > 1 and sum(columns[i].min_width + _COLUMN_OVERHEAD for i in shown) + 1 > width:
        weakest = min(shown, key=lambda i: (columns[i].keep, -i))
        shown.remove(weakest)
    kept = [columns[i] for i in shown]
    cells = [[row[i] for i in shown] for row in rows]
    room = width - _COLUMN_OVERHEAD * len(kept) - 1
    table = Table(title=title)
    for column, column_width in zip(kept, _widths(kept, cells, room), strict=True):
        table.add_column(column.header, no_wrap=True, overflow="ellipsis", width=column_width)
    for row in cells:
        table.add_row(*row)
    return table
