"""`eval`, `best`: evaluation of a run's checkpoints (swift_ext/after/evaluate.py) and the best one."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from swift_ext.cli.app import app, _console


@app.command("eval")
def eval_cmd(
    run_dir: Path = typer.Argument(..., help="A run's output dir (or one of its v*-* dirs)."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Settings over the run's `eval:` section: "
                                                    "eval.limit=8 eval.num_samples=4 ..."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Only this checkpoint-N directory "
                                              "(`base`: only the base model, step 0)."),
    follow: bool = typer.Option(False, "--follow", help="Evaluate checkpoints as they appear until stdin "
                                "closes (how `swift-ext run` starts it next to the trainer)."),
) -> None:
    """Evaluate what is not evaluated yet (base model as step 0, then the checkpoints) into eval/metrics.jsonl.
    Idempotent: a checkpoint already there is never run again. Exit 1 when one could not be evaluated."""
    from swift_ext.after import evaluate as ev

    root = ev.run_root(run_dir)
    settings = ev.with_overrides(ev.settings_of(root), overrides or [])
    say = _console(stderr=True).print
    if follow:
        raise typer.Exit(ev.follow(root, settings, say=lambda text: print(text, flush=True)))
    written, failed = ev.evaluate_missing(root, settings, only=checkpoint,
                                          say=lambda text: say(text, markup=False))
    con = _console()
    if not written and not failed:
        from swift_ext.runs.rundir import RunDir

        con.print(f"nothing to evaluate: every checkpoint is in {RunDir(root).eval_metrics}", markup=False)
    for line in written:
        shown = {k: v for k, v in line.items() if k not in ("time", "checkpoint")}
        con.print(" ".join(f"{k}={v}" for k, v in shown.items()), markup=False)
    for text in failed:
        say(f"[red]failed[/red]: {text}")
    raise typer.Exit(1 if failed else 0)


@app.command()
def best(
    run_dir: Path = typer.Argument(..., help="A run's output dir (or one of its v*-* dirs)."),
    metric: str = typer.Option(..., "--metric", help="A field of eval/metrics.jsonl, e.g. math_accuracy, pass@4."),
    lower: Optional[bool] = typer.Option(None, "--lower/--higher", help="Which way is better (default: higher, "
                                         "lower for lengths and hit_token_limit)."),
) -> None:
    """Print the best evaluated checkpoint's path (for `swift-ext merge $(swift-ext best RUN --metric M)`)."""
    line, checkpoint = best_of(run_dir, metric, lower)
    _console(stderr=True).print(f"best by {metric}: step {line['step']} ({metric} = {line[metric]})", markup=False)
    print(checkpoint)


def best_of(run_dir: Path, metric: str, lower: Optional[bool] = None) -> tuple[dict, Path]:
    """(the best metrics.jsonl line, its checkpoint); `best` and `merge/infer --best` print it."""
    from swift_ext.after import evaluate as ev
    from swift_ext.spec.findings import UserError

    root = ev.run_root(run_dir)
    line = ev.best_checkpoint(root, metric, lower)
    checkpoint = line.get("checkpoint")
    if not isinstance(checkpoint, str) or not checkpoint:  # a hand-edited or foreign line
        raise UserError.one(f"the best line by {metric} (step {line['step']}) names no checkpoint",
                            file=str(ev.eval_dir(root) / "metrics.jsonl"),
                            hint='each line `swift-ext eval` writes has "checkpoint": "PATH"; fix or remove that line')
    return line, Path(checkpoint)
