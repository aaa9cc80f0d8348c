"""Rules of ms-swift's Megatron model build beyond MoE (planner/attention_rules.py, warn_rules.py
megatron_lora_hf_names) on published examples and the issue fixtures, with one flag changed: the rule fires on
what ms-swift or peft refuses and stays quiet on the published setting."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"


def _findings(name: str, *overrides: str):
    result = make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)
    return {(p.code, p.path) for p in result.errors}, {(p.code, p.path) for p in result.warnings}



def test_gpt_oss_attention_sinks_refuse_the_flash_backend_even_by_default():
    issue = FIXTURES / "issues" / "megatron-lm-1971-expert-bias-softmax-router.yaml"

    def attention_errors(*overrides):
        result = make_plan(load_recipe(issue, ["args.megatron_extra_kwargs=null", *overrides]), oracle=False)
        return {(p.code, p.path) for p in result.errors if p.code == "attention-backend"}

    assert attention_errors() == set()  # unfused, as ms-swift's gpt-oss example
    assert attention_errors("args.attention_backend=null") == {("attention-backend", "args.attention_backend")}
    assert attention_errors("args.attention_backend=flash_3") == {("attention-backend", "args.attention_backend")}
    errors, _ = _findings("ms-swift-example-lora-moe.yaml")  # Qwen3-30B-A3B with flash: no sinks
    assert not {e for e in errors if e[0] == "attention-backend"}


def test_megatron_lora_with_transformers_module_names_is_refused_and_megatron_names_pass():
    hf = _findings("ms-swift-example-lora-moe.yaml", "args.target_modules=[q_proj,k_proj,v_proj,o_proj]")[0]
    assert ("lora-targets", "args.target_modules") in hf
    mcore = _findings("ms-swift-example-lora-moe.yaml", "args.target_modules=[linear_qkv,linear_proj]")[0]
    assert not {e for e in mcore if e[0] == "lora-targets"}
    # a multimodal model keeps its transformers vision tower: not judged
    vl = _findings("ms-swift-example-multimodal-moe-lora.yaml", "args.target_modules=[q_proj,v_proj]")[0]
    assert not {e for e in vl if e[0] == "lora-targets"}


def test_megatron_lora_names_matching_no_module_are_refused_alone_and_warned_beside_real_ones():
    from swift_ext.planner.warn_rules import MEGATRON_MODULE_NAMES

    # peft 0.20 matches by name or dotted suffix: the real check, on a module tree with Megatron's names
    import torch
    from peft import LoraConfig, get_peft_model

    class Attn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear_qkv, self.linear_proj = torch.nn.Linear(4, 12), torch.nn.Linear(4, 4)

    class Mlp(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear_fc1, self.linear_fc2 = torch.nn.Linear(4, 8), torch.nn.Linear(8, 4)

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attention, self.mlp = Attn(), Mlp()

    assert {"linear_qkv", "linear_proj", "linear_fc1", "linear_fc2", "self_attention", "mlp"} <= MEGATRON_MODULE_NAMES
    with pytest.raises(ValueError, match="not found in the base model"):
        get_peft_model(Layer(), LoraConfig(r=2, target_modules=["a", "b"]))
    partial = get_peft_model(Layer(), LoraConfig(r=2, target_modules=["linear_qkv", "linear_fc1x"]))
    assert partial.base_model.targeted_module_names == ["self_attention.linear_qkv"]

    none = _findings("ms-swift-example-lora-moe.yaml", "args.target_modules=[a,b]")[0]
    assert ("lora-targets", "args.target_modules") in none
    errors, warnings = _findings("ms-swift-example-lora-moe.yaml", "args.target_modules=[linear_qkv,linear_fc1x]")
    assert not {e for e in errors if e[0] == "lora-targets"}
    assert ("lora-targets", "args.target_modules") in warnings
    # dotted suffixes, MLA and router names, and keywords are Megatron's: quiet
    for ok in ("[self_attention.linear_qkv,linear_fc2]", "[linear_q_proj,linear_kv_down_proj]", "[all-linear,router]"):
        errors, warnings = _findings("ms-swift-example-lora-moe.yaml", f"args.target_modules={ok}")
        assert not {e for e in errors | warnings if e[0] == "lora-targets"}, ok
    # beside all-linear an unknown name changes nothing; a multimodal model's vision names are not judged
    _, warnings = _findings("ms-swift-example-lora-moe.yaml", "args.target_modules=[all-linear,linear_fc1x]")
    assert not {e for e in warnings if e[0] == "lora-targets"}
    errors, warnings = _findings("ms-swift-example-multimodal-moe-lora.yaml", "args.target_modules=[attn.qkv,foo]")
    assert not {e for e in errors | warnings if e[0] == "lora-targets"}


# --- megatron_extra_kwargs (msswift/input_rules.py megatron_extra_kwargs) --------------------------------------------

GPT_OSS = "verl-example-gptoss-20b-megatron-tp8.yaml"


def _extra(kwargs: str):
    result = make_plan(load_recipe(WORKING / GPT_OSS, [f"args.megatron_extra_kwargs={kwargs}"]), oracle=False)
    pick = lambda found: [p for p in found if p.code == "megatron-extra-kwargs"]  # noqa: E731
    return pick(result.errors), pick(result.warnings)


def test_an_extra_kwarg_no_model_config_field_takes_is_refused_as_megatron_core_refuses_it():
    import dataclasses

    import pytest
    from megatron.core.transformer.transformer_config import TransformerConfig

    # ms-swift 4.6 get_mcore_model_config ends in config_cls(**kwargs): the real dataclass constructor refuses the key.
    with pytest.raises(TypeError, match="moe_router_enable_expert_bais"):
        TransformerConfig(moe_router_enable_expert_bais=True)
    errors, _ = _extra('{"moe_router_enable_expert_bais": true}')
    assert len(errors) == 1 and errors[0].path == "args.megatron_extra_kwargs"
    assert "'moe_router_enable_expert_bais'" in errors[0].message
    assert "moe_router_enable_expert_bias" in errors[0].hint  # the nearest field, by difflib
    # An OptimizerConfig field: ms-swift builds the optimizer config from args only, so it too is refused, with
    # the argument to set instead.
    errors, _ = _extra('{"use_precision_aware_optimizer": true}')
    assert len(errors) == 1 and "set `use_precision_aware_optimizer: true` in args" in errors[0].hint
    # Every init field of the installed TransformerConfig passes (the field table is read from its source).
    for f in dataclasses.fields(TransformerConfig):
        if f.init and f.name in ("moe_router_enable_expert_bias", "moe_aux_loss_coeff", "recompute_modules"):
            assert _extra(f'{{"{f.name}": 1}}')[0] == [], f.name
    from swift_ext.msswift.model_config_fields import model_config_fields
    assert {f.name for f in dataclasses.fields(TransformerConfig) if f.init} <= model_config_fields()[0]


def test_an_extra_kwarg_that_is_also_an_argument_wins_in_the_model_config_and_is_said():
    # the recipe says TP 8; get_mcore_model_config copies it, then the extra kwargs over it
    errors, warnings = _extra('{"tensor_model_parallel_size": 4}')
    assert errors == [] and len(warnings) == 1
    assert "takes 4" in warnings[0].message and "keeps 8" in warnings[0].message
    assert _extra('{"tensor_model_parallel_size": 8}') == ([], [])  # the same value: nothing differs
    assert _extra('{"moe_router_enable_expert_bias": false}') == ([], [])  # not an ms-swift argument: no conflict


def test_an_unknown_extra_kwarg_with_a_plugin_is_said_not_refused(tmp_path):
    # get_mcore_model_config builds getattr(args.megatron_model_meta, 'config_cls', ModelConfig): a plugin can register
    # a model meta whose config class takes more fields, so with external_plugins the key may be a real field.
    plugin = tmp_path / "plugin.py"
    plugin.write_text("# registers a model meta with its own config_cls\n")
    overrides = ['args.megatron_extra_kwargs={"talker_loss_weight": 1.0}', f"args.external_plugins=[{plugin}]"]
    result = make_plan(load_recipe(WORKING / GPT_OSS, overrides), oracle=False)
    errors = [p for p in result.errors if p.code == "megatron-extra-kwargs"]
    warnings = [p for p in result.warnings if p.code == "megatron-extra-kwargs"]
    assert errors == [] and len(warnings) == 1 and "'talker_loss_weight'" in warnings[0].message
    errors, _ = _extra('{"talker_loss_weight": 1.0}')  # no plugin: ModelConfig(**kwargs) is all there is
    assert len(errors) == 1


def test_an_extra_kwarg_equal_to_the_argument_as_ms_swift_passes_it_is_not_said():
    # imported scripts give moe_aux_loss_coeff as a list ([0.001]); MegatronArguments.__post_init__ makes a one-item
    # list its item, so the extra kwarg 0.001 changes nothing
    overrides = ["args.moe_aux_loss_coeff=[0.001]", 'args.megatron_extra_kwargs={"moe_aux_loss_coeff": 0.001}']
    result = make_plan(load_recipe(WORKING / GPT_OSS, overrides), oracle=False)
    assert not [p for p in result.warnings + result.errors if p.code == "megatron-extra-kwargs"]
    assert len(_extra('{"moe_aux_loss_coeff": 0.01}')[1]) == 1  # a different value still is


def test_model_config_fields_of_the_pinned_release_pass_and_later_ones_are_said():
    # mcore-bridge is not installed here: the field list is the shipped one, read from the 1.6.3 wheel (ms-swift 4.6's
    # floor). hybrid_layer_pattern and hc_count are ModelConfig fields in 1.6.3 (mcore_bridge/config/model_config.py)
    # that a list read from an earlier commit lacked, refusing a setup that builds.
    from swift_ext.msswift.model_config_fields import TABLE, later_model_config_fields, model_config_fields

    table = json.loads(TABLE.read_text())
    assert table["mcore_bridge"] == "1.6.3" and "sha256" in table["source"]
    fields, where = model_config_fields()
    if where.endswith("(installed)"):
        pytest.skip("mcore-bridge is installed: its own source is read")
    for name in ("hybrid_layer_pattern", "hc_count", "ple_layer_ids", "indexer_n_heads", "eos_token_id"):
        assert name in table["fields"] and name in fields, name
        assert _extra(f'{{"{name}": 1}}') == ([], []), name
    # engram_enabled is a ModelConfig field from 1.6.5 on: said, with the release that has it; not refused.
    assert later_model_config_fields()["engram_enabled"] == "1.6.5"
    errors, warnings = _extra('{"engram_enabled": true}')
    assert errors == [] and len(warnings) == 1
    assert "1.6.5" in warnings[0].message and "mcore-bridge>=1.6.5" in warnings[0].hint


def test_shipped_model_config_fields_regenerate_from_the_wheels(tmp_path):
    # The shipped table is what `python -m swift_ext.msswift.model_config_fields WHEEL...` reads; the wheels are not
    # at hand in the tests, so the reader runs on a package directory shaped like a release: ModelConfig's annotated
    # names are its fields, not a ClassVar, an init=False field or an unannotated class attribute.
    from swift_ext.msswift.model_config_fields import read_own_fields

    pkg = tmp_path / "mcore_bridge"
    (pkg / "config").mkdir(parents=True)
    (pkg / "model").mkdir()
    (pkg / "model" / "register.py").write_text("")
    (pkg / "version.py").write_text("__version__ = '9.9.9'\n")
    (pkg / "config" / "model_config.py").write_text(
        "from dataclasses import dataclass, field\nfrom typing import ClassVar\n\n\n@dataclass\n"
        "class ModelConfig(TransformerConfig):\n    a: int = 1\n    b: ClassVar[int] = 2\n"
        "    c: int = field(default=0, init=False)\n    _cache = None\n    d: 'str' = 'x'\n")
    read = read_own_fields(pkg)
    assert read["fields"] == ["a", "d"] and read["mcore_bridge"] == "9.9.9"
    assert read["class"] == "mcore_bridge/config/model_config.py:6 ModelConfig"


def _codes(found, code):
    return {path for c, path in found if c == code}


def test_flash_backend_is_refused_where_no_flash_attention_kernel_takes_the_heads():
    # ms-swift's Moonlight example (MLA, attention_backend flash) on a Hopper card: flash-attn 3 runs MLA there.
    moonlight = "ms-swift-example-megatron-moonlight-deepseek-v3-pp2-shared-overlap.yaml"
    errors, warnings = _findings(moonlight)
    assert not _codes(errors | warnings, "attention-kernel")
    # The same run on an A100 (sm80): FlashAttention 2 refuses MLA, FlashAttention 3 is sm90 only.
    errors, _ = _findings(moonlight, "launch.gpu=A100-80G")
    assert _codes(errors, "attention-kernel") == {"args.attention_backend"}
    assert not _codes(_findings(moonlight, "launch.gpu=A100-80G", "args.attention_backend=unfused")[0],
                      "attention-kernel")
    # B200 (sm100) is not judged: flash-attn 4 may take MLA there.
    assert not _codes(_findings(moonlight, "launch.gpu=B200")[0], "attention-kernel")
    # launch.gpu unset: said, not refused.
    errors, warnings = _findings(moonlight, "launch.gpu=null", "launch.gpu_memory_gib=80")
    assert not _codes(errors, "attention-kernel") and _codes(warnings, "attention-kernel") == {"args.attention_backend"}


def test_flash_backend_and_head_dim_256_depend_on_the_gpu_generation():
    # ms-swift's Qwen3-Next example (full-attention head dim 256, flash): fine on A100 (sm80) and H100.
    qwen3_next = "ms-swift-example-qwen3-next.yaml"
    assert not _codes(_findings(qwen3_next)[0], "attention-kernel")
    # sm89 (L40S, L20, RTX 4090): FlashAttention 2 runs head dims > 192 only on sm80/90/100/120.
    for gpu in ("L40S", "RTX4090", "A10"):
        assert _codes(_findings(qwen3_next, f"launch.gpu={gpu}")[0], "attention-kernel") == {"args.attention_backend"}
    # launch.gpu unset: said, unless gpu_memory_gib names a card outside the table (AMD's stack is not judged).
    errors, warnings = _findings(qwen3_next, "launch.gpu=null")
    assert not _codes(errors, "attention-kernel") and _codes(warnings, "attention-kernel") == {"args.attention_backend"}
    assert not _codes(_findings(qwen3_next, "launch.gpu=null", "launch.gpu_memory_gib=192")[1], "attention-kernel")
    # A head dim of 128 (Qwen3-30B-A3B) runs on sm89; a V100 runs no flash at all.
    assert not _codes(_findings("ms-swift-example-lora-moe.yaml", "launch.gpu=L40S")[0], "attention-kernel")
    assert _codes(_findings("ms-swift-example-lora-moe.yaml", "launch.gpu=V100")[0], "attention-kernel") == {
        "args.attention_backend"}


def test_gemma4_global_heads_past_256_refuse_flash_and_warn_for_fused():
    issue = FIXTURES / "issues" / "transformer-engine-3006-gemma4-head-dim-512-flash.yaml"

    def found(*overrides):
        result = make_plan(load_recipe(issue, list(overrides)), oracle=False)
        return ({p.path for p in result.errors if p.code == "attention-kernel"},
                {p.path for p in result.warnings if p.code == "attention-kernel"})

    assert found() == ({"args.attention_backend"}, set())
    assert found("launch.gpu=B200") == ({"args.attention_backend"}, set())  # no flash-attn takes 512 on any GPU
    assert found("args.attention_backend=fused") == (set(), {"args.attention_backend"})  # cuDNN decides
    assert found("args.attention_backend=auto") == (set(), set())  # padding_free off: TE's unfused kernel is left
    assert found("args.attention_backend=unfused") == (set(), set())


def test_context_parallel_comm_types_ms_swift_cannot_run():
    dense = "ms-swift-example-gkd-dense.yaml"  # Qwen3-8B, TP2 PP2 CP2: 16 query / 4 KV heads per TP rank

    def cp_findings(*overrides):
        errors, warnings = _findings(dense, *overrides)
        return _codes(errors, "cp-comm-type"), _codes(warnings, "cp-comm-type")

    assert cp_findings() == (set(), set())
    assert cp_findings("args.cp_comm_type=a2a+p2p") == ({"args.cp_comm_type"}, set())
    assert cp_findings("args.cp_comm_type=a2a") == (set(), set())  # 16 and 4 heads per rank split over CP 2
    extra = 'args.megatron_extra_kwargs={"cp_comm_type": "a2a+p2p"}'
    assert cp_findings(extra) == ({"args.megatron_extra_kwargs"}, set())
    # all_gather over THD (padding_free, ms-swift's default) depends on the Transformer Engine release: said.
    assert cp_findings("args.cp_comm_type=all_gather") == (set(), {"args.cp_comm_type"})
    assert cp_findings("args.cp_comm_type=all_gather", "args.padding_free=false", "args.packing=false") == (
        set(), set())
    # CP 1: no context-parallel attention, nothing to judge.
    assert cp_findings("args.cp_comm_type=a2a+p2p", "args.context_parallel_size=1",
                       "launch.gpus_per_node=4") == (set(), set())
