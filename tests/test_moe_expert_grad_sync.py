"""planner/moe_rules.py (moe-expert-grad-sync): megatron-core 0.16.1 marks the experts' weights for the expert
data-parallel reduction only when expert_model_parallel_size > 1; with EP 1 and ETP != TP their gradients are reduced
over the dense data-parallel group, silently (NVIDIA/Megatron-LM#1628, PR #5916). Each test changes a published
working setup: Megatron-Bridge's Qwen3-30B-A3B SFT (full, TP 4, EP 4, ETP 1) and ms-swift's Qwen3-30B-A3B LoRA
(EP 2)."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"
FULL_TP4_EP4 = "megatron-bridge-qwen3-30b-a3b-sft-8gpu.yaml"
LORA_EP2 = "ms-swift-docs-mcore-bridge-qwen3-30b-a3b-lora-ep2-capacity.yaml"


def _warned(name: str, *overrides: str) -> set[str]:
    result = make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)
    return {p.path for p in result.warnings if p.code == "moe-expert-grad-sync"}


def test_the_engine_lines_the_rule_mirrors():
    # megatron-core 0.16.1 as installed: expert linears reduce over the expert DP group only under EP > 1
    from swift_ext.msswift.source_reader import _package_dir

    core = _package_dir("megatron") / "core"
    te = (core / "extensions/transformer_engine.py").read_text(encoding="utf-8")
    assert te.count("self.expert_parallel = self.config.expert_model_parallel_size > 1") == 2
    assert 'setattr(param, "allreduce", not (is_expert and self.expert_parallel))' in te
    ddp = (core / "distributed/distributed_data_parallel.py").read_text(encoding="utf-8")
    assert "if getattr(param, 'allreduce', True):\n                dense_params.append(param)" in ddp


def test_ep1_with_etp_other_than_tp_is_said():
    # ms-swift's default ETP 1 under TP 4 without EP: each TP rank's expert copy keeps its own shard's gradient
    assert _warned(FULL_TP4_EP4, "args.expert_model_parallel_size=1") == {"args.expert_tensor_parallel_size"}
    # ETP above TP (the report's TP 1 / ETP 4)
    assert _warned(FULL_TP4_EP4, "args.expert_model_parallel_size=1", "args.tensor_model_parallel_size=1",
                   "args.sequence_parallel=false", "args.expert_tensor_parallel_size=4") == {
        "args.expert_tensor_parallel_size"}
    # LoRA reaching the experts (all-linear) at TP 2 without EP
    assert _warned(LORA_EP2, "args.expert_model_parallel_size=1", "args.tensor_model_parallel_size=2",
                   "args.sequence_parallel=true", "args.target_modules=[all-linear]") == {
        "args.expert_tensor_parallel_size"}


def test_no_word_with_ep_or_etp_equal_to_tp_or_frozen_experts():
    assert _warned(FULL_TP4_EP4) == set()  # EP 4: the experts' own group
    assert _warned(FULL_TP4_EP4, "args.expert_model_parallel_size=1", "args.expert_tensor_parallel_size=4") == set()
    assert _warned(LORA_EP2, "args.expert_model_parallel_size=1") == set()  # TP 1 = ETP 1
    # LoRA on attention only: no expert gradient
    assert _warned(LORA_EP2, "args.expert_model_parallel_size=1", "args.tensor_model_parallel_size=2",
                   "args.sequence_parallel=true", "args.target_modules=[linear_qkv, linear_proj]") == set()
