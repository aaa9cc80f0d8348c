"""planner/rollout_rules.py rollout_param_gather (rollout-param-gather): with overlap_param_gather the distributed
optimizer leaves the step's shards un-gathered until the next forward, and ms-swift's Megatron rollout syncs the
weights to vLLM before it (NVIDIA-NeMo/RL PR #4086, #552). Each test changes the #4086 fixture or a published
working setup."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

LLAMA_GRPO = FIXTURES / "issues" / "nemo-rl-4086-grpo-overlap-param-gather.yaml"  # DP 8
QWEN3_MOE_GRPO = FIXTURES / "working" / "ms-swift-example-megatron-grpo-moe-colocate-full.yaml"


def _said(path, *overrides: str) -> set[str]:
    result = make_plan(load_recipe(path, list(overrides)), oracle=False)
    assert not result.errors, [e.message for e in result.errors]
    return {p.path for p in result.warnings if p.code == "rollout-param-gather"}


def test_overlapped_param_gather_before_a_rollout_sync_is_said():
    assert _said(LLAMA_GRPO) == {"args.overlap_param_gather"}
    assert _said(LLAMA_GRPO, "args.vllm_mode=server", "args.vllm_server_host=[10.0.0.2]", "args.sleep_level=0",
                 "args.vllm_gpu_memory_utilization=null") == {"args.overlap_param_gather"}  # a server gets the same
    # ms-swift's MoE example at TP 4 x PP 2 x EP 4 on 8 GPUs has no dense shards; EP 2 leaves 2 expert shards
    assert _said(QWEN3_MOE_GRPO, "args.overlap_grad_reduce=true", "args.overlap_param_gather=true",
                 "args.expert_model_parallel_size=2") == {"args.overlap_param_gather"}


def test_gathered_or_unsharded_parameters_are_not_said():
    assert not _said(LLAMA_GRPO, "args.overlap_param_gather=false")
    assert not _said(LLAMA_GRPO, "args.use_distributed_optimizer=false", "args.use_precision_aware_optimizer=false")
    assert not _said(LLAMA_GRPO, "launch.gpus_per_node=1", "args.global_batch_size=64",
                     "args.num_generations=8")  # one rank: its shard is the whole model
    assert not _said(QWEN3_MOE_GRPO)  # ms-swift's own example: overlap_param_gather off (its default)
    # on, but TP 4 x PP 2 x EP 4 on 8 GPUs: no dense and no expert data-parallel shard -- each rank's is whole
    assert not _said(QWEN3_MOE_GRPO, "args.overlap_grad_reduce=true", "args.overlap_param_gather=true")


def test_training_without_a_rollout_sync_is_not_said():
    # the same layout trained by a loss with no rollout engine: nothing reads the weights before the next forward
    assert not _said(LLAMA_GRPO, "args.rlhf_type=dpo", "args.reward_funcs=null", "args.num_generations=null",
                     "args.advantage_estimator=null", "args.use_vllm=null", "args.vllm_mode=null",
                     "args.max_completion_length=null", "args.epsilon=null")
