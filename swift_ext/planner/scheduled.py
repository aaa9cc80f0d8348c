"""Recipes whose sizes the cluster's scheduler decides (`launch.nodes: scheduler`,
`launch.gpus_per_node: scheduler`, as `import` writes for PAI-DLC-style scripts): which world sizes the
layout works at, and the sized recipe the rest of the plan checks."""

from __future__ import annotations

from swift_ext.msswift import schema as msargs
from swift_ext.msswift.bound_args import Args
from swift_ext.spec.recipe import Recipe

MAX_SCHEDULED_NODES = 64  # candidates listed: 1..64 nodes
GPUS_PER_NODE_CANDIDATES = (1, 2, 4, 8)  # when the scheduler also decides the GPUs per node


def candidate_sizes(recipe: Recipe) -> list[tuple[int, int]]:
    """(nodes, gpus_per_node) pairs the scheduler could give, one per world size (fewest nodes first)."""
    launch = recipe.launch
    nodes = [launch.nodes] if "nodes" not in launch.scheduled else range(1, MAX_SCHEDULED_NODES + 1)
    gpus = [launch.gpus_per_node] if "gpus_per_node" not in launch.scheduled else GPUS_PER_NODE_CANDIDATES
    by_world: dict[int, tuple[int, int]] = {}
    for n in nodes:
        for g in gpus:
            by_world.setdefault(n * max(g, 1), (n, g))
    return [by_world[w] for w in sorted(by_world)]


def sized(recipe: Recipe, nodes: int, gpus_per_node: int) -> Recipe:
    return recipe.model_copy(update={"launch": recipe.launch.sized(nodes, gpus_per_node)})


def legal_sizes(recipe: Recipe, shape) -> tuple[list[tuple[int, int]], dict[int, str]]:
    """(the (nodes, gpus) pairs whose world size passes every layout rule, {world: first error} of the rest).
    Megatron only: the layout rules (planner/layout.py) are what depends on the world size."""
    from swift_ext.planner.layout import check_layout

    schema = msargs.schema_for(recipe.engine, recipe.command)
    legal, refused = [], {}
    for nodes, gpus in candidate_sizes(recipe):
        candidate = sized(recipe, nodes, gpus)
        errors, _ = check_layout(candidate, Args.bind(candidate, schema), shape)
        if errors:
            refused[nodes * max(gpus, 1)] = f"{errors[0].code}: {errors[0].message}"
        else:
            legal.append((nodes, gpus))
    return legal, refused


def resolve(recipe: Recipe, shape) -> tuple[Recipe, list[str], str | None]:
    """(the recipe sized at the smallest legal world, notes, None) or (sized at the smallest candidate,
    notes, why no size works). Engine swift: the smallest candidate. `shape` None (no config.json, e.g. a
    local mcore checkpoint): the sizes the shape-free layout rules (world divisible by TP*PP*CP, EP grid)
    accept, so PP=2 with unknown model is checked at 2 GPUs, not refused at 1."""
    left = " and ".join(f"launch.{name}" for name in recipe.launch.scheduled)
    candidates = candidate_sizes(recipe)
    if recipe.engine != "megatron":
        nodes, gpus = candidates[0]
        return sized(recipe, nodes, gpus), [
            f"{left}: decided by the scheduler; checked as {nodes} node(s) x {gpus} GPU(s) — "
            "`plan --nodes N --gpus-per-node G` checks the sizes the job will get"], None
    legal, refused = legal_sizes(recipe, shape)
    if not legal:
        world, why = next(iter(refused.items()))
        nodes, gpus = candidates[0]
        return sized(recipe, nodes, gpus), [], (
            f"{left} decided by the scheduler, but the layout works at no world size up to "
            f"{candidates[-1][0] * max(candidates[-1][1], 1)} GPUs (at {world}: {why})")
    worlds = [n * max(g, 1) for n, g in legal]
    shown = ", ".join(map(str, worlds[:12])) + (f", ... ({len(worlds)} sizes up to {worlds[-1]})"
                                                 if len(worlds) > 12 else "")
    nodes, gpus = legal[0]
    return sized(recipe, nodes, gpus), [
        f"{left}: decided by the scheduler; the layout works at {shown} GPUs"
        + (f" ({'x'.join(map(str, (recipe.launch.gpus_per_node,)))} per node)"
           if "gpus_per_node" not in recipe.launch.scheduled else "")
        + f"; memory and batch checked at the smallest, {nodes} node(s) x {gpus} GPU(s) — "
        "`plan --nodes N --gpus-per-node G` checks the sizes the job will get"], None
