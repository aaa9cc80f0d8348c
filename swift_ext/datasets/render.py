"""Rows rendered to the text ms-swift's qwen3_5 template produces for training (swift/template/base.py
`_swift_encode`, templates/qwen.py `Qwen3_5Template._swift_prepare_inputs`); rows it does not cover
are left to ms-swift's own template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swift_ext.datasets.template import TemplateSettings

THINK, NO_THINK = "<think>\n", "<think>\n\n</think>\n\n"
FAST_ROLES = {"system", "user", "assistant"}
VISION = "<|vision_start|><|vision_end|>"


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


def mark_tags(text: str) -> str:
    # ms-swift tokenizes the text on each side of a media tag separately; the two special tokens that
    # enclose every image and video make the Rust tokenizer split at the same places.
    return text.replace("<image>", VISION).replace("<video>", VISION)
