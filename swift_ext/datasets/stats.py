"""`swift-ext data stats`, presentation: the terminal report (rich), the one line `plan` prints and a PNG
histogram (matplotlib). The counting is in lengths.py, what a recipe does with it in packing.py."""

from __future__ import annotations

import math
import os

from swift_ext.datasets.mediatokens import StatsError


def histogram(values: list[int], bins: int = 12) -> list[tuple[int, int, int]]:
    """(first, last, count) buckets of equal integer width covering min..max."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    width = max(math.ceil((hi - lo + 1) / bins), 1)
    counts = [0] * ((hi - lo) // width + 1)
    for v in values:
        counts[(v - lo) // width] += 1
    return [(lo + i * width, lo + (i + 1) * width - 1, c) for i, c in enumerate(counts)]


def one_line(summary: dict) -> str:
    """The summary `plan` prints for a recipe's local data."""
    total = summary["tokens"]["total"] or {}
    t = summary["truncation"]
    parts = [f"{summary['rows']} rows", f"tokens p50 {total.get('p50')} / p99 {total.get('p99')} / max {total.get('max')}"]
    if t.get("max_length"):
        effect = {"delete": f"{t.get('rows_dropped', 0)} dropped", "split": f"split into {t.get('pieces', 0)} pieces"}.get(
            t["strategy"], f"cut ({t['strategy']})")
        parts.append(f"{t['rows_over']} over max_length {t['max_length']} ({effect})")
    if summary.get("packing"):
        parts.append(f"packing {summary['packing']['efficiency']:.0%} full")
    if summary.get("micro_batch_tokens"):
        mb = summary["micro_batch_tokens"]
        parts.append(f"micro-batch p99 {mb['p99']} / max {mb['max']} of {mb['worst_case']} tokens")
    parts.append(f"{summary['epoch']['steps_per_epoch']} steps/epoch")
    return "; ".join(parts)


def print_report(summary: dict, totals: list[int], console) -> None:
    from rich.table import Table

    table = Table(title="token lengths (ms-swift template)", title_justify="left")
    for col in ("", "p50", "p90", "p95", "p99", "max", "mean"):
        table.add_column(col, justify="right" if col else "left")
    for name, pct in summary["tokens"].items():
        if pct:
            table.add_row(name, *(str(pct[k]) for k in ("p50", "p90", "p95", "p99", "max", "mean")))
    console.print(table)
    limit = summary["truncation"].get("max_length")
    buckets = histogram(totals)
    if buckets:
        hist = Table(title="total tokens per row", title_justify="left", show_header=False, box=None)
        hist.add_column(justify="right")
        hist.add_column(justify="right")
        hist.add_column()
        peak = max(c for _, _, c in buckets) or 1
        for lo, hi, count in buckets:
            bar = "█" * max(round(40 * count / peak), 1 if count else 0)
            style = "red" if limit and hi > limit else "green"
            hist.add_row(f"{lo}" if lo == hi else f"{lo}-{hi}", str(count), f"[{style}]{bar}[/{style}]")
        console.print(hist)
    facts = Table(show_header=False, box=None)
    facts.add_column()
    facts.add_column()
    facts.add_row("rows", f"{summary['rows']} ({summary['rows_by_msswift_template']} through ms-swift's template, "
                          f"{summary['rows_not_measured']} not measured)")
    t = summary["truncation"]
    if limit:
        line = f"{t['rows_over']} rows over max_length {limit}; truncation_strategy {t['strategy']}: "
        if t["strategy"] == "delete":
            line += f"{t['rows_dropped']} rows dropped ({t['tokens_cut']} tokens)"
        elif t["strategy"] == "split":
            line += f"cut into {t['pieces']} pieces of at most {limit}"
        else:
            line += f"{t['tokens_cut']} tokens cut from the {t['strategy']}"
            if "rows_losing_completion_tokens" in t:
                line += f", {t['rows_losing_completion_tokens']} rows lose completion tokens"
            if t.get("rows_without_completion"):
                line += f", {t['rows_without_completion']} keep no completion token (nothing to learn)"
        facts.add_row("truncation", line)
    else:
        facts.add_row("truncation", "no max_length: ms-swift uses the model's max_model_len")
    if summary.get("packing"):
        p = summary["packing"]
        facts.add_row("packing", f"{p['packs']} packs of {p['packing_length']} tokens, {p['efficiency']:.1%} full")
    mb = summary.get("micro_batch_tokens")
    if mb:
        mode = "padding_free" if mb["padding_free"] else "padded to the longest row"
        facts.add_row("micro-batch tokens", f"p50 {mb['p50']}, p99 {mb['p99']}, max {mb['max']} "
                                            f"(worst case {mb['worst_case']}; micro batch {mb['micro_batch_size']}, {mode})")
    e = summary["epoch"]
    facts.add_row("per epoch", f"{e['samples']} samples, {e['steps_per_epoch']} steps of {e['samples_per_step']}, "
                               f"{e['tokens_per_epoch']:,} tokens" + (f" ({e['note']})" if e.get("note") else ""))
    if e.get("steps") is not None:
        facts.add_row("training", f"{e['steps']} steps ({e['epochs']:g} epochs, or max_steps/train_iters when set)")
    console.print(facts)
    for note in summary["notes"]:
        console.print(f"note: {note}", markup=False)


def write_png(summary: dict, totals: list[int], out: str) -> None:
    if os.path.exists(out):
        raise StatsError(f"{out}: already exists; not overwriting")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise StatsError(f"{out}: its directory does not exist (--png creates a file, not directories)")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise StatsError("--png needs matplotlib (pip install matplotlib)") from None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.hist(totals, bins=min(60, max(len(set(totals)), 1)), color="#4c72b0")
    limit = summary["truncation"].get("max_length")
    if limit:
        ax.axvline(limit, color="#c44e52", linestyle="--", label=f"max_length {limit}")
        ax.legend()
    ax.set_xlabel("tokens per row (ms-swift template)")
    ax.set_ylabel("rows")
    ax.set_title(", ".join(os.path.basename(f) for f in summary["files"])[:80])
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
