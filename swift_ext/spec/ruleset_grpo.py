"""The entries of the GRPO and reward rules (planner/grpo_rules.py, msswift/rules.py): spec/ruleset.py joins them with
the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import MS, RLHF, Evidence, RuleInfo, code

GRPO_RULE_INFO = [
    # --- GRPO and rewards (planner/grpo_rules.py, msswift/rules.py)
    RuleInfo("grpo-type", "warning", "GRPO arguments with another rlhf_type: ms-swift runs that algorithm and ignores "
             "them (nothing fails on them)",
             (code(f"{RLHF} RLHFArguments (rlhf_type default dpo)"),
              code(f"{MS} RLHFMegatronArgumentsMixin.__post_init__ (gkd: num_generations = 1, generation batch from "
                   "steps_per_generation; gkd_trainer.py reads steps_per_generation)")),
             "command: rlhf, engine: megatron, rlhf_type not grpo; vllm_mode and steps_per_generation not for gkd"),
    RuleInfo("grpo-vllm", "error", "vLLM rollout settings: use_vllm, vllm_mode, TP vs world and heads",
             (code(f"{MS} RLHFMegatronArgumentsMixin._init_grpo"), code(f"{RLHF} RLHFArguments._init_rollout"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py (colocate)"),
              code("ms-swift swift/megatron/trainers/rollout_mixin.py: MegatronRolloutMixin._init_rollout_engine "
                   "(colocate: vllm_tensor_parallel_size must divide the world size; GRPO, and GKD unless lmbda 0)"),
              code(f"{RLHF} RLHFArguments._init_external_vllm (connects to vllm_server_host whatever vllm_mode)"),
              Evidence("report", "ms-swift#4525", "vllm_mode colocate with vllm_server_host set, 8 training GPUs and a "
                       "4-GPU swift rollout on another node; ms-swift 3.5.0: 'Server is not up yet' at start-up"),
              Evidence("code", "vLLM vllm/config/model.py: ModelConfig.verify_with_parallel_config (\"Total number of "
                       "attention heads (...) must be divisible by tensor parallel size\"; public source)")),
             "rlhf_type grpo / gkd (the heads check: engine megatron, and engine swift with vllm_mode colocate; a server "
             "host with colocate and async_generate with multi_turn_scheduler: engine swift; async_generate: rlhf_type grpo only, "
             "GKD's refusal of it is swift-gkd's)"),
    RuleInfo("grpo-batch", "error", "generation batch divisible by num_generations, the prompts by DP and mbs; on "
             "Megatron GRPO the generation batch by the world size, and the evaluation's global_batch_size / DP by num_generations_eval x micro_batch_size",
             (code(f"{MS} resolve_generation_batch_size / validate_batch_dp_alignment"),
              code("ms-swift swift/megatron/trainers/grpo_trainer.py: MegatronGRPOTrainer.get_num_iters_per_step / "
                   "get_local_rollout_batch (each rank's generation batch // world slice; eval mode: "
                   "global_batch_size completions, num_generations_eval)"),
              code("ms-swift swift/rlhf_trainers/args_mixin.py: _init_generation_batch_params"),
              code(f"{MS} RLHF mixin __post_init__ (rlhf_type gkd: num_generations = 1, then "
                   "_init_generation_batch_params)")),
             "rlhf_type grpo; engine megatron rlhf_type gkd (one generation per prompt: the generation batch against "
             "global_batch_size, DP and the world size); the evaluation check: engine megatron rlhf_type grpo with "
             "val_dataset or split_dataset_ratio > 0 and eval_iters not 0"),
    RuleInfo("reward-funcs", "error, warning", "reward_funcs name a registered reward; reward_weights match the "
             "reward columns each engine builds; a reward_model on Megatron GRPO is never loaded (warning)",
             (code("ms-swift swift/rlhf_trainers/grpo_trainer.py: reward function lookup in orms; _prepare_rewards "
                   "(reward_model columns, gym_reward)"),
              code("ms-swift swift/megatron/trainers/grpo_trainer.py: MegatronGRPOTrainer._prepare_rewards "
                   "(reward_funcs only; make_reward_weights)"),
              code(f"{MS} RLHFMegatronArgumentsMixin._init_grpo / swift/rlhf_trainers/args_mixin.py "
                   "GRPOArgumentsMixin.__post_init__ (gym_env set: use_gym_env on, a gym_reward column)"),
              code("ms-swift swift/arguments/base_args/base_args.py: _import_external_plugins (custom_register_path "
                   "files are imported as plugins too)")),
             "rlhf_type grpo; names registered by external_plugins or custom_register_path files, or the local modules "
             "they import, count; a registry filled in a way not read (a loop, a decorator, a local module not here) "
             "makes an unknown name a warning"),
    RuleInfo("grpo-generations", "error, warning", "num_generations >= 2 without a teacher (Megatron accepts 1: a "
             "warning, every advantage is 0)",
             (code(f"{RLHF} RLHFArguments._check_teacher"),
              code("ms-swift swift/rl_core/advantage.py: compute_advantages (reward minus the group mean, any "
                   "estimator)")),
             "rlhf_type grpo without teacher_model / teacher_model_server: engine swift refuses, engine megatron warns"),
    RuleInfo("grpo-cached-dataset", "error", "no cached_dataset with GRPO", (code(f"{RLHF} RLHFArguments._init_grpo"),),
             "engine: swift, rlhf_type grpo"),
    RuleInfo("grpo-eval-size", "error", "GRPO's validation set holds at least one evaluation batch of prompts "
             "(per_device_eval_batch_size x processes // num_generations_eval)",
             (code("ms-swift swift/rlhf_trainers/grpo_trainer.py: GRPOTrainer.__init__ (assert len(eval_dataset) >= "
                   "total_eval_batch_size, unless eval_use_evalscope)"),
              code("ms-swift swift/dataset/dataset_meta.py: DatasetMeta.post_process (max(int(min(len, N) * "
                   "split_dataset_ratio), 1) validation rows per dataset entry)"),
              code("ms-swift swift/arguments/base_args/data_args.py: DataArguments.__post_init__ (a val_dataset turns "
                   "the split off)")),
             "engine: swift, rlhf_type grpo, evaluation on (val_dataset or split_dataset_ratio in (0, 1), eval_strategy "
             "not no), not eval_use_evalscope or streaming, and every entry of the validation source sized: a `#N` "
             "sample count or a local .jsonl file (msswift/validation_split.py: an upper bound)"),
    RuleInfo("grpo-liger", "error", "the Liger GRPO loss excludes padding_free, SP, delta, other estimators, the "
             "entropy mask, log_entropy, off-policy sequence masking, other importance sampling levels, a teacher",
             (code(f"{RLHF} RLHFArguments._check_grpo / _check_teacher"),), "engine: swift, rlhf_type grpo, use_liger_kernel"),
    RuleInfo("grpo-truncation", "error", "GRPO truncation_strategy left or delete",
             (code(f"{RLHF} RLHFArguments._init_grpo"), code(f"{MS} RLHFMegatronArgumentsMixin._init_grpo")),
             "rlhf_type grpo"),
    RuleInfo("grpo-soft-overlong", "error", "the soft_overlong reward needs soft_cache_length, below soft_max_length "
             "(max_completion_length when unset)",
             (code(f"{RLHF} RLHFArguments._init_grpo"), code(f"{MS} RLHFMegatronArgumentsMixin._init_grpo"),
              code("ms-swift swift/rewards/orm.py: SoftOverlong.__init__ (assert soft_cache_length < soft_max_length)")),
             "rlhf_type grpo with soft_overlong, both engines"),
    RuleInfo("grpo-teacher", "error", "teacher (OPD-RL) combinations; on Megatron no teacher_model_server with use_ray",
             (code(f"{RLHF} _check_teacher / _check_opd_rl"), code(f"{MS} _check_teacher")),
             "rlhf_type grpo with teacher_model or teacher_model_server"),
    RuleInfo("grpo-multi-turn", "error", "multi_turn_scheduler is registered",
             (code("ms-swift swift/rollout/multi_turn.py: multi_turns"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin.prepare_rollout / "
                   "_prepare_scheduler (before _prepare_vllm)"),
              code("ms-swift swift/megatron/trainers/rollout_mixin.py: _init_rollout_engine / _prepare_scheduler "
                   "(before the use_vllm return)")),
             "rlhf_type grpo, any vllm_mode, with or without use_vllm (the trainer asserts it even when a rollout "
             "server runs the turns)"),
    RuleInfo("vllm-settings", "error, warning", "vllm_gpu_memory_utilization in (0, 1]; settings ignored by a server; "
             "`swift rollout`-only vLLM settings (pipeline/data parallel, expert parallel, quantization, speculative "
             "decoding, async engine, max_lora_rank) that `swift rlhf` parses and drops",
             (code("vllm config/cache.py: CacheConfig"), code(f"{RLHF} RLHFArguments._external_vllm_warning"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin._prepare_vllm_engine (the "
                   "colocated engine's explicit arguments)"),
              code("ms-swift swift/rlhf_trainers/args_mixin.py: VllmArguments.get_vllm_engine_kwargs (read by "
                   "pipelines/infer/rollout.py and infer.py only)")),
             "rlhf_type grpo / gkd with use_vllm (the rollout-only settings: engine swift, stated and not default)"),
    RuleInfo("fp8-rollout-sync", "warning", "a colocated vLLM quantized online (vllm_engine_kwargs quantization fp8): "
             "ms-swift syncs bf16 weights with vLLM's plain load_weights, which the quantized parameters do not take",
             (code("ms-swift swift/megatron/trainers/rollout_mixin.py: MegatronRolloutMixin._prepare_vllm_engine "
                   "(engine_kwargs=vllm_engine_kwargs) / _export_and_load_weights (llm_model.load_weights)"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin._prepare_vllm_engine / "
                   "_load_state_dict_to_vllm (llm_model.load_weights)"),
              Evidence("report", "vllm-project/vllm#17272", "bf16 training synced into a vLLM started with "
                       "quantization='fp8': \"Attempted to load weight (torch.Size([3840, 1280])) into parameter "
                       "(torch.Size([1280, 3840]))\""),
              Evidence("report", "verl-project/verl#7136", "FP8 rollout weight resync fails on vLLM 0.20 until routed "
                       "through vLLM's layerwise reload (\"... is not a valid data dimension\")")),
             "rlhf_type grpo / gkd with use_vllm and vllm_mode colocate, both engines, vllm_engine_kwargs quantization "
             "fp8, fbgemm_fp8, ptpc_fp8 or mxfp8 (a server's quantization is `swift rollout`'s and not seen here)"),
    RuleInfo("vllm-lora-expert-bias", "warning", "Megatron GRPO LoRA with adapter-only sync (vllm_enable_lora) on "
             "an MoE model whose sigmoid routers carry an expert bias: Megatron updates the bias every step, the "
             "rollout engine keeps the checkpoint's, so routing drifts apart",
             (code("megatron-core distributed/finalize_model_grads.py: finalize_model_grads "
                   "(_update_router_expert_bias when moe_router_enable_expert_bias)"),
              code("mcore-bridge 1.6.3 config/parser.py (sigmoid routers but Llama-4's: moe_router_enable_expert_bias "
                   "on; rate from aux_loss_alpha) / bridge/gpt_bridge.py _set_router (expert_bias exported as "
                   "gate.e_score_correction_bias in the full export only)"),
              code("ms-swift swift/megatron/trainers/rollout_mixin.py: _move_model_to_vllm (one full sync, then "
                   "_move_adapter_to_vllm: export_weights(peft_format=True), unless sleep_level 2)")),
             "engine megatron, rlhf_type grpo, use_vllm colocated, tuner_type lora, vllm_enable_lora, sleep_level not "
             "2, an MoE model with a sigmoid router (not llama4), megatron_extra_kwargs not turning the bias or its "
             "update rate off"),
    RuleInfo("rollout-param-gather", "warning", "Megatron GRPO / on-policy GKD with overlap_param_gather and the "
             "distributed optimizer: the weights synced to vLLM mix each rank's fresh shard with the others' shards of "
             "the step before (the all-gather waits for the next forward, the sync runs first)",
             (code("megatron-core optimizer/distrib_optimizer.py: DistributedOptimizer.step_with_ready_grads (with "
                   "overlap_param_gather no all-gather after the step; the next forward's pre-hooks launch it)"),
              code("ms-swift swift/megatron/trainers/base.py: BaseMegatronTrainer.train_step (zero_grad_buffer, then "
                   "_replace_data_iterator builds the rollout before forward_backward_func)"),
              code("ms-swift swift/megatron/trainers/rollout_mixin.py: MegatronRolloutMixin._generate_completions -> "
                   "_move_model_to_vllm -> _export_and_load_weights (bridge.export_weights; no parameter sync first)"),
              Evidence("report", "NVIDIA-NeMo/RL#4086", "pull request: with overlap_param_gather \"every DP rank exports "
                       "its own updated shard next to stale copies of the others\" at refit; fixed by a synchronous "
                       "all-gather before refit (colocated vLLM took no gather before)"),
              Evidence("report", "NVIDIA-NeMo/RL#552", "Megatron backend: distributed optimizer + overlap_param_gather "
                       "diverges for some algorithms; blocked for RL"),
              Evidence("report", "RLinf/RLinf#56", "pull request: overlap_param_gather with the distributed optimizer "
                       "'may cause abnormal parameter updates in sglang or inference workers'; turned off")),
             "engine: megatron, rlhf_type grpo (or gkd with lmbda != 0) with use_vllm (colocate or server), "
             "overlap_param_gather with use_distributed_optimizer (not Megatron-FSDP), DP x CP > 1 or an expert "
             "data-parallel group above 1 (MoE)"),
    RuleInfo("vllm-mm-cache", "warning", "a colocated vLLM rolling out a vision-language model with its multimodal "
             "processor cache on (vllm_mm_processor_cache_gb unset: vLLM's 4 GiB, or > 0) can die mid-run on "
             "'Expected a cached item for mm_hash'",
             (code("ms-swift swift/megatron/trainers/rollout_mixin.py / rlhf_trainers/rollout_mixin.py: the colocated "
                   "engine gets mm_processor_cache_gb=vllm_mm_processor_cache_gb"),
              Evidence("report", "modelscope/ms-swift#9863", "Megatron GRPO, ms-swift's dense_colocate.sh on "
                       "Qwen2.5-VL-3B: AssertionError after the last step; the maintainer: a known vLLM issue, set "
                       "vllm_mm_processor_cache_gb 0"),
              Evidence("report", "vllm-project/vllm#31404", "the multimodal cache's sender and receiver diverge "
                       "under load: AssertionError crashes the engine (fix PR #34749 not merged)"),
              Evidence("report", "modelscope/ms-swift#7307", "Qwen3-VL with vLLM: 'Expected a cached item for "
                       "mm_hash'")),
             "rlhf_type grpo/gkd with a colocated vLLM (not vllm_mode server, whose cache is `swift rollout`'s), both "
             "engines, a model with a vision tower and no language_model_only, vllm_mm_processor_cache_gb not 0"),
    RuleInfo("vllm-moe-backend-sync", "warning", "an MoE model's colocated vLLM on its default MoE kernel (vLLM >= "
             "0.20 on Hopper/Blackwell: FlashInfer, whose expert layout the in-place weight sync does not restore): "
             "corrupted rollouts or a crash at the first sync; moe_backend triton avoids it",
             (code("ms-swift swift/megatron/trainers/rollout_mixin.py: MegatronRolloutMixin._export_and_load_weights "
                   "(patch_vllm_moe_model_weight_loader, llm_model.load_weights, finish_vllm_weight_reload: "
                   "process_weights_after_loading again, not vLLM's layerwise reload)"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin weight sync (the same in-place "
                   "load_weights + finish_vllm_weight_reload)"),
              Evidence("code", "vLLM vllm/config/kernel.py: KernelConfig.moe_backend (\"auto\" default; \"triton\" an "
                       "option; public source)"),
              Evidence("report", "NVIDIA-NeMo/RL#2586", "Moonlight GRPO, vLLM 0.17.1 -> 0.20.0: default MoE backend "
                       "TRITON -> FLASHINFER_CUTLASS, high logprob error on H100 and a crash on GB200; fixed by "
                       "moe_backend triton (also #2734 gpt-oss-20b, #2873 Qwen3-30B-A3B and DeepSeek-V3 GRPO)"),
              Evidence("report", "NVIDIA-NeMo/RL#2618", "GRPO of MoE models with moe_backend FLASHINFER_CUTLASS: "
                       "abnormal logprob error on H100, refit crash on GB200 (\"shard_dim=0 is not a valid data "
                       "dimension for a 3D tensor\")"),
              Evidence("report", "verl-project/verl#7978", "Megatron GRPO of a Qwen3-MoE on B200, vLLM 0.24.0 bf16 "
                       "rollout: the FlashInfer TRT-LLM MoE layout breaks the first weight sync with the same "
                       "ValueError"),
              Evidence("report", "verl-project/verl#7195", "pull request: colocated sync of gpt-oss-20b BF16 (and Qwen3-30B-"
                       "A3B) into vLLM's FlashInfer MoE layout wrote expert shards to the wrong places, \"producing "
                       "incomprehensible output\"; fixed by vLLM's reload_weights")),
             "rlhf_type grpo / gkd with a colocated vLLM (use_vllm, vllm_mode not server; not Megatron GKD with lmbda "
             "0), both engines, a model with "
             "routed experts, launch.gpu unknown or sm90+, the target vLLM known and >= 0.20.0 "
             "(SWIFT_EXT_TARGET_VERSIONS / SWIFT_EXT_VLLM_VERSION), vllm_engine_kwargs without moe_backend triton"),
    RuleInfo("vllm-cascade-attn", "warning", "GRPO's colocated vLLM on a non-Hopper GPU (sm80/86/89, Blackwell) with "
             "cascade attention left on (ms-swift passes vllm_disable_cascade_attn false): rollout logprobs drift "
             "from the trainer's on the shared-prefix batches GRPO makes",
             (code("ms-swift swift/infer_engine/vllm_engine.py: VllmEngine._prepare_engine_kwargs (disable_cascade_attn "
                   "written into the engine kwargs, over vllm_engine_kwargs' own, whenever EngineArgs has it)"),
              code("ms-swift swift/rlhf_trainers/args_mixin.py: VllmArguments (vllm_disable_cascade_attn False; "
                   "megatron/arguments/megatron_args.py the same)"),
              Evidence("report", "vllm-project/vllm#19384", "Qwen3 generations degrade on Ampere GPUs; the maintainer's "
                       "disable_cascade_attn=True fixes it on A100 (and on GB200, a later comment)"),
              Evidence("report", "vllm-project/vllm#22103", "cascade attention accuracy issue on A100"),
              Evidence("report", "verl-project/verl PR #3595", "FAQ entry: RL with a vLLM rollout on non-Hopper GPUs "
                       "(A100, L20, B200) and long inputs/outputs (multi-turn Qwen3 reasoning): rollout/training "
                       "probability gap and grad-norm explosion; workaround engine_kwargs disable_cascade_attn=True"),
              Evidence("report", "vllm-project/vllm PR #36318", "pull request: vLLM turns cascade attention off by "
                       "default (opt-in) for its numerical issues")),
             "rlhf_type grpo with a colocated vLLM (use_vllm, vllm_mode not server), both engines, launch.gpu known "
             "with compute capability 8.x, 10.x or 12.x (not Hopper, not below sm80), max_completion_length >= 4096 "
             "(the reports' long generations), vllm_disable_cascade_attn not true, vllm_enable_prefix_caching not false "
             "(the common prefix is found through shared, prefix-cached KV blocks: vLLM v1 "
             "KVCacheManager.get_num_common_prefix_blocks); a server's setting is `swift rollout`'s and not seen here"),
    RuleInfo("vllm-chunked-prefill-budget", "error, warning", "vllm_engine_kwargs that turn chunked prefill off with a "
             "max_num_batched_tokens below the colocated engine's max_model_len: vLLM refuses the engine at start "
             "(error for a target vLLM >= 0.15.0, a warning where the version is not known)",
             (code("ms-swift swift/infer_engine/vllm_engine.py: VllmEngine._prepare_engine_kwargs (vllm_engine_kwargs "
                   "into EngineArgs unchanged; ms-swift sets neither max_num_batched_tokens nor enable_chunked_prefill)"),
              Evidence("code", "vLLM vllm/config/scheduler.py: SchedulerConfig.verify_max_model_len (\"max_num_batched_"
                       "tokens (...) is smaller than max_model_len (...)\" when chunked prefill is off; the same from "
                       "0.15.0 to 0.29.0 per unslothai/unsloth-zoo#1211; public source)"),
              Evidence("report", "verl-project/verl#7624", "GRPO GSM8K, Llama-3.2-1B-Instruct on 8 x A800, vLLM 0.24.0, "
                       "enable_chunked_prefill False with max_num_batched_tokens 8192 and max_model_len from the model "
                       "(131072): the rollout engine aborts at start-up"),
              Evidence("report", "verl-project/verl PR #7632", "pull request: Qwen2.5-VL-3B geo3k GRPO with chunked "
                       "prefill off, vLLM 0.24: max_num_batched_tokens (8192) is smaller than max_model_len (128000)")),
             "rlhf_type grpo / gkd with a colocated vLLM, both engines, vllm_engine_kwargs enable_chunked_prefill false "
             "and an integer max_num_batched_tokens below vllm_max_model_len (or, without it, below config.json's "
             "max_position_embeddings when no rope_scaling / hf_overrides change the length, nor ms-swift's "
             "max_model_len on a checkpoint whose rope carries a factor: _init_rope_scaling rewrites it and "
             "VllmEngine._get_hf_config_overrides passes it on); an error only for a declared vLLM >= 0.15.0"),
    RuleInfo("rollout-server-qlora", "warning", "QLoRA (bnb 4-bit) GRPO/GKD with a rollout server: the weight sync "
             "sends bitsandbytes-packed base weights, which a server holding the bf16 checkpoint refuses",
             (code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin._move_full_model_to_vllm / "
                   "_collect_state_dict_for_vllm (param.data of every base weight at the first sync)"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin._prepare_vllm_engine (only the "
                   "colocated engine gets quantization 'bitsandbytes' for a bnb 4-bit model)"),
              Evidence("report", "ms-swift#6884", "GRPO QLoRA of a Qwen3-MoE model against an external vLLM "
                       "(`swift rollout`): the server fails in qwen3_moe load_weights at the weight sync; labelled an "
                       "enhancement (QLoRA GRPO arrived for the colocated engine with ms-swift PR #8350)")),
             "engine swift, rlhf_type grpo / gkd (not GKD with lmbda 0, which never generates and so never syncs: "
             "gkd_trainer.py _rollout_samples), use_vllm with vllm_mode server, quant_method bnb with quant_bits 4, "
             "tuner_type lora (the server's own flags are not in the recipe: a warning)"),
    RuleInfo("vllm-feature-version", "error", "GRPO rollout features ms-swift gates on the trainer's vLLM: "
             "rollout_importance_sampling_mode needs vLLM >= 0.10.2, Megatron router_replay_mode R3 >= 0.14.0",
             (code("ms-swift swift/megatron/trainers/grpo_trainer.py: MegatronGRPOTrainer._init_rollout_engine "
                   "(\"rollout_importance_sampling_mode is not supported in vLLM version < 0.10.2\")"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin._prepare_vllm (the same check)"),
              code("ms-swift swift/megatron/trainers/rollout_mixin.py: MegatronRolloutMixin._prepare_vllm_engine "
                   "(R3: check_vllm_version_ge('0.14.0'))")),
             "rlhf_type grpo with use_vllm; judged only with a vLLM version (SWIFT_EXT_TARGET_VERSIONS / "
             "SWIFT_EXT_VLLM_VERSION in the recipe env, else the installed copy; a dev build counts as new); R3: "
             "engine megatron, vllm_mode colocate"),
    RuleInfo("r3-rollout-server", "warning", "Megatron GRPO with router_replay_mode R3 and a rollout server: only a "
             "colocated vLLM is asked for the routed experts; a `swift rollout` server started without "
             "enable_return_routed_experts returns none and the first replayed forward asserts",
             (code("ms-swift swift/megatron/trainers/rollout_mixin.py: MegatronRolloutMixin._prepare_vllm_engine (R3: "
                   "enable_return_routed_experts set for the colocated engine only)"),
              code("ms-swift swift/megatron/trainers/utils.py: compute_per_token_logps_fn (\"When router_replay_mode = "
                   "R3, routed_experts must be in data\")"),
              code("ms-swift swift/rlhf_trainers/args_mixin.py: VllmArguments.get_vllm_engine_kwargs (the server's "
                   "engine_kwargs come from its own --vllm_engine_kwargs)"),
              Evidence("report", "radixark/miles#407", "Qwen3-30B-A3B GRPO with rollout routing replay on and no "
                       "enable_return_routed_experts for the rollout engine: \"rollout_routed_experts is required in "
                       "rollout_data when use_rollout_routing_replay is set\""),
              Evidence("report", "THUDM/slime#1909", "R3 on the Megatron trainer, the rollout returned no routed "
                       "experts: the same ValueError at the first train step")),
             "engine megatron, rlhf_type grpo, router_replay_mode R3, use_vllm with vllm_mode server, an MoE model "
             "(no router: nothing is replayed); a warning because the server's flags are not in the recipe"),
    RuleInfo("megatron-grpo", "error", "what Megatron GRPO does not support (num_iterations > 1, async_generate, ...)",
             (code(f"{MS} RLHFMegatronArgumentsMixin._init_grpo._check_not_supported"),),
             "engine: megatron, rlhf_type grpo"),
    RuleInfo("vllm-vision-lora", "warning", "GRPO/GKD LoRA adapter sync to vLLM with LoRA on a multimodal model's "
             "vision tower: vLLM loads LoRA on the language model only",
             (code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin._prepare_vllm_engine (logs that "
                   "ViT LoRA may fail in vLLM; adapter-only sync with vllm_enable_lora)"),
              Evidence("report", "vllm-project/vllm#27916", "Qwen2.5-VL LoRA, vLLM 0.8.4: \"vLLM currently only supports "
                       "adding LoRA to language model, visual.blocks.31.mlp.up_proj will be ignored\""),
              Evidence("report", "vllm-project/vllm#21500", "Qwen2.5-VL-3B LoRA: \"... is unsupported LoRA weight\"")),
             "rlhf_type grpo/gkd with use_vllm and vllm_enable_lora, a multimodal model whose vision tower or aligner "
             "LoRA covers (all-linear with freeze_vit or freeze_aligner false), both engines"),
    RuleInfo("teacher-tokenizer", "warning", "a distillation teacher (GKD, GRPO OPD-RL) whose vocabulary is another "
             "tokenizer's: ms-swift hands it the student's token ids unchanged",
             (code("ms-swift swift/rlhf_trainers/gkd_trainer.py: GKDTrainer.compute_loss (the teacher forward reuses "
                   "the student encoding unless OPSD)"),
              code("ms-swift swift/rlhf_trainers/gkd_helpers.py (teacher server gets raw response_token_ids; \"Teacher "
                   "and student must share the tokenizer/vocabulary\"); gkd_loss.py _align_vocab (pads logits only)"),
              Evidence("report", "huggingface/trl#4562", "GKD with a Llama teacher and a Qwen student: the teacher "
                       "scores the student's token ids as its own tokens, training on wrong log-probs")),
             "rlhf_type gkd or grpo with teacher_model (not teacher_model_server), both engines, the teacher's "
             "config.json readable here; vocabularies more than 1024 apart (one tokenizer's checkpoints differ by "
             "embedding padding only)"),
    RuleInfo("teacher-memory", "error, warning", "a local distillation teacher on Megatron (GKD, GRPO OPD-RL) shares "
             "each GPU with the student: its bf16 shard in the student's layout, the student's weights, gradients "
             "and optimizer state and an awake colocated vLLM fit the card (error); for GKD without "
             "gkd_logits_topk also the full-vocabulary teacher logits of every micro-batch of a generation cycle "
             "(warning)",
             (code("ms-swift swift/megatron/trainers/rollout_mixin.py: MegatronRolloutMixin._prepare_teacher "
                   "(get_mcore_model(args, teacher config): the student's parallel layout) / "
                   "load_teacher_model_context (offload_teacher_model brings the whole shard back for each forward)"),
              code("ms-swift swift/megatron/trainers/gkd_trainer.py: MegatronGKDTrainer._compute_teacher_logits_local "
                   "(TeacherOutput(full_logits=...) kept per micro-batch of the rollout buffer without "
                   "gkd_logits_topk)"),
              Evidence("report", "modelscope/ms-swift#7295", "Megatron GKD, 16 x A800 80GB, Qwen3-30B-A3B student "
                       "(full, PP2 EP8) and a local 235B-A22B teacher with offload_teacher_model, colocated vLLM at "
                       "0.15 without sleep_level: OOM in compute_teacher_logits"),
              Evidence("report", "modelscope/ms-swift#10097", "Megatron GKD with a local full-vocabulary teacher: "
                       "one [S, 151k] logits tensor per rollout micro-batch kept for the generation cycle, OOM on "
                       "long teacher responses (PR #10114 adds a chunked loss for it)")),
             "engine: megatron, rlhf_type gkd or grpo with teacher_model (not teacher_model_server, not the student "
             "itself under tuner_type lora -- lora_llm still loads the copy --, not use_ray, whose Ray config places "
             "the teacher and vLLM), the teacher's config.json readable here, launch.gpu known. Error: the student's "
             "weights + gradients + optimizer state (not counted under offload_model / offload_optimizer) + the "
             "colocated vLLM share when sleep_level is 0 + the teacher's shard exceed the card: byte counts, no "
             "activations or framework share. Warning: GKD without gkd_logits_topk, adding the logits buffer with "
             "every sample at (max_length or 2048) + max_completion_length tokens (at most vllm_max_model_len)"),
    RuleInfo("megatron-gkd", "error", "Megatron GKD settings",
             (code(f"{MS} RLHFMegatronArgumentsMixin.__post_init__"),
              code(f"{MS} RLHFMegatronArgumentsMixin._check_teacher")),
             "engine: megatron, rlhf_type gkd"),
    # --- the vLLM rollout engine against the model (planner/rollout_rules.py, vllm_lora.py)
    RuleInfo("vllm-model", "error", "the colocated vLLM rollout engine knows the model's architecture: Qwen3.5/3.6 "
             "need vLLM >= 0.17.0, Qwen3-VL 0.11.0, Qwen3-Next 0.10.2, gpt-oss and GLM-4.5V/4.6V 0.10.1, GLM-4.1V 0.9.2",
             (code("vLLM vllm/model_executor/models/registry.py: ModelRegistry (\"Model architectures [...] are not "
                   "supported for now\"; public source, vLLM is not installed here)"),
              Evidence("report", "verl-project/verl#5381", "Qwen3.5-35B-A3B GRPO with vllm 0.15.0, megatron-core "
                       "0.16.0, transformers 5.2.0: \"Model architectures ['Qwen3_5MoeForConditionalGeneration'] are "
                       "not supported for now\""),
              Evidence("report", "modelscope/ms-swift Qwen3.5 best practice", "docs/source_en/BestPractices/"
                       "Qwen3_5-Best-Practice.md: vllm>=0.17.0 for inference/deployment/RL"),
              Evidence("report", "modelscope/ms-swift#6649", "Qwen3-VL-32B-Instruct GRPO, colocated vLLM 0.8.5.post1, "
                       "2 x 8 H20: fails at the rollout; maintainer: \"qwen3-vl models is supported in vllm 0.11.0\" "
                       "(vLLM's Qwen3-VL recipe: vLLM >= 0.11.0)"),
              Evidence("report", "gpustack/gpustack#3827", "Qwen3-Next on vLLM 0.10.1.1: not supported (Qwen's "
                       "Qwen3-Next release asks for vllm>=0.10.2)"),
              Evidence("report", "gpustack/gpustack#2730", "GLM-4.5V on vLLM 0.10.0: not supported (maintainer: "
                       "support added after v0.10.0)"),
              Evidence("report", "zai-org/GLM-V#15", "GLM-4.1V-9B-Thinking served by vLLM 0.9.1: \"`limit_mm_per_prompt` "
                       "is only supported for multimodal models\" (the architecture is unknown to that vLLM)"),
              Evidence("report", "runpod-workers/worker-vllm#206", "openai/gpt-oss-20b on a pre-0.10.1 vLLM worker "
                       "does not start (gpt-oss arrived with vllm-project/vllm PR #22259, released in 0.10.1)")),
             "command rlhf, rlhf_type grpo or gkd, use_vllm, vllm_mode colocate (not Megatron GKD with lmbda 0, which "
             "builds no engine), both engines; judged only with a vLLM "
             "version (SWIFT_EXT_TARGET_VERSIONS vllm=... or SWIFT_EXT_VLLM_VERSION in the recipe env, else the "
             "installed copy; support table rows vllm-*)"),
    RuleInfo("vllm-lora-model", "error", "a vLLM started with LoRA (the colocated rollout with vllm_enable_lora, or "
             "eval.backend vllm over LoRA checkpoints) for a model that release cannot run LoRA on: Qwen3-VL needs "
             "vLLM >= 0.11.1 (0.11.0 wraps the vision tower as LoRA layers), Qwen3.5/3.6 a vLLM after 0.17.0 (its "
             "Gated DeltaNet input projection's LoRA layer indexes past its packed modules)",
             (code("vLLM v0.11.0 vllm/model_executor/models/qwen3_vl.py: Qwen3VLForConditionalGeneration.get_mm_mapping "
                   "(tower_model \"model.visual.\", the engine's modules are \"visual.\"); vllm-project/vllm#27027 "
                   "(merged 2025-10-16, after v0.11.0) corrects it; public source, vLLM is not installed here"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py / swift/megatron/trainers/rollout_mixin.py: "
                   "_prepare_vllm_engine (enable_lora with tuner_type lora and vllm_enable_lora)"),
              code("ms-swift swift/infer_engine/vllm_engine.py: VllmEngine.__init__ (adapters turn enable_lora on)"),
              Evidence("report", "vllm-project/vllm#27669", "Qwen3-VL-8B-Instruct with LoRA on vLLM 0.11.0: \"assert "
                       "token_lora_mapping.size(0) == M\" in _lora_shrink during profile_run, EngineCore failed to "
                       "start"),
              Evidence("report", "modelscope/ms-swift#6670", "Qwen3-VL-4B GRPO with vllm_enable_lora: the same "
                       "AssertionError; vLLM maintainer: upgrade vLLM"),
              code("vLLM v0.17.0 vllm/model_executor/models/qwen3_5.py: Qwen3_5GatedDeltaNet.create_qkvz_proj (4 "
                   "output_sizes) against packed_modules_mapping in_proj_qkvz (2 entries); vllm-project/vllm#36976 "
                   "(merged 2026-03-13, after v0.17.0) fixes it; public source"),
              Evidence("report", "vllm-project/vllm#35286", "Qwen3.5-MoE with enable_lora: \"IndexError: list index out "
                       "of range\" in column_parallel_linear.py set_lora / slice_lora_b during CUDA graph capture")),
             "rlhf_type grpo/gkd with a colocated engine (use_vllm, not vllm_mode server), tuner_type lora and "
             "vllm_enable_lora, both engines; eval.backend vllm with engine swift LoRA checkpoints; model types "
             "qwen3_vl* (vLLM below 0.11.1) and qwen3_5* (vLLM 0.17.0 only: the first release carrying the fix is not "
             "read); judged only with a vLLM version (SWIFT_EXT_TARGET_VERSIONS vllm=... or SWIFT_EXT_VLLM_VERSION in "
             "the recipe env, else the installed copy; support table rows vllm-lora-qwen3_vl, vllm-lora-qwen3_5)"),
    RuleInfo("vllm-expert-lora", "warning", "GRPO LoRA on routed experts synced as adapters to a vLLM that cannot "
             "load expert adapters",
             (code("ms-swift swift/megatron/trainers/rollout_mixin.py: adapter-only sync with vllm_enable_lora"),
              Evidence("report", "vllm-project/vllm#40005", "Qwen3.5-MoE expert LoRA from Megatron-swift does not "
                       "load; vLLM FusedMoEWithLoRA since v0.11.2")),
             "GRPO + LoRA reaching the experts + vllm_enable_lora (in server mode: the recipe says the server runs with it)"),
]
