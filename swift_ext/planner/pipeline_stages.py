"""The stages of a pipeline_model_parallel_layout string, as megatron-core reads them (layout.py and
moe_rules.py both check layouts)."""

from __future__ import annotations

import re

# A layout names every layer of the model once; no model has a thousandth of this. A repeat such as
# "(tt|)*99999999999" (a typo) would otherwise be expanded here before any rule could say so: a MemoryError.
MAX_LAYOUT_CHARS = 1_000_000
LAYOUT_CHARS = set("ELtm")


def parse_pipeline_layout(text: str) -> list[str] | None:
    """A pipeline_model_parallel_layout string as its list of stages ("Ett|(tt|)*3,m|L" ->
    ["Ett", "tt", "tt", "tt", "m", "L"]), expanded like megatron-core's
    PipelineParallelLayerLayout.parse_str_to_list; None when it has other characters or expands past
    MAX_LAYOUT_CHARS (layout_too_long tells the two apart)."""
    flat = text.replace(",", "")
    for pattern in (r"\(([^)]+)\)\*(\d+)", r"(.)\*(\d+)"):
        grown = len(flat)
        for m in re.finditer(pattern, flat):
            if len(m.group(2).lstrip("0")) > len(str(MAX_LAYOUT_CHARS)):  # int() refuses 4300+ digits
                return None
            grown += len(m.group(1)) * int(m.group(2)) - len(m.group(0))
            if grown > MAX_LAYOUT_CHARS:
                return None
        flat = re.sub(pattern, lambda m: m.group(1) * int(m.group(2)), flat)
    stages = flat.split("|")
    return stages if all(set(stage) <= LAYOUT_CHARS for stage in stages) else None


def layout_too_long(text: str) -> bool:
    """Whether parse_pipeline_layout refused `text` for its length, not its characters."""
    return set(re.sub(r"[|()*,\d]", "", text)) <= LAYOUT_CHARS and parse_pipeline_layout(text) is None
