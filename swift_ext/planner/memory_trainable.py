"""Which parameters the optimizer updates: gradients and Adam state exist only for those.

ms-swift (megatron/utils/utils.py prepare_mcore_model, tuner_type full) freezes by name, then unfreezes:
1. `_init_multimodal_full` (megatron/arguments/megatron_args.py), multimodal models only and not with
   `language_model_only`: `freeze_llm` adds the prefix `language_model`, `freeze_vit` the vision tower's
   `visual.*` prefixes, `freeze_aligner` the aligner's (else the aligner is added to trainable_parameters);
   on a text-only model these three flags change nothing;
2. swift.utils.freeze_parameters: `freeze_parameters_ratio` (the first share of model.parameters(), bottom
   up), `freeze_parameters` (name prefixes), `freeze_parameters_regex` (re.search);
3. swift.utils.activate_parameters: `trainable_parameters` (prefixes), `trainable_parameters_regex`.
With LoRA only the adapters train; with target_modules all-linear on a multimodal model the adapters go
on the language model unless freeze_llm, on the vision tower unless freeze_vit (get_target_modules ->
get_multimodal_target_regex). ms-swift has no separate option to freeze experts: a regex does it.

The names matched are megatron-core's (mcore-bridge nests the language model under `language_model.` in a
multimodal model), one representative name per parameter group the model shape knows, so a regex over
layer numbers, `mlp.experts`, `self_attention`, `embedding` or `output_layer` selects what it would select
in the real model; groups finer than the shape knows (a single expert, a norm) are not told apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from swift_ext.planner.model_shape import ModelShape


@dataclass(frozen=True)
class Group:
    name: str  # a megatron-core parameter name
    params: int
    kind: str  # "dense" (sharded by TP), "expert" (by EP*ETP), "vision" (replicated)
    where: str  # "embed", "layer", "head", "mtp", "vision"
    layer: int = -1


def parameter_groups(shape: ModelShape, mtp_layers: int, multimodal_prefix: bool) -> list[Group]:
    """The model's parameters in model.parameters() order (embedding, layers, output, MTP; the vision tower
    last), grouped as far as the shape knows them."""
    p = "language_model." if multimodal_prefix else ""
    h = shape.hidden_size
    groups = [Group(f"{p}embedding.word_embeddings.weight", shape.vocab_size * h, "dense", "embed")]
    for i in range(shape.num_layers):
        groups += [Group(f"{p}decoder.layers.{i}.{n}", c, k, "layer", i) for n, c, k in _layer(shape, i)]
    if not shape.tie_word_embeddings:
        groups.append(Group(f"{p}output_layer.weight", shape.vocab_size * h, "dense", "head"))
    for j in range(mtp_layers):
        base = f"{p}mtp.layers.{j}"
        groups.append(Group(f"{base}.eh_proj.weight", 2 * h * h, "dense", "mtp"))
        groups += [Group(f"{base}.transformer_layer.{n}", c, k, "mtp") for n, c, k in _layer(shape, -1)]
    if shape.vision:
        v = shape.vision
        groups += [Group(f"visual.blocks.{i}.weight", v.block_params(), "vision", "vision") for i in range(v.depth)]
        groups.append(Group("visual.merger.weight", v.merger_params(), "vision", "aligner"))
    return groups


def _layer(shape: ModelShape, i: int) -> list[tuple[str, int, str]]:
    """(name within the layer, parameters, kind) for decoder layer i (-1: an MTP layer, full attention)."""
    h = shape.hidden_size
    linear = shape.linear_num_value_heads and i >= 0 and (i + 1) % shape.full_attention_interval != 0
    if linear:  # Gated DeltaNet
        out = shape.linear_num_value_heads * shape.linear_value_head_dim * h
        attn = [("self_attention.in_proj.weight", shape.linear_attention_params() - out, "dense"),
                ("self_attention.out_proj.weight", out, "dense")]
    else:
        proj = shape.num_attention_heads * (shape.v_head_dim if shape.is_mla else shape.head_dim) * h
        attn = [("self_attention.linear_qkv.weight", shape.full_attention_params() - proj, "dense"),
                ("self_attention.linear_proj.weight", proj, "dense")]
    moe = shape.is_moe and (i < 0 or i >= shape.num_dense_layers)
    if moe:
        inter, shared = shape.moe_intermediate_size, shape.shared_expert_intermediate_size
        mlp = [("mlp.router.weight", h * shape.num_experts, "dense"),
               ("mlp.experts.linear_fc1.weight", shape.num_experts * 2 * h * inter, "expert"),
               ("mlp.experts.linear_fc2.weight", shape.num_experts * inter * h, "expert")]
        if shared:
            mlp += [("mlp.shared_experts.linear_fc1.weight", 2 * h * shared, "dense"),
                    ("mlp.shared_experts.linear_fc2.weight", shared * h, "dense")]
    else:
        mlp = [("mlp.linear_fc1.weight", 2 * h * shape.intermediate_size, "dense"),
               ("mlp.linear_fc2.weight", shape.intermediate_size * h, "dense")]
    return attn + mlp


def trainable_names(groups: list[Group], args, multimodal: bool) -> set[str]:
    """Names of the groups a full fine-tune updates, by ms-swift's own steps (module docstring)."""
    freeze = [str(x) for x in args.list("freeze_parameters")]
    unfreeze = [str(x) for x in args.list("trainable_parameters")]
    if multimodal:
        if args.bool("freeze_llm"):
            freeze.append("language_model")
        if args.bool("freeze_vit"):
            freeze.append("visual.blocks")
        if args.bool("freeze_aligner"):
            freeze.append("visual.merger")
        else:
            unfreeze.append("visual.merger")
    frozen: set[str] = set()
    ratio = args.float("freeze_parameters_ratio") or 0.0
    if ratio > 0:
        budget, seen = int(sum(g.params for g in groups) * ratio), 0
        for g in groups:  # bisect_right over the cumulative counts: whole groups below the budget
            seen += g.params
            if seen > budget:
                break
            frozen.add(g.name)
    frozen |= {g.name for g in groups if any(g.name.startswith(f) for f in freeze)}
    frozen |= _regex_hits(groups, args.str("freeze_parameters_regex"))
    active = {g.name for g in groups if any(g.name.startswith(t) for t in unfreeze)}
    active |= _regex_hits(groups, args.str("trainable_parameters_regex"))
    return {g.name for g in groups if g.name not in frozen or g.name in active}


def _regex_hits(groups: list[Group], pattern: str | None) -> set[str]:
    if not pattern:
        return set()
    try:
        compiled = re.compile(pattern)
    except re.error:  # ms-swift logs a warning and ignores it
        return set()
    return {g.name for g in groups if compiled.search(g.name)}


def is_multimodal(shape: ModelShape, args) -> bool:
    return shape.vision is not None and not args.bool("language_model_only")
