"""The import direction of the layers (docs/architecture.md), checked on the source itself.

Every module of ``broker/`` and ``config/`` belongs to one unit (a package, or a module at
``broker/``'s root) and every unit to one layer. A module may import from its own unit and
from units of lower layers, never from a unit of its own layer or of a layer above. So
there is no cycle between units, and the identity rules never learn about Redis, Flask or
a front door. The check reads the code with :mod:`ast`: it sees imports inside functions and
under ``TYPE_CHECKING`` too, which Python's own import machinery would not report.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Lowest first. A unit is a top-level package or module name (``config``) or a name under
#: ``broker`` (``broker.identity``, ``broker.errors``).
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("settings", frozenset({"config"})),
    ("error model", frozenset({"broker.errors"})),
    ("core", frozenset({"broker.identity", "broker.tokens", "broker.paging"})),
    (
        "infrastructure",
        frozenset({"broker.store", "broker.outbound", "broker.observability", "broker.blocking"}),
    ),
    ("features", frozenset({"broker.ratelimit", "broker.providers", "broker.sts"})),
    ("services", frozenset({"broker.services"})),
    ("edge", frozenset({"broker.http"})),
    ("doors", frozenset({"broker.awsjson", "broker.backend"})),
    ("token sources", frozenset({"broker.upstream"})),
    ("app", frozenset({"broker.app", "broker.server"})),
)

LAYER_OF: dict[str, int] = {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}
NAME_OF: dict[int, str] = {i: name for i, (name, _) in enumerate(LAYERS)}


def unit_of(module: str) -> str | None:
    """``broker.store.keys`` -> ``broker.store``; ``config.redis`` -> ``config``; a module
    outside ``broker`` and ``config`` (a dependency) -> None."""
    parts = module.split(".")
    if parts[0] == "config":
        return "config"
    if parts[0] != "broker" or len(parts) < 2:
        return None
    return ".".join(parts[:2])


def source_modules() -> Iterator[tuple[str, Path]]:
    for package in ("broker", "config"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).with_suffix("")
            parts = list(relative.parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def imported_modules(module: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, module imported) for every import in the file; ``from broker import x`` counts
    as an import of ``broker.x``, and relative imports are resolved against ``module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}" if base in ("broker",) else base


def violations() -> list[str]:
    found = []
    for module, path in source_modules():
        unit = unit_of(module)
        if unit is None:  # broker/__init__.py
            continue
        layer = LAYER_OF.get(unit)
        if layer is None:
            found.append(f"{path.relative_to(ROOT)}: {unit} is in no layer of LAYERS")
            continue
        for line, target in imported_modules(module, path):
            other = unit_of(target)
            if other is None or other == unit:
                continue
            other_layer = LAYER_OF.get(other)
            if other_layer is None:
                found.append(f"{path.relative_to(ROOT)}:{line}: imports {target} (no layer)")
            elif other_layer >= layer:
                found.append(
                    f"{path.relative_to(ROOT)}:{line}: {unit} ({NAME_OF[layer]}) imports "
                    f"{target} ({NAME_OF[other_layer]}): only lower layers may be imported"
                )
    return found


def test_every_import_points_to_a_lower_layer() -> None:
    assert violations() == []


def importers_of(dependency: str) -> set[str]:
    """The units with a module importing ``dependency`` (a distribution's top-level name)."""
    found = set()
    for module, path in source_modules():
        for _, target in imported_modules(module, path):
            if target == dependency or target.startswith(dependency + "."):
                found.add(unit_of(module) or module)
    return found


def test_only_the_store_speaks_redis() -> None:
    """Redis faults become the error model inside the store (``broker/store/faults.py``);
    no layer above catches or names a redis-py exception."""
    assert importers_of("redis") == {"broker.store"}


@pytest.mark.parametrize("dependency", ["flask", "werkzeug", "redis", "gunicorn"])
def test_the_core_knows_no_web_framework_and_no_redis(dependency: str) -> None:
    core = {unit for unit, layer in LAYER_OF.items() if layer <= LAYER_OF["broker.identity"]}
    assert importers_of(dependency) & core == set()


def test_the_checker_sees_an_import_against_the_direction(tmp_path: Path) -> None:
    """The check itself can fail: a core module importing the store is reported, and so is
    one importing a door from inside a function."""
    core = tmp_path / "core.py"
    core.write_text(
        "from broker.store import keys\n"
        "def f():\n"
        "    from broker.awsjson import door\n"
        "    return door\n",
        encoding="utf-8",
    )
    targets = [t for _, t in imported_modules("broker.identity.core", core)]
    assert targets == ["broker.store", "broker.awsjson"]
    assert all(LAYER_OF[unit_of(t) or ""] > LAYER_OF["broker.identity"] for t in targets)


@pytest.mark.parametrize(
    ("module", "unit"),
    [
        ("broker.store.keys", "broker.store"),
        ("broker.errors", "broker.errors"),
        ("config.redis", "config"),
        ("redis.cluster", None),
        ("broker", None),
    ],
)
def test_units(module: str, unit: str | None) -> None:
    assert unit_of(module) == unit
