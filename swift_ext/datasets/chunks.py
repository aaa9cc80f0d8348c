"""Checking the lines of one chunk of a file (in a worker process for --jobs N): the typed fast path over
clean rows, RowChecker on the rest, and what the parent needs for the file-level checks (column types
where they change, row digests)."""

from __future__ import annotations

import mmap
import shlex
from pathlib import Path
from typing import Iterable, Iterator

import msgspec
import xxhash

from swift_ext.datasets import fastpath, options
from swift_ext.datasets.fastpath import (
    FAST_KINDS,
    FAST_MESSAGES,
    MEDIA_KEYS,
    ROW_DECODER,
    SKIP,
    row_digest,
    valid_utf8,
)
from swift_ext.datasets.issues import FileCheckError, data_finding, json_type
from swift_ext.datasets.options import ChunkResult, Options
from swift_ext.datasets.reader import UTF8_BOM, line_lists, range_blocks
from swift_ext.datasets.rows import RowChecker

_DECODER = msgspec.json.Decoder()
TYPED_COLUMNS = ("messages", "images", "videos", "audios", "solution", "rejected_response", "label", "tools",
                 "objects")


def check_chunk(path: str, start: int, end: int, index: int, opts: Options, reference_types: dict[str, str],
                typed: bool = True) -> ChunkResult:
    """One byte range of a JSONL file; line numbers in the result count from the range's first line.
    The typed path reads the range mapped in memory: no line is copied before it is decoded."""
    if typed and _typed_path(opts) and end > start:
        with open(path, "rb") as fh:
            offset = start - start % mmap.ALLOCATIONGRANULARITY
            with mmap.mmap(fh.fileno(), end - offset, access=mmap.ACCESS_READ, offset=offset) as mapped:
                return _check_typed(path, [(mapped, start - offset, end - offset, None)], index, opts,
                                    reference_types)
    return check_lines(path, line_lists(range_blocks(path, start, end)), index, opts, reference_types, typed)


def _typed_path(opts: Options) -> bool:
    # a `columns` mapping renames what the typed structs would read: those rows take RowChecker
    return opts.task in ("sft", "pt") and not opts.deep and not (opts.max_length and opts.tokenizer) \
        and not opts.columns


def check_lines(path: str, line_lists: Iterable[list[bytes | int]], index: int, opts: Options,
                reference_types: dict[str, str], typed: bool = True) -> ChunkResult:
    """Check lines given in lists (numbered from 1). `typed=False` checks every row with
    RowChecker.check: the reference the typed path must agree with."""
    if typed and _typed_path(opts):
        return _check_typed(path, _joined(line_lists), index, opts, reference_types)
    tokenizer = _load_tokenizer(opts.tokenizer) if opts.max_length and opts.tokenizer else None
    checker = RowChecker(path, opts, tokenizer, reference_types)
    out = ChunkResult(index)
    seen_types = set(reference_types.items())
    line = 0
    for lines in line_lists:
        for raw in lines:
            line += 1
            _check_line(raw, line, index == 0, checker, out, seen_types)
    out.lines = line
    return out.pack()


def _joined(line_lists: Iterable[list[bytes | int]]) -> Iterator[tuple]:
    """(buffer, start, end, line count) per list of lines, for _check_typed; an over-long line (an int)
    comes alone, as itself."""
    for lines in line_lists:
        if any(type(raw) is int for raw in lines):
            for raw in lines:
                yield (raw, 0, 0, 1) if type(raw) is int else (raw, 0, len(raw), 1)
        else:
            buf = b"\n".join(lines)
            yield buf, 0, len(buf), len(lines)


def _check_typed(path: str, buffers: Iterable[tuple], index: int, opts: Options,
                 reference_types: dict[str, str]) -> ChunkResult:
    """The typed path over (buffer, start, end, line count or None) pieces of consecutive lines: msgspec
    decodes the common shape into typed structs (types checked in C), then check_buffer (C, or its Python
    twin) takes the clean rows with no Python per row. A line it stops at is checked here, and a row that
    is not clean takes _check_line, the reference check."""
    checker = RowChecker(path, opts, reference=reference_types)
    out = ChunkResult(index)
    seen_types = set(reference_types.items())  # (column, JSON type) pairs the parent knows of or was told
    first_chunk = index == 0
    decode_any = ROW_DECODER.decode
    hash128 = xxhash.xxh3_128_digest
    run, summary_of = fastpath.check_buffer, fastpath.row_summary  # read here: a test can swap in the Python twins
    files_ok = checker.files_ok
    record = _record_types
    q_msg, q_img, q_vid, q_aud = (pair in seen_types for pair in (("messages", FAST_MESSAGES), ("images", "list"),
                                                                  ("videos", "list"), ("audios", "list")))
    # True: the column's type in a typed row needs no note
    digest_lines, digests = out.digest_lines, out.digests
    totals = [0] * 6  # clean rows, images, videos, audios, system turns, messages
    line = 0  # lines before the piece
    for buf, pos, end, count in buffers:
        line_no = line + 1
        if type(buf) is int:  # over-long
            _check_line(buf, line_no, first_chunk, checker, out, seen_types)
            line += count
            continue
        while pos < end:
            if q_msg:  # C runs over clean rows; it stops before a media column whose type still needs a note
                pos, line_end, line_no = run(decode_any, SKIP, files_ok, hash128, totals, digest_lines, digests,
                                             (not q_img, not q_vid, not q_aud), buf, pos, end, line_no, options.MAX_LINE)
                if pos >= end:
                    break
            else:
                newline = buf.find(b"\n", pos, end)
                line_end = end if newline < 0 else newline
            # The line the run stopped at (or every line while `messages` has no settled type): in Python.
            raw = buf[pos:line_end] if line_end - pos <= options.MAX_LINE else line_end - pos
            line, pos, line_no = line_no, line_end + 1, line_no + 1
            try:
                row = decode_any(raw)
            except SKIP:
                _check_line(raw, line, first_chunk, checker, out, seen_types)
                continue
            if not valid_utf8(raw):  # the typed decode does not validate the keys and values it skips
                _check_line(raw, line, first_chunk, checker, out, seen_types)
                continue
            summary = summary_of(row.messages, row.images, row.videos, row.audios, files_ok, hash128)
            if summary is None:
                _check_line(raw, line, first_chunk, checker, out, seen_types)
                continue
            if not q_msg:
                q_msg = record(FAST_KINDS["messages"], seen_types, out)
            if not q_img and row.images is not None:
                q_img = record(FAST_KINDS["images"], seen_types, out)
            if not q_vid and row.videos is not None:
                q_vid = record(FAST_KINDS["videos"], seen_types, out)
            if not q_aud and row.audios is not None:
                q_aud = record(FAST_KINDS["audios"], seen_types, out)
            digest_lines.append(line)
            digests.append(summary[4])
            for k, n in enumerate((1, *summary[:4], len(row.messages))):
                totals[k] += n
        line = line_no - 1 if count is None else line + count
    out.lines = line
    fast_rows, n_images, n_videos, n_audios, n_systems, n_messages = totals
    out.rows += fast_rows
    out.valid += fast_rows
    turns = (n_messages - n_systems) // 2  # clean rows: user/assistant pairs after an optional system turn
    for role, n in (("system", n_systems), ("user", turns), ("assistant", turns)):
        if n:
            out.roles[role] += n
    for key, n in zip(MEDIA_KEYS, (n_images, n_videos, n_audios), strict=True):
        if n:
            out.media[key] += n
    return out.pack()


def _record_types(kinds, seen: set[tuple[str, str]], out: ChunkResult) -> bool:
    """Note each (column, JSON type) of the row the chunk has not seen yet, for the parent's E110 (which
    needs every type a column holds, not where); True when there was nothing new to note."""
    quiet = True
    for pair in kinds:
        if pair not in seen:
            seen.add(pair)
            out.types.append(pair)
            quiet = False
    return quiet


def _check_line(raw: bytes | int, line: int, first_chunk: bool, checker: RowChecker, out: ChunkResult,
                seen_types: set[tuple[str, str]]) -> None:
    path = checker.path
    if type(raw) is int or len(raw) > options.MAX_LINE:
        size = raw if type(raw) is int else len(raw)
        out.rows += 1
        out.issues.append(data_finding(path, line, "E004", "", f"line of {size / 2**20:.0f} MiB: Arrow (ms-swift's "
                                f"loader) holds at most {(options.MAX_LINE + 1) / 2**30:g} GiB in one value"))
        return
    if line == 1 and first_chunk and raw.startswith(UTF8_BOM):
        raw = raw[len(UTF8_BOM):]
    raw = raw.rstrip(b"\r")
    if not raw.strip():
        return
    try:
        row = _DECODER.decode(raw)
    except msgspec.DecodeError as exc:
        out.rows += 1
        code, message = "E001", str(exc)[:200]
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as uexc:
            code, message = "E003", f"not UTF-8 (byte {uexc.start})"
        if raw.startswith(UTF8_BOM):  # only the file's first line may carry one: `cat a.jsonl b.jsonl` keeps b's
            message = ("a byte-order mark (EF BB BF) starts this line, not only the file (files joined with `cat` "
                       "keep each one's); ms-swift's JSON reader refuses it -- remove it: "
                       f"sed -i 's/^\\xEF\\xBB\\xBF//' {shlex.quote(path)}")
        out.issues.append(data_finding(path, line, code, "", message))
        return
    except RecursionError:
        out.rows += 1
        out.issues.append(data_finding(path, line, "E001", "", "JSON nested too deeply"))
        return
    checked = row
    try:
        checked = checker.check(row, line, out)
    except Exception as exc:  # a bug of ours must not hide the rest of the file
        out.rows += 1
        out.issues.append(data_finding(path, line, "E102", "", f"row could not be checked ({type(exc).__name__}: {exc})"))
    if isinstance(row, dict):
        _record_types(row_types(row), seen_types, out)
        # mapped layouts compare as the messages ms-swift makes of them; a DPO row with its rejected side
        digest = row_digest(checked, checker.opts.task == "dpo")
        if digest is not None:
            out.digest_lines.append(line)
            out.digests.append(digest)


def row_types(row: dict) -> list[tuple[str, str]]:
    """(column, JSON type) of each column Arrow will type; `messages` by its contents' types, one pair for
    each type a content of the row has (a string next to a list of parts already mixes the column).
    null is no type: Arrow takes it in a column of any type."""
    out = []
    for column in TYPED_COLUMNS:
        value = row.get(column)
        if value is None:
            continue
        if column != "messages" or not isinstance(value, list):
            out.append((column, json_type(value)))
            continue
        found = set()
        for msg in value:
            if isinstance(msg, dict) and msg.get("content") is not None:
                kind = "messages.content:" + json_type(msg["content"])
                if kind not in found:
                    found.add(kind)
                    out.append((column, kind))
    return out


def _load_tokenizer(spec: str):
    """The tokenizer `data stats` counts with (loaded once per process), for --max-length."""
    from swift_ext.datasets.mediatokens import StatsError
    from swift_ext.datasets.template import load_tokenizer

    path = Path(spec)
    if not (path / "tokenizer.json" if path.is_dir() else path).is_file():
        raise FileCheckError(f"{spec}: no tokenizer.json here (--tokenizer takes a tokenizer.json or a model dir)")
    try:
        return load_tokenizer(spec)
    except StatsError as exc:
        raise FileCheckError(str(exc)) from None
