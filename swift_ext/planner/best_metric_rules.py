"""metric_for_best_model against the evaluation metrics the run computes (engine swift, sft/pt).

transformers' Trainer._determine_best_metric (trainer.py; run after every evaluation whenever metric_for_best_model is
set, and ms-swift always sets one: SftArguments._init_metric_for_best_model, 'rouge-l' with predict_with_generate,
else 'loss') looks up `eval_` + the name in the evaluation's metrics and raises KeyError when it is missing: the run
dies at its first evaluation, eval_steps into training.

Which names an ms-swift 4.6 evaluation holds is not a closed list (custom loss functions, per-channel losses, plugin
metrics), so only names ms-swift computes in other configurations and certainly not in this one are refused:
- rouge-1, rouge-2, rouge-l, bleu-4: the keys of NlgMetrics (swift/metrics/nlg.py compute_rouge_bleu), the
  compute_metrics of eval_metric 'nlg' only (swift/trainers/mixin.py create_loss_and_eval_metric; SftArguments
  _init_metric resolves eval_metric 'nlg' for causal_lm with predict_with_generate). No other metric class
  (swift/metrics/mapping.py) and no custom metric (custom_metrics: token/seq acc, aux_loss) writes them.
- loss with predict_with_generate: Seq2SeqTrainer.prediction_step (swift/trainers/seq2seq_trainer.py) returns no loss
  when it generates, so the evaluation loop writes no eval_loss.
- reward: GRPO's evaluation only (rlhf_args.py RLHFArguments._init_metric_for_best_model).
- epoch, global_step/max_steps, percentage, elapsed_time, remaining_time: progress entries the log adds to the
  metrics without the `eval_` prefix (ms-swift#5682 lists them), so `eval_epoch` never exists (ms-swift#4323).
Skipped when a plugin (external_plugins) or EvalScope (eval_use_evalscope) can add metrics, or eval_metric names a
metric class ms-swift does not ship.
"""

from __future__ import annotations

from swift_ext.planner.task_kind import task_type

NLG_KEYS = ("rouge-1", "rouge-2", "rouge-l", "bleu-4")
PROGRESS_KEYS = ("epoch", "global_step/max_steps", "percentage", "elapsed_time", "remaining_time")
SHIPPED_EVAL_METRICS = ("acc", "nlg", "infonce", "paired", "reranker")  # swift/metrics/mapping.py eval_metrics_map


def _evaluates(args) -> bool:
    """A validation set exists and the strategy evaluates (SftArguments.__post_init__ sets eval_strategy 'no' without
    one; _init_eval_strategy defaults it to save_strategy)."""
    has_val = bool(args.list("val_dataset")) or (args.float("split_dataset_ratio") or 0.0) > 0
    return has_val and (args.str("eval_strategy") or args.str("save_strategy") or "steps") != "no"


def _eval_metric(args, task: str) -> str | None:
    """SftArguments._init_metric: the stated eval_metric, else nlg / infonce|paired / reranker by task."""
    if args.str("eval_metric"):
        return args.str("eval_metric")
    if task == "causal_lm" and args.bool("predict_with_generate"):
        return "nlg"
    if task == "embedding":
        return "infonce" if args.str("loss_type") == "infonce" else "paired"
    if task in ("reranker", "generative_reranker"):
        return "reranker"
    return None


def best_metric_not_computed(recipe, args, shape, lay, err, warn):
    if recipe.engine != "swift" or recipe.command not in ("sft", "pt") or not _evaluates(args):
        return
    if args.list("external_plugins") or args.bool("eval_use_evalscope"):
        return
    task = task_type(args, recipe.command)
    metric = _eval_metric(args, task)
    if metric is not None and metric not in SHIPPED_EVAL_METRICS:
        return
    generating = args.bool("predict_with_generate")
    stated = recipe.args.get("metric_for_best_model")
    name = str(stated) if stated is not None else ("rouge-l" if generating else "loss")
    bare = name[len("eval_"):] if name.startswith("eval_") else name
    if bare in NLG_KEYS and metric != "nlg":
        why = (f"it is a key of eval_metric nlg (rouge/bleu), and this run's eval_metric is {metric or 'none'}"
               + (" (ms-swift defaults metric_for_best_model to rouge-l with predict_with_generate)" if stated is None
                  else ""))
    elif bare == "loss" and generating and task == "causal_lm":
        why = "predict_with_generate evaluates by generating, and Seq2SeqTrainer.prediction_step returns no loss then"
    elif bare == "reward":
        why = "only GRPO's evaluation computes a reward"
    elif bare in PROGRESS_KEYS:
        why = f"'{bare}' is a progress entry the log writes without the eval_ prefix, so eval_{bare} never exists"
    else:
        return
    key = "metric_for_best_model" if stated is not None else "eval_metric"
    err("best-metric", f"metric_for_best_model {name!r}: the evaluation never computes eval_{bare} ({why}); "
        "transformers' Trainer._determine_best_metric raises KeyError at the first evaluation", key,
        hint="name a metric the evaluation computes (loss, token_acc; rouge-l/bleu-4 with eval_metric nlg)")


BEST_METRIC_RULES = [best_metric_not_computed]
