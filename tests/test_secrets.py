"""Credentials given as ms-swift arguments (hub_token ...) are never printed or written: printed commands,
plan --json, run manifests, batch scripts and imported recipes hold a `$VARIABLE` reference (#19.3)."""

from __future__ import annotations

import json

from conftest import swift_ext

from swift_ext.spec.secrets import SECRET_ARGS, is_secret_arg

SECRET = "hf_SuperSecretValue123"
RECIPE = ("command: sft\nengine: swift\nlaunch:\n  gpus_per_node: 0\nargs:\n  model: Qwen/Qwen3-0.6B\n"
          "  dataset: [a.jsonl]\n  push_to_hub: true\n  hub_token: $HF_TOKEN\n  output_dir: out\n")


def test_the_credential_list_matches_ms_swifts_argument_names():
    """Every argument in the schema snapshot whose name says credential is in SECRET_ARGS, and no other:
    a new ms-swift credential argument fails here until it is listed with its variable."""
    from swift_ext.msswift.schema import SNAPSHOT

    data = json.loads(SNAPSHOT.read_text())
    names = {n for fields in data["classes"].values() for n in fields}
    assert {n for n in names if is_secret_arg(n)} == set(SECRET_ARGS)
    assert not is_secret_arg("calculate_per_token_loss") and not is_secret_arg("max_new_tokens")


def test_plan_print_and_json_show_the_reference_not_the_value(write):
    path = write("r.yaml", RECIPE)
    printed = swift_ext("plan", path, "--print", env={"HF_TOKEN": SECRET})
    assert printed.returncode == 0, printed.stderr
    assert '--hub_token "$HF_TOKEN"' in printed.stdout and SECRET not in printed.stdout + printed.stderr
    as_json = swift_ext("plan", path, "--json", env={"HF_TOKEN": SECRET})
    assert SECRET not in as_json.stdout + as_json.stderr
    argv = json.loads(as_json.stdout)["argv"]
    assert argv[argv.index("--hub_token") + 1] == "$HF_TOKEN"


def test_the_executed_argv_gets_the_value_the_manifest_the_reference(write, monkeypatch):
    from swift_ext.planner.launch import build_launch
    from swift_ext.runs.run import manifest
    from swift_ext.spec.recipe import load_recipe

    monkeypatch.setenv("HF_TOKEN", SECRET)
    recipe = load_recipe(write("r.yaml", RECIPE))
    launch = build_launch(recipe)
    assert launch.argv[launch.argv.index("--hub_token") + 1] == SECRET  # what ms-swift receives
    assert SECRET not in json.dumps(manifest(recipe, launch)) and SECRET not in launch.shell()
    # a literal (planned with errors, run with --force) is not written either
    literal = load_recipe(write("l.yaml", RECIPE), [f"args.hub_token={SECRET}"])
    stored = json.dumps(manifest(literal, build_launch(literal)))
    assert SECRET not in stored and '"hub_token": "$HF_TOKEN"' in stored


def test_a_literal_credential_in_a_recipe_is_refused(write):
    result = swift_ext("plan", write("r.yaml", RECIPE.replace("$HF_TOKEN", SECRET)))
    assert result.returncode == 2
    assert "args.hub_token: a credential written into the recipe" in result.stderr
    assert "`hub_token: $HF_TOKEN`" in result.stderr and SECRET not in result.stderr


def test_import_turns_a_literal_credential_into_a_reference(write):
    script = write("train.sh", f"swift sft \\\n  --model Qwen/Qwen3-0.6B \\\n  --dataset a.jsonl \\\n"
                               f"  --hub_token {SECRET}\n")
    result = swift_ext("import", script)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "hub_token: $HF_TOKEN" in result.stdout and "note:" in result.stderr and "export HF_TOKEN" in result.stderr


def test_the_batch_script_holds_the_reference():
    from conftest import RECIPES

    result = swift_ext("submit", RECIPES / "qwen3_6/sft-lora-4x32g.yaml", "args.hub_token=$HF_TOKEN", "--dry-run",
                       env={"HF_TOKEN": SECRET})
    assert result.returncode == 0, result.stderr
    assert '--hub_token "$HF_TOKEN"' in result.stdout and SECRET not in result.stdout + result.stderr
