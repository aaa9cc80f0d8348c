"""The stages of a pipeline_model_parallel_layout string, as megatron-core reads them (layout.py and
moe_rules.py both check layouts)."""

from __future__ import annotations


def parse_pipeline_layout(text: str) -> list[str] | None:
    """A pipeline_model_parallel_layout string as its list of stages ("Ett|(tt|)*3,m|L" ->
    ["Ett", "tt", "tt", "tt", "m", "L"]), expanded like megatron-core's
    PipelineParallelLayerLayout.parse_str_to_list; None when it has other characters."""
    import re

    flat = text.replace(",", "")
    for pattern in (r"\(([^)]+)\)\*(\d+)", r"(.)\*(\d+)"):
        flat = re.sub(pattern, lambda m: m.group(1) * int(m.group(2)), flat)
    stages = flat.split("|")
    return stages if all(set(stage) <= set("ELtm") for stage in stages) else None
