"""Runtime audit: prints, per runtime case, plan's refusal codes (no oracle: these checks fire after start-up, which
the oracle does not run). Run: PYTHONPATH=. python bench/mcore_audit/runtime_audit.py > bench/mcore_audit/runtime_results.tsv"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("SWIFT_EXT_CACHE", tempfile.mkdtemp())

from swift_ext.planner.plan import make_plan  # noqa: E402
from swift_ext.spec.recipe import load_recipe  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from runtime_cases import RUNTIME_CASES  # noqa: E402

WORKING = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "working"


def codes(case):
    recipe = load_recipe(WORKING / case[2], list(case[3]))
    plan = make_plan(recipe, oracle=False)
    return sorted({f"{e.code}:{(e.path or '').removeprefix('args.')}" for e in plan.errors})


if __name__ == "__main__":
    for case in RUNTIME_CASES:
        c = codes(case)
        print(f"{case[0]}\t{case[1]}\t{'CAUGHT' if c else 'MISSED'}\t{';'.join(c)}", flush=True)
