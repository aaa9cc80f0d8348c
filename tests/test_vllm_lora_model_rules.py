"""vllm-lora-model: a vLLM started with LoRA for Qwen3-VL needs a release that keeps the vision tower out of LoRA
(spec/support.py vllm-lora-qwen3_vl: vLLM 0.11.0's get_mm_mapping misses it, vllm-project/vllm#27027 fixed it for
0.11.1). Two ways ms-swift starts such an engine: the colocated rollout with vllm_enable_lora
(planner/rollout_rules.py), and swift-ext's eval.backend vllm over engine swift's LoRA checkpoints
(planner/eval_rules.py). Judged only where the recipe names the target vLLM (vLLM is not installed here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

ISSUES = Path(__file__).parent / "fixtures" / "issues"
GRPO = ISSUES / "ms-swift-6670-qwen3-vl-grpo-vllm-enable-lora-0110.yaml"
EVAL = ISSUES / "vllm-27669-qwen3-vl-lora-eval-vllm-0110.yaml"


def plan_of(path, *overrides):
    return make_plan(load_recipe(path, list(overrides)), oracle=False)


def found(problems) -> list:
    return [p for p in problems if p.code == "vllm-lora-model"]


def test_the_colocated_engine_with_lora_on_vllm_0110_is_refused_on_vllm_enable_lora():
    (error,) = found(plan_of(GRPO).errors)
    assert error.path == "args.vllm_enable_lora" and "0.11.0 < 0.11.1" in error.message


@pytest.mark.parametrize("runs", [("env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.11.1",),   # the fixed mapping
                                  ("env.SWIFT_EXT_TARGET_VERSIONS=megatron-core=0.16.1",),  # no vLLM version: no verdict
                                  ("args.vllm_enable_lora=false",),                 # merged weights, no LoRA engine
                                  ("args.tuner_type=full",),                        # no adapter to load
                                  ("args.vllm_mode=server",),                       # `swift rollout`'s own vLLM
                                  ("args.model=Qwen/Qwen2.5-VL-3B-Instruct",)])     # a mapping 0.11.0 gets right
def test_a_fixed_vllm_or_an_engine_without_lora_is_not_refused(runs):
    assert not found(plan_of(GRPO, *runs).errors)


def test_the_moe_variant_shares_the_mapping():
    assert found(plan_of(GRPO, "args.model=Qwen/Qwen3-VL-30B-A3B-Instruct").errors)


def test_vllm_evaluation_of_lora_checkpoints_on_vllm_0110_is_refused_on_eval_backend():
    (error,) = found(plan_of(EVAL).errors)
    assert error.path == "eval.backend"


@pytest.mark.parametrize("runs", [("eval.backend=transformers",), ("args.tuner_type=full",),
                                  ("env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.11.1",)])
def test_vllm_evaluation_without_lora_or_on_a_fixed_vllm_is_not_refused(runs):
    assert not found(plan_of(EVAL, *runs).errors)


def test_qwen35_with_lora_on_vllm_0170_is_refused_and_a_later_vllm_is_not():
    qwen35 = ("args.model=Qwen/Qwen3.5-9B",)
    (error,) = found(plan_of(GRPO, *qwen35, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.17.0").errors)
    assert error.path == "args.vllm_enable_lora" and "IndexError" in error.message
    assert not found(plan_of(GRPO, *qwen35, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.18.0").errors)
    assert not found(plan_of(GRPO, *qwen35, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.17.0",
                             "args.vllm_enable_lora=false").errors)
