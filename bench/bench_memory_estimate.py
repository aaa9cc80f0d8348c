"""The memory estimator against published (configuration -> measured GiB per GPU) runs.

Goal (issue #3): median absolute error <= 15%, worst <= 35%. Baseline in the same run: the
"weights only" rule of thumb (bf16 weights / (TP*PP*EP-for-experts)) that people use before an OOM.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import yaml

from swift_ext.layout import layout_of
from swift_ext.plan import make_plan
from swift_ext.recipe import Recipe

POINTS = Path(__file__).with_name("memory_points.yaml")
GiB = 1024**3


def weights_only(recipe: Recipe) -> float:
    plan = make_plan(recipe)
    lay, shape = layout_of(plan.args, recipe.launch.world_size), plan.shape
    experts = shape.expert_params_per_layer() * shape.num_layers
    dense = shape.total_params() - experts
    return (dense / (lay.tp * lay.pp) + experts / (lay.ep * lay.pp)) * 2 / GiB


def main() -> None:
    points = yaml.safe_load(POINTS.read_text())
    ours, base = [], []
    print(f"{'run':52} {'measured':>8} {'ours':>7} {'err':>7} {'weights-only':>12} {'err':>7}")
    for p in points:
        recipe = Recipe(**p["recipe"], source=p["name"])
        est = make_plan(recipe).memory.per_gpu_gib
        w = weights_only(recipe)
        e1 = (est - p["measured_gib"]) / p["measured_gib"] * 100
        e2 = (w - p["measured_gib"]) / p["measured_gib"] * 100
        ours.append(abs(e1))
        base.append(abs(e2))
        print(f"{p['name'][:52]:52} {p['measured_gib']:8.0f} {est:7.1f} {e1:+6.0f}% {w:12.1f} {e2:+6.0f}%")
    print(f"\nswift-ext estimate: median |error| {statistics.median(ours):.1f}%, worst {max(ours):.1f}% "
          f"over {len(ours)} runs (goal: median <= 15%, worst <= 35%)")
    print(f"weights-only baseline: median |error| {statistics.median(base):.1f}%, worst {max(base):.1f}%")
    print(f"ratio of median errors (baseline / ours): {statistics.median(base) / statistics.median(ours):.1f}x")
    for p in points:
        if p.get("outlier"):
            print(f"outlier {p['name']}: {p['outlier']}")


if __name__ == "__main__":
    main()
