"""`data check`, `data stats`: datasets as ms-swift reads them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from swift_ext.msswift.conventions import without_sample_suffix
from swift_ext.spec.findings import UserError
from swift_ext.cli.app import app, _console


data_app = typer.Typer(help="Dataset tools.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("check")
def data_check(
    files: Optional[List[str]] = typer.Argument(None, help="JSONL/JSON files (a trailing #N is accepted)."),
    task: Optional[str] = typer.Option(None, "--task", help="sft, grpo, dpo, kto, or an encoder task: seq_cls, embedding, "
                                       "reranker, generative_reranker (default: from --recipe, else sft)"),
    media_root: Optional[Path] = typer.Option(None, "--media-root", help="Also look for relative media paths here, as ms-swift does under ROOT_IMAGE_DIR."),
    deep: bool = typer.Option(False, "--deep", help="Decode every image, video and audio file."),
    recipe: Optional[Path] = typer.Option(None, "--recipe", help="Check the recipe's local datasets, with its "
                                          "task, max_length and media token budgets."),
    max_length: Optional[int] = typer.Option(None, "--max-length", min=1, help="Count rows longer than this."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="tokenizer.json or a model dir (with --max-length)."),
    fmt: str = typer.Option("text", "--format", help="text or json"),
    input_format: Optional[str] = typer.Option(None, "--input-format", help="jsonl or json: how to read a file "
                                               "whose name says nothing (`-` for stdin, a pipe)."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Processes for large files."),
    write_clean_to: Optional[Path] = typer.Option(None, "--write-clean", help="Write the valid rows to this new file."),
    show: int = typer.Option(20, "--show", min=0, help="Issues shown per code in text output."),
) -> None:
    """Validate ms-swift `messages` JSONL: exit 0 clean, 1 errors found, 2 usage error."""
    from swift_ext.datasets import check as d

    if fmt not in ("text", "json"):
        raise UserError.one(f"--format must be text or json, got {fmt!r}")
    if input_format not in (None, "jsonl", "json"):
        raise UserError.one(f"--input-format must be jsonl or json, got {input_format!r}")
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
            reports.append(d.check_file(f, opts, jobs=jobs, progress=_progress_for(f) if fmt == "text" else None,
                                        input_format=input_format))
        except d.FileCheckError as exc:
            raise UserError.one(str(exc)) from None
    report = d.merge_reports(reports)
    report.notes[:0] = notes
    if write_clean_to is not None:
        try:
            n = d.write_clean(without_sample_suffix(files[0]), report, str(write_clean_to))
        except d.FileCheckError as exc:
            raise UserError.one(str(exc)) from None
        report.notes.append(f"wrote {n} valid rows to {write_clean_to}")
    if fmt == "json":
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        _print_data_report(report, show)
    raise typer.Exit(1 if report.errors else 0)


def _data_options(files, task, media_root, deep, recipe, max_length, tokenizer):
    from swift_ext.datasets.options import Options

    notes = []
    media_root = str(media_root) if media_root else None
    if recipe is not None:  # the recipe's data as plan resolves it (swift_ext.planner.datafit)
        from swift_ext.planner import datafit
        from swift_ext.msswift.option_names import with_full_names
        from swift_ext.spec.recipe import load_recipe

        rec = with_full_names(load_recipe(recipe))  # `max_len` is --max_length to ms-swift
        info = datafit.recipe_data(rec)
        files += [path for _, path in info.files]
        notes += [f"{entry}: a hub dataset, not checked here" for entry in info.hub]
        opts, more = datafit.check_options(rec, task=task, media_root=media_root, deep=deep, max_length=max_length,
                                           tokenizer=tokenizer)
        notes += more
    else:
        if max_length and not tokenizer:
            notes.append("--max-length needs --tokenizer (a tokenizer.json or model dir); lengths not checked")
            max_length = None
        opts = Options(task=task or "sft", media_root=media_root, deep=deep, max_length=max_length,
                       tokenizer=tokenizer)
    if opts.task not in ("sft", "pt", "grpo", "dpo", "kto", *datafit_tasks()):
        raise UserError.one(f"--task must be sft, grpo, dpo, kto or one of {', '.join(datafit_tasks())}, "
                            f"got {opts.task!r}")
    return opts, files, notes


def datafit_tasks() -> tuple[str, ...]:
    from swift_ext.planner.datafit import ENCODER_TASKS

    return ENCODER_TASKS


def _progress_for(path: str):
    import os

    file = without_sample_suffix(path)
    size = os.path.getsize(file) if os.path.isfile(file) else 0
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

    from swift_ext.datasets.issues import CODES

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
    from swift_ext.datasets.percentiles import percentiles

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
    from swift_ext.datasets.lengths import measure
    from swift_ext.datasets.mediatokens import StatsError
    from swift_ext.datasets.packing import Budget, summarize
    from swift_ext.planner import datafit

    if fmt not in ("text", "json"):
        raise UserError.one(f"--format must be text or json, got {fmt!r}")
    files = [without_sample_suffix(f) for f in files or []]
    try:
        if recipe is not None:  # the recipe's data as plan resolves it (swift_ext.planner.datafit)
            from swift_ext.msswift.option_names import with_full_names
            from swift_ext.spec.recipe import load_recipe

            from swift_ext.planner.plan import make_plan

            rec = with_full_names(load_recipe(recipe))
            settings, notes = datafit.settings_from_recipe(rec, tokenizer=tokenizer, template=template)
            # The batch layout (data-parallel size included) is the Plan's: a scheduler-sized launch is
            # sized there, and plan's own data line counts with the same one.
            plan = make_plan(rec, oracle=False, data=False)
            budget = datafit.budget_from_plan(plan)
            if rec.engine == "megatron" and plan.layout is None:
                notes.append(f"data-parallel size unknown (`swift-ext plan {recipe}` reports why): counted as 1")
            if not files:
                info = datafit.recipe_data(rec)
                files = [path for key, path in info.files if key == "dataset"]
                notes += [f"{entry}: a hub dataset, not counted here" for entry in info.hub]
        else:
            settings, notes = datafit.counting_settings(None, template=template or "qwen3_5", tokenizer=tokenizer)
            budget = Budget(max_length=max_length)
        if max_length:
            budget = dataclasses.replace(budget, max_length=max_length)
        if not files:
            raise UserError.one("no local data files", hint="swift-ext data stats FILE [FILE...] [--recipe R.yaml]")
        lengths = measure(files, settings, progress=_stats_progress(files) if fmt == "text" else None,
                          use_cache=not no_cache)
        summary = summarize(lengths, budget)
        summary["notes"][:0] = notes
        if png is not None:
            st.write_png(summary, lengths.total, str(png))
            summary["notes"].append(f"histogram written to {png}")
    except StatsError as exc:
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
