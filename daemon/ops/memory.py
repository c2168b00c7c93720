"""Resident memory of a long-running, many-threaded process: few malloc arenas, freed memory returned."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

__all__ = ["limit_arenas", "return_free_memory"]

_M_ARENA_MAX = -8  # glibc mallopt parameter


@functools.cache
def _libc() -> Any | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    libc = ctypes.CDLL(name)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def limit_arenas(count: int = 2) -> None:
    """Before the threads start: glibc gives each thread that allocates its own arena (up to eight per
    core), and memory freed in one arena stays there; one IMAP worker per mailbox multiplies the RSS."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, count)


def return_free_memory() -> None:
    """After a burst (a batch of messages): give the freed heap pages back to the system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
