"""The entries of the rules for failures that come after start-up but are fixed by the recipe (issue #21's audit of
first-forward failures): Transformer Engine's attention kernels and context-parallel implementations as ms-swift 4.6
reaches them through megatron-core 0.16.1 (planner/attention_rules.py), megatron-core's own Gated DeltaNet refusing
packed input (planner/layout.py), TE's userbuffers and FP8 GEMM shapes and DeepEP's GPUs (planner/comm_overlap_rules.py,
mcore_bridge_rules.py, moe_rules.py). spec/ruleset.py joins them with the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import Evidence, RuleInfo, code

TE_BACKEND = ("transformer-engine pytorch/attention/dot_product_attention/utils.py: get_attention_backend "
              "(public source, not installed here)")

RUNTIME_RULE_INFO = [
    RuleInfo("attention-kernel", "error, warning", "attention_backend flash (ms-swift's default) leaves Transformer "
             "Engine only FlashAttention: refused for a head dim > 256 (Gemma 4's 512-wide global layers), for MLA "
             "below sm90, for a head dim in (192, 256] on sm86/sm89, for any model below sm80, for flash_3 off sm90 and "
             "flash_2 with MLA (ms-swift hides the other flash-attn versions); said for MLA or a head dim > 192 "
             "when launch.gpu is unset, and for a head dim > 256 with fused (or auto over THD)",
             (code("megatron-core models/common/language_module/language_module.py: LanguageModule."
                   "_set_attention_backend (flash: NVTE_FUSED_ATTN=0, NVTE_UNFUSED_ATTN=0)"),
              code(TE_BACKEND + " (FlashAttention 2: sm80+, head_dim_qk == head_dim_v, <= 256, > 192 only on "
                   "sm80/90/100/120; FlashAttention 3: sm90 only, <= 256)"),
              code("flash-attn flash_attn/cute/interface.py (flash-attn 4: head_dim <= 256)"),
              code("mcore-bridge 1.6.3 mcore_bridge/model/register.py get_transformer_layer_spec "
                   "(use_transformer_engine=True; Gemma4SelfAttention at global_head_dim: model/mm_gpts/gemma4.py:157)"),
              Evidence("report", "NVIDIA/Megatron-LM#1698", "MLA (q/k 192, v 128) with --attention-backend flash: "
                       "'Disabling FlashAttention as it does not support MLA', NoBackend; GPU not named"),
              Evidence("report", "NVIDIA/TransformerEngine#1821", "DeepSeek-V3 architecture on sm80, TE 2.3, THD, "
                       "head_dim_qk 192 / head_dim_v 128: no dot product attention backend"),
              Evidence("report", "NVIDIA/TransformerEngine#3006", "Gemma-4-26B-A4B, global head dim 512, sm90, "
                       "TE 2.14, flash-attn 2.7.4 and 3.0.0, cuDNN 9.20, THD: no flash and no fused backend"),
              Evidence("report", "modelscope/ms-swift#6369", "Qwen3-Next-80B-A3B LoRA, head dim 256, "
                       "--attention_backend flash, padding_free: no backend; GPU not named (6 cards)"),
              code("megatron-core models/gpt/experimental_attention_variant_module_specs.py: "
                   "get_dsa_module_spec_for_backend (DSA models: core_attention DSAttention, its own unfused_dsa_fn; "
                   "mcore-bridge register.py ModelLoader._replace_spec_dsa)")),
             "engine: megatron, not the DSA models (deepseek_v32, glm_moe_dsa: no TE attention); the GPU-dependent "
             "cases with launch.gpu (a warning without it: MLA, or a head dim > 192 unless gpu_memory_gib names a card "
             "outside the table); MLA on sm90+ is attention-flash-mla's"),
    RuleInfo("attention-flash-mla", "warning", "attention_backend flash (plain: ms-swift's default) with MLA heads on an "
             "sm90+ GPU runs only where flash-attn 3 (sm90) or 4 is installed on the training machine",
             (code(TE_BACKEND + " (FlashAttention 2: head_dim_qk == head_dim_v; FlashAttention 3: sm90 only)"),
              code("ms-swift swift/megatron/arguments/megatron_args.py: MegatronArguments._init_attention_backend "
                   "(flash_2/flash_3/flash_4 pin a version and check it is installed; plain flash does not)"),
              Evidence("report", "NVIDIA/TransformerEngine#2354", "MLA (192/128), sm90, TE 2.3, flash-attn 2.7.4, "
                       "flash-attn 3 not installed, THD: no dot product attention backend"),
              Evidence("report", "NVIDIA/TransformerEngine#2285", "DeepSeek-V3 on B200 (sm100), TE 2.8, flash-attn "
                       "2.7.3, flash-attn 3 not installed, THD: 'Disabling FlashAttention 2 as it does not support "
                       "MLA', no backend")),
             "engine: megatron, MLA models (not the DSA ones), attention_backend flash (not flash_3/flash_4), "
             "launch.gpu of compute capability 9.0 or later"),
    RuleInfo("attention-fused", "error, warning", "attention_backend fused leaves Transformer Engine only cuDNN's "
             "fused attention: refused below sm80, and below sm90 for a head dim > 128 (MLA's 192/128 included: "
             "cuDNN trains larger heads there forward-only) or with NVTE_ALLOW_NONDETERMINISTIC_ALGO=0 (TE drops the "
             "arbitrary-length kernel for determinism below sm90); packed THD input (padding_free, the Megatron "
             "default) below sm90 is said (the fused kernel takes THD only on sm90+)",
             (code("megatron-core models/common/language_module/language_module.py: LanguageModule."
                   "_set_attention_backend (fused: NVTE_FLASH_ATTN=0, NVTE_UNFUSED_ATTN=0)"),
              code("transformer-engine common/fused_attn/fused_attn.cpp: nvte_get_fused_attn_backend (public source, "
                   "not installed here) (F16_arbitrary_seqlen: sm80+; training head dims > 128 only on sm90, or "
                   "192/128 on sm100+; THD only at sm_arch >= 90)"),
              code(TE_BACKEND + " (\"Disabling FusedAttention as no backend supports the provided input\"; "
                   "\"Disabling FusedAttention for determinism reasons\": F16_arbitrary_seqlen in training below sm90)"),
              Evidence("report", "NVIDIA/TransformerEngine#1610", "MLA on sm < 90: fused attention takes head_dim <= "
                       "128 only, 'a limitation of cudnn'"),
              Evidence("report", "NVIDIA/TransformerEngine#1115", "head dim 256 through NVTE_FUSED_ATTN=1: cuDNN "
                       "error; maintainer: head_dim 256 is supported for forward, not backward"),
              Evidence("report", "NVIDIA/TransformerEngine#3092", "open PR: THD on Ampere/Ada fused attention would "
                       "need cuDNN 9.18.1+ (why THD below sm90 is a warning)")),
             "engine: megatron, attention_backend fused, launch.gpu below compute capability 9.0 (sm100+/sm120 depend "
             "on cuDNN and TE versions: not judged); not the DSA models (deepseek_v32, glm_moe_dsa: no TE attention)"),
    RuleInfo("attention-sinks-te", "error", "attention sinks (gpt-oss's learnable softmax_type) need Transformer "
             "Engine >= 2.8 (support table row attention-sinks-te): megatron-core asserts it when the model is built",
             (code("megatron-core extensions/transformer_engine.py: TEDotProductAttention.__init__ (softmax_type != "
                   "vanilla: assert is_te_min_version(\"2.8.0\"))"),
              code("mcore-bridge 1.6.3 mcore_bridge/config/parser.py: hf_to_mcore_config (softmax_type 'learnable' for "
                   "gpt_oss, :239)")),
             "engine: megatron, models with learnable softmax (gpt-oss, InternVL3.5-GPT-OSS), a Transformer Engine "
             "declared (SWIFT_EXT_TARGET_VERSIONS / --target-versions) or installed below 2.8; unknown: no verdict"),
    RuleInfo("cp-partition-mode", "warning", "cp_partition_mode contiguous with context parallel on a model other "
             "than DeepSeek-V4: rotary positions and TE's causal CP attention assume the zigzag split, so training is "
             "silently wrong",
             (code("mcore-bridge 1.6.3 mcore_bridge/utils/megatron_utils.py: split_cp_inputs (contiguous: one block "
                   "per rank, 'must match the DSv4 THD CP forward')"),
              code("mcore-bridge 1.6.3 mcore_bridge/model/gpts/deepseek_v4.py: _apply_mla_rope (the generic thd "
                   "rotary path assumes a zigzag CP split and 'would corrupt positions silently' under contiguous)"),
              code("ms-swift swift/megatron/utils/utils.py: get_packed_seq_params (cp_partition_mode onto "
                   "PackedSeqParams only where megatron-core has the field; 0.16.1 has not)")),
             "engine: megatron, context_parallel_size > 1, cp_partition_mode contiguous, model_type not deepseek_v4"),
    RuleInfo("cp-comm-type", "error, warning", "cp_comm_type a2a+p2p is refused (ms-swift builds no hierarchical CP "
             "groups; THD is refused by TE's hierarchical CP too); a2a needs the q and KV heads per TP rank divisible "
             "by CP; said: all_gather over THD (padding_free; TE before PR #2829 asserts), and MLA with a2a or "
             "all_gather (TE asserts MLA CP takes p2p only, before commit ee5dcec)",
             (code("ms-swift swift/megatron/utils/megatron_lm_utils.py: _initialize_mpu (initialize_model_parallel "
                   "without hierarchical_context_parallel_sizes)"),
              code("megatron-core extensions/transformer_engine.py: TEDotProductAttention.__init__ (a2a+p2p: cp_group "
                   "= get_hierarchical_context_parallel_groups(check_initialized=False))"),
              code("transformer-engine pytorch/attention/dot_product_attention/context_parallel.py: "
                   "attn_forward_func_with_cp / AttnFuncWithCPAndKVP2P.forward / AttnFuncWithCPAndKVAllGather.forward "
                   "/ AttnFuncWithCPAndQKVOA2A.forward (public source, not installed here)"),
              Evidence("report", "NVIDIA/TransformerEngine#2208", "hierarchical CP (a2a+p2p) with packed THD input: "
                       "'thd format is not supported with hierarchical CP implementation yet!'; H800, megatron "
                       "core_r0.13.0, TE 2.4"),
              Evidence("report", "NVIDIA-NeMo/Megatron-Bridge#2667", "a2a+p2p with CP 16 and no "
                       "hierarchical_context_parallel_sizes: CP silently disabled (suspiciously high TFLOP/s, higher "
                       "loss); fixed by a TransformerConfig assertion after megatron-core 0.16")),
             "engine: megatron, context_parallel_size > 1, cp_comm_type set (argument or megatron_extra_kwargs)"),
    RuleInfo("sliding-window-cp", "error", "sliding-window attention layers (Gemma 4) with context parallel need "
             "cp_comm_type a2a or all_gather: Transformer Engine's p2p context-parallel attention (the default) takes "
             "no window",
             (code("megatron-core extensions/transformer_engine.py: TEDotProductAttention.__init__ (window_size on "
                   "the window layers; cp_comm_type p2p when unset)"),
              code("transformer-engine pytorch/attention/dot_product_attention/context_parallel.py: "
                   "attn_forward_func_with_cp (\"The context parallel running configs cannot support sliding window "
                   "attetnion!\"; public source, not installed here)"),
              code("mcore-bridge 1.6.3 mcore_bridge/config/parser.py hf_to_mcore_config (window_size for gemma4, "
                   "muse_glimmer, gpt_oss; popped for the rest)"),
              Evidence("report", "NVIDIA/Megatron-LM#1160", "PR exposing cp_comm_type: 'The default cp_comm_type "
                       "p2p does not work with sliding window attention in TransformerEngine'"),
              Evidence("report", "NVIDIA/Megatron-LM#2222", "maintainer: sliding window attention under CP works "
                       "with all_gather and a2a"),
              Evidence("report", "NVIDIA/TransformerEngine#3527", "PR for Gemma 4's 512-wide heads under CP: sliding "
                       "window declined with p2p and a2a+p2p, 'the same rule FusedAttention carries'")),
             "engine: megatron, context_parallel_size > 1, Gemma 4 / muse_glimmer (gpt-oss: attention-sinks-cp), a "
             "layer with cp_comm_type p2p (unset or listed), attention_backend not unfused/local"),
    RuleInfo("linear-attention-packed", "error", "no packed input (padding_free / packing) to a Gated DeltaNet that "
             "refuses it: megatron-core's own (bridge_backend megatron-bridge on Qwen3-Next) before megatron-core 0.19; "
             "transformers' Qwen3.5 one that USE_MCORE_GDN=0 builds before transformers 5.9",
             (code("megatron-core ssm/gated_delta_net.py: GatedDeltaNet.forward (\"GDN does not support packed sequence "
                   "for now\")"),
              code("ms-swift swift/megatron/model/utils.py: _get_megatron_bridge_model (variable_seq_lengths with "
                   "padding_free: packed_seq_params reach the layers)"),
              Evidence("report", "NVIDIA/Megatron-LM#3798", "Qwen3.5 SFT with packed sequences on megatron-core's GDN "
                       "(the guard lifted by PR #2645, merged 2026-05-15)"),
              Evidence("report", "NVIDIA/Megatron-LM#4043", "Qwen3.5 long-context finetuning: CP needs packed sequences "
                       "and megatron-core's GDN refuses them"),
              code("mcore-bridge 1.6.3 model/mm_gpts/qwen3_5.py: Qwen3_5MoeGatedDeltaNet.forward (USE_MCORE_GDN=0: "
                   "\"Packed (thd) varlen forward for Qwen3.5 requires transformers>=5.9.0\")"),
              Evidence("report", "modelscope/ms-swift#9382", "ms-swift's NPU Qwen3.5 Megatron practice sets USE_MCORE_GDN=0 "
                       "(validated with transformers 5.2.0) and notes that this transformers GDN path takes no packing")),
             "engine: megatron, a model with Gated DeltaNet layers, padding_free or packing on; bridge_backend "
             "megatron-bridge (ms-swift refuses the multimodal Qwen3.5/3.6 there: Qwen3-Next in practice) with "
             "megatron-core < 0.19 (support table: packed-linear-attention), or Qwen3.5/3.6 with USE_MCORE_GDN=0 in the "
             "recipe env and a declared or installed transformers < 5.9 (support table: packed-linear-attention-hf); "
             "mcore-bridge's own GatedDeltaNet, the default, runs packed input"),
    RuleInfo("linear-attention-packed-swift", "error, warning", "packing or padding_free to transformers' Gated "
             "DeltaNet on the transformers engine: Qwen3-Next's layers get no sample boundaries, so the "
             "linear-attention state crosses packed samples without an error (warning); Qwen3.5/3.6 without sequence "
             "parallelism on transformers < 5.9, which ms-swift's template refuses at the first forward (error)",
             (code("transformers models/qwen3_next/modeling_qwen3_next.py: Qwen3NextGatedDeltaNet.forward "
                   "(cu_seqlens=kwargs.pop(\"cu_seq_lens_q\", None))"),
              code("ms-swift swift/template/base.py: Template._data_collator (padding_free: position_ids only; Qwen3-Next's "
                   "qwen3_nothinking / qwen3_thinking / qwen3_coder templates add no cu_seq_lens_q, unlike "
                   "Qwen2VLTemplate's get_packed_seq_params for Qwen3.5/3.6)"),
              Evidence("report", "modelscope/ms-swift#7981", "Qwen3-Next with packing: samples in a pack see each other; "
                       "the maintainer confirms it comes from the linear attention"),
              Evidence("report", "modelscope/ms-swift#9340", "ms-swift's docs (packing): for Qwen3-Next/Qwen3.5 packing "
                       "use Megatron-SWIFT"),
              code("ms-swift swift/template/templates/qwen.py: Qwen3_5Template._post_encode (\"Qwen3.5 packing/"
                   "padding_free with sequence_parallel_size=1 requires transformers>=5.9.0\"; run by template/base.py "
                   "Template.pre_forward_hook)"),
              Evidence("report", "modelscope/ms-swift#9618", "Qwen3.5 packing with sequence_parallel_size 1 on "
                       "transformers 5.2.0 ~ 5.8.1: cu_seq_lens_q never reaches the GatedDeltaNet and the state leaks "
                       "across samples silently; fixed upstream in 5.9.0, after which ms-swift added the refusal")),
             "engine: swift, packing or padding_free true; model_type qwen3_next (a warning), or qwen3_5* with "
             "sequence_parallel_size 1 and a declared or installed transformers < 5.9 (an error; support table: "
             "packed-linear-attention-swift; a warning under the qwen3_5_emb template, whose "
             "Qwen3_5EmbTemplate._post_encode skips the check); the Megatron engine (mcore-bridge's GatedDeltaNet takes cu_seqlens) is "
             "not judged"),
    RuleInfo("transformers-model", "error", "a transformers release that knows the model type: Qwen3.5/3.6 (qwen3_5, "
             "qwen3_5_moe) from 5.2.0, Qwen3-Next, Qwen3-VL and Qwen3-Omni from 4.57.0; older ones stop both engines "
             "when they read config.json",
             (code("ms-swift swift/model/register.py: ModelLoader.load -> get_config (config.json through "
                   "transformers' AutoConfig, from get_model_processor on both engines: Megatron's "
                   "megatron/pipelines/train/sft.py MegatronSft.__init__ with load_model=False still reads it; "
                   "model_meta.py _get_model_info's earlier AutoConfig read falls back to the raw dict on error)"),
              code("ms-swift swift/model/model_meta.py: ModelMeta.check_requires (the registry's transformers>=5.2.0 / "
                   ">=4.57 only logs a warning)"),
              code("transformers models/qwen3_5/configuration_qwen3_5.py: Qwen3_5Config (absent from the 5.1.0 "
                   "wheel, present in 5.2.0; models/qwen3_next, qwen3_vl, qwen3_vl_moe, qwen3_omni_moe absent from the "
                   "4.56.2 wheel, present in 4.57.0 -- read from the released wheels)"),
              Evidence("report", "hiyouga/LlamaFactory#10219", "Qwen3.5-27B fine-tuning on transformers 5.0.0: "
                       "KeyError: 'qwen3_5' in AutoConfig.from_pretrained")),
             "both engines, model_type qwen3_5* / qwen3_next / qwen3_vl* / qwen3_omni* from config.json, a declared or "
             "installed transformers below the row (support table: transformers-qwen3_5, transformers-qwen3_next, "
             "transformers-qwen3_vl)"),
    RuleInfo("linear-attention-sp-swift", "warning", "Qwen3-Next with sequence_parallel_size > 1 on the transformers "
             "engine: ms-swift splits the sequence over the ranks but gives only Qwen3.5/3.6's Gated DeltaNet a "
             "sequence-parallel forward, so Qwen3-Next's linear-attention layers run each rank's slice from an empty "
             "state, without an error",
             (code("ms-swift swift/sequence_parallel/sequence_parallel.py: SequenceParallel.prepare / "
                   "_prepare_forward_hook (pad_and_split_inputs before the decoder; only attention is all-to-all'd)"),
              code("ms-swift swift/model/models/qwen.py: _patch_qwen3_5_linear_attention_sequence_parallel (patches "
                   "Qwen3_5GatedDeltaNet / Qwen3_5MoeGatedDeltaNet; the qwen3_next registration patches nothing)"),
              code("transformers models/qwen3_next/modeling_qwen3_next.py: Qwen3NextGatedDeltaNet.forward (causal conv "
                   "and chunk_gated_delta_rule over the tensor it is given, initial state None)"),
              Evidence("report", "modelscope/ms-swift#9162", "the PR giving Qwen3.5's linear attention Ulysses "
                       "sequence parallelism: \"Existing SP support is robust for full attention, but lacked "
                       "model-specific linear-attention SP execution\"; scope Qwen3.5 only"),
              Evidence("report", "verl-project/verl#5639", "Qwen3Next under Ulysses SP on transformers' layers (verl's "
                       "FSDP actor): \"The linear attention layers are not aware of the SP partitioning, leading to "
                       "incorrect attention computation\"; workaround sp_size=1")),
             "engine: swift, model_type qwen3_next, sequence_parallel_size > 1; Qwen3.5/3.6 (patched) and the Megatron "
             "engine are not judged"),
    RuleInfo("attention-cp", "error, warning", "attention_backend unfused or local with context parallel: Transformer "
             "Engine runs CP attention only in its flash and fused backends",
             (code("transformer-engine pytorch/attention/dot_product_attention/utils.py: get_attention_backend "
                   "(\"Disabling UnfusedDotProductAttention as it does not support context parallelism\"; public "
                   "source, not installed here)"),
              code("megatron-core models/common/language_module/language_module.py: LanguageModule._set_attention_backend "
                   "(unfused: NVTE_FLASH_ATTN=0, NVTE_FUSED_ATTN=0; local: all three 0)"),
              code("megatron-core transformer/dot_product_attention.py: DotProductAttention.__init__ (\"Context "
                   "parallelism is only supported by TEDotProductAttention!\")"),
              Evidence("report", "NVIDIA/TransformerEngine#1051", "context parallel on TE's DotProductAttention without "
                       "flash or fused attention: 'Context parallelism is only implemented with Flash Attention and "
                       "Fused Attention!'")),
             "engine: megatron, context_parallel_size > 1, attention_backend unfused or local (local without launch.gpu: "
             "a warning, Ascend's MindSpeed brings its own attention); not the DSA models, not the learnable-softmax "
             "models (attention-sinks-cp)"),
    RuleInfo("attention-local", "error, warning", "attention_backend local on CUDA: megatron-core switches every "
             "Transformer Engine attention backend off while mcore-bridge builds TE's DotProductAttention, so the first "
             "forward finds no backend",
             (code("megatron-core models/common/language_module/language_module.py: LanguageModule._set_attention_backend "
                   "(local: NVTE_FLASH_ATTN=0, NVTE_FUSED_ATTN=0, NVTE_UNFUSED_ATTN=0)"),
              code("mcore-bridge 1.6.3 mcore_bridge/model/register.py: ModelLoader.get_transformer_layer_spec "
                   "(get_gpt_decoder_block_spec(use_transformer_engine=True): TEDotProductAttention)"),
              code(TE_BACKEND[:-1] + "; the three switches read at every call: \"Disabling FusedAttention due to "
                   "NVTE_FUSED_ATTN=0\")")),
             "engine: megatron, attention_backend local, context_parallel_size 1 (CP > 1: attention-cp), not the DSA "
             "models (deepseek_v32, glm_moe_dsa: megatron-core's DSAttention) nor deepseek_v4 (its own hybrid "
             "attention); an error with launch.gpu (NVIDIA), a "
             "warning without one (Ascend NPUs run local through MindSpeed's attention)"),
    RuleInfo("attention-env", "error, warning", "the recipe's env sets NVTE_FLASH_ATTN / NVTE_FUSED_ATTN / "
             "NVTE_UNFUSED_ATTN to a value the attention_backend does not set (flash 1/0/0, fused 0/1/0, unfused 0/0/1, "
             "auto 1/1/1, local 0/0/0), or NVTE_APPLY_QK_LAYER_SCALING=1 (or no integer) with "
             "apply_query_key_layer_scaling off (a warning when the dtype is left to the checkpoint)",
             (code("megatron-core models/common/language_module/language_module.py: LanguageModule._set_attention_backend "
                   "(\"... set to X, but expected Y for attention backend type ...\")"),
              code("megatron-core extensions/transformer_engine.py: TEDotProductAttention.__init__ "
                   "(\"apply_query_key_layer_scaling is False but environment variable NVTE_APPLY_QK_LAYER_SCALING is "
                   "1\")"),
              code("ms-swift swift/megatron/arguments/megatron_args.py: MegatronArguments._init_mixed_precision "
                   "(apply_query_key_layer_scaling defaults to fp16; sets the variable to '1' only when on)")),
             "engine: megatron, the recipe's env block; NVTE_APPLY_QK_LAYER_SCALING not for the DeepSeek Sparse "
             "Attention models (mcore-bridge _replace_spec_dsa: DSAttention, no TEDotProductAttention built)"),
    RuleInfo("tp-comm-overlap-fp8", "error, warning", "tp_comm_overlap with fp8_format: on Transformer Engine >= 2.7 "
             "ms-swift 4.6's userbuffer setup reads an argument MegatronArguments does not have (AttributeError "
             "before the first step)",
             (code("ms-swift swift/megatron/utils/megatron_lm_utils.py: initialize_tp_communicators (is_te_min_version"
                   "('2.7.0') branch: args.fp8 is not None and args.first_last_layers_bf16)"),
              code("ms-swift swift/megatron/arguments/megatron_args.py: MegatronArguments (no first_last_layers_bf16 "
                   "field; __post_init__ sets fp8 = fp8_format)"),
              code("ms-swift swift/megatron/trainers/base.py: setup (initialize_tp_communicators when tp_comm_overlap)")),
             "engine: megatron, tp_comm_overlap with sequence parallel at TP > 1, fp8_format set; error where the "
             "target transformer-engine is known to be >= 2.7 (--target-versions or installed), warning where unknown"),
    RuleInfo("tp-comm-overlap", "error, warning", "tp_comm_overlap: with LoRA on tensor-parallel layers the adapters "
             "fail to build (error); below sm90 TE's userbuffers need UB_SKIPMC=1 (no CUDA multicast: error); Transformer "
             "Engine's userbuffers are sized once for max_length x "
             "micro_batch_size / CP tokens and every micro-batch must fill them exactly, while ms-swift's micro-batches "
             "(padded to their longest sample, or packed) are usually shorter, and with no bootstrap backend passed a "
             "PyTorch built with MPI bootstraps them through MPI, which torchrun does not launch (warning)",
             (code("ms-swift swift/megatron/utils/megatron_lm_utils.py: initialize_tp_communicators (initialize_ub shape "
                   "(seq_length * micro_batch_size) // context_parallel_size); swift/megatron/trainers/base.py: "
                   "_get_data_collator (padding_to = get_padding_to(args): the longest sample, not max_length)"),
              code("transformer-engine pytorch/csrc/extensions/comm_gemm_overlap.cpp: CommOverlap*::copy_into_buffer "
                   "(\"Tried to copy an invalid tensor into a local chunk of a Userbuffers buffer\"; public source, not "
                   "installed here)"),
              Evidence("report", "verl-project/verl#5663", "Qwen3-235B SFT with TE userbuffers sized seq_length x "
                       "micro_batch: tensor shape mismatch on variable-length micro-batches"),
              Evidence("report", "NVIDIA/Megatron-LM#1238", "userbuffers sized seq_length * micro_batch_size; THD "
                       "(variable lengths) not supported (open)"),
              code("transformer-engine pytorch/module/base.py: initialize_ub (no bootstrap_backend given: MPI when "
                   "torch.distributed.is_mpi_available(), else Gloo, else NCCL; public source, not installed here)"),
              Evidence("report", "NVIDIA-NeMo/Megatron-Bridge#665", "TP comm overlap with sequence parallel (Llama and "
                       "NemotronH recipes): 'An error occurred in MPI_Init_thread on a NULL communicator'; Bridge then "
                       "defaulted its bootstrap backend to NCCL (PR #1395)"),
              code("mcore-bridge 1.6.3 mcore_bridge/tuners/lora.py: LoraParallelLinear.update_layer (TERowParallelLinear / "
                   "TEColumnParallelLinear adapters without tp_comm_buffer_name)"),
              code("megatron-core extensions/transformer_engine.py: TELinear.__init__ (\"Buffer name should be set to "
                   "configure communication overlap settings\")"),
              Evidence("report", "modelscope/ms-swift#5240", "Qwen3-235B LoRA, multi-node, TP communication overlap: "
                       "that AssertionError in lora.py update_layer"),
              code("transformer-engine pytorch/module/base.py: initialize_ub (no CUDA multicast: assert UB_SKIPMC=1; "
                   "public source, not installed here)"),
              Evidence("report", "NVIDIA/TransformerEngine#985", "8 x A800, Megatron-LM --tp-comm-overlap: crash at "
                       "userbuffer setup; the maintainer: run with UB_SKIPMC=1 (CUDA IPC) where multicast is missing")),
             "engine: megatron, tp_comm_overlap with sequence_parallel at TP > 1; the LoRA error for tuner_type lora / "
             "lora_llm with targets on tensor-parallel linears; the multicast error below sm90 without UB_SKIPMC=1; "
             "the userbuffer warning otherwise (data cut to exactly "
             "max_length per sample or pack runs)"),
    RuleInfo("deepep-gpu", "error, warning", "DeepEP token dispatch (moe_enable_deepep, or the flex dispatcher's "
             "default backend) on a GPU DeepEP runs on: refused below sm80; said for PCIe boards (sm86/sm89) and for "
             "an Ampere expert group that spans nodes",
             (code("megatron-core transformer/moe/token_dispatcher.py: MoEFlexTokenDispatcher (DeepEP backend, "
                   "transformer/moe/fused_a2a.py deep_ep.Buffer)"),
              Evidence("report", "deepseek-ai/DeepEP#162", "intranode kernels on Ampere tested with A100 NVLink "
                       "connections, 'PCIe not working'"),
              Evidence("report", "deepseek-ai/DeepEP#481", "4 x A6000 (sm86, PCIe): the sm86 build does not import"),
              Evidence("report", "nvidia-cosmos/cosmos-rl#441", "pull request: DeepEP turned off below Hopper, 'it "
                       "does not work with older GPUs like L40'"),
              Evidence("report", "deepseek-ai/DeepEP#234", "A800: intranode yes (NVLink), internode kernels "
                       "'currently not'")),
             "engine: megatron, MoE models, moe_enable_deepep or moe_token_dispatcher_type flex with the deepep "
             "backend, launch.gpu named; V100 an error, sm86/sm89 and an sm80 expert group (ETP x EP) wider than a "
             "node warnings"),
    RuleInfo("lora-fp8", "error", "LoRA under FP8 compute without fp8_param_gather needs lora_rank a multiple of 16 "
             "(the adapters run inside FP8 autocast)",
             (code("mcore-bridge 1.6.3 mcore_bridge/tuners/lora.py: LoraParallelLinear.forward (adapters outside FP8 "
                   "autocast only when config.fp8_param)"),
              code("ms-swift swift/megatron/model/utils.py: get_mcore_model_config (fp8_param = fp8_param_gather)"),
              code("transformer-engine pytorch/module/linear.py: _Linear.forward (assert_dim_for_fp8_exec: last "
                   "dimension divisible by 16; public source, not installed here)"),
              Evidence("report", "NVIDIA/TransformerEngine#1422", "'FP8 execution requires 2D input matrices with "
                       "height divisible by 8 and width divisible by 16' for a layer of width 712; pad or keep small "
                       "layers out of FP8")),
             "engine: megatron (mcore-bridge), fp8_format set, tuner_type lora / lora_llm, fp8_param_gather off"),
    RuleInfo("fp8-shape", "error", "FP8 compute needs each decoder linear's per-rank width a multiple of 16 (32 under "
             "fp8_recipe mxfp8): the dense FFN and shared expert split by TP, the routed experts by ETP, the attention "
             "output projection by TP (e.g. DeepSeek-V2-Lite / GLM-4.5-Air's 10944-wide dense layer at TP=8; "
             "Qwen2.5-72B's 29568-wide FFN at TP=8 under MXFP8)",
             (code("transformer-engine pytorch/module/linear.py: _Linear.forward (assert_dim_for_fp8_exec(inputmat, "
                   "weight); layernorm_linear.py _LayerNormLinear.forward alike; public source, not installed here)"),
              code("megatron-core extensions/transformer_engine.py: TERowParallelLinear.__init__ (weight [hidden, "
                   "input_size / TP])"),
              code("ms-swift swift/megatron/utils/utils.py: get_padding_to (pads only the token dimension for FP8)"),
              Evidence("report", "NVIDIA/TransformerEngine#1422", "the same assertion for a 712-wide layer; the "
                       "maintainer: pad to a multiple of 16/32 or keep the layer out of FP8"),
              code("transformer-engine pytorch/csrc/quantizer.cpp: MXFP8Quantizer::create_tensor (\"MXFP8 requires "
                   "tensor dims that are divisible by 32\", both flattened dims; public source, not installed here)"),
              Evidence("report", "modelscope/ms-swift#9723", "MXFP8 + sequence parallel + packing: that assertion on a "
                       "(7984, 3072) activation (the token dimension, which ms-swift 4.6 now pads to TP*32)")),
             "engine: megatron, fp8_format set, not with first_last_layers_bf16; softmax-attention, dense-FFN, "
             "shared- and routed-expert linears (not Gated DeltaNet or MLA projections); the multiple is 32 for "
             "fp8_recipe mxfp8"),
    RuleInfo("cross-entropy-te", "warning", "cross_entropy_fusion_impl te on a Transformer Engine older than 2.7: "
             "its fused parallel cross entropy hands back a zero logits gradient (grad_norm 0; the loss stalls or "
             "diverges while the run looks healthy)",
             (code("megatron-core models/common/language_module/language_module.py: LanguageModule."
                   "compute_language_model_loss (te_parallel_cross_entropy when cross_entropy_loss_fusion and "
                   "cross_entropy_fusion_impl 'te')"),
              code("ms-swift swift/megatron/model/utils.py: get_mcore_model_config (copies cross_entropy_loss_fusion, "
                   "default True, and cross_entropy_fusion_impl into the model config)"),
              code("transformer-engine pytorch/triton/cross_entropy.py: element_mul_kernel (grad_output pointer; "
                   "fixed by NVIDIA/TransformerEngine PR #2139, September 2025; public source, not installed here)"),
              Evidence("report", "NVIDIA/Megatron-LM#1750", "ms-swift Megatron training, cross_entropy_fusion_impl te: "
                       "grad_norm 0; reproduced on TE 2.5.0 (the run diverged); fixed by TE PR #2139"),
              Evidence("report", "NVIDIA/Megatron-LM#1627", "Qwen3-30B-A3B-shaped MoE continued pretraining, TP1 PP2 "
                       "EP8, --cross-entropy-fusion-impl te: loss diverges, grad_norm abnormally smooth; fine "
                       "without it")),
             "engine: megatron, sft / pt of a causal LM and DPO / KTO (their log-probabilities are the model's per-token "
             "loss; not GRPO, which pops the labels), cross_entropy_loss_fusion on (ms-swift's default) and "
             "cross_entropy_fusion_impl te, the training machine's transformer-engine known (--target-versions, "
             "the recipe's SWIFT_EXT_TARGET_VERSIONS, or installed) to be below 2.7; no verdict when unknown"),
]
