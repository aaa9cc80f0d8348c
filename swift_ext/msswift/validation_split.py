"""How many rows ms-swift 4.6's validation split can hold, read from what the recipe states before launch: `#N` sample
counts and local JSON Lines files. The count is an upper bound (ms-swift's post_process takes at most N rows, and rows
its template fails to encode are dropped later), so "fewer than one step" holds whenever the bound says so. Read by
planner/eval_split_rules.py and msswift/rules.py (GRPO's evaluation batch); train_rows, the same bound on the training
rows, by msswift/startup_rules_megatron.py (the epoch-based train_iters)."""

from __future__ import annotations

import json
import os

from swift_ext.msswift.conventions import local_dataset_path, parse_dataset_entry

COUNT_LIMIT = 64 * 2**20  # local files counted here up to this size (plan's own data limit); bigger: unknown


def _rows_of_file(path: str) -> int | None:
    """Non-blank lines of a local .jsonl file (one row each, as ms-swift's json loader reads it); None otherwise.
    Only for JSON Lines proper, the first line a whole JSON object: datasets' json builder (packaged_modules/json
    _generate_tables) reads a file that opens with '[' as a JSON array, and one pyarrow cannot parse line by line
    (a multi-line object) with pandas as a whole, so a `.jsonl` holding `[{...}, {...}]` on one line has many rows."""
    if not path.lower().endswith(".jsonl") or not os.path.isfile(path) or os.path.getsize(path) > COUNT_LIMIT:
        return None
    with open(path, "rb") as fh:
        first = next((line for line in fh if line.strip()), None)
        try:
            if first is None or not isinstance(json.loads(first), dict):
                return None
        except ValueError:
            return None
        return 1 + sum(1 for line in fh if line.strip())


def _entry_rows(entry) -> int | None:
    """Rows one dataset entry yields before splitting: N of `#N` (sample_dataset repeats or subsamples to exactly
    N), else the rows of a local JSON Lines file; None when neither is known."""
    parsed = parse_dataset_entry(entry)
    if parsed.bad_sample:
        return None
    if parsed.sample_count is not None:
        return parsed.sample_count
    path = local_dataset_path(str(entry))
    return _rows_of_file(path) if path else None


def every_train_row(args, test) -> bool:
    """True when every `dataset` entry is a local JSON Lines file (under COUNT_LIMIT) and test(row) holds for each of
    its rows; False when any entry is not read here (hub, streaming, cached) or any row fails."""
    entries = args.list("dataset")
    if not entries or args.bool("streaming") or args.list("cached_dataset"):
        return False
    for entry in entries:
        path = local_dataset_path(str(entry))
        if not path or _rows_of_file(path) is None:
            return False
        with open(path, "rb") as fh:
            try:
                if not all(test(json.loads(line)) for line in fh if line.strip()):
                    return False
            except ValueError:
                return False
    return True


def validation_rows(args) -> tuple[int | None, str | None]:
    """(upper bound on the validation rows, the flag that makes them) or (None, None) when unknown or absent.
    swift/dataset/dataset_meta.py DatasetLoader.post_process, per entry: val_dataset entries whole (split ratio
    1.0: at most N rows); a split_dataset_ratio r in (0, 1) takes max(int(min(len, N) * r), 1) rows of each
    dataset entry, which is at most max(int(N * r), 1)."""
    if args.bool("streaming") or args.list("cached_dataset") or args.list("cached_val_dataset"):
        return None, None
    val = args.list("val_dataset")
    if val:
        counts = [_entry_rows(e) for e in val]
        return (None, None) if None in counts else (sum(counts), "val_dataset")
    ratio = args.float("split_dataset_ratio") or 0.0
    entries = args.list("dataset")
    if not 0 < ratio <= 1 or not entries or _oversampled(args):
        return None, None
    counts = [_entry_rows(e) for e in entries]
    if None in counts:
        return None, None
    rows = sum(n if ratio == 1 else max(int(n * ratio), 1) for n in counts)
    return rows, "split_dataset_ratio"


def _oversampled(args) -> bool:
    """interleave_prob with stopping_strategy all_exhausted: swift/dataset/loader.py load_dataset mixes the `dataset`
    entries' train parts (and their split_dataset_ratio validation parts) with datasets.interleave_datasets, which
    then oversamples until every entry is used up (100 + 100 rows at probabilities 0.9 / 0.1 give about 1,000), so the
    entries' sum bounds nothing. first_exhausted (the default) stops at the first entry used up, under the sum;
    val_dataset entries are concatenated (BaseArguments.load_dataset pops interleave_prob for them)."""
    return bool(args.list("interleave_prob")) and args.str("stopping_strategy") == "all_exhausted"


def train_rows(args) -> int | None:
    """Upper bound on the training rows: every `dataset` entry's N of `#N` or local JSON Lines rows, summed (the
    validation split and dropped rows only lower it); None when an entry is unsized, streaming or cached, or the
    entries are oversampled (_oversampled)."""
    if args.bool("streaming") or args.list("cached_dataset") or _oversampled(args):
        return None
    entries = args.list("dataset")
    counts = [_entry_rows(e) for e in entries] if entries else [None]
    return None if None in counts else sum(counts)
