"""How fast a bad recipe is rejected, against the interpreter's own start-up and against importing ms-swift.

Goal (issue #2): a typo fails in under 1 s wall on a 2-core machine, without importing torch/ms-swift.
Issue #10: `plan` on a shipped recipe stays under 1 s; `--search` works on the Plan (one reading of ms-swift's
orm.py per process, not one per candidate layout); what the megatron-core oracle (`plan --oracle`) adds.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEAT = 7


def wall(cmd: list[str], repeat: int = REPEAT, expect: int | None = None, env: dict | None = None) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
        times.append(time.perf_counter() - start)
        if expect is not None and proc.returncode != expect:
            raise SystemExit(f"unexpected exit {proc.returncode}: {proc.stderr[-500:]}")
    return statistics.median(times)


def oracle_judge_ms(repeat: int = 50) -> float:
    """megatron-core's verdict on the GRPO recipe's layout, once megatron-core is imported (in-process)."""
    from swift_ext.planner import oracle
    from swift_ext.msswift.bound_args import Args
    from swift_ext.planner.layout import layout_of
    from swift_ext.planner.shape_lookup import resolve_shape
    from swift_ext.msswift.schema import schema_for
    from swift_ext.spec.recipe import load_recipe

    rec = load_recipe(ROOT / "recipes/qwen3_6/grpo-lora-8gpu.yaml")
    args = Args.bind(rec, schema_for(rec.engine, rec.command))
    shape, lay = resolve_shape(rec.args["model"]), layout_of(args, rec.launch.world_size)
    oracle.judge(shape, args, lay, cache=False)  # the import
    start = time.perf_counter()
    for _ in range(repeat):
        oracle.judge(shape, args, lay, cache=False)
    return (time.perf_counter() - start) / repeat * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        typo = Path(tmp) / "typo.yaml"
        # a misspelling, not a prefix: `mtp_num_layer` is accepted, as ms-swift's argparse accepts it
        typo.write_text(f"extends: {ROOT}/recipes/qwen3_6/sft-lora-4x32g.yaml\nargs:\n  mtp_num_layrs: 1\n")
        baseline = wall([sys.executable, "-c", "pass"])
        plan_typo = wall([sys.executable, "-m", "swift_ext", "plan", str(typo)], expect=2)
        grpo = str(ROOT / "recipes/qwen3_6/grpo-lora-8gpu.yaml")
        no_oracle = {"SWIFT_EXT_ORACLE": "0"}
        plan_ok = wall([sys.executable, "-m", "swift_ext", "plan", grpo], expect=0, env=no_oracle)
        plan_sft = wall([sys.executable, "-m", "swift_ext", "plan", str(ROOT / "recipes/qwen3_6/sft-lora-4x32g.yaml")],
                        expect=0, env=no_oracle)
        search_cli = wall([sys.executable, "-m", "swift_ext", "plan", grpo, "--search"], repeat=3, expect=0,
                          env=no_oracle)
        # Its own cache folder: the first --oracle pays the import, the next ones read the stored verdict.
        cached = {"SWIFT_EXT_CACHE": str(Path(tmp) / "cache")}
        wall([sys.executable, "-m", "swift_ext", "plan", grpo], expect=0, repeat=1, env={**no_oracle, **cached})
        plan_oracle = wall([sys.executable, "-m", "swift_ext", "plan", grpo, "--oracle"], expect=0, repeat=1, env=cached)
        plan_oracle_hit = wall([sys.executable, "-m", "swift_ext", "plan", grpo, "--oracle"], expect=0, repeat=3,
                               env=cached)
        mcore_import = wall([sys.executable, "-c", "import megatron.core.transformer.transformer_config"], repeat=3)
        judge_ms = oracle_judge_ms()
        swift_import = wall([sys.executable, "-c", "import swift.arguments"], repeat=2)
    search_s, parses, candidates = search_in_process()
    print(f"python start-up (baseline)          {baseline * 1000:8.0f} ms")
    print(f"swift-ext plan, recipe with a typo  {plan_typo * 1000:8.0f} ms   {plan_typo / baseline:5.1f}x baseline"
          f"   {'PASS' if plan_typo < 1.0 else 'FAIL'} (< 1 s)")
    print(f"swift-ext plan, seed GRPO recipe    {plan_ok * 1000:8.0f} ms   {plan_ok / baseline:5.1f}x baseline")
    print(f"  the same with --oracle            {plan_oracle * 1000:8.0f} ms   {plan_oracle / plan_ok:5.1f}x plan"
          f"   (megatron-core import alone {mcore_import * 1000:.0f} ms; one verdict once imported {judge_ms:.1f} ms)")
    print(f"  --oracle again (cached verdict)   {plan_oracle_hit * 1000:8.0f} ms   {plan_oracle_hit / plan_ok:5.1f}x plan")
    print(f"swift-ext plan, seed SFT recipe     {plan_sft * 1000:8.0f} ms   {plan_sft / baseline:5.1f}x baseline"
          f"   {'PASS' if max(plan_sft, plan_ok) < 1.0 else 'FAIL'} (< 1 s)")
    print(f"swift-ext plan --search, GRPO       {search_cli * 1000:8.0f} ms   {search_cli / baseline:5.1f}x baseline")
    print(f"search() in process, GRPO           {search_s * 1000:8.1f} ms   {candidates} layouts tried, "
          f"orm.py read {parses} time(s)")
    print(f"import swift.arguments (ms-swift)   {swift_import * 1000:8.0f} ms   {swift_import / baseline:5.1f}x baseline"
          f"   (what any check inside ms-swift costs first; swift-ext is {swift_import / plan_typo:.0f}x faster)")


def search_in_process() -> tuple[float, int, int]:
    """Median time of `search(plan)` on the GRPO recipe, how often ms-swift's orm.py was parsed, candidates tried."""
    sys.path.insert(0, str(ROOT))
    from swift_ext.msswift import plugin_registry
    from swift_ext.planner.plan import make_plan
    from swift_ext.spec.recipe import load_recipe
    from swift_ext.planner.search import search

    plan = make_plan(load_recipe(ROOT / "recipes/qwen3_6/grpo-lora-8gpu.yaml", []))
    # ms-swift's registries are read from source by plugin_registry.builtin_names, cached per (module, registry)
    plugin_registry.builtin_names.cache_clear()
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        search(plan)
        times.append(time.perf_counter() - start)
    info = plugin_registry.builtin_names.cache_info()
    return statistics.median(times), info.misses, (info.hits + info.misses) // REPEAT


if __name__ == "__main__":
    main()
