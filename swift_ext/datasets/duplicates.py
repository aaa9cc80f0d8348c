"""Duplicate rows (W402) by their 16-byte digests, in bounded memory whatever the file's size."""

from __future__ import annotations

import array
from typing import Iterable, Iterator

import msgspec

from swift_ext.datasets.fastpath import row_digest
from swift_ext.datasets.reader import numbered_lines

SET_DUPLICATES = 400_000  # distinct rows checked for duplicates in a set (cheaper than importing numpy); beyond, numpy
EXACT_DUPLICATES = 4_000_000  # rows whose digests are kept for an exact check (~96 MiB); beyond, a Bloom filter
BLOOM_BITS = 1 << 28  # 32 MiB
_DECODER = msgspec.json.Decoder()


class Duplicates:
    """Duplicate rows by their 16-byte digests. Up to SET_DUPLICATES distinct rows, a set; then, without a
    Python step per row, the digests of up to EXACT_DUPLICATES rows are kept (24 bytes a row, numpy) and
    sorted once at the end; past that, a fixed-size Bloom filter whose hits are only candidates,
    confirmed by a second pass over the file (confirm)."""

    def __init__(self) -> None:
        self.exact: set[bytes] | None = set()
        self.set_limit = SET_DUPLICATES
        self.exact_limit = EXACT_DUPLICATES
        self.bloom_bits = BLOOM_BITS
        self.kept: list | None = []  # (lines, digests) arrays per chunk
        self.kept_rows = 0
        self.bloom = None
        self.count = 0
        self.candidates: list[tuple[int, bytes]] = []  # (line, digest) the Bloom filter may have seen before

    def add_chunk(self, line_blob: bytes, digest_blob: bytes, offset: int) -> list[int]:
        """Take a chunk's rows; returns the lines now known to repeat an earlier row (the rest: finish)."""
        if self.exact is not None:
            digests = [digest_blob[i:i + 16] for i in range(0, len(digest_blob), 16)]
            if len(self.exact) + len(digests) <= self.set_limit:
                return self._set_add(array.array("q", line_blob), digests, offset)
            self._to_arrays()
        np = self.np
        lines = np.frombuffer(line_blob, np.int64) + offset
        digests = np.frombuffer(digest_blob, self.digest_type)
        if self.kept is not None:
            self.kept.append((lines, digests))
            self.kept_rows += len(lines)
            if self.kept_rows <= self.exact_limit:
                return []
            repeats = self.finish()
            lines, digests = np.concatenate([k[0] for k in self.kept]), np.concatenate([k[1] for k in self.kept])
            self.kept, self.bloom = None, np.zeros(self.bloom_bits // 8, np.uint8)
            self._bloom_add(lines, digests, candidates=False)
            return repeats
        self._bloom_add(lines, digests, candidates=True)
        return []

    def _set_add(self, lines: array.array, digests: list[bytes], offset: int) -> list[int]:
        exact = self.exact
        if exact.isdisjoint(digests) and len(set(digests)) == len(digests):  # the usual chunk: no repeat
            exact.update(digests)
            return []
        repeats = []
        for line, digest in zip(lines, digests, strict=True):
            if digest in exact:
                repeats.append(line + offset)
            exact.add(digest)
        self.count += len(repeats)
        return repeats

    def _to_arrays(self) -> None:
        import numpy  # only for big files: its import costs ~0.1 s

        self.np = numpy
        self.digest_type = numpy.dtype([("hi", "<u8"), ("lo", "<u8")])  # a 16-byte digest as two integers
        # The set's rows come first in the file: line -1 sorts them before any row still to come.
        distinct = numpy.frombuffer(b"".join(self.exact), self.digest_type)
        self.kept = [(numpy.full(len(distinct), -1, numpy.int64), distinct)]
        self.kept_rows, self.exact = len(distinct), None

    def finish(self) -> list[int]:
        """The kept rows that repeat an earlier one. One sort of the digests' first halves (in C); rows that
        share one are then compared whole, in line order."""
        if self.exact is not None or not self.kept:
            return []
        np = self.np
        lines, digests = np.concatenate([k[0] for k in self.kept]), np.concatenate([k[1] for k in self.kept])
        order = np.argsort(digests["hi"])
        same = digests["hi"][order][1:] == digests["hi"][order][:-1]
        shared = np.zeros(len(order), bool)
        shared[1:] |= same
        shared[:-1] |= same
        seen: set[tuple[int, int]] = set()
        repeats = []
        picked = order[shared]
        for line, hi, lo in sorted(zip(lines[picked].tolist(), digests["hi"][picked].tolist(),
                                       digests["lo"][picked].tolist(), strict=True)):
            if (hi, lo) in seen:
                repeats.append(line)
            seen.add((hi, lo))
        self.count += len(repeats)
        return repeats

    def _bloom_add(self, lines, digests, candidates: bool) -> None:
        np = self.np
        mask = np.uint64(self.bloom_bits - 1)
        positions = [(part >> np.uint64(shift)) & mask for part in (digests["lo"], digests["hi"]) for shift in (0, 32)]
        if candidates:
            hit = np.ones(len(lines), bool)
            for pos in positions:
                hit &= (self.bloom[pos >> np.uint64(3)] >> (pos & np.uint64(7)).astype(np.uint8)) & 1 == 1
            _, first = np.unique(digests.view("V16"), return_index=True)
            hit[np.setdiff1d(np.arange(len(lines)), first)] = True  # a repeat inside the chunk
            self.candidates += [(int(lines[i]), digests[i].tobytes()) for i in np.flatnonzero(hit)]
        for pos in positions:
            np.bitwise_or.at(self.bloom, pos >> np.uint64(3), (np.uint8(1) << (pos & np.uint64(7)).astype(np.uint8)))

    def confirm(self, rows: Iterable[tuple[int, bytes]]) -> list[int]:
        """The candidate lines that repeat an earlier row, given every (line, digest) of the file again."""
        wanted = {d for _, d in self.candidates}
        first: dict[bytes, int] = {}
        for line, digest in rows:
            if digest in wanted and digest not in first:
                first[digest] = line
        lines = [line for line, d in self.candidates if first.get(d, line) < line]
        self.count += len(lines)
        return lines


def file_digests(path: str, layout: str, rejected: bool = False) -> Iterator[tuple[int, bytes]]:
    """(line, digest) of every row again: the exact check behind the Bloom filter (`rejected`: as row_digest)."""
    for line, raw in numbered_lines(path, layout):
        if type(raw) is int or not raw.strip():
            continue
        try:
            row = _DECODER.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            continue
        digest = row_digest(row, rejected)
        if digest is not None:
            yield line, digest
