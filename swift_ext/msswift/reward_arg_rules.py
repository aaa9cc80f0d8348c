"""ms-swift 4.6's built-in GRPO reward functions (swift/rewards/orm.py) read their settings from the training
arguments; these rules judge the settings that make a reward misbehave without an error. Registered by rules.py."""

from __future__ import annotations


def cosine_period(recipe, args, err, warn):
    # swift/rewards/orm.py CosineReward.__call__ scores a completion of gen_len tokens with cosfn(gen_len, cosine_max_len,
    # ...) = max - (max - min) * (1 - cos(gen_len * pi / cosine_max_len)) / 2, unclamped: past cosine_max_len the
    # cosine turns back, and a completion of twice that length scores like an empty one (the length-penalised end
    # becomes a reward again). cosine_max_len defaults to max_completion_length (rlhf_trainers/arguments.py
    # GRPOConfig.__post_init__, megatron_args.py), the longest completion the rollout returns; a smaller one lets
    # completions pass it.
    if recipe.command != "rlhf" or args.str("rlhf_type") != "grpo":
        return
    if "cosine" not in [str(f) for f in args.list("reward_funcs")]:
        return
    period, budget = args.int("cosine_max_len"), args.max_completion_length
    if period is None or not budget or period >= budget:
        return
    warn("cosine-max-len", f"cosine_max_len {period} < max_completion_length {budget}: the cosine reward is not "
         f"clamped at cosine_max_len, so completions longer than {period} tokens climb back toward the short-answer "
         f"reward (at {2 * period} tokens they score as an empty one) -- the length penalty turns into a bonus",
         "cosine_max_len", hint=f"cosine_max_len: {budget} (ms-swift's default: max_completion_length), or "
                                f"max_completion_length: {period}")


REWARD_ARG_RULES = [cosine_period]
