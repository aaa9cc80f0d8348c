"""Which models ms-swift's Megatron backend can build through mcore-bridge (bridge_backend mcore-bridge, the default).

ms-swift 4.6 refuses the rest when its arguments are parsed, on every rank after launch
(swift/megatron/arguments/megatron_args.py MegatronArguments.__post_init__ and _init_teacher_model:
`get_model_meta(self._get_mcore_model_type(model_meta))`, "Model: ... is not supported."). The mcore model type is
ms-swift's own `ModelMeta.mcore_model_type` when its registry sets one (read into msswift-models.json by
registry_reader), else mcore-bridge's `get_mcore_model_type(model_type)`: the mcore-bridge registration whose
model_types list holds ms-swift's model_type (src/mcore_bridge/model/register.py; the registrations are the
`register_model(ModelMeta(ModelType.x, [model types...]))` calls in model/gpts/*.py and model/mm_gpts/*.py).

mcore-bridge imports transformer_engine when imported, so its registry is read from its source with `ast`: from
the installed package when there is one (cached per version), else from the shipped mcore-bridge-models.json,
generated from the release ms-swift pins (`Requires-Dist: mcore-bridge>=X` in its metadata) and, since that is
only a floor, from later releases too ("later_releases"). Regenerate it with
`python -m swift_ext.msswift.mcore_support PINNED [LATER...]` (each a release's wheel, from
`pip download --no-deps mcore-bridge==X`, or an unpacked mcore_bridge package directory); the file records what it
was read from (file name and sha256).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import json
import re
import sys
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from swift_ext.spec.cachedirs import cached_json

TABLE = Path(__file__).parent / "mcore-bridge-models.json"
PACKAGES = ("mcore_bridge/model/gpts", "mcore_bridge/model/mm_gpts")  # model/__init__.py imports gpts, then mm_gpts


# -------------------------------------------------------------------------------------------------
# reading mcore-bridge's source


class _Source:
    """The mcore_bridge package's .py files, {path from the site-packages root: text}, from a wheel or a directory
    (the package directory itself or one holding it)."""

    def __init__(self, path: Path):
        self.path = path
        self.files: dict[str, str] = {}
        if path.is_file() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as wheel:
                for name in wheel.namelist():
                    if name.startswith("mcore_bridge/") and name.endswith(".py"):
                        self.files[name] = wheel.read(name).decode("utf-8")
            self.describe = f"{path.name} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})"
        elif path.is_dir():
            root = path.parent if (path / "model" / "register.py").is_file() else path
            for file in sorted((root / "mcore_bridge").rglob("*.py")):
                self.files[file.relative_to(root).as_posix()] = file.read_text(encoding="utf-8")
            self.describe = f"{(root / 'mcore_bridge').as_posix()} (unpacked package)"
        if "mcore_bridge/model/register.py" not in self.files:
            raise ValueError(f"{path}: not an mcore_bridge wheel or package directory")

    def tree(self, name: str) -> ast.Module:
        return ast.parse(self.files[name], name)

    def version(self) -> str:
        for node in self.tree("mcore_bridge/version.py").body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__version__"
                                                    for t in node.targets):
                return ast.literal_eval(node.value)
        raise ValueError("no __version__ in mcore_bridge/version.py")

    def modules(self, package: str) -> list[str]:
        """The package's modules in import order (its __init__'s `from . import a, b`), then any others."""
        out = []
        for node in self.tree(f"{package}/__init__.py").body:
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
                out += [f"{package}/{alias.name}.py" for alias in node.names]
        rest = sorted(n for n in self.files if n.startswith(package + "/") and n.count("/") == package.count("/") + 1
                      and not n.endswith("__init__.py"))
        return out + [n for n in rest if n not in out]


def _model_type_names(source: _Source) -> dict[str, str]:
    """{attribute: value} of model/constant.py's classes (ModelType.x inherits LLMModelType's and MLLMModelType's)."""
    out = {}
    for node in source.tree("mcore_bridge/model/constant.py").body:
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                        and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)):
                    out[stmt.targets[0].id] = stmt.value.value
    return out


def _registrations(tree: ast.Module, where: str, names: dict[str, str], skipped: list[str]) -> list[dict]:
    """The module's register_model(ModelMeta(...)) calls, each with the `if` it sits under (None: always run when
    the module is imported)."""
    out: list[dict] = []

    def visit(body: list[ast.stmt], condition: str | None) -> None:
        for stmt in body:
            if isinstance(stmt, ast.If):
                test = ast.unparse(stmt.test)
                visit(stmt.body, _join(condition, test))
                visit(stmt.orelse, _join(condition, _negate(test)))
            elif isinstance(stmt, (ast.Try,)):
                visit(stmt.body, condition)
            elif isinstance(stmt, ast.Expr) and _is_call(stmt.value, "register_model"):
                try:
                    out.append({**_meta(stmt.value, names), "condition": condition, "where": f"{where}:{stmt.lineno}"})
                except (ValueError, IndexError) as exc:
                    skipped.append(f"{where}:{stmt.lineno} ({exc})")

    visit(tree.body, None)
    # a register_model call anywhere else (inside a function, say) would be missed: say so
    found = {r["where"] for r in out} | {s.split(" ")[0] for s in skipped}
    for node in ast.walk(tree):
        if _is_call(node, "register_model") and f"{where}:{node.lineno}" not in found:
            skipped.append(f"{where}:{node.lineno} (register_model outside module-level code)")
    return out


def _is_call(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def _meta(call: ast.Call, names: dict[str, str]) -> dict:
    meta = call.args[0]
    if not _is_call(meta, "ModelMeta"):
        raise ValueError("not a ModelMeta call")
    kw = dict(zip(("model_type", "model_types"), meta.args))
    kw.update({k.arg: k.value for k in meta.keywords if k.arg})
    node = kw["model_type"]
    if isinstance(node, ast.Attribute) and node.attr in names:
        mcore_type = names[node.attr]
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        mcore_type = node.value
    else:
        raise ValueError(f"model_type {ast.unparse(node)}")
    model_types = ast.literal_eval(kw["model_types"])  # a literal list in every release read so far
    if not isinstance(model_types, list) or not all(isinstance(t, str) for t in model_types):
        raise ValueError(f"model_types {ast.unparse(kw['model_types'])}")
    return {"mcore_model_type": mcore_type, "model_types": model_types}


def _join(outer: str | None, inner: str) -> str:
    return inner if outer is None else f"({outer}) and ({inner})"


def _negate(test: str) -> str:
    return test[len("not "):] if test.startswith("not ") and " " not in test[len("not "):] else f"not {test}"


def read_registry(path: Path) -> dict:
    """{mcore_bridge, source, registrations, skipped} read from an mcore_bridge wheel or package directory."""
    source = _Source(Path(path))
    names = _model_type_names(source)
    registrations: list[dict] = []
    skipped: list[str] = []
    for package in PACKAGES:
        for module in source.modules(package):
            registrations += _registrations(source.tree(module), module, names, skipped)
    return {"mcore_bridge": source.version(), "source": source.describe, "registrations": registrations,
            "skipped": skipped}


def ms_swift_pin() -> str | None:
    """The mcore-bridge requirement the installed ms-swift declares (its `megatron` extra), as written there."""
    try:
        requires = importlib.metadata.requires("ms-swift") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for line in requires:
        if re.match(r"mcore[-_]bridge\b", line, re.IGNORECASE):
            return line
    return None


def generate(path: Path, later: tuple[Path, ...] = ()) -> dict:
    """The table of the release at `path` (the one ms-swift pins), and of any `later` releases: ms-swift only sets
    a floor, so a model type a later release maps is not refused where the installed release is unknown."""
    tables = [read_registry(p) for p in (path, *later)]
    for table in tables:
        if table.pop("skipped"):
            raise ValueError(f"{table['source']}: registrations this reader cannot follow")
    try:
        ms_swift = importlib.metadata.version("ms-swift")
    except importlib.metadata.PackageNotFoundError:
        ms_swift = None
    return {**tables[0], "ms_swift": ms_swift, "ms_swift_requires": ms_swift_pin(), "later_releases": tables[1:]}


# -------------------------------------------------------------------------------------------------
# the table the rules read


def installed() -> tuple[str, Path] | None:
    """(version, package directory) of an installed mcore-bridge, found without importing it."""
    try:
        version = importlib.metadata.version("mcore-bridge")
        spec = importlib.util.find_spec("mcore_bridge")
    except (importlib.metadata.PackageNotFoundError, ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return version, Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=1)
def load() -> dict:
    """The registry of the installed mcore-bridge ("installed": true), else the shipped table."""
    shipped = json.loads(TABLE.read_text())
    found = installed()
    if found is None:
        return {**shipped, "installed": False}
    version, package = found
    if version == shipped["mcore_bridge"]:
        return {**shipped, "installed": True, "later_releases": []}
    try:
        return cached_json(f"mcore-bridge-models-{version}.json", lambda: _installed_table(package))
    except Exception:  # noqa: BLE001 - a package laid out differently must not stop a plan: keep the shipped table
        return {**shipped, "installed": False}


def _installed_table(package: Path) -> dict:
    table = read_registry(package)
    if table.pop("skipped"):
        raise LookupError("a registration swift-ext cannot follow")  # we would not be sure: the shipped table
    table.update(installed=True, later_releases=[])
    return table


@dataclass(frozen=True)
class McoreSupport:
    mcore_model_type: str | None  # None: neither ms-swift nor mcore-bridge maps the model type to one
    registered: str  # "always" | "conditional" (only under an `if` of mcore-bridge's, e.g. USE_MCORE_GDN) | "no"
    version: str  # the mcore-bridge release the answer was read from


def _registered(table: dict, mcore_type: str) -> str:
    conditions = {r["condition"] for r in table["registrations"] if r["mcore_model_type"] == mcore_type}
    if not conditions:
        return "no"
    # `if c:` in one module and `if not c:` in another (qwen3_next, qwen3_5: USE_MCORE_GDN) register it either way
    if None in conditions or any(_negate(c) in conditions for c in conditions):
        return "always"
    return "conditional"


def mcore_model_type(model_type: str | None, override: str | None, table: dict | None = None) -> McoreSupport:
    """ms-swift's MegatronArguments._get_mcore_model_type then mcore-bridge's get_model_meta: `override` is the
    ModelMeta.mcore_model_type ms-swift uses (see teacher_override), else the last registration listing
    `model_type` (register.py get_mcore_model_type builds {model type: mcore type} in registration order)."""
    table = table or load()
    mcore_type = override
    if mcore_type is None and model_type is not None:
        for registration in table["registrations"]:
            if model_type in registration["model_types"]:
                mcore_type = registration["mcore_model_type"]
    registered = _registered(table, mcore_type) if mcore_type is not None else "no"
    return McoreSupport(mcore_type, registered, table["mcore_bridge"])


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(f"usage: python -m swift_ext.msswift.mcore_support PINNED [LATER...]  (each an mcore_bridge wheel "
                 f"or package directory; PINNED: the release ms-swift requires, {ms_swift_pin()})")
    TABLE.write_text(json.dumps(generate(Path(sys.argv[1]), tuple(map(Path, sys.argv[2:]))), indent=1,
                                sort_keys=True) + "\n")
    print(TABLE)


@dataclass(frozen=True)
class Verdict:
    support: McoreSupport  # in the installed release, else in the release ms-swift pins
    installed: bool  # the answer is the installed mcore-bridge's
    later: str | None  # not installed here and unsupported by the pinned release: the first later release that maps it
    latest: str  # the newest release the answer rests on (the installed one, else the last of later_releases)


def verdict(model_type: str | None, override: str | None) -> Verdict:
    table = load()
    support = mcore_model_type(model_type, override, table)
    later = None
    if support.registered == "no" and not table["installed"]:
        later = next((t["mcore_bridge"] for t in table["later_releases"]
                      if mcore_model_type(model_type, override, t).registered != "no"), None)
    latest = table["later_releases"][-1]["mcore_bridge"] if table["later_releases"] else table["mcore_bridge"]
    return Verdict(support, table["installed"], later, latest)
