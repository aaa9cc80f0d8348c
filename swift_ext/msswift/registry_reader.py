"""ms-swift's model and template registries, read from its installed source with `ast` (no import: importing
ms-swift's registry pulls in torch and takes seconds).

ms-swift picks a model's template from its registry: `swift/model/models/*.py` call
`register_model(ModelMeta(model_type, [ModelGroup([Model(ms_id, hf_id), ...], template=...)], template=...))`,
`swift/model/model_meta.py: get_matched_model_meta` matches the last component of the model id or path
(lower-cased) against those ids, first registered first, and a matched group's template overrides the
meta's; `swift/template/register.py: get_template_meta` falls back to the only candidate template. Templates
are registered by `register_template(XTemplateMeta(template_type, ..., template_cls=Cls))` in
`swift/template/templates/*.py`, and `Cls.support_padding_free` (inherited; `Template`'s is None) says
whether the template can pack (`swift/pipelines/train/sft.py: SwiftSft._prepare_template`).

`build_table()` returns the facts the plan needs, as plain JSON; swift_ext.msswift.model_table ships it.
"""

from __future__ import annotations

import ast
from typing import Any

from swift_ext.msswift.source_reader import _dotted, _SourceReader

MODELS_PKG = "swift.model.models"
TEMPLATES_PKG = "swift.template.templates"
# ModelMeta's positional fields, in order (swift/model/model_meta.py: ModelMeta).
MODEL_META_FIELDS = ("model_type", "model_groups", "loader", "template")
MODEL_GROUP_FIELDS = ("models", "template")
MODEL_FIELDS = ("ms_model_id", "hf_model_id", "model_path")


def _constants(reader: _SourceReader, module: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """{attribute: value} over every class of a constant.py, and {class: its own attribute names}."""
    tree, _ = reader.parse(module)
    values: dict[str, str] = {}
    per_class: dict[str, set[str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        names = per_class.setdefault(node.name, set())
        for stmt in node.body:
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                    and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)):
                values[stmt.targets[0].id] = stmt.value.value
                names.add(stmt.targets[0].id)
    return values, per_class


def _submodules(reader: _SourceReader, package: str) -> list[str]:
    """The package's submodules: those its __init__ imports, in that order (registration order, which decides
    which model type a name shared by two registrations matches), then the rest (helpers such as
    templates/utils.py, imported by the others, register too)."""
    tree, _ = reader.parse(package)
    out = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
            out.extend(f"{package}.{alias.name}" for alias in node.names)
    rest = sorted(f"{package}.{p.stem}" for p in reader.module_file(package).parent.glob("*.py") if p.stem != "__init__")
    return out + [m for m in rest if m not in out]


def _call_name(node: ast.AST) -> str:
    return (_dotted(node.func) or "").rsplit(".", 1)[-1] if isinstance(node, ast.Call) else ""


def _registration(node: ast.AST, function: str) -> bool:
    # `register_model(...)` itself, not vLLM's `ModelRegistry.register_model(...)`
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == function


def _args(call: ast.Call, positional: tuple[str, ...]) -> dict[str, ast.expr]:
    out = dict(zip(positional, call.args))
    out.update({k.arg: k.value for k in call.keywords if k.arg})
    return out


class _RegistryReader:
    def __init__(self) -> None:
        self.reader = _SourceReader()
        self.template_consts, _ = _constants(self.reader, "swift.template.constant")
        self.model_consts, classes = _constants(self.reader, "swift.model.constant")
        self.mllm_types = classes.get("MLLMModelType", set())
        self.rm_types = classes.get("RMModelType", set())  # ModelMeta.__post_init__ sets is_reward for these
        self.skipped: list[str] = []  # registrations this reader could not follow (the test shows them)

    def _const(self, node: ast.expr | None, table: dict[str, str]) -> str | None:
        if node is None:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, type(None))):
            return node.value
        if isinstance(node, ast.Attribute) and node.attr in table:
            return table[node.attr]
        raise ValueError(ast.unparse(node))

    def _module_names(self, module: str) -> dict[str, ast.expr]:
        tree, _ = self.reader.parse(module)
        return {node.targets[0].id: node.value for node in tree.body
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)}

    # -- templates ---------------------------------------------------------------------------------
    def _support_padding_free(self, module: str, cls_name: str) -> bool | None:
        found = self.reader.resolve_name(module, cls_name)
        if found is None:
            raise ValueError(f"class {cls_name}")
        for _, node in self.reader.mro(*found):
            for stmt in node.body:
                if (isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "support_padding_free"
                                                         for t in stmt.targets)):
                    return ast.literal_eval(stmt.value)
        return None

    def _meta_template_cls(self, module: str, meta_name: str) -> tuple[str, str]:
        """(module, class name) of a TemplateMeta subclass's default template_cls."""
        found = self.reader.resolve_name(module, meta_name)
        if found is None:
            raise ValueError(f"class {meta_name}")
        for mod, node in self.reader.mro(*found):
            for stmt in node.body:
                if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                        and stmt.target.id == "template_cls" and stmt.value is not None):
                    return mod, _dotted(stmt.value)
        raise ValueError(f"no template_cls default on {meta_name}")

    def templates(self) -> dict[str, bool | None]:
        out: dict[str, bool | None] = {}
        for module in _submodules(self.reader, TEMPLATES_PKG):
            tree, _ = self.reader.parse(module)
            for node in ast.walk(tree):
                if not _registration(node, "register_template") or not node.args:
                    continue
                meta = node.args[0]
                try:
                    kw = _args(meta, ("template_type",))
                    template_type = self._const(kw["template_type"], self.template_consts)
                    if "template_cls" in kw:
                        cls_module, cls_name = module, _dotted(kw["template_cls"])
                    else:
                        cls_module, cls_name = self._meta_template_cls(module, _call_name(meta))
                    out[template_type] = self._support_padding_free(cls_module, cls_name)
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    self.skipped.append(f"{module}:{node.lineno} register_template ({exc})")
        return out

    # -- models ------------------------------------------------------------------------------------
    def _list(self, node: ast.expr, names: dict[str, ast.expr]) -> list[ast.expr]:
        if isinstance(node, ast.Name) and node.id in names:
            node = names[node.id]
        if isinstance(node, (ast.List, ast.Tuple)):
            return list(node.elts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self._list(node.left, names) + self._list(node.right, names)
        if isinstance(node, ast.Call):  # a single ModelGroup not wrapped in a list (ModelMeta.__post_init__)
            return [node]
        raise ValueError(ast.unparse(node)[:80])

    def models(self) -> tuple[dict[str, dict], dict[str, dict]]:
        """({model name, lower case: {model_type, template}},
        {model_type: {template, multimodal, reward, task_type, mcore_model_type}})."""
        by_name: dict[str, dict] = {}
        by_type: dict[str, dict] = {}
        for module in _submodules(self.reader, MODELS_PKG):
            tree, _ = self.reader.parse(module)
            names = self._module_names(module)
            for node in ast.walk(tree):
                if not _registration(node, "register_model"):
                    continue
                if not node.args or _call_name(node.args[0]) != "ModelMeta":
                    self.skipped.append(f"{module}:{node.lineno} register_model (not a ModelMeta call)")
                    continue
                try:
                    self._register(node.args[0], names, by_name, by_type)
                except (ValueError, KeyError, TypeError) as exc:
                    self.skipped.append(f"{module}:{node.lineno} register_model ({exc})")
        return by_name, by_type

    def _register(self, meta: ast.Call, names, by_name: dict, by_type: dict) -> None:
        kw = _args(meta, MODEL_META_FIELDS)
        model_type = self._const(kw["model_type"], self.model_consts)
        meta_template = self._const(kw.get("template"), self.template_consts)
        multimodal = model_type in self.mllm_types or _literal_true(kw.get("is_multimodal"))
        reward = model_type in self.rm_types or _literal_true(kw.get("is_reward"))
        groups = []
        for group in self._list(kw["model_groups"], names):
            gkw = _args(group, MODEL_GROUP_FIELDS)
            ids = []
            for model in self._list(gkw["models"], names):
                mkw = _args(model, MODEL_FIELDS)
                ids += [v.value for k in MODEL_FIELDS if isinstance(v := mkw.get(k), ast.Constant) and v.value]
            groups.append((ids, self._const(gkw.get("template"), self.template_consts)))
        candidates = list(dict.fromkeys(t for t in [meta_template] + [g for _, g in groups] if t is not None))
        # get_template_meta: the meta's template, else its only candidate
        default = meta_template or (candidates[0] if len(candidates) == 1 else None)
        # mcore_model_type: the Megatron model ms-swift builds for it, instead of mcore-bridge's mapping of
        # model_type (swift/megatron/arguments/megatron_args.py MegatronArguments._get_mcore_model_type)
        by_type[model_type] = {"template": default, "multimodal": multimodal, "reward": reward,
                               "task_type": self._const(kw.get("task_type"), {}),
                               "mcore_model_type": self._const(kw.get("mcore_model_type"), {}),
                               "architectures": self._architectures(kw.get("architectures"), names)}
        for ids, group_template in groups:
            for model_id in ids:
                name = model_id.rsplit("/", 1)[-1].lower()
                by_name.setdefault(name, {"model_type": model_type, "template": group_template or default})

    def _architectures(self, node: ast.expr | None, names) -> list[str] | None:
        """ModelMeta.architectures as written: [] when absent (model_meta.py _get_arch_mapping files such a type
        under 'null'), None when not a list of string literals (unknown here)."""
        if node is None:
            return []
        try:
            items = self._list(node, names)
        except ValueError:
            return None
        out = [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]
        return out if len(out) == len(items) else None


def _literal_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def build_table() -> dict[str, Any]:
    """{templates, model_types, models, skipped} from the installed ms-swift source."""
    reader = _RegistryReader()
    templates = reader.templates()
    models, model_types = reader.models()
    return {"templates": templates, "model_types": model_types, "models": models, "skipped": reader.skipped}
