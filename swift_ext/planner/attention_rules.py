"""Attention-backend rules of ms-swift's Megatron model build (engine megatron): checks ms-swift 4.6 makes in
swift/megatron/model/utils.py get_mcore_model_config once the model config is built on every rank, after the
checkpoint is found and the job has started. Registered with layout.py's rules."""

from __future__ import annotations

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


# Evidence (report): NVIDIA-NeMo/Megatron-Bridge#2298 (gpt-oss-20b, context parallel > 1, open): the job stops with
# "No dot product attention backend is available"; Transformer Engine's backend selection logs "Disabling
# FlashAttention for softmax_type = learnable", "Disabling UnfusedDotProductAttention for context parallelism with
# softmax_type = learnable" and "Disabling FusedAttention as no backend supports the provided input". Scope: models
# mcore-bridge builds with learnable softmax (gpt-oss's attention sinks; model_shape softmax_type), engine megatron,
# context_parallel_size > 1, whatever attention_backend (flash alone is already refused above). No published
# gpt-oss recipe (ms-swift, Megatron-Bridge, slime, verl) runs CP > 1.
def attention_sinks_context_parallel(recipe, args, shape: ModelShape, lay, err, warn):
    if shape.softmax_type != "learnable" or lay.cp == 1:
        return
    err("attention-sinks-cp", f"{shape.name} uses attention sinks (learnable softmax) and context_parallel_size is "
        f"{lay.cp}: Transformer Engine has no attention backend for learnable softmax under context parallel "
        f"(unfused refuses CP with it, flash refuses it, fused found no kernel; NVIDIA-NeMo/Megatron-Bridge#2298)",
        "context_parallel_size",
        hint="context_parallel_size: 1 (split with TP/EP, or shorten max_length)")


ATTENTION_RULES = [learnable_softmax_backend, attention_sinks_context_parallel]
