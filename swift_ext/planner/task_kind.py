"""The task type ms-swift resolves for a recipe (causal_lm, seq_cls, embedding, rerankers) and seq_cls's head width:
read by the memory head (memory_head.py), LoRA memory, the data validator's task (datafit.py) and the evaluation
metric rules (best_metric_rules.py). Its own module so that rule modules registered in warn_rules can read it without
importing the memory model (memory_head imports layout, which imports warn_rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from swift_ext.msswift.model_table import model_meta

if TYPE_CHECKING:
    from swift_ext.msswift.bound_args import Args


def task_type(args: Args, command: str) -> str:
    """The task type ms-swift resolves: rm is seq_cls (rlhf_args.py sets it before anything else), then an
    explicit task_type, the model's registered one, seq_cls for a registered reward model (is_reward sets
    num_labels 1) or when num_labels is given, else causal_lm (swift/model/model_meta.py get_model_info_meta)."""
    if command == "rlhf" and args.str("rlhf_type") == "rm":
        return "seq_cls"
    if args.str("task_type"):
        return args.str("task_type")
    meta = _meta(args)
    if meta.get("task_type"):
        return meta["task_type"]
    return "seq_cls" if meta.get("reward") or args.int("num_labels") is not None else "causal_lm"


def num_labels(args: Args, command: str) -> int:
    """seq_cls's head width: 1 for a reward model (rlhf_args.py; and get_model_info_meta for a registered
    is_reward model when task_type is not given, whatever num_labels says), else num_labels (ms-swift
    requires it)."""
    if command == "rlhf" and args.str("rlhf_type") == "rm":
        return 1
    if not args.str("task_type") and _meta(args).get("reward"):
        return 1
    return args.int("num_labels") or 1


def _meta(args: Args) -> dict:
    return model_meta(args.str("model"), args.str("model_type")) or {}
