"""The keyword arguments ms-swift 4.6's Megatron model config accepts: where `megatron_extra_kwargs` goes.

swift/megatron/model/utils.py get_mcore_model_config builds the kwargs of mcore-bridge's ModelConfig (from the HF
config, then every ModelConfig field the arguments namespace has), `kwargs.update(args.megatron_extra_kwargs)` last,
and calls `config_cls(**kwargs)`: a plain dataclass constructor, so a key that is not one of its init fields is a
TypeError ("__init__() got an unexpected keyword argument") when the model is built, after the job has queued and
started. No other consumer reads megatron_extra_kwargs (not the OptimizerConfig -- megatron/trainers/base.py
builds it from the arguments namespace only -- nor the DDP config). mcore-bridge's ModelMeta has no config_cls, so
the class is always ModelConfig, a dataclass subclass of megatron-core's TransformerConfig.

The field names are read from the installed sources with `ast` (no torch import): mcore_bridge.config.model_config
when mcore-bridge is installed, else megatron-core's TransformerConfig plus MODEL_CONFIG_OWN_FIELDS below.
"""

from __future__ import annotations

import ast
from functools import lru_cache

# The fields mcore-bridge's ModelConfig adds to TransformerConfig (modelscope/mcore-bridge,
# src/mcore_bridge/config/model_config.py, commit 00e6df753a5ad5db766041127505a2efb88d50f6; ms-swift 4.6 needs
# mcore-bridge >= 1.6.3). Used only where mcore-bridge is not installed; where it is, its own source is read.
MODEL_CONFIG_OWN_FIELDS = frozenset("""
mcore_model_type hf_model_type llm_model_type padded_vocab_size rope_scaling attention_scaling
num_layers hidden_size ffn_hidden_size num_attention_heads num_query_groups softmax_type window_size
window_attn_skip_freq max_position_embeddings position_embedding_type rotary_base rotary_percent rotary_interleaved
original_max_position_embeddings partial_rotary_factor mrope_section mrope_interleaved normalization
layernorm_epsilon swiglu quick_geglu activation_func_clamp_value glu_linear_offset
untie_embeddings_and_output_weights add_bias_linear add_qkv_bias attention_dropout hidden_dropout kv_channels
qk_layernorm qk_l2_norm no_rope_freq moe_apply_probs_on_input num_moe_experts moe_layer_freq moe_ffn_hidden_size
moe_shared_expert_intermediate_size moe_router_topk moe_router_num_groups moe_router_group_topk
moe_router_pre_softmax moe_router_score_function moe_router_bias_update_rate moe_router_enable_expert_bias
moe_router_topk_scaling_factor moe_router_load_balancing_type moe_shared_expert_gate multi_latent_attention
q_lora_rank kv_lora_rank qk_head_dim qk_pos_emb_head_dim v_head_dim linear_attention_freq linear_num_key_heads
linear_num_value_heads linear_key_head_dim linear_value_head_dim linear_conv_kernel_dim
layernorm_zero_centered_gamma attention_output_gate linear_decoupled_in_proj experimental_attention_variant
dsa_indexer_n_heads dsa_indexer_head_dim dsa_indexer_topk dsa_indexer_loss_coeff dsa_indexer_use_sparse_loss
dsa_indexer_rotary_interleaved dsa_indexer_topk_freq dsa_indexer_skip_topk_offset csa_window_size
csa_compress_ratios csa_compress_rotary_base o_groups o_lora_rank enable_hyper_connections num_residual_streams
mhc_sinkhorn_iterations mhc_init_gating_factor moe_n_hash_layers mtp_decoder_input_detach mtp_shared_weights
language_model_only hf_config vit_attn_impl perform_initialization apply_query_key_layer_scaling moe_router_dtype
moe_token_dispatcher_type moe_grouped_gemm variable_seq_lengths overlap_p2p_comm persist_layer_norm
deallocate_pipeline_outputs cp_comm_type task_type num_labels mlp_padding_free
""".split())

TRANSFORMER_CONFIG = ("megatron.core.transformer.transformer_config", "TransformerConfig")
MODEL_CONFIG = ("mcore_bridge.config.model_config", "ModelConfig")


@lru_cache(maxsize=1)
def model_config_fields() -> tuple[frozenset[str], str] | None:
    """(the init field names of the model config ms-swift builds, where they were read), or None when neither
    mcore-bridge nor megatron-core is installed here (the check is then skipped, not guessed)."""
    from swift_ext.msswift.source_reader import _SourceReader

    reader = _SourceReader()
    try:
        return frozenset(reader.dataclass_fields(*MODEL_CONFIG)), "mcore-bridge ModelConfig (installed)"
    except (LookupError, OSError, SyntaxError):
        pass
    try:
        core = frozenset(reader.dataclass_fields(*TRANSFORMER_CONFIG))
    except (LookupError, OSError, SyntaxError):
        return None
    return core | MODEL_CONFIG_OWN_FIELDS, "megatron-core TransformerConfig + mcore-bridge ModelConfig's fields"


# The fields mcore-bridge's ModelConfig declares again with another type than megatron-core 0.16.1's
# TransformerConfig (same commit as above), most because its __post_init__ converts what it is given (window_size,
# window_attn_skip_freq, no_rope_freq, moe_layer_freq, linear_attention_freq: a string pattern evaluated to ints or
# a list; moe_router_dtype: 'none' -> None), the rest widened (cp_comm_type str there, str or list here;
# experimental_attention_variant adds 'dsv4_hybrid'; Optional added). Their value is not checked against
# TransformerConfig's annotation: the value that works is not the one either annotation says. Used only where
# mcore-bridge is not installed; where it is, its own class body is compared.
MODEL_CONFIG_RETYPED_FIELDS = frozenset("""
num_layers hidden_size num_attention_heads window_size window_attn_skip_freq no_rope_freq moe_apply_probs_on_input
moe_layer_freq moe_router_score_function linear_attention_freq experimental_attention_variant dsa_indexer_loss_coeff
apply_query_key_layer_scaling moe_router_dtype cp_comm_type
""".split())


@lru_cache(maxsize=1)
def model_config_types() -> dict[str, dict]:
    """{field: {"type": its declared type as source_reader.type_of describes it, "default": its default}} for the model config fields whose value
    can be judged from megatron-core's TransformerConfig / ModelParallelConfig annotations: every one except those
    mcore-bridge's ModelConfig declares itself with another type, or only it declares (their type is left unknown:
    no finding). {} when megatron-core is not installed here."""
    from swift_ext.msswift.source_reader import _SourceReader

    reader = _SourceReader()
    try:
        core = reader.dataclass_fields(*TRANSFORMER_CONFIG)
    except (LookupError, OSError, SyntaxError):
        return {}
    types = {name: field["type"] for name, field in core.items()}
    found = reader.find_class(*MODEL_CONFIG)
    if found is None:
        unknown = MODEL_CONFIG_RETYPED_FIELDS | (MODEL_CONFIG_OWN_FIELDS - set(types))
    else:
        module, cls = found
        unknown = set()
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                name = stmt.target.id
                if name not in types or reader.type_of(module, stmt.annotation) != types[name]:
                    unknown.add(name)
    return {name: {"type": kind, "default": core[name]["default"]} for name, kind in types.items()
            if name not in unknown}


def type_text(kind: dict) -> str:
    """A declared type as a recipe author reads it."""
    k = kind["kind"]
    if k == "literal":
        text = "one of " + ", ".join(repr(c) for c in kind["choices"])
    elif k == "list":
        items = {"bool": "booleans", "int": "integers", "float": "numbers", "str": "strings"}
        text = f"a list of {items[kind['item']['kind']]}" if kind.get("item", {}).get("kind") in items else "a list"
    elif k == "union":
        text = " or ".join(type_text(o) for o in kind["options"])
    else:
        text = {"bool": "a boolean", "int": "an integer", "float": "a number", "str": "a string",
                "dict": "a mapping"}.get(k, k)
    return text + (" or null" if kind.get("optional") else "")


def value_fits(value, kind: dict, default=None) -> bool | None:
    """Whether a JSON value (as megatron_extra_kwargs reaches the config: ms-swift passes it as written) fits the
    declared type: True, False, or None when the type cannot say (Any, a class, a callable, a dtype)."""
    k = kind["kind"]
    if k in ("any", "none"):
        return None
    if value is None:
        # Optional, or a field whose own default is None (`pipeline_dtype: torch.dtype = None`), takes null.
        return True if kind.get("optional") or default is None else False
    if k == "union":
        verdicts = [value_fits(value, option) for option in kind["options"]]
        return True if True in verdicts else (None if None in verdicts else False)
    if k == "bool":
        # 0/1 read as megatron-core reads them (truthiness); a string is the trap: "false" is true.
        return isinstance(value, bool) or (type(value) is int and value in (0, 1))
    if k == "int":
        return type(value) is int
    if k == "float":
        return type(value) in (int, float)
    if k == "str":
        return isinstance(value, str)
    if k == "literal":
        return value in kind["choices"] and type(value) in {type(c) for c in kind["choices"]}
    if k == "list":
        if not isinstance(value, list):
            return False
        verdicts = [value_fits(item, kind.get("item", {"kind": "any"})) for item in value]
        return False if False in verdicts else (None if None in verdicts else True)
    if k == "dict":
        return isinstance(value, dict)
    return None
