"""What vLLM's LoRA loader accepts: the max_lora_rank values its LoRAConfig takes, and the adapter features its
PEFTHelper refuses. Shared by the GRPO rules (a colocated engine with vllm_enable_lora), the recipe's `eval:` rule
(eval.backend vllm) and `swift-ext infer/eval`, which hand `swift infer --infer_backend vllm --adapters CKPT` a
checkpoint's adapter_config.json.

vLLM is not installed here; the facts are read from its public source:
- vllm/config/lora.py LoRAConfig: max_lora_rank "must be one of" possible_max_ranks (8, 16, 32, 64, 128, 256, 320, 512;
  1 since vllm-project/vllm#26461, merged 2025-10-09 after v0.11.0, so first released in 0.11.1: verl-project/verl#3696,
  LoRA rank 1 refused by the vLLM of its day, and the maintainers' note there that v0.11.0 allows 8 ... 512 only);
  its default is 16.
- vllm/lora/peft_helper.py PEFTHelper._validate_features / validate_legal: "vLLM only supports modules_to_save being
  None.", "vLLM does not yet support DoRA.", "LoRA rank {r} is greater than max_lora_rank {max}.", and an adapter
  bias is refused (ms-swift never enables LoRA bias in the engine).
"""

from __future__ import annotations

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# The first vLLM release whose LoRAConfig takes max_lora_rank 1 (vllm-project/vllm#26461).
VLLM_RANK_ONE_SINCE = "0.11.1"
VLLM_DEFAULT_MAX_LORA_RANK = 16  # vLLM's, and ms-swift's vllm_max_lora_rank default (rlhf_trainers/args_mixin.py)


def max_lora_rank_for(rank: int) -> int | None:
    """The smallest max_lora_rank vLLM accepts that holds an adapter of this rank; None past vLLM's largest."""
    return next((r for r in VLLM_LORA_RANKS if r >= rank), None)


def adapter_refusals(use_dora: bool, modules_to_save, bias: str | None, rank: int | None) -> list[tuple[str, str]]:
    """(ms-swift flag, vLLM's reason) for each feature of a LoRA adapter that vLLM's loader refuses whatever
    max_lora_rank it is given. The flags are the training arguments that produced the feature."""
    found = []
    if use_dora:
        found.append(("use_dora", "vLLM does not yet support DoRA"))
    if modules_to_save:
        names = ", ".join(map(str, modules_to_save)) if isinstance(modules_to_save, (list, tuple)) else str(modules_to_save)
        found.append(("modules_to_save", f"vLLM only supports modules_to_save being None (here: {names})"))
    if bias and str(bias) != "none":
        found.append(("lora_bias", f"vLLM refuses an adapter bias (bias {bias})"))
    if rank and max_lora_rank_for(rank) is None:
        found.append(("lora_rank", f"LoRA rank {rank} is greater than vLLM's largest max_lora_rank "
                                   f"{VLLM_LORA_RANKS[-1]}"))
    return found
