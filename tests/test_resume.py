"""Checked resume: a Megatron checkpoint against the command that resumes from it, the first logged
iteration against the checkpoint's tracker, and `submit --resume` refusing what ms-swift would turn
into a fresh start. The whole path on the local Slurm is in test_slurm_resume.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import swift_ext
from test_slurm import recipe
from swift_ext.runs.resume import (
    argv_to_args,
    check_resume,
    read_records,
    refuse_resume,
    status_lines,
    watch,
)

ARGV = ["megatron", "sft", "--model", "Qwen/Qwen2.5-7B-Instruct", "--dataset", "some/hub-dataset", "--train_iters",
        "20", "--global_batch_size", "4", "--no_save_optim", "false", "--add_version", "false"]


def checkpoint(run, step, argv=ARGV, tracker=True, **changes):
    ckpt = run / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "args.json").write_text(json.dumps({**argv_to_args(argv), **changes}))
    if tracker:
        (ckpt / "latest_checkpointed_iteration.txt").write_text(str(step))
    return ckpt


def codes(issues):
    return sorted(i.code for i in issues if i.severity == "error")


def resumed(ckpt, argv=ARGV, flag="--mcore_model"):
    return argv_to_args([*argv, flag, str(ckpt), "--finetune", "false"])


def test_argv_to_args_types_and_last_flag_wins():
    assert argv_to_args(["megatron", "sft", "--lr", "1e-5", "--dataset", "a", "b", "--finetune", "true",
                         "--finetune", "false", "--max_length", "None"]) == {
        "lr": 1e-5, "dataset": ["a", "b"], "finetune": False, "max_length": None}


def test_a_clean_resume_has_no_issues(tmp_path):
    ckpt = checkpoint(tmp_path, 6)
    assert check_resume(resumed(ckpt), ckpt) == []


def test_each_way_ms_swift_would_start_over_or_fail(tmp_path):
    ckpt = checkpoint(tmp_path, 6)
    assert codes(check_resume(resumed(ckpt, [*ARGV, "--global_batch_size", "8"]), ckpt)) == ["changed_setting"]
    msg = check_resume(resumed(ckpt, [*ARGV, "--dataset", "other/data"]), ckpt)[0].message
    assert "dataset changed from 'some/hub-dataset' to 'other/data'" in msg
    assert codes(check_resume(argv_to_args([*ARGV, "--mcore_model", str(ckpt)]), ckpt)) == ["finetune"]  # default true
    lora = checkpoint(tmp_path / "lora", 6, [*ARGV, "--tuner_type", "lora"])
    wrong = check_resume(resumed(lora, [*ARGV, "--tuner_type", "lora"], flag="--mcore_model"), lora)
    assert codes(wrong) == ["wrong_load_flag"] and "starts again at iteration 1" in wrong[0].message
    assert check_resume(resumed(lora, [*ARGV, "--tuner_type", "lora"], flag="--mcore_adapter"), lora) == []
    assert "tuner_type" in codes(check_resume(resumed(lora), lora))  # a LoRA checkpoint resumed as a full run
    no_optim = checkpoint(tmp_path / "no-optim", 6, [*ARGV, "--no_save_optim", "true"])
    issues = check_resume(resumed(no_optim, [*ARGV, "--no_save_optim", "true"]), no_optim)
    assert codes(issues) == ["no_optimizer_state"] and "full-parameter" in issues[0].message
    half = checkpoint(tmp_path / "half", 8, tracker=False)
    assert codes(check_resume(resumed(half), half)) == ["incomplete_checkpoint"]
    warned = check_resume(resumed(ckpt, [*ARGV, "--no_load_optim", "true", "--tensor_model_parallel_size", "2"]), ckpt)
    assert codes(warned) == [] and {i.code for i in warned} == {"no_load_optim", "changed_layout"}


def test_a_changed_tp_or_pp_with_the_distributed_optimizers_state_is_refused_unless_saved_reshardable(tmp_path):
    # ms-swift's load raises "(TP, PP) mismatch after resume ...: not supported for DistributedOptimizer" when it loads
    # dp_reshardable optimizer state (its default) into another (TP, PP).
    ckpt = checkpoint(tmp_path, 6)
    refused = check_resume(resumed(ckpt, [*ARGV, "--pipeline_model_parallel_size", "2"]), ckpt)
    assert codes(refused) == ["changed_layout"] and "not supported for DistributedOptimizer" in refused[0].message
    reshardable = checkpoint(tmp_path / "reshardable", 6, [*ARGV, "--dist_ckpt_optim_fully_reshardable", "true"])
    moved = check_resume(resumed(reshardable, [*ARGV, "--dist_ckpt_optim_fully_reshardable", "true",
                                               "--tensor_model_parallel_size", "2"]), reshardable)
    assert codes(moved) == [] and [i.code for i in moved] == ["changed_layout"]
    plain_adam = check_resume(resumed(ckpt, [*ARGV, "--use_distributed_optimizer", "false",
                                             "--tensor_model_parallel_size", "2"]), ckpt)
    assert codes(plain_adam) == []


def test_refuse_resume_picks_the_newest_complete_checkpoint(tmp_path):
    assert refuse_resume(tmp_path / "fresh", argv_to_args(ARGV)) == (None, [])  # nothing yet: a first start
    checkpoint(tmp_path, 8, tracker=False)
    ckpt, issues = refuse_resume(tmp_path, argv_to_args(ARGV))
    assert ckpt is None and codes(issues) == ["nothing_to_resume"] and "checkpoint-8" in issues[0].message
    checkpoint(tmp_path, 6)
    ckpt, issues = refuse_resume(tmp_path, argv_to_args(ARGV))
    assert ckpt == tmp_path / "checkpoint-6" and issues == []


def test_submit_resume_refuses_with_the_reason(tmp_path):
    path = recipe(tmp_path, train_iters=20)
    run = tmp_path / "run"
    result = swift_ext("submit", path, "--resume", "--dry-run")
    assert result.returncode == 0, result.stderr  # nothing there yet
    from swift_ext.spec.recipe import load_recipe
    from swift_ext.planner.plan import make_plan

    argv = make_plan(load_recipe(path)).launch.argv
    checkpoint(run, 6, argv)
    result = swift_ext("submit", path, "--resume", "--dry-run")
    assert result.returncode == 0 and "continues from" in result.stderr and "checkpoint-6" in result.stderr
    result = swift_ext("submit", path, "args.global_batch_size=8", "--resume", "--dry-run")
    assert result.returncode == 2 and "global_batch_size changed from 4 to 8" in result.stderr
    assert "refusing to resume" in result.stderr and "Traceback" not in result.stderr
    result = swift_ext("submit", path, "args.tuner_type=lora", "--resume", "--dry-run")
    assert result.returncode == 2 and "tuner_type full" in result.stderr


def test_watch_stops_a_run_that_started_over(tmp_path):
    ckpt = checkpoint(tmp_path, 6)
    log = tmp_path / "logging.jsonl"
    log.write_text("".join(json.dumps({"iteration": f"{i}/20"}) + "\n" for i in range(1, 8)))
    offset = log.stat().st_size
    step = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(log, "a") as fh:
            fh.write(json.dumps({"iteration": "1/20", "loss": 2.0}) + "\n")
        assert watch(tmp_path, ckpt, offset, step.pid, poll_s=0.05, timeout_s=10) == 3
        assert step.wait(timeout=10) == -15  # SIGTERM before it could write over checkpoint-6
    finally:
        step.kill()
    (rec,) = read_records(tmp_path)
    assert rec["ok"] is False and rec["tracker_iteration"] == 6 and rec["first_logged_iteration"] == 1
    lines = dict((text, level) for level, text in status_lines(tmp_path))
    assert any("STARTED OVER" in t and lvl == "error" for t, lvl in lines.items())
    assert any("went back from 7 to 1" in t for t in lines)


def test_watch_passes_a_real_resume(tmp_path):
    ckpt = checkpoint(tmp_path, 6)
    log = tmp_path / "logging.jsonl"
    log.write_text("".join(json.dumps({"iteration": f"{i}/20"}) + "\n" for i in range(1, 8)))
    offset = log.stat().st_size
    started = time.time()
    with open(log, "a") as fh:
        fh.write('{"iteration": "7/2')  # still being written: not read as iteration 7
    with open(log, "a") as fh:
        fh.write('0"}\n')
    assert watch(tmp_path, ckpt, offset, None, poll_s=0.05, timeout_s=10) == 0
    assert time.time() - started < 5
    assert read_records(tmp_path)[0]["ok"] is True
    assert [lvl for lvl, _ in status_lines(tmp_path)] == ["ok"]


@pytest.mark.parametrize("argv_extra, exit_code", [([], 0), (["--global_batch_size", "8"], 2)])
def test_the_script_side_check(tmp_path, argv_extra, exit_code):
    ckpt = checkpoint(tmp_path, 6)
    result = subprocess.run([sys.executable, "-m", "swift_ext.runs.resume", "check", str(tmp_path), str(ckpt), "--",
                             *ARGV, *argv_extra, "--mcore_model", str(ckpt), "--finetune", "false"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == exit_code, result.stderr
    if exit_code:
        assert "global_batch_size changed from 4 to 8" in result.stderr
        assert read_records(tmp_path)[0]["ok"] is False


def test_local_run_resume_is_checked_too(tmp_path, write):
    from test_launch_and_run import FORCE, RECIPE, fake_trainer

    recipe = write("r.yaml", RECIPE + "  add_version: false\n  global_batch_size: 16\n")
    ckpt = tmp_path / "OUT" / "checkpoint-100"
    ckpt.mkdir(parents=True)
    (ckpt / "latest_checkpointed_iteration.txt").write_text("100")
    (ckpt / "args.json").write_text(json.dumps({"model": "Qwen/Qwen3.6-35B-A3B", "dataset": ["a.jsonl", "b c.jsonl#100"],
                                                "global_batch_size": 32, "no_save_optim": False}))
    env = fake_trainer(tmp_path, exit_code=0)
    result = swift_ext("run", recipe, FORCE, "--resume", cwd=tmp_path, env=env)
    assert result.returncode == 2 and "global_batch_size changed from 32 to 16" in result.stderr
    assert "refusing to resume from" in result.stderr and not (tmp_path / "called.json").exists()
    result = swift_ext("run", recipe, FORCE, "--resume", "args.global_batch_size=32", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr


def _save(folder, step, marker="latest_checkpointed_iteration.txt"):
    ckpt = folder / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    if marker:
        (ckpt / marker).write_text(str(step))
    return ckpt


def test_newest_complete_checkpoint_is_the_newest_run_folders_highest_step(tmp_path):
    """One rule for run --resume, submit, status, watch: within a run folder the highest complete step
    (transformers' get_last_checkpoint, Megatron's tracker); across folders ms-swift's version order,
    not modification time and not the highest step overall."""
    from swift_ext.runs.rundir import RunDir

    out = tmp_path / "out"
    _save(out / "v0-20261129-100000", 40)  # an abandoned first run went further ...
    newest = _save(out / "v1-20261129-110000", 10)  # ... than the fresh start after it
    _save(out / "v1-20261129-110000", 12, marker=None)  # cut short: no tracker
    _save(out / "v1-20261129-110000", 9)
    (out / "v1-20261129-110000" / "checkpoint-10-merged").mkdir()
    old = out / "v0-20261129-100000" / "checkpoint-40"
    os.utime(old, (time.time() + 100, time.time() + 100))  # copied later (rsync): mtime says nothing
    run = RunDir(out)
    assert run.latest_checkpoint("megatron") == newest
    assert run.latest_checkpoint("swift") is None  # no trainer_state.json anywhere
    assert [p.name for p in run.incomplete_after(newest, "megatron")] == ["checkpoint-12"]
    assert RunDir.of(out / "v1-20261129-110000") == run
    # v2 started but has not saved yet: v1's stays the one to resume from
    (out / "v2-20261129-120000").mkdir()
    assert run.latest_checkpoint("megatron") == newest


def test_damaged_args_json_is_one_clear_line(tmp_path):
    from swift_ext.runs.rundir import read_args
    from swift_ext.spec.findings import UserError

    ckpt = _save(tmp_path, 6)
    (ckpt / "args.json").write_text('{"model": ')
    with pytest.raises(UserError) as err:
        read_args(ckpt)
    assert err.value.problems[0].render().startswith(f"{ckpt / 'args.json'}: args.json is not valid JSON")
    # on a compute node the resume check warns with the same words instead of stopping
    (issue,) = [i for i in check_resume(argv_to_args(ARGV + ["--finetune", "false", "--mcore_model", str(ckpt)]), ckpt)
                if i.code == "no_args"]
    assert "args.json is not valid JSON" in issue.message
