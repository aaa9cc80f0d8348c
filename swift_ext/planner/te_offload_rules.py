"""Transformer Engine's CPU-offload context, which megatron-core 0.16.1 builds for every TransformerBlock: the
activation/weight offload switches it refuses. A versioned rule (the refusal moved in Transformer Engine 2.10).
Registered with layout.py's versioned rules (engine megatron)."""

from __future__ import annotations

from swift_ext.planner.mcore_config import config_value, is_on

# Transformer Engine 2.10 added the v2 offload path, which returns before the check when offloading is off;
# NVTE_CPU_OFFLOAD_V1=1 selects the old path, which checks first.
TE_V2_OFFLOAD = (2, 10)


# Evidence: megatron-core 0.16.1 transformer/transformer_block.py TransformerBlock.__init__ calls
# extensions/transformer_engine.py get_cpu_offload_context(config.cpu_offloading, ..., config.cpu_offloading_activations,
# config.cpu_offloading_weights, ...) whenever Transformer Engine is importable (always under ms-swift: mcore-bridge
# imports it), whether or not cpu_offloading is on. Transformer Engine's transformer_engine/pytorch/cpu_offload.py
# get_cpu_offload_context raises ValueError "CPU Offloading is enabled while it is not mentioned what to offload
# (weights/activations)" when both switches are off -- first thing, enabled or not, in 2.4 and 2.8 (and in 2.10+'s
# cpu_offload_v1.py under NVTE_CPU_OFFLOAD_V1=1); 2.10 and 2.11's default path checks only when enabled (read from
# the 2.4.0, 2.8.0, 2.10.0 and 2.11.0 wheels). ms-swift 4.6 has no argument for the switches: megatron_extra_kwargs
# alone sets them (get_mcore_model_config). Report: NVIDIA-NeMo/Megatron-Bridge#2954 (from #2684: "Setting
# cpu_offloading_activations: false" gives a configuration error). Scope: engine megatron, both switches off as the
# config gets them; an error with cpu_offloading on, NVTE_CPU_OFFLOAD_V1=1, or a target TE known below 2.10; a warning
# where the TE version is unknown; nothing on TE >= 2.10 without offloading.
def te_offload_nothing(recipe, args, shape, lay, err, warn, versions):
    if config_value(args, "cpu_offloading_activations", True) or config_value(args, "cpu_offloading_weights", False):
        return
    offloading = is_on(args, "cpu_offloading")
    v1 = str(recipe.env.get("NVTE_CPU_OFFLOAD_V1", "")) == "1"
    te = versions.get("transformer-engine")
    what = ("megatron_extra_kwargs turns cpu_offloading_activations off (and cpu_offloading_weights is off): "
            "megatron-core builds Transformer Engine's CPU-offload context for every TransformerBlock, and TE raises "
            "'CPU Offloading is enabled while it is not mentioned what to offload' when the model is built")
    hint = ("drop cpu_offloading_activations from megatron_extra_kwargs (it only matters with cpu_offloading), or "
            "drop cpu_offloading")
    if offloading or v1 or (te is not None and te < TE_V2_OFFLOAD):
        why = ("with cpu_offloading on" if offloading else "NVTE_CPU_OFFLOAD_V1=1: the v1 path" if v1
               else versions.describe("transformer-engine"))
        err("te-offload-nothing", f"{what} ({why})", "megatron_extra_kwargs", hint=hint)
    elif te is None:
        warn("te-offload-nothing", what + " on Transformer Engine below 2.10, even with cpu_offloading off (the "
             "training machine's transformer-engine version is unknown here: declare it with --target-versions "
             "transformer-engine=X)", "megatron_extra_kwargs", hint=hint)


TE_OFFLOAD_VERSIONED_RULES = [te_offload_nothing]
