"""Per-row token lengths of a file as ms-swift's template makes them: rows rendered (render.py) and
tokenized in batches with the model's own `tokenizers` tokenizer, media tokens from the headers
(mediatokens.py); rows the renderer does not cover go through ms-swift's real `Template.encode`.
Results are cached (lengthcache.py) by file content, tokenizer and template settings."""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

import msgspec

from swift_ext.datasets.lengthcache import cache_key, cache_path
from swift_ext.spec.cachedirs import write_text_atomic
from swift_ext.datasets.mediatokens import MediaCounter, StatsError, media_tokens
from swift_ext.datasets.rejected import rejected_conversation
from swift_ext.datasets.reader import UTF8_BOM, json_array, open_data, sniff, split_lines, stream_blocks
from swift_ext.datasets.render import mark_tags, render
from swift_ext.datasets.template import FAST_TEMPLATES, TemplateSettings, load_tokenizer

BATCH_ROWS = 2048  # rows tokenized per encode_batch call
BLANK = object()  # a blank JSONL line: not a row
TOO_LARGE = object()  # a line over ROW_BYTE_CAP
# A row this large is far over any max_length (at ~4 bytes a token, 4 MiB is ~1M tokens); tokenizing a
# 50 MiB row would take minutes and its memory, so it is counted as too long without being read whole.
ROW_BYTE_CAP = 4 * 2**20
NAMED = 5  # rows named in the notes per file; the rest are counted


@dataclass
class Lengths:
    """Per-row token counts of one or more files (lists, in file order)."""

    files: list[str]
    prompt: list[int] = field(default_factory=list)
    completion: list[int] = field(default_factory=list)
    media: list[int] = field(default_factory=list)  # image/video pad tokens (kept whole by left/right truncation)
    # Tokens of the rejected response (its assistant turn as the template renders it) of a DPO/KTO row with a
    # `rejected_response`, 0 for a row without one: ms-swift encodes prompt + rejected as a second sequence
    # (template/base.py `_rlhf_encode`) that a DPO micro-batch holds beside the chosen one.
    rejected: list[int] = field(default_factory=list)
    images: int = 0
    videos: int = 0
    skipped: int = 0  # rows that could not be measured (invalid JSON, no messages, unreadable media)
    slow_rows: int = 0  # rows measured by ms-swift's own template
    too_large: int = 0  # rows over ROW_BYTE_CAP: over any max_length, not tokenized
    partial: bool = False  # rows were left out because ms-swift's template was not available
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> list[int]:
        return [p + c for p, c in zip(self.prompt, self.completion)]

    def extend(self, other: "Lengths") -> None:
        self.files += [f for f in other.files if f not in self.files]
        self.prompt += other.prompt
        self.completion += other.completion
        self.media += other.media
        self.rejected += other.rejected
        self.images += other.images
        self.videos += other.videos
        self.skipped += other.skipped
        self.slow_rows += other.slow_rows
        self.too_large += other.too_large
        self.partial = self.partial or other.partial
        self.notes += other.notes


def _rows(path: str) -> Iterator[tuple[int, Any, int, str | None]]:
    """(line, decoded row, bytes read, why it is not a row) for every line of a file in any layout
    `data check` reads (JSONL, a JSON array, gzip/bz2/xz JSONL; one opener, swift_ext.datasets.reader).
    A line over ROW_BYTE_CAP is not read into memory, decoded or tokenized: it comes back as TOO_LARGE."""
    layout, problem = sniff(path)
    if problem:
        raise StatsError(f"{path}: {problem}")
    if layout == "json-array":
        rows = json_array(path) or []
        size = os.path.getsize(path)
        for n, row in enumerate(rows, start=1):
            yield n, row, size if n == len(rows) else 0, None
        return
    decode = msgspec.json.Decoder().decode
    with open_data(path, layout) as fh:
        for n, raw in enumerate(split_lines(stream_blocks(fh), ROW_BYTE_CAP), start=1):
            if type(raw) is int:
                yield n, TOO_LARGE, raw + 1, f"a {raw / 2**20:.0f} MiB row, over the {ROW_BYTE_CAP >> 20} MiB " \
                    "that data stats tokenizes: counted as over max_length, not tokenized"
                continue
            if not raw.strip():
                yield n, BLANK, len(raw) + 1, None
                continue
            try:
                yield n, decode(raw.removeprefix(UTF8_BOM) if n == 1 else raw), len(raw) + 1, None
            except (msgspec.DecodeError, RecursionError):
                try:
                    raw.decode("utf-8")
                    why = "invalid JSON (E001)"
                except UnicodeDecodeError:
                    why = "not UTF-8 (E003)"
                yield n, None, len(raw) + 1, why


def measure_file(path: str, s: TemplateSettings, progress: Callable[[int], None] | None = None,
                 use_cache: bool = True, allow_msswift: bool = True, write_cache: bool = True) -> Lengths:
    """Token lengths of every row of one file (cached by content, tokenizer and template settings).
    allow_msswift=False (the planner) leaves rows that need ms-swift's own template uncounted; such a
    partial result is not cached."""
    if not os.path.isfile(path):
        raise StatsError(f"{path}: no such file")
    cached = cache_path(cache_key(path, s)) if use_cache else None
    if cached is not None and cached.is_file():
        try:
            data = json.loads(cached.read_text())
            result = Lengths(**data)
            result.notes.append(f"{path}: lengths from the cache ({cached})")
            if progress:
                progress(os.path.getsize(path))
            return result
        except (ValueError, TypeError):
            pass  # a damaged cache entry is recomputed
    result = _measure(path, s, progress, allow_msswift)
    if use_cache and write_cache and not result.partial:
        try:
            write_text_atomic(cached, json.dumps(asdict(result)))
        except OSError:
            pass  # a read-only cache only costs the next run the counting
    return result


def _measure(path: str, s: TemplateSettings, progress, allow_msswift: bool = True) -> Lengths:
    tok = load_tokenizer(s.tokenizer)
    count_cache: dict[str, int] = {}

    def count_text(text: str) -> int:
        if text not in count_cache:
            count_cache[text] = len(tok.encode(text, add_special_tokens=False).ids)
        return count_cache[text]

    media = MediaCounter(s, count_text)
    base = s.media_root or os.path.dirname(path) or "."
    out = Lengths([path])
    slow: list[tuple[int, dict]] = []
    texts: list[str] = []
    extra: list[tuple[int, int, int]] = []  # per row: (prompt media tokens, completion media tokens, pads)
    pending_bytes = 0
    fast = s.template in FAST_TEMPLATES

    def flush() -> None:
        nonlocal pending_bytes
        if progress:
            progress(pending_bytes)
        pending_bytes = 0
        if not texts:
            return
        encoded = tok.encode_batch(texts, add_special_tokens=False)
        for i, (pm, cm, pads) in enumerate(extra):
            out.prompt.append(len(encoded[3 * i].ids) + pm)
            out.completion.append(len(encoded[3 * i + 1].ids) + cm)
            out.rejected.append(len(encoded[3 * i + 2].ids))
            out.media.append(pads)
        texts.clear()
        extra.clear()

    named = 0

    def not_measured(n: int, why: str) -> None:  # counted; the first NAMED named, as `data check` names lines
        nonlocal named
        out.skipped += 1
        named += 1
        if named <= NAMED:
            out.notes.append(f"{path}:{n}: not measured: {why}")

    for n, row, nbytes, why in _rows(path):
        pending_bytes += nbytes
        if row is BLANK:
            continue
        if row is TOO_LARGE:
            out.too_large += 1
            if out.too_large <= NAMED:
                out.notes.append(f"{path}:{n}: {why}")
            continue
        if row is None:
            not_measured(n, why)
            continue
        rendered = render(row, s) if fast else None
        if rendered is None:
            if isinstance(row, dict) and isinstance(row.get("messages"), list) and row["messages"]:
                slow.append((n, row))
            else:
                not_measured(n, "not a JSON object with a non-empty `messages` list")
            continue
        try:
            row_media = media_tokens(rendered, base, media)
        except (OSError, StatsError, ValueError) as exc:
            not_measured(n, str(exc))
            continue
        rejected = render(with_rejected, s) if (with_rejected := _rejected_row(row)) is not None else None
        if with_rejected is not None and rejected is None:  # a rejected side only ms-swift's template renders
            slow.append((n, row))
            continue
        texts += [mark_tags(rendered.prompt), mark_tags(rendered.completion),
                  mark_tags(rejected.completion) if rejected is not None else ""]
        extra.append(row_media)
        if len(extra) >= BATCH_ROWS:
            flush()
    flush()
    if slow:
        _measure_with_msswift(path, slow, s, base, out, allow_msswift)
    if named > NAMED:
        out.notes.append(f"{path}: {named - NAMED} more row(s) not measured; `swift-ext data check {path}` lists all")
    return out


def measure(files: list[str], s: TemplateSettings, progress=None, use_cache: bool = True,
            allow_msswift: bool = True, write_cache: bool = True) -> Lengths:
    total = Lengths([])
    for f in files:
        one = measure_file(f, s, progress=progress, use_cache=use_cache, allow_msswift=allow_msswift,
                           write_cache=write_cache)
        if not one.prompt and not one.partial and not one.too_large:  # a summary of nothing would read as a clean result
            why = f"all {one.skipped} row(s) unreadable (not JSON objects with `messages`)" if one.skipped else "no rows"
            raise StatsError(f"{f}: nothing to measure: {why}; run `swift-ext data check {f}`")
        total.extend(one)
    return total


def _measure_with_msswift(path: str, rows: list[tuple[int, dict]], s: TemplateSettings, base: str,
                          out: Lengths, allow_msswift: bool) -> None:
    """Rows the renderer does not cover: ms-swift's own Template.encode (slow: a Python pass per row)."""
    with _msswift_quiet():
        _encode_with_msswift(path, rows, s, base, out, allow_msswift)


@contextmanager
def _msswift_quiet():
    """ms-swift's and transformers' loggers at ERROR while data stats builds and runs ms-swift's template, then
    back as they were: a process that goes on (a notebook, a test session, a trainer's plugin) keeps its logs."""
    loggers = [logging.getLogger(name) for name in ("swift", "transformers")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _encode_with_msswift(path: str, rows: list[tuple[int, dict]], s: TemplateSettings, base: str,
                         out: Lengths, allow_msswift: bool) -> None:
    template = _msswift_template(s) if allow_msswift else None
    if template is None:
        out.skipped += len(rows)
        out.partial = True
        out.notes.append(f"{path}: {len(rows)} row(s) (tools, tool turns, objects or another template) need "
                         "ms-swift and a local model directory to be measured; not counted")
        return
    pads = set(template._tokenize("<|image_pad|><|video_pad|>"))
    for n, row in rows:
        row = dict(row)
        for key in ("images", "videos"):
            if isinstance(row.get(key), list):
                row[key] = [p if not isinstance(p, str) or os.path.isabs(p) or "://" in p or os.path.exists(p)
                            else os.path.join(base, p) for p in row[key]]
        try:
            encoded = template.encode(row)
        except Exception as exc:  # ms-swift raises many types for a bad row; report and go on
            out.skipped += 1
            if len(out.notes) < 5:
                out.notes.append(f"{path}:{n}: ms-swift's template rejects this row: {type(exc).__name__}: {exc}")
            continue
        ids, labels = encoded["input_ids"], encoded.get("labels") or []
        completion = _last_labelled_span(labels)
        rejected = 0
        if (with_rejected := _rejected_row(row)) is not None:
            try:
                rejected = _last_labelled_span(template.encode(with_rejected).get("labels") or [])
            except Exception:  # the chosen row encodes; a rejected one ms-swift refuses is counted as absent
                rejected = 0
        out.prompt.append(len(ids) - completion)
        out.completion.append(completion)
        out.rejected.append(rejected)
        out.media.append(sum(1 for t in ids if t in pads))
        out.slow_rows += 1


def _rejected_row(row: Any) -> dict | None:
    """The row of ms-swift's rejected sequence (its conversation from swift_ext.datasets.rejected), or None when
    ROW has none ms-swift would take. Only the final assistant turn of it is counted (the prompt is the chosen
    row's), so a rejected side that does not end in an assistant turn is None."""
    rejected = rejected_conversation(row)
    if rejected is None:
        return None
    last = rejected[-1]
    rest = {k: v for k, v in row.items() if k not in ("rejected_response", "rejected_messages")}
    return {**rest, "messages": rejected} if type(last) is dict and last.get("role") == "assistant" else None


def _last_labelled_span(labels: list[int]) -> int:
    """Tokens of the final assistant turn: the labelled run at the end of the sequence."""
    n = 0
    for label in reversed(labels):
        if label == -100:
            break
        n += 1
    return n


_TEMPLATES: dict = {}


def _msswift_template(s: TemplateSettings):
    if not s.model_dir:
        return None
    key = (s.model_dir, s.template, s.loss_scale, s.system, s.enable_thinking, s.max_pixels, s.media)
    if key in _TEMPLATES:
        return _TEMPLATES[key]
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from swift import get_processor, get_template
    except ImportError:
        return None

    saved = {name: os.environ.get(name) for name, _ in s.media}
    try:
        # qwen_vl_utils takes these from the environment when ms-swift builds the processor; set for
        # that moment only, so the process environment is left as it was.
        os.environ.update({name: str(value) for name, value in s.media})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            processor = get_processor(s.model_dir)
            template = get_template(processor, template_type=s.template, default_system=s.system, max_length=None,
                                    loss_scale=s.loss_scale, max_pixels=s.max_pixels,
                                    enable_thinking=s.enable_thinking)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    template.set_mode("train")
    _TEMPLATES[key] = template
    return template
