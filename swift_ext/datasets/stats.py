"""`swift-ext data stats`: token lengths of a dataset as ms-swift's template will make them.

Rows are rendered to the text ms-swift's `qwen3_5` (ChatML) template produces for training - the same
turn markers, `|trim`, non-thinking prefixes, history-thinking rules and end-of-turn suffix - and the
texts are tokenized in batches with the model's own `tokenizers` (Rust) tokenizer. Images and videos
add the tokens qwen_vl_utils' resizing gives them under the recipe's IMAGE_*/VIDEO_*/FPS_* settings,
computed from the file headers (nothing is decoded). Rows the renderer does not cover (tools, tool
turns, grounding objects, multimodal content lists, other templates) go through ms-swift's real
`Template.encode` when ms-swift is installed. A test compares both paths with ms-swift on the bundled
data.

Results are the per-row lengths, cached under the swift-ext cache by file content, tokenizer and
template settings; `summarize` turns them into percentiles, truncation, packing and step counts.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

import msgspec

CACHE_FORMAT = 1  # bump when the counting changes, so stale caches are not reused
BATCH_ROWS = 2048  # rows tokenized per encode_batch call
THINK, NO_THINK = "<think>\n", "<think>\n\n</think>\n\n"
FAST_TEMPLATES = {"qwen3_5"}  # templates the fast renderer reproduces (tested against ms-swift)
FAST_ROLES = {"system", "user", "assistant"}
PATCH, MERGE = 16, 2  # Qwen3-VL / Qwen3.5 vision: 16-pixel patches, 2x2 merged into one token
TEMPORAL_PATCH = 2
VISION = "<|vision_start|><|vision_end|>"
BLANK = object()  # a blank JSONL line: not a row
UTF8_BOM = b"\xef\xbb\xbf"  # Windows editors start files with it; `data check` and ms-swift's loader accept it

# qwen_vl_utils' defaults (vision_process.py), overridable by the environment the way ms-swift does.
MEDIA_DEFAULTS = {
    "IMAGE_MIN_TOKEN_NUM": 4, "IMAGE_MAX_TOKEN_NUM": 16384, "VIDEO_MIN_TOKEN_NUM": 128,
    "VIDEO_MAX_TOKEN_NUM": 768, "FPS": 2.0, "FRAME_FACTOR": 2, "FPS_MIN_FRAMES": 4, "FPS_MAX_FRAMES": 768,
    "SPATIAL_MERGE_SIZE": 2, "MAX_RATIO": 200, "MODEL_SEQ_LEN": 128000,
}


class StatsError(Exception):
    """A problem with the input the user can fix (shown without a traceback by the CLI)."""


@dataclass(frozen=True)
class TemplateSettings:
    """Everything that decides a row's token count (and so the cache key besides the file)."""

    template: str
    tokenizer: str  # tokenizer.json
    model_dir: str | None = None  # for ms-swift's own template on rows the renderer does not cover
    system: str | None = None  # args.system: used when a row has no system turn
    loss_scale: str = "default"
    enable_thinking: bool = False
    add_non_thinking_prefix: bool = True
    max_pixels: int | None = None  # args.max_pixels (template-level rescale before qwen_vl_utils)
    media: tuple[tuple[str, float], ...] = ()  # resolved MEDIA_DEFAULTS
    media_root: str | None = None

    @property
    def last_round(self) -> bool:
        return self.loss_scale.split("+")[0] == "last_round"

    def media_value(self, key: str) -> float:
        return dict(self.media).get(key, MEDIA_DEFAULTS[key])


def media_settings(env: dict[str, str]) -> tuple[tuple[str, float], ...]:
    """The qwen_vl_utils values a run will use: recipe env, then the process env, then the defaults.
    MAX_PIXELS/MIN_PIXELS/VIDEO_*_PIXELS are converted to token numbers as ms-swift's
    compat_qwen_vl_utils does for 16-pixel patches."""
    merged = {**os.environ, **env}
    factor = PATCH * int(merged.get("SPATIAL_MERGE_SIZE", 2))
    for pixels, tokens in (("MAX_PIXELS", "IMAGE_MAX_TOKEN_NUM"), ("MIN_PIXELS", "IMAGE_MIN_TOKEN_NUM"),
                           ("VIDEO_MAX_PIXELS", "VIDEO_MAX_TOKEN_NUM"), ("VIDEO_MIN_PIXELS", "VIDEO_MIN_TOKEN_NUM")):
        if merged.get(pixels) and not merged.get(tokens):
            merged[tokens] = str(int(merged[pixels]) // factor**2)
    out = []
    for key, default in MEDIA_DEFAULTS.items():
        raw = merged.get(key)
        try:
            value = type(default)(float(raw)) if raw not in (None, "") else default
        except ValueError:
            raise StatsError(f"environment {key}={raw!r}: expected a number") from None
        out.append((key, value))
    return tuple(out)


@dataclass
class Lengths:
    """Per-row token counts of one or more files (lists, in file order)."""

    files: list[str]
    prompt: list[int] = field(default_factory=list)
    completion: list[int] = field(default_factory=list)
    media: list[int] = field(default_factory=list)  # image/video pad tokens (kept whole by left/right truncation)
    images: int = 0
    videos: int = 0
    skipped: int = 0  # rows that could not be measured (invalid JSON, no messages, unreadable media)
    slow_rows: int = 0  # rows measured by ms-swift's own template
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
        self.images += other.images
        self.videos += other.videos
        self.skipped += other.skipped
        self.slow_rows += other.slow_rows
        self.partial = self.partial or other.partial
        self.notes += other.notes


# --------------------------------------------------------------------------------------------------
# Rendering rows as ms-swift's qwen3_5 template does (swift/template/base.py `_swift_encode`,
# templates/qwen.py `Qwen3_5Template._swift_prepare_inputs`).


@dataclass
class Rendered:
    prompt: str
    completion: str
    images: list[str]
    videos: list[str]
    image_tags_in_completion: int = 0
    video_tags_in_completion: int = 0


def render(row: Any, s: TemplateSettings) -> Rendered | None:
    """The prompt and completion text of one row, with `<image>`/`<video>` left as tags; None when the
    row needs ms-swift's own template (tools, tool turns, objects, non-string content)."""
    if type(row) is not dict:
        return None
    messages = row.get("messages")
    if type(messages) is not list or not messages or row.get("tools") or row.get("objects"):
        return None
    msgs = []
    for m in messages:
        if type(m) is not dict or m.get("role") not in FAST_ROLES or type(m.get("content")) is not str:
            return None
        if set(m) - {"role", "content"}:
            return None  # loss / loss_scale / reasoning_content change the encoding: ms-swift decides
        msgs.append([m["role"], m["content"]])
    system = None
    if msgs[0][0] == "system":
        system = msgs.pop(0)[1]
    elif s.system is not None:
        system = s.system
    if any(role == "system" for role, _ in msgs):
        return None
    # Qwen3_5Template._swift_prepare_inputs: |trim, canonical think block.
    for m in msgs:
        text = m[1].strip()
        if m[0] == "assistant" and "</think>" in text and "<think>" in text:
            before, _, after = text.partition("</think>")
            reasoning = before.rstrip("\n").rsplit("<think>", 1)[-1].lstrip("\n").strip()
            text = f"<think>\n{reasoning}\n</think>\n\n{after.lstrip(chr(10))}"
        m[1] = text
    # consecutive user or assistant turns are merged
    merged: list[list[str]] = []
    for m in msgs:
        if merged and merged[-1][0] == m[0]:
            merged[-1][1] += m[1]
        else:
            merged.append(m)
    if merged and merged[0][0] == "assistant":
        merged.insert(0, ["user", ""])
    if len(merged) % 2 == 1:
        merged.append(["assistant", None])
    if any(merged[i][0] != ("user" if i % 2 == 0 else "assistant") for i in range(len(merged))):
        return None
    last_user = len(merged) - 2
    history_cut = s.last_round  # `last_round` (and inference) only prefix/strip the last round
    if s.add_non_thinking_prefix:
        for i in range(1, len(merged), 2):
            if merged[i][1] is None or (history_cut and i < last_user):
                continue
            if not merged[i][1].startswith(("<think>", NO_THINK)):
                merged[i][1] = NO_THINK + merged[i][1]
    if history_cut:  # preserve_thinking is off: earlier rounds keep only their answer
        for i in range(1, last_user, 2):
            merged[i][1] = merged[i][1].split("</think>")[-1].strip()
    parts: list[str] = []
    if system:
        parts.append(f"<|im_start|>system\n{system.strip()}<|im_end|>\n")
    completion = ""
    rounds = len(merged) // 2
    for r in range(rounds):
        query, response = merged[2 * r][1], merged[2 * r + 1][1]
        parts.append(f"<|im_start|>user\n{query}<|im_end|>\n<|im_start|>assistant\n")
        if response is None:
            parts.append(THINK if s.enable_thinking else NO_THINK)
        elif r < rounds - 1:
            parts.append(response + "<|im_end|>\n")
        else:
            completion = response + ("" if response.endswith("<|endoftext|>") else "<|im_end|>\n")
    prompt = "".join(parts)
    images = _media_list(row.get("images"))
    videos = _media_list(row.get("videos"))
    if images is None or videos is None:
        return None
    return Rendered(prompt, completion, images, videos,
                    completion.count("<image>"), completion.count("<video>"))


def _media_list(value: Any) -> list[str] | None:
    if value is None:
        return []
    value = [value] if isinstance(value, str) else value
    if type(value) is not list or not all(type(v) is str for v in value):
        return None
    return value


# --------------------------------------------------------------------------------------------------
# Image and video tokens (qwen_vl_utils.vision_process + transformers' Qwen3VLProcessor)


def _round_by(n: float, f: int) -> int:
    return round(n / f) * f


def smart_resize(height: int, width: int, factor: int, min_pixels: float, max_pixels: float,
                 max_ratio: float) -> tuple[int, int]:
    """qwen_vl_utils.smart_resize."""
    if max(height, width) / min(height, width) > max_ratio:
        raise StatsError(f"aspect ratio over {max_ratio:g}: qwen_vl_utils rejects this image")
    h_bar = max(factor, _round_by(height, factor))
    w_bar = max(factor, _round_by(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


class MediaCounter:
    """Tokens per image / video file (cached per path), from headers only."""

    def __init__(self, s: TemplateSettings, count_text: Callable[[str], int]):
        self.s = s
        self.count_text = count_text
        self.factor = PATCH * int(s.media_value("SPATIAL_MERGE_SIZE"))
        self._cache: dict[str, tuple[int, int]] = {}

    def image(self, path: str) -> tuple[int, int]:
        """(tokens inside <|vision_start|>...<|vision_end|>, of which pad tokens) for one image."""
        if path in self._cache:
            return self._cache[path]
        from PIL import Image

        with Image.open(path) as im:
            width, height = im.size
        if self.s.max_pixels and width * height > self.s.max_pixels:  # template.rescale_image
            ratio = width / height
            height_scaled = math.sqrt(self.s.max_pixels / ratio)
            width, height = int(height_scaled * ratio), int(height_scaled)
        f, v = self.factor, self.s.media_value
        h, w = smart_resize(height, width, f, v("IMAGE_MIN_TOKEN_NUM") * f * f, v("IMAGE_MAX_TOKEN_NUM") * f * f,
                            v("MAX_RATIO"))
        pads = (h // PATCH) * (w // PATCH) // (MERGE * MERGE)
        self._cache[path] = (pads, pads)
        return self._cache[path]

    def video(self, path: str) -> tuple[int, int]:
        if path in self._cache:
            return self._cache[path]
        total_frames, fps, height, width = _video_header(path)
        v = self.s.media_value
        ff = int(v("FRAME_FACTOR"))
        # qwen_vl_utils.smart_nframes
        min_frames = math.ceil(v("FPS_MIN_FRAMES") / ff) * ff
        max_frames = math.floor(min(v("FPS_MAX_FRAMES"), total_frames) / ff) * ff
        nframes = total_frames / fps * v("FPS")
        nframes = min(min(max(nframes, min_frames), max_frames), total_frames)
        nframes = math.floor(nframes / ff) * ff
        if not ff <= nframes <= total_frames:
            raise StatsError(f"{path}: {total_frames} frames is too short for qwen_vl_utils")
        indices = _linspace_round(0, total_frames - 1, nframes)
        f = self.factor
        min_pixels = v("VIDEO_MIN_TOKEN_NUM") * f * f
        total_pixels = v("MODEL_SEQ_LEN") * f * f * 0.9
        max_pixels = max(min(v("VIDEO_MAX_TOKEN_NUM") * f * f, total_pixels / nframes * ff), int(min_pixels * 1.05))
        h, w = smart_resize(height, width, f, min_pixels, max_pixels, v("MAX_RATIO"))
        per_frame = (h // PATCH) * (w // PATCH) // (MERGE * MERGE)
        # Qwen3VLProcessor: "<t seconds><|vision_start|>pads<|vision_end|>" per temporal patch
        if len(indices) % TEMPORAL_PATCH:
            indices += [indices[-1]] * (TEMPORAL_PATCH - len(indices) % TEMPORAL_PATCH)
        times = [(indices[i] / fps + indices[i + TEMPORAL_PATCH - 1] / fps) / 2
                 for i in range(0, len(indices), TEMPORAL_PATCH)]
        tokens = sum(self.count_text(f"<{t:.1f} seconds>") + 2 + per_frame for t in times)
        self._cache[path] = (tokens, per_frame * len(times))
        return self._cache[path]


def _linspace_round(start: float, end: float, n: int) -> list[int]:
    # torch.linspace(start, end, n).round(): float32 steps, round half to even
    import numpy as np

    return [int(x) for x in np.rint(np.linspace(start, end, n, dtype=np.float32))]


def _video_header(path: str) -> tuple[int, float, int, int]:
    """(frames, fps, height, width) as qwen_vl_utils' reader sees them (decord when installed)."""
    try:
        import decord

        vr = decord.VideoReader(path)
        height, width = vr[0].shape[:2]
        return len(vr), float(vr.get_avg_fps()), height, width
    except ImportError:
        pass
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = stream.frames or sum(1 for _ in container.decode(stream))
        return frames, float(stream.average_rate), stream.codec_context.height, stream.codec_context.width


# --------------------------------------------------------------------------------------------------
# Measuring a file


def _rows(path: str) -> Iterator[tuple[int, Any, int]]:
    """(line, decoded row or None, bytes read) for a JSONL file or a JSON array."""
    decode = msgspec.json.Decoder().decode
    if path.lower().endswith(".json"):
        raw = Path(path).read_bytes()
        try:
            rows = decode(raw.removeprefix(UTF8_BOM))
        except msgspec.DecodeError as exc:
            raise StatsError(f"{path}: not valid JSON ({exc}); run `swift-ext data check {path}`") from None
        if not isinstance(rows, list):
            raise StatsError(f"{path}: a .json dataset must be an array of rows")
        for n, row in enumerate(rows, start=1):
            yield n, row, len(raw) if n == len(rows) else 0
        return
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                yield n, BLANK, len(raw)
                continue
            try:
                yield n, decode(raw.removeprefix(UTF8_BOM) if n == 1 else raw), len(raw)
            except msgspec.DecodeError:
                yield n, None, len(raw)


def tokenizer_file(path: str) -> str:
    p = Path(path)
    if p.is_dir():
        p = p / "tokenizer.json"
    if not p.is_file():
        raise StatsError(f"{path}: no tokenizer.json here")
    return str(p)


def load_tokenizer(path: str):
    return _load_tokenizer_file(tokenizer_file(path))


@lru_cache(maxsize=4)
def _load_tokenizer_file(path: str):
    # ~3 s for a 248k-vocabulary tokenizer.json: once per process (plan, then stats, then memory)
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(path)
    except Exception as exc:  # the tokenizers library raises a bare Exception for any unreadable file
        raise StatsError(f"{path}: not a Hugging Face tokenizer.json ({str(exc).splitlines()[0]})") from None


def measure_file(path: str, s: TemplateSettings, progress: Callable[[int], None] | None = None,
                 use_cache: bool = True, allow_msswift: bool = True, write_cache: bool = True) -> Lengths:
    """Token lengths of every row of one file (cached by content, tokenizer and template settings).
    allow_msswift=False (the planner) leaves rows that need ms-swift's own template uncounted; such a
    partial result is not cached."""
    if not os.path.isfile(path):
        raise StatsError(f"{path}: no such file")
    cached = _cache_path(cache_key(path, s)) if use_cache else None
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
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(asdict(result)))
        tmp.replace(cached)
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
            out.prompt.append(len(encoded[2 * i].ids) + pm)
            out.completion.append(len(encoded[2 * i + 1].ids) + cm)
            out.media.append(pads)
        texts.clear()
        extra.clear()

    for n, row, nbytes in _rows(path):
        pending_bytes += nbytes
        if row is BLANK:
            continue
        if row is None:
            out.skipped += 1
            continue
        rendered = render(row, s) if fast else None
        if rendered is None:
            if isinstance(row, dict) and isinstance(row.get("messages"), list) and row["messages"]:
                slow.append((n, row))
            else:
                out.skipped += 1
            continue
        try:
            media_tokens = _media_tokens(rendered, base, media)
        except (OSError, StatsError, ValueError) as exc:
            out.skipped += 1
            if len(out.notes) < 5:
                out.notes.append(f"{path}:{n}: not measured: {exc}")
            continue
        texts += [_mark_tags(rendered.prompt), _mark_tags(rendered.completion)]
        extra.append(media_tokens)
        if len(extra) >= BATCH_ROWS:
            flush()
    flush()
    if slow:
        _measure_with_msswift(path, slow, s, base, out, allow_msswift)
    return out


def _mark_tags(text: str) -> str:
    # ms-swift tokenizes the text on each side of a media tag separately; the two special tokens that
    # enclose every image and video make the Rust tokenizer split at the same places.
    return text.replace("<image>", VISION).replace("<video>", VISION)


def _media_tokens(r: Rendered, base: str, media: MediaCounter) -> tuple[int, int, int]:
    """(tokens in the prompt, tokens in the completion, pad tokens) added by the row's images/videos."""
    prompt = completion = pads = 0
    for kind, paths, tags_in_completion, text in (("image", r.images, r.image_tags_in_completion, "<image>"),
                                                  ("video", r.videos, r.video_tags_in_completion, "<video>")):
        tags = (r.prompt + r.completion).count(text)
        if tags != len(paths):
            raise StatsError(f"{tags} {text} tag(s) but {len(paths)} {kind}s (see `swift-ext data check`)")
        first_completion = len(paths) - tags_in_completion
        for i, p in enumerate(paths):
            full = p if os.path.isabs(p) or "://" in p or os.path.exists(p) else os.path.join(base, p)  # cwd first, as ms-swift
            tokens, pad = media.image(full) if kind == "image" else media.video(full)
            if i >= first_completion:
                completion += tokens
            else:
                prompt += tokens
            pads += pad
    return prompt, completion, pads


def _measure_with_msswift(path: str, rows: list[tuple[int, dict]], s: TemplateSettings, base: str,
                          out: Lengths, allow_msswift: bool) -> None:
    """Rows the renderer does not cover: ms-swift's own Template.encode (slow: a Python pass per row)."""
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
        out.prompt.append(len(ids) - completion)
        out.completion.append(completion)
        out.media.append(sum(1 for t in ids if t in pads))
        out.slow_rows += 1


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
    import logging
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from swift import get_processor, get_template
    except ImportError:
        return None

    for name in ("swift", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
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


def cache_dir() -> Path:
    base = os.environ.get("SWIFT_EXT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "swift-ext")
    return Path(base) / "stats"


def _cache_path(key: str) -> Path:
    return cache_dir() / f"{key}.json"


def cache_key(path: str, s: TemplateSettings) -> str:
    h = hashlib.sha256()
    h.update(f"format {CACHE_FORMAT}\n".encode())
    h.update(_file_digest(path).encode())
    h.update(_file_digest(tokenizer_file(s.tokenizer)).encode())
    settings = {k: v for k, v in asdict(s).items() if k not in ("tokenizer", "model_dir")}
    settings["media_base"] = s.media_root or os.path.abspath(os.path.dirname(path))
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def _file_digest(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# What a recipe does with those lengths


@dataclass(frozen=True)
class Budget:
    """The recipe settings that turn lengths into truncation, packing and steps (ms-swift defaults)."""

    task: str = "sft"  # sft | pt | grpo | dpo | kto ...
    max_length: int | None = None
    max_completion_length: int | None = None  # GRPO: generated tokens per completion
    truncation_strategy: str = "delete"
    packing: bool = False
    packing_length: int | None = None  # None with packing: max_length (ms-swift's default)
    padding_free: bool = False
    micro_batch_size: int = 1  # samples (or packs) per forward pass
    samples_per_step: int = 16  # samples (or packs) per optimizer step
    data_parallel: int = 1
    epochs: float = 1.0
    num_generations: int = 1  # GRPO: completions per prompt
    max_steps: int | None = None  # max_steps / train_iters: stops before the epochs end
    engine: str = "megatron"
    gradient_accumulation_steps: int = 1  # engine swift (ms-swift's value when the recipe leaves it unset)
    drop_last: bool = False  # engine swift: dataloader_drop_last (GRPO forces it)


def budget_from_recipe(recipe) -> Budget:
    from swift_ext.msswift import schema as msargs
    from swift_ext.msswift.bound_args import Args
    from swift_ext.planner.layout import layout_of

    args = Args.bind(recipe, msargs.schema_for(recipe.engine, recipe.command))
    grpo = recipe.command == "rlhf" and args.str("rlhf_type") == "grpo"
    task = (args.str("rlhf_type") or "dpo") if recipe.command == "rlhf" else recipe.command
    strategy = args.str("truncation_strategy") or ("left" if grpo else "delete")
    world = max(recipe.launch.world_size, 1)
    # Args holds ms-swift's defaults and its __post_init__ values (swift_ext.msswift.coercions).
    accum = 1
    if recipe.engine == "megatron":
        dp = max(layout_of(args, world).dp, 1)
        mbs = args.int("micro_batch_size") or 1
        per_step = args.int("global_batch_size") or 1
    else:
        dp = world
        mbs = args.int("per_device_train_batch_size") or 1
        accum = args.int("gradient_accumulation_steps") or 1
        per_step = mbs * accum * dp
    packing = args.bool("packing")
    # Megatron: num_train_epochs, when set, replaces train_iters (MegatronArguments.init_iters).
    epochs = args.float("num_train_epochs")
    max_steps = args.int("train_iters" if recipe.engine == "megatron" else "max_steps")
    if recipe.engine == "megatron" and epochs is not None:
        max_steps = None
    return Budget(
        task=task, max_length=args.int("max_length"),
        max_completion_length=(args.int("max_completion_length") if grpo else None),
        truncation_strategy=strategy, packing=packing,
        packing_length=args.int("packing_length") if packing else None,
        padding_free=args.bool("padding_free"), micro_batch_size=mbs, samples_per_step=per_step,
        data_parallel=dp, epochs=epochs if epochs is not None else 1.0,
        num_generations=(args.int("num_generations") or 1) if grpo else 1,
        max_steps=max_steps if max_steps and max_steps > 0 else None, engine=recipe.engine,
        gradient_accumulation_steps=accum, drop_last=args.bool("dataloader_drop_last"))


def percentiles(values: list[int]) -> dict | None:
    if not values:
        return None
    import numpy as np

    arr = np.asarray(values)
    out = {f"p{q}": int(np.percentile(arr, q, method="higher")) for q in (50, 90, 95, 99)}
    out.update(mean=round(float(arr.mean()), 1), max=int(arr.max()), min=int(arr.min()))
    return out


def after_truncation(lengths: Lengths, b: Budget) -> tuple[list[int], dict]:
    """Per-row lengths as ms-swift will train them, and what truncation did (template/base.py
    `_encode_truncated`: delete drops the row, left/right keep max_length tokens - never fewer than
    the row's image/video pad tokens, which are protected - split cuts pt rows into pieces)."""
    limit = b.max_length
    grpo = b.task == "grpo"
    measured = lengths.prompt if grpo else lengths.total  # GRPO: max_length bounds the prompt
    report = {"max_length": limit, "strategy": b.truncation_strategy, "rows_over": 0}
    if not limit:
        return list(measured), report
    kept: list[int] = []
    over = dropped = lost_completion = no_completion = pieces = 0
    tokens_cut = 0
    for i, n in enumerate(measured):
        if n <= limit:
            kept.append(n)
            continue
        over += 1
        if b.truncation_strategy == "delete":
            dropped += 1
            tokens_cut += n
        elif b.truncation_strategy == "split":
            pieces += math.ceil(n / limit)
            kept += [limit] * (n // limit) + ([n % limit] if n % limit else [])
        else:
            new = max(limit, lengths.media[i])
            tokens_cut += n - new
            kept.append(new)
            completion = 0 if grpo else lengths.completion[i]
            if b.truncation_strategy == "right":
                keep_completion = max(new - lengths.prompt[i], 0)
                lost_completion += keep_completion < completion
                no_completion += completion > 0 and keep_completion == 0
            else:  # left: the start of the prompt goes first
                lost_completion += completion > new
    report.update(rows_over=over, tokens_cut=tokens_cut)
    if b.truncation_strategy == "delete":
        report["rows_dropped"] = dropped
    elif b.truncation_strategy == "split":
        report["pieces"] = pieces
    elif not grpo:
        report["rows_losing_completion_tokens"] = lost_completion
        if b.truncation_strategy == "right":
            report["rows_without_completion"] = no_completion
    return kept, report


def pack(lengths: list[int], packing_length: int) -> list[int]:
    """Pack sizes as ms-swift's PackingDataset makes them: best-fit-decreasing bins over 1000-row
    batches, the last (unfinished) bin carried into the next batch (dataset/packing.py)."""
    import binpacking

    packs: list[int] = []
    carry: list[tuple[int, int]] = []
    data = list(enumerate(lengths))
    step = 1000
    for start in range(0, len(data), step):
        batch = carry + data[start:start + step]
        bins = binpacking.to_constant_volume(batch, packing_length, weight_pos=1) if batch else []
        finished = start + step >= len(data)
        if bins and not finished:
            bins, carry = bins[:-1], bins[-1]
        else:
            carry = []
        packs += [sum(n for _, n in b) for b in bins]
    return packs


def micro_batches(samples: list[int], mbs: int, padded_to_longest: bool, seed: int = 0) -> list[int]:
    """Tokens in each micro-batch of a shuffled epoch (the loader shuffles; the peak is what matters)."""
    import numpy as np

    if not samples:
        return []
    arr = np.asarray(samples)
    arr = arr[np.random.default_rng(seed).permutation(len(arr))]
    usable = len(arr) // mbs * mbs or len(arr)
    groups = arr[:usable].reshape(-1, min(mbs, usable))
    return (groups.max(axis=1) * groups.shape[1] if padded_to_longest else groups.sum(axis=1)).tolist()


def summarize(lengths: Lengths, b: Budget) -> dict:
    """Everything `data stats` prints, as plain data (also its --json)."""
    from swift_ext.msswift import steps  # counted the way each engine's loader counts (ceil vs floor)

    kept, trunc = after_truncation(lengths, b)
    out: dict[str, Any] = {
        "files": lengths.files,
        "rows": len(lengths.prompt),
        "rows_not_measured": lengths.skipped,
        "rows_by_msswift_template": lengths.slow_rows,
        "tokens": {"prompt": percentiles(lengths.prompt), "completion": percentiles(lengths.completion),
                   "total": percentiles(lengths.total)},
        "truncation": trunc,
        "notes": list(lengths.notes),
    }
    if b.task == "grpo":
        gen = b.max_completion_length or 0
        out["notes"].append(f"GRPO: completions are generated, up to max_completion_length={gen} tokens each; "
                            f"a trained sample is at most prompt + {gen}")
    samples = kept
    pack_len = (b.packing_length or b.max_length) if b.packing else None
    if pack_len:
        packs = pack(kept, pack_len)
        out["packing"] = {"packing_length": pack_len, "packs": len(packs),
                          "efficiency": round(sum(kept) / (len(packs) * pack_len), 4) if packs else None}
        samples = packs
    if b.task == "grpo":
        samples = [n + (b.max_completion_length or 0) for n in kept]
    if samples:
        mb = micro_batches(samples, b.micro_batch_size, padded_to_longest=not b.padding_free)
        worst = b.micro_batch_size * ((pack_len or b.max_length or max(samples)) + (b.max_completion_length or 0))
        out["micro_batch_tokens"] = {**percentiles(mb), "worst_case": worst,
                                     "micro_batch_size": b.micro_batch_size, "padding_free": b.padding_free}
    rows = len(samples)
    batching = steps.Batching(engine=b.engine, micro_batch_size=b.micro_batch_size, data_parallel=b.data_parallel,
                              gradient_accumulation_steps=b.gradient_accumulation_steps,
                              global_batch_size=b.samples_per_step, drop_last=b.drop_last,
                              num_generations=b.num_generations)
    out["epoch"] = {"samples": rows, "samples_per_step": b.samples_per_step,
                    "steps": steps.total_steps(rows, batching, b.epochs, b.max_steps) if b.epochs else None,
                    "steps_per_epoch": steps.steps_per_epoch(rows, batching),
                    "tokens_per_epoch": int(sum(kept) * (b.num_generations if b.task == "grpo" else 1)),
                    "epochs": b.epochs}
    if b.task == "grpo":
        out["epoch"]["note"] = "prompt tokens x num_generations; generated tokens come on top"
    return out


def micro_batch_p99(summary: dict) -> int | None:
    """Tokens in a p99 micro-batch of this data under the recipe (what the memory estimate uses)."""
    mb = summary.get("micro_batch_tokens")
    return mb["p99"] if mb else None


# --------------------------------------------------------------------------------------------------
# Which tokenizer and template a recipe uses

QWEN3_5_MODEL_TYPES = {"qwen3_5", "qwen3_5_moe"}
TINY = "tiny-qwen3_6-moe"


def local_model_dir(model: Any) -> str | None:
    if not isinstance(model, str):
        return None
    if model.startswith("swift-ext://"):
        from swift_ext.planner.tinymodel import local_model_path

        return str(local_model_path(model[len("swift-ext://"):]))
    path = Path(model).expanduser()
    return str(path) if (path / "config.json").is_file() else None


def _tiny_model_dir() -> str | None:
    """The bundled tiny model carries the real Qwen3.5/3.6 tokenizer and processor settings."""
    from swift_ext.planner.tinymodel import local_model_path

    path = local_model_path(TINY)
    return str(path) if (path / "swift-ext-complete").is_file() else None


def _template_for(model: Any, model_dir: str | None) -> str | None:
    if model_dir:
        try:
            config = json.loads(Path(model_dir, "config.json").read_text())
        except (OSError, ValueError):
            config = {}
        if config.get("model_type") in QWEN3_5_MODEL_TYPES:
            return "qwen3_5"
    if isinstance(model, str) and any(k in model.lower() for k in ("qwen3.5", "qwen3.6", "qwen3_5", "qwen3_6")):
        return "qwen3_5"
    return None


def template_settings(model: Any = None, *, template: str | None = None, tokenizer: str | None = None,
                      args: dict | None = None, env: dict | None = None, loss_scale: str = "default",
                      media_root: str | None = None) -> tuple[TemplateSettings, list[str]]:
    """Settings for counting, from a recipe's model/args/env or from --tokenizer/--template. Returns
    (settings, notes saying what was assumed)."""
    args = args or {}
    notes: list[str] = []
    model_dir = local_model_dir(model)
    template = template or args.get("template") or _template_for(model, model_dir)
    if template is None:
        raise StatsError(f"cannot tell ms-swift's template for model {model!r}: pass --template (e.g. qwen3_5)"
                         if model else "no model: pass --recipe R.yaml, or --tokenizer and --template")
    if tokenizer is None and model_dir and Path(model_dir, "tokenizer.json").is_file():
        tokenizer = model_dir
    if (tokenizer is None or model_dir is None) and template == "qwen3_5":
        tiny = _tiny_model_dir()
        if tiny and tokenizer is None:
            tokenizer = tiny
            notes.append("tokenizer: the real Qwen3.5/3.6 vocabulary from the bundled tiny model "
                         "(`swift-ext build-model`), as the model is not a local directory")
        model_dir = model_dir or tiny
    if tokenizer is None:
        raise StatsError(f"no tokenizer for {model or template!r}: the model is not a local directory; pass "
                         "--tokenizer PATH (a tokenizer.json or model dir)")
    enable_thinking = args.get("enable_thinking")
    settings = TemplateSettings(
        template=template, tokenizer=str(tokenizer), model_dir=model_dir,
        system=args.get("system"), loss_scale=str(args.get("loss_scale") or loss_scale),
        enable_thinking=bool(enable_thinking) if enable_thinking is not None else False,
        add_non_thinking_prefix=args.get("add_non_thinking_prefix", True) is not False,
        max_pixels=args.get("max_pixels"), media=media_settings(env or {}), media_root=media_root)
    if template not in FAST_TEMPLATES:
        notes.append(f"template {template}: every row goes through ms-swift's own template (slow path)")
    return settings, notes


def settings_from_recipe(recipe, tokenizer: str | None = None, template: str | None = None):
    default_loss = "last_round" if recipe.command == "rlhf" else "default"
    return template_settings(recipe.args.get("model"), template=template, tokenizer=tokenizer,
                             args=recipe.args, env=recipe.env, loss_scale=default_loss)


def measure(files: list[str], s: TemplateSettings, progress=None, use_cache: bool = True,
            allow_msswift: bool = True, write_cache: bool = True) -> Lengths:
    total = Lengths([])
    for f in files:
        one = measure_file(f, s, progress=progress, use_cache=use_cache, allow_msswift=allow_msswift,
                           write_cache=write_cache)
        if not one.prompt and not one.partial:  # a summary of nothing would read as a clean result
            why = f"all {one.skipped} row(s) unreadable (not JSON objects with `messages`)" if one.skipped else "no rows"
            raise StatsError(f"{f}: nothing to measure: {why}; run `swift-ext data check {f}`")
        total.extend(one)
    return total


# --------------------------------------------------------------------------------------------------
# Presentation: a terminal report (rich) and a PNG histogram (matplotlib)


def histogram(values: list[int], bins: int = 12) -> list[tuple[int, int, int]]:
    """(first, last, count) buckets of equal integer width covering min..max."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    width = max(math.ceil((hi - lo + 1) / bins), 1)
    counts = [0] * ((hi - lo) // width + 1)
    for v in values:
        counts[(v - lo) // width] += 1
    return [(lo + i * width, lo + (i + 1) * width - 1, c) for i, c in enumerate(counts)]


def one_line(summary: dict) -> str:
    """The summary `plan` prints for a recipe's local data."""
    total = summary["tokens"]["total"] or {}
    t = summary["truncation"]
    parts = [f"{summary['rows']} rows", f"tokens p50 {total.get('p50')} / p99 {total.get('p99')} / max {total.get('max')}"]
    if t.get("max_length"):
        effect = {"delete": f"{t.get('rows_dropped', 0)} dropped", "split": f"split into {t.get('pieces', 0)} pieces"}.get(
            t["strategy"], f"cut ({t['strategy']})")
        parts.append(f"{t['rows_over']} over max_length {t['max_length']} ({effect})")
    if summary.get("packing"):
        parts.append(f"packing {summary['packing']['efficiency']:.0%} full")
    if summary.get("micro_batch_tokens"):
        mb = summary["micro_batch_tokens"]
        parts.append(f"p99 micro-batch {mb['p99']} of {mb['worst_case']} tokens")
    parts.append(f"{summary['epoch']['steps_per_epoch']} steps/epoch")
    return "; ".join(parts)


def print_report(summary: dict, totals: list[int], console) -> None:
    from rich.table import Table

    table = Table(title="token lengths (ms-swift template)", title_justify="left")
    for col in ("", "p50", "p90", "p95", "p99", "max", "mean"):
        table.add_column(col, justify="right" if col else "left")
    for name, pct in summary["tokens"].items():
        if pct:
            table.add_row(name, *(str(pct[k]) for k in ("p50", "p90", "p95", "p99", "max", "mean")))
    console.print(table)
    limit = summary["truncation"].get("max_length")
    buckets = histogram(totals)
    if buckets:
        hist = Table(title="total tokens per row", title_justify="left", show_header=False, box=None)
        hist.add_column(justify="right")
        hist.add_column(justify="right")
        hist.add_column()
        peak = max(c for _, _, c in buckets) or 1
        for lo, hi, count in buckets:
            bar = "█" * max(round(40 * count / peak), 1 if count else 0)
            style = "red" if limit and hi > limit else "green"
            hist.add_row(f"{lo}" if lo == hi else f"{lo}-{hi}", str(count), f"[{style}]{bar}[/{style}]")
        console.print(hist)
    facts = Table(show_header=False, box=None)
    facts.add_column()
    facts.add_column()
    facts.add_row("rows", f"{summary['rows']} ({summary['rows_by_msswift_template']} through ms-swift's template, "
                          f"{summary['rows_not_measured']} not measured)")
    t = summary["truncation"]
    if limit:
        line = f"{t['rows_over']} rows over max_length {limit}; truncation_strategy {t['strategy']}: "
        if t["strategy"] == "delete":
            line += f"{t['rows_dropped']} rows dropped ({t['tokens_cut']} tokens)"
        elif t["strategy"] == "split":
            line += f"cut into {t['pieces']} pieces of at most {limit}"
        else:
            line += f"{t['tokens_cut']} tokens cut from the {t['strategy']}"
            if "rows_losing_completion_tokens" in t:
                line += f", {t['rows_losing_completion_tokens']} rows lose completion tokens"
            if t.get("rows_without_completion"):
                line += f", {t['rows_without_completion']} keep no completion token (nothing to learn)"
        facts.add_row("truncation", line)
    else:
        facts.add_row("truncation", "no max_length: ms-swift uses the model's max_model_len")
    if summary.get("packing"):
        p = summary["packing"]
        facts.add_row("packing", f"{p['packs']} packs of {p['packing_length']} tokens, {p['efficiency']:.1%} full")
    mb = summary.get("micro_batch_tokens")
    if mb:
        mode = "padding_free" if mb["padding_free"] else "padded to the longest row"
        facts.add_row("micro-batch tokens", f"p50 {mb['p50']}, p99 {mb['p99']}, max {mb['max']} "
                                            f"(worst case {mb['worst_case']}; micro batch {mb['micro_batch_size']}, {mode})")
    e = summary["epoch"]
    facts.add_row("per epoch", f"{e['samples']} samples, {e['steps_per_epoch']} steps of {e['samples_per_step']}, "
                               f"{e['tokens_per_epoch']:,} tokens" + (f" ({e['note']})" if e.get("note") else ""))
    if e.get("steps") is not None:
        facts.add_row("training", f"{e['steps']} steps ({e['epochs']:g} epochs, or max_steps/train_iters when set)")
    console.print(facts)
    for note in summary["notes"]:
        console.print(f"note: {note}", markup=False)


def write_png(summary: dict, totals: list[int], out: str) -> None:
    if os.path.exists(out):
        raise StatsError(f"{out}: already exists; not overwriting")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise StatsError(f"{out}: its directory does not exist (--png creates a file, not directories)")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise StatsError("--png needs matplotlib (pip install matplotlib)") from None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.hist(totals, bins=min(60, max(len(set(totals)), 1)), color="#4c72b0")
    limit = summary["truncation"].get("max_length")
    if limit:
        ax.axvline(limit, color="#c44e52", linestyle="--", label=f"max_length {limit}")
        ax.legend()
    ax.set_xlabel("tokens per row (ms-swift template)")
    ax.set_ylabel("rows")
    ax.set_title(", ".join(os.path.basename(f) for f in summary["files"])[:80])
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


PLAN_LIMIT = 64 * 2**20  # plan counts local data up to this size itself; bigger: `data stats` fills the cache


def plan_summary(recipe) -> tuple[dict | None, list[str]]:
    """For `plan`: the summary of a recipe's training data when every `dataset` entry is a local file
    that is small enough or already counted (cache). Never raises; says why when there is none. Does not
    import ms-swift (rows that need it stay uncounted, and such a partial count is not cached); a
    complete count is cached like ms-swift's argument schema is, so the next plan reads it."""
    from swift_ext.datasets import check as d

    info = d.recipe_data(recipe)
    files = [path for key, path in info.files if key == "dataset"]
    if not files or any(entry for entry in info.hub if entry in _entries(recipe.args.get("dataset"))):
        return None, []
    if not all(os.path.isfile(f) for f in files):
        return None, []
    try:
        settings, _ = settings_from_recipe(recipe)
        if sum(os.path.getsize(f) for f in files) > PLAN_LIMIT and not all(
                _cache_path(cache_key(f, settings)).is_file() for f in files):
            return None, [f"data: over {PLAN_LIMIT >> 20} MiB and not counted yet; run `swift-ext data stats --recipe "
                          f"{recipe.source}` once and plan will size memory from your data"]
        lengths = measure(files, settings, allow_msswift=False)
        summary = summarize(lengths, budget_from_recipe(recipe))
    except (StatsError, OSError, ValueError) as exc:
        return None, [f"data: token lengths not counted ({exc})"]
    return summary, ["data: " + one_line(summary)]


def _entries(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value] if value else [])]
