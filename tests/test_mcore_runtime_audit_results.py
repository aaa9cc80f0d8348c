"""bench/mcore_audit/runtime_results.tsv pins plan's verdict on megatron-core 0.16.1's runtime checks (model build and
first step) that an ms-swift 4.6 recipe reaches: its plan column must be what `plan` refuses today, and a MISSED row
stays MISSED until a rule catches it (then rerun runtime_audit.py)."""

from __future__ import annotations

import csv
import sys

import pytest

from conftest import FIXTURES, ROOT
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

AUDIT = ROOT / "bench" / "mcore_audit"
sys.path.insert(0, str(AUDIT))
from runtime_cases import RUNTIME_CASES  # noqa: E402

ROWS = {row[0]: row for row in csv.reader((AUDIT / "runtime_results.tsv").read_text(encoding="utf-8").splitlines(),
                                          delimiter="\t")}


def test_every_case_has_a_row_and_every_row_a_case():
    assert sorted(ROWS) == sorted(c[0] for c in RUNTIME_CASES)


@pytest.mark.parametrize("case", RUNTIME_CASES, ids=[c[0] for c in RUNTIME_CASES])
def test_plan_column_is_what_plan_refuses_today(case):
    cid, where, base, overrides = case[:4]
    row = ROWS[cid]
    plan = make_plan(load_recipe(FIXTURES / "working" / base, list(overrides)), oracle=False)
    codes = sorted({f"{e.code}:{(e.path or '').removeprefix('args.')}" for e in plan.errors})
    assert row[1] == where
    assert ";".join(codes) == (row[3] if len(row) > 3 else ""), f"{cid}: runtime_results.tsv is stale"
    assert row[2] == ("CAUGHT" if codes else "MISSED")
