"""video-frames-length: a Qwen-VL-family run whose FPS_MAX_FRAMES, at qwen_vl_utils' smallest frame size, is past
max_length. The token count is checked against qwen_vl_utils' own frame sampling and resizing (installed here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

RECIPE = """\
description: Qwen3-VL video LoRA
command: sft
engine: swift
launch: {nodes: 1, gpus_per_node: 1}
env: {FPS_MAX_FRAMES: "360"}
args:
  model: Qwen/Qwen3-VL-8B-Instruct
  dataset: [AI-ModelScope/LaTeX_OCR#20000]
  tuner_type: lora
  max_length: 4096
"""


def _warned(tmp_path: Path, *overrides: str) -> set[str]:
    path = tmp_path / "video.yaml"
    path.write_text(RECIPE)
    plan = make_plan(load_recipe(path, list(overrides)), oracle=False)
    return {w.path for w in plan.warnings if w.code == "video-frames-length"}


def test_said_when_the_frame_budget_cannot_fit(tmp_path):
    assert _warned(tmp_path) == {"env.FPS_MAX_FRAMES"}
    assert _warned(tmp_path, "env.FPS_MAX_FRAMES=70") == {"env.FPS_MAX_FRAMES"}  # 35 grids x 128 = 4480


@pytest.mark.parametrize("overrides", [
    ("env.FPS_MAX_FRAMES=16",),  # the report's working value: 8 x 128
    ("env.FPS_MAX_FRAMES=64",),  # 32 x 128 = 4096: fits exactly
    ("args.max_length=32768",),
    ("env.FPS_MAX_FRAMES=360", "env.VIDEO_MIN_TOKEN_NUM=8"),  # 180 x 8 = 1440
    ("env.FPS_MAX_FRAMES=",),  # unset: qwen_vl_utils' default 768 frames is not the recipe's choice
    ("args.model=Qwen/Qwen3-8B",),  # a text model
    ("args.model=OpenGVLab/InternVL3_5-4B-HF",),  # no qwen_vl_utils (media-env-unread's case)
])
def test_quiet_where_it_fits_or_is_not_judged(tmp_path, overrides):
    assert _warned(tmp_path, *overrides) == set()


def test_the_lower_bound_is_qwen_vl_utils_own():
    # a long, tiny video: qwen_vl_utils samples FPS_MAX_FRAMES frames and sizes each pair at VIDEO_MIN_TOKEN_NUM
    from qwen_vl_utils import vision_process as vp

    frames = vp.smart_nframes({"fps": 2.0, "max_frames": 360}, total_frames=30 * 600, video_fps=30)
    assert frames == 360
    factor = 16 * 2  # Qwen3-VL: 16-pixel patches, 2x2 merge
    min_pixels = 128 * factor * factor
    h, w = vp.smart_resize(64, 64, factor=factor, min_pixels=min_pixels, max_pixels=int(min_pixels * 1.05))
    assert (frames // 2) * (h // factor) * (w // factor) >= 180 * 128
