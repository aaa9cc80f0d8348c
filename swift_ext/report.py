"""`swift-ext report RUN_DIR`: curves from ms-swift's logging.jsonl, eval metrics, one markdown page.

Writes a new `RUN_DIR/report-<time>/` holding loss.png, learning_rate.png, reward.png (GRPO runs),
and summary.md that shows them with the final numbers and the eval metrics found under the run.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from swift_ext.errors import UserError


def find_log(run_dir: Path) -> Path:
    """logging.jsonl of the run: RUN_DIR itself, or its newest vN-* directory."""
    if (run_dir / "logging.jsonl").is_file():
        return run_dir / "logging.jsonl"
    versions = sorted(run_dir.glob("v*-*/logging.jsonl"), key=lambda p: p.stat().st_mtime)
    if not versions:
        raise UserError.one("no logging.jsonl here or in a v*-* directory below it: not an ms-swift run directory",
                            file=str(run_dir))
    return versions[-1]


def read_log(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


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
    rows = read_log(log)
    if not rows:
        raise UserError.one("logging.jsonl has no readable rows yet", file=str(log))
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    out = run / f"report-{stamp}"
    out.mkdir(parents=False, exist_ok=False)

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

    evals = []
    for metrics_file in sorted(run.glob("**/eval-*/metrics.json")):
        try:
            evals.append((metrics_file, json.loads(metrics_file.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            continue
    (out / "summary.md").write_text(_summary(run, log, rows, plots, evals), encoding="utf-8")
    return out


def _summary(run: Path, log: Path, rows: list[dict], plots, evals) -> str:
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
