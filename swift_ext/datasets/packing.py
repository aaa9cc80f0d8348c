"""What a recipe does with per-row lengths: truncation, packing, micro-batches and steps per epoch
(Budget holds the recipe's settings; swift_ext.planner.datafit builds it from a recipe)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from swift_ext.datasets.lengths import ROW_BYTE_CAP, Lengths
from swift_ext.datasets.percentiles import percentiles

STATS_QUANTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class Budget:
    """The recipe settings that turn lengths into truncation, packing and steps (ms-swift defaults)."""

    task: str = "sft"  # sft | pt | grpo | dpo | kto ...
    max_length: int | None = None
    max_completion_length: int | None = None  # GRPO: generated tokens per completion
    truncation_strategy: str = "delete"
    packing: bool = False
    packing_length: int | None = None  # None with packing: max_length (ms-swift's default)
    padding_free: bool = False
    micro_batch_size: int = 1  # samples (or packs) per forward pass
    samples_per_step: int = 16  # samples (or packs) per optimizer step
    data_parallel: int = 1
    epochs: float = 1.0
    num_generations: int = 1  # GRPO: completions per prompt
    max_steps: int | None = None  # max_steps / train_iters: stops before the epochs end
    engine: str = "megatron"
    gradient_accumulation_steps: int = 1  # engine swift (ms-swift's value when the recipe leaves it unset)
    drop_last: bool = False  # engine swift: dataloader_drop_last (GRPO forces it)


def after_truncation(lengths: Lengths, b: Budget) -> tuple[list[int], dict]:
    """Per-row lengths as ms-swift will train them, and what truncation did (template/base.py
    `_encode_truncated`: delete drops the row, left/right keep max_length tokens - never fewer than
    the row's image/video pad tokens, which are protected - split cuts pt rows into pieces)."""
    if b.task == "dpo" and len(lengths.rejected) == len(lengths.prompt):
        return _pairs_after_truncation(lengths, b)
    limit = b.max_length
    grpo = b.task == "grpo"
    measured = lengths.prompt if grpo else lengths.total  # GRPO: max_length bounds the prompt
    report = {"max_length": limit, "strategy": b.truncation_strategy, "rows_over": 0}
    if not limit:
        return list(measured), report
    kept: list[int] = []
    over = dropped = lost_completion = no_completion = pieces = 0
    tokens_cut = 0
    for i, n in enumerate(measured):
        if n <= limit:
            kept.append(n)
            continue
        over += 1
        if b.truncation_strategy == "delete":
            dropped += 1
            tokens_cut += n
        elif b.truncation_strategy == "split":
            pieces += math.ceil(n / limit)
            kept += [limit] * (n // limit) + ([n % limit] if n % limit else [])
        else:
            new = max(limit, lengths.media[i])
            tokens_cut += n - new
            kept.append(new)
            completion = 0 if grpo else lengths.completion[i]
            if b.truncation_strategy == "right":
                keep_completion = max(new - lengths.prompt[i], 0)
                lost_completion += keep_completion < completion
                no_completion += completion > 0 and keep_completion == 0
            else:  # left: the start of the prompt goes first
                lost_completion += completion > new
    report.update(rows_over=over, tokens_cut=tokens_cut)
    if b.truncation_strategy == "delete":
        report["rows_dropped"] = dropped
    elif b.truncation_strategy == "split":
        report["pieces"] = pieces
    elif not grpo:
        report["rows_losing_completion_tokens"] = lost_completion
        if b.truncation_strategy == "right":
            report["rows_without_completion"] = no_completion
    return kept, report


def _pairs_after_truncation(lengths: Lengths, b: Budget) -> tuple[list[int], dict]:
    """DPO: per row, the tokens of its two sequences, prompt + chosen and prompt + rejected, which ms-swift
    encodes and truncates separately (template/base.py `_rlhf_encode` -> `_encode_truncated` on each; delete
    drops the row when either is over max_length) and runs in one micro-batch (megatron/trainers/dpo_trainer.py
    splits the outputs at num_samples // 2)."""
    limit = b.max_length
    report = {"max_length": limit, "strategy": b.truncation_strategy, "rows_over": 0}
    kept: list[int] = []
    over = tokens_cut = 0
    for prompt, chosen, rejected, media in zip(lengths.prompt, lengths.completion, lengths.rejected, lengths.media):
        sequences = [prompt + chosen] + ([prompt + rejected] if rejected else [])
        if not limit or max(sequences) <= limit:
            kept.append(sum(sequences))
            continue
        over += 1
        if b.truncation_strategy == "delete":
            tokens_cut += sum(sequences)
            continue
        cut = [min(n, max(limit, media)) for n in sequences]
        tokens_cut += sum(sequences) - sum(cut)
        kept.append(sum(cut))
    report.update(rows_over=over, tokens_cut=tokens_cut, sequences_per_row=2)
    if b.truncation_strategy == "delete":
        report["rows_dropped"] = over
    return kept, report


def pack(lengths: list[int], packing_length: int) -> list[int]:
    """Pack sizes as ms-swift's PackingDataset makes them: best-fit-decreasing bins over 1000-row
    batches, the last (unfinished) bin carried into the next batch (dataset/packing.py)."""
    import binpacking

    packs: list[int] = []
    carry: list[tuple[int, int]] = []
    data = list(enumerate(lengths))
    step = 1000
    for start in range(0, len(data), step):
        batch = carry + data[start:start + step]
        bins = binpacking.to_constant_volume(batch, packing_length, weight_pos=1) if batch else []
        finished = start + step >= len(data)
        if bins and not finished:
            bins, carry = bins[:-1], bins[-1]
        else:
            carry = []
        packs += [sum(n for _, n in b) for b in bins]
    return packs


def micro_batches(samples: list[int], mbs: int, padded_to_longest: bool, seed: int = 0) -> list[int]:
    """Tokens in each micro-batch of a shuffled epoch (the loader shuffles; the peak is what matters)."""
    import numpy as np

    if not samples:
        return []
    arr = np.asarray(samples)
    arr = arr[np.random.default_rng(seed).permutation(len(arr))]
    usable = len(arr) // mbs * mbs or len(arr)
    groups = arr[:usable].reshape(-1, min(mbs, usable))
    return (groups.max(axis=1) * groups.shape[1] if padded_to_longest else groups.sum(axis=1)).tolist()


def summarize(lengths: Lengths, b: Budget) -> dict:
    """Everything `data stats` prints, as plain data (also its --json)."""
    from swift_ext.msswift import steps  # counted the way each engine's loader counts (ceil vs floor)

    kept, trunc = after_truncation(lengths, b)
    out: dict[str, Any] = {
        "files": lengths.files,
        "rows": len(lengths.prompt),
        "rows_not_measured": lengths.skipped,
        "rows_by_msswift_template": lengths.slow_rows,
        "tokens": {name: percentiles(values, STATS_QUANTILES, summary=True) for name, values in
                   (("prompt", lengths.prompt), ("completion", lengths.completion), ("total", lengths.total))},
        "truncation": trunc,
        "notes": list(lengths.notes),
    }
    if lengths.too_large:  # rows over the byte cap: too long for any max_length, never tokenized
        out["rows_too_large"] = lengths.too_large
        trunc["rows_over"] += lengths.too_large
        if b.max_length and b.truncation_strategy == "delete":
            trunc["rows_dropped"] += lengths.too_large
        out["notes"].append(f"{lengths.too_large} row(s) over {ROW_BYTE_CAP >> 20} MiB not tokenized: counted as "
                            "over max_length, left out of the percentiles, packing and steps")
    if b.task == "grpo":
        gen = b.max_completion_length or 0
        out["notes"].append(f"GRPO: completions are generated, up to max_completion_length={gen} tokens each; "
                            f"a trained sample is at most prompt + {gen}")
    samples = kept
    pack_len = (b.packing_length or b.max_length) if b.packing else None
    if pack_len:
        packs = pack(kept, pack_len)
        out["packing"] = {"packing_length": pack_len, "packs": len(packs),
                          "efficiency": round(sum(kept) / (len(packs) * pack_len), 4) if packs else None}
        samples = packs
    if b.task == "grpo":
        samples = [n + (b.max_completion_length or 0) for n in kept]
    if samples:
        mb = micro_batches(samples, b.micro_batch_size, padded_to_longest=not b.padding_free)
        worst = b.micro_batch_size * ((pack_len or b.max_length or max(samples)) + (b.max_completion_length or 0))
        worst *= 2 if b.task == "dpo" and not pack_len else 1  # a chosen and a rejected sequence per sample
        out["micro_batch_tokens"] = {**percentiles(mb, STATS_QUANTILES, summary=True), "worst_case": worst,
                                     "micro_batch_size": b.micro_batch_size, "padding_free": b.padding_free}
    rows = len(samples)
    batching = steps.Batching(engine=b.engine, micro_batch_size=b.micro_batch_size, data_parallel=b.data_parallel,
                              gradient_accumulation_steps=b.gradient_accumulation_steps,
                              global_batch_size=b.samples_per_step, drop_last=b.drop_last,
                              num_generations=b.num_generations)
    out["epoch"] = {"samples": rows, "samples_per_step": b.samples_per_step,
                    "steps": steps.total_steps(rows, batching, b.epochs, b.max_steps) if b.epochs else None,
                    "steps_per_epoch": steps.steps_per_epoch(rows, batching),
                    "tokens_per_epoch": int(sum(kept) * (b.num_generations if b.task == "grpo" else 1)),
                    "epochs": b.epochs}
    if b.task == "grpo":
        out["epoch"]["note"] = "prompt tokens x num_generations; generated tokens come on top"
    return out


def largest_micro_batch(summary: dict) -> int | None:
    """Tokens in the largest micro-batch this data forms under the recipe (what the memory estimate uses): a run's
    peak is its largest micro-batch, and a p99 would leave one step in a hundred above the estimate."""
    mb = summary.get("micro_batch_tokens")
    return mb["max"] if mb else None
