"""Reading ms-swift's argument dataclasses out of its installed source files with `ast`, without importing
it (importing ms-swift pulls in torch, and its Megatron arguments need transformer_engine): base classes
are followed across modules (ms-swift -> transformers) and each dataclass's field list is built the way
`dataclasses` does (reverse MRO, later wins). swift_ext.msswift.schema caches and serves the result."""

from __future__ import annotations

import ast
import importlib.util
import re
from functools import lru_cache
from pathlib import Path
from typing import Any



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
