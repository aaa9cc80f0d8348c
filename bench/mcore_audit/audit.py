"""Coverage audit of megatron-core 0.16.1's start-up refusals (issue #21): for each check, a minimal recipe (a
published working setup plus overrides) that reaches it; `plan` without the oracle must refuse it, and megatron-core
itself (the oracle, on the CPU) confirms that it raises. Run: PYTHONPATH=. python bench/mcore_audit/audit.py [ids]
Prints one row per case: id, engine verdict, plan verdict (rule codes and flags)."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("SWIFT_EXT_CACHE", tempfile.mkdtemp())  # a cached verdict would test nothing

from swift_ext.planner.plan import make_plan  # noqa: E402
from swift_ext.spec.recipe import load_recipe  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from cases import CASES  # noqa: E402

WORKING = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "working"


def run(case):
    cid, where, base, overrides = case[:4]
    recipe = load_recipe(WORKING / base, list(overrides))
    ours = make_plan(recipe, oracle=False)
    theirs = make_plan(recipe, oracle=True)
    verdict = (theirs.megatron_core or {}).get("oracle") or {}
    engine = [f["message"][:70] for f in verdict.get("findings", [])]
    codes = sorted({f"{e.code}:{(e.path or '').removeprefix('args.')}" for e in ours.errors})
    return cid, where, engine, codes


if __name__ == "__main__":
    wanted = set(sys.argv[1:])
    for case in CASES:
        if wanted and case[0] not in wanted:
            continue
        cid, where, engine, codes = run(case)
        status = ("CAUGHT" if codes else "MISSED") if engine else ("n/a(engine accepts)" if not codes else "extra")
        print(f"{cid}\t{where}\t{status}\t{';'.join(codes)}\t{' | '.join(engine)}", flush=True)
