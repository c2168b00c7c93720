"""RuleStore: the rules in force, reloaded when the file changes; a bad file never replaces good rules."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from pathlib import Path

from daemon.config import Config
from daemon.rules.loader import RULES_FILE, RulesError, load_ruleset
from daemon.rules.model import Ruleset

__all__ = ["RuleStore"]

log = logging.getLogger("sportello.rules")


class RuleStore:
    def __init__(self, rules_dir: Path | str, config: Config | None, known_templates: Collection[str] | None = None):
        self.rules_dir = Path(rules_dir)
        self.config = config
        self.known_templates = known_templates
        self._lock = threading.Lock()
        self._stamp = self._file_stamp()
        self._current = load_ruleset(self.rules_dir, config, known_templates)  # at start, errors are fatal
        self.last_error: RulesError | None = None

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = (self.rules_dir / RULES_FILE).stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    @property
    def current(self) -> Ruleset:
        return self._current

    @property
    def version(self) -> str:
        return self._current.version

    def refresh(self) -> bool:
        """Reload if the file changed. True if new rules are now in force."""
        stamp = self._file_stamp()
        with self._lock:
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            try:
                fresh = load_ruleset(self.rules_dir, self.config, self.known_templates)
            except RulesError as exc:
                self.last_error = exc
                log.error("regole non valide, restano in vigore quelle della versione %s:\n%s", self.version, exc)
                return False
            self.last_error = None
            if fresh.version == self._current.version:
                return False
            log.info("regole ricaricate: versione %s -> %s", self._current.version, fresh.version)
            self._current = fresh
            return True
