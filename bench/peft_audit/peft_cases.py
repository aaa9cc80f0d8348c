"""The checks of the installed peft 0.20 and trl 0.29.1 that ms-swift 4.6's transformers engine reaches from recipe
flags at start-up or the first step, each as (id, file:line, condition, flag, base working fixture, overrides); the
flag is the one a refusal must name. Paths are relative to site-packages. prepare_adapter
(swift/pipelines/train/tuner.py) passes only r, target_modules, lora_alpha, lora_dropout, bias (ms-swift's lora_bias),
modules_to_save, use_rslora, use_dora, init_lora_weights (init_weights), target_parameters, lora_dtype and the
adalora_/boft_/vera_/fourier_ flags; checks on other fields are in NOT_REACHABLE with the reason. MISSED lists
reachable checks plan still does not refuse (peft_checks.tsv shows them as missed)."""

from __future__ import annotations

DPO = "ms-swift-example-swift-dpo-lora-1gpu.yaml"  # Qwen2.5-7B LoRA DPO, 1 GPU, peft backend
GKD = "ms-swift-docs-qwen35-bp-swift-gkd-2b-lora-teacher-server.yaml"

L = "peft/tuners/lora/config.py:"
AD = "peft/tuners/adalora/config.py:"
B = "peft/tuners/boft/config.py:"

CASES = [
    ("loftq-no-config", L + "954", "init_lora_weights loftq without loftq_config", "init_weights", DPO,
     ("args.init_weights=loftq",)),
    ("adalora-dora", AD + "75", "AdaLoRA with use_dora", "use_dora", DPO, ("args.tuner_type=adalora",
                                                                           "args.use_dora=true")),
    ("adalora-orth-neg", AD + "105", "AdaLoRA orth_reg_weight < 0", "adalora_orth_reg_weight", DPO,
     ("args.tuner_type=adalora", "args.adalora_orth_reg_weight=-0.1")),
    ("boft-neither", B + "164", "boft_block_size and boft_block_num both 0", "boft_block_size|boft_block_num", DPO,
     ("args.tuner_type=boft", "args.boft_block_size=0")),
    ("boft-both", B + "168", "boft_block_size and boft_block_num both non-zero", "boft_block_size|boft_block_num",
     DPO, ("args.tuner_type=boft", "args.boft_block_num=2")),
    ("bone-import", "swift/pipelines/train/tuner.py:341", "tuner_type bone: from peft import BoneConfig (absent in "
     "peft 0.20)", "tuner_type", DPO, ("args.tuner_type=bone",)),
    ("lora-rank-zero", "peft/tuners/lora/layer.py:236", "r <= 0", "lora_rank", DPO, ("args.lora_rank=0",)),
    ("dpo-loss-weights-len", "trl/trainer/dpo_config.py:308", "loss_weights length != loss_type length",
     "loss_weights", DPO, ("args.loss_weights=[1.0,2.0]",)),
    ("gkd-lmbda", "trl/experimental/gkd/gkd_config.py:108", "lmbda outside [0, 1]", "lmbda", GKD,
     ("args.lmbda=1.5",)),
    ("gkd-beta", "trl/experimental/gkd/gkd_config.py:110", "beta outside [0, 1]", "beta", GKD, ("args.beta=2.0",)),
    ("adalora-schedule", AD + "110", "tinit >= total_step - tfinal", "adalora_tfinal|adalora_tinit", DPO,
     ("args.tuner_type=adalora", "args.max_steps=100", "args.adalora_tfinal=100")),
    ("init-unknown", "peft/tuners/lora/layer.py:338", "init_lora_weights string unknown", "init_weights", DPO,
     ("args.init_weights=nonsense",)),
    ("fourier-n-zero", "peft/tuners/fourierft/layer.py:64", "n_frequency <= 0", "fourier_n_frequency", DPO,
     ("args.tuner_type=fourierft", "args.fourier_n_frequency=0")),
    ("orthogonal-odd-rank", "peft/tuners/lora/layer.py:603", "init_lora_weights orthogonal with an odd r",
     "lora_rank", DPO, ("args.init_weights=orthogonal", "args.lora_rank=7")),
    ("corda-no-preprocess", "peft/tuners/lora/layer.py:515", "init_lora_weights corda without preprocess_corda",
     "init_weights", DPO, ("args.init_weights=corda",)),
    ("target-not-found", "peft/tuners/tuners_utils.py:1005", "no module matches target_modules",
     "target_modules", DPO, ("args.target_modules=[no_such_proj]",)),
]
MISSED: set[str] = set()

NOT_REACHABLE = [
    (L + "929", "velora_config not a VeloraConfig", "prepare_adapter never passes velora_config"),
    (L + "932", "target_parameters a str", "ms-swift's target_parameters is List[str]"),
    (L + "936", "layers_to_transform with a str target_modules", "layers_to_transform never passed"),
    (L + "940", "layers_pattern with a str target_modules", "layers_pattern never passed"),
    (L + "944", "layers_pattern without layers_to_transform", "neither is passed"),
    (L + "947", "use_dora with megatron_config", "megatron_config never passed (Megatron engine builds its own)"),
    (L + "978", "lora_bias with init_lora_weights not True/False", "ms-swift's lora_bias maps to peft's bias"),
    (L + "983", "lora_bias with DoRA", "ms-swift's lora_bias maps to peft's bias"),
    (AD + "78", "AdaLoRA with loftq_config", "loftq_config never passed"),
    (AD + "102", "AdaLoRA total_step None or <= 0", "calculate_max_steps of a non-empty dataset"),
    ("peft/tuners/vera/config.py:156", "VeRA layers_pattern without layers_to_transform", "neither is passed"),
    ("peft/tuners/fourierft/config.py:199", "FourierFT layers_to_transform with str targets", "never passed"),
    ("trl/trainer/grpo_config.py:816", "trl GRPOConfig.__post_init__ checks (num_generations, generation_batch_size, "
     "steps_per_generation, loss_type, epsilon, vllm)", "swift/rlhf_trainers/arguments.py GRPOConfig.__post_init__ "
     "skips HfGRPOConfig.__post_init__; ms-swift's own args_mixin checks (msswift_audit) run instead"),
]
