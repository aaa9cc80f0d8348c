"""`swift-ext run`: check, write the run manifest, then start ms-swift, stream its output, stop it cleanly.

`start` does everything up to the process (plan, doctor, output dir, resume point, manifest); `finish`
runs it in its own process group and appends how it ended to the manifest."""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from swift_ext import __version__
from swift_ext.spec.findings import UserError
from swift_ext.planner.launch import Launch, render_values
from swift_ext.spec.recipe import Recipe, load_recipe
from swift_ext.spec.secrets import masked_args, masked_env
from swift_ext.runs import rundir, runlock
from swift_ext.runs.process import Ending, term_when_parent_dies, execute, signal_group
from swift_ext.runs.rundir import RunDir

# Inherited variables that change what ms-swift does; recorded so a run can be reproduced.
RELEVANT = re.compile(
    r"^(CUDA_|NCCL_|NVTE_|TORCH|PYTORCH_|OMP_|MASTER_|NODE_RANK|NNODES|NPROC_PER_NODE|WORLD_SIZE|HF_|"
    r"MODELSCOPE_|USE_HF|WANDB_|SWANLAB_|IMAGE_|VIDEO_|FPS_|MAX_PIXELS|SLURM_JOB_ID|SWIFT_)"
)
VERSIONED = ["ms-swift", "megatron-core", "mcore-bridge", "transformers", "torch", "peft", "vllm"]


@dataclass
class Started:
    recipe: Recipe
    launch: Launch
    out: Path
    manifest_path: Path
    at: float
    lock_fd: int | None = None  # the output folder's run lock (runlock.py), held until the run ends


def start(path: Path, overrides: list[str], *, force: bool, resume: bool, expect: str | None,
          print_problems, say) -> Started:
    """Everything before the process starts; raises UserError (exit 2) when it must not start."""
    from swift_ext.runs import doctor
    from swift_ext.planner import oracle
    from swift_ext.planner.plan import make_plan

    rec = load_recipe(path, overrides)
    rec.launch.world_size  # noqa: B018 -- sizes left to the scheduler: a one-line UserError asking for them
    if expect and rec.command != expect:
        raise UserError.one(f"this is a `{rec.command}` recipe, not `{expect}`: refusing to run it as {expect}",
                            hint=f"`make {rec.command} RECIPE={path}` or `swift-ext run {path}`",
                            **rec.where("command"))
    result = make_plan(rec, oracle=oracle.for_launch())
    print_problems(result)
    if not result.ok and not force:
        raise UserError.one("refusing to run a recipe that fails pre-flight", file=rec.source,
                            hint="fix the errors above; --force runs it anyway")
    if rec.launch.nodes > 1 and not all(k in os.environ for k in ("NODE_RANK", "MASTER_ADDR")):
        raise UserError.one(f"launch.nodes is {rec.launch.nodes}: `swift-ext run` starts one node; set NODE_RANK, "
                            "MASTER_ADDR and MASTER_PORT on each node, or use `swift-ext submit` on Slurm",
                            **rec.where("launch.nodes"))
    findings = doctor.diagnose(rec, result)
    for f in findings:
        say(doctor.render(f), markup=False)
    blocking = [f for f in findings if f.blocking]
    if blocking and not force:
        raise UserError.one(f"this machine cannot run {rec.source}: {len(blocking)} blocking problem(s) above; "
                            "no rank was started", hint="`swift-ext doctor RECIPE` rechecks; --force runs anyway")
    launch = result.launch
    if launch.local_models:
        from swift_ext.planner.tinymodel import ensure_model

        for name in launch.local_models:
            say(f"preparing local model {name} ...")
            ensure_model(name)
    out = prepare_output_dir(rec, launch, resume=resume)
    lock_fd = runlock.acquire(out, recipe=rec.source)
    try:
        return _start_locked(rec, launch, out, lock_fd, resume=resume, say=say)
    except BaseException:
        runlock.release(lock_fd)
        raise


def _start_locked(rec: Recipe, launch: Launch, out: Path, lock_fd: int, *, resume: bool, say) -> Started:
    extra: dict = {}
    if resume:
        point = find_resume_point(rec, out)
        flags = [t for name, value in point.args.items() for t in (f"--{name}", *render_values(value))]
        launch = replace(launch, argv=launch.argv + flags)
        if rec.engine == "megatron":  # what ms-swift would silently turn into a fresh start (swift_ext/runs/resume.py)
            from swift_ext.runs.resume import argv_to_args, check_resume

            issues = check_resume(argv_to_args(launch.argv), point.checkpoint)
            for issue in issues:
                say(f"{issue.severity}: --resume: {issue.message}", markup=False)
            if any(i.severity == "error" for i in issues):
                raise UserError.one(f"refusing to resume from {point.checkpoint}: ms-swift would start over or fail "
                                    "(reasons above)", file=rec.source)
        # ms-swift appends to logging.jsonl in a fixed output dir: the first run's rows (including steps
        # after the checkpoint) would merge silently with the resumed run's.
        # With add_version (the default) the resumed run gets a new vN-* dir and touches nothing here.
        aside = [] if _versioned(rec) else point.incomplete + [out / "logging.jsonl"]
        moved = set_aside(aside, _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S"))
        for old, new in moved:
            say(f"resume: kept {old} as {new}", markup=False)
        say(f"resume: continuing from {point.checkpoint}", markup=False)
        extra["resume"] = {"checkpoint": str(point.checkpoint), "args": point.args, "set_aside": moved}
    manifest_path = write_manifest(out, manifest(rec, launch, extra))
    say(f"manifest: {manifest_path}", markup=False)
    say("$ " + replace(launch, env=masked_env(launch.env)).shell().rstrip(), markup=False)
    return Started(rec, launch, out, manifest_path, time.time(), lock_fd)


def finish(started: Started, grace_s: float, say) -> int:
    """Run the process to its end; record how it ended in the manifest; the exit code for swift-ext."""
    log = RunDir(started.out).run_log_for(started.manifest_path)
    follower = start_eval_follower(started.out, say) if started.recipe.eval is not None else None
    try:
        ending = execute(started.launch, grace_s, log=log,
                         keep_fds=() if started.lock_fd is None else (started.lock_fd,))
    finally:
        runlock.release(started.lock_fd)
    record_end(started.manifest_path, ending, started.at)
    if follower is not None:
        end_eval_follower(follower, stopped=bool(ending.signal), say=say)
    ckpt = latest_checkpoint(started.out, started.at, started.recipe.engine)
    if ending.signal:  # one line: the trainer's own traceback went to the log
        say(f"[yellow]stopped by {ending.signal}[/yellow]"
            f"{' (SIGKILL after the grace period)' if ending.killed_after_grace else ''}; "
            f"last checkpoint: {ckpt or 'none'}; `swift-ext run ... --resume` continues; log: {log}")
    elif ending.exit_code == 0 and ckpt:
        say(f"[green]done[/green]: checkpoint {ckpt}")
    elif ending.exit_code != 0:
        say(f"[red]ms-swift exited with code {ending.exit_code}[/red]; its output: {log}")
    return ending.exit_code


def start_eval_follower(out: Path, say) -> subprocess.Popen | None:
    """`swift-ext eval OUT --follow` (swift_ext/after/evaluate.py) in its own session next to the trainer: it
    evaluates checkpoints as they appear and finishes the last ones once its stdin closes. It never signals
    the trainer; its failure never changes the run's exit code."""
    log_dir = RunDir(out).eval_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / "follow.log", "ab")
    try:
        # Its own session (a Ctrl-C meant for the trainer does not cut an evaluation short), but it ends when
        # swift-ext does, even on SIGKILL (PR_SET_PDEATHSIG): no evaluation outlives the run it belongs to.
        proc = subprocess.Popen([sys.executable, "-m", "swift_ext", "eval", str(out), "--follow"],
                                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=term_when_parent_dies)
    except OSError as exc:
        say(f"[yellow]evaluation not started[/yellow]: {exc}")
        return None
    finally:
        log.close()
    say(f"evaluating checkpoints as they are saved: {RunDir(out).eval_metrics} (log: {log_dir / 'follow.log'})",
        markup=False)
    return proc


def end_eval_follower(proc: subprocess.Popen, stopped: bool, say) -> None:
    """Training ended: closing stdin tells the follower to evaluate what is left and stop; a stopped run
    stops it too (`swift-ext eval OUT` finishes the evaluations later)."""
    with contextlib.suppress(OSError):
        proc.stdin.close()
    if stopped:
        signal_group(proc.pid, signal.SIGTERM)
    else:
        say("training ended; evaluating the remaining checkpoints ...", markup=False)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        signal_group(proc.pid, signal.SIGTERM)
        code = proc.wait()
    if code != 0 and not stopped:
        say(f"[yellow]evaluation incomplete[/yellow] (exit {code}): see the follower's log; "
            "`swift-ext eval RUN` retries what is missing")


def record_end(path: Path, ending: "Ending", started_at: float) -> None:
    """Add an `end` entry to the manifest: everything it held stays; the file is replaced atomically."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data["end"] = {**ending.as_dict(), "ended": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                   "duration_s": round(time.time() - started_at, 1)}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _versioned(recipe: Recipe) -> bool:
    value = recipe.args.get("add_version", True)
    return value if isinstance(value, bool) else str(value).lower() == "true"


def manifest(recipe: Recipe, launch: Launch, extra: dict | None = None) -> dict:
    inherited = {k: v for k, v in os.environ.items() if RELEVANT.match(k) and k not in launch.env}
    versions = {"swift-ext": __version__}
    for dist in VERSIONED:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    recipe_copy = recipe.to_yaml_dict()
    recipe_copy["env"] = masked_env(recipe_copy.get("env", {}))
    recipe_copy["args"] = masked_args(recipe_copy.get("args", {}))
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "recipe_file": recipe.source,
        "recipe": recipe_copy,
        "argv": launch.printable_argv(),  # credentials as $VARIABLE references
        "env": masked_env(launch.env),
        "inherited_env": masked_env(inherited),
        "versions": versions,
        "git": _git_state(Path(recipe.source).parent if recipe.source else Path.cwd()),
        "host": os.uname().nodename,
        "cwd": os.getcwd(),
        "tracking": tracking(recipe),
        **(extra or {}),
    }


def tracking(recipe: Recipe) -> dict:
    """Where the run's metrics go (ms-swift's report_to), so a report can find them later."""
    report_to = recipe.args.get("report_to") or (["tensorboard"] if recipe.engine == "swift" else [])
    report_to = report_to if isinstance(report_to, list) else [report_to]
    out: dict = {"report_to": [str(r) for r in report_to]}
    if "tensorboard" in out["report_to"]:
        out["tensorboard"] = str(recipe.args.get("logging_dir") or recipe.args.get("tensorboard_dir")
                                 or "<output_dir>/v*/runs")
    if "swanlab" in out["report_to"]:
        out["swanlab"] = {
            "mode": str(recipe.args.get("swanlab_mode") or "cloud"),
            "log_dir": os.environ.get("SWANLAB_LOG_DIR") or recipe.env.get("SWANLAB_LOG_DIR") or "./swanlog",
        }
    return out


def _git_state(where: Path) -> dict | None:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=where, capture_output=True, text=True, timeout=5)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def prepare_output_dir(recipe: Recipe, launch: Launch, *, resume: bool = False) -> Path:
    """Create the output dir, refusing to reuse an un-versioned one that holds ms-swift output unless resuming.
    swift-ext's own files (manifests, batch scripts, Slurm logs) do not count: a submit whose sbatch
    failed, or whose job never started, must not block the next one."""
    out = Path(launch.output_dir or ("megatron_output" if recipe.engine == "megatron" else "output"))
    clash = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if clash is not None:
        raise UserError.one(f"output dir {out}: {clash} is a file, not a directory", file=recipe.source,
                            path="args.output_dir", hint="set args.output_dir to a directory path")
    found = trainer_output(out)
    if not _versioned(recipe) and found and not resume:
        raise UserError.one(
            f"output dir {out} already holds a run ({', '.join(found[:3])}) and `add_version` is false: "
            "ms-swift would write into it",
            file=recipe.source,
            hint="pass --resume to continue that run, or set args.output_dir to a new directory",
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def trainer_output(out: Path) -> list[str]:
    """Names in the output dir that ms-swift wrote (anything but swift-ext's own files)."""
    return RunDir(out).trainer_output()


def checkpoint_complete(path: Path, engine: str) -> bool:
    return rundir.checkpoint_complete(path, engine)


def latest_complete_checkpoint(output_dir: Path, engine: str = "megatron") -> Path | None:
    """The checkpoint `--resume` continues from (the rule: swift_ext/runs/rundir.py)."""
    return RunDir(output_dir).latest_checkpoint(engine)


@dataclass
class ResumePoint:
    checkpoint: Path
    args: dict  # ms-swift arguments that make the run continue from the checkpoint
    incomplete: list[Path]  # later checkpoint-N dirs whose save never finished (the new run would reuse the name)


def find_resume_point(recipe: Recipe, out: Path) -> ResumePoint:
    """Where `run --resume` continues from, or a UserError saying why there is nothing to resume."""
    engine = recipe.engine
    where = {"file": recipe.source, "path": "args.output_dir"}
    run = RunDir(out)
    ckpt = run.latest_checkpoint(engine)
    if ckpt is None:
        partial = [str(p) for p in run.checkpoints()]
        reason = (f"only incomplete checkpoints ({', '.join(partial)}: no {rundir.completion_marker(engine)})"
                  if partial else "no checkpoint-N directory")
        raise UserError.one(f"--resume: nothing to resume from in {out}: {reason}",
                            hint="run without --resume to start over in a new output dir", **where)
    if engine == "megatron":
        args = {rundir.load_flag(str(recipe.args.get("tuner_type", "full"))): str(ckpt.resolve()), "finetune": False}
    else:
        args = {"resume_from_checkpoint": str(ckpt.resolve())}
    return ResumePoint(ckpt, args, run.incomplete_after(ckpt, engine))


def set_aside(paths: list[Path], stamp: str) -> list[tuple[str, str]]:
    """Rename files/dirs the resumed run would write over to NAME.before-resume-STAMP; nothing is deleted."""
    moved = []
    for path in paths:
        if path.exists():
            target = path.with_name(f"{path.name}.before-resume-{stamp}")
            path.rename(target)
            moved.append((str(path), str(target)))
    return moved


def write_manifest(out: Path, data: dict) -> Path:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    for n in range(100):
        path = RunDir(out).new_manifest_path(stamp, n)
        try:
            # O_EXCL: an existing manifest is never overwritten.
            with open(path, "x", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, ensure_ascii=False)
                fh.write("\n")
            return path
        except FileExistsError:
            continue
    raise UserError.one(f"cannot create a new manifest in {out}")


def latest_checkpoint(out: Path, since: float, engine: str | None = None) -> Path | None:
    """The newest complete checkpoint, when this run (started at `since`) wrote it."""
    ckpt = RunDir(out).latest_checkpoint(engine)
    return ckpt if ckpt is not None and ckpt.stat().st_mtime >= since else None
