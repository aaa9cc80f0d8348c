"""A floor under the transformers engine's per-GPU memory: the model's weights, gradients and optimizer state alone.

`swift sft|pt|rlhf` has no layout to plan and its activations depend on the data, so swift-ext gives no memory
estimate for it; but the states are known from the model's size and the recipe, and when they alone exceed the GPU
the launch cannot fit at any batch size or length. Only that is refused: activations, the logits, a reference or
teacher model, a colocated vLLM, the CUDA context and fragmentation all come on top and are left out, so the floor
never overstates what the engine holds.

How each setting holds the states (P parameters, T trainable, d bytes per weight at torch_dtype, N data-parallel
processes):
- no DeepSpeed/FSDP (DDP): every process holds weights d*P, gradients d*T and AdamW's exp_avg/exp_avg_sq in the
  parameters' dtype (torch.optim.AdamW `zeros_like(param)`) 2d*T: ms-swift loads the model at torch_dtype and trains
  it there (pipelines/train/tuner.py upcasts only fp16 adapters);
- DeepSpeed with bf16/fp16: fp32 master weights and fp32 Adam moments, 12*T, partitioned over N from ZeRO-1, the
  gradients from ZeRO-2, the weights from ZeRO-3; offload_optimizer/offload_param move their part to the CPU (the
  zero2_offload/zero3_offload presets in swift/config/);
- device_map model parallelism (a process sees k >= 2 GPUs, swift/utils/env.py is_mp): the process's share is spread
  over its k GPUs.
FSDP, quantized models (quant_method/quant_bits, a quantized checkpoint) and unreadable DeepSpeed configs are not
judged.
"""

from __future__ import annotations

from swift_ext.msswift.deepspeed_rules import DEEPSPEED_PRESET_ZERO, _json_config
from swift_ext.spec.local_devices import devices_and_processes, gpus_per_process

GIB = 1024 ** 3


def _deepspeed(value) -> tuple[int, bool, bool] | None:
    """(stage, optimizer offloaded, parameters offloaded) of a preset name, a JSON text or a readable JSON file."""
    if isinstance(value, str) and value in DEEPSPEED_PRESET_ZERO:
        return DEEPSPEED_PRESET_ZERO[value]
    config = _json_config(value, ())  # a mapping, a JSON file here, or JSON text; None otherwise
    if config is None:
        return None
    zero = config.get("zero_optimization") if isinstance(config, dict) else None
    if not isinstance(zero, dict):
        return (0, False, False) if isinstance(config, dict) else None
    try:
        stage = int(zero.get("stage", 0))
    except (TypeError, ValueError):
        return None

    def offloaded(key: str) -> bool:
        part = zero.get(key)
        return isinstance(part, dict) and str(part.get("device", "none")).lower() in ("cpu", "nvme")

    return stage, offloaded("offload_optimizer"), offloaded("offload_param")


def _trainable(shape, args) -> float:
    """Parameters the optimizer holds, counted low: none for an adapter (its few are left out), and for full tuning
    the language model only, and none at all when the recipe freezes anything (freeze_llm, freeze_parameters...),
    whose extent is not worked out here."""
    if (args.str("tuner_type") or "lora") != "full":
        return 0.0
    if (args.bool("freeze_llm") or args.list("freeze_parameters") or args.str("freeze_parameters_regex")
            or (args.float("freeze_parameters_ratio") or 0) > 0):
        return 0.0
    return float(shape.total_params(mtp=False) - shape.vision_params())


def _adamw_states(args) -> bool:
    """The optimizer keeps two full-precision moments per trained parameter and the gradients live until the step:
    transformers' AdamW family (the default optim), not 8-/4-bit AdamW, Adafactor, SGD, LOMO (fused gradients) or
    what ms-swift's `optimizer` plugins (GaLore, LoRA+, Muon ...) build instead; the multimodal optimizer is AdamW
    with per-module learning rates. Anything else: only the weights are a floor."""
    # the schema's default is transformers' expression default_optim(): an AdamW (adamw_torch or _fused)
    optim = args.raw("optim") if isinstance(args.raw("optim"), str) else "adamw_torch"
    if args.bool("use_galore") or (args.int("lisa_activated_layers") or 0) > 0:
        return False
    if (args.str("optimizer") or "multimodal") != "multimodal":
        return False
    return optim.startswith("adamw") and "bit" not in optim and "lomo" not in optim


def state_floor(recipe, args, shape) -> tuple[float, str] | None:
    """(GiB per GPU the states alone take, how they were counted), or None where the floor is not judged."""
    parts = state_parts(recipe, args, shape)
    return None if parts is None else (sum(parts[:3]), parts[3])


def state_parts(recipe, args, shape) -> tuple[float, float, float, str] | None:
    """(weights, gradients, optimizer state in GiB per GPU, how they were counted), or None where not judged; the
    weights alone are also the floor under the logits (planner/memory_logits.py)."""
    if args.str("quant_method") or args.raw("quant_bits") is not None or shape.checkpoint_quant:
        return None
    if args.str("fsdp"):
        return None
    sizes = devices_and_processes(recipe)
    if sizes is None or not isinstance(recipe.launch.nodes, int):
        return None
    procs = recipe.launch.nodes * sizes[1]
    spread = gpus_per_process(recipe)
    d = 4 if (args.str("torch_dtype") or "") == "float32" else 2
    # transformers builds no MTP block: its model classes drop those checkpoint keys unloaded
    # (_keys_to_ignore_on_load_unexpected: Qwen3.5/Qwen3-Next "^mtp.*", DeepSeek-V3 "model.layers.61.*", GLM-4.5)
    params, trainable = float(shape.total_params(mtp=False)), _trainable(shape, args)
    if not _adamw_states(args):
        trainable = 0.0  # gradients and moments counted for full-precision AdamW only: others hold less (or none)
    ds_value = args.raw("deepspeed")
    if ds_value in (None, ""):
        weights, grads, optim = d * params, d * trainable, 2 * d * trainable
        how = f"DDP: weights {d} B/param, gradients and AdamW moments in the weights' dtype"
    else:
        ds = _deepspeed(ds_value)
        if ds is None:
            return None
        stage, off_optim, off_param = ds
        weights = 0.0 if off_param else d * params / (procs if stage >= 3 else 1)
        grads = d * trainable / (procs if stage >= 2 else 1)
        if off_optim:
            grads = 0.0 if stage >= 2 else grads
            optim = 0.0
        else:
            optim = 12 * trainable / (procs if stage >= 1 else 1)
        how = f"DeepSpeed ZeRO-{stage}: fp32 master and Adam moments 12 B/trainable param" + (
            ", optimizer on the CPU" if off_optim else "") + (", parameters on the CPU" if off_param else "")
    if spread > 1:
        how += f"; device_map spreads each process over {spread} GPUs"
    detail = (f"{params / 1e9:.1f}B parameters, {trainable / 1e9:.1f}B trained, {procs} process(es): weights "
              f"{weights / spread / GIB:.1f} + gradients {grads / spread / GIB:.1f} + optimizer {optim / spread / GIB:.1f} GiB "
              f"({how})")
    return weights / spread / GIB, grads / spread / GIB, optim / spread / GIB, detail


def reference_gib(recipe, args, shape) -> float:
    """GiB per GPU of the frozen reference model of full DPO / KTO / GRPO (beta != 0): RLHFArguments sets ref_model to
    the model itself for tuner_type full (arguments/rlhf_args.py), and rlhf_trainers/rlhf_mixin.py prepares it with
    utils.prepare_deepspeed, which keeps ZeRO-3 (partitioned, offload_param honoured) and otherwise runs ZeRO stage 0:
    a whole copy at torch_dtype on every GPU (without DeepSpeed, accelerator.prepare_model(evaluation_mode=True))."""
    rlhf_type = args.str("rlhf_type") or "dpo"
    if recipe.command != "rlhf" or rlhf_type not in ("dpo", "kto", "grpo") or args.str("tuner_type") != "full":
        return 0.0
    if rlhf_type == "grpo" and args.raw("beta") is not None and args.float("beta") == 0.0:
        return 0.0
    if args.str("ref_model") and args.str("ref_model") != args.str("model"):
        return 0.0  # another checkpoint: its size is not read here
    sizes = devices_and_processes(recipe)
    if sizes is None or not isinstance(recipe.launch.nodes, int):
        return 0.0
    d = 4 if (args.str("torch_dtype") or "") == "float32" else 2
    ds = None if args.raw("deepspeed") in (None, "") else _deepspeed(args.raw("deepspeed"))
    stage, _, off_param = ds or (0, False, False)
    if off_param and stage >= 3:
        return 0.0
    share = recipe.launch.nodes * sizes[1] if stage >= 3 else 1
    return d * float(shape.total_params(mtp=False)) / share / gpus_per_process(recipe) / GIB


def awake_vllm_gib(recipe, args) -> float:
    """GiB per GPU a colocated vLLM keeps through training when it never sleeps (sleep_level 0, ms-swift's default):
    the engine's vllm_gpu_memory_utilization share, weights and KV cache, allocated at start-up
    (rlhf_trainers/rollout_mixin.py RolloutTrainerMixin._prepare_vllm_engine; sleep_level 1/2 release it in
    offload_context / sleep)."""
    if recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd"):
        return 0.0
    if not args.bool("use_vllm") or args.str("vllm_mode") != "colocate" or (args.int("sleep_level") or 0):
        return 0.0
    return (args.float("vllm_gpu_memory_utilization") or 0.9) * (recipe.launch.memory_gib or 0.0)


def swift_memory_floor(recipe, args, shape, err) -> None:
    # Refuses only a floor above the whole GPU: what is left out (activations, logits, CUDA context) only adds.
    capacity = recipe.launch.memory_gib
    if shape is None or capacity is None or recipe.engine != "swift" or recipe.command not in ("sft", "pt", "rlhf"):
        return
    floor = state_floor(recipe, args, shape)
    if floor is not None and floor[0] <= capacity:
        _rlhf_floor(recipe, args, shape, floor, capacity, err)
        return
    if floor is None:
        return
    gib, detail = floor
    sharded = args.raw("deepspeed") not in (None, "")
    err("memory-floor", f"the model's states alone need {gib:.1f} GiB per GPU, more than the {capacity:g} GiB of a "
        f"{recipe.launch.gpu or 'GPU'} before any activation: {detail}", "deepspeed",
        hint=("a higher ZeRO stage or offload (deepspeed: zero3 / zero3_offload)" if sharded else
              "shard the states: deepspeed: zero3 (or zero3_offload)") +
             ", more GPUs, or tuner_type: lora for full tuning")


def _rlhf_floor(recipe, args, shape, floor, capacity, err) -> None:
    """The states that fit, plus what RLHF keeps beside them through every training step: the reference copy and an
    awake colocated vLLM (memory-floor too: byte counts, no activations)."""
    ref, vllm = reference_gib(recipe, args, shape), awake_vllm_gib(recipe, args)
    total = floor[0] + ref + vllm
    if not (ref or vllm) or total <= capacity:
        return
    parts = [f"the states {floor[0]:.1f} GiB ({floor[1]})"]
    if ref:
        parts.append(f"the frozen reference copy {ref:.1f} GiB (below ZeRO-3 ms-swift prepares it unpartitioned)")
    if vllm:
        parts.append(f"the colocated vLLM's {args.float('vllm_gpu_memory_utilization') or 0.9:g} share {vllm:.1f} "
                     "GiB, held through training at sleep_level 0")
    by_vllm = vllm and floor[0] + ref <= capacity
    err("memory-floor", f"{' + '.join(parts)} = {total:.1f} GiB per GPU, more than the {capacity:g} GiB of a "
        f"{recipe.launch.gpu or 'GPU'} before any activation", "sleep_level" if by_vllm else "deepspeed",
        hint=("sleep_level: 1 (vLLM releases its memory while training) or a lower vllm_gpu_memory_utilization"
              if by_vllm else "deepspeed: zero3 (partitions the reference copy too), tuner_type: lora (no copy), "
                              "or sleep_level: 1 with a colocated vLLM"))
