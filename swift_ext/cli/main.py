"""The `swift-ext` entry point: registers every verb module on the app, then one error funnel."""

from __future__ import annotations

import os
import sys
from typing import List, Optional

import typer

# Registration order is the order `--help` lists the verbs in.
from swift_ext.cli import plan, runs, imports, after, eval, data  # noqa: F401,I001  (each registers its verbs on `app`)
from swift_ext.cli.app import app
from swift_ext.spec.findings import UserError


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
    except OSError as exc:
        # A path the OS refuses (name too long, permission denied, a directory where a file goes): bad input,
        # said in one line. An OSError without a file name is no such thing and stays an internal error.
        if debug:
            raise
        if exc.filename is None:
            return _internal_error(exc)
        from swift_ext.spec.yamlio import short_name

        print(f"error: {short_name(str(exc.filename))}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if debug:
            raise
        return _internal_error(exc)


def _internal_error(exc: BaseException) -> int:
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
