"""`swift-ext run`: write the run manifest, then start ms-swift and stream its output."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from swift_ext import __version__
from swift_ext.errors import UserError
from swift_ext.launch import Launch
from swift_ext.recipe import Recipe

_SECRET_WORDS = {"KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS", "APIKEY"}
_COUNTING = ("NUM", "NUMS", "LEN", "LENGTH", "COUNT", "SIZE", "LIMIT", "MAX", "MIN")


def is_secret(name: str) -> bool:
    """*KEY*, *TOKEN*, *SECRET*, *PASSWORD*-style names (HF_TOKEN, WANDB_API_KEY), but not counts that
    merely mention tokens (IMAGE_MAX_TOKEN_NUM, VIDEO_MAX_TOKEN_NUM)."""
    parts = re.split(r"[^A-Za-z0-9]+", name.upper())
    if parts and parts[-1] in _COUNTING:
        return False
    return any(p in _SECRET_WORDS or p.endswith(("KEY", "TOKEN", "SECRET", "PASSWORD")) for p in parts if p)
# Inherited variables that change what ms-swift does; recorded so a run can be reproduced.
RELEVANT = re.compile(
    r"^(CUDA_|NCCL_|NVTE_|TORCH|PYTORCH_|OMP_|MASTER_|NODE_RANK|NNODES|NPROC_PER_NODE|WORLD_SIZE|HF_|"
    r"MODELSCOPE_|USE_HF|WANDB_|SWANLAB_|IMAGE_|VIDEO_|FPS_|MAX_PIXELS|SLURM_JOB_ID|SWIFT_)"
)
VERSIONED = ["ms-swift", "megatron-core", "mcore-bridge", "transformers", "torch", "peft", "vllm"]


def masked_env(env: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if is_secret(k) else v) for k, v in env.items()}


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
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "recipe_file": recipe.source,
        "recipe": recipe_copy,
        "argv": launch.argv,
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
    """Create the output dir, refusing to reuse a non-empty un-versioned one unless resuming."""
    out = Path(launch.output_dir or ("megatron_output" if recipe.engine == "megatron" else "output"))
    add_version = recipe.args.get("add_version", True)
    add_version = add_version if isinstance(add_version, bool) else str(add_version).lower() == "true"
    if not add_version and out.is_dir() and any(out.iterdir()) and not resume:
        raise UserError.one(
            f"output dir {out} already holds a run and `add_version` is false: ms-swift would write into it",
            file=recipe.source,
            hint="pass --resume to continue that run, or set args.output_dir to a new directory",
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_manifest(out: Path, data: dict) -> Path:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    for n in range(100):
        path = out / f"swift-ext-run-{stamp}{'' if n == 0 else f'-{n}'}.json"
        try:
            # O_EXCL: an existing manifest is never overwritten.
            with open(path, "x", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, ensure_ascii=False)
                fh.write("\n")
            return path
        except FileExistsError:
            continue
    raise UserError.one(f"cannot create a new manifest in {out}")


def execute(launch: Launch) -> int:
    """Run the command with the recipe's env on top of ours; output streams through; child's exit code."""
    env = {**os.environ, **launch.env}
    if shutil.which(launch.argv[0], path=env.get("PATH")) is None:
        # `swift`/`megatron` live next to our interpreter, which may not be on PATH (.venv/bin/swift-ext).
        env["PATH"] = python_bin_dir() + os.pathsep + env.get("PATH", "")
    try:
        proc = subprocess.Popen(launch.argv, env=env)
    except FileNotFoundError:
        raise UserError.one(
            f"`{launch.argv[0]}` is not on PATH",
            hint="install ms-swift (pip install 'swift-ext[train]') in this environment",
        ) from None
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()


def latest_checkpoint(out: Path, since: float) -> Path | None:
    found = [p for p in out.glob("**/checkpoint-*") if p.is_dir() and p.stat().st_mtime >= since]
    if not found:
        return None
    return max(found, key=lambda p: p.stat().st_mtime)


def python_bin_dir() -> str:
    return str(Path(sys.executable).parent)
