"""ms-swift's argument dataclasses, read from the installed source without importing it.

Importing `swift.megatron.arguments` imports mcore_bridge, which imports transformer_engine (CUDA
only) at import time, and importing any of ms-swift pulls in torch (seconds). So we parse the
source files with `ast`, follow the base classes across modules (ms-swift -> transformers), build
each dataclass's field list the way `dataclasses` does (reverse MRO, later wins), and cache the
result keyed on the installed versions. `swift-ext` then validates recipes in milliseconds on a
laptop or login node with no GPU.

When ms-swift is not installed (a laptop with only the light base install), the snapshot bundled in
`swift_ext/data/` (generated from ms-swift 4.6.0 by `python -m swift_ext.msswift.schema`, and tested
against the installed copy) is used, and the plan says so.
"""

from __future__ import annotations

import ast
import difflib
import importlib.metadata
import importlib.util
import json
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

# (engine, command) -> (module, class). Read from swift/megatron/arguments/__init__.py and
# swift/arguments/__init__.py of ms-swift 4.6.
DATACLASSES: dict[tuple[str, str], tuple[str, str]] = {
    ("megatron", "sft"): ("swift.megatron.arguments.sft_args", "MegatronSftArguments"),
    ("megatron", "rlhf"): ("swift.megatron.arguments.rlhf_args", "MegatronRLHFArguments"),
    ("megatron", "pt"): ("swift.megatron.arguments.pretrain_args", "MegatronPretrainArguments"),
    ("megatron", "export"): ("swift.megatron.arguments.export_args", "MegatronExportArguments"),
    ("swift", "sft"): ("swift.arguments.sft_args", "SftArguments"),
    ("swift", "rlhf"): ("swift.arguments.rlhf_args", "RLHFArguments"),
    ("swift", "pt"): ("swift.arguments.pretrain_args", "PretrainArguments"),
    ("swift", "export"): ("swift.arguments.export_args", "ExportArguments"),
    ("swift", "infer"): ("swift.arguments.infer_args", "InferArguments"),
}

# ms-swift 3.x / Megatron-LM names that 4.x replaced (ms-swift 4.0 release notes and its Megatron
# argument docs). A recipe using one gets told the new name.
RENAMED: dict[str, str] = {
    "train_type": "tuner_type",
    "load": "mcore_model",
    "save": "output_dir",
    "max_epochs": "num_train_epochs",
    "eval_interval": "eval_steps",
    "save_interval": "save_steps",
    "num_workers": "dataloader_num_workers",
    "adapter_load": "mcore_adapter",
    "ref_load": "mcore_ref_model",
    "ref_adapter_load": "mcore_ref_adapter",
    "log_interval": "logging_steps",
    "train_iters": "max_steps",
    "seq_length": "max_length",
    "tensorboard_dir": "logging_dir",
}

# 3.x arguments with no 4.x counterpart.
REMOVED: dict[str, str] = {
    "load_safetensors": "not an argument in ms-swift 4.x (mcore-bridge reads HF safetensors directly); remove it",
}

SNAPSHOT = Path(__file__).parent / "msswift-args.json"


@dataclass(frozen=True)
class ArgField:
    name: str
    type: dict  # {"kind": bool|int|float|str|list|dict|any|literal|union, ...}
    default: Any
    help: str


@dataclass(frozen=True)
class ArgSchema:
    """The arguments one ms-swift command accepts."""

    dataclass_name: str
    fields: dict[str, ArgField]
    origin: str  # "ms-swift 4.6.0 (installed)" or "... (bundled snapshot)"

    def suggest(self, name: str) -> str | None:
        if name in REMOVED:
            return REMOVED[name]
        if name in RENAMED and RENAMED[name] in self.fields:
            return f"`{name}` was renamed in ms-swift 4.x: use `{RENAMED[name]}`"
        close = difflib.get_close_matches(name, self.fields, n=1, cutoff=0.75)
        return f"did you mean `{close[0]}`?" if close else None


# --------------------------------------------------------------------------------------------------
# Public entry point


def schema_for(engine: str, command: str) -> ArgSchema:
    all_schemas, origin = _load_all()
    module, cls = DATACLASSES[(engine, command)]
    raw = all_schemas[cls]
    return ArgSchema(
        dataclass_name=cls,
        fields={name: ArgField(name, f["type"], f["default"], f["help"]) for name, f in raw.items()},
        origin=origin,
    )


def installed_version() -> str | None:
    try:
        return importlib.metadata.version("ms-swift")
    except importlib.metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def _load_all() -> tuple[dict, str]:
    version = installed_version()
    if version is None or os.environ.get("SWIFT_EXT_ARGS_SNAPSHOT") == "1":
        data = json.loads(SNAPSHOT.read_text())
        return data["classes"], f"ms-swift {data['ms_swift']} (bundled snapshot; ms-swift not installed)"
    key = _cache_key(version)
    cache = _cache_dir() / f"msswift-args-{key}.json"
    if cache.is_file():
        try:
            return json.loads(cache.read_text())["classes"], f"ms-swift {version} (installed)"
        except (OSError, ValueError, KeyError):
            pass
    classes = extract_all()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"ms_swift": version, "classes": classes}))
        tmp.replace(cache)
    except OSError:
        pass  # a read-only home only costs us speed
    return classes, f"ms-swift {version} (installed)"


def _cache_dir() -> Path:
    base = os.environ.get("SWIFT_EXT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "swift-ext"
    )
    return Path(base)


def _cache_key(version: str) -> str:
    # Versions alone miss editable installs of ms-swift; the argument files' mtimes catch edits.
    parts = [version, _dist_version("transformers") or "-"]
    root = _package_dir("swift")
    if root:
        for sub in ("arguments", "megatron/arguments", "trainers", "rlhf_trainers"):
            d = root / sub
            if d.is_dir():
                parts.append(str(max((p.stat().st_mtime_ns for p in d.glob("*.py")), default=0)))
    import hashlib

    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def extract_all() -> dict[str, dict]:
    """Field tables of every dataclass in DATACLASSES, from the installed source."""
    reader = _SourceReader()
    out = {}
    for module, cls in DATACLASSES.values():
        out[cls] = reader.dataclass_fields(module, cls)
    return out


# --------------------------------------------------------------------------------------------------
# Reading classes out of source files


@lru_cache(maxsize=None)
def _package_dir(top: str) -> Path | None:
    # find_spec on a top-level name locates the package without executing its __init__.
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


class _SourceReader:
    def __init__(self) -> None:
        self._modules: dict[str, tuple[ast.Module, list[str]] | None] = {}
        self._classes: dict[tuple[str, str], tuple[str, ast.ClassDef] | None] = {}

    # -- modules -----------------------------------------------------------------------------------
    def module_file(self, module: str) -> Path | None:
        top, *rest = module.split(".")
        root = _package_dir(top)
        if root is None:
            return None
        base = root.joinpath(*rest)
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py")
        if (base / "__init__.py").is_file():
            return base / "__init__.py"
        return None

    def parse(self, module: str) -> tuple[ast.Module, list[str]] | None:
        if module not in self._modules:
            path = self.module_file(module)
            if path is None:
                self._modules[module] = None
            else:
                text = path.read_text(encoding="utf-8")
                self._modules[module] = (ast.parse(text), text.splitlines())
        return self._modules[module]

    def is_package(self, module: str) -> bool:
        path = self.module_file(module)
        return path is not None and path.name == "__init__.py"

    def absolute(self, module: str, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = module.split(".")
        if not self.is_package(module):
            parts = parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        return ".".join(parts + ([node.module] if node.module else []))

    # -- classes -----------------------------------------------------------------------------------
    def find_class(self, module: str, name: str, depth: int = 0) -> tuple[str, ast.ClassDef] | None:
        key = (module, name)
        if key in self._classes:
            return self._classes[key]
        self._classes[key] = None  # guards against import cycles
        found = self._find_class(module, name, depth)
        self._classes[key] = found
        return found

    def _find_class(self, module: str, name: str, depth: int) -> tuple[str, ast.ClassDef] | None:
        parsed = self.parse(module)
        if parsed is None or depth > 12:
            return None
        tree, _ = parsed
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == name:
                return module, node
        # Re-exports, including those under `if TYPE_CHECKING:` in lazily importing packages.
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        target = self.absolute(module, node)
                        found = self.find_class(target, alias.name, depth + 1)
                        if found is None and self.parse(f"{target}.{alias.name}") is not None:
                            continue  # `from pkg import submodule`, not a class
                        if found:
                            return found
        return None

    def bases(self, module: str, node: ast.ClassDef) -> list[tuple[str, ast.ClassDef]]:
        out = []
        for base in node.bases:
            name = _dotted(base)
            if name is None or name in {"object", "Generic"}:
                continue
            found = self.resolve_name(module, name)
            if found is not None:
                out.append(found)
        return out

    def resolve_name(self, module: str, name: str) -> tuple[str, ast.ClassDef] | None:
        if "." in name:  # e.g. `enum.Enum` or `module.Class`
            head, _, last = name.rpartition(".")
            tree = self.parse(module)
            if tree:
                for node in ast.walk(tree[0]):
                    if isinstance(node, ast.Import):
                        for alias in node.names:
                            if (alias.asname or alias.name) == head:
                                return self.find_class(alias.name, last)
            return None
        return self.find_class(module, name)

    def mro(self, module: str, node: ast.ClassDef) -> list[tuple[str, ast.ClassDef]]:
        """C3 linearisation, as Python computes it."""
        bases = self.bases(module, node)
        seqs = [self.mro(m, n) for m, n in bases] + [bases]
        result = [(module, node)]
        seqs = [list(s) for s in seqs if s]
        while seqs:
            for seq in seqs:
                head = seq[0]
                if not any(_same(head, x) for s in seqs for x in s[1:]):
                    break
            else:  # inconsistent hierarchy: fall back to depth-first order
                head = seqs[0][0]
            result.append(head)
            seqs = [[x for x in s if not _same(x, head)] for s in seqs]
            seqs = [s for s in seqs if s]
        return result

    # -- fields ------------------------------------------------------------------------------------
    def dataclass_fields(self, module: str, name: str) -> dict[str, dict]:
        found = self.find_class(module, name)
        if found is None:
            raise LookupError(f"cannot find class {name} in {module} (ms-swift layout changed?)")
        fields: dict[str, dict] = {}
        for mod, cls in reversed(self.mro(*found)):
            if not _is_dataclass(cls):
                continue
            lines = self.parse(mod)[1]
            doc = _docstring_args(ast.get_docstring(cls) or "")
            for stmt in cls.body:
                if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                    continue
                fname = stmt.target.id
                if _is_classvar(stmt.annotation):
                    continue
                default, init, meta = _field_default(stmt.value)
                if not init:
                    fields.pop(fname, None)
                    continue
                ftype = self.type_of(mod, stmt.annotation)
                if "choices" in meta and isinstance(meta["choices"], list):
                    ftype = {"kind": "literal", "choices": meta["choices"], "optional": True}
                help_text = meta.get("help") if isinstance(meta.get("help"), str) else None
                help_text = help_text or doc.get(fname) or _trailing_comment(lines, stmt) or ""
                fields[fname] = {"type": ftype, "default": default, "help": help_text}
        return fields

    def type_of(self, module: str, ann: ast.expr | None) -> dict:
        if ann is None:
            return {"kind": "any"}
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):  # "forward ref"
            try:
                return self.type_of(module, ast.parse(ann.value, mode="eval").body)
            except SyntaxError:
                return {"kind": "any"}
        if isinstance(ann, ast.Constant) and ann.value is None:
            return {"kind": "none"}
        if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
            return _union([self.type_of(module, ann.left), self.type_of(module, ann.right)])
        if isinstance(ann, ast.Subscript):
            head = (_dotted(ann.value) or "").rsplit(".", 1)[-1]
            items = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
            if head == "Optional":
                return _union([self.type_of(module, items[0]), {"kind": "none"}])
            if head == "Union":
                return _union([self.type_of(module, i) for i in items])
            if head == "Literal":
                choices = []
                for i in items:
                    try:
                        choices.append(ast.literal_eval(i))
                    except ValueError:
                        pass
                optional = None in choices
                return {"kind": "literal", "choices": [c for c in choices if c is not None], "optional": optional}
            if head in {"List", "list", "Sequence", "Tuple", "tuple", "Set", "set"}:
                return {"kind": "list", "item": self.type_of(module, items[0])}
            if head in {"Dict", "dict", "Mapping"}:
                return {"kind": "dict"}
            return {"kind": "any"}
        name = _dotted(ann)
        simple = {"bool": "bool", "int": "int", "float": "float", "str": "str", "dict": "dict",
                  "Dict": "dict", "list": "list", "List": "list", "Any": "any", "None": "none"}
        if name in simple:
            kind = simple[name]
            return {"kind": kind, "item": {"kind": "any"}} if kind == "list" else {"kind": kind}
        if name:
            found = self.resolve_name(module, name)
            if found:
                values = self.enum_values(*found)
                if values:
                    return {"kind": "literal", "choices": values, "optional": False}
        return {"kind": "any"}

    def enum_values(self, module: str, node: ast.ClassDef) -> list[str]:
        chain = [n.name for _, n in self.mro(module, node)]
        if not any(n in {"Enum", "ExplicitEnum", "StrEnum"} for n in chain) and not any(
            _dotted(b) in {"Enum", "enum.Enum", "str"} for b in node.bases
        ):
            return []
        values = []
        for stmt in node.body:
            if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant):
                if isinstance(stmt.value.value, str):
                    values.append(stmt.value.value)
        return values


def _same(a: tuple[str, ast.ClassDef], b: tuple[str, ast.ClassDef]) -> bool:
    return a[1] is b[1]


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def _is_dataclass(cls: ast.ClassDef) -> bool:
    for deco in cls.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if (_dotted(target) or "").rsplit(".", 1)[-1] == "dataclass":
            return True
    return False


def _is_classvar(ann: ast.expr) -> bool:
    target = ann.value if isinstance(ann, ast.Subscript) else ann
    return (_dotted(target) or "").rsplit(".", 1)[-1] == "ClassVar"


def _union(parts: list[dict]) -> dict:
    optional = any(p["kind"] == "none" or p.get("optional") for p in parts)
    options = []
    for p in parts:
        if p["kind"] == "none":
            continue
        options.extend(p["options"] if p["kind"] == "union" else [p])
    if len(options) == 1:
        return {**options[0], "optional": optional}
    return {"kind": "union", "options": options, "optional": optional}


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return {"expr": ast.unparse(node)}


def _field_default(value: ast.expr | None) -> tuple[Any, bool, dict]:
    """(default, init, metadata) of `x: T = <value>`."""
    if isinstance(value, ast.Call) and (_dotted(value.func) or "").rsplit(".", 1)[-1] == "field":
        kw = {k.arg: k.value for k in value.keywords if k.arg}
        init = not (isinstance(kw.get("init"), ast.Constant) and kw["init"].value is False)
        if "default" in kw:
            default = _literal(kw["default"])
        elif "default_factory" in kw:
            factory = _dotted(kw["default_factory"]) or ""
            default = {"list": [], "dict": {}}.get(factory)
            if default is None and isinstance(kw["default_factory"], ast.Lambda):
                default = _literal(kw["default_factory"].body)
        else:
            default = None
        meta = {}
        if isinstance(kw.get("metadata"), ast.Dict):
            for k, v in zip(kw["metadata"].keys, kw["metadata"].values):
                if isinstance(k, ast.Constant):
                    lit = _literal(v)
                    meta[k.value] = lit if not isinstance(lit, dict) or "expr" not in lit else None
        return default, init, meta
    return _literal(value), True, {}


_DOC_ARG = re.compile(r"^\s*(\w+)\s*\(([^)]*)\)\s*:\s*(.*)$")


def _docstring_args(doc: str) -> dict[str, str]:
    """`name (type): text` entries of a Google-style `Args:` section."""
    out: dict[str, str] = {}
    current = None
    indent = None
    for line in doc.splitlines():
        m = _DOC_ARG.match(line)
        if m:
            current, indent = m.group(1), len(line) - len(line.lstrip())
            out[current] = m.group(3).strip()
        elif current and line.strip() and len(line) - len(line.lstrip()) > (indent or 0):
            out[current] += " " + line.strip()
        else:
            current = None
    return out


def _trailing_comment(lines: list[str], stmt: ast.AST) -> str | None:
    line = lines[stmt.end_lineno - 1]
    if "#" in line:
        return line.split("#", 1)[1].strip() or None
    return None


# --------------------------------------------------------------------------------------------------
# Checking one value against a field's type, the way HfArgumentParser would parse its text


def check_argv(argv: list[str]) -> list[str]:
    """What ms-swift's parser would refuse in a command line swift-ext built itself (merge, infer):
    flags its dataclass does not have, values it cannot parse. Checked before anything is loaded."""
    schema = schema_for(argv[0], argv[1])
    problems = []
    i = 2
    while i < len(argv):
        name = argv[i][2:] if argv[i].startswith("--") else None
        j = i + 1
        while j < len(argv) and not argv[j].startswith("--"):
            j += 1
        values = argv[i + 1 : j]
        spec = schema.fields.get(name) if name else None
        if name is None:
            problems.append(f"`{argv[0]} {argv[1]}`: stray value {argv[i]!r}")
        elif spec is None:
            problems.append(f"`{argv[0]} {argv[1]}` has no argument --{name} ({schema.dataclass_name})")
        else:
            value = values if spec.type["kind"] == "list" else (values[0] if len(values) == 1 else values or True)
            expected = check_value(spec.type, value)
            if expected:
                problems.append(f"`{argv[0]} {argv[1]}` --{name}: expected {expected}")
        i = j
    return problems


def check_value(ftype: dict, value: Any) -> str | None:
    """None when `value` would parse as `ftype`; else what was expected."""
    if value is None:
        return None
    kind = ftype["kind"]
    if kind == "list":
        items = value if isinstance(value, list) else [value]
        for item in items:
            problem = check_value(ftype.get("item", {"kind": "any"}), item)
            if problem:
                return f"a list of {describe(ftype.get('item', {'kind': 'any'}))}; item {item!r}: {problem}"
        return None
    if isinstance(value, list):
        return f"{describe(ftype)}, got a list"
    if kind == "union":
        errors = [check_value(opt, value) for opt in ftype["options"]]
        return None if any(e is None for e in errors) else f"{describe(ftype)}, got {value!r}"
    if kind == "dict":
        if isinstance(value, dict):
            return None
        if isinstance(value, str):
            try:
                if isinstance(json.loads(value), dict):
                    return None
            except ValueError:
                pass
        return f"a mapping (or a JSON object string), got {value!r}"
    if isinstance(value, dict):
        return f"{describe(ftype)}, got a mapping"
    if kind == "bool":
        if isinstance(value, bool) or str(value).lower() in {"true", "false", "1", "0", "yes", "no"}:
            return None
        return f"true or false, got {value!r}"
    if kind == "int":
        if isinstance(value, bool):
            return f"an integer, got {value!r}"
        if isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"[-+]?\d+", value.strip())):
            return None
        return f"an integer, got {value!r}"
    if kind == "float":
        if isinstance(value, bool):
            return f"a number, got {value!r}"
        try:
            number = float(value)
        except (TypeError, ValueError):
            return f"a number, got {value!r}"
        # 1e400 reads as inf and would reach ms-swift as `--lr inf`: no argument means infinity or NaN.
        return None if math.isfinite(number) else f"a finite number, got {value!r}"
    if kind == "literal":
        choices = ftype["choices"]
        if value in choices or render_scalar(value) in [render_scalar(c) for c in choices]:
            return None
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"one of {', '.join(map(str, choices))}, got {value!r}{hint}"
    return None  # str / any: every scalar's text is a valid string


def describe(ftype: dict) -> str:
    kind = ftype["kind"]
    if kind == "literal":
        return "one of " + ", ".join(map(str, ftype["choices"]))
    if kind == "union":
        return " or ".join(describe(o) for o in ftype["options"])
    if kind == "list":
        return f"a list of {describe(ftype.get('item', {'kind': 'any'}))}"
    return {"bool": "true/false", "int": "an integer", "float": "a number", "str": "a string",
            "dict": "a mapping", "any": "any value"}.get(kind, kind)


def render_scalar(value: Any) -> str:
    """A value as ms-swift's command line takes it: booleans lower-case, floats shortest."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _short_float(value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def write_snapshot(path: Path = SNAPSHOT) -> Path:
    """Regenerate the bundled snapshot from the installed ms-swift (run after upgrading ms-swift)."""
    version = installed_version()
    if version is None:
        raise RuntimeError("ms-swift is not installed")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"ms_swift": version, "classes": extract_all()}, indent=0, sort_keys=False) + "\n")
    return path


if __name__ == "__main__":
    print(write_snapshot())


def _short_float(value: float) -> str:
    """The shorter of Python's repr and exponent notation: 0.0001 -> 1e-4, 0.05 stays 0.05."""
    plain = repr(value)
    if value != value or value in (float("inf"), float("-inf")) or value == 0:
        return plain
    for digits in range(17):
        text = f"{value:.{digits}e}"
        if float(text) == value:
            break
    mantissa, exp = text.split("e")
    sign = "-" if exp.startswith("-") else ""
    exp_text = f"{mantissa}e{sign}{exp.lstrip('+-').lstrip('0') or '0'}"
    return exp_text if len(exp_text) < len(plain) else plain
