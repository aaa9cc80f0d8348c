"""Numbers outside the range the optimizer, the LR scheduler or a dropout layer takes: the ones that stop the job
when it builds them are refused, the ones the engine reads as "off" without a word are warned about. The type
check (plan.check_args) has already accepted each value as a number; the sizes and counts that must be positive are
plan's argument-range rule."""

from __future__ import annotations

from swift_ext.msswift.validation_split import train_rows

# The transformers engine's torch optimizers (transformers TrainingArguments.optim; unset: its default, adamw_torch
# or adamw_torch_fused): torch.optim.Adam.__init__ (AdamW subclasses it) raises "Invalid learning rate",
# "Invalid epsilon value", "Invalid beta parameter at index N" and "Invalid weight_decay value".
TORCH_ADAM = (None, "adamw_torch", "adamw_torch_fused")
LORA_TUNERS = ("lora", "lora_llm", "longlora")


def _given(args, name: str) -> float | None:
    """The recipe's own value (not ms-swift's default, which is in range)."""
    return args.float(name) if args.has(name) else None


def optimizer_ranges(recipe, args, err, warn):
    if recipe.engine == "swift":
        if (args.str("optim") if args.has("optim") else None) not in TORCH_ADAM:  # the default is an expression
            return  # bitsandbytes, torchao, galore...: their own checks, not read here
        checks = (("learning_rate", lambda v: v >= 0, ">= 0", "Invalid learning rate"),
                  ("weight_decay", lambda v: v >= 0, ">= 0", "Invalid weight_decay value"),
                  ("adam_epsilon", lambda v: v >= 0, ">= 0", "Invalid epsilon value"),
                  ("adam_beta1", lambda v: 0 <= v < 1, "in [0, 1)", "Invalid beta parameter at index 0"),
                  ("adam_beta2", lambda v: 0 <= v < 1, "in [0, 1)", "Invalid beta parameter at index 1"))
        for name, fits, expected, torch_says in checks:
            value = _given(args, name)
            if value is not None and not fits(value):
                err("optimizer-range", f"{name} {value:g} must be {expected}: torch's Adam refuses it when the "
                    f"trainer builds the optimizer ({torch_says})", name)
        return
    # megatron-core optimizer_param_scheduler.py OptimizerParamScheduler.__init__ (built by ms-swift's
    # get_optimizer_param_scheduler from lr, min_lr, lr_warmup_init and start/end_weight_decay, which
    # MegatronArguments._init_weigh_decay sets to weight_decay for the constant style):
    # assert min_lr >= 0, max_lr >= min_lr, init_lr <= max_lr, start_wd >= 0.
    lr, min_lr, init = _given(args, "lr"), _given(args, "min_lr"), _given(args, "lr_warmup_init")
    if min_lr is not None and min_lr < 0:
        err("lr-schedule-range", f"min_lr {min_lr:g} must be >= 0: megatron-core's LR scheduler asserts it", "min_lr")
    elif lr is not None and lr < (min_lr or 0.0):
        err("lr-schedule-range", f"lr {lr:g} must be >= min_lr ({min_lr or 0:g}): megatron-core's LR scheduler asserts "
            "max_lr >= min_lr", "lr")
    elif lr is not None and init is not None and init > lr:
        err("lr-schedule-range", f"lr_warmup_init {init:g} must be <= lr ({lr:g}): megatron-core's LR scheduler "
            "asserts it", "lr_warmup_init")
    decay = _given(args, "weight_decay")
    if decay is not None and decay < 0 and (args.str("weight_decay_incr_style") or "constant") == "constant":
        err("lr-schedule-range", f"weight_decay {decay:g} must be >= 0: megatron-core's LR scheduler asserts "
            "start_wd >= 0", "weight_decay")


def lora_dropout_range(recipe, args, err, warn):
    # peft tuners/lora/layer.py LoraLayer.update_layer (engine swift) and swift/tuners/lora_layers.py (the Megatron
    # LoRA layers): nn.Dropout(p=lora_dropout) when lora_dropout > 0, else nn.Identity. torch's Dropout raises
    # "dropout probability has to be between 0 and 1" above 1; a negative value is silently no dropout, and 1
    # zeroes every adapter input (the adapter gets no gradient).
    value = _given(args, "lora_dropout")
    if value is None or (args.str("tuner_type") or "").lower() not in LORA_TUNERS:
        return
    if value > 1:
        err("lora-dropout", f"lora_dropout {value:g} must be in [0, 1]: torch's nn.Dropout refuses it when the LoRA "
            "layers are built", "lora_dropout", hint="a probability such as 0.05")
    elif value < 0:
        warn("lora-dropout", f"lora_dropout {value:g} is below 0: the LoRA layers take it as no dropout "
             "(nn.Identity)", "lora_dropout", hint="0 for no dropout, or a probability such as 0.05")
    elif value == 1:
        warn("lora-dropout", "lora_dropout 1 drops every adapter input: the adapter output and its gradient are "
             "zero, nothing trains", "lora_dropout", hint="a probability such as 0.05")


def clipping_off(recipe, args, err, warn):
    # transformers trainer.py (`if self.args.max_grad_norm > 0`) and megatron-core optimizer/optimizer.py
    # (`if self.config.clip_grad > 0.0`): a negative norm is read as "no clipping", without a word.
    hint = "a positive norm such as 1.0, or 0 to turn clipping off"
    if recipe.engine == "swift":
        value = _given(args, "max_grad_norm")
        if value is not None and value < 0:
            warn("max-grad-norm-off", f"max_grad_norm {value:g} is negative: gradients are not clipped at all",
                 "max_grad_norm", hint=hint)
        return
    value = _given(args, "clip_grad")
    if value is not None and value < 0:
        warn("clip-grad-off", f"clip_grad {value:g} is negative: gradients are not clipped at all", "clip_grad",
             hint=hint)


def no_training_steps(recipe, args, err, warn):
    if recipe.engine == "swift":
        # transformers trainer.py Trainer.set_initial_training_values: max_steps -1 (the default) is epoch-based,
        # max_steps = ceil(num_train_epochs * steps per epoch): 0 epochs run range(0); max_steps 0 is no "off"
        # but a step count of 0 (the schedule has 0 steps: its learning rate is 0).
        steps, epochs = args.int("max_steps"), _given(args, "num_train_epochs")
        if args.has("max_steps") and steps == 0:
            warn("no-training-steps", "max_steps 0 is a schedule of 0 steps, not 'off' (-1 is): the learning rate "
                 "is 0 and nothing trains", "max_steps", hint="-1 to train num_train_epochs, or a step count")
        elif (steps is None or steps < 0) and epochs is not None and epochs <= 0:
            warn("no-training-steps", f"num_train_epochs {epochs:g} trains nothing (transformers runs "
                 f"ceil({epochs:g}) epochs)", "num_train_epochs", hint="a positive number of epochs, or max_steps")
        return
    # ms-swift MegatronArguments.init_iters replaces train_iters when num_train_epochs is set (warned elsewhere);
    # otherwise megatron-core OptimizerParamScheduler.__init__ asserts lr_decay_steps > 0, and lr_decay_iters
    # defaults to train_iters (ms-swift get_optimizer_param_scheduler).
    iters = args.int("train_iters") if args.has("train_iters") else None
    if iters is None or iters > 0 or args.has("num_train_epochs"):
        return
    if (args.int("lr_decay_iters") or 0) > 0:
        warn("train-iters-range", f"train_iters {iters} trains nothing", "train_iters",
             hint="a positive number of iterations, or num_train_epochs")
    else:
        err("train-iters-range", f"train_iters {iters} must be positive: it is the LR schedule's length, and "
            "megatron-core's LR scheduler asserts lr_decay_steps > 0", "train_iters",
            hint="a positive number of iterations, or num_train_epochs")


def lr_warmup_schedule(recipe, args, err, warn):
    # ms-swift swift/megatron/utils/megatron_lm_utils.py get_optimizer_param_scheduler: lr_decay_iters defaults to
    # train_iters; warmup steps are lr_warmup_fraction * decay steps, else lr_warmup_iters * global_batch_size; the
    # WSD phase is lr_wsd_decay_iters * global_batch_size, else None. megatron-core optimizer_param_scheduler.py
    # OptimizerParamScheduler.__init__ then asserts lr_warmup_steps < lr_decay_steps and, for lr_decay_style WSD,
    # wsd_decay_steps is not None: a bare AssertionError before the first step.
    if recipe.engine != "megatron":
        return
    if (args.str("lr_decay_style") or "") == "WSD" and args.int("lr_wsd_decay_iters") is None:
        err("lr-warmup-schedule", "lr_decay_style WSD needs lr_wsd_decay_iters: ms-swift passes wsd_decay_steps None "
            "and megatron-core's LR scheduler asserts it is set", "lr_decay_style",
            hint="set lr_wsd_decay_iters (the iterations of the final decay phase), or another lr_decay_style")
    # The decay length is known when lr_decay_iters is set, or train_iters is and num_train_epochs does not
    # replace it (MegatronArguments.init_iters recomputes train_iters from the dataset size then).
    decay = args.int("lr_decay_iters") if args.has("lr_decay_iters") else None
    epochs = args.has("num_train_epochs") or args.has("max_epochs")  # 3.x's name, refused by name elsewhere
    at_most = False
    if decay is None and args.has("train_iters") and not epochs:
        decay = args.int("train_iters")
    elif decay is None and args.has("num_train_epochs"):
        # init_iters: train_iters = rows // (mbs x DP) x (mbs x DP) x num_generations x epochs // global_batch_size;
        # the rows train_rows() counts are an upper bound (splits, filters and packing only lower them), so the
        # decay length is at most this, and a warmup at least as long fails for certain.
        rows, epochs_value = train_rows(args), args.float("num_train_epochs")
        if rows is not None and epochs_value is not None and epochs_value > 0:
            generations = (args.int("num_generations") or 1) if args.str("rlhf_type") == "grpo" else 1
            decay, at_most = int(rows * generations * epochs_value // (args.int("global_batch_size") or 16)), True
    fraction = _given(args, "lr_warmup_fraction")
    if fraction is not None and fraction >= 1 and (decay is None or decay > 0):
        # Warmup steps are fraction x decay steps: never below them, whatever the decay length turns out to be.
        err("lr-warmup-schedule", f"lr_warmup_fraction {fraction:g} makes the warmup as long as the whole "
            "schedule: megatron-core's LR scheduler asserts lr_warmup_steps < lr_decay_steps", "lr_warmup_fraction",
            hint="a fraction below 1, such as 0.05")
        return
    if decay is None or decay <= 0:
        return  # unknown, or train-iters-range's / epoch-iters' case
    if fraction is not None and (args.int("lr_warmup_iters") or 0) > 0:
        # Megatron-LM's own validate_args refuses the pair ("can only specify one of lr-warmup-fraction and
        # lr-warmup-iters"); ms-swift's get_optimizer_param_scheduler takes the fraction and drops the iterations.
        warn("lr-warmup-schedule", f"lr_warmup_iters {args.int('lr_warmup_iters')} is ignored: with "
             f"lr_warmup_fraction {fraction:g} set, ms-swift sizes the warmup from the fraction alone",
             "lr_warmup_iters", hint="set one of lr_warmup_fraction and lr_warmup_iters")
    if fraction is not None:
        return
    warmup = args.int("lr_warmup_iters") or 0
    if warmup >= decay:
        source = "lr_decay_iters" if args.has("lr_decay_iters") else "train_iters" if not at_most else (
            "train_iters, which num_train_epochs makes at most this from the dataset's rows")
        err("lr-warmup-schedule", f"lr_warmup_iters {warmup} is not below the {'at most ' if at_most else ''}{decay} "
            f"iterations the LR decays over ({source}): megatron-core's LR scheduler asserts lr_warmup_steps < "
            "lr_decay_steps", "lr_warmup_iters", hint=f"fewer warmup iterations than {decay}, or lr_warmup_fraction")


RANGE_RULES = [optimizer_ranges, lora_dropout_range, clipping_off, no_training_steps, lr_warmup_schedule]
