"""The recipe's `args` against ms-swift's argument dataclass: every name one the parser sets (or, with
ignore_args_error, one it drops), every value one it parses, and sizes that can never run. Called by
planner/plan.py make_plan (and by `import`, to report a script's flags)."""

from __future__ import annotations

import json
import math

from swift_ext.msswift import schema as msargs
from swift_ext.msswift.conventions import is_true
from swift_ext.msswift.option_names import read_name
from swift_ext.planner.tinymodel import local_model_name
from swift_ext.spec.findings import Finding, shortened, shown
from swift_ext.spec.recipe import MAX_GPUS_PER_NODE, MAX_NODES, Recipe


def check_args(recipe: Recipe, schema: msargs.ArgSchema) -> list[Finding]:
    """Every key under `args` must be a field of ms-swift's dataclass, with a value it can parse. With
    ignore_args_error on, a name the parser does not know is a warning: SwiftPipeline._parse_args logs
    `remaining_argv` instead of raising, and the run goes on without the value (ms-swift's default stands)."""
    problems = []
    cmd = f"{recipe.engine} {recipe.command}"
    unknown = 0
    ignored = is_true(recipe.args.get("ignore_args_error"))  # as HfArgumentParser's string_to_bool reads it
    for name, value in recipe.args.items():
        where = recipe.where(f"args.{name}")
        spec = schema.fields.get(name)
        if spec is None:
            reading = read_name(schema, name)  # an abbreviation or `-` spelling ms-swift's parser accepts
            refused = reading.problem(cmd)
            if refused or reading.field is None:
                message, hint = refused or (
                    f"`{cmd}` has no argument `{shortened(name)}` ({schema.dataclass_name})", None)
                if reading.field is None:  # a 3.x name (`save`) may also be an ambiguous prefix: say what it became
                    unknown += 1  # past the first few, no "did you mean" search: 20,000 of them took 18 s
                    hint = schema.suggest(name, near=unknown <= NEAR_NAME_SEARCHES) or hint
                if ignored and not refused:
                    # an ambiguous prefix or --help stops argparse itself, before ignore_args_error is read
                    problems.append(Finding(f"{message}: with ignore_args_error ms-swift only logs it "
                                            "(remaining_argv) and the run goes on without this value, on ms-swift's "
                                            "default", hint=hint, code="unknown-argument", severity="warning",
                                            **where))
                    continue
                problems.append(Finding(message, hint=hint, code="unknown-argument", **where))
                continue
            spec = schema.fields[reading.field]
        if isinstance(value, list) and not value:
            problems.append(Finding("empty list: ms-swift needs at least one value", code="argument-type",
                                    hint="remove the key, or set it to null to use ms-swift's default", **where))
            continue
        if local_model_name(value) is not None:  # swift-ext://NAME: built on first use
            continue
        # An empty model is looked up as a hub id '' and fails; an empty output_dir is not refused by ms-swift
        # (to_abspath('') is the working directory: swift/utils/utils.py), so plan does not refuse it either.
        if isinstance(value, str) and not value.strip() and name == "model":
            problems.append(Finding("empty: ms-swift needs a value here", code="argument-type",
                                    hint="a model directory or hub id", **where))
            continue
        expected = msargs.check_value(spec.type, value)
        if expected:
            problems.append(Finding(f"expected {expected}", code="argument-type", hint=_list_hint(recipe, name, value),
                                    **where))
        elif name in ("dataset", "val_dataset") and _bad_sample_suffix(value):
            problems.append(Finding(f"{_bad_sample_suffix(value)!r}: the text after '#' is not a sample count",
                                    hint="ms-swift reads DATASET#N with N a number and stops with a ValueError "
                                    "otherwise", code="argument-type", **where))
        elif _must_be_positive(name, spec) and name not in _zero_means_off(recipe.engine) \
                and _as_number(value) is not None and _as_number(value) < 1:
            problems.append(Finding(f"expected a positive integer, got {shown(value)}", code="argument-range", **where))
        elif name.endswith(_PARALLEL_SIZES) and _as_number(value) is not None and _as_number(value) > MAX_WORLD:
            # no world a recipe can name divides it; the layout and memory rules would walk or divide by it
            problems.append(Finding(f"expected at most {MAX_WORLD:,} (the most GPUs a recipe can name: {MAX_NODES:,} "
                                    f"nodes x {MAX_GPUS_PER_NODE}), got {shown(value)}", code="argument-range",
                                    **where))
        elif name in _zero_means_off(recipe.engine) and _as_number(value) is not None and _as_number(value) < 0:
            problems.append(Finding(f"expected 0 or a positive integer, got {shown(value)}", code="argument-range",
                                    **where))
    return problems


# Unknown argument names that get the closest-field search; the rest get the renamed/removed tables only.
NEAR_NAME_SEARCHES = 20


def _list_hint(recipe: Recipe, name: str, value) -> str | None:
    """For a list where ms-swift's command line takes one string (cp_comm_type): the way a list does reach the model
    config -- megatron_extra_kwargs, which ms-swift parses as JSON and get_mcore_model_config applies as written."""
    if not isinstance(value, list) or recipe.engine != "megatron":
        return None
    from swift_ext.msswift.model_config_fields import model_config_fields

    found = model_config_fields()
    if found is None or name not in found[0]:
        return None
    if not value or not isinstance(value[0], str):  # no single value to offer: only the per-layer form
        return f"one per layer: drop args.{name} and set megatron_extra_kwargs: {{{name}: [...]}}"
    return (f"one value for every layer: `{name}: {value[0]}`; one per layer: drop args.{name} and set "
            f"megatron_extra_kwargs: {{{name}: {json.dumps(value)}}}")


def _bad_sample_suffix(entries) -> str | None:
    """The first `DATASET#N` entry whose N ms-swift's DatasetSyntax.parse cannot read as an integer."""
    from swift_ext.msswift.conventions import parse_dataset_entry

    for entry in entries if isinstance(entries, list) else [entries]:
        if parse_dataset_entry(entry).bad_sample:
            return str(entry)
    return None


# Counts where 0 is a valid "none": megatron-core 0.16.1 reads mtp_num_layers 0 as no MTP block
# (models/gpt/gpt_layer_specs.py get_gpt_mtp_block_spec, transformer/multi_token_prediction.py
# get_mtp_num_layers_to_build: `config.mtp_num_layers if config.mtp_num_layers else 0`), and ms-swift 4.6 tests
# it by truthiness (swift/megatron/init.py, swift/megatron/model/utils.py). ms-swift publishes
# `--mtp_num_layers 0` to switch a checkpoint's MTP head off (modelscope/ms-swift
# examples/models/glm5_3/megatron_sft.sh). Only a negative count is refused.
_ZERO_MEANS_OFF = frozenset({"mtp_num_layers"})
# Engine megatron also reads save_steps / eval_steps 0 as "never" (swift/megatron/callbacks/default_flow.py:
# `if args.save_steps and state.iteration % args.save_steps == 0`, the same for eval_steps): a run that saves only
# at the end, or never evaluates. (logging_steps 0 is no such value there: `iteration % 0` fails at iteration 2.)
_MEGATRON_ZERO_MEANS_OFF = frozenset({"save_steps", "eval_steps"})
_PARALLEL_SIZES = ("_parallel_size", "_tp_size", "_pp_size", "_dp_size", "_ep_size")
MAX_WORLD = MAX_NODES * MAX_GPUS_PER_NODE


def _zero_means_off(engine: str) -> frozenset[str]:
    return _ZERO_MEANS_OFF | _MEGATRON_ZERO_MEANS_OFF if engine == "megatron" else _ZERO_MEANS_OFF


def _must_be_positive(name: str, spec: msargs.ArgField) -> bool:
    # Sizes and counts where 0 or a negative number is never meaningful (parallel sizes, batch sizes,
    # generations, lengths, LoRA rank). ms-swift would fail on them only inside the ranks.
    if spec.type["kind"] != "int":
        return False
    return name.endswith(("_parallel_size", "batch_size", "_length", "_tp_size", "_pp_size", "_dp_size",
                          "_ep_size")) or name in {
        "num_generations", "num_generations_eval", "lora_rank", "lora_alpha", "steps_per_generation",
        "gradient_accumulation_steps", "max_length", "save_steps", "eval_steps", "logging_steps",
        "num_iterations", "recompute_num_layers", "num_beams", "dataset_num_proc", "packing_num_proc",
        "vllm_max_num_seqs", "microbatch_group_size_per_vp_stage", "num_train_epochs", "moe_router_topk",
        "num_mini_batches", "muon_num_ns_steps", "group_size",
    }


def _as_number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer past float's range (a 400-digit size): its sign is all a bound needs
        return math.inf if value > 0 else -math.inf
    except (TypeError, ValueError):
        return None
