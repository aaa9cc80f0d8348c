"""ms-swift 4.6's built-in GRPO reward functions (swift/rewards/orm.py) read their settings from the training
arguments and their inputs from the dataset's columns; these rules judge the settings that make a reward misbehave
without an error, and hub datasets without the column a reward reads. Registered by rules.py."""

from __future__ import annotations

import json

from swift_ext.msswift.conventions import local_dataset_path, without_sample_suffix

# Built-in rewards whose __call__ takes `solution` as a required argument (swift/rewards/orm.py: MathAccuracy
# 'accuracy', and CosineReward 'cosine', which calls MathAccuracy the same way). rl_core/grpo_algorithm.py
# compute_rewards_per_func passes the rows' own columns as keyword arguments (RowPreprocessor.rows_to_batched), so
# rows without `solution` raise TypeError "missing 1 required positional argument: 'solution'" at the first reward.
SOLUTION_REWARDS = ("accuracy", "cosine")
# Hub datasets whose rows reach GRPO without a `solution` column: their columns (dataset cards), and ms-swift 4.6's
# preprocessing, which keeps `solution` only when the data has it (dataset/preprocessor/core.py RowPreprocessor:
# "compat GRPO: The solution field will be retained") and maps `answer` / `output` to the response, which GRPO
# drops. gsm8k: question, answer (ms-swift#7316: "accuracy reward needs a solution column; gsm8k has none");
# alpaca-gpt4: instruction, input, output. Ids as ms-swift resolves them (dataset/dataset/llm.py, dataset_info.json).
NO_SOLUTION_HUB = {"modelscope/gsm8k": "question, answer", "openai/gsm8k": "question, answer",
                   "AI-ModelScope/alpaca-gpt4-data-en": "instruction, input, output",
                   "AI-ModelScope/alpaca-gpt4-data-zh": "instruction, input, output"}


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


def soft_overlong_window(recipe, args, err, warn):
    # swift/rewards/orm.py SoftOverlong.__call__: min(-(len - (soft_max_length - soft_cache_length)) / soft_cache_length,
    # 0), so only completions longer than soft_max_length - soft_cache_length are penalised. A single-turn completion
    # is at most max_completion_length tokens (vLLM's max_tokens); a window starting at or past it scores 0 for every
    # completion. soft_max_length defaults to max_completion_length (_init_grpo): only an explicit one is judged, and
    # not with a multi-turn scheduler (its completion is every turn's tokens together).
    if recipe.command != "rlhf" or args.str("rlhf_type") != "grpo" or args.str("multi_turn_scheduler"):
        return
    if "soft_overlong" not in [str(f) for f in args.list("reward_funcs")]:
        return
    top, cache, budget = args.int("soft_max_length"), args.int("soft_cache_length"), args.max_completion_length
    if top is None or cache is None or not budget or cache >= top or top - cache < budget:
        return  # soft_cache_length >= soft_max_length is grpo-soft-overlong's refusal
    warn("soft-overlong-window", f"soft_overlong penalises completions longer than soft_max_length - soft_cache_length "
         f"= {top - cache} tokens, but no completion exceeds max_completion_length {budget}: the reward is 0 for every "
         "completion", "soft_max_length",
         hint=f"soft_max_length: {budget} (ms-swift's default: max_completion_length) with soft_cache_length below it")


def repetition_sign(recipe, args, err, warn):
    # swift/rewards/orm.py RepetitionPenalty.__call__: reward = (1 - distinct n-grams / n-grams) * repetition_max_penalty
    # (default -1.0): the setting is the penalty's sign as well as its size, and a positive one pays for repetition.
    if recipe.command != "rlhf" or args.str("rlhf_type") != "grpo":
        return
    if "repetition" not in [str(f) for f in args.list("reward_funcs")]:
        return
    penalty = args.float("repetition_max_penalty")
    if penalty is None or penalty <= 0:
        return
    warn("repetition-penalty-sign", f"repetition_max_penalty {penalty} is positive: the repetition reward multiplies "
         "the share of repeated n-grams by it, so the more a completion repeats itself the higher it scores",
         "repetition_max_penalty", hint=f"repetition_max_penalty: {-penalty} (negative; ms-swift's default is -1.0)")


def _may_map_to_solution(columns) -> bool:
    """Whether ms-swift's `columns` argument may rename some column to `solution`. DataArguments.__post_init__ reads
    it with utils.py json_parse_to_dict: a dict, JSON text, a path to a JSON file, or text json_repair mends (single
    quotes); only a dict or JSON text this can read is judged -- anything else may carry the mapping."""
    if columns is None:
        return False
    if isinstance(columns, str):
        try:
            columns = json.loads(columns)
        except ValueError:
            return True  # a JSON file's path or text ms-swift repairs: not judged
    return not isinstance(columns, dict) or "solution" in columns.values()


def solution_column(recipe, args, err, warn):
    if recipe.command != "rlhf" or args.str("rlhf_type") != "grpo":
        return
    needs = [f for f in (str(f) for f in args.list("reward_funcs")) if f in SOLUTION_REWARDS]
    if not needs or _may_map_to_solution(args.raw("columns")):
        return
    if args.list("external_plugins") or args.list("custom_register_path") or args.list("custom_dataset_info"):
        return  # such a file may re-register the dataset (register_dataset exist_ok, dataset_info.json) or the reward
    entries = [str(e) for e in args.list("dataset")]
    hub = [without_sample_suffix(e).split(":")[0] for e in entries if not local_dataset_path(e)]
    if not entries or len(hub) != len(entries) or any(h not in NO_SOLUTION_HUB for h in hub):
        return  # local files are checked row by row (datafit: grpo-missing-solution); unknown hub data is not judged
    cols = "; ".join(f"{h}: {NO_SOLUTION_HUB[h]}" for h in dict.fromkeys(hub))
    what = f"the {needs[0]} reward reads" if len(needs) == 1 else f"the {' and '.join(needs)} rewards read"
    err("solution-column", f"{what} each row's `solution`, which no row of the training data has ({cols}; ms-swift keeps `solution` only when the data carries it): TypeError \"missing 1 required "
        "positional argument: 'solution'\" at the first reward", "dataset",
        hint="map the answer column to it (columns: {\"answer\": \"solution\"}), use data with a solution column "
             "(AI-MO/NuminaMath-TIR), or rewards that need none (format)")


REWARD_ARG_RULES = [cosine_period, soft_overlong_window, repetition_sign, solution_column]
