"""`swift-ext report RUN_DIR`: curves from ms-swift's logging.jsonl, eval metrics, one markdown page.

Writes a new `RUN_DIR/report-<time>/` holding loss.png, learning_rate.png, reward.png (GRPO runs),
and summary.md that shows them with the final numbers and the eval metrics found under the run.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from swift_ext.runs.rundir import RunDir
from swift_ext.spec.findings import UserError


def find_log(run_dir: Path) -> Path:
    """logging.jsonl of the run: RUN_DIR itself, or its newest vN-* directory."""
    log = RunDir(run_dir).log()
    if log is None:
        raise UserError.one("no logging.jsonl here or in a v*-* directory below it: not an ms-swift run directory",
                            file=str(run_dir))
    return log


def read_log(path: Path) -> list[dict]:
    from swift_ext.runs.watchlog import read_rows  # the one reading of a log's lines and rows, as `watch` reads it

    return read_rows(path)


def with_earlier_runs(log: Path, rows: list[dict]) -> list[dict]:
    """`run --resume` in a fixed output dir sets the first run's log aside (logging.jsonl.before-resume-*):
    its rows up to the step the resumed run started from come first, so the curve is one history
    without the steps that were redone."""
    for earlier in sorted(log.parent.glob(log.name + ".before-resume-*"), reverse=True):
        starts = [s for s in map(_step, rows) if s is not None]
        first = min(starts) if starts else None
        rows = [r for r in read_log(earlier) if first is None or (_step(r) or 0) < first] + rows
    return rows


def _step(row: dict) -> int | None:
    for key in ("global_step/max_steps", "iteration"):
        if key in row:
            try:
                return int(str(row[key]).split("/")[0])
            except ValueError:
                return None
    return None


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for row in rows:
        if key in row and "global_step/max_steps" in row:
            try:
                step = int(str(row["global_step/max_steps"]).split("/")[0])
                value = float(row[key])
            except (TypeError, ValueError):
                continue
            xs.append(step)
            ys.append(value)
    return xs, ys


def make_report(run_dir: str | Path, now: _dt.datetime | None = None) -> Path:
    run = Path(run_dir)
    if not run.is_dir():
        raise UserError.one("not a directory", file=str(run))
    log = find_log(run)
    rows = with_earlier_runs(log, read_log(log))
    if not rows:
        raise UserError.one("logging.jsonl has no readable rows yet", file=str(log))
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    out, n = run / f"report-{stamp}", 1
    while True:  # two reports in the same second each get their own folder; none replaces another
        try:
            out.mkdir(parents=False, exist_ok=False)
            break
        except FileExistsError:
            out, n = run / f"report-{stamp}-{n}", n + 1

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = []
    reward_keys = sorted({k for r in rows for k in r if k.startswith("rewards/") and k.endswith("/mean")})
    panels = [("loss.png", "training loss", ["loss", "eval_loss"]),
              ("learning_rate.png", "learning rate", ["learning_rate"])]
    if reward_keys:
        panels.append(("reward.png", "reward", ["reward", *reward_keys]))
    for filename, title, keys in panels:
        fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
        drawn = False
        for key in keys:
            xs, ys = _series(rows, key)
            if xs:
                ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, label=key)
                drawn = True
        if drawn:
            ax.set_xlabel("step")
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            fig.savefig(out / filename)
            plots.append((filename, title))
        plt.close(fig)

    # Throughput, MFU and GRPO health, derived from the same rows by swift-ext watch's analysis.
    from swift_ext.runs.watchrates import Analyser, load_context, summarise

    ctx = load_context(run, log)
    analyser = Analyser(ctx)
    for row in rows:
        analyser.add(row)
    samples = analyser.samples
    health = summarise(samples, ctx, analyser.finished)
    derived = [("throughput.png", "tokens/s per GPU", "tokens_per_s_per_gpu", 1.0),
               ("mfu.png", "MFU (%)", "mfu", 100.0)]
    if any("frac_reward_zero_std" in s.grpo for s in samples):
        derived.append(("zero_std.png", "share of prompt groups with zero reward std", "frac_reward_zero_std", 1.0))
    for filename, title, key, scale in derived:
        points = [(s.step, s.grpo.get(key) if key in s.grpo else getattr(s, key, None)) for s in samples]
        points = [(x, y * scale) for x, y in points if y is not None]
        if not points:
            continue
        fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
        ax.plot([x for x, _ in points], [y for _, y in points], marker="o" if len(points) < 30 else None)
        if key == "frac_reward_zero_std":
            ax.axhline(0.5, color="tab:red", linestyle="--", linewidth=1)
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / filename)
        plt.close(fig)
        plots.append((filename, title))

    eval_lines = _eval_lines(run)
    if eval_lines:
        plots += _eval_curves(eval_lines, out, plt)
    evals = []
    for metrics_file in sorted(run.glob("**/eval-*/metrics.json")):
        try:
            evals.append((metrics_file, json.loads(metrics_file.read_text(encoding="utf-8"))))
        except (OSError, ValueError, RecursionError):  # damaged or hand-made: the table shows the readable ones
            continue
    summary = _summary(run, log, rows, plots, evals, health) + _eval_table(eval_lines)
    (out / "summary.md").write_text(summary, encoding="utf-8")
    return out


def _eval_lines(run: Path) -> list[dict]:
    """eval/metrics.jsonl of the run (swift_ext/after/evaluate.py), from the output dir or a vN-* folder in it."""
    from swift_ext.after.evalmetrics import read_lines

    for folder in (RunDir(run), RunDir(run.parent)):
        if folder.eval_metrics.is_file():
            return sorted(read_lines(folder.eval_dir), key=lambda r: r["step"])
    return []


_EVAL_SKIP = {"step", "rows", "samples", "unscored", "infer_exit_code", "seconds"}


def _eval_curves(lines: list[dict], out: Path, plt) -> list[tuple[str, str]]:
    """eval.png: every metric that is a share (0..1: accuracy, pass@k, think block, ...) per checkpoint
    step; eval_lengths.png: response lengths."""
    names = sorted({k for r in lines for k, v in r.items() if isinstance(v, (int, float)) and k not in _EVAL_SKIP})
    shares = [n for n in names if all(0 <= r[n] <= 1 for r in lines if isinstance(r.get(n), (int, float)))]
    made = []
    for filename, title, keys in (("eval.png", "evaluation per checkpoint (step 0 = base model)", shares),
                                  ("eval_lengths.png", "evaluation response length",
                                   [n for n in names if n not in shares])):
        if not keys:
            continue
        fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
        for key in keys:
            points = [(r["step"], r[key]) for r in lines if isinstance(r.get(key), (int, float))]
            ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=key)
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / filename)
        plt.close(fig)
        made.append((filename, title))
    return made


def _eval_table(lines: list[dict]) -> str:
    if not lines:
        return ""
    names = sorted({k for r in lines for k, v in r.items() if isinstance(v, (int, float)) and k not in _EVAL_SKIP})
    out = ["", "## Evaluation during training (eval/metrics.jsonl)", "", "| step | rows | " + " | ".join(names) + " |",
           "|---|---|" + "---|" * len(names)]
    for r in lines:
        out.append(f"| {r['step']} | {r.get('rows')} | " + " | ".join(str(r.get(n, "-")) for n in names) + " |")
    return "\n".join(out) + "\n"


def _summary(run: Path, log: Path, rows: list[dict], plots, evals, health: dict) -> str:
    train = [r for r in rows if "loss" in r]
    final = rows[-1]
    lines = [f"# Run report: {run.name}", "", f"- log: `{log}`", f"- logged rows: {len(rows)}"]
    if train:
        first, last = train[0], train[-1]
        lines.append(f"- training loss: {first['loss']} (step {first.get('global_step/max_steps')}) -> "
                     f"{last['loss']} (step {last.get('global_step/max_steps')})")
    for key in ("train_runtime", "train_loss", "eval_loss", "reward"):
        if key in final:
            lines.append(f"- {key}: {final[key]}")
    lines += ["", "## Health", ""] + _health_lines(health)
    lines.append("")
    for filename, title in plots:
        lines += [f"## {title}", "", f"![{title}]({filename})", ""]
    if evals:
        lines += ["## Evaluation", "", "| metrics | rows | exact match | math accuracy | think block | hit token limit |",
                  "|---|---|---|---|---|---|"]
        for path, m in evals:
            lines.append(f"| `{path.parent.relative_to(run)}` | {m.get('scored_rows')}/{m.get('rows')} | "
                         f"{m.get('exact_match')} | {m.get('math_accuracy', '-')} | {m.get('think_block')} | "
                         f"{m.get('hit_token_limit', '-')} |")
        lines.append("")
    return "\n".join(lines)


def _health_lines(h: dict) -> list[str]:
    def num(v, spec):
        return "-" if v is None else format(v, spec)

    lines = [f"- steps: {h['step']}/{h['max_steps']}{' (finished)' if h['finished'] else ''}",
             f"- step time (median): {num(h['step_time_s'], '.3g')} s",
             f"- tokens/s per GPU (median): {num(h['tokens_per_s_per_gpu'], '.4g')} ({h['tokens_source'] or 'unknown'}; "
             f"{h['gpus']} GPU(s))",
             f"- MFU (median): {'-' if h['mfu'] is None else format(h['mfu'], '.1%')} "
             f"({num(h['tflops_per_gpu'], '.3g')} TFLOP/s per GPU of {h['peak_tflops'] or '?'} peak; {h['flops'] or 'no model shape'}; "
             "required FLOPs)",
             f"- MFU, Megatron/PaLM convention (median): "
             f"{'-' if h.get('mfu_megatron') is None else format(h['mfu_megatron'], '.1%')} "
             f"({num(h.get('tflops_per_gpu_megatron'), '.3g')} TFLOP/s per GPU; 6·N_active incl. LoRA + attention "
             "without causal halving, as published TFLOP/s per GPU are counted)",
             f"- peak memory per rank: {num(h['peak_memory_gib'], '.3g')} GiB"]
    if "zero_std_fraction_recent" in h:
        lines.append(f"- prompt groups with zero reward std (median of the last 10 steps): "
                     f"{h['zero_std_fraction_recent']:.0%}")
    lines += [f"- note: {n}" for n in h["notes"]]
    lines += [f"- **warning**: {w}" for w in h["warnings"]] or ["- no warnings"]
    return lines
