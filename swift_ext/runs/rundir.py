"""One run's output directory, as ms-swift 4.6 lays it out and as every swift-ext verb reads it.

    OUTPUT_DIR/                       args.output_dir of the recipe
      swift-ext-run-<time>.json       swift-ext's manifest of each start (run, submit)
      swift-ext-run-<time>.log        what the trainer printed (run)
      .swift-ext-run.lock             held by the live `swift-ext run` writing here
      v<N>-<time>/                    one per start when add_version is true (ms-swift's default)
        args.json                     ms-swift's resolved arguments
        logging.jsonl                 one row per logged step
        checkpoint-<step>/            a save (args.json copied in)
        checkpoint-<step>-merged/     the same weights merged (merge_lora: true, or `swift-ext merge`)
      checkpoint-<step>/, logging.jsonl, args.json   the same directly here when add_version is false

Which checkpoint is "the newest complete one" (run --resume, submit, status, watch, merge, infer):
a save is complete when its last file is there: Megatron writes `latest_checkpointed_iteration.txt`
after every rank wrote its shards (swift/megatron/utils/megatron_lm_utils.py), transformers' Trainer
writes `trainer_state.json` after weights, optimizer and RNG state. Within one run folder the highest
step wins, which is transformers' `get_last_checkpoint` and Megatron's tracker rule. Across folders the
newest start wins: ms-swift numbers them v0, v1, ... (swift/utils/utils.py add_version_to_work_dir), and
a resumed run continues the step count in a new vN, while a fresh start in vN restarts it, so the
highest step over all folders could pick an older, abandoned run. Modification times are not used:
copying a run (rsync, cp -r) rewrites them.

Every file name and pattern of that layout lives here; nothing here imports more than the stdlib.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from swift_ext.spec.findings import UserError

ARGS_FILE = "args.json"
ADAPTER_CONFIG = "adapter_config.json"
LOG_FILE = "logging.jsonl"
TRACKER = "latest_checkpointed_iteration.txt"  # Megatron: written last, names the iteration
TRAINER_STATE = "trainer_state.json"  # transformers: written last
CHECKPOINT_PREFIX = "checkpoint-"
MERGED_SUFFIX = "-merged"
MANIFEST_PREFIX = "swift-ext-run-"
MANIFEST_GLOB = f"{MANIFEST_PREFIX}*.json"
RUN_LOG_GLOB = f"{MANIFEST_PREFIX}*.log"
LOCK_FILE = ".swift-ext-run.lock"
EVAL_DIR = "eval"
EVAL_METRICS = "metrics.jsonl"
VERSION_GLOB = "v*-*"
_VERSION = re.compile(r"^v(\d+)-")

# swift-ext's own files in an output dir: they do not make it "hold a run".
OURS = (MANIFEST_GLOB, f"{MANIFEST_GLOB}.tmp", RUN_LOG_GLOB, LOCK_FILE, "slurm", "slurm-*.out",
        "*.before-resume-*", ".swift-ext-doctor-*")


# -- files inside a run -------------------------------------------------------------------------------

def read_json_object(path: Path, what: str | None = None) -> dict | None:
    """A JSON object file: None when it is not there; a UserError naming it when it cannot be read."""
    path = Path(path)
    what = what or path.name
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError.one(f"{what} is not valid JSON ({exc}): the file is damaged or still being written",
                            file=str(path), hint="restore it from the run, or remove the folder") from None
    except RecursionError:  # nested past the decoder's depth: no file ms-swift writes
        raise UserError.one(f"{what} is not valid JSON (nested too deeply to read): the file is damaged",
                            file=str(path), hint="restore it from the run, or remove the folder") from None
    except OSError as exc:
        raise UserError.one(f"{what} cannot be read: {exc.strerror or exc}", file=str(path)) from None
    if not isinstance(data, dict):
        raise UserError.one(f"{what} is not a JSON object", file=str(path))
    return data


def read_args(folder: Path) -> dict | None:
    """ms-swift's args.json in a run folder or checkpoint: None when absent, UserError when unreadable."""
    return read_json_object(Path(folder) / ARGS_FILE)


def read_adapter_config(ckpt: Path) -> dict | None:
    """PEFT's adapter_config.json (a LoRA checkpoint saved as safetensors): None when absent."""
    return read_json_object(Path(ckpt) / ADAPTER_CONFIG)


def tuner_of(args: dict, default: str = "full") -> str:
    return str(args.get("tuner_type") or args.get("train_type") or default)


def is_lora(args: dict) -> bool:
    return tuner_of(args) != "full"


def load_flag(tuner: str) -> str:
    """The ms-swift Megatron argument that loads a checkpoint of this tuner type for resuming: a LoRA run's mcore
    checkpoint holds the adapter only, so given as --mcore_model it fails to load (the base weights are asked for and
    are not there: the checkpoint-format rule)."""
    return "mcore_model" if str(tuner or "full") == "full" else "mcore_adapter"


def is_megatron_args(args: dict) -> bool:
    """args.json written by `megatron sft|rlhf` (it carries the parallel layout) vs `swift sft|rlhf`."""
    return any(k in args for k in ("expert_model_parallel_size", "mcore_model", "mcore_adapter",
                                   "tensor_model_parallel_size"))


# -- checkpoints ----------------------------------------------------------------------------------------

def checkpoint_step(path: Path) -> int | None:
    """N of a `checkpoint-N` directory (not `checkpoint-N-merged`), else None."""
    path = Path(path)
    n = path.name.removeprefix(CHECKPOINT_PREFIX)
    return int(n) if path.name.startswith(CHECKPOINT_PREFIX) and n.isdigit() and path.is_dir() else None


def completion_marker(engine: str | None) -> str:
    return TRACKER if engine == "megatron" else TRAINER_STATE


def checkpoint_complete(path: Path, engine: str | None = None) -> bool:
    """The save finished (see the module doc). engine None: either engine's marker."""
    path = Path(path)
    if engine is None:
        return (path / TRACKER).is_file() or (path / TRAINER_STATE).is_file()
    return (path / completion_marker(engine)).is_file()


def tracker_iteration(ckpt: Path) -> int | None:
    try:
        return int((Path(ckpt) / TRACKER).read_text().strip())
    except (OSError, ValueError):
        return None


def merged_path(ckpt: Path) -> Path:
    """Where ms-swift (merge_lora: true) and `swift-ext merge` put the merged copy of CKPT."""
    ckpt = Path(ckpt)
    return ckpt.with_name(ckpt.name + MERGED_SUFFIX)


def unmerged_path(merged: Path) -> Path | None:
    """CKPT for CKPT-merged, else None."""
    merged = Path(merged)
    if merged.name.endswith(MERGED_SUFFIX):
        return merged.with_name(merged.name.removesuffix(MERGED_SUFFIX))
    return None


def version_number(folder: Path) -> int | None:
    m = _VERSION.match(Path(folder).name)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class RunDir:
    """An output dir (args.output_dir); built from it or from one of its vN-* folders."""

    root: Path

    @classmethod
    def of(cls, path: Path) -> "RunDir":
        path = Path(path)
        if version_number(path) is not None and path.is_dir() and not list(path.glob(VERSION_GLOB)):
            return cls(path.parent)
        return cls(path)

    # folders
    def versions(self) -> list[Path]:
        """The vN-* folders, oldest start first (ms-swift's own numbering)."""
        found = [p for p in self.root.glob(VERSION_GLOB) if p.is_dir() and version_number(p) is not None]
        return sorted(found, key=lambda p: (version_number(p), p.name))

    def run_folders(self) -> list[Path]:
        """Every folder ms-swift writes a run into, oldest first: the output dir itself (add_version
        false) before its versions (a run that mixed both is ordered as ms-swift could not: the root first)."""
        return [self.root, *self.versions()]

    @property
    def eval_dir(self) -> Path:
        """Evaluation output of the run as a whole (swift_ext/after/evaluate.py: one history across the
        vN-* folders of resumed runs)."""
        return self.root / EVAL_DIR

    @property
    def eval_metrics(self) -> Path:
        """One line per evaluated checkpoint (swift_ext/after/evalmetrics.py writes it)."""
        return self.eval_dir / EVAL_METRICS

    @property
    def lock_file(self) -> Path:
        return self.root / LOCK_FILE

    # checkpoints
    def checkpoints(self) -> list[Path]:
        """Every checkpoint-N folder (complete or not), by run folder then step."""
        out = []
        for folder in self.run_folders():
            out += sorted((p for p in folder.glob(f"{CHECKPOINT_PREFIX}*") if checkpoint_step(p) is not None),
                          key=checkpoint_step)
        return out

    def complete_checkpoints(self, engine: str | None = None) -> list[Path]:
        """The complete saves of the run the newest one belongs to, by step: the newest run folder holding
        one, then each older folder's saves below the lowest step already taken. A resumed run continues the
        step count in a new vN, so the saves before its first are its history (a step saved again after a
        resume from an earlier save is the newer folder's); a fresh start begins at a low step again, so an
        abandoned run's later saves are not part of it. The last one is latest_checkpoint (one rule)."""
        chain: list[Path] = []
        for folder in reversed(self.run_folders()):
            below = checkpoint_step(chain[0]) if chain else None
            done = sorted((p for p in folder.glob(f"{CHECKPOINT_PREFIX}*")
                           if (step := checkpoint_step(p)) is not None and (below is None or step < below)
                           and checkpoint_complete(p, engine)), key=checkpoint_step)
            chain = done + chain
        return chain

    def latest_checkpoint(self, engine: str | None = None) -> Path | None:
        """The newest complete checkpoint: the highest step of the newest run folder holding one."""
        chain = self.complete_checkpoints(engine)
        return chain[-1] if chain else None

    def base_args_folder(self) -> Path | None:
        """Where the run's base model and template can be read: the oldest run folder holding args.json
        (ms-swift writes it there at start), else the first complete checkpoint carrying one; None before
        either exists (the base model is not known yet)."""
        for folder in self.run_folders():
            if (folder / ARGS_FILE).is_file():
                return folder
        return next((c for c in self.complete_checkpoints() if (c / ARGS_FILE).is_file()), None)

    def incomplete_after(self, ckpt: Path, engine: str | None = None) -> list[Path]:
        """Later checkpoint-N folders beside CKPT whose save never finished."""
        step = checkpoint_step(ckpt) or 0
        return sorted(p for p in Path(ckpt).parent.glob(f"{CHECKPOINT_PREFIX}*")
                      if (checkpoint_step(p) or 0) > step and not checkpoint_complete(p, engine))

    def checkpoint_names(self) -> frozenset[str]:
        """Names relative to the root; a change means a save started (the stall clock's progress)."""
        return frozenset(str(p.relative_to(self.root)) for p in self.checkpoints())

    # logs and manifests
    def log(self) -> Path | None:
        """The root's logging.jsonl, else the newest version's."""
        own = self.root / LOG_FILE
        if own.is_file():
            return own
        for folder in reversed(self.versions()):
            if (folder / LOG_FILE).is_file():
                return folder / LOG_FILE
        return None

    def logs_since(self, since: float) -> list[Path]:
        """logging.jsonl files written from `since` (seconds since the epoch) on."""
        return [p for p in (f / LOG_FILE for f in self.run_folders()) if p.is_file() and p.stat().st_mtime >= since]

    def manifests(self) -> list[Path]:
        """swift-ext's run manifests, oldest first (their names carry the UTC start time)."""
        return sorted(self.root.glob(MANIFEST_GLOB))

    def latest_manifest(self) -> dict:
        """The newest manifest's content; {} when there is none or it is unreadable (it is a record, not
        an input: a damaged one must not stop a report)."""
        found = self.manifests()
        try:
            return (read_json_object(found[-1]) or {}) if found else {}
        except UserError:
            return {}

    def new_manifest_path(self, stamp: str, n: int) -> Path:
        return self.root / f"{MANIFEST_PREFIX}{stamp}{'' if n == 0 else f'-{n}'}.json"

    def run_log_for(self, manifest: Path) -> Path:
        return manifest.with_suffix(".log")

    def trainer_output(self) -> list[str]:
        """Names in the output dir that ms-swift wrote (anything but swift-ext's own files)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if not any(p.match(pattern) for pattern in OURS))


def manifest_near(folder: Path) -> dict:
    """The newest manifest for a run folder: the output dir holds them, vN-* folders are inside it."""
    folder = Path(folder)
    for where in (folder, folder.parent):
        found = RunDir(where).manifests()
        if found:
            return RunDir(where).latest_manifest()
    return {}


def main(argv: list[str]) -> int:
    """`python -m swift_ext.runs.rundir latest OUTPUT_DIR [--engine megatron|swift]`: prints the newest
    complete checkpoint (nothing when there is none), so the Slurm batch scripts resume from and follow up on
    the checkpoint `swift-ext run --resume`, status and submit pick, by this module's one rule."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m swift_ext.runs.rundir")
    verbs = parser.add_subparsers(dest="verb", required=True)
    latest = verbs.add_parser("latest", help="the newest complete checkpoint of OUTPUT_DIR")
    latest.add_argument("output_dir", type=Path)
    latest.add_argument("--engine", choices=("megatron", "swift"), default=None,
                        help="whose completion marker counts (default: either)")
    args = parser.parse_args(argv)
    ckpt = RunDir(args.output_dir).latest_checkpoint(args.engine)
    if ckpt is not None:
        print(ckpt)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
