"""A memory refusal names the recipe value whose single change fits (swift_ext/planner/memory_levers.py): each
candidate is judged by the plan's own layout rules and estimate, so the named change really passes `plan`."""

from __future__ import annotations

from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import Recipe

MOE = {"model": "Qwen/Qwen3-30B-A3B-Instruct-2507", "tuner_type": "lora", "dataset": ["d.jsonl"],
       "expert_model_parallel_size": 2, "micro_batch_size": 1, "global_batch_size": 16, "max_length": 2048,
       "recompute_granularity": "full", "recompute_method": "uniform", "recompute_num_layers": 1}
DENSE_LONG = {"model": "Qwen/Qwen2.5-7B-Instruct", "tuner_type": "full", "dataset": ["d.jsonl"],
              "tensor_model_parallel_size": 4, "sequence_parallel": True, "micro_batch_size": 8,
              "global_batch_size": 16, "max_length": 16384, "packing": True, "recompute_granularity": "selective"}


def refusal(args, gpu="H100", gpus=4, **overrides):
    plan = make_plan(Recipe(command="sft", engine="megatron", launch={"gpus_per_node": gpus, "gpu": gpu},
                            args={**args, **overrides}, source="r.yaml"))
    found = [f for f in plan.errors if f.code == "memory"]
    return found[0] if found else None


def test_experts_filling_the_card_name_the_expert_parallel_size():
    found = refusal(MOE, gpu="RTX4090")
    assert found is not None and found.path == "args.expert_model_parallel_size", found
    assert "passes with expert_model_parallel_size 4" in found.message
    # The named change itself plans without a memory refusal.
    assert refusal(MOE, gpu="RTX4090", expert_model_parallel_size=4) is None


def test_activations_name_the_micro_batch_first():
    found = refusal(DENSE_LONG)
    assert found is not None and found.path == "args.micro_batch_size", found
    assert refusal(DENSE_LONG, micro_batch_size=1) is None


def test_no_single_change_still_names_the_largest_part():
    # A 72B full fine-tune on one 24 GB card: no one flag makes it fit, the refusal still points at a lever.
    found = refusal({**MOE, "model": "Qwen/Qwen2.5-72B-Instruct", "tuner_type": "full",
                     "expert_model_parallel_size": 1}, gpu="RTX4090", gpus=1)
    assert found is not None and "no single change fits" in found.message
    assert found.path == "args.tensor_model_parallel_size", found
