"""Reprint bench/msswift_audit/megatron_checks.tsv: run plain `plan` (no oracle) on each case of megatron_cases.py and
record whether it refuses on the case's flag. Usage: PYTHONPATH=. python bench/msswift_audit/megatron_audit.py"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from megatron_cases import CASES  # noqa: E402
from swift_ext.planner.plan import make_plan  # noqa: E402
from swift_ext.spec.recipe import load_recipe  # noqa: E402

WORKING = ROOT / "tests" / "fixtures" / "working"
HEADER = ("file:line", "condition", "reachable", "recipe overrides used", "plan verdict", "rule code")


def verdict(base: str | None, overrides: tuple[str, ...], flag: str) -> tuple[str, str]:
    """(verdict, rule codes) of plain plan on the case: refused-on-flag names the codes on the flag."""
    if base is None:
        return "not-reachable", ""
    plan = make_plan(load_recipe(WORKING / base, list(overrides)), oracle=False)
    def on(p):
        return (p.path or "").removeprefix("args.") == flag
    errors = [e for e in plan.errors if on(e)]
    if errors:
        return "refused-on-flag", ";".join(sorted({e.code for e in errors}))
    if plan.errors:
        return "refused-other-flag", ";".join(sorted({f"{e.code}:{(e.path or '').removeprefix('args.')}"
                                                      for e in plan.errors}))
    warnings = [w for w in plan.warnings if on(w)]
    if warnings:
        return "warned", ";".join(sorted({w.code for w in warnings}))
    return "missed", ""


def rows() -> list[tuple[str, ...]]:
    out = []
    for where, cond, base, overrides, flag in CASES:
        v, codes = verdict(base, overrides, flag)
        reach = "no: " + flag if base is None else f"yes ({flag})"
        used = "" if base is None else base + " " + " ".join(overrides)
        out.append((where, cond, reach, used, v, codes))
    return out


if __name__ == "__main__":
    table = [HEADER, *rows()]
    text = "".join("\t".join(r) + "\n" for r in table)
    (Path(__file__).parent / "megatron_checks.tsv").write_text(text, encoding="utf-8")
    from collections import Counter
    print(Counter(r[4] for r in table[1:]))
