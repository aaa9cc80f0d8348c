"""planner/pipeline_schedule.py's megatron-rlhf-vpp: the Megatron RLHF paths that take a single model chunk
(GRPO's reference model when beta != 0, a separate teacher model) refuse virtual pipeline stages. Run through
check_layout, where the rule is registered (it reads the pipeline size from the layout)."""

from __future__ import annotations

import pytest

from swift_ext.msswift import schema as msargs
from swift_ext.msswift.bound_args import Args
from swift_ext.planner.layout import check_layout
from swift_ext.spec.recipe import load_recipe
from test_msrules import MEG_GRPO, MEG_SFT

VPP = ["args.pipeline_model_parallel_size=2", "args.expert_model_parallel_size=4",
       "args.virtual_pipeline_model_parallel_size=2", "args.global_batch_size=32"]
TEACHER = ["command=rlhf", "args.rlhf_type=gkd", "args.teacher_model=Qwen/Qwen3-30B-A3B", "args.use_vllm=false"]
SERVER = ["args.teacher_model=null", "args.teacher_model_server=http://t:8000", "args.gkd_logits_topk=20"]


def _vpp_errors(path, *overrides: str) -> set[str]:
    recipe = load_recipe(path, list(overrides))
    errors, _ = check_layout(recipe, Args.bind(recipe, msargs.schema_for(recipe.engine, recipe.command)), None)
    return {e.path for e in errors if e.code == "megatron-rlhf-vpp"}


@pytest.mark.parametrize("base, bad, good", [
    (MEG_GRPO, [*VPP, "args.beta=0.04"], [*VPP, "args.beta=0"]),
    (MEG_GRPO, [*VPP, "args.beta=null"], ["args.beta=null"]),  # unset is 0.04 in ms-swift's _init_grpo
    (MEG_SFT, [*TEACHER, *VPP], [*TEACHER, *VPP, *SERVER]),
], ids=["grpo-beta", "grpo-beta-default", "gkd-teacher"])
def test_rlhf_with_one_model_chunk_refuses_virtual_stages(base, bad, good):
    assert _vpp_errors(base, *bad) == {"args.virtual_pipeline_model_parallel_size"}
    assert _vpp_errors(base, *good) == set()


def test_virtual_stages_from_a_pipeline_layout_count_too():
    layout = ["args.pipeline_model_parallel_size=2", "args.expert_model_parallel_size=4", "args.global_batch_size=32",
              "args.pipeline_model_parallel_layout=E" + "|".join(["t" * 10] * 4) + "L"]  # 4 stages over PP 2
    assert _vpp_errors(MEG_GRPO, *layout, "args.beta=0.04") == {"args.pipeline_model_parallel_layout"}


def _layout_vpp_warnings(*overrides: str) -> set[str]:
    recipe = load_recipe(MEG_SFT, list(overrides))
    _, warnings = check_layout(recipe, Args.bind(recipe, msargs.schema_for(recipe.engine, recipe.command)), None)
    return {w.path for w in warnings if w.code == "layout-vpp"}


def test_a_stated_virtual_size_the_layout_overrides_is_said():
    # ms-swift's _init_vpp_size takes stages // PP from the layout and drops the stated size (Megatron-Bridge #1502 /
    # PR 5443 refused the same stale layout); a matching or absent size is the layout's own
    layout = ["args.pipeline_model_parallel_size=2", "args.expert_model_parallel_size=4", "args.global_batch_size=32",
              "args.pipeline_model_parallel_layout=E" + "|".join(["t" * 12] * 4) + "L"]  # 4 stages over PP 2
    for stated in (1, 4):
        assert _layout_vpp_warnings(*layout, f"args.virtual_pipeline_model_parallel_size={stated}") == {
            "args.pipeline_model_parallel_layout"}
    assert _layout_vpp_warnings(*layout, "args.virtual_pipeline_model_parallel_size=2") == set()
    assert _layout_vpp_warnings(*layout) == set()
    assert _layout_vpp_warnings("args.pipeline_model_parallel_size=2", "args.expert_model_parallel_size=4",
                                "args.virtual_pipeline_model_parallel_size=2", "args.global_batch_size=32") == set()
