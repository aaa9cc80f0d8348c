"""The table the coverage audits under bench/ print (msswift_audit's swift_audit.py, tf_audit, peft_audit): `plan`
(no oracle) on each case -- a published working setup plus the overrides that reach one check -- and its verdict:
refused-on-flag when an error names the check's flag, refused-other-flag when only other flags are refused, warned
when a warning names the flag, missed otherwise. Each audit's test pins its tsv to what plan says today."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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


def rows(cases, not_reachable) -> list[list[str]]:
    out = [HEADER]
    for cid, where, cond, flag, base, overrides in cases:
        out.append([cid, where, cond, flag, "yes", base + " " + " ".join(overrides), *verdict(base, overrides, flag)])
    for where, cond, why in not_reachable:
        out.append(["-", where, cond, "", "no: " + why, "", "not-reachable", ""])
    return out


def main(cases, not_reachable, tsv: Path) -> None:
    """Print the table; with --write, also write it to `tsv`."""
    text = "\n".join("\t".join(r) for r in rows(cases, not_reachable)) + "\n"
    if "--write" in sys.argv:
        tsv.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
