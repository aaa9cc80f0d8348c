"""swift-ext reads ms-swift's argument dataclasses from source; check that against the real thing."""

from __future__ import annotations

import dataclasses
import json

import pytest

from swift_ext.msswift import schema as msargs


@pytest.fixture(scope="module")
def extracted():
    return msargs.extract_all()


@pytest.mark.parametrize("module, cls", [("swift.arguments", "SftArguments"), ("swift.arguments", "RLHFArguments"),
                                         ("swift.arguments", "InferArguments"), ("swift.arguments", "ExportArguments")])
def test_fields_match_the_imported_dataclass(extracted, module, cls):
    """These classes import on CPU, so dataclasses.fields() is the ground truth for the AST reader."""
    import importlib

    real_cls = getattr(importlib.import_module(module), cls)
    real = [f for f in dataclasses.fields(real_cls) if f.init]
    mine = extracted[cls]
    assert [f.name for f in real] == list(mine)  # same names, same order (same MRO walk)
    for f in real:
        if f.default is not dataclasses.MISSING and not isinstance(mine[f.name]["default"], dict):
            assert mine[f.name]["default"] == f.default, f.name
        choices = _literal_choices(f.type)
        if choices is not None and mine[f.name]["type"]["kind"] == "literal":
            assert set(mine[f.name]["type"]["choices"]) == choices, f.name


def _literal_choices(tp):
    import typing

    if typing.get_origin(tp) is typing.Literal:
        return {c for c in typing.get_args(tp) if c is not None}
    if typing.get_origin(tp) is typing.Union:
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(inner) == 1:
            return _literal_choices(inner[0])
    return None


def test_megatron_classes_are_read_without_cuda(extracted):
    sft = extracted["MegatronSftArguments"]
    rlhf = extracted["MegatronRLHFArguments"]
    # Own fields, fields of MegatronArguments, of its mixins, and of BaseArguments (ms-swift side).
    for name in ["add_version", "tensor_model_parallel_size", "expert_model_parallel_size", "mtp_num_layers",
                 "fp8_recipe", "recompute_granularity", "tuner_type", "lora_rank", "model", "dataset",
                 "template", "max_length", "external_plugins", "linear_decoupled_in_proj"]:
        assert name in sft, name
    assert set(sft) <= set(rlhf)
    assert rlhf["rlhf_type"]["default"] == "dpo"
    assert rlhf["vllm_mode"]["type"]["choices"] == ["server", "colocate"]
    assert sft["recompute_granularity"]["type"]["choices"] == ["selective", "full", "none"]
    assert "mcore_bridge" not in __import__("sys").modules


def test_snapshot_matches_installed_ms_swift(extracted):
    snap = json.loads(msargs.SNAPSHOT.read_text())
    assert snap["ms_swift"] == msargs.installed_version()
    assert snap["classes"] == json.loads(json.dumps(extracted)), "run: python -m swift_ext.msswift.schema"


def test_snapshot_is_used_without_ms_swift(monkeypatch):
    monkeypatch.setenv("SWIFT_EXT_ARGS_SNAPSHOT", "1")
    msargs._load_all.cache_clear()
    try:
        schema = msargs.schema_for("megatron", "sft")
        assert "bundled snapshot" in schema.origin and "mtp_num_layers" in schema.fields
    finally:
        msargs._load_all.cache_clear()


@pytest.mark.parametrize("ftype, good, bad", [
    ({"kind": "int"}, [1, "2", -3], [1.5, "x", True, [1]]),
    ({"kind": "float"}, [1, 1.5, "1e-4"], ["x", True]),
    ({"kind": "bool"}, [True, "false", "TRUE"], ["maybe", 2]),
    ({"kind": "literal", "choices": ["a", "b"]}, ["a"], ["c", 1]),
    ({"kind": "list", "item": {"kind": "float"}}, [[1, 2.5], 1e-6], [["x"]]),
    ({"kind": "dict"}, [{"a": 1}, '{"a": 1}'], ["x", [1]]),
    ({"kind": "union", "options": [{"kind": "int"}, {"kind": "literal", "choices": ["auto"]}]}, [3, "auto"], ["x"]),
])
def test_check_value(ftype, good, bad):
    assert all(msargs.check_value(ftype, v) is None for v in good)
    assert all(msargs.check_value(ftype, v) for v in bad)


@pytest.mark.parametrize("value, text", [(1e-6, "1e-6"), (5e-05, "5e-5"), (1e-4, "1e-4"), (0.05, "0.05"), (1.0, "1.0"), (1e10, "1e10"), (123.5, "123.5"),
                                         (True, "true"), (False, "false"), (2, "2"), ({"a": 1}, '{"a":1}')])
def test_render_scalar(value, text):
    assert msargs.render_scalar(value) == text
