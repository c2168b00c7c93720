"""The email templates in force, file by file: an edited template replaces its version in force only if it
compiles and has its blocks; a broken edit leaves the last good version in force and is reported."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from jinja2 import BaseLoader, Environment, TemplateNotFound

from daemon.yamlfiles.source import YamlProblem, file_stamp

__all__ = ["SnapshotLoader", "TemplateStore"]

log = logging.getLogger("sportello.modelli")

SUFFIX = ".j2"

# check(file name, path, source) -> the problem of the source, None if it can be used.
Check = Callable[[str, Path, str], YamlProblem | None]


class TemplateStore:
    def __init__(self, directory: Path, check: Check) -> None:
        self.directory = Path(directory)
        self.check = check
        self._lock = threading.Lock()
        self._sources: dict[str, tuple[str, int]] = {}  # file name -> (source in force, generation)
        self._stamps: dict[str, object] = {}
        self._generation = 0
        self.problems: dict[str, YamlProblem] = {}  # file name -> why its last edit is not in force
        self.refresh()

    def source(self, file_name: str) -> tuple[str, int] | None:
        return self._sources.get(file_name)

    def generation(self, file_name: str) -> int | None:
        entry = self._sources.get(file_name)
        return entry[1] if entry else None

    def refresh(self) -> list[YamlProblem]:
        """Take in every changed file that is valid; return the problems of the changed ones that are not."""
        found: list[YamlProblem] = []
        with self._lock:
            on_disk = {p.name: p for p in self.directory.glob(f"*{SUFFIX}")} if self.directory.is_dir() else {}
            for name in set(self._sources) - set(on_disk):  # removed by the admin
                self._sources.pop(name, None)
                self._stamps.pop(name, None)
                self.problems.pop(name, None)
            for name, path in sorted(on_disk.items()):
                stamp = file_stamp(path)
                if self._stamps.get(name) == stamp:
                    continue
                self._stamps[name] = stamp
                try:
                    source = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    problem: YamlProblem | None = YamlProblem(str(path), None, "", f"modello non leggibile: {exc}")
                else:
                    problem = self.check(name, path, source)
                if problem is not None:
                    self.problems[name] = problem
                    found.append(problem)
                    kept = "resta in vigore la versione precedente" if name in self._sources else "non è in uso"
                    log.error("modello %s non valido, %s: %s", name, kept, problem)
                    continue
                self.problems.pop(name, None)
                if name in self._sources and self._sources[name][0] == source:
                    continue
                self._generation += 1
                if name in self._sources:
                    log.info("modello %s ricaricato", name)
                self._sources[name] = (source, self._generation)
        return found


class SnapshotLoader(BaseLoader):
    """Jinja reads the versions in force, never the file being edited; a swap makes Jinja recompile."""

    def __init__(self, store: TemplateStore) -> None:
        self.store = store

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Callable[[], bool]]:
        entry = self.store.source(template)
        if entry is None:
            raise TemplateNotFound(template)
        source, generation = entry
        path = str(self.store.directory / template)
        return source, path, lambda: self.store.generation(template) == generation
