"""Refusals ms-swift 4.6 makes after the argument classes, while it builds the adapter and the trainer
(swift/pipelines/train/tuner.py prepare_adapter, swift/trainers/mixin.py), found by the audit of the
transformers-engine start-up checks (bench/msswift_audit/swift_checks.tsv). Engine swift only: the Megatron engine
builds its adapters and checkpoints elsewhere."""

from __future__ import annotations

import re

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


# Module names that put the embedding or the output head among the trained weights: ms-swift's all-embedding
# shorthand (tuner.py get_modules_to_save / get_target_modules expand it to the model's embeddings), the HF names of
# the input embedding and head, and Megatron's (word_embeddings, output_layer).
_EMBEDDING_NAMES = ("all-embedding", "embed_tokens", "lm_head", "wte", "word_embeddings", "output_layer",
                    "embed_out", "embeddings")


def _names_embedding(values) -> bool:
    return any(any(name in str(v) for name in _EMBEDDING_NAMES) for v in values)


def new_tokens_frozen(recipe, args, err, warn):
    # swift/model/register.py ModelLoader._add_new_special_tokens adds the tokens and resize_token_embeddings gives them
    # new embedding and lm_head rows (transformers initialises them to the mean of the old rows); then
    # swift/pipelines/train/tuner.py TunerMixin.prepare_model freezes the whole base model for an adapter
    # (model.requires_grad_(False)) and nothing in 4.6 reopens those rows: the adapter trains around tokens whose
    # embedding and output row never move, and the tuned model emits other tokens or garbage where they belong
    # (ms-swift#5998, LoRA on Qwen3-32B: the new emotion tokens come out as <tool_response>; the maintainers: train the
    # embedding and lm_head, i.e. modules_to_save). Both engines: Megatron's LoRA freezes the base model alike.
    if args.str("tuner_type") in (None, "full") or not args.list("new_special_tokens"):
        return
    if args.str("resume_from_checkpoint") or args.list("adapters"):
        return  # a saved adapter decides what it trains (its modules_to_save travel with it)
    if _names_embedding(args.list("modules_to_save")) or _names_embedding(args.list("target_modules")) \
            or _names_embedding([args.str("target_regex")]) or args.list("trainable_parameters") \
            or args.str("trainable_parameters_regex"):
        return
    warn("new-tokens-frozen", f"new_special_tokens with tuner_type {args.str('tuner_type')}: tokens the tokenizer "
         "does not have yet get new embedding and output-head rows, and the adapter freezes both, so those rows stay "
         "at their initial values and the model never learns to read or emit the new tokens", "new_special_tokens",
         hint="modules_to_save: [all-embedding, lm_head] (Megatron: [word_embeddings, output_layer]), or tuner_type "
         "full")


def resume_only_model_step(recipe, args, err, warn):
    # swift/arguments/sft_args.py SftArguments.__post_init__ loads the checkpoint's weights (as the model, or as the
    # adapter) for resume_only_model; swift/trainers/mixin.py SwiftMixin.__init__ clears resume_from_checkpoint only
    # when ignore_data_skip is set too, and otherwise skips just the optimizer, scheduler and RNG state
    # (_load_optimizer_and_scheduler / _load_rng_state). transformers Trainer._init_training_state still reads the
    # checkpoint's trainer_state.json: global_step continues from the checkpoint's and that many steps of the new
    # run's data are skipped. At or past this run's max steps nothing trains and the run ends at once with
    # train_loss 0 (ms-swift#6084: 'global_step/max_steps': '35200/30255' continuing a LoRA on new data). Streamed
    # data is resume-stream-replay's.
    if recipe.engine != "swift" or recipe.command not in ("sft", "pt", "rlhf") or not args.bool("resume_only_model") \
            or not args.str("resume_from_checkpoint") or args.bool("ignore_data_skip") or args.bool("streaming"):
        return
    found = re.search(r"checkpoint-(\d+)", args.str("resume_from_checkpoint").rstrip("/").rsplit("/", 1)[-1])
    step = f"step {found.group(1)}" if found else "its global step"
    warn("resume-only-model-step", f"resume_only_model without ignore_data_skip still restores the checkpoint's "
         f"trainer state: this run starts at {step} and skips that many steps of its data, and if that is at or past "
         "this run's total steps it ends at once without training", "resume_only_model",
         hint="ignore_data_skip: true (start at step 0 on the new data with the checkpoint's weights), or "
         "resume_only_model: false to continue the interrupted run itself")


ADAPTER_SETUP_RULES = [longlora, flash_ckpt_fsdp, new_tokens_frozen, resume_only_model_step]
