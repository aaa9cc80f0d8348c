"""How many GPUs each process of a transformers-engine launch sees, as ms-swift's is_mp() counts them.

ms-swift 4.6 swift/utils/env.py `is_mp()`: n_gpu (the devices CUDA_VISIBLE_DEVICES leaves visible) over
local_world_size (the processes torchrun starts on the node, NPROC_PER_NODE; 1 without torchrun). swift-ext's launch
starts gpus_per_node processes over CUDA_VISIBLE_DEVICES 0..gpus_per_node-1 (planner/launch.py build_launch); the
recipe's env replaces either. Read by the device_map refusals (msswift/device_map_rules.py) and the transformers
engine's memory floor (planner/memory_swift.py).
"""

from __future__ import annotations


def _count(value) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def devices_and_processes(recipe) -> tuple[int, int] | None:
    """(GPUs the node's processes see, processes per node), or None when a size is left to the scheduler or is not
    a number."""
    gpus = recipe.launch.gpus_per_node
    if not isinstance(gpus, int) or gpus < 1:
        return None
    listed = recipe.env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None and "$" in str(listed):
        return None
    visible = gpus if listed is None else len([d for d in str(listed).split(",") if d.strip()])
    nproc = recipe.env.get("NPROC_PER_NODE")
    procs = gpus if nproc is None else _count(nproc)
    if procs is None or procs < 1:
        return None
    return visible, procs


def gpus_per_process(recipe) -> int:
    """GPUs one process spreads its model over with device_map (1: plain data parallelism)."""
    if str(recipe.env.get("SWIFT_SINGLE_DEVICE_MODE", "0")) == "1":
        return 1
    sizes = devices_and_processes(recipe)
    if sizes is None or sizes[0] < sizes[1] or sizes[0] % sizes[1]:
        return 1
    return sizes[0] // sizes[1]
