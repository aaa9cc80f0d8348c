"""FP8 in the memory estimate: what Transformer Engine and megatron-core 0.16.1 keep per parameter of an FP8 layer
(the linear weights of the decoder and MTP layers: megatron/core/fp8_utils.py get_fp8_context wraps the layers,
not the embedding or output layer), and what the optimizer keeps beside them. Used by memory.py's per-stage estimate.

On Hopper an FP8 GEMM takes both operands row-wise ("TN"), so each weight needs a row-wise copy for the forward and
a column-wise (transposed) one for dgrad: transformer_engine/pytorch/tensor/utils.py post_all_gather_processing
creates `_transpose` for a Float8Tensor (delayed, tensorwise) when `is_non_tn_fp8_gemm_supported()` is false, and
`_columnwise_data` for a Float8BlockwiseQTensor (blockwise); the quantizers of MXFP8 weights keep both usages too.
That is 2 bytes per parameter (plus fp32 scale-inverses: one per tensor, per 128 x 128 block or per 32 elements,
under 1/16 of a byte), the same as bf16."""

from __future__ import annotations

from swift_ext.planner.layout import Args
from swift_ext.planner.mcore_config import is_on

FP8_WEIGHT_BYTES = 2  # row-wise + column-wise 1-byte copies of one weight, see the module docstring


def fp8_on(args: Args) -> bool:
    """The model config's fp8, which get_fp8_context tests: ms-swift's fp8_format (MegatronArguments.__post_init__
    sets fp8 = fp8_format), or megatron_extra_kwargs' fp8 over it (mcore_config.py)."""
    return is_on(args, "fp8")


def fp8_params(args: Args) -> bool:
    """FP8 primary weights: the config's fp8_param -- ms-swift's fp8_param_gather (megatron/model/utils.py
    get_mcore_model_config), or megatron_extra_kwargs' fp8_param over it -- and get_fp8_context(is_init=True) builds
    the layers under TE's fp8_model_init."""
    return fp8_on(args) and is_on(args, "fp8_param")


def weight_cache_bytes(args: Args, trains: bool = True) -> int:
    """Bytes per FP8-layer parameter of the FP8 copy TE caches beside bf16 weights (FP8 compute, bf16 primary weights).

    megatron/core/extensions/transformer_engine.py TELinear / TELayerNormColumnParallelLinear / TEGroupedLinear
    .forward pass `is_first_microbatch` (unless disable_parameter_transpose_cache), and TE's _Linear.forward then calls
    get_weight_workspace(cache_name="weight") (`weight{i}` per expert in GroupedLinear): the quantized weight is kept
    in module._fp8_workspaces across micro-batches and iterations, refreshed in place on the first micro-batch. Its
    quantizer keeps the column-wise copy while the input needs a gradient (`columnwise_usage = is_grad_enabled and
    inp.requires_grad`): 2 bytes for a trained model, 1 for a frozen reference run under torch.no_grad. With FP8
    primary weights (fp8_param_gather) the weight is already a QuantizedTensor and no workspace is made."""
    if not fp8_on(args) or fp8_params(args):
        return 0
    return FP8_WEIGHT_BYTES if trains else 1


def _recipe(args: Args) -> str:
    # ms-swift builds OptimizerConfig from every MegatronArguments field of the same name (trainers/base.py
    # get_optimizer_and_scheduler), so fp8_recipe reaches it as set, default 'delayed'. megatron_extra_kwargs reach
    # only the model config: the optimizer's recipe is the argument's.
    return args.str("fp8_recipe") or "delayed"


def precision_aware_master_in_mcore(args: Args) -> bool:
    """Whether the precision-aware optimizer leaves the master weights to megatron-core's distributed optimizer.

    megatron/core/optimizer/optimizer_config.py __post_init__: use_precision_aware_optimizer_no_fp8_or_ds_fp8 =
    precision-aware and (main_params_dtype != fp32 or fp8_recipe in (None, 'delayed') or optimizer_cpu_offload).
    When it is False, optimizer/__init__.py gives TE's FusedAdam no master weights and distrib_optimizer.py
    _build_model_and_main_param_groups clones an fp32 main shard of every 16-bit and FP8 parameter (4 bytes, not the
    2-byte remainder store_param_remainders keeps): this follows fp8_recipe, with or without fp8_param_gather."""
    return (args.bool("use_precision_aware_optimizer") and (args.str("main_params_dtype") or "fp32") == "fp32"
            and _recipe(args) != "delayed" and not args.bool("optimizer_cpu_offload"))


def step_cast_bytes(args: Args) -> int:
    """Bytes per FP8 parameter of this rank's master shard that the optimizer step holds at once to re-quantize
    the FP8 primary weights.

    distrib_optimizer.py _copy_main_params_to_model_params calls fp8_utils.quantize_param_shard for every FP8
    parameter unless use_precision_aware_optimizer_no_fp8_or_ds_fp8 (then the Adam kernel writes them); TE's
    cast_master_weights_to_fp8 (transformer_engine/pytorch/tensor/utils.py) first makes `master_weight.to(
    model_weight.dtype)`, a bf16 copy of each shard, and keeps them all in its per-recipe list until the cast of
    the last one: 2 bytes per element of the shard, alive together, after the last backward freed the activations."""
    if not fp8_params(args):
        return 0
    no_fp8_or_ds_fp8 = args.bool("use_precision_aware_optimizer") and (
        (args.str("main_params_dtype") or "fp32") != "fp32" or _recipe(args) == "delayed"
        or args.bool("optimizer_cpu_offload"))
    return 0 if no_fp8_or_ds_fp8 else 2
