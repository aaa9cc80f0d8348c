"""Every pre-flight rule has its evidence and scope (spec/ruleset.py); version gates come from one table
(spec/support.py) that plan --target-versions and doctor read."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import RECIPES, ROOT
from swift_ext.msswift.bound_args import Args
from swift_ext.msswift import schema as msargs
from swift_ext.msswift.rules import check_msswift
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe
from swift_ext.spec.ruleset import RULES, evidence_tag, rules_table_markdown
from swift_ext.spec.support import parse_targets, resolve_versions

# The modules whose findings `plan` reports, by rule name: every module of the three packages that hold rules,
# found by the scan itself (a hand list went stale when modules were split). The oracle modules report
# megatron-core's own verdict under one name and the parallel-state argument names, not rules.
RULE_PACKAGES = ("swift_ext/planner", "swift_ext/msswift", "swift_ext/spec")
NOT_RULE_MODULES = {"swift_ext/planner/oracle.py", "swift_ext/planner/oracle_grid.py"}


def _names_reported(path: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func.id if isinstance(node.func, ast.Name) else None
        first = node.args[0] if node.args else None
        if fn in ("err", "warn", "add") and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.setdefault(first.value, set()).add("warning" if fn == "warn" else "error")
        for kw in node.keywords:
            if kw.arg in ("rule", "code") and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                found.setdefault(kw.value.value, set()).add("keyword")
    return found


def rule_files() -> list[str]:
    files = [str(p.relative_to(ROOT)) for pkg in RULE_PACKAGES for p in sorted((ROOT / pkg).glob("*.py"))]
    return [f for f in files if f not in NOT_RULE_MODULES and _names_reported(ROOT / f)]


MEG_SFT = RECIPES / "qwen3_6/sft-lora-4x32g.yaml"


def used_rule_names() -> dict[str, set[str]]:
    """rule name -> how it is reported: 'error' (err/add into errors), 'warning' (warn), 'keyword' (rule=/code=)."""
    found: dict[str, set[str]] = {}
    for rel in rule_files():
        for name, kinds in _names_reported(ROOT / rel).items():
            found.setdefault(name, set()).update(kinds)
    return found


def test_rule_scan_finds_the_rule_modules():
    files = rule_files()  # a scan that silently found nothing would pass the test below vacuously
    assert {"swift_ext/planner/layout.py", "swift_ext/msswift/rules.py", "swift_ext/spec/secrets.py"} <= set(files)
    assert len(files) >= 18


def test_every_rule_used_has_evidence_and_every_entry_is_used():
    used = used_rule_names()
    assert len(used) > 40  # the scan found the rules (an AST change that hides them fails here)
    missing = sorted(set(used) - set(RULES))
    unused = sorted(set(RULES) - set(used))
    assert not missing, f"rules with no entry in spec/ruleset.py: {missing}"
    assert not unused, f"entries in spec/ruleset.py no code reports: {unused}"
    for name, info in RULES.items():
        assert info.evidence and info.what and info.scope, name
        assert all(e.kind in ("code", "report", "measurement", "policy") for e in info.evidence), name
        assert all(e.conditions for e in info.evidence if e.kind == "report"), f"{name}: a report without conditions"
        kinds = used[name] - {"keyword"}
        if kinds:  # err/warn calls: the stated severity is what the code does
            assert set(info.severity.split(", ")) >= kinds, (name, info.severity, kinds)


def test_code_evidence_names_files_of_the_installed_packages():
    roots = {"ms-swift": "swift", "megatron-core": "megatron.core", "transformers": "transformers"}
    checked = 0
    for info in RULES.values():
        for e in info.evidence:
            package, _, rest = e.ref.partition(" ")
            if e.kind != "code" or package not in roots or importlib.util.find_spec(roots[package]) is None:
                continue
            base = Path(importlib.util.find_spec(roots[package]).origin).parent
            path = rest.split(":")[0].split(" ")[0]
            root = base.parent if package == "ms-swift" else base  # ms-swift refs start with swift/
            assert (root / path).exists(), f"{info.name}: {e.ref}"
            checked += 1
    assert checked > 30


def test_markdown_table_has_one_row_per_rule():
    lines = rules_table_markdown().splitlines()
    assert lines[0] == "| rule | severity | what | evidence | scope |"
    assert len(lines) == 2 + len(RULES)
    assert any(line.startswith("| `fp8-optimizer` |") and "ms-swift#8001" in line for line in lines)


def problems(path, *overrides):
    recipe = load_recipe(path, list(overrides))
    errors, warnings = check_msswift(recipe, Args.bind(recipe, msargs.schema_for(recipe.engine, recipe.command)))
    return {p.code for p in errors}, {p.code for p in warnings}


# ms-swift examples/megatron/fp8/vlm.sh ("8 * 95GiB"): blockwise FP8 parameters, precision-aware optimizer,
# bf16 moments.
PUBLISHED_BLOCKWISE = ["args.fp8_format=e4m3", "args.fp8_recipe=blockwise", "args.fp8_param_gather=true",
                       "args.use_precision_aware_optimizer=true", "args.exp_avg_dtype=bf16",
                       "args.exp_avg_sq_dtype=bf16"]


def test_fp8_published_blockwise_setup_passes_and_the_reported_delayed_one_is_refused():
    errors, warnings = problems(MEG_SFT, *PUBLISHED_BLOCKWISE)
    assert "fp8-optimizer" not in errors | warnings
    # ms-swift #8001 / #6994: the same with fp8_recipe delayed (also ms-swift's default recipe).
    delayed = [o.replace("blockwise", "delayed") for o in PUBLISHED_BLOCKWISE]
    assert "fp8-optimizer" in problems(MEG_SFT, *delayed)[0]
    assert "fp8-optimizer" in problems(MEG_SFT, *[o for o in PUBLISHED_BLOCKWISE if "fp8_recipe" not in o])[0]
    # blockwise with fp16 main params takes FusedAdam's master-weight path again (OptimizerConfig.__post_init__).
    assert "fp8-optimizer" in problems(MEG_SFT, *PUBLISHED_BLOCKWISE, "args.main_params_dtype=fp16")[0]


def cp2_recipe(tmp_path, env: str = "") -> Path:
    path = tmp_path / "cp2.yaml"
    path.write_text(f"extends: {MEG_SFT}\n{env}args:\n  context_parallel_size: 2\n")
    return path


def test_cp_on_gated_deltanet_refused_on_016_accepted_for_a_018_target(tmp_path):
    recipe = load_recipe(cp2_recipe(tmp_path))
    assert "linear-attention-cp" in {p.code for p in make_plan(recipe, oracle=False).errors}
    ok = make_plan(recipe, oracle=False, target_versions={"megatron-core": "0.18.0"})
    assert "linear-attention-cp" not in {p.code for p in ok.errors}
    assert ok.versions.sources["megatron-core"] == "--target-versions"
    # The recipe's env says the same with one variable, and --target-versions wins over it.
    env = "env:\n  SWIFT_EXT_TARGET_VERSIONS: megatron-core=0.18.0,te=2.8\n"
    from_env = make_plan(load_recipe(cp2_recipe(tmp_path, env)), oracle=False)
    assert "linear-attention-cp" not in {p.code for p in from_env.errors}
    assert from_env.versions.versions["transformer-engine"] == "2.8"
    back = make_plan(load_recipe(cp2_recipe(tmp_path, env)), oracle=False, target_versions={"megatron-core": "0.16.1"})
    assert "linear-attention-cp" in {p.code for p in back.errors}


def test_fp8_recipe_against_compute_capability_and_transformer_engine(tmp_path):
    def fp8_rules(*over, targets=None):
        plan = make_plan(load_recipe(MEG_SFT, ["args.fp8_format=e4m3", *over]), oracle=False, target_versions=targets)
        return [p.message for p in plan.errors if p.code == "fp8-gpu"]

    assert fp8_rules("args.fp8_recipe=blockwise", "launch.gpu=H100") == []
    assert any("9.0" in m and "8.9" in m for m in fp8_rules("args.fp8_recipe=blockwise", "launch.gpu=L40S"))
    assert fp8_rules("args.fp8_recipe=tensorwise", "launch.gpu=L40S") == []
    # Transformer Engine 2.2 has no Float8BlockScaling (megatron-core fp8_utils.get_fp8_recipe: >= 2.3).
    old_te = fp8_rules("args.fp8_recipe=blockwise", "launch.gpu=H100", targets={"transformer-engine": "2.2"})
    assert any("transformer-engine 2.2 < 2.3.0" in m for m in old_te)


def test_target_versions_text_is_checked():
    assert parse_targets("mcore=0.18.0, te=2.8,vllm=0.11") == {"megatron-core": "0.18.0",
                                                             "transformer-engine": "2.8", "vllm": "0.11"}
    from swift_ext.spec.findings import UserError

    for bad in ("megatron-core", "torch=2.6", "vllm=abc"):
        with pytest.raises(UserError):
            parse_targets(bad)
    assert resolve_versions({}, {"vllm": "0.11"}).get("vllm") == (0, 11)


def test_doctor_lists_a_feature_the_installed_versions_do_not_support(tmp_path):
    from swift_ext.runs.doctor import diagnose
    from swift_ext.spec.support import installed_versions

    if "megatron-core" not in installed_versions():
        pytest.skip("needs the installed megatron-core")
    recipe = load_recipe(cp2_recipe(tmp_path), ["launch.gpus_per_node=0"])
    lines = [f.message for f in diagnose(recipe) if f.message.startswith("not supported here")]
    from swift_ext.spec.support import version_tuple

    if version_tuple(installed_versions()["megatron-core"]) < (0, 18):
        assert any("context parallel" in line and "< 0.18.0" in line for line in lines), lines
    clean = load_recipe(MEG_SFT, ["launch.gpus_per_node=0"])
    assert not [f for f in diagnose(clean) if f.message.startswith("not supported here")]


def run_cli(*argv):
    # A bare environment (no locale, no tool paths), but the suite's private cache: without SWIFT_EXT_CACHE the CLI
    # would write its argument table into the user's ~/.cache/swift-ext.
    return subprocess.run([sys.executable, "-m", "swift_ext", *argv], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                               "SWIFT_EXT_CACHE": os.environ["SWIFT_EXT_CACHE"]})


def test_cli_rules_and_the_evidence_tag_on_plan_lines(tmp_path):
    listing = run_cli("rules", "--json")
    assert listing.returncode == 0, listing.stderr
    data = json.loads(listing.stdout)
    assert {r["name"] for r in data["rules"]} == set(RULES)
    assert any(s["feature"] == "cp-linear-attention" for s in data["support"])
    out = run_cli("plan", str(cp2_recipe(tmp_path)))
    assert out.returncode == 2
    line = next(l for l in out.stderr.splitlines() if "Gated DeltaNet" in l)
    assert f"[{evidence_tag('linear-attention-cp')}]" in line and "TransformerConfig.__post_init__" in line
    ok = run_cli("plan", str(cp2_recipe(tmp_path)), "--target-versions", "megatron-core=0.18.0")
    assert "Gated DeltaNet" not in ok.stderr
    bad = run_cli("plan", str(cp2_recipe(tmp_path)), "--target-versions", "megatron-core")
    assert bad.returncode == 2 and "PACKAGE=VERSION" in bad.stderr and "Traceback" not in bad.stderr
