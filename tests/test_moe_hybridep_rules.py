"""planner/moe_rules.py hybridep_token_counts (moe-hybridep-lengths): the flex dispatcher's HybridEP backend needs one
token count on every rank of the expert group (deepseek-ai/DeepEP#604; ms-swift PR 8393; Megatron-Bridge PR 3294),
which megatron-core 0.16.1 does not pad to and ms-swift 4.6 pads only to TP/CP/FP8 multiples. Each test changes a
published working setup (Megatron-Bridge's Qwen3-30B-A3B HybridEP preset, rebuilt as ms-swift pretraining)."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

HYBRIDEP = FIXTURES / "working" / "megatron-bridge-qwen3-30b-a3b-h100-hybridep-cuda-graph-16gpu.yaml"


def _plan(*overrides: str):
    return make_plan(load_recipe(HYBRIDEP, list(overrides)), oracle=False)


def _said(result) -> set[str]:
    return {p.path for p in result.warnings if p.code == "moe-hybridep-lengths"}


def test_hybridep_on_variable_length_batches_is_said_on_the_extra_kwargs():
    result = _plan()
    assert result.ok
    assert _said(result) == {"args.megatron_extra_kwargs"}
    assert _said(_plan("args.packing=false")) == {"args.megatron_extra_kwargs"}  # padding-free: as variable
    assert _said(_plan("args.packing=false", "args.padding_free=false")) == {"args.megatron_extra_kwargs"}


def test_the_deepep_backend_and_the_alltoall_dispatcher_are_not_judged():
    deepep = ("args.megatron_extra_kwargs={moe_flex_dispatcher_backend: deepep, moe_router_fusion: true, "
              "moe_router_force_load_balancing: true}")
    assert _said(_plan(deepep)) == set()
    assert _said(_plan("args.moe_token_dispatcher_type=alltoall")) == set()


def test_moe_enable_deepep_beside_hybridep_is_left_to_moe_deepeps_error():
    result = _plan("args.moe_enable_deepep=true")
    assert _said(result) == set()
    assert "args.moe_enable_deepep" in {p.path for p in result.errors if p.code == "moe-deepep"}
