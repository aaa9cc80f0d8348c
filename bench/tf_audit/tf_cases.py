"""The start-up checks of the installed transformers 5.19 and accelerate 1.15 that ms-swift 4.6.0's transformers
engine (`swift sft / pt / rlhf`) reaches, each as (id, file:line, condition, flag, base working fixture, overrides).
The flag is the one a refusal must name (a|b: either). Paths are relative to site-packages. ms-swift fills some
values before transformers sees them (eval_strategy from save_strategy, eval_steps from save_steps, fp16/bf16 from
torch_dtype, prefetch_factor 2 when workers > 0, eval_strategy 'no' without a validation split); the overrides
account for that. Checks no recipe value reaches are in NOT_REACHABLE with the reason; tf_checks.tsv lists both."""

from __future__ import annotations

SFT = "ms-swift-docs-qwen3-bp-swift-full-8b-zero3-packing.yaml"  # Qwen3-8B full, ZeRO-3, packing, flash_attn, 4 GPUs
DPO = "ms-swift-example-swift-dpo-lora-1gpu.yaml"

TA = "transformers/training_args.py:"
TR = "transformers/trainer.py:"
EVAL = ("args.split_dataset_ratio=0.01",)  # a validation split, so ms-swift keeps eval_strategy
FSDP = ("args.deepspeed=null", "args.save_only_model=false")  # FSDP2 instead of ZeRO-3, no sharded-save conflict


def fsdp(body: str) -> str:
    """args.fsdp as JSON text (what SftArguments._init_fsdp reads through json_parse_to_dict)."""
    return "args.fsdp='{" + body + "}'"


CASES = [
    ("logging-steps-zero", TA + "1701", "logging_strategy steps with logging_steps 0", "logging_steps", SFT,
     ("args.logging_steps=0",)),
    ("logging-steps-frac", TA + "1705", "logging_steps > 1 and not an integer", "logging_steps", SFT,
     ("args.logging_steps=2.5",)),
    ("eval-steps-frac", TA + "1709", "eval_steps > 1 and not an integer", "eval_steps", SFT,
     (*EVAL, "args.eval_steps=2.5")),
    ("save-steps-frac", TA + "1713", "save_steps > 1 and not an integer", "save_steps", SFT,
     ("args.save_steps=2.5",)),
    ("best-strategy-mismatch", TA + "1719", "load_best_model_at_end with eval_strategy != save_strategy",
     "load_best_model_at_end|eval_strategy|save_strategy", DPO,
     (*EVAL, "args.load_best_model_at_end=true", "args.eval_strategy=epoch", "args.save_strategy=steps")),
    ("best-steps-ratio-mix", TA + "1726", "load_best_model_at_end mixing ratio and absolute save/eval steps",
     "load_best_model_at_end|eval_steps|save_steps", DPO,
     (*EVAL, "args.load_best_model_at_end=true", "args.save_steps=100", "args.eval_steps=0.1")),
    ("best-steps-multiple", TA + "1739", "load_best_model_at_end with save_steps not a multiple of eval_steps",
     "load_best_model_at_end|eval_steps|save_steps", DPO,
     (*EVAL, "args.load_best_model_at_end=true", "args.save_steps=100", "args.eval_steps=30")),
    ("fp16-bf16", TA + "1753", "fp16 and bf16 both true", "fp16|bf16", SFT, ("args.fp16=true", "args.bf16=true")),
    ("full-eval-both", TA + "1756", "fp16_full_eval and bf16_full_eval both true", "fp16_full_eval|bf16_full_eval",
     SFT, ("args.fp16_full_eval=true", "args.bf16_full_eval=true")),
    ("plateau-no-eval", TA + "1760", "lr_scheduler_type reduce_lr_on_plateau with no evaluation",
     "lr_scheduler_type|eval_strategy", SFT, ("args.lr_scheduler_type=reduce_lr_on_plateau",)),
    ("greedy-no-eval", TA + "1766", "lr_scheduler_type greedy with no evaluation", "lr_scheduler_type|eval_strategy",
     SFT, ("args.lr_scheduler_type=greedy",)),
    ("warmup-negative", TA + "1769", "warmup_steps < 0", "warmup_steps", SFT,
     ("args.warmup_ratio=0", "args.warmup_steps=-1")),
    ("prefetch-no-workers", TA + "1772", "dataloader_prefetch_factor with dataloader_num_workers 0",
     "dataloader_prefetch_factor|dataloader_num_workers", SFT,
     ("args.dataloader_num_workers=0", "args.dataloader_prefetch_factor=4")),
    ("empty-cache-steps", TA + "1695", "torch_empty_cache_steps not a positive integer", "torch_empty_cache_steps",
     SFT, ("args.torch_empty_cache_steps=0",)),
    ("eval-no-steps", TA + "1548", "eval_strategy steps with eval_steps 0 and logging_steps 0",
     "eval_steps|logging_steps", SFT, (*EVAL, "args.eval_steps=0", "args.logging_steps=0")),
    ("fsdp-unknown-option", TA + "2896", "unknown word in the FSDP config's fsdp option string", "fsdp", SFT,
     (*FSDP, fsdp('"fsdp": "full_shard bogus", "fsdp_config": {"fsdp_version": 2}'))),
    ("fsdp2-hybrid", TA + "2885", "FSDP2 with a sharding strategy other than full_shard/shard_grad_op", "fsdp", SFT,
     (*FSDP, fsdp('"fsdp": "hybrid_shard auto_wrap", "fsdp_config": {"fsdp_version": 2}'))),
    ("fsdp-wrap-policy", TA + "2793", "fsdp_config auto_wrap_policy outside accelerate's list", "fsdp", SFT,
     (*FSDP, fsdp('"fsdp": "full_shard auto_wrap", "fsdp_config": {"fsdp_version": 2, "auto_wrap_policy": '
                  '"LAYER_WRAP"}'))),
    ("best-save-only-model-ds", TR + "894", "save_only_model + load_best_model_at_end under DeepSpeed",
     "save_only_model|load_best_model_at_end", SFT, (*EVAL, "args.save_only_model=true",
                                                     "args.load_best_model_at_end=true")),
    ("auto-batch-zero3", TR + "902", "auto_find_batch_size under ZeRO-3", "auto_find_batch_size", SFT,
     ("args.auto_find_batch_size=true",)),
    ("scheduler-unknown", TA + "1530", "lr_scheduler_type not a SchedulerType", "lr_scheduler_type", SFT,
     ("args.lr_scheduler_type=cosine_annealing",)),
    ("optim-unknown", TA + "1531", "optim not an OptimizerNames", "optim", SFT, ("args.optim=adamw_hf",)),
    ("tf32-pre-ampere", TA + "1650", "tf32 true without an Ampere GPU", "tf32", DPO,
     ("launch.gpu=V100", "args.torch_dtype=float16", "args.tf32=true")),
    ("ds-value-mismatch", "transformers/integrations/deepspeed.py:257",
     "a DeepSpeed config value (not auto) differs from the TrainingArguments one", "deepspeed", SFT,
     ('args.deepspeed={"train_micro_batch_size_per_gpu": 3, "zero_optimization": {"stage": 3}}',)),
]

NOT_REACHABLE = [
    (TA + "1615", "accelerator_config an uninstantiated class", "a Python object, not a recipe value"),
    (TA + "1750", "bf16 without bf16 support on the GPU", "is_torch_bf16_gpu_available counts emulation (V100/T4 "
     "pass): plan warns (bf16-gpu)"),
    (TA + "1762", "reduce_lr_on_plateau without torch", "installed packages"),
    (TA + "1816", "accelerate not installed", "installed packages"),
    (TA + "1828", "accelerator_config use_configured_state without a configured PartialState",
     "not judged: accelerator_config is a JSON file plan does not open (also trainer.py:815 num_steps beside "
     "gradient_accumulation_steps > 1, trainer_pt_utils.py:1557 unknown keys)"),
    (TA + "1834", "use_configured_state state not DeepSpeed", "as 1828"),
    (TA + "2318", "set_save/set_evaluate/set_logging with steps 0", "helper methods ms-swift never calls"),
    (TR + "443", "Trainer without model", "ms-swift always passes the model"),
    (TR + "479", "fsdp without distributed training", "not decided here: depends on whether the one-process launch "
     "goes through torchrun (accelerate's distributed type); left to the engine"),
    (TR + "638", "FSDP XLA", "not on CUDA GPUs"),
    (TR + "666", "SageMaker MP with bf16", "launch environment, not a value"),
    (TR + "684", "eval_strategy set without eval_dataset", "ms-swift sets eval_strategy no without a validation set "
     "(sft_args.py __post_init__)"),
    (TR + "689", "save_strategy best / load_best_model_at_end without metric_for_best_model",
     "ms-swift fills metric_for_best_model (sft_args.py _init_metric_for_best_model: loss or rouge-l; GRPO reward)"),
    (TR + "695", "optimizers with optimizer_cls_and_kwargs", "ms-swift's trainer construction, not a value"),
    (TR + "726", "data_collator not callable", "ms-swift's template collator"),
    (TR + "910", "save_only_model with FSDP SHARDED_STATE_DICT", "ms-swift sft_args.py:348 refuses it first "
     "(bench/msswift_audit fsdp-sharded-save-only-model)"),
    (TR + "924", "training without train_dataset", "ms-swift requires a dataset first (sft_args.py:221)"),
    (TR + "1404", "unsupported optim", "TrainingArguments refuses an unknown name first (case optim-unknown); the "
     "rest need optional packages"),
    (TR + "1543", "resume_from_checkpoint true without a checkpoint", "the output directory's files"),
    (TR + "3623", "resume_from_checkpoint path without a checkpoint", "the checkpoint's files on the cluster"),
    ("transformers/integrations/deepspeed.py:222", "auto bucket sizes without hidden_size in config.json",
     "the model's config, not a flag"),
    ("transformers/integrations/deepspeed.py:346", "DeepSpeed autotp with weight conversion", "the model's "
     "checkpoint format"),
    ("transformers/integrations/deepspeed.py:622", "ZeRO inference without stage 3", "inference only"),
    ("transformers modeling_utils.py", "attn_implementation unknown", "not judged: ms-swift passes attn_impl "
     "through; the accepted names include hub kernels (org/repo), so plan refuses none outside packing"),
    ("accelerate", "Accelerator / FSDP plugin checks", "not audited line by line in this pass: reached through "
     "TrainingArguments fsdp / deepspeed options, whose recipe-level conflicts are cases above"),
]
