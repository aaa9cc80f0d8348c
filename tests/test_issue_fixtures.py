"""Real failed launches from public ms-swift / Megatron-LM issues, rebuilt as recipes
(tests/fixtures/issues/*.yaml): `plan` must refuse each one with an error on the flag the report
blames, and the one-flag fix the report found must clear that error. The header of each file gives
the issue, the error it hit, the culprit flag and the fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

ISSUES = FIXTURES / "issues"
CASES = sorted(ISSUES.glob("*.yaml"))


def header(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("# "):
            break
        key, _, value = line[2:].partition(": ")
        out[key] = value.strip()
    return out


def plan(path: Path, *overrides: str):
    return make_plan(load_recipe(path, list(overrides)), oracle=False)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_plan_catches_the_failed_launch_naming_the_culprit(path):
    meta = header(path)
    assert meta["source"].startswith("https://github.com/"), "each fixture cites its public issue"
    result = plan(path)
    assert not result.ok
    assert meta["culprit"] in {p.path for p in result.errors}, [p.render() for p in result.errors]
    fixed = plan(path, *meta["fix"].split())
    assert meta["culprit"] not in {p.path for p in fixed.errors}, [p.render() for p in fixed.errors]


def test_catch_rate():
    caught = [p.stem for p in CASES if header(p)["culprit"] in {e.path for e in plan(p).errors}]
    print(f"\nreal failed launches caught naming the culprit flag: {len(caught)}/{len(CASES)}")
    assert len(CASES) >= 10 and len(caught) / len(CASES) >= 0.9
