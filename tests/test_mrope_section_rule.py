"""planner/attention_rules.py mrope_without_section (mrope-section): megatron-core's GPTModel.__init__ asserts an
mrope_section for position_embedding_type mrope; a text model's config.json gives none, so megatron_extra_kwargs
setting mrope there fails when the model is built. Each test changes a published working setup."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"
MROPE = 'args.megatron_extra_kwargs={"position_embedding_type": "mrope"}'


def _errors(name: str, *overrides: str) -> set:
    return {(e.code, e.path) for e in make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False).errors}


def test_mrope_on_a_text_model_is_refused():
    assert ("mrope-section", "args.megatron_extra_kwargs") in _errors("ms-swift-example-gkd-dense.yaml", MROPE)


def test_mrope_with_a_section_plans():
    # a VL model's config.json has the section; a text model given one in megatron_extra_kwargs builds too
    assert not {e for e in _errors("github-user-megatron-qwen3-vl-2b-lora-aligner-lr-2gpu.yaml", MROPE)
                if e[0] == "mrope-section"}
    given = 'args.megatron_extra_kwargs={"position_embedding_type": "mrope", "mrope_section": [16, 24, 24]}'
    assert not {e for e in _errors("ms-swift-example-gkd-dense.yaml", given) if e[0] == "mrope-section"}
