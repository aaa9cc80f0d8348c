"""The `swift-ext` command. Heavy imports (torch, ms-swift) stay out of this module's import path."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from swift_ext.spec.errors import Problem, UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Recipes, pre-flight and launch for ms-swift.")


def _show_version(value: bool) -> None:
    if value:
        from swift_ext import __version__

        print(f"swift-ext {__version__}")
        raise typer.Exit(0)


@app.callback(epilog="Exit codes: 0 ok; 1 a run or check failed; 2 bad input or usage; 128+N ended by signal N "
                     "(143 SIGTERM, 130 Ctrl-C). SWIFT_EXT_DEBUG=1 or --debug shows tracebacks.")
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors (or SWIFT_EXT_DEBUG=1)."),
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """--debug is read from argv by run_cli, which also handles errors raised before this runs."""


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _print_problems(plan) -> None:
    err = _console(stderr=True)
    for p in plan.errors:
        err.print(f"[red]error[/red]: {p.render()}", markup=True)
    for p in plan.warnings:
        err.print(f"[yellow]warning[/yellow]: {p.render()}", markup=True)


@app.command()
def plan(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Overrides: args.lr=5e-5 launch.nodes=2 ..."),
    print_cmd: bool = typer.Option(False, "--print", help="Print the exact shell command and nothing else."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as one JSON object."),
    search_layouts: bool = typer.Option(False, "--search", help="Rank legal layouts that fit these GPUs."),
    model_config: Optional[Path] = typer.Option(
        None, "--model-config", help="config.json giving the model's shape when args.model is not a local directory "
        "and not in the Hugging Face or ModelScope cache (checked before the bundled configs)."),
    use_oracle: Optional[bool] = typer.Option(None, "--oracle/--no-oracle", help="Also ask megatron-core itself "
                                              "(imports torch: seconds). Default: SWIFT_EXT_ORACLE, else off."),
) -> None:
    """Check a recipe against ms-swift, the model's shape and the GPUs' memory; print what would run."""
    from swift_ext.planner.plan import make_plan
    from swift_ext.spec.recipe import load_recipe

    rec = load_recipe(recipe, overrides or [])
    model_config = _model_config_file(model_config)
    result = make_plan(rec, model_config=str(model_config) if model_config else None, oracle=use_oracle)
    launch = result.launch
    candidates = _search(result) if search_layouts else None
    if as_json:
        data = plan_json(result)
        if candidates is not None:
            data["search"] = [{"overrides": c.overrides, "override_text": c.override_text(_current(result, c)), "layout": c.layout, "per_gpu_gib": round(c.per_gpu_gib, 2),
                               "verdict": c.verdict, "relative_step_time": round(c.step_seconds / candidates[0].step_seconds, 3)}
                              for c in candidates]
        print(json.dumps(data, indent=2))
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


def _model_config_file(path: Optional[Path]) -> Optional[Path]:
    """--model-config takes the config.json or the model directory holding it."""
    if path is None:
        return None
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError.one("a directory without config.json", file=str(path),
                                hint="--model-config takes a config.json file or a model directory holding one")
        return path / "config.json"
    if not path.is_file():
        raise UserError.one("file not found", file=str(path), hint="--model-config takes a config.json file")
    return path


def _search(result):
    from swift_ext.planner.search import search

    rec = result.recipe
    if rec.engine != "megatron":
        raise UserError.one("--search covers the Megatron backend (engine: megatron)", file=rec.source)
    bad_values = [p for p in result.errors if p.rule in ("argument-type", "argument-range")]
    if bad_values:  # the search starts from these values; the plan skipped the shape for them too
        raise UserError(bad_values + [Problem("--search needs the argument errors above fixed first",
                                              file=rec.source)])
    if result.shape is None:
        raise UserError.one("--search needs the model's shape, which this plan could not find", file=rec.source,
                            hint="pass --model-config PATH/TO/config.json or download the model")
    return search(result)


def _memory_table(mem):
    from rich.table import Table

    colour = {"fits": "green", "tight": "yellow", "does_not_fit": "red"}.get(mem.verdict or "", "white")
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
        "violations": [{"rule": p.rule or "recipe", "field": p.path, "message": p.render()} for p in result.errors],
        "warnings": [{"rule": p.rule or "recipe", "field": p.path, "message": p.render()} for p in result.warnings],
        "layout": result.layout.as_dict() if result.layout is not None else None,
        "memory": mem,
        "model_source": result.model_source,
        "megatron_core": result.megatron_core,
        "notes": result.notes,
        "argv": launch.argv,
        "env": masked_env(launch.env),
    }


@app.command()
def run(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Overrides: args.lr=5e-5 ..."),
    force: bool = typer.Option(False, "--force", help="Run even if pre-flight checks fail."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest complete checkpoint in the "
                                "output dir (refused when there is none)."),
    grace: float = typer.Option(30.0, "--grace", min=0, help="Seconds the trainer gets to stop after "
                                "SIGTERM/SIGINT/SIGHUP before SIGKILL."),
    expect: Optional[str] = typer.Option(None, "--expect", help="Refuse unless the recipe's command is this "
                                         "(sft, rlhf, pt); `make sft` / `make rlhf` pass it."),
) -> None:
    """Check, write the run manifest, then run ms-swift. Exit: its code, 2 refused, 128+N stopped by signal N."""
    from swift_ext.runs import run as runner

    started = runner.start(recipe, overrides or [], force=force, resume=resume, expect=expect,
                           print_problems=_print_problems, say=_console(stderr=True).print)
    raise typer.Exit(runner.finish(started, grace, say=_console(stderr=True).print))


@app.command()
def doctor(recipe: Optional[Path] = typer.Argument(None, help="Recipe YAML file (omit: list package versions)."),
           overrides: Optional[List[str]] = typer.Argument(None, help="Overrides: launch.gpus_per_node=8 ...")) -> None:
    """Can this machine run the recipe? Engine packages, GPUs vs launch, memory vs the plan, shared caches.
    Exit 1 when something blocks the run."""
    from swift_ext.runs import doctor as doc
    from swift_ext.planner.plan import make_plan
    from swift_ext.spec.recipe import load_recipe

    rec = load_recipe(recipe, overrides or []) if recipe is not None else None
    plan = make_plan(rec) if rec is not None and rec.engine == "megatron" else None
    con = _console()
    for line in doc.report_lines(rec, doc.shape_type(rec)):
        con.print(line, markup=False)
    findings = doc.diagnose(rec, plan)
    for f in findings:
        _console(stderr=True).print(f.render(), markup=False)
    blocking = sum(f.blocking for f in findings)
    if rec is not None:
        con.print(f"{rec.source}: {blocking} blocking problem(s), {len(findings) - blocking} warning(s)", markup=False)
    raise typer.Exit(1 if blocking else 0)


@app.command("import")
def import_script(
    script: Path = typer.Argument(..., help="Shell script running `megatron|swift sft|rlhf|pt`."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the recipe here (never overwrites); "
                                          "a script with several commands gives OUT-1.yaml, OUT-2.yaml, ..."),
    upgrade: bool = typer.Option(False, "--upgrade", help="Rename ms-swift 3.x arguments to their 4.x names "
                                 "(--save -> output_dir, --train_type -> tuner_type, ...) and drop removed ones."),
) -> None:
    """Turn an existing ms-swift shell script into a recipe (one per training command in it)."""
    from swift_ext.msswift.importer import import_file, recipe_yaml

    imported = import_file(script, upgrade)
    err = _console(stderr=True)
    texts = []
    for data, notes in imported:
        for note in notes:
            err.print(f"note: {note}", markup=False)
        for p in _import_warnings(data, script):
            err.print(f"warning: {p.render()} — the installed ms-swift does not accept this flag as written", markup=False)
        texts.append(recipe_yaml(data))
    if len(texts) > 1:
        err.print(f"{script}: {len(texts)} training commands, one recipe each", markup=False)
    if output is None:
        sys.stdout.write("---\n".join(texts))
        return
    paths = [output] if len(texts) == 1 else [output.with_name(f"{output.stem}-{i}{output.suffix or '.yaml'}")
                                              for i in range(1, len(texts) + 1)]
    taken = [str(p) for p in paths if p.exists()]
    if taken:
        raise UserError.one(f"already exists; not overwriting: {', '.join(taken)}", file=str(output),
                            hint="choose another -o path")
    if not output.absolute().parent.is_dir():
        raise UserError.one("its directory does not exist", file=str(output),
                            hint="-o creates a file, not directories: create the directory first")
    for path, text in zip(paths, texts, strict=True):
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(text)
        err.print(f"wrote {path}")


def _import_warnings(data: dict, script: Path) -> list:
    from pydantic import ValidationError

    from swift_ext.msswift import schema as msargs
    from swift_ext.planner.plan import check_args
    from swift_ext.spec.recipe import Recipe

    try:
        rec = Recipe(**data, source=str(script))
    except ValidationError as exc:
        raise UserError.one(f"the imported recipe is not valid: {exc.errors()[0]['msg']} "
                            f"(at {'.'.join(map(str, exc.errors()[0]['loc']))})", file=str(script)) from None
    problems = check_args(rec, msargs.schema_for(rec.engine, rec.command))
    for p in problems:
        p.file, p.line, p.column = str(script), None, None
    return problems


@app.command()
def merge(
    ckpt: Path = typer.Argument(..., help="A checkpoint-N directory."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output directory (must not exist); default CKPT-merged."),
    base_model: Optional[str] = typer.Option(None, "--base-model", help="Base model path/id if args.json's is stale."),
    print_cmd: bool = typer.Option(False, "--print", help="Print the command and nothing else."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip `swift-ext verify` of the merged model."),
) -> None:
    """Merge a LoRA checkpoint into a servable model with ms-swift's own export, then verify it."""
    from swift_ext.runs import run as runner
    from swift_ext.after.merge import keep_base_mtp, plan_merge, read_checkpoint

    checkpoint = read_checkpoint(ckpt)
    plan = plan_merge(checkpoint, out, base_model)
    if plan.launch is not None:
        _refuse_bad_argv(plan.launch.argv)
    err = _console(stderr=True)
    for note in plan.notes:
        err.print(f"note: {note}", markup=False)
    if plan.launch is None:
        print(plan.output_dir)
        return
    if print_cmd:
        sys.stdout.write(plan.launch.shell())
        return
    err.print("$ " + plan.launch.shell().rstrip(), markup=False)
    code = runner.execute(plan.launch).exit_code
    if code == 0:
        if checkpoint.engine == "swift":
            kept = keep_base_mtp(base_model or checkpoint.base_model, plan.output_dir)
            if kept:
                err.print(f"note: copied {len(kept)} MTP tensor(s) transformers dropped from the base model "
                          f"into {plan.output_dir / 'model-mtp.safetensors'}", markup=False)
        err.print(f"[green]merged[/green]: {plan.output_dir}")
        if not no_verify:
            code = _verify(plan.output_dir, ckpt, base_model, skip_unreachable_base=True)
    raise typer.Exit(code)


def _verify(merged: Path, adapter: Optional[Path], base: Optional[str], skip_unreachable_base: bool = False,
            **options) -> int:
    from swift_ext.after.verify import resolve_base, summary_table, verify, write_report

    err = _console(stderr=True)
    if skip_unreachable_base:  # merge: a hub-id base never downloaded here is a skipped check, not a failed merge
        try:
            resolve_base(merged, adapter, base)
        except UserError as exc:
            err.print(f"verify skipped: {exc} — run `swift-ext verify {merged} --base PATH`", markup=False)
            return 0
    report = verify(merged, adapter, base, progress=lambda msg: err.print(f"verify: {msg}", markup=False), **options)
    path = write_report(report)
    _console().print(summary_table(report))
    err.print(f"{'[green]verified[/green]' if report.ok else '[red]verify failed[/red]'}: {path}")
    return 0 if report.ok else 1


@app.command("verify")
def verify_cmd(
    merged: Path = typer.Argument(..., help="The merged model directory."),
    adapter: Optional[Path] = typer.Option(None, "--adapter", help="The LoRA checkpoint (default: MERGED without -merged)."),
    base: Optional[str] = typer.Option(None, "--base", help="Base model directory (default: from args.json)."),
    prompts: int = typer.Option(4, "--prompts", min=1, help="Prompts for the logit parity check."),
    no_parity: bool = typer.Option(False, "--no-parity", help="Skip the logit parity check (loads both models)."),
    no_generate: bool = typer.Option(False, "--no-generate", help="Skip the `swift infer` generation smoke test."),
) -> None:
    """Check a merged model against base + adapter: tensors, weights, logits, one generation; verify.json."""
    raise typer.Exit(_verify(merged, adapter, base, parity=not no_parity, generate=not no_generate, prompts=prompts))


@app.command()
def infer(
    ckpt: Optional[Path] = typer.Argument(None, help="A checkpoint-N directory (merged model used when present)."),
    split: str = typer.Option("val", "--split", help="`val` (the run's validation split) or a JSONL file."),
    backend: str = typer.Option("transformers", "--backend", help="transformers or vllm"),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", min=1),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N validation rows."),
    compare_with: Optional[List[Path]] = typer.Option(None, "--compare", help="Compare two metrics (give twice)."),
    print_cmd: bool = typer.Option(False, "--print", help="Print the swift infer command and nothing else."),
) -> None:
    """Run `swift infer` on the validation split and score it (exact match, math accuracy, lengths)."""
    from swift_ext.after import infer as inf

    if compare_with:
        if len(compare_with) != 2 or ckpt is not None:
            raise UserError.one("--compare takes exactly two metrics files/eval dirs/checkpoints: --compare A --compare B")
        (pa, a), (pb, b) = inf.load_metrics(compare_with[0]), inf.load_metrics(compare_with[1])
        _console().print(_compare_table(pa, pb, inf.compare(a, b)))
        return
    if ckpt is None:
        raise UserError.one("give a checkpoint directory (or --compare A --compare B)")
    from swift_ext.runs import run as runner
    from swift_ext.after.merge import read_checkpoint

    plan = inf.plan_infer(read_checkpoint(ckpt), split, backend, max_new_tokens, limit)
    _refuse_bad_argv(plan.launch.argv)  # e.g. --backend foo: refused before a model is loaded or a dir made
    if print_cmd:
        sys.stdout.write(plan.launch.shell())
        return
    inf.refuse_missing_backend(backend)  # --print may be for another machine; running needs it here
    err = _console(stderr=True)
    for note in plan.notes:
        err.print(f"note: {note}", markup=False)
    inf.prepare_eval_dir(plan, limit)
    err.print("$ " + plan.launch.shell().rstrip(), markup=False)
    code = runner.execute(plan.launch).exit_code
    metrics = inf.score(plan.result_file, plan.eval_dir / "val.jsonl" if plan.val_file else None,
                        plan.max_new_tokens, plan.model_dir)
    metrics["infer_exit_code"] = code
    path = inf.write_metrics(plan.eval_dir, metrics)
    _console().print(_metrics_table(metrics, path))
    if metrics["unscored_rows"]:
        err.print(f"[yellow]{metrics['unscored_rows']} of {metrics['rows']} rows have no (readable) result[/yellow]")
    raise typer.Exit(code)


def _refuse_bad_argv(argv: List[str]) -> None:
    from swift_ext.msswift import schema as msargs

    problems = msargs.check_argv(argv)
    if problems:
        raise UserError([Problem(p, file="command line", hint="ms-swift would refuse it after loading the model")
                         for p in problems])


def _metrics_table(metrics: dict, path: Path):
    from rich.table import Table

    table = Table(title=f"{path}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        table.add_row(key, str(value))
    return table


def _compare_table(pa: Path, pb: Path, rows):
    from rich.table import Table

    table = Table(title="A = " + str(pa) + "\nB = " + str(pb), title_justify="left")
    for col in ("metric", "A", "B", "B - A"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for key, a, b, diff in rows:
        table.add_row(key, str(a), str(b), "" if diff is None else f"{diff:+g}")
    return table


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run's output dir (or one of its v*-* dirs).")) -> None:
    """Loss/learning-rate/reward curves (PNG) and a markdown summary of a run."""
    from swift_ext.after.report import make_report

    out = make_report(run_dir)
    _console().print(f"report: {out / 'summary.md'}")
    for png in sorted(out.glob("*.png")):
        _console().print(f"  {png}")


@app.command()
def watch(
    run_dir: Path = typer.Argument(..., help="A run's output dir, one of its v*-* dirs, or a logging.jsonl/stdout file."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per logged step, then a summary line."),
    once: bool = typer.Option(False, "--once", help="Print what the log holds now and exit."),
    interval: float = typer.Option(2.0, "--interval", min=0.1, help="Seconds between looks at the log."),
    model_config: Optional[Path] = typer.Option(None, "--model-config", help="config.json for MFU when args.model is not local."),
    peak_tflops: Optional[float] = typer.Option(None, "--peak-tflops", min=0.001, help="Peak TFLOP/s per device (default: launch.gpu's dense bf16)."),
    gpus: Optional[int] = typer.Option(None, "--gpus", min=1, help="Devices the run uses (default: from the run manifest)."),
) -> None:
    """Follow a run: step time, tokens/s per GPU, MFU, ETA, memory, GRPO health; exits 0 when it finishes."""
    from swift_ext.runs.watch import watch as follow

    model_config = _model_config_file(model_config)
    raise typer.Exit(follow(run_dir, as_json=as_json, interval=interval, once=once,
                            model_config=str(model_config) if model_config else None, peak_tflops=peak_tflops,
                            gpus=gpus))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def submit(
    ctx: typer.Context,
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Overrides (args.lr=5e-5 ...); after `--`: sbatch options."),
    nodes: Optional[int] = typer.Option(None, "--nodes", min=1, help="Nodes (default: launch.nodes)."),
    partition: Optional[str] = typer.Option(None, "--partition"),
    account: Optional[str] = typer.Option(None, "--account"),
    time_limit: Optional[str] = typer.Option(None, "--time", help="Slurm time limit, e.g. 2-00:00:00."),
    qos: Optional[str] = typer.Option(None, "--qos"),
    grace: int = typer.Option(120, "--grace", min=10, help="Seconds of warning (USR1) before the time limit."),
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", help="Shared MODELSCOPE_CACHE/HF_HOME root."),
    then: Optional[List[str]] = typer.Option(None, "--then", help="Follow-up job after success: merge, infer."),
    sweep: Optional[List[str]] = typer.Option(None, "--sweep", help="Job array over values: args.lr=1e-5,5e-5"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the batch script(s); submit nothing."),
    force: bool = typer.Option(False, "--force", help="Submit even if pre-flight fails."),
    resume: bool = typer.Option(False, "--resume", help="Continue a run whose fixed output dir exists."),
) -> None:
    """Submit a recipe to Slurm: one task per node, preemption-safe requeue with resume, job chains."""
    from swift_ext.runs import run as runner
    from swift_ext.runs import submit as sub
    from swift_ext.planner import oracle
    from swift_ext.planner.plan import make_plan
    from swift_ext.spec.recipe import load_recipe

    items = list(overrides or []) + list(ctx.args)
    if "--" in items:
        cut = items.index("--")
        overrides_list, extra = items[:cut], items[cut + 1:]
    else:
        overrides_list = [o for o in items if not o.startswith("--")]
        extra = [o for o in items if o.startswith("--")]
    if nodes:
        overrides_list.append(f"launch.nodes={nodes}")
    rec = load_recipe(recipe, overrides_list)
    out_arg = str(rec.args.get("output_dir") or "megatron_output")
    if not Path(out_arg).is_absolute():  # the ranks may start elsewhere: pin the output dir
        overrides_list.append(f"args.output_dir={Path(out_arg).resolve()}")
        rec = load_recipe(recipe, overrides_list)
    err = _console(stderr=True)
    elements = sub.sweep_elements(tuple(sweep or ()))
    main_plan = make_plan(rec, oracle=oracle.for_launch())
    element_plans = [make_plan(load_recipe(recipe, overrides_list + [f"{k}={v}" for k, v in el.items()] + [
        f"args.output_dir={_sweep_dir(rec, i, el)}"]), oracle=oracle.for_launch()) for i, el in enumerate(elements)]
    failed = False
    for p in [main_plan, *element_plans]:
        _print_problems(p)
        failed |= not p.ok
    if failed and not force:
        err.print("refusing to submit a recipe that fails pre-flight (--force overrides)")
        raise typer.Exit(2)
    launch = main_plan.launch
    opts = sub.SlurmOptions(nodes=nodes, partition=partition, account=account, time=time_limit, qos=qos,
                            grace_s=grace, cache_dir=cache_dir, extra=tuple(extra), then=tuple(then or ()),
                            sweep=tuple(sweep or ()), doctor_blocks=not force)
    rendered = sub.render(rec, launch, opts, elements, [p.launch for p in element_plans])
    if resume:
        from swift_ext.runs.resume import argv_to_args, refuse_resume

        ckpt, issues = refuse_resume(Path(launch.output_dir or out_arg), argv_to_args(launch.argv))
        for issue in issues:
            err.print(f"{issue.level}: --resume: {issue.message}", markup=False)
        if any(i.level == "error" for i in issues):
            err.print("refusing to resume: ms-swift would start over or fail (see above)", markup=False)
            raise typer.Exit(2)
        if ckpt:
            err.print(f"resume: the job continues from {ckpt}", markup=False)
    if dry_run:
        sys.stdout.write(rendered.script)
        for verb, text in rendered.followups:
            sys.stdout.write(f"\n# ---- follow-up job: {verb} (submitted with --dependency=afterok:<job>) ----\n")
            sys.stdout.write(text)
        return
    out = runner.prepare_output_dir(rec, launch, resume=resume)
    scripts = out / "slurm"
    main_script = sub.write_script(scripts, "train", rendered.script)
    job_id = sub.sbatch(main_script, exports=rendered.secrets)
    chain = [{"verb": "train", "job_id": job_id, "script": str(main_script)}]
    previous = job_id
    for verb, text in rendered.followups:
        path = sub.write_script(scripts, verb, text)
        follow = sub.sbatch(path, dependency=f"afterok:{previous}", exports=rendered.secrets)
        chain.append({"verb": verb, "job_id": follow, "script": str(path)})
        previous = follow
    manifest = runner.manifest(rec, launch, {"slurm": {"jobs": chain, "array": rendered.array,
                                                         "forwarded_env": rendered.secrets,
                                                         "sbatch_extra": list(extra)}})
    path = runner.write_manifest(out, manifest)
    for item in chain:
        err.print(f"submitted {item['verb']}: job {item['job_id']} ({item['script']})", markup=False)
    err.print(f"manifest: {path}", markup=False)
    err.print(f"follow it: swift-ext watch {out}   |   swift-ext status {out}   |   squeue -j {','.join(c['job_id'] for c in chain)}   |   "
              f"tail -f {out}/slurm-{job_id}{'_*' if elements else ''}.out", markup=False)


def _sweep_dir(rec, index: int, element: dict) -> str:
    import os
    import re

    base = str(rec.args.get("output_dir") or "megatron_output")
    label = "-".join(f"{k.split('.', 1)[1]}={v}" for k, v in element.items())
    return os.path.join(base, f"sweep-{index}-{re.sub(r'[^A-Za-z0-9_.=-]', '_', label)}")


@app.command()
def status(run_dir: Path = typer.Argument(..., help="The run's output dir (where submit wrote its manifest).")) -> None:
    """Slurm job state(s), restarts, the last complete checkpoint and the log tail of a submitted run."""
    from swift_ext.runs import submit as sub

    jobs, damaged = sub.recorded_jobs(run_dir)
    if not jobs:
        raise UserError.one("no Slurm submission recorded here (swift-ext-run-*.json with a slurm entry)",
                            file=str(run_dir), hint=f"unreadable manifest(s): {', '.join(damaged)}" if damaged else None)
    from rich.table import Table

    table = Table(title=str(run_dir), title_justify="left")
    for col in ("step", "job", "state", "restarts", "run time", "reason"):
        table.add_column(col)
    for job in jobs:
        info = sub.scontrol_job(job["job_id"])
        table.add_row(job["verb"], job["job_id"], info.get("JobState", "gone from slurmctld (finished)"),
                      info.get("Restarts", "-"), info.get("RunTime", "-"), info.get("Reason", "-"))
    con = _console()
    con.print(table)
    ckpt = sub.latest_complete_checkpoint(run_dir)
    con.print(f"last complete checkpoint: {ckpt or 'none yet'}", markup=False)
    from swift_ext.runs.resume import status_lines

    for level, text in status_lines(run_dir):
        colour = {"ok": "green", "error": "red"}.get(level, "yellow")
        con.print(f"[{colour}]{'resume ' + level if level != 'ok' else 'resume ok'}[/{colour}]: ", end="")
        con.print(text, markup=False)
    logs = sorted(run_dir.glob("slurm-*.out"), key=lambda p: p.stat().st_mtime)
    if logs:
        tail = logs[-1].read_text(errors="replace").splitlines()[-10:]
        con.print(f"--- {logs[-1]} (last lines) ---", markup=False)
        for line in tail:
            con.print(line, markup=False, highlight=False)


data_app = typer.Typer(help="Dataset tools.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("check")
def data_check(
    files: Optional[List[str]] = typer.Argument(None, help="JSONL/JSON files (a trailing #N is accepted)."),
    task: Optional[str] = typer.Option(None, "--task", help="sft, grpo, dpo, kto (default: from --recipe, else sft)"),
    media_root: Optional[Path] = typer.Option(None, "--media-root", help="Also look for relative media paths here, as ms-swift does under ROOT_IMAGE_DIR."),
    deep: bool = typer.Option(False, "--deep", help="Decode every image, video and audio file."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="Check the recipe's local datasets, with its "
                                          "task, max_length and media token budgets."),
    max_length: Optional[int] = typer.Option(None, "--max-length", min=1, help="Count rows longer than this."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="tokenizer.json or a model dir (with --max-length)."),
    fmt: str = typer.Option("text", "--format", help="text or json"),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Processes for large files."),
    write_clean_to: Optional[Path] = typer.Option(None, "--write-clean", help="Write the valid rows to this new file."),
    show: int = typer.Option(20, "--show", min=0, help="Issues shown per code in text output."),
) -> None:
    """Validate ms-swift `messages` JSONL: exit 0 clean, 1 errors found, 2 usage error."""
    from swift_ext.datasets import check as d

    if fmt not in ("text", "json"):
        raise UserError.one(f"--format must be text or json, got {fmt!r}")
    opts, files, notes = _data_options(files or [], task, media_root, deep, recipe, max_length, tokenizer)
    if not files:
        if notes:  # a recipe with hub datasets only
            for note in notes:
                _console().print(f"note: {note}", markup=False)
            return
        raise UserError.one("no data files given", hint="swift-ext data check FILE [FILE...] or --recipe R.yaml")
    if write_clean_to is not None and len(files) != 1:
        raise UserError.one("--write-clean takes exactly one input file")
    reports = []
    for f in files:
        try:
            reports.append(d.check_file(f, opts, jobs=jobs, progress=_progress_for(f) if fmt == "text" else None))
        except d.FileCheckError as exc:
            raise UserError.one(str(exc)) from None
    report = d.merge_reports(reports)
    report.notes[:0] = notes
    if write_clean_to is not None:
        try:
            n = d.write_clean(files[0].split("#", 1)[0], report, str(write_clean_to))
        except d.FileCheckError as exc:
            raise UserError.one(str(exc)) from None
        report.notes.append(f"wrote {n} valid rows to {write_clean_to}")
    if fmt == "json":
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        _print_data_report(report, show)
    raise typer.Exit(1 if report.errors else 0)


def _data_options(files, task, media_root, deep, recipe, max_length, tokenizer):
    from swift_ext.datasets import check as d

    notes = []
    kwargs = {}
    if recipe is not None:
        from swift_ext.spec.recipe import load_recipe

        rec = load_recipe(recipe)
        args = rec.args
        info = d.recipe_data(rec)
        task = task or info.task
        files += [path for _, path in info.files]
        notes += [f"{entry}: a hub dataset, not checked here" for entry in info.hub]
        kwargs["reward_columns"] = info.reward_columns
        max_length = max_length or args.get("max_length")
        model = args.get("model")
        from swift_ext.planner.tinymodel import resolve_model

        model = resolve_model(model)
        if tokenizer is None and isinstance(model, str) and Path(model, "tokenizer.json").is_file():
            tokenizer = model
        for env_key, opt in (("IMAGE_MAX_TOKEN_NUM", "image_tokens"), ("VIDEO_MAX_TOKEN_NUM", "video_tokens"),
                             ("FPS_MAX_FRAMES", "fps_max_frames")):
            if env_key in rec.env:
                kwargs[opt] = int(rec.env[env_key])
        media_root = media_root or rec.env.get("ROOT_IMAGE_DIR")  # where ms-swift will look for media
    task = task or "sft"
    if task not in ("sft", "pt", "grpo", "dpo", "kto"):
        raise UserError.one(f"--task must be sft, grpo, dpo or kto, got {task!r}")
    if max_length and not tokenizer:
        notes.append("--max-length needs --tokenizer (a tokenizer.json or model dir); lengths not checked")
        max_length = None
    opts = d.Options(task=task, media_root=str(media_root) if media_root else None, deep=deep,
                     max_length=max_length, tokenizer=tokenizer, **kwargs)
    return opts, files, notes


def _progress_for(path: str):
    import os

    size = os.path.getsize(path.split("#", 1)[0]) if os.path.isfile(path.split("#", 1)[0]) else 0
    if size < 64 * 2**20 or not sys.stderr.isatty():
        return None
    from rich.progress import Progress

    return _byte_progress(Progress(transient=True, console=_console(stderr=True)), f"checking {path}", size)


def _byte_progress(progress, label: str, total: int):
    """Start `progress` on one task of `total` bytes; the returned callback advances it and stops at the end."""
    task_id = progress.add_task(label, total=total)
    progress.start()

    def advance(n: int) -> None:
        progress.advance(task_id, n)
        if progress.tasks[0].finished:
            progress.stop()

    return advance


def _print_data_report(report, show: int) -> None:
    from collections import Counter

    from rich.table import Table

    from swift_ext.datasets.check import CODES

    shown: Counter = Counter()
    con = _console()
    for issue in report.issues:
        if shown[issue.code] < show:
            con.print(issue.render(), markup=False, highlight=False)
        shown[issue.code] += 1
    for code, n in sorted(shown.items()):
        if n > show:
            con.print(f"... {n - show} more {code} {CODES[code][1]} (--format json lists all)", markup=False)
    table = Table(title="summary", title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("files", ", ".join(report.files))
    table.add_row("rows", str(report.rows))
    table.add_row("valid rows", str(report.valid_rows))
    for code, n in sorted(report.counts().items()):
        table.add_row(f"{code} {CODES[code][1]} ({CODES[code][0]})", str(n))
    table.add_row("roles", ", ".join(f"{k} {v}" for k, v in sorted(report.roles.items())) or "-")
    table.add_row("media", ", ".join(f"{k} {v}" for k, v in sorted(report.media.items())) or "-")
    table.add_row("duplicate rows", str(report.duplicates))
    from swift_ext.datasets.check import percentiles

    pct = percentiles(report.lengths)
    if pct:
        table.add_row("tokens (p50/p90/p99/max)", f"{pct['p50']}/{pct['p90']}/{pct['p99']}/{pct['max']}")
    con.print(table)
    for note in report.notes:
        con.print(f"note: {note}", markup=False)


@data_app.command("stats")
def data_stats(
    files: Optional[List[str]] = typer.Argument(None, help="JSONL/JSON files (default: the recipe's local datasets)."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="Use the recipe's model, template, max_length, "
                                          "truncation, packing, batch and IMAGE_/VIDEO_ settings."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="tokenizer.json or a model dir."),
    template: Optional[str] = typer.Option(None, "--template", help="ms-swift template (default: from the model)."),
    max_length: Optional[int] = typer.Option(None, "--max-length", min=1, help="Overrides the recipe's max_length."),
    png: Optional[Path] = typer.Option(None, "--png", help="Write a histogram PNG here (a new file)."),
    fmt: str = typer.Option("text", "--format", help="text or json"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recount instead of using cached lengths."),
) -> None:
    """Token lengths through ms-swift's template: percentiles, histogram, truncation, packing, steps."""
    import dataclasses

    from swift_ext.datasets import stats as st

    if fmt not in ("text", "json"):
        raise UserError.one(f"--format must be text or json, got {fmt!r}")
    files = [f.split("#", 1)[0] for f in files or []]
    try:
        if recipe is not None:
            from swift_ext.datasets import check as d
            from swift_ext.spec.recipe import load_recipe

            rec = load_recipe(recipe)
            settings, notes = st.settings_from_recipe(rec, tokenizer=tokenizer, template=template)
            budget = st.budget_from_recipe(rec)
            if not files:
                info = d.recipe_data(rec)
                files = [path for key, path in info.files if key == "dataset"]
                notes += [f"{entry}: a hub dataset, not counted here" for entry in info.hub]
        else:
            settings, notes = st.template_settings(None, template=template or "qwen3_5", tokenizer=tokenizer)
            budget = st.Budget(max_length=max_length)
        if max_length:
            budget = dataclasses.replace(budget, max_length=max_length)
        if not files:
            raise UserError.one("no local data files", hint="swift-ext data stats FILE [FILE...] [--recipe R.yaml]")
        lengths = st.measure(files, settings, progress=_stats_progress(files) if fmt == "text" else None,
                             use_cache=not no_cache)
        summary = st.summarize(lengths, budget)
        summary["notes"][:0] = notes
        if png is not None:
            st.write_png(summary, lengths.total, str(png))
            summary["notes"].append(f"histogram written to {png}")
    except st.StatsError as exc:
        raise UserError.one(str(exc)) from None
    if fmt == "json":
        print(json.dumps(summary, ensure_ascii=False))
    else:
        st.print_report(summary, lengths.total, _console())


def _stats_progress(files: list[str]):
    size = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
    if size < 16 * 2**20 or not sys.stderr.isatty():
        return None
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    progress = Progress("tokenizing", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                        transient=True, console=_console(stderr=True))
    return _byte_progress(progress, "tokenizing", size)


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
    f = schema.fields.get(name)
    if f is None:
        raise UserError.one(f"`{engine} {command}` has no argument `{name}`", hint=schema.suggest(name))
    con.print(f"{f.name}: {msargs.describe(f.type)}\n  default: {f.default!r}\n  {f.help}", markup=False)


@app.command()
def schema() -> None:
    """Describe every recipe field (what goes around `args`)."""
    from swift_ext.spec.recipe import Launch, Recipe, Watch

    con = _console()
    for prefix, model in (("", Recipe), ("launch.", Launch), ("watch.", Watch)):
        for fname, info in model.model_fields.items():
            if fname in {"source", "positions"}:
                continue
            con.print(f"[bold]{prefix}{fname}[/bold]: {info.description}")
    con.print("[bold]extends[/bold]: base recipe file(s), relative to this one; deep-merged, later wins.")


@app.command("build-model")
def build_model(name: str = typer.Argument("tiny-qwen3_6-moe")) -> None:
    """Build (once) a local test model, e.g. the tiny Qwen3.6-architecture model; prints its path."""
    from swift_ext.planner.tinymodel import ensure_model

    print(ensure_model(name))


def main(argv: Optional[List[str]] = None) -> None:
    sys.exit(run_cli(sys.argv[1:] if argv is None else argv))


def run_cli(argv: List[str]) -> int:
    """The one place where errors become one line on stderr and a documented exit code: 0 ok, 1 a run or
    check failed (or a bug), 2 bad input or usage, 128+N a signal N ended the run."""
    from typer._click.exceptions import NoArgsIsHelpError
    from typer.exceptions import TyperException

    debug = "--debug" in argv or os.environ.get("SWIFT_EXT_DEBUG", "") not in ("", "0")
    try:
        # Without standalone mode click returns typer.Exit's code instead of exiting.
        code = app(args=argv, prog_name="swift-ext", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except UserError as exc:
        if debug:
            raise
        for p in exc.problems:
            print(f"error: {p.render()}", file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except NoArgsIsHelpError as exc:
        exc.show()
        return 2
    except TyperException as exc:  # typer's own copy of click: usage errors, bad parameters
        if debug:
            raise
        print(f"error: {_usage_line(exc)}", file=sys.stderr)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `swift-ext plan --print | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    except Exception as exc:
        if debug:
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"error: internal error: {type(exc).__name__}{': ' + text if text else ''} "
              "(a bug in swift-ext: rerun with --debug or SWIFT_EXT_DEBUG=1 for the traceback and report it)",
              file=sys.stderr)
        return 1


def _usage_line(exc) -> str:
    message = exc.format_message().strip().replace("\n", " ")
    ctx = getattr(exc, "ctx", None)
    if "--install-completion" in message or "--show-completion" in message:
        return f"{message} (swift-ext does not install shell completion)"
    if ctx is not None:
        return f"{message} (see `{ctx.command_path} --help`)"
    return message
