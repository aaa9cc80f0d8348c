"""The validation split against the evaluation batch: a split smaller than one evaluation step is dropped by
Megatron (no evaluation ever runs, silently) and gives the transformers Trainer no batch when it drops the last
partial one (the first evaluation then has no eval_loss for metric_for_best_model and raises).

The split's size is an upper bound read from what the recipe states (msswift/validation_split.py), so "fewer than
one step" holds whenever the bound says so. Registered with
warn_rules.ENGINE_RULES (both engines; the shape is never read)."""

from __future__ import annotations

from swift_ext.msswift.validation_split import validation_rows


def megatron_split_too_small(recipe, args, shape, lay, err, warn):
    # swift/megatron/arguments/megatron_args.py MegatronArguments.init_iters: "To avoid errors caused by the
    # validation set being insufficient to complete a single step", a validation set with fewer rows than
    # micro_batch_size x data-parallel size is set to None and eval_iters to 0, an explicit eval_iters included;
    # megatron/callbacks/default_flow.py then never sets should_eval. Training runs; no evaluation is ever logged.
    if recipe.engine != "megatron" or args.int("eval_iters") == 0 or not lay.dp:
        return
    rows, key = validation_rows(args)
    step = (args.int("micro_batch_size") or 1) * lay.dp
    if rows is None or rows >= step:
        return
    warn("eval-split", f"the validation set has at most {rows} row(s) ({key}), fewer than one evaluation step "
         f"(micro_batch_size {args.int('micro_batch_size') or 1} x data-parallel size {lay.dp} = {step}): "
         "MegatronArguments.init_iters drops it and sets eval_iters 0, so the run trains without ever evaluating",
         key, hint=f"give the validation set at least {step} rows (val_dataset, or a larger split_dataset_ratio)")


def swift_split_too_small(recipe, args, shape, lay, err, warn):
    # Engine swift, sft/pt with dataloader_drop_last: the transformers Trainer's eval dataloader (ms-swift's
    # mixin.get_eval_dataloader defers to it without sequence parallelism) goes through accelerate's
    # BatchSamplerShard, which with drop_last yields only full rounds of per_device_eval_batch_size x processes
    # rows. Fewer rows: no batch, no eval_loss, and Trainer._determine_best_metric raises KeyError ("The
    # `metric_for_best_model` training argument is set to 'eval_loss', which is not found in the evaluation
    # metrics") at the first evaluation, because SftArguments._init_metric_for_best_model always sets one.
    # Without drop_last accelerate pads the last round (even_batches) and evaluation runs. RLHF trainers have
    # their own evaluation loops and GRPO repeats prompts per generation: not judged here.
    if recipe.engine != "swift" or recipe.command not in ("sft", "pt") or not args.bool("dataloader_drop_last"):
        return
    if (args.int("sequence_parallel_size") or 1) > 1:
        return  # SequenceParallelSampler over the data-parallel ranks: another batch layout
    if (args.str("eval_strategy") or args.str("save_strategy") or "steps") == "no":
        return
    world = recipe.launch.world_size
    rows, key = validation_rows(args)
    per_device = args.int("per_device_eval_batch_size") or 1
    step = per_device * max(world, 1)
    if rows is None or rows >= step:
        return
    err("eval-split-drop-last", f"the validation set has at most {rows} row(s) ({key}), fewer than one evaluation round "
        f"(per_device_eval_batch_size {per_device} x {world} processes = {step}) and dataloader_drop_last drops the "
        "partial round: the first evaluation gets no batch and the Trainer raises KeyError on the missing "
        "eval metric (metric_for_best_model)", key,
        hint=f"give the validation set at least {step} rows, lower per_device_eval_batch_size, or drop "
        "dataloader_drop_last")


EVAL_SPLIT_RULES = [megatron_split_too_small, swift_split_too_small]
