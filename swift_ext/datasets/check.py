"""`swift-ext data check`: validate ms-swift `messages` JSONL (text, images, videos, audio, tools).

Every row is checked and every problem is reported with a stable code, its line and field. Files are
streamed in byte-range chunks cut on line boundaries (in parallel over --jobs processes), so memory
does not grow with the file. Rows are decoded with msgspec; the checks are plain Python over the
decoded row (swift_ext.datasets.rows), with a typed fast path for clean rows (fastpath, chunks).
File-level checks (a column whose JSON type changes between rows and holds a string datasets then
decodes as JSON - E110 - duplicate rows, and KTO rows sharing an answer - datasets/kto.py) are done here, by the
parent, with bounded memory.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator

import msgspec

from swift_ext.msswift.conventions import local_dataset_path, parse_dataset_entry, without_sample_suffix  # noqa: F401  (re-exported)
from swift_ext.datasets.chunks import TYPED_COLUMNS, check_chunk, check_lines, row_types
from swift_ext.datasets.duplicates import Duplicates, file_digests
from swift_ext.datasets.issues import CODES, FileCheckError, data_finding, json_type
from swift_ext.spec.findings import Finding
from swift_ext.datasets.options import CHUNK, LENGTH_SAMPLE, ChunkResult, Options
from swift_ext.datasets.percentiles import percentiles
from swift_ext.datasets.reader import (CR_LINES, READERS, STDIN, chunk_ranges, file_lines, is_stream, numbered_lines, sniff,
                                      spool)

__all__ = ["CODES", "FileCheckError", "data_finding", "Options", "DataCheckReport", "check_file", "merge_reports",
           "write_clean", "local_dataset_path", "percentiles"]
_DECODER = msgspec.json.Decoder()


@dataclass
class DataCheckReport:
    files: list[str]
    rows: int = 0
    valid_rows: int = 0
    issues: list[Finding] = field(default_factory=list)
    roles: Counter = field(default_factory=Counter)
    media: Counter = field(default_factory=Counter)
    lengths: list[int] = field(default_factory=list)
    duplicates: int = 0
    notes: list[str] = field(default_factory=list)
    layout: str = "jsonl"  # how the rows were read: jsonl, json-array, gzip/bz2/xz (JSONL inside), not-checked

    @property
    def errors(self) -> int:
        return sum(1 for i in self.issues if i.severity == "error")

    def counts(self) -> Counter:
        return Counter(i.code for i in self.issues)

    def as_dict(self) -> dict:
        return {
            "files": self.files,
            "rows": self.rows,
            "valid_rows": self.valid_rows,
            "errors": self.errors,
            "warnings": sum(1 for i in self.issues if i.severity == "warning"),
            "by_code": {f"{c} {CODES[c][1]}": n for c, n in sorted(self.counts().items())},
            "roles": dict(sorted(self.roles.items())),
            "media": dict(sorted(self.media.items())),
            "duplicates": self.duplicates,
            "length_percentiles": percentiles(self.lengths),
            "notes": self.notes,
            "issues": [i.as_dict() for i in self.issues],
        }


def check_file(path: str, opts: Options, jobs: int = 1, progress=None, chunk_bytes: int = CHUNK,
               typed: bool = True, input_format: str | None = None) -> DataCheckReport:
    """Every issue of one file, with counts and summaries. `typed=False` runs the reference (every row
    through RowChecker.check); the results are the same. `path` may be `-` (stdin) or a FIFO
    (`<(zcat f.gz)`); `input_format` (jsonl, json) says how to read a file whose name says nothing."""
    if is_stream(path):
        return _check_stream(path, opts, jobs, chunk_bytes, typed, input_format)
    report = DataCheckReport([path])
    parsed = parse_dataset_entry(path)
    entry = parsed.base
    if parsed.sample is not None:
        if parsed.bad_sample:  # ms-swift's DatasetSyntax.parse: int(sample), else a crash
            raise FileCheckError(f"{path}: '#{parsed.sample}' is not a sample count (ms-swift reads FILE#N with N a number)")
        report.notes.append(f"{path}: the '#N' sample suffix is ms-swift's; the whole file is checked")
    if os.path.isdir(entry):
        raise FileCheckError(f"{entry}: is a directory, expected a JSONL/JSON file")
    if not os.path.isfile(entry):
        raise FileCheckError(f"{entry}: file not found")
    layout, problem = sniff(entry, input_format)
    if input_format and os.path.splitext(entry)[1].lower().lstrip(".") not in READERS:
        report.notes.append(f"{entry}: read as {input_format} (--input-format); ms-swift picks its reader from the "
                            f"file name: name it .{input_format} for training")
    report.layout = layout
    if problem:
        if layout == "not-checked":
            report.notes.append(f"{entry}: {problem}")
        else:
            report.issues.append(data_finding(entry, 0, "E005", "", problem))
        return report
    reference = _reference_types(entry, layout)
    if layout == "jsonl":
        ranges = chunk_ranges(entry, chunk_bytes)
        results = _run_chunks(entry, ranges, opts, reference, jobs, progress, typed)  # a generator: streamed
    else:
        lines = ([line] for line in file_lines(entry, layout))
        results = iter([check_lines(entry, lines, 0, opts, reference, typed)])
        if layout == "json-array":
            report.notes.append(f"{entry}: a JSON array; 'line' numbers are row positions")
        elif layout == CR_LINES:
            report.notes.append(f"{entry}: JSON Lines ended by a lone CR (ms-swift reads them as lines too); checked "
                                "on one core")
        else:
            report.notes.append(f"{entry}: {layout}-compressed JSON Lines (ms-swift reads it too); checked on one core")
    dups = Duplicates()
    dpo = opts.task == "dpo"  # the rejected side is part of a DPO row (fastpath.row_digest)
    import random

    sampler = random.Random(0)
    seen_lengths = 0
    kinds = {column: {kind} for column, kind in reference.items()}  # every JSON type each column holds
    offset = 0  # lines before the chunk
    for res in results:
        report.rows += res.rows
        report.valid_rows += res.valid
        for issue in res.issues:
            issue.line += offset
        report.issues.extend(res.issues)
        report.roles.update(res.roles)
        report.media.update(res.media)
        for value in res.lengths:  # reservoir sample: percentiles without keeping every length
            seen_lengths += 1
            if len(report.lengths) < LENGTH_SAMPLE:
                report.lengths.append(value)
            else:
                k = sampler.randrange(seen_lengths)
                if k < LENGTH_SAMPLE:
                    report.lengths[k] = value
        for column, kind in res.types:
            kinds.setdefault(column, set()).add(kind)
        report.issues.extend(_duplicate(entry, line, dpo) for line in dups.add_chunk(res.line_blob, res.digest_blob, offset))
        offset += res.lines
    report.issues.extend(_duplicate(entry, line, dpo) for line in dups.finish())
    if dups.candidates:
        for line in dups.confirm(file_digests(entry, layout, dpo)):
            report.issues.append(_duplicate(entry, line, dpo))
    report.duplicates = dups.count
    if opts.task == "kto" and opts.kto_kl:
        from swift_ext.datasets.kto import kto_kl_findings

        report.issues.extend(kto_kl_findings(entry, layout))
    mixed = [column for column in TYPED_COLUMNS if len(kinds.get(column, ())) > 1]
    if mixed:  # rare: a second, plain pass over the file, only for the columns that need it
        report.issues.extend(_json_read_strings(entry, layout, mixed, kinds))
    if report.rows == 0:
        report.issues.append(data_finding(entry, 0, "E006", "", "no rows: ms-swift refuses an empty dataset"))
    # A row whose only error is a type change was counted valid by its chunk.
    mixed_only = {i.line for i in report.issues if i.code == "E110"} - {
        i.line for i in report.issues if i.severity == "error" and i.code != "E110"}
    report.valid_rows -= len(mixed_only)
    report.issues.sort(key=lambda i: (i.line, i.code, i.path if i.code == "E110" else ""))
    return report


def _check_stream(path: str, opts: Options, jobs: int, chunk_bytes: int, typed: bool, input_format: str | None
                  ) -> DataCheckReport:
    """A stream is spooled to a temporary file once, checked as a file, and reported under its own name."""
    shown = "<stdin>" if path == STDIN else path
    spooled = spool(path, input_format)
    try:
        report = check_file(spooled, opts, jobs=jobs, chunk_bytes=chunk_bytes, typed=typed, input_format=input_format)
    finally:
        os.unlink(spooled)
    report.files = [shown]
    for issue in report.issues:
        issue.file = shown
    report.notes = [note.replace(spooled, shown) for note in report.notes]
    report.layout = "stream"  # --write-clean cannot read it again
    return report


def _json_read_strings(path: str, layout: str, columns: list[str], kinds: dict[str, set[str]]) -> list[Finding]:
    """E110 for each column of `columns` (their JSON type changes between rows) that holds a string
    datasets would decode: at the first row with one, naming the value and what it turns into.

    datasets 4.x (the installed 4.8.4) loads a column whose type changes between rows (or a `content` that
    is a string in one message and a list in another) typed Json: packaged_modules/json/json.py keeps a
    string that `ujson_loads` accepts as the JSON it reads as (datasets.utils.json.json_encode_field) and
    Json.decode_example decodes every value, so "4" arrives as 4, "true" as True, "null" as None, '"q"' as
    q; a string it refuses ("a.png", "no") is written as a JSON string and arrives unchanged, and so do
    lists and objects. So only such strings break; a mixed column without one loads as written (ms-swift
    takes `images` as a string or a list, `rejected_response` as a string or messages). tests/test_data.py
    loads both through ms-swift's load_dataset."""
    loads = _json_reader()
    first_batch = _first_batch() if "messages" in columns else 0
    # Only the mixed columns are decoded (msgspec skips the rest of the row in C); a row that is not an
    # object fails the decode and is left to the checks that reported it.
    decode = msgspec.json.Decoder(msgspec.defstruct("Mixed", [(c, Any, None) for c in columns])).decode
    first: dict[str, tuple[int, str, object]] = {}
    rows: Counter = Counter()
    message_keys: set[frozenset] = set()  # the key sets of the messages in datasets' first batch
    offset = 0
    for n, raw in numbered_lines(path, layout):
        in_first_batch = offset < first_batch or layout == "json-array"  # an array is read whole
        offset += (raw if type(raw) is int else len(raw)) + 1
        if type(raw) is int:
            continue
        try:
            row = decode(raw)
        except (msgspec.DecodeError, RecursionError):
            continue
        if in_first_batch and "messages" in columns and isinstance(row.messages, list):
            message_keys.update(frozenset(m) if isinstance(m, dict) and m else frozenset({None})
                                for m in row.messages if m is not None)
        for column in columns:
            for value in _strings(getattr(row, column), column == "messages"):
                try:
                    read = loads(value)
                except Exception:  # noqa: BLE001 - not JSON to datasets (ValueError, or msgspec's error): kept as is
                    continue
                rows[column] += 1
                first.setdefault(column, (n, value, read))
                break
    if len(message_keys) > 1 or frozenset({None}) in message_keys:
        # Messages whose keys differ in datasets' first batch (a `loss` or `tool_calls` key in some) make
        # each message one Json value (datasets.utils.json.find_mixed_struct_types_field_paths): its
        # content is inside that JSON and arrives as written, whatever its type.
        first.pop("messages", None)
    out = []
    for column, (line, value, read) in first.items():
        held = " and ".join(sorted(k.rsplit(":", 1)[-1] for k in kinds[column]))
        whose, it = ("message contents are", "them") if column == "messages" else (f"{column} holds", "it")
        others = rows[column] - 1
        out.append(data_finding(path, line, "E110", column, (
            f"{whose} {held} values, so ms-swift's loader (datasets) types {it} Json and decodes every string that "
            f"reads as JSON: {_shown(value)} here arrives as {_shown(read)} ({json_type(read)})"
            + (f"; {others} more row{'s' if others > 1 else ''} hold such strings" if others else "")
            + ". Write the column with one type, or write the value so that it does not read as JSON")))
    return out


def _strings(value, messages: bool) -> Iterator[str]:
    """The string values datasets' Json decoding reads: the column's value, or each message's content."""
    if messages:
        if isinstance(value, list):
            for message in value:
                if isinstance(message, dict) and isinstance(message.get("content"), str):
                    yield message["content"]
    elif isinstance(value, str):
        yield value


def _json_reader():
    """What datasets decides with: datasets.utils.json.ujson_loads is pandas' ujson (lenient: "NaN", "01",
    "1." read as numbers), imported here from pandas (a third of datasets' import time). Without pandas
    (swift-ext without ms-swift), strict JSON, which misses only those lenient forms."""
    try:
        from pandas.io.json import ujson_loads
    except ImportError:
        try:
            from pandas.io.json import loads as ujson_loads  # pandas < 2.2, as datasets falls back to
        except ImportError:
            return msgspec.json.decode
    return ujson_loads


def _first_batch() -> int:
    """The bytes of datasets' first batch of a JSON Lines file (JsonConfig.chunksize), where it looks for
    structs whose keys differ; without datasets, datasets 4.8.4's 10 MiB."""
    try:
        from datasets.packaged_modules.json.json import JsonConfig
    except ImportError:
        return 10 << 20
    return JsonConfig.chunksize


def _shown(value) -> str:
    text = msgspec.json.encode(value).decode() if not isinstance(value, float) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _duplicate(path: str, line: int, dpo: bool = False) -> Finding:
    return data_finding(path, line, "W402", "messages", "same messages and media as an earlier row"
                        + (", and the same rejected side" if dpo else ""))


def _reference_types(path: str, layout: str) -> dict[str, str]:
    """Column types of the first decodable rows: what Arrow infers and every later row must match."""
    types: dict[str, str] = {}
    for n, raw in numbered_lines(path, layout):
        if n > 1001:
            break
        if type(raw) is int:
            continue
        if not raw.strip():
            continue
        try:
            row = _DECODER.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            continue
        if isinstance(row, dict):
            for column, kind in row_types(row):
                types.setdefault(column, kind)
            if len(types) == len(TYPED_COLUMNS):
                break
    return types


def _run_chunks(path: str, ranges, opts: Options, reference, jobs: int, progress, typed: bool
                ) -> Iterator[ChunkResult]:
    """Chunk results in file order, as they complete: at most ~2 x jobs results are held at once."""
    args = [(path, s, e, i, opts, reference, typed) for i, (s, e) in enumerate(ranges)]
    if jobs <= 1 or len(ranges) == 1:
        for a in args:
            yield check_chunk(*a)
            if progress:
                progress(a[2] - a[1])
        return
    import concurrent.futures as cf
    import multiprocessing as mp

    done_out_of_order: dict[int, ChunkResult] = {}
    next_index = 0
    # spawn, not fork: the caller may be a threaded or CUDA-initialised process.
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        queue = list(args)
        pending = {}
        while queue or pending:
            while queue and len(pending) < jobs * 2:
                a = queue.pop(0)
                pending[pool.submit(check_chunk, *a)] = a
            finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                a = pending.pop(fut)
                res = fut.result()
                done_out_of_order[res.index] = res
                if progress:
                    progress(a[2] - a[1])
            while next_index in done_out_of_order:
                yield done_out_of_order.pop(next_index)
                next_index += 1


def write_clean(path: str, report: DataCheckReport, out: str) -> int:
    """Copy the rows without errors to a new file (never the input, never an existing file)."""
    if os.path.exists(out):
        raise FileCheckError(f"{out}: already exists; not overwriting")
    if os.path.abspath(out) == os.path.abspath(path):
        raise FileCheckError(f"{out}: is the input file; --write-clean writes a new file")
    if report.layout == "json-array":
        raise FileCheckError("--write-clean writes JSONL; convert the JSON array first")
    if report.layout == "stream":
        raise FileCheckError(f"{path}: --write-clean needs a file; a stream is read only once")
    whole_file = [i for i in report.issues if i.line == 0 and i.severity == "error"]
    if report.layout in ("unreadable", "not-checked") or whole_file:
        raise FileCheckError(f"{path}: no rows to write ({whole_file[0].message if whole_file else report.layout})")
    bad = {i.line for i in report.issues if i.severity == "error" and i.file == path}
    written = 0
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise FileCheckError(f"{out}: its directory does not exist (--write-clean creates a file, not directories)")
    with open(out, "xb") as dst:  # compressed input comes out as plain JSONL
        for n, raw in enumerate(file_lines(path, report.layout), start=1):
            if n in bad or type(raw) is int or not raw.strip():
                continue
            dst.write(raw + b"\n")
            written += 1
    return written


def merge_reports(reports: list[DataCheckReport]) -> DataCheckReport:
    total = DataCheckReport([f for r in reports for f in r.files])
    if len(reports) == 1:
        total.layout = reports[0].layout  # what --write-clean reads the file as
    for r in reports:
        total.rows += r.rows
        total.valid_rows += r.valid_rows
        total.issues.extend(r.issues)
        total.roles.update(r.roles)
        total.media.update(r.media)
        total.lengths.extend(r.lengths)
        total.duplicates += r.duplicates
        total.notes.extend(r.notes)
    return total
