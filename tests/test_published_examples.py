"""Constructs found in ms-swift's published Megatron example scripts (issue #21's round-trip acceptance:
bench/bench_examples_roundtrip.py) that `import` -> `plan` refused although ms-swift 4.6 + megatron-core
0.16.1 run them. Each test is a small synthetic script with the construct, imported and planned through the
real CLI; next to it, the input that must still be refused."""

from __future__ import annotations

import pytest

from conftest import swift_ext

TINY = "Qwen/Qwen3-0.6B"


def script(*flags: str, head: str = "NPROC_PER_NODE=2 \\\n") -> str:
    body = " \\\n".join(f"    {f}" for f in (f"--model {TINY}", "--dataset data.jsonl", "--tuner_type lora",
                                              "--output_dir out", *flags))
    return f"{head}megatron sft \\\n{body}\n"


def import_and_plan(write, tmp_path, text: str):
    sh = write("run.sh", text)
    recipe = tmp_path / "run.yaml"
    imported = swift_ext("import", sh, "-o", recipe)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    return imported, swift_ext("plan", recipe)


@pytest.mark.parametrize("value, refused", [("0", False), ("-1", True)])
def test_mtp_num_layers_zero_means_no_mtp_block(write, tmp_path, value, refused):
    # ms-swift's GLM-5.3 example passes `--mtp_num_layers 0` to switch the checkpoint's MTP head off;
    # megatron-core 0.16.1 builds no MTP block for 0. A negative count is still an error.
    imported, planned = import_and_plan(write, tmp_path, script(f"--mtp_num_layers {value}"))
    said = imported.stderr + planned.stderr
    if refused:
        assert planned.returncode == 2 and "expected 0 or a positive integer, got -1" in planned.stderr, said
    else:
        assert planned.returncode == 0 and "args.mtp_num_layers: expected" not in said, said


def test_bench_sees_a_command_below_a_commented_continuation():
    # bash ends a comment at its newline even after a trailing backslash; the bench's pre-filter counted
    # such a script as having no training command (and skipped it) while `import` found the command.
    text = ("set -x\n    # --dataset old.jsonl \\\ntorchrun --nproc_per_node 8 swift/cli/_megatron/sft.py \\\n"
            f"    --model {TINY} \\\n    --dataset data.jsonl\n#megatron rlhf \\\n")
    assert _bench().training_commands(text) == ["megatron"]


@pytest.mark.parametrize("value, refused", [("0", False), ("-1", False), ("-3", True)])
def test_top_k_zero_means_off_in_a_grpo_rollout(write, tmp_path, value, refused):
    # ms-swift's OPD-RL example samples with `--top_k 0`: transformers and vLLM read it as "no top-k";
    # a negative other than -1 is still refused by transformers' TopKLogitsWarper.
    text = script("--rlhf_type grpo", "--use_vllm true", "--vllm_mode colocate", "--num_generations 4",
                  "--reward_funcs accuracy", f"--top_k {value}").replace("megatron sft", "megatron rlhf")
    imported, planned = import_and_plan(write, tmp_path, text)
    said = imported.stderr + planned.stderr
    assert ("args.top_k: transformers refuses" in said) == refused, said


@pytest.mark.parametrize("launcher", ["$PY -m torch.distributed.run --nproc_per_node 4 --master_port 29700",
                                      "/opt/env/bin/torchrun --nproc_per_node 4"])
def test_interpreter_or_launcher_named_by_path(write, tmp_path, launcher):
    # ms-swift's test_lora_colocate.sh sets PYTHON=/path/to/env/bin/python and runs
    # `$PYTHON -m torch.distributed.run ... /path/swift/cli/_megatron/rlhf.py`; import found no command.
    text = (f"PY=/opt/env/bin/python3.11\n{launcher} \\\n    /src/ms-swift/swift/cli/_megatron/sft.py \\\n"
            f"    --model {TINY} \\\n    --dataset data.jsonl \\\n    --output_dir out\n")
    imported, planned = import_and_plan(write, tmp_path, text)
    recipe = (tmp_path / "run.yaml").read_text()
    assert "command: sft" in recipe and "engine: megatron" in recipe and "gpus_per_node: 4" in recipe, recipe
    assert planned.returncode == 0, planned.stderr


@pytest.mark.parametrize("launcher, per_node, nodes", [
    ('accelerate launch --config_file "./fsdp2.json"', 8, 1),  # NPROC_PER_NODE=8 from the script's own prefix
    ("/opt/env/bin/accelerate launch --num_processes 8 --num_machines 2 --config_file=fsdp.yaml", 4, 2),
])
def test_accelerate_launch_of_an_entry_point(write, tmp_path, launcher, per_node, nodes):
    # ms-swift's examples/ascend/train/qwen3_5/qwen3_5_lora_grpo_megatron.sh runs
    # `accelerate launch --config_file ./examples/ascend/train/qwen3_5/fsdp2.json swift/cli/rlhf.py ...`;
    # import found no command. accelerate's --num_processes counts every machine's processes.
    text = (f"NPROC_PER_NODE=8 \\\n{launcher} \\\n    swift/cli/sft.py \\\n"
            f"    --model {TINY} \\\n    --dataset data.jsonl \\\n    --output_dir out\n")
    imported, planned = import_and_plan(write, tmp_path, text)
    recipe = (tmp_path / "run.yaml").read_text()
    assert "command: sft" in recipe and "engine: swift" in recipe, recipe
    assert f"gpus_per_node: {per_node}" in recipe and f"nodes: {nodes}" in recipe, recipe
    assert "--config_file" in imported.stderr and "not part of the recipe" in imported.stderr, imported.stderr
    assert planned.returncode == 0, planned.stderr


def test_accelerate_without_launch_is_not_a_command(write):
    # `accelerate config` / `accelerate env` start nothing; the entry point after them is an argument.
    sh = write("run.sh", "accelerate env swift/cli/sft.py --model x\n")
    assert swift_ext("import", sh).returncode != 0


def test_a_quoted_string_over_several_lines_is_one_word(write, tmp_path):
    # ms-swift's examples/train/grpo/internal/chord.sh exports a system prompt whose double quotes span three
    # lines; import stopped at the first line ("unterminated double quote"). An apostrophe in a comment, or in a
    # comment after a flag, opens no quote.
    text = ("# don't edit\nexport PROMPT=\"You solve MATH problems.\nThink first: <think>\\n...</think>\\n\"\n"
            f"NPROC_PER_NODE=2 \\\nswift sft \\\n    --model {TINY} \\\n    --dataset data.jsonl  # it's local\n"
            "swift sft --model x --system 'a\n  b' --dataset data.jsonl \\\n    --output_dir out\n")
    sh = write("run.sh", text)
    imported = swift_ext("import", sh, "-o", tmp_path / "run.yaml")
    assert imported.returncode == 0, imported.stderr
    first, second = (tmp_path / "run-1.yaml").read_text(), (tmp_path / "run-2.yaml").read_text()
    assert "PROMPT: 'You solve MATH problems.\n\n    Think first: <think>\\n...</think>\\n'" in first, first
    assert "dataset:\n  - data.jsonl" in first and "gpus_per_node: 2" in first, first
    assert 'system: "a\\n  b"' in second, second  # single quotes keep the newline and the indent
    assert "output_dir: out" in second, second


@pytest.mark.parametrize("launcher, engine, per_node", [
    ("torchrun --nproc_per_node=4 --master_port 29500 -m swift.cli._megatron.sft", "megatron", 4),
    ("python -m swift.cli.sft", "swift", 2),  # NPROC_PER_NODE=2 from the script's prefix
])
def test_entry_point_run_as_a_module(write, tmp_path, launcher, engine, per_node):
    # ms-swift's examples/train/moe/deepseek_v4_fsdp2_ep.sh runs `torchrun --nproc_per_node=8 ... -m swift.cli.sft`
    # (swift/cli/sft.py runs sft_main under __main__): import found no command and the bench skipped the script.
    text = (f"NPROC_PER_NODE=2 \\\n{launcher} \\\n    --model {TINY} \\\n    --dataset data.jsonl \\\n"
            "    --output_dir out\n")
    imported, planned = import_and_plan(write, tmp_path, text)
    recipe = (tmp_path / "run.yaml").read_text()
    assert "command: sft" in recipe and f"engine: {engine}" in recipe and f"gpus_per_node: {per_node}" in recipe, recipe
    assert planned.returncode == 0, planned.stderr
    assert _bench().training_commands(text) == [engine]


def test_a_module_that_is_not_a_training_entry_point_is_not_a_command(write):
    sh = write("run.sh", f"torchrun --nproc_per_node 2 -m swift.cli.export --model {TINY}\n")
    assert swift_ext("import", sh).returncode != 0
    assert _bench().training_commands(f"python -m swift.cli.infer --model {TINY}\n") == []


def _bench():
    import importlib.util
    import sys

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("bench_rt", ROOT / "bench" / "bench_examples_roundtrip.py")
    bench = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # its dataclasses look it up
    spec.loader.exec_module(bench)
    return bench


def test_a_path_that_only_ends_in_python_is_not_an_interpreter(write):
    # `echo /opt/python` and a dataset named .../python stay arguments, not commands.
    sh = write("run.sh", "echo /opt/python megatron sft --model x\n")
    assert swift_ext("import", sh).returncode != 0


@pytest.mark.parametrize("flags, refused", [
    (("--no_gradient_accumulation_fusion", "--no_masked_softmax_fusion"), False),
    (("--no_gradient_accumulation_fusion true", "--no_masked_softmax_fusion true"), True),
])
def test_negated_flag_with_a_value_as_in_dense_npu(write, tmp_path, flags, refused):
    # ms-swift's examples/megatron/lora/dense_npu.sh writes `--no_gradient_accumulation_fusion true`:
    # transformers' HfArgumentParser makes `--no_X` a store_false flag (no value), so `true` is left over and
    # ms-swift 4.6's SwiftPipeline._parse_args raises ValueError('remaining_argv: [...]'): a right refusal.
    # The bare flag is what ms-swift runs, and import reads it as `X: false`.
    imported, planned = import_and_plan(write, tmp_path, script(*flags))
    said = imported.stderr + planned.stderr
    recipe = (tmp_path / "run.yaml").read_text()
    if refused:
        assert planned.returncode == 2 and "value-less flag --no_gradient_accumulation_fusion" in said, said
    else:
        assert "gradient_accumulation_fusion: false" in recipe and "masked_softmax_fusion: false" in recipe, recipe
        assert "unknown-argument" not in said and "value-less" not in said, said


@pytest.mark.parametrize("value, fused", [("true", "false"), ("false", "true")])
def test_negated_fusion_switch_of_3x_is_turned_round_by_upgrade(write, tmp_path, value, fused):
    # dense_npu.sh is a 3.x script (--max_epochs, --save, --num_workers); 3.x documents
    # `--no_gradient_accumulation_fusion true` (a no_* dataclass field, default False), 4.6 has
    # `gradient_accumulation_fusion: bool = True`. `import --upgrade` writes the 4.x switch the other way round,
    # and the plan no longer refuses; without --upgrade the test above still sees ms-swift 4.6's refusal.
    sh = write("run.sh", script(f"--no_gradient_accumulation_fusion {value}", f"--no_masked_softmax_fusion {value}"))
    recipe = tmp_path / "run.yaml"
    imported = swift_ext("import", sh, "--upgrade", "-o", recipe)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    text = recipe.read_text()
    assert f"gradient_accumulation_fusion: {fused}" in text and f"masked_softmax_fusion: {fused}" in text, text
    assert "no_gradient_accumulation_fusion" not in text and "no_masked_softmax_fusion" not in text, text
    assert "3.x's switch" in imported.stderr + imported.stdout
    planned = swift_ext("plan", recipe)
    said = planned.stdout + planned.stderr
    assert planned.returncode != 2 and "unknown-argument" not in said and "value-less" not in said, said


def test_bench_counts_the_scripts_refused_only_for_3x_names(tmp_path, capsys):
    # `make bench` imports the scripts as written; a copy of the examples may hold 3.x versions, which ms-swift
    # 4.6 refuses for their names alone. The bench says how many `import --upgrade` takes, by importing again.
    (tmp_path / "new.sh").write_text(script(), encoding="utf-8")
    (tmp_path / "old.sh").write_text(script("--save_interval 100").replace("--tuner_type", "--train_type"),
                                     encoding="utf-8")
    (tmp_path / "bad.sh").write_text(script("--save_interval 100", "--tensor_model_parallel_size 3"),
                                     encoding="utf-8")
    (tmp_path / "layout.sh").write_text(script("--tensor_model_parallel_size 3"), encoding="utf-8")
    assert _bench().main([str(tmp_path)]) == 0
    said = capsys.readouterr().out
    assert "megatron: 1 of 4 planned without refusal" in said, said
    assert "megatron: 2 of 4 with `import --upgrade` (1 of the refused are refused for ms-swift 3.x names only)" \
        in said, said
    # the measure the acceptance line is about: of the scripts 4.6 can parse (new.sh, layout.sh), how many plan;
    # layout.sh is refused for its layout, bad.sh (a name 4.6 lacks) is left out
    assert "megatron: 1 of 2 written with names ms-swift 4.6 knows planned without refusal" in said, said
