"""Ends a trainer's process group when swift-ext is gone (started by process.start_reaper).

Its stdin is a pipe whose write end only swift-ext holds. swift-ext writes "done" once the group has
ended normally; end of file without it means swift-ext died (SIGKILL, OOM killer, a crash): the group
gets SIGTERM, and SIGKILL after the grace period. File descriptors named after the grace (the run
lock) stay open here until the group is gone, so the next run into that folder cannot start beside
the remains of this one. Stdlib and psutil only: it must start in a few hundred milliseconds.
"""

from __future__ import annotations

import os
import signal
import sys

from swift_ext.runs.process import REAPER_DONE, end_group


def main(argv: list[str]) -> None:
    pgid, grace_s = int(argv[0]), float(argv[1])
    for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)  # only the pipe decides; Ctrl-C is swift-ext's to handle
    seen = b""
    while True:
        try:
            chunk = os.read(0, 64)
        except InterruptedError:
            continue
        if not chunk:
            break
        seen += chunk
    if REAPER_DONE.strip() in seen:
        return
    end_group(pgid, grace_s)


if __name__ == "__main__":
    main(sys.argv[1:])
