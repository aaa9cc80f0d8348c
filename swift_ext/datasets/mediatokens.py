"""Image and video tokens as qwen_vl_utils' resizing and transformers' Qwen3VLProcessor give them, from
the file headers only (nothing is decoded)."""

from __future__ import annotations

import math
import os
from typing import Callable

PATCH, MERGE = 16, 2  # Qwen3-VL / Qwen3.5 vision: 16-pixel patches, 2x2 merged into one token
TEMPORAL_PATCH = 2

# qwen_vl_utils' defaults (vision_process.py), overridable by the environment the way ms-swift does.
MEDIA_DEFAULTS = {
    "IMAGE_MIN_TOKEN_NUM": 4, "IMAGE_MAX_TOKEN_NUM": 16384, "VIDEO_MIN_TOKEN_NUM": 128,
    "VIDEO_MAX_TOKEN_NUM": 768, "FPS": 2.0, "FRAME_FACTOR": 2, "FPS_MIN_FRAMES": 4, "FPS_MAX_FRAMES": 768,
    "SPATIAL_MERGE_SIZE": 2, "MAX_RATIO": 200, "MODEL_SEQ_LEN": 128000,
}


class StatsError(Exception):
    """A problem with the input the user can fix (shown without a traceback by the CLI)."""


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

    def __init__(self, s, count_text: Callable[[str], int]):
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


def media_tokens(r, base: str, media: MediaCounter) -> tuple[int, int, int]:
    """(tokens in the prompt, tokens in the completion, pad tokens) added by the row's images/videos."""
    prompt = completion = pads = 0
    for kind, paths, tags_in_completion, text in (("image", r.images, r.image_tags_in_completion, "<image>"),
                                                  ("video", r.videos, r.video_tags_in_completion, "<video>")):
        tags = (r.prompt + r.completion).count(text)
        # fewer tags: ms-swift puts the missing ones at the start of the first message (Template._add_default_tags),
        # so the first images are the prompt's; more tags: the extra ones stay text (data check's E103/E104)
        if tags > len(paths):
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
