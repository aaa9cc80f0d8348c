"""The entries of the rules issue #21's audits of the engine's own checks added beyond the first ones: megatron-core
0.16.1's TransformerConfig refusals of features set through megatron_extra_kwargs (planner/mcore_feature_rules.py)
and mcore-bridge 1.6.3's refusals when it builds the model (planner/mcore_bridge_rules.py, attention_rules.py); the
rest of the table is in spec/ruleset.py, which joins them."""

from __future__ import annotations

from swift_ext.spec.rule_info import GMC, MS, TC, Evidence, RuleInfo, code

MCORE_AUDIT_RULE_INFO = [
    # --- megatron-core TransformerConfig refusals of features set through megatron_extra_kwargs
    #     (planner/mcore_feature_rules.py)
    RuleInfo("moe-a2a-overlap", "error, warning", "overlap_moe_expert_parallel_comm needs EP > 1, the alltoall/flex dispatcher, "
             "a virtual pipeline size under PP, no full recompute (recompute_method / recompute_num_layers unset), no "
             "moe_shared_expert_overlap, at most one MTP layer (and PP > 1 with it), and a text model (not a multimodal "
             "one: Qwen3.5/3.6, Qwen3-VL-MoE, GLM-4.5V); delay_wgrad_compute and ep_overlap_early_attn_memory_release "
             "need the overlap on; on a text model the overlap is said to be untested with ms-swift (its forward_step "
             "takes no return_schedule_plan: read from the source, not seen run)",
             (code(TC + " (the overlap_moe_expert_parallel_comm, delay_wgrad_compute and "
                    "ep_overlap_early_attn_memory_release asserts)"), code(GMC),
              code("megatron-core pipeline_parallel/combined_1f1b.py: combined_forward_backward_step "
                   "(get_attr_wrapped_model(f_model, 'build_schedule_plan'); \"only GPTModel is supported for EP A2A "
                   "overlapping\")"),
              code("megatron-core pipeline_parallel/combined_1f1b.py: combined_forward_backward_step "
                   "(forward_step_func(data_iterator, model, return_schedule_plan=True)); ms-swift "
                   "swift/megatron/trainers/trainer.py: MegatronTrainer.forward_step(self, data_iterator, model)"),
              code("mcore-bridge 1.6.3 mcore_bridge/model/mm_gpt_model.py:16 MultimodalGPTModel (a MegatronModule "
                   "around .language_model, no build_schedule_plan, no .module)"),
              Evidence("report", "NVIDIA-NeMo/Megatron-Bridge#2161", "GLM-4.5V finetune with the MoE all-to-all "
                       "overlap (CommOverlapConfig): the VL model fails in combined_1f1b_schedule_for_no_pipelining")),
             "engine: megatron, megatron_extra_kwargs sets overlap_moe_expert_parallel_comm / delay_wgrad_compute / "
             "ep_overlap_early_attn_memory_release; the multimodal case for models ms-swift's registry marks multimodal "
             "(bridge_backend mcore-bridge)"),
    RuleInfo("activation-offloading", "error", "cpu_offloading: 0 <= cpu_offloading_num_layers < num_layers, no PP, "
             "no recompute (ms-swift's default is selective); fine_grained_activation_offloading: not with "
             "cpu_offloading, offload_modules given, known, attn_proj only with core_attn",
             (code(TC + " (the cpu_offloading and fine_grained_activation_offloading checks)"), code(GMC)),
             "engine: megatron, megatron_extra_kwargs sets cpu_offloading or fine_grained_activation_offloading"),
    RuleInfo("fp8-bf16-layers", "error", "first_last_layers_bf16 needs FP8 current or block scaling, and "
             "num_layers_at_start/end_in_bf16 between 0 and the layers per pipeline stage",
             (code(TC + " (`if self.fp8:` first_last_layers_bf16 checks)"), code(GMC)),
             "engine: megatron, fp8_format set, megatron_extra_kwargs sets first_last_layers_bf16"),
    RuleInfo("moe-router", "error", "moe_router_padding_for_quantization (or its alias moe_router_padding_for_fp8) "
             "needs FP8/FP4 and not the allgather dispatcher; top-k 1 with a softmax router needs pre-softmax; top-k at "
             "most the number of experts; "
             "group-limited routing: groups divide the experts, group top-k <= groups, neither negative, each group "
             "holding at least topk // group top-k experts, no "
             "moe_router_topk_limited_devices (the model's n_group / topk_group mapped to the same fields, "
             "megatron_extra_kwargs over them)",
             (code(TC + " (moe_router_padding_for_quantization, moe_router_topk == 1, moe_router_group_topk)"),
              code("megatron-core transformer/moe/moe_utils.py: group_limited_topk (torch.topk on topk // group_topk "
                   "and group_topk: a negative group top-k, or topk // group_topk above num_experts // num_groups, fails in "
                   "the first step; topk_routing_with_score_function's torch.topk(k=topk) over the experts alike)"),
              code("mcore-bridge config mapping: moe_router_num_groups <- n_group, moe_router_group_topk <- "
                   "topk_group"), code(GMC)),
             "engine: megatron, MoE models, megatron_extra_kwargs sets the router fields or the model sets "
             "topk_group"),
    RuleInfo("mcore-config", "error, warning", "pairs of config fields megatron_extra_kwargs sets that TransformerConfig "
             "refuses together: fused_single_qkv_rope / gated attention, rotary_interleaved or attention_output_gate / "
             "MLA (bridge_backend megatron-bridge only: mcore-bridge resets rotary_interleaved, and its ModelConfig is "
             "no MLATransformerConfig, so the gate is ignored there -- a warning), "
             "enable_cuda_graph / external_cuda_graph (together, or beside cuda_graph_impl), a CUDA graph (cuda_graph_impl) with a moe/moe_router scope on a "
             "dense model or with full recompute outside the full-iteration scope, "
             "inference_fuse_tp_communication without inference_optimized, "
             "moe_ffn_hidden_size or EP > 1 on a dense model, bias_activation_fusion / use_te_activation_func; a "
             "negative moe_shared_expert_intermediate_size (mcore-bridge turns 0 into none)",
             (code(TC), code(GMC), code("mcore-bridge 1.6.3 mcore_bridge/config/model_config.py ModelConfig.__post_init__ "
                                        "(moe_shared_expert_intermediate_size 0 -> None; MLA -> rotary_interleaved "
                                        "False; ModelConfig subclasses TransformerConfig, not MLATransformerConfig)"),
              code("megatron-core transformer/transformer_config.py: MLATransformerConfig.__post_init__ (\"Output gate "
                   "is not supported for MLA yet.\"; Megatron-Bridge's MLAModelProvider is one)"),
              code("megatron-core transformer/multi_latent_attention.py: MLASelfAttention (no output gate)")),
             "engine: megatron, megatron_extra_kwargs sets one of those fields"),
    RuleInfo("cuda-graph-scope", "error", "local CUDA graphs (cuda_graph_impl local) with a cuda_graph_scope that "
             "names mlp but not attn: the layer's CUDA graph manager reads is_moe_layer before the layer sets it",
             (code("megatron-core transformer/transformer_layer.py: TransformerLayer.create_mcore_cudagraph_manager "
                   "(mlp branch: `assert not self.is_moe_layer`; is_moe_layer is set in __init__ after the MLP is "
                   "built)"),
              code("megatron-core transformer/module.py: GraphableMegatronModule.__init__ (calls it for "
                   "cuda_graph_impl local, first thing in TransformerLayer.__init__)"),
              code("mcore-bridge 1.6.3 mcore_bridge/model/modules/transformer_layer.py TransformerLayer.__init__ "
                   "(the same order: GraphableMegatronModule.__init__, then is_moe_layer)"),
              Evidence("report", "NVIDIA-NeMo/Megatron-Bridge#4583", "Llama-3.1-8B SFT with cuda_graph_impl local, "
                       "cuda_graph_scope [mlp]: AttributeError: 'TransformerLayer' object has no attribute "
                       "'is_moe_layer'"), code(GMC)),
             "engine: megatron, megatron_extra_kwargs cuda_graph_impl local (or the deprecated enable_cuda_graph) with mlp (and no attn) in "
             "cuda_graph_scope; not transformer_engine graphs, not a scope with attn or the whole layer"),
    RuleInfo("cuda-graph-te", "warning", "TransformerEngine CUDA graphs (cuda_graph_impl transformer_engine) are never "
             "captured under ms-swift: the layers run eagerly",
             (code("megatron-core transformer/module.py: GraphableMegatronModule.__call__ / _should_call_te_cudagraph "
                   "(TE graphs replay only once captured, or while TECudaGraphHelper captures)"),
              code("megatron-core transformer/cuda_graphs.py: TECudaGraphHelper (called by Megatron-LM's "
                   "megatron/training/training.py, which ms-swift 4.6 does not import)"),
              code("ms-swift swift/megatron/trainers (no CUDA graph capture; the only graph argument is "
                   "optimizer_cuda_graph); mcore-bridge 1.6.3 (no TECudaGraphHelper call)"), code(GMC)),
             "engine: megatron, megatron_extra_kwargs cuda_graph_impl transformer_engine, or the deprecated external_cuda_graph "
             "that TransformerConfig maps onto it (report NVIDIA/Megatron-LM#1566: --external-cuda-graph)"),
    RuleInfo("mcore-parallel", "error", "ModelParallelConfig refusals reached through megatron_extra_kwargs: "
             "sequence_parallel at TP 1, defer_embedding_wgrad_compute without PP / gradient_accumulation_fusion / with "
             "a negative wgrad_deferral_limit, overlap_p2p_comm_warmup_flush without overlap_p2p_comm (off without a "
             "virtual pipeline size); overlap_p2p_comm under PP without a virtual size (the non-interleaved "
             "schedule); a cp_comm_type list whose length is not the layer count under CP",
             (code("megatron-core model_parallel_config.py: ModelParallelConfig.__post_init__"),
              code("megatron-core pipeline_parallel/schedules.py: forward_backward_pipelining_without_interleaving "
                   "(\"Non-interleaved pipeline parallelism does not support overlapping p2p communication\")"),
              code(TC + " (\"Length of cp_comm_type\")"),
              code(f"{MS} MegatronArguments._init_vpp_size (overlap_p2p_comm off without a virtual size)"),
              code("mcore-bridge 1.6.3 mcore_bridge/config/model_config.py ModelConfig.__post_init__ (overlap_p2p_comm "
                   "turns batch_p2p_comm off)"), code(GMC)),
             "engine: megatron, megatron_extra_kwargs sets those fields (cp_comm_type: a list there under CP; a "
             "list in args is an argument-type error, ms-swift's parser reads that argument as one string)"),
    RuleInfo("hybrid-cp-schedule", "error, warning", "hybrid (dynamic) context parallelism at PP 1: megatron-core's "
             "no-pipelining schedule then reads each batch as the (samples, sample_id_groups) pair that only "
             "Megatron-LM's training loop builds (HybridCPDataLoaderWrapper); ms-swift's trainers pass their own "
             "micro-batch dicts (KeyError in the first step); at PP > 1 (warning) the pipelined schedules never read "
             "it and ms-swift slices batches for the fixed CP size: no dynamic CP happens",
             (code("megatron-core pipeline_parallel/schedules.py: forward_backward_no_pipelining (config."
                   "hybrid_context_parallel)"),
              code("megatron-core pipeline_parallel/hybrid_cp_schedule.py: hybrid_context_parallel_forward_backward "
                   "(`sample_id_groups = data[1]`)"),
              code("ms-swift swift/megatron/trainers/base.py: train_step / cyclic_iter (no HybridCPDataLoaderWrapper)"),
              code("ms-swift swift/megatron/utils/megatron_lm_utils.py: get_batch_on_this_cp_rank (its own CP slicing)"),
              code(GMC),
              Evidence("measurement", "bench/mcore_audit/confirm_runtime.py hybrid-cp-dict-batch (the 0.16.1 "
                       "schedule fed a micro-batch dict on the CPU: KeyError: 1)"),
              Evidence("report", "NVIDIA-NeMo/Megatron-Bridge#4586", "Dynamic (Hybrid) CP tracking issue: the "
                       "schedule dispatch is automatic in mcore, the data-iterator wrapper lives in "
                       "megatron/training/training.py, so a training loop of its own (Bridge's) does not work out "
                       "of the box even with the right mcore version")),
             "engine: megatron, megatron_extra_kwargs hybrid_context_parallel truthy; error at "
             "pipeline_model_parallel_size 1, warning above it"),
    RuleInfo("te-offload-nothing", "error, warning", "cpu_offloading_activations and cpu_offloading_weights both off "
             "(megatron_extra_kwargs): megatron-core builds Transformer Engine's CPU-offload context for every "
             "TransformerBlock and TE raises ValueError ('not mentioned what to offload') at model build -- always "
             "with cpu_offloading on or NVTE_CPU_OFFLOAD_V1=1, and even with it off below TE 2.10",
             (code("megatron-core transformer/transformer_block.py: TransformerBlock.__init__ (get_cpu_offload_context "
                   "whenever TE is importable)"),
              code("transformer-engine transformer_engine/pytorch/cpu_offload.py: get_cpu_offload_context (2.4.0 / "
                   "2.8.0: checks first; 2.10.0 / 2.11.0: after `if not enabled: return`, cpu_offload_v1.py first)"),
              code(GMC),
              Evidence("report", "NVIDIA-NeMo/Megatron-Bridge#2954", "Megatron-Bridge/Megatron-LM config mismatches: "
                       "setting cpu_offloading_activations: false gives a configuration error (from #2684)")),
             "engine: megatron, megatron_extra_kwargs turns cpu_offloading_activations off with cpu_offloading_weights "
             "off; error with cpu_offloading on, NVTE_CPU_OFFLOAD_V1=1 in env, or a target transformer-engine known "
             "below 2.10 (--target-versions or installed); warning where the version is unknown; nothing on TE >= 2.10 "
             "without offloading"),
    RuleInfo("pipeline-p2p-pp2", "error", "virtual pipeline stages at PP 2 need overlap_p2p_comm: without it the "
             "interleaved schedule's combined send/receive to the one peer pairs the activation and gradient shapes "
             "(and batched tensors) crossed under variable_seq_lengths, which ms-swift always builds with",
             (code("megatron-core pipeline_parallel/schedules.py: forward_backward_pipelining_with_interleaving "
                   "(send_forward_backward_recv_forward_backward without overlap_p2p_comm)"),
              code("megatron-core pipeline_parallel/p2p_communication.py: P2PCommunicator._communicate_shapes "
                   "(one batch_isend_irecv in the order send_prev, recv_prev, send_next, recv_next; batch_p2p_comm "
                   "not read) and _batched_p2p_ops (the same order)"),
              code(f"{MS} MegatronArguments._init_vpp_size (batch_p2p_comm = not overlap_p2p_comm)"),
              code("mcore-bridge 1.6.3 mcore_bridge/config/model_config.py: ModelConfig (variable_seq_lengths: bool = "
                   "True)"),
              Evidence("report", "NVIDIA/Megatron-LM#1451", "pull request for issue #1450: PP 2, VPP 2, "
                       "variable_seq_lengths, batch_p2p_comm, overlap_p2p_comm off: communication misorder and a "
                       "stuck run; fine with overlap_p2p_comm on"),
              Evidence("report", "NVIDIA/Megatron-LM#5271", "pull request: with variable_seq_lengths at a PP group "
                       "of 2 the shapes cross and the backward crashes on a grad_output vs output shape mismatch; "
                       "closed unmerged"),
              Evidence("measurement", "bench/mcore_audit/p2p_pp2_pairing.py", "megatron-core 0.16.1's schedule run "
                       "per rank with a recording communicator, operations paired in posting order: receives cross "
                       "for every M >= 3 micro-batches per step, none at M = 2 (rank 0 runs all of them in the "
                       "warm-up) or with overlap_p2p_comm on")),
             "engine: megatron, pipeline_model_parallel_size 2 with virtual pipeline stages (virtual size or "
             "layout), overlap_p2p_comm off (argument or megatron_extra_kwargs), variable_seq_lengths on (mcore-"
             "bridge's default; megatron-bridge with padding_free), more than 2 micro-batches per step "
             "(global_batch_size / (micro_batch_size x DP))"),
    # --- mcore-bridge's own refusals in the model build (planner/mcore_bridge_rules.py)
    RuleInfo("moe-sequential-experts", "error", "moe_grouped_gemm false on a MoE model under mcore-bridge: the "
             "SequentialMLP experts megatron-core then builds are not read by mcore-bridge's weight bridge",
             (code("mcore-bridge 1.6.3 mcore_bridge/bridge/gpt_bridge.py:873 GPTBridge._set_mlp_state (experts read "
                   "as linear_fc1.weight{i}; :1159 linear_fc2) / model/register.py ModelLoader.get_transformer_layer_spec "
                   "(megatron-core get_gpt_decoder_block_spec(config))"),
              code("megatron-core models/gpt/gpt_layer_specs.py: get_gpt_decoder_layer_specs "
                   "(moe_grouped_gemm=config.moe_grouped_gemm) / models/backends.py grouped_mlp_modules (SequentialMLP)"),
              Evidence("report", "modelscope/mcore-bridge#38", "Qwen3.5 MoE through ms-swift: moe_grouped_gemm false "
                       "takes megatron-core's SequentialMLP path, which mcore-bridge does not support")),
             "engine: megatron, bridge_backend mcore-bridge, a MoE model, moe_grouped_gemm false (argument or "
             "megatron_extra_kwargs); not when mcore_model is loaded and nothing else goes through the weight bridge "
             "(save_safetensors false, no HF adapters without mcore_adapter, no full-RLHF reference from HF weights "
             "without mcore_ref_model, no GRPO/GKD vLLM weight sync)"),
    RuleInfo("lora-replicated-tp", "warning", "LoRA on MLA's duplicated down projections (linear_q_down_proj / "
             "linear_kv_down_proj) at TP > 1 with sequence parallelism: mcore-bridge 1.6.3 gives their lora_B a "
             "tensor-parallel layout with no TP gradient sum, so the TP ranks' copies drift and the adapter saves "
             "rank 0's",
             (code("mcore-bridge 1.6.3 mcore_bridge/tuners/lora.py LoraParallelLinear.update_layer (non-row base: lora_B "
                   "TEColumnParallelLinear, only lora_A flagged sequence_parallel; 1.6.5 _is_replicated_base)"),
              code("megatron-core transformer/multi_latent_attention.py: MLASelfAttention (down projections TELinear "
                   "parallel_mode 'duplicated', run on the sequence-parallel shard)"),
              code("mcore-bridge 1.6.3 mcore_bridge/bridge/gpt_bridge.py GPTBridge._get_tp_split_dim (no TP gather for "
                   "the down projections' lora_B)")),
             "engine: megatron, bridge_backend mcore-bridge, an MLA model (kv_lora_rank in config.json), LoRA whose "
             "target_modules reach linear_kv_down_proj or linear_q_down_proj (all-linear included; not target_regex), "
             "tensor_model_parallel_size > 1, sequence_parallel on"),
    RuleInfo("lora-etp", "error", "LoRA on the routed experts needs expert_tensor_parallel_size 1",
             (code("mcore-bridge 1.6.3 mcore_bridge/tuners/lora.py:133 LoraParallelLinear.__init__ (\"Currently, LoRA "
                   "does not support ETP.\" for an expert linear under expert tensor parallelism; 1.6.5 :150)"),
              code("ms-swift swift/megatron/utils/megatron_lm_utils.py: initialize_megatron (the ETP group from "
                   "args.expert_tensor_parallel_size)")),
             "engine: megatron, bridge_backend mcore-bridge, MoE models, tuner_type lora/lora_llm with target_modules "
             "reaching the experts (all-linear, linear_fc1/linear_fc2), expert_tensor_parallel_size > 1"),
    RuleInfo("mcore-bridge-config", "error", "mcore-bridge's ModelConfig: mtp_shared_weights needs mtp_num_layers; "
             "quick_geglu not on a SwiGLU model; window_size / moe_layer_freq / window_attn_skip_freq / no_rope_freq / "
             "linear_attention_freq given in megatron_extra_kwargs are an integer or a string it parses",
             (code("mcore-bridge 1.6.3 mcore_bridge/config/model_config.py:343 / :353 ModelConfig.__post_init__ "
                   "(assert not swiglu with quick_geglu; assert mtp_num_layers with mtp_shared_weights; 1.6.5 :389 / "
                   ":399)"),
              code("mcore-bridge 1.6.3 mcore_bridge/config/model_config.py:20-112 _eval_pattern / no_rope_freq_type / "
                   "moe_freq_type / tuple_type, called by ModelConfig._format_config :381 (\"Invalid pattern\", "
                   "assert isinstance(x, str); 1.6.5 :21-113)"), code(GMC)),
             "engine: megatron, bridge_backend mcore-bridge, mtp_shared_weights, or megatron_extra_kwargs with "
             "quick_geglu or one of the pattern fields"),
    RuleInfo("llama4-chunked-attention", "warning", "Llama-4 past its attention_chunk_size: the chunked local-attention "
             "layers train as full causal attention under mcore-bridge",
             (code("mcore-bridge 1.6.3 mcore_bridge/config/parser.py hf_to_mcore_config and model/mm_gpts/llama4.py "
                   "(attention_chunk_size not read; 1.6.5 alike)"),
              code("megatron-core transformer/attention.py: no chunked-attention mask in training")),
             "engine: megatron, bridge_backend mcore-bridge, a config.json with attention_chunk_size, max_length (or "
             "the model's max_model_len when unset) above it"),
    RuleInfo("internvl-language-model", "error", "InternVL's remote-code model (internvl_chat) only around a Qwen2/Qwen3/"
             "Qwen3-MoE/gpt-oss language model (not InternVL2/2.5's InternLM2, InternVL3-9B's InternLM3, ...)",
             (code("mcore-bridge 1.6.3 mcore_bridge/model/mm_gpts/internvl.py:54 InternvlVit.prepare_model "
                   "(\"{llm_model_type} is not supported for internvl_chat model\"; llm_model_type is llm_config's "
                   "model_type, config/parser.py hf_to_mcore_config)"),),
             "engine: megatron, bridge_backend mcore-bridge, not language_model_only (prepare_language_model builds "
             "no vision side), a config.json found for the model (its llm_config.model_type)"),
    RuleInfo("deepstack-first-stage", "error", "Qwen3-VL / Qwen3-VL-MoE / Qwen3-Omni: the first pipeline chunk (rank 0, "
             "virtual stage 0, where the vision tower sits) holds at least as many decoder layers as the model has "
             "deepstack features (len(vision_config.deepstack_visual_indexes), 3)",
             (code("mcore-bridge 1.6.3 mcore_bridge/model/mm_gpts/qwen3_vl.py:31 Qwen3VLTransformerBlock.forward "
                   "(assert len(deepstack_visual_embeds) <= len(self.layers))"),
              code("mcore-bridge 1.6.3 mcore_bridge/model/mm_gpt_model.py MultimodalGPTModel.forward (the vision "
                   "tower, and its deepstack features, on the pre_process chunk only; a dummy image for text-only "
                   "batches)"),
              code("megatron-core transformer/transformer_block.py: get_num_layers_to_build (layers per chunk)")),
             "engine: megatron, bridge_backend mcore-bridge, model_type qwen3_vl / qwen3_vl_moe / qwen3_omni_moe with "
             "deepstack_visual_indexes in config.json, not language_model_only; PP > 1 or a pipeline layout"),
    # --- numerics settings public reports saw start and train wrong (planner/precision_rules.py)
    RuleInfo("fp4-param-gather", "warning", "fp4_param_gather before Megatron Core 0.18 builds NVFP4 parameters that "
             "the DDP buffers and the distributed optimizer do not handle",
             (code("megatron-core fp4_utils.py: get_fp4_context (the quantized-parameter context for config.fp4_param; "
                   "ms-swift swift/megatron/model/utils.py sets fp4_param from fp4_param_gather)"),
              code("megatron-core optimizer/distrib_optimizer.py: DistributedOptimizer._build_model_and_main_param_groups "
                   "(quantized parameters special-cased through is_float8tensor only)"),
              Evidence("report", "NVIDIA/Megatron-LM#2284", "maintainer: --fp4-param-gather only wraps the model in "
                       "fp8_model_init without the optimizer changes, 'not working correctly'; disable it"),
              Evidence("report", "NVIDIA/TransformerEngine#2352", "NVFP4 training in Megatron-LM with "
                       "--fp4-param-gather; closed as fixed by TE 2.14+ with Megatron Core 0.18.0+")),
             "engine: megatron, fp4_format with fp4_param_gather, megatron-core (declared, installed, else 0.16.1) "
             "below 0.18"),
    RuleInfo("fsdp-precision-aware", "warning", "use_megatron_fsdp with use_precision_aware_optimizer on megatron-core "
             "0.16: FusedAdam reads decoupled_grad, Megatron-FSDP writes .grad, and no parameter is updated",
             (code("megatron-core optimizer/__init__.py: _get_megatron_optimizer_based_on_param_groups (FusedAdam "
                   "use_decoupled_grad=True under use_precision_aware_optimizer_no_fp8_or_ds_fp8)"),
              code("megatron-core distributed/fsdp/src/megatron_fsdp/param_and_grad_buffer.py: update_main_grads "
                   "(decoupled_grad only under a use_precision_aware_optimizer attribute nothing sets; else .grad)"),
              code("transformer-engine pytorch/optimizers/fused_adam.py: FusedAdam.step (a parameter without "
                   "decoupled_grad is skipped; public source, not installed here)"),
              Evidence("report", "NVIDIA-NeMo/Megatron-Bridge#3510", "pull request: Megatron-FSDP with TE FusedAdam "
                       "'will not converge (silently without hard errors)' unless FusedAdam's use_decoupled_grad "
                       "matches the gradient Megatron-FSDP writes (Megatron-LM #4426/#4427)")),
             "engine: megatron, use_megatron_fsdp and use_precision_aware_optimizer, FusedAdam on the decoupled-grad "
             "path (main_params_dtype not fp32, fp8_recipe delayed or no FP8 -- ms-swift's default recipe is "
             "delayed -- or optimizer_cpu_offload), megatron-core 0.16.x (declared, installed, else 0.16.1)"),
    RuleInfo("mxfp8-hybrid", "warning", "fp8_recipe mxfp8 with fp8_format hybrid (E5M2 gradients in MXFP8 blocks): "
             "NVIDIA's recipe saw it diverge and uses E4M3 throughout",
             (code("megatron-core fp8_utils.py: get_fp8_recipe (MXFP8BlockScaling(fp8_format=HYBRID) for "
                   "fp8_format hybrid; TE accepts it)"),
              Evidence("report", "NVIDIA-NeMo/Megatron-Bridge#638", "pull request: Nemotron5-8B dense pretraining, "
                       "MXFP8 with E5M2 gradients diverged and lost MMLU accuracy; the bf16_with_mxfp8_mixed recipe "
                       "moved from hybrid to e4m3 (NeMo PR #14793)")),
             "engine: megatron, fp8_recipe mxfp8 and fp8_format hybrid"),
    # --- optimizer settings that start and update the model wrong (planner/optimizer_rules.py)
    RuleInfo("muon-mtp-embedding", "warning", "optimizer muon / dist_muon with MTP layers under pipeline parallelism on "
             "megatron-core 0.16: the MTP stage's copy of the word embeddings goes to Muon, the first stage's to Adam, "
             "and the tied replicas drift apart",
             (code("megatron-core models/common/language_module/language_module.py: "
                   "LanguageModule.setup_embeddings_and_output_layer (is_embedding_or_output_parameter only under "
                   "pre_process; the MTP stage's copy marked shared_embedding)"),
              code("megatron-core models/gpt/gpt_model.py: GPTModel.__init__ (a word embedding on pre_process or "
                   "mtp_process stages)"),
              code("megatron-core optimizer/muon.py: get_megatron_muon_optimizer (2-D parameters without "
                   "is_embedding_or_output_parameter go to Muon)"),
              code("ms-swift swift/megatron/trainers/base.py: BaseMegatronTrainer.get_optimizer_and_scheduler "
                   "(get_megatron_muon_optimizer for muon and dist_muon)"),
              Evidence("report", "NVIDIA/Megatron-LM#4641", "Muon + PP + MTP: the tied word embeddings on the MTP "
                       "stage are routed to Muon while PP rank 0's stay on Adam; divergent updates corrupt training "
                       "and the checkpoint's optimizer state mismatches (fixed on main by PR #5034)")),
             "engine: megatron, optimizer muon or dist_muon, mtp_num_layers > 0, pipeline_model_parallel_size > 1, "
             "tuner_type full without freeze_llm, megatron-core 0.16.x (declared, installed, else 0.16.1)"),
    RuleInfo("muon-qkv-split", "error, warning", "optimizer muon / dist_muon with muon_split_qkv (the default) on "
             "megatron-core 0.16 splits each query group's linear_qkv rows as [q, k, v]: a rank's gradient that does "
             "not reshape into whole groups (gated attention's [q, gate, k, v] rows; fewer query groups than TP ranks) "
             "raises in the first optimizer step; gated attention whose sizes happen to divide is split in the wrong "
             "places (warning)",
             (code("megatron-core optimizer/muon.py: get_megatron_muon_optimizer (is_qkv on linear_qkv.weight; "
                   "qkv_split_shapes [heads // groups * kv_channels, kv_channels, kv_channels])"),
              code("megatron-core optimizer/muon.py: TensorParallelMuon.orthogonalize (grad.view(rows // sum, sum, -1), "
                   "split, reshape(-1, hidden))"),
              code("mcore-bridge 1.6.3 mcore_bridge/config/parser.py hf_to_mcore_config (attention_output_gate for "
                   "qwen3_next, qwen3_5, qwen3_5_moe, qwen4_exp); model/gpts/qwen3_next.py Qwen3NextSelfAttention "
                   "(linear_qkv of 2 x query + 2 x kv projection rows)"),
              Evidence("report", "NVIDIA/Megatron-LM#4731", "a Qwen3.5-style MoE trained with Muon: linear_qkv rows "
                       "4608 = 2048 + 2048 + 256 + 256 split as [2048, 256, 256], the Muon reshape invalid; fixed on "
                       "main by PR #4728")),
             "engine: megatron, optimizer muon or dist_muon, muon_split_qkv not false, tuner_type full without "
             "freeze_llm, a non-MLA model without Gemma 4's global head size, megatron-core 0.16.x (declared, "
             "installed, else 0.16.1); error where the rank's linear_qkv rows do not reshape, warning for gated "
             "attention where they do"),
]
