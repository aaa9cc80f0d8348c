"""`run`, `doctor`, `submit`, `status`, `build-model`: starting and following runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from swift_ext.spec.findings import UserError
from swift_ext.cli.app import app, _console, _print_problems


@app.command()
def run(
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Overrides: args.max_length=4096 ..."),
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
        _console(stderr=True).print(doc.render(f), markup=False)
    blocking = sum(f.blocking for f in findings)
    if rec is not None:
        con.print(f"{rec.source}: {blocking} blocking problem(s), {len(findings) - blocking} warning(s)", markup=False)
    raise typer.Exit(1 if blocking else 0)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def submit(
    ctx: typer.Context,
    recipe: Path = typer.Argument(..., help="Recipe YAML file."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Overrides (args.max_length=4096 ...); after `--`: sbatch options."),
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
    from swift_ext.runs import submit as sub

    items = list(overrides or []) + list(ctx.args)
    if "--" in items:
        cut = items.index("--")
        overrides_list, extra = items[:cut], items[cut + 1:]
    else:
        overrides_list = [o for o in items if not o.startswith("--")]
        extra = [o for o in items if o.startswith("--")]
    opts = sub.SlurmOptions(nodes=nodes, partition=partition, account=account, time=time_limit, qos=qos,
                            grace_s=grace, cache_dir=cache_dir, extra=tuple(extra), then=tuple(then or ()),
                            sweep=tuple(sweep or ()), doctor_blocks=not force)
    err = _console(stderr=True)
    raise typer.Exit(sub.submit_recipe(recipe, overrides_list, opts, dry_run=dry_run, force=force, resume=resume,
                                       print_problems=_print_problems, say=lambda text: err.print(text, markup=False),
                                       write=sys.stdout.write))


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




@app.command("build-model")
def build_model(name: str = typer.Argument("tiny-qwen3_6-moe")) -> None:
    """Build (once) a local test model, e.g. the tiny Qwen3.6-architecture model; prints its path."""
    from swift_ext.planner.tinymodel import ensure_model

    print(ensure_model(name))
