"""The typer app every verb module registers on, and the presentation helpers they share."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from swift_ext.spec.findings import UserError

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
    if not err.is_terminal:  # no colours to add: rich's ~0.7 ms a line made 20,000 findings a 14 s print
        err.file.write("".join(f"{kind}: {_with_evidence(p, markup=False)}\n" for kind, found in
                               (("error", plan.errors), ("warning", plan.warnings)) for p in found))
        err.file.flush()
        return
    for p in plan.errors:
        err.print(f"[red]error[/red]: {_with_evidence(p)}", markup=True)
    for p in plan.warnings:
        err.print(f"[yellow]warning[/yellow]: {_with_evidence(p)}", markup=True)


def _with_evidence(problem, markup: bool = True) -> str:
    """The finding's line and, after it, why the rule is believed (spec/ruleset.py), e.g.
    "[megatron-core TransformerConfig.__post_init__]". Escaped for rich, which would read "[...]" as markup."""
    from rich.markup import escape

    from swift_ext.spec.ruleset import evidence_tag

    tag = evidence_tag(problem.code)
    text = problem.render() + (f" [{tag}]" if tag else "")
    return escape(text) if markup else text




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
