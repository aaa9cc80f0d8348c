"""`swift-ext watch RUN` and the hang sidecar: follow ms-swift's logging.jsonl as it grows.

What ms-swift 4.6 writes per logged step (read from its source):
- `swift sft|rlhf` (swift/trainers/patcher.py add_train_message): `global_step/max_steps` "N/M",
  `elapsed_time`/`remaining_time` ("1h 2m 3s"), `train_speed(s/it)` (average since this session
  started), `memory(GiB)` (max reserved, rank 0), plus the trainer's loss, grad_norm, learning_rate and,
  with `include_num_input_tokens_seen: true`, transformers' `num_input_tokens_seen`. The last rows are
  `train_runtime`/`train_loss` and then `last_model_checkpoint`.
- `megatron sft|rlhf` (swift/megatron/callbacks/print.py): the same with `iteration` "N/M" instead of
  `global_step/max_steps`, memory = max over the model-parallel group; written by the last rank.
- GRPO (swift/rlhf_trainers/grpo_trainer.py, swift/megatron/trainers/grpo_trainer.py): `reward`,
  `reward_std`, `frac_reward_zero_std`, `rewards/<Func>/mean|std`, `completions/mean_length`,
  `completions/clipped_ratio`, `kl`, `clip_ratio/region_mean` (or `clip_ratio`), `step_time`.

From these and the model shape (swift_ext/planner/mfu.py) every training row becomes a `Sample`: step time,
tokens/s per GPU, TFLOP/s per GPU, MFU against the GPU's dense bf16 peak (swift_ext/spec/gpus.py), ETA,
memory, GRPO health. Tokens per step come from `num_input_tokens_seen` when logged; otherwise from the
batch: global batch x max_length (exact with packing, an upper bound without), and for GRPO the
sequences x `completions/mean_length` (ms-swift does not log prompt lengths, so that is a lower bound).

The sidecar (`python -m swift_ext.runs.watch supervise --output-dir D -- megatron sft ...`, started by the
sbatch script on every node) runs the training command as its child, and when no new row and no new
checkpoint appears for `watch.stall_minutes` it dumps every rank's Python stack into
D/swift-ext-watch/hang-<time>/ (py-spy when installed, else faulthandler through stackhook/), stops
the training and exits with STALL_EXIT, which the batch script answers with a requeue.
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from swift_ext.planner import mfu as mfu_model
from swift_ext.spec.errors import UserError
from swift_ext.spec.gpus import GPUS

STALL_EXIT = 75  # EX_TEMPFAIL: "try again later"; the sbatch script requeues on it
STACK_HOOK = Path(__file__).parent / "stackhook"
WATCH_DIR = "swift-ext-watch"
ZERO_STD_WARN = 0.5


# -- reading the log -------------------------------------------------------------------------------

def parse_duration(text) -> float | None:
    """ms-swift's format_time ("1d 2h 3m 4s", "5s") -> seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    if not isinstance(text, str):
        return None
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([dhms])", text)
    if not parts:
        return None
    unit = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(float(n) * unit[u] for n, u in parts)


def parse_line(line: str) -> dict | None:
    """A logging.jsonl row, or the dict ms-swift prints to stdout (`{'loss': '1.2', ...}`)."""
    line = line.strip()
    start = line.find("{")
    if start < 0:
        return None
    text = line[start:]
    try:
        row = json.loads(text)
    except ValueError:
        try:
            row = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return row if isinstance(row, dict) else None


class LogFollower:
    """Complete lines appended to a file since the last poll (a partial last line waits)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = b""

    def poll(self) -> list[dict]:
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if size < self.offset:  # truncated or replaced: start over
            self.offset, self.partial = 0, b""
        if size == self.offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(size - self.offset)
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        rows = []
        for raw in lines:
            row = parse_line(raw.decode("utf-8", errors="replace"))
            if row is not None:
                rows.append(row)
        return rows


def find_log(run: Path) -> Path | None:
    """RUN itself (a file), RUN/logging.jsonl, or the newest RUN/v*-*/logging.jsonl."""
    if run.is_file():
        return run
    if (run / "logging.jsonl").is_file():
        return run / "logging.jsonl"
    versions = sorted(run.glob("v*-*/logging.jsonl"), key=lambda p: p.stat().st_mtime)
    return versions[-1] if versions else None


def step_of(row: dict) -> tuple[int, int] | None:
    text = row.get("global_step/max_steps", row.get("iteration"))
    if not isinstance(text, str) or "/" not in text:
        return None
    a, _, b = text.partition("/")
    try:
        return int(a), int(b)
    except ValueError:
        return None


def is_train_row(row: dict) -> bool:
    return (step_of(row) is not None and "train_runtime" not in row
            and any(k in row for k in ("loss", "grad_norm", "learning_rate", "reward")))


def is_final_row(row: dict) -> bool:
    return "train_runtime" in row or "last_model_checkpoint" in row


# -- what the run is ---------------------------------------------------------------------------------

@dataclass
class RunContext:
    gpus: int = 1
    gpu: str | None = None
    peak_tflops: float | None = None
    shape_name: str | None = None
    flops_note: str = ""
    lora: bool = False
    mtp_layers: int = 0
    max_length: int | None = None
    sequences_per_step: int | None = None
    packing: bool = False
    logging_steps: int = 1
    watch: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    shape: object = field(default=None, repr=False)

    def flops_per_token(self, seq_len: float | None) -> float | None:
        if self.shape is None:
            return None
        return mfu_model.train_flops_per_token(self.shape, seq_len or self.max_length or 0,
                                               lora=self.lora, mtp_layers=self.mtp_layers)

    def megatron_flops_per_token(self, seq_len: float | None) -> float | None:
        """The Megatron/PaLM convention (planner/mfu.py): comparable with published TFLOP/s per GPU."""
        if self.shape is None:
            return None
        return mfu_model.megatron_flops_per_token(self.shape, seq_len or self.max_length or 0,
                                                  mtp_layers=self.mtp_layers)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_context(run: Path, log: Path | None, *, model_config: str | None = None, peak_tflops: float | None = None,
                 gpus: int | None = None) -> RunContext:
    """The run's args.json (next to the log) and swift-ext manifest (the output dir) -> RunContext."""
    from swift_ext.planner.model_shape import from_config_file, resolve_shape

    run_dir = run if run.is_dir() else run.parent
    places = list(dict.fromkeys([run_dir, *([log.parent, log.parent.parent] if log else [])]))
    args: dict = {}
    for place in [log.parent if log else run_dir, run_dir]:
        args = _read_json(place / "args.json")
        if args:
            break
    manifest: dict = {}
    for place in places:
        found = sorted(place.glob("swift-ext-run-*.json"))
        if found:
            manifest = _read_json(found[-1])
            break
    recipe = manifest.get("recipe") if isinstance(manifest.get("recipe"), dict) else {}
    args = {**(recipe.get("args") if isinstance(recipe.get("args"), dict) else {}), **args}  # args.json (ms-swift's resolved values) wins
    launch = recipe.get("launch") if isinstance(recipe.get("launch"), dict) else {}
    watch_cfg = recipe.get("watch") if isinstance(recipe.get("watch"), dict) else {}
    ctx = RunContext(watch={k: _num(watch_cfg.get(k)) for k in ("stall_minutes", "startup_minutes")})
    nodes, per_node = _count(launch.get("nodes"), 1), _count(launch.get("gpus_per_node"), 0)
    ctx.gpus = gpus or max(nodes * per_node, 1)
    ctx.gpu = launch.get("gpu") if isinstance(launch.get("gpu"), str) else None
    if peak_tflops:
        ctx.peak_tflops = peak_tflops
    elif ctx.gpu in GPUS:
        ctx.peak_tflops = GPUS[ctx.gpu].bf16_tflops
    elif per_node == 0 and launch:
        ctx.notes.append("CPU run: no MFU without --peak-tflops")
    else:
        ctx.notes.append("no launch.gpu recorded: pass --peak-tflops for MFU")
    ctx.lora = str(args.get("tuner_type") or args.get("train_type") or "full") != "full"
    ctx.mtp_layers = _count(args.get("mtp_num_layers"), 0)
    ctx.max_length = _count(args.get("max_length"), 0) or None
    ctx.packing = bool(args.get("packing"))
    ctx.logging_steps = _count(args.get("logging_steps") or args.get("log_interval"), 1) or 1
    if _count(args.get("global_batch_size"), 0):
        ctx.sequences_per_step = _count(args["global_batch_size"], 0)
    elif _count(args.get("per_device_train_batch_size"), 0):
        ctx.sequences_per_step = (_count(args["per_device_train_batch_size"], 0)
                                  * (_count(args.get("gradient_accumulation_steps"), 1) or 1) * ctx.gpus)
    model = args.get("model")
    try:
        if model_config:
            ctx.shape = from_config_file(Path(model_config), name=model_config)
        elif model:
            ctx.shape = resolve_shape(str(model))
    except UserError as exc:
        ctx.notes.append(f"no model shape ({exc.problems[0].message}): pass --model-config for MFU")
    if ctx.shape is not None:
        ctx.shape_name = ctx.shape.name
        active = mfu_model.active_params(ctx.shape, ctx.mtp_layers)
        ctx.flops_note = (f"{'4' if ctx.lora else '6'}·N_active (N_active {active / 1e9:.3g}B"
                          f"{', LoRA' if ctx.lora else ''}) + attention")
    return ctx


# -- rows -> samples ------------------------------------------------------------------------------------

GRPO_KEYS = ("reward", "reward_std", "frac_reward_zero_std", "completions/mean_length", "completions/clipped_ratio",
             "kl", "clip_ratio/region_mean", "clip_ratio")


@dataclass
class Sample:
    step: int
    max_steps: int
    loss: float | None = None
    grad_norm: float | None = None
    learning_rate: float | None = None
    step_time_s: float | None = None
    tokens_per_step: float | None = None
    tokens_source: str | None = None
    tokens_per_s_per_gpu: float | None = None
    tflops_per_gpu: float | None = None
    mfu: float | None = None
    tflops_per_gpu_megatron: float | None = None  # 6·N (LoRA too) + attention without causal halving
    mfu_megatron: float | None = None
    memory_gib: float | None = None
    eta_s: float | None = None
    remaining_time: str | None = None
    grpo: dict = field(default_factory=dict)


def _num(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _count(value, default: int) -> int:
    """A positive whole number from a config value, else `default` (the run's files are not ours to trust)."""
    number = _num(value)
    if number is None or number != number or number in (float("inf"), float("-inf")) or number < 0:
        return default
    return int(number)


class Analyser:
    """Turns training rows into Samples, one at a time, as they arrive."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self.samples: list[Sample] = []
        self.finished = False
        self._prev: tuple[int, float, float | None] | None = None  # step, session seconds, tokens seen
        self._session_start: int | None = None

    def add(self, row: dict) -> Sample | None:
        if is_final_row(row):
            self.finished = True
            return None
        if not is_train_row(row):
            return None
        step, max_steps = step_of(row)
        if self._prev is not None and step <= self._prev[0]:  # a new session (resume) in the same file
            self._prev, self._session_start = None, None
        speed = _num(row.get("train_speed(s/it)"))
        elapsed = parse_duration(row.get("elapsed_time"))
        if self._session_start is None:
            # ms-swift's speed is elapsed/(step - start step); the start step is the resumed one.
            guess = step - elapsed / speed if speed and elapsed and elapsed >= 30 else None
            if guess is not None and 0 <= guess <= step:
                self._session_start = round(guess)
            else:
                self._session_start = step - self.ctx.logging_steps
        start = self._session_start
        session_s = speed * (step - start) if speed is not None else None
        tokens_seen = _num(row.get("num_input_tokens_seen")) or None
        sample = Sample(step=step, max_steps=max_steps, loss=_num(row.get("loss")),
                        grad_norm=_num(row.get("grad_norm")), learning_rate=_num(row.get("learning_rate")),
                        memory_gib=_num(row.get("memory(GiB)")), remaining_time=row.get("remaining_time"))
        prev_step, prev_s, prev_tokens = self._prev if self._prev else (start, 0.0, None)
        steps = step - prev_step
        if _num(row.get("step_time")):
            sample.step_time_s = _num(row["step_time"])
        elif session_s is not None and steps > 0:
            sample.step_time_s = max(session_s - prev_s, 0.0) / steps
        # tokens per step
        ctx = self.ctx
        if tokens_seen and prev_tokens is not None and steps > 0:
            sample.tokens_per_step, sample.tokens_source = (tokens_seen - prev_tokens) / steps, "logged"
        elif tokens_seen and self._prev is None and steps > 0 and start == 0:
            sample.tokens_per_step, sample.tokens_source = tokens_seen / steps, "logged"
        elif _num(row.get("completions/mean_length")) and ctx.sequences_per_step:
            sample.tokens_per_step = ctx.sequences_per_step * _num(row["completions/mean_length"])
            sample.tokens_source = "completions only"
        elif ctx.sequences_per_step and ctx.max_length:
            sample.tokens_per_step = ctx.sequences_per_step * ctx.max_length
            sample.tokens_source = "packed" if ctx.packing else "upper bound (batch x max_length)"
        if sample.tokens_per_step and sample.step_time_s:
            sample.tokens_per_s_per_gpu = sample.tokens_per_step / sample.step_time_s / ctx.gpus
            seq_len = None
            if sample.tokens_source == "logged" and ctx.sequences_per_step:
                seq_len = sample.tokens_per_step / ctx.sequences_per_step
            elif sample.tokens_source == "completions only":
                seq_len = _num(row["completions/mean_length"])
            fpt = ctx.flops_per_token(seq_len)
            if fpt:
                sample.tflops_per_gpu = fpt * sample.tokens_per_s_per_gpu / 1e12
                if ctx.peak_tflops:
                    sample.mfu = mfu_model.mfu(fpt, sample.tokens_per_s_per_gpu, ctx.peak_tflops)
                mfpt = ctx.megatron_flops_per_token(seq_len)
                sample.tflops_per_gpu_megatron = mfpt * sample.tokens_per_s_per_gpu / 1e12
                if ctx.peak_tflops:
                    sample.mfu_megatron = mfu_model.mfu(mfpt, sample.tokens_per_s_per_gpu, ctx.peak_tflops)
        grpo = {k: _num(row[k]) for k in GRPO_KEYS if k in row}
        for key in row:
            if key.startswith("rewards/") and (key.endswith("/mean") or key.endswith("/std")):
                grpo[key] = _num(row[key])
        sample.grpo = grpo
        self.samples.append(sample)
        recent = [s.step_time_s for s in self.samples[-10:] if s.step_time_s]
        if recent:
            sample.eta_s = (max_steps - step) * statistics.median(recent)
        if step >= max_steps:
            self.finished = True
        self._prev = (step, session_s if session_s is not None else prev_s, tokens_seen)
        return sample


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(samples: list[Sample], ctx: RunContext, finished: bool) -> dict:
    """The run so far in one dict, with health warnings."""
    last = samples[-1] if samples else None
    out: dict = {
        "finished": finished,
        "step": last.step if last else 0,
        "max_steps": last.max_steps if last else None,
        "step_time_s": _median(s.step_time_s for s in samples),
        "tokens_per_s_per_gpu": _median(s.tokens_per_s_per_gpu for s in samples),
        "tokens_source": last.tokens_source if last else None,
        "tflops_per_gpu": _median(s.tflops_per_gpu for s in samples),
        "mfu": _median(s.mfu for s in samples),
        "tflops_per_gpu_megatron": _median(s.tflops_per_gpu_megatron for s in samples),
        "mfu_megatron": _median(s.mfu_megatron for s in samples),
        "peak_memory_gib": max((s.memory_gib for s in samples if s.memory_gib is not None), default=None),
        "eta_s": last.eta_s if last and not finished else 0.0 if finished else None,
        "gpus": ctx.gpus, "gpu": ctx.gpu, "peak_tflops": ctx.peak_tflops, "model": ctx.shape_name,
        "flops": ctx.flops_note, "notes": list(ctx.notes),
    }
    if last and last.loss is not None:
        out["loss"] = last.loss
    warnings = []
    grpo_rows = [s.grpo for s in samples if s.grpo]
    if grpo_rows:
        latest = grpo_rows[-1]
        out["grpo"] = dict(latest)
        zero = [g["frac_reward_zero_std"] for g in grpo_rows if g.get("frac_reward_zero_std") is not None]
        if zero:
            recent = zero[-10:]
            out["zero_std_fraction_recent"] = statistics.median(recent)
            if statistics.median(recent) > ZERO_STD_WARN:
                warnings.append(
                    f"{statistics.median(recent):.0%} of prompt groups have zero reward std (median of the last "
                    f"{len(recent)} logged steps): their advantages are 0 and they teach nothing. Raise "
                    "num_generations or temperature, filter prompts that are always solved/failed, or set "
                    "ms-swift's `dynamic_sample: true` (DAPO: resample until groups differ, `max_resample_times`)")
        clipped = [g["completions/clipped_ratio"] for g in grpo_rows if g.get("completions/clipped_ratio") is not None]
        if clipped and statistics.median(clipped[-10:]) > 0.5:
            warnings.append(f"{statistics.median(clipped[-10:]):.0%} of completions hit max_completion_length: "
                            "raise it, or add an overlong penalty")
    bad = [s.step for s in samples if any(v is not None and v != v or v in (float("inf"), float("-inf"))
                                          for v in (s.loss, s.grad_norm))]
    if bad:
        warnings.append(f"loss or grad_norm is NaN/inf at step(s) {bad[:5]}")
    out["warnings"] = warnings
    return out


def latest_eval(run: Path, log: Path | None) -> dict | None:
    """The newest line of the run's eval/metrics.jsonl (swift_ext/after/evaluate.py writes it), if any."""
    places = [run if run.is_dir() else run.parent] + ([log.parent, log.parent.parent] if log else [])
    for place in places:
        path = place / "eval" / "metrics.jsonl"
        if path.is_file():
            lines = [_parse_eval_line(t) for t in path.read_text(encoding="utf-8", errors="replace").splitlines()]
            lines = [r for r in lines if r is not None]
            return max(lines, key=lambda r: r["step"]) if lines else None
    return None


def _parse_eval_line(text: str) -> dict | None:
    try:
        row = json.loads(text)
    except ValueError:
        return None
    return row if isinstance(row, dict) and isinstance(row.get("step"), int) else None


def analyse_file(run: Path, **ctx_options) -> tuple[list[Sample], dict, RunContext]:
    """A whole log at once (report, tests, `watch` on a finished run)."""
    log = find_log(run)
    if log is None:
        raise UserError.one("no logging.jsonl here or in a v*-* directory below it: not an ms-swift run directory",
                            file=str(run))
    ctx = load_context(run, log, **ctx_options)
    analyser = Analyser(ctx)
    for row in LogFollower(log).poll():
        analyser.add(row)
    return analyser.samples, summarise(analyser.samples, ctx, analyser.finished), ctx


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

def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, command line) for every process we can see."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError, IndexError):
            continue
        table[int(entry.name)] = (ppid, cmd)
    return table


def descendants(root: int) -> dict[int, str]:
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            out[pid] = table[pid][1]
        todo += children.get(pid, [])
    return out


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
            if path.stat().st_size == 0 and not Path(f"/proc/{pid}").exists():
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
    own = output_dir / "logging.jsonl"
    if own.is_file():
        return own
    fresh = [p for p in output_dir.glob("v*-*/logging.jsonl") if p.stat().st_mtime >= since - 5]
    return max(fresh, key=lambda p: p.stat().st_mtime) if fresh else None


def _checkpoints(output_dir: Path) -> frozenset[str]:
    return frozenset(p.name for p in output_dir.glob("checkpoint-*")) | frozenset(
        f"{p.parent.name}/{p.name}" for p in output_dir.glob("v*-*/checkpoint-*"))


# -- the viewer -------------------------------------------------------------------------------------------

def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def _g(value, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def render(samples: list[Sample], summary: dict, status: str):
    from rich.console import Group
    from rich.table import Table

    head = Table.grid(padding=(0, 2))
    last = samples[-1] if samples else None
    head.add_row("status", status)
    head.add_row("step", f"{summary['step']}/{summary['max_steps'] or '?'}   ETA {fmt_s(summary['eta_s'])}")
    head.add_row("step time", f"{_g(last.step_time_s if last else None, '.3g')} s (median {_g(summary['step_time_s'], '.3g')} s)")
    tok = summary["tokens_per_s_per_gpu"]
    head.add_row("tokens/s/GPU", f"{_g(tok, '.4g')}  ({summary['tokens_source'] or 'unknown'}; {summary['gpus']} GPU(s))")
    mfu_text = "-" if summary["mfu"] is None else f"{summary['mfu']:.1%}"
    head.add_row("MFU (required FLOPs)", f"{mfu_text}  ({_g(summary['tflops_per_gpu'], '.3g')} TFLOP/s/GPU of "
                        f"{summary['peak_tflops'] or '?'}; {summary['flops'] or 'no model shape'})")
    mfu_m = summary.get("mfu_megatron")
    head.add_row("MFU (Megatron/PaLM)", f"{'-' if mfu_m is None else format(mfu_m, '.1%')}  "
                 f"({_g(summary.get('tflops_per_gpu_megatron'), '.3g')} TFLOP/s/GPU; 6·N_active incl. LoRA + "
                 "attention without causal halving: compares with published TFLOP/s per GPU)")
    latest = summary.get("eval")
    if latest:
        shown = "   ".join(f"{k} {_g(v)}" for k, v in latest.items() if isinstance(v, (int, float))
                           and k not in ("step", "rows", "samples", "unscored", "infer_exit_code", "seconds"))
        head.add_row("eval", f"step {latest.get('step')} ({latest.get('rows')} rows): {shown}")
    head.add_row("memory", f"{_g(summary['peak_memory_gib'], '.3g')} GiB peak per rank (ms-swift log)"
                           + _nvidia_memory())
    if last:
        head.add_row("loss", f"{_g(last.loss)}   grad_norm {_g(last.grad_norm)}   lr {_g(last.learning_rate)}")
    parts = [head]
    grpo = summary.get("grpo")
    if grpo:
        table = Table(title="GRPO (last logged step)", title_justify="left")
        for col in ("reward function", "mean", "std"):
            table.add_column(col)
        funcs = sorted({k.split("/")[1] for k in grpo if k.startswith("rewards/")})
        for f in funcs:
            table.add_row(f, _g(grpo.get(f"rewards/{f}/mean")), _g(grpo.get(f"rewards/{f}/std")))
        table.add_row("[bold]reward[/bold]", _g(grpo.get("reward")), _g(grpo.get("reward_std")))
        parts.append(table)
        clip = grpo.get("clip_ratio/region_mean", grpo.get("clip_ratio"))
        parts.append(f"zero-std groups {_g(grpo.get('frac_reward_zero_std'), '.0%')}   completion length "
                     f"{_g(grpo.get('completions/mean_length'), '.4g')}   clipped (hit max length) "
                     f"{_g(grpo.get('completions/clipped_ratio'), '.0%')}   clip ratio {_g(clip, '.3g')}   "
                     f"kl {_g(grpo.get('kl'), '.3g')}")
    for note in summary.get("notes", []):
        parts.append(f"[dim]note: {note}[/dim]")
    for w in summary["warnings"]:
        parts.append(f"[yellow]warning[/yellow]: {w}")
    return Group(*parts)


def _nvidia_memory() -> str:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return ""
    try:
        res = subprocess.run([smi, "--query-gpu=index,memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    used = [line.split(",") for line in res.stdout.strip().splitlines() if "," in line]
    if not used:
        return ""
    return "; this node now: " + " ".join(f"{i.strip()}:{float(m) / 1024:.1f}G" for i, m in used)


def _sample_json(sample: Sample) -> str:
    return json.dumps({"event": "step", **asdict(sample)}, separators=(",", ":"))


def _refuse_unreadable_log(log: Path) -> None:
    """A log with bytes but not one row is the wrong file or a damaged one: watching it would show a
    run "running" at step 0 forever. (A trainer's stdout before its first step has no NUL bytes.)"""
    with open(log, "rb") as fh:
        head = fh.read(1 << 16)
    if b"\0" in head:
        raise UserError.one("a binary file, not a training log", file=str(log),
                            hint="give the run's output_dir, its logging.jsonl or the trainer's stdout file")
    if log.name == "logging.jsonl":
        lines = head.split(b"\n")[:-1]  # a partial last line is still being written
        if lines and not any(parse_line(raw.decode("utf-8", errors="replace")) for raw in lines):
            raise UserError.one("logging.jsonl has lines but no JSON rows: damaged or not ms-swift's log",
                                file=str(log), line=1)


def watch(run: Path, *, as_json: bool = False, interval: float = 2.0, once: bool = False,
          model_config: str | None = None, peak_tflops: float | None = None, gpus: int | None = None,
          out=None) -> int:
    """Follow RUN until it finishes (exit 0 then), printing a live view or JSON lines."""
    out = out or sys.stdout
    log = find_log(run)
    if log is None and (once or not run.exists()):
        raise UserError.one("no logging.jsonl here or in a v*-* directory below it yet", file=str(run),
                            hint="give the run's output_dir; ms-swift creates the log at its first logged step")
    if log is not None:
        _refuse_unreadable_log(log)
    ctx: RunContext | None = None
    analyser: Analyser | None = None
    follower: LogFollower | None = None
    clock: StallClock | None = None
    live = None
    stall_reported = False
    try:
        while True:
            if follower is None:
                log = log or find_log(run)
                if log is not None:
                    ctx = load_context(run, log, model_config=model_config, peak_tflops=peak_tflops, gpus=gpus)
                    analyser, follower = Analyser(ctx), LogFollower(log)
                    clock = StallClock(ctx.watch.get("stall_minutes"), ctx.watch.get("startup_minutes") or 60)
            new = []
            if follower is not None:
                for row in follower.poll():
                    sample = analyser.add(row)
                    if sample is not None:
                        new.append(sample)
                if new:
                    clock.progress(len(new))
                    if clock.rows == len(new):  # the first look: the silence started when the log last grew
                        clock.last_progress -= max(time.time() - log.stat().st_mtime, 0.0)
            if analyser is not None:
                done = analyser.finished or once
                summary = summarise(analyser.samples, ctx, analyser.finished)
                if (latest := latest_eval(run, log)) is not None:
                    summary["eval"] = latest
                stalled = clock.stalled() and not done
                status = ("finished" if analyser.finished else "stalled" if stalled else "running") + (
                    f"; last row {fmt_s(clock.silent_for())} ago (stall after {fmt_s(clock.threshold())})"
                    if not analyser.finished else "")
                if as_json:
                    for sample in new:
                        print(_sample_json(sample), file=out, flush=True)
                    if stalled and not stall_reported:  # once per silence
                        print(json.dumps({"event": "stall", "silent_s": round(clock.silent_for(), 1),
                                          "threshold_s": clock.threshold()}), file=out, flush=True)
                    stall_reported = stalled
                    if done:
                        print(json.dumps({"event": "summary", **summary}), file=out, flush=True)
                        return 0
                else:
                    view = render(analyser.samples, summary, status)
                    if done:
                        if live is not None:
                            live.update(view)
                            live.stop()
                            live = None
                        else:
                            from rich.console import Console

                            Console(file=out, highlight=False).print(view)
                        return 0
                    if live is None:
                        from rich.live import Live

                        live = Live(view, refresh_per_second=2, transient=False)
                        live.start()
                    else:
                        live.update(view)
            time.sleep(interval)
    finally:
        if live is not None:
            live.stop()


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
