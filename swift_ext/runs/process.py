"""The trainer as a process tree that never outlives swift-ext.

The child leads its own process group, so torchrun, its ranks, `swift sft`'s own child (swift/cli/main.py
starts the real trainer with subprocess) and their data-loader workers can be stopped together.
- SIGTERM/SIGINT/SIGHUP sent to swift-ext go to the whole group; after the grace period whatever is
  left gets SIGKILL; a second signal kills at once.
- When swift-ext itself is SIGKILLed no handler runs. Two things stop the tree then: PR_SET_PDEATHSIG
  makes the kernel SIGTERM the direct child (it does not reach grandchildren, which is why the
  transformers engine's trainer used to survive), and a small reaper process (reaper.py, in its own
  session so terminal signals do not reach it) holds the read end of a pipe from swift-ext: the kernel
  closes that pipe when swift-ext dies however it dies, and the reaper then ends the whole group.
- With a run log, the trainer's stdout/stderr are copied to the terminal and to the log; once a stop
  signal arrived they go to the log only, so Ctrl-C leaves one line on the terminal, not a
  KeyboardInterrupt traceback per process.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from swift_ext.spec.findings import UserError

if TYPE_CHECKING:  # the reaper imports this module: it stays light
    from swift_ext.planner.launch import Launch

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
REAPER_DONE = b"done\n"


@dataclass
class Ending:
    """How a child process ended: its exit code as a shell would report it, and what stopped it."""

    exit_code: int
    signal: str | None = None  # the signal swift-ext received and forwarded, e.g. "SIGTERM"
    killed_after_grace: bool = False  # the group outlived the grace period and got SIGKILL

    @property
    def how(self) -> str:
        if self.signal:
            return "stopped"
        return "completed" if self.exit_code == 0 else "failed"

    def as_dict(self) -> dict:
        return {"how": self.how, "exit_code": self.exit_code, "signal": self.signal,
                "killed_after_grace": self.killed_after_grace}


def free_port() -> int:
    """A TCP port nothing on this machine listens on now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def python_bin_dir() -> str:
    return str(Path(sys.executable).parent)


def execute(launch: "Launch", grace_s: float = 30.0, *, log: Path | None = None, keep_fds: tuple[int, ...] = (),
            on_signal=None) -> Ending:
    """Run the command with the recipe's env on top of ours. Without `log` its output goes straight to
    ours; with it, through swift-ext into the log as well (see the module doc). `keep_fds` are handed to
    the reaper (the run lock: held until the tree is gone). `on_signal(name)` is called once, at the
    first stop signal. The exit code is 128+N when signal N stopped the run."""
    env = {**os.environ, **launch.env}
    if "NPROC_PER_NODE" in env and "MASTER_PORT" not in env and str(env.get("NNODES", "1")).strip() in ("", "1"):
        # One node under torchrun: without MASTER_PORT every run on this machine takes torchrun's default 29500 and the
        # second one fails to bind it ("address already in use", modelscope/ms-swift#2192); a free port of its own keeps
        # concurrent single-node runs apart. Several nodes share the master's port: theirs is given, never picked here.
        env["MASTER_PORT"] = str(free_port())
    if shutil.which(launch.argv[0], path=env.get("PATH")) is None:
        # `swift`/`megatron` live next to our interpreter, which may not be on PATH (.venv/bin/swift-ext).
        env["PATH"] = python_bin_dir() + os.pathsep + env.get("PATH", "")
    received: list[int] = []
    group: list[int] = []  # the child's pid = its process group, once started
    quiet = threading.Event()

    def forward(signum, _frame):
        received.append(signum)
        if len(received) == 1:
            quiet.set()
            if on_signal is not None:
                on_signal(signal.Signals(signum).name)
        if group:
            signal_group(group[0], signal.SIGKILL if len(received) > 1 else signum)

    previous = {s: signal.getsignal(s) for s in FORWARDED}
    pumps: list[threading.Thread] = []
    log_fh = open(log, "ab") if log is not None else None
    reaper = None
    try:
        for s in FORWARDED:
            signal.signal(s, forward)
        pipe = subprocess.PIPE if log_fh else None
        try:
            proc = subprocess.Popen(launch.argv, env=env, process_group=0, stdout=pipe, stderr=pipe,
                                    preexec_fn=term_when_parent_dies if sys.platform == "linux" else None)
        except FileNotFoundError:
            raise UserError.one(
                f"`{launch.argv[0]}` is not on PATH",
                hint="install ms-swift (pip install 'swift-ext[train]') in this environment",
            ) from None
        group.append(proc.pid)
        reaper = start_reaper(proc.pid, grace_s, keep_fds)
        if log_fh:
            lock = threading.Lock()
            pumps = [threading.Thread(target=_pump, args=(src, dst, log_fh, lock, quiet), daemon=True)
                     for src, dst in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr))]
            for t in pumps:
                t.start()
        if received:  # a signal arrived while the child was being started
            signal_group(proc.pid, received[0])
        killed = _wait_group(proc, received, grace_s)
        for t in pumps:
            t.join(timeout=5)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if reaper is not None:
            stop_reaper(reaper)
        if log_fh:
            log_fh.close()
    code = proc.returncode
    if received:
        return Ending(128 + received[0], signal.Signals(received[0]).name, killed)
    return Ending(128 - code if code < 0 else code)


def _pump(src, dst, log_fh, lock: threading.Lock, quiet: threading.Event) -> None:
    """Copy the child's output as it comes (tqdm's \\r updates included) to the log, and to the terminal
    until a stop signal arrived."""
    out = getattr(dst, "buffer", None)
    while True:
        chunk = os.read(src.fileno(), 65536)
        if not chunk:
            break
        with lock:
            log_fh.write(chunk)
            log_fh.flush()
        if not quiet.is_set() and out is not None:
            try:
                out.write(chunk)
                out.flush()
            except (OSError, ValueError):
                pass
    src.close()


def term_when_parent_dies() -> None:
    """In the child, before exec: SIGTERM it if swift-ext itself is SIGKILLed (no handler runs then)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


_REAPER_CODE = "import sys; sys.path.insert(0, sys.argv[1]); from swift_ext.runs.reaper import main; main(sys.argv[2:])"


def start_reaper(pgid: int, grace_s: float, keep_fds: tuple[int, ...] = ()) -> tuple[subprocess.Popen, int]:
    """The reaper of process group `pgid`; returns it and the write end of its pipe (ours only)."""
    read_end, write_end = os.pipe()
    root = str(Path(__file__).resolve().parents[2])
    try:
        reaper = subprocess.Popen([sys.executable, "-c", _REAPER_CODE, root, str(pgid), str(grace_s),
                                   *(str(fd) for fd in keep_fds)],
                                  stdin=read_end, pass_fds=keep_fds, start_new_session=True,
                                  stdout=subprocess.DEVNULL)
    finally:
        os.close(read_end)
    return reaper, write_end


def stop_reaper(reaper: tuple[subprocess.Popen, int]) -> None:
    """The tree is gone (or was never started): tell the reaper so, and let it exit."""
    proc, write_end = reaper
    try:
        os.write(write_end, REAPER_DONE)
    except OSError:
        pass
    os.close(write_end)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _wait_group(proc, received: list[int], grace_s: float) -> bool:
    """Wait for the leader, then for every process left in its group; SIGKILL after the grace period.
    True when SIGKILL was needed."""
    deadline = None
    killed = False
    while True:
        if received and deadline is None:
            deadline = time.monotonic() + grace_s
        try:
            proc.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if deadline is not None and time.monotonic() > deadline and not killed:
                signal_group(proc.pid, signal.SIGKILL)
                killed = True
    # The leader is gone; its children (ranks, data-loader workers) may not be. Nothing outlives the run.
    end = None if deadline is None else deadline
    return end_group(proc.pid, grace_s if end is None else max(0.0, end - time.monotonic())) or killed


def end_group(pgid: int, grace_s: float) -> bool:
    """SIGTERM what is left of the group, SIGKILL it after `grace_s`; True when SIGKILL was needed."""
    if not group_members(pgid):
        return False
    signal_group(pgid, signal.SIGTERM)
    end = time.monotonic() + grace_s
    while group_members(pgid) and time.monotonic() < end:
        time.sleep(0.1)
    if group_members(pgid):
        signal_group(pgid, signal.SIGKILL)
        return True
    return False


def signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (not zombie) processes of the group: init may be slow to reap zombies, which kill(0) counts."""
    found = []
    for p in psutil.process_iter(["status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(p.pid) == pgid:
                found.append(p)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return found


def tree(root: int) -> dict[int, str]:
    """pid -> command line of `root` and every process below it."""
    try:
        top = psutil.Process(root)
        procs = [top, *top.children(recursive=True)]
    except psutil.Error:
        return {}
    out = {}
    for p in procs:
        try:
            out[p.pid] = " ".join(p.cmdline())
        except psutil.Error:
            continue
    return out


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
