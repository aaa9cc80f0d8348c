"""deterministic_mode, which ms-swift 4.6 has no argument for: it reaches megatron-core's config only through
megatron_extra_kwargs (swift/megatron/model/utils.py get_mcore_model_config updates the config kwargs with them).
megatron-core 0.16.1 and mcore-bridge 1.6.3 then refuse two things when the model is built or first runs; Megatron-LM's
own --deterministic-mode checks (megatron/training/arguments.py: NCCL_ALGO, cross-entropy fusion) are not installed
and ms-swift does not run them. Registered with layout.py's rules (engine megatron)."""

from __future__ import annotations

from swift_ext.planner.mcore_config import is_on

# mcore-bridge utils.get_env_args(..., bool, True) reads USE_MCORE_GDN through strtobool: these spell false.
_FALSE = ("0", "false", "f", "n", "no", "off")


def _packed_key(args) -> str | None:
    return "packing" if args.bool("packing") else "padding_free" if args.bool("padding_free") else None


def deterministic_te_attention(recipe, args, shape, lay, err, warn):
    # megatron-core extensions/transformer_engine.py TEDotProductAttention.__init__: with config.deterministic_mode,
    # `int(os.getenv("NVTE_ALLOW_NONDETERMINISTIC_ALGO", "1")) != 0` raises RuntimeError ("deterministic_mode is on
    # and we are using DotProductAttention from Transformer Engine, but NVTE_ALLOW_NONDETERMINISTIC_ALGO is not 0")
    # when the model is built. Every model ms-swift builds through mcore-bridge uses the Transformer Engine layer
    # spec, so its attention layers are TEDotProductAttention.
    if recipe.engine != "megatron" or not is_on(args, "deterministic_mode"):
        return
    value = (recipe.env or {}).get("NVTE_ALLOW_NONDETERMINISTIC_ALGO")
    if value is not None and str(value).strip() == "0":
        return
    message = ("megatron_extra_kwargs sets deterministic_mode, and megatron-core's TEDotProductAttention raises "
               "RuntimeError when the model is built unless NVTE_ALLOW_NONDETERMINISTIC_ALGO is 0")
    hint = "env: {NVTE_ALLOW_NONDETERMINISTIC_ALGO: '0'} (Transformer Engine then picks deterministic attention kernels)"
    if value is None:
        # The launching shell may export it; the recipe does not say, so this is said, not refused.
        warn("deterministic-mode", message + " (the recipe's env does not set it)", "megatron_extra_kwargs", hint=hint)
    else:
        err("deterministic-mode", message + f" (the recipe's env sets {value!r})", "megatron_extra_kwargs", hint=hint)


def deterministic_packed_gdn(recipe, args, shape, lay, err, warn):
    # mcore-bridge 1.6.3 model/modules/gated_delta_net.py GatedDeltaNet.forward: under config.deterministic_mode the
    # conv1d runs through F.conv1d after `assert cu_seqlens is None, 'Packed sequences are not supported when fla is
    # not available.'`, and the delta rule through torch_chunk_gated_delta_rule after `assert cu_seqlens is None`.
    # cu_seqlens comes from packed_seq_params, which ms-swift passes whenever padding_free (Megatron's default: true)
    # or packing is on. The first forward step fails on every rank.
    if recipe.engine != "megatron" or not is_on(args, "deterministic_mode") or not shape.linear_num_value_heads:
        return
    if args.str("bridge_backend") == "megatron-bridge":
        return  # megatron-core's own GatedDeltaNet: layout.py's linear-attention-packed judges packed input there
    if str((recipe.env or {}).get("USE_MCORE_GDN", "")).strip().lower() in _FALSE:
        return  # the transformers GatedDeltaNet (linear_attention_rules.py): no deterministic_mode branch
    key = _packed_key(args)
    if key is None or (args.str("attention_backend") or "flash") == "unfused":
        # swift/megatron/model/utils.py _check_padding_free turns padding_free off under the unfused backend (packing
        # included): the batches go in unpacked, cu_seqlens is None, and the deterministic GDN path runs.
        return
    err("deterministic-mode", f"deterministic_mode (megatron_extra_kwargs) with {key}: mcore-bridge's GatedDeltaNet "
        f"({shape.name}'s linear attention) takes its deterministic path only on unpacked input and asserts "
        "'Packed sequences are not supported when fla is not available.' at the first forward step", key,
        hint=f"{key}: false" + (" and padding_free: false" if key == "packing" else "")
        + ", or drop deterministic_mode")


DETERMINISM_RULES = [deterministic_te_attention, deterministic_packed_gdn]
