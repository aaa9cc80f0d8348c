"""`swift-ext data check`: validate ms-swift `messages` JSONL (text, images, videos, audio, tools).

Every row is checked and every problem is reported with a stable code, its line and field. Files are
streamed in byte-range chunks cut on line boundaries (in parallel over --jobs processes), so memory
does not grow with the file. Rows are decoded with msgspec; the checks are plain Python over the
decoded row. File-level checks (a column whose JSON type changes between rows - what breaks Arrow
inside ms-swift - and duplicate rows) are done by the parent with bounded memory.
"""

from __future__ import annotations

import base64
import binascii
import os
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import msgspec

# code -> (severity, name). Codes are stable: scripts and CI read them.
CODES: dict[str, tuple[str, str]] = {
    "E001": ("error", "invalid-json"),
    "E002": ("error", "not-an-object"),
    "E003": ("error", "invalid-utf8"),
    "E004": ("error", "line-too-large"),
    "E101": ("error", "messages-missing"),
    "E102": ("error", "bad-message"),
    "E103": ("error", "image-count-mismatch"),
    "E104": ("error", "video-count-mismatch"),
    "E105": ("error", "audio-count-mismatch"),
    "E106": ("error", "unknown-role"),
    "E107": ("error", "system-not-first"),
    "E108": ("error", "bad-turn-order"),
    "E109": ("error", "bad-content-type"),
    "E110": ("error", "mixed-column-type"),
    "W111": ("warning", "unknown-message-key"),
    "N112": ("note", "role-alias"),
    "W113": ("warning", "repeated-role"),
    "E201": ("error", "sft-no-final-answer"),
    "E202": ("error", "grpo-last-not-user"),
    "E203": ("error", "grpo-missing-solution"),
    "E204": ("error", "dpo-bad-rejected"),
    "E205": ("error", "kto-bad-label"),
    "E301": ("error", "media-missing"),
    "E302": ("error", "media-not-a-file"),
    "N303": ("note", "media-url"),
    "E304": ("error", "media-bad-entry"),
    "E305": ("error", "image-unreadable"),
    "E306": ("error", "video-unreadable"),
    "E307": ("error", "audio-unreadable"),
    "E308": ("error", "bad-base64"),
    "E309": ("error", "bad-objects"),
    "E401": ("error", "unbalanced-think"),
    "W402": ("warning", "duplicate-row"),
    "W501": ("warning", "too-long"),
}

ROLES = {"system", "user", "assistant", "tool_call", "tool_response", "tool"}
ALIASES = {"human": "user", "gpt": "assistant", "bot": "assistant", "function_call": "tool_call",
           "observation": "tool_response"}
MESSAGE_KEYS = {"role", "content", "loss", "loss_scale", "name", "tool_calls", "tool_call_id", "reasoning_content"}
MEDIA = (("images", "<image>", "E103", "E305"), ("videos", "<video>", "E104", "E306"), ("audios", "<audio>", "E105", "E307"))
MAX_LINE = 64 * 1024 * 1024
CHUNK = 8 * 1024 * 1024
EXACT_DUPLICATES = 50_000  # distinct rows tracked exactly (~4 MiB); beyond, a fixed 16 MiB Bloom filter
_DECODER = msgspec.json.Decoder()
TYPED_COLUMNS = ("messages", "images", "videos", "audios", "solution", "rejected_response", "label", "tools",
                 "objects")
TYPED_SET = frozenset(TYPED_COLUMNS)
FAST_KEYS = frozenset({"messages", "images", "videos", "audios"})
FAST_ROLES = frozenset({"system", "user", "assistant"})
FAST_MESSAGES = "messages.content:string"
LENGTH_SAMPLE = 100_000  # token lengths kept for percentiles (reservoir sample): bounded memory


@dataclass(frozen=True)
class Options:
    task: str = "sft"
    media_root: str | None = None
    deep: bool = False
    max_length: int | None = None
    tokenizer: str | None = None
    image_tokens: int | None = None  # IMAGE_MAX_TOKEN_NUM
    video_tokens: int | None = None  # VIDEO_MAX_TOKEN_NUM
    fps_max_frames: int | None = None  # FPS_MAX_FRAMES
    reward_columns: tuple[str, ...] = ("solution",)


@dataclass
class Issue:
    file: str
    line: int
    code: str
    field: str
    message: str

    @property
    def severity(self) -> str:
        return CODES[self.code][0]

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "code": self.code, "severity": self.severity,
                "field": self.field, "message": self.message}

    def render(self) -> str:
        return f"{self.file}:{self.line}: {self.code} {CODES[self.code][1]}: {self.message}" + (
            f" ({self.field})" if self.field else "")


@dataclass
class ChunkResult:
    index: int
    lines: int = 0
    rows: int = 0
    valid: int = 0
    issues: list[Issue] = field(default_factory=list)
    roles: Counter = field(default_factory=Counter)
    media: Counter = field(default_factory=Counter)
    lengths: list[int] = field(default_factory=list)
    digests: list[tuple[int, int]] = field(default_factory=list)  # (line, 64-bit digest of messages)
    types: list[tuple[int, str, str]] = field(default_factory=list)  # (line, column, JSON type) when it changes


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


# --------------------------------------------------------------------------------------------------
# Row checks


class RowChecker:
    def __init__(self, path: str, opts: Options, tokenizer=None):
        self.path = path
        self.base = opts.media_root or os.path.dirname(path) or "."
        self.opts = opts
        self.tokenizer = tokenizer
        self._exists: dict[str, int] = {}  # media path -> 0 ok, 1 missing, 2 not a file

    def fast(self, row: Any, out: ChunkResult) -> bool:
        """True when `row` is a common, clean shape: plain text turns, media paths that exist, nothing to
        report. Anything else (or anything doubtful) returns False and gets the full check below; a
        property test keeps the two in agreement."""
        if type(row) is not dict or not FAST_KEYS.issuperset(row) or self.opts.deep or self.tokenizer is not None:
            return False
        messages = row.get("messages")
        if type(messages) is not list or not messages:
            return False
        roles = out.roles
        previous = None
        texts = []
        for i, msg in enumerate(messages):
            if type(msg) is not dict or len(msg) != 2:
                return False
            role = msg.get("role")
            content = msg.get("content")
            if type(content) is not str or type(role) is not str or role not in FAST_ROLES or role == previous:
                return False
            if role == "system":
                if i:
                    return False
            elif previous in (None, "system") and role != "user":
                return False
            if role == "assistant" and "<think>" in content or "</think>" in content:
                return False
            texts.append(content)
            previous = role
        if previous != "assistant" or self.opts.task not in ("sft", "pt") or not texts[-1]:
            return False
        joined = "\x00".join(texts)
        exists = self._exists
        for key, tag, _, _ in MEDIA:
            entries = row.get(key)
            n = joined.count(tag) if tag in joined else 0
            if entries is None:
                if n:
                    return False
                continue
            if type(entries) is not list or len(entries) != n:
                return False
            for entry in entries:
                if type(entry) is not str or exists.get(entry) != 0:
                    return False  # unknown or bad path: the full check stats it and reports it
            out.media[key] += n
        for msg in messages:
            roles[msg["role"]] += 1
        out.rows += 1
        out.valid += 1
        return True

    def check(self, row: Any, line: int, out: ChunkResult) -> None:
        issues: list[Issue] = []

        def add(code: str, fld: str, message: str) -> None:
            issues.append(Issue(self.path, line, code, fld, message))

        if not isinstance(row, dict):
            add("E002", "", f"expected a JSON object per line, got {_json_type(row)}")
            out.rows += 1
            out.issues.extend(issues)
            return
        messages = row.get("messages")
        texts: list[str] = []
        if not isinstance(messages, list) or not messages:
            if "messages" not in row:
                add("E101", "messages", "no `messages` list")
            else:
                add("E101", "messages", f"`messages` must be a non-empty list, got {_json_type(messages)}")
        else:
            self._messages(messages, add, texts, out)
            self._task(row, messages, add)
        joined = "\x00".join(texts) if len(texts) != 1 else texts[0]
        for key, tag, count_code, _ in MEDIA:
            if key in row or tag in joined:
                self._media(row, key, tag, count_code, joined, add, out)
        if "objects" in row:
            self._objects(row["objects"], add)
        if self.opts.max_length and self.tokenizer is not None and texts:
            self._length(row, texts, add, out)
        out.rows += 1
        errors = [i for i in issues if i.code.startswith("E")]
        if not errors:
            out.valid += 1
        out.issues.extend(issues)

    def _messages(self, messages: list, add, texts: list[str], out: ChunkResult) -> None:
        previous = None
        first_speaker = True
        for i, msg in enumerate(messages):
            fld = f"messages[{i}]"
            if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
                add("E102", fld, "each message must be an object with `role` and `content`")
                first_speaker = False  # order is unknowable past a broken message
                continue
            role = msg["role"]
            if not isinstance(role, str):
                add("E106", f"{fld}.role", f"role must be a string, got {_json_type(role)}")
                continue
            if role in ALIASES:
                add("N112", f"{fld}.role", f"'{role}' is read by ms-swift as '{ALIASES[role]}'")
                role = ALIASES[role]
            elif role not in ROLES:
                close = [r for r in sorted(ROLES | set(ALIASES)) if r[:2] == role[:2]]
                add("E106", f"{fld}.role", f"unknown role '{role}'" + (f"; did you mean '{close[0]}'?" if close else ""))
                first_speaker = False
                continue
            out.roles[role] += 1
            extra = set(msg) - MESSAGE_KEYS
            if extra:
                add("W111", fld, f"ms-swift drops these message keys: {', '.join(sorted(extra))}")
            content = msg["content"]
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                for j, part in enumerate(content):
                    if not isinstance(part, dict) or "type" not in part:
                        add("E109", f"{fld}.content[{j}]", "content parts must be objects with a `type`")
                    elif part.get("type") == "text":
                        texts.append(str(part.get("text", "")))
            elif content is None and role == "assistant" and msg.get("tool_calls"):
                pass
            else:
                add("E109", f"{fld}.content", f"content must be a string or a list of parts, got {_json_type(content)}")
            if role == "system" and i != 0:
                add("E107", fld, "a system message may only come first")
            if role != "system" and first_speaker:
                first_speaker = False
                if role not in ("user", "tool_response", "tool"):
                    add("E108", fld, f"the conversation must start with a user turn, not '{role}'")
            if role == previous and role in ("user", "assistant"):
                add("W113", fld, f"two '{role}' turns in a row")
            if role == "assistant" and isinstance(content, str):
                opened, closed = content.count("<think>"), content.count("</think>")
                if opened != closed or (closed and content.find("</think>") < content.find("<think>")):
                    add("E401", f"{fld}.content", f"<think> x{opened} but </think> x{closed}")
            previous = role

    def _task(self, row: dict, messages: list, add) -> None:
        task = self.opts.task
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        last_role = last.get("role") if isinstance(last.get("role"), str) else None
        last_role = ALIASES.get(last_role, last_role)
        if task in ("sft", "pt", "dpo", "kto"):
            content = last.get("content")
            if last_role != "assistant" or not (isinstance(content, (str, list)) and content):
                add("E201", f"messages[{len(messages) - 1}]", "SFT rows must end with a non-empty assistant turn")
        if task == "grpo":
            if last_role != "user":
                add("E202", f"messages[{len(messages) - 1}]", "GRPO rows end with the user turn the model answers")
            for column in self.opts.reward_columns:
                value = row.get(column)
                if not isinstance(value, str) or not value.strip():
                    add("E203", column, f"the `{column}` column the reward needs must be a non-empty string, "
                        f"got {_json_type(value) if column in row else 'nothing'}")
        if task == "dpo":
            rejected = row.get("rejected_response")
            chosen = last.get("content") if last_role == "assistant" else None
            if not isinstance(rejected, str) or not rejected.strip():
                add("E204", "rejected_response", "DPO rows need a non-empty `rejected_response` string")
            elif rejected == chosen:
                add("E204", "rejected_response", "`rejected_response` is the same as the chosen answer")
        if task == "kto" and not isinstance(row.get("label"), bool):
            add("E205", "label", f"KTO rows need a boolean `label`, got {_json_type(row.get('label'))}")

    def _media(self, row: dict, key: str, tag: str, count_code: str, joined: str, add, out: ChunkResult) -> None:
        entries = row.get(key)
        placeholders = joined.count(tag)
        if entries is None:
            if placeholders:
                add(count_code, key, f"{placeholders} {tag} placeholder(s) but no `{key}`")
            return
        if isinstance(entries, (str, dict)):
            entries = [entries]
        if not isinstance(entries, list):
            add("E304", key, f"`{key}` must be a list, got {_json_type(entries)}")
            return
        if placeholders != len(entries):
            add(count_code, key, f"{placeholders} {tag} placeholder(s) but {len(entries)} {key}")
        for i, entry in enumerate(entries):
            out.media[key] += 1
            self._media_entry(entry, f"{key}[{i}]", key, add)

    def _media_entry(self, entry: Any, fld: str, kind: str, add) -> None:
        if isinstance(entry, dict):
            if isinstance(entry.get("bytes"), (str, bytes)):
                return
            entry = entry.get("path")
        if not isinstance(entry, str) or not entry:
            add("E304", fld, "a media entry must be a path, a URL, base64 data or {path|bytes}")
            return
        if entry.startswith(("http://", "https://")):
            add("N303", fld, "URL not fetched by the validator; ms-swift downloads it at load time")
            return
        if entry.startswith("data:") or (len(entry) > 256 and "/" not in entry[:64] and "." not in entry[-8:]):
            payload = entry.split(",", 1)[1] if entry.startswith("data:") else entry
            try:
                data = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                add("E308", fld, "not valid base64 data")
                return
            if self.opts.deep:
                self._decode_bytes(data, fld, kind, add)
            return
        state = self._exists.get(entry)
        if state is None or (state == 0 and self.opts.deep):
            path = entry if entry.startswith("/") else os.path.join(self.base, entry)
        if state is None:
            state = 0 if os.path.isfile(path) else (2 if os.path.exists(path) else 1)
            if len(self._exists) < 100_000:  # bounded: many distinct paths just cost a stat each
                self._exists[entry] = state
        if state == 1:
            add("E301", fld, f"file not found: {entry}" + ("" if os.path.isabs(entry) else f" (looked in {self.base})"))
        elif state == 2:
            add("E302", fld, f"not a file: {entry}")
        elif self.opts.deep:
            self._decode_path(path, fld, kind, add)

    def _decode_path(self, path: str, fld: str, kind: str, add) -> None:
        code = {"images": "E305", "videos": "E306", "audios": "E307"}[kind]
        try:
            if kind == "images":
                from PIL import Image

                with Image.open(path) as img:
                    img.load()
                    if img.width < 1 or img.height < 1:
                        raise ValueError("empty image")
            else:
                _av_frames(path, video=kind == "videos")
        except Exception as exc:  # any decoder failure is the finding
            add(code, fld, f"cannot decode: {str(exc)[:120]}")

    def _decode_bytes(self, data: bytes, fld: str, kind: str, add) -> None:
        import io

        code = {"images": "E305", "videos": "E306", "audios": "E307"}[kind]
        try:
            if kind == "images":
                from PIL import Image

                with Image.open(io.BytesIO(data)) as img:
                    img.load()
            else:
                _av_frames(io.BytesIO(data), video=kind == "videos")
        except Exception as exc:
            add(code, fld, f"cannot decode: {str(exc)[:120]}")

    def _objects(self, objects: Any, add) -> None:
        if not isinstance(objects, dict):
            add("E309", "objects", "`objects` must be an object with `ref` and `bbox` lists")
            return
        bbox = objects.get("bbox")
        ref = objects.get("ref")
        if not isinstance(bbox, list) or not all(
                isinstance(b, list) and len(b) in (2, 4) and all(isinstance(x, (int, float)) for x in b) for b in bbox):
            add("E309", "objects.bbox", "bbox must be a list of [x1, y1, x2, y2] (or [x, y]) number lists")
            return
        if ref is not None and (not isinstance(ref, list) or len(ref) != len(bbox)):
            add("E309", "objects.ref", f"{len(ref) if isinstance(ref, list) else 'no'} refs for {len(bbox)} boxes")

    def _length(self, row: dict, texts: list[str], add, out: ChunkResult) -> None:
        tokens = sum(len(e.ids) for e in self.tokenizer.encode_batch(texts, add_special_tokens=False))
        tokens += 8 * len(texts)  # chat-template tokens around each turn (qwen3_5: <|im_start|>role\n ... <|im_end|>\n)
        images = len(row.get("images") or []) if isinstance(row.get("images"), list) else 0
        videos = len(row.get("videos") or []) if isinstance(row.get("videos"), list) else 0
        tokens += images * (self.opts.image_tokens or 1024)
        tokens += videos * (self.opts.video_tokens or 128) * (self.opts.fps_max_frames or 16)
        out.lengths.append(tokens)
        if tokens > self.opts.max_length:
            add("W501", "messages", f"~{tokens} tokens > max_length {self.opts.max_length}: ms-swift truncates or "
                "drops this row (truncation_strategy)")


def _av_frames(source, video: bool) -> None:
    import av

    with av.open(source) as container:
        streams = container.streams.video if video else container.streams.audio
        if not streams:
            raise ValueError("no video stream" if video else "no audio stream")
        for _ in container.decode(streams[0]):
            return
        raise ValueError("no frames")


# --------------------------------------------------------------------------------------------------
# Files and chunks


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


def _lines(path: str, start: int, end: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = end - start
        carry = b""
        while remaining > 0:
            block = fh.read(min(1 << 20, remaining))
            if not block:
                break
            remaining -= len(block)
            parts = (carry + block).split(b"\n")
            carry = parts.pop()
            if len(carry) > MAX_LINE:
                yield carry  # oversized: reported, not accumulated further
                carry = b""
            yield from parts
        if carry:
            yield carry


def check_chunk(path: str, start: int, end: int, index: int, first_line: int, opts: Options,
                reference_types: dict[str, str]) -> ChunkResult:
    tokenizer = _load_tokenizer(opts.tokenizer) if opts.max_length and opts.tokenizer else None
    checker = RowChecker(path, opts, tokenizer)
    out = ChunkResult(index)
    seen_types: dict[str, str] = dict(reference_types)
    line = first_line - 1
    for raw in _lines(path, start, end):
        line += 1
        out.lines += 1
        if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        if len(raw) > MAX_LINE:
            out.rows += 1
            out.issues.append(Issue(path, line, "E004", "", f"line of {len(raw) / 2**20:.0f} MiB (limit "
                                    f"{MAX_LINE // 2**20} MiB)"))
            continue
        try:
            row = _DECODER.decode(raw)
        except msgspec.DecodeError as exc:
            out.rows += 1
            code, message = "E001", str(exc)
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as uexc:
                code, message = "E003", f"not UTF-8 (byte {uexc.start})"
            out.issues.append(Issue(path, line, code, "", message[:200]))
            continue
        except RecursionError:
            out.rows += 1
            out.issues.append(Issue(path, line, "E001", "", "JSON nested too deeply"))
            continue
        fast = checker.fast(row, out)
        if not fast:
            try:
                checker.check(row, line, out)
            except Exception as exc:  # a bug of ours must not hide the rest of the file
                out.rows += 1
                out.issues.append(Issue(path, line, "E102", "", f"row could not be checked ({type(exc).__name__}: {exc})"))
        if fast and seen_types.get("messages") == FAST_MESSAGES and all(
                seen_types.get(k) == "list" for k in row if k != "messages"):
            out.digests.append((line, _digest(raw, row["messages"])))  # a fast row's types cannot differ
        elif isinstance(row, dict):
            for column, kind in row_types(row).items():
                if column not in seen_types:
                    seen_types[column] = kind
                    out.types.append((line, column, kind))
                elif seen_types[column] != kind:
                    out.types.append((line, column, kind))
            messages = row.get("messages")
            if isinstance(messages, list):
                out.digests.append((line, _digest(raw, messages)))
    return out


def _content_kind(messages: list) -> str:
    """The JSON type of the first message's content: what Arrow fixes as the column type."""
    for msg in messages:
        if isinstance(msg, dict) and "content" in msg:
            return "messages.content:" + _json_type(msg["content"])
    return "messages.content:none"


def _digest(raw: bytes, messages: list) -> int:
    """64 bits from two C checksums of the messages' JSON: cheap, and the same in every worker process
    (Python's hash() of bytes is salted per process)."""
    encoded = msgspec.json.encode(messages)
    return (zlib.crc32(encoded) << 32) | zlib.adler32(encoded)


def _load_tokenizer(spec: str):
    from tokenizers import Tokenizer

    path = Path(spec)
    if path.is_dir():
        path = path / "tokenizer.json"
    return Tokenizer.from_file(str(path))


# --------------------------------------------------------------------------------------------------
# Whole files


@dataclass
class Report:
    files: list[str]
    rows: int = 0
    valid_rows: int = 0
    issues: list[Issue] = field(default_factory=list)
    roles: Counter = field(default_factory=Counter)
    media: Counter = field(default_factory=Counter)
    lengths: list[int] = field(default_factory=list)
    duplicates: int = 0
    notes: list[str] = field(default_factory=list)

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
            "roles": dict(self.roles),
            "media": dict(self.media),
            "duplicates": self.duplicates,
            "length_percentiles": percentiles(self.lengths),
            "notes": self.notes,
            "issues": [i.as_dict() for i in self.issues],
        }


def percentiles(values: list[int]) -> dict | None:
    if not values:
        return None
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": ordered[-1]}


class _Duplicates:
    """Exact up to EXACT_DUPLICATES distinct rows, then a fixed 16 MiB Bloom filter: bounded memory."""

    def __init__(self) -> None:
        self.exact: set[int] | None = set()
        self.bloom: bytearray | None = None
        self.count = 0
        self.approximate = False

    def add(self, digest: int) -> bool:
        if self.exact is not None:
            if digest in self.exact:
                self.count += 1
                return True
            self.exact.add(digest)
            if len(self.exact) > EXACT_DUPLICATES:
                self.bloom = bytearray(1 << 24)
                for d in self.exact:
                    self._set(d)
                self.exact = None
                self.approximate = True
            return False
        hit = self._test(digest)
        self._set(digest)
        self.count += hit
        return hit

    def _bits(self, d: int) -> tuple[int, int]:
        return d & ((1 << 27) - 1), (d >> 27) & ((1 << 27) - 1)

    def _set(self, d: int) -> None:
        for b in self._bits(d):
            self.bloom[b >> 3] |= 1 << (b & 7)

    def _test(self, d: int) -> bool:
        return all(self.bloom[b >> 3] & (1 << (b & 7)) for b in self._bits(d))


def check_file(path: str, opts: Options, jobs: int = 1, progress=None, chunk_bytes: int = CHUNK) -> Report:
    """Every issue of one file, with counts and summaries."""
    report = Report([path])
    entry = path.split("#", 1)[0] if not os.path.exists(path) else path
    if entry != path:
        report.notes.append(f"{path}: the '#N' sample suffix is ms-swift's; the whole file is checked")
    if os.path.isdir(entry):
        raise FileCheckError(f"{entry}: is a directory, expected a JSONL/JSON file")
    if not os.path.isfile(entry):
        raise FileCheckError(f"{entry}: file not found")
    if entry.lower().endswith(".json"):
        return _check_json_array(entry, opts, report)
    reference = _reference_types(entry)
    ranges = chunk_ranges(entry, chunk_bytes)
    results = _run_chunks(entry, ranges, opts, reference, jobs, progress)  # a generator: streamed
    dups = _Duplicates()
    import random

    sampler = random.Random(0)
    seen_lengths = 0
    file_types = dict(reference)
    for res in results:
        report.rows += res.rows
        report.valid_rows += res.valid
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
                report.issues.append(Issue(entry, line, "E110", column,
                                           f"JSON type {kind} here, {file_types[column]} in earlier rows: "
                                           "Arrow (ms-swift's loader) fails on a column whose type changes"))
        for line, digest in res.digests:
            if dups.add(digest):
                report.issues.append(Issue(entry, line, "W402", "messages", "same messages as an earlier row"))
    report.duplicates = dups.count
    if dups.approximate:
        report.notes.append(f"duplicates beyond the first {EXACT_DUPLICATES:,} distinct rows are counted with a "
                            "Bloom filter (rare false positives)")
    # A row whose only error is a type change was counted valid by its chunk.
    mixed_only = {i.line for i in report.issues if i.code == "E110"} - {
        i.line for i in report.issues if i.severity == "error" and i.code != "E110"}
    report.valid_rows -= len(mixed_only)
    report.issues.sort(key=lambda i: (i.line, i.code))
    return report


class FileCheckError(Exception):
    pass


def row_types(row: dict) -> dict[str, str]:
    """The JSON type of each column Arrow will type, `messages` by its content's type."""
    out = {}
    for column in TYPED_SET.intersection(row):
        if row[column] is not None:
            out[column] = _content_kind(row[column]) if column == "messages" else _json_type(row[column])
    return out


def _reference_types(path: str) -> dict[str, str]:
    """Column types of the first decodable rows: what Arrow infers and every later row must match."""
    types: dict[str, str] = {}
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh):
            if n > 1000:
                break
            raw = raw.strip()
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw:
                continue
            try:
                row = _DECODER.decode(raw)
            except (msgspec.DecodeError, RecursionError):
                continue
            if isinstance(row, dict):
                for column, kind in row_types(row).items():
                    types.setdefault(column, kind)
                if "messages" in types:
                    break
    return types


def _run_chunks(path: str, ranges, opts: Options, reference, jobs: int, progress) -> Iterator[ChunkResult]:
    """Chunk results in file order, as they complete: at most ~2 x jobs results are held at once."""
    # Line numbers of each chunk's first line: count newlines per range (bytes.count runs in C).
    firsts, line = [], 1
    with open(path, "rb") as fh:
        for start, end in ranges:
            firsts.append(line)
            fh.seek(start)
            remaining = end - start
            while remaining > 0:
                block = fh.read(min(1 << 22, remaining))
                if not block:
                    break
                remaining -= len(block)
                line += block.count(b"\n")
    args = [(path, s, e, i, firsts[i], opts, reference) for i, (s, e) in enumerate(ranges)]
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


def _check_json_array(path: str, opts: Options, report: Report) -> Report:
    """A `.json` file holding a list of rows (ms-swift reads those too); rows are numbered from 1."""
    data = Path(path).read_bytes()
    try:
        rows = _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        report.issues.append(Issue(path, 1, "E001", "", str(exc)[:200]))
        report.rows = 1
        return report
    if not isinstance(rows, list):
        rows = [rows]
    checker = RowChecker(path, opts, _load_tokenizer(opts.tokenizer) if opts.max_length and opts.tokenizer else None)
    out = ChunkResult(0)
    for n, row in enumerate(rows, start=1):
        checker.check(row, n, out)
    report.rows, report.valid_rows, report.issues = out.rows, out.valid, out.issues
    report.roles, report.media, report.lengths = out.roles, out.media, out.lengths
    report.notes.append(f"{path}: a JSON array; 'line' numbers are row positions")
    return report


DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt", ".tsv", ".arrow")
MATH_REWARDS = ("accuracy", "math_accuracy", "math_accuracy_async")  # rewards that read `solution`


def local_dataset_path(entry: str) -> str | None:
    """The file part of a `path[:subset][#count]` dataset entry when it names a local data file."""
    path = str(entry).split("#", 1)[0]
    if path.lower().endswith(DATA_SUFFIXES) or path.startswith(("/", "./", "../", "~")):
        return path
    if ":" in path and path.rsplit(":", 1)[0].lower().endswith(DATA_SUFFIXES):
        return path.rsplit(":", 1)[0]
    return None


@dataclass(frozen=True)
class RecipeData:
    """What a recipe says about its data: the validator's task, the local files, the hub ids."""

    task: str
    reward_columns: tuple[str, ...]
    files: list[tuple[str, str]]  # (args key, local path)
    hub: list[str]


def recipe_data(recipe) -> RecipeData:
    args = recipe.args
    task = str(args.get("rlhf_type") or "dpo") if recipe.command == "rlhf" else recipe.command
    funcs = args.get("reward_funcs") or []
    funcs = funcs if isinstance(funcs, list) else [funcs]
    columns = ("solution",) if any(str(f) in MATH_REWARDS for f in funcs) else ()
    files, hub = [], []
    for key in ("dataset", "val_dataset"):
        entries = args.get(key) or []
        for entry in entries if isinstance(entries, list) else [entries]:
            path = local_dataset_path(entry)
            if path:
                files.append((key, path))
            else:
                hub.append(str(entry))
    return RecipeData(task, columns, files, hub)


def write_clean(path: str, report: Report, out: str) -> int:
    """Copy the rows without errors to a new file (never the input, never an existing file)."""
    if os.path.exists(out):
        raise FileCheckError(f"{out}: already exists; not overwriting")
    if os.path.abspath(out) == os.path.abspath(path):
        raise FileCheckError(f"{out}: is the input file; --write-clean writes a new file")
    if path.lower().endswith(".json"):
        raise FileCheckError("--write-clean writes JSONL; convert the JSON array first")
    bad = {i.line for i in report.issues if i.severity == "error" and i.file == path}
    written = 0
    with open(path, "rb") as src, open(out, "xb") as dst:
        for n, raw in enumerate(src, start=1):
            if n in bad or not raw.strip():
                continue
            dst.write(raw if raw.endswith(b"\n") else raw + b"\n")
            written += 1
    return written


def merge_reports(reports: list[Report]) -> Report:
    total = Report([f for r in reports for f in r.files])
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

