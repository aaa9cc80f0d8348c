"""VeRA's one shared projection against the model's module sizes (engine swift): ms-swift 4.6
swift/pipelines/train/tuner.py get_vera_target_modules (from prepare_adapter, before step 1) collects the Linear
modules whose names contain a target; when they differ in shape it keeps only those sized like the first target
naming a 'v' -- and with no such target raises "Please manually pass in `vera_target_modules`, do not use
`all-linear`". all-linear resolves to names that include v_proj, so only an explicit list without one trips it.
Registered with warn_rules.ENGINE_RULES."""

from __future__ import annotations

# Text-only families whose decoder layers carry exactly these Linear names (q/k/v/o_proj, gate/up/down_proj), so the
# sizes follow from the config; others (fused qkv, MLA, experts, vision towers) are not judged.
STANDARD_TYPES = ("llama", "qwen2", "qwen3", "mistral")


def _sizes(shape) -> dict[str, tuple[int, int]]:
    q = shape.num_attention_heads * shape.head_dim
    kv = shape.num_key_value_heads * shape.head_dim
    h, f = shape.hidden_size, shape.intermediate_size
    return {"q_proj": (q, h), "k_proj": (kv, h), "o_proj": (h, q), "gate_proj": (f, h), "up_proj": (f, h),
            "down_proj": (h, f)}


def vera_mixed_sizes(recipe, args, shape, lay, err, warn):
    if recipe.engine != "swift" or recipe.command not in ("sft", "pt", "rlhf") or args.str("tuner_type") != "vera":
        return
    # TunerMixin.prepare_model calls prepare_adapter only for a new adapter; resume_from_checkpoint / adapters load the
    # saved VeRA with Swift.from_pretrained, and get_vera_target_modules never runs.
    if args.str("resume_from_checkpoint") or args.list("adapters"):
        return
    targets = [str(t) for t in args.list("target_modules") or []]
    if not targets or args.str("target_regex") or any("v" in t for t in targets):
        return  # the default all-linear, a regex, or a target naming 'v': ms-swift picks the sizes itself
    if shape.model_type not in STANDARD_TYPES or shape.num_experts or shape.gated_attention \
            or shape.full_attention_interval != 1 or not shape.intermediate_size:
        return
    sizes = _sizes(shape)
    if not all(t in sizes for t in targets):
        return
    found = {t: sizes[t] for t in targets}
    if len(set(found.values())) > 1:
        listed = ", ".join(f"{t} {a}x{b}" for t, (a, b) in found.items())
        err("vera-target-sizes", f"tuner_type vera shares one projection across its targets, and these differ in "
            f"size ({listed}) with none naming a 'v' module: prepare_adapter raises at start-up", "target_modules",
            hint="target_modules of one size (e.g. [q_proj, o_proj]), or add v_proj (ms-swift then keeps the "
                 "modules sized like it)")


VERA_RULES = [vera_mixed_sizes]
