"""Evaluate a run's checkpoints: `swift infer` on the evaluation rows, scored, one line per checkpoint.

Layout, in the run's output dir (args.output_dir, where the run manifests are; one history across the
vN-* folders of resumed runs):

    eval/metrics.jsonl     one line per evaluated checkpoint: step, checkpoint, rows, one field per metric
    eval/step-N.jsonl      per-sample outputs and scores of that checkpoint
    eval/work/step-N/      swift infer's input (val.jsonl) and output (infer_result.jsonl)
    eval/follow.log        the local follower's output

Step 0 is the base model. A checkpoint counts as evaluated once its metrics.jsonl line exists; that line is
written last (after step-N.jsonl), atomically, under eval/.lock, so an interrupted evaluation is redone and
a finished one is never repeated. The follower (`swift-ext eval RUN --follow`, started by `swift-ext run`
next to the trainer) evaluates complete checkpoints as they appear and stops when its stdin closes (the
trainer ended) and nothing is left; it never signals the trainer, and its failures never change the run's
exit code. Checkpoints: transformers LoRA -> base + `--adapters` (no merge); a full checkpoint or one with
safetensors weights -> `--model`/`--adapters` directly; Megatron torch_dist checkpoints, which `swift infer`
cannot load (InferArguments has no mcore_model/mcore_adapter), are first exported to Hugging Face format by
ms-swift's own `megatron export --to_hf` (after/merge.py's plan) into the work folder, removed after scoring.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from swift_ext.spec.findings import UserError
from swift_ext.spec.recipe import Eval
from swift_ext.planner.launch import Launch
from swift_ext.runs import run as runner
from swift_ext.runs.rundir import ARGS_FILE, RunDir, checkpoint_step, read_json_object
from swift_ext.after import evalmetrics as em
from swift_ext.after.infer import MEDIA_ENV, find_manifest, read_results, resolve_val, vllm_adapter_argv
from swift_ext.after.merge import Checkpoint, plan_merge, read_checkpoint

@dataclass(frozen=True)
class Target:
    step: int
    checkpoint: Checkpoint  # for step 0: the run folder holding args.json (its `model` is the base)
    base: bool = False

    @property
    def name(self) -> str:
        return "base" if self.base else str(self.checkpoint.path)


def run_root(path: Path) -> Path:
    """The output dir from itself, one of its vN-* folders, or a checkpoint-N in one."""
    path = Path(path)
    if not path.is_dir():
        raise UserError.one("not a directory; expected a run's output dir", file=str(path))
    if checkpoint_step(path) is not None:
        path = path.parent
    return RunDir.of(path).root


def eval_dir(root: Path) -> Path:
    return RunDir(root).eval_dir


def settings_of(root: Path) -> Eval:
    """The `eval:` section recorded in the run's newest manifest (defaults when the run had none)."""
    for path in reversed(RunDir(root).manifests()):
        try:
            section = ((read_json_object(path) or {}).get("recipe") or {}).get("eval")
        except (UserError, AttributeError):
            continue
        if isinstance(section, dict):
            return Eval(**section)
    return Eval()


def complete_checkpoints(root: Path) -> list[Path]:
    """The run's complete checkpoints by step (the rule: RunDir.complete_checkpoints) that carry the
    args.json an evaluation reads the base model and template from."""
    return [c for c in RunDir(root).complete_checkpoints() if (c / ARGS_FILE).is_file()]


def targets(root: Path, settings: Eval, final: bool, only: Path | None = None) -> list[Target]:
    """What should be evaluated: the base model, every `every`-th complete checkpoint and (once training
    ended: `final`) the last one, minus what metrics.jsonl already holds."""
    done = em.evaluated_steps(eval_dir(root))
    if only is not None and str(only) == "base":
        if 0 in done:
            return []
        base = _base_target(root)
        if base is None:  # a failure, not "nothing to do": the Slurm eval job must not end as COMPLETED
            raise UserError.one("the base model is not known yet: no args.json in the run (ms-swift writes it at "
                                "start) and no complete checkpoint", file=str(root))
        return [base]
    if only is not None:
        ckpt = read_checkpoint(only)
        step = checkpoint_step(ckpt.path)
        if step is None:
            raise UserError.one("not a checkpoint-N directory", file=str(only))
        return [] if step in done else [Target(step, ckpt)]
    out: list[Target] = []
    base = _base_target(root) if 0 not in done else None
    if base is not None:
        out.append(base)
    ckpts = complete_checkpoints(root)
    for i, ckpt in enumerate(ckpts, start=1):
        step = checkpoint_step(ckpt)
        if step in done:
            continue
        if i % settings.every == 0 or (final and i == len(ckpts)):
            out.append(Target(step, read_checkpoint(ckpt)))
    return out


def _base_target(root: Path) -> Target | None:
    """Step 0: the base model named by the run's args.json (RunDir.base_args_folder); None before it exists."""
    folder = RunDir(root).base_args_folder()
    return Target(0, read_checkpoint(folder), base=True) if folder is not None else None


# --------------------------------------------------------------------------------------------------
# One checkpoint


def infer_launch(target: Target, settings: Eval, root: Path, work: Path) -> tuple[Launch, Path | None, list[Launch]]:
    """(`swift infer` command, model dir for token counts, commands to run first: a Megatron export)."""
    ckpt = target.checkpoint
    base = ckpt.base_model
    before: list[Launch] = []
    argv = ["swift", "infer"]
    model_dir = Path(base) if base and Path(base).is_dir() else None
    hf_weights = (ckpt.path / "adapter_model.safetensors").is_file() or (ckpt.path / "model.safetensors").is_file() \
        or any(ckpt.path.glob("model-*.safetensors"))
    if target.base:
        argv += ["--model", str(base)]
    elif ckpt.engine == "megatron" and not hf_weights:
        exported = work / "hf"
        plan = plan_merge(ckpt, exported)  # ms-swift's `megatron export --to_hf` (merging LoRA)
        before.append(_on_eval_devices(plan.launch, settings, ckpt))
        argv += ["--model", str(exported)]
    elif ckpt.tuner == "full" or (ckpt.path / "config.json").is_file():
        argv += ["--model", str(ckpt.path)]
    else:
        backend = "transformers" if settings.backend == "pt" else settings.backend
        argv += ["--adapters", str(ckpt.path)] + vllm_adapter_argv(ckpt.path, backend, "eval.backend vllm")
        if base:
            argv += ["--model", str(base)]
    for key in ("template", "torch_dtype"):
        if ckpt.args.get(key):
            argv += [f"--{key}", str(ckpt.args[key])]
    thinking = settings.enable_thinking if settings.enable_thinking is not None else ckpt.args.get("enable_thinking")
    temperature = settings.temperature if settings.temperature is not None else (1.0 if settings.num_samples > 1 else 0.0)
    backend = "transformers" if settings.backend == "pt" else settings.backend
    argv += ["--enable_thinking", "true" if thinking else "false", "--val_dataset", str(work / "val.jsonl"),
             "--infer_backend", backend, "--max_new_tokens", str(settings.max_new_tokens),
             "--temperature", str(temperature), "--result_path", str(work / "infer_result.jsonl")]
    manifest = find_manifest(ckpt)
    env = {k: str(v) for k, v in (manifest.get("env") or {}).items() if k in MEDIA_ENV}
    if settings.devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = settings.devices
    return Launch(env=env, argv=argv, output_dir=str(work)), model_dir, before


def _on_eval_devices(export: Launch, settings: Eval, ckpt: Checkpoint) -> Launch:
    """The Megatron export on eval.devices: plan_merge numbers the GPUs from 0 (NPROC_PER_NODE of them, the
    training's TP x PP / EP x PP grid), which next to a running trainer are the trainer's own."""
    if settings.devices is None:
        return export
    devices = [d.strip() for d in settings.devices.split(",") if d.strip()]
    need = int(export.env.get("NPROC_PER_NODE", "1"))
    if len(devices) < need:
        raise UserError.one(f"eval.devices {settings.devices!r} has {len(devices)} GPU(s); exporting this Megatron "
                            f"checkpoint to Hugging Face format (megatron export) takes {need}, the training's "
                            "parallel grid", file=str(ckpt.args_file),
                            hint=f"give eval.devices {need} GPUs, or save with save_safetensors: true (the "
                                 "evaluation then loads the adapter without an export)")
    return Launch(env={**export.env, "CUDA_VISIBLE_DEVICES": ",".join(devices[:need])}, argv=export.argv,
                  output_dir=export.output_dir)


def evaluation_rows(target: Target, settings: Eval, root: Path) -> list[dict]:
    manifest = find_manifest(target.checkpoint)
    dataset = settings.dataset
    if dataset and not Path(dataset).is_absolute() and manifest.get("cwd"):
        candidate = Path(manifest["cwd"]) / dataset
        dataset = str(candidate) if candidate.is_file() else dataset
    old_cwd = os.getcwd()
    try:  # the recorded val_dataset is relative to where the run was started
        if manifest.get("cwd") and Path(manifest["cwd"]).is_dir():
            os.chdir(manifest["cwd"])
        val = resolve_val(target.checkpoint, dataset or "val", manifest)
    finally:
        os.chdir(old_cwd)
    if val is None:
        raise UserError.one("the run's validation rows come from split_dataset_ratio, which `swift infer` "
                            "re-creates only for a checkpoint: set eval.dataset to a JSONL file",
                            file=str(target.checkpoint.args_file))
    rows, _ = read_results(Path(val))
    return rows[: settings.limit] if settings.limit else rows


def evaluate(target: Target, settings: Eval, root: Path, say=print) -> dict:
    """Run and score one target; writes step-N.jsonl, then its metrics.jsonl line. Returns the line."""
    out = eval_dir(root)
    work = out / "work" / f"step-{target.step}"
    if work.exists():  # an interrupted earlier attempt: start it over
        shutil.rmtree(work)
    work.mkdir(parents=True)
    rows = evaluation_rows(target, settings, root)
    if not rows:
        raise UserError.one("no evaluation rows", file=settings.dataset or "the validation split")
    repeated = [row for row in rows for _ in range(settings.num_samples)]
    (work / "val.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in repeated),
                                    encoding="utf-8")
    launch, model_dir, before = infer_launch(target, settings, root, work)
    started = time.time()
    code = 0
    for pre in before:
        say("$ " + pre.shell().rstrip())
        code = runner.execute(pre).exit_code
        if code != 0:
            break
    if code == 0:
        say("$ " + launch.shell().rstrip())
        code = runner.execute(launch).exit_code
    results, _ = read_results(work / "infer_result.jsonl")
    summary, per = em.score_samples(results, rows, settings.num_samples, settings.max_new_tokens, model_dir,
                                    settings.metrics)
    em.write_atomic(out / f"step-{target.step}.jsonl",
                    "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in per))
    line = {"step": target.step, "checkpoint": target.name, **summary, "infer_exit_code": code,
            "seconds": round(time.time() - started, 1),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if code != 0 and not results:
        raise UserError.one(f"`swift infer` exited with code {code} and wrote no result; {target.name} stays "
                            "unevaluated", file=str(work))
    em.append_line(out, line)
    shutil.rmtree(work / "hf", ignore_errors=True)  # an exported Megatron checkpoint: a full model's size
    return line


@contextlib.contextmanager
def eval_lock(root: Path, wait: bool):
    """One evaluator per run at a time (the follower, a manual `swift-ext eval`, a Slurm eval job). A folder
    that holds no run is refused before anything is written into it."""
    run = RunDir(root)
    if not (run.manifests() or run.checkpoints() or run.base_args_folder() is not None or run.eval_metrics.is_file()):
        raise UserError.one("not a run folder: no swift-ext manifest, args.json or checkpoint-N here", file=str(root),
                            hint="pass the run's output_dir (or one of its checkpoint-N folders)")
    out = eval_dir(root)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise UserError.one("another evaluation of this run is running (eval/.lock is held)",
                                file=str(out)) from None
        yield


def evaluate_missing(root: Path, settings: Eval, *, final: bool = True, only: Path | None = None,
                     say=print) -> tuple[list[dict], list[str]]:
    """Evaluate every target not yet in metrics.jsonl; (lines written, failures). One failure does not
    stop the others."""
    em.check_metric_names(settings.metrics, {"file": str(root), "path": "eval.metrics"})
    written, failed = [], []
    with eval_lock(root, wait=True):
        for target in targets(root, settings, final, only):
            say(f"swift-ext eval: step {target.step} ({target.name})")
            try:
                line = evaluate(target, settings, root, say)
            except UserError as exc:
                failed.append(f"step {target.step}: {exc}")
                say(f"swift-ext eval: step {target.step} failed: {exc}")
                continue
            written.append(line)
            say("swift-ext eval: " + json.dumps(line))
    return written, failed


def follow(root: Path, settings: Eval, poll_s: float = 5.0, say=print) -> int:
    """Evaluate checkpoints as they appear until stdin reaches end of file (the trainer ended), then the
    rest; exit 0, or 1 when a checkpoint could not be evaluated."""
    with contextlib.suppress(OSError):
        os.nice(10)  # the trainer comes first on a shared machine
    failures: list[str] = []
    tried: set[int] = set()
    ended = False
    while True:
        ended = ended or _stdin_closed(poll_s)
        todo = [t for t in targets(root, settings, final=ended) if t.step not in tried]
        if todo:
            written, failed = evaluate_missing(root, settings, final=ended, say=say)
            tried |= {t.step for t in todo}
            failures += failed
            continue
        if ended:
            say(f"swift-ext eval: done ({len(em.read_lines(eval_dir(root)))} evaluation(s) in "
                f"{eval_dir(root) / em.METRICS_FILE})")
            return 1 if failures else 0


def _stdin_closed(timeout: float) -> bool:
    """Wait up to `timeout` s; True once the parent closed our stdin (or died, which closes it too)."""
    try:
        ready, _, _ = select.select([sys.stdin], [], [], timeout)
    except (OSError, ValueError):
        time.sleep(timeout)
        return True
    if ready:
        return sys.stdin.buffer.read1(4096) == b""
    return False


def with_overrides(settings: Eval, overrides: list[str]) -> Eval:
    """`eval.limit=8`-style settings over the recorded ones, validated as the recipe's section is."""
    from pydantic import ValidationError

    from swift_ext.spec.yamlio import parse_scalar

    data = settings.model_dump()
    for text in overrides:
        key, sep, raw = text.partition("=")
        parts = key.strip().split(".")
        if not sep or parts[0] != "eval" or len(parts) not in (2, 3):
            raise UserError.one(f"{text!r}: expected eval.NAME=VALUE", file="command line")
        target = data["launch"] if len(parts) == 3 else data
        target[parts[-1]] = parse_scalar(raw)
    try:
        return Eval(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UserError.one(f"eval.{'.'.join(map(str, err['loc']))}: {err['msg']}", file="command line") from None


def best_checkpoint(root: Path, metric: str, lower: bool | None = None) -> dict:
    return em.best(eval_dir(root), metric, lower)
