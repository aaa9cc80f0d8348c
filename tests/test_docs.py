"""docs/ and the code say the same: generated tables match the code; every finding code the code reports is in
the one table of codes (swift_ext/spec/codes.py); the README stays a newcomer's page."""

from __future__ import annotations

import ast
import re

from conftest import ROOT

from swift_ext.cli import docgen
from swift_ext.spec.codes import CODES

PACKAGE = ROOT / "swift_ext"
# Calls that make a finding, and which positional argument holds its code.
CODE_ARGUMENT = {"data_finding": 2, "resume_finding": 1, "_found": 0}


def _string(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def codes_in_the_code() -> dict[str, str]:
    """code -> first place it is reported (file:line)."""
    found: dict[str, str] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            values = [_string(k.value) for k in node.keywords if k.arg == "code"]
            if name in CODE_ARGUMENT and len(node.args) > CODE_ARGUMENT[name]:
                values.append(_string(node.args[CODE_ARGUMENT[name]]))
            if name == "add" and path.name == "verify.py" and node.args:  # verify's VerifyReport.add(check, level, ...)
                values.append(_string(node.args[0]))
            for value in values:
                if value is not None:
                    found.setdefault(value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_generated_tables_match_the_code():
    assert docgen.drifted() == [], "run: python -m swift_ext.cli.docgen"


def test_every_reported_code_is_in_the_table():
    used = codes_in_the_code()
    assert len(used) > 20, used  # the scan sees the code base (a scan that finds nothing proves nothing)
    missing = {code: where for code, where in used.items() if code not in CODES}
    assert missing == {}, f"codes reported but not in swift_ext/spec/codes.py: {missing}"


def test_data_codes_in_use_are_documented_and_numbered_by_severity():
    data_codes = set(re.findall(r'"([EWN]\d{3})"', "".join(p.read_text() for p in (PACKAGE / "datasets").glob("*.py"))))
    assert data_codes, "no data codes found"
    assert data_codes <= set(CODES)
    for code in data_codes:
        assert CODES[code].family == "data" and CODES[code].severity[0].upper() == code[0], code


def test_the_drift_check_sees_a_hand_edit(tmp_path):
    for name, (page, _make) in docgen.TABLES.items():
        (tmp_path / page).write_text((docgen.DOCS / page).read_text(encoding="utf-8"), encoding="utf-8")
    page = tmp_path / "codes.md"
    page.write_text(page.read_text(encoding="utf-8").replace("| `E001` |", "| `E001x` |"), encoding="utf-8")
    assert docgen.drifted(tmp_path) == ["codes.md: codes"]


def test_readme_is_a_newcomers_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    assert "make sft" in readme and "make test" in readme
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).is_file(), link


def test_the_bundled_model_count_in_preflight_md_is_the_presets():
    """docs/preflight.md states how many models the presets bundle; the count is hand-written beside a hand-written
    family list, so it is checked here (it drifted twice when presets were added)."""
    import json

    bundled = sum(len(json.loads(p.read_text(encoding="utf-8"))["models"])
                  for p in (PACKAGE / "planner" / "presets").glob("*.json"))
    stated = re.search(r"presets/\*\.json` — (\d+) models", (ROOT / "docs" / "preflight.md").read_text(encoding="utf-8"))
    assert stated and int(stated.group(1)) == bundled, f"docs/preflight.md: say {bundled} models"


def test_the_fixture_counts_in_preflight_md_are_the_fixtures():
    """docs/preflight.md states how many real failures and working setups the fixtures hold (they drifted from
    34/81 to 67/180 unnoticed)."""
    fixtures = ROOT / "tests" / "fixtures"
    issues = sorted((fixtures / "issues").glob("*.yaml"))
    warned = sum("expect: warning" in p.read_text(encoding="utf-8") for p in issues)
    working = len(list((fixtures / "working").glob("*.yaml")))
    text = (ROOT / "docs" / "preflight.md").read_text(encoding="utf-8")
    stated = re.search(r"rebuilds (\d+) launches", text), re.search(r"except the (\d+) marked `expect: warning`", text)
    plans = re.search(r"plans the (\d+) published working setups", text)
    assert stated[0] and stated[1] and plans, "docs/preflight.md: the fixture sentence changed; update this test"
    assert (int(stated[0].group(1)), int(stated[1].group(1)), int(plans.group(1))) == (len(issues), warned, working), (
        f"docs/preflight.md: say {len(issues)} launches, {warned} marked expect: warning, {working} working setups")
