"""Engine megatron: numerics settings that start and then train wrong according to public reports, with no engine
line that refuses them. Said, not refused (warnings scoped to the reports' conditions):

- fp4-param-gather: fp4_param_gather on megatron-core before 0.18, where it only builds the NVFP4 parameters and
  neither the DDP buffers nor the distributed optimizer know about them.

Registered with layout.py's rules (engine megatron)."""

from __future__ import annotations

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


PRECISION_VERSIONED_RULES = [fp4_param_gather]
