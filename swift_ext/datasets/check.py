"""`swift-ext data check`: validate ms-swift `messages` JSONL (text, images, videos, audio, tools).

Every row is checked and every problem is reported with a stable code, its line and field. Files are
streamed in byte-range chunks cut on line boundaries (in parallel over --jobs processes), so memory
does not grow with the file. Rows are decoded with msgspec; the checks are plain Python over the
decoded row (swift_ext.datasets.rows), with a typed fast path for clean rows (fastpath, chunks).
File-level checks (a column whose JSON type changes between rows - what breaks Arrow inside ms-swift -
and duplicate rows) are done here, by the parent, with bounded memory.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

import msgspec

from swift_ext.msswift.conventions import local_dataset_path, parse_dataset_entry, without_sample_suffix  # noqa: F401  (re-exported)
from swift_ext.datasets.chunks import TYPED_COLUMNS, check_chunk, check_lines, row_types
from swift_ext.datasets.duplicates import Duplicates, file_digests
from swift_ext.datasets.issues import CODES, FileCheckError, data_finding
from swift_ext.spec.findings import Finding
from swift_ext.datasets.options import CHUNK, LENGTH_SAMPLE, ChunkResult, Options
from swift_ext.datasets.percentiles import percentiles
from swift_ext.datasets.reader import READERS, STDIN, chunk_ranges, file_lines, is_stream, sniff, spool

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
        else:
            report.notes.append(f"{entry}: {layout}-compressed JSON Lines (ms-swift reads it too); checked on one core")
    dups = Duplicates()
    dpo = opts.task == "dpo"  # the rejected side is part of a DPO row (fastpath.row_digest)
    import random

    sampler = random.Random(0)
    seen_lengths = 0
    file_types = dict(reference)
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
        for line, column, kind in res.types:
            if column not in file_types:
                file_types[column] = kind
            elif file_types[column] != kind:
                report.issues.append(_type_change(entry, line + offset, column, kind, file_types[column]))
        for column, lines in res.first_kind_lines.items():
            kind = res.first_kinds[column]
            if file_types[column] != kind:
                report.issues.extend(_type_change(entry, line + offset, column, kind, file_types[column])
                                     for line in lines)
        report.issues.extend(_duplicate(entry, line, dpo) for line in dups.add_chunk(res.line_blob, res.digest_blob, offset))
        offset += res.lines
    report.issues.extend(_duplicate(entry, line, dpo) for line in dups.finish())
    if dups.candidates:
        for line in dups.confirm(file_digests(entry, layout, dpo)):
            report.issues.append(_duplicate(entry, line, dpo))
    report.duplicates = dups.count
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


def _type_change(path: str, line: int, column: str, kind: str, first: str) -> Finding:
    # datasets 4.x (the installed 4.8.4) loads such a column, typed Json: each value is decoded as JSON, so a
    # string that reads as JSON ("4", "true", "[...]") comes back as a number, boolean or list
    # (tests/test_data.py, through ms-swift's load_dataset). Which strings change depends on their text:
    # the column is refused whole, as ms-swift cannot be trusted to see the values written.
    return data_finding(path, line, "E110", column, f"JSON type {kind} here, {first} in earlier rows: ms-swift's "
                        "loader (datasets) then reads every value of the column as JSON, so a string such as \"4\" "
                        "arrives as a number; write the column with one type")


def _duplicate(path: str, line: int, dpo: bool = False) -> Finding:
    return data_finding(path, line, "W402", "messages", "same messages and media as an earlier row"
                        + (", and the same rejected side" if dpo else ""))


def _reference_types(path: str, layout: str) -> dict[str, str]:
    """Column types of the first decodable rows: what Arrow infers and every later row must match."""
    types: dict[str, str] = {}
    for n, raw in enumerate(file_lines(path, layout)):
        if n > 1000:
            break
        if type(raw) is int:
            continue
        if n == 0 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        try:
            row = _DECODER.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            continue
        if isinstance(row, dict):
            for column, kind in row_types(row).items():
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
