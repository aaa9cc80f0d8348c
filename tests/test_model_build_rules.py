"""Rules of ms-swift's Megatron model build beyond MoE (planner/attention_rules.py, warn_rules.py
megatron_lora_hf_names) on published examples and the issue fixtures, with one flag changed: the rule fires on
what ms-swift or peft refuses and stays quiet on the published setting."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"


def _findings(name: str, *overrides: str):
    result = make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)
    return {(p.code, p.path) for p in result.errors}, {(p.code, p.path) for p in result.warnings}



def test_gpt_oss_attention_sinks_refuse_the_flash_backend_even_by_default():
    issue = FIXTURES / "issues" / "megatron-lm-1971-expert-bias-softmax-router.yaml"

    def attention_errors(*overrides):
        result = make_plan(load_recipe(issue, ["args.megatron_extra_kwargs=null", *overrides]), oracle=False)
        return {(p.code, p.path) for p in result.errors if p.code == "attention-backend"}

    assert attention_errors() == set()  # unfused, as ms-swift's gpt-oss example
    assert attention_errors("args.attention_backend=null") == {("attention-backend", "args.attention_backend")}
    assert attention_errors("args.attention_backend=flash_3") == {("attention-backend", "args.attention_backend")}
    errors, _ = _findings("ms-swift-example-lora-moe.yaml")  # Qwen3-30B-A3B with flash: no sinks
    assert not {e for e in errors if e[0] == "attention-backend"}


def test_megatron_lora_with_transformers_module_names_is_refused_and_megatron_names_pass():
    hf = _findings("ms-swift-example-lora-moe.yaml", "args.target_modules=[q_proj,k_proj,v_proj,o_proj]")[0]
    assert ("lora-targets", "args.target_modules") in hf
    mcore = _findings("ms-swift-example-lora-moe.yaml", "args.target_modules=[linear_qkv,linear_proj]")[0]
    assert not {e for e in mcore if e[0] == "lora-targets"}
    # a multimodal model keeps its transformers vision tower: not judged
    vl = _findings("ms-swift-example-multimodal-moe-lora.yaml", "args.target_modules=[q_proj,v_proj]")[0]
    assert not {e for e in vl if e[0] == "lora-targets"}
