"""Refusals ms-swift 4.6 makes after the argument classes, while it builds the adapter and the trainer
(swift/pipelines/train/tuner.py prepare_adapter, swift/trainers/mixin.py), found by the audit of the
transformers-engine start-up checks (bench/msswift_audit/swift_checks.tsv). Engine swift only: the Megatron engine
builds its adapters and checkpoints elsewhere."""

from __future__ import annotations

from swift_ext.msswift.model_table import model_meta


def _swift_training(recipe) -> bool:
    return recipe.engine == "swift" and recipe.command in ("sft", "pt", "rlhf")


def _builds_new_adapter(args) -> bool:
    """swift/pipelines/train/tuner.py TunerMixin.prepare_model calls prepare_adapter only for a new adapter: with
    resume_from_checkpoint or adapters it loads the saved one (Swift.from_pretrained), and none of prepare_adapter's
    asserts or raises runs."""
    return not (args.str("resume_from_checkpoint") or args.list("adapters"))


def longlora(recipe, args, err, warn):
    # swift/pipelines/train/tuner.py prepare_adapter, tuner_type in (lora, longlora): with tuner_backend unsloth (no
    # resume_from_checkpoint) it asserts tuner_type == 'lora' ("Unsloth does not support LongLoRA"); then for
    # longlora it asserts LongLoRAModelType.LLAMA ('llama') is a substring of args.model_type -- the shifted-sparse
    # attention patch (swift/tuners/longlora/llama.py replace_llama_attn) exists for Llama only.
    # The unsloth branch is an elif after use_swift_lora's, so use_swift_lora never reaches that assert.
    if not _swift_training(recipe) or args.str("tuner_type") != "longlora" or not _builds_new_adapter(args):
        return
    if args.str("tuner_backend") == "unsloth" and not args.bool("use_swift_lora"):
        err("longlora", "tuner_backend unsloth does not support tuner_type longlora (prepare_adapter asserts "
            "tuner_type == 'lora')", "tuner_backend", hint="tuner_backend: peft, or tuner_type: lora")
        return
    model_type = args.str("model_type") or (model_meta(args.str("model")) or {}).get("model_type")
    if model_type and "llama" not in model_type:
        err("longlora", f"tuner_type longlora patches Llama attention only; model_type {model_type} does not "
            "contain 'llama' (prepare_adapter asserts it)", "tuner_type", hint="tuner_type: lora")


def flash_ckpt_fsdp(recipe, args, err, warn):
    # swift/trainers/mixin.py SwiftMixin._save_flash_checkpoint (from _save_checkpoint when use_flash_ckpt): DLRover's
    # checkpointers cover DeepSpeed and plain DDP; under FSDP it raises "Flash Checkpoint only supports DeepSpeed or
    # DDP." at the first checkpoint save. fsdp beside deepspeed is fsdp-args' refusal.
    if not _swift_training(recipe) or not args.bool("use_flash_ckpt") or not args.str("fsdp") \
            or args.str("deepspeed") or args.str("save_strategy") == "no":
        return
    err("flash-ckpt-fsdp", "use_flash_ckpt does not support FSDP (DLRover's flash checkpoint covers DeepSpeed or DDP "
        "only): the first checkpoint save fails", "use_flash_ckpt", hint="use_flash_ckpt: false, or deepspeed "
        "instead of fsdp")


ADAPTER_SETUP_RULES = [longlora, flash_ckpt_fsdp]
