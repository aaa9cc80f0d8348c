"""planner/loss_fusion_rules.py (cross-entropy-te): Transformer Engine's fused parallel cross entropy, which
megatron-core 0.16.1 calls for cross_entropy_fusion_impl te, handed back a zero logits gradient before
NVIDIA/TransformerEngine PR #2139 (NVIDIA/Megatron-LM#1750, #1627). A warning where the training machine's TE is known
to be older than 2.7; no verdict where it is unknown. Each test changes a published working setup
(tests/fixtures/working) that sets cross_entropy_fusion_impl te."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"
QWEN3_MOE_PT = "megatron-bridge-qwen3-30b-a3b-pretrain-16gpu.yaml"  # pt, cross_entropy_fusion_impl te
DPO = "ms-swift-example-megatron-dpo-dense-tp4-rpo.yaml"


def _warned(name: str, *overrides: str, te: str | None = None) -> set[str]:
    recipe = load_recipe(WORKING / name, list(overrides))
    result = make_plan(recipe, oracle=False, target_versions={"transformer-engine": te} if te else None)
    assert "cross-entropy-te" not in {p.code for p in result.errors}
    return {p.path for p in result.warnings if p.code == "cross-entropy-te"}


def test_the_engine_line_the_rule_mirrors_calls_te_cross_entropy_for_impl_te():
    # megatron-core 0.16.1 as installed: the TE kernel is reached only with the fusion on and impl 'te'
    from swift_ext.msswift.source_reader import _package_dir

    text = (_package_dir("megatron") / "core/models/common/language_module/language_module.py").read_text(
        encoding="utf-8")
    body = text[text.index("def compute_language_model_loss"):text.index("def setup_embeddings_and_output_layer")]
    assert "if self.config.cross_entropy_loss_fusion:" in body
    assert "if self.config.cross_entropy_fusion_impl == 'te':" in body and "te_parallel_cross_entropy(" in body


def test_te_fused_cross_entropy_on_a_te_before_the_fix_is_said():
    for te in ("2.4.0", "2.5.0", "2.6.0"):
        assert _warned(QWEN3_MOE_PT, te=te) == {"args.cross_entropy_fusion_impl"}, te
    assert _warned(QWEN3_MOE_PT, "command=sft", te="2.5.0") == {"args.cross_entropy_fusion_impl"}


def test_no_word_on_a_newer_or_unknown_te_or_without_the_te_kernel():
    assert _warned(QWEN3_MOE_PT) == set()  # unknown version: no verdict (the published setups run on recent TE)
    assert _warned(QWEN3_MOE_PT, te="2.7.0") == set()
    assert _warned(QWEN3_MOE_PT, te="2.14.1") == set()
    assert _warned(QWEN3_MOE_PT, "args.cross_entropy_fusion_impl=native", te="2.5.0") == set()
    # the fusion off: megatron-core's unfused vocab_parallel_cross_entropy, whatever the impl says
    assert _warned(QWEN3_MOE_PT, "args.cross_entropy_loss_fusion=false", te="2.5.0") == set()


def test_dpo_and_kto_take_their_log_probs_from_the_fused_loss_and_grpo_does_not():
    # Megatron DPO/KTO negate the per-token loss the model returns for the labels (rlhf_mixin.get_logps); GRPO pops
    # the labels before the forward (grpo_trainer.py)
    assert _warned(DPO, "args.cross_entropy_fusion_impl=te", te="2.5.0") == {"args.cross_entropy_fusion_impl"}
    assert _warned(DPO, "args.cross_entropy_fusion_impl=te") == set()
    assert _warned(DPO, "args.cross_entropy_fusion_impl=te", "args.rlhf_type=grpo", te="2.5.0") == set()
