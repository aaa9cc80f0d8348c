"""planner/mcore_bridge_rules.py lora_rank_under_fp8 (lora-fp8): mcore-bridge 1.6.3 runs the LoRA adapters outside FP8
autocast only with fp8_param_gather; otherwise lora_B's [tokens, rank] input meets Transformer Engine's FP8 GEMM check
(last dimension divisible by 16), so a rank that is not a multiple of 16 -- ms-swift's default 8 -- stops the first
forward. Each test changes a published working setup (ms-swift's own FP8 LoRA example: rank 16, fp8_param_gather)."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"
FP8_LORA = "ms-swift-example-megatron-qwen35-4b-fp8-lora-mtp-tp2.yaml"  # blockwise e4m3, fp8_param_gather, rank 16


def _errors(*overrides: str) -> set[str]:
    result = make_plan(load_recipe(WORKING / FP8_LORA, list(overrides)), oracle=False)
    return {p.path for p in result.errors if p.code == "lora-fp8"}


def test_a_rank_not_a_multiple_of_16_under_fp8_without_param_gather_is_refused():
    assert _errors("args.fp8_param_gather=false", "args.lora_rank=8") == {"args.lora_rank"}
    assert _errors("args.fp8_param_gather=false", "args.lora_rank=null") == {"args.lora_rank"}  # default 8
    assert _errors("args.fp8_param_gather=false", "args.lora_rank=24") == {"args.lora_rank"}


def test_param_gather_or_a_multiple_of_16_or_no_fp8_builds():
    assert _errors() == set()  # the published example: fp8_param_gather, rank 16
    assert _errors("args.lora_rank=8") == set()  # fp8_param_gather keeps the adapters out of FP8 autocast
    assert _errors("args.fp8_param_gather=false", "args.lora_rank=32") == set()
    assert _errors("args.fp8_param_gather=false", "args.lora_rank=8", "args.fp8_format=null",
                   "args.fp8_recipe=delayed") == set()
    assert _errors("args.fp8_param_gather=false", "args.lora_rank=8", "args.tuner_type=full") == set()
