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
