"""The lazy-tokenize, streaming-max-steps and bf16-gpu rules (msswift/input_rules.py) beyond the one failed launch
each fixture in tests/fixtures/issues carries: the other branch of each rule, and where each must stay quiet."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

ISSUES = FIXTURES / "issues"


def codes(name: str, *overrides: str) -> dict[str, set[str]]:
    result = make_plan(load_recipe(ISSUES / f"{name}.yaml", list(overrides)), oracle=False)
    out: dict[str, set[str]] = {}
    for finding in result.errors:
        out.setdefault(finding.code, set()).add(finding.path)
    return out


def test_lazy_tokenize_refuses_streaming_too_and_unset_is_quiet():
    assert codes("ms-swift-4054-packing-lazy-tokenize", "args.packing=false", "args.streaming=true",
                 "args.max_steps=100")["lazy-tokenize"] == {"args.lazy_tokenize"}
    assert "lazy-tokenize" not in codes("ms-swift-4054-packing-lazy-tokenize", "args.lazy_tokenize=null")


def test_streaming_with_max_steps_plans_and_megatron_is_left_to_its_own_rule():
    assert "streaming-max-steps" not in codes("ms-swift-6827-streaming-without-max-steps", "args.max_steps=500")
    assert "streaming-max-steps" in codes("ms-swift-6827-streaming-without-max-steps", "args.max_steps=-1")


def test_bf16_is_judged_only_below_ampere_and_only_when_chosen():
    v100 = "nemo-rl-259-v100-bf16-rollout"
    assert "bf16-gpu" not in codes(v100, "launch.gpu=A100-80G")
    assert "bf16-gpu" not in codes(v100, "args.torch_dtype=null")  # ms-swift reads config.json: not judged
    # the Trainer runs bf16 emulated on a V100 (torch.cuda.is_bf16_supported(including_emulation=True)): a warning
    assert "bf16-gpu" not in codes(v100, "args.torch_dtype=float16", "args.bf16=true", "args.fp16=false")
    assert "bf16-gpu" not in codes(v100, "args.use_vllm=false")
    result = make_plan(load_recipe(ISSUES / f"{v100}.yaml", ["args.use_vllm=false"]), oracle=False)
    assert {(f.code, f.path) for f in result.warnings} >= {("bf16-gpu", "args.torch_dtype")}


def warning_codes(name: str, *overrides: str) -> dict[str, set[str]]:
    result = make_plan(load_recipe(ISSUES / f"{name}.yaml", list(overrides)), oracle=False)
    out: dict[str, set[str]] = {}
    for finding in result.warnings:
        out.setdefault(finding.code, set()).add(finding.path)
    return out


def test_shuffle_levels_needs_both_flags_and_stays_quiet_where_the_order_is_kept_or_not_asked():
    megatron = "ms-swift-6932-megatron-dataloader-shuffle-only"
    assert warning_codes(megatron)["shuffle-levels"] == {"args.dataset_shuffle"}
    # both flags: file order (ms-swift#3977's answer); no flag: shuffling is what the recipe asks for
    assert "shuffle-levels" not in warning_codes(megatron, "args.dataset_shuffle=false")
    assert "shuffle-levels" not in warning_codes(megatron, "args.train_dataloader_shuffle=null")
    # packing reorders rows into packs whatever the flags; a cached_dataset is not permuted at load
    assert "shuffle-levels" not in warning_codes(megatron, "args.packing=true")
    assert "shuffle-levels" not in warning_codes(megatron, "args.dataset=null", "args.cached_dataset=[cache]")
    # the transformers engine has the same two levels
    swift = warning_codes("ms-swift-4054-packing-lazy-tokenize", "args.packing=false", "args.lazy_tokenize=null",
                          "args.train_dataloader_shuffle=false")
    assert swift["shuffle-levels"] == {"args.dataset_shuffle"}
