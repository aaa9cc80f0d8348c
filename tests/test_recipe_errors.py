"""Bad recipes: one readable message naming file (and line), exit code 2, never a traceback."""

from __future__ import annotations

import pytest

from conftest import RECIPES, swift_ext

GOOD = "command: sft\nargs:\n  model: Qwen/Qwen3.6-35B-A3B\n  dataset: [a.jsonl]\n"


def fails(path, *extra, contains: list[str]):
    result = swift_ext("plan", path, *extra)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for text in contains:
        assert text in result.stderr, (text, result.stderr)
    return result.stderr


def test_good_recipe_passes(write):
    assert swift_ext("plan", write("r.yaml", GOOD)).returncode == 0


def test_yaml_syntax_error_has_file_line_col(write):
    path = write("r.yaml", "command: sft\nargs:\n  lr: [1e-4\n  x: 1\n")
    fails(path, contains=[f"{path}:4:", "YAML syntax error"])


def test_misspelt_arg_gets_did_you_mean_with_line(write):
    # (`mtp_num_layer` is no typo: ms-swift's parser takes an unambiguous prefix; tests/test_option_names.py)
    path = write("r.yaml", GOOD + "  mtp_num_layrs: 1\n")
    fails(path, contains=[f"{path}:5:3", "args.mtp_num_layrs", "did you mean `mtp_num_layers`?"])


@pytest.mark.parametrize("old, new", [("train_type", "tuner_type"), ("load", "mcore_model"), ("save", "output_dir"),
                                      ("max_epochs", "num_train_epochs"), ("eval_interval", "eval_steps")])
def test_ms_swift_3_names_point_to_4x(write, old, new):
    path = write("r.yaml", GOOD + f"  {old}: x\n")
    fails(path, contains=[f"args.{old}", f"use `{new}`"])


def test_unknown_top_level_and_launch_keys(write):
    path = write("r.yaml", "comand: sft\nlaunch:\n  nodez: 2\n")
    err = fails(path, contains=["comand: unknown key", "did you mean 'command'", f"{path}:3:3", "launch.nodez"])
    assert "command: required key is missing" in err


def test_wrong_type_and_wrong_choice(write):
    path = write("r.yaml", GOOD + "  micro_batch_size: two\n  recompute_granularity: ful\n  finetune: maybe\n")
    fails(path, contains=["args.micro_batch_size: expected an integer, got 'two'",
                          "args.recompute_granularity: expected one of selective, full, none, got 'ful'",
                          "did you mean 'full'", "args.finetune: expected true or false"])


def test_wrong_command_and_engine_choice(write):
    fails(write("r.yaml", "command: train\nengine: deepspeed\n"), contains=["command: expected 'sft', 'rlhf' or 'pt'",
                                                                           "engine: expected 'megatron' or 'swift'"])


def test_missing_extends_file(write):
    path = write("r.yaml", "extends: nothere.yaml\n" + GOOD)
    fails(path, contains=[f"{path}:1:1", "base recipe not found", "nothere.yaml"])


def test_extends_cycle(write):
    write("a.yaml", "extends: b.yaml\ncommand: sft\n")
    path = write("b.yaml", "extends: a.yaml\n")
    fails(path, contains=["`extends` cycle", "a.yaml", "b.yaml"])


def test_extends_merges_deeply_and_later_wins(write):
    write("base.yaml", "command: sft\nlaunch: {gpus_per_node: 8, gpu: H100}\nargs:\n  lr: 1e-4\n  lora_rank: 8\n")
    write("mid.yaml", "args:\n  lora_rank: 16\n")
    path = write("r.yaml", "extends: [base.yaml, mid.yaml]\nlaunch: {nodes: 2}\nargs:\n  lr: 2e-4\n  lora_rank: null\n")
    from swift_ext.spec.recipe import load_recipe

    rec = load_recipe(path)
    assert rec.args == {"lr": 2e-4}
    assert (rec.launch.nodes, rec.launch.gpus_per_node, rec.launch.gpu) == (2, 8, "H100")
    assert rec.positions["args.lr"][0] == str(path)


def test_override_for_non_existent_path(write):
    path = write("r.yaml", GOOD)
    fails(path, "lanch.nodes=2", contains=["override for unknown path 'lanch.nodes'", "did you mean 'launch'"])
    fails(path, "launch.gpus_per_nod=2", contains=["launch.gpus_per_nod", "did you mean 'launch.gpus_per_node'"])
    fails(path, "args.lr", contains=["not of the form path=value"])


def test_override_values_are_yaml_typed(write):
    from swift_ext.spec.recipe import load_recipe

    rec = load_recipe(write("r.yaml", GOOD), ["args.lr=5e-5", "launch.nodes=2", "args.report_to=[a, b]",
                                              "args.finetune=false"])
    assert rec.args["lr"] == 5e-5 and rec.launch.nodes == 2
    assert rec.args["report_to"] == ["a", "b"] and rec.args["finetune"] is False
    assert rec.where("args.lr")["file"] == "command line"


def test_empty_recipe(write):
    fails(write("r.yaml", "# nothing\n"), contains=["empty recipe"])


def test_not_text(write):
    fails(write("r.yaml", b"\x89PNG\r\n\x1a\n\x00\x00"), contains=["not a text file"])
    fails(write("s.yaml", b"command: sft\n\xff\xfe bad"), contains=["not UTF-8"])


def test_directory_instead_of_file(tmp_path):
    fails(tmp_path, contains=["is a directory"])


def test_args_not_a_mapping(write):
    fails(write("r.yaml", "command: sft\nargs: [1, 2]\n"), contains=["`args` must be a mapping", ":2:1"])


def test_top_level_not_a_mapping(write):
    fails(write("r.yaml", "- a\n- b\n"), contains=["must be a YAML mapping"])


def test_out_of_range_values(write):
    fails(write("r.yaml", GOOD + "launch:\n  nodes: 0\n  gpus_per_node: -1\n"),
          contains=["launch.nodes", "greater than or equal to 1", "launch.gpus_per_node"])
    fails(write("s.yaml", GOOD + "  tensor_model_parallel_size: -2\n  global_batch_size: 0\n"),
          contains=["args.tensor_model_parallel_size: expected a positive integer, got -2",
                    "args.global_batch_size: expected a positive integer, got 0"])


def test_duplicate_key(write):
    fails(write("r.yaml", GOOD + "  model: other\n"), contains=["duplicate key", "args.model", ":5:3"])


def test_unknown_gpu_model(write):
    fails(write("r.yaml", GOOD + "launch: {gpu: H10}\n"), contains=["unknown GPU model 'H10'", "did you mean 'H100'"])


def test_empty_list_value(write):
    fails(write("r.yaml", GOOD + "  report_to: []\n"), contains=["empty list"])


def test_debug_shows_traceback(write):
    result = swift_ext("--debug", "plan", write("r.yaml", "command: sft\nargs: [1]\n"))
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_json_output_lists_every_violation(write):
    import json

    result = swift_ext("plan", write("r.yaml", GOOD + "  mtp_num_layrs: 1\n  lora_rnk: 4\n"), "--json")
    data = json.loads(result.stdout)
    assert result.returncode == 2 and data["ok"] is False
    assert {v["field"] for v in data["violations"]} >= {"args.mtp_num_layrs", "args.lora_rnk"}
    assert {v["rule"] for v in data["violations"]} == {"unknown-argument"}


def test_shipped_recipe_with_typo_override_fails():
    fails(RECIPES / "qwen3_6/sft-lora-4x32g.yaml", "args.moe_grouped_gemn=true",
          contains=["did you mean `moe_grouped_gemm`?", "command line"])


def test_args_schema_and_build_model_commands():
    shown = swift_ext("args", "mtp_num_layers")
    assert shown.returncode == 0 and "mtp_num_layers: an integer" in shown.stdout
    missing = swift_ext("args", "mtp_num_layrs")
    assert missing.returncode == 2 and "did you mean `mtp_num_layers`?" in missing.stderr
    prefix = swift_ext("args", "mtp_num_lay")  # ms-swift's parser reads it as --mtp_num_layers
    assert prefix.returncode == 0 and "mtp_num_layers: an integer" in prefix.stdout
    assert "`mtp_num_lay` abbreviates --mtp_num_layers" in prefix.stdout
    assert swift_ext("args", "--engine", "deepspeed").returncode == 2
    schema = swift_ext("schema")
    assert schema.returncode == 0 and "launch.gpu_memory_gib" in schema.stdout and "extends" in schema.stdout
    unknown = swift_ext("build-model", "tiny-llama")
    assert unknown.returncode == 2 and "unknown local model" in unknown.stderr and "Traceback" not in unknown.stderr


@pytest.mark.parametrize("text, line, key, kind", [
    (GOOD + "  1: 2\n", 5, "1", "a number"),
    (GOOD + "  true: x\n", 5, "true", "a boolean"),
    (GOOD + "  ~: 3\n", 5, "~", "null"),
    ("1: x\n" + GOOD, 1, "1", "a number"),  # top level: was an internal error (Recipe(**data) takes text keywords)
])
def test_key_yaml_reads_as_number_bool_or_null(write, text, line, key, kind):
    path = write("r.yaml", text)
    fails(path, contains=[f"{path}:{line}:", f"key `{key}` is {kind} to YAML", f"quote it ('{key}':)"])


def test_the_override_examples_in_plan_run_submit_help_are_valid_on_both_engines():
    # `args.lr=...` was the example: ms-swift's swift-engine parser refuses `lr` as an ambiguous prefix.
    import inspect
    import re

    from swift_ext.cli.plan import plan
    from swift_ext.cli.runs import run, submit
    from swift_ext.planner.plan import make_plan
    from swift_ext.spec.recipe import load_recipe

    examples = set()
    for command in (plan, run, submit):
        text = inspect.signature(command).parameters["overrides"].default.help
        examples |= set(re.findall(r"args\.\w+=\S+", text))
    assert examples
    for recipe in (RECIPES / "qwen3_6/sft-lora-4x32g.yaml", RECIPES / "smoke/tiny-sft.yaml"):  # megatron, swift
        result = make_plan(load_recipe(recipe, sorted(examples)), oracle=False)
        refused = [e.render() for e in result.errors if e.path in {x.split("=")[0] for x in examples}]
        assert not refused, (recipe.name, refused)
