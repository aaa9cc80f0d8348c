"""The recipe's `eval` section, checked before training starts: `swift-ext eval` reads it only when the first
checkpoint is evaluated, by which time the run has been training for a while."""

from __future__ import annotations

import difflib

from swift_ext.msswift.bound_args import Args
from swift_ext.planner.grpo_rules import builtin_reward_names, plugin_paths, plugin_reward_names
from swift_ext.spec.findings import Finding, shown
from swift_ext.spec.recipe import EVAL_METRICS, Recipe


def eval_metric_problems(recipe: Recipe, args: Args) -> list[Finding]:
    """eval.metrics names what after/evalmetrics.check_metric_names accepts when the evaluation starts: a metric it
    computes, or a reward function in ms-swift's `orms` once swift-ext's rewards are registered there. It imports
    no external_plugins file, so a reward only such a file registers is refused there too."""
    from swift_ext.plugins import REWARD_NAMES

    names = (recipe.eval.metrics or []) if recipe.eval is not None else []
    known = set(EVAL_METRICS) | builtin_reward_names() | set(REWARD_NAMES)
    unknown = [str(n) for n in names if str(n) not in known]
    if not unknown:
        return []
    plugin_only = set(unknown) & plugin_reward_names(plugin_paths(args))
    name = unknown[0]
    if name in plugin_only:
        why = "a reward function only an external_plugins file registers, which the evaluation does not import"
        hint = "score it in training (reward_funcs) or register it in swift-ext's rewards"
    else:
        why = "neither one of its metrics nor a reward function ms-swift or swift-ext registers"
        close = difflib.get_close_matches(name, sorted(known), n=1) if len(name) <= 200 else []
        hint = f"did you mean {close[0]!r}?" if close else f"one of {', '.join(EVAL_METRICS)}"
    return [Finding(f"unknown evaluation metric {shown(name)}: {why}; `swift-ext eval` refuses it when the first "
                    "checkpoint is evaluated", code="eval-metrics", hint=hint, **recipe.where("eval.metrics"))]
