"""How fast a bad recipe is rejected, against the interpreter's own start-up and against importing ms-swift.

Goal (issue #2): a typo fails in under 1 s wall on a 2-core machine, without importing torch/ms-swift.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEAT = 7


def wall(cmd: list[str], repeat: int = REPEAT, expect: int | None = None) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
        if expect is not None and proc.returncode != expect:
            raise SystemExit(f"unexpected exit {proc.returncode}: {proc.stderr[-500:]}")
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        typo = Path(tmp) / "typo.yaml"
        typo.write_text(f"extends: {ROOT}/recipes/qwen3_6/sft-lora-4x32g.yaml\nargs:\n  mtp_num_layer: 1\n")
        baseline = wall([sys.executable, "-c", "pass"])
        plan_typo = wall([sys.executable, "-m", "swift_ext", "plan", str(typo)], expect=2)
        plan_ok = wall([sys.executable, "-m", "swift_ext", "plan", str(ROOT / "recipes/qwen3_6/grpo-lora-8gpu.yaml")], expect=0)
        swift_import = wall([sys.executable, "-c", "import swift.arguments"], repeat=2)
    print(f"python start-up (baseline)          {baseline * 1000:8.0f} ms")
    print(f"swift-ext plan, recipe with a typo  {plan_typo * 1000:8.0f} ms   {plan_typo / baseline:5.1f}x baseline"
          f"   {'PASS' if plan_typo < 1.0 else 'FAIL'} (< 1 s)")
    print(f"swift-ext plan, seed GRPO recipe    {plan_ok * 1000:8.0f} ms   {plan_ok / baseline:5.1f}x baseline")
    print(f"import swift.arguments (ms-swift)   {swift_import * 1000:8.0f} ms   {swift_import / baseline:5.1f}x baseline"
          f"   (what any check inside ms-swift costs first; swift-ext is {swift_import / plan_typo:.0f}x faster)")


if __name__ == "__main__":
    main()
