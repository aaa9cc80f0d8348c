"""Rules on packed input (packing / padding_free) to the transformers implementation of Gated DeltaNet (the linear
attention of Qwen3-Next and Qwen3.5/3.6), both engines: the transformers engine, where ms-swift's template must hand the
pack's boundaries to the layer, and the Megatron engine when mcore-bridge wraps the transformers layer
(USE_MCORE_GDN=0). Megatron's default, mcore-bridge's own GatedDeltaNet, takes the pack's cu_seqlens and is not judged
here (megatron-core's own GDN under bridge_backend megatron-bridge is layout.py's linear-attention-packed).
Also here: the transformers release that knows these model types (transformers-model), engine swift's sequence
parallelism on Qwen3-Next (linear-attention-sp-swift) and the TP gradient reduction of megatron-core's GatedDeltaNet
output norm (linear-attention-norm-tp).
Registered with the shared engine rules (warn_rules.ENGINE_RULES)."""

from __future__ import annotations

from swift_ext.msswift.model_table import template_for
from swift_ext.planner.mcore_config import is_on
from swift_ext.spec.support import BY_FEATURE, TRANSFORMERS_MODEL_FEATURES, resolve_versions, version_gaps

LINEAR_ATTENTION_RULES: list = []

# mcore-bridge utils.get_env_args(..., bool, True) reads the variable through strtobool: these spell false.
_FALSE = ("0", "false", "f", "n", "no", "off")
# ms-swift 4.6 templates for Qwen3.5 checkpoints whose _post_encode does not run Qwen3_5Template's packing check
# (swift/template/templates/qwen.py Qwen3_5EmbTemplate._post_encode).
_NO_PACKING_CHECK_TEMPLATES = ("qwen3_5_emb",)


def linear_attention_rule(fn):
    LINEAR_ATTENTION_RULES.append(fn)
    return fn


def _packed_key(args) -> str | None:
    """The argument that sends packed rows to the model: packing (which forces padding_free) or padding_free."""
    return "packing" if args.bool("packing") else "padding_free" if args.bool("padding_free") else None


@linear_attention_rule
def transformers_model_type(recipe, args, shape, lay, err, warn):
    # Both engines load the checkpoint's config through transformers' AutoConfig (ms-swift 4.6 swift/model/register.py
    # ModelLoader.load -> get_config, from get_model_processor: SwiftSft's model set-up, and Megatron's
    # megatron/pipelines/train/sft.py MegatronSft.__init__ with load_model=False, which still reads the config); a
    # release older than the model type raises there, before any GPU work. (The earlier read in
    # swift/model/model_meta.py _get_model_info, from get_model_info_meta, catches that error and falls back to the
    # raw dict.) ms-swift's registry only warns about its `requires` (ModelMeta.check_requires). Judged on a declared
    # or installed transformers.
    if not shape.model_type:
        return
    versions = resolve_versions(recipe.env)
    for feature in TRANSFORMERS_MODEL_FEATURES:
        row = BY_FEATURE[feature]
        if not shape.model_type.startswith(row.model_types):
            continue
        for gap in version_gaps(feature, versions):
            err("transformers-model", f"{row.what}: {gap}; that release does not know model_type "
                f"{shape.model_type}, and reading {shape.name}'s config.json stops the run at start-up (\"The "
                f"checkpoint you are trying to load has model type `{shape.model_type}` but Transformers does not "
                "recognize this architecture\")", "model",
                hint=f"transformers >= {row.needs['transformers']} on the training machine (declare it with "
                "SWIFT_EXT_TARGET_VERSIONS transformers=...)")


@linear_attention_rule
def qwen3_next_packed_swift(recipe, args, shape, lay, err, warn):
    # ms-swift 4.6 registers Qwen3-Next with the plain qwen3_nothinking / qwen3_thinking / qwen3_coder templates, whose
    # padding-free collator (template/base.py Template._data_collator) sends position_ids only; transformers'
    # Qwen3NextGatedDeltaNet.forward (models/qwen3_next/modeling_qwen3_next.py) runs its causal conv and
    # chunk_gated_delta_rule with cu_seqlens=kwargs.pop("cu_seq_lens_q", None), i.e. over the whole pack. The
    # full-attention layers split the pack from position_ids; the GDN state runs from one sample into the next. Only
    # Qwen3.5/3.6 get ms-swift's patch (swift/model/models/qwen.py _patch_qwen3_5_linear_attention_sequence_parallel,
    # fed by Qwen2VLTemplate._data_collator's get_packed_seq_params).
    if recipe.engine != "swift" or not shape.linear_num_value_heads or not shape.model_type.startswith("qwen3_next"):
        return
    key = _packed_key(args)
    if key is None:
        return
    warn("linear-attention-packed-swift", f"{shape.name}'s Gated DeltaNet layers get no sample boundaries on the "
         f"transformers engine: with {key} the linear-attention state runs from one packed sample into the next "
         "(no error; the loss looks normal)", key,
         hint=f"{key}: false, or engine: megatron (mcore-bridge's GatedDeltaNet takes the pack's cu_seqlens; "
         "ms-swift's docs: Qwen3-Next/Qwen3.5 packing belongs on Megatron-SWIFT)")


@linear_attention_rule
def qwen3_5_packed_swift(recipe, args, shape, lay, err, warn):
    # ms-swift 4.6 template/templates/qwen.py Qwen3_5Template._post_encode (the transformers engine's forward pre-hook,
    # template/base.py Template.pre_forward_hook) raises "Qwen3.5 packing/padding_free with sequence_parallel_size=1
    # requires transformers>=5.9.0" at the first forward: below 5.9 transformers drops cu_seq_lens_q before the
    # GatedDeltaNet and the packed samples' state ran together silently (ms-swift#9618). Under sequence parallelism
    # ms-swift's own GDN forward derives the boundaries and the template lets it through.
    if recipe.engine != "swift" or not shape.linear_num_value_heads or not shape.model_type.startswith("qwen3_5"):
        return
    key = _packed_key(args)
    if key is None or (args.int("sequence_parallel_size", 1) or 1) > 1:
        return
    gaps = version_gaps("packed-linear-attention-swift", resolve_versions(recipe.env))
    if not gaps:
        return
    choice = template_for(args.str("model"), args.str("model_type"), args.str("template"))
    if choice is not None and choice.template in _NO_PACKING_CHECK_TEMPLATES:
        # Qwen3_5EmbTemplate._post_encode (the qwen3_5_emb embedding models, config.json model_type qwen3_5) replaces
        # Qwen3_5Template's and skips the version check: the run goes on, the pack's state runs together (ms-swift#9618)
        warn("linear-attention-packed-swift", f"{key} on {shape.name} with template {choice.template} below transformers "
             f"5.9 ({'; '.join(gaps)}): that template does not refuse it, and the Gated DeltaNet gets no sample "
             "boundaries -- the linear-attention state runs from one packed sample into the next (no error)", key,
             hint=f"transformers >= 5.9 on the training machine, or {key}: false")
        return
    err("linear-attention-packed-swift", f"{key} on {shape.name} without sequence parallelism needs transformers >= "
        f"5.9 ({'; '.join(gaps)}): ms-swift's Qwen3.5 template stops the first forward (\"Qwen3.5 "
        "packing/padding_free with sequence_parallel_size=1 requires transformers>=5.9.0\"); older releases drop "
        "the pack's boundaries before the Gated DeltaNet", key,
        hint="transformers >= 5.9 on the training machine (declare it with SWIFT_EXT_TARGET_VERSIONS "
        f"transformers=...), {key}: false" + (" and padding_free: false" if key == "packing" else "")
        + ", or engine: megatron (mcore-bridge's GatedDeltaNet takes the pack's cu_seqlens)")


@linear_attention_rule
def qwen3_next_sequence_parallel_swift(recipe, args, shape, lay, err, warn):
    # Engine swift's sequence parallelism (swift/sequence_parallel/sequence_parallel.py SequenceParallel.prepare ->
    # _prepare_forward_hook) splits input_ids / position_ids along the sequence before the decoder runs, and only
    # attention (_prepare_flash_attn) gathers the heads' whole sequence back. ms-swift 4.6 gives the Gated DeltaNet layers
    # a sequence-parallel forward for Qwen3.5/3.6 only (swift/model/models/qwen.py
    # _patch_qwen3_5_linear_attention_sequence_parallel patches Qwen3_5GatedDeltaNet / Qwen3_5MoeGatedDeltaNet; the
    # qwen3_next loader patches nothing): transformers' Qwen3NextGatedDeltaNet.forward runs its causal conv and gated
    # delta rule over the rank's own slice, every slice starting from a zero state -- each rank but the first loses the
    # context before its slice in 3 layers of 4, with no error.
    sp = args.int("sequence_parallel_size", 1) or 1
    if recipe.engine != "swift" or sp <= 1 or not shape.linear_num_value_heads:
        return
    if not shape.model_type.startswith("qwen3_next"):
        return
    warn("linear-attention-sp-swift", f"sequence_parallel_size {sp} on {shape.name}: ms-swift splits the sequence over "
         f"{sp} ranks but gives only Qwen3.5/3.6's Gated DeltaNet a sequence-parallel forward; Qwen3-Next's "
         "linear-attention layers run on each rank's slice alone, so every slice after the first starts from an empty "
         "state (no error; the loss looks plausible)", "sequence_parallel_size",
         hint="sequence_parallel_size: 1, or engine: megatron with tensor parallelism (it splits the heads, "
         "not the sequence)")


@linear_attention_rule
def qwen3_5_packed_hf_gdn(recipe, args, shape, lay, err, warn):
    # USE_MCORE_GDN=0 (ms-swift's NPU practice) makes mcore-bridge 1.6.3 build Qwen3.5/3.6's linear attention from
    # transformers' Qwen3_5MoeGatedDeltaNet (model/mm_gpts/qwen3_5.py); its forward raises on packed THD input ("Packed
    # (thd) varlen forward for Qwen3.5 requires transformers>=5.9.0") below transformers 5.9, whose GatedDeltaNet first
    # takes cu_seq_lens_q (huggingface/transformers#45034). Megatron's padding_free defaults to true.
    if recipe.engine != "megatron" or not shape.linear_num_value_heads or not shape.model_type.startswith("qwen3_5"):
        return
    if str((recipe.env or {}).get("USE_MCORE_GDN", "")).strip().lower() not in _FALSE:
        return
    key = _packed_key(args)
    gaps = version_gaps("packed-linear-attention-hf", resolve_versions(recipe.env))
    if key is None or not gaps:
        return
    err("linear-attention-packed", f"USE_MCORE_GDN=0 builds {shape.name}'s Gated DeltaNet from transformers, whose "
        f"forward refuses the packed input {key} gives it ({'; '.join(gaps)}): \"Packed (thd) varlen forward for "
        "Qwen3.5 requires transformers>=5.9.0\" at the first step", key,
        hint="transformers >= 5.9 on the training machine (declare it with SWIFT_EXT_TARGET_VERSIONS transformers=...), "
        f"USE_MCORE_GDN unset (mcore-bridge's own GatedDeltaNet), or {key}: false"
        + (" and padding_free: false" if key == "packing" else ""))


@linear_attention_rule
def gdn_out_norm_tp(recipe, args, shape, lay, err, warn):
    # megatron-core 0.16.1 ssm/gated_delta_net.py GatedDeltaNet: out_norm (TENorm over value_head_dim) normalises the
    # rank's own value heads, so its weight -- replicated over TP -- gets a partial gradient on each rank.
    # distributed/finalize_model_grads.py _allreduce_non_tensor_model_parallel_grads sums a replicated weight over TP
    # only when config.sequence_parallel and the weight carries sequence_parallel, which TE's RMSNorm sets from its
    # sequence_parallel argument (TENorm passes config.sequence_parallel). Without SP nothing reduces it: each TP rank
    # trains its own copy and the checkpoint keeps one. mcore-bridge 1.6.3's GatedDeltaNet (USE_MCORE_GDN, the default)
    # subclasses it and marks nothing; megatron-bridge builds megatron-core's. USE_MCORE_GDN=0 runs transformers' layer
    # whole on every rank (nothing split). MoE models need SP at TP > 1 anyway (sequence-parallel); LoRA freezes the norm.
    if recipe.engine != "megatron" or not shape.linear_num_value_heads or shape.is_moe or lay.tp <= 1:
        return
    if is_on(args, "sequence_parallel") or (args.str("tuner_type") or "full") != "full":
        return
    hf_gdn = str((recipe.env or {}).get("USE_MCORE_GDN", "")).strip().lower() in _FALSE
    if hf_gdn and args.str("bridge_backend") != "megatron-bridge":
        return
    warn("linear-attention-norm-tp", f"TP={lay.tp} without sequence_parallel on {shape.name}: the Gated DeltaNet output "
         "norm weight is replicated over TP but each rank sees only its own value heads, and megatron-core sums its "
         "gradient over TP only under sequence_parallel -- every TP rank trains its own copy and the saved model keeps "
         "one (no error)", "sequence_parallel", hint="sequence_parallel: true")
