"""RuleStore: the rules in force, reloaded when the file changes; a bad file never replaces good rules."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from pathlib import Path

from daemon.config import Config
from daemon.rules.loader import RULES_FILE, RulesError, load_ruleset, vocabulary_values
from daemon.rules.model import Ruleset
from daemon.yamlfiles.hotreload import Reloading

__all__ = ["RuleStore"]


class RuleStore(Reloading[Ruleset, RulesError]):
    """`vocabulary`: the ids the vocabulary facts may take (see loader.vocabulary_values); by default
    they are read, at each load, from the vocabulary files beside rules.yaml."""

    error = RulesError
    log = logging.getLogger("sportello.rules")
    invalid = "regole non valide, restano in vigore quelle della versione {version}"
    failed = "regole non caricate, restano in vigore quelle della versione {version}"
    reloaded = "regole ricaricate: versione {old} -> {new}"

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
        super().__init__(self.rules_dir / RULES_FILE)

    def _load(self) -> Ruleset:
        vocabulary = self.vocabulary if self.vocabulary is not None else vocabulary_values(self.rules_dir)
        return load_ruleset(self.rules_dir, self.config, self.known_templates, vocabulary)
