"""bench/msswift_audit/megatron_checks.tsv is the audit of ms-swift 4.6.0's Megatron start-up checks (every raise /
assert in swift/megatron/arguments and the trainers' start-up code): its plan-verdict and rule-code columns must be
what plain `plan` says today on each case's recipe (bench/msswift_audit/megatron_cases.py), so the table cannot drift
from the rules; `python bench/msswift_audit/megatron_audit.py` reprints it. The two checks the audit found missed
(ms-swift's raise is the evidence) are tested here with their nearest legal variants."""

from __future__ import annotations

import csv
import sys

import pytest

from conftest import FIXTURES, ROOT
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

AUDIT = ROOT / "bench" / "msswift_audit"
sys.path.insert(0, str(AUDIT))
from megatron_audit import HEADER, verdict  # noqa: E402
from megatron_cases import CASES  # noqa: E402

TABLE = list(csv.reader((AUDIT / "megatron_checks.tsv").read_text(encoding="utf-8").splitlines(), delimiter="\t"))
ROWS = {row[0]: row for row in TABLE[1:]}
WORKING = FIXTURES / "working"
GKD = "ms-swift-example-gkd-dense.yaml"  # Qwen3-8B LoRA student, Qwen3-32B teacher, 8 GPUs, colocated vLLM


def test_every_case_has_a_row_and_every_row_a_case():
    assert tuple(TABLE[0]) == HEADER
    assert len(CASES) > 80 and len(ROWS) == len(TABLE) - 1
    assert list(ROWS) == [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_plan_column_is_what_plan_says_today(case):
    where, cond, base, overrides, flag = case
    row = ROWS[where]
    assert row[1] == cond
    assert (row[4], row[5]) == verdict(base, overrides, flag), f"{where}: megatron_checks.tsv is stale; rerun audit"
    # every reachable check is refused on its flag: a miss found later shows up here until a rule catches it
    assert row[4] == ("not-reachable" if base is None else "refused-on-flag")


def _refused(name: str, *overrides: str, code: str) -> set[str]:
    result = make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)
    return {p.path for p in result.errors if p.code == code}


def test_gkd_teacher_model_and_teacher_model_server_both_set():
    # megatron_args.py RLHFMegatronArgumentsMixin._check_teacher runs for every GKD run
    both = _refused(GKD, "args.teacher_model_server=http://127.0.0.1:8000", "args.gkd_logits_topk=20",
                    code="megatron-gkd")
    assert both == {"args.teacher_model_server"}
    assert _refused(GKD, code="megatron-gkd") == set()  # teacher_model alone
    server_only = ("args.teacher_model=null", "args.teacher_model_server=http://127.0.0.1:8000",
                   "args.gkd_logits_topk=20")
    assert _refused(GKD, *server_only, code="megatron-gkd") == set()


def test_gkd_colocated_vllm_tp_must_divide_the_world():
    # megatron/trainers/rollout_mixin.py _init_rollout_engine (colocate), reached by GKD (gkd_trainer.py __init__)
    assert _refused(GKD, "args.vllm_tensor_parallel_size=3", code="grpo-vllm") == {"args.vllm_tensor_parallel_size"}
    assert _refused(GKD, "args.vllm_tensor_parallel_size=4", code="grpo-vllm") == set()  # 8 GPUs
    # lmbda 0: no on-policy generation, the engine is never built
    assert _refused(GKD, "args.vllm_tensor_parallel_size=3", "args.lmbda=0", code="grpo-vllm") == set()
