"""`plan`, `args`, `schema`: what a recipe resolves to, shown."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from swift_ext.spec import jsonout
from swift_ext.spec.findings import Finding, UserError
from swift_ext.cli.app import app, _console, _print_problems, _model_config_file


@app.command()
def plan(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Overrides: args.max_length=4096 launch.nodes=2 ..."),
    print_cmd: bool = typer.Option(False, "--print", help="Print the exact shell command and nothing else."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as one JSON object."),
    search_layouts: bool = typer.Option(False, "--search", help="Rank legal layouts that fit these GPUs."),
    model_config: Optional[Path] = typer.Option(
        None, "--model-config", help="config.json giving the model's shape when args.model is not a local directory "
        "and not in the Hugging Face or ModelScope cache (checked before the bundled configs)."),
    use_oracle: Optional[bool] = typer.Option(None, "--oracle/--no-oracle", help="Also ask megatron-core itself "
                                              "(imports torch: seconds). Default: SWIFT_EXT_ORACLE, else off."),
    target_versions: Optional[str] = typer.Option(
        None, "--target-versions", help="Versions the cluster runs, for the version-gated rules: "
        "megatron-core=0.18.0,transformer-engine=2.8,vllm=0.11 (default: env SWIFT_EXT_TARGET_VERSIONS, else "
        "the installed packages). `swift-ext rules` lists the gates."),
    nodes: Optional[int] = typer.Option(None, "--nodes", min=1, help="Nodes to check (launch.nodes=N), e.g. for "
                                        "`launch.nodes: scheduler`."),
    gpus_per_node: Optional[int] = typer.Option(None, "--gpus-per-node", min=0, help="GPUs per node to check "
                                                "(launch.gpus_per_node=G)."),
) -> None:
    """Check a recipe against ms-swift, the model's shape and the GPUs' memory; print what would run."""
    from swift_ext.planner.plan import make_plan
    from swift_ext.spec.recipe import load_recipe

    sizes = ([f"launch.nodes={nodes}"] if nodes is not None else []) + (
        [f"launch.gpus_per_node={gpus_per_node}"] if gpus_per_node is not None else [])
    rec = load_recipe(recipe, [*(overrides or []), *sizes])
    model_config = _model_config_file(model_config)
    from swift_ext.spec.support import parse_targets

    targets = parse_targets(target_versions) if target_versions else None
    result = make_plan(rec, model_config=str(model_config) if model_config else None, oracle=use_oracle,
                       target_versions=targets)
    launch = result.launch
    candidates = _search(result) if search_layouts else None
    if as_json:
        data = plan_json(result)
        if candidates is not None:
            data["search"] = [{"overrides": c.overrides, "override_text": c.override_text(_current(result, c)), "layout": c.layout, "per_gpu_gib": round(c.per_gpu_gib, 2),
                               "verdict": c.verdict, "relative_step_time": round(c.step_seconds / candidates[0].step_seconds, 3)}
                              for c in candidates]
        print(jsonout.dumps(data, indent=2))
        raise typer.Exit(0 if result.ok else 2)
    if print_cmd:
        _print_problems(result)
        if result.ok:
            sys.stdout.write(launch.shell())
        raise typer.Exit(0 if result.ok else 2)
    con = _console()
    con.print(f"[bold]{rec.source}[/bold]: {rec.description}")
    for note in result.notes:
        con.print(f"  [dim]{note}[/dim]")
    if result.layout:
        con.print("  layout: " + "  ".join(f"{k.upper()}={v}" for k, v in result.layout.as_dict().items()))
    if result.memory is not None:
        con.print(_memory_table(result.memory))
    if candidates is not None:
        con.print(_search_table(candidates))
        for i, c in enumerate(candidates, 1):
            con.print(f"  #{i}: swift-ext plan {rec.source} {c.override_text(_current(result, c))}", markup=False)
    sys.stdout.flush()
    _print_problems(result)
    if result.ok:
        con.print(f"[green]ok[/green]: {len(launch.argv) - 2} argv items, {len(launch.env)} env vars; "
                  "`--print` shows the command")
    else:
        _console(stderr=True).print(f"[red]{len(result.errors)} error(s)[/red]: fix the recipe before launching")
    raise typer.Exit(0 if result.ok else 2)


def _search(result):
    from swift_ext.planner.search import search

    rec = result.recipe
    if rec.engine != "megatron":
        raise UserError.one("--search covers the Megatron backend (engine: megatron)", file=rec.source)
    bad_values = [p for p in result.errors if p.code in ("argument-type", "argument-range")]
    if bad_values:  # the search starts from these values; the plan skipped the shape for them too
        raise UserError(bad_values + [Finding("--search needs the argument errors above fixed first",
                                              file=rec.source)])
    if result.shape is None:
        raise UserError.one("--search needs the model's shape, which this plan could not find", file=rec.source,
                            hint="pass --model-config PATH/TO/config.json or download the model")
    return search(result)


def _memory_table(mem):
    from rich.table import Table

    colour = {"fits": "green", "tight": "yellow", "worst_case_does_not_fit": "yellow", "does_not_fit": "red"}.get(mem.verdict or "", "white")
    cap = f" of {mem.capacity_gib:g} GiB" if mem.capacity_gib else ""
    basis = (f"; worst case {mem.worst_case_gib:.1f} GiB" if mem.worst_case_gib is not None else "")
    table = Table(title=f"estimated peak per GPU ({mem.phase} phase): [{colour}]{mem.per_gpu_gib:.1f} GiB{cap}"
                        f" — {mem.verdict or 'no capacity given'}[/{colour}] ({mem.basis}: "
                        f"{mem.tokens_per_micro_batch} tokens per micro-batch{basis})", title_justify="left")
    table.add_column("component")
    table.add_column("GiB", justify="right")
    for name, gib in mem.components.items():
        table.add_row(name, f"{gib:.1f}")
    return table


def _search_table(candidates):
    from rich.table import Table

    table = Table(title="layouts that fit, fastest first (relative step time; see swift_ext/planner/search.py)",
                  title_justify="left")
    for col in ("#", "TP", "PP", "CP", "EP", "DP", "mbs", "recompute", "GiB/GPU", "step"):
        table.add_column(col)
    if not candidates:
        table.add_row("-", "", "", "", "", "", "", "no legal layout fits these GPUs", "", "")
    best = candidates[0].step_seconds if candidates else 1
    for i, c in enumerate(candidates, 1):
        lay, o = c.layout, c.overrides
        table.add_row(str(i), str(lay["tp"]), str(lay["pp"]), str(lay["cp"]), str(lay["ep"]), str(lay["dp"]),
                      str(o["micro_batch_size"]), o["recompute_granularity"], f"{c.per_gpu_gib:.1f}",
                      f"{c.step_seconds / best:.2f}x")
    return table


def _current(result, candidate) -> dict:
    """The recipe's values (ms-swift defaults filled in) for the keys a candidate sets."""
    keys = set(candidate.overrides) | {"recompute_method"}
    return {k: result.args.raw(k) for k in keys}


def plan_json(result) -> dict:
    from swift_ext.spec.secrets import masked_env

    launch = result.launch
    mem = result.memory.as_dict() if result.memory is not None else None
    return {
        "ok": result.ok,
        "recipe": result.recipe.source,
        "violations": [{"rule": p.code or "recipe", "field": p.path, "message": p.render()} for p in result.errors],
        "warnings": [{"rule": p.code or "recipe", "field": p.path, "message": p.render()} for p in result.warnings],
        "layout": result.layout.as_dict() if result.layout is not None else None,
        "memory": mem,
        "model_source": result.model_source,
        "megatron_core": result.megatron_core,
        "notes": result.notes,
        "argv": launch.printable_argv(),
        "env": masked_env(launch.env),
        "epoch": result.epoch,
        "effective_args": result.effective,
    }


@app.command("rules")
def rules_cmd(as_json: bool = typer.Option(False, "--json", help="Print the rules and the version table as JSON."),
              ) -> None:
    """List every pre-flight rule with its evidence and scope, and the version-gated support table."""
    from swift_ext.spec.ruleset import RULES
    from swift_ext.spec.support import SUPPORT, gpu_needs

    if as_json:
        print(json.dumps({"rules": [r.as_dict() for r in sorted(RULES.values(), key=lambda r: r.name)],
                          "support": [{"feature": s.feature, "what": s.what, "model_types": s.model_types,
                                       "needs": s.needs, "removed": s.removed,
                                       "compute_capability": s.compute_capability,
                                       "excluded_capability": s.excluded_capability,
                                       "evidence": s.evidence} for s in SUPPORT]}, indent=2))
        return
    con = _console()
    for r in sorted(RULES.values(), key=lambda r: r.name):
        con.print(f"[bold]{r.name}[/bold] ({r.severity}): {r.what}")
        for e in r.evidence:
            con.print(f"  {e.kind}: {e.ref}" + (f" ({e.conditions})" if e.conditions else ""), markup=False)
        con.print(f"  scope: {r.scope}", markup=False)
    con.print("[bold]version-gated support[/bold] (spec/support.py; plan --target-versions checks against it):")
    for s in SUPPORT:
        needs = ", ".join([*(f"{p} >= {v}" for p, v in s.needs.items()),
                           *(f"{p} < {v} (removed there)" for p, v in s.removed.items())]) or "no version gate"
        cc = f"; {gpu_needs(s.feature)}" if gpu_needs(s.feature) else ""
        con.print(f"  {s.feature}: {s.what} — {needs}{cc}", markup=False)


@app.command("args")
def args_cmd(
    name: Optional[str] = typer.Argument(None, help="An argument name; omit to list all."),
    engine: str = typer.Option("megatron", help="megatron or swift"),
    command: str = typer.Option("sft", help="sft, rlhf or pt"),
) -> None:
    """Show ms-swift's arguments (type, default, help) as swift-ext reads them."""
    from swift_ext.msswift import schema as msargs

    if (engine, command) not in msargs.DATACLASSES:
        raise UserError.one(f"unknown engine/command {engine} {command}")
    schema = msargs.schema_for(engine, command)
    con = _console()
    if name is None:
        con.print(f"{schema.dataclass_name} — {schema.origin}: {len(schema.fields)} arguments")
        for f in schema.fields.values():
            con.print(f"  {f.name}: {msargs.describe(f.type)} = {f.default!r}", markup=False)
        return
    from swift_ext.msswift.option_names import read_name

    reading = read_name(schema, name)  # as ms-swift's parser reads it: exact, `-` spelling, or a prefix
    refused = reading.problem(f"{engine} {command}")
    if refused:
        raise UserError.one(refused[0], hint=refused[1])
    if reading.field is None:
        raise UserError.one(f"`{engine} {command}` has no argument `{name}`", hint=schema.suggest(name))
    f = schema.fields[reading.field]
    if reading.abbreviated:
        con.print(f"`{name}` abbreviates {reading.option} (ms-swift's parser accepts an unambiguous prefix)",
                  markup=False)
    con.print(f"{f.name}: {msargs.describe(f.type)}\n  default: {f.default!r}\n  {f.help}", markup=False)


@app.command()
def schema() -> None:
    """Describe every recipe field (what goes around `args`)."""
    from swift_ext.spec.recipe import describe_fields

    con = _console()
    for name, _kind, _default, description in describe_fields():
        con.print(f"[bold]{name}[/bold]: {description}")
