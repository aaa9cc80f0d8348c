"""merge / infer / report: command construction (Megatron paths need GPUs, so --print is the test),
bad input, scoring of truncated results, comparisons and the report's plots."""

from __future__ import annotations

import json

import pytest

from conftest import swift_ext
from swift_ext.spec.findings import UserError
from swift_ext.after.infer import compare, score
from swift_ext.after.merge import plan_merge, read_checkpoint

MEGATRON_ARGS = {"model": "Qwen/Qwen3.6-35B-A3B", "model_type": "qwen3_5_moe", "tuner_type": "lora",
                 "tensor_model_parallel_size": 2, "expert_model_parallel_size": 4, "pipeline_model_parallel_size": 1,
                 "merge_lora": False, "template": "qwen3_5"}


# Megatron's torch_dist format as ms-swift 4.6 saves it inside checkpoint-200 (save_mcore_checkpoint): the tracker and
# iter_0000200/ (merge refuses a checkpoint with neither that nor safetensors).
TORCH_DIST = ("latest_checkpointed_iteration.txt", "iter_0000200/", "iter_0000200/metadata.json")


def checkpoint(tmp_path, args: dict, files=("adapter_model.safetensors", "adapter_config.json"),
               name="checkpoint-200"):
    ckpt = tmp_path / "run" / "v0-20261129-101010" / name
    ckpt.mkdir(parents=True)
    (ckpt / "args.json").write_text(json.dumps(args))
    for f in files:
        if f.endswith("/"):
            (ckpt / f).mkdir()
        elif f == "latest_checkpointed_iteration.txt":
            (ckpt / f).write_text(name.removeprefix("checkpoint-"))
        else:
            (ckpt / f).write_bytes(b"{}" if f.endswith(".json") else b"\0")
    return ckpt


def printed(*args):
    result = swift_ext(*map(str, args))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_megatron_lora_merge_command(tmp_path):
    ckpt = checkpoint(tmp_path, {**MEGATRON_ARGS, "mtp_num_layers": 1})
    assert printed("merge", ckpt, "--print") == (
        "NPROC_PER_NODE=4 \\\nCUDA_VISIBLE_DEVICES=0,1,2,3 \\\nmegatron export \\\n"
        f"    --adapters {ckpt} \\\n    --to_hf true \\\n    --merge_lora true \\\n"
        f"    --output_dir {ckpt}-merged \\\n    --tensor_model_parallel_size 2 \\\n"
        "    --expert_model_parallel_size 4 \\\n    --mtp_num_layers 1\n")


def test_megatron_torch_dist_adapter_keeps_mtp_weights(tmp_path):
    ckpt = checkpoint(tmp_path, MEGATRON_ARGS, files=TORCH_DIST)  # no safetensors: Megatron's torch_dist format
    out = printed("merge", ckpt, "--print", "--out", tmp_path / "merged")
    assert f"--mcore_adapter {ckpt}" in out and f"--output_dir {tmp_path / 'merged'}" in out
    assert "--save_missing_weights true" in out  # Qwen3.6 has an MTP layer that training did not use


def test_megatron_full_checkpoint(tmp_path):
    ckpt = checkpoint(tmp_path, {**MEGATRON_ARGS, "tuner_type": "full", "expert_model_parallel_size": 8,
                                 "tensor_model_parallel_size": 1}, files=TORCH_DIST)
    out = printed("merge", ckpt, "--print")
    assert f"megatron export \\\n    --mcore_model {ckpt} \\\n    --to_hf true \\\n" in out
    assert "--merge_lora" not in out and "NPROC_PER_NODE=8" in out


def test_megatron_full_safetensors_checkpoint_needs_no_base_model_here(tmp_path):
    # save_safetensors wrote the whole model (config + weights): nothing to merge, so a base path recorded on the
    # training machine that is missing here is no reason to refuse
    ckpt = checkpoint(tmp_path, {**MEGATRON_ARGS, "tuner_type": "full", "model": "/data/models/gone"},
                      files=("config.json", "model-00001-of-00001.safetensors", *TORCH_DIST))
    plan = plan_merge(read_checkpoint(ckpt))
    assert plan.already_merged and plan.launch is None and plan.output_dir == ckpt


def test_megatron_full_torch_dist_checkpoint_still_needs_its_base_model(tmp_path):
    # megatron export --mcore_model reads the config and tokenizer from the base model: a missing one is refused
    ckpt = checkpoint(tmp_path, {**MEGATRON_ARGS, "tuner_type": "full", "model": "/data/models/gone"},
                      files=TORCH_DIST)
    with pytest.raises(UserError, match="does not exist here"):
        plan_merge(read_checkpoint(ckpt))


def test_transformers_lora_merge_command(tmp_path):
    ckpt = checkpoint(tmp_path, {"model": "Qwen/Qwen2.5-7B-Instruct", "tuner_type": "lora", "model_type": "qwen2"})
    assert printed("merge", ckpt, "--print") == (
        f"swift export \\\n    --adapters {ckpt} \\\n    --merge_lora true \\\n    --output_dir {ckpt}-merged\n")


def test_training_already_merged(tmp_path):
    ckpt = checkpoint(tmp_path, {**MEGATRON_ARGS, "merge_lora": True})
    (ckpt.parent / "checkpoint-200-merged").mkdir()
    result = swift_ext("merge", ckpt)
    assert result.returncode == 0 and "merge_lora: true" in result.stderr
    assert result.stdout.strip() == str(ckpt.parent / "checkpoint-200-merged")


def test_not_a_checkpoint(tmp_path):
    result = swift_ext("merge", tmp_path)
    assert result.returncode == 2 and "no args.json" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "args.json").write_text("{not json")
    result = swift_ext("merge", tmp_path)
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_base_model_missing(tmp_path):
    ckpt = checkpoint(tmp_path, {"model": "/mnt/gone/Qwen3.6-35B-A3B", "tuner_type": "lora"})
    result = swift_ext("merge", ckpt, "--print")
    assert result.returncode == 2 and "does not exist here" in result.stderr and "--base-model" in result.stderr
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4,
                                                  "num_hidden_layers": 2, "vocab_size": 100}))
    assert f"--model {base}" in printed("merge", ckpt, "--print", "--base-model", base)


def test_output_exists(tmp_path):
    ckpt = checkpoint(tmp_path, MEGATRON_ARGS)
    taken = tmp_path / "taken"
    taken.mkdir()
    result = swift_ext("merge", ckpt, "--out", taken)
    assert result.returncode == 2 and "already exists" in result.stderr


def test_infer_command_uses_recorded_settings_and_manifest_env(tmp_path):
    val = tmp_path / "val.jsonl"
    val.write_text('{"messages": [{"role": "user", "content": "1+1?"}], "solution": "2"}\n')
    ckpt = checkpoint(tmp_path, {**MEGATRON_ARGS, "val_dataset": [str(val)], "enable_thinking": False})
    (ckpt.parent.parent / "swift-ext-run-20261129-101010.json").write_text(json.dumps(
        {"env": {"IMAGE_MAX_TOKEN_NUM": "1024", "WANDB_API_KEY": "***"}, "cwd": str(tmp_path)}))
    out = printed("infer", ckpt, "--print", "--max-new-tokens", "64", "--backend", "vllm")
    assert out.startswith("IMAGE_MAX_TOKEN_NUM=1024 \\\nswift infer \\\n") and "WANDB" not in out
    assert f"--adapters {ckpt}" in out and "--template qwen3_5" in out and "--enable_thinking false" in out
    assert "--infer_backend vllm" in out and "--max_new_tokens 64" in out and "/eval-" in out


def test_infer_without_a_validation_split(tmp_path):
    ckpt = checkpoint(tmp_path, {**MEGATRON_ARGS, "val_dataset": [], "split_dataset_ratio": 0})
    result = swift_ext("infer", ckpt)
    assert result.returncode == 2 and "no validation split" in result.stderr and "--split FILE" in result.stderr
    ratio = checkpoint(tmp_path, {**MEGATRON_ARGS, "split_dataset_ratio": 0.01}, name="checkpoint-300")
    assert "--load_data_args true" in printed("infer", ratio, "--print")


def test_infer_empty_split_file(tmp_path):
    ckpt = checkpoint(tmp_path, MEGATRON_ARGS)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = swift_ext("infer", ckpt, "--split", empty)
    assert result.returncode == 2 and "validation split is empty" in result.stderr
    assert not list(ckpt.glob("eval-*/infer_result.jsonl"))


def test_truncated_results_are_counted_not_hidden(tmp_path):
    val = tmp_path / "val.jsonl"
    val.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"}], "solution": f"${i}$"}) + "\n"
                           for i in range(5)))
    results = tmp_path / "infer_result.jsonl"
    good = [{"response": "<think>\n\n</think>\n\n\\boxed{0}", "labels": None},
            {"response": "\\boxed{7}", "labels": None},
            {"response": "<think>\nhmm\n</think>\n\nthe answer is 2", "labels": None}]
    results.write_text("".join(json.dumps(r) + "\n" for r in good) + '{"response": "\\\\boxed{3')  # killed mid-write
    metrics = score(results, val, max_new_tokens=16, model_dir=None)
    assert metrics["rows"] == 5 and metrics["scored_rows"] == 3 and metrics["unscored_rows"] == 3
    assert metrics["math_accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    assert metrics["math_accuracy_stats"]["timeouts"] == 0
    assert metrics["think_block"] == pytest.approx(2 / 3, abs=1e-3) and metrics["nonempty_think"] == 0.5


def test_math_items_past_the_deadline_are_counted_not_hidden(tmp_path, monkeypatch):
    # a deadline no parse can meet: each timed-out item scores 0 and the summary says how many there were
    from swift_ext.rewards import verifypool

    monkeypatch.setattr(verifypool, "OFFLINE_DEADLINE_S", 1e-4)
    val = tmp_path / "val.jsonl"
    val.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"}], "solution": f"${i}$"}) + "\n"
                           for i in range(4)))
    results = tmp_path / "infer_result.jsonl"
    results.write_text("".join(json.dumps({"response": f"the answer is {i}", "labels": None}) + "\n" for i in range(4)))
    metrics = score(results, val, max_new_tokens=16, model_dir=None)
    timeouts = metrics["math_accuracy_stats"]["timeouts"]
    assert timeouts >= 1 and metrics["math_accuracy"] <= 1 - timeouts / 4


def test_metrics_are_never_overwritten(tmp_path):
    from swift_ext.after.infer import write_metrics

    write_metrics(tmp_path, {"a": 1})
    with pytest.raises(FileExistsError):
        write_metrics(tmp_path, {"a": 2})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"a": 1}


def test_compare(tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    for d, acc in ((a, 0.25), (b, 0.5)):
        d.mkdir()
        (d / "metrics.json").write_text(json.dumps({"exact_match": 0.1, "math_accuracy": acc, "scored_rows": 8,
                                                     "response_chars": {"mean": 100.0}}))
    rows = {k: (va, vb, diff) for k, va, vb, diff in compare(json.loads((a / "metrics.json").read_text()),
                                                           json.loads((b / "metrics.json").read_text()))}
    assert rows["math_accuracy"] == (0.25, 0.5, 0.25) and rows["exact_match"][2] == 0
    out = printed("infer", "--compare", a, "--compare", b)
    assert "math_accuracy" in out and "+0.25" in out
    result = swift_ext("infer", "--compare", a)
    assert result.returncode == 2 and "exactly two" in result.stderr


def test_report_from_a_grpo_log(tmp_path):
    run = tmp_path / "out" / "v0-20261129-101010"
    run.mkdir(parents=True)
    rows = [{"loss": 0.5 - i / 100, "learning_rate": 1e-5, "reward": i / 10, "rewards/MathAccuracyReward/mean": i / 10,
             "global_step/max_steps": f"{i}/10"} for i in range(1, 11)]
    (run / "logging.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    out = printed("report", tmp_path / "out")
    (report,) = list((tmp_path / "out").glob("report-*"))
    assert str(report / "summary.md") in out
    for png in ("loss.png", "learning_rate.png", "reward.png"):
        assert (report / png).stat().st_size > 1000
    assert "reward: 1.0" in (report / "summary.md").read_text()


def test_two_reports_in_the_same_second_each_get_a_folder(tmp_path):
    import datetime as dt

    from swift_ext.after.report import make_report

    run = tmp_path / "out" / "v0-20261129-101010"
    run.mkdir(parents=True)
    (run / "logging.jsonl").write_text("".join(json.dumps({"loss": 1.0 / i, "global_step/max_steps": f"{i}/3"}) + "\n"
                                               for i in range(1, 4)))
    now = dt.datetime(2026, 12, 7, 1, 2, 3)
    first, second = make_report(tmp_path / "out", now=now), make_report(tmp_path / "out", now=now)
    assert first.name == "report-20261207-010203" and second.name == "report-20261207-010203-1"
    assert (first / "summary.md").is_file() and (second / "summary.md").is_file()


def test_report_needs_a_run_dir(tmp_path):
    result = swift_ext("report", tmp_path)
    assert result.returncode == 2 and "no logging.jsonl" in result.stderr


def test_read_checkpoint_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError):
        read_checkpoint(tmp_path / "nope")
    with pytest.raises(UserError):
        plan_merge(read_checkpoint(checkpoint(tmp_path, {"tuner_type": "lora"})))  # no base model recorded


def test_infer_bad_backend_refused_before_anything_runs(tmp_path):
    ckpt = checkpoint(tmp_path, {**MEGATRON_ARGS, "split_dataset_ratio": 0.01})
    result = swift_ext("infer", ckpt, "--backend", "foo")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--infer_backend: expected one of vllm, transformers, sglang, lmdeploy, pt, got 'foo'" in result.stderr
    assert not list(ckpt.glob("eval-*"))


def test_infer_invalid_split_file_is_validated_first(tmp_path):
    ckpt = checkpoint(tmp_path, MEGATRON_ARGS)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{"messages": "not a list"}\n{oops\n')
    result = swift_ext("infer", ckpt, "--split", bad)
    assert result.returncode == 2 and "not a usable validation split (" in result.stderr
    assert "bad.jsonl:2" in result.stderr and "Traceback" not in result.stderr and not list(ckpt.glob("eval-*"))


def test_infer_with_a_backend_that_is_not_installed_is_refused_first(tmp_path):
    import importlib.util

    missing = next((b for b in ("vllm", "lmdeploy", "sglang") if importlib.util.find_spec(b) is None), None)
    if missing is None:
        pytest.skip("vllm, lmdeploy and sglang are all installed here")
    ckpt = checkpoint(tmp_path, {**MEGATRON_ARGS, "split_dataset_ratio": 0.01})
    result = swift_ext("infer", ckpt, "--backend", missing)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"error: --backend {missing}: the `{missing}` package is not installed in this "
                                     f"environment (pip install {missing} (matching ms-swift's supported version), "
                                     "or use --backend transformers)")
    assert not list(ckpt.glob("eval-*"))  # no eval dir, no metrics.json


def test_merge_of_a_checkpoint_that_is_not_an_adapter_is_refused(tmp_path):
    ckpt = checkpoint(tmp_path, {"model": "Qwen/Qwen2.5-7B-Instruct", "tuner_type": "lora"},
                      files=("model.safetensors",))
    result = swift_ext("merge", ckpt)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{ckpt}: not a LoRA adapter checkpoint: no adapter_config.json" in result.stderr
    assert not (tmp_path / "run" / "v0-20261129-101010" / "checkpoint-200-merged").exists()


@pytest.mark.parametrize("name", ["args.json", "adapter_config.json"])
def test_damaged_json_in_a_checkpoint_is_one_line_naming_the_file(tmp_path, name):
    ckpt = checkpoint(tmp_path, {"model": "Qwen/Qwen2.5-7B-Instruct", "tuner_type": "lora"})
    (ckpt / name).write_text('{"model": "Qwen/Qw')  # cut short, as by a full disk
    for verb in (["merge", ckpt, "--print"], ["infer", ckpt, "--print"]):
        result = swift_ext(*map(str, verb))
        if name == "adapter_config.json" and verb[0] == "infer":
            continue  # infer passes the adapter to ms-swift as it is
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {ckpt / name}: {name} is not valid JSON"), lines


def test_load_data_args_with_a_training_file_not_found_from_here_is_refused(tmp_path, monkeypatch):
    """--load_data_args re-reads args.json's relative `dataset` from the current directory; ms-swift takes a
    missing local file for a hub id (dataset_syntax.py: a path only when os.path.exists)."""
    trained_in = tmp_path / "project"
    (trained_in / "data").mkdir(parents=True)
    (trained_in / "data" / "train.jsonl").write_text('{"messages": [{"role": "user", "content": "x"}]}\n')
    ckpt = checkpoint(tmp_path, {**MEGATRON_ARGS, "dataset": ["data/train.jsonl#500"], "split_dataset_ratio": 0.01})
    (ckpt.parent.parent / "swift-ext-run-20261129-101010.json").write_text(json.dumps({"cwd": str(trained_in)}))
    result = swift_ext("infer", ckpt, "--print", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "'data/train.jsonl'" in result.stderr and f"run from {trained_in}" in result.stderr
    ran_there = swift_ext("infer", ckpt.resolve(), "--print", cwd=trained_in)
    assert ran_there.returncode == 0 and "--load_data_args true" in ran_there.stdout, ran_there.stderr


def test_infer_of_a_torch_dist_checkpoint_says_to_merge_it_first(tmp_path):
    # `swift infer --adapters` loads PEFT adapters only; ms-swift 4.6's InferArguments has no mcore_adapter
    val = tmp_path / "val.jsonl"
    val.write_text('{"messages": [{"role": "user", "content": "1+1?"}]}\n')
    ckpt = checkpoint(tmp_path, {**MEGATRON_ARGS, "val_dataset": [str(val)]}, files=())
    (ckpt / "iter_0000200").mkdir()
    result = swift_ext("infer", ckpt, "--print")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "torch_dist" in result.stderr and f"swift-ext merge {ckpt}" in result.stderr
    (ckpt.with_name("checkpoint-200-merged")).mkdir()  # merged: infer runs it
    assert f"--model {ckpt}-merged" in printed("infer", ckpt, "--print")


def test_infer_of_ms_swifts_own_tuner_checkpoint_passes_it_as_adapters(tmp_path):
    """tuner_type adapter / llamapro checkpoints keep adapter_config.json in default/ (SwiftModel.save_pretrained), which
    ms-swift's BaseArguments._check_is_adapter accepts for --adapters: not a torch_dist checkpoint to refuse. The
    checkpoint is saved by ms-swift itself over a two-layer Qwen2."""
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from swift.arguments import BaseArguments
    from swift.tuners import AdapterConfig, Swift

    val = tmp_path / "val.jsonl"
    val.write_text('{"messages": [{"role": "user", "content": "1+1?"}]}\n')
    ckpt = checkpoint(tmp_path, {"model": "Qwen/Qwen2.5-0.5B", "tuner_type": "adapter", "template": "qwen2_5",
                                 "val_dataset": [str(val)]}, files=())
    config = Qwen2Config(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    model = Swift.prepare_model(Qwen2ForCausalLM(config), AdapterConfig(
        dim=32, target_modules=r"model\.layers\.\d+\.mlp", hidden_pos=0, adapter_length=4))
    model.save_pretrained(str(ckpt))
    assert not (ckpt / "adapter_config.json").exists() and BaseArguments._check_is_adapter(str(ckpt))
    assert f"--adapters {ckpt}" in printed("infer", ckpt, "--print")


def test_ms_swift_reads_a_relative_dataset_missing_here_as_a_hub_id(tmp_path, monkeypatch):
    """The engine line the load_data_args refusal stands for: DatasetSyntax calls an entry a local path only when
    the file exists from the current directory."""
    from swift.dataset.dataset_syntax import DatasetSyntax

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    assert DatasetSyntax.parse("data/train.jsonl#500").dataset_type == "path"
    monkeypatch.chdir(tmp_path / "data")
    assert DatasetSyntax.parse("data/train.jsonl#500").dataset_type == "repo"
