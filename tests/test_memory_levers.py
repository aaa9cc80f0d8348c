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


# ms-swift#6387: Qwen3-Next-80B-A3B LoRA at EP=2 on 8 x H20 (96 GB) ran out of memory; the estimate is over the card
# but inside the error band, so plan warns (tight) rather than refuses.
NEXT_EP2 = {"model": "Qwen/Qwen3-Next-80B-A3B-Instruct", "tuner_type": "lora", "target_modules": "all-linear",
            "dataset": ["d.jsonl"], "expert_model_parallel_size": 2, "micro_batch_size": 1, "global_batch_size": 8,
            "max_length": 512, "recompute_granularity": "full", "recompute_method": "uniform",
            "recompute_num_layers": 1, "sequence_parallel": True}


def tight_warning(args, gpu="H20", gpus=8):
    plan = make_plan(Recipe(command="sft", engine="megatron", launch={"gpus_per_node": gpus, "gpu": gpu},
                            args=args, source="r.yaml"))
    assert plan.memory.verdict == "tight", plan.memory.verdict
    return plan, next(w for w in plan.warnings if w.code == "memory")


def test_a_tight_estimate_over_the_card_names_the_change_that_brings_it_under():
    plan, found = tight_warning(NEXT_EP2)
    assert plan.memory.per_gpu_gib > plan.memory.capacity_gib
    assert found.path == "args.expert_model_parallel_size", found
    assert "under the card with expert_model_parallel_size 4" in found.message
    # The named change brings the estimate itself under the card.
    fixed = make_plan(Recipe(command="sft", engine="megatron", launch={"gpus_per_node": 8, "gpu": "H20"},
                             args={**NEXT_EP2, "expert_model_parallel_size": 4}, source="r.yaml"))
    assert fixed.memory.per_gpu_gib < fixed.memory.capacity_gib


def test_a_tight_estimate_under_the_card_names_no_value():
    # The same run on a card the estimate fits under (a 96 GiB estimate on a 100 GiB card is tight only through the
    # band): nothing to point at, the warning stays on the recipe.
    plan = make_plan(Recipe(command="sft", engine="megatron", launch={"gpus_per_node": 8, "gpu_memory_gib": 100},
                            args=NEXT_EP2, source="r.yaml"))
    assert plan.memory.verdict == "tight" and plan.memory.per_gpu_gib <= plan.memory.capacity_gib
    found = next(w for w in plan.warnings if w.code == "memory")
    assert found.path is None and "under the card with" not in found.message


# Megatron-Bridge PR 5506: Gemma-4-26B-A4B full SFT at TP4/EP8 on 8 H100s with selective recompute ran out of memory;
# full recompute at the same layout cleared it. The states are the largest part (TP=8 also brings the estimate under the
# card), but a tight warning names the change that keeps the layout first.
GEMMA_SELECTIVE = {"model": "google/gemma-4-26B-A4B-it", "tuner_type": "full", "dataset": ["d.jsonl"],
                   "freeze_vit": True, "freeze_aligner": True, "tensor_model_parallel_size": 4,
                   "expert_model_parallel_size": 8, "expert_tensor_parallel_size": 1, "sequence_parallel": True,
                   "micro_batch_size": 1, "global_batch_size": 32, "max_length": 4096, "padding_free": False,
                   "recompute_granularity": "selective", "recompute_modules": ["core_attn", "moe_act"],
                   "attention_backend": "auto"}


def test_a_tight_estimate_names_the_change_that_keeps_the_layout_first():
    plan, found = tight_warning(GEMMA_SELECTIVE, gpu="H100")
    assert plan.memory.components["activations"] < plan.memory.components["optimizer"]
    assert found.path == "args.recompute_granularity", found
    assert "under the card with recompute_granularity full" in found.message
    # The re-sharding that also brings it under the card is listed after it, for a run that cannot afford recompute.
    assert ", or tensor_model_parallel_size 8 sequence_parallel true" in found.message


def test_a_tight_estimate_with_the_layout_keeping_changes_spent_still_names_a_re_sharding():
    # With full recompute already on, the lever that keeps the layout is gone: the re-sharding that brings the estimate
    # under the card is named (a longer sequence puts the full-recompute run over the card).
    plan, found = tight_warning({**GEMMA_SELECTIVE, "recompute_granularity": "full", "recompute_method": "uniform",
                                 "recompute_num_layers": 1, "max_length": 16384}, gpu="H100")
    assert found.path == "args.tensor_model_parallel_size", found
