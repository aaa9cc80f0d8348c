"""megatron-core 0.16.1's own config refusals a recipe reaches through ms-swift 4.6's model config (engine megatron).

ms-swift builds the model config in swift/megatron/model/utils.py get_mcore_model_config: mcore-bridge's
hf_to_mcore_config gives the model's own values (mcore-bridge config/parser.py), then every MegatronArguments
field that is also a config field and is set (not None, not an empty list) is copied over, then
megatron_extra_kwargs is `kwargs.update`d on top, and mcore-bridge's ModelConfig (a TransformerConfig) runs
TransformerConfig.__post_init__ (transformer/transformer_config.py) on every rank, after the checkpoint is found
and the job has started. Each rule below mirrors one raise there, scoped to exactly its condition, on the values
as they arrive (ms-swift's defaults, its __post_init__ rewrites, the model's values, the extra kwargs), read
through mcore_config.py. Registered with layout.py's rules.
"""

from __future__ import annotations

from swift_ext.planner.mcore_config import (config_value, dispatcher_of, flag, fp8_recipe_of, from_extra,
                                            granularity_of, is_list, is_on, layer_count, recompute_module_list)
from swift_ext.planner.model_shape import ModelShape
from swift_ext.planner.pipeline_schedule import virtual_stages
from swift_ext.planner.pipeline_stages import parse_pipeline_layout
from swift_ext.spec.support import version_gaps

# TransformerConfig.__post_init__, selective block: the names recompute_modules may hold.
RECOMPUTE_MODULES = ("core_attn", "moe_act", "layernorm", "mla_up_proj", "mlp", "moe", "shared_experts")
# TransformerConfig.__post_init__: the load balancing types moe_expert_capacity_factor works with.
CAPACITY_BALANCING = ("aux_loss", "seq_aux_loss", "global_aux_loss", "none")


# Evidence: megatron-core 0.16.1 transformer/transformer_config.py TransformerConfig.__post_init__, the
# `recompute_granularity == "selective"` block ("Invalid choices for recompute_modules", "moe_act in
# recompute_modules is only supported with moe_grouped_gemm.", "mla_up_proj in recompute_modules is only supported
# with multi_latent_attention.", "shared_experts recompute cannot work with --moe-shared-expert-overlap.",
# "Delayed scaling does not support moe_act and layernorm recompute for fp8.") and the moe_layer_recompute block
# ("Do not set --moe-layer-recompute with full recompute granularity."). ms-swift 4.6 passes recompute_granularity
# (default selective), recompute_modules (default ['core_attn']), moe_grouped_gemm (default true),
# moe_shared_expert_overlap, moe_layer_recompute and fp8_recipe (default delayed) unchanged by name
# (megatron_args.py fields; model/utils.py get_mcore_model_config).
def recompute_modules(recipe, args, shape: ModelShape, lay, err, warn):
    granularity = granularity_of(args)
    if is_on(args, "moe_layer_recompute") and granularity == "full":
        err("recompute-modules", "moe_layer_recompute with recompute_granularity full: megatron-core refuses the pair "
            "(moe_layer_recompute asks for selective recompute of the MoE layer)", flag(args, "moe_layer_recompute"),
            hint="drop moe_layer_recompute, or use recompute_granularity: selective with recompute_modules: [moe]")
    written = config_value(args, "recompute_modules")
    if (isinstance(written, str) and written and from_extra(args, "recompute_modules")
            and (granularity == "selective" or is_on(args, "moe_layer_recompute") and "moe" not in written)):
        # TransformerConfig.__post_init__: set(recompute_modules) is the string's letters ("Invalid choices"), and
        # moe_layer_recompute's `if "moe" not in recompute_modules: recompute_modules.append("moe")` fails on a str --
        # a substring test, so a string holding "moe" skips the append (and megatron-core's later `"moe" in ...`
        # tests read it alike): only outside selective granularity does that pass.
        err("recompute-modules", f"megatron_extra_kwargs gives recompute_modules as a string ({written!r}): "
            "megatron-core reads it letter by letter and refuses the letters", "megatron_extra_kwargs",
            hint=f"a list: megatron_extra_kwargs: {{recompute_modules: [{written}]}}, or set args.recompute_modules")
        return
    if granularity != "selective":
        return
    modules = recompute_module_list(args)
    invalid = sorted(set(modules) - set(RECOMPUTE_MODULES))
    if invalid:
        joined = [m for m in invalid if any(c in m for c in " ,")]  # `recompute_modules: "core_attn moe"` is one item
        err("recompute-modules", f"recompute_modules {invalid} are not modules megatron-core recomputes",
            flag(args, "recompute_modules"), hint=f"choose from {', '.join(RECOMPUTE_MODULES)}"
            + (f"; write several as a YAML list, e.g. [{', '.join(joined[0].replace(',', ' ').split())}]"
               if joined else ""))
    if "moe_act" in modules and not is_on(args, "moe_grouped_gemm"):
        err("recompute-modules", "recompute_modules moe_act needs moe_grouped_gemm (megatron-core recomputes the "
            "expert activation only in the grouped GEMM experts)", flag(args, "recompute_modules"),
            hint="set moe_grouped_gemm: true (ms-swift's default), or drop moe_act from recompute_modules")
    # the shape-free checks first: without a config.json the shape ones stop the rule
    fp8_recipe = fp8_recipe_of(args)
    heavy = [m for m in ("moe_act", "layernorm") if m in modules]
    if heavy and fp8_recipe == "delayed":
        stated = "" if args.has("fp8_recipe") or flag(args, "fp8_recipe") != "fp8_recipe" else " (ms-swift's default)"
        err("recompute-modules", f"recompute_modules {' and '.join(heavy)} with FP8 delayed scaling{stated}: "
            "megatron-core recomputes moe_act/layernorm under FP8 only with current or block scaling",
            flag(args, "recompute_modules"),
            hint=f"drop {' and '.join(heavy)} from recompute_modules, or use fp8_recipe tensorwise/blockwise "
            "(Transformer Engine >= 2.6)")
    if "mla_up_proj" in modules and not (shape.kv_lora_rank or shape.q_lora_rank):
        err("recompute-modules", f"recompute_modules mla_up_proj needs multi-latent attention, which {shape.name} "
            "does not have", flag(args, "recompute_modules"), hint="drop mla_up_proj from recompute_modules")
    if ("shared_experts" in modules and shape.shared_expert_intermediate_size
            and is_on(args, "moe_shared_expert_overlap")):
        err("recompute-modules", f"recompute_modules shared_experts with moe_shared_expert_overlap: megatron-core "
            f"cannot recompute the shared experts ({shape.name} has them) while it overlaps them",
            flag(args, "recompute_modules"),
            hint="drop shared_experts from recompute_modules, or drop moe_shared_expert_overlap")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__, the same block: with FP8 current or block scaling,
# "moe_act and layernorm recompute for fp8 needs transformer-engine>=2.6.0dev0" (spec/support.py row
# fp8-recompute-act-norm). A versioned rule: it judges against the versions the plan targets.
def recompute_modules_fp8_te(recipe, args, shape, lay, err, warn, versions):
    fp8_recipe = fp8_recipe_of(args)
    heavy = [m for m in ("moe_act", "layernorm") if m in recompute_module_list(args)]
    if granularity_of(args) != "selective" or not heavy or fp8_recipe in (None, "delayed"):
        return
    for gap in version_gaps("fp8-recompute-act-norm", versions):
        err("recompute-modules", f"recompute_modules {' and '.join(heavy)} under FP8 {fp8_recipe} scaling needs "
            f"Transformer Engine >= 2.6: {gap}", flag(args, "recompute_modules"),
            hint=f"drop {' and '.join(heavy)} from recompute_modules, or a newer transformer-engine")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__: "DeepEP backend is only supported with flex token
# dispatcher." (moe_enable_deepep), "Only one backend is supported for flex token dispatcher." (deepep with
# moe_flex_dispatcher_backend hybridep), and "Flex token dispatcher with deepep backend does not support
# moe_pad_expert_input_to_capacity" -- moe_flex_dispatcher_backend defaults to 'deepep' and ms-swift 4.6 has no
# argument for it (only megatron_extra_kwargs), so flex with padding to capacity is refused unless the extra kwargs
# pick hybridep. ms-swift passes moe_enable_deepep, moe_token_dispatcher_type and moe_pad_expert_input_to_capacity
# by name (megatron_args.py; model/utils.py get_mcore_model_config).
def deepep_dispatcher(recipe, args, shape, lay, err, warn):
    dispatcher = dispatcher_of(args)
    backend = str(config_value(args, "moe_flex_dispatcher_backend") or "deepep")
    deepep = is_on(args, "moe_enable_deepep")
    if deepep and dispatcher != "flex":
        err("moe-deepep", f"moe_enable_deepep needs moe_token_dispatcher_type flex (it is {dispatcher})",
            flag(args, "moe_enable_deepep"), hint="set moe_token_dispatcher_type: flex, or drop moe_enable_deepep")
    elif deepep and backend == "hybridep":
        err("moe-deepep", "moe_enable_deepep with moe_flex_dispatcher_backend hybridep (megatron_extra_kwargs): the "
            "flex dispatcher takes one backend", flag(args, "moe_enable_deepep"), hint="drop one of the two")
    if dispatcher == "flex" and is_on(args, "moe_pad_expert_input_to_capacity") and (deepep or backend == "deepep"):
        err("moe-deepep", "moe_pad_expert_input_to_capacity with the flex token dispatcher's DeepEP backend (its "
            "default): megatron-core refuses padding expert inputs there",
            flag(args, "moe_pad_expert_input_to_capacity"),
            hint="drop moe_pad_expert_input_to_capacity, or use moe_token_dispatcher_type: alltoall")


def balancing_types(args) -> list[str] | None:
    """moe_router_load_balancing_type as the config gets it (ms-swift turns a one-item list argument into its item;
    megatron_extra_kwargs' list stays a list); None when the recipe leaves it to the model (mcore-bridge: aux_loss,
    or seq_aux_loss for DeepSeek-style models)."""
    value = config_value(args, "moe_router_load_balancing_type")
    if value is None or value == []:
        return None
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _capacity_factor(args) -> float | None:
    value = config_value(args, "moe_expert_capacity_factor")
    try:
        factor = None if value is None else float(value)
    except (TypeError, ValueError):
        return None  # check_args reports a value that does not parse
    return None if factor is None or factor < 0 else factor  # megatron-core: a negative factor means none


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__: "moe_aux_loss_coeff must be a list of the same
# length as moe_router_load_balancing_type" (an assert when the types are a list), "moe_expert_capacity_factor only
# works with aux_loss, seq_aux_loss, global_aux_loss or none load balancing", "moe_expert_capacity_factor must be
# set to use moe_pad_expert_input_to_capacity". ms-swift 4.6 MegatronArguments.__post_init__ turns one-item lists of
# moe_aux_loss_coeff / moe_router_load_balancing_type into their item and passes both by name.
def moe_capacity_and_balancing(recipe, args, shape, lay, err, warn):
    types = balancing_types(args)
    if types is not None and is_list(args, "moe_router_load_balancing_type",
                                      config_value(args, "moe_router_load_balancing_type")):
        coeff = config_value(args, "moe_aux_loss_coeff")
        coeffs = coeff if is_list(args, "moe_aux_loss_coeff", coeff) else None
        if coeffs is None or len(coeffs) != len(types):
            got = f"{len(coeffs)} value(s)" if coeffs is not None else "a single number, not a list"
            hint = f"give moe_aux_loss_coeff {len(types)} values, one per load balancing type"
            if len(types) == 1:  # only megatron_extra_kwargs keeps a one-item list (ms-swift unwraps an argument's)
                hint = ("give moe_router_load_balancing_type as a string, or moe_aux_loss_coeff as a one-item list in "
                        "megatron_extra_kwargs too")
            err("moe-load-balancing", f"moe_router_load_balancing_type is a list of {len(types)} type(s) but "
                f"moe_aux_loss_coeff gives {got}: megatron-core needs a list with one coefficient per type",
                flag(args, "moe_aux_loss_coeff"), hint=hint)
    factor = _capacity_factor(args)
    if factor is not None and types is not None:
        other = [t for t in types if t not in CAPACITY_BALANCING]
        if other:
            err("moe-load-balancing", f"moe_expert_capacity_factor with load balancing {other}: megatron-core drops "
                f"tokens by capacity only with {', '.join(CAPACITY_BALANCING)}",
                flag(args, "moe_expert_capacity_factor"),
                hint="drop moe_expert_capacity_factor, or use moe_router_load_balancing_type aux_loss")
    if is_on(args, "moe_pad_expert_input_to_capacity") and factor is None:
        err("moe-load-balancing", "moe_pad_expert_input_to_capacity needs moe_expert_capacity_factor (the capacity to "
            "pad to)", flag(args, "moe_pad_expert_input_to_capacity"),
            hint="set moe_expert_capacity_factor (ms-swift's examples use 2), or drop moe_pad_expert_input_to_capacity")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__: "Bias in Moe is only supported when ETP==1" (an
# assert, when num_moe_experts and add_bias_linear). mcore-bridge config/parser.py hf_to_mcore_config sets
# add_bias_linear=True for gpt_oss language models (1.6.3 parser.py:237, 1.6.5 :318) -- the same condition under which it sets softmax_type
# 'learnable', which is what the shape records (model_shape.py). ms-swift 4.6 passes expert_tensor_parallel_size
# (default 1) by name. (Other models reach add_bias_linear through config.json's mlp_bias, which the shape does not
# read: not judged.)
def moe_bias_etp(recipe, args, shape: ModelShape, lay, err, warn):
    if not shape.is_moe or shape.softmax_type != "learnable" or lay.etp == 1:
        return
    err("moe-bias-etp", f"{shape.name} has biases in its experts (gpt-oss): megatron-core supports them only with "
        f"expert_tensor_parallel_size 1, not {lay.etp}", "expert_tensor_parallel_size",
        hint="expert_tensor_parallel_size: 1 (split the experts with expert_model_parallel_size instead)")


# The model types mcore-bridge gives DeepSeek Sparse Attention (experimental_attention_variant 'dsa';
# config/parser.py hf_to_mcore_config, 1.6.3 :196 / :256, 1.6.5 :228 / :337): DeepSeek-V3.2 and GLM-5.
DSA_MODEL_TYPES = ("deepseek_v32", "glm_moe_dsa")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__, `experimental_attention_variant == "dsa"`:
# "Currently context parallelism is not supported by DSAttention!" and "RoPE fusion is not supported for
# DSAttention" (asserts). ms-swift 4.6 passes context_parallel_size and apply_rope_fusion by name.
def dsa_attention(recipe, args, shape: ModelShape, lay, err, warn):
    if shape.model_type not in DSA_MODEL_TYPES:
        return
    if lay.cp > 1:
        err("dsa-attention", f"{shape.name} uses DeepSeek Sparse Attention, which megatron-core 0.16 runs without "
            f"context parallel only (context_parallel_size is {lay.cp})", "context_parallel_size",
            hint="context_parallel_size: 1 (split with TP/PP/EP instead)")
    if is_on(args, "apply_rope_fusion"):
        err("dsa-attention", f"{shape.name} uses DeepSeek Sparse Attention, which megatron-core runs without RoPE "
            "fusion", flag(args, "apply_rope_fusion"), hint="apply_rope_fusion: false (ms-swift's default)")


def _stage_layer_counts(args, shape: ModelShape, lay) -> list[int] | None:
    """The decoder layers each model chunk (a pipeline stage, or one of its virtual stages) builds, as
    megatron-core 0.16.1's get_num_layers_to_build (transformer/transformer_block.py) splits them: an explicit
    pipeline_model_parallel_layout counts the 't' of each of its stages (PipelineParallelLayerLayout.
    get_num_layers_to_build); account_for_embedding/loss_in_pipeline_split count the embedding and the loss as a
    layer each, split the total evenly over PP (then VPP), and take one layer off the first model chunk of the first
    stage and the last model chunk of the last stage. None where another rule owns a split that does not work
    (pipeline-layout, layers-pp)."""
    layout = args.str("pipeline_model_parallel_layout")
    if layout:
        stages = parse_pipeline_layout(layout)
        if not stages or len(stages) % lay.pp:
            return None
        return sorted({stage.count("t") for stage in stages})
    vpp = (args.int("virtual_pipeline_model_parallel_size") or 1) if lay.pp > 1 else 1
    embedding = args.bool("account_for_embedding_in_pipeline_split")
    loss = args.bool("account_for_loss_in_pipeline_split")
    first = args.int("decoder_first_pipeline_num_layers") if lay.pp > 1 else None
    last = args.int("decoder_last_pipeline_num_layers") if lay.pp > 1 else None
    if embedding or loss:
        total = shape.num_layers + embedding + loss
        if first is not None or last is not None or total % lay.pp or (total // lay.pp) % vpp:
            return None
        chunk = total // lay.pp // vpp
        counts = [chunk] * (lay.pp * vpp)  # model chunks in order: [0] first stage's first, [-1] last stage's last
        counts[0] -= embedding
        counts[-1] -= loss
        return None if min(counts) < 0 else sorted(set(counts))
    middle_stages = lay.pp - (first is not None) - (last is not None)
    rest = shape.num_layers - (first or 0) - (last or 0)
    if rest < 0 or (middle_stages and rest % middle_stages) or (not middle_stages and rest):
        return None
    stages = [n for n in (first, last) if n is not None] + ([rest // middle_stages] if middle_stages else [])
    if any(n <= 0 or n % vpp for n in stages):
        return None
    return sorted({n // vpp for n in stages})


# The bridge that builds the model (ms-swift 4.6 MegatronArguments.bridge_backend, swift/megatron/model/utils.py
# get_mcore_model): 'mcore-bridge' (the default) builds it with mcore-bridge's own TransformerBlock and
# MultiTokenPredictionLayer subclasses (mcore_bridge/model/register.py ModelLoader._patch_transformer_block,
# model/modules/transformer_block.py and mtp_layer.py); 'megatron-bridge' builds megatron-core's own classes.
def _megatron_core_blocks(args) -> bool:
    return args.str("bridge_backend") == "megatron-bridge"


# Evidence: megatron-core 0.16.1 transformer/transformer_block.py TransformerBlock._checkpointed_forward: with
# recompute_method 'uniform' it checkpoints chunks custom(layer_idx, layer_idx + recompute_num_layers) while
# layer_idx < num_layers_per_pipeline_rank, and each chunk runs self._get_layer(index) for every index in it -- a
# last chunk that runs past the model chunk's layers fails in the first forward with an IndexError (report:
# NVIDIA/Megatron-LM#1807, "Activation recomputation does not support undividable recompute_num_layers"; fixed on
# Megatron-LM main by PR #3562, after 0.16.1). TransformerConfig.__post_init__ only checks that recompute_num_layers
# is set. 'block' checkpoints single layers and has no such bound. Scope: bridge_backend megatron-bridge only --
# mcore-bridge's TransformerBlock._checkpointed_forward (read in the published wheels 1.5.0, 1.5.2, 1.6.0, 1.6.2,
# 1.6.3 -- ms-swift 4.6's declared floor -- and 1.6.5; ms-swift's own check asks >= 1.5.0) ends each chunk at
# min(layer_idx + recompute_num_layers, num_layers_per_pipeline_rank) (transformer_block.py:205 in 1.6.3 and 1.6.5),
# so ms-swift's default backend runs a shorter last chunk instead. ms-swift 4.6 passes recompute_granularity/method/
# num_layers by name (megatron_args.py; model/utils.py get_mcore_model_config and _get_megatron_bridge_model).
# Megatron-Bridge builds these HF model types as a Mamba hybrid (src/megatron/bridge/models/nemotronh/
# nemotron_h_bridge.py: MambaModel, later HybridModel), whose layer stack is not megatron-core's TransformerBlock:
# megatron-core 0.16.1's ssm/mamba_block.py MambaStack has no _checkpointed_forward, so no uniform chunk to overrun.
MAMBA_STACK_MODEL_TYPES = ("nemotron_h",)


def recompute_uniform_chunks(recipe, args, shape: ModelShape, lay, err, warn):
    if shape.model_type in MAMBA_STACK_MODEL_TYPES:
        return
    if not _megatron_core_blocks(args) or granularity_of(args) != "full" or \
            str(config_value(args, "recompute_method") or "") != "uniform":
        return
    chunk = layer_count(args, "recompute_num_layers")
    if chunk is None:
        return  # unset or not an integer: the recompute rule, recompute_layer_counts and check_args report it
    counts = _stage_layer_counts(args, shape, lay)
    if chunk <= 0 or not counts:
        return
    odd = [n for n in counts if n % chunk]
    if odd:
        # a model chunk with no decoder layer (a layout's 'E' or 'mL' stage) runs no recompute chunk at all
        fits = sorted(set.intersection(*(set(d for d in range(1, n + 1) if n % d == 0) for n in counts if n)))
        virtual = lay.pp > 1 and virtual_stages(args, lay.pp) > 1
        err("recompute-chunks", f"recompute_method uniform with recompute_num_layers {chunk}: a model chunk of "
            f"{odd[0]} decoder layer(s) (per pipeline{' virtual' if virtual else ''} stage) is not a multiple of "
            f"{chunk}, and megatron-core's uniform recompute (bridge_backend megatron-bridge builds megatron-core's "
            "TransformerBlock) indexes past the chunk's last layer (IndexError in the first forward; "
            "NVIDIA/Megatron-LM#1807)", flag(args, "recompute_num_layers"),
            hint=f"recompute_num_layers one of {fits}, or recompute_method: block, or bridge_backend: mcore-bridge "
                 "(ms-swift's default, which ends the last chunk early)")


def mtp_layers(args) -> int:
    # megatron-core reads mtp_num_layers 0 (or None) as no MTP block (get_mtp_num_layers_to_build); a value that
    # is not an integer is check_args' or recompute_layer_counts' to report.
    return max(layer_count(args, "mtp_num_layers") or 0, 0)


# Evidence: megatron-core 0.16.1 transformer/multi_token_prediction.py MultiTokenPredictionLayer.forward runs
# _checkpointed_forward when recompute_granularity == 'full' and training; under recompute_method 'uniform' that
# asserts "recompute_num_layers must be 1 for MTP recompute" (the MTP layer is one checkpoint unit), under 'block'
# it warns "recompute_method == 'block' is not supported for MTP yet. Skipping recompute." and runs the MTP layer
# without checkpointing. mcore-bridge's MultiTokenPredictionLayer (model/modules/mtp_layer.py, what ms-swift's
# default bridge_backend builds; the same wheels alike) keeps both branches word for word, and bridge_backend
# megatron-bridge builds megatron-core's. TransformerConfig.__post_init__ checks neither, so the assert fires in
# the first training forward of the stage that holds the MTP layers. ms-swift 4.6 passes mtp_num_layers and the
# recompute arguments by name (megatron_args.py; model/utils.py get_mcore_model_config). ms-swift's own MTP
# examples (examples/megatron/lora/mtp.sh, examples/models/qwen3_next/mtp.sh, examples/models/qwen3_5/mcore_full.sh)
# run uniform with recompute_num_layers 1.
def recompute_mtp(recipe, args, shape: ModelShape, lay, err, warn):
    mtp = mtp_layers(args)
    if not mtp or granularity_of(args) != "full":
        return
    method = str(config_value(args, "recompute_method") or "")
    if method == "uniform":
        chunk = layer_count(args, "recompute_num_layers")
        if chunk is None or chunk < 1:
            return  # unset, not an integer or below 1: the recompute rules and check_args report it
        if chunk != 1:
            err("recompute-mtp", f"recompute_method uniform with recompute_num_layers {chunk} and mtp_num_layers "
                f"{mtp}: megatron-core recomputes each MTP layer as one unit and asserts recompute_num_layers == 1 "
                "(\"recompute_num_layers must be 1 for MTP recompute\", in the first training forward)",
                flag(args, "recompute_num_layers"),
                hint="recompute_num_layers: 1 (ms-swift's MTP examples), or recompute_method: block (which leaves "
                     "the MTP layers un-recomputed)")
    elif method == "block":
        warn("recompute-mtp", f"recompute_method block with mtp_num_layers {mtp}: megatron-core does not recompute "
             "MTP layers under block (\"Skipping recompute\"), so their whole activations stay alive until the "
             "backward on the stage that holds them, on top of the decoder layers' checkpoints",
             flag(args, "recompute_method"),
             hint="recompute_method: uniform with recompute_num_layers: 1 recomputes the MTP layers too")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__ checks only that recompute_num_layers is set
# (and, for mtp_num_layers, nothing of its type), and ms-swift hands megatron_extra_kwargs to the config as written
# (swift/megatron/model/utils.py get_mcore_model_config: kwargs.update). transformer_block.py
# TransformerBlock._checkpointed_forward, uniform: `while layer_idx < num_layers_per_pipeline_rank: ...;
# layer_idx += recompute_num_layers` -- 0 or a negative count never ends (the first forward hangs), a string or
# a float is a TypeError or an IndexError there; mcore-bridge's TransformerBlock keeps that loop. An argument
# gets the same check from check_args (argument-type / argument-range); this is the megatron_extra_kwargs side.
def recompute_layer_counts(recipe, args, shape: ModelShape, lay, err, warn):
    extra = args.mapping("megatron_extra_kwargs")
    granularity = granularity_of(args)
    if "recompute_num_layers" in extra and extra["recompute_num_layers"] is None and granularity == "full":
        # TransformerConfig.__post_init__: "When using recompute_granularity: full recompute_num_layers must be
        # between 1 and num_layers_per_pipeline_rank" (the null replaces the argument's value)
        err("recompute", "megatron_extra_kwargs sets recompute_num_layers to null under recompute_granularity full: "
            "megatron-core's TransformerConfig refuses a full recompute without it", "megatron_extra_kwargs",
            hint="drop recompute_num_layers from megatron_extra_kwargs (args.recompute_num_layers applies)")
    for name, least in (("recompute_num_layers", 1), ("mtp_num_layers", 0)):
        if name not in extra or extra[name] is None:
            continue
        value = extra[name]
        if name == "recompute_num_layers" and not _recompute_count_read(args, granularity, value, err, warn):
            continue
        if type(value) is not int or value < least:
            what = "a positive integer" if least else "0 or a positive integer"
            err("recompute", f"megatron_extra_kwargs gives {name} {value!r}: the model config takes it as written "
                f"and megatron-core needs {what} there" + (
                    " (uniform recompute steps through the layers by it: 0 or less never ends, a string or a "
                    "fraction fails in the first forward; block compares a layer index with it)"
                    if name == "recompute_num_layers" else ""),
                "megatron_extra_kwargs", hint=f"megatron_extra_kwargs: {{{name}: <{what}>}}, or set args.{name}")


def _recompute_count_read(args, granularity, value, err, warn) -> bool:
    """Whether megatron_extra_kwargs' recompute_num_layers `value` is left to the positive-integer check (uniform
    recompute). Only full recompute reads it (TransformerBlock._checkpointed_forward, mcore-bridge's alike; MTP's
    assert is recompute-mtp's): with no recompute nothing reads it, and under selective TransformerConfig refuses any
    value ("recompute_num_layers must be None"). Under block, `layer_idx < recompute_num_layers + skipped` only
    needs a number: 0 or less checkpoints no layer (said here), a fraction compares fine, a string is a TypeError in
    the first forward."""
    if granularity is None:
        return False
    if granularity == "selective":
        err("recompute", f"megatron_extra_kwargs gives recompute_num_layers {value!r} under recompute_granularity "
            "selective: megatron-core's TransformerConfig refuses any recompute_num_layers there (it counts the "
            "layers of a full recompute)", "megatron_extra_kwargs", hint="drop recompute_num_layers from "
            "megatron_extra_kwargs, or recompute_granularity: full with recompute_method")
        return False
    if granularity == "full" and str(config_value(args, "recompute_method") or "") == "block":
        if isinstance(value, (int, float)):
            if value <= 0:
                warn("recompute", f"megatron_extra_kwargs gives recompute_num_layers {value!r} under recompute_method "
                     "block: megatron-core checkpoints the first recompute_num_layers layers of each stage, so none "
                     "here -- a full recompute that recomputes nothing", "megatron_extra_kwargs",
                     hint="megatron_extra_kwargs: {recompute_num_layers: <layers per stage to recompute>}")
            return False
    return True


MCORE_CONFIG_RULES = [recompute_modules, deepep_dispatcher, moe_capacity_and_balancing, moe_bias_etp, dsa_attention,
                      recompute_uniform_chunks, recompute_mtp, recompute_layer_counts]
MCORE_CONFIG_VERSIONED_RULES = [recompute_modules_fp8_te]
