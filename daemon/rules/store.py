"""RuleStore: the rules in force, reloaded when the file changes; a bad file never replaces good rules."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Mapping
from pathlib import Path

from daemon.config import Config
from daemon.rules.loader import RULES_FILE, RulesError, load_ruleset, vocabulary_values
from daemon.rules.model import Ruleset
from daemon.yamlsource import YamlProblem, file_stamp

__all__ = ["RuleStore"]

log = logging.getLogger("sportello.rules")


class RuleStore:
    """`vocabulary`: the ids the vocabulary facts may take (see loader.vocabulary_values); by default
    they are read, at each load, from the vocabulary files beside rules.yaml."""

    def __init__(
        self,
        rules_dir: Path | str,
        config: Config | None,
        known_templates: Collection[str] | None = None,
        vocabulary: Mapping[str, Collection[str]] | None = None,
    ):
        self.rules_dir = Path(rules_dir)
        self.config = config
        self.known_templates = known_templates
        self.vocabulary = vocabulary
        self._lock = threading.Lock()
        self._stamp = self._file_stamp()
        self._current = self._load()  # at start, errors are fatal
        self.last_error: RulesError | None = None

    def _load(self) -> Ruleset:
        vocabulary = self.vocabulary if self.vocabulary is not None else vocabulary_values(self.rules_dir)
        return load_ruleset(self.rules_dir, self.config, self.known_templates, vocabulary)

    def _file_stamp(self) -> tuple[int, int] | None:
        return file_stamp(self.rules_dir / RULES_FILE)

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
                fresh = self._load()
            except RulesError as exc:
                self.last_error = exc
                log.error("regole non valide, restano in vigore quelle della versione %s:\n%s", self.version, exc)
                return False
            except Exception as exc:  # a checker bug must never replace good rules either
                self.last_error = RulesError(
                    [YamlProblem(str(self.rules_dir / RULES_FILE), None, "", f"errore interno: {exc!r}")]
                )
                log.exception("regole non caricate, restano in vigore quelle della versione %s", self.version)
                return False
            self.last_error = None
            if fresh.version == self._current.version:
                return False
            log.info("regole ricaricate: versione %s -> %s", self._current.version, fresh.version)
            self._current = fresh
            return True
