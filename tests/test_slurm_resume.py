"""Checked resume on the local Slurm with the fake `megatron`: a job is preempted, requeued and resumes
from its last complete checkpoint. With FAKE_IGNORE_RESUME=1 the fake trainer ignores the resume flags
and starts again at iteration 1, as ms-swift does for a LoRA checkpoint loaded with --mcore_model or a
resume without --finetune false; the batch script's watcher must notice, stop it and report it."""

from __future__ import annotations

import json

import pytest

from conftest import swift_ext
from swift_ext.runs.resume import read_records
from test_slurm import (ENV, cluster, recipe, slurm, steps, submit, wait_for,  # noqa: F401  (cluster: fixture)
                        wait_for_steps)

pytestmark = pytest.mark.slurm


def preempt_after(job: str, run, n_steps: int) -> None:
    wait_for_steps(run, n_steps)
    slurm("scontrol", "requeue", job)


def test_a_resume_that_restarts_at_1_is_detected_and_stopped(cluster, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    (job,), _ = submit(recipe(tmp_path, train_iters=40, save_steps=4),
                       env={"FAKE_STEP_SECONDS": "0.5", "FAKE_IGNORE_RESUME": "1"})
    preempt_after(job, run, 9)
    info = wait_for(job, states=("FAILED",), timeout=150)
    assert int(info["Restarts"]) >= 1 and info["ExitCode"].startswith("3:")
    records = [r for r in read_records(run) if "first_logged_iteration" in r]
    assert records and records[-1]["ok"] is False and records[-1]["first_logged_iteration"] == 1
    tracker = records[-1]["tracker_iteration"]
    assert tracker >= 8 and records[-1]["checkpoint"].endswith(f"checkpoint-{tracker}")
    ckpt = run / f"checkpoint-{tracker}"
    assert (ckpt / "latest_checkpointed_iteration.txt").read_text() == str(tracker)  # not written over
    assert max(steps(run)[steps(run).index(1, 1):]) < tracker  # stopped long before reaching it again
    log = next(run.glob("slurm-*.out")).read_text()
    assert "RESUME FAILED" in log and "not requeued" in log
    status = swift_ext("status", run, env=ENV)
    assert status.returncode == 0 and "STARTED OVER" in status.stdout and "went back" in status.stdout


def test_a_normal_resume_passes_the_check(cluster, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    total = 16
    (job,), _ = submit(recipe(tmp_path, train_iters=total, save_steps=4), env={"FAKE_STEP_SECONDS": "0.3"})
    preempt_after(job, run, 9)
    info = wait_for(job, timeout=150)
    assert int(info["Restarts"]) >= 1
    (rec,) = [r for r in read_records(run) if "first_logged_iteration" in r]
    assert rec["ok"] is True and rec["first_logged_iteration"] == rec["tracker_iteration"] + 1
    assert sorted(set(steps(run))) == list(range(1, total + 1))
    status = swift_ext("status", run, env=ENV)
    assert status.returncode == 0 and "resume ok" in status.stdout and "STARTED OVER" not in status.stdout
    logged = [json.loads(line)["iteration"] for line in (run / "logging.jsonl").read_text().splitlines()]
    assert logged[-1] == f"{total}/{total}"


def test_resubmitting_with_changed_batch_settings_is_refused(cluster, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    (job,), _ = submit(recipe(tmp_path, train_iters=4, save_steps=2))
    wait_for(job)
    result = swift_ext("submit", recipe(tmp_path, train_iters=8, save_steps=2, global_batch_size=8), "--resume",
                       env=ENV)
    assert result.returncode == 2 and "global_batch_size changed from 4 to 8" in result.stderr
    assert len(list((run / "slurm").glob("train-*.sbatch"))) == 1  # nothing submitted
    (again,), out = submit(recipe(tmp_path, train_iters=8, save_steps=2), "--resume")
    assert "continues from" in out.stderr and "checkpoint-4" in out.stderr
    wait_for(again)
    assert steps(run) == list(range(1, 9))
    assert [r["ok"] for r in read_records(run) if "first_logged_iteration" in r] == [True]
