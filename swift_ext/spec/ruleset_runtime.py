"""The entries of the rules for failures that come after start-up but are fixed by the recipe (issue #21's audit of
first-forward failures): Transformer Engine's attention kernels and context-parallel implementations as ms-swift 4.6
reaches them through megatron-core 0.16.1 (planner/attention_rules.py), and megatron-core's own Gated DeltaNet refusing
packed input (planner/layout.py). spec/ruleset.py joins them with the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import Evidence, RuleInfo, code

TE_BACKEND = ("transformer-engine pytorch/attention/dot_product_attention/utils.py: get_attention_backend "
              "(public source, not installed here)")

RUNTIME_RULE_INFO = [
    RuleInfo("attention-kernel", "error, warning", "attention_backend flash (ms-swift's default) leaves Transformer "
             "Engine only FlashAttention: refused for a head dim > 256 (Gemma 4's 512-wide global layers), for MLA "
             "below sm90, for a head dim in (192, 256] on sm86/sm89 and for any model below sm80; said for MLA or a head dim > 192 "
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
    RuleInfo("cp-comm-type", "error, warning", "cp_comm_type a2a+p2p is refused (ms-swift builds no hierarchical CP "
             "groups; THD is refused by TE's hierarchical CP too); a2a needs the q and KV heads per TP rank divisible "
             "by CP; all_gather over THD (padding_free) is said (TE before PR #2829 asserts)",
             (code("ms-swift swift/megatron/utils/megatron_lm_utils.py: _initialize_mpu (initialize_model_parallel "
                   "without hierarchical_context_parallel_sizes)"),
              code("megatron-core extensions/transformer_engine.py: TEDotProductAttention.__init__ (a2a+p2p: cp_group "
                   "= get_hierarchical_context_parallel_groups(check_initialized=False))"),
              code("transformer-engine pytorch/attention/dot_product_attention/context_parallel.py: "
                   "attn_forward_func_with_cp / AttnFuncWithCPAndKVP2P.forward / AttnFuncWithCPAndKVAllGather.forward "
                   "/ AttnFuncWithCPAndQKVOA2A.forward (public source, not installed here)"),
              Evidence("report", "NVIDIA/TransformerEngine#2208", "hierarchical CP (a2a+p2p) with packed THD input: "
                       "'thd format is not supported with hierarchical CP implementation yet!'; H800, megatron "
                       "core_r0.13.0, TE 2.4")),
             "engine: megatron, context_parallel_size > 1, cp_comm_type set (argument or megatron_extra_kwargs)"),
    RuleInfo("linear-attention-packed", "error", "no packed input (padding_free / packing) to megatron-core's own "
             "Gated DeltaNet: bridge_backend megatron-bridge on Qwen3-Next before megatron-core 0.19",
             (code("megatron-core ssm/gated_delta_net.py: GatedDeltaNet.forward (\"GDN does not support packed sequence "
                   "for now\")"),
              code("ms-swift swift/megatron/model/utils.py: _get_megatron_bridge_model (variable_seq_lengths with "
                   "padding_free: packed_seq_params reach the layers)"),
              Evidence("report", "NVIDIA/Megatron-LM#3798", "Qwen3.5 SFT with packed sequences on megatron-core's GDN "
                       "(the guard lifted by PR #2645, merged 2026-05-15)"),
              Evidence("report", "NVIDIA/Megatron-LM#4043", "Qwen3.5 long-context finetuning: CP needs packed sequences "
                       "and megatron-core's GDN refuses them")),
             "engine: megatron, bridge_backend megatron-bridge, a model with Gated DeltaNet layers (ms-swift refuses the "
             "multimodal Qwen3.5/3.6 there: Qwen3-Next in practice), padding_free or packing on, megatron-core < 0.19 "
             "(support table: packed-linear-attention); mcore-bridge, the default backend, runs its own packed GDN"),
]
