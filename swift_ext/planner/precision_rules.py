"""Engine megatron: numerics settings that start and then train wrong according to public reports, with no engine
line that refuses them. Said, not refused (warnings scoped to the reports' conditions):

- fp4-param-gather: fp4_param_gather on megatron-core before 0.18, where it only builds the NVFP4 parameters and
  neither the DDP buffers nor the distributed optimizer know about them.
- mxfp8-hybrid: fp8_recipe mxfp8 with fp8_format hybrid (E5M2 gradients), which NVIDIA's own recipe saw diverge.
- fsdp-precision-aware: Megatron-FSDP with the precision-aware optimizer on megatron-core 0.16, where FusedAdam reads
  a gradient attribute Megatron-FSDP does not write, and no parameter is updated.

Registered with layout.py's rules (engine megatron)."""

from __future__ import annotations

from swift_ext.msswift.rules import fused_adam_owns_fp8_master
from swift_ext.planner.mcore_config import config_value

# megatron-core's fp4_param_gather support in the DDP buffers and the distributed optimizer (Megatron-LM PR #4005 and
# #4358) first shipped in Megatron Core 0.18.0 (NVIDIA/TransformerEngine#2352, closed by the maintainers: "retry with
# TE 2.14+ and Megatron Core 0.18.0+").
MCORE_FP4_PARAM_GATHER = (0, 18)


# Evidence: megatron-core 0.16.1 fp4_utils.py get_fp4_context builds the model under TE's quantized-parameter
# context when config.fp4_param (ms-swift 4.6 swift/megatron/model/utils.py: kwargs['fp4_param'] =
# args.fp4_param_gather), while distributed/distributed_data_parallel_config.py, distributed/param_and_grad_buffer.py
# and optimizer/distrib_optimizer.py have no FP4 path (they special-case Float8 tensors only). Reports:
# NVIDIA/Megatron-LM#2284 (maintainer: "--fp4-param-gather just wraps the model with the fp8_model_init context, but
# didn't add other necessary changes to the optimizers. So it's not working correctly ... disable
# --fp4-param-gather"), NVIDIA/TransformerEngine#2352 (NVFP4 training with it in Megatron-LM; closed as fixed by
# TE 2.14+ with Megatron Core 0.18.0+).
def fp4_param_gather(recipe, args, shape, lay, err, warn, versions):
    if not args.bool("fp4_param_gather") or not args.str("fp4_format"):
        return  # without fp4_format: layout.py's fp8-param refuses it
    mcore = versions.mcore
    if mcore >= MCORE_FP4_PARAM_GATHER:
        return
    warn("fp4-param-gather", f"fp4_param_gather on megatron-core {'.'.join(map(str, mcore))} only builds NVFP4 "
         "parameters: the DDP buffers and the distributed optimizer have no FP4 path before Megatron Core 0.18, and "
         "the maintainers say it does not train correctly (Megatron-LM#2284)", "fp4_param_gather",
         hint="fp4_param_gather false (NVFP4 compute with bf16 parameters), or megatron-core >= 0.18")


# Evidence: megatron-core 0.16.1 fp8_utils.py get_fp8_recipe passes fp8_format through to TE's MXFP8BlockScaling
# (HYBRID: E4M3 forward, E5M2 gradients), which accepts it. Report: NVIDIA-NeMo/Megatron-Bridge PR #638 ("MXFP8 recipe
# must only use E4M3 data format for both fprop and bprop. Using E5M2 for gradients causes the training curve to
# diverge and also affects downstream accuracy on MMLU", a Nemotron5-8B dense pretraining; NeMo PR #14793 changed the
# bf16_with_mxfp8_mixed recipe from hybrid to e4m3).
def mxfp8_hybrid(recipe, args, shape, lay, err, warn):
    if args.str("fp8_recipe") != "mxfp8" or args.str("fp8_format") != "hybrid":
        return
    warn("mxfp8-hybrid", "fp8_recipe mxfp8 with fp8_format hybrid quantizes gradients to E5M2 in 32-element blocks: "
         "NVIDIA's own MXFP8 recipe saw the training curve diverge with it and moved to E4M3 throughout "
         "(Megatron-Bridge PR #638)", "fp8_format", hint="fp8_format: e4m3 with fp8_recipe mxfp8")


# Evidence: Transformer Engine pytorch/module/linear.py _Linear.forward and layernorm_linear.py
# _LayerNormLinear.forward call assert_dim_for_fp8_exec(inputmat, weight) under FP8 autocast, whatever the recipe
# (pytorch/utils.py: "FP8 execution requires the product of all dimensions except the last to be divisible by 8 and the
# last dimension to be divisible by 16"; older releases "2D input matrices with height divisible by 8 and width
# divisible by 16"; public source, not installed here). mcore-bridge builds every decoder linear as a TE linear
# (model/register.py, use_transformer_engine=True), and megatron-core gives each rank its slice: linear_fc2's weight is
# [hidden, ffn / TP] (TERowParallelLinear, input_size_per_partition), linear_proj's [hidden, heads * head_dim / TP],
# an expert's fc2 [hidden, moe_ffn / ETP]; ms-swift pads only the token dimension (get_padding_to: x16 / 32 / 128 for
# FP8). So an FFN whose per-rank width is not a multiple of 16 stops the first forward -- e.g. the dense first layer
# of DeepSeek-V2-Lite and GLM-4.5-Air (intermediate_size 10944) at TP=8: 1368. Report: NVIDIA/TransformerEngine#1422
# (the assertion for a 712-wide layer; the maintainer: pad to a multiple of 16/32 or keep the layer out of FP8).
# Under fp8_recipe mxfp8 the multiple is 32: TE's MXFP8Quantizer::create_tensor (pytorch/csrc/quantizer.cpp) checks
# "flat_first_dim % MXFP8_BLOCK_SIZE == 0 && flat_last_dim % MXFP8_BLOCK_SIZE == 0" -- "MXFP8 requires tensor dims that
# are divisible by 32" -- for the weight and the activation alike (modelscope/ms-swift#9723 hit it on the token
# dimension, which ms-swift 4.6's get_padding_to now pads to TP*32), so e.g. Qwen2.5-72B's 29568-wide FFN at TP=8 (3696
# per rank) runs FP8 but not MXFP8. Scope: engine megatron, fp8_format set, no first/last layers kept in BF16
# (megatron_extra_kwargs first_last_layers_bf16: a dense first layer could be among them); the softmax-attention,
# dense-FFN, shared-expert and routed-expert linears (not the Gated DeltaNet or MLA projections).
def fp8_gemm_shapes(recipe, args, shape, lay, err, warn):
    if not args.str("fp8_format") or config_value(args, "first_last_layers_bf16"):
        return
    tp, etp = lay.tp, lay.etp
    mxfp8 = args.str("fp8_recipe") == "mxfp8"
    block = 32 if mxfp8 else 16
    checks = []  # (what, per-rank width, the size that splits it, its flag)
    if shape.intermediate_size and (not shape.is_moe or shape.num_dense_layers):
        checks.append(("the dense FFN", shape.intermediate_size, tp, "tensor_model_parallel_size"))
    if shape.is_moe and shape.shared_expert_intermediate_size:
        checks.append(("the shared expert", shape.shared_expert_intermediate_size, tp, "tensor_model_parallel_size"))
    if shape.is_moe and shape.moe_intermediate_size:
        checks.append(("each routed expert", shape.moe_intermediate_size, etp, "expert_tensor_parallel_size"))
    if not shape.is_mla and shape.head_dim:
        checks.append(("the attention output projection", shape.num_attention_heads * shape.head_dim, tp,
                       "tensor_model_parallel_size"))
    for what, width, split, name in checks:
        if width % split:
            continue  # heads-tp / the divisibility rules say it
        local = width // split
        if local % block == 0:
            continue
        # the smaller splits a layout can take (divisors of the current one) that fit the block
        smaller = [d for d in range(1, split) if split % d == 0 and width % d == 0 and (width // d) % block == 0]
        label = "ETP" if name.startswith("expert") else "TP"
        if mxfp8 and local % 16 == 0:
            # plain FP8 takes this width: the 32-element MXFP8 block is the culprit unless a smaller split fits it
            err("fp8-shape", f"MXFP8 (fp8_recipe mxfp8) on {shape.name}: {what} is {width} wide, {local} per rank at "
                f"{label}={split}, not a multiple of 32 -- Transformer Engine's MXFP8 quantizer asserts 'MXFP8 requires "
                "tensor dims that are divisible by 32' at the first forward", name if smaller else "fp8_recipe",
                hint=f"{name}: {max(smaller)}, or fp8_recipe tensorwise" if smaller else "fp8_recipe: tensorwise "
                "(per-tensor scaling: TE asks only the 16-wide FP8 GEMM rule, which this width meets)")
            return
        culprit = name if smaller else "fp8_format"
        err("fp8-shape", f"FP8 (fp8_format {args.str('fp8_format')}) on {shape.name}: {what} is {width} wide, "
            f"{local} per rank at {label}={split}, not a multiple of {block} -- Transformer Engine's FP8 GEMM asserts "
            "'FP8 execution requires ... the last dimension to be divisible by 16' at the first forward", culprit,
            hint=f"{name}: {max(smaller)}" if smaller else "drop fp8_format for this model")
        return


PRECISION_RULES = [mxfp8_hybrid, fp8_gemm_shapes]


# The megatron-core line read below; Megatron-LM PR #4133 (2026-04) and #4426/#4427 reworked the decoupled gradient
# with Megatron-FSDP afterwards, and which release first carries them is not pinned down here: later versions are not
# judged.
MCORE_FSDP_GRAD_READ = (0, 16)


# Evidence: megatron-core 0.16.1 optimizer/__init__.py _get_megatron_optimizer_based_on_param_groups builds TE's
# FusedAdam with use_decoupled_grad=True whenever OptimizerConfig.use_precision_aware_optimizer_no_fp8_or_ds_fp8
# (msswift/rules.py fused_adam_owns_fp8_master: bf16 runs included, ms-swift's fp8_recipe defaulting to delayed), and
# FusedAdam.step (transformer_engine/pytorch/optimizers/fused_adam.py, public source) reads p.decoupled_grad and
# `continue`s past a parameter without one. Megatron-FSDP's buffer (distributed/fsdp/src/megatron_fsdp/
# param_and_grad_buffer.py update_main_grads) writes decoupled_grad only under getattr(self,
# "use_precision_aware_optimizer", False), an attribute nothing in megatron-core 0.16.1, ms-swift 4.6 or mcore-bridge
# 1.6.3 sets: it writes .grad, and no parameter is ever updated, without an error. Read from the source, not run.
# Reports: NVIDIA-NeMo/Megatron-Bridge PR #3510 (Megatron-FSDP + FusedAdam "will not converge (silently without hard
# errors)" unless use_decoupled_grad matches), NVIDIA/Megatron-LM PRs #4426/#4427.
def fsdp_precision_aware(recipe, args, shape, lay, err, warn, versions):
    if not args.bool("use_megatron_fsdp") or not args.bool("use_precision_aware_optimizer"):
        return
    if versions.mcore[:2] != MCORE_FSDP_GRAD_READ or not fused_adam_owns_fp8_master(args):
        return  # another megatron-core; or FP8 current/block scaling with fp32 main params (FusedAdam reads .grad)
    warn("fsdp-precision-aware", "use_precision_aware_optimizer with use_megatron_fsdp on megatron-core "
         f"{'.'.join(map(str, versions.mcore))}: TE's FusedAdam is built to read decoupled_grad, which Megatron-FSDP "
         "does not write (it writes .grad), so FusedAdam skips every parameter and the weights never change",
         "use_precision_aware_optimizer",
         hint="use_precision_aware_optimizer: false with Megatron-FSDP (or the distributed optimizer without it)")


PRECISION_VERSIONED_RULES = [fp4_param_gather, fsdp_precision_aware]
