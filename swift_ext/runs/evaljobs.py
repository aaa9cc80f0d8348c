"""Slurm: one evaluation job per saved checkpoint, submitted from inside the training job.

`swift-ext submit` with an `eval:` section renders eval.sbatch (its own resources: eval.launch) and starts
this submitter in the background of the training batch script. It polls the output dir; for the base model
(once) and each new complete checkpoint it runs `sbatch eval.sbatch` with SWIFT_EXT_EVAL_CHECKPOINT set, and
records the job in OUTPUT_DIR/eval/jobs.jsonl so a requeued training job never submits a checkpoint twice.
The evaluation job runs `swift-ext eval OUTPUT_DIR --checkpoint CKPT` (swift_ext/after/evaluate.py). Nothing
depends on an evaluation job: its failure never fails, cancels or requeues training, and a failed sbatch
here is one line in the training log, not an error.

    python -m swift_ext.runs.evaljobs OUTPUT_DIR EVAL_SCRIPT [--every N] [--once] [--poll S]

runs until SIGTERM (the batch script sends it when the training step ended), then makes one last pass.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from swift_ext.runs.rundir import RunDir

JOBS_FILE = "jobs.jsonl"  # in the run's eval folder (RunDir.eval_dir)


def submitted(out: Path) -> set[str]:
    path = RunDir(out).eval_dir / JOBS_FILE
    if not path.is_file():
        return set()
    done = set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            done.add(json.loads(line)["checkpoint"])
        except (ValueError, KeyError, TypeError):
            continue
    return done


def submit_one(out: Path, script: Path, checkpoint: str) -> str | None:
    """sbatch the evaluation of `checkpoint` ("base" or a path); its job id, or None (said on stderr)."""
    import os

    env = {**os.environ, "SWIFT_EXT_EVAL_CHECKPOINT": checkpoint, "OUTPUT_DIR": str(out)}
    for key in [k for k in env if k.startswith("SLURM_") and k not in ("SLURM_CONF",)]:
        env.pop(key)  # the training job's own SLURM_* would leak into the new job's options
    try:
        done = subprocess.run(["sbatch", "--parsable", str(script)], env=env, capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"swift-ext: evaluation of {checkpoint} not submitted: {exc}", file=sys.stderr, flush=True)
        return None
    if done.returncode != 0:
        print(f"swift-ext: evaluation of {checkpoint} not submitted: {done.stderr.strip()}", file=sys.stderr,
              flush=True)
        return None
    job = done.stdout.strip().split(";")[0]
    record = RunDir(out).eval_dir / JOBS_FILE
    record.parent.mkdir(parents=True, exist_ok=True)
    with open(record, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"checkpoint": checkpoint, "job_id": job, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
                 + "\n")
    print(f"swift-ext: evaluation of {checkpoint}: job {job}", file=sys.stderr, flush=True)
    return job


def one_pass(out: Path, script: Path, every: int, final: bool) -> None:
    done = submitted(out)
    run = RunDir(out)
    if "base" not in done and run.base_args_folder() is not None:  # before that the base model is not known
        submit_one(out, script, "base")
    ckpts = run.complete_checkpoints()  # either engine's marker: the one rule of run --resume
    for i, ckpt in enumerate(ckpts, start=1):
        if str(ckpt) not in done and (i % every == 0 or (final and i == len(ckpts))):
            submit_one(out, script, str(ckpt))


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m swift_ext.runs.evaljobs")
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("script", type=Path)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--poll", type=float, default=10.0)
    parser.add_argument("--once", action="store_true", help="One pass, the last checkpoint included; exit.")
    args = parser.parse_args(argv)
    if args.once:
        one_pass(args.output_dir, args.script, args.every, final=True)
        return 0
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    while not stop:
        one_pass(args.output_dir, args.script, args.every, final=False)
        deadline = time.monotonic() + args.poll
        while not stop and time.monotonic() < deadline:
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
