"""Recipes ms-swift (or transformers under it) would refuse at start-up, refused by `plan` first:
no model, an rlhf command with no algorithm named, sampling values the logits processors reject."""

from __future__ import annotations

import math

from swift_ext.spec.findings import Finding

# Where ms-swift can find the model when `model` is not given: a Megatron checkpoint, or an adapter /
# checkpoint whose args.json names it (BaseArguments._init_ckpt_dir, megatron sft_args._init_ckpt_dir).
_MODEL_FROM = ("mcore_model", "mcore_adapter", "adapters", "resume_from_checkpoint")


def missing_model(recipe, args) -> list[Finding]:
    """ModelArguments.__post_init__: `Please set --model` (a ValueError on every rank, after start-up)."""
    if args.has("model") or any(args.has(k) for k in _MODEL_FROM):
        return []
    if not any(k.startswith("args.") for k in recipe.positions):
        # No `args:` at all, or `args: null` / `args:` with nothing under it (recipe.py drops an empty section).
        where = recipe.where("args") if "args" in recipe.positions else {"file": recipe.source, "path": "args"}
        how = "is empty" if "args" in recipe.positions else "is missing"
        return [Finding(f"{how}: ms-swift needs at least `model` and `dataset`", code="required",
                        hint="add `args:` with `model: <hub id or directory>`", **where)]
    where = recipe.where("args.model") if "args.model" in recipe.positions else recipe.where("args")
    where["path"] = "args.model"
    how = "is null" if "args.model" in recipe.positions else "is missing"
    return [Finding(f"{how}: ms-swift refuses to start without a model", code="required",
                    hint="set `model:` to a hub id or a model directory", **where)]


def rlhf_type_default(recipe, args) -> list[Finding]:
    """`command: rlhf` without `rlhf_type` runs ms-swift's default algorithm: say which, as a warning."""
    if recipe.command != "rlhf" or args.has("rlhf_type"):
        return []
    spec = args.schema.fields.get("rlhf_type") if args.schema else None
    default = spec.default if spec else None
    if default is None:
        return [Finding("not set, and ms-swift has no default for it", code="required",
                        hint="set rlhf_type (grpo, dpo, kto, ...)", path="args.rlhf_type", file=recipe.source)]
    return [Finding(f"not set: ms-swift's default {default!r} applies", code="rlhf-type",
                    hint="set rlhf_type explicitly (grpo, dpo, kto, ...)", path="args.rlhf_type", file=recipe.source)]


# The sampling values and the transformers logits processor that validates each (the processor's own
# ValueError is the message). ms-swift's sentinels are not values to validate: temperature 0 means
# greedy decoding, top_k -1 and min_p 0 mean "off" (GRPO/infer argument defaults). top_k 0 is "off" too:
# transformers builds no TopKLogitsWarper for it (generation/utils.py: `top_k is not None and top_k != 0`),
# ms-swift 4.6 turns top_k <= 0 into None before transformers sees it (swift/infer_engine/utils.py
# prepare_generation_config), and vLLM reads 0 as disabled since vllm-project/vllm PR #17773. ms-swift
# publishes `--top_k 0` (modelscope/ms-swift examples/megatron/grpo/opd_rl.sh).
_SAMPLING = {
    "temperature": ("TemperatureLogitsWarper", float, lambda v: v == 0),
    "top_p": ("TopPLogitsWarper", float, lambda v: False),
    "top_k": ("TopKLogitsWarper", int, lambda v: v in (0, -1)),
    "min_p": ("MinPLogitsWarper", float, lambda v: v == 0),
    "repetition_penalty": ("RepetitionPenaltyLogitsProcessor", float, lambda v: False),
}
# Values every processor above accepts: only values outside these import transformers (and torch, ~6 s)
# to ask it, so a recipe with ordinary settings plans as fast as before.
_PLAINLY_VALID = {
    "temperature": lambda v: v > 0, "top_p": lambda v: 0 <= v <= 1, "top_k": lambda v: v > 0,
    "min_p": lambda v: 0 <= v <= 1, "repetition_penalty": lambda v: v > 0,
}


def generation_problems(recipe, args) -> list[Finding]:
    """Sampling values that transformers' logits processors refuse: GRPO rollouts and inference would
    fail with that ValueError at the first generation, after the model has loaded."""
    suspect = {}
    for name, (_, convert, sentinel) in _SAMPLING.items():
        if not args.has(name) or name not in (args.schema.fields if args.schema else {}):
            continue
        value = args.raw(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # check_args reports a value of the wrong type
        value = convert(value)
        if sentinel(value) or (math.isfinite(value) and _PLAINLY_VALID[name](value)):
            continue
        suspect[name] = value
    if not suspect:
        return []
    from transformers.generation import logits_process  # lazily: imports torch

    problems = []
    for name, value in suspect.items():
        processor = getattr(logits_process, _SAMPLING[name][0])
        try:
            processor(value)
        except ValueError as exc:
            problems.append(Finding(f"transformers refuses this: {exc}", code="generation",
                                    hint=f"raised by transformers' {_SAMPLING[name][0]}", **recipe.where(f"args.{name}")))
    return problems
