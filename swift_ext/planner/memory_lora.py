"""LoRA in the memory estimate: the adapters' parameters and dtype, the activations their branches save, and
the whole modules LoRA trains beside them (modules_to_save). Used by memory.py's per-stage estimate."""

from __future__ import annotations

from swift_ext.planner.layout import Args
from swift_ext.planner.task_kind import task_type
from swift_ext.planner.model_shape import ModelShape


def lora_bytes(args: Args) -> int:
    """Bytes per LoRA adapter element: lora_dtype, else fp32 (PEFT's autocast of bf16 adapters, see memory.py _stage)."""
    return {"float16": 2, "bfloat16": 2, "float32": 4}.get(args.str("lora_dtype") or "float32", 4)


def lora_targets(args: Args) -> tuple[bool, bool]:
    """(attention, MLP) linears that get adapters. ms-swift matches target_modules against module names by
    suffix, so `linear_fc1`/`linear_fc2` adapt the routed experts' and shared experts' layers alike."""
    targets = {str(t) for t in args.list("target_modules")} or {"all-linear"}
    if "all-linear" in targets:
        return True, True
    return (bool(targets & {"linear_qkv", "linear_proj", "in_proj", "out_proj"}),
            bool(targets & {"linear_fc1", "linear_fc2"}))


def lora_saved_bytes(shape: ModelShape, args: Args, lora_bytes: int, tokens: float, tok_sp: float,
                      expert_tokens: float, tp: int) -> float:
    """What the LoRA branch of every adapted linear in one layer saves for backward beyond the base layer.

    mcore_bridge/tuners/lora.py LoraParallelLinear.forward runs `lora_A(dropout(x.to(lora_A's dtype)))`:
    the input cast to the adapter dtype (fp32 by default) goes through nn.Dropout (lora_dropout, 0.05 by
    default), whose output lora_A keeps for its weight gradient (lora_bytes per element) and whose bool
    mask dropout's backward keeps (1 byte). With a bf16 adapter and no dropout lora_A keeps the base
    layer's own input and nothing is added. Inputs per adapted linear: column-parallel layers see the
    sequence-parallel shard (TE gathers inside the base layer), row-parallel ones the TP shard of the full
    sequence, the grouped experts every routed copy of a token (experts/ETP: ms-swift refuses LoRA with ETP)."""
    dropout = (args.float("lora_dropout") or 0.0) > 0
    per_element = (lora_bytes if (lora_bytes != 2 or dropout) else 0) + (1 if dropout else 0)
    attn_on, mlp_on = lora_targets(args)
    if not per_element:
        return 0.0
    h = shape.hidden_size
    attn = 0.0
    if attn_on:
        full_frac = shape.num_full_attention_layers / shape.num_layers
        full = tok_sp * h + tokens * shape.num_attention_heads * shape.head_dim / tp
        linear = tok_sp * h + tokens * shape.linear_num_value_heads * shape.linear_value_head_dim / tp
        attn = full_frac * full + (1 - full_frac) * (linear if shape.linear_num_value_heads else full)
    mlp = 0.0
    if mlp_on:
        if shape.is_moe:
            mlp = expert_tokens * (h + shape.moe_intermediate_size)
            if shape.shared_expert_intermediate_size:
                mlp += tok_sp * h + tokens * shape.shared_expert_intermediate_size / tp
        else:
            mlp = tok_sp * h + tokens * shape.intermediate_size / tp
    return per_element * (attn + mlp)


def modules_to_save(args: Args, command: str) -> tuple[bool, bool]:
    """(embedding, output layer) trained whole beside the adapters. megatron/utils/utils.py prepare_adapter passes
    modules_to_save to its LoraConfig (`all-embedding` becomes the LanguageModelEmbedding modules); PEFT's
    ModulesToSaveWrapper (peft/utils/other.py) then trains a deep copy of each next to the frozen original:
    weights twice, gradients and optimizer state for the copy. get_modules_to_save adds output_layer for seq_cls
    (and so for rm), whose head is num_labels wide (memory_head.py)."""
    names = {str(m).rsplit(".", 1)[-1] for m in args.list("modules_to_save")}
    head = "output_layer" in names or task_type(args, command) == "seq_cls"
    return bool(names & {"all-embedding", "embedding", "word_embeddings"}), head


def lora_params(shape: ModelShape, args: Args, rank: int, layers: float, tp: int, ep_etp: int) -> tuple[float, float]:
    """LoRA A/B parameters on one GPU: (dense part, expert part)."""
    targets = {str(t) for t in args.list("target_modules")} or {"all-linear"}
    h = shape.hidden_size
    r = rank
    full_frac = shape.num_full_attention_layers / shape.num_layers
    q_out = shape.num_attention_heads * shape.head_dim * (2 if shape.gated_attention else 1)
    kv = shape.num_key_value_heads * shape.head_dim
    full_attn = r * (h + q_out + kv * 2) + r * (shape.num_attention_heads * shape.head_dim + h)
    lin = 0
    if shape.linear_num_value_heads:
        kd = shape.linear_num_key_heads * shape.linear_key_head_dim
        vd = shape.linear_num_value_heads * shape.linear_value_head_dim
        lin = r * (h + 2 * kd + 2 * vd) + r * (h + 2 * shape.linear_num_value_heads) + r * (vd + h)
    attn = full_frac * full_attn + (1 - full_frac) * (lin or full_attn)
    if shape.is_moe:
        mlp_dense = r * (h + 2 * shape.shared_expert_intermediate_size) + r * (shape.shared_expert_intermediate_size + h)
        experts = shape.num_experts * (r * (h + 2 * shape.moe_intermediate_size) + r * (shape.moe_intermediate_size + h))
    else:
        mlp_dense = r * (h + 2 * shape.intermediate_size) + r * (shape.intermediate_size + h)
        experts = 0
    if "all-linear" in targets and shape.vision and not args.bool("language_model_only") and (
            args.bool("freeze_llm") and (args.str("tuner_type") or "lora") == "lora"):
        return 0.0, 0.0  # get_multimodal_target_regex: no adapters on a frozen language model
    attn_on, mlp_on = lora_targets(args)
    attn, mlp_dense, experts = (attn if attn_on else 0), (mlp_dense if mlp_on else 0), (experts if mlp_on else 0)
    return layers * (attn + mlp_dense) / tp, layers * experts / ep_etp
