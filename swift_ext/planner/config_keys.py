"""How the engines read particular config.json keys, beside the shape itself (model_shape.from_config uses these):
the model's length (ms-swift and vLLM: the smallest length key, rope factors), and the MoE router's score function
and pre-softmax as mcore-bridge sets them, and the sliding window transformers' attention layers use."""

from __future__ import annotations

import math

# The keys ms-swift 4.6 (swift/utils/hf_config.py HfConfigFactory.get_max_model_len: the smallest of those
# present) and vLLM (config/model.py _get_and_verify_max_len: the same minimum) read a model's length from.
MAX_LENGTH_KEYS = ("seq_length", "max_position_embeddings", "n_positions", "model_max_length", "seq_len",
                   "max_seq_len", "max_sequence_length", "max_seq_length")
# Rope types whose config `max_position_embeddings` already is the extended length (vLLM applies no factor).
ROPE_WITHOUT_FACTOR = {"default", "mrope", "llama3", "longrope", "su"}


def rope_section(text: dict, config: dict) -> dict:
    for section in (text, config):
        for key in ("rope_scaling", "rope_parameters"):  # transformers 5 writes rope_parameters
            value = section.get(key)
            if isinstance(value, dict):
                return value
    return {}


def rope_scaling_type(text: dict, config: dict) -> str:
    rope = rope_section(text, config)
    kind = str(rope.get("rope_type") or rope.get("type") or "")
    return "" if kind in ("default", "mrope") else kind


def finite_at_least_one(value) -> bool:
    # json.loads reads Infinity and NaN: neither is a length or a factor (int() of infinity raises)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 1


def max_positions(text: dict, read) -> int:
    """The positions the checkpoint covers: the smallest length key present; with a scaling rope (yarn,
    linear, dynamic) and its factor, original_max_position_embeddings (or that length) times the factor, as
    vLLM derives it. 0 when config.json names no length."""
    values = [text.get(k, read.outer.get(k)) for k in MAX_LENGTH_KEYS]
    for key, value in zip(MAX_LENGTH_KEYS, values):
        if isinstance(value, (str, bool, list, dict)):
            # not a length left out: transformers 5 refuses a string in its config's int fields, and ms-swift's
            # get_max_model_len takes min(1e9, value) of every key it finds (TypeError on a string). read.int
            # names the key and the file.
            read.int(key)
    lengths = [int(v) for v in values if finite_at_least_one(v)]
    if not lengths:
        return 0
    limit = min(lengths)
    rope = rope_section(text, read.outer)
    kind = str(rope.get("rope_type") or rope.get("type") or "default")
    factor = rope.get("factor")
    if kind not in ROPE_WITHOUT_FACTOR and finite_at_least_one(factor):
        original = rope.get("original_max_position_embeddings")
        base = original if isinstance(original, int) and original > 0 else limit
        scaled = base * factor
        # a factor of 1e308 over 1e15 positions is infinity: no finite length to compare against, as if none given
        return max(limit, int(scaled)) if math.isfinite(scaled) else limit
    return limit


# mcore-bridge config/parser.py (hf_to_mcore_config) sets a sigmoid router for these, whatever config.json
# says: by the language model's model_type, or the outer one (glm4v_moe, llama4). Read in the 1.6.3 wheel
# (parser.py:194 dots1, :251 glm4_moe/glm4_moe_lite/glm_moe_dsa/glm4v_moe, :308 llama4, :324 bailing_hybrid,
# :336 nemotron_h); 1.6.5 sets the same ones.
SIGMOID_ROUTERS = {"dots1", "glm4_moe", "glm4_moe_lite", "glm_moe_dsa", "glm4v_moe", "llama4", "bailing_hybrid",
                    "nemotron_h"}


def router_score_function(text: dict, config: dict, model_type: str) -> str:
    """`moe_router_score_function` as mcore-bridge derives it: the first of scoring_func /
    moe_router_use_sigmoid (true) / score_function the config spells (the language model's section over
    the outer one), then the per-architecture overrides."""
    if {str(text.get("model_type") or ""), model_type} & SIGMOID_ROUTERS:
        return "sigmoid"
    for section in (text, config):
        for key in ("scoring_func", "moe_router_use_sigmoid", "score_function"):
            value = section.get(key)
            if key == "moe_router_use_sigmoid":
                if value:
                    return "sigmoid"
                continue
            if isinstance(value, str) and value in ("softmax", "sigmoid"):
                return value
    return "softmax"


def router_pre_softmax(text: dict, config: dict) -> bool:
    """mcore-bridge maps `norm_topk_prob` to `moe_router_pre_softmax = not norm_topk_prob`; absent, megatron-core's
    default (False) stands."""
    value = text.get("norm_topk_prob", config.get("norm_topk_prob"))
    return value is not None and not bool(value)


def checkpoint_quant(text: dict, config: dict) -> str:
    """quant_method of the checkpoint's quantization_config (transformers writes it at the top of config.json; a
    multimodal config may carry it in its text section). A quantization_config without a usable quant_method still
    says the weights are not plain bf16: "unknown"."""
    quant = config.get("quantization_config") or text.get("quantization_config")
    if not isinstance(quant, dict):
        return ""
    method = quant.get("quant_method")
    return method.strip().lower() if isinstance(method, str) and method.strip() else "unknown"


def sliding_window(text: dict) -> int:
    """The window transformers' attention layers hand the attention function as `sliding_window` (an int): config.json's
    sliding_window where some layer uses it -- layer_types lists a "sliding_attention" layer, or, with no layer_types
    (Mistral, Phi-3, Gemma 2/3 checkpoints), use_sliding_window is not false (Qwen2/2.5/3 keep a sliding_window but
    set use_sliding_window false, and their layers pass None). 0 when no layer slides."""
    window = text.get("sliding_window")
    if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
        return 0
    layer_types = text.get("layer_types")
    if isinstance(layer_types, list) and layer_types:
        return window if "sliding_attention" in layer_types else 0
    return 0 if text.get("use_sliding_window") is False else window


def sliding_layers(text: dict, layers: int) -> int:
    """How many decoder layers slide that window: layer_types' "sliding_attention" entries; with no layer_types
    (Mistral, Phi-3; older Gemma 2/3 configs, which alternate), every layer -- an upper bound on the count, so a
    KV size computed from it is a lower bound."""
    if not sliding_window(text):
        return 0
    layer_types = text.get("layer_types")
    if isinstance(layer_types, list) and layer_types:
        return min(layers, sum(1 for t in layer_types if t == "sliding_attention"))
    return layers
