"""The `import swift...` / `from swift... import name` statements of the plugin files ms-swift imports at start-up
(external_plugins, and 3.x's custom_register_path, which base_args.py appends to them), checked against the
installed ms-swift package without importing it or the plugin.

Why: ms-swift 4.x moved what 3.x plugins import (swift.llm, swift.plugin, swift.trainers.rlhf_trainer, ... are gone:
ORM/orms/rm_plugins live in swift.rewards, Template in swift.template, multi_turns in swift.rollout, the RLHF
trainers in swift.rlhf_trainers). A 3.x plugin
dies in BaseArguments._import_external_plugins -> import_external_file (exec_module) on every rank, after the job
queued. Only ms-swift's own modules are checked: its API is what changed between 3.x and 4.x.

How a name is found without running anything: the module's file is located under the package directory that
importlib.util.find_spec('swift') names (it does not execute the package); a name exists when the module binds it at
module level (def, class, assignment, import), when it is a submodule, or, for ms-swift's lazy packages
(`sys.modules[__name__] = _LazyModule(..., _import_structure, ...)`, swift/utils/import_utils.py), when it is a key
or value of the `_import_structure` dict (its TYPE_CHECKING block names the same; the package's own globals are
not reachable once the _LazyModule replaces it in sys.modules). Undecidable cases say nothing: a star import, a
module-level __getattr__ or a write through globals() in the target module, an import inside try/except that
catches ImportError, under `if TYPE_CHECKING`/`if __name__ == '__main__'` or another `if`, in a loop, or after
`with suppress(...)`. An import inside a function fails only when the function runs: a warning, not an error.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from swift_ext.msswift.plugin_registry import _parsed
from swift_ext.msswift.schema import installed_version
from swift_ext.msswift.source_reader import _package_dir

TOP = "swift"
# Handlers that catch a failed import: the import they guard is not a failure.
_CATCHES_IMPORT = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


@dataclass(frozen=True)
class BadImport:
    """One import statement of a plugin file that the installed ms-swift cannot satisfy."""

    entry: str  # the plugin file as the recipe names it
    line: int
    statement: str  # the statement as written ("from swift.plugin import ORM, orms")
    module: str  # the module the statement names ("swift.plugin")
    missing_module: str | None  # the first part of it the package lacks ("swift.llm" of "swift.llm.infer"), or None
    names: tuple[str, ...]  # the names it imports that are not there (all it imports when the module is missing)
    hints: tuple[str, ...]  # where those names live in the installed package ("from swift.rewards import ORM")
    in_function: bool  # inside a def: fails when the function runs, not at start-up


def bad_plugin_imports(paths: list) -> list[BadImport]:
    """Every swift import of the plugin files at `paths` that the installed ms-swift lacks ([] when ms-swift is not
    installed here; files not here or not parsable are skipped: plugin-file reports them)."""
    root = _package_dir(TOP) if paths else None
    if root is None or not (root / "__init__.py").is_file():
        return []
    out: list[BadImport] = []
    for entry, tree in _plugin_trees(paths):
        for node, in_function in _executed_imports(tree.body, False):
            for module, gone, names in _check(root, node):
                out.append(BadImport(str(entry), node.lineno, ast.unparse(node), module, gone, names,
                                     _hints(root, names), in_function))
    return out


def relative_plugin_imports(paths: list) -> list[tuple[str, int, str, bool, str | None]]:
    """(entry, line, statement, in_function, the same import by name) for each relative import (`from .x import y`) that runs in the plugin
    files at `paths` themselves. ms-swift 4.6 swift/utils/utils.py import_external_file loads a plugin file as the
    top-level module `_swift_external_<sha256>` (spec_from_file_location, no package), so Python raises ImportError
    "attempted relative import with no known parent package" for any of them; it puts the file's directory first on
    sys.path, so `from x import y` finds the same sibling module. (Relative imports inside a package the plugin
    imports work: plugin_registry follows those.)"""
    out = []
    for entry, tree in _plugin_trees(paths):
        relative = lambda node: isinstance(node, ast.ImportFrom) and node.level > 0  # noqa: E731
        for node, in_function in _executed_imports(tree.body, False, relative):
            names = ", ".join(ast.unparse(a) for a in node.names)
            # one dot: a module beside the plugin file, which sys.path finds by name; two or more: above it, not there
            by_name = None if node.level > 1 else f"from {node.module} import {names}" if node.module else \
                f"import {names}"
            out.append((str(entry), node.lineno, ast.unparse(node), in_function, by_name))
    return out


def _plugin_trees(paths: list):
    """(entry, parsed module) for each plugin file here that parses; the rest is plugin-file's to report."""
    for entry in paths:
        path = Path(os.path.expanduser(str(entry)))
        try:
            if not path.is_file():
                continue
            tree = _parsed(str(path.resolve()), path.stat().st_mtime_ns)[0]
        except (OSError, ValueError):
            continue
        if tree is not None:
            yield entry, tree


# -- which import statements run -------------------------------------------------------------------------------

def _executed_imports(body: list, in_function: bool, wanted=None):
    """(statement, in_function) for the imports `wanted` picks (default: the swift ones) that run when the module (or
    the function) runs, leaving out the ones that may not run or whose failure is caught."""
    wanted = wanted or _names_swift
    for stmt in body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            if wanted(stmt):
                yield stmt, in_function
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from _executed_imports(stmt.body, True, wanted)
        elif isinstance(stmt, ast.ClassDef):  # a class body runs where the class statement runs
            yield from _executed_imports(stmt.body, in_function, wanted)
        elif isinstance(stmt, (ast.Try, ast.TryStar)):
            if not _catches_import_error(stmt.handlers):
                yield from _executed_imports(stmt.body, in_function, wanted)
                yield from _executed_imports(stmt.orelse, in_function, wanted)
            # handlers run only when the body failed, and a guarded body's else only when it did not: undecidable
            yield from _executed_imports(stmt.finalbody, in_function, wanted)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            if not any(_is_suppress(item.context_expr) for item in stmt.items):
                yield from _executed_imports(stmt.body, in_function, wanted)
        elif isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
            yield from _executed_imports(stmt.orelse, in_function, wanted)  # the runtime branch
        # any other `if`, loops and match: whether the branch runs is not known here


def _names_swift(node) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and _is_swift(node.module or "")
    return any(_is_swift(a.name) for a in node.names)


def _is_swift(dotted: str) -> bool:
    return dotted == TOP or dotted.startswith(TOP + ".")


def _catches_import_error(handlers: list) -> bool:
    for h in handlers:
        if h.type is None:
            return True
        types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
        for t in types:
            name = t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else None
            if name in _CATCHES_IMPORT:
                return True
    return False


def _is_suppress(expr) -> bool:
    func = expr.func if isinstance(expr, ast.Call) else None
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    return name == "suppress"


def _is_type_checking(test) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


# -- the installed package ---------------------------------------------------------------------------------------

def _check(root: Path, node) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """(module, its first missing part or None, the names not there) for what one import statement lacks; [] when
    it resolves or cannot be judged."""
    if isinstance(node, ast.Import):
        return [(alias.name, gone, ()) for alias in node.names
                if _is_swift(alias.name) and (gone := _first_missing(root, alias.name))]
    module = node.module or ""
    names = tuple(a.name for a in node.names if a.name != "*")
    gone = _first_missing(root, module)
    if gone:
        return [(module, gone, names)]
    target = _locate(root, module)
    absent = []
    for name in names:
        if name.startswith("_") or _submodule(target, name):  # dunders every module has; private names: not judged
            continue
        bound = _module_names(target)
        if bound is None:
            return []  # the module builds its names in a way not read here
        if name not in bound:
            absent.append(name)
    return [(module, None, tuple(absent))] if absent else []


def _locate(root: Path, dotted: str) -> Path | None:
    """The installed file (a module's .py, a package's directory) of a dotted swift module, or None."""
    where = root
    for part in dotted.split(".")[1:]:
        if not where.is_dir():
            return None  # a plain module has no submodules
        if (where / part).is_dir() and part != "__pycache__":
            where = where / part
        elif (where / f"{part}.py").is_file():
            where = where / f"{part}.py"
        else:
            return None
    return where


def _first_missing(root: Path, dotted: str) -> str | None:
    """The first prefix of a dotted swift module the package does not have ("swift.llm" of "swift.llm.infer")."""
    parts = dotted.split(".")
    for i in range(2, len(parts) + 1):
        if _locate(root, ".".join(parts[:i])) is None:
            return ".".join(parts[:i])
    return None


def _submodule(target: Path | None, name: str) -> bool:
    """Whether `from package import name` finds a submodule (the import system falls back to it)."""
    if target is None or not target.is_dir():
        return False
    return ((target / name).is_dir() and name != "__pycache__") or (target / f"{name}.py").is_file() or \
        any(target.glob(f"{name}.*.so"))


def _module_names(target: Path) -> frozenset[str] | None:
    """The names a module or package (its __init__.py) binds, or None when they cannot be read: no source (a
    namespace package, an extension), a star import, a module __getattr__ or globals()."""
    source = target / "__init__.py" if target.is_dir() else target
    try:
        return _bound_names(str(source), source.stat().st_mtime_ns)
    except OSError:
        return None


@lru_cache(maxsize=256)
def _bound_names(path: str, mtime_ns: int) -> frozenset[str] | None:
    try:
        tree = ast.parse(Path(path).read_bytes(), filename=path)
    except (SyntaxError, ValueError, OSError, RecursionError, MemoryError):
        return None
    names: set[str] = set()
    lazy = False
    for node in _module_level(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == "__getattr__":
                return None
            names.add(node.name)
        elif isinstance(node, ast.Import):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if any(a.name == "*" for a in node.names):
                return None
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
                if _is_lazy_module(t, node.value):
                    lazy = True
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith)):
            for t in ([node.target] if isinstance(node, (ast.For, ast.AsyncFor)) else
                      [i.optional_vars for i in node.items if i.optional_vars is not None]):
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    if _dynamic_names(tree.body, names):
        return None
    if lazy:
        # what the replacing _LazyModule serves: the module's own globals are no longer reachable through
        # sys.modules (`from swift import is_torch_musa_installed` fails although swift/__init__.py imports it)
        return _import_structure(tree)
    return frozenset(names)


def _dynamic_names(body: list, names: set) -> bool:
    """Adds walrus targets bound at module level to `names`; True when the module writes its namespace through
    globals()/vars() at module level (names this reading cannot list; reading globals()['__file__'] is fine).
    Function bodies do not run on import."""
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) and _is_globals(node.value):
            return True  # globals()[name] = ...
        elif isinstance(node, ast.Attribute) and node.attr in ("update", "setdefault") and _is_globals(node.value):
            return True  # globals().update(...)
        stack.extend(ast.iter_child_nodes(node))
    return False


def _is_globals(node) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("globals", "vars")


def _module_level(body: list):
    """The statements that run at module level, into every branch of if/try/with/loops (a name bound in any branch
    may be there: reading it as there says nothing rather than something wrong)."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _module_level(getattr(stmt, field, None) or [])
        for handler in getattr(stmt, "handlers", None) or []:
            if handler.name:
                yield ast.Assign(targets=[ast.Name(handler.name)], value=ast.Constant(None))
            yield from _module_level(handler.body)
        for case in getattr(stmt, "cases", None) or []:
            yield from _module_level(case.body)


def _is_lazy_module(target, value) -> bool:
    # sys.modules[__name__] = _LazyModule(__name__, __file__, _import_structure, ...)
    return (isinstance(target, ast.Subscript) and isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name) and value.func.id == "_LazyModule")


def _import_structure(tree: ast.Module) -> frozenset[str] | None:
    """Keys and values of a lazy package's `_import_structure` dict literal (ms-swift 4.6's __init__ files assign it
    once, literally); its `extra_objects` must be an empty or literal dict. None when it is built another way."""
    names: set[str] = set()
    found = False
    for node in _module_level(tree.body):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_import_structure"
                                                for t in node.targets):
            if not isinstance(node.value, ast.Dict) or found:
                return None
            found = True
            for key, value in zip(node.value.keys, node.value.values):
                if not (isinstance(key, ast.Constant) and isinstance(value, (ast.List, ast.Tuple))):
                    return None
                names.add(key.value)
                names.update(e.value for e in value.elts if isinstance(e, ast.Constant))
        elif not hasattr(node, "body") and not _is_lazy_call(node) and any(
                isinstance(n, ast.Name) and n.id == "_import_structure" for n in ast.walk(node)):
            return None  # changed after it was built (_import_structure['x'] = ..., .update, .append)
        if _is_lazy_call(node):
            extra = next((k.value for k in node.value.keywords if k.arg == "extra_objects"), None)
            if extra is not None and not (isinstance(extra, ast.Dict) and all(
                    isinstance(k, ast.Constant) for k in extra.keys)):
                return None
            if isinstance(extra, ast.Dict):
                names.update(k.value for k in extra.keys)
    return frozenset(names) if found else None


def _is_lazy_call(node) -> bool:
    return isinstance(node, ast.Assign) and any(_is_lazy_module(t, node.value) for t in node.targets)


# -- where a missing name lives now ------------------------------------------------------------------------------

def _hints(root: Path, names: tuple[str, ...]) -> tuple[str, ...]:
    """`from <module> import <names>` lines for the names the installed package defines elsewhere, one line per
    module, the names grouped; a name defined nowhere gets no line."""
    by_module: dict[str, list[str]] = {}
    for name in names:
        for module in _homes(str(root), name):
            by_module.setdefault(module, []).append(name)
    return tuple(f"from {m} import {', '.join(ns)}" for m, ns in by_module.items())


@lru_cache(maxsize=256)
def _homes(root: str, name: str) -> tuple[str, ...]:
    """The module(s) to import `name` from in the installed package: where it is defined at module level (or is a
    submodule), re-exported by the highest package above it that exports it; the best-ranked ones (re-exported
    first, then the shortest path, private `_x` modules last)."""
    pattern = re.compile(rf"^(?:class|def|async\s+def)\s+{re.escape(name)}\b|^{re.escape(name)}\s*(?::[^=\n]*)?=(?!=)",
                         re.M)
    candidates: set[str] = set()
    for dotted, text in _sources(root):
        if name in text and pattern.search(text):  # the substring test first: it skips most files cheaply
            candidates.add(dotted)
        if dotted.rsplit(".", 1)[-1] == name and dotted.count(".") >= 2:
            candidates.add(dotted.rsplit(".", 1)[0])  # a submodule: `from swift.rewards import orm`
    ranked = []
    for dotted in candidates:
        public = _exporter(Path(root), dotted, name)
        private = any(p.startswith("_") for p in public.split("."))
        ranked.append(((private, public == dotted, public.count(".")), public))
    if not ranked:
        return ()
    best = min(r for r, _ in ranked)
    return tuple(sorted({m for r, m in ranked if r == best}))


def _exporter(root: Path, dotted: str, name: str) -> str:
    """The highest package between `swift` (exclusive) and `dotted` whose __init__ binds `name`, else `dotted`."""
    parts = dotted.split(".")
    for i in range(2, len(parts)):
        package = ".".join(parts[:i])
        target = _locate(root, package)
        bound = _module_names(target) if target is not None and target.is_dir() else None
        if bound and name in bound:
            return package
    return dotted


@lru_cache(maxsize=2)
def _sources(root: str) -> tuple[tuple[str, str], ...]:
    """(dotted module, source text) of every .py file of the installed package, read once per process (only when a
    missing name needs a hint)."""
    out = []
    base = Path(root)
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(base).with_suffix("").parts
        if "__pycache__" in rel:
            continue
        dotted = ".".join((TOP, *rel[:-1])) if rel[-1] == "__init__" else ".".join((TOP, *rel))
        try:
            out.append((dotted, path.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    return tuple(out)


# -- the rule ----------------------------------------------------------------------------------------------------

def plugin_imports(recipe, args, err, warn):
    # swift/arguments/base_args/base_args.py BaseArguments._import_external_plugins (custom_register_path appended)
    # -> swift/utils/utils.py import_external_file (spec.loader.exec_module; the error propagates) on every rank
    version = None
    for key in ("external_plugins", "custom_register_path"):
        for bad in bad_plugin_imports(args.list(key)):
            version = version or installed_version() or "(version unknown)"
            if bad.missing_module:
                why = f"ms-swift {version} has no module {bad.missing_module} (ModuleNotFoundError)"
            else:
                why = f"{bad.module} of ms-swift {version} has no {', '.join(bad.names)} (ImportError)"
            when = ("inside a function: it fails when that function runs" if bad.in_function else
                    "it fails when ms-swift imports the plugin at start-up, on every rank")
            placed = {n.strip() for h in bad.hints for n in h.split(" import ", 1)[1].split(",")}
            nowhere = [n for n in bad.names if n not in placed]
            hint = "; ".join(bad.hints)
            if nowhere:
                hint += ("; " if hint else "") + f"not defined anywhere in ms-swift {version}: {', '.join(nowhere)}"
            message = f"{key} file {bad.entry}, line {bad.line}: `{bad.statement}`: {why}; {when}"
            hint = hint or f"import from the modules ms-swift {version} has"
            # Said, not refused: the run imports the file found on the training machine with its ms-swift, and this
            # reads this machine's copy against this machine's ms-swift (as plugin-file says of a missing file). A
            # stale copy here is common: the code index's copy of ms-swift's own examples/train/grpo/plugin/plugin.py
            # still imports swift.llm / swift.plugin while the 4.x Megatron GRPO examples that load it run.
            warn("plugin-imports", message, key, hint=hint)


def plugin_relative_imports(recipe, args, err, warn):
    # swift/utils/utils.py import_external_file (relative_plugin_imports says how), on every rank at start-up
    for key in ("external_plugins", "custom_register_path"):
        for entry, line, statement, in_function, by_name in relative_plugin_imports(args.list(key)):
            message = (f"{key} file {entry}, line {line}: `{statement}` is a relative import, and ms-swift imports the "
                       "plugin file as a top-level module with no package: ImportError (\"attempted relative import "
                       "with no known parent package\")")
            hint = (f"`{by_name}`: ms-swift puts the plugin file's directory first on sys.path" if by_name else
                    "make the modules it names importable by name (a package on PYTHONPATH, or beside the plugin file)")
            if in_function:
                warn("plugin-relative-import", message + " when that function runs", key, hint=hint)
            else:
                err("plugin-relative-import", message + " at start-up, on every rank", key, hint=hint)


PLUGIN_IMPORT_RULES = [plugin_imports, plugin_relative_imports]
