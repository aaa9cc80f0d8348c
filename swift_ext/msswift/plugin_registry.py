"""Names in ms-swift's plugin registries -- `orms` (reward functions, swift/rewards/orm.py) and `rm_plugins` (reward
model plugins, swift/rewards/rm_plugin.py) -- built in, or added by an `--external_plugins` file with
`registry['name'] = ...`. Read with `ast`, never imported (planning must not import ms-swift or run user code).
"""

from __future__ import annotations

import ast
import os
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


@lru_cache(maxsize=8)
def builtin_names(module: str, registry: str) -> frozenset[str] | None:
    """The constant keys of the dict literal `registry = {...}` in the installed ms-swift's `module` (a path under
    the swift package, e.g. "rewards/orm.py"); None when ms-swift or the module is not here."""
    from swift_ext.msswift.schema import _package_dir

    root = _package_dir("swift")
    path = root / module if root else None
    if path is None or not path.is_file():
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == registry for t in node.targets):
            if isinstance(node.value, ast.Dict):
                return frozenset(k.value for k in node.value.keys if isinstance(k, ast.Constant))
    return None


def plugin_names(paths: list, registry: str) -> set[str]:
    """Names the plugin files at `paths` register with `registry['name'] = ...` (files not here are skipped)."""
    names: set[str] = set()
    for p in paths:
        path = Path(os.path.expanduser(str(p)))
        try:
            names |= _registered(str(path.resolve()), path.stat().st_mtime_ns, registry)[0]
        except OSError:
            continue
    return names


def plugins_readable(paths: list, registry: str) -> bool:
    """Whether every plugin file here touches `registry` only by `registry['constant'] = ...` (or imports it): a
    file that fills it another way (`update`, a computed key, an alias) registers names this module cannot list."""
    for p in paths:
        path = Path(os.path.expanduser(str(p)))
        try:
            if not _registered(str(path.resolve()), path.stat().st_mtime_ns, registry)[1]:
                return False
        except OSError:
            continue
    return True


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


@lru_cache(maxsize=64)
def _registered(path: str, mtime_ns: int, registry: str) -> tuple[frozenset[str], bool]:
    """One plugin file's `registry[...]` names and whether they are all it can add."""
    tree = _parsed(path, mtime_ns)[0]
    if tree is None:  # nothing can be listed from it (unparsable_plugin_files says why)
        return frozenset(), False
    names: set[str] = set()
    plain: set[int] = set()  # ids of the Name nodes of readable `registry['x'] = ...` targets
    readable = True
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id == registry:
                    if isinstance(t.slice, ast.Constant) and isinstance(t.slice.value, str):
                        names.add(t.slice.value)
                        plain.add(id(t.value))
        elif isinstance(node, ast.ImportFrom) and any(a.name == registry and a.asname not in (None, registry)
                                                      for a in node.names):
            readable = False  # imported under another name
    # any other use (registry.update(...), registry[key] = ..., passing it on) may add names not listed here, and
    # so may the registry reached through its module (`rm_plugin.rm_plugins['x'] = ...`, getattr(m, 'rm_plugins'))
    for n in ast.walk(tree):
        if (isinstance(n, ast.Name) and n.id == registry and id(n) not in plain) \
                or (isinstance(n, ast.Attribute) and n.attr == registry) \
                or (isinstance(n, ast.Constant) and n.value == registry):
            readable = False
            break
    return frozenset(names), readable


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
