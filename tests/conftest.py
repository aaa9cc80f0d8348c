from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
FIXTURES = Path(__file__).parent / "fixtures"
SEED = FIXTURES / "qwen3_6-release-note.txt"

# `run`/`submit` ask megatron-core (imports torch) when it is installed; the CLI tests that launch many
# subprocesses keep to swift-ext's own rules. tests/test_oracle.py asks for the oracle explicitly.
os.environ.setdefault("SWIFT_EXT_ORACLE", "0")


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
