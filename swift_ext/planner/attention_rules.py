"""Attention-backend rules of ms-swift's Megatron model build (engine megatron): checks ms-swift 4.6 makes in
swift/megatron/model/utils.py get_mcore_model_config once the model config is built on every rank, after the
checkpoint is found and the job has started. Registered with layout.py's rules."""

from __future__ import annotations

from swift_ext.planner.mcore_config import config_value, flag
from swift_ext.planner.mcore_config_rules import DSA_MODEL_TYPES
from swift_ext.planner.model_shape import GEMMA4_TYPES, ModelShape
from swift_ext.spec.gpus import GPUS
from swift_ext.spec.support import version_gaps


def attention_backend(args) -> str:
    # ms-swift 4.6 MegatronArguments.attention_backend defaults to 'flash'; _init_attention_backend turns
    # 'flash_2'/'flash_3'/'flash_4' into 'flash' (pinning the flash-attn version).
    value = args.str("attention_backend") or "flash"
    return "flash" if value.startswith("flash_") else value


# Evidence: ms-swift 4.6 swift/megatron/model/utils.py _check_attention_backend: 'Attention backend "flash" does
# not support learnable softmax_type.'; mcore-bridge config/parser.py hf_to_mcore_config sets
# softmax_type='learnable' for gpt_oss language models (1.6.3 parser.py:239, 1.6.5 :320) (the attention sinks). ms-swift's own gpt-oss example
# (examples/models/gpt_oss/mcore.sh) passes --attention_backend unfused and --padding_free false. Report:
# verl-project/verl#5224 (GPT-OSS-20B on Megatron with the flash backend: no attention backend available).
def learnable_softmax_backend(recipe, args, shape: ModelShape, lay, err, warn):
    if shape.softmax_type != "learnable" or attention_backend(args) != "flash":
        return
    stated = "" if args.has("attention_backend") else " (ms-swift's default)"
    err("attention-backend", f"{shape.name} uses attention sinks (learnable softmax) and attention_backend is "
        f"flash{stated}: ms-swift refuses the pair when it builds the model", "attention_backend",
        hint="attention_backend: unfused with padding_free: false (ms-swift's gpt-oss example), or fused where "
        "cuDNN >= 9.18 gives TransformerEngine's fused attention the sinks (verl-project/verl#5224)")


# Evidence: Transformer Engine's backend selection (transformer_engine/pytorch/attention/dot_product_attention/
# utils.py get_attention_backend, "Filter: Softmax type"): for softmax_type != vanilla it disables flash always,
# unfused under context parallel, and fused under context parallel unless cp_comm_type == "a2a" ("Disabling
# FusedAttention for context parallelism with softmax_type = %s and cp_comm_type = %s"); TE's own CP tests skip
# non-vanilla softmax for every cp_comm_type but a2a (tests/pytorch/attention/test_attention_with_cp.py). Reports:
# NVIDIA-NeMo/Megatron-Bridge#2298 (gpt-oss-20b, CP > 1 with the default cp_comm_type: "No dot product attention
# backend is available") and NVIDIA/TransformerEngine#2541 (gpt-oss under CP: p2p finds no backend, "I have to change
# cp_comm_type to a2a to enable FusedAttention"); Megatron-Bridge's gpt-oss recipe sets cp_comm_type "a2a" whenever
# CP > 1 ("only a2a cp is supported for sink attention"). megatron-core 0.16.1 hands TE cp_comm_type "p2p" when it is
# unset (extensions/transformer_engine.py TEDotProductAttention), per layer when it is a list; attention_backend
# unfused leaves TE only the unfused backend and local is megatron-core's own attention, which asserts CP 1
# (transformer/dot_product_attention.py), so only fused or auto with a2a on every layer reaches TE's fused kernel.
# Scope: models mcore-bridge builds with learnable softmax (gpt-oss's attention sinks; model_shape softmax_type),
# engine megatron, context_parallel_size > 1, unless cp_comm_type is a2a on every layer and attention_backend is fused
# or auto (flash alone is already refused above).
def _all_a2a(args) -> bool:
    value = config_value(args, "cp_comm_type")
    values = value if isinstance(value, (list, tuple)) else [value]
    return bool(values) and all(v == "a2a" for v in values)


def attention_sinks_context_parallel(recipe, args, shape: ModelShape, lay, err, warn):
    if shape.softmax_type != "learnable" or lay.cp == 1:
        return
    backend = attention_backend(args)
    if backend in ("fused", "auto") and _all_a2a(args):
        return
    comm = config_value(args, "cp_comm_type") or "p2p (the default)"
    err("attention-sinks-cp", f"{shape.name} uses attention sinks (learnable softmax) and context_parallel_size is "
        f"{lay.cp} with cp_comm_type {comm} and attention_backend {backend}: Transformer Engine has no attention "
        "backend for it (flash refuses learnable softmax, unfused refuses it under context parallel, fused takes it "
        "only with cp_comm_type a2a; NVIDIA-NeMo/Megatron-Bridge#2298, NVIDIA/TransformerEngine#2541)",
        "context_parallel_size",
        hint="cp_comm_type: a2a with attention_backend: fused (Megatron-Bridge's gpt-oss recipe under CP), or "
             "context_parallel_size: 1")


# Evidence: Transformer Engine pytorch/attention/dot_product_attention/utils.py get_attention_backend ("Filter: context
# parallelism"): `if context_parallel and use_unfused_attention:` -> "Disabling UnfusedDotProductAttention as it does
# not support context parallelism" -- whatever the model, head dims or softmax; only FlashAttention and FusedAttention
# carry TE's CP implementations (context_parallel.py attn_forward_func_with_cp: "Context parallelism is only
# implemented with Flash Attention and Fused Attention!"). megatron-core 0.16.1 LanguageModule._set_attention_backend
# turns attention_backend unfused into NVTE_FLASH_ATTN=0 / NVTE_FUSED_ATTN=0 / NVTE_UNFUSED_ATTN=1 and local into all
# three 0, while mcore-bridge builds every attention layer on TE's DotProductAttention (model/register.py:
# use_transformer_engine=True); megatron-core's own local DotProductAttention asserts "Context parallelism is only
# supported by TEDotProductAttention!" (transformer/dot_product_attention.py). So unfused or local under CP > 1 leaves
# no backend at the first forward. ms-swift 4.6 turns padding_free off for unfused (_check_padding_free), which does
# not bring the unfused kernel back under CP. Report: NVIDIA/TransformerEngine#1051 (CP with the unfused path: "Context
# parallelism is only implemented with Flash Attention and Fused Attention!"). Scope: engine megatron, CP > 1,
# attention_backend unfused or local, models whose attention is TE's DotProductAttention (not the DSA models; the
# learnable-softmax models are attention-sinks-cp's). local is megatron-core's path on CUDA; on Ascend (MindSpeed's own
# attention) it is said, not refused, when launch.gpu names no card.
def unfused_context_parallel(recipe, args, shape: ModelShape, lay, err, warn):
    backend = attention_backend(args)
    if lay.cp == 1 or backend not in ("unfused", "local") or shape.model_type in DSA_MODEL_TYPES \
            or shape.softmax_type == "learnable":
        return
    msg = (f"attention_backend {backend} with context_parallel_size {lay.cp}: Transformer Engine runs context "
           "parallel attention only in its flash and fused backends (it disables the unfused one under CP; local turns "
           "all three off, and megatron-core's own local attention asserts CP 1): the first forward finds no attention "
           "backend")
    hint = "attention_backend: flash (ms-swift's default) or fused, or context_parallel_size: 1"
    if backend == "local" and recipe.launch.gpu not in GPUS:
        warn("attention-cp", msg + " (on CUDA; Ascend's MindSpeed brings its own attention: launch.gpu is not set)",
             "attention_backend", hint=hint)
        return
    err("attention-cp", msg, "attention_backend", hint=hint)


# Evidence: megatron-core 0.16.1 models/common/language_module/language_module.py
# LanguageModule._set_attention_backend sets NVTE_FLASH_ATTN, NVTE_FUSED_ATTN and NVTE_UNFUSED_ATTN all to 0 for
# attention_backend local (meant for megatron-core's own DotProductAttention), but mcore-bridge 1.6.3 builds every
# layer from the Transformer Engine spec (model/register.py ModelLoader.get_transformer_layer_spec:
# get_gpt_decoder_block_spec(use_transformer_engine=True); megatron-core models/backends.py
# TESpecProvider.core_attention is TEDotProductAttention), and TE's get_attention_backend reads the three switches
# at every call ("Disabling FusedAttention due to NVTE_FUSED_ATTN=0", ...), so the first forward raises "No dot
# product attention backend is available". ms-swift 4.6 reaches local on purpose only on Ascend NPUs, where
# MindSpeed brings its own attention (swift/megatron/model/utils.py get_mcore_model_config, pipelines/train/sft.py).
# Found in the source (no public report). Scope: engine megatron, attention_backend local, CP 1 (CP > 1 is
# attention-cp's), not the DSA models (DSAttention is megatron-core's own, not TE's) nor DeepSeek-V4 (mcore-bridge's
# DSv4HybridSelfAttention brings its own core attention); an error where launch.gpu names an NVIDIA card, a warning
# where no card is named (Ascend).
def local_attention_backend(recipe, args, shape: ModelShape, lay, err, warn):
    if attention_backend(args) != "local" or lay.cp > 1 or shape.model_type in DSA_MODEL_TYPES \
            or shape.model_type.startswith("deepseek_v4"):
        return
    msg = ("attention_backend local: megatron-core turns all three Transformer Engine attention backends off "
           "(NVTE_FLASH_ATTN=NVTE_FUSED_ATTN=NVTE_UNFUSED_ATTN=0), but mcore-bridge builds TE's DotProductAttention "
           f"for {shape.name}, so the first forward raises 'No dot product attention backend is available'")
    hint = "attention_backend: flash (ms-swift's default), fused or unfused"
    if recipe.launch.gpu not in GPUS:
        warn("attention-local", msg + " (on CUDA; on Ascend NPUs MindSpeed brings its own attention: launch.gpu is "
             "not set)", "attention_backend", hint=hint)
        return
    err("attention-local", msg + f" on {recipe.launch.gpu}", "attention_backend", hint=hint)


# The TE backend switches megatron-core 0.16.1 sets for each attention_backend (LanguageModule._set_attention_backend);
# "flash_2/3/4" are flash (ms-swift _init_attention_backend).
_TE_SWITCHES = {"local": (0, 0, 0), "flash": (1, 0, 0), "fused": (0, 1, 0), "unfused": (0, 0, 1), "auto": (1, 1, 1)}
_TE_SWITCH_NAMES = ("NVTE_FLASH_ATTN", "NVTE_FUSED_ATTN", "NVTE_UNFUSED_ATTN")


# Evidence: megatron-core 0.16.1 models/common/language_module/language_module.py LanguageModule._set_attention_backend
# (called from LanguageModule.__init__, so at every model build) checks each of NVTE_FLASH_ATTN / NVTE_FUSED_ATTN /
# NVTE_UNFUSED_ATTN already in the environment against the value the attention_backend needs: `assert current_value is
# None or current_value == str(expected_value)` -- "NVTE_FLASH_ATTN set to 0, but expected 1 for attention backend type
# flash. unset NVTE_FLASH_ATTN, NVTE_FUSED_ATTN and NVTE_UNFUSED_ATTN. Use the --attention-backend argument ...". The
# usual Transformer Engine advice to pick a backend by these variables (NVTE_FLASH_ATTN=0 NVTE_FUSED_ATTN=1,
# NVIDIA/TransformerEngine#1051) therefore fails under ms-swift's attention_backend flash unless the argument agrees.
# Scope: engine megatron, the recipe's env block (the training machine's own environment is not seen here).
def attention_env_switches(recipe, args, shape: ModelShape, lay, err, warn):
    backend = attention_backend(args)
    expected = _TE_SWITCHES.get(backend)
    if expected is None:
        return
    for name, want in zip(_TE_SWITCH_NAMES, expected):
        value = recipe.env.get(name)
        if value is None or str(value) == str(want):
            continue
        stated = "" if args.has("attention_backend") else " (ms-swift's default)"
        err("attention-env", f"env {name}={value} with attention_backend {backend}{stated}: megatron-core sets the "
            f"Transformer Engine backend switches itself and asserts '{name} set to {value}, but expected {want} for "
            f"attention backend type {backend}' when the model is built", "attention_backend",
            hint=f"drop {name} from env and choose the backend with attention_backend (flash, fused, unfused, auto)")
        return


# No rule for apply_rope_fusion with MTP layers: mcore-bridge 1.6.3 model/modules/mtp_layer.py:94
# MultiTokenPredictionLayer.forward asserts the MTP attention's config has apply_rope_fusion off, but
# model/gpt_model.py:125-136 GPTModel.__init__ gives every MTP layer's self_attention a copy of the config with
# apply_rope_fusion False first (1.6.5 alike, :136), and every model that builds those MTP layers is that GPTModel or
# a subclass calling its __init__ (MultimodalGPTModel's language model, DeepseekV4GPTModel, Gemma4TextGPTModel).
# The assert cannot fire, so a recipe with both plans (tests/test_mcore_bridge_audit.py).


def _head_dims(shape: ModelShape) -> list[tuple[int, int]]:
    """(head_dim_qk, head_dim_v) of every kind of softmax-attention layer mcore-bridge builds on TE's
    DotProductAttention: MLA's q/k (nope + rope) and v heads; Gemma 4's full-attention layers at global_head_dim."""
    if shape.is_mla:
        return [(shape.qk_nope_head_dim + shape.qk_rope_head_dim, shape.v_head_dim)]
    dims = [(shape.head_dim, shape.head_dim)]
    if shape.num_global_layers and shape.global_head_dim and shape.global_head_dim != shape.head_dim:
        dims.append((shape.global_head_dim, shape.global_head_dim))
    return dims


# FlashAttention 2 runs head_dim_qk > 192 only on these (TE's "(>192 requires sm80/90/100+)").
_FA2_LARGE_HEAD_CC = ((8, 0), (9, 0), (10, 0), (12, 0))


# Evidence: megatron-core 0.16.1 models/common/language_module/language_module.py LanguageModule._set_attention_backend:
# attention_backend flash (ms-swift 4.6's default) sets NVTE_FLASH_ATTN=1, NVTE_FUSED_ATTN=0, NVTE_UNFUSED_ATTN=0, so
# Transformer Engine's DotProductAttention may pick only FlashAttention; mcore-bridge builds every attention layer on
# TE's DotProductAttention (model/register.py get_transformer_layer_spec: use_transformer_engine=True).
# Transformer Engine pytorch/attention/dot_product_attention/utils.py get_attention_backend then drops FlashAttention
# 2 below sm80, for head_dim_qk != head_dim_v ("Disabling FlashAttention 2 as it does not support MLA"), for
# head_dim_qk > 256, and for head_dim_qk > 192 off sm80/90/100/120; FlashAttention 3 runs only on sm90 ("Disabling
# FlashAttention 3 for compute capability != sm90") and takes head_dim_qk <= 256; flash-attn 4 (flash_attn/cute
# interface.py) asserts head_dim <= 256, and TE's own gate keeps it off below sm90. With no backend left the first
# forward raises "No dot product attention backend is available for the provided inputs". So, with flash: a head
# dim > 256 fails on every GPU; MLA below sm90, a head dim in (192, 256] on sm86/sm89, anything below sm80, fail
# whatever flash-attn is installed. On sm90+ MLA runs only where flash-attn 3 (sm90) or 4 is installed (ms-swift's own
# Moonlight example runs MLA with flash; attention_backend flash_3 / flash_4 make ms-swift check the install,
# _init_attention_backend): said with plain flash (attention-flash-mla; reports NVIDIA/TransformerEngine#2354, sm90,
# TE 2.3, flash-attn 3 not installed, THD: no backend; #2285, DeepSeek-V3 on B200, TE 2.8, no flash-attn 3/4). Reports: NVIDIA/Megatron-LM#1698 (MLA, --attention-backend flash:
# "Disabling FlashAttention as it does not support MLA", NoBackend), NVIDIA/TransformerEngine#1821 (DeepSeek-V3
# architecture on sm80, THD: no backend), NVIDIA/TransformerEngine#3006 (Gemma-4-26B-A4B, head dim 512 on sm90: no
# flash or fused backend), modelscope/ms-swift#6369 (Qwen3-Next, head dim 256, --attention_backend flash, packed:
# no backend, the GPU unnamed). Scope: engine megatron; the GPU-dependent cases only with launch.gpu (said when it is
# unset: MLA; a head dim > 192 when no gpu_memory_gib names a card outside the table either); fused/auto with a head
# dim > 256 are said, not refused (cuDNN decides; TE#3006 saw none on sm90). Not the DeepSeek Sparse Attention models
# (DSA_MODEL_TYPES): mcore-bridge builds their attention from megatron-core's DSA spec
# (mcore_bridge/model/register.py ModelLoader._replace_spec_dsa -> experimental_attention_variant_module_specs.py
# get_dsa_module_spec_for_backend: core_attention DSAttention), whose forward is megatron-core's own unfused_dsa_fn
# (transformer/experimental_attention_variant/dsa.py), not TE's DotProductAttention: no backend to run out of.
def attention_kernel(recipe, args, shape: ModelShape, lay, err, warn):
    if shape.model_type in DSA_MODEL_TYPES:
        return
    dims = _head_dims(shape)
    backend = attention_backend(args)
    widest = max(qk for qk, _ in dims)
    mla = any(qk != v for qk, v in dims)
    gpu = recipe.launch.gpu
    cc = GPUS[gpu].compute_capability if gpu in GPUS else None
    stated = "" if args.has("attention_backend") else " (ms-swift's default)"
    fix = ("attention_backend: unfused (ms-swift then turns padding_free off: TE's unfused kernel takes no packed "
           "THD input)")
    if backend == "flash":
        why = None
        if widest > 256:
            why = f"head dim {widest} > 256: FlashAttention 2, 3 and 4 all take at most 256"
        elif cc is not None and cc < (8, 0):
            why = f"{gpu} is compute capability {cc[0]}.{cc[1]}: FlashAttention 2 needs 8.0+, FlashAttention 3 9.0"
        elif cc is not None and mla and cc < (9, 0):
            qk, v = next((qk, v) for qk, v in dims if qk != v)
            why = (f"MLA heads (q/k {qk}, v {v}) on {gpu} ({cc[0]}.{cc[1]}): FlashAttention 2 refuses head_dim_qk != "
                   "head_dim_v and FlashAttention 3 runs only on sm90")
        elif cc is not None and widest > 192 and cc < (9, 0) and cc not in _FA2_LARGE_HEAD_CC:
            why = (f"head dim {widest} on {gpu} ({cc[0]}.{cc[1]}): FlashAttention 2 runs head dims > 192 only on "
                   "sm80/90/100/120 and FlashAttention 3 only on sm90")
        if why is None and mla and args.str("attention_backend") == "flash_2":
            # ms-swift hides FA3 / FA4 for flash_2, and TE drops FlashAttention 2 for head_dim_qk != head_dim_v
            # ("Disabling FlashAttention 2 as it does not support MLA") on every GPU
            qk, v = next((qk, v) for qk, v in dims if qk != v)
            why = (f"MLA heads (q/k {qk}, v {v}), which FlashAttention 2 refuses, and flash_2 hides FlashAttention 3 "
                   "and 4 from Transformer Engine")
        if why is None and cc is not None and args.str("attention_backend") == "flash_3" and cc != (9, 0):
            # ms-swift _init_attention_backend marks FA2 / FA4 not installed for flash_3; TE get_attention_backend
            # drops FlashAttention 3 off sm90 ("Disabling FlashAttention 3 for compute capability != sm90")
            err("attention-kernel", f"attention_backend flash_3 pins FlashAttention 3 (ms-swift hides FA2 and FA4 from "
                f"Transformer Engine), which TE runs only on sm90, and {gpu} is {cc[0]}.{cc[1]}: the first forward "
                "raises 'No dot product attention backend is available'", "attention_backend",
                hint="attention_backend: flash (FlashAttention 2 / 4 as installed)" + ("" if mla else " or fused"))
            return
        if why:
            err("attention-kernel", f"attention_backend flash{stated} leaves Transformer Engine only FlashAttention, and "
                f"{shape.name} has {why}: the first forward raises 'No dot product attention backend is available'",
                "attention_backend", hint=fix)
            return
        if cc is not None and mla and (args.str("attention_backend") or "flash") == "flash":
            # sm90+: only flash-attn 3 (sm90) or 4 (sm90/sm100) take head_dim_qk != head_dim_v; nothing checks they
            # are installed (ms-swift's flash_3 / flash_4 pin a version and check it; plain flash does not)
            qk, v = next((qk, v) for qk, v in dims if qk != v)
            fa = "flash-attn 3 or 4" if cc == (9, 0) else "flash-attn 4"
            warn("attention-flash-mla", f"attention_backend flash{stated} with {shape.name}'s MLA heads (q/k {qk}, v "
                 f"{v}) on {gpu} ({cc[0]}.{cc[1]}): FlashAttention 2 refuses head_dim_qk != head_dim_v, so only "
                 f"{fa} installed on the training machine runs them; without it the first forward finds no attention "
                 "backend (NVIDIA/TransformerEngine#2354: sm90, flash-attn 3 not installed; #2285: sm100)",
                 "attention_backend", hint=f"attention_backend: {'flash_3' if cc == (9, 0) else 'flash_4'} (ms-swift "
                 "checks it is installed), or " + fix)
        elif cc is None and mla:
            warn("attention-kernel", f"attention_backend flash{stated} with {shape.name}'s MLA heads: FlashAttention "
                 "runs head_dim_qk != head_dim_v only as flash-attn 3/4 on sm90+ (FlashAttention 2 refuses it); "
                 "launch.gpu is not set", "attention_backend", hint="set launch.gpu so this can be checked, or " + fix)
        elif cc is None and widest > 192 and recipe.launch.gpu_memory_gib is None:
            # nothing names the card (a gpu_memory_gib names a card outside the table: AMD's ROCm stack, not judged)
            warn("attention-kernel", f"attention_backend flash{stated} with {shape.name}'s head dim {widest}: "
                 "FlashAttention 2 runs head dims > 192 only on sm80/90/100/120 (A100/H100/B200-class; not the "
                 "A10/L20/L40S/RTX 4090 sm86/sm89 cards) and FlashAttention 3 only on sm90; launch.gpu is not set",
                 "attention_backend", hint="set launch.gpu so this can be checked, or " + fix)
        return
    thd = args.bool("padding_free") and backend != "unfused"
    if widest > 256 and (backend == "fused" or backend == "auto" and thd):
        warn("attention-kernel", f"{shape.name} has head dim {widest} > 256 and attention_backend {backend}"
             f"{' with padding_free (THD)' if backend == 'auto' else ''}: only cuDNN's fused attention could run it, "
             "and it depends on the cuDNN and GPU (NVIDIA/TransformerEngine#3006: none on sm90 with cuDNN 9.20)",
             "attention_backend", hint=fix)


def _comm_types(args) -> list:
    value = config_value(args, "cp_comm_type")
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


# Evidence: ms-swift 4.6 swift/megatron/utils/megatron_lm_utils.py _initialize_mpu calls
# mpu.initialize_model_parallel without hierarchical_context_parallel_sizes, so megatron-core 0.16.1 builds no
# hierarchical CP groups (parallel_state.py: only `if hierarchical_context_parallel_sizes:`); megatron-core
# extensions/transformer_engine.py TEDotProductAttention.__init__ hands TE cp_group =
# get_hierarchical_context_parallel_groups(check_initialized=False) -- None -- for cp_comm_type "a2a+p2p", and TE
# context_parallel.py attn_forward_func_with_cp asserts the hierarchical implementation gets a list of CP groups.
# With padding_free (ms-swift's default on Megatron: THD) TE AttnFuncWithCPAndKVP2P.forward also asserts "thd format
# is not supported with hierarchical CP implementation yet!" (report: NVIDIA/TransformerEngine#2208, core_r0.13.0,
# TE 2.4, packed sequences); NVIDIA-NeMo/Megatron-Bridge#2667 (a2a+p2p without hierarchical_context_parallel_sizes:
# TE gets cp_group None and CP is silently disabled, each rank attending to its own 1/CP chunk; fixed there by a
# config-time assertion megatron-core 0.16.1 does not have). A "a2a" layer splits the heads over CP (TE flash_attn_a2a_communicate after "The number
# of attention heads needs to be divisible by CP size!": q and kv heads per TP rank). "all_gather" takes no THD input
# in TE releases before NVIDIA/TransformerEngine PR #2829 (AttnFuncWithCPAndKVAllGather.forward:
# `assert qkv_format != "thd"`, and no padding mask): said, as the TE version decides.
# Scope: engine megatron, context_parallel_size > 1, cp_comm_type from the argument or megatron_extra_kwargs.
def context_parallel_comm(recipe, args, shape: ModelShape, lay, err, warn):
    if lay.cp == 1:
        return
    types = _comm_types(args)
    where = flag(args, "cp_comm_type")
    thd = args.bool("padding_free") and attention_backend(args) != "unfused"
    if "a2a+p2p" in types:
        err("cp-comm-type", "cp_comm_type a2a+p2p (hierarchical context parallel) needs hierarchical CP groups, and "
            "ms-swift never builds them (no hierarchical_context_parallel_sizes reaches initialize_model_parallel): "
            "Transformer Engine gets no CP group (NVIDIA-NeMo/Megatron-Bridge#2667: CP then silently stops, each "
            "rank attending only to its own chunk)"
            + ("; with padding_free (THD) TE refuses hierarchical CP anyway (NVIDIA/TransformerEngine#2208)"
               if thd else ""), where, hint="cp_comm_type: p2p (the default) or a2a")
    if "a2a" in types:
        heads = shape.num_attention_heads // lay.tp
        # MLA has as many k/v heads as q heads; megatron-core replicates KV groups fewer than TP (one per rank)
        groups = heads if shape.is_mla else max(1, shape.num_key_value_heads // lay.tp)
        if heads % lay.cp or groups % lay.cp:
            err("cp-comm-type", f"cp_comm_type a2a splits the attention heads over CP={lay.cp}: {shape.name} has "
                f"{heads} query and {groups} KV heads per TP rank (TP={lay.tp}), not both divisible by {lay.cp}; "
                "Transformer Engine asserts 'The number of attention heads needs to be divisible by CP size!'",
                where, hint="cp_comm_type: p2p, or a context_parallel_size that divides the KV heads per TP rank")
    mla_comm = [t for t in types if t in ("a2a", "all_gather")]
    if shape.is_mla and mla_comm:
        # TE context_parallel.py attn_forward_func_with_cp: `enable_mla = k.shape[-1] != v.shape[-1]; assert not
        # enable_mla or cp_comm_type in ["p2p", "a2a+p2p"]` ("Context parallelism does not support MLA with
        # cp_comm_type=..."); NVIDIA/TransformerEngine PR #2826 (closed 2026-04-22) notes a2a takes MLA after TE commit
        # ee5dcec -- which release carries it is not read here, so this is said, not refused
        warn("cp-comm-type", f"{shape.name} has MLA heads (q/k {shape.qk_nope_head_dim + shape.qk_rope_head_dim}, v "
             f"{shape.v_head_dim}) and cp_comm_type {mla_comm[0]}: Transformer Engine's context-parallel attention "
             "takes MLA only with p2p in its releases before commit ee5dcec ('Context parallelism does not support "
             "MLA with cp_comm_type=...' at the first forward)", where,
             hint="cp_comm_type: p2p (the default), or a Transformer Engine that takes MLA with a2a")
    if "all_gather" in types and thd:
        warn("cp-comm-type", "cp_comm_type all_gather with padding_free (THD, ms-swift's default on Megatron): "
             "Transformer Engine releases before NVIDIA/TransformerEngine PR #2829 assert 'thd format is not "
             "supported' in the all-gather context parallel attention", where,
             hint="cp_comm_type: p2p, or padding_free: false, or a Transformer Engine with THD all-gather CP")


# Evidence: megatron-core 0.16.1 extensions/transformer_engine.py TEDotProductAttention.__init__ raises "ValueError:
# apply_query_key_layer_scaling is False but environment variable NVTE_APPLY_QK_LAYER_SCALING is 1. Transformer Engine
# does not support setting query key layer scaling via argument, so these two must match." whenever
# bool(int(NVTE_APPLY_QK_LAYER_SCALING)) differs from the config field, at every attention layer's build. ms-swift 4.6
# MegatronArguments._init_mixed_precision defaults apply_query_key_layer_scaling to fp16 and sets the variable to '1'
# only when it is on; it never clears it. So a recipe env exporting NVTE_APPLY_QK_LAYER_SCALING=1 (as older
# Megatron-LM / NeMo GPT scripts did; NVIDIA-NeMo PR #10349 removed the flag for "annoying issues with
# NVTE_APPLY_QK_LAYER_SCALING") fails the build under bf16 unless apply_query_key_layer_scaling is on; a value that is
# no integer fails int() there too. A '0' under fp16 is overwritten by ms-swift ('1'), so it plans. Scope: engine
# megatron, the recipe's env block; not the DeepSeek Sparse Attention models (DSA_MODEL_TYPES): mcore-bridge
# ModelLoader.get_transformer_layer_spec replaces every layer's self_attention with megatron-core's DSA spec
# (_replace_spec_dsa; core_attention DSAttention), and the MTP block copies the last layer's spec
# (get_gpt_mtp_block_spec), so no TEDotProductAttention -- the only reader of the variable -- is built.
def qk_layer_scaling_env(recipe, args, shape: ModelShape, lay, err, warn):
    value = recipe.env.get("NVTE_APPLY_QK_LAYER_SCALING")
    if value is None or shape.model_type in DSA_MODEL_TYPES:
        return
    # apply_query_key_layer_scaling's default is fp16, whose default is torch_dtype float16/float32; with neither
    # stated it follows the checkpoint's dtype (config.json), not read here: None, said rather than refused
    if args.has("apply_query_key_layer_scaling"):
        scaling = args.bool("apply_query_key_layer_scaling")
    elif args.has("fp16"):
        scaling = args.bool("fp16")
    elif args.has("torch_dtype"):
        scaling = str(args.str("torch_dtype")).lower() in ("float16", "fp16", "float32", "fp32")
    else:
        scaling = None
    try:
        wanted = bool(int(str(value).strip()))
    except ValueError:
        err("attention-env", f"env NVTE_APPLY_QK_LAYER_SCALING={value!r} is not an integer: megatron-core reads it "
            "with int() when each attention layer is built", "env.NVTE_APPLY_QK_LAYER_SCALING",
            hint="drop NVTE_APPLY_QK_LAYER_SCALING from env (ms-swift sets it from apply_query_key_layer_scaling)")
        return
    if wanted and not scaling:
        say = err if scaling is False else warn
        say("attention-env", "env NVTE_APPLY_QK_LAYER_SCALING=1 with apply_query_key_layer_scaling off (ms-swift's "
            "default outside fp16" + ("" if scaling is False else "; a bf16 checkpoint leaves it off") + "): "
            "megatron-core's TEDotProductAttention raises 'apply_query_key_layer_scaling is False but environment "
            "variable NVTE_APPLY_QK_LAYER_SCALING is 1' when the model is built", "env.NVTE_APPLY_QK_LAYER_SCALING",
            hint="drop NVTE_APPLY_QK_LAYER_SCALING from env (ms-swift sets it from apply_query_key_layer_scaling)")

# mcore-bridge 1.6.3 config/parser.py hf_to_mcore_config gives megatron-core a window_size (with window_attn_skip_freq
# from layer_types) only for these models and gpt-oss (attention-sinks-cp's: its sinks already need a2a); every other
# model's sliding_window is popped, its layers attend in full.
MCORE_SLIDING_WINDOW_TYPES = GEMMA4_TYPES + ("muse_glimmer",)


# Evidence: megatron-core 0.16.1 extensions/transformer_engine.py TEDotProductAttention.__init__ hands TE
# window_size=config.window_size on the layers is_layer_window_attention picks, and cp_comm_type "p2p" when it is unset;
# TE context_parallel.py attn_forward_func_with_cp asserts `not sliding_window_attn or cp_comm_type in ["a2a",
# "all_gather"]` ("The context parallel running configs cannot support sliding window attetnion!"), in every release
# read (TE 1.x allowed all_gather only with flash). Reports: NVIDIA/Megatron-LM PR #1160 ("The default cp_comm_type
# 'p2p' does not work with sliding window attention in TransformerEngine", why cp_comm_type was exposed) and
# NVIDIA/Megatron-LM#2222 (maintainer: sliding window under CP works with all_gather and a2a). Scope: engine megatron,
# CP > 1, a model mcore-bridge builds with sliding-window layers (Gemma 4, muse_glimmer), a p2p layer (unset or
# listed); not attention_backend unfused/local (attention-cp refuses CP there, and Gemma 4 then drops its window).
def sliding_window_context_parallel(recipe, args, shape: ModelShape, lay, err, warn):
    if lay.cp == 1 or shape.model_type not in MCORE_SLIDING_WINDOW_TYPES \
            or attention_backend(args) in ("unfused", "local"):
        return
    types = _comm_types(args) or [None]
    if not any(t in (None, "p2p") for t in types):
        return
    comm = config_value(args, "cp_comm_type") or "p2p (the default)"
    err("sliding-window-cp", f"{shape.name} has sliding-window attention layers and context_parallel_size is "
        f"{lay.cp} with cp_comm_type {comm}: Transformer Engine's context-parallel attention takes a sliding window "
        "only with cp_comm_type a2a or all_gather ('The context parallel running configs cannot support sliding "
        "window attetnion!' at the first forward)",
        # the recipe's own choice is the culprit: cp_comm_type when it names p2p, else context_parallel_size
        flag(args, "cp_comm_type") if config_value(args, "cp_comm_type") else "context_parallel_size",
        hint="cp_comm_type: a2a (the heads per TP rank divisible by CP), or context_parallel_size: 1")


# Evidence: megatron-core 0.16.1 LanguageModule._set_attention_backend: attention_backend fused sets NVTE_FLASH_ATTN=0,
# NVTE_FUSED_ATTN=1, NVTE_UNFUSED_ATTN=0, so TE's DotProductAttention may pick only cuDNN's fused attention.
# Transformer Engine common/fused_attn/fused_attn.cpp nvte_get_fused_attn_backend (public source, not installed here)
# gives the BF16/FP16 F16_arbitrary_seqlen kernel only from sm80, and in training (is_training) takes head dims > 128
# only on sm90 (cuDNN 9.5+: "9.5: <= 256 + Hopper + bprop") or, for MLA's 192/128 alone, on sm100+ (cuDNN 9.11+); the
# "any head_dim" cases it lists are forward-only (!is_training). Its qkv-format check takes THD (padding_free /
# packing, on by default on the Megatron engine) only at sm_arch >= 90. get_attention_backend then logs "Disabling
# FusedAttention as no backend supports the provided input" and, with flash and unfused switched off, the first
# forward raises "No dot product attention backend is available". Reports: NVIDIA/TransformerEngine#1610 (sm < 90:
# "only head_dim<=128 is supported" in fused attention, "a limitation of cudnn", MLA), #1115 (head dim 256 through
# NVTE_FUSED_ATTN: "cuDNN only support head_dim = 256 for forward at the moment, not backward"). The head-dim case
# below sm90 is refused (no cuDNN has the backward kernel there); THD below sm90 is said, not refused: TE PR #3092
# (open) would take it on Ampere/Ada with cuDNN 9.18.1+. With NVTE_ALLOW_NONDETERMINISTIC_ALGO=0 in the recipe env
# get_attention_backend drops the F16_arbitrary_seqlen kernel in training below sm90 as well (its determinism filter).
# Scope: engine megatron, attention_backend fused, launch.gpu
# below sm90 (sm100+ and sm120 depend on the cuDNN and TE versions: not judged); not the DSA models (no TE attention).
def fused_attention_kernel(recipe, args, shape: ModelShape, lay, err, warn):
    if attention_backend(args) != "fused" or shape.model_type in DSA_MODEL_TYPES:
        return
    gpu = recipe.launch.gpu
    cc = GPUS[gpu].compute_capability if gpu in GPUS else None
    if cc is None or cc >= (9, 0):
        return
    dims = _head_dims(shape)
    widest = max(max(qk, v) for qk, v in dims)
    mla = any(qk != v for qk, v in dims)
    flash_ok = cc >= (8, 0) and not mla and (widest <= 192 or (widest <= 256 and cc in _FA2_LARGE_HEAD_CC))
    hint = ("attention_backend: flash (ms-swift's default; FlashAttention 2 runs these heads and THD on "
            f"{gpu}) or auto" if flash_ok else "attention_backend: unfused (ms-swift then turns padding_free off)")
    where = f"{gpu} ({cc[0]}.{cc[1]})"
    lead = ("attention_backend fused leaves Transformer Engine only cuDNN's fused attention (NVTE_FLASH_ATTN=0, "
            "NVTE_UNFUSED_ATTN=0)")
    if cc < (8, 0) or widest > 128:
        why = ("cuDNN's fused attention needs compute capability 8.0+" if cc < (8, 0) else
               f"{shape.name}'s head dim {widest}: below sm90 cuDNN's fused attention trains head dims up to 128 only "
               "(larger ones forward-only)")
        err("attention-fused", f"{lead}, and on {where} {why}: the first forward raises 'No dot product attention "
            "backend is available'", "attention_backend", hint=hint)
        return
    # TE get_attention_backend's determinism filter: with NVTE_ALLOW_NONDETERMINISTIC_ALGO=0 (what deterministic_mode
    # needs, deterministic-mode) the F16_arbitrary_seqlen kernel is dropped in training below sm90 ("Disabling
    # FusedAttention for determinism reasons"); only the max-512 kernel (head dim 64, sequences <= 512) stays.
    nondeterministic = str((recipe.env or {}).get("NVTE_ALLOW_NONDETERMINISTIC_ALGO", "1")).strip()
    if nondeterministic == "0" and cc >= (8, 0) and not (widest == 64 and (args.int("max_length") or 0) <= 512):
        err("attention-fused", f"{lead}, and with NVTE_ALLOW_NONDETERMINISTIC_ALGO=0 (env) Transformer Engine drops "
            f"its arbitrary-length fused kernel in training below sm90 ({gpu} is {cc[0]}.{cc[1]}: 'Disabling "
            "FusedAttention for determinism reasons'): the first forward raises 'No dot product attention backend is "
            "available'", "attention_backend", hint=hint)
        return
    if args.bool("padding_free"):
        stated = "padding_free" if args.has("padding_free") else "padding_free (on by default on Megatron)"
        warn("attention-fused", f"{lead}, whose kernel takes packed THD input ({stated}) only on sm90+ "
             f"(nvte_get_fused_attn_backend), and {gpu} is {cc[0]}.{cc[1]}: unless the TE and cuDNN on the training "
             "machine take THD there (cuDNN 9.18.1+ with a TE that allows it), the first forward raises 'No dot "
             "product attention backend is available'", "attention_backend",
             hint=hint if flash_ok else "padding_free: false, or " + hint)


# Evidence: megatron-core 0.16.1 extensions/transformer_engine.py TEDotProductAttention.__init__: for a softmax_type
# other than vanilla it asserts is_te_min_version("2.8.0") ("Transformer-Engine v... must be >= 2.8.0 to support
# `softmax_type`."), when the model is built, before any backend is chosen; mcore-bridge 1.6.3 config/parser.py
# hf_to_mcore_config sets softmax_type 'learnable' for gpt_oss (:239), and every layer's core attention is
# TEDotProductAttention (model/register.py, use_transformer_engine=True). ms-swift 4.6's Megatron quick start asks
# only transformer_engine >= 2.3, so an image built to it fails here. The gate is the support table's
# attention-sinks-te row. Scope: engine megatron (the rule list's), models with learnable softmax (gpt-oss), a
# Transformer Engine known (declared in SWIFT_EXT_TARGET_VERSIONS / --target-versions, or installed) to be older
# than 2.8; unknown: no verdict.
def attention_sinks_te_version(recipe, args, shape: ModelShape, lay, err, warn, versions):
    if shape.softmax_type == "vanilla":
        return
    for gap in version_gaps("attention-sinks-te", versions):
        err("attention-sinks-te", f"{shape.name} has attention sinks (softmax_type {shape.softmax_type}) and {gap}: "
            "megatron-core's TEDotProductAttention asserts 'Transformer-Engine ... must be >= 2.8.0 to support "
            "softmax_type' when the model is built", "model",
            hint="transformer-engine >= 2.8 on the training machine (and declare it: SWIFT_EXT_TARGET_VERSIONS "
                 "te=2.8)")


# Evidence: ms-swift 4.6 megatron/arguments/megatron_args.py cp_partition_mode ('zigzag' default, 'contiguous') reaches
# mcore-bridge 1.6.3 utils/megatron_utils.py split_cp_inputs: contiguous gives rank r one block [r*n, (r+1)*n) of the
# sequence ("This must match the DSv4 THD CP forward"). Everything else downstream takes the load-balanced zigzag
# split (chunks r and 2*CP-1-r): megatron-core's rotary embedding re-derives each token's position from cu_seqlens
# assuming zigzag (mcore-bridge model/gpts/deepseek_v4.py _apply_mla_rope: "would corrupt positions silently"), and
# Transformer Engine's context-parallel attention (p2p / a2a, causal) assumes the same chunks when it masks. On any
# model but DeepSeek-V4 the run trains with wrong positions and causal masks and no error. Scope: engine megatron,
# context_parallel_size > 1, cp_partition_mode contiguous, a model other than deepseek_v4.
def context_parallel_partition(recipe, args, shape: ModelShape, lay, err, warn):
    if lay.cp == 1 or args.str("cp_partition_mode") != "contiguous" or shape.model_type.startswith("deepseek_v4"):
        return
    warn("cp-partition-mode", f"cp_partition_mode contiguous with CP={lay.cp} on {shape.name} ({shape.model_type}): "
         "each rank gets one contiguous block of the sequence, but megatron-core's rotary embedding and Transformer "
         "Engine's context-parallel attention assume the load-balanced zigzag split -- positions and causal masks "
         "are silently wrong (the contiguous split is for DeepSeek-V4's own attention only)", "cp_partition_mode",
         hint="cp_partition_mode: zigzag (ms-swift's default)")


# Evidence: megatron-core 0.16.1 models/gpt/gpt_model.py GPTModel.__init__ asserts mrope_section is not None for
# position_embedding_type 'mrope' ("mrope require mrope_section setting"); mcore-bridge 1.6.3 GPTModel calls it with
# the config's position_embedding_type before swapping in its own rotary embedding, and takes mrope_section only from
# config.json's rope section (config/parser.py hf_to_mcore_config). megatron_extra_kwargs is applied last (ms-swift
# swift/megatron/model/utils.py), so mrope on a text model fails when the model is built. Scope: engine megatron,
# megatron_extra_kwargs position_embedding_type 'mrope' on a text model (no vision tower), no mrope_section
# from config.json or megatron_extra_kwargs.
def mrope_without_section(recipe, args, shape: ModelShape, lay, err, warn):
    if config_value(args, "position_embedding_type") != "mrope" or "position_embedding_type" not in \
            args.mapping("megatron_extra_kwargs"):
        return
    # only text models: a preset of a multimodal model may leave out the rope section that carries mrope_section
    if shape.mrope or shape.vision is not None or config_value(args, "mrope_section") is not None:
        return
    err("mrope-section", f"megatron_extra_kwargs position_embedding_type mrope on {shape.name}, a text model whose "
        "config.json has no mrope_section: megatron-core's GPTModel.__init__ asserts an mrope_section when the model is built",
        "megatron_extra_kwargs", hint="drop position_embedding_type (mcore-bridge picks mrope for models that have it)")


ATTENTION_RULES = [learnable_softmax_backend, context_parallel_partition, attention_sinks_context_parallel, unfused_context_parallel,
                   local_attention_backend,
                   attention_env_switches, qk_layer_scaling_env, attention_kernel, fused_attention_kernel,
                   context_parallel_comm, sliding_window_context_parallel, mrope_without_section]
ATTENTION_VERSIONED_RULES = [attention_sinks_te_version]
