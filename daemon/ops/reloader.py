"""The files an admin edits (rules, vocabularies, templates, SLA policies), reloaded together every few
seconds and at once on SIGHUP; a file that does not load keeps the last good version in force and raises
an alert, once per broken version."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from daemon.classify.store import LoadedVocabularies, VocabularyStore
from daemon.outbound.templates import TemplateRenderer
from daemon.rules.store import RuleStore
from daemon.sla.policies import PolicyStore
from daemon.yamlfiles.source import YamlProblem
from storage.db import SessionFactory
from storage.models import Alert

__all__ = ["ALERT_KIND", "AdminFiles"]

log = logging.getLogger("sportello.ricarica")

ALERT_KIND = "file_non_valido"


class AdminFiles:
    def __init__(
        self,
        *,
        rules: RuleStore,
        vocabulary: VocabularyStore,
        renderer: TemplateRenderer,
        policies: Callable[[], PolicyStore | None],
        on_vocabulary: Callable[[LoadedVocabularies], None],
        session_factory: SessionFactory,
        clock: Callable[[], datetime],
    ) -> None:
        self.rules = rules
        self.vocabulary = vocabulary
        self.renderer = renderer
        self.policies = policies
        self.on_vocabulary = on_vocabulary
        self.session_factory = session_factory
        self.clock = clock
        self._lock = threading.Lock()  # the watcher thread and SIGHUP may ask at the same time
        self._reported: dict[str, str] = {}  # store -> text of the error already alerted

    def refresh(self) -> None:
        with self._lock:
            for problem in self.renderer.templates.refresh():
                self._alert(f"modello {problem.file}", [problem])
            # A new template may be what an edited rule now names.
            self.rules.known_templates = self.renderer.names()
            if self.vocabulary.refresh():
                self.on_vocabulary(self.vocabulary.current)
            self._check("vocabolari", self.vocabulary.last_error)
            self.rules.refresh()
            self._check("regole", self.rules.last_error)
            policies = self.policies()
            if policies is not None:
                policies.refresh()
                self._check("politiche SLA", policies.last_error)

    def _check(self, what: str, error: Exception | None) -> None:
        text = str(error) if error is not None else ""
        if text and self._reported.get(what) != text:
            self._alert(what, list(getattr(error, "problems", [])) or [YamlProblem("", None, "", text)])
        self._reported[what] = text

    def _alert(self, what: str, problems: list[YamlProblem]) -> None:
        note = f"{what}: file non valido, resta in vigore la versione precedente\n" + "\n".join(map(str, problems))
        try:
            with self.session_factory() as session, session.begin():
                session.add(Alert(at=self.clock(), kind=ALERT_KIND, note=note[:4000]))
        except Exception:  # the database may be down: the log line (already written) must do
            log.exception("avviso per %s non registrato", what)
