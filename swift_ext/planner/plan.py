"""Recipe -> Plan: every check we can make before a GPU is touched. Pure: no torch, no ms-swift import."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from swift_ext.msswift import schema as msargs
from swift_ext.msswift.bound_args import Args
from swift_ext.msswift.conventions import local_dataset_path
from swift_ext.msswift.option_names import resolve_recipe_names
from swift_ext.spec.findings import Finding, UserError, shortened
from swift_ext.planner.launch import Launch, build_launch
from swift_ext.planner.arg_checks import check_args
from swift_ext.planner.launch_rules import launch_problems
from swift_ext.planner.tinymodel import unbuilt_config
from swift_ext.planner.effective import effective_args, overridden_by_msswift, train_iters_replaced
from swift_ext.planner.refusals import generation_problems, missing_model, rlhf_type_default
from swift_ext.spec.recipe import Recipe
from swift_ext.spec.secrets import secret_arg_problems, secret_env_problems, shell_text_problems
from swift_ext.spec.support import Versions, recipe_features, resolve_versions, unknown_notes
from swift_ext.spec.yamlio import short_name

if TYPE_CHECKING:
    from swift_ext.planner.layout import Layout
    from swift_ext.planner.memory import Estimate
    from swift_ext.planner.model_shape import ModelShape


@dataclass(frozen=True)
class Plan:
    """Everything `plan` resolved about a recipe; `--search`, `--json`, `run` and `submit` read it
    instead of working it out again."""

    recipe: Recipe
    schema: msargs.ArgSchema
    args: Args  # the recipe's args bound to ms-swift's defaults
    launch: Launch  # the exact process: argv and env
    errors: list[Finding]
    warnings: list[Finding]
    notes: list[str] = field(default_factory=list)
    shape: ModelShape | None = None  # .origin/.source say where it came from
    layout: Layout | None = None
    memory: Estimate | None = None
    # {"assumed", "source", "oracle": {"version", "accepts", "findings"} or None}: Megatron recipes only
    megatron_core: dict | None = None
    # name -> {"value", "source", ...}: every argument the run uses and where it came from (planner.effective)
    effective: dict = field(default_factory=dict)
    # steps per epoch and in all, counted as the engine counts them, when the data is local (datasets.stats)
    epoch: dict | None = None
    # the package versions the version-gated rules judged against (spec.support.Versions)
    versions: Versions | None = None

    @property
    def ok(self) -> bool:
        fits = self.memory is None or self.memory.verdict in (None, "fits", "tight", "worst_case_does_not_fit")
        return not self.errors and fits

    @property
    def model_source(self) -> dict | None:
        if self.shape is None:
            return None
        return {"kind": self.shape.origin, "path": self.shape.source, "model": self.shape.name}


@dataclass
class _Found:
    """What the Megatron checks resolved, gathered while they run."""

    shape: ModelShape | None = None
    layout: Layout | None = None
    memory: Estimate | None = None
    megatron_core: dict | None = None
    versions: Versions | None = None


def make_plan(recipe: Recipe, model_config: str | None = None, oracle: bool | None = None,
              target_versions: dict[str, str] | None = None, data: bool = True) -> Plan:
    """`data` False: the recipe's local data is neither validated nor counted (`data stats --recipe` counts
    it itself, with the Plan's layout: planner/datafit.py).
    `oracle`: also ask megatron-core itself (swift_ext.planner.oracle); None follows SWIFT_EXT_ORACLE, default off.
    `target_versions`: package -> version the run will have (`plan --target-versions`; spec.support)."""
    from swift_ext.msswift.rules import check_msswift

    errors: list[Finding] = []
    warnings: list[Finding] = []
    # ms-swift's parser reads `lora_r` as --lora_rank: every rule below, and the launched command, use the full name.
    recipe, notes = resolve_recipe_names(recipe, msargs.schema_for(recipe.engine, recipe.command))
    if recipe.launch.scheduled:
        # Sizes the cluster's scheduler decides: list the world sizes the layout works at, check the smallest.
        from swift_ext.planner.scheduled import resolve

        where = recipe.where(f"launch.{recipe.launch.scheduled[0]}")
        recipe, more, refused = resolve(recipe, _quiet_shape(recipe, model_config))
        notes += more
        if refused:
            errors.append(Finding(refused, code="launch", hint="change the parallel sizes, or give the sizes with "
                                  "--nodes/--gpus-per-node", **where))
    schema = msargs.schema_for(recipe.engine, recipe.command)
    args = Args.bind(recipe, schema)
    notes.append(f"arguments checked against {schema.dataclass_name} of {schema.origin}")
    arg_problems = check_args(recipe, schema)
    errors += [p for p in arg_problems if p.severity == "error"]
    warnings += [p for p in arg_problems if p.severity != "error"]
    errors += missing_model(recipe, args)
    warnings += rlhf_type_default(recipe, args)
    errors += secret_env_problems(recipe)
    errors += secret_arg_problems(recipe)
    warnings += shell_text_problems(recipe)
    launch_errors, launch_warnings = launch_problems(recipe)  # ranks vs devices, torchrun's rendezvous variables
    errors += launch_errors
    warnings += launch_warnings
    bad_values = any(p.code in ("argument-type", "argument-range") for p in arg_problems)
    layout = None  # Megatron: what Plan.layout holds; the data's batch layout takes its DP from it (one source)
    if recipe.engine == "megatron" and not bad_values and recipe.launch.gpus_per_node >= 1:
        from swift_ext.planner.layout import layout_of

        layout = layout_of(args, recipe.launch.world_size, recipe.launch.gpus_per_node)
    data_summary = None
    if data:
        # Only a warning: a recipe is often planned on a laptop for data that lives on the cluster.
        warnings += check_local_datasets(recipe)
        found_data = validate_datasets(recipe, notes, args)
        errors += [f for f in found_data if f.severity == "error"]
        warnings += [f for f in found_data if f.severity != "error"]
        data_summary = _data_stats(recipe, args, layout, notes)
    data_tokens = None
    if data_summary:
        from swift_ext.datasets.packing import largest_micro_batch

        data_tokens = largest_micro_batch(data_summary)
    found = _Found(versions=resolve_versions(recipe.env, target_versions))
    if not bad_values:
        # ms-swift's own __post_init__ checks that need no GPU, both engines (swift_ext.msswift.rules).
        ms_errors, ms_warnings = check_msswift(recipe, args)
        errors += ms_errors
        warnings += ms_warnings
        errors += generation_problems(recipe, args)
        eval_found = _eval_problems(recipe, args)
        errors += [f for f in eval_found if f.severity == "error"]
        warnings += [f for f in eval_found if f.severity != "error"]
    if bad_values:
        # The layout, memory and GRPO rules compute with these values (a size of 0 divides by zero).
        notes.append("layout, memory and batch rules not checked until the argument errors are fixed")
    elif recipe.engine == "megatron":
        _megatron_checks(recipe, args, model_config, found, errors, warnings, notes, layout, oracle, data_tokens)
    else:
        notes.append("layout rules and the memory estimate cover the Megatron backend; skipped for engine: swift")
        found.shape, broken = _quiet_shape(recipe, model_config, keep_error=True)
        shared_errors, shared_warnings = _engine_rules(recipe, args, found.shape, broken)
        errors += shared_errors
        warnings += shared_warnings
        errors += _swift_memory_floor(recipe, args, found.shape, data_summary)
        if recipe.command == "rlhf":
            reward_errors, reward_warnings = _swift_engine_rewards(recipe, args)
            errors += reward_errors
            warnings += reward_warnings
    if not bad_values:
        from swift_ext.planner.eval_rules import eval_vllm_lora_model, eval_vllm_memory

        # these need the shape: after both engines' checks
        errors += eval_vllm_memory(recipe, args, found.shape) + eval_vllm_lora_model(recipe, args, found.shape)
    if found.shape is not None and not bad_values:
        from swift_ext.planner.warn_rules import lora_notes

        notes += lora_notes(recipe, args, found.shape)
    warnings += overridden_by_msswift(recipe, args, errors + warnings) + train_iters_replaced(recipe, args)
    # The version gates of the features the recipe uses that no declared or installed version could decide.
    notes += unknown_notes(recipe_features(recipe.args, getattr(found.shape, "model_type", None)), found.versions)
    return Plan(recipe=recipe, schema=schema, args=args, launch=build_launch(recipe), errors=errors,
                warnings=warnings, notes=notes, shape=found.shape, layout=found.layout, memory=found.memory,
                megatron_core=found.megatron_core, versions=found.versions, effective=effective_args(recipe, args, data_summary["epoch"] if data_summary else None),
                epoch=data_summary["epoch"] if data_summary else None)


def _data_stats(recipe, args, layout, notes: list[str]) -> dict | None:
    """One line about the recipe's local training data; its summary (datasets.packing.summarize) or None."""
    from swift_ext.planner.datafit import plan_summary

    summary, lines = plan_summary(recipe, args, layout)
    notes += lines
    return summary


def _megatron_checks(recipe, args, model_config, found, errors, warnings, notes, layout, oracle=None,
                     data_tokens=None) -> None:
    from swift_ext.planner.layout import check_layout
    from swift_ext.planner.memory import (estimate, in_flight_micro_batches, largest_fitting_tokens,
                                          longest_fits_among_short, longest_sequence, variable_length_batches)
    from swift_ext.planner.model_shape import ShapeNotFound

    if recipe.launch.gpus_per_node < 1:
        errors.append(Finding("engine megatron needs GPUs: launch.gpus_per_node must be >= 1", code="launch",
                              **recipe.where("launch.gpus_per_node")))
        return
    model = recipe.args.get("model")
    shape = None
    try:
        shape = recipe_shape(model, model_config)
    except ShapeNotFound:
        # Degrade, don't block: the rules that need the shape and the memory estimate are skipped, once.
        named = short_name(str(model)) if model else "the model"  # a 100,000-character name is no message
        warnings.append(Finding(f"layout and memory not checked: no config.json for {named} — pass "
                                "--model-config or download the model", code="model-shape",
                                **recipe.where("args.model")))
    except UserError as exc:
        for p in exc.problems:
            p.code = p.code or "model-shape"
        errors.extend(exc.problems)
        return
    if shape is not None:
        found.shape = shape
        notes.append(f"model shape: {shape.name} ({shape.total_params() / 1e9:.1f}B parameters) from "
                     f"{shape.origin}: {shape.source}")
    rule_errors, rule_warnings = check_layout(recipe, args, shape, found.versions)
    errors += rule_errors
    warnings += rule_warnings
    lay = found.layout = layout
    found.megatron_core = _oracle_checks(recipe, args, shape, lay, errors, warnings, notes, oracle, found.versions)
    capacity = recipe.launch.memory_gib
    if capacity is None:
        warnings.append(Finding("launch.gpu / launch.gpu_memory_gib not set: no memory verdict (the estimate has "
                                "nothing to compare against)", code="launch", **recipe.where("launch")))
    memory = None
    if shape is not None:
        memory = found.memory = estimate(shape, args, lay, capacity, recipe.command, data_tokens=data_tokens)
        notes += memory.notes
        from swift_ext.planner.memory_teacher import teacher_memory_findings  # the teacher's share: not in the estimate

        errors += teacher_memory_findings(recipe, args, shape, lay, warnings)
    if recipe.launch.nodes > 1:
        # A multi-node job will be preempted sooner or later; without these it restarts from scratch.
        if args.bool("no_save_optim"):
            warnings.append(Finding("multi-node run with no_save_optim: true cannot resume after preemption "
                                    "(no optimizer state in checkpoints)", code="resume", **recipe.where("args.no_save_optim")))
        if args.bool("add_version"):
            warnings.append(Finding("multi-node run with a versioned output dir (add_version: true): a requeued job "
                                    "starts a new vN-* dir instead of resuming", code="resume",
                                    hint="set add_version: false", file=recipe.source))
    if memory is None:
        return
    if memory.verdict == "does_not_fit" and memory.basis == "worst case" and variable_length_batches(args, recipe.command):
        # Refused only if one sequence at its longest per micro-batch does not fit either: ms-swift publishes
        # GRPO and padding-free runs whose worst case (every sample of a micro-batch at its longest) does not.
        # Under a pipeline, only if one micro-batch at its longest does not fit beside shorter ones in flight.
        fitting = largest_fitting_tokens(shape, args, lay, capacity, recipe.command)
        # Unpacked micro-batches are as long as their samples, and this data's longest sample was not measured here
        # (hub or remote data: the basis is the worst case). Where the data, not the policy, sets the lengths, a
        # longest sample that would not fit is said, not refused: Baseten's Qwen3.6-35B-A3B LoRA at max_length
        # 131072 trained LongAlign-10k (8K-64K-token samples) on 8 H200s.
        unmeasured = not (recipe.command == "rlhf" and args.str("rlhf_type") in GENERATING_RLHF)
        if fitting and (fitting >= longest_sequence(args, recipe.command) or unmeasured
                        or lay.pp > 1 and longest_fits_among_short(shape, args, lay, capacity, recipe.command)):
            from dataclasses import replace

            memory = found.memory = replace(memory, fits_up_to_tokens=fitting,
                                            in_flight=in_flight_micro_batches(args, lay))
            if fitting < longest_sequence(args, recipe.command) and unmeasured:
                warnings.append(Finding(memory.verdict_message() + "; the data's longest sample decides (not measured "
                                        "here: plan a local copy of the data to judge it)", code="memory",
                                        **recipe.where("args.max_length"),
                                        hint=f"max_length {fitting} or less, or a layout that fits "
                                             "(`swift-ext plan --search`)"))
                return
            warnings.append(Finding(memory.verdict_message(), code="memory", file=recipe.source,
                                    hint="lower micro_batch_size or max_length/max_completion_length, or "
                                         "`swift-ext plan --search`"))
            return
    if memory.verdict == "does_not_fit":
        # Named on the value whose single change fits (the plan's own rules and estimate judge each change), else
        # on the first lever for the largest part: the line a user edits, not just the whole recipe.
        from swift_ext.planner.memory_levers import fitting_levers, primary_flag

        levers = fitting_levers(recipe, args, shape, capacity, memory.components, found.versions, data_tokens)
        flag = levers[0].flag if levers else primary_flag(args, shape, memory.components)
        fixes = "; passes with " + ", or ".join(lever.text() for lever in levers) \
            if levers else f"; no single change fits, {flag} first"
        message = f"{memory.verdict_message()} ({_largest(memory.components)}){fixes}"
        errors.append(Finding(message, code="memory", **recipe.where(f"args.{flag}"),
                              hint="try `swift-ext plan --search` for a layout that fits"))
    elif memory.verdict == "tight":
        # Over the card but within the band: named on the first single change that brings the estimate under the
        # card (memory_levers.easing_levers); most real out-of-memory launches plan here.
        from swift_ext.planner.memory_levers import easing_levers

        levers = easing_levers(recipe, args, shape, memory, found.versions, data_tokens)
        where = recipe.where(f"args.{levers[0].flag}") if levers else {"file": recipe.source}
        eases = "; the estimate is under the card with " + ", or ".join(lever.text() for lever in levers) \
            if levers else ""
        warnings.append(Finding(memory.verdict_message() + eases, code="memory", **where))


# RLHF types whose trained sequences the policy writes (up to max_completion_length, often reached), not the data.
GENERATING_RLHF = ("grpo", "gkd", "ppo")


def _oracle_checks(recipe, args, shape, lay, errors, warnings, notes, wanted, versions=None) -> dict:
    """megatron-core's own verdict (swift_ext.planner.oracle), when asked; never fatal to the plan itself.
    Returns what Plan.megatron_core holds."""
    from swift_ext.planner import oracle

    versions = versions or resolve_versions(recipe.env)
    version, source = versions.versions["megatron-core"], versions.sources["megatron-core"]
    summary: dict = {"assumed": version, "source": source, "oracle": None}
    notes.append(f"megatron-core version assumed by the layout rules: {version} ({source})")
    if not oracle.wanted(wanted, default=False):
        notes.append("megatron-core oracle not run (`plan --oracle` or SWIFT_EXT_ORACLE=1; it imports torch)")
        return summary
    if shape is None:
        notes.append("megatron-core oracle not run: it needs the model's shape")
        return summary
    try:
        verdict = oracle.judge(shape, args, lay)
    except Exception as exc:  # noqa: BLE001 -- the oracle is a second opinion: failing to get one is a note
        notes.append(f"megatron-core oracle unavailable: {type(exc).__name__}: {exc}")
        return summary
    summary["oracle"] = {"version": verdict.version, "accepts": verdict.accepts,
                         "findings": [{"field": f.path, "message": f.message, "source": f.source,
                                       "hand_copied": oracle.is_hand_copied(f)}
                                      for f in verdict.findings]}
    # The installed megatron-core judges; when the recipe targets another version its refusals are warnings.
    same = oracle.version_tuple(verdict.version)[:2] == oracle.version_tuple(version)[:2]
    if not same:
        notes.append(f"megatron-core oracle is the installed {verdict.version}, the rules assumed {version}")
    into = errors if same else warnings
    flagged = {p.path for p in errors}
    for finding in verdict.findings:
        if finding.path in flagged:
            continue  # swift-ext's own rule already points at this flag, with a hint
        where = recipe.where(finding.path)
        where.pop("path", None)
        into.append(Finding(f"megatron-core {verdict.version} refuses this: {finding.message}", code="megatron-core",
                            hint=f"raised by {finding.source}" + ("" if same else f"; the recipe targets {version}"),
                            path=finding.path, **where))
    notes.append(f"megatron-core {verdict.version} oracle: {'accepts' if verdict.accepts else 'refuses'} the layout"
                 + (f" ({'; '.join(verdict.notes)})" if verdict.notes else ""))
    return summary


def recipe_shape(value, model_config):
    """resolve_shape for the recipe's `args.model`; a swift-ext tiny model not built yet is planned from the
    config its build will write (tinymodel.unbuilt_config), so planning never needs the build."""
    from swift_ext.planner.model_shape import from_config
    from swift_ext.planner.shape_lookup import resolve_shape
    from swift_ext.planner.tinymodel import resolve_model

    unbuilt = unbuilt_config(value)
    if unbuilt is not None and model_config is None:
        return from_config(unbuilt, name=resolve_model(value), source="swift-ext tiny model (built by its first run)")
    return resolve_shape(resolve_model(value), model_config)


def _quiet_shape(recipe, model_config, keep_error: bool = False):
    """The model's shape for the engine-swift checks, or None: that engine's plan never needed it, so a
    model without a config.json here is not reported. With keep_error: (shape or None, the problems of a
    config.json that was found but is unusable), which the head checks report when they need the heads."""
    from swift_ext.planner.model_shape import ShapeNotFound

    try:
        shape = recipe_shape(recipe.args.get("model"), model_config)
    except ShapeNotFound:
        shape, problems = None, []
    except UserError as exc:
        shape, problems = None, exc.problems
    else:
        problems = []
    return (shape, problems) if keep_error else shape


def _engine_rules(recipe, args, shape, broken=()):
    from swift_ext.planner.layout import check_engine_rules

    return check_engine_rules(recipe, args, shape, broken)


def _swift_memory_floor(recipe, args, shape, data_summary=None) -> list[Finding]:
    from swift_ext.planner.memory_logits import swift_logits_floor
    from swift_ext.planner.memory_swift import swift_memory_floor

    found: list[Finding] = []

    def add(rule, message, key=None, hint=None):
        found.append(Finding(message, code=rule, hint=hint, **recipe.where(f"args.{key}")))

    swift_memory_floor(recipe, args, shape, add)
    if not found:  # one memory refusal is enough: the loss's floor is the weights plus the logits
        swift_logits_floor(recipe, args, shape, data_summary, add)
    return found


def _eval_problems(recipe, args) -> list[Finding]:
    from swift_ext.planner.eval_rules import eval_metric_problems, eval_vllm_problems

    return eval_metric_problems(recipe, args) + eval_vllm_problems(recipe, args)


def _swift_engine_rewards(recipe, args) -> tuple[list[Finding], list[Finding]]:
    from swift_ext.planner.grpo_rules import reward_problems

    errors: list[Finding] = []
    warnings: list[Finding] = []

    def adder(into):
        def add(rule, message, key=None, hint=None):
            where = recipe.where(f"args.{key}") if key else {"file": recipe.source}
            into.append(Finding(message, code=rule, hint=hint, **where))
        return add

    if args.str("rlhf_type") == "grpo":
        reward_problems(args, adder(errors), recipe.engine, adder(warnings))
    return errors, warnings


def _largest(components: dict) -> str:
    top = sorted(components.items(), key=lambda kv: -kv[1])[:2]
    return ", ".join(f"{k} {v:.1f} GiB" for k, v in top)


def check_local_datasets(recipe: Recipe) -> list[Finding]:
    """A local dataset that is not there makes ms-swift try the hub and fail minutes later."""
    import os

    problems = []
    for key in ("dataset", "val_dataset", "cached_dataset", "cached_val_dataset"):
        entries = recipe.args.get(key) or []
        for entry in entries if isinstance(entries, list) else [entries]:
            path = local_dataset_path(entry)
            if path and not os.path.exists(os.path.expanduser(path)):
                problems.append(Finding(f"local dataset {path!r} not found here (relative paths are read from "
                                        f"{os.getcwd()})", code="dataset", hint="run from the directory the "
                                        "recipe's paths are relative to, or use an absolute path",
                                        **recipe.where(f"args.{key}")))
    return problems


DATA_CHECK_LIMIT = 256 * 2**20  # bigger datasets: `swift-ext data check --jobs N` on their own
# data warnings plan also gives: a whole-file finding about rows the run loses (KTO rows sharing an answer). Per-row
# warnings (duplicates, long rows) stay with `data check`.
PLAN_DATA_WARNINGS = frozenset({"W403"})


def validate_datasets(recipe: Recipe, notes: list[str], args: Args | None = None) -> list[Finding]:
    """Run the dataset validator over the recipe's local datasets; hub ids are noted and skipped. With `args`,
    the rows' system turns are judged against the template ms-swift builds (msswift/template_system.py)."""
    import os

    from swift_ext.planner.datafit import ENCODER_TASKS, check_options, recipe_data

    info = recipe_data(recipe)
    if info.task not in ("sft", "pt", "grpo", "dpo", "kto", *ENCODER_TASKS):
        return []
    opts, more = check_options(recipe)  # the Options `data check --recipe` uses
    notes += more
    notes += [f"{shortened(str(entry))}: hub dataset, not validated here" for entry in info.hub]
    problems: list[Finding] = []
    for key, path in info.files:
        if not os.path.isfile(path):
            continue  # reported by check_local_datasets
        if os.path.getsize(path) > DATA_CHECK_LIMIT:
            notes.append(f"{path}: over {DATA_CHECK_LIMIT >> 20} MiB; run `swift-ext data check {path} --jobs N`")
            continue
        from swift_ext.datasets import check as d  # the validator: only for local files

        report = d.check_file(path, opts)
        for code, n in sorted(report.counts().items()):
            severity = d.CODES[code][0]
            if severity != "error" and code not in PLAN_DATA_WARNINGS:
                continue
            first = next(i for i in report.issues if i.code == code)
            what = first.render() if first.line == 0 else f"{n} row(s) with {code} {d.CODES[code][1]}, first: {first.render()}"
            problems.append(Finding(what, code="dataset", severity=severity,
                                    hint=f"swift-ext data check {path} --task {info.task}",
                                    **recipe.where(f"args.{key}")))
        if args is not None and report.roles.get("system"):
            from swift_ext.msswift.template_system import system_rows_finding

            problems += system_rows_finding(recipe, args, key, path, report.roles["system"], report.rows)
        if report.layout == "not-checked":  # e.g. parquet/CSV: the validator reads JSON only
            notes += report.notes or [f"{path}: not checked"]  # the note says so and why
        else:
            notes.append(f"{path}: {report.valid_rows}/{report.rows} rows valid for {info.task}")
    return problems
