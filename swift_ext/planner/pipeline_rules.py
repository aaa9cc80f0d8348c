"""The pipeline split rules of the layout check (layout.RULES runs them in its order): layers-pp (an even split over
PP and virtual stages, or the first/last stage sizes) and pipeline-layout (an explicit pipeline_model_parallel_layout).
Both judge the model config's values as megatron-core's TransformerConfig.__post_init__ gets them
(planner/mcore_config.py), and ms-swift's own checks on its arguments."""

from __future__ import annotations

from swift_ext.planner.mcore_config import (ARGUMENT_OF, STAGE_SIZE_FIELDS, config_value, flag, from_extra, is_on,
                                            mtp_layers_checked)
from swift_ext.planner.pipeline_stages import MAX_LAYOUT_CHARS, layout_too_long, parse_pipeline_layout
from swift_ext.planner.sizes import divisors, nearest
from swift_ext.spec.findings import shown


def _stage_size(args, field: str) -> int | None:
    """num_layers_in_first/last_pipeline_stage as TransformerConfig gets it: megatron_extra_kwargs' value wins over
    decoder_first/last_pipeline_num_layers (get_mcore_model_config copies the argument, then kwargs.update); a
    value there of another type is megatron-extra-kwargs' to refuse."""
    if from_extra(args, field):
        value = config_value(args, field)
        return value if type(value) is int else None
    return args.int(ARGUMENT_OF[field])


FIRST, LAST = STAGE_SIZE_FIELDS


def layers_pp(recipe, args, shape, lay, err, warn):
    # megatron-core TransformerConfig.__post_init__ (uneven PP) judges the config's first/last stage sizes;
    # ms-swift megatron_args.py:885 (first/last only with PP > 1) reads its arguments.
    first, last = _stage_size(args, FIRST), _stage_size(args, LAST)
    vpp = args.int("virtual_pipeline_model_parallel_size")
    if vpp == 1:  # ms-swift MegatronArguments._init_vpp_size: a virtual size of 1 is None (no virtual pipeline)
        vpp = None
    if args.str("pipeline_model_parallel_layout"):
        return  # an explicit layout: the pipeline-layout rule
    embedding, loss = (is_on(args, "account_for_embedding_in_pipeline_split"),
                       is_on(args, "account_for_loss_in_pipeline_split"))
    layers = shape.num_layers + embedding + loss
    if vpp is not None and lay.pp == 1:  # parallel_state.initialize_model_parallel
        err("layers-pp", "virtual_pipeline_model_parallel_size needs pipeline_model_parallel_size > 1",
            "virtual_pipeline_model_parallel_size")
    if lay.pp == 1:
        stated = [ARGUMENT_OF[f] for f in STAGE_SIZE_FIELDS if args.int(ARGUMENT_OF[f]) is not None]
        if stated:
            # ms-swift megatron_args.py MegatronArguments.__post_init__ refuses it; Megatron-LM issue #1778
            # shows what happens without the check (the model silently gets that many layers).
            err("layers-pp", "decoder_first/last_pipeline_num_layers need pipeline_model_parallel_size > 1",
                stated[0])
            return
        if first is None and last is None:
            return
        # megatron_extra_kwargs only: MegatronArguments' check never sees it, TransformerConfig's below judge it
    if first is None and last is None:
        if vpp and layers % lay.pp == 0 and (layers // lay.pp) % vpp:
            err("layers-pp", f"{layers // lay.pp} layers per pipeline stage cannot be split into {vpp} virtual stages",
                "virtual_pipeline_model_parallel_size", hint=f"one of {divisors(layers // lay.pp)}")
        if layers % lay.pp:
            legal = [d for d in divisors(layers) if d <= lay.world]
            err("layers-pp", f"{layers} layers cannot be split evenly over PP={lay.pp}",
                "pipeline_model_parallel_size",
                hint=f"nearest legal PP: {nearest(lay.pp, legal)}, or set decoder_first/last_pipeline_num_layers")
        return
    first_key, last_key = flag(args, FIRST), flag(args, LAST)
    if embedding or loss:
        # TransformerConfig.__post_init__: uneven first/last stages exclude account_for_* splits.
        err("layers-pp", "decoder_first/last_pipeline_num_layers cannot be combined with "
            "account_for_embedding_in_pipeline_split / account_for_loss_in_pipeline_split",
            first_key if first is not None else last_key)
        return
    # TransformerConfig.__post_init__ (uneven PP): stages given must hold >= 1 layer, and "you either
    # have middle pp stages and layers or none of them".
    for key, field, value in ((first_key, FIRST, first), (last_key, LAST, last)):
        if value is not None and value <= 0:
            err("layers-pp", f"{field} must be larger than 0, got {value}", key)
            return
    middle_stages = lay.pp - (first is not None) - (last is not None)
    rest = shape.num_layers - (first or 0) - (last or 0)
    if rest < 0 or bool(rest) != bool(middle_stages) or (middle_stages > 0 and rest % middle_stages):
        err("layers-pp", f"{layers} layers with first={first}, last={last} leave {rest} layers for "
            f"{middle_stages} middle stage(s): not an even split", first_key if first is not None else last_key)
        return
    if vpp:  # each stage's layers are split again into vpp virtual stages
        stages = [(first_key, first), (last_key, last),
                  ("virtual_pipeline_model_parallel_size", rest // middle_stages if middle_stages else None)]
        for key, n in stages:
            if n is not None and n % vpp:
                err("layers-pp", f"{n} layers on a pipeline stage cannot be split into {vpp} virtual stages", key)
                return


def pipeline_layout(recipe, args, shape, lay, err, warn):
    # ms-swift megatron_args.py MegatronArguments._init_vpp_size (stages % PP; VPP = stages / PP) and
    # megatron-core 0.16 PipelineParallelLayerLayout.validate_layer_layout (called by TransformerConfig).
    text = args.str("pipeline_model_parallel_layout")
    if not text:
        return
    key = "pipeline_model_parallel_layout"
    stages = parse_pipeline_layout(text)
    if stages is None and layout_too_long(text):
        err("pipeline-layout", f"{shown(text)}: its repeats expand to more than {MAX_LAYOUT_CHARS} layer entries "
            "(a layout names each of the model's layers once)", key, hint="check the counts after '*'")
        return
    if stages is None:
        err("pipeline-layout", f"{shown(text)}: stages may only hold E (embedding), t (transformer layer), m (MTP) and "
            "L (loss), separated by |", key)
        return
    if len(stages) % lay.pp:
        err("pipeline-layout", f"{len(stages)} stages cannot be split over PP={lay.pp}", key,
            hint=f"a multiple of {lay.pp} stages")
        return
    # TransformerConfig.__post_init__ (PP layout block) refuses a first/last stage size that is not None -- 0
    # included -- and an account_for_* split that is true, read from the config (megatron_extra_kwargs wins).
    sizes = [f for f in STAGE_SIZE_FIELDS if config_value(args, f) is not None]
    splits = [f for f in ("account_for_embedding_in_pipeline_split", "account_for_loss_in_pipeline_split")
              if is_on(args, f)]
    if sizes or splits:
        name = (sizes + splits)[0]
        named = ARGUMENT_OF.get(name, name) if flag(args, name) != "megatron_extra_kwargs" else name
        err("pipeline-layout", f"pipeline_model_parallel_layout cannot be combined with {named} "
            f"({config_value(args, name)!r}; megatron-core refuses any first/last stage size that is set, 0 "
            "included, and any account_for_* split)", flag(args, name))
        return
    vpp = len(stages) // lay.pp  # ms-swift sets virtual_pipeline_model_parallel_size from it
    if lay.pp == 1 and vpp > 1:
        # ms-swift MegatronArguments._init_vpp_size sets VPP = stages / PP (1 only becomes None), and
        # megatron_lm_utils.py initialize_megatron passes it to parallel_state.initialize_model_parallel, which
        # raises 'pipeline-model-parallel size should be greater than 1 with interleaved schedule'.
        err("pipeline-layout", f"pipeline_model_parallel_layout {shown(text)} has {len(stages)} stages at PP=1: ms-swift "
            f"makes that virtual_pipeline_model_parallel_size {vpp}, and megatron-core's initialize_model_parallel "
            "refuses an interleaved schedule without pipeline parallelism", key,
            hint="one stage (no '|') at PP=1, or pipeline_model_parallel_size > 1")
        return
    # megatron-core stage order: stage i is pipeline rank i % PP, virtual stage i // PP.
    flat = "".join(stages)
    mtp = max(mtp_layers_checked(args) or 0, 0)
    problems = []
    if not flat.startswith("E") or flat.count("E") != 1:
        problems.append("the embedding (E) must come first, exactly once")
    if not flat.endswith("L") or flat.count("L") != 1:
        problems.append("the loss (L) must come last, exactly once")
    if flat.count("t") != shape.num_layers:
        problems.append(f"it places {flat.count('t')} transformer layers (t) but the model has {shape.num_layers}")
    if flat.count("m") != mtp:
        problems.append(f"it places {flat.count('m')} MTP layer(s) (m) but mtp_num_layers is {mtp}")
    if "m" in flat and "t" in flat[flat.index("m"):]:
        problems.append("transformer layers must come before the MTP layers")
    if any("m" in stage for i, stage in enumerate(stages) if i // lay.pp < vpp - 1):
        problems.append("MTP layers must be in a rank's last virtual stage")
    if problems:
        err("pipeline-layout", f"pipeline_model_parallel_layout {shown(text)}: " + "; ".join(problems), key)


PIPELINE_RULES = [layers_pp, pipeline_layout]
