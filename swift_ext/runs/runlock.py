"""One `swift-ext run` per output folder.

Two runs writing into one folder interleave their checkpoints and logging.jsonl rows. The run takes an
exclusive flock on OUTPUT_DIR/.swift-ext-run.lock and keeps it (its reaper holds it too, until the
trainer's processes are gone); the kernel drops it when they die, however they die, so a stale lock
file never blocks anything. The file says who holds it, for the refusal message.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
from pathlib import Path

from swift_ext.runs.rundir import RunDir
from swift_ext.spec.findings import UserError


def acquire(out: Path, *, recipe: str | None = None) -> int:
    """The locked file descriptor, or a UserError naming the run that holds the folder."""
    path = RunDir(out).lock_file
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe(path)
        os.close(fd)
        raise UserError.one(f"another `swift-ext run` is writing into {out} ({holder}): two runs in one output "
                            "folder would mix their checkpoints and logs", file=recipe, path="args.output_dir",
                            hint="wait for it, stop it, or set args.output_dir to another folder") from None
    info = {"pid": os.getpid(), "host": os.uname().nodename,
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def _describe(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
