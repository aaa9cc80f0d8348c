"""Names in ms-swift's plugin registries -- `orms` (reward functions, swift/rewards/orm.py), `rm_plugins` (reward
model plugins, swift/rewards/rm_plugin.py), `multi_turns` (swift/rollout/multi_turn.py), `loss_map` -- built in, or
added by an `--external_plugins` file with `registry['name'] = ...` or `registry.update({'name': ...})`, there or in
the local modules it imports (the .py files and packages next to it, which import_external_file puts first on
sys.path). Read with `ast`, never imported (planning must not import ms-swift or run user code). What cannot be read
-- a loop, a decorator, computed keys, a local module not here -- leaves the registry undecided, with the reason.
"""

from __future__ import annotations

import ast
import importlib.machinery
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


def missing_plugin_files(paths: list) -> list[str]:
    """external_plugins entries with no file behind them; ms-swift resolves them against the working directory
    (swift/utils/utils.py import_external_file: os.path.abspath(os.path.expanduser(path)))."""
    return [str(p) for p in paths if not _is_file(Path(os.path.expanduser(str(p))))]


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name the file system refuses (ENAMETOOLONG): no file ms-swift could import either
        return False


@lru_cache(maxsize=16)
def builtin_names(module: str, registry: str, package: str = "swift") -> frozenset[str] | None:
    """The constant keys of the dict literal `registry = {...}` (or the constant items of a list, tuple or set
    literal) in the installed `package`'s `module` (a path under it, e.g. "rewards/orm.py" of ms-swift); None when
    the package or the module is not here."""
    from swift_ext.msswift.schema import _package_dir

    root = _package_dir(package)
    path = root / module if root else None
    if path is None or not path.is_file():
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == registry for t in node.targets):
            if isinstance(node.value, ast.Dict):
                return frozenset(k.value for k in node.value.keys if isinstance(k, ast.Constant))
            if isinstance(node.value, (ast.List, ast.Tuple, ast.Set)):
                return frozenset(e.value for e in node.value.elts if isinstance(e, ast.Constant))
    return None


def plugin_names(paths: list, registry: str) -> set[str]:
    """Names the plugin files at `paths` register with `registry['name'] = ...` (or `registry.update` with constant
    keys), they or the local modules they import (files not here are skipped)."""
    return set(plugin_registry(paths, registry).names)


def plugins_readable(paths: list, registry: str) -> bool:
    """Whether plugin_names is every name the plugin files here can add to `registry` (plugins_undecided: why not)."""
    return not plugin_registry(paths, registry).undecided


def registered_names(module: str, registry: str, paths: list) -> frozenset[str] | None:
    """Every name ms-swift's `registry` (in `module`, see builtin_names) can hold at run time: its built-in keys and
    those the external_plugins files at `paths` add. None when that cannot be known here -- ms-swift not installed,
    a plugin file missing (plugin-file's finding), or one filling the registry in a way not read here -- so a rule
    judging a name against it stays silent."""
    builtin = builtin_names(module, registry)
    if builtin is None or missing_plugin_files(paths) or not plugins_readable(paths, registry):
        return None
    return builtin | plugin_names(paths, registry)


def plugins_undecided(paths: list, registry: str) -> str:
    """Why the plugin files here may add names to `registry` that plugin_names cannot list ("" when it lists all)."""
    return plugin_registry(paths, registry).undecided


@dataclass(frozen=True)
class Registered:
    """What the plugin files and the local modules they import add to one registry."""

    names: frozenset[str]
    undecided: str  # "" when `names` is all they can add; else the first reason found (file, line, what)


def plugin_registry(paths: list, registry: str) -> Registered:
    names: set[str] = set()
    undecided = ""
    for p in paths:
        path = Path(os.path.expanduser(str(p)))
        try:
            if not path.is_file():
                continue  # missing files are plugin-file's (a warning): callers check missing_plugin_files
            got = _followed(str(path.resolve()), path.stat().st_mtime_ns, registry)
        except (OSError, ValueError):
            continue
        names |= got.names
        undecided = undecided or got.undecided
    return Registered(frozenset(names), undecided)


def unparsable_plugin_files(paths: list) -> list[tuple[str, str]]:
    """(entry, why) for each external_plugins file here that Python cannot compile: ms-swift imports every one
    (import_external_file: importlib.import_module) on every rank at start-up, where it fails the same way."""
    out = []
    for p in paths:
        path = Path(os.path.expanduser(str(p)))
        try:
            if not path.is_file():
                continue
            why = _parsed(str(path.resolve()), path.stat().st_mtime_ns)[1]
        except (OSError, ValueError):
            continue
        if why:
            out.append((str(p), why))
    return out


@lru_cache(maxsize=64)
def _parsed(path: str, mtime_ns: int) -> tuple[ast.Module | None, str]:
    """One plugin file's syntax tree, or None and why not; keyed on the mtime so an edited file is read again.
    Read as bytes, as the import reads it: a coding cookie or a BOM decides the encoding."""
    try:
        return ast.parse(Path(path).read_bytes(), filename=path), ""
    except SyntaxError as exc:  # a syntax error, or source that is not text in its declared encoding
        return None, f"{type(exc).__name__}: {exc.msg} (line {exc.lineno})" if exc.lineno else \
            f"{type(exc).__name__}: {exc.msg}"
    except ValueError as exc:  # NUL bytes in the source (Python 3.11)
        return None, f"{type(exc).__name__}: {exc}"
    except (RecursionError, MemoryError):  # "x = ---...1", "a+a+...+a": nested past what the parser builds
        return None, "nested too deeply for Python's parser"
    except OSError as exc:
        return None, exc.strerror or str(exc)


# How many imports deep local modules are followed from a plugin file (plugin -> rewards -> their helpers): real
# plugins keep their registrations a module or two away; past this the registry is said to be undecided.
FOLLOW_DEPTH = 3


@dataclass(frozen=True)
class _Facts:
    """One file's own registrations, why they may not be all, and the imports it runs."""

    names: frozenset[str]
    undecided: str
    imports: tuple[tuple[str, int, tuple[str, ...], int], ...]  # (module, level, names imported from it, line)


def _followed(path: str, mtime_ns: int, registry: str) -> Registered:
    """A plugin file and the local modules it imports, as ms-swift's import runs them: import_external_file
    (swift/utils/utils.py) puts the file's directory first on sys.path, so `import helpers`, `from helpers import *`
    (after a `sys.path.append(os.path.dirname(__file__))` too) load the helpers.py or helpers/ package next to it
    before anything installed. Not cached itself: a sibling edited since is read again (_file_facts is per mtime)."""
    root = Path(path).parent
    names: set[str] = set()
    undecided = ""
    seen, todo = {path}, [(path, mtime_ns, 0)]
    while todo:
        file, mtime, depth = todo.pop(0)
        facts = _file_facts(file, mtime, registry)
        names |= facts.names
        undecided = undecided or facts.undecided
        for imp in facts.imports:
            files, why = _resolve(imp, Path(file), root, registry)
            undecided = undecided or why
            for found in files:
                if found in seen:  # an import cycle, or a module two files import: read once
                    continue
                if depth >= FOLLOW_DEPTH:
                    undecided = undecided or (f"{_shown(file)} line {imp[3]} imports {_label(imp)}, more than "
                                              f"{FOLLOW_DEPTH} imports from the plugin file (not read)")
                    continue
                seen.add(found)
                todo.append((found, os.stat(found).st_mtime_ns, depth + 1))
    return Registered(frozenset(names), undecided)


def _resolve(imp: tuple, file: Path, root: Path, registry: str) -> tuple[list[str], str]:
    """The local files one import statement runs (a package's __init__.py, then the module; for `from X import a`,
    a submodule X.a too), and why not, where a module it names that may be local is not here."""
    module, level, imported, line = imp
    parts = module.split(".") if module else []
    files: list[str] = []
    if level:
        # Relative to the importing module's package. (In the plugin file itself a relative import fails at
        # start-up: ms-swift loads it as a top-level module, `_swift_external_<hash>`, with no package.)
        base = file.parent
        for _ in range(level - 1):
            base = base.parent
        if (base / "__init__.py").is_file() and base != root:
            files.append(str(base / "__init__.py"))
    else:
        base = root
        if _module_file(root, parts[0]) is None:
            if _elsewhere(parts[0]):
                return [], ""  # the standard library or an installed package: not the plugin's own code
            return [], (f"{_shown(file)} line {line} imports {_label(imp)}, which is neither next to the plugin file "
                        f"nor installed here: the training machine's copy may register {registry} names")
    for part in parts:
        found = _module_file(base, part)
        if found is None:
            return files, (f"{_shown(file)} line {line} imports {_label(imp)}, not found under {base}: the training "
                           f"machine's copy may register {registry} names")
        if found:
            files.append(found)
        base = base / part
    for name in imported:  # `from pkg import mod` runs pkg/mod.py when mod is a submodule
        found = _module_file(base, name) if name != "*" and base.is_dir() else None
        if found:
            files.append(found)
    return files, ""


def _module_file(where: Path, name: str) -> str | None:
    """The file Python's path finder runs for `name` in `where`: a package's __init__.py, else name.py; "" for a
    namespace package (a directory without __init__.py: nothing runs); None when there is none."""
    if (where / name / "__init__.py").is_file():
        return str(where / name / "__init__.py")
    if (where / f"{name}.py").is_file():
        return str(where / f"{name}.py")
    return "" if (where / name).is_dir() else None


@lru_cache(maxsize=256)
def _elsewhere(top: str) -> bool:
    """Whether a top-level module is the standard library's or installed here (found, never imported; the working
    directory is left out: the run's is another)."""
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return True
    here = os.getcwd()
    search = [p for p in sys.path if p and os.path.abspath(p) != here]
    try:
        return importlib.machinery.PathFinder.find_spec(top, search) is not None
    except (ImportError, ValueError):
        return False


def _label(imp: tuple) -> str:
    module, level, imported, _ = imp
    return "." * level + module if not imported or module else "." * level + ", ".join(imported)


def _shown(path: str | Path) -> str:
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


@lru_cache(maxsize=256)
def _file_facts(path: str, mtime_ns: int, registry: str) -> _Facts:
    """One file's `registry['name'] = ...` and `registry.update({'name': ...})` / `update(name=...)` names (the
    registry imported under another name, or reached through its module, `rm_plugin.rm_plugins[...]`, counts), and
    the first other use of it: a computed key, a loop, a decorator, setattr or getattr(m, 'orms'), an update with
    computed keys or a dict comprehension, passing it on -- any of which may add names not listed here."""
    tree, why = _parsed(path, mtime_ns)
    if tree is None:
        return _Facts(frozenset(), f"{_shown(path)} is not Python this interpreter can compile ({why})", ())
    aliases = {registry} | {a.asname for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                            for a in node.names if a.name == registry and a.asname}

    def is_registry(e) -> bool:
        return (isinstance(e, ast.Name) and e.id in aliases) or (isinstance(e, ast.Attribute) and e.attr == registry)

    names: set[str] = set()
    read: set[int] = set()  # ids of the registry references accounted for
    imports = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Subscript) and is_registry(t.value) and isinstance(t.slice, ast.Constant) \
                        and isinstance(t.slice.value, str):
                    names.add(t.slice.value)
                    read.add(id(t.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update" \
                and is_registry(node.func.value):
            keys = _update_keys(node)
            if keys is not None:
                names |= keys
                read.add(id(node.func.value))
        elif isinstance(node, ast.Import):
            imports += [(a.name, 0, (), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            imports.append((node.module or "", node.level, tuple(a.name for a in node.names), node.lineno))
    undecided = ""
    for n in ast.walk(tree):
        if id(n) not in read and (is_registry(n) or (isinstance(n, ast.Constant) and n.value == registry)):
            undecided = f"{_shown(path)} line {n.lineno} fills {registry} in a way not read here ({_source(path, n)})"
            break
    return _Facts(frozenset(names), undecided, tuple(imports))


def _update_keys(call: ast.Call) -> set[str] | None:
    """The names `registry.update({'a': A})` or `registry.update(a=A)` adds; None when any key is computed."""
    if len(call.args) == 1 and not call.keywords and isinstance(call.args[0], ast.Dict):
        keys = call.args[0].keys  # a None key is a `**other` spread
        if all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in keys):
            return {k.value for k in keys}
        return None
    if not call.args and call.keywords and all(k.arg is not None for k in call.keywords):
        return {k.arg for k in call.keywords}
    return None


def _source(path: str, node: ast.AST) -> str:
    try:
        line = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()[node.lineno - 1].strip()
    except (OSError, IndexError):
        return "line unreadable"
    return line if len(line) <= 80 else line[:77] + "..."

# The names through which a plugin file adds a model: ms-swift's swift.model register_model (a ModelMeta whose
# mcore_model_type names an mcore-bridge model, as ms-swift's own yi / codefuse_codellama / openbuddy_llama do) and
# mcore-bridge's register_model / MODEL_MAPPING (mcore_bridge/model/register.py).
MODEL_REGISTRY_NAMES = frozenset({"register_model", "MODEL_MAPPING"})


def plugins_may_register_models(paths: list) -> bool:
    """Whether the external_plugins files at `paths` may register a model when ms-swift imports them: a file not
    here, not readable as Python, or naming register_model / MODEL_MAPPING anywhere."""
    for p in paths:
        path = Path(os.path.expanduser(str(p)))
        try:
            if _names_models(str(path.resolve()), path.stat().st_mtime_ns):
                return True
        except OSError:
            return True
    return False


@lru_cache(maxsize=64)
def _names_models(path: str, mtime_ns: int) -> bool:
    tree = _parsed(path, mtime_ns)[0]  # the one reader of plugin files (unreadable, too nested: None)
    if tree is None:
        return True  # nothing can be said of it: ms-swift's import may register anything
    for node in ast.walk(tree):
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else \
            node.name if isinstance(node, ast.alias) else None
        if name is not None and name.rsplit(".", 1)[-1] in MODEL_REGISTRY_NAMES:
            return True
    return False
