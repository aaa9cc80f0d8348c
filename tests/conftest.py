from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
FIXTURES = Path(__file__).parent / "fixtures"
SEED = FIXTURES / "qwen3_6-release-note.txt"

# `run`/`submit` ask megatron-core (imports torch) when it is installed; the CLI tests that launch many
# subprocesses keep to swift-ext's own rules. tests/test_oracle.py asks for the oracle explicitly.
os.environ.setdefault("SWIFT_EXT_ORACLE", "0")

# Tests change nothing outside the checkout and temp folders. swift-ext's own cache (stats, built tiny models,
# oracle verdicts) goes into the checkout's .cache/ (git-ignored; .ci/run picks the same folder) unless the
# caller chose one; its writes are atomic, so two runs at once share it safely. ms-swift's load_dataset (in the
# tests that compare verdicts with ms-swift, and in the tiny training runs) writes Arrow caches and lock files
# under MODELSCOPE_CACHE / HF_DATASETS_CACHE, named after each run's temporary paths: those go to a folder of
# this session's own, removed when it ends (matplotlib's font cache too).
os.environ.setdefault("SWIFT_EXT_CACHE", str(ROOT / ".cache" / "swift-ext"))
_HUB_CACHES = tempfile.mkdtemp(prefix="swift-ext-tests-hub-")
os.environ["MODELSCOPE_CACHE"] = os.path.join(_HUB_CACHES, "modelscope")
os.environ["HF_DATASETS_CACHE"] = os.path.join(_HUB_CACHES, "hf-datasets")
os.environ["MPLCONFIGDIR"] = os.path.join(_HUB_CACHES, "matplotlib")  # `report` draws with matplotlib: its font cache
atexit.register(shutil.rmtree, _HUB_CACHES, ignore_errors=True)


def swift_ext(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120):
    """Run the real CLI in a subprocess, as a user would (this checkout's swift_ext, whatever the cwd)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "swift_ext", *map(str, args)],
        cwd=cwd or ROOT,
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def swift_ext_in_process(*args: str) -> subprocess.CompletedProcess:
    """The CLI's entry point (run_cli: the same argument parsing, error funnel and exit codes) called in this
    process from the checkout's root, for tests of what a verb computes rather than of the process around it:
    no Python start-up and imports per call (0.5-1 s), and what swift-ext reads once per process is read once
    per session (the tiny model's 248k-vocabulary tokenizer.json: seconds per `plan` of a tiny recipe). Every
    verb keeps tests through `swift_ext`, the user's view in a subprocess."""
    import contextlib
    import io

    from swift_ext.cli.main import run_cli

    out, err, cwd = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_cli([str(a) for a in args])
    finally:
        os.chdir(cwd)
    return subprocess.CompletedProcess(["swift-ext", *map(str, args)], code, out.getvalue(), err.getvalue())


def seed_block(first: str, last: str) -> str:
    """The lines of the release note from the one starting with `first` to the one starting with `last`."""
    lines = SEED.read_text(encoding="utf-8").splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(first))
    j = next(k for k in range(i, len(lines)) if lines[k].startswith(last))
    return "\n".join(lines[i : j + 1]) + "\n"


def seed_sft_script() -> str:
    return seed_block("# 4 * 32GiB", "--model_name swift-robot")


def seed_grpo_script() -> str:
    return seed_block("SYSTEM_PROMPT=", "--report_to tensorboard swanlab")


@pytest.fixture
def write(tmp_path):
    def _write(name: str, text: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture(scope="session")
def msswift_processor():
    """ms-swift's own processor of the tiny model (swift.get_processor), for the tests that compare counts or
    verdicts with ms-swift's real Template.encode. Loading it (the 248k-vocabulary tokenizer.json and the
    Qwen3.6 image/video processors) takes seconds, and it was loaded once per test: loaded once per session
    here. Each test builds its own Template over it with get_template, as ms-swift does with one processor
    for several templates: a Template keeps its settings (max_length, truncation, system, mode) to itself and
    does not change the processor."""
    from swift import get_processor

    from swift_ext.planner.tinymodel import ensure_model

    return get_processor(str(ensure_model("tiny-qwen3_6-moe")))


# --------------------------------------------------------------------------------------------------
# Real tiny runs shared across test files. Training the tiny model, merging it and evaluating it are the
# slowest steps of the suite (ms-swift starts in a new process each time); the end-to-end chains, the
# evaluation-during-training tests and the verify tests read the same runs instead of each training its
# own. A test may add new folders to a shared run (merge, infer, report, damaged copies in its own
# tmp_path) but never change what the run wrote.


@dataclass(frozen=True)
class TinyRun:
    out: Path  # the run's output_dir (holds v*-*/, eval/, swift-ext-run-*.json)
    result: subprocess.CompletedProcess  # `swift-ext run`
    swanlab_dir: Path | None = None  # where SwanLab (local mode) logged, for the SFT run


@pytest.fixture(scope="session")
def tiny_sft_run(tmp_path_factory) -> TinyRun:
    """tiny-sft.yaml for 8 steps, saving (and ms-swift evaluating) at 4 and 8; swift-ext's follower
    evaluates the base model and each checkpoint on 4 val rows of 8 new tokens; TensorBoard and SwanLab
    (local mode) both log."""
    root = tmp_path_factory.mktemp("shared-sft")
    out, swanlab_dir = root / "tiny-sft", root / "swanlog"
    result = swift_ext("run", RECIPES / "smoke/tiny-sft.yaml", f"args.output_dir={out}",
                       "args.report_to=[tensorboard, swanlab]", "args.swanlab_mode=local",
                       "args.save_steps=4", "args.eval_steps=4",
                       "eval.every=1", "eval.limit=4", "eval.max_new_tokens=8",
                       env={"SWANLAB_LOG_DIR": str(swanlab_dir)}, timeout=1800)
    return TinyRun(out, result, swanlab_dir)


@pytest.fixture(scope="session")
def tiny_sft_merge(tiny_sft_run):
    """`swift-ext merge` (which verifies by default) of the shared SFT run's last checkpoint:
    (checkpoint, merged folder, the merge's CompletedProcess)."""
    assert tiny_sft_run.result.returncode == 0, tiny_sft_run.result.stderr[-3000:]
    (ckpt,) = list(tiny_sft_run.out.glob("v*/checkpoint-8"))
    merged = swift_ext("merge", ckpt, timeout=900)
    return ckpt, ckpt.with_name("checkpoint-8-merged"), merged


@pytest.fixture(scope="session")
def tiny_grpo_run(tmp_path_factory) -> TinyRun:
    """tiny-grpo.yaml as `make rlhf` trains it (two GRPO steps of one prompt x 4 generations of up to 24
    tokens, one save at step 2: tests/test_rewards.py checks that this recipe learns), with ms-swift's own
    evaluation of val_dataset (every prompt x num_generations) off, while swift-ext's follower reads the same
    val_dataset: 2 rows x 2 samples of 8 tokens per checkpoint and the base. One run serves the GRPO chain,
    the follower and the learning checks: a second tiny GRPO run costs minutes on a 2-core machine, and the
    recipe's batch makes its steps only a few seconds longer. 'no' is quoted: bare, YAML reads it as false."""
    out = tmp_path_factory.mktemp("shared-grpo") / "tiny-grpo"
    result = swift_ext("run", RECIPES / "smoke/tiny-grpo.yaml", f"args.output_dir={out}", "args.max_steps=2",
                       "args.save_steps=2", "args.eval_strategy='no'", "eval.limit=2",
                       "eval.num_samples=2", "eval.max_new_tokens=8", timeout=1800)
    return TinyRun(out, result)


def new_report(run_dir: Path) -> Path:
    """Run `swift-ext report` on a run and return the report folder this call made (a shared run may hold
    another test's report already)."""
    before = set(run_dir.glob("report-*"))
    reported = swift_ext("report", run_dir)
    assert reported.returncode == 0, reported.stderr
    (made,) = set(run_dir.glob("report-*")) - before
    return made
