"""`make bench`: every benchmark in this folder, each printing ratios against a baseline from the same run."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent

if __name__ == "__main__":
    only = sys.argv[1:]
    for path in sorted(HERE.glob("bench_*.py")):
        if only and path.stem not in only:
            continue
        print(f"\n=== {path.stem} ===", flush=True)
        sys.argv = [str(path)]  # each benchmark runs as if started alone: run_all's arguments are not its own
        try:
            runpy.run_path(str(path), run_name="__main__")
        except SystemExit as exc:  # a benchmark that exits (0: done or skipped) does not end the others
            if exc.code not in (0, None):
                raise
