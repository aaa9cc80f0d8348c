"""The rules of virtual pipeline stages: the interleaved schedule's micro-batch count (megatron-core 0.16.1
refuses it only in the first training step, after the model is built and loaded on every rank), and the
Megatron RLHF paths that take one model chunk. Registered with layout.py's rules (engine megatron)."""

from __future__ import annotations

from swift_ext.planner.pipeline_stages import parse_pipeline_layout


def virtual_stages(args, pp: int) -> int:
    """The virtual pipeline size ms-swift hands megatron-core: stages of pipeline_model_parallel_layout / PP,
    else virtual_pipeline_model_parallel_size (ms-swift megatron_args.py MegatronArguments._init_vpp_size)."""
    text = args.str("pipeline_model_parallel_layout")
    if text:
        stages = parse_pipeline_layout(text)
        return len(stages) // pp if stages and len(stages) % pp == 0 else 1  # else: the pipeline-layout rule
    return args.int("virtual_pipeline_model_parallel_size") or 1


# Evidence: megatron-core 0.16.1 pipeline_parallel/schedules.py forward_backward_pipelining_with_interleaving:
# ValueError "The number of contiguous micro-batches in a virtual pipeline stage should range in [PP, M]"
# when microbatch_group_size_per_vp_stage (model_parallel_config.py: defaults to PP) is above M or below PP,
# and RuntimeError when 0 < M % group < PP ("dependency bubbles"). M = global_batch_size / (micro_batch_size
# * DP) (ms-swift megatron_args.py). Seen as NVIDIA-NeMo/Speech issue 14288 (PP=6, M=3).
def interleaved_microbatches(recipe, args, shape, lay, err, warn):
    if lay.pp < 2 or virtual_stages(args, lay.pp) < 2 or not lay.dp:
        return
    gbs, mbs = args.global_batch_size, args.micro_batch_size
    step = mbs * lay.dp
    if not gbs or not mbs or gbs % step:
        return  # the global-batch rule reports it
    microbatches = gbs // step
    stated_group = args.int("microbatch_group_size_per_vp_stage")
    group = stated_group or lay.pp
    if stated_group is not None and stated_group < lay.pp:
        err("vpp-microbatches", f"microbatch_group_size_per_vp_stage {stated_group} is below PP={lay.pp}: "
            "megatron-core's interleaved schedule refuses it in the first step", "microbatch_group_size_per_vp_stage",
            hint=f"use at least {lay.pp}, or drop it (it defaults to PP)")
        return
    if group > microbatches:
        err("vpp-microbatches", f"interleaved pipeline (virtual stages) with {microbatches} micro-batch(es) per step "
            f"(global_batch_size {gbs} / (micro_batch_size {mbs} x DP {lay.dp})) but groups of {group} "
            f"(PP={lay.pp}): megatron-core's interleaved schedule needs at least {group}", "global_batch_size",
            hint=f"global_batch_size a multiple of {group * step} (e.g. {group * step}), or no virtual pipeline")
        return
    remainder = microbatches % group
    if 0 < remainder < lay.pp:
        err("vpp-microbatches", f"{microbatches} micro-batches per step leave a last group of {remainder} < PP="
            f"{lay.pp}: megatron-core's interleaved schedule refuses it (dependency bubbles)", "global_batch_size",
            hint=f"global_batch_size a multiple of {group * step}")


def megatron_rlhf_vpp(recipe, args, shape, lay, err, warn):
    # Built per virtual pipeline stage, the Megatron RLHF models come as one chunk per stage; these paths take one.
    if recipe.engine != "megatron" or recipe.command != "rlhf":
        return
    if lay.pp < 2 or virtual_stages(args, lay.pp) < 2:
        return
    flag = "pipeline_model_parallel_layout" if args.str("pipeline_model_parallel_layout") else \
        "virtual_pipeline_model_parallel_size"
    rlhf_type = args.str("rlhf_type") or "dpo"
    beta = args.float("beta")
    # swift/megatron/trainers/grpo_trainer.py MegatronGRPOTrainer._maybe_compute_logps (reference log-probs, first
    # step): "GRPO currently does not support VPP." -- beta unset is 0.04 (RLHFMegatronArgumentsMixin._init_grpo);
    # beta 0 computes no reference.
    if rlhf_type == "grpo" and (beta is None or beta != 0.0):
        err("megatron-rlhf-vpp", "Megatron GRPO with a KL term (beta != 0) does not support virtual pipeline stages",
            flag, hint="drop the virtual pipeline stages, or beta: 0")
    # swift/megatron/trainers/rollout_mixin.py MegatronRolloutMixin._load_teacher_model: "Teacher distillation does
    # not support VPP." (a separate teacher model; not a teacher server nor the LoRA model without its adapter).
    teacher = args.str("teacher_model")
    same = teacher == args.str("model") and (args.str("tuner_type") or "full") == "lora"
    if rlhf_type in ("grpo", "gkd") and teacher and not args.str("teacher_model_server") and not same:
        err("megatron-rlhf-vpp", "a separate teacher_model does not support virtual pipeline stages", flag,
            hint="drop the virtual pipeline stages, or use teacher_model_server")


SCHEDULE_RULES = [interleaved_microbatches, megatron_rlhf_vpp]
