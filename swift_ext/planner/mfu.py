"""Training FLOPs per token from a model's shape, and model FLOPs utilisation (MFU).

Model FLOPs per trained token (the FLOPs the model needs, not what recompute adds, so this is MFU and
not HFU), following PaLM (Chowdhery et al. 2022, appendix B: 6·N + 12·L·H·Q·T per token):

    flops/token = k · N_active                                   matmuls; k = 6 (forward 2, backward 4),
                                                                 k = 4 for LoRA (frozen weights need no
                                                                 weight gradients; the adapters are tiny)
                + L_full · 6 · (heads · head_dim) · S            causal softmax attention: forward
                                                                 QKᵀ and AV are 2·2·S·d per token, half of
                                                                 it masked, times 3 for forward+backward
                + L_linear · 3 · Hv · (6·dk·dv + C·(2·dk + dv))  Gated DeltaNet, chunkwise form (Yang et al.
                                                                 2025, "Gated Delta Networks", §3.3; fla's
                                                                 chunk_gated_delta_rule, chunk C = 64): per
                                                                 value head and token, k·S, S update and q·S
                                                                 (2·dk·dv each) across chunks, and the
                                                                 causal in-chunk QKᵀ/KKᵀ and A·V (C/2 ·
                                                                 2·dk each, C/2 · 2·dv); times 3

N_active counts each token's matmul weights: attention projections (gated q for Qwen3.5/3.6), Gated
DeltaNet in/out projections and its depthwise conv, for MoE the router, the top-k routed experts and
the shared expert (and its gate), a dense FFN otherwise, MTP layers when they are trained, and the
output head (vocab·hidden: the 248k-vocabulary head is ~15% of Qwen3.6-35B-A3B's active weights). The
input embedding is a lookup, not a matmul, and is left out, as are norms, RoPE and the vision tower.
This is the "required FLOPs" figure. `megatron_flops_per_token` is the convention papers and Megatron
report (6·N for every weight that runs, LoRA included, attention without causal halving); watch/report
show both, named.
S is the attended sequence length: each sample's own length (packed samples do not attend across
each other), so callers pass the mean tokens per sample when they know it, else max_length.
"""

from __future__ import annotations

from swift_ext.planner.model_shape import ModelShape

DELTANET_CHUNK = 64


def active_params(shape: ModelShape, mtp_layers: int = 0) -> int:
    """Weights one token multiplies through (MoE: top-k routed + shared experts, router), lm_head included."""
    if shape.is_moe:
        h = shape.hidden_size
        mlp = (h * shape.num_experts  # router
               + shape.num_experts_per_tok * 3 * h * shape.moe_intermediate_size
               + 3 * h * shape.shared_expert_intermediate_size
               + (h if shape.shared_expert_intermediate_size else 0))  # shared-expert gate
    else:
        mlp = shape.dense_mlp_params_per_layer()
    layers = (shape.num_full_attention_layers * shape.full_attention_params()
              + shape.num_linear_attention_layers * shape.linear_attention_params()
              + shape.num_layers * mlp)
    head = shape.vocab_size * shape.hidden_size
    # An MTP layer: eh_proj (2h -> h), one full-attention transformer layer, and the shared head again.
    mtp = mtp_layers * (2 * shape.hidden_size**2 + shape.full_attention_params() + mlp + head)
    return layers + head + mtp


def attention_flops_per_token(shape: ModelShape, seq_len: float, mtp_layers: int = 0) -> float:
    """Forward+backward FLOPs of the attention operations themselves (no weights), per token."""
    full = (shape.num_full_attention_layers + mtp_layers) * 6 * shape.num_attention_heads * shape.head_dim * seq_len
    return full + _linear_attention_flops(shape)


def _linear_attention_flops(shape: ModelShape) -> float:
    if not (shape.num_linear_attention_layers and shape.linear_num_value_heads):
        return 0.0
    dk, dv = shape.linear_key_head_dim, shape.linear_value_head_dim
    per_head = 6 * dk * dv + DELTANET_CHUNK * (2 * dk + dv)
    return shape.num_linear_attention_layers * 3 * shape.linear_num_value_heads * per_head


def train_flops_per_token(shape: ModelShape, seq_len: float, *, lora: bool = False, mtp_layers: int = 0) -> float:
    matmul = (4 if lora else 6) * active_params(shape, mtp_layers)
    return matmul + attention_flops_per_token(shape, seq_len, mtp_layers)


def megatron_flops_per_token(shape: ModelShape, seq_len: float, *, mtp_layers: int = 0) -> float:
    """Model FLOPs per token as Megatron-LM and PaLM count them, so MFU compares with published TFLOP/s per GPU
    (e.g. Megatron-Bridge's Qwen3-30B-A3B, about 240 TFLOP/s per H100): 6 FLOPs per active weight whatever
    trains (frozen LoRA base weights count as if they had weight gradients), and softmax attention without
    causal halving: 12·(heads·head_dim)·S per full-attention layer (PaLM appendix B's 12·L·H·Q·T; Megatron's
    num_flops: 2 matmuls x 2 FLOPs x 3 passes). Gated DeltaNet is counted as `attention_flops_per_token` does
    (its chunked form has no causal half to drop)."""
    full = (shape.num_full_attention_layers + mtp_layers) * 12 * shape.num_attention_heads * shape.head_dim * seq_len
    return 6 * active_params(shape, mtp_layers) + full + _linear_attention_flops(shape)


def mfu(flops_per_token: float, tokens_per_s_per_gpu: float, peak_tflops: float) -> float:
    """Achieved model FLOP/s per GPU over the GPU's dense bf16 peak."""
    return flops_per_token * tokens_per_s_per_gpu / (peak_tflops * 1e12)
