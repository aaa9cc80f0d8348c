"""Engine swift under plain DistributedDataParallel (several ranks, neither DeepSpeed nor FSDP): what the DDP wrapper
the transformers Trainer builds refuses about how the recipe checkpoints activations.

- ddp-reentrant: reentrant activation checkpointing (gradient_checkpointing_kwargs use_reentrant true) under DDP.
  ms-swift 4.6 picks use_reentrant False itself on DDP (swift/trainers/mixin.py SwiftMixin._fix_gradient_checkpointing:
  `is_dist() and not deepspeed and not fsdp`) unless the recipe says otherwise, and forces the stated value into
  every torch.utils.checkpoint call. A reentrant checkpoint runs its segment's forward under no_grad, so DDP's
  unused-parameter search (find_unused_parameters=True) finds none of the segment's parameters, marks them ready
  when backward starts, and the segment's recomputed backward marks them again: "Expected to mark a variable ready
  only once" at the first step (torch nn/parallel/distributed.py's note on checkpointing; the reducer in
  torch/csrc/distributed/c10d/reducer.cpp). The Trainer passes find_unused_parameters=ddp_find_unused_parameters;
  unset, it is `not gradient_checkpointing` for a PreTrainedModel (tuner_type full) and True for anything else
  (transformers trainer.py Trainer._build_accelerator_args): an adapter run hands the Trainer a PeftModel /
  SwiftModel, so LoRA and the other tuners fail unless ddp_find_unused_parameters false is stated (reproduced with
  peft LoRA on 2 gloo ranks: the same error). Full training with it unset: a warning (reports saw the error on
  GRPO).

Registered with warn_rules.ENGINE_RULES: each rule returns at once for engine megatron.
"""

from __future__ import annotations

from swift_ext.msswift.conventions import is_true
from swift_ext.spec.local_devices import devices_and_processes


def ddp_ranks(recipe, args) -> int:
    """How many ranks the transformers Trainer wraps in DistributedDataParallel: the torchrun processes of the
    launch, 0 where DeepSpeed or FSDP wraps the model instead (or a size is left to the scheduler)."""
    if recipe.engine != "swift" or args.str("deepspeed") or args.str("fsdp"):
        return 0
    sizes = devices_and_processes(recipe)
    if sizes is None or not isinstance(recipe.launch.nodes, int):
        return 0
    return recipe.launch.nodes * sizes[1]


def ddp_reentrant(recipe, args, shape, lay, err, warn):
    if not args.bool("gradient_checkpointing") or ddp_ranks(recipe, args) < 2:
        return
    kwargs = args.mapping("gradient_checkpointing_kwargs")
    if "use_reentrant" not in kwargs or not is_true(kwargs["use_reentrant"]):
        return  # unset: ms-swift chooses use_reentrant False on DDP
    if is_true(args.str("ddp_static_graph")):
        return  # a static graph lets DDP take the recomputed hooks (the documented workaround)
    ranks = ddp_ranks(recipe, args)
    hint = ("gradient_checkpointing_kwargs: {\"use_reentrant\": false} (ms-swift's own choice on DDP), or "
            "deepspeed: zero2")
    stated = args.str("ddp_find_unused_parameters")
    tuner = args.str("tuner_type") or "lora"
    if is_true(stated) or (stated is None and tuner != "full"):
        why = ("ddp_find_unused_parameters true" if stated is not None else
               f"tuner_type {tuner} (the Trainer gets an adapter-wrapped model, not a PreTrainedModel, and turns DDP's "
               "find_unused_parameters on when ddp_find_unused_parameters is unset)")
        err("ddp-reentrant", f"gradient_checkpointing_kwargs use_reentrant true with {why} "
            f"on {ranks} DDP ranks: a reentrant checkpoint hides its layer's parameters from DDP's unused-parameter "
            "search, which marks them ready at the start of backward, and the recomputed backward marks them again "
            "(\"Expected to mark a variable ready only once\" at the first step)", "gradient_checkpointing_kwargs",
            hint=hint)
        return
    warn("ddp-reentrant", f"gradient_checkpointing_kwargs use_reentrant true on {ranks} DDP ranks (no DeepSpeed/FSDP): "
         "PyTorch's DDP supports reentrant checkpointing only when no parameter goes unused and no layer is "
         "checkpointed twice, and reports of reentrant checkpointing on DDP (then ms-swift's default) saw \"Expected to "
         "mark a variable ready only once\" at the first step on LoRA runs of InternVL2.5 and Qwen2-VL and on GRPO "
         "(modelscope/ms-swift#2746, #3446, #3171)",
         "gradient_checkpointing_kwargs", hint=hint)


DDP_RULES = [ddp_reentrant]
