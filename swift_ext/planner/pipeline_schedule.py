"""The interleaved (virtual) pipeline schedule's micro-batch rule: megatron-core 0.16.1 refuses it only in
the first training step, after the model is built and loaded on every rank. Registered with layout.py's
rules (engine megatron)."""

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


SCHEDULE_RULES = [interleaved_microbatches]
