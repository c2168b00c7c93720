"""An admin's file in force, reloaded when it changes: a file that does not load never replaces what is
in force. The rules (daemon.rules.store) and the SLA policies (daemon.sla.policies) are kept this way."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from daemon.yamlfiles.source import YamlProblem, YamlProblems, file_stamp

__all__ = ["Reloading"]


class _Versioned(Protocol):
    @property
    def version(self) -> str: ...


T = TypeVar("T", bound=_Versioned)
E = TypeVar("E", bound=YamlProblems)


class Reloading(ABC, Generic[T, E]):
    """Subclasses load the file (`_load`, raising `error`) and word the log lines for the admin;
    `{version}` is the version in force, `{old}` and `{new}` those of a reload."""

    error: type[E]
    log: logging.Logger
    invalid: str  # the file has problems (listed after it)
    failed: str  # loading it failed unexpectedly
    reloaded: str

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp = self._stamp_now()
        self._current = self._load()  # at start, errors are fatal
        self.last_error: E | None = None

    @abstractmethod
    def _load(self) -> T: ...

    def _stamp_now(self) -> object:
        """What changes when the file does (several files: override)."""
        return file_stamp(self.path)

    @property
    def current(self) -> T:
        return self._current

    @property
    def version(self) -> str:
        return self._current.version

    def refresh(self) -> bool:
        """Reload if the file changed. True if a new version is now in force."""
        stamp = self._stamp_now()
        with self._lock:
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                fresh = self._load()
            except self.error as exc:
                self.last_error = exc
                self.log.error("%s:\n%s", self.invalid.format(version=self.version), exc)
                return False
            except Exception as exc:  # a checker bug must never replace a good version either
                self.last_error = self.error([YamlProblem(str(self.path), None, "", f"errore interno: {exc!r}")])
                self.log.exception(self.failed.format(version=self.version))
                return False
            self.last_error = None
            if fresh.version == self._current.version:
                return False
            self.log.info(self.reloaded.format(old=self._current.version, new=fresh.version))
            self._current = fresh
            return True
