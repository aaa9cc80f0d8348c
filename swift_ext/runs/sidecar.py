"""The hang sidecar and stall clock.

The sidecar (`python -m swift_ext.runs.watch supervise --output-dir D -- megatron sft ...`, started by the
sbatch script on every node) runs the training command as its child, and when no new row and no new
checkpoint appears for `watch.stall_minutes` it dumps every rank's Python stack into
D/swift-ext-watch/hang-<time>/ (py-spy when installed, else faulthandler through stackhook/), stops
the training and exits with STALL_EXIT, which the batch script answers with a requeue.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from swift_ext.runs.process import tree
from swift_ext.runs.rundir import LOG_FILE, RunDir
from swift_ext.runs.watchlog import LogFollower, is_train_row

STALL_EXIT = 75  # EX_TEMPFAIL: "try again later"; the sbatch script requeues on it
STACK_HOOK = Path(__file__).parent / "stackhook"
WATCH_DIR = "swift-ext-watch"


# -- stall detection ------------------------------------------------------------------------------------

class StallClock:
    """Seconds of silence allowed: watch.stall_minutes, else max(10 min, 20 x median row interval); before
    the first row, watch.startup_minutes."""

    def __init__(self, stall_minutes: float | None = None, startup_minutes: float = 60.0):
        self.fixed = stall_minutes * 60 if stall_minutes else None
        self.disabled = stall_minutes == 0
        self.startup = startup_minutes * 60
        self.intervals: list[float] = []
        self.last_progress = time.monotonic()
        self.rows = 0

    def progress(self, rows: int = 1, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if rows and self.rows:
            self.intervals.append((now - self.last_progress) / rows)
            self.intervals = self.intervals[-50:]
        self.rows += rows
        self.last_progress = now

    def threshold(self) -> float:
        if self.fixed:
            return self.fixed
        if not self.intervals:
            return self.startup
        return max(600.0, 20 * statistics.median(self.intervals))

    def silent_for(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.last_progress

    def stalled(self, now: float | None = None) -> bool:
        return not self.disabled and self.silent_for(now) > self.threshold()


# -- stack dumps ------------------------------------------------------------------------------------------

def descendants(root: int) -> dict[int, str]:
    """pid -> command line of root and everything below it."""
    return tree(root)


def dump_stacks(root_pid: int, stack_dir: Path, into: Path, wait_s: float = 3.0) -> list[Path]:
    """Every Python process under root_pid: `py-spy dump` when it works, else faulthandler via SIGUSR2
    (only pids that registered the hook, which is what makes the signal safe). Returns the files written."""
    into.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    procs = descendants(root_pid)
    (into / f"processes-{host}.txt").write_text("".join(f"{pid} {cmd}\n" for pid, cmd in sorted(procs.items())))
    written = []
    pyspy = shutil.which("py-spy")
    hooked: dict[int, tuple[Path, int]] = {}
    for pid, cmd in sorted(procs.items()):
        if pyspy:
            try:
                res = subprocess.run([pyspy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                res = None
            if res is not None and res.returncode == 0 and res.stdout.strip():
                path = into / f"py-spy-{host}-{pid}.txt"
                path.write_text(f"# {cmd}\n{res.stdout}")
                written.append(path)
                continue
        live = stack_dir / f"{host}-{pid}.txt"
        if live.is_file():
            hooked[pid] = (live, live.stat().st_size)
    for pid in hooked:
        try:
            os.kill(pid, signal.SIGUSR2)
        except OSError:
            continue
    deadline = time.monotonic() + wait_s
    while hooked and time.monotonic() < deadline:
        time.sleep(0.2)
        if all(live.stat().st_size > size for live, size in hooked.values()):
            break
    time.sleep(0.3)  # let faulthandler finish writing every thread
    for pid, (live, size) in hooked.items():
        with open(live, "rb") as fh:
            fh.seek(size)
            text = fh.read().decode(errors="replace")
        if text.strip():
            path = into / f"faulthandler-{host}-{pid}.txt"
            path.write_text(f"# {procs.get(pid, '')}\n{text}")
            written.append(path)
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            res = subprocess.run([smi], capture_output=True, text=True, timeout=30)
            (into / f"nvidia-smi-{host}.txt").write_text(res.stdout + res.stderr)
        except (OSError, subprocess.TimeoutExpired):
            pass
    return written


# -- the sidecar -------------------------------------------------------------------------------------

def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass


def supervise(argv: list[str], output_dir: Path, *, stall_minutes: float | None = None, startup_minutes: float = 60,
              poll_s: float = 2.0, term_grace_s: float = 30.0, marker: str | None = None) -> int:
    """Run `argv` and watch the run's log; on a stall dump stacks, stop it and return STALL_EXIT."""
    watch_dir = output_dir / WATCH_DIR
    stack_dir = watch_dir / "faulthandler"
    env = dict(os.environ)
    env["SWIFT_EXT_STACK_DIR"] = str(stack_dir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(STACK_HOOK), env.get("PYTHONPATH")) if p)
    started = time.time()
    # Its own process group, so that a hung run can be stopped whole (torchrun and every rank).
    child = subprocess.Popen(argv, env=env, start_new_session=True)
    received: list[int] = []

    def forward(signum, frame):
        received.append(signum)

    for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    try:
        return _supervise_loop(child, argv, output_dir, clock=StallClock(stall_minutes, startup_minutes), poll_s=poll_s,
                               term_grace_s=term_grace_s, marker=marker, received=received, started=started)
    finally:
        _drop_empty_stack_files(stack_dir)


def _drop_empty_stack_files(stack_dir: Path) -> None:
    """The hook opens one file per Python process; those never dumped into are noise once it has gone."""
    host = socket.gethostname()
    for path in stack_dir.glob(f"{host}-*.txt"):
        pid = path.stem.rsplit("-", 1)[-1]
        try:
            if path.stat().st_size == 0 and not (pid.isdigit() and psutil.pid_exists(int(pid))):
                path.unlink()
        except OSError:
            pass


def _supervise_loop(child, argv, output_dir: Path, *, clock: StallClock, poll_s: float, term_grace_s: float,
                    marker: str | None, received: list[int], started: float) -> int:
    watch_dir = output_dir / WATCH_DIR
    stack_dir = watch_dir / "faulthandler"
    follower: LogFollower | None = None
    checkpoints = _checkpoints(output_dir)
    forwarded = 0
    while True:
        try:
            return child.wait(timeout=poll_s)
        except subprocess.TimeoutExpired:
            pass
        if len(received) > forwarded:
            # Slurm usually signals every process of the step itself; give the child a moment to act on it,
            # then pass it on to the whole group (what `kill $STEP` did before there was a sidecar).
            sig = received[forwarded]
            forwarded = len(received)
            try:
                return child.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                _kill_group(child.pid, sig)
            continue
        if follower is None:
            log = _current_log(output_dir, started)
            follower = LogFollower(log) if log else None
        rows = follower.poll() if follower else []
        train_rows = sum(1 for r in rows if is_train_row(r))
        now_ckpts = _checkpoints(output_dir)
        if train_rows or now_ckpts != checkpoints or (rows and not clock.rows):
            clock.progress(max(train_rows, 1))
            checkpoints = now_ckpts
        if not clock.stalled():
            continue
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        into = watch_dir / f"hang-{stamp}-{socket.gethostname()}"
        print(f"swift-ext watch: no progress for {clock.silent_for():.0f}s (threshold {clock.threshold():.0f}s); "
              f"dumping stacks into {into}", file=sys.stderr, flush=True)
        files = dump_stacks(child.pid, stack_dir, into)
        (into / "hang.json").write_text(json.dumps({
            "host": socket.gethostname(), "silent_s": round(clock.silent_for(), 1),
            "threshold_s": round(clock.threshold(), 1), "rows_seen": clock.rows, "argv": argv,
            "stack_files": [f.name for f in files], "time": stamp}, indent=2) + "\n")
        if marker:
            (watch_dir / marker).write_text(str(into) + "\n")
        _kill_group(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=term_grace_s)
        except subprocess.TimeoutExpired:
            _kill_group(child.pid, signal.SIGKILL)
            child.wait()
        print(f"swift-ext watch: stopped the hung run; exit {STALL_EXIT} (requeue)", file=sys.stderr, flush=True)
        return STALL_EXIT


def _current_log(output_dir: Path, since: float) -> Path | None:
    """The logging.jsonl this session writes: OUTPUT_DIR's own (fixed dir, appended on resume) or a v*-* one
    created after the sidecar started."""
    own = output_dir / LOG_FILE
    if own.is_file():
        return own
    fresh = RunDir(output_dir).logs_since(since - 5)
    return max(fresh, key=lambda p: p.stat().st_mtime) if fresh else None


def _checkpoints(output_dir: Path) -> frozenset[str]:
    return RunDir(output_dir).checkpoint_names()


def _main(argv: list[str]) -> int:
    """`python -m swift_ext.runs.watch supervise --output-dir D [--stall-minutes M] [--startup-minutes M]
    [--marker NAME] -- COMMAND...` (what the sbatch script runs on every node)."""
    import argparse

    if "--" not in argv:
        print("usage: python -m swift_ext.runs.watch supervise --output-dir D [...] -- COMMAND...", file=sys.stderr)
        return 2
    cut = argv.index("--")
    parser = argparse.ArgumentParser(prog="python -m swift_ext.runs.watch")
    parser.add_argument("verb", choices=["supervise"])
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--stall-minutes", type=float, default=None)
    parser.add_argument("--startup-minutes", type=float, default=60.0)
    parser.add_argument("--poll-seconds", type=float, default=2.0)
    parser.add_argument("--term-grace-seconds", type=float, default=30.0)
    parser.add_argument("--marker", default=None)
    opts = parser.parse_args(argv[:cut])
    command = argv[cut + 1:]
    if not command:
        print("no command after --", file=sys.stderr)
        return 2
    return supervise(command, Path(opts.output_dir), stall_minutes=opts.stall_minutes,
                     startup_minutes=opts.startup_minutes, poll_s=opts.poll_seconds,
                     term_grace_s=opts.term_grace_seconds, marker=opts.marker)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
