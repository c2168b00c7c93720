"""Editing an admin's file in a test the way an editor saves it."""

from __future__ import annotations

import os
from pathlib import Path


def rewrite(path: Path, text: str) -> None:
    """Write `text` and move the mtime forward, as an editor saving a second later would."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    bumped = max(path.stat().st_mtime_ns, before) + 1_000_000_000
    os.utime(path, ns=(bumped, bumped))
