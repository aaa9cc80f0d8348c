"""A recipe's data, resolved once for every verb that reads it: `plan`, `data check --recipe` and
`data stats --recipe` take the task, the local files, the validator's Options (max_length, tokenizer,
media token budgets, media root) and the counting settings (template, tokenizer, truncation, packing,
batch layout) from here, so the three never disagree about the same recipe. The data side
(swift_ext.datasets) takes these resolved values as parameters and never reads a recipe's layout itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from swift_ext.msswift.conventions import local_dataset_path

if TYPE_CHECKING:
    from swift_ext.datasets.options import Options
    from swift_ext.datasets.packing import Budget
    from swift_ext.datasets.template import TemplateSettings
# The swift_ext.datasets modules are imported where they are used: `plan` on a recipe whose data is on
# the hub (every seed recipe) never needs the validator or the token counter.

# Rewards that read `solution` (swift/rewards/orm.py: MathAccuracy.__call__(completions, solution), and CosineReward,
# which scores with MathAccuracy the same way): a row without it fails the first reward call (a missing keyword).
MATH_REWARDS = ("accuracy", "math_accuracy", "math_accuracy_async", "cosine")
# sft/pt task types that train no assistant answer: ms-swift's documented rows are the input alone, with a `label`
# (seq_cls) or `positive_messages` / `negative_messages` (embedding, rerankers), and Template._encode_truncated drops
# the labels of all four. The validator is asked for that task, so no SFT final-answer rule (E201) refuses them.
ENCODER_TASKS = ("seq_cls", "embedding", "reranker", "generative_reranker")
# rlhf types whose template runs in 'rlhf' mode (swift/pipelines/train/rlhf.py SwiftRLHF._prepare_template): each
# row is a chosen/rejected pair and Template._rlhf_encode raises 'inputs.rejected is None' without the rejected side
# (ms-swift#5712: rlhf_type rm on rows without rejected_response, every row dropped). Checked as DPO rows.
PAIR_TASKS = ("dpo", "orpo", "cpo", "simpo", "rm")
TINY = "tiny-qwen3_6-moe"
PLAN_LIMIT = 64 * 2**20  # plan counts local data up to this size itself; bigger: `data stats` fills the cache
# The media token budgets data check's length estimate uses, from the recipe's env (ms-swift reads them there).
MEDIA_BUDGETS = (("IMAGE_MAX_TOKEN_NUM", "image_tokens"), ("VIDEO_MAX_TOKEN_NUM", "video_tokens"),
                 ("FPS_MAX_FRAMES", "fps_max_frames"))


@dataclass(frozen=True)
class RecipeData:
    """What a recipe says about its data: the validator's task, the local files, the hub ids."""

    task: str
    reward_columns: tuple[str, ...]
    files: list[tuple[str, str]]  # (args key, local path)
    hub: list[str]


def validator_task(recipe) -> str:
    """The task the validator checks a recipe's rows for: the rlhf_type (dpo for every pair task, PAIR_TASKS), else
    the command, or for sft/pt the encoder task type (ENCODER_TASKS) ms-swift resolves (planner/memory_head.py
    task_type)."""
    if recipe.command == "rlhf":
        rlhf_type = str(recipe.args.get("rlhf_type") or "dpo")
        return "dpo" if rlhf_type in PAIR_TASKS else rlhf_type
    if recipe.command in ("sft", "pt"):
        from swift_ext.planner.task_kind import task_type

        bound = _bound(recipe)
        resolved = task_type(bound, recipe.command)
        if resolved in ENCODER_TASKS:
            return resolved
        if recipe.command == "pt" and (bound.str("loss_scale") or "all") != "all":
            return "sft"  # pt trains every token only under its loss_scale 'all' (PretrainArguments)
    return recipe.command


def recipe_data(recipe) -> RecipeData:
    args = recipe.args
    task = validator_task(recipe)
    funcs = args.get("reward_funcs") or []
    funcs = funcs if isinstance(funcs, list) else [funcs]
    columns = ("solution",) if any(str(f) in MATH_REWARDS for f in funcs) else ()
    files, hub = [], []
    for key in ("dataset", "val_dataset"):
        entries = args.get(key) or []
        for entry in entries if isinstance(entries, list) else [entries]:
            path = local_dataset_path(entry)
            if path:
                files.append((key, path))
            else:
                hub.append(str(entry))
    return RecipeData(task, columns, files, hub)


def check_options(recipe, *, task: str | None = None, media_root: str | None = None, deep: bool = False,
                  max_length: int | None = None, tokenizer: str | None = None) -> tuple[Options, list[str]]:
    """The validator's Options for a recipe (the keyword arguments override it, as data check's flags do),
    and notes on what could not be resolved. max_length is the bound argument the Budget uses; the
    tokenizer is the one `data stats` counts with."""
    from swift_ext.datasets.mediatokens import StatsError
    from swift_ext.datasets.options import Options

    info = recipe_data(recipe)
    notes: list[str] = []
    max_length = max_length or _bound(recipe).int("max_length")
    if max_length and tokenizer is None:
        try:
            tokenizer = settings_from_recipe(recipe)[0].tokenizer
        except StatsError as exc:
            notes.append(f"max_length {max_length}: lengths not checked ({exc})")
            max_length = None
    budgets = {}
    for env_key, option in MEDIA_BUDGETS:
        if str(recipe.env.get(env_key) or "").isdigit():
            budgets[option] = int(recipe.env[env_key])
    labels = {}
    if (task or info.task) == "seq_cls":  # the head the labels index (swift_ext/datasets/encoder.py)
        from swift_ext.planner.memory_head import num_labels

        bound = _bound(recipe)
        labels = {"num_labels": num_labels(bound, recipe.command), "problem_type": bound.str("problem_type")}
    elif (task or info.task) == "embedding" and str(recipe.env.get("INFONCE_HARD_NEGATIVES") or "").strip():
        # InfonceLoss reads int(INFONCE_HARD_NEGATIVES) and then wants a negative in every row (swift/loss/embedding.py)
        loss = [str(t) for t in _bound(recipe).list("loss_type")]
        labels = {"hard_negatives": loss[:1] == ["infonce"]}
    opts = Options(task=task or info.task, reward_columns=info.reward_columns, deep=deep,
                   kto_kl=_loss_names(recipe.args.get("loss_type")) != ["apo_zero_unpaired"],
                   media_root=media_root or recipe.env.get("ROOT_IMAGE_DIR"),  # where ms-swift looks for media
                   max_length=max_length if tokenizer else None, tokenizer=tokenizer,
                   columns=_column_mapping(recipe.args.get("columns")),
                   template_backend=_bound(recipe).str("template_backend") or "swift", **budgets, **labels)
    return opts, notes


def _column_mapping(value) -> tuple[tuple[str, str], ...]:
    """The `columns` argument as (from, to) pairs: a mapping, or the JSON text of one (DataArguments.__post_init__:
    json_parse_to_dict); anything else is json-args' finding, not the data check's."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return ()
    if not isinstance(value, dict):
        return ()
    return tuple((str(k), str(v)) for k, v in value.items() if isinstance(v, str))


def _loss_names(value) -> list[str]:
    """loss_type as ms-swift reads it: a list argument (`import` writes `--loss_type apo_zero_unpaired` as a one-item
    list, which RLHFArguments._process_loss_type unwraps), or a single name."""
    if value is None or value == "":
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _bound(recipe):
    from swift_ext.msswift import schema as msargs
    from swift_ext.msswift.bound_args import Args

    schema = msargs.schema_for(recipe.engine, recipe.command)
    if recipe.launch.scheduled:
        # No world size before make_plan sizes the launch (planner/scheduled.py): the values as stated, without the
        # coercions that depend on it (the task type and max_length read here do not).
        return Args(recipe.args, schema, env=recipe.env)
    return Args.bind(recipe, schema)


def local_model_dir(model: Any) -> str | None:
    if not isinstance(model, str):
        return None
    from swift_ext.planner.tinymodel import local_model_name, resolve_model

    if local_model_name(model) is not None:
        return resolve_model(model)
    from swift_ext.planner.shape_lookup import local_config

    config = local_config(model)
    return str(config.parent) if config is not None else None


def _tiny_model_dir() -> str | None:
    """The bundled tiny model carries the real Qwen3.5/3.6 tokenizer and processor settings."""
    from swift_ext.planner.tinymodel import local_model_path

    path = local_model_path(TINY)
    return str(path) if (path / "swift-ext-complete").is_file() else None


def counting_settings(model: Any = None, **kwargs) -> tuple[TemplateSettings, list[str]]:
    """swift_ext.datasets.template.template_settings with the model's local directory resolved (a
    swift-ext:// model, a path) and the bundled tiny model as the tokenizer of last resort."""
    from swift_ext.datasets.template import template_settings
    from swift_ext.planner.tinymodel import registered_name

    return template_settings(registered_name(model), local_model_dir(model), fallback_dir=_tiny_model_dir(),
                             **kwargs)


def settings_from_recipe(recipe, tokenizer: str | None = None, template: str | None = None):
    default_loss = "last_round" if recipe.command == "rlhf" else "default"
    return counting_settings(recipe.args.get("model"), template=template, tokenizer=tokenizer, args=recipe.args,
                             env=recipe.env, loss_scale=default_loss)


def budget_from_plan(plan) -> Budget:
    """The batch layout `data stats --recipe` counts with: the Plan's sized recipe, bound args and layout."""
    return data_budget(plan.recipe, plan.args, plan.layout)


def data_budget(recipe, args, layout) -> Budget:
    """RECIPE's batch layout for counting its data. The data-parallel size is LAYOUT's: make_plan passes the
    layout it checks and stores as Plan.layout, `data stats --recipe` takes Plan.layout, so the two never
    size the data differently (a scheduler-sized launch is sized by make_plan only: planner/scheduled.py).
    RECIPE is the sized recipe and ARGS its bound arguments (ms-swift's defaults and __post_init__ values,
    swift_ext.msswift.coercions). Megatron without a layout (the plan refused the arguments): DP 1."""
    from swift_ext.datasets.packing import Budget

    grpo = recipe.command == "rlhf" and args.str("rlhf_type") == "grpo"
    task = (args.str("rlhf_type") or "dpo") if recipe.command == "rlhf" else recipe.command
    strategy = args.str("truncation_strategy") or ("left" if grpo else "delete")
    accum = 1
    if recipe.engine == "megatron":
        dp = max(layout.dp, 1) if layout is not None else 1
        mbs = args.int("micro_batch_size") or 1
        per_step = args.int("global_batch_size") or 1
    else:
        dp = max(recipe.launch.world_size, 1)
        mbs = args.int("per_device_train_batch_size") or 1
        accum = args.int("gradient_accumulation_steps") or 1
        per_step = mbs * accum * dp
    packing = args.bool("packing")
    # Megatron: num_train_epochs, when set, replaces train_iters (MegatronArguments.init_iters).
    epochs = args.float("num_train_epochs")
    max_steps = args.int("train_iters" if recipe.engine == "megatron" else "max_steps")
    if recipe.engine == "megatron" and epochs is not None:
        max_steps = None
    return Budget(
        task=task, max_length=args.int("max_length"),
        max_completion_length=(args.int("max_completion_length") if grpo else None),
        truncation_strategy=strategy, packing=packing,
        packing_length=args.int("packing_length") if packing else None,
        padding_free=args.bool("padding_free"), micro_batch_size=mbs, samples_per_step=per_step,
        data_parallel=dp, epochs=epochs if epochs is not None else 1.0,
        num_generations=(args.int("num_generations") or 1) if grpo else 1,
        max_steps=max_steps if max_steps and max_steps > 0 else None, engine=recipe.engine,
        gradient_accumulation_steps=accum, drop_last=args.bool("dataloader_drop_last"))

PLAN_LIMIT = 64 * 2**20  # plan counts local data up to this size itself; bigger: `data stats` fills the cache


def plan_summary(recipe, args, layout) -> tuple[dict | None, list[str]]:
    """For `plan`: the summary of a recipe's training data when every `dataset` entry is a local file
    that is small enough or already counted (cache). Never raises; says why when there is none. Does not
    import ms-swift (rows that need it stay uncounted, and such a partial count is not cached); a
    complete count is cached like ms-swift's argument schema is, so the next plan reads it."""
    info = recipe_data(recipe)
    files = [path for key, path in info.files if key == "dataset"]
    if not files or any(entry for entry in info.hub if entry in _entries(recipe.args.get("dataset"))):
        return None, []
    if not all(os.path.isfile(f) for f in files):
        return None, []
    from swift_ext.datasets.lengthcache import cache_key, cache_path
    from swift_ext.datasets.lengths import measure
    from swift_ext.datasets.mediatokens import StatsError
    from swift_ext.datasets.packing import summarize
    from swift_ext.datasets.stats import one_line
    from swift_ext.planner.memory_logits import answer_limit, longest_answer

    try:
        settings, _ = settings_from_recipe(recipe)
        if sum(os.path.getsize(f) for f in files) > PLAN_LIMIT and not all(
                cache_path(cache_key(f, settings)).is_file() for f in files):
            return None, [f"data: over {PLAN_LIMIT >> 20} MiB and not counted yet; run `swift-ext data stats --recipe "
                          f"{recipe.source}` once and plan will size memory from your data"]
        lengths = measure(files, settings, allow_msswift=False)
        summary = summarize(lengths, data_budget(recipe, args, layout))
        # for the floor under the loss (memory_logits.py): the longest final answer of a row trained whole
        summary["longest_answer"] = longest_answer(lengths, answer_limit(args))
    except (StatsError, OSError, ValueError) as exc:
        return None, [f"data: token lengths not counted ({exc})"]
    return summary, ["data: " + one_line(summary)]


def _entries(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value] if value else [])]
