"""A floor under Megatron's memory while a local distillation teacher runs (megatron rlhf --rlhf_type gkd, and GRPO
with a teacher: OPD-RL), which the per-GPU estimate (memory.py) leaves out: the estimate is the student's.

What ms-swift 4.6 keeps on a GPU when the teacher's forward runs:
- the teacher: megatron/trainers/rollout_mixin.py MegatronRolloutMixin._prepare_teacher builds it with
  get_mcore_model(args, teacher_hf_config) -- the student's TP/PP/EP/ETP layout, bf16 weights, no gradients or
  optimizer -- and offload_teacher_model only moves it to the host between forwards (load_teacher_model_context
  brings all of it back for each forward);
- the student's weights, fp32 gradient buffer and optimizer state: nothing frees them for the teacher (offload_model
  / offload_optimizer are counted as freeing theirs, so the sum stays a floor);
- a colocated vLLM that does not sleep (sleep_level 0) keeps its whole vllm_gpu_memory_utilization share;
- GKD without gkd_logits_topk: megatron/trainers/gkd_trainer.py MegatronGKDTrainer._compute_teacher_logits_local
  runs the teacher on every micro-batch of the rollout buffer (num_microbatches x steps_per_generation, built at once
  by _generate_and_score_completions) and keeps each one's full-vocabulary logits (TeacherOutput(full_logits=...):
  [tokens / CP, vocabulary / TP] bf16 on the last pipeline stage) until that micro-batch trains (ms-swift#10097;
  PR #10114 "retains a teacher logits tensor for every rollout microbatch").
The weights, gradients, optimizer state and vLLM share are byte counts (memory.py's, no activation model, no
allocator slack, no framework share): their sum with the teacher's shard over the card is refused. The logits
buffer is sized for every sample at its longest ((max_length or 2048) + max_completion_length, no longer than
vllm_max_model_len), a bound the data may never reach: said, not refused.
"""

from __future__ import annotations

from swift_ext.planner.memory import GiB, pipeline_stages, stage_components
from swift_ext.planner.model_shape import ModelShape
from swift_ext.planner.shape_lookup import resolve_shape
from swift_ext.spec.findings import Finding, UserError

BF16 = 2  # bytes per teacher weight and per teacher logit (the output layer writes the params' dtype)


def _teacher_shape(args, shape: ModelShape) -> ModelShape | None:
    teacher = args.str("teacher_model")
    if teacher == args.str("model"):
        return shape
    try:
        return resolve_shape(teacher)
    except UserError:
        return None  # no config.json for the teacher here: not judged


def _logits_buffer_gib(args, tshape: ModelShape, lay, capacity_gib: float) -> float:
    """GiB of full-vocabulary teacher logits one last-stage GPU holds through a generation cycle (GKD, no top-k)."""
    if args.str("rlhf_type") != "gkd" or args.raw("gkd_logits_topk") is not None:
        return 0.0
    mbs = max(args.micro_batch_size, 1)
    dp = max(lay.dp, 1)
    micro_batches = max(args.global_batch_size // (mbs * dp), 1) * max(args.int("steps_per_generation") or 1, 1)
    seq = (args.int("max_length") or 2048) + (args.int("max_completion_length") or 512)
    if args.int("vllm_max_model_len"):
        seq = min(seq, args.int("vllm_max_model_len"))
    tokens = mbs * seq / max(lay.cp, 1)
    return micro_batches * tokens * tshape.vocab_size / max(lay.tp, 1) * BF16 / GiB


def teacher_memory(recipe, args, shape, lay, err, warn):
    if recipe.engine != "megatron" or recipe.command != "rlhf" or lay is None or not isinstance(shape, ModelShape):
        return
    if args.str("rlhf_type") not in ("gkd", "grpo") or not args.str("teacher_model") or args.str("teacher_model_server"):
        return
    if args.str("teacher_model") == args.str("model") and args.str("tuner_type") == "lora":
        return  # megatron_args.py _check_teacher: the student with its adapter disabled, no second model (lora only:
        # under lora_llm teacher_model stays set and _load_teacher_model builds the frozen copy)
    if args.bool("use_ray"):
        return  # swift/ray/megatron: the Ray config's groups (train / rollout / teacher GPUs, its own sleep_level)
        # place the teacher and vLLM, not the launch's layout and vllm_mode: not judged
    capacity = recipe.launch.memory_gib
    tshape = _teacher_shape(args, shape)
    if not capacity or tshape is None:
        return
    teacher_args = args.with_overrides({"tuner_type": "full"})  # weights only are read: no adapters on the teacher
    vllm = 0.0
    if args.bool("use_vllm") and args.str("vllm_mode") == "colocate" and not (args.int("sleep_level") or 0):
        vllm = (args.float("vllm_gpu_memory_utilization") or 0.9) * capacity
    floor, where = 0.0, None
    for first, last in pipeline_stages(lay):
        student = stage_components(shape, args, lay, first, last, "rlhf")
        teacher_w = stage_components(tshape, teacher_args, lay, first, last, "sft")["weights"]
        static = (0.0 if args.bool("offload_model") else student["weights"]) \
            + (0.0 if args.bool("offload_optimizer") else student["gradients"] + student["optimizer"])
        logits = _logits_buffer_gib(args, tshape, lay, capacity) if last else 0.0
        if static + vllm + teacher_w + logits > floor:
            floor, where = static + vllm + teacher_w + logits, (static, teacher_w, logits)
    if where is None:
        return
    static, teacher_w, logits = where
    parts = (f"the student's weights, gradients and optimizer state {static:.1f} GiB"
             + (f" + the awake colocated vLLM's share {vllm:.1f} GiB" if vllm else "")
             + f" + the teacher {tshape.name}'s bf16 shard {teacher_w:.1f} GiB (the student's layout: TP={lay.tp} "
             f"PP={lay.pp} EP={lay.ep})")
    hint = ("teacher_model_server (a teacher served on other GPUs; GKD with gkd_logits_topk), a layout that shards "
            "more (expert/tensor/pipeline parallel over more GPUs), sleep_level 1, or a smaller teacher")
    if static + vllm + teacher_w > capacity:
        err("teacher-memory", f"while the local teacher runs a GPU holds {parts} = {static + vllm + teacher_w:.1f} "
            f"GiB, over the {capacity:g} GiB of each {recipe.launch.gpu or 'GPU'} before any activation (a floor: "
            "offload_teacher_model only moves the teacher out between its forwards)", "teacher_model", hint=hint)
    elif logits and static + vllm + teacher_w + logits > capacity:
        warn("teacher-memory", f"Megatron GKD without gkd_logits_topk keeps the teacher's full-vocabulary logits of "
             f"every micro-batch of a generation cycle until it trains: up to {logits:.1f} GiB on the last pipeline "
             f"stage with every sample at its longest, on top of {parts}: {floor:.1f} GiB of "
             f"{capacity:g} GiB (the data's real lengths decide)", "gkd_logits_topk",
             hint="gkd_logits_topk (e.g. 64: top-k logits only), a smaller global_batch_size or "
                  "max_completion_length, or more tensor/context parallel")


def teacher_memory_findings(recipe, args, shape, lay, warnings: list) -> list:
    """The rule's errors (returned) and warnings (appended to `warnings`), as plan's Megatron checks collect them."""
    errors: list = []

    def reporter(into):
        def report(rule, message, key=None, hint=None):
            into.append(Finding(message, code=rule, hint=hint, **recipe.where(f"args.{key}")))
        return report

    teacher_memory(recipe, args, shape, lay, reporter(errors), reporter(warnings))
    return errors
