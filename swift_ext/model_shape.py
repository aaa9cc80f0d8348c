"""The numbers the planner needs about a model: from its config.json, or a bundled preset."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import yaml

from swift_ext.errors import UserError

PRESETS = Path(__file__).parent / "presets"


@dataclass(frozen=True)
class Vision:
    depth: int
    hidden_size: int
    intermediate_size: int
    out_hidden_size: int


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
    gated_attention: bool = False  # Qwen3.5/3.6: q_proj also produces an output gate
    intermediate_size: int = 0  # dense FFN
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0
    full_attention_interval: int = 1  # every N-th layer is full attention; the rest Gated DeltaNet
    linear_num_key_heads: int = 0
    linear_num_value_heads: int = 0
    linear_key_head_dim: int = 0
    linear_value_head_dim: int = 0
    linear_conv_kernel_dim: int = 4
    mtp_num_layers: int = 0
    vision: Vision | None = None
    source: str = ""  # the config.json read, or the bundled preset file
    origin: str = ""  # which lookup found it: local directory, --model-config, bundled, ...

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def num_full_attention_layers(self) -> int:
        if self.linear_num_value_heads == 0:
            return self.num_layers
        return self.num_layers // self.full_attention_interval

    @property
    def num_linear_attention_layers(self) -> int:
        return self.num_layers - self.num_full_attention_layers

    # -- parameter counts (elements) ---------------------------------------------------------------
    def full_attention_params(self) -> int:
        q_out = self.num_attention_heads * self.head_dim * (2 if self.gated_attention else 1)
        kv_out = 2 * self.num_key_value_heads * self.head_dim
        return self.hidden_size * (q_out + kv_out) + self.num_attention_heads * self.head_dim * self.hidden_size

    def linear_attention_params(self) -> int:
        if not self.linear_num_value_heads:
            return 0
        k = self.linear_num_key_heads * self.linear_key_head_dim
        v = self.linear_num_value_heads * self.linear_value_head_dim
        in_proj = self.hidden_size * (2 * k + 2 * v + 2 * self.linear_num_value_heads)  # q,k,v,z + b,a
        conv = (2 * k + v) * self.linear_conv_kernel_dim
        return in_proj + conv + v * self.hidden_size

    def expert_params_per_layer(self) -> int:
        return self.num_experts * 3 * self.hidden_size * self.moe_intermediate_size

    def dense_mlp_params_per_layer(self) -> int:
        """Everything in the MLP that is not a routed expert: router, shared expert, or a dense FFN."""
        if self.is_moe:
            shared = 3 * self.hidden_size * self.shared_expert_intermediate_size
            gate = self.hidden_size if self.shared_expert_intermediate_size else 0
            return self.hidden_size * self.num_experts + shared + gate
        return 3 * self.hidden_size * self.intermediate_size

    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    def vision_params(self) -> int:
        if not self.vision:
            return 0
        v = self.vision
        blocks = v.depth * (4 * v.hidden_size**2 + 2 * v.hidden_size * v.intermediate_size)
        merger = (4 * v.hidden_size) ** 2 + 4 * v.hidden_size * v.out_hidden_size
        return blocks + merger

    def total_params(self) -> int:
        layers = (
            self.num_full_attention_layers * self.full_attention_params()
            + self.num_linear_attention_layers * self.linear_attention_params()
            + self.num_layers * (self.expert_params_per_layer() + self.dense_mlp_params_per_layer())
        )
        mtp = self.mtp_num_layers * (self.full_attention_params() + self.expert_params_per_layer()
                                     + self.dense_mlp_params_per_layer() + 2 * self.hidden_size**2)
        return layers + mtp + self.embedding_params() + self.vision_params()


def resolve_shape(model: str | None, model_config: str | Path | None = None) -> ModelShape:
    """Shape of `model`: --model-config file, else the local directory's config.json, else a preset."""
    if model_config is not None:
        return from_config_file(Path(model_config), name=model or str(model_config), origin="--model-config")
    if model is None:
        raise UserError.one("the recipe has no `args.model`", hint="set args.model, or pass --model-config PATH")
    local = Path(model).expanduser()
    if (local / "config.json").is_file():
        return from_config_file(local / "config.json", name=model, origin="local directory")
    presets = _presets()
    if model in presets:
        return presets[model]
    raise UserError.one(
        f"no model shape for '{model}': it is not a local directory with config.json and has no bundled preset",
        path="args.model",
        hint=f"pass --model-config PATH/TO/config.json (presets: {', '.join(sorted(k for k in presets if '/' in k))})",
    )


def from_config_file(path: Path, name: str, origin: str = "") -> ModelShape:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError.one("model config not found", file=str(path)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError.one(f"not a JSON config: {exc}", file=str(path)) from None
    if not isinstance(config, dict):
        raise UserError.one("not a JSON object", file=str(path))
    return replace(from_config(config, name=name, source=str(path)), origin=origin)


def from_config(config: dict, name: str, source: str = "") -> ModelShape:
    text = config.get("text_config") or config  # VL models nest the language model's numbers
    try:
        hidden = int(text["hidden_size"])
        heads = int(text["num_attention_heads"])
        layer_types = text.get("layer_types")
        interval = int(text.get("full_attention_interval") or 0)
        if layer_types and not interval:
            full = sum(1 for t in layer_types if t == "full_attention")
            interval = max(1, len(layer_types) // max(full, 1))
        vision = None
        vc = config.get("vision_config")
        if isinstance(vc, dict) and "depth" in vc:
            vision = Vision(int(vc["depth"]), int(vc["hidden_size"]), int(vc.get("intermediate_size", 4 * vc["hidden_size"])),
                            int(vc.get("out_hidden_size", hidden)))
        return ModelShape(
            name=name,
            model_type=str(config.get("model_type") or text.get("model_type") or "unknown"),
            num_layers=int(text["num_hidden_layers"]),
            hidden_size=hidden,
            num_attention_heads=heads,
            num_key_value_heads=int(text.get("num_key_value_heads") or heads),
            head_dim=int(text.get("head_dim") or hidden // heads),
            vocab_size=int(text["vocab_size"]),
            tie_word_embeddings=bool(text.get("tie_word_embeddings", config.get("tie_word_embeddings", False))),
            gated_attention=bool(text.get("attn_output_gate", "qwen3_5" in str(config.get("model_type", "")))),
            intermediate_size=int(text.get("intermediate_size") or 0),
            num_experts=int(text.get("num_experts") or text.get("n_routed_experts") or 0),
            num_experts_per_tok=int(text.get("num_experts_per_tok") or 0),
            moe_intermediate_size=int(text.get("moe_intermediate_size") or 0),
            shared_expert_intermediate_size=int(text.get("shared_expert_intermediate_size") or 0),
            full_attention_interval=interval or 1,
            linear_num_key_heads=int(text.get("linear_num_key_heads") or 0),
            linear_num_value_heads=int(text.get("linear_num_value_heads") or 0),
            linear_key_head_dim=int(text.get("linear_key_head_dim") or 0),
            linear_value_head_dim=int(text.get("linear_value_head_dim") or 0),
            linear_conv_kernel_dim=int(text.get("linear_conv_kernel_dim") or 4),
            mtp_num_layers=int(text.get("mtp_num_hidden_layers") or 0),
            vision=vision,
            source=source,
        )
    except KeyError as exc:
        raise UserError.one(f"model config lacks {exc.args[0]!r}", file=source or name) from None
    except (TypeError, ValueError) as exc:
        raise UserError.one(f"model config has a malformed value: {exc}", file=source or name) from None


@lru_cache(maxsize=1)
def _presets() -> dict[str, ModelShape]:
    out: dict[str, ModelShape] = {}
    for path in sorted(PRESETS.glob("*.yaml")):
        for name, raw in yaml.safe_load(path.read_text()).items():
            raw = dict(raw)
            aliases = raw.pop("aliases", [])
            vision = raw.pop("vision", None)
            raw.pop("source", None)
            shape = ModelShape(name=name, vision=Vision(**vision) if vision else None, source=str(path),
                               origin="bundled", **raw)
            for key in [name, *aliases]:
                out[key] = shape
    return out
