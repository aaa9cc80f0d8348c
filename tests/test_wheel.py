"""swift-ext installed from a built wheel (not this checkout) has what it reads at run time: sbatch templates,
bundled model configs, the argument snapshot, the reward plugin file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

from conftest import RECIPES, ROOT


def test_submit_dry_run_from_an_installed_wheel(tmp_path):
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "swift_ext", src / "swift_ext", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(src)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("swift_ext-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"swift_ext/runs/slurm_templates/train.sbatch", "swift_ext/runs/slurm_templates/followup.sbatch",
            "swift_ext/planner/presets/qwen.json", "swift_ext/msswift/msswift-args.json",
            "swift_ext/plugins/swift_ext_rewards.py", "swift_ext/runs/stackhook/sitecustomize.py"} <= names

    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    # Run from an empty directory with the installed copy first on the path: nothing comes from this checkout.
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "SWIFT_EXT_CACHE": str(tmp_path / "cache")}
    where = subprocess.run([sys.executable, "-c", "import swift_ext; print(swift_ext.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=60)
    assert where.stdout.strip().startswith(str(target)), where.stdout + where.stderr
    result = subprocess.run([sys.executable, "-m", "swift_ext", "submit", str(RECIPES / "qwen3_6/sft-full-2x8.yaml"),
                             "--dry-run", "--then", "merge", f"args.output_dir={tmp_path / 'out'}"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("#!/bin/bash") and "#SBATCH --nodes=2" in result.stdout
    assert "  megatron sft \\\n" in result.stdout
    assert "follow-up job: merge" in result.stdout and "@@" not in result.stdout
