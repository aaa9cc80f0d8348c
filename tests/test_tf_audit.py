"""The audit of the installed transformers 5.19 / accelerate 1.15 start-up checks that ms-swift 4.6's transformers
engine reaches (bench/tf_audit): tf_checks.tsv's plan column must be what `plan` says today on each case, and the
rules the audit added (trainer-steps-integer, full-eval-precision, scheduler-needs-eval, trainer-arg-range,
trainer-enum, tf32-gpu, fsdp-options, best-model-schedule's ratio steps) refuse on their flag while the nearest
legal variant plans clean."""

from __future__ import annotations

import csv
import sys

import pytest

from conftest import FIXTURES, ROOT
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

AUDIT = ROOT / "bench" / "tf_audit"
sys.path.insert(0, str(AUDIT))
from tf_audit import verdict  # noqa: E402
from tf_cases import CASES, DPO, EVAL, FSDP, NOT_REACHABLE, SFT, fsdp  # noqa: E402

ROWS = list(csv.reader((AUDIT / "tf_checks.tsv").read_text(encoding="utf-8").splitlines(), delimiter="\t"))
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
    assert (row[6], row[7]) == verdict(base, overrides, flag), f"{cid}: tf_checks.tsv is stale; rerun tf_audit.py"


def test_every_reachable_check_is_refused_on_its_flag():
    assert {r[6] for r in CASE_ROWS.values()} == {"refused-on-flag"}


def _refused(name: str, *overrides: str, code: str) -> set[str]:
    result = make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)
    return {p.path for p in result.errors if p.code == code}


def test_whole_step_counts():
    code = "trainer-steps-integer"
    assert _refused(SFT, "args.save_steps=2.5", code=code) == {"args.save_steps"}
    assert _refused(SFT, *EVAL, "args.eval_steps=2.5", code=code) == {"args.eval_steps"}
    assert _refused(SFT, "args.save_steps=0.25", code=code) == set()  # a ratio of the total steps
    assert _refused(SFT, "args.eval_steps=2.5", code=code) == set()  # no validation set: eval_strategy no
    assert _refused(SFT, "args.save_strategy=epoch", "args.save_steps=2.5", code=code) == set()  # not read


def test_best_model_ratio_steps():
    best = (*EVAL, "args.load_best_model_at_end=true")
    code = "best-model-schedule"
    assert _refused(DPO, *best, "args.save_steps=100", "args.eval_steps=0.1", code=code) == {"args.eval_steps"}
    assert _refused(DPO, *best, "args.save_steps=0.3", "args.eval_steps=0.2", code=code) == {"args.eval_steps"}
    assert _refused(DPO, *best, "args.save_steps=0.2", "args.eval_steps=0.1", code=code) == set()
    assert _refused(DPO, *best, "args.save_steps=100", "args.eval_steps=50", code=code) == set()


def test_full_eval_precision():
    assert _refused(SFT, "args.fp16_full_eval=true", "args.bf16_full_eval=true", code="full-eval-precision") == {
        "args.bf16_full_eval"}
    assert _refused(SFT, "args.bf16_full_eval=true", code="full-eval-precision") == set()


@pytest.mark.parametrize("scheduler", ["reduce_lr_on_plateau", "greedy"])
def test_scheduler_needs_eval(scheduler):
    code = "scheduler-needs-eval"
    assert _refused(SFT, f"args.lr_scheduler_type={scheduler}", code=code) == {"args.lr_scheduler_type"}
    assert _refused(SFT, *EVAL, f"args.lr_scheduler_type={scheduler}", code=code) == set()
    assert _refused(SFT, *EVAL, "args.eval_strategy='no'", f"args.lr_scheduler_type={scheduler}", code=code) == {
        "args.lr_scheduler_type"}


def test_trainer_arg_ranges():
    code = "trainer-arg-range"
    assert _refused(SFT, "args.warmup_ratio=0", "args.warmup_steps=-1", code=code) == {"args.warmup_steps"}
    assert _refused(SFT, "args.warmup_ratio=0", "args.warmup_steps=10", code=code) == set()
    assert _refused(SFT, "args.torch_empty_cache_steps=0", code=code) == {"args.torch_empty_cache_steps"}
    assert _refused(SFT, "args.torch_empty_cache_steps=10", code=code) == set()
    assert _refused(SFT, "args.dataloader_num_workers=0", "args.dataloader_prefetch_factor=4", code=code) == {
        "args.dataloader_prefetch_factor"}
    # unset, ms-swift makes dataloader_num_workers 1 (Linux): the prefetch factor is legal
    assert _refused(SFT, "args.dataloader_prefetch_factor=4", code=code) == set()


def test_trainer_enums_match_the_installed_transformers():
    from swift_ext.msswift.trainer_args_rules import SCHEDULER_TYPES
    trainer_utils = pytest.importorskip("transformers.trainer_utils")
    assert set(SCHEDULER_TYPES) == {s.value for s in trainer_utils.SchedulerType}
    code = "trainer-enum"
    assert _refused(SFT, "args.lr_scheduler_type=cosine_annealing", code=code) == {"args.lr_scheduler_type"}
    assert _refused(SFT, "args.lr_scheduler_type=cosine_with_min_lr", code=code) == set()
    assert _refused(SFT, "args.optim=adamw_hf", code=code) == {"args.optim"}
    assert _refused(SFT, "args.optim=adamw_torch_fused", code=code) == set()


def test_tf32_needs_ampere():
    old = ("launch.gpu=V100", "args.torch_dtype=float16")
    assert _refused(DPO, *old, "args.tf32=true", code="tf32-gpu") == {"args.tf32"}
    assert _refused(DPO, *old, "args.tf32=false", code="tf32-gpu") == set()
    assert _refused(DPO, "args.tf32=true", code="tf32-gpu") == set()  # A100


def test_fsdp_options():
    code = "fsdp-options"
    assert _refused(SFT, *FSDP, fsdp('"fsdp": "hybrid_shard auto_wrap", "fsdp_config": {"fsdp_version": 2}'),
                    code=code) == {"args.fsdp"}
    # the same strategy under FSDP1 is accepted by transformers (ms-swift's GRPO/GKD refuse FSDP1 elsewhere)
    assert _refused(SFT, *FSDP, fsdp('"fsdp": "hybrid_shard auto_wrap", "fsdp_config": {"fsdp_version": 1}'),
                    code=code) == set()
    assert _refused(SFT, *FSDP, fsdp('"fsdp": "full_shard bogus"'), code=code) == {"args.fsdp"}
    assert _refused(SFT, *FSDP, fsdp('"fsdp": "shard_grad_op offload auto_wrap"'), code=code) == set()
    assert _refused(SFT, *FSDP, fsdp('"fsdp_config": {"auto_wrap_policy": "LAYER_WRAP"}'), code=code) == {"args.fsdp"}
    assert _refused(SFT, *FSDP, fsdp('"fsdp_config": {"fsdp_auto_wrap_policy": "SIZE_BASED_WRAP"}'),
                    code=code) == set()
    assert _refused(SFT, *FSDP, "args.fsdp=fsdp2", code=code) == set()  # ms-swift's preset
