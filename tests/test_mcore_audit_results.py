"""bench/mcore_audit/results.tsv is the audit's published table (issue #21's closing notes count from it): its plan
column -- the rule codes and flags plain `plan` refuses each case with -- must be what `plan` says today, so the
table cannot drift from the rules. The engine column (megatron-core's own verdict on the CPU) is not rerun here:
it needs the oracle (seconds per case); `python bench/mcore_audit/audit.py` reprints the whole table."""

from __future__ import annotations

import csv
import sys

import pytest

from conftest import FIXTURES, ROOT
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

AUDIT = ROOT / "bench" / "mcore_audit"
sys.path.insert(0, str(AUDIT))
from cases import CASES  # noqa: E402

ROWS = {row[0]: row for row in csv.reader((AUDIT / "results.tsv").read_text(encoding="utf-8").splitlines(),
                                          delimiter="\t")}


def test_every_case_has_a_row_and_every_row_a_case():
    assert len(CASES) > 90
    assert sorted(ROWS) == sorted(c[0] for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_plan_column_is_what_plan_refuses_today(case):
    cid, where, base, overrides = case[:4]
    row = ROWS[cid]
    plan = make_plan(load_recipe(FIXTURES / "working" / base, list(overrides)), oracle=False)
    codes = sorted({f"{e.code}:{(e.path or '').removeprefix('args.')}" for e in plan.errors})
    assert row[1] == where
    assert ";".join(codes) == (row[3] if len(row) > 3 else ""), f"{cid}: results.tsv is stale; rerun audit.py"
    # the status column follows from the engine's verdict (kept) and plan's (checked above)
    engine_refuses = row[2] in ("CAUGHT", "MISSED")
    assert row[2] == (("CAUGHT" if codes else "MISSED") if engine_refuses
                      else ("extra" if codes else "n/a(engine accepts)"))
