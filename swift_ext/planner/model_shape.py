"""The numbers the planner needs about a model, read from its config.json (`from_config`).

Where that config.json is found -- the local directory, the Hugging Face and ModelScope caches, --model-config, the
bundled presets -- is planner/shape_lookup.py (`resolve_shape`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from swift_ext.planner.config_keys import (checkpoint_quant, max_positions, rope_section, rope_scaling_type,
                                          router_pre_softmax, router_score_function, sliding_layers,
                                          sliding_window)
from swift_ext.spec.findings import UserError, shown

class ShapeNotFound(UserError):
    """No config.json for the model anywhere we looked: the shape-dependent checks are skipped."""


# ModelShape.origin of a bundled config found by the last part of a path (planner/shape_lookup.py)
BY_NAME_ORIGIN = "bundled config of "


@dataclass(frozen=True)
class Vision:
    depth: int
    hidden_size: int
    intermediate_size: int
    out_hidden_size: int
    mergers: int = 1  # Qwen3-VL adds one patch merger per deepstack layer
    # "qwen": blocks with fc1/fc2 of intermediate_size, a merger of 4*hidden -> out. "glm4v" (GLM-4.1V/4.5V,
    # transformers glm4v/modeling_glm4v.py): each block's MLP is gate/up/down of width out_hidden_size
    # (Glm4VisionMlp), and the merger is a 2x2 downsample conv (hidden -> out) then proj (out -> out) and
    # gate/up/down of width intermediate_size (Glm4vVisionPatchMerger).
    # "gemma4" (Gemma 4 26B/31B, transformers gemma4/modeling_gemma4.py): q/k/v/o of hidden_size
    # (Gemma4VisionAttention), a gated MLP gate/up/down of intermediate_size (Gemma4VisionMLP), and one
    # projection hidden -> text hidden (Gemma4MultimodalEmbedder.embedding_projection).
    layout: str = "qwen"

    def block_params(self) -> int:
        h = self.hidden_size
        if self.layout == "glm4v":
            return 4 * h * h + 3 * h * self.out_hidden_size
        if self.layout == "gemma4":
            return 4 * h * h + 3 * h * self.intermediate_size
        return 4 * h * h + 2 * h * self.intermediate_size

    def merger_params(self) -> int:
        h, out = self.hidden_size, self.out_hidden_size
        if self.layout == "glm4v":
            return 4 * h * out + out * out + 3 * out * self.intermediate_size
        if self.layout == "gemma4":
            return h * out
        return self.mergers * ((4 * h) ** 2 + 4 * h * out)

    def lora_width_per_block(self) -> int:
        """Sum of in+out features of a block's linear layers (a rank-r adapter on each holds r times this)."""
        h = self.hidden_size
        if self.layout == "glm4v":  # qkv, proj, gate, up, down
            return 4 * h + 2 * h + 3 * (h + self.out_hidden_size)
        if self.layout == "gemma4":  # q, k, v, o, gate, up, down
            return 8 * h + 3 * (h + self.intermediate_size)
        return 8 * h + 2 * self.intermediate_size  # qkv, proj, fc1, fc2


@dataclass(frozen=True)
class ModelShape:
    name: str
    model_type: str
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool = False
    gated_attention: bool = False  # Qwen3.5/3.6, Qwen3-Next: q_proj also produces an output gate
    intermediate_size: int = 0  # dense FFN (dense models; the dense layers of an MoE model)
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0
    shared_expert_gate: bool = False  # Qwen MoE: a sigmoid gate on the shared expert
    num_dense_layers: int = 0  # MoE models: layers with a dense FFN (first_k_dense_replace, mlp_only_layers)
    full_attention_interval: int = 1  # every N-th layer is full attention; the rest Gated DeltaNet
    linear_num_key_heads: int = 0
    linear_num_value_heads: int = 0
    linear_key_head_dim: int = 0
    linear_value_head_dim: int = 0
    linear_conv_kernel_dim: int = 4
    # DeepSeek-V3 multi-head latent attention (0 = ordinary attention)
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    mtp_num_layers: int = 0
    # Gemma 4 (mcore-bridge model/mm_gpts/gemma4.py Gemma4SelfAttention): the `full_attention` entries of
    # layer_types use global_head_dim and num_global_key_value_heads, and with attention_k_eq_v project no V
    # (the key is the value); the other layers are sliding-window attention with head_dim / num_key_value_heads.
    # 0 global layers: every attention layer has head_dim / num_key_value_heads.
    num_global_layers: int = 0
    global_head_dim: int = 0
    num_global_key_value_heads: int = 0
    global_k_eq_v: bool = False
    # The router as mcore-bridge builds it (config/parser.py hf_to_mcore_config): megatron-core's checks
    # depend on it (top-1 routing with a softmax score and no pre-softmax is refused; Llama-4 is sigmoid).
    router_score_function: str = "softmax"
    router_pre_softmax: bool = False
    # Group-limited routing (mcore-bridge maps n_group / topk_group to moe_router_num_groups / _group_topk); 0: unset.
    router_num_groups: int = 0
    router_group_topk: int = 0
    # megatron-core's softmax_type as mcore-bridge sets it: "learnable" (attention sinks) for gpt-oss language models.
    softmax_type: str = "vanilla"
    vision: Vision | None = None
    # The language model's own model_type inside a multimodal config (`llm_config` / `text_config`), as mcore-bridge
    # reads it into llm_model_type (config/parser.py hf_to_mcore_config); "" when the config names none.
    text_model_type: str = ""
    # The longest sequence the checkpoint's positions cover, as ms-swift and vLLM derive it from config.json
    # (see `max_positions`); 0 when config.json names none. `rope_scaling` is the config's scaling rope type
    # ("" for none, "default" or mrope).
    max_positions: int = 0
    rope_scaling: str = ""
    # Llama-4's chunked local attention (text_config.attention_chunk_size): tokens attend within their chunk on the
    # RoPE layers; 0 when the config has none.
    attention_chunk_size: int = 0
    # The sliding window transformers' attention layers pass on (config_keys.sliding_window); 0 when no layer slides.
    sliding_window: int = 0
    # How many of the layers slide it (config_keys.sliding_layers): vLLM keeps only the window's KV for those.
    num_sliding_layers: int = 0
    # config.json's rope section has an mrope_section: mcore-bridge builds position_embedding_type 'mrope'
    # (config/parser.py hf_to_mcore_config, 1.6.3 :344, 1.6.5 :425), and ms-swift's get_mcore_model_config then
    # turns apply_rope_fusion off (it is on only for plain 'rope').
    mrope: bool = False
    # config.json's quantization_config.quant_method, lower-cased ("fp8", "compressed-tensors", "mxfp4", ...): the
    # format the checkpoint's weights are stored in, which vLLM loads as is; "" when the checkpoint is unquantized.
    checkpoint_quant: str = ""
    source: str = ""  # the config.json read, or the bundled preset file
    origin: str = ""  # which lookup found it: local directory, Hugging Face cache, ..., bundled config

    @property
    def guessed_by_name(self) -> bool:
        """A bundled config standing in for a path this machine cannot read (shape_lookup._bundled_by_directory_name):
        the architecture is the named model's, but the copy's config.json may extend what users edit there (the
        Qwen2.5/Qwen3 model cards add rope_scaling to config.json for long context)."""
        return self.origin.startswith(BY_NAME_ORIGIN)

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def num_moe_layers(self) -> int:
        return self.num_layers - self.num_dense_layers if self.is_moe else 0

    @property
    def num_full_attention_layers(self) -> int:
        if self.linear_num_value_heads == 0:
            return self.num_layers
        return self.num_layers // self.full_attention_interval

    @property
    def num_linear_attention_layers(self) -> int:
        return self.num_layers - self.num_full_attention_layers

    # -- parameter counts (elements; norms and biases are left out: < 0.1%) ------------------------------
    def full_attention_params(self) -> int:
        """One softmax-attention layer; with Gemma 4's global layers, the mean over the attention layers."""
        if not self.num_global_layers:
            return self._attention_params(self.head_dim, self.num_key_value_heads, values=True)
        globals_ = self.num_global_layers * self._attention_params(
            self.global_head_dim, self.num_global_key_value_heads, values=not self.global_k_eq_v)
        local = (self.num_full_attention_layers - self.num_global_layers) * self._attention_params(
            self.head_dim, self.num_key_value_heads, values=True)
        return (globals_ + local) // self.num_full_attention_layers

    def _attention_params(self, head_dim: int, kv_heads: int, values: bool) -> int:
        h, heads = self.hidden_size, self.num_attention_heads
        if self.is_mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = h * self.q_lora_rank + self.q_lora_rank * heads * qk if self.q_lora_rank else h * heads * qk
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim) \
                + self.kv_lora_rank * heads * (self.qk_nope_head_dim + self.v_head_dim)
            return q + kv + heads * self.v_head_dim * h
        q_out = heads * head_dim * (2 if self.gated_attention else 1)
        kv_out = (2 if values else 1) * kv_heads * head_dim
        return h * (q_out + kv_out) + heads * head_dim * h

    def linear_attention_params(self) -> int:
        if not self.linear_num_value_heads:
            return 0
        k = self.linear_num_key_heads * self.linear_key_head_dim
        v = self.linear_num_value_heads * self.linear_value_head_dim
        in_proj = self.hidden_size * (2 * k + 2 * v + 2 * self.linear_num_value_heads)  # q,k,v,z + b,a
        conv = (2 * k + v) * self.linear_conv_kernel_dim
        return in_proj + conv + v * self.hidden_size

    def expert_params_per_moe_layer(self) -> int:
        return self.num_experts * 3 * self.hidden_size * self.moe_intermediate_size

    def expert_params_per_layer(self) -> int:
        """Routed-expert parameters per decoder layer, averaged over the dense and the MoE layers."""
        if not self.num_layers:
            return 0
        return self.expert_params_per_moe_layer() * self.num_moe_layers // self.num_layers

    def _moe_block_dense_params(self) -> int:
        """Router and shared expert(s) of one MoE layer."""
        h = self.hidden_size
        gate = h if self.shared_expert_gate and self.shared_expert_intermediate_size else 0
        return h * self.num_experts + 3 * h * self.shared_expert_intermediate_size + gate

    def dense_mlp_params_per_layer(self) -> int:
        """Everything in the MLP that is not a routed expert (router, shared expert, or a dense FFN), averaged
        over the decoder layers."""
        dense_ffn = 3 * self.hidden_size * self.intermediate_size
        if not self.is_moe:
            return dense_ffn
        if not self.num_layers:
            return 0
        return (self.num_moe_layers * self._moe_block_dense_params() + self.num_dense_layers * dense_ffn) \
            // self.num_layers

    def mtp_params(self) -> int:
        """One multi-token-prediction block: eh_proj (2h -> h) and a full decoder layer (MoE when the model is)."""
        mlp = (self.expert_params_per_moe_layer() + self._moe_block_dense_params() if self.is_moe
               else 3 * self.hidden_size * self.intermediate_size)
        return 2 * self.hidden_size**2 + self.full_attention_params() + mlp

    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    def vision_params(self) -> int:
        if not self.vision:
            return 0
        return self.vision.depth * self.vision.block_params() + self.vision.merger_params()

    def total_params(self, mtp: bool = True) -> int:
        """All parameters; `mtp=False` leaves out the MTP blocks (DeepSeek-V3's "671B" counts the main model)."""
        h = self.hidden_size
        dense_ffn = 3 * h * self.intermediate_size
        layers = (
            self.num_full_attention_layers * self.full_attention_params()
            + self.num_linear_attention_layers * self.linear_attention_params()
            + self.num_moe_layers * (self.expert_params_per_moe_layer() + self._moe_block_dense_params())
            + (self.num_dense_layers if self.is_moe else self.num_layers) * dense_ffn
        )
        extra = self.mtp_num_layers * self.mtp_params() if mtp else 0
        return layers + extra + self.embedding_params() + self.vision_params()


# ---- config.json -> ModelShape ----------------------------------------------------------------------------

def from_config(config: dict, name: str, source: str = "") -> ModelShape:
    """Reads the fields of the architectures ms-swift's Megatron backend trains: Llama, Qwen2/2.5, Qwen3
    dense and MoE, Qwen3-Next and Qwen3.5/3.6 (Gated DeltaNet), Qwen3-VL (`text_config`), InternVL
    (`llm_config`), Qwen2-VL (`embed_dim`), Llama-4 (`interleave_moe_layer_step`), DeepSeek-V3 (MLA, shared
    experts, first_k_dense_replace), GLM-4.5 (`glm4_moe`),
    gpt-oss (`num_local_experts`), ERNIE-4.5 (`moe_num_experts`, `moe_k`, `moe_layer_start_index`) and
    Ling/Ring 2.0 (`num_shared_experts`). Zeros, negatives and non-numbers are a UserError naming the field."""
    where = source or name
    multimodal = _multimodal_section(config, where)
    text = multimodal.get("text_config") or multimodal.get("llm_config") or multimodal
    if not isinstance(text, dict):
        raise UserError.one("model config: `text_config`/`llm_config` is not an object", file=where)
    read = _Fields(text, config, where)
    hidden = read.int("hidden_size", positive=True)
    heads = read.int("num_attention_heads", positive=True)
    layers = read.int("num_hidden_layers", positive=True, most=MAX_LAYERS)
    head_dim = read.int("head_dim")
    if not head_dim:
        if hidden % heads:
            raise UserError.one(f"model config: hidden_size {hidden} is not divisible by num_attention_heads {heads} "
                                "and there is no head_dim", file=where)
        head_dim = hidden // heads
    kv_heads = read.int("num_key_value_heads")
    if not kv_heads:
        if read.given("num_key_value_heads"):  # 0: every head check would divide by it (or gcd(0, n) = n, "fits")
            raise UserError.one(f"model config: num_key_value_heads must be positive, got 0 (leave it out or null "
                                f"for one KV head per attention head, {heads}, as transformers reads it)", file=where)
        kv_heads = heads  # transformers' configs (Llama, Qwen2/3): a missing or null num_key_value_heads is MHA
    if kv_heads > heads:
        raise UserError.one(f"model config: num_key_value_heads {kv_heads} > num_attention_heads {heads}", file=where)
    model_type = str(config.get("model_type") or text.get("model_type") or "unknown")

    # The MoE keys as mcore-bridge's config/parser.py `config_mapping` reads them (1.6.3 parser.py:29-46, 99-100;
    # the same lists in 1.6.5), the first one set wins (its num_moe_experts, moe_router_topk, n_shared_experts and
    # first_k_dense_replace lists; experts_per_token is gpt-oss's own spelling, which mcore-bridge does not read --
    # gpt-oss's config.json has num_experts_per_tok too).
    experts = _first_int(read, "num_experts", "n_routed_experts", "moe_num_experts", "num_local_experts")
    top_k = _first_int(read, "num_experts_per_tok", "experts_per_token", "moe_topk", "moe_k", "top_k_experts")
    if experts and not top_k:
        raise UserError.one("model config: an MoE model (experts > 0) needs num_experts_per_tok", file=where)
    if top_k > max(experts, 0) and experts:
        raise UserError.one(f"model config: num_experts_per_tok {top_k} > {experts} experts", file=where)
    intermediate = read.int("intermediate_size")
    moe_inter = read.int("moe_intermediate_size")
    if experts and not moe_inter:
        moe_inter, intermediate = intermediate, 0  # gpt-oss / Mixtral: intermediate_size is the expert's
    if experts and not moe_inter:
        raise UserError.one("model config: an MoE model needs moe_intermediate_size (or intermediate_size)", file=where)
    if not experts and not intermediate:
        raise UserError.one("model config lacks 'intermediate_size' (a positive integer)", file=where)
    shared = read.int("shared_expert_intermediate_size") or _first_int(
        read, "n_shared_experts", "num_shared_expert", "moe_num_shared_experts", "num_shared_experts") * moe_inter
    gemma4 = model_type in GEMMA4_TYPES
    if gemma4 and experts:
        # Gemma 4's MoE layers keep their dense MLP (intermediate_size) and add the experts beside it
        # (mcore-bridge Gemma4TransformerLayer._forward_mlp sums self.mlp and experts_mlp): a shared expert
        # without a gate, in every layer.
        shared = intermediate
    if experts and "llama4" in (model_type, str(text.get("model_type") or "").removesuffix("_text")):
        # mcore-bridge config/parser.py (llama4): every MoE layer also runs one shared expert of the experts' width
        # (moe_shared_expert_intermediate_size = moe_ffn_hidden_size), and the dense layers of an interleaved model
        # (Maverick) are intermediate_size_mlp wide (ffn_hidden_size = mlp_ffn_hidden_size)
        shared = moe_inter
        intermediate = read.int("intermediate_size_mlp") or intermediate

    interval = read.int("full_attention_interval")
    layer_types = text.get("layer_types")
    if isinstance(layer_types, list) and layer_types and not interval and read.int("linear_num_value_heads"):
        full = sum(1 for t in layer_types if t == "full_attention")
        interval = max(1, len(layer_types) // max(full, 1))

    return ModelShape(
        name=name,
        model_type=model_type,
        num_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=read.int("vocab_size", positive=True),
        tie_word_embeddings=bool(text.get("tie_word_embeddings", config.get("tie_word_embeddings", False))),
        gated_attention=bool(text.get("attn_output_gate", model_type.startswith(("qwen3_5", "qwen3_next")))),
        intermediate_size=intermediate,
        num_experts=experts,
        num_experts_per_tok=top_k,
        moe_intermediate_size=moe_inter if experts else 0,
        shared_expert_intermediate_size=shared if experts else 0,
        shared_expert_gate=bool(experts and "shared_expert_intermediate_size" in text),
        num_dense_layers=_dense_layers(text, read, layers) if experts else 0,
        full_attention_interval=interval or 1,
        linear_num_key_heads=read.int("linear_num_key_heads"),
        linear_num_value_heads=read.int("linear_num_value_heads"),
        linear_key_head_dim=read.int("linear_key_head_dim"),
        linear_value_head_dim=read.int("linear_value_head_dim"),
        linear_conv_kernel_dim=read.int("linear_conv_kernel_dim") or 4,
        q_lora_rank=read.int("q_lora_rank"),
        kv_lora_rank=read.int("kv_lora_rank"),
        qk_nope_head_dim=read.int("qk_nope_head_dim"),
        qk_rope_head_dim=read.int("qk_rope_head_dim"),
        v_head_dim=read.int("v_head_dim"),
        mtp_num_layers=read.int("mtp_num_hidden_layers") or read.int("num_nextn_predict_layers"),
        text_model_type=str(text.get("model_type") or "") if text is not config else "",
        **(_gemma4_global_attention(text, read, layers, where) if gemma4 else {}),
        router_score_function=router_score_function(text, config, model_type),
        router_pre_softmax=router_pre_softmax(text, config),
        router_num_groups=read.int("n_group") if experts else 0,
        router_group_topk=read.int("topk_group") if experts else 0,
        softmax_type="learnable" if "gpt_oss" in (model_type, str(text.get("model_type") or "")) else "vanilla",
        vision=_vision(multimodal, hidden, where, model_type,
                       "thinker_config." if multimodal is not config else ""),
        max_positions=max_positions(text, read),
        rope_scaling=rope_scaling_type(text, config),
        attention_chunk_size=read.int("attention_chunk_size"),
        sliding_window=sliding_window(text),
        num_sliding_layers=sliding_layers(text, layers),
        mrope=rope_section(text, config).get("mrope_section") is not None,
        checkpoint_quant=checkpoint_quant(text, config),
        source=source,
    )


# Far above any model's depth (the deepest published decoders have a few hundred layers), and far above any size
# of a config.json (vocabularies are below 1e7).
MAX_LAYERS = 100_000
MAX_SIZE = 2**40


class _Fields:
    """Integer fields of a config.json, read with a message that names the field when one is unusable."""

    def __init__(self, text: dict, outer: dict, where: str, section: str = ""):
        # section: where the fields sit when it is not the language model ("vision_config."), so that a message
        # names the field the author must fix, not the language model's field of the same name
        self.text, self.outer, self.where, self.section = text, outer, where, section

    def given(self, key: str) -> bool:
        """config.json states `key` with a value (not left out, not null)."""
        return self.text.get(key, self.outer.get(key) if self.outer is not self.text else None) is not None

    def int(self, key: str, positive: bool = False, most: int = MAX_SIZE) -> int:
        value = self.text.get(key, self.outer.get(key) if self.outer is not self.text else None)
        key = self.section + key
        if value is None:
            if positive:
                raise UserError.one(f"model config lacks {key!r} (a positive integer)", file=self.where)
            return 0
        # json reads NaN / Infinity / 1e400 as floats int() refuses
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or (isinstance(value, float) and not math.isfinite(value)) or value != int(value)):
            # transformers 5 validates its configs strictly (huggingface_hub StrictDataclassFieldValidationError
            # "expected int, got str"): a quoted "28" stops the model load, so it is refused here too, not read
            quoted = isinstance(value, str) and value.strip().isdigit()
            raise UserError.one(f"model config: {key} must be an integer, got {shown(value)}", file=self.where,
                                hint=f"write {value.strip()} without quotes" if quoted else None)
        if value < 0 or (positive and value == 0):
            raise UserError.one(f"model config: {key} must be {'positive' if positive else '>= 0'}, got {shown(value)}",
                                file=self.where)
        if value > most:  # the shape walks every layer, the rules list divisors: 1e26 never finishes
            raise UserError.one(f"model config: {key} {shown(value)} is not a model's size (at most {most})",
                                file=self.where)
        return int(value)


def _first_int(read: _Fields, *keys: str) -> int:
    """The first of `keys` the config gives a non-zero value (0 when none does)."""
    for key in keys:
        value = read.int(key)
        if value:
            return value
    return 0


def _dense_layers(text: dict, read: _Fields, layers: int) -> int:
    """Decoder layers of an MoE model whose FFN is dense."""
    # DeepSeek-V3, GLM-4.5; ERNIE-4.5's moe_layer_start_index (mcore-bridge maps it to first_k_dense_replace and
    # reads no moe_layer_end_index: every layer from the start index on is MoE)
    first_dense = _first_int(read, "first_k_dense_replace", "moe_layer_start_index")
    freq = read.int("moe_layer_freq") or 1
    # Qwen MoE; Llama-4's interleave_moe_layer_step (mcore-bridge: layer i is MoE when i % step == step - 1)
    step = read.int("decoder_sparse_step") or read.int("interleave_moe_layer_step") or 1
    mlp_only = text.get("mlp_only_layers") or []
    mlp_only = set(mlp_only) if isinstance(mlp_only, list) else set()
    sparse = sum(1 for i in range(layers)
                 if i >= first_dense and i % freq == 0 and (i + 1) % step == 0 and i not in mlp_only)
    return layers - sparse


def _vision(config: dict, text_hidden: int, where: str, model_type: str, section: str = "") -> Vision | None:
    vc = config.get("vision_config")
    if not isinstance(vc, dict):
        return None
    read = _Fields(vc, vc, where, f"{section}vision_config.")
    # Qwen-VL towers / InternViT / Gemma 4's tower; Gemma 4 Unified (12B) has no tower, only a patch embedder
    # (mcore-bridge Gemma4UnifiedVit: _vision_tower = []), and its vision_config names no depth.
    depth = read.int("depth") or read.int("num_hidden_layers")
    if not depth:
        return None
    deepstack = vc.get("deepstack_visual_indexes") or []
    mergers = 1 + (len(deepstack) if isinstance(deepstack, list) else 0)
    layout = ("glm4v" if model_type in ("glm4v", "glm4v_moe") else "gemma4" if model_type in GEMMA4_TYPES
              else "qwen")
    embed = read.int("embed_dim")
    if embed:
        # Qwen2-VL (transformers Qwen2VLVisionConfig): the tower is embed_dim wide with an MLP of mlp_ratio *
        # embed_dim (fc1/fc2), and hidden_size is the merger's output, the language model's width
        ratio = vc.get("mlp_ratio", 4)
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio) or ratio <= 0:
            raise UserError.one(f"model config: {section}vision_config.mlp_ratio must be a positive number, got "
                                f"{shown(ratio)}", file=where)
        return Vision(depth, embed, int(embed * ratio), read.int("hidden_size") or text_hidden, mergers, layout=layout)
    hidden = read.int("hidden_size", positive=True)
    return Vision(depth, hidden, read.int("intermediate_size") or 4 * hidden,
                  read.int("out_hidden_size") or text_hidden, mergers, layout=layout)


# mcore-bridge config/parser.py hf_to_mcore_config: the Gemma 4 branch (`hf_model_type in {'gemma4',
# 'gemma4_unified'}`).
GEMMA4_TYPES = ("gemma4", "gemma4_unified")


def _multimodal_section(config: dict, where: str) -> dict:
    """Where the language model's and the vision tower's configs sit: the top level, or, for Qwen2.5-Omni and
    Qwen3-Omni, `thinker_config` (mcore-bridge config/parser.py _convert_config reads text_config, llm_config
    and thinker_config in turn; the talker and code2wav are not trained: Qwen3Omni_Vit._generator)."""
    thinker = config.get("thinker_config")
    if thinker is None:
        return config
    if not isinstance(thinker, dict):
        raise UserError.one("model config: `thinker_config` is not an object", file=where)
    return thinker


def _gemma4_global_attention(text: dict, read: _Fields, layers: int, where: str) -> dict:
    """Gemma 4's full-attention layers as mcore-bridge's Gemma4SelfAttention builds them: global_head_dim (when
    set) and, with attention_k_eq_v, num_global_key_value_heads and no V projection."""
    layer_types = text.get("layer_types")
    if not isinstance(layer_types, list) or len(layer_types) != layers:
        raise UserError.one(f"model config: Gemma 4 needs layer_types, one per layer ({layers})", file=where)
    k_eq_v = bool(text.get("attention_k_eq_v"))
    global_kv = (read.int("num_global_key_value_heads") if k_eq_v else 0) or read.int("num_key_value_heads")
    return {"num_global_layers": sum(1 for t in layer_types if t == "full_attention"),
            "global_head_dim": read.int("global_head_dim") or read.int("head_dim"),
            "num_global_key_value_heads": global_kv, "global_k_eq_v": k_eq_v}
