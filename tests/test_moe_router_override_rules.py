"""planner/moe_rules.py router_override (moe-router-override): megatron_extra_kwargs replacing the router settings
mcore-bridge reads from the checkpoint's config.json trains a pretrained MoE with a routing it never learned
(Pai-Megatron-Patch#562: top-k 8 on Moonlight's 6; #529: 8 groups on a one-group router). Each test changes the #562
fixture or a published working setup."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

MOONLIGHT = FIXTURES / "issues" / "pai-megatron-patch-562-moonlight-router-topk.yaml"  # top-k 6, sigmoid, one group
DSV3_GROUPS = FIXTURES / "working" / "megatron-moe-modelzoo-deepseek-v3-h100-fp8-blockwise-a2a-group-routing.yaml"


def _said(path, *overrides: str) -> bool:
    result = make_plan(load_recipe(path, list(overrides)), oracle=False)
    return "args.megatron_extra_kwargs" in {p.path for p in result.warnings if p.code == "moe-router-override"}


def test_a_router_other_than_the_checkpoints_is_said():
    assert _said(MOONLIGHT)  # top-k 8 for 6
    assert _said(MOONLIGHT, "args.megatron_extra_kwargs={moe_router_score_function: softmax}")
    assert _said(MOONLIGHT, "args.megatron_extra_kwargs={moe_router_num_groups: 8, moe_router_group_topk: 4}")


def test_the_checkpoints_own_router_values_are_not_said():
    assert not _said(MOONLIGHT, "args.megatron_extra_kwargs={moe_router_topk: 6}")
    assert not _said(MOONLIGHT, "args.megatron_extra_kwargs={moe_router_score_function: sigmoid, "
                                "moe_router_num_groups: 1, moe_router_group_topk: 1}")
    assert not _said(MOONLIGHT, "args.megatron_extra_kwargs={moe_router_topk_scaling_factor: 2.446}")
    assert not _said(DSV3_GROUPS)  # DeepSeek-V3's own 8 groups / group top-k 4, written out


def test_a_group_top_k_other_than_the_models_is_said_under_its_groups():
    assert _said(DSV3_GROUPS, "args.megatron_extra_kwargs={moe_router_num_groups: 8, moe_router_group_topk: 2}")
