"""Reprint bench/tf_audit/tf_checks.tsv: plan (no oracle) on each case of tf_cases.py (transformers 5.19 /
accelerate 1.15 start-up checks reached through ms-swift 4.6). The verdict is refused-on-flag when an error names the
check's flag, refused-other-flag when only other flags are refused, warned when a warning names the flag, missed
otherwise. tests/test_tf_audit.py pins the table to plan."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tf_cases import CASES, NOT_REACHABLE  # noqa: E402

from swift_ext.planner.plan import make_plan  # noqa: E402
from swift_ext.spec.recipe import load_recipe  # noqa: E402

WORKING = ROOT / "tests" / "fixtures" / "working"
HEADER = ["id", "file:line", "condition", "flag", "reachable", "recipe overrides used", "plan verdict", "rule code"]


def verdict(base: str, overrides: tuple[str, ...], flag: str) -> tuple[str, str]:
    plan = make_plan(load_recipe(WORKING / base, list(overrides)), oracle=False)
    paths = {"args." + f for f in flag.split("|")}  # a conflict may be refused on either of its flags
    on_flag = sorted({e.code for e in plan.errors if e.path in paths})
    if on_flag:
        return "refused-on-flag", ";".join(on_flag)
    if plan.errors:
        return "refused-other-flag", ";".join(sorted({f"{e.code}:{(e.path or '').removeprefix('args.')}"
                                                       for e in plan.errors}))
    warned = sorted({w.code for w in plan.warnings if w.path in paths})
    if warned:
        return "warned", ";".join(warned)
    return "missed", ""


def rows() -> list[list[str]]:
    out = [HEADER]
    for cid, where, cond, flag, base, overrides in CASES:
        out.append([cid, where, cond, flag, "yes", base + " " + " ".join(overrides), *verdict(base, overrides, flag)])
    for where, cond, why in NOT_REACHABLE:
        out.append(["-", where, cond, "", "no: " + why, "", "not-reachable", ""])
    return out


if __name__ == "__main__":
    text = "\n".join("\t".join(r) for r in rows()) + "\n"
    if "--write" in sys.argv:
        (Path(__file__).parent / "tf_checks.tsv").write_text(text, encoding="utf-8")
    sys.stdout.write(text)
