"""The vocabularies in force, reloaded when one of their files changes; a version that does not load, or
that the rules in force do not accept (an id they use removed), never replaces the one in force."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from daemon.classify.vocabulary import FILES, Vocabularies, VocabularyError, load_vocabularies
from daemon.yamlfiles.hotreload import Reloading
from daemon.yamlfiles.source import YamlProblems, file_stamp

__all__ = ["LoadedVocabularies", "VocabularyStore"]


@dataclass(frozen=True)
class LoadedVocabularies:
    vocab: Vocabularies
    version: str  # over the three files' digests


class VocabularyStore(Reloading[LoadedVocabularies, VocabularyError]):
    """`accepts(vocab)` raises YamlProblems when what depends on the vocabulary (the rules) rejects it."""

    error = VocabularyError
    log = logging.getLogger("sportello.vocabolari")
    invalid = "vocabolari non validi, restano in vigore quelli della versione {version}"
    failed = "vocabolari non caricati, restano in vigore quelli della versione {version}"
    reloaded = "vocabolari ricaricati: versione {old} -> {new}"

    def __init__(
        self,
        rules_dir: Path,
        accepts: Callable[[Vocabularies], None] | None = None,
        initial: Vocabularies | None = None,
    ) -> None:
        self.rules_dir = Path(rules_dir)
        self.accepts = accepts
        self._initial = initial  # already loaded by the caller: not parsed twice at start
        super().__init__(self.rules_dir / FILES[0])

    def _stamp_now(self) -> object:
        return tuple(file_stamp(self.rules_dir / name) for name in FILES)

    def _load(self) -> LoadedVocabularies:
        initial, self._initial = self._initial, None
        vocab = initial or load_vocabularies(self.rules_dir)
        if self.accepts is not None and initial is None:  # the rules in force were loaded with the initial one
            try:
                self.accepts(vocab)
            except YamlProblems as exc:
                raise VocabularyError(exc.problems) from exc
        digests = "".join(f"{name}:{vocab.files.get(name, '')}" for name in FILES)
        return LoadedVocabularies(vocab, hashlib.sha256(digests.encode()).hexdigest()[:12])
