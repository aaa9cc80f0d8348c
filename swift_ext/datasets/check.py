"""`swift-ext data check`: validate ms-swift `messages` JSONL (text, images, videos, audio, tools).

Every row is checked and every problem is reported with a stable code, its line and field. Files are
streamed in byte-range chunks cut on line boundaries (in parallel over --jobs processes), so memory
does not grow with the file. Rows are decoded with msgspec; the checks are plain Python over the
decoded row. File-level checks (a column whose JSON type changes between rows - what breaks Arrow
inside ms-swift - and duplicate rows) are done by the parent with bounded memory.
"""

from __future__ import annotations

import array
import ast
import base64
import binascii
import json
import mmap
import os
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Optional

import msgspec
import xxhash

from swift_ext.msswift.conventions import parse_dataset_entry, without_sample_suffix

# code -> (severity, name). Codes are stable: scripts and CI read them.
CODES: dict[str, tuple[str, str]] = {
    "E001": ("error", "invalid-json"),
    "E002": ("error", "not-an-object"),
    "E003": ("error", "invalid-utf8"),
    "E004": ("error", "line-too-large"),
    "E005": ("error", "not-json-lines"),
    "E006": ("error", "empty-dataset"),
    "E101": ("error", "messages-missing"),
    "E102": ("error", "bad-message"),
    "E103": ("error", "image-count-mismatch"),
    "E104": ("error", "video-count-mismatch"),
    "E105": ("error", "audio-count-mismatch"),
    "E106": ("error", "unknown-role"),
    "E107": ("error", "system-not-first"),
    # E108 bad-turn-order is retired (never reported, the number is not reused): ms-swift accepts any order of
    # its known roles. Its template merges repeated roles, folds tool_call turns into the assistant's and
    # puts an empty user turn before a leading assistant turn (Template._swift_prepare_inputs,
    # _preprocess_tool_call, _get_std_messages).
    "E109": ("error", "bad-content-type"),
    "E110": ("error", "mixed-column-type"),
    "W111": ("warning", "unknown-message-key"),
    "N112": ("note", "role-alias"),
    "W113": ("warning", "repeated-role"),
    "E114": ("error", "bad-column-mapping"),
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
MAX_LINE = 2**31 - 1  # Arrow's 32-bit string offsets: one value cannot be larger, so neither can a row
CHUNK = 8 * 1024 * 1024
BLOCK = 1 << 20
SET_DUPLICATES = 400_000  # distinct rows checked for duplicates in a set (cheaper than importing numpy); beyond, numpy
EXACT_DUPLICATES = 4_000_000  # rows whose digests are kept for an exact check (~96 MiB); beyond, a Bloom filter
BLOOM_BITS = 1 << 28  # 32 MiB
_DECODER = msgspec.json.Decoder()
TYPED_COLUMNS = ("messages", "images", "videos", "audios", "solution", "rejected_response", "label", "tools",
                 "objects")
FAST_MESSAGES = "messages.content:string"
BASE64_AFTER = 2000  # ms-swift's MAX_PATH_HEURISTIC: a longer media string is base64, never a path
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
        where = f"{self.file}:{self.line}" if self.line else self.file  # line 0: the whole file
        return f"{where}: {self.code} {CODES[self.code][1]}: {self.message}" + (
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
    digest_lines: list[int] = field(default_factory=list)
    digests: list[bytes] = field(default_factory=list)  # 16-byte xxh3 digest of each row's messages and media
    line_blob: bytes = b""  # both packed by pack(): cheap to send between processes and to read with numpy
    digest_blob: bytes = b""

    def pack(self) -> "ChunkResult":
        self.line_blob, self.digest_blob = array.array("q", self.digest_lines).tobytes(), b"".join(self.digests)
        self.digest_lines, self.digests = [], []
        return self
    types: list[tuple[int, str, str]] = field(default_factory=list)  # (line, column, JSON type) when it changes
    # Columns the reference rows did not type: this chunk's first type and the later lines with that type,
    # which are type changes if an earlier chunk saw the column first with another type.
    first_kinds: dict[str, str] = field(default_factory=dict)
    first_kind_lines: dict[str, list[int]] = field(default_factory=dict)


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
    def __init__(self, path: str, opts: Options, tokenizer=None, reference: dict[str, str] | None = None):
        self.path = path
        self.reference = reference or {}  # the file's first rows' column types: its layout, for ms-swift
        self.base = os.path.dirname(path) or "."  # not where ms-swift looks: named in hints only
        # ms-swift looks for a relative path in the working directory, then under ROOT_IMAGE_DIR
        # (swift/template/vision_utils.py _check_path); --media-root stands for ROOT_IMAGE_DIR.
        self.root = opts.media_root or os.environ.get("ROOT_IMAGE_DIR")
        self.opts = opts
        self.tokenizer = tokenizer
        # media entry -> 0 file, 1 missing, 2 not a file, 3 base64, 4 only under the dataset's folder
        self._exists: dict[str, int] = {}
        self.found: dict[str, str] = {}  # media entry -> the file it names
        self.files_ok: set[str] = set()  # entries that name an existing file: the typed path accepts these

    def check(self, row: Any, line: int, out: ChunkResult) -> Any:
        """Check one row; returns it as ms-swift will see it (other column layouts mapped into `messages`)."""
        issues: list[Issue] = []

        def add(code: str, fld: str, message: str) -> None:
            issues.append(Issue(self.path, line, code, fld, message))

        if not isinstance(row, dict):
            add("E002", "", f"expected a JSON object per line, got {_json_type(row)}")
            out.rows += 1
            out.issues.extend(issues)
            return row
        where = None
        if "messages" not in row:
            try:
                mapped = auto_messages(row, "messages" in self.reference)
            except Unmapped as exc:
                add(*exc.args)
            else:
                if mapped is not None:
                    row, where = {**row, "messages": mapped[0]}, mapped[1]
        messages = row.get("messages")
        texts: list[str] = []
        if not isinstance(messages, list) or not messages:
            if issues:
                pass  # the mapping said why
            elif "messages" not in row:
                add("E101", "messages", "no `messages` list, and none of the columns ms-swift maps into one "
                    "(conversations; instruction/input/output; query/response and their aliases)")
            elif where is not None:
                add("E101", "messages", "the mapped columns give no message: ms-swift drops this row")
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
        if where is not None:  # name the column the user wrote, not the message ms-swift makes of it
            for issue in issues:
                match = re.match(r"messages\[(\d+)\](.*)", issue.field)
                if match and int(match.group(1)) < len(where):
                    rest = match.group(2)
                    issue.field = where[int(match.group(1))] + ("" if rest in (".role", ".content") else rest)
        out.issues.extend(issues)
        return row

    def _messages(self, messages: list, add, texts: list[str], out: ChunkResult) -> None:
        previous = None
        for i, msg in enumerate(messages):
            fld = f"messages[{i}]"
            if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
                add("E102", fld, "each message must be an object with `role` and `content`")
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
            # ms-swift drops a final assistant turn before the rollout (swift.utils.remove_response, called by
            # GRPOTrainer._apply_chat_template_to_messages_list and RolloutMixin._preprocess_inputs), so a
            # row that carries its reference answer as the last turn is fine; what is left must end with the user.
            prompt = messages[:-1] if last_role == "assistant" else messages
            before = prompt[-1] if prompt and isinstance(prompt[-1], dict) else {}
            role = before.get("role") if isinstance(before.get("role"), str) else None
            if ALIASES.get(role, role) != "user":
                add("E202", f"messages[{max(len(prompt) - 1, 0)}]", "GRPO rows end with the user turn the model answers "
                    "(a final assistant turn is dropped before the rollout; the turn before it must be the user's)")
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
        """Classify one entry the way ms-swift's `load_file` will (swift/template/vision_utils.py): a string
        starting with 'http' is fetched; one over 2000 characters is base64; an existing path (as given,
        under ROOT_IMAGE_DIR or --media-root, with `~` expanded) is read - not one relative to the dataset's
        folder; a `data:` URI or a string that decodes as base64 is image bytes."""
        if isinstance(entry, dict):
            if isinstance(entry.get("bytes"), (str, bytes)):
                return
            entry = entry.get("path")
        if not isinstance(entry, str) or not entry.strip():
            add("E304", fld, "a media entry must be a path, a URL, base64 data or {path|bytes}")
            return
        entry = entry.strip()
        if entry.startswith("http"):
            add("N303", fld, "URL not fetched by the validator; ms-swift downloads it at load time")
            return
        if len(entry) > BASE64_AFTER:
            self._base64(entry, fld, kind, add)
            return
        state = self._exists.get(entry)
        if state is None:
            state, found = 1, None
            for candidate in self._candidates(entry):
                if os.path.isfile(candidate):
                    state, found = 0, candidate
                    break
                if os.path.exists(candidate):
                    state = 2
            if state == 1 and (entry.startswith("data:") or _looks_base64(entry)):
                state = 3
            elif state == 1 and os.path.isfile(self._in_dataset_folder(entry)):
                state = 4
            if len(self._exists) < 100_000:  # bounded: many distinct paths just cost a stat each
                self._exists[entry] = state
                if state == 0:
                    self.found[entry] = found
                    self.files_ok.add(entry)
        if state == 3:
            self._base64(entry, fld, kind, add)
        elif state == 1:
            add("E301", fld, f"file not found: {entry}" + ("" if os.path.isabs(os.path.expanduser(entry)) else
                                                           f" (looked in {self._where()})"))
        elif state == 4:
            there = self._in_dataset_folder(entry)
            add("E301", fld, f"file not found: {entry} (looked in {self._where()}); it is in the dataset's folder, "
                f"where ms-swift does not look: write it as {os.path.relpath(there)}, or run with "
                f"ROOT_IMAGE_DIR={os.path.abspath(self.base)} (data check: --media-root)")
        elif state == 2:
            add("E302", fld, f"not a file: {entry}")
        elif self.opts.deep:
            found = self.found.get(entry) or next(c for c in self._candidates(entry) if os.path.isfile(c))
            self._decode_path(found, fld, kind, add)

    def _candidates(self, entry: str) -> list[str]:
        """Where ms-swift looks, in its order: as given (the working directory), under ROOT_IMAGE_DIR,
        with `~` expanded."""
        return [entry, os.path.expanduser(os.path.join(self.root, entry) if self.root else entry)]

    def _in_dataset_folder(self, entry: str) -> str:
        return os.path.join(self.base, os.path.expanduser(entry))

    def _where(self) -> str:
        return f"the working directory {os.getcwd()}" + (f" and {self.root}" if self.root else "")

    def _base64(self, entry: str, fld: str, kind: str, add) -> None:
        if entry.startswith("data:"):
            match = re.match(r"data:(.+?);base64,(.+)", entry, re.S)
            if match is None:
                add("E308", fld, "a data: URI must look like data:<type>;base64,<data>")
                return
            entry = match.group(2)
        try:
            data = base64.b64decode(entry)  # not validate=True: ms-swift skips stray characters too
        except (binascii.Error, ValueError) as exc:
            add("E308", fld, f"not valid base64 data ({exc})")
            return
        if not data:
            add("E308", fld, "base64 data that decodes to nothing")
            return
        if self.opts.deep:
            self._decode_bytes(data, fld, kind, add)

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


# ms-swift's AutoPreprocessor (swift/dataset/preprocessor/core.py): a dataset without `messages` is mapped
# into it from other column layouts. Column aliases are matched case-insensitively; when two columns map
# to the same target, ms-swift renames neither.
MESSAGE_COLUMNS = ("conversation", "conversations")
RESPONSE_ALIASES = {
    "system": ("system", "system_prompt"),
    "query": ("query", "prompt", "input", "instruction", "question", "problem"),
    "response": ("response", "answer", "output", "targets", "target", "answer_key", "answers", "solution", "text",
                 "completion", "content"),
}
SHAREGPT_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "bot": "assistant",
                  "function_call": "tool_call", "function_response": "tool_response",
                  "observation": "tool_response", "observations": "tool_response"}


class Unmapped(Exception):
    pass


def _mapped_column(row: dict, target: str) -> str | None:
    """The one column ms-swift renames to `target`; two or more candidates means it renames none (E114)."""
    col, clash = _renamed(row, RESPONSE_ALIASES[target])
    if col is None and clash:
        raise Unmapped("E114", clash[0], f"columns {', '.join(clash)} all map to `{target}`: ms-swift renames none "
                       "of them")
    return col


def _renamed(row: dict, aliases: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """The column ms-swift reads for a target whose aliases are given (the target's own name first), and
    the columns that collided."""
    present = [k for k in row if k.lower() in aliases]
    if len(present) == 1:
        return present[0], []
    return (aliases[0] if aliases[0] in row else None), present


def auto_messages(row: dict, file_has_messages: bool) -> tuple[list, list[str]] | None:
    """For a row without `messages`: (messages, the column each message comes from) as ms-swift builds
    them, or None when the row has no layout ms-swift maps. Raises Unmapped (code, field, message) where
    ms-swift fails on the row or drops it."""
    if file_has_messages:  # ms-swift reads the whole file as `messages` rows: this one is dropped
        raise Unmapped("E101", "messages", "no `messages` list (earlier rows of this file have one, so ms-swift reads "
                "every row's `messages` and drops this one)")
    column, clash = _renamed(row, ("messages", *MESSAGE_COLUMNS))
    if column is None and clash:
        raise Unmapped("E114", clash[0], f"columns {', '.join(clash)} all map to `messages`: ms-swift renames none of them")
    if column is not None:
        return _conversation(row, column)
    if "instruction" in row and "input" in row:  # alpaca: the two are joined into the query
        instruction, input_ = row.get("instruction"), row.get("input")
        query = f"{instruction}\n{input_}" if instruction and input_ else instruction or input_
        if not isinstance(query, str):
            raise Unmapped("E114", "instruction", f"`instruction`/`input` must give a string, got {_json_type(query)}")
        where = "instruction" if instruction and not input_ else "input" if not instruction else "instruction+input"
        fields = {"query": (query, where)}
        out_col, _ = _renamed(row, RESPONSE_ALIASES["response"])
        out_col = out_col or ("output" if "output" in row else None)
    else:
        fields = {}
        col = _mapped_column(row, "query")
        if col is not None:
            fields["query"] = (row[col], col)
        out_col = _mapped_column(row, "response")
    if out_col is not None:
        fields["response"] = (row[out_col], out_col)
    sys_col = _mapped_column(row, "system")
    if not fields and "history" not in row:
        return None
    response = fields.get("response", (None, None))[0]
    if isinstance(response, list):  # ms-swift takes the first of several answers
        response = response[0] if response else None
    history = row.get("history") or []
    if isinstance(history, str):
        try:
            history = ast.literal_eval(history)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise Unmapped("E114", "history", "`history` is a string that is not a Python/JSON list of [query, response]") from None
    if not isinstance(history, list):
        raise Unmapped("E114", "history", f"`history` must be a list of [query, response] pairs, got {_json_type(history)}")
    messages, where = [], []
    system = row.get(sys_col) if sys_col else None
    if system is not None:
        messages.append({"role": "system", "content": system})
        where.append(sys_col)
    turns = [*history, [fields.get("query", (None,))[0], response]]
    for i, pair in enumerate(turns):
        if not isinstance(pair, list) or len(pair) < 2:
            raise Unmapped("E114", f"history[{i}]", "each `history` entry must be a [query, response] pair")
        last = i == len(turns) - 1
        for role, text, k in (("user", pair[0], 0), ("assistant", pair[1], 1)):
            if text is not None:
                messages.append({"role": role, "content": text})
                where.append(fields.get("query" if k == 0 else "response", (None, "?"))[1] if last
                             else f"history[{i}][{k}]")
    return messages, where


def _conversation(row: dict, column: str):
    """ms-swift's MessagesPreprocessor on a `conversation(s)` column: sharegpt `from`/`value` keys and role
    names mapped, the `system` column put first."""
    value = row[column]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                raise Unmapped("E114", column, f"`{column}` is a string that is not a JSON list of messages") from None
    if not isinstance(value, list) or not value:
        raise Unmapped("E101", column, f"`{column}` must be a non-empty list of messages, got {_json_type(value) if value else 'an empty one'}: "
                "ms-swift drops this row")
    if not all(isinstance(m, dict) for m in value):
        raise Unmapped("E102", column, f"each message in `{column}` must be an object")
    sys_col, _ = _renamed(row, RESPONSE_ALIASES["system"])
    system = row.get(sys_col) if sys_col else None
    messages = [{("role" if k == "from" else "content" if k == "value" else k): v for k, v in m.items()}
                for m in value]
    where = [f"{column}[{i}]" for i in range(len(messages))]
    if "role" not in messages[0] and "content" not in messages[0]:  # {"human": ..., "gpt": ...} pairs
        out, out_where = [], []
        if system is not None:
            out.append({"role": "system", "content": system})
            out_where.append(sys_col)
        for i, m in enumerate(messages):
            user = next((m[k] for k in ("user", "human") if k in m), None)
            assistant = next((m[k] for k in ("assistant", "gpt", "bot") if k in m), None)
            out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
            out_where += [f"{column}[{i}]"] * 2
        return out, out_where
    if messages[0].get("role") != "system" and system is not None:
        messages.insert(0, {"role": "system", "content": system})
        where.insert(0, sys_col)
    for m in messages:
        role = m.get("role")
        if isinstance(role, str):
            m["role"] = SHAREGPT_ROLES.get(role.replace("-", "_"), SHAREGPT_ROLES.get(role, role)) \
                if role not in ("user", "assistant") else role
    return messages, where


def _looks_base64(entry: str) -> bool:
    """Short raw base64 (a tiny image) that is not a path ms-swift would find: strict alphabet and padding,
    and long enough that a missing relative path rarely passes for it."""
    if len(entry) < 64 or len(entry) % 4:
        return False
    try:
        base64.b64decode(entry, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


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


def _range_blocks(path: str, start: int, end: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = end - start
        while remaining > 0:
            block = fh.read(min(BLOCK, remaining))
            if not block:
                return
            remaining -= len(block)
            yield block


def _stream_blocks(fh) -> Iterator[bytes]:
    while True:
        block = fh.read(BLOCK)
        if not block:
            return
        yield block


def line_lists(blocks: Iterable[bytes], max_line: int | None = None) -> Iterator[list[bytes | int]]:
    """Every line (without its newline), one item per line whatever its length, so line numbers stay exact;
    in lists, one per block read (a loop over a list costs less than a generator per line). A line longer
    than `max_line` is not held: it comes back as its length (an int)."""
    max_line = MAX_LINE if max_line is None else max_line
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


_ROW_DECODER = msgspec.json.Decoder(_Row)
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
        try:
            row = decode(buf[pos:line_end])
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


_TAG_INDEX = {"image>": 0, "video>": 1, "audio>": 2}
_SKIP = (msgspec.DecodeError, TypeError, RecursionError)  # not the typed shape; TypeError: an over-long line
try:  # built by `make` (setup.py build_ext --inplace); without it the Python twins above run
    from swift_ext.datasets._rowcheck import check_buffer, summary as row_summary
except ImportError:
    check_buffer, row_summary = _check_buffer, _row_summary


def _row_digest(row: Any) -> bytes | None:
    """128 bits of the row's messages and media, so rows that differ only in their images are not
    duplicates. xxh3 is the same in every worker process (Python's hash() is salted per process)."""
    if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
        return None
    messages = row["messages"]
    media = [row.get(key) for key in MEDIA_KEYS]
    if all(type(m) is dict and len(m) == 2 and type(m.get("role")) is str and type(m.get("content")) is str
           for m in messages) and all(v is None or type(v) is list and all(type(e) is str for e in v) for v in media):
        return xxhash.xxh3_128_digest(_plain_preimage([m["role"] for m in messages],
                                                      [m["content"] for m in messages], media))
    return xxhash.xxh3_128_digest(b"C" + _CANONICAL.encode([messages, *media]))


def _clean_sequence(roles: tuple) -> bool:
    """Roles the full check has nothing to say about: an optional system turn, then user/assistant
    alternating, ending on the assistant."""
    body = roles[1:] if roles[0] == "system" else roles
    if not body or len(body) % 2:
        return False
    return all(r == ("user" if i % 2 == 0 else "assistant") for i, r in enumerate(body))


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
    return check_lines(path, line_lists(_range_blocks(path, start, end)), index, opts, reference_types, typed)


def _typed_path(opts: Options) -> bool:
    return opts.task in ("sft", "pt") and not opts.deep and not (opts.max_length and opts.tokenizer)


def check_lines(path: str, line_lists: Iterable[list[bytes | int]], index: int, opts: Options,
                reference_types: dict[str, str], typed: bool = True) -> ChunkResult:
    """Check lines given in lists (numbered from 1). `typed=False` checks every row with
    RowChecker.check: the reference the typed path must agree with."""
    if typed and _typed_path(opts):
        return _check_typed(path, _joined(line_lists), index, opts, reference_types)
    tokenizer = _load_tokenizer(opts.tokenizer) if opts.max_length and opts.tokenizer else None
    checker = RowChecker(path, opts, tokenizer, reference_types)
    out = ChunkResult(index)
    seen_types: dict[str, str] = dict(reference_types)
    line = 0
    for lines in line_lists:
        for raw in lines:
            line += 1
            _check_line(raw, line, index == 0, checker, out, seen_types, reference_types)
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
    seen_types: dict[str, str] = dict(reference_types)
    first_chunk = index == 0
    decode_any = _ROW_DECODER.decode
    hash128 = xxhash.xxh3_128_digest
    run, summary_of = check_buffer, row_summary  # read here, so a test can swap in the Python twins
    files_ok = checker.files_ok
    record = _record_types
    quiet = {k: reference_types.get(k) == v for k, v in (("messages", FAST_MESSAGES), ("images", "list"),
                                                          ("videos", "list"), ("audios", "list"))}
    q_msg, q_img, q_vid, q_aud = quiet.values()  # True: the column's type needs no note for this row
    digest_lines, digests = out.digest_lines, out.digests
    totals = [0] * 6  # clean rows, images, videos, audios, system turns, messages
    line = 0  # lines before the piece
    for buf, pos, end, count in buffers:
        line_no = line + 1
        if type(buf) is int:  # over-long
            _check_line(buf, line_no, first_chunk, checker, out, seen_types, reference_types)
            line += count
            continue
        while pos < end:
            if q_msg:  # C runs over clean rows; it stops before a media column whose type still needs a note
                pos, line_end, line_no = run(decode_any, _SKIP, files_ok, hash128, totals, digest_lines, digests,
                                             (not q_img, not q_vid, not q_aud), buf, pos, end, line_no, MAX_LINE)
                if pos >= end:
                    break
            else:
                newline = buf.find(b"\n", pos, end)
                line_end = end if newline < 0 else newline
            # The line the run stopped at (or every line while `messages` has no settled type): in Python.
            raw = buf[pos:line_end] if line_end - pos <= MAX_LINE else line_end - pos
            line, pos, line_no = line_no, line_end + 1, line_no + 1
            try:
                row = decode_any(raw)
            except _SKIP:
                _check_line(raw, line, first_chunk, checker, out, seen_types, reference_types)
                continue
            summary = summary_of(row.messages, row.images, row.videos, row.audios, files_ok, hash128)
            if summary is None:
                _check_line(raw, line, first_chunk, checker, out, seen_types, reference_types)
                continue
            if not q_msg:
                q_msg = record(line, FAST_KINDS["messages"], seen_types, reference_types, out)
            if not q_img and row.images is not None:
                q_img = record(line, FAST_KINDS["images"], seen_types, reference_types, out)
            if not q_vid and row.videos is not None:
                q_vid = record(line, FAST_KINDS["videos"], seen_types, reference_types, out)
            if not q_aud and row.audios is not None:
                q_aud = record(line, FAST_KINDS["audios"], seen_types, reference_types, out)
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


def _record_types(line: int, kinds, seen_types: dict[str, str], reference: dict[str, str], out: ChunkResult) -> bool:
    """Note the row's column types where the parent needs them for E110; True when there was nothing to
    note (every column typed by the reference rows, with the same type)."""
    quiet = True
    for column, kind in kinds:
        first = seen_types.get(column)
        if first is None:
            seen_types[column] = kind
            out.types.append((line, column, kind))
            if column not in reference:
                out.first_kinds[column] = kind
            quiet = False
        elif first != kind:
            out.types.append((line, column, kind))
            quiet = False
        elif column not in reference:
            out.first_kind_lines.setdefault(column, []).append(line)
            quiet = False
    return quiet


def _check_line(raw: bytes | int, line: int, first_chunk: bool, checker: RowChecker, out: ChunkResult,
                seen_types: dict[str, str], reference: dict[str, str]) -> None:
    path = checker.path
    if type(raw) is int or len(raw) > MAX_LINE:
        size = raw if type(raw) is int else len(raw)
        out.rows += 1
        out.issues.append(Issue(path, line, "E004", "", f"line of {size / 2**20:.0f} MiB: Arrow (ms-swift's "
                                f"loader) holds at most {(MAX_LINE + 1) / 2**30:g} GiB in one value"))
        return
    if line == 1 and first_chunk and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    raw = raw.rstrip(b"\r")
    if not raw.strip():
        return
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
        return
    except RecursionError:
        out.rows += 1
        out.issues.append(Issue(path, line, "E001", "", "JSON nested too deeply"))
        return
    checked = row
    try:
        checked = checker.check(row, line, out)
    except Exception as exc:  # a bug of ours must not hide the rest of the file
        out.rows += 1
        out.issues.append(Issue(path, line, "E102", "", f"row could not be checked ({type(exc).__name__}: {exc})"))
    if isinstance(row, dict):
        _record_types(line, row_types(row).items(), seen_types, reference, out)
        digest = _row_digest(checked)  # mapped layouts compare as the messages ms-swift makes of them
        if digest is not None:
            out.digest_lines.append(line)
            out.digests.append(digest)


def _content_kind(messages: list) -> str | None:
    """The JSON type of the first message's content: what Arrow fixes as the column type."""
    for msg in messages:
        if isinstance(msg, dict) and "content" in msg:
            return "messages.content:" + _json_type(msg["content"])
    return None  # no content to type (an empty list): Arrow takes it with any content type


def _load_tokenizer(spec: str):
    from tokenizers import Tokenizer

    path = Path(spec)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise FileCheckError(f"{spec}: no tokenizer.json here (--tokenizer takes a tokenizer.json or a model dir)")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers library raises a bare Exception for any unreadable file
        raise FileCheckError(f"{path}: not a Hugging Face tokenizer.json ({str(exc).splitlines()[0]})") from None


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


def percentiles(values: list[int]) -> dict | None:
    if not values:
        return None
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": ordered[-1]}


class _Duplicates:
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


def check_file(path: str, opts: Options, jobs: int = 1, progress=None, chunk_bytes: int = CHUNK,
               typed: bool = True) -> Report:
    """Every issue of one file, with counts and summaries. `typed=False` runs the reference (every row
    through RowChecker.check); the results are the same."""
    report = Report([path])
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
    layout, problem = sniff(entry)
    report.layout = layout
    if problem:
        if layout == "not-checked":
            report.notes.append(f"{entry}: {problem}")
        else:
            report.issues.append(Issue(entry, 0, "E005", "", problem))
        return report
    reference = _reference_types(entry, layout)
    if layout == "jsonl":
        ranges = chunk_ranges(entry, chunk_bytes)
        results = _run_chunks(entry, ranges, opts, reference, jobs, progress, typed)  # a generator: streamed
    else:
        lines = ([line] for line in _file_lines(entry, layout))
        results = iter([check_lines(entry, lines, 0, opts, reference, typed)])
        if layout == "json-array":
            report.notes.append(f"{entry}: a JSON array; 'line' numbers are row positions")
        else:
            report.notes.append(f"{entry}: {layout}-compressed JSON Lines (ms-swift reads it too); checked on one core")
    dups = _Duplicates()
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
        report.issues.extend(_duplicate(entry, line) for line in dups.add_chunk(res.line_blob, res.digest_blob, offset))
        offset += res.lines
    report.issues.extend(_duplicate(entry, line) for line in dups.finish())
    if dups.candidates:
        for line in dups.confirm(_file_digests(entry, layout)):
            report.issues.append(_duplicate(entry, line))
    report.duplicates = dups.count
    if report.rows == 0:
        report.issues.append(Issue(entry, 0, "E006", "", "no rows: ms-swift refuses an empty dataset"))
    # A row whose only error is a type change was counted valid by its chunk.
    mixed_only = {i.line for i in report.issues if i.code == "E110"} - {
        i.line for i in report.issues if i.severity == "error" and i.code != "E110"}
    report.valid_rows -= len(mixed_only)
    report.issues.sort(key=lambda i: (i.line, i.code, i.field if i.code == "E110" else ""))
    return report


def _type_change(path: str, line: int, column: str, kind: str, first: str) -> Issue:
    return Issue(path, line, "E110", column, f"JSON type {kind} here, {first} in earlier rows: "
                 "Arrow (ms-swift's loader) fails on a column whose type changes")


def _duplicate(path: str, line: int) -> Issue:
    return Issue(path, line, "W402", "messages", "same messages and media as an earlier row")


class FileCheckError(Exception):
    pass


COMPRESSION = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}
OTHER_MAGIC = {b"PAR1": "a Parquet file", b"PK\x03\x04": "a zip archive", b"\x28\xb5\x2f\xfd": "zstd-compressed",
               b"ARROW1": "an Arrow file", b"SQLite format 3": "an SQLite database"}
READERS = {"jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet", "arrow": "arrow", "txt": "text"}


def sniff(path: str) -> tuple[str, str | None]:
    """How the rows are stored (jsonl, json-array, gzip/bz2/xz, not-checked) and, when they cannot be
    read the way ms-swift will read them, why. ms-swift 4.6 picks the `datasets` reader from the last
    extension (swift/dataset/loader.py); the json reader also takes a JSON array and compressed content."""
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
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
        import bz2
        import gzip
        import lzma

        opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[compression]
        try:
            with opener(path, "rb") as fh:
                head = fh.read(1 << 12)
        except (OSError, EOFError, lzma.LZMAError) as exc:
            return "unreadable", f"{compression}-compressed but cannot be decompressed ({exc})"
    elif b"\x00" in head:
        return "unreadable", "binary data, not JSON Lines"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"[") and not compression and _json_array(path) is not None:
        return "json-array", None
    if not stripped.startswith((b"{", b"[")) and _other_format(path, compression):
        first = stripped.split(b"\n", 1)[0][:60].decode("utf-8", "replace")
        looks = "CSV/TSV" if ("," in first or "\t" in first) else "text"
        return "unreadable", f"not JSON Lines (looks like {looks}: {first!r}); ms-swift's JSON reader refuses it"
    return compression or "jsonl", None


def _other_format(path: str, compression: str | None) -> bool:
    """True when the first lines (at least two) are all non-JSON that does not even start like JSON: a CSV,
    TSV or text file, not a JSONL file with broken rows (those get one error per line)."""
    sampled = 0
    for n, raw in enumerate(_file_lines(path, compression or "jsonl")):
        if n >= 50 or sampled >= 20:
            break
        if type(raw) is int or not raw.strip():
            continue
        sampled += 1
        text = raw.lstrip(b"\xef\xbb\xbf \t")
        if text.startswith((b"{", b"[")):
            return False
        try:
            _DECODER.decode(text)
            return False
        except (msgspec.DecodeError, RecursionError):
            pass
    return sampled >= 2


def _json_array(path: str) -> list | None:
    try:
        rows = _DECODER.decode(Path(path).read_bytes().lstrip(b"\xef\xbb\xbf"))
    except (msgspec.DecodeError, RecursionError):
        return None  # then it is read line by line (a JSONL file of arrays gets E002 per line)
    return rows if isinstance(rows, list) else None


def _file_lines(path: str, layout: str) -> Iterator[bytes | int]:
    """Every line of the file, whatever its layout (a JSON array's rows come back one per line)."""
    if layout == "json-array":
        for row in _json_array(path) or []:
            yield _CANONICAL.encode(row)
        return
    if layout == "jsonl":
        yield from split_lines(_range_blocks(path, 0, os.path.getsize(path)))
        return
    import bz2
    import gzip
    import lzma

    with {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[layout](path, "rb") as fh:
        yield from split_lines(_stream_blocks(fh))


def _file_digests(path: str, layout: str) -> Iterator[tuple[int, bytes]]:
    """(line, digest) of every row again: the exact check behind the Bloom filter."""
    for line, raw in enumerate(_file_lines(path, layout), start=1):
        if type(raw) is int or not raw.strip():
            continue
        try:
            row = _DECODER.decode(raw.lstrip(b"\xef\xbb\xbf") if line == 1 else raw)
        except (msgspec.DecodeError, RecursionError):
            continue
        digest = _row_digest(row)
        if digest is not None:
            yield line, digest


def row_types(row: dict) -> dict[str, str]:
    """The JSON type of each column Arrow will type, `messages` by its content's type."""
    out = {}
    for column in TYPED_COLUMNS:
        value = row.get(column)
        if value is not None:
            kind = _content_kind(value) if column == "messages" and isinstance(value, list) else _json_type(value)
            if kind is not None:
                out[column] = kind
    return out


def _reference_types(path: str, layout: str) -> dict[str, str]:
    """Column types of the first decodable rows: what Arrow infers and every later row must match."""
    types: dict[str, str] = {}
    for n, raw in enumerate(_file_lines(path, layout)):
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


DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt", ".tsv", ".arrow")
MATH_REWARDS = ("accuracy", "math_accuracy", "math_accuracy_async")  # rewards that read `solution`


def local_dataset_path(entry: str) -> str | None:
    """The file part of a `path[:subset][#count]` dataset entry when it names a local data file."""
    path = without_sample_suffix(entry)
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
    if report.layout == "json-array":
        raise FileCheckError("--write-clean writes JSONL; convert the JSON array first")
    whole_file = [i for i in report.issues if i.line == 0 and i.severity == "error"]
    if report.layout in ("unreadable", "not-checked") or whole_file:
        raise FileCheckError(f"{path}: no rows to write ({whole_file[0].message if whole_file else report.layout})")
    bad = {i.line for i in report.issues if i.severity == "error" and i.file == path}
    written = 0
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise FileCheckError(f"{out}: its directory does not exist (--write-clean creates a file, not directories)")
    with open(out, "xb") as dst:  # compressed input comes out as plain JSONL
        for n, raw in enumerate(_file_lines(path, report.layout), start=1):
            if n in bad or type(raw) is int or not raw.strip():
                continue
            dst.write(raw + b"\n")
            written += 1
    return written


def merge_reports(reports: list[Report]) -> Report:
    total = Report([f for r in reports for f in r.files])
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

