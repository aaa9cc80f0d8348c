"""Llama-4's chunked local attention under mcore-bridge (rule llama4-chunked-attention): a warning past the chunk."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

SCOUT = FIXTURES / "working" / "ms-swift-example-megatron-llama4-scout-lora.yaml"


def warned(*overrides) -> list:
    plan = make_plan(load_recipe(SCOUT, list(overrides)), oracle=False)
    return [w.path for w in plan.warnings if w.code == "llama4-chunked-attention"]


def test_samples_past_the_chunk_are_said_and_samples_within_it_are_not():
    assert warned("args.max_length=32768") == ["args.max_length"]
    assert warned("args.max_length=8192") == []  # within one chunk: chunked and full causal attention agree
    assert warned("args.max_length=32768", "args.bridge_backend=megatron-bridge") == []  # not mcore-bridge's build

