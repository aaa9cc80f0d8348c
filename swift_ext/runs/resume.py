"""Resume that is checked, not assumed (Megatron checkpoints).

How ms-swift 4.6 resumes (swift/megatron/trainers/base.py `_load_checkpoint`,
swift/megatron/utils/megatron_lm_utils.py `load_mcore_checkpoint`):
- the iteration comes from CKPT/latest_checkpointed_iteration.txt only when `finetune` is false;
  `finetune` defaults to true, and with it the iteration is reset to 0: training starts again at 1;
- `--mcore_model CKPT` on a LoRA run (tuner_type lora) loads it as the *base* model and forces
  finetune/no_load_optim/no_load_rng to true: the run silently starts at iteration 1. A LoRA run resumes
  with `--mcore_adapter CKPT`, a full run with `--mcore_model CKPT`;
- optimizer and LR-scheduler state are loaded unless `no_load_optim`; when the checkpoint was saved with
  `no_save_optim` there is none: the load then fails on the missing `optimizer` entry (and with
  save_safetensors the Megatron checkpoint holds no weights at all, model=[] in save_checkpoint);
  with `no_load_optim` the optimizer restarts empty and the sample-counting LR scheduler
  (`opt_param_scheduler.step(increment=global_batch_size)`) restarts its warmup;
- the data order continues from the checkpoint's `consumed_train_samples` through
  MegatronPretrainingRandomSampler(seed=data_seed, micro_batch_size, data-parallel size, shuffle,
  group_by_length): changing the dataset, the batch sizes or those settings resumes onto other samples.

This module checks a checkpoint against the command that will resume from it (`check`), and after
the start compares the first iteration the resumed run logs with the checkpoint's tracker (`watch`,
run beside the training step by the sbatch script). Findings go to OUTPUT_DIR/swift-ext-resume.jsonl,
which `swift-ext status` reads. It imports nothing heavy: it runs on compute nodes at every restart.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

from swift_ext.runs.process import alive as process_alive
from swift_ext.runs.rundir import TRACKER, RunDir, load_flag, read_args, tracker_iteration
from swift_ext.spec.findings import Finding, UserError

RECORDS = "swift-ext-resume.jsonl"

# Settings that must not change between the checkpoint and the resumed command, and why.
UNSAFE_CHANGES = {
    "global_batch_size": "consumed samples and the sample-based LR schedule are counted in global batches",
    "micro_batch_size": "the resumed sampler slices the remaining samples by micro batch",
    "dataset": "the resumed sampler skips consumed_train_samples of a different dataset",
    "cached_dataset": "the resumed sampler skips consumed_train_samples of a different dataset",
    "data_seed": "the shuffled sample order depends on it",
    "seed": "dataset shuffling and splitting depend on it",
    "dataset_shuffle": "the sample order depends on it",
    "train_dataloader_shuffle": "the sample order depends on it",
    "split_dataset_ratio": "the training split changes",
    "max_length": "samples are truncated/dropped differently, so the dataset changes",
    "packing": "packed samples are different samples",
    "streaming": "a streamed dataset has no resumable sample index",
    "group_by_length": "the sample order depends on it",
    "data_sharding": "the sample order depends on it",
    "num_generations": "GRPO counts consumed samples in generations",
    "tuner_type": "a LoRA run loaded as a full model (or the reverse) starts over",
}
LAYOUT_CHANGES = ("tensor_model_parallel_size", "pipeline_model_parallel_size")


def resume_finding(level: str, code: str, message: str) -> Finding:
    """level: error (resuming would start over or fail) or warning (resumes, but not as the run would have gone)."""
    return Finding(message, code=code, severity=level)


def checkpoint_args(ckpt: Path) -> tuple[dict | None, str]:
    """The checkpoint's args.json, or None and why not (this runs on compute nodes: it warns, not fails)."""
    try:
        data = read_args(ckpt)
    except UserError as exc:
        return None, exc.problems[0].render()
    return data, "" if data is not None else f"{ckpt} has no args.json"


def argv_to_args(argv: list[str]) -> dict:
    """`megatron sft --a 1 --b x y ...` -> {"a": 1, "b": ["x", "y"]} (argparse: the last flag wins)."""
    from swift_ext.msswift.conventions import flag_groups

    args: dict = {}
    start = 2 if len(argv) >= 2 and not argv[0].startswith("--") else 0
    for flag, *given in flag_groups(argv[start:]):
        if not flag.startswith("--"):
            continue
        values = [_typed(v) for v in given]
        args[flag[2:]] = values[0] if len(values) == 1 else values
    return args


def _typed(value):
    """An argv string as ms-swift types it (msswift.conventions.typed_text); 'None' as args.json's null."""
    if isinstance(value, str):
        from swift_ext.msswift.conventions import typed_text

        return None if value.strip().lower() in ("none", "null") else typed_text(value)
    return value


def _norm(value):
    value = _typed(value)
    if isinstance(value, (list, tuple)):
        items = [_norm(v) for v in value]
        return tuple(items) if len(items) != 1 else items[0]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _defaults() -> dict:
    try:
        from swift_ext.msswift import schema as msargs

        return {name: f.default for name, f in msargs.schema_for("megatron", "sft").fields.items()}
    except Exception:  # no ms-swift source and no snapshot: compare what both sides state
        return {}


def check_resume(new_args: dict, ckpt: Path, *, defaults: dict | None = None) -> list[Finding]:
    """What goes wrong when `new_args` (the resumed command's arguments) resumes from `ckpt`."""
    issues: list[Finding] = []
    iteration = tracker_iteration(ckpt)
    if iteration is None:
        issues.append(resume_finding("error", "incomplete_checkpoint", f"{ckpt} has no {TRACKER}: its save never finished; "
                            "ms-swift would load iteration 0 and start over"))
        return issues
    old, unreadable = checkpoint_args(ckpt)
    defaults = _defaults() if defaults is None else defaults

    def value(args: dict, key: str):
        return _norm(args[key]) if key in args else _norm(defaults.get(key))

    tuner = value(new_args, "tuner_type") or "full"
    flag = load_flag(tuner)
    other = load_flag("lora") if flag == load_flag("full") else load_flag("full")
    if _norm(new_args.get(other)) == str(ckpt) and not new_args.get(flag):
        issues.append(resume_finding("error", "wrong_load_flag", f"a {tuner} run resumed with --{other}: ms-swift loads it "
                            f"as {'the base model and forces finetune' if other == 'mcore_model' else 'an adapter'}, "
                            f"so training starts again at iteration 1 (use --{flag})"))
    if value(new_args, "finetune") is not False:  # ms-swift's default is true
        issues.append(resume_finding("error", "finetune", "finetune is true: ms-swift resets the iteration to 0 and starts "
                            "over (resume needs --finetune false)"))
    if old is None:
        issues.append(resume_finding("warning", "no_args", f"{unreadable}: settings not compared"))
        return issues
    old_tuner = _norm(old.get("tuner_type", defaults.get("tuner_type"))) or "full"
    if old_tuner != tuner:
        issues.append(resume_finding("error", "tuner_type", f"the checkpoint was trained with tuner_type {old_tuner}, the "
                            f"resumed command uses {tuner}: ms-swift would load it as the wrong kind of "
                            "checkpoint and start over at iteration 1"))
    if value(old, "no_save_optim") is True:
        what = "full-parameter" if tuner == "full" else tuner
        issues.append(resume_finding("error", "no_optimizer_state", f"the checkpoint was saved with no_save_optim: true (no "
                            f"optimizer state); ms-swift cannot resume this {what} run from it (the load fails on "
                            "the missing optimizer state, or with no_load_optim restarts Adam and the LR warmup)"))
    if value(new_args, "no_load_optim") is True:
        issues.append(resume_finding("warning", "no_load_optim", "no_load_optim: true: optimizer and LR-scheduler state are "
                            "not restored (Adam restarts empty, the LR warmup runs again)"))
    if value(new_args, "no_load_rng") is True:
        issues.append(resume_finding("warning", "no_load_rng", "no_load_rng: true: dropout/sampling RNG restarts"))
    for key, why in UNSAFE_CHANGES.items():
        if key == "tuner_type":
            continue
        before, after = value(old, key), value(new_args, key)
        if before != after:
            issues.append(resume_finding("error", "changed_setting", f"{key} changed from {before!r} to {after!r} since the "
                                f"checkpoint: unsafe to resume ({why})"))
    # ms-swift 4.6 swift/megatron/utils/megatron_lm_utils.py load_mcore_checkpoint: with the distributed optimizer and
    # the optimizer state loaded, a (TP, PP) other than the checkpoint's raises "(TP, PP) mismatch after resume ...:
    # not supported for DistributedOptimizer" unless the checkpoint's content_metadata says fully_reshardable or
    # fully_sharded_model_space; get_sharded_sd_metadata saves dp_reshardable by default (fully_reshardable with
    # dist_ckpt_optim_fully_reshardable, fully_sharded_model_space with dist_ckpt_save_pre_mcore_014 -- forced below
    # torch 2.6, which this does not see).
    loads_optimizer = (value(new_args, "no_load_optim") is not True and value(old, "no_save_optim") is not True
                       and value(new_args, "use_distributed_optimizer") is not False)
    reshardable = (value(old, "dist_ckpt_optim_fully_reshardable") is True
                   or value(old, "dist_ckpt_save_pre_mcore_014") is True or value(old, "use_megatron_fsdp") is True)
    for key in LAYOUT_CHANGES:
        before, after = value(old, key), value(new_args, key)
        if before != after and loads_optimizer and not reshardable:
            issues.append(resume_finding("error", "changed_layout", f"{key} changed from {before!r} to {after!r} and the "
                                "distributed optimizer's state was saved dp_reshardable (ms-swift's default): the load "
                                "raises '(TP, PP) mismatch after resume ...: not supported for DistributedOptimizer' "
                                "(resume with the checkpoint's layout, or no_load_optim: true; save with "
                                "dist_ckpt_optim_fully_reshardable: true to change it later)"))
        elif before != after:
            issues.append(resume_finding("warning", "changed_layout", f"{key} changed from {before!r} to {after!r}: ms-swift "
                                "drops the RNG state and refuses the distributed optimizer's state unless it was "
                                "saved fully reshardable"))
    train_iters = value(new_args, "train_iters")
    if isinstance(train_iters, int) and iteration >= train_iters:
        issues.append(resume_finding("warning", "nothing_left", f"the checkpoint is at iteration {iteration}, train_iters is "
                            f"{train_iters}: nothing left to train"))
    return issues


def latest_complete_checkpoint(output_dir: Path) -> Path | None:
    """The Megatron checkpoint a resume continues from (the rule: swift_ext/runs/rundir.py)."""
    return RunDir(Path(output_dir)).latest_checkpoint("megatron")


def refuse_resume(output_dir: Path, new_args: dict) -> tuple[Path | None, list[Finding]]:
    """For `--resume`: the checkpoint it would continue from and what is wrong with doing so. A dir with
    no complete checkpoint is an error: ms-swift would silently start over and overwrite checkpoint-N."""
    ckpt = latest_complete_checkpoint(output_dir)
    if ckpt is None:
        partial = [str(d.relative_to(output_dir)) for d in RunDir(Path(output_dir)).checkpoints()]
        if not partial and not (Path(output_dir) / "logging.jsonl").exists():
            return None, []  # no training output yet: a first start, nothing to lose
        why = f"only incomplete checkpoints ({', '.join(partial)}: no {TRACKER})" if partial else "no checkpoint-N"
        return None, [resume_finding("error", "nothing_to_resume", f"nothing to resume from in {output_dir}: {why}; "
                            "ms-swift would start over at iteration 1 and write over checkpoint-N")]
    resumed = dict(new_args)
    flag = load_flag(_norm(resumed.get("tuner_type")) or _defaults().get("tuner_type", "full"))
    resumed.setdefault(flag, str(ckpt))
    resumed["finetune"] = False
    return ckpt, check_resume(resumed, ckpt)


# --------------------------------------------------------------------------------------------------
# After the start: did the run really continue?


def logged_iterations(log: Path, offset: int = 0) -> list[int]:
    """`iteration` of each record ms-swift's Megatron trainer appended to logging.jsonl ("k/N")."""
    found = []
    try:
        with open(log, "rb") as fh:
            fh.seek(offset)
            for raw in fh:
                try:
                    it = json.loads(raw).get("iteration")
                    found.append(int(str(it).split("/")[0]))
                except (ValueError, AttributeError, TypeError):
                    continue  # a line still being written, or an eval record
    except OSError:
        pass
    return found


def restarts_in_log(log: Path) -> list[tuple[int, int]]:
    """(last iteration before, first after) wherever the logged iteration went backwards."""
    its = logged_iterations(log)
    return [(a, b) for a, b in zip(its, its[1:], strict=False) if b <= a]


def record(output_dir: Path, entry: dict) -> None:
    entry = {"time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
             "job": os.environ.get("SLURM_JOB_ID"), "restart": int(os.environ.get("SLURM_RESTART_COUNT") or 0),
             **entry}
    with open(Path(output_dir) / RECORDS, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def read_records(output_dir: Path) -> list[dict]:
    rows = []
    try:
        for line in (Path(output_dir) / RECORDS).read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    except OSError:
        pass
    return rows


def watch(output_dir: Path, ckpt: Path, offset: int, stop_pid: int | None, poll_s: float = 0.5,
          timeout_s: float | None = None) -> int:
    """Wait for the resumed run's first logged iteration; 0 when it continues after the tracker, 3 when
    it started over (then the training step is stopped before it writes over the checkpoints)."""
    expected = tracker_iteration(ckpt) or 0
    log = Path(output_dir) / "logging.jsonl"
    started = time.time()
    while True:
        alive = not stop_pid or process_alive(stop_pid)  # before reading, so the last lines of a finished step count
        its = logged_iterations(log, offset)
        if its:
            first = its[0]
            ok = first > expected
            record(output_dir, {"checkpoint": str(ckpt), "tracker_iteration": expected, "first_logged_iteration": first,
                                "ok": ok})
            if ok:
                print(f"swift-ext: resume checked: first logged iteration {first} follows the checkpoint's "
                      f"{expected}", file=sys.stderr)
                return 0
            print(f"swift-ext: RESUME FAILED: resumed from {ckpt} (iteration {expected}) but the run logged iteration "
                  f"{first}: it started over; stopping it before it writes over the checkpoints", file=sys.stderr)
            if stop_pid:
                try:
                    os.kill(stop_pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            return 3
        if not alive:
            return 0  # the step ended before logging anything: nothing to compare
        if timeout_s is not None and time.time() - started > timeout_s:
            return 0
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    """Used by the sbatch script at each (re)start: `check CKPT -- ARGV...` before, `watch` beside the step."""
    parser = argparse.ArgumentParser(prog="python -m swift_ext.runs.resume")
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("output_dir")
    c.add_argument("checkpoint")
    c.add_argument("argv", nargs=argparse.REMAINDER)
    w = sub.add_parser("watch")
    w.add_argument("output_dir")
    w.add_argument("checkpoint")
    w.add_argument("--offset", type=int, default=0)
    w.add_argument("--stop-pid", type=int)
    opts = parser.parse_args(argv)
    if opts.cmd == "watch":
        return watch(Path(opts.output_dir), Path(opts.checkpoint), opts.offset, opts.stop_pid)
    command = [a for a in opts.argv if a != "--"]
    issues = check_resume(argv_to_args(command), Path(opts.checkpoint))
    for issue in issues:
        print(f"swift-ext: resume {issue.severity}: {issue.message}", file=sys.stderr)
    if issues:
        record(opts.output_dir, {"checkpoint": opts.checkpoint, "issues": [asdict(i) for i in issues],
                                 "ok": not any(i.severity == "error" for i in issues)})
    return 2 if any(i.severity == "error" for i in issues) else 0


if __name__ == "__main__":
    sys.exit(main())


def status_lines(output_dir: Path) -> list[tuple[str, str]]:
    """(level, text) for `swift-ext status`: each checked resume, fresh starts seen in logging.jsonl, and a
    newest checkpoint that cannot be resumed."""
    lines: list[tuple[str, str]] = []
    for rec in read_records(output_dir):
        where = f"job {rec.get('job')} restart {rec.get('restart')}: resume from {Path(str(rec.get('checkpoint'))).name}"
        if "first_logged_iteration" in rec:
            first, tracker = rec["first_logged_iteration"], rec["tracker_iteration"]
            if rec.get("ok"):
                lines.append(("ok", f"{where}: first logged iteration {first} follows the tracker's {tracker}"))
            else:
                lines.append(("error", f"{where}: STARTED OVER — first logged iteration {first}, the checkpoint's "
                              f"tracker says {tracker}; the step was stopped"))
        for issue in rec.get("issues") or []:
            lines.append((issue.get("level", "warning"), f"{where}: {issue.get('message')}"))
    its = logged_iterations(Path(output_dir) / "logging.jsonl")
    if its:
        first = its[0]
        for before, after in restarts_in_log(Path(output_dir) / "logging.jsonl"):
            if after <= first:
                lines.append(("error", f"logging.jsonl: the iteration went back from {before} to {after}: a run "
                              "started over from the beginning"))
    ckpt = latest_complete_checkpoint(Path(output_dir))
    old = checkpoint_args(ckpt)[0] if ckpt else None
    if old and _norm(old.get("no_save_optim")) is True:
        tuner = _norm(old.get("tuner_type")) or "full"
        lines.append(("warning", f"{ckpt.name} was saved without optimizer state (no_save_optim: true): this {tuner} "
                      "run cannot be resumed from it with its optimizer"))
    return lines
