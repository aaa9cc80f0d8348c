"""The entries of the rules that mirror ms-swift's argument-class and trainer set-up refusals at start-up
(msswift/startup_rules.py and startup_rules_megatron.py, and the rules issue #21's audit of ms-swift 4.6's start-up checks added); the rest
of the table is in spec/ruleset.py, which joins both."""

from __future__ import annotations

from swift_ext.spec.rule_info import MS, RLHF, SFT, Evidence, RuleInfo, code

STARTUP_RULE_INFO = [
    # --- argument-class refusals at start-up (msswift/startup_rules.py, startup_rules_megatron.py)
    RuleInfo("ref-model", "error", "ref_model only with rlhf_type dpo/kto/ppo/grpo and tuner_type full (GRPO with "
             "beta 0 drops it)", (code(f"{RLHF} RLHFArguments.__post_init__ (\"CPO/ORPO or LoRA training does not "
                                        "require a ref_model\")"),), "engine: swift, command: rlhf, ref_model set; tuner_type as load_args "
             "reads it from a checkpoint's args.json"),
    RuleInfo("quant-bits-unused", "warning", "quant_bits without quant_method trains the model unquantized",
             (code("ms-swift swift/arguments/base_args/quant_args.py: QuantizeArguments.get_quantization_config "
                    "(None without quant_method; ModelArguments.get_model_kwargs passes it as quantization_config)"),
              code("ms-swift swift/model/register.py: load_by_unsloth (reads quant_bits alone: not warned)")),
             "both engines, quant_bits set and quant_method unset (also as load_args reads them from a checkpoint's "
             "args.json); not with tuner_backend unsloth"),
    RuleInfo("quant-method-megatron", "warning", "quant_method (bnb, hqq, eetq, quanto, fp8) on the Megatron engine "
             "quantizes nothing: the Megatron model is built by mcore-bridge from the checkpoint's weights",
             (code("ms-swift swift/arguments/base_args/model_args.py: ModelArguments.get_model_kwargs "
                   "(quantization_config for transformers' from_pretrained only)"),
              code("ms-swift swift/megatron/pipelines/train/sft.py: MegatronSft.__init__ (get_model_processor with "
                   "load_model=False, or a dummy model on the meta device)")),
             "engine: megatron, quant_method set to a load-time method (bnb, hqq, eetq, quanto, fp8)"),
    RuleInfo("quant-bits", "error", "quant_method bnb/hqq/eetq/quanto needs quant_bits, one the method takes (bnb 4/8, "
             "quanto 2/4/8/float8, eetq 8)",
             (code("ms-swift swift/arguments/base_args/quant_args.py: QuantizeArguments.get_quantization_config "
                    "(from ModelArguments._init_model_info)"),
              code("transformers utils/quantization_config.py: EetqConfig.post_init (int8 only)")),
             "both engines, quant_method set (not fp8); an unset quant_method/quant_bits as load_args reads it from a "
             "checkpoint's args.json"),
    RuleInfo("muon-optimizer", "error", "optimizer muon excludes overlap_grad_reduce/overlap_param_gather; muon and "
             "dist_muon exclude fp16; Muon settings the installed megatron-core lacks (muon_scalar_optimizer, "
             "muon_coefficient_type, vit_lr/aligner_lr where Muon splits parameters through config overrides)",
             (code(f"{MS} MegatronArguments._check_muon / _check_muon_mcore_support"),
              code("megatron-core optimizer/optimizer_config.py: OptimizerConfig (its fields, read from source)"),
              code("megatron-core optimizer/muon.py: get_megatron_muon_optimizer (\"muon with fp16 is not supported.\"; "
                   "ms-swift's get_optimizer_and_scheduler copies fp16 into the OptimizerConfig)")),
             "engine: megatron, optimizer muon or dist_muon (fp16: given, or filled from an explicit torch_dtype "
             "float16/float32 without bf16)"),
    RuleInfo("optimizer-offload-path", "warning", "optimizer_cpu_offload needs the distributed optimizer and the "
             "precision-aware optimizer: Megatron-LM's own arguments refuse it otherwise, ms-swift does not",
             (Evidence("code", "Megatron-LM megatron/training/arguments.py: validate_args (\"The optimizer cpu offload "
                       "must be used in conjunction with `--use-precision-aware-optimizer`, as the hybrid device optimizer "
                       "reuses the code path of this flag.\"; public source, not run by ms-swift)"),
              code("megatron-core optimizer/__init__.py: _get_megatron_optimizer_based_on_param_groups "
                   "(Float16OptimizerWithFloat16Params around HybridDeviceOptimizer without use_distributed_optimizer)"),
              code("megatron-core optimizer/optimizer.py: Float16OptimizerWithFloat16Params.__init__ (fp32 copies "
                   "swapped into param_groups; DistributedOptimizer.__init__ rebuilds the HybridDeviceOptimizer instead)"),
              Evidence("report", "NVIDIA-NeMo/RL#3628", "pull request: 'Optimizer CPU offload requires "
                       "use_distributed_optimizer=true' (NeMo-RL's config validation)")),
             "engine: megatron, optimizer_cpu_offload, not Muon or Megatron-FSDP; use_distributed_optimizer false, or "
             "use_precision_aware_optimizer false"),
    RuleInfo("distributed-optimizer", "error", "optimizer sgd needs use_distributed_optimizer false (ms-swift's default "
             "is true): megatron-core's DistributedOptimizer wraps only Adam or the CPU-offload HybridDeviceOptimizer",
             (code("megatron-core optimizer/distrib_optimizer.py: DistributedOptimizer.__init__ (\"Only Adam and "
                   "HybridDeviceOptimizer currently supported, due to checkpointing requirements.\")"),
              code("megatron-core optimizer/__init__.py: _get_megatron_optimizer_based_on_param_groups (SGD, then "
                   "DistributedOptimizer whenever use_distributed_optimizer)"),
              code(f"{MS} MegatronArguments._check_muon (the only place ms-swift turns the distributed optimizer off)")),
             "engine: megatron, optimizer sgd, use_distributed_optimizer true, not optimizer_cpu_offload, not "
             "use_megatron_fsdp"),
    RuleInfo("optimizer-offload-dtypes", "warning", "optimizer_cpu_offload drops exp_avg_dtype / exp_avg_sq_dtype / "
             "main_params_dtype: the hybrid CPU/GPU optimizer keeps fp32 master weights and moments",
             (code("megatron-core optimizer/__init__.py: _get_megatron_optimizer_based_on_param_groups "
                   "(HybridDeviceOptimizer(param_update_in_fp32=True), no dtype passed)"),
              code("megatron-core optimizer/cpu_offloading/hybrid_optimizer.py: "
                   "HybridDeviceOptimizer._get_sub_optimizer_param_groups (.float() clones)"),
              Evidence("report", "radixark/Megatron-LM#67", "pull request: --optimizer-cpu-offload with main-params/"
                       "exp-avg/exp-avg-sq dtypes fp16 left all three optimizer states fp32; Qwen3-0.6B, two H200, "
                       "Miles")),
             "engine: megatron, optimizer_cpu_offload with use_precision_aware_optimizer, one of those dtypes not fp32"),
    RuleInfo("resume-source", "warning", "finetune false (or no_load_optim / no_load_rng written false) without the "
             "mcore checkpoint that holds the optimizer state -- mcore_model for a full run, mcore_adapter for LoRA -- "
             "restores no optimizer, LR-scheduler or RNG state; with that checkpoint, no_load_optim / no_load_rng false "
             "under finetune true (the default) loads only its weights",
             (code("ms-swift swift/megatron/trainers/base.py: BaseMegatronTrainer._load_checkpoint / _load_iteration "
                   "(model/adapters give only latest_checkpointed_iteration.txt)"),
              code("ms-swift swift/megatron/utils/megatron_lm_utils.py: load_mcore_checkpoint (LoRA with mcore_model: "
                   "no_load_optim, no_load_rng and finetune forced true, iteration 0)"),
              Evidence("report", "modelscope/ms-swift#6008", "ms-swift 3.9, megatron-core 0.13.2, Qwen3-Omni-30B-A3B "
                       "LoRA, EP2 on 2 GPUs, --load BASE-mcore --no_load_optim false --no_load_rng false without the "
                       "adapter checkpoint: training restarted at iteration 1 with a fresh optimizer and scheduler")),
             "engine: megatron, finetune / no_load_optim / no_load_rng explicitly false; mcore_adapter (LoRA, or "
             "adapters given) or mcore_model (full) unset, or set with finetune true"),
    RuleInfo("resume-schedule", "warning", "a resume that loads the optimizer (finetune false) with lr, min_lr, the "
             "warmup, the decay length or style, or weight_decay other than the checkpoint's: the LR scheduler keeps "
             "the checkpoint's values",
             (code("megatron-core optimizer_param_scheduler.py: OptimizerParamScheduler.load_state_dict / "
                   "_check_and_set (use_checkpoint_opt_param_scheduler True by default: the checkpoint value wins)"),
              code("ms-swift swift/megatron/utils/megatron_lm_utils.py: get_optimizer_param_scheduler (neither "
                   "use_checkpoint_opt_param_scheduler nor override_opt_param_scheduler passed) / load_mcore_checkpoint "
                   "(opt_param_scheduler.load_state_dict when not finetune, not no_load_optim, saved with the optimizer)"),
              Evidence("report", "NVIDIA/Megatron-LM#963", "stage 2 resumed from stage 1 (lr 3e-4, min_lr 3e-5) with "
                       "lr 3e-5, min_lr 2e-5: the learning rate went back to 3e-4 (also #1138)")),
             "engine: megatron, finetune false and no_load_optim false; the checkpoint directory (mcore_model, or "
             "mcore_adapter for LoRA) has an args.json readable here, saved without no_save_optim; the key stated by "
             "both (train_iters only while lr_decay_iters and num_train_epochs are unset)"),
    RuleInfo("resume-layout", "error", "a resume that loads the distributed optimizer (finetune false) at a TP or PP "
             "other than the checkpoint's, from ms-swift's default dp_reshardable optimizer format",
             (code("ms-swift swift/megatron/utils/megatron_lm_utils.py: load_mcore_checkpoint (\"(TP, PP) mismatch after "
                   "resume ...: not supported for DistributedOptimizer\" unless the checkpoint's "
                   "distrib_optim_sharding_type is fully_reshardable, fully_sharded_model_space or fsdp_dtensor)"),
              code("ms-swift swift/megatron/utils/megatron_lm_utils.py: get_sharded_sd_metadata (dp_reshardable unless "
                   "dist_ckpt_optim_fully_reshardable / dist_ckpt_save_pre_mcore_014 / use_megatron_fsdp)"),
              code("megatron-core optimizer/distrib_optimizer.py: DistributedOptimizer.sharded_state_dict "
                   "('dp_reshardable' ... allows checkpoint resharding only in DP dimension)"),
              Evidence("report", "NVIDIA/Megatron-LM#1517", "an MoE saved at PP=4 (torch_dist) resumed at EP=4: the "
                       "optimizer state failed to load")),
             "engine: megatron, finetune false and no_load_optim false, the distributed optimizer (or Megatron-FSDP); "
             "the checkpoint directory (mcore_model, or mcore_adapter for LoRA) has an args.json readable here, saved "
             "with the optimizer and without dist_ckpt_optim_fully_reshardable / dist_ckpt_save_pre_mcore_014 / "
             "use_megatron_fsdp"),
    RuleInfo("checkpoint-format", "error", "Megatron load arguments pointed at the other checkpoint format: "
             "mcore_model / mcore_adapter / mcore_ref_model / mcore_ref_adapter need an mcore checkpoint "
             "(latest_checkpointed_iteration.txt and its iter_N), adapters / ref_adapters a safetensors adapter "
             "(adapter_model.safetensors); mcore_model / mcore_ref_model not a LoRA run's adapter-only checkpoint",
             (code("ms-swift swift/megatron/utils/megatron_lm_utils.py: load_mcore_checkpoint / _load_iteration "
                   "(iteration 0 without the tracker, then dist_checkpointing.load_common_state_dict(DIR/iter_N))"),
              code("megatron-core dist_checkpointing/validation.py: verify_checkpoint_and_load_strategy "
                   "(\"Checkpoint directory ... does not exist\", \"... is not a distributed checkpoint\": no "
                   "metadata.json, core.py maybe_load_config)"),
              code("ms-swift swift/megatron/trainers/base.py: BaseMegatronTrainer.save_checkpoint (save_safetensors "
                   "with no_save_optim: no models to save_mcore_checkpoint, which writes iter_N/common.pt alone)"),
              code("ms-swift swift/megatron/trainers/base.py: BaseMegatronTrainer._prepare_peft_model / "
                   "trainers/rlhf_mixin.py (adapters / ref_adapters: bridge.load_weights(peft_format=True) unless "
                   "mcore_adapter / mcore_ref_adapter)"),
              code("ms-swift swift/megatron/utils/megatron_lm_utils.py: save_mcore_checkpoint / "
                   "_filter_adapter_state_dict (a LoRA run saves lora_A / lora_B / modules_to_save only; loading "
                   "mcore_model drops them from the request and asks for the base weights)"),
              code("megatron-core dist_checkpointing/strategies/torch.py: TorchDistLoadShardedStrategy.load "
                   "(MCoreLoadPlanner, allow_partial_load False: torch default_planner.py "
                   "create_default_local_load_plan \"Missing key in checkpoint state_dict\")"),
              code("mcore-bridge 1.6.3 mcore_bridge/utils/safetensors.py: SafetensorLazyLoader._load_index "
                   "(adapter_model.safetensors or model.safetensors.index.json, else no tensors) / "
                   "bridge/gpt_bridge.py GPTBridge._set_state_dict (hf_state_dict[...lora_A...]: KeyError)"),
              Evidence("report", "modelscope/ms-swift#6862", "megatron export --adapter_load (4.6: mcore_adapter) on "
                       "a Qwen3-30B-A3B LoRA checkpoint holding only adapter_model.safetensors failed; the maintainer: "
                       "safetensors adapters go with --adapters, torch_dist ones with --adapter_load"),
              Evidence("report", "modelscope/ms-swift#5914", "a Megatron LoRA checkpoint of a local Qwen3 whose "
                       "args.json load was pointed at the Hugging Face model directory: it failed to load, \"in HF "
                       "format and there's no checkpoint\"")),
             "engine: megatron, command sft/pt/rlhf; the directory exists here; mcore_*: no iter_N directory for "
             "the tracker's N (0 without the tracker), or one without metadata.json (not an fsdp_dtensor "
             "checkpoint: save_safetensors with no_save_optim leaves common.pt alone); adapters / ref_adapters "
             "(LoRA, not with mcore_adapter / mcore_ref_adapter): neither adapter_model.safetensors nor "
             "model.safetensors.index.json; mcore_model / mcore_ref_model: a loadable checkpoint whose args.json says "
             "tuner_type lora (not a megatron export --to_mcore with merge_lora, nor any swift export --to_mcore: "
             "swift/megatron/convert.py convert_hf2mcore saves the full model whatever its args.json's tuner_type)"),
    RuleInfo("checkpoint-save", "error", "settings under which ms-swift's first mcore checkpoint save raises: async_save "
             "or virtual pipeline stages with Megatron-FSDP, dist_ckpt_save_pre_mcore_014 with the distributed "
             "optimizer's state",
             (code("ms-swift swift/megatron/utils/megatron_lm_utils.py: save_mcore_checkpoint (\"Megatron-FSDP "
                   "fsdp_dtensor checkpoint does not support async_save\") / _generate_state_dict (fsdp_dtensor: one "
                   "model chunk) / get_sharded_sd_metadata (pre-0.14: fully_sharded_model_space)"),
              code("megatron-core optimizer/distrib_optimizer.py: DistributedOptimizer.sharded_param_state_fs_model_space "
                   "(flattened_range on every state tensor)"),
              code("megatron-core dist_checkpointing/mapping.py: ShardedTensor.validate_metadata_integrity "
                   "(\"ShardedTensor.flattened_range is not supported.\")"),
              code("ms-swift swift/megatron/trainers/base.py: BaseMegatronTrainer.save_checkpoint (no mcore checkpoint "
                   "when save_safetensors and no_save_optim)"),
              Evidence("report", "areal-project/AReaL#1468", "pull request: saving the distributed optimizer in "
                       "fully_sharded_model_space on megatron-core 0.17.0 raised 'ShardedTensor.flattened_range is not "
                       "supported.'"),
              Evidence("report", "NVIDIA/Megatron-LM#7288", "review: fully_sharded_model_space cannot be saved "
                       "('ShardedTensor.flattened_range is not supported', on main too)")),
             "engine: megatron, an mcore checkpoint written (not save_safetensors with no_save_optim); the pre-0.14 "
             "format: use_distributed_optimizer, no_save_optim false, not Megatron-FSDP or Muon"),
    RuleInfo("mtp-checkpoint-tp", "warning", "Megatron full-weight mcore checkpoint with MTP layers and TP > 1: "
             "mcore-bridge 1.6.3 leaves the MTP layer's tp_group None, so the MTP norms get one main replica per TP "
             "rank and the first save fails the sharding integrity check",
             (code("mcore-bridge 1.6.3 mcore_bridge/model/modules/mtp_layer.py:44 MultiTokenPredictionLayer.__init__ "
                   "(tp_group None; 1.6.5 sets the TP group: 'two main replicas')"),
              code("megatron-core transformer/module.py: MegatronModule.sharded_state_dict / transformer/utils.py "
                   "make_sharded_tensors_for_checkpoint (replica_id (0, get_pg_rank(None)=0, dp))"),
              code("megatron-core dist_checkpointing/validation.py: _validate_sharding_for_key ('Invalid access "
                   "pattern'); ms-swift megatron_lm_utils.py save_mcore_checkpoint (validate_access_integrity=True)")),
             "engine: megatron, bridge_backend mcore-bridge, mtp_num_layers >= 1, tensor_model_parallel_size > 1, "
             "tuner_type not lora (a LoRA checkpoint holds the adapters only), an mcore checkpoint written (not "
             "save_safetensors with no_save_optim)"),
    RuleInfo("merge-lora-unsaved", "warning", "Megatron merge_lora true with save_safetensors false writes no merged "
             "model (the merge happens only in the safetensors save)",
             (code("ms-swift swift/megatron/trainers/base.py: BaseMegatronTrainer.save_checkpoint (merge_lora_adapters "
                   "and checkpoint-N-merged inside `if args.save_safetensors`)"),),
             "engine: megatron, merge_lora stated true, save_safetensors false, a LoRA run (tuner_type lora / "
             "lora_llm, or adapters)"),
    RuleInfo("lora-regex-save", "error", "Megatron LoRA with target_regex under save_safetensors (ms-swift's default): "
             "the adapter's peft-format save asserts target_modules is no regex, at the first checkpoint",
             (code("ms-swift swift/megatron/init.py: _patch_mcore_bridge save_weights (peft_format: assert not "
                   "isinstance(peft_config.target_modules, str), \"target_regex is not currently supported for LoRA "
                   "conversion\")"),
              code("ms-swift swift/megatron/trainers/base.py: BaseMegatronTrainer.save_checkpoint (the adapter is saved "
                   "unless lora_llm, or merge_lora on a bridge without _support_hf_grouped_lora)"),
              code("mcore-bridge 1.6.3 mcore_bridge/bridge/gpt_bridge.py: GPTBridge (_support_hf_grouped_lora = True)"),
              code("ms-swift swift/megatron/utils/utils.py: get_target_modules (a target_regex string goes to LoraConfig "
                   "as is)")),
             "engine: megatron, tuner_type lora (or full with adapters), target_regex set (not ms-swift's own "
             "all-linear regex), save_safetensors true"),
    RuleInfo("weight-decay-schedule", "error", "weight_decay_incr_style constant takes no start/end_weight_decay; "
             "linear/cosine need both", (code(f"{MS} MegatronArguments._init_weigh_decay"),),
             "engine: megatron, weight_decay_incr_style or start/end_weight_decay set"),
    # --- numbers out of the optimizer's, scheduler's or dropout's range (msswift/range_rules.py)
    RuleInfo("optimizer-range", "error", "learning_rate, weight_decay, adam_epsilon >= 0 and Adam betas in [0, 1), "
             "as torch's Adam takes them",
             (code("torch optim/adam.py: Adam.__init__ (\"Invalid learning rate\", ...; AdamW subclasses it)"),),
             "engine swift with optim unset/adamw_torch/adamw_torch_fused; values the recipe sets"),
    RuleInfo("lr-schedule-range", "error", "0 <= min_lr <= lr, lr_warmup_init <= lr, weight_decay >= 0 (constant "
             "style), as the LR scheduler asserts",
             (code("megatron-core optimizer_param_scheduler.py: OptimizerParamScheduler.__init__ (assert min_lr >= 0, "
                   "max_lr >= min_lr, init_lr <= max_lr, start_wd >= 0)"),
              code(f"{MS} MegatronArguments._init_weigh_decay (start/end_weight_decay = weight_decay)")),
             "engine megatron; values the recipe sets"),
    RuleInfo("lora-dropout", "error, warning", "lora_dropout in [0, 1] (above 1 refused; below 0 is no dropout and 1 "
             "trains nothing: warned)",
             (code("ms-swift swift/tuners/lora_layers.py: LoRALayer.__init__ (nn.Dropout when lora_dropout > 0, "
                   "else nn.Identity; peft's LoraLayer.update_layer the same)"),
              code("torch nn/modules/dropout.py: _DropoutNd.__init__ (\"dropout probability has to be between 0 and 1\")")),
             "tuner_type lora/lora_llm/longlora, lora_dropout set"),
    RuleInfo("max-grad-norm-off", "warning", "a negative max_grad_norm turns clipping off without a word",
             (code("transformers trainer.py: Trainer._run_epoch (`if self.args.max_grad_norm > 0`)"),),
             "engine swift, max_grad_norm set below 0"),
    RuleInfo("clip-grad-off", "warning", "a negative clip_grad turns clipping off without a word",
             (code("megatron-core optimizer/optimizer.py: MixedPrecisionOptimizer.step, FP32Optimizer.step "
                   "(`if self.config.clip_grad > 0.0`)"),),
             "engine megatron, clip_grad set below 0"),
    RuleInfo("no-training-steps", "warning", "max_steps 0 (not 'off': -1 is) or num_train_epochs <= 0 with max_steps "
             "-1 trains nothing",
             (code("transformers trainer.py: Trainer.set_initial_training_values (max_steps -1 is epoch-based)"),),
             "engine swift, max_steps or num_train_epochs set"),
    RuleInfo("train-iters-range", "error, warning", "train_iters <= 0 without num_train_epochs fails the LR "
             "scheduler's lr_decay_steps > 0 (with a positive lr_decay_iters it trains nothing: warned)",
             (code("megatron-core optimizer_param_scheduler.py: OptimizerParamScheduler.__init__ (assert "
                   "lr_decay_steps > 0)"),
              code("ms-swift swift/megatron/utils/megatron_lm_utils.py: get_optimizer_param_scheduler (lr_decay_iters "
                   "defaults to train_iters)")),
             "engine megatron, train_iters set to 0 or below without num_train_epochs"),
    RuleInfo("lr-warmup-schedule", "error, warning", "the LR warmup shorter than the decay it precedes "
             "(lr_warmup_iters < lr_decay_iters, else train_iters; lr_warmup_fraction < 1), and lr_decay_style WSD "
             "with lr_wsd_decay_iters (errors); lr_warmup_iters beside lr_warmup_fraction, which ms-swift drops "
             "(warning; Megatron-LM's own arguments refuse the pair)",
             (code("megatron-core optimizer_param_scheduler.py: OptimizerParamScheduler.__init__ (assert "
                   "lr_warmup_steps < lr_decay_steps; WSD: assert wsd_decay_steps is not None)"),
              code("ms-swift swift/megatron/utils/megatron_lm_utils.py: get_optimizer_param_scheduler (steps = iters x "
                   "global_batch_size; warmup = lr_warmup_fraction x decay steps when set; wsd_decay_steps None "
                   "without lr_wsd_decay_iters)"),
              Evidence("report", "NVIDIA-NeMo/Megatron-Bridge#2857", "pull request: a recipe's lr_warmup_iters 2000 on a "
                     "train_iters 10 smoke run hit the AssertionError in OptimizerParamScheduler.__init__")),
             "engine megatron; the decay length known (lr_decay_iters, or train_iters without num_train_epochs) or "
             "bounded (num_train_epochs over a training set sized by `#N` or a local .jsonl: at most rows x "
             "num_generations x epochs // global_batch_size, ms-swift's MegatronArguments.init_iters); "
             "lr_warmup_fraction >= 1 at any length; WSD whenever lr_wsd_decay_iters is unset; the warning when both "
             "warmup arguments are set (iters > 0)"),
    RuleInfo("json-string", "warning", "a string for an argument ms-swift reads as a JSON object is JSON and an "
             "object (else json_repair rewrites it into a guess; where it cannot, json-argument refuses it)",
             (code("ms-swift swift/utils/utils.py: json_parse_to_dict (json.loads, then json_repair.repair_json on "
                   "a JSONDecodeError)"),), "the string-or-mapping arguments msswift/json_args.py lists, given as text"),
    RuleInfo("fsdp-args", "error", "fsdp not with deepspeed; not with save_only_model under a sharded state dict",
             (code(f"{SFT} SftArguments._init_fsdp / _check_fsdp2_compatibility"),), "engine: swift, fsdp set"),
    RuleInfo("config-name", "error, warning", "deepspeed / fsdp: one of ms-swift's presets, a JSON config file or a JSON "
             "object (a misspelt preset, or transformers' fsdp option string, is none); a path missing here is a warning",
             (code(f"{SFT} SftArguments._init_deepspeed / _init_fsdp (preset names mapped to swift/config/*.json)"),
              code("ms-swift swift/utils/utils.py: json_parse_to_dict (file, else json.loads, else json_repair; a bare "
                   "word mends to '' and raises)")),
             "engine: swift, deepspeed or fsdp set"),
    RuleInfo("device-map", "error", "device_map model parallelism (a process sees >= 2 GPUs: CUDA_VISIBLE_DEVICES lists "
             "more GPUs than NPROC_PER_NODE starts processes) not with deepspeed, fsdp, use_liger_kernel, or GRPO/GKD "
             "with use_vllm; the visible GPUs must divide evenly among the processes",
             (code("ms-swift swift/utils/env.py: is_mp (n_gpu % local_world_size asserted, then n_gpu // "
                   "local_world_size >= 2)"),
              code(f"{SFT} SftArguments._init_deepspeed / _init_fsdp (\"... is not compatible with `device_map`\")"),
              code("ms-swift swift/trainers/arguments.py: TrainArgumentsMixin.__post_init__ (liger_kernel; calls "
                   "is_mp on every training launch)"),
              code(f"{RLHF} RLHFArguments._check_grpo / _check_gkd (\"GRPO with vLLM is not compatible with "
                   "`device_map`\")")),
             "engine: swift, command sft/pt/rlhf, sizes known (not left to the scheduler), "
             "SWIFT_SINGLE_DEVICE_MODE unset; use_ray skips the DeepSpeed/FSDP refusals"),
    RuleInfo("device-map-ddp", "error", "a stated device_map that spreads the model (auto, balanced, balanced_low_0, or "
             "a map over >= 2 devices) under data parallelism with one GPU per process",
             (code("ms-swift swift/model/patcher.py: patch_mp_ddp (per-rank devices and accelerate's verify_device_map "
                   "off only under is_mp_ddp, a process seeing >= 2 GPUs)"),
              code("ms-swift swift/arguments/base_args/model_args.py: ModelArguments._init_device_map (passes the "
                   "value on)"),
              code("accelerate accelerator.py: Accelerator.prepare_model (\"You can't train a model that has been "
                   "loaded with `device_map='auto'` in any distributed mode\")"),
              Evidence("report", "modelscope/ms-swift#4567", "swift sft Qwen2.5-VL-72B LoRA, --device_map auto, "
                       "NPROC_PER_NODE 8 on 8 GPUs fails; fewer processes than GPUs runs (MP + DDP)")),
             "engine: swift, command sft/pt/rlhf, > 1 process in all, one visible GPU per process, no deepspeed / fsdp "
             "(they prepare the model on their own path), no max_memory naming at most one GPU (ModelArguments."
             "_init_max_memory shifts it to the rank's GPU; accelerate's map is then one entry, which "
             "verify_device_map lets through)"),
    RuleInfo("warmup", "error", "warmup_ratio not with warmup_steps, and below 1",
             (code("ms-swift swift/trainers/arguments.py: TrainArgumentsMixin._handle_hf_removed_args"),),
             "engine: swift, warmup_ratio set"),
    RuleInfo("swift-gkd", "error", "GKD on the transformers engine: no async_generate or seq_kd, not both teacher_model and "
             "teacher_model_server, gkd_logits_topk positive (needed with teacher_model_server), liger only with a teacher and without gkd_logits_topk or "
             "sft_alpha",
             (code(f"{RLHF} RLHFArguments._check_gkd / _check_teacher"),
              code("ms-swift swift/rlhf_trainers/gkd_trainer.py: GKDTrainer._prepare_liger_loss")),
             "engine: swift, rlhf_type gkd"),
    RuleInfo("longlora", "error", "tuner_type longlora only with the peft backend and a Llama model_type",
             (code("ms-swift swift/pipelines/train/tuner.py: prepare_adapter (asserts tuner_type == 'lora' under "
                   "tuner_backend unsloth; asserts 'llama' in model_type for longlora)"),),
             "engine: swift, command sft/pt/rlhf, tuner_type longlora, a new adapter (no resume_from_checkpoint / "
             "adapters: TunerMixin.prepare_model then loads the saved one and prepare_adapter does not run); the "
             "unsloth check without use_swift_lora (its branch comes first); the model_type check for models "
             "ms-swift's registry knows (or a stated model_type)"),
    RuleInfo("vera-target-sizes", "error", "tuner_type vera: explicit target_modules of different sizes need one "
             "naming a 'v' module",
             (code("ms-swift swift/pipelines/train/tuner.py: get_vera_target_modules (from prepare_adapter: \"Please "
                   "manually pass in `vera_target_modules`\")"),),
             "engine: swift, command sft/pt/rlhf, tuner_type vera, target_modules listed (not all-linear, no "
             "target_regex), a new adapter (no resume_from_checkpoint / adapters: prepare_adapter does not run), "
             "text-only dense llama/qwen2/qwen3/mistral configs"),
    RuleInfo("flash-ckpt-fsdp", "error", "use_flash_ckpt not under FSDP (DLRover checkpoints DeepSpeed or DDP)",
             (code("ms-swift swift/trainers/mixin.py: SwiftMixin._save_flash_checkpoint (\"Flash Checkpoint only "
                   "supports DeepSpeed or DDP.\", at the first checkpoint save)"),),
             "engine: swift, command sft/pt/rlhf, use_flash_ckpt with fsdp, no deepspeed, save_strategy not no"),
    RuleInfo("dataset-required", "error", "a training dataset (dataset or cached_dataset)",
             (code(f"{SFT} SftArguments.__post_init__"),
              code("ms-swift swift/megatron/arguments/sft_args.py: MegatronSftArguments.__post_init__")),
             "both engines, unless load_args with load_data_args reads them from a checkpoint's args.json"),
    RuleInfo("lora-llm", "error", "tuner_type lora_llm only for multimodal models, not with language_model_only",
             (code(f"{MS} MegatronArguments.__post_init__ / _check_mcore_bridge"),),
             "engine: megatron, tuner_type lora_llm; the model check for models ms-swift's registry knows"),

    # --- more argument-class and trainer set-up refusals (msswift/startup_rules.py, startup_rules_megatron.py, issue #21's audit)
    RuleInfo("grpo-reweight", "error", "advantage_reweight rlsd: rlsd_lambda in [0, 1], clip range >= 0, reward_funcs, "
             "not with liger, loss_type real/fipo, off-policy masking or a teacher server; sdar_loss_coef > 0: "
             "sdar_gate_beta > 0, not with liger, rlsd or a teacher server",
             (code(f"{RLHF} RLHFArguments._check_rlsd / _check_sdar"),), "engine: swift, rlhf_type grpo"),
    RuleInfo("grpo-reasoning-parser", "error", "no vllm_reasoning_parser in GRPO training",
             (code("ms-swift swift/rlhf_trainers/arguments.py: GRPOConfig.__post_init__"),),
             "engine: swift, rlhf_type grpo"),
    RuleInfo("swanlab-notification", "error", "swanlab_notification_method one ms-swift maps; email needs sender, "
             "receiver, SMTP server and port", (code(f"{SFT} SwanlabArguments._init_swanlab"),),
             "engine: swift, swanlab in report_to, swanlab_notification_method set"),
    RuleInfo("rope-scaling-type", "error", "a rope_scaling that is not a JSON object must be linear, dynamic or yarn "
             "(JSON that is not an object is refused too)",
             (code("ms-swift swift/arguments/base_args/model_args.py: ModelArguments._init_rope_scaling"),),
             "both engines, rope_scaling given as a string that is not a file path (a path is read where the job "
             "runs)"),
    RuleInfo("megatron-adapters", "error", "Megatron loads one adapter, and one ref_adapter",
             (code(f"{MS} MegatronArguments._load_adapter_config"),
              code("ms-swift swift/megatron/trainers/rlhf_mixin.py: MegatronRLHFTrainer.prepare_model")),
             "engine: megatron, adapters (ref_adapters: command rlhf, no mcore_ref_adapter)"),
    RuleInfo("vit-lr-multimodal", "error", "vit_lr / aligner_lr only for multimodal models",
             (code("ms-swift swift/megatron/trainers/base.py: BaseMegatronTrainer._get_param_groups"),
              code("ms-swift swift/optimizers/multimodal.py: MultimodalOptimizerCallback.create_optimizer "
                   "(model_arch.vision_tower; chosen by swift/trainers/arguments.py TrainArgumentsMixin.__post_init__ "
                   "when optimizer is unset)")),
             "both engines, vit_lr or aligner_lr, a model ms-swift's registry knows (engine swift: optimizer unset "
             "or multimodal)"),
    RuleInfo("padding-side", "error", "padding_side left needs padding_free on Megatron (off under attention_backend "
             "unfused) and with sequence_parallel_size > 1",
             (code("ms-swift swift/template/base.py: Template._data_collator (assert padding_side == 'right' when "
                   "use_megatron or sequence_parallel_size > 1, outside padding_free)"),
              code("ms-swift swift/megatron/model/utils.py: _check_padding_free (attention_backend unfused: "
                   "padding_free off)")),
             "padding_side stated left; engine megatron without effective padding_free, or engine swift with "
             "sequence_parallel_size > 1 without padding_free"),
    RuleInfo("freeze-params-adapter", "warning", "freeze_parameters* / trainable_parameters* with a tuner other than "
             "full change nothing (both engines apply them to full training only; LoRA trains whole modules through "
             "modules_to_save)",
             (code("ms-swift swift/pipelines/train/tuner.py: TunerMixin.prepare_model (freeze_parameters / "
                   "activate_parameters only in the tuner_type full branch; adapters: model.requires_grad_(False))"),
              code("ms-swift swift/megatron/utils/utils.py: prepare_mcore_model (full: freeze / activate; lora, "
                   "lora_llm: prepare_adapter only)"),
              Evidence("report", "modelscope/ms-swift#6421", "swift sft, Qwen2.5-VL-32B, train_type lora with "
                       "trainable_parameters naming the last ViT blocks: asks whether they train (they do not)")),
             "both engines, a tuner other than full (Megatron: full turned lora by adapters), one of the five "
             "arguments given with a value that asks for something"),
    RuleInfo("tracker-unused", "warning", "wandb_* / swanlab_* settings without that tracker in report_to log nowhere "
             "(Megatron 4.x no longer turns wandb on from wandb_project)",
             (code("ms-swift swift/megatron/trainers/base.py: BaseMegatronTrainer.__init__ (a callback per report_to "
                   "entry; wandb_project / swanlab_project are read only by callbacks/wandb.py, swanlab.py)"),
              code("ms-swift swift/arguments/sft_args.py: SftArguments.__post_init__ (_init_swanlab only with swanlab "
                   "in report_to)"),
              Evidence("report", "modelscope/ms-swift#4071", "megatron sft with --wandb_project / --wandb_exp_name: "
                       "printed in the arguments, wandb never initialized, nothing logged"),
              Evidence("report", "modelscope/ms-swift#4074", "pull request: 3.x Megatron then logged to wandb from "
                       "--wandb_project / --wandb_exp_name alone, no report_to")),
             "engine megatron: wandb_project, wandb_exp_name, swanlab_project, swanlab_exp_name; engine swift: "
             "swanlab_project, swanlab_exp_name, swanlab_workspace, swanlab_mode; set without the tracker in report_to"),
    RuleInfo("megatron-task-loss", "error", "Megatron task_type embedding / (generative_)reranker needs a loss_type of "
             "loss_map (its trainer builds loss_map[loss_type] unguarded: KeyError None without one)",
             (code("ms-swift swift/megatron/trainers/embedding_trainer.py: MegatronEmbeddingTrainer.__init__"),
              code("ms-swift swift/megatron/trainers/reranker_trainer.py: MegatronRerankerTrainer.__init__"),
              code("ms-swift swift/loss/mapping.py: loss_map (read from the installed package)")),
             "engine: megatron, command sft or pt, task_type (the recipe's or the registry's) embedding or "
             "(generative_)reranker (reranker only from the registry, routed by MegatronSft.prepare_trainer); a named "
             "loss not judged where an external_plugins file may fill loss_map"),
    RuleInfo("unfused-padding-free", "warning", "packing / padding_free with attention_backend unfused: ms-swift turns "
             "padding_free off, and packs are split back into padded rows",
             (code("ms-swift swift/megatron/model/utils.py: _check_padding_free (unfused: 'not supported in "
                   "padding-free mode', padding_free False)"),
              code("ms-swift swift/template/base.py: Template.data_collator (a pack is flattened into its samples) / "
                   "_data_collator (padded rows without padding_free)")),
             "engine: megatron, attention_backend unfused, packing true or padding_free stated true"),
    RuleInfo("report-to", "error", "transformers engine: each report_to entry is an integration transformers knows "
             "('none' / 'all' only alone)",
             (code("transformers integrations/integration_utils.py: get_reporting_integration_callbacks (Trainer.__init__: "
                   "'... is not supported, only ... are supported'; INTEGRATION_TO_CALLBACK read from the installed "
                   "package)"),
              code("transformers training_args.py: TrainingArguments.__post_init__ (['none'] / ['all'] become the "
                   "strings)")),
             "engine: swift, report_to given"),
    RuleInfo("epoch-iters", "error, warning", "engine megatron with num_train_epochs and a training set (`#N` or "
             "local .jsonl rows, x num_generations for GRPO, x epochs) smaller than one global_batch_size: train_iters "
             "is 0 and the LR scheduler's assert fails (lr_decay_iters stated: a warning, 0 iterations run)",
             (code(f"{MS} MegatronArguments.init_iters (train_iters = rows // (mbs x DP) x (mbs x DP) x "
                   "num_generations x num_train_epochs // global_batch_size)"),
              code("ms-swift swift/megatron/utils/megatron_lm_utils.py: get_optimizer_param_scheduler (lr_decay_steps "
                   "= lr_decay_iters or train_iters, x global_batch_size)"),
              code("megatron-core optimizer_param_scheduler.py: OptimizerParamScheduler.__init__ (assert "
                   "self.lr_decay_steps > 0)"),
              Evidence("report", "THUDM/slime#2366", "num_rollout 2 x rollout_batch_size 8 x n_samples_per_prompt 8 = "
                       "128 < global_batch_size 256: train_iters 0, bare AssertionError in OptimizerParamScheduler")),
             "engine megatron, num_train_epochs stated, every dataset entry sized (`#N` or a local .jsonl of JSON "
             "lines; an upper bound, so the refusal is certain), not streaming or cached, not interleave_prob with stopping_strategy "
             "all_exhausted (swift/dataset/loader.py load_dataset: datasets.interleave_datasets oversamples the "
             "entries past their sum)"),
    RuleInfo("megatron-run-length", "warning", "engine megatron with neither train_iters nor num_train_epochs: the LR "
             "scheduler is built from train_iters, which only num_train_epochs fills",
             (code(f"{MS} MegatronArguments.init_iters (train_iters from num_train_epochs only; both default None)"),
              code("ms-swift swift/megatron/utils/megatron_lm_utils.py: the optimizer-parameter scheduler set-up "
                   "(wd_incr_steps = args.train_iters * args.global_batch_size)")),
             "engine: megatron, neither train_iters nor num_train_epochs in the recipe (a warning: translations from "
             "RL frameworks that count rollouts leave both out)"),
    RuleInfo("megatron-callbacks", "error, warning", "Megatron report_to / callbacks entries name a callback of "
             "Megatron-SWIFT's map (tensorboard, wandb, swanlab, print, default_flow): transformers' none, all, mlflow "
             "... are refused (a warning where an external_plugins file may register more)",
             (code(f"{MS} MegatronArguments.__post_init__ (callbacks += report_to)"),
              code("ms-swift swift/megatron/trainers/base.py: BaseMegatronTrainer.__init__ "
                   "(megatron_callbacks_map[callback]: KeyError; map in swift/megatron/callbacks/mapping.py)")),
             "engine: megatron, report_to or callbacks given"),
    RuleInfo("megatron-model-type", "error, warning",
             "the model (and a teacher_model) maps to a Megatron model mcore-bridge registers: ms-swift's "
             "ModelMeta.mcore_model_type, else mcore-bridge's model type of ms-swift's model_type (for the teacher "
             "ms-swift reads the student's mcore_model_type); a warning where only a later mcore-bridge than the "
             "oldest ms-swift accepts maps it and none is installed here, or where an external_plugins / "
             "custom_register_path file may register a model (imported before the check: not here, unreadable, or "
             "naming register_model / MODEL_MAPPING)",
             (code(f"{MS} MegatronArguments.__post_init__ / _get_mcore_model_type / _init_teacher_model"),
              code("ms-swift swift/megatron/arguments/megatron_base_args.py: MegatronBaseArguments.__post_init__ "
                   "(BaseArguments.__post_init__, _import_external_plugins, before _init_megatron_args)"),
              code("mcore-bridge 1.6.3 mcore_bridge/model/register.py:61 / :71 get_mcore_model_type / get_model_meta "
                    "(1.6.5 :62 / :72); model/gpts/*.py, model/mm_gpts/*.py register_model (read from the installed "
                    "package, else swift_ext/msswift/mcore-bridge-models.json: the 1.6.3 wheel ms-swift requires and "
                    "1.6.5's, each named with its sha256)")),
             "engine: megatron, command sft/pt/rlhf, bridge_backend mcore-bridge (megatron-bridge skips the check); "
             "models (and teacher models) whose model_type ms-swift's registry gives; an unknown model is not "
             "judged"),

    # --- what a second audit of ms-swift 4.6's start-up checks found uncaught (msswift/startup_rules.py, startup_rules_megatron.py)
    RuleInfo("txt-file", "error, warning", "system or a new_special_tokens entry ending in .txt is a file ms-swift "
             "reads: a warning where it is not here (relative to the working directory), an error for a '~' path "
             "(never expanded)",
             (code("ms-swift swift/arguments/base_args/template_args.py: TemplateArguments.__post_init__ (system)"),
              code("ms-swift swift/arguments/base_args/model_args.py: ModelArguments._init_new_special_tokens")),
             "both engines, every command; system or new_special_tokens values ending in .txt"),
    RuleInfo("reward-model-plugin", "error", "one reward_model_plugin per reward_model, each registered in ms-swift's "
             "rm_plugins (built in, or by an external_plugins file)",
             (code("ms-swift swift/rlhf_trainers/grpo_trainer.py: GRPOTrainer._prepare_rewards"),
              code("ms-swift swift/rewards/rm_plugin.py: rm_plugins (read from the installed package)")),
             "engine: swift, rlhf_type grpo, reward_model and reward_model_plugin set; names not judged where an "
             "external_plugins file is missing or fills rm_plugins other than by rm_plugins['name'] = ..."),
    RuleInfo("reward-model-lists", "error", "reward_model_type, reward_template and reward_model_revision, when set, "
             "have one value per reward_model",
             (code("ms-swift swift/pipelines/train/rlhf.py: SwiftRLHF._prepare_model_tokenizer (assert len(rms) == "
                   "len(rm_types) == len(rm_templates) == len(rm_revisions))"),),
             "engine: swift, command rlhf (any rlhf_type) with reward_model set"),
    RuleInfo("reward-model-task", "error", "a GRPO reward_model that ms-swift loads as a causal LM (a registered "
             "non-reward LLM, or a local checkpoint whose config.json/args.json say so) is not scored by the 'default' "
             "reward_model_plugin, which reads logits[:, 0] as one score per completion",
             (code("ms-swift swift/pipelines/train/rlhf.py: SwiftRLHF._get_model_task_type / _prepare_single_model "
                   "(else the policy's task type, BaseArguments.get_model_processor)"),
              code("ms-swift swift/rewards/rm_plugin.py: DefaultRMPlugin.__call__"),
              code("ms-swift swift/rl_core/grpo_algorithm.py: compute_rewards_per_func (torch.tensor of the plugin's "
                   "rows: 'only one element tensors can be converted to Python scalars')")),
             "engine: swift, rlhf_type grpo, reward_model with reward_model_plugin default (or unset); the reward "
             "model's architectures all *ForCausalLM / *ForConditionalGeneration; models not registered in ms-swift "
             "and not a local directory are not judged, even with a reward_model_type (ms-swift reads the "
             "checkpoint's own config.json)"),
    RuleInfo("rollout-fsdp1", "error", "GRPO and GKD refuse FSDP1 (an fsdp config whose fsdp_config states "
             "fsdp_version 1)",
             (code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin.__init__"),
              code(f"{SFT} SftArguments._init_fsdp"),
              code("transformers training_args.py: TrainingArguments._process_fsdp_args (fsdp_ prefix stripped, "
                   "version read)")),
             "engine: swift, rlhf_type grpo or gkd, fsdp readable here; an unstated version is not judged (the "
             "installed transformers' default decides)"),
    RuleInfo("deepspeed-hpz", "error", "zero_hpz_partition_size needs a DeepSpeed config with zero_optimization",
             (code(f"{SFT} SftArguments._init_deepspeed"),),
             "engine: swift, deepspeed and zero_hpz_partition_size set, the config readable here"),
    RuleInfo("deepspeed-unread", "warning", "deepspeed_autotp_size or zero_hpz_partition_size without deepspeed is "
             "dropped without a word (ms-swift reads both only with a DeepSpeed config; its autotp assert sits inside "
             "that branch and never fires)",
             (code(f"{SFT} SftArguments._init_deepspeed"),),
             "engine: swift, deepspeed unset and deepspeed_autotp_size or zero_hpz_partition_size set"),
    RuleInfo("deepspeed-values", "error", "a DeepSpeed config's batch, clipping, optimizer and fp16/bf16 values are "
             "\"auto\" or equal the training arguments (as ms-swift fills them: per_device_train_batch_size 1, "
             "gradient_accumulation_steps 16 / processes, learning_rate 1e-4 (full 1e-5), adam_beta2 0.95, "
             "weight_decay 0.1, max_grad_norm 1, fp16/bf16 from torch_dtype)",
             (code("transformers integrations/deepspeed.py: HfTrainerDeepSpeedConfig.trainer_config_process / "
                   "trainer_config_finalize (fill_match: \"Please correct the following DeepSpeed config values that "
                   "mismatch TrainingArguments values\")"),
              code(f"{SFT} SftArguments._init_deepspeed (a preset name or a JSON file/text, passed on unchanged)"),
              Evidence("report", "hiyouga/LlamaFactory#366", "hand-written ZeRO-2 config with "
                       "train_micro_batch_size_per_gpu 16 and gradient_accumulation_steps 8 beside default batch "
                       "arguments; the maintainer: make them \"auto\""),
              Evidence("report", "shibing624/MedicalGPT#191", "ds fp16.enabled=True vs hf fp16=False (full "
                       "ChatGLM2 training in bf16)")),
             "engine: swift, deepspeed set and readable here (ms-swift's presets are all \"auto\"); fp16/bf16 only "
             "when torch_dtype or fp16/bf16 is stated; not the scheduler's step counts"),

    RuleInfo("zero3-nonreentrant-checkpoint", "warning", "gradient_checkpointing_kwargs use_reentrant false under "
             "DeepSpeed ZeRO-3 with frozen weights (any adapter tuner, freeze_parameters, a multimodal model's frozen "
             "vision tower): the non-reentrant recompute meets ZeRO-3's re-partitioned frozen parameters",
             (code("ms-swift swift/trainers/mixin.py: SwiftMixin._fix_gradient_checkpointing (use_reentrant from "
                   "gradient_checkpointing_kwargs, else True under DeepSpeed / FSDP)"),
              Evidence("report", "huggingface/trl#2514", "SFTTrainer LoRA on DeepSpeed ZeRO-3, 4x A100, DeepSpeed 0.15.3: "
                       "CheckpointError 'Recomputed values ... have different metadata' (saved [4096], recomputed [0]); "
                       "with use_reentrant True it trains; ZeRO-2 trains"),
              Evidence("report", "huggingface/transformers#47254", "LoRA + ZeRO-3 + non-reentrant gradient "
                       "checkpointing, 2x H100, DeepSpeed 0.19.2: the same CheckpointError on frozen RMSNorm weights; "
                       "DeepSpeed issue #4332, fixed by DeepSpeed PR #8148 (TRL PR #6356 forces reentrant meanwhile)")),
             "engine: swift, a ZeRO-3 deepspeed config readable here, gradient_checkpointing_kwargs with use_reentrant "
             "false, gradient checkpointing on (ms-swift's default), some weights frozen"),
    RuleInfo("zero3-bnb", "error", "DeepSpeed ZeRO-3 over a bitsandbytes-quantized model needs 4-bit weights stored in "
             "the torch_dtype (bnb_4bit_quant_storage): uint8 (the default) or int8 (8-bit) weights beside float ones "
             "break ZeRO-3's one-dtype parameter gathers",
             (code("deepspeed runtime/zero/partition_parameters.py: all_gather_coalesced / _all_gather_dtype "
                   "(get_only_unique_item of the gathered params' dtypes; \"all params must have the same dtype\"; "
                   "public source, not installed here)"),
              code("ms-swift swift/arguments/base_args/quant_args.py: QuantizeArguments.get_quantization_config "
                   "(bnb_4bit_quant_storage passed through, None by default)"),
              Evidence("report", "modelscope/ms-swift#8267", "swift 3.10.3, Qwen2.5-7B-Instruct QLoRA (bnb 4-bit nf4, "
                       "bf16) with --deepspeed zero3 on 2 GPUs: fails at start"),
              Evidence("report", "modelscope/ms-swift#5422", "Qwen3-Embedding-4B LoRA over bnb 4-bit, float16, "
                       "zero3: 'AssertionError: all params must have the same dtype'"),
              Evidence("report", "axolotl-ai-cloud/axolotl#207", "QLoRA with ZeRO-3: 'expected there to be only one "
                       "unique element' in Init._convert_to_deepspeed_param all_gather_coalesced"),
              Evidence("report", "huggingface/peft#1550", "pull request: ZeRO-3 / FSDP QLoRA supported with "
                       "bnb_4bit_quant_storage set to the torch dtype")),
             "engine: swift, quant_method bnb, a DeepSpeed config (preset or readable here) with zero_optimization "
             "stage 3; quant_bits 8, or bnb_4bit_quant_storage unset or (both stated) not the torch_dtype; FSDP2 is "
             "not judged (it checks only the trainable parameters' dtypes)"),

    # --- plugin files ms-swift imports at start-up (msswift/plugin_imports.py)
    RuleInfo("plugin-imports", "warning", "every `import swift...` / `from swift... import name` that runs "
             "when ms-swift imports an external_plugins (or custom_register_path) file names a module and name the "
             "installed ms-swift has (3.x's swift.llm, swift.plugin, ... are gone in 4.x); the hint names where "
             "the package defines the name now. Said, not refused: the run imports the training machine's copy of "
             "the file with its ms-swift, and plan reads this machine's",
             (code("ms-swift swift/arguments/base_args/base_args.py: BaseArguments._import_external_plugins "
                   "(custom_register_path appended, then import_external_file on every rank)"),
              code("ms-swift swift/utils/utils.py: import_external_file (spec.loader.exec_module; the error "
                   "propagates)"),
              code("ms-swift swift/utils/import_utils.py: _LazyModule.__getattr__ (a lazy package serves only "
                   "its _import_structure names; any other is an AttributeError, so the import fails)"),
              Evidence("report", "ms-swift#3197", "a GRPO reward plugin's `from swift.plugin import ORM` on an "
                       "ms-swift install that lacked it (screenshots only): ImportError at start-up; the maintainer: "
                       "upgrade ms-swift (4.6 has no swift.plugin: ORM is in swift.rewards)"),
              Evidence("report", "ms-swift#7392", "ms-swift 3.10.3 running the 4.x docs' inference script: No "
                       "module named 'swift.infer_engine', cannot import name 'InferRequest' from 'swift'; the "
                       "maintainer: swift4 and swift3 code differ"),
              Evidence("report", "ms-swift#7397", "pull request (2026-01, before 4.0): reward and rollout modules "
                       "moved into dedicated directories (4.6: swift/rewards, swift/rollout)")),
             "recipes with external_plugins / custom_register_path files here, ms-swift installed here; not judged: "
             "imports guarded by try/except ImportError, under `if` (TYPE_CHECKING's runtime else is), in loops, "
             "star imports' names, modules that fill their names dynamically"),

    RuleInfo("plugin-relative-import", "error, warning", "a relative import (`from .x import y`, `from . import x`) "
             "that runs in an external_plugins (or custom_register_path) file itself fails: ms-swift imports the file "
             "as a top-level module with no package (a warning when it sits inside a function: it fails when that "
             "runs); the hint gives the import by name, which works because ms-swift puts the file's directory "
             "first on sys.path",
             (code("ms-swift swift/utils/utils.py: import_external_file (module name `_swift_external_<sha256>`, "
                   "importlib.util.spec_from_file_location without submodule_search_locations, sys.path.insert(0, "
                   "the file's directory); ImportError \"attempted relative import with no known parent package\" -- "
                   "run against 4.6.0 on a two-file plugin)"),
              code("ms-swift swift/arguments/base_args/base_args.py: BaseArguments._import_external_plugins (every "
                   "rank, custom_register_path appended)")),
             "the plugin files found here, their own module-level and function-level imports; not judged: imports "
             "under try/except ImportError, `if` branches, loops (as plugin-imports); relative imports inside "
             "packages the plugin imports (those have a package, and work)"),
]
