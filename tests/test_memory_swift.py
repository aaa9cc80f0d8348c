"""The transformers engine's memory floor (planner/memory_swift.py): the weights, gradients and optimizer state
alone. Refused only when that floor is above the GPU; the published setups (tests/fixtures/working) stay below it."""

from __future__ import annotations

import pytest
import torch

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

SFT = FIXTURES / "issues" / "ms-swift-417-72b-lora-ddp-oom.yaml"  # 72B LoRA, 8 x 80 GiB, DDP


def floor_errors(path, *overrides):
    plan = make_plan(load_recipe(path, list(overrides)), oracle=False)
    return [e for e in plan.errors if e.code == "memory-floor"]


@pytest.mark.parametrize("bad, good", [
    ([], ["args.deepspeed=zero3"]),  # LoRA: each DDP rank loads the whole bf16 model; ZeRO-3 shards it
    ([], ["launch.gpus_per_node=1", "env.CUDA_VISIBLE_DEVICES=0,1"]),  # device_map over 2 GPUs: 68 GiB each
    (["args.model=Qwen/Qwen2.5-32B-Instruct", "args.tuner_type=full"],  # full 32B: 8 bytes/param under DDP
     ["args.model=Qwen/Qwen2.5-32B-Instruct", "args.tuner_type=full", "args.deepspeed=zero3"]),
    (["args.model=Qwen/Qwen2.5-32B-Instruct", "args.tuner_type=full", "args.deepspeed=zero2"],  # whole weights per rank
     ["args.model=Qwen/Qwen2.5-32B-Instruct", "args.tuner_type=full", "args.deepspeed=zero3"]),
    (["args.model=Qwen/Qwen2.5-32B-Instruct", "args.tuner_type=full", "args.deepspeed=zero2"],
     ["args.model=Qwen/Qwen2.5-32B-Instruct", "args.tuner_type=full", "args.deepspeed=zero2", "launch.gpu=H200"]),
    (["launch.gpu=A100-40G", "args.model=Qwen/Qwen3-8B", "args.tuner_type=full"],  # 8B full DDP: 61 GiB of states
     ["launch.gpu=A100-40G", "args.model=Qwen/Qwen3-8B", "args.tuner_type=lora"]),
    # 14B full: AdamW's moments and the gradients take it past 80 GiB; Adafactor keeps factored moments and
    # 8-bit AdamW one byte per moment, so only the weights (28 GiB) are a floor there
    (["args.model=Qwen/Qwen2.5-14B-Instruct", "args.tuner_type=full"],
     ["args.model=Qwen/Qwen2.5-14B-Instruct", "args.tuner_type=full", "args.optim=adafactor"]),
    (["args.model=Qwen/Qwen2.5-14B-Instruct", "args.tuner_type=full", "args.optim=adamw_torch_fused"],
     ["args.model=Qwen/Qwen2.5-14B-Instruct", "args.tuner_type=full", "args.optim=adamw_bnb_8bit"]),
])
def test_states_above_the_gpu_are_refused_and_a_fitting_setup_is_not(bad, good):
    assert [e.path for e in floor_errors(SFT, *bad)] == ["args.deepspeed"]
    assert floor_errors(SFT, *good) == []


@pytest.mark.parametrize("skip", [
    ["args.quant_method=bnb", "args.quant_bits=4"],  # QLoRA: the weights are not at torch_dtype
    ["args.fsdp=fsdp2"],  # FSDP's sharding is not worked out here
    ['args.deepspeed={"zero_optimization": {"stage": 3, "offload_param": {"device": "cpu"}}}'],
    ["args.deepspeed=/cluster/ds/zero.json"],  # a DeepSpeed config on the training machine: not readable here
])
def test_what_the_floor_does_not_judge_is_not_refused(skip):
    assert floor_errors(SFT, *skip) == []


def test_the_megatron_engine_is_left_to_its_own_estimate():
    meg = FIXTURES / "issues" / "ms-swift-8017-megatron-grpo-num-iterations.yaml"
    assert floor_errors(meg) == []


def test_torch_adamw_keeps_its_moments_in_the_parameters_dtype():
    # The floor's DDP case counts exp_avg/exp_avg_sq at the weights' dtype (2 bytes each for bf16): the real optimizer.
    param = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    param.grad = torch.ones(4, dtype=torch.bfloat16)
    opt = torch.optim.AdamW([param], lr=1e-3, foreach=False)
    opt.step()
    state = opt.state[param]
    assert state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.bfloat16


def test_the_deepspeed_preset_table_is_what_the_installed_presets_hold():
    # The floor reads ms-swift's presets from a table (it must work where ms-swift is not installed): the table
    # agrees with swift/config/<name>.json as the installed ms-swift ships them.
    from swift_ext.msswift.deepspeed_rules import DEEPSPEED_PRESET_ZERO, DEEPSPEED_PRESETS, _json_config

    for name, held in DEEPSPEED_PRESET_ZERO.items():
        zero = _json_config(name, DEEPSPEED_PRESETS)["zero_optimization"]
        offloaded = [isinstance(zero.get(k), dict) and zero[k].get("device") in ("cpu", "nvme")
                     for k in ("offload_optimizer", "offload_param")]
        assert (int(zero["stage"]), *offloaded) == held, name


def test_mtp_blocks_transformers_never_loads_are_not_weights():
    # Qwen3.6-35B-A3B's MTP layer (0.84B parameters, 1.6 GiB in bf16) is a checkpoint key transformers drops
    # (modeling_qwen3_5_moe: _keys_to_ignore_on_load_unexpected "^mtp.*"): the LoRA model holds 65.4 GiB, not 67.0
    qwen = ["args.model=Qwen/Qwen3.6-35B-A3B", "launch.gpus_per_node=1", "env.CUDA_VISIBLE_DEVICES=0"]
    assert floor_errors(SFT, *qwen, "launch.gpu_memory_gib=66") == []
    assert [e.path for e in floor_errors(SFT, *qwen, "launch.gpu_memory_gib=64")] == ["args.deepspeed"]


# RLHF keeps more beside the states through every step (memory_swift.reference_gib / awake_vllm_gib): a whole
# reference copy below ZeRO-3, and a colocated vLLM that never sleeps.
DPO = ["command=rlhf", "args.rlhf_type=dpo", "args.model=Qwen/Qwen3-8B", "args.tuner_type=full",
       "args.deepspeed=zero2", "launch.gpu=A100-40G"]
GRPO = ["command=rlhf", "args.rlhf_type=grpo", "args.model=Qwen/Qwen3-8B", "args.tuner_type=lora",
        "args.reward_funcs=[accuracy]", "args.num_generations=8", "args.per_device_train_batch_size=8",
        "args.use_vllm=true", "args.vllm_mode=colocate", "args.vllm_gpu_memory_utilization=0.9"]


def test_a_whole_reference_copy_below_zero3_is_counted():
    # 8 GPUs, ZeRO-2: the states (~28 GiB) fit a 40 GiB card; the unpartitioned 8B reference copy (~15 GiB) does not
    assert [e.path for e in floor_errors(SFT, *DPO)] == ["args.deepspeed"]
    assert floor_errors(SFT, *DPO[:-2], "args.deepspeed=zero3", "launch.gpu=A100-40G") == []  # partitioned
    assert floor_errors(SFT, *DPO[:-1], "args.tuner_type=lora") == []  # LoRA: the base with adapters off


def test_an_awake_colocated_vllm_is_counted_through_training():
    # LoRA states ~15 GiB (DDP, bf16 weights) + vLLM 0.9 x 40 GiB = 36 GiB held at sleep_level 0
    assert [e.path for e in floor_errors(SFT, *GRPO, "launch.gpu=A100-40G")] == ["args.sleep_level"]
    assert floor_errors(SFT, *GRPO, "launch.gpu=A100-40G", "args.sleep_level=1") == []
    assert floor_errors(SFT, *GRPO, "launch.gpu=A100-40G", "args.vllm_gpu_memory_utilization=0.4") == []
