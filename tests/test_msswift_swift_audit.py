"""The audit of ms-swift 4.6.0's transformers-engine start-up checks (bench/msswift_audit): swift_checks.tsv's plan
column must be what `plan` says today on each case (a published working setup changed until the engine's check
trips), and the refusals the audit added (swift-gkd's two teachers, longlora, flash-ckpt-fsdp) fire on their flag
while the nearest legal variant plans clean."""

from __future__ import annotations

import csv
import sys

import pytest

from conftest import FIXTURES, ROOT
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

AUDIT = ROOT / "bench" / "msswift_audit"
sys.path.insert(0, str(AUDIT))
from swift_audit import verdict  # noqa: E402
from swift_cases import CASES, GKD, NOT_REACHABLE, SFT  # noqa: E402

ROWS = list(csv.reader((AUDIT / "swift_checks.tsv").read_text(encoding="utf-8").splitlines(), delimiter="\t"))
CASE_ROWS = {row[0]: row for row in ROWS[1:] if row[0] != "-"}
WORKING = FIXTURES / "working"


def test_every_case_has_a_row_and_every_row_a_case():
    assert ROWS[0][5:] == ["recipe overrides used", "plan verdict", "rule code"]
    assert sorted(CASE_ROWS) == sorted(c[0] for c in CASES)
    assert len([r for r in ROWS[1:] if r[0] == "-"]) == len(NOT_REACHABLE)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_plan_column_is_what_plan_says_today(case):
    cid, where, _cond, flag, base, overrides = case
    row = CASE_ROWS[cid]
    assert row[1] == where
    assert (row[6], row[7]) == verdict(base, overrides, flag), f"{cid}: swift_checks.tsv is stale; rerun swift_audit.py"


def test_every_reachable_check_is_refused_on_its_flag():
    assert {r[6] for r in CASE_ROWS.values()} == {"refused-on-flag"}


def _refused(name: str, *overrides: str, code: str) -> set[str]:
    result = make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)
    return {p.path for p in result.errors if p.code == code}


def test_gkd_with_two_teachers():
    assert _refused(GKD, "args.teacher_model=Qwen/Qwen3.5-9B", code="swift-gkd") == {"args.teacher_model_server"}
    assert _refused(GKD, code="swift-gkd") == set()  # the published server teacher alone
    assert _refused(GKD, "args.teacher_model=Qwen/Qwen3.5-9B", "args.teacher_model_server=null",
                    code="swift-gkd") == set()


LONGLORA = "ms-swift-example-swift-longlora-llama31-10k.yaml"  # Llama-3.1 longlora, peft backend


def test_longlora_backend_and_model_type():
    assert _refused(LONGLORA, "args.tuner_backend=unsloth", code="longlora") == {"args.tuner_backend"}
    assert _refused(LONGLORA, "args.model=Qwen/Qwen2.5-7B-Instruct", code="longlora") == {"args.tuner_type"}
    assert _refused(LONGLORA, code="longlora") == set()
    # unsloth with plain lora is the legal neighbour
    assert _refused(LONGLORA, "args.tuner_backend=unsloth", "args.tuner_type=lora", code="longlora") == set()
    # prepare_adapter (both asserts) runs only for a new adapter: resume_from_checkpoint / adapters load the saved one
    for loaded in ("args.resume_from_checkpoint=output/v0/checkpoint-100", "args.adapters=[output/v0/checkpoint-100]"):
        assert _refused(LONGLORA, "args.tuner_backend=unsloth", loaded, code="longlora") == set()
        assert _refused(LONGLORA, "args.model=Qwen/Qwen2.5-7B-Instruct", loaded, code="longlora") == set()
    # use_swift_lora takes the branch before unsloth's; the Llama model_type assert still follows it
    assert _refused(LONGLORA, "args.tuner_backend=unsloth", "args.use_swift_lora=true", code="longlora") == set()
    assert _refused(LONGLORA, "args.model=Qwen/Qwen2.5-7B-Instruct", "args.use_swift_lora=true",
                    code="longlora") == {"args.tuner_type"}


def test_flash_checkpoint_under_fsdp():
    fsdp = ("args.deepspeed=null", "args.fsdp=fsdp2", "args.save_only_model=false")
    assert _refused(SFT, *fsdp, "args.use_flash_ckpt=true", code="flash-ckpt-fsdp") == {"args.use_flash_ckpt"}
    assert _refused(SFT, *fsdp, code="flash-ckpt-fsdp") == set()
    assert _refused(SFT, "args.use_flash_ckpt=true", code="flash-ckpt-fsdp") == set()  # DeepSpeed ZeRO-3


def test_vera_targets_of_different_sizes():
    from swift_cases import DPO  # Qwen2.5-7B: GQA, so q_proj and k_proj differ in size
    vera = "args.tuner_type=vera"
    assert _refused(DPO, vera, "args.target_modules=[q_proj,k_proj]", code="vera-target-sizes") == {
        "args.target_modules"}
    assert _refused(DPO, vera, "args.target_modules=[q_proj,o_proj]", code="vera-target-sizes") == set()  # 3584^2
    assert _refused(DPO, vera, "args.target_modules=[q_proj,k_proj,v_proj]", code="vera-target-sizes") == set()
    assert _refused(DPO, vera, code="vera-target-sizes") == set()  # all-linear resolves to names with v_proj
    # get_vera_target_modules runs in prepare_adapter, for a new adapter only
    assert _refused(DPO, vera, "args.target_modules=[q_proj,k_proj]", "args.adapters=[output/v0/checkpoint-100]",
                    code="vera-target-sizes") == set()


def test_reward_model_lists_pair_one_by_one():
    from swift_cases import GRPO
    two = "args.reward_model=[Qwen/Qwen2.5-Math-RM-72B,Skywork/Skywork-Reward-Llama-3.1-8B]"
    assert _refused(GRPO, two, "args.reward_model_type=[qwen2_reward]", "args.reward_weights=null",
                    code="reward-model-lists") == {"args.reward_model_type"}
    assert _refused(GRPO, two, "args.reward_model_type=[qwen2_reward,llama3_reward]", "args.reward_weights=null",
                    code="reward-model-lists") == set()
    assert _refused(GRPO, two, "args.reward_weights=null", code="reward-model-lists") == set()  # types inferred
