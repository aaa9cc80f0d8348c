"""The entries of the transformers TrainingArguments value checks that engine swift reaches
(msswift/trainer_args_rules.py; found by bench/tf_audit/). spec/ruleset.py joins them with the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import SFT, RuleInfo, code

VALIDATE = "transformers training_args.py: TrainingArguments._validate_args"

TRAINER_ARGS_RULE_INFO = [
    RuleInfo("fsdp-options", "error", "the FSDP config's option words are transformers' (FSDP2: full_shard or "
             "shard_grad_op only) and its auto_wrap_policy one of accelerate's",
             (code("transformers training_args.py: TrainingArguments._apply_legacy_fsdp_to_config (\"Unknown "
                   "`fsdp` option\", \"is only available with FSDP1\") / _process_fsdp_args (auto_wrap_policy)"),
              code("accelerate utils/constants.py: FSDP_SHARDING_STRATEGY, FSDP_AUTO_WRAP_POLICY"),
              code(f"{SFT} SftArguments._init_fsdp (the config's fsdp string and fsdp_config passed on)")),
             "engine: swift, fsdp a preset or a JSON config readable here, no deepspeed"),
    RuleInfo("trainer-enum", "error", "lr_scheduler_type a transformers SchedulerType and optim an OptimizerNames "
             "(ms-swift's parser takes any string for both)",
             (code("transformers training_args.py: TrainingArguments.__post_init__ (SchedulerType(...), "
                   "OptimizerNames(...))"),
              code("ms-swift swift/trainers/arguments.py: TrainArgumentsMixin (lr_scheduler_type: str)")),
             "engine: swift, a stated lr_scheduler_type or optim"),
    RuleInfo("tf32-gpu", "error", "tf32 true on a GPU older than Ampere (compute capability below 8.0)",
             (code("transformers training_args.py: TrainingArguments.__post_init__ (\"--tf32 requires Ampere "
                   "or a newer GPU arch\"; is_torch_tf32_available)"),),
             "engine: swift, tf32 true and launch.gpu named"),
    RuleInfo("trainer-steps-integer", "error", "eval_steps / save_steps above 1 must be whole under the steps "
             "strategy (below 1 they are a ratio of the total steps)",
             (code(f"{VALIDATE} (\"--eval_steps must be an integer if bigger than 1\", the same for save_steps)"),
              code(f"{SFT} SftArguments._init_eval_strategy (eval_strategy follows save_strategy; \"no\" without a "
                   "validation set)")),
             "engine: swift; a stated eval_steps while evaluation runs by steps, a stated save_steps while "
             "save_strategy is steps"),
    RuleInfo("full-eval-precision", "error", "fp16_full_eval and bf16_full_eval both true",
             (code(f"{VALIDATE} (\"At most one of fp16 and bf16 can be True for full eval\")"),),
             "engine: swift, both set true"),
    RuleInfo("scheduler-needs-eval", "error", "lr_scheduler_type reduce_lr_on_plateau or greedy with no evaluation "
             "(eval_strategy no, or no validation set so ms-swift sets it no)",
             (code(f"{VALIDATE} (\"lr_scheduler_type reduce_lr_on_plateau requires an eval strategy\", greedy "
                   "the same)"),
              code(f"{SFT} SftArguments.__post_init__ (eval_strategy 'no' without eval_dataset or a validation "
                   "set)")),
             "engine: swift, lr_scheduler_type reduce_lr_on_plateau or greedy"),
    RuleInfo("trainer-arg-range", "error", "warmup_steps not negative, torch_empty_cache_steps above 0, "
             "dataloader_prefetch_factor only with dataloader_num_workers above 0",
             (code(f"{VALIDATE} (\"warmup_steps must be an integer or a float\", \"torch_empty_cache_steps must be "
                   "an integer bigger than 0\", \"--dataloader_prefetch_factor can only be set when data is loaded "
                   "in a different process\")"),
              code("ms-swift swift/trainers/arguments.py: TrainArgumentsMixin.__post_init__ (dataloader_num_workers "
                   "1 when unset; warmup_ratio beside warmup_steps refused first)")),
             "engine: swift; each value as stated (warmup_steps without warmup_ratio; prefetch with a stated "
             "dataloader_num_workers 0)"),
]
