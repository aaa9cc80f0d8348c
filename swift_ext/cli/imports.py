"""`import`: an ms-swift shell script into recipe(s)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from swift_ext.spec.findings import UserError
from swift_ext.cli.app import app, _console


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
    refused = 0
    for data, notes in imported:
        for note in notes:
            err.print(f"note: {note}", markup=False)
        warnings = _import_warnings(data, script)
        refused += len(warnings)
        for p in warnings:
            err.print(f"warning: {p.render()} — the installed ms-swift does not accept this flag as written", markup=False)
        texts.append(recipe_yaml(data))
    if refused and not upgrade:
        # Most such flags in published scripts are ms-swift 3.x names: say how many --upgrade would take, counted by
        # importing again with it (the one reading of the renames), rather than leave the user to find the option.
        left = sum(len(_import_warnings(data, script)) for data, _ in import_file(script, True))
        if left < refused:
            err.print(f"hint: {refused - left} of these {refused} flag(s) are ms-swift 3.x arguments: "
                      f"`swift-ext import --upgrade {script}` renames them to their 4.x names or drops removed ones "
                      f"(each change noted)",
                      markup=False)
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
    from swift_ext.planner.arg_checks import check_args
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
