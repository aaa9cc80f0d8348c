"""Reading a data file the way ms-swift's loader will: its layout sniffed (JSON Lines, a JSON array,
gzip/bz2/xz-compressed JSON Lines, or a format not checked), one opener for every layout (`data check`
and `data stats` both read through it), and lines streamed in blocks with exact line numbers, an
over-long line given as its length instead of its bytes."""

from __future__ import annotations

import codecs
import os
import shlex
from pathlib import Path
from typing import IO, Iterable, Iterator

import msgspec

from swift_ext.datasets import options
from swift_ext.datasets.options import CHUNK

BLOCK = 1 << 20
UTF8_BOM = codecs.BOM_UTF8  # Windows editors start files with it; ms-swift's loader accepts it
_DECODER = msgspec.json.Decoder()
_CANONICAL = msgspec.json.Encoder(order="sorted")  # a JSON array's rows re-encoded one per line


class _CarriageReturnLines:
    """A file whose lines end with a lone CR, read with LF line ends (the file has no LF: sniff checked)."""

    def __init__(self, fh):
        self.fh = fh

    def read(self, n: int = -1) -> bytes:
        return self.fh.read(n).replace(b"\r", b"\n")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()


def open_data(path: str, layout: str) -> IO[bytes]:
    """The file's bytes as ms-swift's JSON reader sees them: decompressed for gzip/bz2/xz; lines ended by a lone
    CR as lines (pyarrow's JSON reader, under datasets' `json` builder, reads such a file row by row)."""
    if layout == CR_LINES:
        return _CarriageReturnLines(open(path, "rb"))  # type: ignore[return-value]
    if layout in ("gzip", "bz2", "xz"):
        import bz2
        import gzip
        import lzma

        return {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[layout](path, "rb")
    return open(path, "rb")


def chunk_ranges(path: str, size: int = CHUNK) -> list[tuple[int, int]]:
    """Byte ranges of about `size` bytes, each ending just after a newline (or at EOF)."""
    total = os.path.getsize(path)
    ranges, start = [], 0
    with open(path, "rb") as fh:
        while start < total:
            end = min(start + size, total)
            if end < total:
                fh.seek(end)
                while True:
                    piece = fh.read(1 << 16)
                    if not piece:
                        end = total
                        break
                    nl = piece.find(b"\n")
                    if nl >= 0:
                        end += nl + 1
                        break
                    end += len(piece)
            ranges.append((start, end))
            start = end
    return ranges


def range_blocks(path: str, start: int, end: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = end - start
        while remaining > 0:
            block = fh.read(min(BLOCK, remaining))
            if not block:
                return
            remaining -= len(block)
            yield block


def stream_blocks(fh) -> Iterator[bytes]:
    while True:
        block = fh.read(BLOCK)
        if not block:
            return
        yield block


def line_lists(blocks: Iterable[bytes], max_line: int | None = None) -> Iterator[list[bytes | int]]:
    """Every line (without its newline), one item per line whatever its length, so line numbers stay exact;
    in lists, one per block read (a loop over a list costs less than a generator per line). A line longer
    than `max_line` is not held: it comes back as its length (an int)."""
    max_line = options.MAX_LINE if max_line is None else max_line
    pending: list[bytes] = []  # pieces of the line that is not finished yet
    size = 0
    for block in blocks:
        parts = block.split(b"\n")
        if len(parts) == 1:
            size += len(block)
            if size <= max_line:
                pending.append(block)
            else:
                pending.clear()
            continue
        if size:
            size += len(parts[0])
            if size > max_line:
                parts[0] = size  # type: ignore[call-overload]
            else:
                pending.append(parts[0])
                parts[0] = b"".join(pending)
        last = parts.pop()
        yield parts
        pending = [last]
        size = len(last)
    if size:
        yield [b"".join(pending) if size <= max_line else size]


def split_lines(blocks: Iterable[bytes], max_line: int | None = None) -> Iterator[bytes | int]:
    for lines in line_lists(blocks, max_line):
        yield from lines


COMPRESSION = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}
OTHER_MAGIC = {b"PAR1": "a Parquet file", b"PK\x03\x04": "a zip archive", b"\x28\xb5\x2f\xfd": "zstd-compressed",
               b"ARROW1": "an Arrow file", b"SQLite format 3": "an SQLite database"}
READERS = {"jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet", "arrow": "arrow", "txt": "text"}


STDIN = "-"
INPUT_FORMATS = ("jsonl", "json")  # --input-format: how to read a file whose name says nothing (stdin, a pipe)


def is_stream(path: str) -> bool:
    """stdin (`-`), a FIFO, /dev/fd/N from process substitution: read once, from the front."""
    return path == STDIN or (os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path))


def spool(path: str, input_format: str | None) -> str:
    """A stream copied to a temporary file (the caller removes it), named so sniff reads it as
    `input_format` (default JSON Lines): the checks read a file more than once and in parallel."""
    import shutil
    import sys
    import tempfile

    with tempfile.NamedTemporaryFile("wb", suffix="." + (input_format or "jsonl"), prefix="swift-ext-stdin-",
                                     delete=False) as out:
        if path == STDIN:
            shutil.copyfileobj(sys.stdin.buffer, out, BLOCK)
        else:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, out, BLOCK)
    return out.name


def sniff(path: str, input_format: str | None = None) -> tuple[str, str | None]:
    """How the rows are stored (jsonl, json-array, gzip/bz2/xz, not-checked) and, when they cannot be
    read the way ms-swift will read them, why. ms-swift 4.6 picks the `datasets` reader from the last
    extension (swift/dataset/loader.py); the json reader also takes a JSON array and compressed content."""
    suffix = input_format or os.path.splitext(path)[1].lower().lstrip(".")
    with open(path, "rb") as fh:
        head = fh.read(1 << 12)
    compression = next((name for magic, name in COMPRESSION.items() if head.startswith(magic)), None)
    if suffix not in READERS:
        hint = {"gz": "gunzip it", "bz2": "bunzip2 it", "xz": "unxz it", "zst": "unzstd it"}.get(suffix, "")
        return "unreadable", (f"ms-swift 4.6 picks its reader from the extension and has none for '.{suffix}'"
                              f"{' (it looks for a hub dataset called ' + repr(suffix) + ')' if suffix else ''}; "
                              f"{hint + ' to .jsonl' if hint else 'save it as .jsonl'}")
    if READERS[suffix] != "json":
        return "not-checked", (f"ms-swift reads it with the `{READERS[suffix]}` reader; swift-ext checks JSONL "
                               "and JSON only, so its rows are not checked")
    kind = next((name for magic, name in OTHER_MAGIC.items() if head.startswith(magic)), None)
    if kind:
        return "unreadable", (f"{kind}, not JSON Lines: ms-swift reads a .{suffix} file as JSON and fails; "
                              "give it its real extension or convert it to JSONL")
    if compression:
        import lzma

        try:
            with open_data(path, compression) as fh:
                head = fh.read(1 << 12)
        except (OSError, EOFError, lzma.LZMAError) as exc:
            return "unreadable", f"{compression}-compressed but cannot be decompressed ({exc})"
    elif b"\x00" in head:
        wide = _wide_encoding(head)
        if wide:
            return "unreadable", (f"{wide} text, not UTF-8: ms-swift's JSON reader reads UTF-8 and fails on it; "
                                  f"convert it: iconv -f {wide.split()[0]} -t UTF-8 {shlex.quote(path)} > "
                                  f"{shlex.quote(os.path.splitext(path)[0] + '.utf8.' + suffix)}")
        return "unreadable", "binary data, not JSON Lines"
    stripped = head.lstrip(UTF8_BOM + b" \t\r\n")
    if stripped.startswith(b"[") and not compression and json_array(path) is not None:
        return "json-array", None
    if not stripped.startswith((b"{", b"[")) and _other_format(path, compression):
        first = stripped.split(b"\n", 1)[0][:60].decode("utf-8", "replace")
        looks = "CSV/TSV" if ("," in first or "\t" in first) else "text"
        return "unreadable", f"not JSON Lines (looks like {looks}: {first!r}); ms-swift's JSON reader refuses it"
    if not compression and b"\r" in head.rstrip(b"\r") and b"\n" not in head and b"\n" not in _tail(path):
        return CR_LINES, None  # old Mac line ends (or a tool that writes them): rows, not one malformed line
    return compression or "jsonl", None


CR_LINES = "cr-lines"  # a layout: JSON Lines whose lines end with a lone \r


# Byte-order marks of the wide encodings a Windows tool may save JSON Lines in (PowerShell's `>` writes UTF-16 LE);
# the UTF-32 marks first, since UTF-32 LE's starts with UTF-16 LE's.
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32LE"), (codecs.BOM_UTF32_BE, "UTF-32BE"), (codecs.BOM_UTF16_LE, "UTF-16LE"),
              (codecs.BOM_UTF16_BE, "UTF-16BE"))


def _wide_encoding(head: bytes) -> str | None:
    """'UTF-16LE (with a byte-order mark)' and the like when `head` is JSON text in a wide encoding, else None."""
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            return f"{name} (with a byte-order mark)"
    if head[:2] in (b"{\x00", b"[\x00"):  # no mark: ASCII characters followed by a zero byte
        return "UTF-32LE" if head[1:4] == b"\x00\x00\x00" else "UTF-16LE"
    if head[:2] in (b"\x00{", b"\x00["):
        return "UTF-16BE"
    if head[:4] in (b"\x00\x00\x00{", b"\x00\x00\x00["):
        return "UTF-32BE"
    return None


def _tail(path: str) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(max(os.path.getsize(path) - (1 << 12), 0))
        return fh.read()


def _other_format(path: str, compression: str | None) -> bool:
    """True when the first lines (at least two) are all non-JSON that does not even start like JSON: a CSV,
    TSV or text file, not a JSONL file with broken rows (those get one error per line)."""
    sampled = 0
    for n, raw in enumerate(file_lines(path, compression or "jsonl")):
        if n >= 50 or sampled >= 20:
            break
        if type(raw) is int or not raw.strip():
            continue
        sampled += 1
        text = raw.lstrip(UTF8_BOM + b" \t")
        if text.startswith((b"{", b"[")):
            return False
        try:
            _DECODER.decode(text)
            return False
        except (msgspec.DecodeError, RecursionError):
            pass
    return sampled >= 2


def json_array(path: str) -> list | None:
    try:
        rows = _DECODER.decode(Path(path).read_bytes().removeprefix(UTF8_BOM))
    except (msgspec.DecodeError, RecursionError):
        return None  # then it is read line by line (a JSONL file of arrays gets E002 per line)
    return rows if isinstance(rows, list) else None


def numbered_lines(path: str, layout: str) -> Iterator[tuple[int, bytes | int]]:
    """(line number from 1, line) for every line of the file, the first without its UTF-8 BOM: the readers
    that decode rows a second time (E110, duplicates, reference types) see what the row checks saw."""
    for n, raw in enumerate(file_lines(path, layout), start=1):
        yield n, (raw[len(UTF8_BOM):] if n == 1 and type(raw) is bytes and raw.startswith(UTF8_BOM) else raw)


def file_lines(path: str, layout: str) -> Iterator[bytes | int]:
    """Every line of the file, whatever its layout (a JSON array's rows come back one per line)."""
    if layout == "json-array":
        for row in json_array(path) or []:
            yield _CANONICAL.encode(row)
        return
    if layout == "jsonl":
        yield from split_lines(range_blocks(path, 0, os.path.getsize(path)))
        return
    with open_data(path, layout) as fh:
        yield from split_lines(stream_blocks(fh))
