"""The arguments a run will really use, each with where its value came from: the recipe, a base recipe
it extends, a command-line override, ms-swift's dataclass default, or ms-swift's own __post_init__
(swift_ext.msswift.coercions). `plan --json` prints this table; a recipe value ms-swift replaces is a
warning, since the run would silently differ from the file."""

from __future__ import annotations

from typing import Any

from swift_ext.spec.findings import Finding
from swift_ext.spec.recipe import OVERRIDE

RECIPE, BASE, OVERRIDDEN, DEFAULT, COERCION = "recipe", "base recipe", "override", "ms-swift default", "ms-swift coercion"


def source_of(recipe, name: str) -> tuple[str, str | None]:
    """(kind, file) of a value the recipe gives: its own file, a file it extends, or the command line."""
    pos = recipe.positions.get(f"args.{name}")
    if pos is None:
        return RECIPE, recipe.source
    if pos[0] == OVERRIDE:
        return OVERRIDDEN, None
    return (RECIPE if pos[0] == recipe.source else BASE), pos[0]


def effective_args(recipe, args, epoch: dict | None = None) -> dict[str, dict[str, Any]]:
    """name -> {"value", "source", and "file" (recipe/base) or "why" and "stated" (coercion)}, sorted.
    `epoch` (datasets.stats) gives the step count Megatron derives from num_train_epochs."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(args.names()):
        value = args.raw(name)
        if name in args.coerced:
            entry = {"value": value, "source": COERCION, "why": args.coerced[name].why, "stated": args.stated(name)}
        elif args.has(name):
            kind, file = source_of(recipe, name)
            entry = {"value": value, "source": kind}
            if file:
                entry["file"] = file
        else:
            entry = {"value": value, "source": DEFAULT}
        out[name] = entry
    if recipe.engine == "megatron":
        _megatron_derived(recipe, args, epoch, out)
    return dict(sorted(out.items()))


def _megatron_derived(recipe, args, epoch, out) -> None:
    """What MegatronArguments works out at start-up from the world size and the data."""
    from swift_ext.planner.layout import layout_of

    out["data_parallel_size"] = {"value": layout_of(args, recipe.launch.world_size).dp, "source": COERCION,
                                 "why": "world size // (TP x PP x CP) (MegatronArguments._init_distributed)"}
    if args.raw("num_train_epochs") is not None:
        # init_iters: train_iters = usable samples x epochs // global_batch_size, whatever the recipe says
        out["train_iters"] = {"value": epoch["steps"] if epoch else None, "source": COERCION,
                              "why": "num_train_epochs sets it from the dataset size (MegatronArguments.init_iters)"
                              + ("" if epoch else "; the data is not local, so not counted here"),
                              "stated": args.stated("train_iters")}


def train_iters_replaced(recipe, args) -> list[Finding]:
    """Megatron: a recipe with both train_iters and num_train_epochs trains for the epochs."""
    if recipe.engine != "megatron" or not args.has("train_iters") or args.raw("num_train_epochs") is None:
        return []
    return [Finding("replaced when ms-swift starts: num_train_epochs is set, and MegatronArguments.init_iters then "
                    "computes train_iters from the dataset size", code="msswift-override",
                    hint="keep one of train_iters and num_train_epochs", **recipe.where("args.train_iters"))]


def overridden_by_msswift(recipe, args, already: list[Finding]) -> list[Finding]:
    """A value the recipe sets that ms-swift's __post_init__ replaces (skipped where a rule already says so)."""
    flagged = {p.path for p in already}
    found = []
    for name, c in args.coerced.items():
        if not args.has(name) or f"args.{name}" in flagged or args.stated(name) == c.value:
            continue
        found.append(Finding(f"{args.stated(name)!r} is replaced by {c.value!r} when ms-swift starts: {c.why}",
                             code="msswift-override", hint="remove it, or change what causes it",
                             **recipe.where(f"args.{name}")))
    return found
