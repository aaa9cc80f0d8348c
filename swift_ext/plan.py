"""Recipe -> Plan: every check we can make before a GPU is touched. Pure: no torch, no ms-swift import."""

from __future__ import annotations

from dataclasses import dataclass, field

from swift_ext import msargs
from swift_ext.errors import Problem
from swift_ext.launch import LOCAL_MODEL_SCHEME
from swift_ext.recipe import Recipe


@dataclass(frozen=True)
class Plan:
    recipe: Recipe
    errors: list[Problem]
    warnings: list[Problem]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def make_plan(recipe: Recipe) -> Plan:
    errors: list[Problem] = []
    warnings: list[Problem] = []
    notes: list[str] = []
    schema = msargs.schema_for(recipe.engine, recipe.command)
    notes.append(f"arguments checked against {schema.dataclass_name} of {schema.origin}")
    errors += check_args(recipe, schema)
    return Plan(recipe=recipe, errors=errors, warnings=warnings, notes=notes)


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
                        hint=schema.suggest(name), **where)
            )
            continue
        if isinstance(value, list) and not value:
            problems.append(Problem("empty list: ms-swift needs at least one value",
                                    hint="remove the key, or set it to null to use ms-swift's default", **where))
            continue
        if isinstance(value, str) and value.startswith(LOCAL_MODEL_SCHEME):
            continue
        expected = msargs.check_value(spec.type, value)
        if expected:
            problems.append(Problem(f"expected {expected}", **where))
        elif _must_be_positive(name, spec) and _as_number(value) is not None and _as_number(value) < 1:
            problems.append(Problem(f"expected a positive integer, got {value!r}", **where))
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
