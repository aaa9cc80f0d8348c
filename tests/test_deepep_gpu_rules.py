"""planner/moe_rules.py deepep_gpu (deepep-gpu): DeepEP's kernels run on NVLink-connected sm80 (intranode), Hopper and
Blackwell; refused below sm80, said on PCIe boards (deepseek-ai/DeepEP#162: "PCIe not working") and for an Ampere
expert group that spans nodes (DeepEP#234: no internode kernels on A800). Each test changes a published working setup."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"
QWEN3_DEEPEP = "megatron-moe-modelzoo-qwen3-235b-h100-deepep-recompute-moe-act.yaml"  # flex + DeepEP, EP=32, 8/node


def _found(*overrides: str) -> tuple[set[str], set[str]]:
    result = make_plan(load_recipe(WORKING / QWEN3_DEEPEP, list(overrides)), oracle=False)
    return ({p.path for p in result.errors if p.code == "deepep-gpu"},
            {p.path for p in result.warnings if p.code == "deepep-gpu"})


def test_deepep_runs_on_hopper_across_nodes():
    assert _found() == (set(), set())
    assert _found("launch.gpu=H20") == (set(), set())


def test_deepep_below_sm80_is_refused():
    assert _found("launch.gpu=V100") == ({"args.moe_enable_deepep"}, set())


def test_deepep_on_pcie_boards_is_said():
    for gpu in ("L40S", "RTX4090", "A10"):
        assert _found(f"launch.gpu={gpu}") == (set(), {"args.moe_enable_deepep"}), gpu


def test_deepep_on_ampere_is_said_only_when_the_expert_group_spans_nodes():
    assert _found("launch.gpu=A100-80G") == (set(), {"args.moe_enable_deepep"})  # EP=32 over 8 GPUs a node
    assert _found("launch.gpu=A100-80G", "args.expert_model_parallel_size=8") == (set(), set())  # within a node


def test_the_flex_dispatchers_default_backend_is_deepep_and_alltoall_is_never_judged():
    assert _found("launch.gpu=V100", "args.moe_enable_deepep=false") == ({"args.moe_token_dispatcher_type"}, set())
    assert _found("launch.gpu=V100", "args.moe_enable_deepep=false", "args.moe_token_dispatcher_type=alltoall") == (
        set(), set())
