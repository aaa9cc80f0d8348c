"""The CPU end-to-end chains, for real: `swift-ext run` (ms-swift trains the tiny Qwen3.6-architecture
model) -> `swift-ext merge` -> `swift-ext infer` on the bundled val split -> metrics.json ->
`swift-ext report` PNGs. Once for SFT (with SwanLab in local mode), once for GRPO with swift-ext's
reward plugins, inferred from base + adapter without a merge. The runs and the SFT merge are conftest's
shared ones (tests/test_eval.py and tests/test_verify.py read them too)."""

from __future__ import annotations

import json

import pytest

from conftest import new_report, swift_ext

pytestmark = pytest.mark.slow

METRIC_KEYS = {"rows", "scored_rows", "unscored_rows", "exact_match", "response_chars", "response_tokens",
               "hit_token_limit", "think_block", "max_new_tokens"}


def logged(run_dir):
    files = list(run_dir.glob("v*/logging.jsonl"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]


def watch_summary(out):
    """`swift-ext watch --json` on the finished run: step lines, then the summary; exits 0 by itself."""
    result = swift_ext("watch", out, "--json", "--peak-tflops", "1")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[-1]["event"] == "summary" and all(e["event"] == "step" for e in events[:-1])
    return events[-1]


def infer_report(ckpt, out):
    """`swift-ext infer` on the checkpoint (its merge when one is there, else base + adapter), then report."""
    inferred = swift_ext("infer", ckpt, "--max-new-tokens", "16", timeout=600)
    assert inferred.returncode == 0, inferred.stderr[-3000:]
    (metrics_file,) = list(ckpt.glob("eval-*/metrics.json"))
    metrics = json.loads(metrics_file.read_text())
    assert METRIC_KEYS <= set(metrics)
    assert metrics["rows"] == metrics["scored_rows"] > 0 and metrics["unscored_rows"] == 0
    assert metrics["exact_match"] is None or 0.0 <= metrics["exact_match"] <= 1.0
    # re-tokenising decoded text can differ from the generated ids by a token
    assert metrics["response_tokens"]["max"] <= 16 + 2
    report_dir = new_report(out)
    assert (report_dir / "loss.png").stat().st_size > 1000 or (report_dir / "reward.png").is_file()
    assert "Evaluation" in (report_dir / "summary.md").read_text()
    assert "## Health" in (report_dir / "summary.md").read_text() and (report_dir / "throughput.png").is_file()
    return metrics, report_dir


def test_sft_chain_with_swanlab_offline(tiny_sft_run, tiny_sft_merge):
    out, result, swanlab_dir = tiny_sft_run.out, tiny_sft_run.result, tiny_sft_run.swanlab_dir
    assert result.returncode == 0, result.stderr[-3000:]
    rows = logged(out)
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) >= 8 and all(isinstance(x, float) and x > 0 for x in losses)
    (ckpt,) = list(out.glob("v*/checkpoint-8"))
    assert (ckpt / "adapter_model.safetensors").is_file()
    assert f"checkpoint {ckpt}" in result.stderr.replace("\n", "")
    assert json.loads((ckpt / "args.json").read_text())["model_type"] == "qwen3_5_moe"
    manifest = json.loads(next(out.glob("swift-ext-run-*.json")).read_text())
    assert manifest["argv"][:2] == ["swift", "sft"]
    assert manifest["tracking"]["swanlab"] == {"mode": "local", "log_dir": str(swanlab_dir)}
    assert list(swanlab_dir.glob("run-*")), "SwanLab wrote nothing locally"
    assert list(ckpt.parent.glob("runs/*")), "no tensorboard events"
    watched = watch_summary(out)
    assert watched["finished"] and watched["step"] == 8 and watched["tokens_source"] == "logged"
    assert watched["tokens_per_s_per_gpu"] > 0 and watched["tflops_per_gpu"] > 0 and watched["step_time_s"] > 0
    merged_ckpt, _, merged = tiny_sft_merge
    assert merged_ckpt == ckpt and merged.returncode == 0, merged.stderr[-3000:]
    assert (ckpt.parent / (ckpt.name + "-merged") / "model.safetensors").is_file()
    again = swift_ext("merge", ckpt)
    assert again.returncode == 0 and "already at" in again.stderr  # nothing overwritten
    metrics, report_dir = infer_report(ckpt, out)
    assert metrics["exact_match"] is not None  # SFT val rows carry reference answers
    assert (report_dir / "loss.png").is_file() and (report_dir / "learning_rate.png").is_file()


def test_grpo_chain_with_reward_plugins(tiny_grpo_run):
    out, result = tiny_grpo_run.out, tiny_grpo_run.result
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [r for r in logged(out) if "reward" in r]
    assert len(rows) == 2
    # swift-ext's rewards, loaded by ms-swift through the --external_plugins file the expansion added
    assert all("rewards/MathAccuracyReward/mean" in r and "rewards/ThinkFormatReward/mean" in r for r in rows)
    # math_accuracy's counters reach ms-swift's metrics through the callback the expansion added ...
    assert all("rewards/MathAccuracyReward/timeouts" in r and "rewards/MathAccuracyReward/gold_unparsed" in r
               for r in rows)
    assert "math_accuracy at step" not in result.stdout + result.stderr  # ... and not as log lines
    (ckpt,) = list(out.glob("v*/checkpoint-2"))
    watched = watch_summary(out)
    assert watched["finished"] and watched["tokens_source"] == "completions only" and watched["step_time_s"] > 0
    assert {"rewards/MathAccuracyReward/mean", "reward_std", "frac_reward_zero_std", "completions/mean_length",
            "completions/clipped_ratio", "kl"} <= set(watched["grpo"])
    # Not merged (the SFT chain covers the LoRA merge): infer runs base + adapter, as ms-swift's --adapters.
    metrics, report_dir = infer_report(ckpt, out)
    # The val split has a `solution` column: scored with math_accuracy, joined back by row order.
    assert metrics["math_accuracy"] is not None and metrics["math_accuracy_stats"]["items"] == metrics["rows"]
    assert metrics["exact_match"] is None  # GRPO prompts have no reference answer to match
    assert (report_dir / "reward.png").is_file()
