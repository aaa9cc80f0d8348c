"""The installed transformers 5.19 TrainingArguments checks (training_args.py TrainingArguments.__post_init__ ->
_validate_args) that engine swift's values reach after ms-swift 4.6 fills its own defaults: step counts that must be
whole, one full-eval precision, schedulers that read an evaluation metric, and value ranges. Each raises before
the model loads. The audit that found them is bench/tf_audit/. rules.py registers TRAINER_ARGS_RULES."""

from __future__ import annotations

from swift_ext.msswift.deepspeed_rules import FSDP_PRESETS, _json_config
from swift_ext.msswift.input_rules import evaluation_strategy

# transformers 5.19 trainer_utils.py SchedulerType, the names TrainingArguments.__post_init__ converts
# lr_scheduler_type through (`SchedulerType(self.lr_scheduler_type)`: a ValueError for any other). ms-swift 4.6
# declares lr_scheduler_type a plain str, so its parser lets any name through. tests/test_tf_audit.py compares this
# with the installed enum.
SCHEDULER_TYPES = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                   "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
                   "warmup_stable_decay", "greedy")
# The two schedulers _validate_args refuses without evaluation.
EVAL_SCHEDULERS = ("reduce_lr_on_plateau", "greedy")


def trainer_enums(recipe, args, err, warn):
    # TrainingArguments.__post_init__: `SchedulerType(self.lr_scheduler_type)` and `OptimizerNames(self.optim)`
    # raise ValueError for a name outside the enum. ms-swift types optim as OptimizerNames | str (the str arm lets
    # the parser take anything; its literal arm is OptimizerNames, read from the schema) and lr_scheduler_type as
    # str. A custom optimizer goes through ms-swift's `optimizer` plugin, never through optim.
    if recipe.engine != "swift":
        return
    scheduler = args.str("lr_scheduler_type")
    if args.has("lr_scheduler_type") and scheduler not in SCHEDULER_TYPES:
        err("trainer-enum", f"lr_scheduler_type {scheduler!r} is not a transformers SchedulerType: "
            "TrainingArguments refuses it", "lr_scheduler_type", hint="one of " + ", ".join(SCHEDULER_TYPES))
    field = args.schema.fields.get("optim") if args.schema is not None else None
    names = [c for o in (field.type.get("options") or []) if o.get("kind") == "literal"
             for c in o.get("choices") or []] if field is not None else []
    optim = args.str("optim")
    if names and args.has("optim") and optim not in names:
        err("trainer-enum", f"optim {optim!r} is not a transformers OptimizerNames: TrainingArguments refuses it "
            "(a custom optimizer is ms-swift's `optimizer` plugin argument)", "optim",
            hint="adamw_torch (the default), or another of: " + ", ".join(names[:8]) + ", ...")


def tf32_gpu(recipe, args, err, warn):
    # TrainingArguments.__post_init__: tf32 true raises "--tf32 requires Ampere or a newer GPU arch" when
    # is_torch_tf32_available() is false, i.e. the GPU's compute capability major is below 8.
    gpu = recipe.launch.gpu
    if recipe.engine != "swift" or gpu is None or not args.bool("tf32"):
        return
    from swift_ext.spec.gpus import GPUS

    cc = GPUS[gpu].compute_capability
    if cc < (8, 0):
        err("tf32-gpu", f"tf32 true on {gpu} (compute capability {cc[0]}.{cc[1]}): "
            "TF32 needs Ampere (8.0) or newer and TrainingArguments refuses it", "tf32",
            hint="tf32 unset (or false) on this GPU")


def whole_step_counts(recipe, args, err, warn):
    # _validate_args: with the steps strategy, eval_steps / save_steps above 1 must be whole ("--eval_steps must be
    # an integer if bigger than 1"); below 1 they are a ratio of the total steps. ms-swift's eval_strategy follows
    # save_strategy and is "no" without a validation set (input_rules.evaluation_strategy), and an unset eval_steps
    # takes save_steps (SftArguments._init_eval_strategy), so only a stated one is judged here.
    if recipe.engine != "swift":
        return
    schedules = (("eval_steps", evaluation_strategy(args)), ("save_steps", args.str("save_strategy") or "steps"))
    for key, strategy in schedules:
        value = args.float(key)
        if strategy == "steps" and args.has(key) and value is not None and value > 1 and value != int(value):
            err("trainer-steps-integer", f"{key} {value:g} is above 1 but not whole: the transformers Trainer "
                f"refuses it (below 1 it is a ratio of the total steps, above 1 a step count)", key,
                hint=f"{key}: {round(value)}")


def full_eval_precision(recipe, args, err, warn):
    # _validate_args: "At most one of fp16 and bf16 can be True for full eval, but not both". ms-swift leaves both
    # false unless stated (model_args.py _init_mixed_precision fills fp16/bf16 only).
    if recipe.engine == "swift" and args.bool("fp16_full_eval") and args.bool("bf16_full_eval"):
        err("full-eval-precision", "fp16_full_eval and bf16_full_eval are both true: the transformers Trainer "
            "refuses it", "bf16_full_eval", hint="keep one of fp16_full_eval and bf16_full_eval")


def scheduler_needs_eval(recipe, args, err, warn):
    # _validate_args: "lr_scheduler_type reduce_lr_on_plateau requires an eval strategy" (and greedy): both step on
    # the evaluation metric. Without a validation set ms-swift sets eval_strategy "no" (sft_args.py __post_init__).
    scheduler = args.str("lr_scheduler_type")
    if recipe.engine != "swift" or scheduler not in EVAL_SCHEDULERS or evaluation_strategy(args) != "no":
        return
    why = "eval_strategy is no" if args.str("eval_strategy") == "no" else "there is no validation set, so ms-swift " \
        "sets eval_strategy no"
    err("scheduler-needs-eval", f"lr_scheduler_type {scheduler} steps on the evaluation metric, but {why}: the "
        "transformers Trainer refuses it", "lr_scheduler_type",
        hint="add val_dataset or split_dataset_ratio (and an eval_strategy), or another lr_scheduler_type")


def trainer_arg_ranges(recipe, args, err, warn):
    # _validate_args: "warmup_steps must be an integer or a float" (warmup_steps < 0); torch_empty_cache_steps must
    # be an int above 0; dataloader_prefetch_factor only with workers ("--dataloader_prefetch_factor can only be set
    # when data is loaded in a different process"). ms-swift's TrainArgumentsMixin.__post_init__ sets
    # dataloader_num_workers 1 when unset (Linux) and refuses warmup_steps beside warmup_ratio first.
    if recipe.engine != "swift":
        return
    warmup = args.float("warmup_steps")
    if args.has("warmup_steps") and warmup is not None and warmup < 0 and not args.float("warmup_ratio"):
        err("trainer-arg-range", f"warmup_steps {warmup:g} is negative: the transformers Trainer refuses it",
            "warmup_steps", hint="warmup_steps: 0 (none), a step count, or a ratio below 1")
    empty = args.int("torch_empty_cache_steps")
    if args.has("torch_empty_cache_steps") and empty is not None and empty <= 0:
        err("trainer-arg-range", f"torch_empty_cache_steps {empty} is not above 0: the transformers Trainer refuses "
            "it", "torch_empty_cache_steps", hint="torch_empty_cache_steps: a step count, or unset (never)")
    if args.has("dataloader_prefetch_factor") and args.has("dataloader_num_workers") \
            and args.int("dataloader_num_workers") == 0:
        err("trainer-arg-range", "dataloader_prefetch_factor with dataloader_num_workers 0: the transformers Trainer "
            "refuses it (prefetching needs worker processes)", "dataloader_prefetch_factor",
            hint="dataloader_prefetch_factor unset, or dataloader_num_workers above 0")


# accelerate 1.15 utils/constants.py FSDP_SHARDING_STRATEGY / FSDP_AUTO_WRAP_POLICY, and the FSDP2 subset
# transformers maps onto reshard_after_forward (training_args.py _apply_legacy_fsdp_to_config).
FSDP_SHARDING = ("FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD", "HYBRID_SHARD_ZERO2")
FSDP2_SHARDING = ("full_shard", "shard_grad_op")
FSDP_WRAP_POLICIES = ("TRANSFORMER_BASED_WRAP", "SIZE_BASED_WRAP", "NO_WRAP")


def fsdp_options(recipe, args, err, warn):
    # ms-swift 4.6 SftArguments._init_fsdp hands the config's "fsdp" option string (default "full_shard auto_wrap")
    # and its "fsdp_config" to TrainingArguments; transformers 5.19 _process_fsdp_args strips the "fsdp_" prefix from
    # the config's keys, reads "version" (default 2), and _apply_legacy_fsdp_to_config raises on an option word it
    # does not know and, under FSDP2, on a sharding strategy other than full_shard / shard_grad_op; the plugin
    # arguments then refuse an auto_wrap_policy outside accelerate's list. Only a config readable here is judged.
    fsdp = args.str("fsdp")
    if recipe.engine != "swift" or not fsdp or args.str("deepspeed"):
        return  # fsdp with deepspeed is fsdp-args' refusal, made first (SftArguments._init_fsdp)
    config = _json_config(fsdp, FSDP_PRESETS)
    if config is None:
        return
    options = config.get("fsdp", "full_shard auto_wrap")
    inner = config.get("fsdp_config") or {}
    if not isinstance(options, str) or not isinstance(inner, dict):
        return
    inner = {k[5:] if k.startswith("fsdp_") else k: v for k, v in inner.items()}
    try:
        version = int(inner.get("version", 2))
    except (TypeError, ValueError, OverflowError):  # transformers' int() fails there too: not this rule's finding
        return
    for item in options.split():
        if item.upper() in FSDP_SHARDING:
            if version == 2 and item not in FSDP2_SHARDING:
                err("fsdp-options", f"fsdp option {item!r} under FSDP2 (fsdp {fsdp}): transformers maps only "
                    "full_shard / shard_grad_op onto FSDP2 and refuses the rest", "fsdp",
                    hint="full_shard (or shard_grad_op) in the config's \"fsdp\" string")
        elif item not in ("offload", "auto_wrap"):
            err("fsdp-options", f"fsdp option {item!r} (fsdp {fsdp}) is not one transformers knows "
                "(full_shard, shard_grad_op, no_shard, hybrid_shard, hybrid_shard_zero2, offload, auto_wrap)", "fsdp",
                hint="fix the config's \"fsdp\" string")
    policy = inner.get("auto_wrap_policy", FSDP_WRAP_POLICIES[0])
    if not inner.get("xla") and policy not in FSDP_WRAP_POLICIES:
        err("fsdp-options", f"fsdp_config auto_wrap_policy {policy!r} (fsdp {fsdp}) is none of accelerate's "
            f"{', '.join(FSDP_WRAP_POLICIES)}: transformers refuses it", "fsdp",
            hint="auto_wrap_policy: TRANSFORMER_BASED_WRAP")


TRAINER_ARGS_RULES = [fsdp_options, trainer_enums, tf32_gpu, whole_step_counts, full_eval_precision, scheduler_needs_eval, trainer_arg_ranges]
