"""Attention-backend rules of ms-swift's Megatron model build (engine megatron): checks ms-swift 4.6 makes in
swift/megatron/model/utils.py get_mcore_model_config once the model config is built on every rank, after the
checkpoint is found and the job has started. Registered with layout.py's rules."""

from __future__ import annotations

from swift_ext.planner.mcore_config import config_value
from swift_ext.planner.model_shape import ModelShape


def attention_backend(args) -> str:
    # ms-swift 4.6 MegatronArguments.attention_backend defaults to 'flash'; _init_attention_backend turns
    # 'flash_2'/'flash_3'/'flash_4' into 'flash' (pinning the flash-attn version).
    value = args.str("attention_backend") or "flash"
    return "flash" if value.startswith("flash_") else value


# Evidence: ms-swift 4.6 swift/megatron/model/utils.py _check_attention_backend: 'Attention backend "flash" does
# not support learnable softmax_type.'; mcore-bridge config/parser.py hf_to_mcore_config sets
# softmax_type='learnable' for gpt_oss language models (1.6.3 parser.py:239, 1.6.5 :320) (the attention sinks). ms-swift's own gpt-oss example
# (examples/models/gpt_oss/mcore.sh) passes --attention_backend unfused and --padding_free false. Report:
# verl-project/verl#5224 (GPT-OSS-20B on Megatron with the flash backend: no attention backend available).
def learnable_softmax_backend(recipe, args, shape: ModelShape, lay, err, warn):
    if shape.softmax_type != "learnable" or attention_backend(args) != "flash":
        return
    stated = "" if args.has("attention_backend") else " (ms-swift's default)"
    err("attention-backend", f"{shape.name} uses attention sinks (learnable softmax) and attention_backend is "
        f"flash{stated}: ms-swift refuses the pair when it builds the model", "attention_backend",
        hint="attention_backend: unfused with padding_free: false (ms-swift's gpt-oss example), or fused where "
        "cuDNN >= 9.18 gives TransformerEngine's fused attention the sinks (verl-project/verl#5224)")


# Evidence: Transformer Engine's backend selection (transformer_engine/pytorch/attention/dot_product_attention/
# utils.py get_attention_backend, "Filter: Softmax type"): for softmax_type != vanilla it disables flash always,
# unfused under context parallel, and fused under context parallel unless cp_comm_type == "a2a" ("Disabling
# FusedAttention for context parallelism with softmax_type = %s and cp_comm_type = %s"); TE's own CP tests skip
# non-vanilla softmax for every cp_comm_type but a2a (tests/pytorch/attention/test_attention_with_cp.py). Reports:
# NVIDIA-NeMo/Megatron-Bridge#2298 (gpt-oss-20b, CP > 1 with the default cp_comm_type: "No dot product attention
# backend is available") and NVIDIA/TransformerEngine#2541 (gpt-oss under CP: p2p finds no backend, "I have to change
# cp_comm_type to a2a to enable FusedAttention"); Megatron-Bridge's gpt-oss recipe sets cp_comm_type "a2a" whenever
# CP > 1 ("only a2a cp is supported for sink attention"). megatron-core 0.16.1 hands TE cp_comm_type "p2p" when it is
# unset (extensions/transformer_engine.py TEDotProductAttention), per layer when it is a list; attention_backend
# unfused leaves TE only the unfused backend and local is megatron-core's own attention, which asserts CP 1
# (transformer/dot_product_attention.py), so only fused or auto with a2a on every layer reaches TE's fused kernel.
# Scope: models mcore-bridge builds with learnable softmax (gpt-oss's attention sinks; model_shape softmax_type),
# engine megatron, context_parallel_size > 1, unless cp_comm_type is a2a on every layer and attention_backend is fused
# or auto (flash alone is already refused above).
def _all_a2a(args) -> bool:
    value = config_value(args, "cp_comm_type")
    values = value if isinstance(value, (list, tuple)) else [value]
    return bool(values) and all(v == "a2a" for v in values)


def attention_sinks_context_parallel(recipe, args, shape: ModelShape, lay, err, warn):
    if shape.softmax_type != "learnable" or lay.cp == 1:
        return
    backend = attention_backend(args)
    if backend in ("fused", "auto") and _all_a2a(args):
        return
    comm = config_value(args, "cp_comm_type") or "p2p (the default)"
    err("attention-sinks-cp", f"{shape.name} uses attention sinks (learnable softmax) and context_parallel_size is "
        f"{lay.cp} with cp_comm_type {comm} and attention_backend {backend}: Transformer Engine has no attention "
        "backend for it (flash refuses learnable softmax, unfused refuses it under context parallel, fused takes it "
        "only with cp_comm_type a2a; NVIDIA-NeMo/Megatron-Bridge#2298, NVIDIA/TransformerEngine#2541)",
        "context_parallel_size",
        hint="cp_comm_type: a2a with attention_backend: fused (Megatron-Bridge's gpt-oss recipe under CP), or "
             "context_parallel_size: 1")


# No rule for apply_rope_fusion with MTP layers: mcore-bridge 1.6.3 model/modules/mtp_layer.py:94
# MultiTokenPredictionLayer.forward asserts the MTP attention's config has apply_rope_fusion off, but
# model/gpt_model.py:125-136 GPTModel.__init__ gives every MTP layer's self_attention a copy of the config with
# apply_rope_fusion False first (1.6.5 alike, :136), and every model that builds those MTP layers is that GPTModel or
# a subclass calling its __init__ (MultimodalGPTModel's language model, DeepseekV4GPTModel, Gemma4TextGPTModel).
# The assert cannot fire, so a recipe with both plans (tests/test_mcore_bridge_audit.py).


ATTENTION_RULES = [learnable_softmax_backend, attention_sinks_context_parallel]
