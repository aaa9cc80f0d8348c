"""`merge`, `verify`, `infer`, `report`, `watch`: what comes after (and during) training."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from swift_ext.spec.findings import Finding, UserError
from swift_ext.cli.app import app, _console, _model_config_file


@app.command()
def merge(
    ckpt: Path = typer.Argument(..., help="A checkpoint-N directory."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output directory (must not exist); default CKPT-merged."),
    base_model: Optional[str] = typer.Option(None, "--base-model", help="Base model path/id if args.json's is stale."),
    print_cmd: bool = typer.Option(False, "--print", help="Print the command and nothing else."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip `swift-ext verify` of the merged model."),
    best: Optional[str] = typer.Option(None, "--best", help="CKPT is a run dir: merge its best evaluated "
                                       "checkpoint by this eval/metrics.jsonl metric (see `swift-ext best`)."),
) -> None:
    """Merge a LoRA checkpoint into a servable model with ms-swift's own export, then verify it."""
    from swift_ext.runs import run as runner
    from swift_ext.after.merge import keep_base_mtp, plan_merge, read_checkpoint

    ckpt = _best_of(ckpt, best)
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
    best: Optional[str] = typer.Option(None, "--best", help="CKPT is a run dir: its best evaluated checkpoint "
                                       "by this eval/metrics.jsonl metric."),
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
    ckpt = _best_of(ckpt, best)
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


def _best_of(path: Path, metric: Optional[str]) -> Path:
    if metric is None:
        return path
    from swift_ext.cli.eval import best_of

    line, checkpoint = best_of(path, metric)
    _console(stderr=True).print(f"best by {metric}: step {line['step']} ({metric} = {line[metric]}): "
                                f"{checkpoint}", markup=False)
    return checkpoint


def _refuse_bad_argv(argv: List[str]) -> None:
    from swift_ext.msswift import schema as msargs

    problems = msargs.check_argv(argv)
    if problems:
        raise UserError([Finding(p, file="command line", hint="ms-swift would refuse it after loading the model")
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
