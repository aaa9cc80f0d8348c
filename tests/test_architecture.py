"""The package's import graph: data flows one way, recipe -> plan -> launch -> the verbs at the edges.

Imports inside functions count too: a lazy import running back up is still a dependency running back up.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "swift_ext"

# Pure, GPU-free planning code: what every verb consumes.
PLANNING = {"spec.errors", "spec.yamlio", "spec.recipe", "msswift.schema", "msswift.bound_args", "planner.model_shape", "spec.gpus", "planner.layout", "planner.memory", "planner.search", "planner.oracle", "msswift.rules", "planner.plan", "datasets.check", "datasets.stats", "planner.launch", "planner.mfu", "spec.secrets", "after.weights"}
# The verbs and the CLI: side effects live here, and nothing below may reach them.
EDGES = {"cli.main", "runs.run", "runs.submit", "after.merge", "after.infer", "after.report", "runs.watch", "after.verify", "runs.doctor", "msswift.importer", "runs.resume"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("swift_ext"):
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("swift_ext."))
        graph[name] = {d for d in deps if d in modules and d not in (name, "swift_ext")}
    return graph


def _short(name: str) -> str:
    return name.split(".", 1)[1] if "." in name else name


def test_the_module_lists_above_name_real_modules():
    names = {_short(m) for m in import_graph()}
    assert PLANNING <= names and EDGES <= names, (PLANNING | EDGES) - names


def test_no_import_cycles():
    graph = import_graph()
    seen: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for dep in sorted(graph[node]):
            if seen.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(map(_short, cycle)))
            if dep not in seen:
                visit(dep, path + [dep])
        seen[node] = 2

    for start in sorted(graph):
        if start not in seen:
            visit(start, [start])


def test_planning_code_never_imports_a_verb():
    upward = sorted((_short(m), _short(d)) for m, deps in import_graph().items() if _short(m) in PLANNING
                    for d in deps if _short(d) in EDGES)
    assert upward == [], f"planning modules importing verbs/CLI: {upward}"


def test_only_the_entry_point_imports_the_cli():
    importers = sorted(_short(m) for m, deps in import_graph().items()
                       if not m.startswith("swift_ext.cli") and any(d.startswith("swift_ext.cli") for d in deps))
    assert importers == ["__main__"], importers
