"""The keyword arguments ms-swift 4.6's Megatron model config accepts: where `megatron_extra_kwargs` goes.

swift/megatron/model/utils.py get_mcore_model_config builds the kwargs of mcore-bridge's ModelConfig (from the HF
config, then every ModelConfig field the arguments namespace has), `kwargs.update(args.megatron_extra_kwargs)` last,
and calls `config_cls(**kwargs)`: a plain dataclass constructor, so a key that is not one of its init fields is a
TypeError ("__init__() got an unexpected keyword argument") when the model is built, after the job has queued and
started. No other consumer reads megatron_extra_kwargs (not the OptimizerConfig -- megatron/trainers/base.py
builds it from the arguments namespace only -- nor the DDP config). `config_cls` is
`getattr(args.megatron_model_meta, 'config_cls', ModelConfig)`: mcore-bridge 1.6.3's ModelMeta has no config_cls
(always ModelConfig, a dataclass subclass of megatron-core's TransformerConfig); 1.6.5 adds one
(model/register.py:43, ModelConfig by default; only its deepseek_v41 registration names MLAModelConfig).

The field names are read with `ast` (no torch import): from mcore_bridge.config.model_config when mcore-bridge is
installed, else from the shipped mcore-bridge-model-config.json -- ModelConfig's own fields in the release ms-swift
4.6 pins as its floor (`mcore-bridge>=1.6.3`) and in later releases, generated from their wheels by
`python -m swift_ext.msswift.model_config_fields PINNED [LATER...]` (each `pip download --no-deps
mcore-bridge==X`, or an unpacked package; the file records each wheel's name and sha256) -- plus megatron-core's
TransformerConfig read from its installed source. A field only a later release has is said, not refused
(`later_model_config_fields`): ms-swift accepts any mcore-bridge from the floor up.
"""

from __future__ import annotations

import ast
import json
import sys
from functools import lru_cache
from pathlib import Path

TABLE = Path(__file__).parent / "mcore-bridge-model-config.json"
MODEL_CONFIG_FILE = "mcore_bridge/config/model_config.py"
TRANSFORMER_CONFIG = ("megatron.core.transformer.transformer_config", "TransformerConfig")
MODEL_CONFIG = ("mcore_bridge.config.model_config", "ModelConfig")


def read_own_fields(path: Path) -> dict:
    """ModelConfig's own init fields (those it adds to or redeclares over TransformerConfig) in one mcore-bridge
    release: a wheel or an unpacked package (mcore_support._Source reads either and names it with its sha256)."""
    from swift_ext.msswift.mcore_support import _Source
    from swift_ext.msswift.source_reader import _field_default, _is_classvar, _SourceReader

    source = _Source(path)
    tree = source.tree(MODEL_CONFIG_FILE)
    cls = next((node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "ModelConfig"), None)
    if cls is None:
        raise ValueError(f"{source.describe}: no class ModelConfig in {MODEL_CONFIG_FILE}")
    reader = _SourceReader()
    reader._modules[MODEL_CONFIG[0]] = (tree, [])  # the release's own module, read as if installed
    core = {name: f["type"] for name, f in reader.dataclass_fields(*TRANSFORMER_CONFIG).items()}
    fields, retyped = [], []
    for stmt in cls.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)) or _is_classvar(stmt.annotation):
            continue
        if _field_default(stmt.value)[1]:  # field(init=False) is no constructor keyword
            fields.append(stmt.target.id)
        if stmt.target.id in core and reader.type_of(MODEL_CONFIG[0], stmt.annotation) != core[stmt.target.id]:
            retyped.append(stmt.target.id)
    return {"mcore_bridge": source.version(), "source": source.describe,
            "class": f"{MODEL_CONFIG_FILE}:{cls.lineno} ModelConfig", "fields": sorted(fields),
            "retyped": sorted(retyped)}


def generate(path: Path, later: tuple[Path, ...] = ()) -> dict:
    return {**read_own_fields(path), "later_releases": [read_own_fields(p) for p in later]}


@lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(TABLE.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def model_config_fields() -> tuple[frozenset[str], str] | None:
    """(the init field names of the model config ms-swift builds, where they were read), or None when neither
    mcore-bridge nor megatron-core is installed here (the check is then skipped, not guessed)."""
    from swift_ext.msswift.source_reader import _SourceReader

    reader = _SourceReader()
    try:
        return frozenset(reader.dataclass_fields(*MODEL_CONFIG)), "mcore-bridge ModelConfig (installed)"
    except (LookupError, OSError, SyntaxError):
        pass
    try:
        core = frozenset(reader.dataclass_fields(*TRANSFORMER_CONFIG))
    except (LookupError, OSError, SyntaxError):
        return None
    table = _table()
    return (core | frozenset(table["fields"]),
            f"megatron-core TransformerConfig + mcore-bridge {table['mcore_bridge']} ModelConfig ({table['source']})")


def floor_release() -> str:
    """The pinned release the shipped field list was read from ("mcore-bridge 1.6.3")."""
    return f"mcore-bridge {_table()['mcore_bridge']}"


def later_model_config_fields() -> dict[str, str]:
    """{field: the first later mcore-bridge release whose ModelConfig has it} for fields the pinned release lacks;
    empty where mcore-bridge is installed (its own source is then the truth)."""
    found = model_config_fields()
    if found is None or found[1].endswith("(installed)"):
        return {}
    out: dict[str, str] = {}
    for release in _table()["later_releases"]:
        for name in release["fields"]:
            if name not in found[0]:
                out.setdefault(name, release["mcore_bridge"])
    return out



@lru_cache(maxsize=1)
def model_config_types() -> dict[str, dict]:
    """{field: {"type": its declared type as source_reader.type_of describes it, "default": its default}} for the model config fields whose value
    can be judged from megatron-core's TransformerConfig / ModelParallelConfig annotations: every one except those
    mcore-bridge's ModelConfig declares itself with another type, or only it declares (their type is left unknown:
    no finding). {} when megatron-core is not installed here."""
    from swift_ext.msswift.source_reader import _SourceReader

    reader = _SourceReader()
    try:
        core = reader.dataclass_fields(*TRANSFORMER_CONFIG)
    except (LookupError, OSError, SyntaxError):
        return {}
    types = {name: field["type"] for name, field in core.items()}
    found = reader.find_class(*MODEL_CONFIG)
    if found is None:
        # The fields mcore-bridge's ModelConfig declares again with another type than TransformerConfig (the same
        # 15 in the released 1.6.3 and 1.6.5, read from their wheels into the table), most because its
        # __post_init__ converts what it is given (window_size, moe_layer_freq, linear_attention_freq: a string
        # pattern evaluated to ints or a list; moe_router_dtype: 'none' -> None), the rest widened (cp_comm_type
        # str there, str or list here; Optional added): the value that works is not the one either annotation says.
        unknown = frozenset(_table()["retyped"]) | (frozenset(_table()["fields"]) - set(types))
    else:
        module, cls = found
        unknown = set()
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                name = stmt.target.id
                if name not in types or reader.type_of(module, stmt.annotation) != types[name]:
                    unknown.add(name)
    return {name: {"type": kind, "default": core[name]["default"]} for name, kind in types.items()
            if name not in unknown}


def value_fits(value, kind: dict, default=None) -> bool | None:
    """Whether a JSON value (as megatron_extra_kwargs reaches the config: ms-swift passes it as written) fits the
    declared type: True, False, or None when the type cannot say (Any, a class, a callable, a dtype)."""
    k = kind["kind"]
    if k in ("any", "none"):
        return None
    if value is None:
        # Optional, or a field whose own default is None (`pipeline_dtype: torch.dtype = None`), takes null.
        return True if kind.get("optional") or default is None else False
    if k == "union":
        verdicts = [value_fits(value, option) for option in kind["options"]]
        return True if True in verdicts else (None if None in verdicts else False)
    if k == "bool":
        # 0/1 read as megatron-core reads them (truthiness); a string is the trap: "false" is true.
        return isinstance(value, bool) or (type(value) is int and value in (0, 1))
    if k == "int":
        return type(value) is int
    if k == "float":
        return type(value) in (int, float)
    if k == "str":
        return isinstance(value, str)
    if k == "literal":
        return value in kind["choices"] and type(value) in {type(c) for c in kind["choices"]}
    if k == "list":
        if not isinstance(value, list):
            return False
        verdicts = [value_fits(item, kind.get("item", {"kind": "any"})) for item in value]
        return False if False in verdicts else (None if None in verdicts else True)
    if k == "dict":
        return isinstance(value, dict)
    return None


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m swift_ext.msswift.model_config_fields PINNED_WHEEL [LATER_WHEEL...]")
    TABLE.write_text(json.dumps(generate(Path(sys.argv[1]), tuple(map(Path, sys.argv[2:]))), indent=1) + "\n",
                     encoding="utf-8")
