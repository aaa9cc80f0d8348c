"""Training rows -> per-step samples: step time, tokens/s, TFLOP/s, MFU, ETA, GRPO health.

From these and the model shape (swift_ext/planner/mfu.py) every training row becomes a `Sample`: step time,
tokens/s per GPU, TFLOP/s per GPU, MFU against the GPU's dense bf16 peak (swift_ext/spec/gpus.py), ETA,
memory, GRPO health. Tokens per step come from `num_input_tokens_seen` when logged; otherwise from the
batch: global batch x max_length (exact with packing, an upper bound without), and for GRPO the
sequences x `completions/mean_length` (ms-swift does not log prompt lengths, so that is a lower bound).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from swift_ext.planner import mfu as mfu_model
from swift_ext.runs.rundir import manifest_near, read_args
from swift_ext.runs.watchlog import LogFollower, find_log, is_final_row, is_train_row, parse_duration, step_of, two_runs_warning
from swift_ext.spec.findings import UserError
from swift_ext.spec.gpus import GPUS

ZERO_STD_WARN = 0.5


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


def load_context(run: Path, log: Path | None, *, model_config: str | None = None, peak_tflops: float | None = None,
                 gpus: int | None = None) -> RunContext:
    """The run's args.json (next to the log) and swift-ext manifest (the output dir) -> RunContext."""
    notes: list[str] = []
    from swift_ext.planner.shape_lookup import from_config_file, resolve_shape

    run_dir = run if run.is_dir() else run.parent
    args: dict = {}
    for place in [log.parent if log else run_dir, run_dir]:
        try:
            args = read_args(place) or {}
        except UserError as exc:  # the log is still worth following: say why the rates are missing
            notes.append(exc.problems[0].render())
        if args:
            break
    manifest: dict = {}
    for place in dict.fromkeys([run_dir, *([log.parent] if log else [])]):
        manifest = manifest_near(place)
        if manifest:
            break
    recipe = manifest.get("recipe") if isinstance(manifest.get("recipe"), dict) else {}
    args = {**(recipe.get("args") if isinstance(recipe.get("args"), dict) else {}), **args}  # args.json (ms-swift's resolved values) wins
    launch = recipe.get("launch") if isinstance(recipe.get("launch"), dict) else {}
    watch_cfg = recipe.get("watch") if isinstance(recipe.get("watch"), dict) else {}
    ctx = RunContext(watch={k: _num(watch_cfg.get(k)) for k in ("stall_minutes", "startup_minutes")}, notes=notes)
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
    mixed = two_runs_warning([s.step for s in samples])
    if mixed:
        warnings.append(mixed)
    out["warnings"] = warnings
    return out


def analyse_file(run: Path, **ctx_options) -> tuple[list[Sample], dict, RunContext]:
    """A whole log at once (report, tests, `watch` on a finished run)."""
    log = find_log(run)
    if log is None:
        raise UserError.one("no logging.jsonl here or in a v*-* directory below it: not an ms-swift run directory",
                            file=str(run))
    ctx = load_context(run, log, **ctx_options)
    analyser = Analyser(ctx)
    for row in LogFollower(log).poll(final=True):
        analyser.add(row)
    return analyser.samples, summarise(analyser.samples, ctx, analyser.finished), ctx

