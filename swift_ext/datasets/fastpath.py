"""The typed fast path's per-row work: rows of the common clean shape are decoded by msgspec into typed
structs (the type checks run in C), summarised (media tag counts, the digest for duplicates) by
_row_summary - or its C twin in _rowcheck.c - with no Python per row. Anything else is left to
RowChecker. Also the row digest both paths share."""

from __future__ import annotations

import struct
from typing import Any, Literal, Optional

import msgspec
import xxhash

from swift_ext.datasets.rejected import REJECTED_COLUMNS

FAST_MESSAGES = "messages.content:string"


# Rows whose shape is the common clean one are decoded by msgspec straight into these types, so the type
# checks run in C; a row the typed decode refuses (or that needs a closer look) takes RowChecker.check.
class _Message(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    content: str
    role: Literal["system", "user", "assistant"]


class _Row(msgspec.Struct, gc=False):
    messages: list[_Message]
    images: Optional[list[str]] = None
    videos: Optional[list[str]] = None
    audios: Optional[list[str]] = None
    # Columns the full check types or reads: a row carrying one is refused here and checked in Python.
    solution: msgspec.UnsetType = msgspec.UNSET
    rejected_response: msgspec.UnsetType = msgspec.UNSET
    label: msgspec.UnsetType = msgspec.UNSET
    tools: msgspec.UnsetType = msgspec.UNSET
    objects: msgspec.UnsetType = msgspec.UNSET


ROW_DECODER = msgspec.json.Decoder(_Row)
_CANONICAL = msgspec.json.Encoder(order="sorted")  # struct fields and dict keys sorted: one encoding per row
MEDIA_KEYS = ("images", "videos", "audios")
# The column types of a typed-path row, as row_types would give them.
FAST_KINDS = {"messages": [("messages", FAST_MESSAGES)], **{k: [(k, "list")] for k in MEDIA_KEYS}}


def _plain_preimage(roles, contents, media, errors: str = "surrogatepass") -> bytes:
    """An unambiguous encoding of a row whose messages are all {role, content} strings and whose media are
    None or string lists (nearly every row): each string with its UTF-8 length in front. swift_ext/datasets/_rowcheck.c
    builds the same bytes."""
    out = [b"P"]
    for role, content in zip(roles, contents, strict=True):
        for text in (role, content):
            data = text.encode("utf-8", errors)
            out += (struct.pack("<I", len(data)), data)
    for entries in media:
        if entries is None:
            out.append(b"N")
        else:
            out += (b"L", struct.pack("<I", len(entries)))
            for entry in entries:
                data = entry.encode("utf-8", errors)
                out += (struct.pack("<I", len(data)), data)
    return b"".join(out)


def _row_summary(messages, images, videos, audios, files_ok: set, hash128
                 ) -> tuple[int, int, int, int, int] | None:
    """For a typed row: its <image>/<video>/<audio> counts, 1 if it starts with a system turn, and its
    digest, when the full check has nothing to say about it (roles in a clean order, the last turn not
    empty, no <think> tag, each media list matches its tags and names known files); None otherwise.
    swift_ext/datasets/_rowcheck.c is the same function in C."""
    roles = [m.role for m in messages]
    contents = [m.content for m in messages]
    if not roles or not _clean_sequence(tuple(roles)) or not contents[-1]:
        return None
    counts = [0, 0, 0]
    for content in contents:
        i = content.find("<")
        while i >= 0:
            tag = content[i + 1:i + 7]
            if tag in _TAG_INDEX:
                counts[_TAG_INDEX[tag]] += 1
            elif tag == "think>" or tag == "/think":
                return None
            i = content.find("<", i + 1)
    media = (images, videos, audios)
    for entries, n in zip(media, counts, strict=True):
        if (n if entries is None else len(entries) != n or not files_ok.issuperset(entries)):
            return None
    try:
        preimage = _plain_preimage(roles, contents, media, errors="strict")
    except UnicodeEncodeError:  # a lone surrogate: the full check (and its digest) takes the row, as in C
        return None
    return counts[0], counts[1], counts[2], int(roles[0] == "system"), hash128(preimage)


def _check_buffer(decode, skip, files_ok: set, hash128, totals: list, digest_lines: list, digests: list,
                  stop: tuple[bool, bool, bool], buf, pos: int, end: int, line_no: int, max_line: int
                  ) -> tuple[int, int, int]:
    """The clean rows among the lines of buf[pos:end]: their line numbers and digests appended, `totals`
    (rows, images, videos, audios, system turns, messages) advanced. Stops at a line longer than max_line,
    one whose decode raises one of `skip`, one _row_summary says None to, or one with a media column
    flagged in `stop`; returns (its start, its end, its number), or (pos >= end, _, the next line number)
    at the end. swift_ext/datasets/_rowcheck.c's check_buffer is the same loop in C, without copying a line."""
    while pos < end:
        newline = buf.find(b"\n", pos, end)
        line_end = end if newline < 0 else newline
        if line_end - pos > max_line:
            return pos, line_end, line_no
        line = buf[pos:line_end]
        if not valid_utf8(line):
            return pos, line_end, line_no
        try:
            row = decode(line)
        except skip:
            return pos, line_end, line_no
        if any(flag and entries is not None for flag, entries in zip(stop, (row.images, row.videos, row.audios),
                                                                       strict=True)):
            return pos, line_end, line_no
        summary = _row_summary(row.messages, row.images, row.videos, row.audios, files_ok, hash128)
        if summary is None:
            return pos, line_end, line_no
        digest_lines.append(line_no)
        digests.append(summary[4])
        for k, n in enumerate((1, *summary[:4], len(row.messages))):
            totals[k] += n
        pos, line_no = line_end + 1, line_no + 1
    return pos, pos, line_no


def valid_utf8(line: bytes) -> bool:
    """msgspec's typed decode skips unknown keys and values without validating them: a line with invalid
    UTF-8 there would pass as clean, so the typed path checks the line (the full check reports E003)."""
    if line.isascii():
        return True
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_TAG_INDEX = {"image>": 0, "video>": 1, "audio>": 2}
SKIP = (msgspec.DecodeError, TypeError, RecursionError)  # not the typed shape; TypeError: an over-long line
try:  # built by `make` (setup.py build_ext --inplace); without it the Python twins above run
    from swift_ext.datasets._rowcheck import check_buffer
    from swift_ext.datasets._rowcheck import summary as row_summary
except ImportError:
    check_buffer, row_summary = _check_buffer, _row_summary


def row_digest(row: Any, rejected: bool = False) -> bytes | None:
    """128 bits of the row's messages and media, so rows that differ only in their images are not
    duplicates; with `rejected` (DPO) its rejected side's columns too, so several rejected answers to one
    prompt and chosen answer are several pairs, not repeats. xxh3 is the same in every worker process
    (Python's hash() is salted per process)."""
    if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
        return None
    messages = row["messages"]
    media = [row.get(key) for key in MEDIA_KEYS]
    if all(type(m) is dict and len(m) == 2 and type(m.get("role")) is str and type(m.get("content")) is str
           for m in messages) and all(v is None or type(v) is list and all(type(e) is str for e in v) for v in media):
        digest = xxhash.xxh3_128_digest(_plain_preimage([m["role"] for m in messages],
                                                        [m["content"] for m in messages], media))
    else:
        digest = xxhash.xxh3_128_digest(b"C" + _CANONICAL.encode([messages, *media]))
    if rejected:

        side = {k: row[k] for k in REJECTED_COLUMNS if row.get(k) is not None}
        if side:
            digest = xxhash.xxh3_128_digest(b"R" + digest + _CANONICAL.encode(side))
    return digest


def _clean_sequence(roles: tuple) -> bool:
    """Roles the full check has nothing to say about: an optional system turn, then user/assistant
    alternating, ending on the assistant."""
    body = roles[1:] if roles[0] == "system" else roles
    if not body or len(body) % 2:
        return False
    return all(r == ("user" if i % 2 == 0 else "assistant") for i, r in enumerate(body))
