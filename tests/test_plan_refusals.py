"""Recipes ms-swift would refuse at start-up are refused by `plan` (#19.4), and hostile YAML or file
names are usage errors, not hangs or internal errors (#19.5)."""

from __future__ import annotations

import errno
import os

import pytest

from conftest import ROOT, swift_ext

HEAD = "command: sft\nengine: swift\n"


def refused(path, *contains, code=2):
    result = swift_ext("plan", path)
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    for text in contains:
        assert text in result.stderr, (text, result.stderr)
    return result.stderr


@pytest.mark.parametrize("body, where, says", [
    ("args: null\n", ":3:1: args:", "is empty"),
    ("args:\n  dataset: [a.jsonl]\n", "args.model:", "is missing"),
    ("args:\n  model: null\n  dataset: [a.jsonl]\n", ":4:3: args.model:", "is null"),
])
def test_a_recipe_without_a_model_is_refused(write, body, where, says):
    path = write("r.yaml", HEAD + body)
    refused(path, f"{path}{where}" if where.startswith(":") else where, says, "model")


def test_a_model_from_a_megatron_checkpoint_is_enough(write):
    path = write("r.yaml", "command: sft\nargs:\n  mcore_model: /ckpt\n  dataset: [a.jsonl]\n")
    assert "without a model" not in swift_ext("plan", path).stderr


def test_rlhf_without_rlhf_type_names_ms_swifts_default(write):
    from swift_ext.msswift.schema import schema_for

    default = schema_for("swift", "rlhf").fields["rlhf_type"].default
    path = write("r.yaml", "command: rlhf\nengine: swift\nargs:\n  model: Qwen/Qwen3-0.6B\n  dataset: [a.jsonl]\n")
    result = swift_ext("plan", path)
    assert f"args.rlhf_type: not set: ms-swift's default {default!r} applies" in result.stderr, result.stderr
    with_type = write("s.yaml", path.read_text() + f"  rlhf_type: {default}\n")
    assert "args.rlhf_type" not in swift_ext("plan", with_type).stderr


GRPO = ("command: rlhf\nengine: swift\nargs:\n  model: Qwen/Qwen3-0.6B\n  rlhf_type: grpo\n"
        "  reward_funcs: [accuracy]\n  dataset: [a.jsonl]\n  per_device_train_batch_size: 8\n")


@pytest.mark.parametrize("key, value, says", [
    ("temperature", "-1", "`temperature` (=-1.0) has to be a strictly positive float"),
    ("top_p", "1.5", "`top_p` has to be a float > 0 and < 1, but is 1.5"),
    ("top_k", "-3", "`top_k` has to be a strictly positive integer, but is -3"),
    ("repetition_penalty", "0", "`penalty` has to be a strictly positive float"),
])
def test_sampling_values_transformers_refuses_are_refused(write, key, value, says):
    path = write("r.yaml", GRPO + f"  {key}: {value}\n")
    refused(path, f"args.{key}: transformers refuses this: {says}")


@pytest.mark.parametrize("key, value", [("temperature", "0"), ("top_k", "-1"), ("top_p", "1.0"),
                                        ("temperature", "0.7")])
def test_ms_swift_sentinels_and_plain_values_pass(write, key, value):
    path = write("r.yaml", GRPO + f"  {key}: {value}\n")
    assert "transformers refuses" not in swift_ext("plan", path).stderr


def test_yaml_alias_bomb_is_refused_not_expanded(write):
    lines = ['  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    path = write("bomb.yaml", HEAD + "args:\n  model: x\n" + "\n".join(lines) + "\n")
    refused(path, "YAML aliases expand to more than", "alias bomb", code=2)


def test_small_aliases_still_work(write):
    path = write("r.yaml", HEAD + "args:\n  model: Qwen/Qwen3-0.6B\n  dataset: &d [a.jsonl]\n  val_dataset: *d\n")
    assert "YAML" not in swift_ext("plan", path).stderr


def test_a_huge_document_is_refused_by_size(write):
    from swift_ext.spec.yamlio import MAX_DOCUMENT_BYTES

    path = write("big.yaml", HEAD + "description: " + "x" * (MAX_DOCUMENT_BYTES + 1) + "\n")
    refused(path, "too large", code=2)


def test_an_over_long_file_name_is_a_usage_error(tmp_path):
    name = tmp_path / ("r" * (os.pathconf(tmp_path, "PC_NAME_MAX") + 10) + ".yaml")
    with pytest.raises(OSError) as caught:
        name.stat()
    assert caught.value.errno == errno.ENAMETOOLONG  # the premise: this file system refuses the name
    result = swift_ext("plan", name)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "File name too long" in result.stderr


def test_an_over_long_base_recipe_name_is_a_usage_error(write):
    path = write("r.yaml", "extends: " + "b" * 4000 + ".yaml\n" + HEAD + "args:\n  model: x\n")
    result = refused(path, "extends", code=2)
    assert len(result.strip().splitlines()) == 1


def test_a_yaml_boolean_word_in_a_string_argument_is_refused_with_the_quote_hint():
    """`eval_strategy: no` is YAML's boolean false: ms-swift would get `--eval_strategy false` and stop at start-up.
    Quoted, it is the string ms-swift means."""
    from conftest import swift_ext_in_process  # what plan decides, not the CLI process

    bare = swift_ext_in_process("plan", ROOT / "recipes/smoke/tiny-grpo.yaml", "args.eval_strategy=no")
    assert bare.returncode == 2 and "got the boolean false" in bare.stderr and "quote" in bare.stderr, bare.stderr
    quoted = swift_ext_in_process("plan", ROOT / "recipes/smoke/tiny-grpo.yaml", "args.eval_strategy='no'")
    assert quoted.returncode == 0, quoted.stderr
