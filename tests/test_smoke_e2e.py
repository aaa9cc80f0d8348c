"""The bundled CPU recipes really train the tiny Qwen3.6-architecture model through ms-swift."""

from __future__ import annotations

import json

import pytest

from conftest import RECIPES, swift_ext

pytestmark = pytest.mark.slow


def logged(run_dir):
    files = list(run_dir.glob("v*/logging.jsonl"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]


def test_tiny_sft_trains_and_writes_a_checkpoint(tmp_path):
    out = tmp_path / "tiny-sft"
    result = swift_ext("run", RECIPES / "smoke/tiny-sft.yaml", f"args.output_dir={out}", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = logged(out)
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) >= 8 and all(isinstance(x, float) and x > 0 for x in losses)
    ckpts = list(out.glob("v*/checkpoint-8"))
    assert ckpts and (ckpts[0] / "adapter_model.safetensors").is_file()
    assert f"checkpoint {ckpts[0]}" in result.stderr.replace("\n", "")
    args = json.loads((ckpts[0] / "args.json").read_text())
    assert args["model_type"] == "qwen3_5_moe"
    manifest = next(out.glob("swift-ext-run-*.json"))
    assert json.loads(manifest.read_text())["argv"][:2] == ["swift", "sft"]


def test_tiny_grpo_runs_with_rewards_logged(tmp_path):
    out = tmp_path / "tiny-grpo"
    result = swift_ext("run", RECIPES / "smoke/tiny-grpo.yaml", f"args.output_dir={out}", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [r for r in logged(out) if "reward" in r]
    assert len(rows) == 2
    # swift-ext's rewards, loaded by ms-swift through the --external_plugins file the expansion added
    assert all("rewards/MathAccuracyReward/mean" in r and "rewards/ThinkFormatReward/mean" in r for r in rows)
    assert "math_accuracy batch" in result.stdout + result.stderr  # the per-batch counters are logged
    assert list(out.glob("v*/checkpoint-2"))
