"""megatron-core 0.16.1's own config refusals a recipe reaches through ms-swift 4.6's model config (engine megatron).

ms-swift builds the model config in swift/megatron/model/utils.py get_mcore_model_config: mcore-bridge's
hf_to_mcore_config gives the model's own values (mcore-bridge config/parser.py), then every MegatronArguments
field that is also a config field and is set (not None, not an empty list) is copied over, then
megatron_extra_kwargs is `kwargs.update`d on top, and mcore-bridge's ModelConfig (a TransformerConfig) runs
TransformerConfig.__post_init__ (transformer/transformer_config.py) on every rank, after the checkpoint is found
and the job has started. Each rule below mirrors one raise there, scoped to exactly its condition, on the values
as they arrive (ms-swift's defaults, its __post_init__ rewrites, the model's values, the extra kwargs).
Registered with layout.py's rules.
"""

from __future__ import annotations

from typing import Any

from swift_ext.planner.model_shape import ModelShape
from swift_ext.planner.pipeline_schedule import virtual_stages
from swift_ext.planner.pipeline_stages import parse_pipeline_layout
from swift_ext.spec.support import version_gaps

# TransformerConfig.__post_init__, selective block: the names recompute_modules may hold.
RECOMPUTE_MODULES = ("core_attn", "moe_act", "layernorm", "mla_up_proj", "mlp", "moe", "shared_experts")
# TransformerConfig.__post_init__: the load balancing types moe_expert_capacity_factor works with.
CAPACITY_BALANCING = ("aux_loss", "seq_aux_loss", "global_aux_loss", "none")


def config_value(args, name: str) -> Any:
    """The value the config field `name` gets from the recipe: megatron_extra_kwargs wins (ms-swift updates the
    kwargs with it last), else the argument of the same name (ms-swift's default when unset)."""
    extra = args.mapping("megatron_extra_kwargs")
    return extra[name] if name in extra else args.raw(name)


def flag(args, name: str) -> str:
    """The recipe key a finding about config field `name` points at: where its value came from."""
    return "megatron_extra_kwargs" if name in args.mapping("megatron_extra_kwargs") else name


def _as_written(args, name: str) -> bool:
    """The config gets `name` from megatron_extra_kwargs exactly as written: none of ms-swift's argument parsing
    (a one-item list stays a list, a string stays a string)."""
    return flag(args, name) == "megatron_extra_kwargs"


def _true(args, name: str) -> bool:
    value = config_value(args, name)
    return value is True or str(value).lower() in ("true", "1", "yes")


def _granularity(args) -> str | None:
    # MegatronArguments.__post_init__ turns 'none' into None.
    value = config_value(args, "recompute_granularity")
    return None if value in (None, "none", "None") else str(value)


def layer_count(args, name: str) -> int | None:
    """The integer config field `name` (recompute_num_layers, mtp_num_layers) as megatron-core gets it, or None
    when unset or not an integer. An argument reaches the config parsed by ms-swift's argparse (check_args
    refuses what does not parse); megatron_extra_kwargs reaches it as written, so there only a JSON integer is
    one -- not "2", 2.5, true, NaN or inf, which megatron-core would index or loop with
    (recompute_layer_counts reports those)."""
    value = config_value(args, name)
    if not _as_written(args, name):
        return args.int(name)
    return value if type(value) is int else None


def _recompute_modules(args) -> list[str]:
    # get_mcore_model_config skips an empty list, so TransformerConfig's own default (['core_attn']) applies.
    value = config_value(args, "recompute_modules")
    if isinstance(value, str) and _as_written(args, "recompute_modules"):
        return list(value)  # megatron-core iterates a string: set("moe_act") is its letters
    if value and not isinstance(value, (list, tuple)):  # a string argument (one item), or a number / mapping
        value = [value]
    return [str(m) for m in value] if value else ["core_attn"]


def selective_recompute_modules(args) -> frozenset[str]:
    """The modules megatron-core recomputes under selective granularity (empty under full or none): what the
    memory estimate keeps only the inputs of."""
    return frozenset(_recompute_modules(args)) if _granularity(args) == "selective" else frozenset()


def _fp8_recipe(args) -> str | None:
    # ms-swift sets fp8 = fp8_format (MegatronArguments.__post_init__); fp8_recipe defaults to 'delayed'.
    if not (config_value(args, "fp8") or args.str("fp8_format")):
        return None
    return str(config_value(args, "fp8_recipe") or "delayed")


def _dispatcher(args) -> str:
    return str(config_value(args, "moe_token_dispatcher_type") or "alltoall")


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
    granularity = _granularity(args)
    if _true(args, "moe_layer_recompute") and granularity == "full":
        err("recompute-modules", "moe_layer_recompute with recompute_granularity full: megatron-core refuses the pair "
            "(moe_layer_recompute asks for selective recompute of the MoE layer)", flag(args, "moe_layer_recompute"),
            hint="drop moe_layer_recompute, or use recompute_granularity: selective with recompute_modules: [moe]")
    written = config_value(args, "recompute_modules")
    if (isinstance(written, str) and written and _as_written(args, "recompute_modules")
            and (granularity == "selective" or _true(args, "moe_layer_recompute"))):
        # TransformerConfig.__post_init__: set(recompute_modules) is the string's letters ("Invalid choices"), and
        # moe_layer_recompute's recompute_modules.append fails on a str.
        err("recompute-modules", f"megatron_extra_kwargs gives recompute_modules as a string ({written!r}): "
            "megatron-core reads it letter by letter and refuses the letters", "megatron_extra_kwargs",
            hint=f"a list: megatron_extra_kwargs: {{recompute_modules: [{written}]}}, or set args.recompute_modules")
        return
    if granularity != "selective":
        return
    modules = _recompute_modules(args)
    invalid = sorted(set(modules) - set(RECOMPUTE_MODULES))
    if invalid:
        joined = [m for m in invalid if any(c in m for c in " ,")]  # `recompute_modules: "core_attn moe"` is one item
        err("recompute-modules", f"recompute_modules {invalid} are not modules megatron-core recomputes",
            flag(args, "recompute_modules"), hint=f"choose from {', '.join(RECOMPUTE_MODULES)}"
            + (f"; write several as a YAML list, e.g. [{', '.join(joined[0].replace(',', ' ').split())}]"
               if joined else ""))
    if "moe_act" in modules and not _true(args, "moe_grouped_gemm"):
        err("recompute-modules", "recompute_modules moe_act needs moe_grouped_gemm (megatron-core recomputes the "
            "expert activation only in the grouped GEMM experts)", flag(args, "recompute_modules"),
            hint="set moe_grouped_gemm: true (ms-swift's default), or drop moe_act from recompute_modules")
    # the shape-free checks first: without a config.json the shape ones stop the rule
    fp8_recipe = _fp8_recipe(args)
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
            and _true(args, "moe_shared_expert_overlap")):
        err("recompute-modules", f"recompute_modules shared_experts with moe_shared_expert_overlap: megatron-core "
            f"cannot recompute the shared experts ({shape.name} has them) while it overlaps them",
            flag(args, "recompute_modules"),
            hint="drop shared_experts from recompute_modules, or drop moe_shared_expert_overlap")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__, the same block: with FP8 current or block scaling,
# "moe_act and layernorm recompute for fp8 needs transformer-engine>=2.6.0dev0" (spec/support.py row
# fp8-recompute-act-norm). A versioned rule: it judges against the versions the plan targets.
def recompute_modules_fp8_te(recipe, args, shape, lay, err, warn, versions):
    fp8_recipe = _fp8_recipe(args)
    heavy = [m for m in ("moe_act", "layernorm") if m in _recompute_modules(args)]
    if _granularity(args) != "selective" or not heavy or fp8_recipe in (None, "delayed"):
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
    dispatcher = _dispatcher(args)
    backend = str(config_value(args, "moe_flex_dispatcher_backend") or "deepep")
    deepep = _true(args, "moe_enable_deepep")
    if deepep and dispatcher != "flex":
        err("moe-deepep", f"moe_enable_deepep needs moe_token_dispatcher_type flex (it is {dispatcher})",
            flag(args, "moe_enable_deepep"), hint="set moe_token_dispatcher_type: flex, or drop moe_enable_deepep")
    elif deepep and backend == "hybridep":
        err("moe-deepep", "moe_enable_deepep with moe_flex_dispatcher_backend hybridep (megatron_extra_kwargs): the "
            "flex dispatcher takes one backend", flag(args, "moe_enable_deepep"), hint="drop one of the two")
    if dispatcher == "flex" and _true(args, "moe_pad_expert_input_to_capacity") and (deepep or backend == "deepep"):
        err("moe-deepep", "moe_pad_expert_input_to_capacity with the flex token dispatcher's DeepEP backend (its "
            "default): megatron-core refuses padding expert inputs there",
            flag(args, "moe_pad_expert_input_to_capacity"),
            hint="drop moe_pad_expert_input_to_capacity, or use moe_token_dispatcher_type: alltoall")


def _balancing_types(args) -> list[str] | None:
    """moe_router_load_balancing_type as the config gets it (ms-swift turns a one-item list argument into its item;
    megatron_extra_kwargs' list stays a list); None when the recipe leaves it to the model (mcore-bridge: aux_loss,
    or seq_aux_loss for DeepSeek-style models)."""
    value = config_value(args, "moe_router_load_balancing_type")
    if value is None or value == []:
        return None
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _is_list(args, name: str, value) -> bool:
    """The config field `name` reaches megatron-core as a list: an argument list of two or more items (ms-swift
    unwraps one item), or any list megatron_extra_kwargs gives."""
    return isinstance(value, list) and (len(value) != 1 or _as_written(args, name))


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
    types = _balancing_types(args)
    if types is not None and _is_list(args, "moe_router_load_balancing_type",
                                      config_value(args, "moe_router_load_balancing_type")):
        coeff = config_value(args, "moe_aux_loss_coeff")
        coeffs = coeff if _is_list(args, "moe_aux_loss_coeff", coeff) else None
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
    if _true(args, "moe_pad_expert_input_to_capacity") and factor is None:
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
    if _true(args, "apply_rope_fusion"):
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
    if not _megatron_core_blocks(args) or _granularity(args) != "full" or \
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


def _mtp_layers(args) -> int:
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
    mtp = _mtp_layers(args)
    if not mtp or _granularity(args) != "full":
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
    if "recompute_num_layers" in extra and extra["recompute_num_layers"] is None and _granularity(args) == "full":
        # TransformerConfig.__post_init__: "When using recompute_granularity: full recompute_num_layers must be
        # between 1 and num_layers_per_pipeline_rank" (the null replaces the argument's value)
        err("recompute", "megatron_extra_kwargs sets recompute_num_layers to null under recompute_granularity full: "
            "megatron-core's TransformerConfig refuses a full recompute without it", "megatron_extra_kwargs",
            hint="drop recompute_num_layers from megatron_extra_kwargs (args.recompute_num_layers applies)")
    for name, least in (("recompute_num_layers", 1), ("mtp_num_layers", 0)):
        if name not in extra or extra[name] is None:
            continue
        value = extra[name]
        if type(value) is not int or value < least:
            what = "a positive integer" if least else "0 or a positive integer"
            err("recompute", f"megatron_extra_kwargs gives {name} {value!r}: the model config takes it as written "
                f"and megatron-core needs {what} there" + (
                    " (uniform recompute steps through the layers by it: 0 or less never ends, a string or a "
                    "fraction fails in the first forward)" if name == "recompute_num_layers" else ""),
                "megatron_extra_kwargs", hint=f"megatron_extra_kwargs: {{{name}: <{what}>}}, or set args.{name}")


def _set(args, name: str) -> Any:
    """A config field only megatron_extra_kwargs can set (ms-swift 4.6 has no argument of that name): its value
    there, else None (TransformerConfig's default applies)."""
    return args.mapping("megatron_extra_kwargs").get(name)


def _on(args, name: str) -> bool:
    return _set(args, name) is True


def _virtual_size(args, lay) -> int | None:
    """virtual_pipeline_model_parallel_size as the config gets it: a layout's stages / PP (None for one), the
    argument, or megatron_extra_kwargs over both (get_mcore_model_config updates the kwargs with them last)."""
    extra = args.mapping("megatron_extra_kwargs")
    if "virtual_pipeline_model_parallel_size" in extra:
        return extra["virtual_pipeline_model_parallel_size"]
    size = virtual_stages(args, lay.pp)
    return size if size > 1 or args.int("virtual_pipeline_model_parallel_size") else None


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__, `if self.overlap_moe_expert_parallel_comm:`
# (asserts: virtual_pipeline_model_parallel_size set when PP > 1; expert_model_parallel_size > 1; the alltoall or
# flex dispatcher; recompute_granularity not full, recompute_method None, recompute_num_layers None; no
# moe_shared_expert_overlap; mtp_num_layers None or 1, and PP > 1 with one MTP layer), `if
# self.delay_wgrad_compute:` (overlap_moe_expert_parallel_comm on; not moe_use_legacy_grouped_gemm) and `if
# self.ep_overlap_early_attn_memory_release:` (overlap_moe_expert_parallel_comm on). ms-swift 4.6 has no argument
# for these three switches: they reach the config only through megatron_extra_kwargs (model/utils.py
# get_mcore_model_config), next to ms-swift's recompute_method / recompute_num_layers, which it passes whenever set.
def moe_a2a_overlap(recipe, args, shape: ModelShape, lay, err, warn):
    overlap = _on(args, "overlap_moe_expert_parallel_comm")
    for name in ("delay_wgrad_compute", "ep_overlap_early_attn_memory_release"):
        if _on(args, name) and not overlap:
            err("moe-a2a-overlap", f"megatron_extra_kwargs sets {name} without overlap_moe_expert_parallel_comm: "
                "megatron-core asserts the EP all-to-all overlap is on", "megatron_extra_kwargs",
                hint=f"add overlap_moe_expert_parallel_comm: true to megatron_extra_kwargs, or drop {name}")
    if _on(args, "delay_wgrad_compute") and _true(args, "moe_use_legacy_grouped_gemm"):
        err("moe-a2a-overlap", "delay_wgrad_compute with moe_use_legacy_grouped_gemm: megatron-core delays the "
            "weight gradients only in the TE grouped GEMM", flag(args, "moe_use_legacy_grouped_gemm"),
            hint="drop moe_use_legacy_grouped_gemm")
    if not overlap:
        return
    problems = []
    if lay.pp > 1 and _virtual_size(args, lay) is None:
        problems.append(("pipeline_model_parallel_size", f"pipeline_model_parallel_size {lay.pp} without a virtual "
                         "pipeline size", "virtual_pipeline_model_parallel_size (or a layout with several stages "
                         "per rank)"))
    if lay.ep <= 1:
        problems.append(("expert_model_parallel_size", f"expert_model_parallel_size {lay.ep} (it overlaps the expert "
                         "parallel all-to-all)", "expert_model_parallel_size > 1"))
    if _dispatcher(args) not in ("alltoall", "flex"):
        problems.append(("moe_token_dispatcher_type", f"moe_token_dispatcher_type {_dispatcher(args)}",
                         "moe_token_dispatcher_type: alltoall or flex"))
    if _granularity(args) == "full":
        problems.append(("recompute_granularity", "recompute_granularity full", "recompute_granularity: selective "
                         "or none"))
    if config_value(args, "recompute_method") is not None:
        problems.append(("recompute_method", f"recompute_method {config_value(args, 'recompute_method')}",
                         "recompute_method: null"))
    if config_value(args, "recompute_num_layers") is not None:
        problems.append(("recompute_num_layers", f"recompute_num_layers {config_value(args, 'recompute_num_layers')}",
                         "recompute_num_layers: null"))
    if _true(args, "moe_shared_expert_overlap"):
        problems.append(("moe_shared_expert_overlap", "moe_shared_expert_overlap", "moe_shared_expert_overlap: false"))
    mtp = config_value(args, "mtp_num_layers")
    if mtp is not None and mtp != 1:
        problems.append(("mtp_num_layers", f"mtp_num_layers {mtp} (it takes at most one MTP layer)",
                         "mtp_num_layers: 1, or none"))
    elif mtp == 1 and lay.pp <= 1:
        problems.append(("pipeline_model_parallel_size", "one MTP layer without pipeline parallel",
                         "pipeline_model_parallel_size > 1 (with a virtual size), or no MTP layer"))
    for name, what, fix in problems:
        err("moe-a2a-overlap", f"overlap_moe_expert_parallel_comm (megatron_extra_kwargs) with {what}: megatron-core "
            "refuses the EP all-to-all overlap there", flag(args, name),
            hint=f"{fix}, or drop overlap_moe_expert_parallel_comm from megatron_extra_kwargs")


# TransformerConfig.__post_init__: the modules fine_grained_activation_offloading may offload.
OFFLOAD_MODULES = ("core_attn", "attn_proj", "expert_fc1", "moe_act", "attn_norm", "mlp_norm", "qkv_linear")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__: "CPU offloading can be done only for layers less
# than {num_layers}" (cpu_offloading_num_layers outside [0, num_layers)), "Currently there is no support for
# Pipeline parallelism with CPU offloading", "CPU offloading does not work when activation recomputation is enabled"
# (any recompute_granularity -- ms-swift 4.6's default is selective), and the fine_grained_activation_offloading
# block (asserts: not with cpu_offloading; offload_modules given and each one of its allowed modules; ValueError
# "attn_proj cannot be set to offload_modules alone without core_attn"). ms-swift 4.6 has no argument for these
# fields (its own optimizer_cpu_offload is the optimizer's): only megatron_extra_kwargs reaches them.
def activation_offloading(recipe, args, shape: ModelShape, lay, err, warn):
    if _on(args, "cpu_offloading"):
        layers = _set(args, "cpu_offloading_num_layers")
        layers = 0 if layers is None else layers
        if type(layers) is int and (layers < 0 or layers >= shape.num_layers):
            err("activation-offloading", f"cpu_offloading_num_layers {layers}: megatron-core offloads at most "
                f"{shape.num_layers - 1} of {shape.name}'s {shape.num_layers} layers", "megatron_extra_kwargs",
                hint=f"cpu_offloading_num_layers between 0 and {shape.num_layers - 1}")
        if lay.pp > 1:
            err("activation-offloading", f"cpu_offloading with pipeline_model_parallel_size {lay.pp}: megatron-core "
                "offloads activations without pipeline parallel only", "megatron_extra_kwargs",
                hint="pipeline_model_parallel_size: 1, or drop cpu_offloading")
        granularity = _granularity(args)
        if granularity is not None:
            default = "" if args.has("recompute_granularity") or flag(
                args, "recompute_granularity") != "recompute_granularity" else " (ms-swift's default)"
            err("activation-offloading", f"cpu_offloading with recompute_granularity {granularity}{default}: "
                "megatron-core offloads activations only without recompute", flag(args, "recompute_granularity"),
                hint="recompute_granularity: none, or drop cpu_offloading")
    if not _on(args, "fine_grained_activation_offloading"):
        return
    if _on(args, "cpu_offloading"):
        err("activation-offloading", "fine_grained_activation_offloading with cpu_offloading: megatron-core takes one "
            "of the two", "megatron_extra_kwargs", hint="drop one of them")
    modules = _set(args, "offload_modules")
    if not modules:
        err("activation-offloading", "fine_grained_activation_offloading without offload_modules: megatron-core "
            "asserts the modules to offload are given", "megatron_extra_kwargs",
            hint=f"megatron_extra_kwargs: {{offload_modules: [core_attn, ...]}} (from {', '.join(OFFLOAD_MODULES)})")
        return
    modules = [modules] if isinstance(modules, str) else list(modules) if isinstance(modules, list) else []
    invalid = sorted({str(m) for m in modules} - set(OFFLOAD_MODULES))
    if invalid:
        err("activation-offloading", f"offload_modules {invalid} are not modules megatron-core offloads",
            "megatron_extra_kwargs", hint=f"choose from {', '.join(OFFLOAD_MODULES)}")
    if "attn_proj" in modules and "core_attn" not in modules:
        err("activation-offloading", "offload_modules attn_proj without core_attn: attn_proj's input is core_attn's "
            "output, which core_attn's backward needs", "megatron_extra_kwargs", hint="add core_attn to offload_modules")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__, `if self.fp8:` -- "Delayed scaling does not
# support first / last layer in BF16." and num_layers_at_start_in_bf16 / num_layers_at_end_in_bf16 (default 1)
# "must be between 0 and number of layers per pipeline stage" (num_layers // pipeline_model_parallel_size).
# first_last_layers_bf16 and the two counts reach the config only through megatron_extra_kwargs; fp8 is ms-swift's
# fp8_format, fp8_recipe its argument (default delayed).
def fp8_bf16_layers(recipe, args, shape: ModelShape, lay, err, warn):
    recipe_name = _fp8_recipe(args)
    if recipe_name is None or not _on(args, "first_last_layers_bf16"):
        return
    if recipe_name == "delayed":
        err("fp8-bf16-layers", "first_last_layers_bf16 (megatron_extra_kwargs) with FP8 delayed scaling: "
            "megatron-core keeps the first / last layers in BF16 only with current or block scaling",
            flag(args, "fp8_recipe"), hint="fp8_recipe: tensorwise or blockwise, or drop first_last_layers_bf16")
    most = shape.num_layers // lay.pp
    for name in ("num_layers_at_start_in_bf16", "num_layers_at_end_in_bf16"):
        value = _set(args, name)
        value = 1 if value is None else value
        if type(value) is int and not 0 <= value <= most:
            err("fp8-bf16-layers", f"{name} {value}: megatron-core keeps between 0 and {most} layers (the layers per "
                "pipeline stage) in BF16", "megatron_extra_kwargs", hint=f"{name} between 0 and {most}")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__: "fp8/fp4 must be specified when
# moe_router_padding_for_quantization is True.", "allgather and alltoall_seq dispatcher does not support
# moe_router_padding_for_quantization.", "Please use --moe-router-pre-softmax when topk is 1." (moe_router_topk 1 with
# a softmax router, no pre-softmax, not sinkhorn), and the group-limited routing block
# ("moe_router_topk_limited_devices is deprecated", "num_moe_experts (..) should be divisible by
# moe_router_num_groups", "moe_router_group_topk (..) should be smaller than moe_router_num_groups"). The router's
# top-k, score function and pre-softmax come from the model (mcore-bridge hf_to_mcore_config) unless
# megatron_extra_kwargs overrides them; the padding and group fields only from megatron_extra_kwargs.
def moe_router_config(recipe, args, shape: ModelShape, lay, err, warn):
    if not shape.is_moe:
        return
    if _on(args, "moe_router_padding_for_quantization"):
        if _fp8_recipe(args) is None and not (config_value(args, "fp4") or args.str("fp4_format")):
            err("moe-router", "moe_router_padding_for_quantization (megatron_extra_kwargs) without FP8 or FP4: "
                "megatron-core pads the routing map for quantized GEMMs only", "megatron_extra_kwargs",
                hint="set fp8_format (or fp4_format), or drop moe_router_padding_for_quantization")
        if _dispatcher(args) in ("allgather", "alltoall_seq"):
            err("moe-router", f"moe_router_padding_for_quantization with moe_token_dispatcher_type {_dispatcher(args)}",
                flag(args, "moe_token_dispatcher_type"), hint="moe_token_dispatcher_type: alltoall")
    extra = args.mapping("megatron_extra_kwargs")
    topk = extra.get("moe_router_topk", shape.num_experts_per_tok)
    score = extra.get("moe_router_score_function", shape.router_score_function)
    pre = extra.get("moe_router_pre_softmax", shape.router_pre_softmax)
    if topk == 1 and score == "softmax" and not pre and _balancing_types(args) != ["sinkhorn"] and (
            "moe_router_topk" in extra or "moe_router_score_function" in extra or "moe_router_pre_softmax" in extra):
        err("moe-router", "moe_router_topk 1 with a softmax router and no pre-softmax: megatron-core refuses it (a "
            "softmax over one selected expert has no gradient)", "megatron_extra_kwargs",
            hint="megatron_extra_kwargs: {moe_router_pre_softmax: true}, or a top-k above 1")
    group_topk = extra.get("moe_router_group_topk")
    if not group_topk:
        return
    if extra.get("moe_router_topk_limited_devices"):
        err("moe-router", "moe_router_topk_limited_devices with moe_router_group_topk: megatron-core replaced the "
            "first by the second", "megatron_extra_kwargs", hint="drop moe_router_topk_limited_devices")
    groups = extra.get("moe_router_num_groups")
    if type(groups) is int and groups > 0 and type(group_topk) is int:
        if shape.num_experts % groups:
            err("moe-router", f"moe_router_num_groups {groups} does not divide {shape.name}'s {shape.num_experts} "
                "experts", "megatron_extra_kwargs", hint="a number of groups that divides the experts")
        if group_topk > groups:
            err("moe-router", f"moe_router_group_topk {group_topk} is above moe_router_num_groups {groups}",
                "megatron_extra_kwargs", hint="moe_router_group_topk <= moe_router_num_groups")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__, one refusal per pair of fields, each reached through
# megatron_extra_kwargs (ms-swift 4.6 has no argument for the first field of any pair; bias_activation_fusion is
# its argument), the second from the recipe or the model (mcore-bridge hf_to_mcore_config: attention_output_gate for
# Qwen3.5/3.6 and Qwen3-Next, multi_latent_attention for DeepSeek-style models, no experts for a dense model).
def extra_kwargs_pairs(recipe, args, shape: ModelShape, lay, err, warn):
    extra = args.mapping("megatron_extra_kwargs")
    gate = extra.get("attention_output_gate", shape.gated_attention)
    mla = bool(shape.kv_lora_rank) or extra.get("multi_latent_attention") is True
    pairs = [
        (_on(args, "fused_single_qkv_rope") and gate, "fused_single_qkv_rope with gated attention "
         f"({shape.name}'s attention_output_gate)", "drop fused_single_qkv_rope"),
        (mla and _on(args, "rotary_interleaved"), "rotary_interleaved with multi-latent attention",
         "drop rotary_interleaved"),
        (mla and extra.get("attention_output_gate") is True, "attention_output_gate with multi-latent attention "
         "(NotImplementedError)", "drop attention_output_gate"),
        (_on(args, "enable_cuda_graph") and _on(args, "external_cuda_graph"),
         "enable_cuda_graph with external_cuda_graph", "keep one of them"),
        (_on(args, "inference_fuse_tp_communication") and _set(args, "transformer_impl") != "inference_optimized",
         "inference_fuse_tp_communication without transformer_impl inference_optimized",
         "drop inference_fuse_tp_communication (an inference setting)"),
        (not shape.is_moe and _set(args, "moe_ffn_hidden_size") is not None,
         f"moe_ffn_hidden_size on {shape.name}, which has no experts", "drop moe_ffn_hidden_size"),
        (not shape.is_moe and type(_set(args, "expert_model_parallel_size")) is int
         and _set(args, "expert_model_parallel_size") > 1,
         f"expert_model_parallel_size above 1 on {shape.name}, which has no experts (ms-swift drops its argument for a "
         "dense model; megatron_extra_kwargs puts it back)", "drop expert_model_parallel_size from megatron_extra_kwargs"),
        (_true(args, "bias_activation_fusion") and _on(args, "use_te_activation_func"),
         "bias_activation_fusion with use_te_activation_func", "drop one of them"),
    ]
    for refused, what, hint in pairs:
        if refused:
            err("mcore-config", f"megatron_extra_kwargs: {what}: megatron-core's TransformerConfig refuses the pair",
                "megatron_extra_kwargs", hint=hint)


MCORE_CONFIG_RULES = [recompute_modules, deepep_dispatcher, moe_capacity_and_balancing, moe_bias_etp, dsa_attention,
                      recompute_uniform_chunks, recompute_mtp, recompute_layer_counts, moe_a2a_overlap,
                      activation_offloading, fp8_bf16_layers, moe_router_config, extra_kwargs_pairs]
MCORE_CONFIG_VERSIONED_RULES = [recompute_modules_fp8_te]
