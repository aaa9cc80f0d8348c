"""swift-ext submit against a real local Slurm (slurmctld + two slurmd "nodes", slurm/local/up.sh),
with a fast fake `megatron` (tests/fixtures/fakebin) so the job mechanics are tested for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FIXTURES, RECIPES, ROOT, swift_ext, swift_ext_in_process

pytestmark = pytest.mark.slurm  # the cluster itself is only started by tests using the `cluster` fixture
# SLURM_CONF and SWIFT_EXT_SLURM_DIR are filled in by `cluster`: every test run has its own cluster in its own folder.
ENV = {"PATH": f"{FIXTURES / 'fakebin'}{os.pathsep}{os.environ['PATH']}", "FAKE_STEP_SECONDS": "0.2"}
SLURM_BINS = ("slurmctld", "slurmd", "sbatch", "scontrol", "munged", "munge", "unshare")


def poll(condition, timeout: float, what: str, every: float = 0.2):
    """Wait until condition() is truthy (returns it) or fail saying `what` did not happen within `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not after {timeout:g}s")
        time.sleep(every)


def _running(pid: int) -> bool:
    """A process with this PID exists and is not a zombie (this container's init may never reap one)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _in_namespaces(namespaces: set[str]) -> list[int]:
    """Running processes in any of these PID namespaces (a node's: slurmd, slurmstepd, job steps)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "pid") in namespaces and _running(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Slurm of this test run only (slurm/local/up.sh): its own folder, munged and ports, so runs at once
    do not collide; nothing is installed (CI installs Slurm with slurm/local/install.sh) and nothing outside the
    folder is written. Teardown stops every daemon by the PID up.sh recorded and checks none of them is left."""
    if os.geteuid() != 0:
        pytest.skip("the local Slurm needs root (slurmd runs jobs in its own PID/UTS namespaces)")
    sbin = f"{os.environ['PATH']}{os.pathsep}/usr/sbin{os.pathsep}/sbin"
    missing = [b for b in SLURM_BINS if not shutil.which(b, path=sbin)]
    if missing:
        pytest.skip(f"Slurm/munge not installed (no {', '.join(missing)}): `bash slurm/local/install.sh` installs "
                    "them (CI does)")
    folder = tmp_path_factory.mktemp("slurm")
    ENV.update(SLURM_CONF=str(folder / "slurm.conf"), SWIFT_EXT_SLURM_DIR=str(folder))
    env = {**os.environ, **ENV}
    try:
        up = subprocess.run(["bash", str(ROOT / "slurm/local/up.sh")], env=env, capture_output=True, text=True,
                            timeout=120)
        assert up.returncode == 0, up.stderr
        again = subprocess.run(["bash", str(ROOT / "slurm/local/up.sh")], env=env, capture_output=True, text=True,
                               timeout=60)
        assert again.returncode == 0, again.stderr  # idempotent
        yield
    finally:
        run = folder / "run"
        # Host PIDs up.sh recorded (munged, slurmctld, each node's unshare and namespace init) and the nodes'
        # PID namespaces; read before down.sh removes them.
        files = list(run.iterdir()) if run.is_dir() else []
        pids = {int(t) for p in files
                if p.name.endswith((".pid", ".pid.d")) and (t := p.read_text().strip()).isdigit()}
        namespaces = {p.read_text().strip() for p in files if p.name.endswith(".pidns")}
        down = subprocess.run(["bash", str(ROOT / "slurm/local/down.sh"), "--keep-logs"], env=env,
                              capture_output=True, text=True, timeout=120)
        for key in ("SLURM_CONF", "SWIFT_EXT_SLURM_DIR"):
            ENV.pop(key, None)
        left = sorted(pid for pid in pids if _running(pid)) + _in_namespaces(namespaces)
        assert down.returncode == 0 and not left, f"left running: {left} {down.stderr} (logs in {folder}/log)"


def recipe(tmp_path, **args) -> Path:
    body = {"description": "fake trainer job", "command": "sft", "engine": "megatron",
            "launch": {"nodes": 2, "gpus_per_node": 2, "gpu": "H200"},
            "args": {"model": "Qwen/Qwen2.5-7B-Instruct", "tuner_type": "full", "dataset": ["some/hub-dataset"],
                     "train_iters": 6, "save_steps": 2, "add_version": False, "no_save_optim": False,
                     "global_batch_size": 4, "output_dir": str(tmp_path / "run"), **args}}
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(body))  # JSON is YAML
    return path


def slurm(*cmd) -> str:
    return subprocess.run(list(cmd), env={**os.environ, **ENV}, capture_output=True, text=True, timeout=60).stdout


def job_state(job_id: str) -> dict:
    fields = {}
    for token in slurm("scontrol", "show", "job", "-o", job_id).split():
        if "=" in token:
            k, _, v = token.partition("=")
            fields.setdefault(k, v)
    return fields


def wait_for(job_id: str, states=("COMPLETED",), timeout=120) -> dict:
    last = {}

    def reached():
        last.update(job_state(job_id))
        return last.get("JobState") in states and dict(last)

    try:
        return poll(reached, timeout, f"job {job_id} in {states}", every=0.5)
    except AssertionError as e:
        raise AssertionError(f"{e}: {last.get('JobState')} {last.get('Reason')}") from None


def wait_for_steps(run: Path, n: int, timeout: float = 60) -> None:
    """Until the fake trainer has logged at least n steps."""
    poll(lambda: (run / "steps.log").exists() and len(steps(run)) >= n, timeout, f"{n} steps logged in {run}")


def submit(path, *extra, env=None, force=True) -> tuple[list[str], subprocess.CompletedProcess]:
    # The local nodes have no GPU and no Megatron stack: `swift-ext doctor` in the job would stop the
    # fake trainer, so these jobs are submitted with --force (doctor then warns; see test_doctor_*).
    result = swift_ext("submit", path, *extra, *(["--force"] if force else []), env={**ENV, **(env or {})},
                       timeout=120)
    assert result.returncode == 0, result.stderr
    ids = [line.split("job ")[1].split(" ")[0] for line in result.stderr.splitlines() if line.startswith("submitted")]
    return ids, result


def steps(run: Path) -> list[int]:
    return [int(x) for x in (run / "steps.log").read_text().split()]


def invocations(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "invocations.jsonl").read_text().splitlines()]


def test_dry_run_on_seed_recipes_prints_a_plain_sbatch_script(tmp_path):
    for name in ("sft-lora-4x32g.yaml", "grpo-lora-8gpu.yaml", "sft-full-2x8.yaml"):
        result = swift_ext("submit", RECIPES / "qwen3_6" / name, "--dry-run", "--partition", "gpu", "--time", "12:00:00")
        assert result.returncode == 0, result.stderr
        script = result.stdout
        assert script.startswith("#!/bin/bash") and "#SBATCH --ntasks-per-node=1" in script
        assert "#SBATCH --requeue" in script and "#SBATCH --signal=B:USR1@120" in script
        assert "$NUM_NODES" not in script and all("$" not in line for line in script.splitlines()
                                                  if line.startswith("#SBATCH"))
        check = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr
    assert "#SBATCH --nodes=2" in swift_ext("submit", RECIPES / "qwen3_6/sft-full-2x8.yaml", "--dry-run").stdout


def test_secret_in_recipe_env_is_refused(tmp_path):
    path = recipe(tmp_path)
    data = json.loads(path.read_text())
    data["env"] = {"WANDB_API_KEY": "sk-should-not-be-written"}
    path.write_text(json.dumps(data))
    result = swift_ext("submit", path, "--dry-run")
    assert result.returncode == 2 and "looks like a secret" in result.stderr


def test_two_node_job(cluster, tmp_path):
    run = tmp_path / "run"
    (job,), _ = submit(recipe(tmp_path, train_iters=3))
    wait_for(job)
    calls = invocations(run)
    assert sorted(c["rank"] for c in calls) == [0, 1]
    assert {c["host"] for c in calls} == {"n1", "n2"}
    assert len({c["env"]["MASTER_ADDR"] for c in calls}) == 1 and calls[0]["env"]["MASTER_ADDR"] == "n1"
    assert calls[0]["argv"] == calls[1]["argv"] and calls[0]["argv"][0] == "sft"
    assert all(c["env"]["NNODES"] == "2" and c["env"]["NPROC_PER_NODE"] == "2" for c in calls)
    assert 20000 <= int(calls[0]["env"]["MASTER_PORT"]) < 30000
    manifest = json.loads(next(run.glob("swift-ext-run-*.json")).read_text())
    assert manifest["slurm"]["jobs"][0]["job_id"] == job


def _check_resumed(run: Path, total: int) -> None:
    got = steps(run)
    assert sorted(set(got)) == list(range(1, total + 1))  # no step lost
    calls = [c for c in invocations(run) if c["rank"] == 0]
    assert len(calls) >= 2
    resumed = calls[-1]["argv"]
    ckpt = resumed[resumed.index("--mcore_model") + 1]
    k = int(ckpt.rsplit("-", 1)[1])
    assert (Path(ckpt) / "latest_checkpointed_iteration.txt").is_file()  # a complete checkpoint
    assert got[-(total - k):] == list(range(k + 1, total + 1))  # the resumed run started right after CKPT
    repeated = [s for s in set(got) if got.count(s) > 1]
    assert all(s > k for s in repeated)  # only steps after the checkpoint were redone
    half = [int(x) for x in (run / "half-written.log").read_text().split()]
    assert half and all(h > k for h in half)  # the half-written checkpoint was newer, and not picked


@pytest.mark.parametrize("how", ["requeue", "usr1"])
def test_preemption_requeues_and_resumes(cluster, tmp_path, how):
    run = tmp_path / "run"
    total = 24
    (job,), _ = submit(recipe(tmp_path, train_iters=total), env={"FAKE_STEP_SECONDS": "0.3"})
    wait_for_steps(run, 7)
    if how == "requeue":
        slurm("scontrol", "requeue", job)  # what a preempting scheduler does: TERM to the steps, then requeue
    else:
        slurm("scancel", "--signal=USR1", "--batch", job)  # the time-limit warning (--signal=B:USR1@grace)
    info = wait_for(job, timeout=150)
    assert int(info["Restarts"]) >= 1
    _check_resumed(run, total)
    status = swift_ext("status", run, env=ENV)
    assert status.returncode == 0 and f"checkpoint-{total}" in status.stdout


def test_chain_runs_in_order_and_a_failure_cancels_the_rest(cluster, tmp_path):
    ok_dir = tmp_path / "ok"
    ok_dir.mkdir()
    (train, merge), _ = submit(recipe(ok_dir, train_iters=2), "--then", "merge")
    wait_for(train)
    merged = wait_for(merge, timeout=120)
    assert merged["JobState"] == "COMPLETED"
    assert (ok_dir / "run" / "checkpoint-2-merged" / "model.safetensors").is_file()
    assert merged["StartTime"] >= job_state(train)["EndTime"]
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    (train, merge, infer), _ = submit(recipe(bad_dir, train_iters=2), "--then", "merge", "--then", "infer",
                                      env={"FAKE_FAIL": "1"})
    assert wait_for(train, states=("FAILED",))["JobState"] == "FAILED"
    for follow in (merge, infer):
        info = wait_for(follow, states=("CANCELLED",), timeout=60)
        assert "Dependency" in info.get("Reason", "") or info["JobState"] == "CANCELLED"


def test_injection_stays_literal_and_secrets_are_never_written(cluster, tmp_path):
    run = tmp_path / "run"
    nasty = '"; rm -rf ~ #'
    (job,), _ = submit(recipe(tmp_path, train_iters=2, system=nasty), env={"WANDB_API_KEY": "sk-live-SECRET-42"})
    wait_for(job)
    argv = invocations(run)[0]["argv"]
    assert argv[argv.index("--system") + 1] == nasty
    assert invocations(run)[0]["env"]["WANDB_API_KEY"] == "sk-live-SECRET-42"  # forwarded by name
    for path in run.rglob("*"):
        if path.is_file() and path.name != "invocations.jsonl":  # the fake trainer's own record of its env
            assert b"sk-live-SECRET-42" not in path.read_bytes(), path
    manifest = json.loads(next(run.glob("swift-ext-run-*.json")).read_text())
    assert "WANDB_API_KEY" in manifest["slurm"]["forwarded_env"]


def test_sweep_is_a_job_array_with_one_output_dir_each(cluster, tmp_path):
    (job,), _ = submit(recipe(tmp_path, train_iters=2), "--sweep", "args.lr=1e-5,5e-5")

    def both_done():
        runs = sorted((tmp_path / "run").glob("sweep-*"))
        done = len(runs) == 2 and all((r / "checkpoint-2" / "latest_checkpointed_iteration.txt").exists() for r in runs)
        return done and runs

    runs = poll(both_done, 120, "both sweep runs at checkpoint-2", every=0.5)
    assert [r.name for r in runs] == ["sweep-0-lr=1e-5", "sweep-1-lr=5e-5"]
    for r, lr in zip(runs, ("1e-5", "5e-5")):
        argv = invocations(r)[0]["argv"]
        assert argv[len(argv) - 1 - argv[::-1].index("--lr") + 1] == lr


@pytest.mark.parametrize("extra, message", [
    (["--then", "deploy"], "expected merge or infer"),
    (["--time", "two days"], "is not a Slurm time"),
    (["--sweep", "lr=1e-5,5e-5"], "expected args.NAME=V1,V2"),
    (["--sweep", "args.lr=1e-5"], "at least two"),
])
def test_submit_bad_options(tmp_path, extra, message):
    # In this process (run_cli: the same parsing, error funnel and exit codes): what submit refuses, not the
    # CLI process, which the dry runs above and the cluster tests run as a user does.
    result = swift_ext_in_process("submit", recipe(tmp_path), "--dry-run", *extra)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_submit_refuses_transformers_backend_recipes():
    # In this process: submit plans the recipe first, and the tiny recipe's plan reads a 248k-vocabulary
    # tokenizer.json (seconds in a new process; once per session here).
    result = swift_ext_in_process("submit", RECIPES / "smoke/tiny-sft.yaml", "--dry-run")
    assert result.returncode == 2 and "engine: megatron" in result.stderr


def test_submit_without_slurm_says_so(tmp_path):
    result = swift_ext("submit", recipe(tmp_path), env={"PATH": "/usr/local/nosuchdir"})
    assert result.returncode == 2 and "sbatch not found" in result.stderr


def test_doctor_stops_the_job_before_any_rank_starts(cluster, tmp_path):
    run = tmp_path / "run"
    (job,), _ = submit(recipe(tmp_path, train_iters=2), force=False)
    info = wait_for(job, states=("FAILED",))
    assert info["JobState"] == "FAILED"
    log = next(run.glob("slurm-*.out")).read_text()
    assert "error: doctor: mcore-bridge is not installed" in log and "not starting the ranks" in log
    assert "GPU(s) are visible" in log
    assert not (run / "invocations.jsonl").exists()  # no rank was started
    assert not list(run.glob(".swift-ext-doctor-*"))  # its resolved recipe is cleaned up


def test_hung_run_is_dumped_requeued_and_resumes(cluster, tmp_path):
    """Both nodes' trainers block at step 5 on the first attempt; the watch sidecar notices the silent log,
    dumps the stacks, ends the step with 75, the script requeues, and the job resumes and finishes."""
    run = tmp_path / "run"
    path = recipe(tmp_path, train_iters=8)
    data = json.loads(path.read_text())
    data["watch"] = {"stall_minutes": 0.1}
    path.write_text(json.dumps(data))
    (job,), _ = submit(path, env={"FAKE_HANG_AT_STEP": "5"})
    info = wait_for(job, timeout=150)
    assert int(info["Restarts"]) == 1
    _check_resumed(run, 8)
    hangs = list((run / "swift-ext-watch").glob("hang-*"))
    assert hangs and (run / "swift-ext-watch" / f"stalled-{job}-0").is_file()
    stacks = [p.read_text() for h in hangs for p in [*h.glob("faulthandler-*.txt"), *h.glob("py-spy-*.txt")]]
    assert stacks and all("wait_for_collective" in s for s in stacks)  # py-spy when on PATH, else faulthandler
    log = "".join(p.read_text() for p in run.glob("slurm-*.out"))
    assert "the run hung" in log and "requeueing" in log
    assert json.loads((run / "logging.jsonl").read_text().splitlines()[-1])["iteration"] == "8/8"


def test_each_checkpoint_gets_an_eval_job_and_a_failed_one_never_fails_training(cluster, tmp_path):
    """Recipe `eval:`: the training job submits one evaluation job per saved checkpoint (and the base model);
    here every evaluation fails (its dataset does not exist) and training still completes."""
    path = recipe(tmp_path, train_iters=6, save_steps=2)
    (train,), result = submit(path, "eval.launch.gpus=0", f"eval.dataset={tmp_path / 'missing.jsonl'}")
    assert wait_for(train)["JobState"] == "COMPLETED"
    run = tmp_path / "run"
    jobs = [json.loads(line) for line in (run / "eval" / "jobs.jsonl").read_text().splitlines()]
    assert sorted(j["checkpoint"] for j in jobs) == sorted(["base"] + [str(run / f"checkpoint-{n}") for n in (2, 4, 6)])
    for job in jobs:
        assert wait_for(job["job_id"], states=("FAILED",), timeout=180)["JobState"] == "FAILED"
    logs = "".join(p.read_text() for p in run.glob("slurm-*-eval.out"))
    assert "validation file not found" in logs
    assert job_state(train)["Restarts"] == "0" and not (run / "eval" / "metrics.jsonl").exists()
