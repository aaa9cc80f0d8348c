"""One run folder, one rule (swift_ext/runs/rundir.py): the checkpoints evaluation walks, the one a resume
continues from, and the one the Slurm batch scripts ask for are the same."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, swift_ext
from swift_ext.after import evaluate as ev
from swift_ext.runs.rundir import RunDir


def _save(folder, step, marker="latest_checkpointed_iteration.txt"):
    ckpt = folder / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "args.json").write_text('{"model": "some/model", "tuner_type": "lora"}')
    if marker:
        (ckpt / marker).write_text(str(step))
    return ckpt


def _latest(out, *flags):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "swift_ext.runs.rundir", "latest", str(out), *flags],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_complete_checkpoints_follow_a_resume_and_drop_an_abandoned_run(tmp_path):
    out = tmp_path / "out"
    v0, v1 = out / "v0-20260101-000000", out / "v1-20260101-010000"
    old = [_save(v0, s) for s in (2, 4, 6)]
    resumed = [_save(v1, s) for s in (6, 8)]  # resumed from checkpoint-4: v1 saves step 6 again
    _save(v1, 10, marker=None)  # cut short
    run = RunDir(out)
    assert run.complete_checkpoints("megatron") == [*old[:2], *resumed]
    assert run.complete_checkpoints("swift") == []
    assert run.latest_checkpoint("megatron") == resumed[-1]
    assert ev.complete_checkpoints(out) == [*old[:2], *resumed]  # evaluation walks the same history
    assert run.base_args_folder() == old[0]  # no args.json in the run folders: the first complete save's
    (v1 / "args.json").write_text("{}")
    assert run.base_args_folder() == v1
    assert _latest(out, "--engine", "megatron") == str(resumed[-1])
    assert _latest(out, "--engine", "swift") == ""
    assert ev.run_root(v1 / "checkpoint-8") == out and ev.run_root(v1) == out

    fresh = _save(out / "v2-20260101-020000", 2)  # a fresh start: the abandoned run's saves are history no more
    assert run.complete_checkpoints() == [fresh] and _latest(out) == str(fresh)


def test_latest_of_a_missing_or_empty_output_dir_prints_nothing(tmp_path):
    assert _latest(tmp_path / "not-yet") == ""
    _save(tmp_path, 3, marker=None)
    assert _latest(tmp_path, "--engine", "megatron") == ""


def test_base_model_not_known_yet_is_a_failure_not_nothing_to_do(tmp_path):
    """A Slurm evaluation job of the base model that starts before ms-swift wrote args.json must fail, not
    end as COMPLETED having evaluated nothing (the submitter waits for args.json; this is the guard)."""
    _save(tmp_path / "run", 2, marker=None)  # a save still being written
    result = swift_ext("eval", tmp_path / "run", "--checkpoint", "base")
    assert result.returncode == 2 and "base model is not known yet" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
