"""mcore-bridge 1.6.3's own refusals in ms-swift 4.6's Megatron model build (issue #21 audit): lora-etp and
mcore-bridge-config (and apply_rope_fusion with MTP layers, which mcore-bridge resets, planning clean). Each test takes a published working setup, changes the flags that make
mcore-bridge raise, asserts the rule names the culprit, and that the nearest legal variant passes."""

from __future__ import annotations

import pytest

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"
QWEN3_MOE = "ms-swift-example-lora-moe.yaml"  # Qwen3-30B-A3B LoRA all-linear, EP=2 on 2 GPUs
QWEN3_NEXT_MTP = "ms-swift-example-megatron-qwen3-next-mtp-lora.yaml"  # text model, rope, mtp_num_layers 1
QWEN35_MTP = "ms-swift-example-megatron-qwen35-moe-full-pp2-mtp.yaml"  # multimodal, mrope, mtp_num_layers 1
FOUR_GPUS = ("launch.gpus_per_node=4", "args.global_batch_size=32")


def _paths(name: str, *overrides: str, code: str) -> set[str]:
    result = make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)
    return {p.path for p in result.errors if p.code == code}


def test_lora_on_experts_refused_with_expert_tensor_parallel():
    assert _paths(QWEN3_MOE, *FOUR_GPUS, "args.expert_tensor_parallel_size=2", code="lora-etp") == {
        "args.expert_tensor_parallel_size"}
    # LoRA that leaves the experts alone never builds an expert LoRA layer; full training has none
    assert _paths(QWEN3_MOE, *FOUR_GPUS, "args.expert_tensor_parallel_size=2",
                  "args.target_modules=[linear_qkv, linear_proj]", code="lora-etp") == set()
    assert _paths(QWEN3_MOE, *FOUR_GPUS, "args.expert_tensor_parallel_size=2", "args.tuner_type=full",
                  code="lora-etp") == set()
    assert _paths(QWEN3_MOE, code="lora-etp") == set()


def _errors(name: str, *overrides: str) -> list[str]:
    return [p.code for p in make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False).errors]


def test_mtp_with_rope_fusion_plans():
    # mcore-bridge's GPTModel.__init__ sets apply_rope_fusion False on a copy of each MTP layer's attention config
    # before MultiTokenPredictionLayer.forward asserts it off: no setup reaches that assert
    assert _errors(QWEN3_NEXT_MTP) == []
    assert _errors(QWEN3_NEXT_MTP, "args.apply_rope_fusion=true") == []
    assert _errors(QWEN35_MTP, "args.megatron_extra_kwargs={apply_rope_fusion: true}") == []


def test_mtp_shared_weights_needs_mtp_layers():
    assert _paths(QWEN3_MOE, "args.mtp_shared_weights=true", code="mcore-bridge-config") == {"args.mtp_shared_weights"}
    assert _paths(QWEN3_NEXT_MTP, "args.mtp_shared_weights=true", code="mcore-bridge-config") == set()


def test_quick_geglu_refused_on_swiglu_model():
    assert _paths(QWEN3_MOE, "args.megatron_extra_kwargs={quick_geglu: true}", code="mcore-bridge-config") == {
        "args.megatron_extra_kwargs"}
    assert _paths(QWEN3_MOE, "args.megatron_extra_kwargs={quick_geglu: true, swiglu: false}",
                  code="mcore-bridge-config") == set()


@pytest.mark.parametrize("name, bad, good", [
    ("moe_layer_freq", "[1, 1]", '"[1]*48"'),
    ("moe_layer_freq", '"[1]*47+[x]"', "1"),
    ("moe_layer_freq", '"[1]*"', '"([1]*3+[1])*12"'),
    ("window_size", "[4095, 0]", '"4095,0"'),
    ("window_attn_skip_freq", "[1, 0]", '"[1,0]*24"'),
    ("no_rope_freq", "2.5", '"4"'),
    ("linear_attention_freq", '"4a"', "4"),
])
def test_pattern_fields_in_extra_kwargs(name, bad, good):
    def paths(value):
        return _paths(QWEN3_MOE, f"args.megatron_extra_kwargs={{{name}: {value}}}", code="mcore-bridge-config")

    assert paths(bad) == {"args.megatron_extra_kwargs"}
    assert paths(good) == set()


def test_quick_geglu_is_judged_against_the_swiglu_the_parser_sets():
    """mcore-bridge's parser turns swiglu off for gemma4 (and gpt_oss, nemotron_h): quick_geglu there is no SwiGLU
    clash; a DeepSeek model (SwiGLU) is still refused."""
    from swift_ext.planner.mcore_bridge_rules import mcore_bridge_model_config
    from swift_ext.planner.shape_lookup import resolve_shape
    from swift_ext.msswift import schema as msargs
    from swift_ext.msswift.bound_args import Args

    def refused(model: str) -> bool:
        recipe = load_recipe(WORKING / QWEN3_MOE, [f"args.model={model}", "args.megatron_extra_kwargs={quick_geglu: true}"])
        found = []
        mcore_bridge_model_config(recipe, Args.bind(recipe, msargs.schema_for(recipe.engine, recipe.command)),
                                  resolve_shape(model), None, lambda *a, **k: found.append(a), lambda *a, **k: None)
        return bool(found)

    assert not refused("google/gemma-4-26B-A4B-it")
    assert refused("deepseek-ai/DeepSeek-V3")


def test_a_huge_pattern_repeat_is_left_to_mcore_bridge_not_evaluated():
    """A repeat product beyond a million entries is not evaluated in plan (it would exhaust memory there); int()'s
    own reading decides what an integer is ("1_0" is ten)."""
    from swift_ext.planner.mcore_bridge_rules import _pattern_problem

    assert _pattern_problem("moe_layer_freq", "[1]*9999*9999*9") is None
    assert _pattern_problem("moe_layer_freq", "1_0") is None
    assert _pattern_problem("moe_layer_freq", "²") is not None
    assert _pattern_problem("window_size", "4_095,0") is None


def test_sequential_experts_refused_on_moe_under_mcore_bridge():
    # moe_grouped_gemm false: megatron-core builds SequentialMLP experts, which mcore-bridge 1.6.3's weight bridge
    # reads as the grouped module (linear_fc1.weight{i}) -- AttributeError loading the HF weights (mcore-bridge#38)
    assert _paths(QWEN3_MOE, "args.moe_grouped_gemm=false", code="moe-sequential-experts") == {"args.moe_grouped_gemm"}
    assert _paths(QWEN3_MOE, "args.megatron_extra_kwargs={moe_grouped_gemm: false}",
                  code="moe-sequential-experts") == {"args.megatron_extra_kwargs"}
    assert _paths(QWEN3_MOE, code="moe-sequential-experts") == set()  # ms-swift's default: grouped experts
    assert _paths(QWEN3_MOE, "args.moe_grouped_gemm=true", code="moe-sequential-experts") == set()
    # an mcore checkpoint loaded and no safetensors written: the weight bridge never reads the experts ...
    off = ("args.moe_grouped_gemm=false", "args.mcore_model=/ckpt/mcore", "args.save_safetensors=false")
    assert _paths(QWEN3_MOE, *off, code="moe-sequential-experts") == set()
    # ... unless it loads HF adapters through it (no mcore_adapter): _prepare_peft_model's load_weights(peft_format)
    assert _paths(QWEN3_MOE, *off, "args.adapters=[/ckpt/hf-adapter]",
                  code="moe-sequential-experts") == {"args.moe_grouped_gemm"}
    assert _paths(QWEN3_MOE, *off, "args.adapters=[/ckpt/hf-adapter]", "args.mcore_adapter=/ckpt/mcore-adapter",
                  code="moe-sequential-experts") == set()
    # full DPO builds its reference model from the HF weights unless mcore_ref_model is given (rlhf_mixin.py)
    dpo = "ms-swift-example-dpo-moe.yaml"  # Qwen3-30B-A3B full DPO
    assert _paths(dpo, *off, code="moe-sequential-experts") == {"args.moe_grouped_gemm"}
    assert _paths(dpo, *off, "args.mcore_ref_model=/ckpt/mcore-ref", code="moe-sequential-experts") == set()
    # Megatron-Bridge's own bridge builds and converts the model itself
    assert _paths(QWEN3_MOE, "args.moe_grouped_gemm=false", "args.bridge_backend=megatron-bridge",
                  code="moe-sequential-experts") == set()


def test_sequential_experts_leave_dense_models_alone():
    dense = WORKING / "ms-swift-example-megatron-qwen35-4b-fp8-blockwise.yaml"  # Qwen3.5-4B: no experts
    result = make_plan(load_recipe(dense, ["args.moe_grouped_gemm=false"]), oracle=False)
    assert "moe-sequential-experts" not in {p.code for p in result.errors}


MOONLIGHT_TP2 = "megatron-bridge-moonlight-16b-pretrain-tp2-ep8-precision-aware-bf16-8gpu.yaml"  # MLA, TP=2, SP


def _warned(name: str, *overrides: str, code: str) -> set[str]:
    result = make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)
    return {p.path for p in result.warnings if p.code == code}


def test_lora_on_mla_down_projections_under_tp_and_sp_warns():
    # MLA's linear_kv_down_proj is a duplicated TELinear run on the sequence shard; mcore-bridge 1.6.3 shards its
    # lora_B over TP without a TP gradient sum, so each rank trains its own copy
    lora = ("args.tuner_type=lora", "args.target_modules=[all-linear]")
    assert _warned(MOONLIGHT_TP2, *lora, code="lora-replicated-tp") == {"args.target_modules"}
    assert _warned(MOONLIGHT_TP2, "args.tuner_type=lora", "args.target_modules=[linear_kv_down_proj]",
                   code="lora-replicated-tp") == {"args.target_modules"}
    # the nearest setups that train consistently: without the down projections, TP 1, or full training
    assert _warned(MOONLIGHT_TP2, "args.tuner_type=lora",
                   "args.target_modules=[linear_q_proj, linear_kv_up_proj, linear_proj, linear_fc1, linear_fc2]",
                   code="lora-replicated-tp") == set()
    assert _warned(MOONLIGHT_TP2, *lora, "args.tensor_model_parallel_size=1", code="lora-replicated-tp") == set()
    assert _warned(MOONLIGHT_TP2, code="lora-replicated-tp") == set()
