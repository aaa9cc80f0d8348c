"""Recipe -> Plan: every check we can make before a GPU is touched. Pure: no torch, no ms-swift import."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from swift_ext import msargs
from swift_ext.bound_args import Args
from swift_ext.data import local_dataset_path
from swift_ext.errors import Problem, UserError
from swift_ext.launch import LOCAL_MODEL_SCHEME, Launch, build_launch
from swift_ext.recipe import Recipe

if TYPE_CHECKING:
    from swift_ext.layout import Layout
    from swift_ext.memory import Estimate
    from swift_ext.model_shape import ModelShape


@dataclass(frozen=True)
class Plan:
    """Everything `plan` resolved about a recipe; `--search`, `--json`, `run` and `submit` read it
    instead of working it out again."""

    recipe: Recipe
    schema: msargs.ArgSchema
    args: Args  # the recipe's args bound to ms-swift's defaults
    launch: Launch  # the exact process: argv and env
    errors: list[Problem]
    warnings: list[Problem]
    notes: list[str] = field(default_factory=list)
    shape: ModelShape | None = None  # .origin/.source say where it came from
    layout: Layout | None = None
    memory: Estimate | None = None

    @property
    def ok(self) -> bool:
        fits = self.memory is None or self.memory.verdict in (None, "fits", "tight")
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


def make_plan(recipe: Recipe, model_config: str | None = None) -> Plan:
    errors: list[Problem] = []
    warnings: list[Problem] = []
    notes: list[str] = []
    schema = msargs.schema_for(recipe.engine, recipe.command)
    args = Args.bind(recipe, schema)
    notes.append(f"arguments checked against {schema.dataclass_name} of {schema.origin}")
    errors += check_args(recipe, schema)
    # Only a warning: a recipe is often planned on a laptop for data that lives on the cluster.
    warnings += check_local_datasets(recipe)
    errors += validate_datasets(recipe, notes)
    found = _Found()
    if recipe.engine == "megatron":
        _megatron_checks(recipe, args, model_config, found, errors, warnings, notes)
    else:
        notes.append("layout rules and the memory estimate cover the Megatron backend; skipped for engine: swift")
        if recipe.command == "rlhf":
            errors += _swift_engine_rewards(recipe, args)
    return Plan(recipe=recipe, schema=schema, args=args, launch=build_launch(recipe), errors=errors,
                warnings=warnings, notes=notes, shape=found.shape, layout=found.layout, memory=found.memory)


def _megatron_checks(recipe, args, model_config, found, errors, warnings, notes) -> None:
    from swift_ext.layout import check_layout, layout_of
    from swift_ext.memory import estimate
    from swift_ext.model_shape import resolve_shape

    if recipe.launch.gpus_per_node < 1:
        errors.append(Problem("engine megatron needs GPUs: launch.gpus_per_node must be >= 1", rule="launch",
                              **recipe.where("launch.gpus_per_node")))
        return
    devices = recipe.env.get("CUDA_VISIBLE_DEVICES")
    if devices is not None and len([d for d in devices.split(",") if d.strip()]) != recipe.launch.gpus_per_node:
        errors.append(Problem(f"CUDA_VISIBLE_DEVICES lists {devices!r} but launch.gpus_per_node is "
                              f"{recipe.launch.gpus_per_node}", rule="launch", **recipe.where("env.CUDA_VISIBLE_DEVICES")))
    model = recipe.args.get("model")
    if isinstance(model, str) and model.startswith(LOCAL_MODEL_SCHEME):
        from swift_ext.tinymodel import local_model_path

        model = str(local_model_path(model[len(LOCAL_MODEL_SCHEME):]))
    try:
        shape = resolve_shape(model, model_config)
    except UserError as exc:
        for p in exc.problems:
            p.rule = p.rule or "model-shape"
            if p.path == "args.model":
                p.file, p.line, p.column = recipe.where("args.model").get("file"), recipe.where("args.model").get("line"), None
        errors.extend(exc.problems)
        return
    found.shape = shape
    notes.append(f"model shape: {shape.name} ({shape.total_params() / 1e9:.1f}B parameters; "
                 f"{shape.origin}: {shape.source})")
    rule_errors, rule_warnings = check_layout(recipe, args, shape)
    errors += rule_errors
    warnings += rule_warnings
    lay = found.layout = layout_of(args, recipe.launch.world_size)
    capacity = recipe.launch.memory_gib
    if capacity is None:
        warnings.append(Problem("launch.gpu / launch.gpu_memory_gib not set: the memory estimate has nothing to "
                                "compare against", rule="launch", **recipe.where("launch")))
    memory = found.memory = estimate(shape, args, lay, capacity, recipe.command)
    notes += memory.notes
    if recipe.launch.nodes > 1:
        # A multi-node job will be preempted sooner or later; without these it restarts from scratch.
        if args.bool("no_save_optim"):
            warnings.append(Problem("multi-node run with no_save_optim: true cannot resume after preemption "
                                    "(no optimizer state in checkpoints)", rule="resume", **recipe.where("args.no_save_optim")))
        if args.bool("add_version"):
            warnings.append(Problem("multi-node run with a versioned output dir (add_version: true): a requeued job "
                                    "starts a new vN-* dir instead of resuming", rule="resume",
                                    hint="set add_version: false", file=recipe.source))
    if memory.verdict == "does_not_fit":
        errors.append(Problem(
            f"estimated {memory.per_gpu_gib:.1f} GiB per GPU does not fit in {capacity:g} GiB "
            f"({_largest(memory.components)})", rule="memory", file=recipe.source,
            hint="try `swift-ext plan --search` for a layout that fits"))
    elif memory.verdict == "tight":
        warnings.append(Problem(f"estimated {memory.per_gpu_gib:.1f} GiB per GPU leaves less than 10% of "
                                f"{capacity:g} GiB free", rule="memory", file=recipe.source))


def _swift_engine_rewards(recipe, args) -> list[Problem]:
    from swift_ext.layout import reward_problems

    found: list[Problem] = []

    def err(rule, message, key=None, hint=None):
        where = recipe.where(f"args.{key}") if key else {"file": recipe.source}
        found.append(Problem(message, rule=rule, hint=hint, **where))

    if args.str("rlhf_type") == "grpo":
        reward_problems(args, err)
    return found


def _largest(components: dict) -> str:
    top = sorted(components.items(), key=lambda kv: -kv[1])[:2]
    return ", ".join(f"{k} {v:.1f} GiB" for k, v in top)


def check_args(recipe: Recipe, schema: msargs.ArgSchema) -> list[Problem]:
    """Every key under `args` must be a field of ms-swift's dataclass, with a value it can parse."""
    problems = []
    cmd = f"{recipe.engine} {recipe.command}"
    for name, value in recipe.args.items():
        where = recipe.where(f"args.{name}")
        spec = schema.fields.get(name)
        if spec is None:
            problems.append(
                Problem(f"`{cmd}` has no argument `{name}` ({schema.dataclass_name})",
                        hint=schema.suggest(name), rule="unknown-argument", **where)
            )
            continue
        if isinstance(value, list) and not value:
            problems.append(Problem("empty list: ms-swift needs at least one value", rule="argument-type",
                                    hint="remove the key, or set it to null to use ms-swift's default", **where))
            continue
        if isinstance(value, str) and value.startswith(LOCAL_MODEL_SCHEME):
            continue
        expected = msargs.check_value(spec.type, value)
        if expected:
            problems.append(Problem(f"expected {expected}", rule="argument-type", **where))
        elif _must_be_positive(name, spec) and _as_number(value) is not None and _as_number(value) < 1:
            problems.append(Problem(f"expected a positive integer, got {value!r}", rule="argument-range", **where))
    return problems


def check_local_datasets(recipe: Recipe) -> list[Problem]:
    """A local dataset that is not there makes ms-swift try the hub and fail minutes later."""
    import os

    problems = []
    for key in ("dataset", "val_dataset", "cached_dataset", "cached_val_dataset"):
        entries = recipe.args.get(key) or []
        for entry in entries if isinstance(entries, list) else [entries]:
            path = local_dataset_path(entry)
            if path and not os.path.exists(os.path.expanduser(path)):
                problems.append(Problem(f"local dataset {path!r} not found here (relative paths are read from "
                                        f"{os.getcwd()})", rule="dataset", hint="run from the directory the "
                                        "recipe's paths are relative to, or use an absolute path",
                                        **recipe.where(f"args.{key}")))
    return problems


DATA_CHECK_LIMIT = 256 * 2**20  # bigger datasets: `swift-ext data check --jobs N` on their own


def validate_datasets(recipe: Recipe, notes: list[str]) -> list[Problem]:
    """Run the dataset validator over the recipe's local datasets; hub ids are noted and skipped."""
    import os

    from swift_ext import data as d

    info = d.recipe_data(recipe)
    if info.task not in ("sft", "pt", "grpo", "dpo", "kto"):
        return []
    opts = d.Options(task=info.task, reward_columns=info.reward_columns)
    notes += [f"{entry}: hub dataset, not validated here" for entry in info.hub]
    problems: list[Problem] = []
    for key, path in info.files:
        if not os.path.isfile(path):
            continue  # reported by check_local_datasets
        if os.path.getsize(path) > DATA_CHECK_LIMIT:
            notes.append(f"{path}: over {DATA_CHECK_LIMIT >> 20} MiB; run `swift-ext data check {path} --jobs N`")
            continue
        report = d.check_file(path, opts)
        for code, n in sorted(report.counts().items()):
            if d.CODES[code][0] != "error":
                continue
            first = next(i for i in report.issues if i.code == code)
            problems.append(Problem(f"{n} row(s) with {code} {d.CODES[code][1]}, first: {first.render()}",
                                    rule="dataset", hint=f"swift-ext data check {path} --task {info.task}",
                                    **recipe.where(f"args.{key}")))
        notes.append(f"{path}: {report.valid_rows}/{report.rows} rows valid for {info.task}")
    return problems


def _must_be_positive(name: str, spec: msargs.ArgField) -> bool:
    # Sizes and counts where 0 or a negative number is never meaningful (parallel sizes, batch sizes,
    # generations, lengths, LoRA rank). ms-swift would fail on them only inside the ranks.
    if spec.type["kind"] != "int":
        return False
    return name.endswith(("_parallel_size", "batch_size", "_length")) or name in {
        "num_generations", "lora_rank", "lora_alpha", "steps_per_generation", "gradient_accumulation_steps",
        "max_length", "mtp_num_layers", "save_steps", "eval_steps", "logging_steps",
    }


def _as_number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
