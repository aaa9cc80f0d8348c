"""The transformers engine's model parallelism by `device_map`: what ms-swift 4.6 refuses under it.

`swift sft|pt|rlhf` spreads one model over several GPUs with `device_map` when a process sees at least two GPUs
for itself: swift/utils/env.py `is_mp()` is `n_gpu // local_world_size >= 2`, n_gpu being the devices
CUDA_VISIBLE_DEVICES leaves visible and local_world_size the processes torchrun starts on the node (NPROC_PER_NODE; 1
without torchrun). A script that lists more GPUs than it starts processes (`CUDA_VISIBLE_DEVICES=0,1,2 swift sft`
with no NPROC_PER_NODE) gets device_map parallelism, which is a published way to train (ms-swift's
examples/train/multi-gpu/device_map) and is not refused here; what ms-swift refuses beside it is.
"""

from __future__ import annotations

import ast
import json

from swift_ext.spec.local_devices import devices_and_processes

# What is refused once is_mp() holds, and where (paths inside the installed `swift` package).
_REFUSED_UNDER_MP = (
    # (argument, the refusal's words, file and function)
    ("deepspeed", "DeepSpeed is not compatible with `device_map`",
     "swift/arguments/sft_args.py SftArguments._init_deepspeed"),
    ("fsdp", "FSDP2 is not compatible with `device_map`", "swift/arguments/sft_args.py SftArguments._init_fsdp"),
    ("use_liger_kernel", "liger_kernel does not support device_map",
     "swift/trainers/arguments.py TrainArgumentsMixin.__post_init__"),
)
# GRPO/GKD with vLLM: swift/arguments/rlhf_args.py RLHFArguments._check_grpo / _check_gkd
# ("GRPO with vLLM is not compatible with `device_map`. Please set NPROC_PER_NODE equal to num_processes.")
_VLLM_RLHF = ("grpo", "gkd")


def device_map_refusals(recipe, args, err, warn):
    # swift/utils/env.py is_mp(): `assert n_gpu % local_world_size == 0`, then n_gpu // local_world_size >= 2.
    # TrainArgumentsMixin.__post_init__ calls it on every `swift sft|pt|rlhf` (before testing use_liger_kernel), so
    # the assertion holds for every training launch; SWIFT_SINGLE_DEVICE_MODE=1 skips both.
    if recipe.engine != "swift" or recipe.command not in ("sft", "pt", "rlhf"):
        return
    if str(recipe.env.get("SWIFT_SINGLE_DEVICE_MODE", "0")) == "1":
        return
    sizes = devices_and_processes(recipe)
    if sizes is None:
        return
    visible, procs = sizes
    if visible < procs:
        return  # fewer GPUs than ranks: the launch rule's, not a device_map question
    if visible % procs:
        # The value the recipe states is the one to change: an env NPROC_PER_NODE over the launch's own device list
        # (no CUDA_VISIBLE_DEVICES in env), else the device list.
        where = "env.NPROC_PER_NODE" if "NPROC_PER_NODE" in recipe.env and "CUDA_VISIBLE_DEVICES" not in recipe.env \
            else "env.CUDA_VISIBLE_DEVICES"
        err("device-map", f"CUDA_VISIBLE_DEVICES leaves {visible} GPUs for {procs} processes per node: ms-swift "
            f"asserts the visible GPUs divide evenly among the processes (is_mp: n_gpu % local_world_size)",
            where,
            hint=f"list a multiple of {procs} devices, or start one process per visible GPU (NPROC_PER_NODE)")
        return
    per_process = visible // procs
    if per_process < 2:
        _device_map_under_ddp(recipe, args, err, procs, visible)
        return  # one GPU per process: plain DDP
    why = (f"each of the {procs} process(es) per node sees {per_process} GPUs (CUDA_VISIBLE_DEVICES lists {visible}), "
           "so ms-swift loads the model with device_map over them (model parallelism)")
    fix = (f"one process per visible GPU (NPROC_PER_NODE={visible}, launch.gpus_per_node: {visible}), or "
           f"CUDA_VISIBLE_DEVICES listing only the {procs} GPU(s) the training processes use")
    for name, words, where in _REFUSED_UNDER_MP:
        if name != "use_liger_kernel" and args.bool("use_ray"):
            continue  # SftArguments skips its DeepSpeed/FSDP refusals under use_ray
        if args.bool(name) if name == "use_liger_kernel" else args.str(name):
            err("device-map", f"{name} with device_map model parallelism: {why}; ms-swift refuses it at start-up "
                f"(\"{words}\", {where})", name, hint=f"{fix}, or drop {name}")
    rlhf_type = args.str("rlhf_type") or ""
    if recipe.command == "rlhf" and rlhf_type in _VLLM_RLHF and args.bool("use_vllm"):
        err("device-map", f"{rlhf_type.upper()} with vLLM under device_map model parallelism: {why}; ms-swift refuses "
            f"it at start-up (\"{rlhf_type.upper()} with vLLM is not compatible with `device_map`\", "
            "swift/arguments/rlhf_args.py RLHFArguments._check_" + rlhf_type + ")", "use_vllm",
            hint=f"{fix}, or use_vllm: false")


# device_map values transformers spreads over every visible GPU (integrations/accelerate.py _get_device_map:
# anything but 'sequential' goes through get_balanced_memory, so even a small model lands on several GPUs).
_SPREADING = ("auto", "balanced", "balanced_low_0")


def _spread_devices(value) -> str | None:
    """What a stated device_map spreads the model over, or None when it keeps it on one device (or is unknown)."""
    if isinstance(value, str) and value.strip().startswith("{"):
        try:  # ModelArguments._init_device_map: json_parse_to_dict(device_map, strict=False)
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, str) and value.strip().lower() in _SPREADING:
        return f"device_map {value.strip()}"
    if isinstance(value, dict):
        devices = {str(v) for v in value.values() if str(v) not in ("cpu", "disk")}
        if len(devices) >= 2:
            return f"a device_map over devices {', '.join(sorted(devices))}"
    return None


def _max_memory_gpus(value) -> int | None:
    """How many GPUs a stated max_memory leaves to device_map (None: not stated or not read). ModelArguments.
    _init_max_memory shifts its integer keys by local_rank, and accelerate's infer_auto_device_map places only on the
    devices it lists: with one GPU the map collapses to {'': rank} (clean_device_map), a single entry, which
    accelerate's verify_device_map lets through."""
    if value is None:
        return None
    if isinstance(value, str):
        try:  # ModelArguments._init_max_memory: ast.literal_eval, then json_parse_to_dict
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            try:
                value = json.loads(value)
            except ValueError:
                return None
    # accelerate's get_max_memory takes integer keys as GPUs and 'mps'/'cpu'/'disk'; a key like "0" it rejects
    if not isinstance(value, dict) or any(not isinstance(k, int) and k not in ("mps", "cpu", "disk") for k in value):
        return None
    return sum(1 for k in value if isinstance(k, int))


def _device_map_under_ddp(recipe, args, err, procs, visible):
    # One GPU per process is plain DDP: ms-swift's MP+DDP patch (swift/model/patcher.py patch_mp_ddp, which limits
    # each rank to its own GPUs and turns accelerate's verify_device_map off) runs only under is_mp_ddp(), i.e. when a
    # process sees >= 2 GPUs. A device_map stated here is passed to from_pretrained as is (ModelArguments.
    # _init_device_map only shifts a dict's indices by local_rank): every rank spreads its copy over all `visible`
    # GPUs, and the trainer's accelerator.prepare_model raises "You can't train a model that has been loaded with
    # `device_map='auto'` in any distributed mode" (if loading `procs` spread copies has not run out of memory first).
    # DeepSpeed / FSDP prepare the model on their own path: not judged.
    nodes = recipe.launch.nodes if isinstance(recipe.launch.nodes, int) else 1
    if procs * nodes < 2 or args.str("deepspeed") or args.str("fsdp"):
        return
    spread = _spread_devices(args.raw("device_map"))
    if spread is None or _max_memory_gpus(args.raw("max_memory")) in (0, 1):
        return
    err("device-map-ddp", f"{spread} under data parallelism ({procs} process(es) per node, one GPU each): ms-swift's "
        f"MP+DDP support only applies when a process sees >= 2 GPUs, so each rank spreads its own copy over all "
        f"{visible} visible GPUs and accelerate refuses it (\"You can't train a model that has been loaded with "
        "`device_map='auto'` in any distributed mode\"), unless loading the copies runs out of memory first",
        "device_map", hint="drop device_map (ms-swift puts each rank on its own GPU), or device_map model parallelism: "
        "fewer processes than visible GPUs (NPROC_PER_NODE a divisor of the GPU count, e.g. 2 processes x 4 GPUs)")


DEVICE_MAP_RULES = [device_map_refusals]
