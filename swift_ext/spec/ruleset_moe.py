"""The entries of the MoE dispatcher and MTP pipeline-stage rules (planner/moe_rules.py).
spec/ruleset.py joins them with the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import MS, TC, Evidence, RuleInfo, code

MOE_RULE_INFO = [
    RuleInfo("attention-backend", "error", "attention sinks (gpt-oss's learnable softmax) exclude attention_backend "
             "flash, ms-swift's default",
             (code("ms-swift swift/megatron/model/utils.py: _check_attention_backend (\"does not support learnable "
                    "softmax_type\")"),
              code("mcore-bridge 1.6.3 mcore_bridge/config/parser.py:239 hf_to_mcore_config (softmax_type "
                   "'learnable' for gpt_oss; 1.6.5 :320)")),
             "engine: megatron, gpt-oss language models (gpt-oss, InternVL3.5-GPT-OSS)"),
    RuleInfo("attention-sinks-cp", "error", "attention sinks (gpt-oss's learnable softmax) with context parallel: "
             "Transformer Engine takes them only in its fused backend with cp_comm_type a2a",
             (code("transformer-engine pytorch/attention/dot_product_attention/utils.py: get_attention_backend "
                   "(softmax_type != vanilla under context parallel: unfused disabled, fused disabled unless "
                   "cp_comm_type == 'a2a'; public source, not installed here)"),
              Evidence("report", "NVIDIA-NeMo/Megatron-Bridge#2298", "gpt-oss-20b, context parallel > 1 with the "
                       "default cp_comm_type: 'No dot product attention backend is available'"),
              Evidence("report", "NVIDIA/TransformerEngine#2541", "gpt-oss under CP: p2p finds no backend, a2a "
                       "enables FusedAttention (Megatron-Bridge's gpt-oss recipe sets a2a whenever CP > 1)")),
             "engine: megatron, gpt-oss language models (learnable softmax), context_parallel_size > 1, unless "
             "cp_comm_type is a2a on every layer with attention_backend fused or auto"),
    RuleInfo("deepep-group", "error, warning", "DeepEP token dispatch needs an expert group (ETP x EP) of a size DeepEP "
             "has a config for (2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 144, 160: refused otherwise), and on nodes of "
             "fewer than 8 GPUs a group within one node (said: DeepEP takes 8 consecutive ranks for one NVLink node)",
             (code("megatron-core transformer/moe/fused_a2a.py: get_buffer (Buffer.get_dispatch_config / "
                   "get_combine_config over the flex dispatcher's ETP x EP group)"),
              code("DeepEP deep_ep/buffer.py, deep_ep/buffers/legacy.py: Buffer.get_dispatch_config (\"Unsupported "
                   "number of EP ranks\"; public source, not installed here)"),
              Evidence("report", "deepseek-ai/DeepEP#464", "24 nodes x 8 GPUs, a 192-rank EP group: DeepEP's rank "
                       "assertion; the maintainer: EP groups stay within 160 ranks"),
              Evidence("report", "deepseek-ai/DeepEP#541", "pull request: 'AssertionError: Unsupported number of EP "
                       "ranks: 12' and the list of supported sizes"),
              Evidence("report", "deepseek-ai/DeepEP#392", "GB200 (4 GPUs a node): the normal kernels limit a node to "
                       "8 GPUs, normal mode unsupported"),
              Evidence("report", "deepseek-ai/DeepEP#104", "two nodes of one A100 each: DeepEP's buffer assertion")),
             "engine: megatron, MoE models, moe_enable_deepep or the flex dispatcher's default deepep backend, ETP x EP "
             "above 1 and dividing the ranks of a pipeline stage; the node warning with launch.gpus_per_node below 8"),
    RuleInfo("lora-targets", "error, warning", "Megatron LoRA target_modules given as transformers names (q_proj, "
             "...) match nothing in Megatron's model (refused by peft); modules_to_save given as transformers names "
             "(lm_head, embed_tokens) match nothing either, silently (warning); target_modules naming no module of Megatron's "
             "model at all (typos such as linear_fc1x): refused when no entry matches, a warning when the others match "
             "and peft drops these silently",
             (code("ms-swift swift/megatron/utils/utils.py: get_target_modules (explicit names passed through)"),
              code("peft tuners/tuners_utils.py: BaseTuner.inject_adapter (\"Target modules ... not found in the base "
                    "model\")"),
              code("ms-swift swift/megatron/utils/utils.py: get_modules_to_save; peft utils/other.py: _set_trainable "
                    "(suffix match, no error without strict_module_check)"),
              Evidence("report", "NVIDIA-NeMo/Megatron-Bridge#1738", "Qwen3-0.6B LoRA, a target_modules typo "
                       "(linear_fc1x) trains on silently (Megatron-Bridge's LoRA; peft drops it the same way)")),
             "engine: megatron, LoRA on a text model or Qwen3.5/3.6 (whose transformers vision tower has none of those "
             "names: attn.qkv/proj, mlp.linear_fc1/fc2), every target_modules entry a transformers projection name "
             "(with Gated DeltaNet's in_proj_qkv / in_proj_z / in_proj_b / in_proj_a, which mcore-bridge fuses into "
             "in_proj) and no target_regex (which replaces target_modules: MegatronTunerMixin.__post_init__), or "
             "a modules_to_save entry named lm_head / embed_tokens / wte; on a text model, an entry (by its last dotted "
             "part) outside every module name of megatron-core 0.16.1 and mcore-bridge 1.6.3 and no regex syntax: error "
             "with no Megatron name beside it, warning beside one unless all-linear is listed"),
    RuleInfo("lora-linear-attention", "warning", "LoRA target_modules that name attention projections but none of "
             "the Gated DeltaNet layer's (Qwen3.5/3.6, Qwen3-Next: 3 layers in 4) adapt the full-attention layers "
             "only; the linear-attention layers' token mixing stays frozen, silently",
             (code("transformers models/qwen3_5/modeling_qwen3_5.py: Qwen3_5GatedDeltaNet (in_proj_qkv, in_proj_z, "
                   "in_proj_b, in_proj_a, out_proj; no q/k/v/o_proj)"),
              code("megatron-core ssm/gated_delta_net.py: GatedDeltaNet (in_proj, out_proj; no linear_qkv/linear_proj)"),
              code("ms-swift swift/utils/transformers_utils.py: find_all_linears (only all-linear is expanded); "
                   "swift/megatron/utils/utils.py: get_target_modules"),
              Evidence("report", "agentscope-ai/TuFT#149", "Qwen3.5-4B / 27B LoRA with the default attention + MLP "
                       "target map (q/k/v/o_proj, gate/up/down_proj): every Gated DeltaNet projection skipped, no "
                       "error; fixed by adding linear_attn.* to the map"),
              Evidence("report", "axolotl-ai-cloud/axolotl#3515", "Qwen3.5-35B-A3B QLoRA r16 on the example's "
                       "q/k/v/o_proj: a 13.5 MB adapter (the 10 full-attention layers of 40), ~3.7 GB once the "
                       "linear-attention and expert weights are targeted")),
             "both engines, LoRA on a model with linear-attention layers, explicit target_modules (no all-linear, no "
             "target_regex) that reach the attention projections and none of the linear-attention ones"),
    RuleInfo("lora-fused-pair", "error", "engine swift: a LoRA target_modules list naming one half of a fused expert "
             "pair (gate_proj without up_proj, w1 without w3) on an MoE model peft converts for transformers 5 "
             "(Qwen3-MoE, DeepSeek-V3, GLM-4.5, Mixtral, ...): peft refuses the conversion when the adapter is built",
             (code("peft utils/transformers_weight_conversion.py: _convert_peft_config_moe (\"Cannot convert PEFT "
                   "target(s) ... without also targeting ... because they are fused into gate_up_proj.\")"),
              code("peft tuners/tuners_utils.py: BaseTuner.inject_adapter (convert_peft_config_for_transformers for "
                   "every transformers >= 5 model with a checkpoint conversion)"),
              code("ms-swift swift/pipelines/train/tuner.py: prepare_adapter (the target_modules list to LoraConfig)")),
             "engine swift, a new peft LoRA adapter (tuner_type lora/lora_llm, no target_regex, resume or adapters), "
             "config.json model_type in peft's converted MoE types (planner/moe_lora_rules.py CONVERTED_MODEL_TYPES)"),
    RuleInfo("lora-param-wrapper", "error", "engine swift on transformers 5 + peft 0.20: LoRA that reaches fused MoE "
             "parameters (target_parameters; expert names peft converts; all-linear on a converted model with a "
             "shared expert or dense layer: GLM-4.5, DeepSeek-V3, Qwen3-Next) goes through peft's ParamWrapper, "
             "which refuses lora_dropout != 0 (ms-swift's default 0.05) and use_dora",
             (code("peft tuners/lora/layer.py: ParamWrapper.update_layer (\"lora.ParamWrapper does not work with "
                   "lora_dropout != 0.\", \"... with use_dora=True.\")"),
              code("peft utils/transformers_weight_conversion.py: _convert_peft_config_moe (gate_proj/up_proj/down_proj, "
                   "w1/w3/w2 and gate become target_parameters)"),
              code("ms-swift swift/arguments/tuner_args.py: TunerArguments.lora_dropout (default 0.05)"),
              code("ms-swift swift/pipelines/train/tuner.py: get_target_modules / prepare_adapter (Swift.prepare_model "
                   "on a tiny GLM-4.5-MoE and Qwen3-Next with all-linear raises it on the installed packages)"),
              Evidence("report", "modelscope/ms-swift#9589", "pull request: fused-expert LoRA through target_parameters "
                       "has unresolved edge cases with lora_dropout; use it only with lora_dropout=0")),
             "engine swift, a new peft LoRA adapter, transformers >= 5 (declared or installed) with the installed "
             "peft >= 0.20; lora_dropout unset (0.05) or non-zero, or use_dora"),
    RuleInfo("lora-all-linear-experts", "warning", "engine swift on transformers 5: LoRA target_modules all-linear "
             "on an MoE model whose routed experts are fused parameters leaves them frozen: ms-swift expands "
             "all-linear to the nn.Linear layers (attention, and a shared expert's projections); peft converts them "
             "to the experts only for its converted types with a shared expert or dense layer",
             (code("ms-swift swift/pipelines/train/tuner.py: get_target_modules (all-linear -> find_all_linears for a "
                   "text model, get_multimodal_target_regex for a multimodal one)"),
              code("ms-swift swift/utils/transformers_utils.py: find_all_linears (modules whose class name holds "
                   "'linear')"),
              code("transformers models/qwen3_moe/modeling_qwen3_moe.py: Qwen3MoeExperts; models/gpt_oss/"
                   "modeling_gpt_oss.py: GptOssExperts; models/qwen3_5_moe: Qwen3_5MoeExperts (gate_up_proj, "
                   "down_proj nn.Parameter)"),
              code("peft utils/transformers_weight_conversion.py: _resolve_string_target_modules (adds the experts "
                   "for the string 'all-linear' only, not for a list) / _MODEL_TO_CONVERSION_PATTERN (no gpt_oss, "
                   "qwen3_5_moe)"),
              Evidence("report", "huggingface/peft#3009", "Qwen3MoeForCausalLM on transformers v5: the experts are one "
                       "fused nn.Parameter, and LoRA no longer reaches them the way it reached v4's nn.Linear experts")),
             "engine swift, a new peft LoRA adapter, transformers >= 5 with peft >= 0.20, all-linear without "
             "target_parameters; peft's converted types (text, no shared expert or dense layer, no named expert "
             "projections) or gpt-oss / Qwen3.5-MoE (any)"),
    RuleInfo("lora-fused-experts", "warning", "engine swift: LoRA target_modules naming MLP projections (gate_proj, "
             "up_proj, down_proj) on a MoE model whose installed transformers class holds the routed experts as fused "
             "parameters (Qwen3.5/3.6-MoE, Qwen3-MoE, gpt-oss, GLM-4.5, DeepSeek-V3, ERNIE-4.5, MiniMax-M2, Llama-4, "
             "Mixtral, ...) reach the shared expert at most; the routed experts, which only target_parameters "
             "reaches, stay frozen, silently",
             (code("transformers models/qwen3_5_moe/modeling_qwen3_5_moe.py: Qwen3_5MoeExperts (gate_up_proj, "
                   "down_proj nn.Parameter); Qwen3_5MoeSparseMoeBlock.shared_expert (gate/up/down_proj Linear)"),
              code("transformers models/gpt_oss/modeling_gpt_oss.py: GptOssExperts (gate_up_proj, down_proj "
                   "nn.Parameter; no shared expert) -- and the `...Experts` class of each models/<model_type>/"
                   "modeling_<model_type>.py, read at plan time (swift_ext/planner/warn_rules.py fused_experts_class)"),
              code("ms-swift swift/pipelines/train/tuner.py: prepare_adapter (target_parameters passed only when "
                   "stated)"),
              Evidence("report", "agentscope-ai/TuFT#154", "Qwen3.5-MoE / Qwen3.6-35B-A3B: train_mlp's gate/up/down_proj "
                       "adapt the shared expert; routed experts stay frozen until target_parameters"),
              Evidence("report", "axolotl-ai-cloud/axolotl#3515", "Qwen3.5-35B-A3B: the example's target names give "
                       "a tiny adapter; lora_target_parameters mlp.experts.gate_up_proj / down_proj reach the experts"),
              Evidence("report", "unslothai/unsloth#3405", "gpt-oss-20b notebook listing gate_proj/up_proj/down_proj: "
                       "the experts' parameters have other names, 'TRL silently ignores this', attention-only adapter")),
             "engine swift, MoE models whose model_type (or text model_type) has a fused experts class in the "
             "installed transformers, tuner_type lora/lora_llm, target_modules naming gate_proj/up_proj/down_proj "
             "without all-linear, no target_parameters or target_regex"),
    RuleInfo("megatron-extra-kwargs", "error, warning", "each megatron_extra_kwargs key is a field of the model config "
             "ms-swift builds (refused otherwise, with the nearest name; only said with external_plugins, whose model "
             "meta can bring its own config_cls; a field only a later mcore-bridge than ms-swift's floor 1.6.3 has is "
             "said); each value fits the field's declared type in megatron-core's "
             "TransformerConfig / ModelParallelConfig (a string for a boolean -- \"false\" is true --, a string, "
             "fraction or boolean for an integer, a value outside a Literal: refused; Any, dtypes, callables and the "
             "fields mcore-bridge's ModelConfig retypes are not judged); a key that is also an ms-swift argument with "
             "another value is said: the config takes the extra value, args keeps the argument's",
             (code("ms-swift swift/megatron/model/utils.py: get_mcore_model_config (kwargs.update("
                    "args.megatron_extra_kwargs) last, then config_cls(**kwargs): TypeError on an unknown key, no type "
                    "check on a value)"),
              code("megatron-core transformer/transformer_config.py: TransformerConfig (the dataclass fields mcore-bridge's "
                    "ModelConfig extends, and their annotations)"),
              code("mcore-bridge 1.6.3 mcore_bridge/config/model_config.py:116 ModelConfig (its own fields: "
                   "swift_ext/msswift/mcore-bridge-model-config.json, read from the 1.6.3 wheel and 1.6.5's; a field "
                   "only 1.6.5 has is said, not refused)"),
              code("mcore-bridge 1.6.5 mcore_bridge/model/mm_gpts/deepseek_v41.py:1805 register_model(... config_cls="
                   "MLAModelConfig): MLATransformerConfig's fields are accepted for deepseek_v41")),
             "engine: megatron, bridge_backend mcore-bridge (the default), megatron_extra_kwargs set; an "
             "MLATransformerConfig-only key is accepted for deepseek_v41 and said for a model the registry does not "
             "know"),
    RuleInfo("moe-expert-bias", "error", "moe_router_enable_expert_bias (through megatron_extra_kwargs) needs a "
             "sigmoid router, and a checkpoint that holds the routers' expert bias when mcore-bridge loads the HF "
             "weights",
             (code(TC + " (\"Expert bias for aux-loss-free routing only supports sigmoid score function\")"),
              code("ms-swift swift/megatron/model/utils.py: get_mcore_model_config (megatron_extra_kwargs update the "
                    "TransformerConfig)"),
              code("mcore-bridge 1.6.3 mcore_bridge/bridge/gpt_bridge.py: GPTBridge._set_router (router.expert_bias "
                   "from hf_expert_bias_key when expert bias is on) / _set_state_dict (`hf_state_dict[hf_key]`: "
                   "KeyError)"),
              code("ms-swift swift/megatron/trainers/base.py: _prepare_peft_model (bridge.load_weights when "
                   "mcore_model is unset)"),
              Evidence("report", "NVIDIA/Megatron-LM#1971", "GPT-OSS, --moe-router-enable-expert-bias with "
                       "--moe-router-score-function softmax"),
              Evidence("report", "modelscope/ms-swift#6793", "Qwen3-30B-A3B-Instruct-2507 (softmax router, no "
                       "expert bias in the checkpoint) with --moe_router_enable_expert_bias true and "
                       "--moe-router-score-function sigmoid fails")),
             "engine: megatron, MoE models whose router is not sigmoid (from config.json, or the same kwargs); the "
             "checkpoint case: a sigmoid router over a checkpoint without expert bias (softmax in config.json, or "
             "Llama-4), bridge_backend mcore-bridge, mcore_model unset"),
    RuleInfo("moe-dispatcher", "error", "the allgather token dispatcher excludes variable sequence lengths, which "
             "mcore-bridge's model config turns on by default (megatron-bridge: with padding_free/packing); "
             "moe_shared_expert_overlap needs the alltoall dispatcher on models with shared experts; the flex "
             "dispatcher needs expert TP*EP > 1 (the expert tensor parallel size, not TP)",
             (code(TC + " (\"allgather does not support variable sequence length\"; \"moe_shared_expert_overlap only "
                    "works with alltoall token dispatcher\")"),
              code("megatron-core transformer/moe/token_dispatcher.py: MoEFlexTokenDispatcher.__init__ (\"Flex token "
                   "dispatcher requires TPxEP > 1\")"),
              code("mcore-bridge 1.6.3 mcore_bridge/config/model_config.py:260 ModelConfig (variable_seq_lengths: "
                    "bool = True; 1.6.5 :299); ms-swift swift/megatron/model/utils.py: get_mcore_model_config (megatron_extra_kwargs "
                    "applied last), _get_megatron_bridge_model (variable_seq_lengths with padding_free)")),
             "engine: megatron, moe_token_dispatcher_type other than alltoall; with mcore-bridge unless "
             "megatron_extra_kwargs sets variable_seq_lengths false"),
    RuleInfo("moe-hybridep-lengths", "warning", "the flex dispatcher's HybridEP backend needs one token count on every "
             "rank of the expert group, which ms-swift's micro-batches (padded only to TP/CP/FP8 multiples) do not "
             "have: reports saw hangs, mixed routing maps and JIT failures",
             (code("megatron-core transformer/moe/token_dispatcher.py: _HybridEPManager.setup_metadata / dispatch "
                   "(each rank's own token count to hybrid_ep_dispatch, no padding)"),
              code("ms-swift swift/megatron/utils/utils.py: get_padding_to (TP with SP, CP, FP8 block multiples only)"),
              Evidence("report", "deepseek-ai/DeepEP#604", "Hybrid-EP in SFT with variable sequence lengths: ranks "
                       "disagree on reallocating the buffer and hang at an all-gather; routing maps of different "
                       "lengths give wrong results"),
              Evidence("report", "modelscope/ms-swift#8393", "pull request (closed unmerged): flex + hybridep on "
                       "Qwen3-30B-A3B hangs in all-gather-into-tensor on inconsistent sequence lengths; padding to "
                       "max_length fixes it"),
              Evidence("report", "NVIDIA-NeMo/Megatron-Bridge#3294", "Qwen3.5 MoE, flex + hybridep, EP 8, mbs 4: "
                       "'MAX_NUM_OF_TOKENS_PER_RANK must be multiple of NUM_OF_TOKENS_PER_CHUNK' without padding to "
                       "the sequence length"),
              Evidence("report", "NVIDIA-NeMo/Automodel#3641", "pull request: HybridEP needs the same token count on "
                       "every EP rank (a multiple of 4); variable-length or packed batches abort or deadlock")),
             "engine: megatron, MoE models, moe_token_dispatcher_type flex with megatron_extra_kwargs "
             "moe_flex_dispatcher_backend hybridep (without moe_enable_deepep, which moe-deepep refuses beside it)"),
    RuleInfo("moe-router-override", "warning", "megatron_extra_kwargs setting the router's top-k, score function, "
             "pre-softmax or group-limited routing to other values than the checkpoint's config.json, or turning the "
             "expert bias of a checkpoint trained with one off: it trains, but the pretrained router and experts "
             "route as they were not trained to",
             (code("mcore-bridge 1.6.3 mcore_bridge/config/parser.py: hf_to_mcore_config (num_experts_per_tok, "
                   "scoring_func, norm_topk_prob, n_group, topk_group -> the moe_router_* fields)"),
              code("ms-swift swift/megatron/model/utils.py: get_mcore_model_config (megatron_extra_kwargs applied last; "
                   "no ms-swift argument for these fields)"),
              Evidence("report", "alibaba/Pai-Megatron-Patch#562", "Moonlight-16B-A3B run with moe-router-topk 8 "
                       "where config.json's num_experts_per_tok is 6; the script was fixed"),
              Evidence("report", "alibaba/Pai-Megatron-Patch#529", "Moonlight SFT 'loss is too large' with 8 groups / "
                       "group top-k 4 on a model routed over one group")),
             "engine: megatron, MoE models, megatron_extra_kwargs setting moe_router_topk, moe_router_score_function, "
             "moe_router_pre_softmax (softmax routers), moe_router_num_groups or moe_router_group_topk to a value "
             "other than the model's (unset and 1 group alike), or moe_router_enable_expert_bias false on a sigmoid "
             "router with expert bias (mcore-bridge bridge/gpt_bridge.py _set_router then skips "
             "e_score_correction_bias)"),
    RuleInfo("rl-moe-aux-loss", "warning", "Megatron GRPO on a MoE model with moe_aux_loss_coeff above 0: megatron-core "
             "adds the router's load-balancing loss to every policy update, against the policy gradient",
             (code("megatron-core transformer/moe/router.py: TopKRouter._apply_aux_loss / _apply_seq_aux_loss "
                   "(coefficient per balancing type, every training forward; MoEAuxLossAutoScaler)"),
              code("ms-swift swift/megatron/arguments/megatron_args.py: MegatronArguments (moe_aux_loss_coeff "
                   "default 0.)"),
              code("ms-swift swift/megatron/trainers/base.py (the load-balancing loss is only logged; nothing drops "
                   "it for GRPO)"),
              Evidence("report", "NVIDIA-NeMo/RL#3169", "pull request: Qwen3.5-35B-A3B-Base DAPO/GRPO with the router "
                       "aux coefficient 0.001 from the HF config: ~10x grad norm at step 1, lower DAPOMathAIME2024 "
                       "validation accuracy than at 0; the recipes set it to 0"),
              Evidence("report", "NVIDIA/Megatron-LM#5694", "pull request: Megatron Lite's VERL RL path inherited "
                       "0.001 where the Megatron reference balances with 'none': a 3.4x gradient-norm error")),
             "engine: megatron, rlhf_type grpo, MoE models, moe_aux_loss_coeff (argument or megatron_extra_kwargs) "
             "above 0 for a load-balancing type other than none / sinkhorn (unset: mcore-bridge's aux_loss or "
             "seq_aux_loss)"),
    RuleInfo("pipeline-layout-mtp-stage", "warning", "a pipeline_model_parallel_layout stage with the MTP layer(s) "
             "but no decoder layer fails in ms-swift's model build",
             (Evidence("report", "ms-swift#9823", "Qwen3.5-397B-A17B, layout E(|tt)*30,|mL, mcore-bridge; fix PR "
                       "ms-swift#9827 closed unmerged"),),
             "engine: megatron with pipeline_model_parallel_layout holding an 'm' stage without 't', under "
             "bridge_backend mcore-bridge (megatron-bridge's GPTModelProvider mtp_block_spec takes the default layer "
             "spec for such a stage)"),
    RuleInfo("moe-expert-grad-sync", "warning", "expert_model_parallel_size 1 with expert_tensor_parallel_size other "
             "than tensor_model_parallel_size (ms-swift's default ETP 1 under TP > 1 included): megatron-core reduces "
             "the experts' gradients over the dense data-parallel group, not the experts' own, so expert copies drift "
             "apart (ETP < TP) or different shards are averaged (ETP > TP), silently",
             (code("megatron-core extensions/transformer_engine.py: TEGroupedLinear.__init__ / TELinear.__init__ "
                   "(expert weights: allreduce = not expert_parallel, expert_parallel = expert_model_parallel_size > 1)"),
              code("megatron-core distributed/distributed_data_parallel.py: DistributedDataParallel.__init__ "
                   "(allreduce params bucketed with the dense ones over intra_dp_cp_group)"),
              code(f"{MS} MegatronArguments (expert_tensor_parallel_size: int = 1)"),
              code("mcore-bridge 1.6.3 mcore_bridge/tuners/lora.py: LoraParallelLinear.update_layer (expert adapters "
                   "are TE grouped linears with is_expert)"),
              Evidence("report", "NVIDIA/Megatron-LM#1628", "TP 1, EP 1, ETP 4, 8 x 4090D: 'the grad sync is "
                       "incorrect and the loss curve is bad' against TP 1, EP 4, ETP 1 (open; fix proposed)"),
              Evidence("report", "NVIDIA/Megatron-LM#5916", "pull request, merged after 0.16.1: 'if EP = 1 and ETP != "
                       "TP ... the gradients themselves are not correctly reduced across the expert data-parallel "
                       "group ... ranks ... diverge'")),
             "engine: megatron, MoE models, expert_model_parallel_size 1, expert_tensor_parallel_size != "
             "tensor_model_parallel_size, experts trained (tuner_type full, or LoRA whose target_modules reach them)"),
    RuleInfo("lora-expert-bias-unsaved", "warning", "Megatron LoRA with merge_lora false on a MoE model whose routers "
             "keep an expert bias: Megatron updates the bias every step, the saved adapter does not carry it, so the "
             "base model plus adapter routes otherwise than the adapter was trained with",
             (code("megatron-core distributed/finalize_model_grads.py: finalize_model_grads "
                   "(_update_router_expert_bias when moe_router_enable_expert_bias, requires_grad not consulted)"),
              code("mcore-bridge 1.6.3 mcore_bridge/config/parser.py: hf_to_mcore_config (expert bias on for sigmoid "
                   "routers but Llama-4's) / model/modules/topk_router.py TopKRouter (no frozen_expert_bias) / "
                   "bridge/gpt_bridge.py _set_state_dict (peft_format: LoRA tensors and modules_to_save only)"),
              code("ms-swift swift/megatron/trainers/base.py: save_checkpoint (the merged model, which carries "
                   "router.expert_bias, only with merge_lora)"),
              Evidence("report", "modelscope/mcore-bridge#195", "pull request after 1.6.3: 'MoE expert bias keeps "
                       "updating even when the router weight is frozen. Reloading the base model and adapter can "
                       "... change expert selection'; freezes the bias for routers left out of the adapter")),
             "engine: megatron, tuner_type lora, MoE models with expert bias (sigmoid routers but Llama-4's, or "
             "megatron_extra_kwargs) and a non-zero moe_router_bias_update_rate, save_safetensors on, merge_lora "
             "stated false, no router in modules_to_save"),
    RuleInfo("moe-experts-config", "error", "expert-module settings megatron-core's MoE experts refuse after start-up "
             "(TransformerConfig tests none of them): moe_apply_probs_on_input with a router top-k above 1, "
             "add_bias_linear from megatron_extra_kwargs with grouped GEMM and bias_dropout_fusion on, the legacy "
             "grouped GEMM without bf16",
             (code("megatron-core transformer/moe/experts.py: GroupedMLP.forward / TEGroupedMLP.forward / "
                   "SequentialMLP.forward (moe_apply_probs_on_input asserts moe_router_topk == 1), TEGroupedMLP.__init__ "
                   "(not (add_bias_linear and bias_dropout_fusion)), GroupedMLP.forward (asserts bf16)"),
              code("ms-swift swift/megatron/model/utils.py: bias_dropout_fusion off only for models whose own config "
                   "has add_bias_linear, before megatron_extra_kwargs is applied"),
              code("mcore-bridge 1.6.3 mcore_bridge/config/parser.py: hf_to_mcore_config (moe_apply_probs_on_input "
                   "for Llama-4 only)")),
             "engine: megatron, MoE models; moe_apply_probs_on_input (megatron_extra_kwargs, or Llama-4's default) "
             "with moe_router_topk > 1; megatron_extra_kwargs add_bias_linear with moe_grouped_gemm and "
             "bias_dropout_fusion on, not gpt-oss; moe_use_legacy_grouped_gemm with moe_grouped_gemm and fp16"),
]
