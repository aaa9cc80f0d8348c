"""planner/attention_rules.py attention_kernel, MLA on sm90+ (attention-flash-mla): under plain attention_backend flash
only flash-attn 3 (sm90) or 4 runs head_dim_qk != head_dim_v, and nothing checks it is installed on the training
machine (NVIDIA/TransformerEngine#2354, #2285): a warning. flash_3 / flash_4 make ms-swift check the install, and the
other backends do not depend on flash-attn. Each test changes a published working setup (tests/fixtures/working)."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"
MOONLIGHT = "ms-swift-example-megatron-moonlight-deepseek-v3-pp2-shared-overlap.yaml"  # MLA 192/128, H800, flash


def _found(*overrides: str) -> tuple[set[str], set[str]]:
    result = make_plan(load_recipe(WORKING / MOONLIGHT, list(overrides)), oracle=False)
    return ({p.path for p in result.errors if p.code == "attention-flash-mla"},
            {p.path for p in result.warnings if p.code == "attention-flash-mla"})


def test_mla_under_plain_flash_on_hopper_and_blackwell_is_said():
    assert _found() == (set(), {"args.attention_backend"})
    assert _found("args.attention_backend=null") == (set(), {"args.attention_backend"})  # ms-swift's default
    assert _found("launch.gpu=B200") == (set(), {"args.attention_backend"})


def test_a_pinned_flash_version_or_another_backend_is_not_said():
    for backend in ("flash_3", "flash_4", "fused", "auto", "unfused"):
        assert _found(f"args.attention_backend={backend}") == (set(), set()), backend


def test_below_sm90_mla_under_flash_stays_an_attention_kernel_error():
    result = make_plan(load_recipe(WORKING / MOONLIGHT, ["launch.gpu=A100-80G"]), oracle=False)
    assert ("attention-kernel", "args.attention_backend") in {(p.code, p.path) for p in result.errors}
    assert "attention-flash-mla" not in {p.code for p in result.warnings}


def test_models_without_mla_are_not_said():
    result = make_plan(load_recipe(WORKING / "ms-swift-example-megatron-qwen3-moe-optimizer-offload.yaml", []),
                       oracle=False)
    assert "attention-flash-mla" not in {p.code for p in result.warnings + result.errors}
