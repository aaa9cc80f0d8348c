"""The rules of virtual pipeline stages: the interleaved schedule's micro-batch count (megatron-core 0.16.1
refuses it only in the first training step, after the model is built and loaded on every rank), the
Megatron RLHF paths that take one model chunk, and a layout or virtual size given only in megatron_extra_kwargs
(extra-kwargs-pipeline). Registered with layout.py's rules (engine megatron)."""

from __future__ import annotations

from swift_ext.planner.mcore_config import ARGUMENT_OF, STAGE_SIZE_FIELDS
from swift_ext.planner.pipeline_stages import layout_too_long, parse_pipeline_layout


def virtual_stages(args, pp: int) -> int:
    """The virtual pipeline size ms-swift hands megatron-core: stages of pipeline_model_parallel_layout / PP,
    else virtual_pipeline_model_parallel_size (ms-swift megatron_args.py MegatronArguments._init_vpp_size)."""
    text = args.str("pipeline_model_parallel_layout")
    if text:
        stages = parse_pipeline_layout(text)
        return len(stages) // pp if stages and len(stages) % pp == 0 else 1  # else: the pipeline-layout rule
    return args.int("virtual_pipeline_model_parallel_size") or 1


def microbatches_per_step(args, lay) -> int | None:
    """M, the micro-batches of one training step: global_batch_size / (micro_batch_size * DP), as ms-swift's
    MegatronArguments._init_distributed sets num_microbatches for every forward_backward_func call of a train step.
    None where it is not a whole number (the global-batch rule reports that) or DP is unknown."""
    gbs, mbs = args.global_batch_size, args.micro_batch_size
    step = (mbs or 0) * lay.dp
    if not gbs or not step or gbs % step:
        return None
    return gbs // step


# Evidence: megatron-core 0.16.1 pipeline_parallel/schedules.py forward_backward_pipelining_with_interleaving:
# ValueError "The number of contiguous micro-batches in a virtual pipeline stage should range in [PP, M]"
# when microbatch_group_size_per_vp_stage (model_parallel_config.py: defaults to PP) is above M or below PP,
# and RuntimeError when 0 < M % group < PP ("dependency bubbles"). M = global_batch_size / (micro_batch_size
# * DP) (ms-swift megatron_args.py). Seen as NVIDIA-NeMo/Speech issue 14288 (PP=6, M=3).
def interleaved_microbatches(recipe, args, shape, lay, err, warn):
    if lay.pp < 2 or virtual_stages(args, lay.pp) < 2:
        return
    microbatches = microbatches_per_step(args, lay)
    if microbatches is None:
        return  # the global-batch rule reports it
    gbs, mbs = args.global_batch_size, args.micro_batch_size
    step = mbs * lay.dp
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


# Evidence (ms-swift 4.6, megatron-core 0.16.1, mcore-bridge): MegatronArguments._init_vpp_size derives
# args.virtual_pipeline_model_parallel_size from args.pipeline_model_parallel_layout (None when 1); initialize_megatron
# (utils/megatron_lm_utils.py) hands that to mpu.initialize_model_parallel, and BaseMegatronTrainer.setup_training
# builds one data iterator per virtual stage from it. get_mcore_model_config copies both arguments into the config
# kwargs, then `kwargs.update(args.megatron_extra_kwargs)`: a layout or a virtual size given there reaches only the
# config. TransformerConfig.__post_init__ (PP layout block) asserts the config's virtual size equals the layout's
# ("virtual_pipeline_model_parallel_size conflicts with pipeline_model_parallel_layout") and else takes the layout's;
# mcore-bridge get_mcore_model builds one model chunk per config.virtual_pipeline_model_parallel_size when PP > 1,
# while parallel_state has no virtual size, so every chunk is built as virtual stage 0
# (PipelineParallelLayerLayout.get_num_layers_to_build: vp_stage = 0) and get_forward_backward_func picks the
# non-interleaved schedule, which asserts "non-interleaved pipeline-parallel schedule does not support model
# chunking". The first/last stage sizes are ms-swift's decoder_first/last_pipeline_num_layers, copied to
# num_layers_in_first/last_pipeline_stage; given directly they skip MegatronArguments' own check (layers-pp judges
# the config's value).
STAGE_SIZE_ARGUMENTS = {name: ARGUMENT_OF[name] for name in STAGE_SIZE_FIELDS}


def extra_kwargs_pipeline(recipe, args, shape, lay, err, warn):
    extra = args.mapping("megatron_extra_kwargs")
    if recipe.engine != "megatron" or args.str("bridge_backend") == "megatron-bridge":
        return
    for key, argument in STAGE_SIZE_ARGUMENTS.items():
        if key in extra and extra[key] is not None:
            warn("extra-kwargs-pipeline", f"megatron_extra_kwargs sets {key}: ms-swift's argument for it is {argument} "
                 f"(get_mcore_model_config copies it there, then megatron_extra_kwargs over it): MegatronArguments' "
                 "check and swift-ext's memory estimate read the argument, not this (the layers-pp and "
                 "pipeline-layout rules judge this value, as megatron-core does)", "megatron_extra_kwargs",
                 hint=f"set `{argument}: {extra[key]}` in args and drop {key} from megatron_extra_kwargs")
    layout_key, vpp_key = "pipeline_model_parallel_layout", "virtual_pipeline_model_parallel_size"
    if layout_key not in extra and vpp_key not in extra:
        return
    swift_vpp = virtual_stages(args, lay.pp) if lay.pp > 1 else 1  # what parallel state and the data iterators get
    layout = extra.get(layout_key, args.raw(layout_key))
    stages = parse_pipeline_layout(layout) if isinstance(layout, str) else layout if isinstance(layout, list) else None
    given_vpp = extra[vpp_key] if vpp_key in extra else (swift_vpp if swift_vpp > 1 else None)
    if layout_key in extra and extra[layout_key] not in (None, "", []) and (
            stages is None or len(stages) % lay.pp):
        # The pipeline-layout rule reads args only: a layout given here alone is judged here, as megatron-core's
        # TransformerConfig.__post_init__ does (PipelineParallelLayerLayout: parsed, then validate_layer_layout
        # asserts the stages divide by PP).
        value = extra[layout_key]
        why = (f"is {type(value).__name__}, not a layout string or list of stages" if not isinstance(value, (str, list))
               else "expands to more layer entries than any model has" if isinstance(value, str) and
               layout_too_long(value) else "does not parse: stages may only hold E (embedding), t (transformer "
               "layer), m (MTP) and L (loss), separated by |" if stages is None
               else f"has {len(stages)} stages, which cannot be split over PP={lay.pp}")
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        err("extra-kwargs-pipeline", f"megatron_extra_kwargs pipeline_model_parallel_layout {shown} {why}: "
            "megatron-core refuses it when the model config is built", "megatron_extra_kwargs",
            hint=f"set {layout_key} in args (checked there against the model's layers) and drop it from "
                 "megatron_extra_kwargs")
        return
    if (given_vpp is not None and type(given_vpp) is not int) or (layout is not None and stages is None):
        return  # megatron_extra_kwargs' value check and the pipeline-layout rule say what is wrong with them
    if stages is not None and (not stages or len(stages) % lay.pp):
        return  # the pipeline-layout rule's refusal (PipelineParallelLayerLayout: not divisible by PP)
    config_vpp = given_vpp
    if stages is not None:
        layout_vpp = len(stages) // lay.pp
        if given_vpp is not None and given_vpp != layout_vpp:
            err("extra-kwargs-pipeline", f"megatron_extra_kwargs makes the model config's virtual pipeline size "
                f"{given_vpp} and its layout {len(stages)} stages over PP {lay.pp} ({layout_vpp} virtual): megatron-core's "
                "TransformerConfig asserts they agree ('virtual_pipeline_model_parallel_size conflicts with "
                "pipeline_model_parallel_layout') when the model is built", "megatron_extra_kwargs",
                hint=f"set {layout_key} / {vpp_key} in args, not in megatron_extra_kwargs")
            return
        config_vpp = layout_vpp if layout_vpp > 1 else given_vpp
    chunks = config_vpp if lay.pp > 1 and config_vpp else 1
    if chunks != swift_vpp or (lay.pp == 1 and stages is not None and len(stages) > 1):
        where = (f"mcore-bridge builds {chunks} model chunk(s) from the config while ms-swift sets up parallel state "
                 f"and the data iterators for {swift_vpp} virtual stage(s) (_init_vpp_size reads args only)" + (
                     ": each chunk is built as the first virtual stage and megatron-core's non-interleaved schedule "
                     "refuses the chunk list ('does not support model chunking')" if swift_vpp == 1 else
                     ": megatron-core's schedule runs a model whose chunks do not match its virtual stages")
                 if lay.pp > 1 else
                 f"with PP 1 the model is one chunk and megatron-core builds only the layers of the layout's first "
                 f"stage of {len(stages)} (no virtual parallel state: get_num_layers_to_build takes stage 0)")
        err("extra-kwargs-pipeline", "megatron_extra_kwargs gives the pipeline's virtual stages "
            f"({', '.join(k for k in (layout_key, vpp_key) if k in extra)}) past ms-swift's handling: {where}",
            "megatron_extra_kwargs", hint=f"set {layout_key} (or {vpp_key}) in args and drop it from "
            "megatron_extra_kwargs")
    elif layout_key in extra and not args.str(layout_key):
        warn("extra-kwargs-pipeline", "megatron_extra_kwargs sets pipeline_model_parallel_layout: megatron-core places "
             "the layers by it, but ms-swift's _init_vpp_size and swift-ext's layout, layer-balance and memory rules "
             "read args.pipeline_model_parallel_layout and check none of it", "megatron_extra_kwargs",
             hint=f"set `{layout_key}: {layout if isinstance(layout, str) else '<the layout string>'}` in args and "
             "drop it from megatron_extra_kwargs")


# Evidence: ms-swift 4.6 megatron_args.py MegatronArguments._init_vpp_size: with pipeline_model_parallel_layout set,
# virtual_pipeline_model_parallel_size is overwritten by the layout's stages / PP (1 then becomes None) without a word.
# A virtual size the recipe states that differs is dropped: the run takes the layout's schedule, micro-batch groups and
# per-chunk memory instead. Megatron-Bridge hit the same stale-layout mismatch as a refusal (NVIDIA-NeMo/Megatron-Bridge
# #1502 and PR 5443: DeepSeek-V3 asked for PP=8 VP=1 with the 16-stage layout of PP=8 VP=2); ms-swift runs it.
def layout_overrides_vpp(recipe, args, shape, lay, err, warn):
    text, stated = args.str("pipeline_model_parallel_layout"), args.raw("virtual_pipeline_model_parallel_size")
    if not text or type(stated) is not int or lay.pp < 1:
        return
    stages = parse_pipeline_layout(text)
    if not stages or len(stages) % lay.pp:
        return  # the pipeline-layout rule's refusal
    layout_vpp = len(stages) // lay.pp
    if stated != layout_vpp:
        warn("layout-vpp", f"virtual_pipeline_model_parallel_size {stated} with a pipeline_model_parallel_layout of "
             f"{len(stages)} stages over PP={lay.pp}: ms-swift's _init_vpp_size replaces it by the layout's "
             f"{layout_vpp} virtual stage(s) per rank, so the run is not the one the recipe states",
             "pipeline_model_parallel_layout",
             hint=f"a layout of {stated * lay.pp} stages for virtual size {stated}, or "
                  f"virtual_pipeline_model_parallel_size: {layout_vpp} (or drop it)")


SCHEDULE_RULES = [interleaved_microbatches, megatron_rlhf_vpp, extra_kwargs_pipeline, layout_overrides_vpp]
