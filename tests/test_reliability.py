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
  dataset: [some/hub-dataset]
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
    overrides = ["args.max_steps=12", "args.save_steps=2", "args.eval_steps=100", "args.add_version=false",
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
    deadline = time.monotonic() + 30  # swift-ext waits for the group, but init may reap zombies late
    while [p for p in members if _alive(p)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in members if _alive(p)], "trainer processes left behind"
    # The tiny model trains at several steps a second: by the time SIGTERM lands, later checkpoints may be
    # complete too. Resume must pick the newest complete one and leave every checkpoint as it was.
    complete = sorted((c for c in out.glob("checkpoint-*") if (c / "trainer_state.json").is_file()),
                      key=lambda c: int(c.name.split("-")[1]))
    kept = complete[-1]
    kept_step = int(kept.name.split("-")[1])
    assert kept_step < 12, "the run finished before SIGTERM: nothing left to resume"
    kept_state = (kept / "trainer_state.json").read_bytes()
    states_before = {c.name: (c / "trainer_state.json").read_bytes() for c in complete}
    first_log = (out / "logging.jsonl").read_text()
    steps_logged = [json.loads(r)["global_step/max_steps"] for r in first_log.splitlines() if '"loss"' in r]

    resumed = subprocess.run(cmd + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    latest = max((p for p in out.glob("checkpoint-*") if p.name.split("-")[1].isdigit()),
                 key=lambda p: int(p.name.split("-")[1]))
    assert latest.name == "checkpoint-12" and (kept / "trainer_state.json").read_bytes() == kept_state
    assert {name: (out / name / "trainer_state.json").read_bytes() for name in states_before} == states_before
    # The second run's log starts after the checkpoint it resumed from; the first run's log is kept aside.
    second = [json.loads(r) for r in (out / "logging.jsonl").read_text().splitlines() if '"loss"' in r]
    assert second and int(second[0]["global_step/max_steps"].split("/")[0]) == kept_step + 1
    (aside,) = list(out.glob("logging.jsonl.before-resume-*"))
    assert aside.read_text() == first_log and steps_logged
    manifests = [json.loads(p.read_text()) for p in sorted(out.glob("swift-ext-run-*.json"))]
    assert [m["end"]["how"] for m in manifests] == ["stopped", "completed"]
    assert manifests[1]["resume"]["checkpoint"] == str(kept)


@pytest.mark.slow
def test_real_run_ends_whole_when_swift_ext_is_sigkilled(tmp_path):
    """ms-swift on the tiny CPU model (`swift sft` -> its trainer child): SIGKILL swift-ext mid-training;
    every process of the tree ends, and the output folder's lock is free once they have."""
    import fcntl

    import psutil

    out = tmp_path / "run"
    # Quiet (no progress bar, no per-step rows): a trainer that writes nothing does not notice that its
    # output pipe lost its reader, so only the reaper can end it.
    overrides = ["args.max_steps=100000", "args.save_steps=2", "args.eval_steps=100000", "args.add_version=false",
                 f"args.output_dir={out}", "args.save_total_limit=null", "args.disable_tqdm=true",
                 "args.logging_steps=100000"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "swift_ext", "run", str(ROOT / "recipes/smoke/tiny-sft.yaml"), *overrides]
    proc = subprocess.Popen(cmd + ["--grace", "5"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    tree: dict[int, psutil.Process] = {}
    while not (out / "checkpoint-2" / "trainer_state.json").is_file():
        assert proc.poll() is None, "swift-ext ended before the first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint-2 after 10 minutes"
        try:
            tree.update({p.pid: p for p in psutil.Process(proc.pid).children(recursive=True)})
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.5)
    tree.update({p.pid: p for p in psutil.Process(proc.pid).children(recursive=True)})
    trainers = [p for p in tree.values() if p.is_running() and "sft" in " ".join(p.cmdline())]
    assert len(trainers) >= 2, [p.cmdline() for p in trainers]  # `swift sft` and the trainer it started
    proc.kill()
    proc.wait(timeout=30)

    def gone() -> bool:
        return not [p for p in tree.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    deadline = time.monotonic() + 120
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in tree.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for p in left:
        p.kill()
    assert not left, [p.cmdline() for p in left]
    # The reaper holds the lock until the group is gone: taking it now means no writer is left.
    fd = os.open(out / ".swift-ext-run.lock", os.O_RDWR)
    deadline = time.monotonic() + 60
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            assert time.monotonic() < deadline, "the run lock is still held"
            time.sleep(0.2)
    before = sorted(p.name for p in out.glob("checkpoint-*"))
    assert not any(_alive(p) for p in tree), "a process of the tree came back"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == before
    steps = [int(n.split("-")[1]) for n in before]
    assert max(steps) < 100000
    os.close(fd)


def test_secret_in_recipe_env_is_an_error_and_never_printed(tmp_path, write):
    recipe = write("r.yaml", RECIPE + "env:\n  HF_TOKEN: hf_live_secret_42\n")
    for extra in ([], ["--print"], ["--json"]):
        result = swift_ext("plan", recipe, *extra)
        assert result.returncode == 2 and "env.HF_TOKEN: looks like a secret" in (result.stderr + result.stdout)
        assert "hf_live_secret_42" not in result.stdout + result.stderr
    refused = swift_ext("run", recipe, cwd=tmp_path)
    assert refused.returncode == 2 and "hf_live_secret_42" not in refused.stdout + refused.stderr
    assert not (tmp_path / "OUT").exists()


@pytest.mark.parametrize("argv, words", [
    (["plan"], "Missing argument 'recipe'"),
    (["plan", "x.yaml", "--bogus"], "No such option: --bogus"),
    (["bogus"], "No such command 'bogus'"),
    (["--install-completion"], "does not install shell completion"),
    (["run", "x.yaml", "--grace", "soon"], "Invalid value for '--grace'"),
])
def test_usage_errors_are_one_line_exit_2(argv, words):
    result = swift_ext(*argv)
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_version_and_debug():
    from swift_ext import __version__

    version = swift_ext("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"swift-ext {__version__}"
    debug = swift_ext("plan", "nope.yaml", env={"SWIFT_EXT_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "UserError" in debug.stderr


def test_make_checks_its_variables_and_the_recipe_command():
    make = ["make", "-s", "-C", str(ROOT), "SX=" + f"{sys.executable} -m swift_ext", "BIN=/nonexistent"]
    merge = subprocess.run(make + ["merge", "-o", "setup"], capture_output=True, text=True)
    assert merge.returncode != 0 and "usage: make merge CKPT=" in merge.stderr
    wrong = subprocess.run(make + ["rlhf", "-o", "setup", "RECIPE=recipes/smoke/tiny-sft.yaml"], capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert wrong.returncode != 0 and "this is a `sft` recipe, not `rlhf`" in wrong.stderr
    grpo = subprocess.run(make + ["sft", "-o", "setup", "RECIPE=recipes/smoke/tiny-grpo.yaml"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert grpo.returncode != 0 and "this is a `rlhf` recipe, not `sft`" in grpo.stderr


def test_doctor_counts_gpus_from_nvidia_smi(tmp_path):
    """nvidia-smi's CSV as an H200 machine prints it (no GPU here, so a stand-in prints it)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "nvidia-smi").write_text("#!/bin/sh\nprintf '0, NVIDIA H200, 143771\\n1, NVIDIA H200, 143771\\n'\n")
    (bindir / "nvidia-smi").chmod(0o755)
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    recipe = ROOT / "recipes/qwen3_6/sft-lora-4x32g.yaml"
    result = swift_ext("doctor", recipe, env=env)
    assert result.returncode == 1
    assert "error: doctor: launch.gpus_per_node is 4 but 2 GPU(s) are visible" in result.stderr
    assert "mcore-bridge is not installed" in result.stderr  # this machine has no Megatron stack
    narrowed = swift_ext("doctor", recipe, env={**env, "CUDA_VISIBLE_DEVICES": "1"})
    assert "is 4 but 1 GPU(s) are visible" in narrowed.stderr
    cpu = swift_ext("doctor", ROOT / "recipes/smoke/tiny-sft.yaml", env=env)
    assert cpu.returncode == 0 and "0 blocking problem(s)" in cpu.stdout


def test_resume_picks_the_newest_complete_checkpoint_across_versions(tmp_path, write):
    out = tmp_path / "OUT"
    for version, step, complete in (("v0-20261129-100000", 4, True), ("v1-20261129-110000", 6, True),
                                    ("v1-20261129-110000", 8, False)):
        ckpt = out / version / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        if complete:
            (ckpt / "trainer_state.json").write_text("{}")
        time.sleep(0.05)  # distinct mtimes, in this order
    (out / "v1-20261129-110000" / "logging.jsonl").write_text('{"loss": 1}\n')
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "swift").write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'argv.txt'}\n")
    (bindir / "swift").chmod(0o755)
    recipe = write("r.yaml", RECIPE)
    result = swift_ext("run", recipe, "--resume", cwd=tmp_path, env={"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    argv = (tmp_path / "argv.txt").read_text().split()
    assert argv[-2:] == ["--resume_from_checkpoint", str(out / "v1-20261129-110000" / "checkpoint-6")]
    # add_version: true — ms-swift writes a new vN-* dir, so nothing in the old ones is renamed
    assert (out / "v1-20261129-110000" / "logging.jsonl").is_file()
    assert (out / "v1-20261129-110000" / "checkpoint-8").is_dir()


def test_whole_trainer_tree_ends_when_swift_ext_is_killed(tmp_path):
    """SIGKILL gives swift-ext no chance to forward anything: the reaper ends the group, the child that
    ignores SIGTERM included (SIGKILL after the grace period), and only then frees the output folder."""
    proc, pids = _start_run(tmp_path, "--grace", "2")
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if _alive(p)]
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, "trainer processes outlived swift-ext"
    proc.stdout.close()
    proc.stderr.close()


def test_second_run_into_the_same_folder_is_refused(tmp_path, write):
    proc, pids = _start_run(tmp_path, "--grace", "2")
    try:
        second = swift_ext("run", tmp_path / "r.yaml", cwd=tmp_path)
        assert second.returncode == 2, second.stderr
        assert "another `swift-ext run` is writing into OUT" in second.stderr
        assert f"pid {proc.pid} on {os.uname().nodename}" in second.stderr
        assert len([line for line in second.stderr.strip().splitlines() if line.startswith("error")]) == 1  # one refusal (plan warnings may precede it)
        assert len(list((tmp_path / "OUT").glob("swift-ext-run-*.json"))) == 1  # the refused run wrote nothing
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    # the kernel dropped the lock with the run: the folder is free again (the fake trainer is gone)
    assert not any(_alive(p) for p in pids)
    bindir = tmp_path / "bin2"
    bindir.mkdir()
    (bindir / "swift").write_text("#!/bin/sh\nexit 0\n")
    (bindir / "swift").chmod(0o755)
    third = swift_ext("run", tmp_path / "r.yaml", cwd=tmp_path, env={"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"})
    assert third.returncode == 0, third.stderr


def test_ctrl_c_prints_one_line_and_the_trainer_output_goes_to_the_run_log(tmp_path):
    proc, pids = _start_run(tmp_path, "--grace", "2")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT
    assert "training..." in out  # streamed through while it ran
    after_start = err.split("$ swift sft", 1)[1].splitlines()[1:]
    after_start = [line for line in after_start if not line.startswith("    ")]  # the printed command's lines
    assert len(after_start) == 1 and "stopped by SIGINT" in after_start[0], err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    log = next((tmp_path / "OUT").glob("swift-ext-run-*.log")).read_text()
    assert "training..." in log and "KeyboardInterrupt" in log


def test_run_refuses_a_megatron_recipe_this_machine_cannot_run(tmp_path, write):
    """No GPU and no Megatron stack here: one line per problem, and no rank is started."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "megatron").write_text(f"#!/bin/sh\ntouch {tmp_path / 'started'}\n")
    (bindir / "megatron").chmod(0o755)
    recipe = write("m.yaml", "command: sft\nengine: megatron\nlaunch: {gpus_per_node: 2, gpu: H100}\n"
                             "args: {model: Qwen/Qwen3-8B, tuner_type: lora, dataset: [some/hub], output_dir: OUT}\n")
    result = swift_ext("run", recipe, cwd=tmp_path, env={"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 2 and "no rank was started" in result.stderr, result.stderr
    assert "error: doctor: launch.gpus_per_node is 2 but 0 GPU(s) are visible" in result.stderr
    assert "error: doctor: mcore-bridge is not installed" in result.stderr
    assert not (tmp_path / "started").exists() and not (tmp_path / "OUT").exists()


def test_report_joins_a_resumed_run_with_the_run_it_continued(tmp_path):
    from swift_ext.after.report import read_log, with_earlier_runs

    row = lambda step, loss: json.dumps({"loss": loss, "global_step/max_steps": f"{step}/6"})  # noqa: E731
    (tmp_path / "logging.jsonl.before-resume-20261130-000405").write_text(
        "\n".join(row(s, 10 - s) for s in (1, 2, 3, 4)) + "\n")  # stopped after step 4, checkpoint at 2
    (tmp_path / "logging.jsonl").write_text("\n".join(row(s, 5 - s / 10) for s in (3, 4, 5, 6)) + "\n")
    rows = with_earlier_runs(tmp_path / "logging.jsonl", read_log(tmp_path / "logging.jsonl"))
    assert [r["global_step/max_steps"] for r in rows] == ["1/6", "2/6", "3/6", "4/6", "5/6", "6/6"]
    assert rows[2]["loss"] == 4.7  # step 3 from the resumed run, not the redone one
