"""planner/moe_rules.py rl_aux_loss (rl-moe-aux-loss): Megatron GRPO on a MoE model with moe_aux_loss_coeff above 0
adds megatron-core's router load-balancing loss to every policy update (NVIDIA-NeMo/RL PR #3169: Qwen3.5-35B-A3B
DAPO at 0.001, ~10x grad norm and lower accuracy). Each test changes the #3169 fixture or a published working
setup."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

QWEN35_GRPO = FIXTURES / "issues" / "nemo-rl-3169-grpo-moe-aux-loss.yaml"
MSSWIFT_GRPO_MOE = FIXTURES / "working" / "ms-swift-example-megatron-grpo-moe-colocate-full.yaml"
NEMO_RL_DSV3 = FIXTURES / "working" / "nemo-rl-grpo-dapomath17k-dsv3-tp8-pp16-cp4-ep32-512gpu.yaml"
VERL_QWEN3_VL = FIXTURES / "working" / "verl-example-qwen3-vl-30b-a3b-megatron-cp2.yaml"  # aux loss 0.01 kept


def _said(path, *overrides: str) -> set[str]:
    result = make_plan(load_recipe(path, list(overrides)), oracle=False)
    assert not result.errors, [e.message for e in result.errors]
    return {p.path for p in result.warnings if p.code == "rl-moe-aux-loss"}


def test_a_grpo_aux_loss_coefficient_is_said():
    assert _said(QWEN35_GRPO) == {"args.moe_aux_loss_coeff"}
    assert _said(MSSWIFT_GRPO_MOE, "args.moe_aux_loss_coeff=0.01") == {"args.moe_aux_loss_coeff"}
    # through megatron_extra_kwargs it is said there
    assert _said(MSSWIFT_GRPO_MOE, "args.megatron_extra_kwargs={moe_aux_loss_coeff: 0.001}") == \
        {"args.megatron_extra_kwargs"}
    assert _said(VERL_QWEN3_VL) == {"args.moe_aux_loss_coeff"}  # a warning only: verl keeps it on purpose


def test_no_load_balancing_loss_is_not_said():
    assert not _said(QWEN35_GRPO, "args.moe_aux_loss_coeff=0")
    assert not _said(QWEN35_GRPO, "args.moe_router_load_balancing_type=none")
    assert not _said(MSSWIFT_GRPO_MOE)  # ms-swift's own MoE GRPO example: the default 0
    assert not _said(NEMO_RL_DSV3)  # NeMo-RL's DeepSeek-V3 GRPO: balancing none, coefficient [0.0]


def test_other_trainings_keep_their_load_balancing_loss():
    sft = _said(QWEN35_GRPO, "command=sft", "args.rlhf_type=null", "args.reward_funcs=null", "args.use_vllm=null",
                "args.vllm_mode=null", "args.num_generations=null", "args.max_completion_length=null",
                "args.beta=null", "args.epsilon_high=null", "args.vllm_tensor_parallel_size=null",
                "args.vllm_gpu_memory_utilization=null", "args.sleep_level=null", "args.offload_model=null",
                "args.offload_optimizer=null", "args.vllm_max_model_len=null")
    assert not sft
    assert not _said(QWEN35_GRPO, "args.rlhf_type=dpo", "args.reward_funcs=null", "args.num_generations=null",
                     "args.vllm_mode=null", "args.use_vllm=null")
