"""`swift-ext watch RUN`: follow ms-swift's logging.jsonl as it grows, as a live view or JSON lines.

Reading the log: watchlog.py; rows -> samples (MFU, tokens/s, ETA, GRPO health): watchrates.py; the hang
sidecar on Slurm nodes (`python -m swift_ext.runs.watch supervise ...`, kept under this name for the
batch scripts) and the stall clock: sidecar.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from swift_ext.runs.sidecar import STALL_EXIT, StallClock, _main, supervise  # noqa: F401  (the module's CLI)
from swift_ext.runs.rundir import RunDir
from swift_ext.spec import jsonout
from swift_ext.runs.watchlog import LogFollower, find_log, parse_line, split_lines
from swift_ext.runs.watchrates import Analyser, RunContext, Sample, load_context, summarise
from swift_ext.spec.findings import UserError

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
    return jsonout.dumps({"event": "step", **asdict(sample)}, separators=(",", ":"))


def _refuse_unreadable_log(log: Path) -> None:
    """A log with bytes but not one row is the wrong file or a damaged one: watching it would show a
    run "running" at step 0 forever. (A trainer's stdout before its first step has no NUL bytes.)"""
    with open(log, "rb") as fh:
        head = fh.read(1 << 16)
    if b"\0" in head:
        raise UserError.one("a binary file, not a training log", file=str(log),
                            hint="give the run's output_dir, its logging.jsonl or the trainer's stdout file")
    if log.name == "logging.jsonl":
        lines, _ = split_lines(head)  # a partial last line is still being written
        if lines and not any(parse_line(raw.decode("utf-8", errors="replace")) for raw in lines):
            raise UserError.one("logging.jsonl has lines but no JSON rows: damaged or not ms-swift's log",
                                file=str(log), line=1)


def latest_eval(run: Path, log: Path | None) -> dict | None:
    """The newest line of the run's eval/metrics.jsonl (swift_ext/after/evaluate.py writes it), if any."""
    places = [run if run.is_dir() else run.parent] + ([log.parent, log.parent.parent] if log else [])
    for place in places:
        path = RunDir(place).eval_metrics
        if path.is_file():
            lines = [_parse_eval_line(t) for t in path.read_text(encoding="utf-8", errors="replace").splitlines()]
            lines = [r for r in lines if r is not None]
            return max(lines, key=lambda r: r["step"]) if lines else None
    return None


def _parse_eval_line(text: str) -> dict | None:
    try:
        row = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: a line nested past the decoder's depth
        return None
    return row if isinstance(row, dict) and isinstance(row.get("step"), int) else None


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
                for row in follower.poll(final=once):
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
                        print(jsonout.dumps({"event": "stall", "silent_s": round(clock.silent_for(), 1),
                                          "threshold_s": clock.threshold()}), file=out, flush=True)
                    stall_reported = stalled
                    if done:
                        print(jsonout.dumps({"event": "summary", **summary}), file=out, flush=True)
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


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
