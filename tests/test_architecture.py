"""The package's import graph: data flows one way, recipe -> plan -> launch -> the verbs at the edges.

Imports inside functions count too: a lazy import running back up is still a dependency running back up.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "swift_ext"

# The packages, lowest first: a module may import from its own package and from packages before it, never
# from one after it. spec: the recipe and the finding type; msswift: what ms-swift defines; rewards and
# plugins: what ms-swift loads into training; datasets: data as ms-swift reads it; planner: recipe -> Plan;
# runs: processes and run folders; after: merge/verify/infer/report/eval; cli: presentation.
LAYERS = ["spec", "msswift", "rewards", "plugins", "datasets", "planner", "runs", "after", "cli"]
# Pure, GPU-free planning code: what every verb consumes.
PLANNING = {"spec", "msswift", "datasets", "planner"}
# Side effects live here: processes, run folders, the CLI.
VERBS = {"runs", "after", "cli"}
MAX_LINES = 600


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


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_every_module_lives_in_a_layer():
    loose = sorted(m for m in import_graph() if m.count(".") >= 1 and _package(m) not in LAYERS
                   and m not in ("swift_ext.__main__",))
    assert loose == [], f"modules outside the packages {LAYERS}: {loose}"


def test_imports_run_one_way_between_packages():
    upward = sorted((m, d) for m, deps in import_graph().items() for d in deps
                    if _package(m) in LAYERS and _package(d) in LAYERS
                    and LAYERS.index(_package(d)) > LAYERS.index(_package(m)))
    assert upward == [], f"imports from a later package: {upward}"


def test_no_module_over_the_size_limit():
    big = sorted((str(p.relative_to(ROOT)), n) for p in PACKAGE.rglob("*.py")
                 if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES)
    assert big == [], f"modules over {MAX_LINES} lines: split them by concern: {big}"


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
    upward = sorted((m, d) for m, deps in import_graph().items() if _package(m) in PLANNING
                    for d in deps if _package(d) in VERBS)
    assert upward == [], f"planning modules importing runs/after/cli: {upward}"


def test_only_the_entry_point_imports_the_cli():
    importers = sorted(_short(m) for m, deps in import_graph().items()
                       if not m.startswith("swift_ext.cli") and any(d.startswith("swift_ext.cli") for d in deps))
    assert importers == ["__main__"], importers
