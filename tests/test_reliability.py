"""Stopping a run (signals to the process group), resume, exit codes and one-line errors on every verb."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, swift_ext

RECIPE = """command: sft
engine: swift
launch: {nodes: 1, gpus_per_node: 0}
args:
  model: Qwen/Qwen3.6-35B-A3B
  output_dir: OUT
"""

# A stand-in `swift` that starts the kind of process tree torchrun does: two children, one of which
# ignores SIGTERM (a stuck rank), and records every pid.
TRAINER = """#!{python}
import os, signal, subprocess, sys, time
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]),
        subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "open({pids!r} + '.ready', 'w').close(); time.sleep(600)"])]
while not os.path.exists({pids!r} + ".ready"):
    time.sleep(0.05)
with open({pids!r}, "w") as fh:
    fh.write(" ".join(str(p) for p in [os.getpid()] + [k.pid for k in kids]))
print("training...", flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line[stat_line.rindex(")") + 2] != "Z"


def _start_run(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, list[int]]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    pids_file = tmp_path / "pids"
    exe = bindir / "swift"
    exe.write_text(TRAINER.format(python=sys.executable, pids=str(pids_file)))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "r.yaml").write_text(RECIPE)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "swift_ext", "run", "r.yaml", *extra], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (pids_file.is_file() and len(pids_file.read_text().split()) == 3):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the fake trainer never started"
        time.sleep(0.1)
    return proc, [int(p) for p in pids_file.read_text().split()]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_stops_the_whole_trainer_group(tmp_path, signum):
    proc, pids = _start_run(tmp_path, "--grace", "2")
    assert all(_alive(p) for p in pids)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if _alive(p)], "processes left behind"
    assert f"stopped by {signal.Signals(signum).name}" in err
    manifest = json.loads(next((tmp_path / "OUT").glob("swift-ext-run-*.json")).read_text())
    assert manifest["argv"][:2] == ["swift", "sft"]  # what was there is kept
    end = manifest["end"]
    assert end["how"] == "stopped" and end["signal"] == signal.Signals(signum).name
    assert end["exit_code"] == 128 + signum
    # the child that ignores SIGTERM needed SIGKILL after the grace period; SIGINT and SIGHUP end it
    assert end["killed_after_grace"] is (signum == signal.SIGTERM)


def test_child_killed_by_signal_exits_128_plus_n(tmp_path, write):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "swift"
    exe.write_text("#!/bin/sh\nkill -KILL $$\n")
    exe.chmod(0o755)
    recipe = write("r.yaml", RECIPE)
    result = swift_ext("run", recipe, cwd=tmp_path, env={"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 128 + signal.SIGKILL, result.stderr


def test_failed_submit_does_not_block_the_next(tmp_path, write):
    body = {"command": "sft", "engine": "megatron", "launch": {"nodes": 2, "gpus_per_node": 2, "gpu": "H200"},
            "args": {"model": "Qwen/Qwen2.5-7B-Instruct", "dataset": ["some/hub-dataset"], "add_version": False,
                     "global_batch_size": 4, "output_dir": str(tmp_path / "run")}}
    recipe = write("job.yaml", json.dumps(body))
    failed = swift_ext("submit", recipe, env={"PATH": "/usr/local/nosuchdir"})
    assert failed.returncode == 2 and "sbatch not found" in failed.stderr
    assert list((tmp_path / "run" / "slurm").glob("train-*.sbatch"))  # the script it wrote stays, for a look
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sbatch").write_text("#!/bin/sh\necho 4242\n")  # accepts the job, as sbatch --parsable does
    (bindir / "sbatch").chmod(0o755)
    ok = swift_ext("submit", recipe, env={"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"})
    assert ok.returncode == 0, ok.stderr
    assert "submitted train: job 4242" in ok.stderr
    # Once ms-swift wrote into the dir, the next submit must say so.
    (tmp_path / "run" / "checkpoint-2").mkdir()
    again = swift_ext("submit", recipe, env={"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"})
    assert again.returncode == 2 and "already holds a run (checkpoint-2)" in again.stderr


def _group_members(leader_parent: int) -> set[int]:
    """pids in the process group that swift-ext's child leads."""
    members = set()
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _stat(p)[1] == leader_parent]
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and children and _stat(p)[2] in children:
            members.add(int(p.name))
    return members


def _stat(proc_dir: Path) -> tuple[str, int, int]:
    try:
        text = (proc_dir / "stat").read_text()
    except OSError:
        return "X", -1, -1
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2])


@pytest.mark.slow
def test_real_run_stopped_by_sigterm_then_resumed(tmp_path):
    """ms-swift on the tiny CPU model: SIGTERM after the first complete checkpoint leaves no process and
    exits 143; `run --resume` continues after that checkpoint, keeps it, and logs to a fresh logging.jsonl."""
    out = tmp_path / "run"
    overrides = ["args.max_steps=6", "args.save_steps=2", "args.eval_steps=100", "args.add_version=false",
                 f"args.output_dir={out}", "args.save_total_limit=null"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "swift_ext", "run", str(ROOT / "recipes/smoke/tiny-sft.yaml"), *overrides]
    proc = subprocess.Popen(cmd + ["--grace", "20"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    members: set[int] = set()
    while not (out / "checkpoint-2" / "trainer_state.json").is_file():
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "no checkpoint-2 after 10 minutes"
        members |= _group_members(proc.pid)
        time.sleep(0.5)
    members |= _group_members(proc.pid)
    assert len(members) >= 2  # `swift sft` starts the trainer as a child process
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 143, output[-3000:]
    time.sleep(1)
    assert not [p for p in members if _alive(p)], "trainer processes left behind"
    kept = out / "checkpoint-2"
    kept_state = (kept / "trainer_state.json").read_bytes()
    first_log = (out / "logging.jsonl").read_text()
    steps_logged = [json.loads(r)["global_step/max_steps"] for r in first_log.splitlines() if '"loss"' in r]

    resumed = subprocess.run(cmd + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    latest = max((p for p in out.glob("checkpoint-*") if p.name.split("-")[1].isdigit()),
                 key=lambda p: int(p.name.split("-")[1]))
    assert latest.name == "checkpoint-6" and (kept / "trainer_state.json").read_bytes() == kept_state
    # The second run's log starts after the checkpoint it resumed from; the first run's log is kept aside.
    second = [json.loads(r) for r in (out / "logging.jsonl").read_text().splitlines() if '"loss"' in r]
    assert second and int(second[0]["global_step/max_steps"].split("/")[0]) == 3
    (aside,) = list(out.glob("logging.jsonl.before-resume-*"))
    assert aside.read_text() == first_log and steps_logged
    manifests = [json.loads(p.read_text()) for p in sorted(out.glob("swift-ext-run-*.json"))]
    assert [m["end"]["how"] for m in manifests] == ["stopped", "completed"]
    assert manifests[1]["resume"]["checkpoint"] == str(kept)
