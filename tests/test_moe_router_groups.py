"""moe-router: group-limited routing whose groups are smaller than the experts megatron-core scores in each one
(megatron-core 0.16.1 transformer/moe/moe_utils.py group_limited_topk: topk(k=topk // group_topk) per group)."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

# DeepSeek-V3 (256 experts, top-8, n_group 8 / topk_group 4): a published working setup
DEEPSEEK = ROOT / "tests/fixtures/working/verl-example-deepseek671b-megatron-80gb.yaml"


def _router_errors(extra):
    recipe = load_recipe(DEEPSEEK, ["args.megatron_extra_kwargs=" + json.dumps(extra)])
    return [p for p in make_plan(recipe, oracle=False).errors if p.code == "moe-router"]


@pytest.mark.parametrize("extra", [{"moe_router_num_groups": 128, "moe_router_group_topk": 2},  # 8 // 2 = 4 > 2
                                   {"moe_router_num_groups": 256, "moe_router_group_topk": 4},  # 2 > 1
                                   {"moe_router_num_groups": 64, "moe_router_group_topk": 1}])  # 8 > 4
def test_groups_smaller_than_the_experts_scored_in_each_are_refused(extra):
    (found,) = _router_errors(extra)
    assert found.path == "args.megatron_extra_kwargs" and "selected index k out of range" in found.message


@pytest.mark.parametrize("extra", [{}, {"moe_router_num_groups": 32, "moe_router_group_topk": 1},  # 8 // 1 = 8 <= 8
                                   {"moe_router_num_groups": 64, "moe_router_group_topk": 2},  # 4 <= 4
                                   {"moe_router_num_groups": 256, "moe_router_group_topk": 8}])  # 1 <= 1
def test_groups_that_hold_the_scored_experts_plan(extra):
    assert not _router_errors(extra)


def test_a_top_k_above_the_experts_is_refused_and_one_at_their_number_is_not():
    # (DeepSeek-V3's groups refuse it too: 257 // 4 experts scored in groups of 32)
    above = [p for p in _router_errors({"moe_router_topk": 257}) if "is above" in p.message]
    assert len(above) == 1 and "256 experts" in above[0].message and "out of range" in above[0].message
    assert not [p for p in _router_errors({"moe_router_topk": 256, "moe_router_num_groups": 1,
                                            "moe_router_group_topk": 1}) if "above" in p.message]
