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
    RuleInfo("quant-bits", "error", "quant_method bnb/hqq/eetq/quanto needs quant_bits, one the method takes (bnb 4/8, "
             "quanto 2/4/8/float8, eetq 8)",
             (code("ms-swift swift/arguments/base_args/quant_args.py: QuantizeArguments.get_quantization_config "
                    "(from ModelArguments._init_model_info)"),
              code("transformers utils/quantization_config.py: EetqConfig.post_init (int8 only)")),
             "both engines, quant_method set (not fp8); an unset quant_method/quant_bits as load_args reads it from a "
             "checkpoint's args.json"),
    RuleInfo("muon-optimizer", "error", "optimizer muon excludes overlap_grad_reduce/overlap_param_gather; Muon "
             "settings the installed megatron-core lacks (muon_scalar_optimizer, muon_coefficient_type, vit_lr/aligner_lr "
             "where Muon splits parameters through config overrides)",
             (code(f"{MS} MegatronArguments._check_muon / _check_muon_mcore_support"),
              code("megatron-core optimizer/optimizer_config.py: OptimizerConfig (its fields, read from source)")),
             "engine: megatron, optimizer muon or dist_muon"),
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
    RuleInfo("json-string", "warning", "a string for an argument ms-swift reads as a JSON object is JSON and an "
             "object (else json_repair rewrites it into a guess, or it fails)",
             (code("ms-swift swift/utils/utils.py: json_parse_to_dict (json.loads, then json_repair.repair_json on "
                   "a JSONDecodeError)"),), "the string-or-mapping arguments msswift/json_args.py lists, given as text"),
    RuleInfo("fsdp-args", "error", "fsdp not with deepspeed; not with save_only_model under a sharded state dict",
             (code(f"{SFT} SftArguments._init_fsdp / _check_fsdp2_compatibility"),), "engine: swift, fsdp set"),
    RuleInfo("warmup", "error", "warmup_ratio not with warmup_steps, and below 1",
             (code("ms-swift swift/trainers/arguments.py: TrainArgumentsMixin._handle_hf_removed_args"),),
             "engine: swift, warmup_ratio set"),
    RuleInfo("swift-gkd", "error", "GKD on the transformers engine: no async_generate or seq_kd, gkd_logits_topk "
             "positive (needed with teacher_model_server), liger only with a teacher and without gkd_logits_topk or "
             "sft_alpha",
             (code(f"{RLHF} RLHFArguments._check_gkd / _check_teacher"),
              code("ms-swift swift/rlhf_trainers/gkd_trainer.py: GKDTrainer._prepare_liger_loss")),
             "engine: swift, rlhf_type gkd"),
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
             (code("ms-swift swift/megatron/trainers/base.py: BaseMegatronTrainer._get_param_groups"),),
             "engine: megatron, vit_lr or aligner_lr, a model ms-swift's registry knows"),
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

    # --- RLHF algorithm arguments read inside the trainers (msswift/rlhf_rules.py)
    RuleInfo("loss-type", "error", "loss_type names a loss the RLHF trainer computes: GRPO's (both engines), DPO's "
             "(transformers engine)",
             (code("ms-swift swift/rlhf_trainers/grpo_trainer.py: GRPOTrainer._compute_loss_and_metrics (\"Unknown "
                   "loss type\")"),
              code("ms-swift swift/megatron/trainers/grpo_trainer.py: MegatronGRPOTrainer.loss_func"),
              code("ms-swift swift/rlhf_trainers/dpo_trainer.py: DPOTrainer.dpo_loss"),
              Evidence("report", "unslothai/unsloth#3122", "TRL-style GRPO with loss_type gspo: ValueError in the "
                       "GRPO loss (GSPO is importance_sampling_level sequence)")),
             "rlhf_type grpo (both engines) with one loss_type; rlhf_type dpo on engine swift"),
    RuleInfo("sft-loss-type", "error", "`swift sft/pt`'s loss_type names an entry of ms-swift's loss_map (the RLHF "
             "losses belong to `swift rlhf`)",
             (code("ms-swift swift/trainers/mixin.py: SwiftMixin.create_loss_and_eval_metric (loss_map[loss_type])"),
              code("ms-swift swift/loss/mapping.py: loss_map (read from the installed package)"),
              Evidence("report", "ms-swift#5283", "`swift sft --loss_type grpo` (the Web-UI's GRPO page, ms-swift "
                       "3.6.4): KeyError 'grpo' when the trainer is built")),
             "engine swift, command sft or pt; names not judged where an external_plugins file may fill loss_map"),
    RuleInfo("megatron-dpo-loss", "warning", "Megatron DPO trains sigmoid DPO whatever loss_type says",
             (code("ms-swift swift/megatron/trainers/dpo_trainer.py: MegatronDPOTrainer.loss_func (dpo_loss without "
                   "loss_type, whose default is sigmoid)"),
              Evidence("report", "ms-swift#10167", "pull request: Megatron DPO with loss_type hinge / ipo trains "
                       "sigmoid DPO (open fix, after 4.6)")),
             "engine megatron, rlhf_type dpo, loss_type other than sigmoid"),
    RuleInfo("cispo-clip", "warning", "loss_type cispo with an epsilon_high cap below 1 (unset: epsilon, 0.2) clamps "
             "every token's importance weight to that constant",
             (code("ms-swift swift/rlhf_trainers/grpo_trainer.py: GRPOTrainer._compute_loss_and_metrics "
                   "(torch.clamp(coef_1, max=self.epsilon_high)); _prepare_algorithm_params (epsilon_high falls back "
                   "to epsilon)"),
              code("ms-swift swift/megatron/trainers/grpo_trainer.py: MegatronGRPOTrainer.loss_func"),
              Evidence("report", "NovaSky-AI/SkyRL#553", "pull request: CISPO clip bounds 0.2/0.2 replaced by 0 and 5 "
                       "after the ScaleRL ablation (clip_ratio rose); ms-swift's CISPO page sets epsilon_high 5.0")),
             "rlhf_type grpo, loss_type cispo, both engines"),
    RuleInfo("vllm-lora-sync", "warning", "LoRA adapter sync to vLLM (vllm_enable_lora) with modules_to_save: vLLM's "
             "LoRA loader refuses the full modules_to_save weights the adapter state dict carries",
             (code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin._move_adapter_to_vllm "
                   "(get_peft_model_state_dict as a TensorLoRARequest)"),
              code("vLLM vllm/lora/utils.py: parse_fine_tuned_lora_name (\"is unsupported LoRA weight\"; public source)"),
              Evidence("report", "vllm-project/vllm#9280", "an adapter trained with modules_to_save (lm_head): "
                       "ValueError base_model.model.lm_head.weight is unsupported LoRA weight when vLLM loads it")),
             "engine swift, rlhf_type grpo/gkd, use_vllm with vllm_enable_lora, tuner_type lora, modules_to_save set"),
    RuleInfo("ppo-reward-model", "error", "PPO needs exactly one reward_model (its value model is built from it); "
             "reward_funcs are not PPO's",
             (code("ms-swift swift/pipelines/train/rlhf.py: SwiftRLHF._prepare_model_tokenizer / _prepare_single_model "
                   "(value model from reward_model; one reward model for PPO)"),
              code("ms-swift swift/rlhf_trainers/ppo_trainer.py: PPOTrainer.__init__ (TRL's PPOTrainer.__init__: "
                   "PolicyAndValueWrapper over the value model)"),
              Evidence("report", "huggingface/trl#2273", "PPO given a reward function instead of a reward model "
                       "fails (\"PPO expect reward_model to be a model, not a function\")")),
             "engine swift, rlhf_type ppo"),
    RuleInfo("kto-batch", "error", "KTO needs a batch of 2 or more for its KL term (not with loss_type "
             "apo_zero_unpaired)",
             (code("ms-swift swift/pipelines/train/kto.py: prepare_kto_dataset (\"Batch size is 1 (too small)\")"),
              Evidence("report", "huggingface/trl#2554", "KTOTrainer with an actual batch size of 1 refused (the "
                       "KL term needs another sample's completion)")),
             "rlhf_type kto, both engines, with dataset or val_dataset (SwiftSft._prepare_dataset runs it through "
             "_get_dataset; a cached_dataset alone skips it), loss_type other than apo_zero_unpaired: "
             "global_batch_size on Megatron, processes x per_device_train_batch_size x gradient_accumulation_steps on "
             "the transformers engine"),
    RuleInfo("sync-ref-model", "warning", "GRPO's sync_ref_model with no reference model of its own (LoRA, or beta 0) "
             "never syncs anything",
             (code("ms-swift swift/rlhf_trainers/rollout_mixin.py: SyncRefModelCallback.on_step_end (returns when "
                   "ref_model is None)"),
              code(f"{RLHF} RLHFArguments.__post_init__ (ref_model only for full training, dropped at beta 0)"),
              Evidence("report", "huggingface/trl#3108", "GRPO with LoRA and sync_ref_model: TRL refuses the pair "
                       "(PR #4912), ms-swift 4.6 skips the sync silently")),
             "engine: swift, rlhf_type grpo, sync_ref_model with a tuner other than full (as load_args reads it) or "
             "beta 0"),
    RuleInfo("rlhf-ref-adapter", "warning", "DPO/KTO/GRPO continuing an SFT LoRA adapter without ref_adapters take "
             "the base model (adapter disabled) as the reference",
             (code("ms-swift swift/megatron/trainers/rlhf_mixin.py: MegatronRLHFTrainer.null_ref_context (LoRA: the "
                   "adapter disabled unless ref_adapters loaded a 'ref_adapter')"),
              code("ms-swift swift/pipelines/train/rlhf.py: SwiftRLHF.prepare_model (ref_adapters)"),
              code(f"{SFT} SftArguments.__post_init__ (resume_only_model with LoRA becomes adapters)"),
              Evidence("report", "ms-swift#8047", "DPO LoRA on Qwen3-8B from an SFT LoRA checkpoint by "
                       "resume_from_checkpoint + resume_only_model: a different loss from DPO on the merged model"),
              Evidence("report", "huggingface/trl#3194", "GRPO on a model with SFT LoRA weights: the reference is the "
                       "base without them, a KL divergence from step 0")),
             "command rlhf, rlhf_type dpo/kto/grpo (grpo with beta != 0), tuner_type lora/lora_llm, adapters (or "
             "mcore_adapter, or resume_only_model on the transformers engine) set and ref_adapters/mcore_ref_adapter "
             "not"),
]
