"""Values ms-swift's own __post_init__ sets or replaces before training, so a plan shows (and checks)
the arguments the run will really use. Each entry names the ms-swift code it follows.

Only what changes a number the plan reports or a rule reads is here; ms-swift's many cosmetic
fill-ins (output_dir suffixes, logging dirs) are left to ms-swift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from swift_ext.msswift.conventions import is_true


@dataclass(frozen=True)
class Coercion:
    name: str
    value: Any
    why: str  # the ms-swift code, for the plan's provenance column


# Each rule reads the values so far (`get`) and the context, and returns (name, value, why) or None.
Rule = Callable[[Callable[[str], Any], str, str, int], "tuple[str, Any, str] | None"]


def _packing_padding_free(get, engine, command, world):
    # swift/arguments/sft_args.py SftArguments._check_padding_free; megatron_base_args.__post_init__
    if is_true(get("packing")) and not is_true(get("padding_free")):
        return "padding_free", True, "packing switches padding_free on (ms-swift __post_init__)"


def _megatron_sequence_parallel(get, engine, command, world):
    # swift/megatron/arguments/megatron_base_args.py: sequence_parallel_size = context_parallel_size
    if engine == "megatron" and get("context_parallel_size") is not None \
            and get("sequence_parallel_size") != get("context_parallel_size"):
        return "sequence_parallel_size", get("context_parallel_size"), "Megatron sets it to context_parallel_size"


def _swift_accumulation(get, engine, command, world):
    # swift/arguments/rlhf_args.py RLHFArguments (GRPO: 1); swift/trainers/arguments.py TrainArgumentsMixin:
    # max(1, ceil(16 / per_device_train_batch_size / world_size))
    if engine != "swift" or get("gradient_accumulation_steps") is not None:
        return None
    if command == "rlhf" and get("rlhf_type") == "grpo":
        return "gradient_accumulation_steps", 1, "GRPO default (RLHFArguments)"
    pdtbs = _int(get("per_device_train_batch_size")) or 1
    value = max(1, math.ceil(16 / pdtbs / max(world, 1)))
    return "gradient_accumulation_steps", value, f"ceil(16 / per_device_train_batch_size {pdtbs} / world {world})"


def _grpo_drop_last(get, engine, command, world):
    # swift/rlhf_trainers/arguments.py GRPOConfig.__post_init__ (ms-swift issue 3863)
    if engine == "swift" and command == "rlhf" and get("rlhf_type") == "grpo" and not is_true(get("dataloader_drop_last")):
        return "dataloader_drop_last", True, "GRPOConfig always drops the last partial batch"


def _split_dropped(get, engine, command, world):
    # swift/arguments/base_args/data_args.py DataArguments.__post_init__ (both engines: MegatronBaseArguments runs
    # BaseArguments.__post_init__): with val_dataset, or with a streaming dataset, split_dataset_ratio becomes 0.
    # A stream is not split at all, so there is no validation set and no evaluation (megatron init_iters: eval_iters 0).
    ratio = get("split_dataset_ratio")
    try:
        if ratio is None or float(ratio) <= 0:
            return None
    except (TypeError, ValueError):
        return None
    val = get("val_dataset")
    if val not in (None, [], ""):
        return "split_dataset_ratio", 0.0, "val_dataset is set, so nothing is split off (DataArguments.__post_init__)"
    if is_true(get("streaming")):
        return "split_dataset_ratio", 0.0, ("a streaming dataset is not split: no validation set, so no evaluation "
                                            "(DataArguments.__post_init__)")


def _muon_not_distributed(get, engine, command, world):
    # swift/megatron/arguments/megatron_args.py _check_muon: "Muon optimizer does not support distributed optimizer
    # for now" (dist_muon shards its state layer-wise instead: megatron/core/optimizer/layer_wise_optimizer.py).
    if engine == "megatron" and str(get("optimizer") or "") in ("muon", "dist_muon") \
            and is_true(get("use_distributed_optimizer")):
        return "use_distributed_optimizer", False, "Muon turns the distributed optimizer off (_check_muon)"


def _eval_steps(get, engine, command, world):
    # swift/arguments/sft_args.py _init_eval_strategy; megatron_args.py: eval_steps defaults to save_steps
    if get("eval_steps") is not None:
        return None
    if engine == "swift" and (get("eval_strategy") or get("save_strategy")) == "no":
        return None
    return "eval_steps", get("save_steps"), "defaults to save_steps"


def _megatron_adapters_lora(get, engine, command, world):
    # swift/megatron/arguments/megatron_args.py MegatronArguments.__post_init__: "if self.adapters or self.ref_adapters
    # or self.mcore_adapter or self.mcore_ref_adapter: if self.tuner_type == 'full': self.tuner_type = 'lora'".
    if engine != "megatron" or str(get("tuner_type") or "full") != "full":
        return None
    if any(get(k) not in (None, "", []) for k in ("adapters", "ref_adapters", "mcore_adapter", "mcore_ref_adapter")):
        return "tuner_type", "lora", "an adapter is given, so Megatron trains LoRA (MegatronArguments.__post_init__)"


RULES: tuple[Rule, ...] = (_packing_padding_free, _megatron_sequence_parallel, _swift_accumulation,
                           _grpo_drop_last, _split_dropped, _muon_not_distributed, _eval_steps,
                           _megatron_adapters_lora)


def coerce(values: dict[str, Any], known: set[str], engine: str, command: str, world: int) -> list[Coercion]:
    """What ms-swift changes in `values` (the recipe's over ms-swift's defaults); `known` holds the
    command's fields, so a rule never adds an argument the command does not have."""
    out = []
    current = dict(values)
    for rule in RULES:
        found = rule(current.get, engine, command, world)
        if found and found[0] in known:
            current[found[0]] = found[1]
            out.append(Coercion(*found))
    return out


def _int(value) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
