"""swift-ext watch: metrics from real ms-swift logs, MFU against hand computation, the hang sidecar."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, RECIPES, ROOT, swift_ext
from swift_ext.planner import mfu
from swift_ext.planner.shape_lookup import resolve_shape
from swift_ext.runs.sidecar import STALL_EXIT, StallClock
from swift_ext.runs.watchlog import LogFollower
from swift_ext.runs.watchrates import analyse_file

RUNS = FIXTURES / "runs"  # logging.jsonl/args.json/manifest of real `swift-ext run` of recipes/smoke/tiny-*.yaml
TINY_CONFIG = RUNS / "tiny-qwen3_6-moe-config.json"  # the tiny model the runs trained (built by tinymodel.py)
FAKE_MEGATRON = FIXTURES / "fakebin" / "megatron"


def test_mfu_dense_model_by_hand():
    """Qwen2.5-7B (28 layers, hidden 3584, 28 heads / 4 KV of dim 128, FFN 18944, vocab 152064), full
    fine-tuning at 4096 tokens per sample."""
    shape = resolve_shape("Qwen/Qwen2.5-7B-Instruct")
    attn = 3584 * (28 * 128 + 2 * 4 * 128) + 28 * 128 * 3584  # q,k,v in + o out   = 29,360,128
    ffn = 3 * 3584 * 18944  # gate, up, down                                        = 203,685,888
    head = 152064 * 3584  #                                                         = 544,997,376
    n_active = 28 * (attn + ffn) + head  #                                          = 7,070,285,824
    assert n_active == 7_070_285_824 == mfu.active_params(shape)
    softmax = 28 * 6 * (28 * 128) * 4096  # causal QK^T + AV, fwd+bwd               = 2,466,250,752
    per_token = 6 * n_active + softmax  #                                           = 44,887,965,696
    assert mfu.train_flops_per_token(shape, 4096) == per_token == 44_887_965_696
    # 8 H100 (989 dense bf16 TFLOP/s), global batch 128 x 4096 tokens in 20 s -> 3276.8 tokens/s per GPU
    tokens_per_gpu = 128 * 4096 / 20 / 8
    assert mfu.mfu(per_token, tokens_per_gpu, 989) == pytest.approx(44_887_965_696 * 3276.8 / 989e12)
    assert mfu.mfu(per_token, tokens_per_gpu, 989) == pytest.approx(0.14873, abs=1e-5)


def test_mfu_moe_with_gated_deltanet_by_hand():
    """Qwen3.6-35B-A3B: 40 layers (10 gated attention + 30 Gated DeltaNet), 256 experts of which 8 routed +
    1 shared are active, LoRA (4·N), 8192 tokens per sample."""
    shape = resolve_shape("Qwen/Qwen3.6-35B-A3B")
    full_attn = 2048 * (16 * 256 * 2 + 2 * 2 * 256) + 16 * 256 * 2048  # gated q, k, v, o  = 27,262,976
    k, v = 16 * 128, 32 * 128
    deltanet = 2048 * (2 * k + 2 * v + 2 * 32) + (2 * k + v) * 4 + v * 2048  # in, conv, out = 33,718,272
    moe = 2048 * 256 + 8 * 3 * 2048 * 512 + 3 * 2048 * 512 + 2048  # router, 8 routed, shared, gate = 28,837,888
    head = 248320 * 2048  #                                                                 = 508,559,360
    n_active = 10 * full_attn + 30 * deltanet + 40 * moe + head  #                          = 2,946,252,800
    assert n_active == 2_946_252_800 == mfu.active_params(shape)
    softmax = 10 * 6 * (16 * 256) * 8192  #                                                 = 2,013,265,920
    gdn = 30 * 3 * 32 * (6 * 128 * 128 + 64 * (2 * 128 + 128))  # chunk 64                 = 353,894,400
    per_token = 4 * n_active + softmax + gdn  #                                             = 14,152,171,520
    assert mfu.train_flops_per_token(shape, 8192, lora=True) == per_token == 14_152_171_520
    # 2000 tokens/s per A100 (312 TFLOP/s): 28.3 TFLOP/s = 9.07%
    assert mfu.mfu(per_token, 2000, 312) == pytest.approx(0.090719, abs=1e-6)
    # MTP adds one more transformer layer (eh_proj 2h·h, attention, MoE) and a second pass through the head
    mtp = 2 * 2048 * 2048 + full_attn + moe + head
    assert mfu.active_params(shape, mtp_layers=1) == n_active + mtp


def test_mfu_megatron_convention_by_hand():
    """The convention published TFLOP/s per GPU use (Megatron-LM, PaLM): 6·N for every active weight even
    under LoRA, softmax attention 12·(heads·head_dim)·S per layer with no causal halving. Qwen3.6-35B-A3B,
    8192 tokens per sample, as in the test above."""
    shape = resolve_shape("Qwen/Qwen3.6-35B-A3B")
    matmul = 6 * 2_946_252_800  #                                                           = 17,677,516,800
    softmax = 10 * 12 * (16 * 256) * 8192  # twice the causal figure                        = 4,026,531,840
    gdn = 30 * 3 * 32 * (6 * 128 * 128 + 64 * (2 * 128 + 128))  #                          = 353,894,400
    assert mfu.megatron_flops_per_token(shape, 8192) == matmul + softmax + gdn == 22_057_943_040
    # at 2000 tokens/s per H100 (989 TFLOP/s): 44.1 TFLOP/s, 4.46% — vs 14.15 GFLOP/token "required"
    assert mfu.mfu(22_057_943_040, 2000, 989) == pytest.approx(0.044606, abs=1e-6)
    assert mfu.megatron_flops_per_token(shape, 8192) > mfu.train_flops_per_token(shape, 8192, lora=True)


def test_sft_run_metrics():
    samples, summary, _ = analyse_file(RUNS / "tiny-sft", model_config=str(TINY_CONFIG), peak_tflops=1.0)
    assert [s.step for s in samples] == list(range(1, 9)) and summary["finished"]
    first, second = samples[:2]
    # ms-swift logs the average seconds per step since the start (0.119125, 0.133376): step 2 took
    # 2 x 0.133376 - 0.119125; tokens are the differences of num_input_tokens_seen (94, 186)
    assert first.step_time_s == pytest.approx(0.119125) and first.tokens_per_step == 94
    assert second.step_time_s == pytest.approx(2 * 0.133376 - 0.119125) and second.tokens_per_step == 92
    assert second.tokens_source == "logged"
    assert second.tokens_per_s_per_gpu == pytest.approx(92 / (2 * 0.133376 - 0.119125))
    shape = resolve_shape(None, TINY_CONFIG)
    fpt = mfu.train_flops_per_token(shape, 92 / 2, lora=True)  # 2 samples per step
    assert second.mfu == pytest.approx(fpt * second.tokens_per_s_per_gpu / 1e12)
    assert 0 < summary["mfu"] < 1 and summary["warnings"] == []


def test_grpo_run_metrics_and_zero_std_warning():
    samples, summary, _ = analyse_file(RUNS / "tiny-grpo", model_config=str(TINY_CONFIG))
    assert [s.step for s in samples] == [1, 2]
    assert [s.step_time_s for s in samples] == [17.19981125, 2.14519979]  # the GRPO trainer's own step_time
    # 4 completions per step (per_device_train_batch_size 4) x completions/mean_length 24
    assert samples[1].tokens_per_step == 96 and samples[1].tokens_source == "completions only"
    grpo = summary["grpo"]
    assert grpo["rewards/ThinkFormatReward/mean"] == 1.0 and grpo["rewards/MathAccuracyReward/std"] == 0.0
    assert grpo["frac_reward_zero_std"] == 1.0 and grpo["completions/clipped_ratio"] == 1.0 and grpo["kl"] == 0.0
    assert summary["mfu"] is None and "CPU run" in summary["notes"][0]  # no peak for a CPU
    assert any("dynamic_sample" in w for w in summary["warnings"])


def test_watch_cli_on_finished_runs_prints_the_summary_and_exits_0():
    result = swift_ext("watch", RUNS / "tiny-grpo", "--json", "--model-config", TINY_CONFIG)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == ["step", "step", "summary"]
    assert events[-1]["finished"] and events[-1]["zero_std_fraction_recent"] == 1.0
    view = swift_ext("watch", RUNS / "tiny-sft", "--model-config", TINY_CONFIG, "--peak-tflops", "1")
    assert view.returncode == 0, view.stderr
    assert "finished" in view.stdout and "tokens/s/GPU" in view.stdout and "MFU" in view.stdout


def test_watch_follows_a_growing_log(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RUNS / "tiny-sft", run)
    (log,) = run.glob("v*/logging.jsonl")
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:2]) + lines[2][:20])  # a row cut mid-line, as while ms-swift writes it
    proc = subprocess.Popen([sys.executable, "-m", "swift_ext", "watch", str(run), "--json", "--interval", "0.1",
                             "--model-config", str(TINY_CONFIG)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        assert proc.poll() is None  # not finished: still following
        with open(log, "a") as fh:
            fh.write(lines[2][20:])
            fh.flush()
            for line in lines[3:]:
                fh.write(line)
                fh.flush()
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["step"] for e in events if e["event"] == "step"] == list(range(1, 9))
    assert events[-1]["event"] == "summary" and events[-1]["finished"]


def test_log_follower_keeps_partial_lines_and_reads_stdout_dicts(tmp_path):
    path = tmp_path / "slurm-1.out"
    path.write_text("[INFO:swift] starting\n{'loss': '1.5', 'global_step/max_steps': '1/4'}\n{\"loss\": 1.")
    follower = LogFollower(path)
    assert follower.poll() == [{"loss": "1.5", "global_step/max_steps": "1/4"}]
    with open(path, "a") as fh:
        fh.write('25, "iteration": "2/4"}\n')
    assert follower.poll() == [{"loss": 1.25, "iteration": "2/4"}]


def test_stall_threshold():
    clock = StallClock(None, startup_minutes=60)
    assert clock.threshold() == 3600  # before the first row: start-up allowance
    for i in range(5):
        clock.progress(1, now=100.0 + 90 * i)
    assert clock.threshold() == 20 * 90  # 20 x the median interval between rows ...
    fast = StallClock(None)
    for i in range(5):
        fast.progress(1, now=float(i))
    assert fast.threshold() == 600  # ... but never under 10 minutes
    assert fast.stalled(now=4.0 + 601) and not fast.stalled(now=4.0 + 599)
    assert StallClock(2.5).threshold() == 150
    assert not StallClock(0).stalled(now=1e9)  # 0 turns it off


def test_hung_trainer_is_dumped_stopped_and_resumes(tmp_path):
    """The sidecar runs the fake trainer, which stops logging at step 4 (blocked as on a collective)."""
    out = tmp_path / "run"
    env = {"FAKE_HANG_AT_STEP": "4", "FAKE_STEP_SECONDS": "0.1", "PATH": f"{FIXTURES / 'fakebin'}:/usr/bin:/bin"}
    sidecar = [sys.executable, "-m", "swift_ext.runs.watch", "supervise", "--output-dir", str(out), "--stall-minutes",
               "0.05", "--poll-seconds", "0.3", "--term-grace-seconds", "5", "--marker", "stalled-1-0", "--"]
    train = ["megatron", "sft", "--output_dir", str(out), "--train_iters", "8", "--save_steps", "2"]
    started = time.monotonic()
    hung = subprocess.run(sidecar + train, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert hung.returncode == STALL_EXIT, hung.stderr
    assert time.monotonic() - started < 20
    (hang,) = (out / "swift-ext-watch").glob("hang-*")
    (stack,) = hang.glob("faulthandler-*.txt")
    text = stack.read_text()
    assert "in wait_for_collective" in text and "fakebin/megatron" in text
    assert json.loads((hang / "hang.json").read_text())["threshold_s"] == 3.0
    assert (out / "swift-ext-watch" / "stalled-1-0").read_text().strip() == str(hang)
    # what the requeued job does: resume from the last complete checkpoint, this time without a hang
    resumed = subprocess.run(sidecar + train + ["--mcore_model", str(out / "checkpoint-2"), "--finetune", "false"],
                             cwd=ROOT, env={**env, "SLURM_RESTART_COUNT": "1"}, capture_output=True, text=True,
                             timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "steps.log").read_text().split() == ["1", "2", "3", "3", "4", "5", "6", "7", "8"]
    # the log of both sessions reads as megatron's: iteration N/M, memory, a new session on resume
    samples, summary, _ = analyse_file(out, model_config=None)
    assert [s.step for s in samples] == [1, 2, 3, 3, 4, 5, 6, 7, 8]
    assert summary["finished"] and summary["peak_memory_gib"] == 61.5
    assert all(s.step_time_s and s.step_time_s > 0.05 for s in samples)


def test_py_spy_dumps_the_stacks_when_installed(tmp_path):
    pyspy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if pyspy is None:
        pytest.skip("py-spy is not installed (pip install py-spy; it is in the test extras)")
    out = tmp_path / "run"
    env = {"FAKE_HANG_AT_STEP": "2", "FAKE_STEP_SECONDS": "0.1",
           "PATH": f"{FIXTURES / 'fakebin'}:{Path(pyspy).parent}:/usr/bin:/bin"}
    hung = subprocess.run([sys.executable, "-m", "swift_ext.runs.watch", "supervise", "--output-dir", str(out),
                           "--stall-minutes", "0.04", "--poll-seconds", "0.3", "--", "megatron", "sft",
                           "--output_dir", str(out), "--train_iters", "4"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    assert hung.returncode == STALL_EXIT, hung.stderr
    (stack,) = (out / "swift-ext-watch").glob("hang-*/py-spy-*.txt")
    assert "wait_for_collective (megatron:" in stack.read_text()


def test_watch_recipe_section(tmp_path):
    result = swift_ext("plan", RECIPES / "smoke/tiny-sft.yaml", "watch.stall_minute=5")
    assert result.returncode == 2 and "did you mean 'watch.stall_minutes'" in result.stderr
    result = swift_ext("submit", FIXTURES.parent.parent / "recipes/qwen3_6/sft-full-2x8.yaml", "--dry-run",
                       "watch.stall_minutes=7")
    assert result.returncode == 0, result.stderr
    assert "-m swift_ext.runs.watch supervise --output-dir \"$OUTPUT_DIR\"" in result.stdout
    assert "--stall-minutes 7" in result.stdout and '"$RC" -eq 75' in result.stdout
    check = subprocess.run(["bash", "-n"], input=result.stdout, text=True, capture_output=True)
    assert check.returncode == 0, check.stderr
    off = swift_ext("submit", RECIPES / "qwen3_6/sft-full-2x8.yaml", "--dry-run", "watch.stall_minutes=0")
    assert off.returncode == 0 and "swift_ext.runs.watch" not in off.stdout


def test_report_has_throughput_and_grpo_health(tmp_path):
    run = tmp_path / "grpo"
    shutil.copytree(RUNS / "tiny-grpo", run)
    result = swift_ext("report", run)
    assert result.returncode == 0, result.stderr
    (report,) = run.glob("report-*")
    assert (report / "throughput.png").stat().st_size > 1000 and (report / "zero_std.png").stat().st_size > 1000
    summary = (report / "summary.md").read_text()
    assert "## Health" in summary and "dynamic_sample" in summary and "zero reward std" in summary


def test_watch_reports_a_silent_run_as_stalled(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "swift-ext-run-20261129-000000.json").write_text(json.dumps({"recipe": {"watch": {"stall_minutes": 0.02}}}))
    rows = [{"loss": 1.0, "iteration": f"{i}/10", "train_speed(s/it)": 1.0, "elapsed_time": f"{i}s"} for i in (1, 2)]
    (run / "logging.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = subprocess.Popen([sys.executable, "-m", "swift_ext", "watch", str(run), "--json", "--interval", "0.2"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        events = [json.loads(proc.stdout.readline()) for _ in range(3)]
    finally:
        proc.kill()
        proc.wait()
    assert [e["event"] for e in events] == ["step", "step", "stall"]
    assert events[2]["threshold_s"] == pytest.approx(1.2)


garbage = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=8), st.sampled_from(["1/0", "0/0", "x/y", "-3/2", "1h 2m", "nan", "1e400"]))
log_rows = st.dictionaries(st.sampled_from(["loss", "grad_norm", "global_step/max_steps", "iteration", "elapsed_time",
                                            "train_speed(s/it)", "num_input_tokens_seen", "step_time", "memory(GiB)",
                                            "completions/mean_length", "frac_reward_zero_std", "rewards/F/mean",
                                            "train_runtime"]), garbage, max_size=8)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=st.lists(log_rows, max_size=6), args=st.dictionaries(
    st.sampled_from(["max_length", "global_batch_size", "per_device_train_batch_size", "logging_steps", "tuner_type",
                     "mtp_num_layers", "model"]), garbage, max_size=5),
    watch_cfg=st.one_of(garbage, st.dictionaries(st.sampled_from(["stall_minutes", "startup_minutes"]), garbage)),
    launch=st.dictionaries(st.sampled_from(["nodes", "gpus_per_node", "gpu"]), garbage, max_size=3))
def test_odd_logs_never_raise(tmp_path, capsys, rows, args, watch_cfg, launch):
    """Whatever the run's files hold, `watch --once` prints a view or one error line, never a traceback."""
    from swift_ext.cli.main import run_cli

    run = Path(tempfile.mkdtemp(dir=tmp_path))
    (run / "logging.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    (run / "args.json").write_text(json.dumps(args))
    (run / "swift-ext-run-1.json").write_text(json.dumps({"recipe": {"watch": watch_cfg, "launch": launch}}))
    for extra in ([], ["--json"]):
        code = run_cli(["watch", str(run), "--once", *extra])
        err = capsys.readouterr().err
        assert code in (0, 2) and "internal error" not in err and "Traceback" not in err


def test_watch_and_report_warn_when_one_log_holds_two_runs(tmp_path):
    """A second run appending to the same logging.jsonl: steps 1..8 of the real tiny SFT run, then 1..3 again."""
    run = tmp_path / "run"
    shutil.copytree(RUNS / "tiny-sft", run)
    (log,) = run.glob("**/logging.jsonl")
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    train = [r for r in rows if "loss" in r and "global_step/max_steps" in r]
    log.write_text("".join(json.dumps(r) + "\n" for r in train + train[:3]))
    watched = swift_ext("watch", run, "--json", "--once", "--model-config", TINY_CONFIG)
    assert watched.returncode == 0, watched.stderr
    summary = json.loads(watched.stdout.splitlines()[-1])
    (warning,) = [w for w in summary["warnings"] if "runs" in w]
    assert warning.startswith("this logging.jsonl holds 2 runs: the step went back (8 -> 1)")
    reported = swift_ext("report", run)
    assert reported.returncode == 0, reported.stderr
    (page,) = run.glob("report-*/summary.md")
    assert "holds 2 runs: the step went back (8 -> 1)" in page.read_text()


def test_one_log_with_one_run_has_no_such_warning():
    _, summary, _ = analyse_file(RUNS / "tiny-sft", model_config=str(TINY_CONFIG))
    assert not [w for w in summary["warnings"] if "runs" in w]
