"""planner/moe_rules.py deepep_group (deepep-group): megatron-core's DeepEP buffer asks DeepEP for a config of the flex
dispatcher's ETP x EP group size, which DeepEP has only for 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 144 and 160 ranks
(deepseek-ai/DeepEP#464, #541); its normal kernels take 8 consecutive ranks for one node (#392, #104). Each test changes
a published working setup or the DeepEP#464 fixture."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

QWEN3_DEEPEP = FIXTURES / "working" / "megatron-moe-modelzoo-qwen3-235b-h100-deepep-recompute-moe-act.yaml"  # EP=32
KIMI_192 = FIXTURES / "issues" / "deepep-464-ep-group-above-160.yaml"  # Kimi-K2, 384 experts, 24 x 8 GPUs, EP=192


def _found(path, *overrides: str) -> tuple[set[str], set[str]]:
    result = make_plan(load_recipe(path, list(overrides)), oracle=False)
    return ({p.path for p in result.errors if p.code == "deepep-group"},
            {p.path for p in result.warnings if p.code == "deepep-group"})


def test_a_group_size_deepep_has_no_config_for_is_refused():
    assert _found(KIMI_192) == ({"args.expert_model_parallel_size"}, set())
    assert _found(KIMI_192, "args.expert_model_parallel_size=12") == ({"args.expert_model_parallel_size"}, set())


def test_group_sizes_deepep_takes_plan():
    for ep in (96, 48, 64, 24, 8):
        assert _found(KIMI_192, f"args.expert_model_parallel_size={ep}") == (set(), set()), ep
    assert _found(QWEN3_DEEPEP) == (set(), set())


def test_the_alltoall_dispatcher_and_the_hybridep_backend_are_not_judged():
    assert _found(KIMI_192, "args.moe_enable_deepep=false", "args.moe_token_dispatcher_type=alltoall") == (set(), set())
    assert _found(KIMI_192, "args.moe_enable_deepep=false",
                  "args.megatron_extra_kwargs={moe_flex_dispatcher_backend: hybridep}") == (set(), set())


def test_a_group_past_a_node_of_fewer_than_8_gpus_is_said():
    four = ("launch.nodes=64", "launch.gpus_per_node=4")
    assert _found(QWEN3_DEEPEP, *four) == (set(), {"args.moe_enable_deepep"})  # 32 ranks over 4-GPU nodes
    assert _found(QWEN3_DEEPEP, *four, "args.expert_model_parallel_size=4") == (set(), set())  # within a node
