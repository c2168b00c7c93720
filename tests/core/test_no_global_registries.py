"""No module-level mutable registry in daemon/: components are wired by the composition root, not by
lists that other modules append to at import (the SLA hooks were such a list)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "daemon"
_MUTABLE_CALLS = {"list", "dict", "set", "defaultdict", "WeakKeyDictionary", "WeakValueDictionary", "OrderedDict"}
_MUTATORS = r"\.(append|add|extend|update|setdefault|pop|remove|clear|insert|discard)\(|\[[^\]]+\]\s*="


def _module_level_containers(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        mutable = isinstance(value, ast.List | ast.Dict | ast.Set) or (
            isinstance(value, ast.Call)
            and (getattr(value.func, "id", None) or getattr(value.func, "attr", None)) in _MUTABLE_CALLS
        )
        if mutable:
            names.update(t.id for t in targets if isinstance(t, ast.Name) and t.id != "__all__")
    return names


def registries(root: Path) -> list[str]:
    """Module-level containers that some code in `root` mutates after import."""
    sources = {p: p.read_text(encoding="utf-8") for p in root.rglob("*.py")}
    found = []
    for path, text in sources.items():
        for name in sorted(_module_level_containers(ast.parse(text))):
            pattern = re.compile(rf"(?<!\w){re.escape(name)}({_MUTATORS})")
            for other, other_text in sources.items():
                # Building the container in its own module's top level is not a registry.
                body = (
                    other_text
                    if other != path
                    else "\n".join(line for line in other_text.splitlines() if line.startswith((" ", "\t")))
                )
                if pattern.search(body):
                    found.append(f"{path.relative_to(root.parent)}: {name} (modificato in {other.name})")
    return found


def test_no_module_level_mutable_registry_in_daemon() -> None:
    assert registries(ROOT) == [], "registri globali: si registrino oggetti nella radice di composizione"


def test_the_check_finds_a_hook_list_appended_to_from_another_module(tmp_path: Path) -> None:
    pkg = tmp_path / "daemon"
    pkg.mkdir()
    (pkg / "tickets.py").write_text("state_hooks: list = []\n_LABELS = {'a': 1}\n", encoding="utf-8")
    (pkg / "sla.py").write_text(
        "from daemon import tickets\n\ndef install():\n    tickets.state_hooks.append(print)\n", encoding="utf-8"
    )
    (pkg / "cache.py").write_text("_SEEN = {}\n\ndef remember(k):\n    _SEEN[k] = 1\n", encoding="utf-8")
    assert sorted(registries(pkg)) == [
        "daemon/cache.py: _SEEN (modificato in cache.py)",
        "daemon/tickets.py: state_hooks (modificato in sla.py)",
    ]
