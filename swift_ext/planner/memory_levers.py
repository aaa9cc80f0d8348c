"""Which recipe value a memory refusal is about: the single changes that would make the run fit.

A "does not fit" verdict is a fact about the whole recipe, but what a user changes to fix it is one flag: the expert
parallel size when the experts' states fill the GPU, the micro-batch or recompute when activations do, the colocated
vLLM's share when the rollout phase peaks. Each candidate below changes one thing (plus what ms-swift requires beside
it: sequence_parallel with TP > 1), keeps the world size and global batch, and is judged by the same layout rules and
estimate as the recipe, so a change is only named when the plan itself would then pass. The order is by the largest
part of the estimate: states (weights, gradients, optimizer) are sharded by EP/TP/PP or moved off the GPU; activations
shrink with smaller micro-batches, full recompute, CP, TP or a shorter max_length.
"""

from __future__ import annotations

from typing import NamedTuple

from swift_ext.planner.layout import check_layout, layout_of
from swift_ext.planner.memory import estimate


# The levers that keep the parallel layout (process groups, checkpoint sharding) as it is.
IN_PLACE = ("micro_batch_size", "recompute_granularity")


class Lever(NamedTuple):
    flag: str  # the recipe key (under args) the refusal names
    overrides: dict  # what the candidate sets, the flag first
    per_gpu_gib: float
    verdict: str  # fits, or tight: within the estimate's error band, warned but not refused

    def text(self) -> str:
        change = " ".join(f"{k} {str(v).lower() if isinstance(v, bool) else v}" for k, v in self.overrides.items())
        return f"{change} ({self.per_gpu_gib:.1f} GiB{', tight' if self.verdict == 'tight' else ''})"


def _doubled(args, key: str) -> int:
    return max(args.int(key) or 1, 1) * 2


def _candidates(args, shape, components: dict) -> list[tuple[str, dict]]:
    """(flag, overrides) in the order a fix is tried, from the part of the estimate that dominates."""
    states = sum(components.get(k, 0.0) for k in ("weights", "gradients", "optimizer"))
    activations = components.get("activations", 0.0)
    tp = _doubled(args, "tensor_model_parallel_size")
    sharding = []
    if shape.is_moe and shape.num_experts % _doubled(args, "expert_model_parallel_size") == 0:
        sharding.append(("expert_model_parallel_size", {"expert_model_parallel_size":
                                                        _doubled(args, "expert_model_parallel_size")}))
    if tp <= 8:
        sharding.append(("tensor_model_parallel_size", {"tensor_model_parallel_size": tp, "sequence_parallel": True}))
    sharding.append(("pipeline_model_parallel_size", {"pipeline_model_parallel_size":
                                                      _doubled(args, "pipeline_model_parallel_size")}))
    shrinking = []
    if (args.int("micro_batch_size") or 1) > 1:
        shrinking.append(("micro_batch_size", {"micro_batch_size": 1}))
    if args.str("recompute_granularity") != "full":
        shrinking.append(("recompute_granularity", {"recompute_granularity": "full", "recompute_method": "uniform",
                                                    "recompute_num_layers": 1}))
    if _doubled(args, "context_parallel_size") <= 8:
        shrinking.append(("context_parallel_size", {"context_parallel_size": _doubled(args, "context_parallel_size")}))
    offload = [] if args.bool("optimizer_cpu_offload") else [
        ("optimizer_cpu_offload", {"optimizer_cpu_offload": True, "use_precision_aware_optimizer": True})]
    rollout = []
    if components.get("vllm"):
        if not args.bool("offload_model"):
            rollout.append(("offload_model", {"offload_model": True}))
        if not args.bool("offload_optimizer"):
            rollout.append(("offload_optimizer", {"offload_optimizer": True}))
    length = args.int("max_length")
    shorter = [("max_length", {"max_length": length // 2})] if length and length >= 2048 else []
    if components.get("vllm", 0.0) > max(states, activations):
        return rollout + sharding + offload
    if states >= activations:
        return sharding + offload + rollout + shrinking + shorter
    by_tp = [c for c in sharding if c[0] == "tensor_model_parallel_size"]
    return shrinking + by_tp + shorter + [c for c in sharding if c not in by_tp] + offload + rollout


def _judged(recipe, args, shape, capacity_gib: float, components: dict, versions, data_tokens):
    """(flag, overrides, estimate) of each candidate, in _candidates' order, that the plan's layout rules accept."""
    world, per_node = recipe.launch.world_size, recipe.launch.gpus_per_node
    for flag, overrides in _candidates(args, shape, components):
        changed = args.with_overrides(overrides)
        errors, _ = check_layout(recipe, changed, shape, versions)
        if not errors:
            lay = layout_of(changed, world, per_node)
            yield flag, overrides, estimate(shape, changed, lay, capacity_gib, recipe.command, data_tokens=data_tokens)


def fitting_levers(recipe, args, shape, capacity_gib: float, components: dict, versions=None,
                   data_tokens: int | None = None, limit: int = 3) -> list[Lever]:
    """Up to `limit` single changes after which the plan's own layout rules pass and the estimate fits, in the
    order _candidates tries them."""
    found: list[Lever] = []
    for flag, overrides, mem in _judged(recipe, args, shape, capacity_gib, components, versions, data_tokens):
        if mem.verdict in ("fits", "tight"):
            found.append(Lever(flag, overrides, mem.per_gpu_gib, mem.verdict))
            if len(found) == limit:
                break
    return found


def easing_levers(recipe, args, shape, memory, versions=None, data_tokens: int | None = None,
                  limit: int = 3) -> list[Lever]:
    """The values a "tight" warning names: when the estimate is over the card (but within the error band, so not
    refused), the single changes that the plan's layout rules accept and after which the estimate itself is under the
    card (its verdict may still be tight, the band being wide), those that keep the layout (IN_PLACE) first, then in
    _candidates' order. Real out-of-memory reports mostly land in this band (ms-swift#6387: 98 GiB estimated on a 96
    GiB H20; NeMo-RL#2668: 90 GiB on an 80 GiB H100, cleared by TP=2, which this names); a warning on no value says
    "may not fit" but not what to change. Empty when the estimate is already under the card (the band alone makes it
    tight: nothing to point at) or when no single change brings it there. The first is the warning's path; up to
    `limit` are listed, so a user for whom that change is not open (a recompute they cannot afford, a length they
    need) sees the others."""
    capacity_gib, components = memory.capacity_gib, memory.components
    if memory.per_gpu_gib <= capacity_gib:
        return []
    under = [Lever(flag, overrides, mem.per_gpu_gib, mem.verdict)
             for flag, overrides, mem in _judged(recipe, args, shape, capacity_gib, components, versions, data_tokens)
             if mem.per_gpu_gib < capacity_gib]
    # Over the card by a margin the band calls uncertain, the fix reports make is the one that keeps the layout:
    # Megatron-Bridge PR 5506 cleared Gemma-4-26B-A4B's SFT on 8 H100s with full recompute at the same TP4/EP8 (82.7
    # GiB estimated, states the largest part, so TP=8 came first); NeMo-RL PR 2668 re-sharded (TP=2) only where the
    # recompute and micro-batch were already at their floor. Re-sharding changes the process groups and the checkpoint
    # layout; a smaller micro-batch or full recompute changes neither.
    in_place = [lever for lever in under if lever.flag in IN_PLACE]
    return (in_place + [lever for lever in under if lever not in in_place])[:limit]


def primary_flag(args, shape, components: dict) -> str:
    """The flag a refusal names when no single change fits: the first lever for the part that dominates."""
    return _candidates(args, shape, components)[0][0]
