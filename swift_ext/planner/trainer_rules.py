"""Engine swift: what the transformers Trainer (and the kernels under it) refuses about the precision, quantization
and attention kernel a recipe asks for, once the model is loaded -- minutes into the job, after the queue.

- fp16-full: full-parameter training in float16 without DeepSpeed/FSDP. ms-swift turns torch_dtype float16 into
  fp16 mixed precision and leaves full-parameter weights in float16 (it upcasts only adapter weights), so the
  Trainer's GradScaler finds float16 gradients at the first optimizer step.
- quantized-training: transformers' Trainer refuses a quantized model with nothing but its own weights to train
  (tuner_type full) and, for any tuner, a quantization transformers cannot train through (FP8).
- flash-attn-gpu: FlashAttention (ms-swift's attn_impl flash_attn, and what packing / padding_free need) has no
  kernel below compute capability 8.0.
- fsdp-wrap-qwen3_5: FSDP's transformer-based auto wrap of Qwen3.5/3.6 on transformers 5.2, whose _no_split_modules
  name a class the model lacks.

Registered with warn_rules.ENGINE_RULES: each rule returns at once for engine megatron.
"""

from __future__ import annotations

import importlib.metadata

from swift_ext.msswift.deepspeed_rules import FSDP_PRESETS, _json_config
from swift_ext.planner.model_shape import ModelShape
from swift_ext.spec.gpus import GPUS
from swift_ext.spec.support import resolve_versions, version_gaps

FLOAT16_NAMES = ("float16", "half")  # swift/utils/hf_config.py HfConfigFactory.to_torch_dtype: getattr(torch, name)


def fp16_full(recipe, args, shape: ModelShape, lay, err, warn):
    # swift/arguments/base_args/model_args.py ModelArguments._init_mixed_precision: torch_dtype float16 sets fp16
    # (unless stated). swift/pipelines/train/tuner.py TunerMixin.prepare_model converts trainable float16
    # parameters to float32 only on the adapter branch ("fix bug: Attempting to unscale FP16 gradients"); full
    # training keeps them float16. transformers' Trainer then steps through accelerate's torch GradScaler, whose
    # unscale_ (torch/amp/grad_scaler.py GradScaler._unscale_grads_, allow_fp16=False) raises "Attempting to
    # unscale FP16 gradients." at the first step. DeepSpeed keeps fp32 master weights itself, and FSDP's
    # ShardedGradScaler allows float16 gradients: neither fails.
    if recipe.engine != "swift" or (args.str("tuner_type") or "lora") != "full":
        return
    dtype = (args.str("torch_dtype") or "").lower().replace("torch.", "")
    if dtype not in FLOAT16_NAMES:
        return  # unset: ms-swift reads config.json's dtype (bfloat16 for the current releases), not judged here
    if args.has("fp16") and not args.bool("fp16"):
        return  # no GradScaler: plain float16 training (or bf16 autocast) is not refused
    if args.str("deepspeed") or args.str("fsdp"):
        return
    err("fp16-full", f"tuner_type full with torch_dtype {args.str('torch_dtype')}: the weights stay float16, and fp16 "
        "mixed precision's GradScaler refuses their gradients at the first optimizer step (\"Attempting to unscale "
        "FP16 gradients.\"; ms-swift upcasts trainable weights to float32 only for adapters)", "torch_dtype",
        hint="torch_dtype: bfloat16 on an Ampere-or-newer GPU; on a V100/T4 torch_dtype float32 (fp16 autocast "
             "over float32 weights), or deepspeed: zero2 (fp32 master weights)")


# ms-swift model types of Gemma 2 and Gemma 3 (swift/model/constant.py), the releases published in bfloat16 whose
# activations the float16 report below saw overflow.
GEMMA_FP16_TYPES = ("gemma2", "gemma3_text", "gemma3_vision")


def fp16_gemma(recipe, args, shape: ModelShape, lay, err, warn):
    # Gemma 2/3 are published in bfloat16, and their residual stream grows past float16's range; transformers keeps
    # the RMSNorm in float32 but casts back to the run's dtype (models/gemma3/modeling_gemma3.py Gemma3RMSNorm), so a
    # float16 run turns the overflow into inf/NaN logits: trl#3236 (gemma-3-12b-it, DPO with LoRA, fp16: loss 0,
    # grad_norm 0, rewards nan from the first logs; full precision trained). Report-only: a warning.
    from swift_ext.msswift.model_table import model_meta

    if recipe.engine != "swift":
        return
    dtype = (args.str("torch_dtype") or "").lower().replace("torch.", "")
    if dtype not in FLOAT16_NAMES and not args.bool("fp16"):
        return
    model_type = args.str("model_type") or (model_meta(args.str("model")) or {}).get("model_type")
    if model_type not in GEMMA_FP16_TYPES:
        return
    key = "torch_dtype" if dtype in FLOAT16_NAMES else "fp16"
    warn("fp16-gemma", f"{key} float16 on {args.str('model')} ({model_type}): Gemma 2/3 are published in bfloat16 and "
         "their activations overflow float16, and a report saw every step log loss 0, grad_norm 0 and NaN rewards "
         "(huggingface/trl#3236: gemma-3-12b-it, DPO with LoRA; full precision trained)", key,
         hint="torch_dtype: bfloat16 on an Ampere-or-newer GPU, else float32")


# transformers quantizers whose is_trainable is True (quantizers/quantizer_*.py): a full-parameter run on them is
# still refused ("purely quantized"), adapters are not. FineGrainedFP8 (quant_method fp8) says False.
_TRAINABLE_QUANT = ("bnb", "bitsandbytes", "hqq", "eetq", "quanto", "awq", "gptq", "gptq_v2")
# Checkpoint formats told from the model id when no config.json says (the bundled presets share the base model's
# shape across its -FP8 / -AWQ / -GPTQ releases).
_NAME_FORMATS = (("fp8", "fp8"), ("awq", "awq"), ("gptq", "gptq"), ("bnb-4bit", "bitsandbytes"))
# OpenAI's own gpt-oss releases store the experts in MXFP4 (config.json quantization_config quant_method mxfp4; mcore-
# bridge bridge/gpt_bridge.py reads their gate_up_proj_blocks / _scales): told from the id when no config.json is read.
_MXFP4_RELEASES = ("openai/gpt-oss-20b", "openai/gpt-oss-120b", "openai-mirror/gpt-oss-20b", "openai-mirror/gpt-oss-120b")
# transformers' QuantizationConfig class behind ms-swift's quant_method (swift/arguments/base_args/quant_args.py
# QuantizeArguments.get_quantization_config) and behind a checkpoint's quant_method (utils/quantization_config.py
# QuantizationMethod); a format missing here is not judged.
_QUANT_CONFIG_CLASS = {"bnb": "BitsAndBytesConfig", "bitsandbytes": "BitsAndBytesConfig", "hqq": "HqqConfig",
                       "eetq": "EetqConfig", "quanto": "QuantoConfig", "fp8": "FineGrainedFP8Config",
                       "mxfp4": "Mxfp4Config", "awq": "AwqConfig", "gptq": "GPTQConfig",
                       "compressed-tensors": "CompressedTensorsConfig", "modelopt": "ModelOptConfig"}
# transformers quantizers/quantizer_finegrained_fp8.py FineGrainedFp8HfQuantizer.validate_environment: a GPU below
# 8.9 (no FP8 GEMM) loads an FP8 checkpoint dequantized to bf16 (the quantization config is then removed).
FP8_MIN_CAPABILITY = (8, 9)


def _stored_format(args, shape) -> str:
    """The checkpoint's own quantization: config.json's quant_method, else the model id's -FP8/-AWQ/-GPTQ tag."""
    # A model whose config.json was not found stands in as layout._UnknownShape (not a ModelShape): the id decides.
    stored = shape.checkpoint_quant if isinstance(shape, ModelShape) else ""
    if stored:
        return stored
    if isinstance(shape, ModelShape) and not shape.origin.startswith("bundled config"):
        return ""  # the model's own config.json was read and names no quantization (e.g. a dequantized "-FP8" copy)
    name = (args.str("model") or "").lower()
    if name in _MXFP4_RELEASES:
        return "mxfp4"
    return next((fmt for tag, fmt in _NAME_FORMATS if tag in name.rsplit("/", 1)[-1]), "")


def _fp8_untrainable(recipe, err, warn, key: str, what: str, hint: str) -> None:
    """transformers quantizer_finegrained_fp8.py validate_environment: FP8 weights stay FP8 (untrainable) from compute
    capability 8.9; below it they load dequantized to bf16 and train. Refused on a named FP8-capable GPU, said when
    none is named."""
    gpu = recipe.launch.gpu
    cc = GPUS[gpu].compute_capability if gpu in GPUS else None
    if cc is None:
        warn("quantized-training", f"{what} on an FP8-capable GPU (sm89+); launch.gpu is not named (below sm89 the "
             "model loads dequantized and trains)", key, hint=hint)
    elif cc >= FP8_MIN_CAPABILITY:
        err("quantized-training", f"{what} (on {gpu}, FP8-capable)", key, hint=hint)


def _kernels_viable() -> bool:
    """transformers utils/import_utils.py is_kernels_available: the `kernels` package in [0.17.0, 0.18.0) here."""
    try:
        found = tuple(int(p) for p in importlib.metadata.version("kernels").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return (0, 17) <= found < (0, 18)


def _mxfp4_untrainable(recipe, err, warn, model: str) -> None:
    # transformers quantizers/quantizer_mxfp4.py Mxfp4HfQuantizer.validate_environment keeps a pre-quantized MXFP4
    # checkpoint MXFP4 when the GPU is compute capability 7.5+, triton >= 3.4 and `kernels` (0.17.x) import; else it
    # dequantizes to bf16. Kept MXFP4, is_trainable is False and trainer_utils.py validate_quantization_for_training
    # refuses the model at Trainer.__init__, adapter or not. ms-swift 4.6 passes no Mxfp4Config(dequantize=True).
    gpu = recipe.launch.gpu
    cc = GPUS[gpu].compute_capability if gpu in GPUS else None
    what = (f"{model} stores its experts in MXFP4: transformers keeps them MXFP4 where `kernels` 0.17.x and triton "
            ">= 3.4 are installed on a GPU of compute capability 7.5+, and the Trainer then refuses the model "
            "(\"quantized with mxfp4 but that quantization method do not support training\"); elsewhere it "
            "dequantizes them to bf16 and trains")
    hint = "keep `kernels` out of the training environment (bf16 dequantization), or train a BF16 release"
    # Without a viable `kernels` here nothing is said: ms-swift's own gpt-oss examples train in the usual
    # environment, where the quantizer dequantizes (a warning there would be noise on working setups). With one here
    # it is said, not refused: the package set that decides is the training machine's, which plan does not see (the
    # machine that plans is not the one that trains; the same as lora-param-wrapper's _refuse_or_say).
    if cc is not None and cc >= (7, 5) and _kernels_viable():
        warn("quantized-training", f"{what} -- `kernels` {importlib.metadata.version('kernels')} is installed on "
             "this planning machine; whether the training machine has it decides", "model", hint=hint)


def quantized_training(recipe, args, shape: ModelShape, lay, err, warn):
    # transformers trainer_utils.py validate_quantization_for_training, called by Trainer.__init__ (every ms-swift
    # trainer subclasses it): a model whose hf_quantizer is set and that is no PeftModel raises "You cannot perform
    # fine-tuning on purely quantized models"; a quantizer whose is_trainable is False raises "... quantized with
    # fp8 but that quantization method do not support training" whatever is attached. ms-swift builds the
    # quantization config from quant_method (swift/arguments/base_args/quant_args.py
    # QuantizeArguments.get_quantization_config: bnb, hqq, eetq, quanto, fp8 -> FineGrainedFP8Config) and never
    # dequantizes a pre-quantized checkpoint (AWQ/GPTQ/FP8 load as their config.json says).
    if recipe.engine != "swift":
        return
    full = (args.str("tuner_type") or "lora") == "full"
    method = (args.str("quant_method") or "").lower()
    if method == "fp8":
        # quantizer_finegrained_fp8.py validate_environment: below compute capability 8.9 transformers dequantizes to
        # bf16 (dequantize = True), and the run trains an unquantized model
        _fp8_untrainable(recipe, err, warn, "quant_method", "quant_method fp8 loads the model through transformers' "
                         "FineGrainedFP8 quantizer, which cannot be trained: the Trainer refuses it (\"quantized with "
                         "fp8 but that quantization method do not support training\") whatever the tuner",
                         "drop quant_method (train in bf16), or quant_method: bnb with quant_bits 4 for QLoRA")
        return
    if full and method in _TRAINABLE_QUANT:
        err("quantized-training", f"tuner_type full on a model quantized at load (quant_method {method}): the "
            "Trainer refuses a quantized model with no adapter (\"You cannot perform fine-tuning on purely quantized "
            "models\")", "tuner_type", hint="tuner_type: lora (QLoRA), or drop quant_method/quant_bits to train "
            "every weight")
        return
    stored = _stored_format(args, shape)
    if method:
        # transformers quantizers/auto.py get_hf_quantizer -> AutoHfQuantizer.merge_quantization_configs: a
        # pre-quantized checkpoint and a from_pretrained quantization_config of another class raise "The model is
        # quantized with Mxfp4Config but you are passing a BitsAndBytesConfig config." before any weight loads
        # (ms-swift passes quant_method's config as quantization_config: ModelArguments.get_model_kwargs).
        ours, theirs = _QUANT_CONFIG_CLASS.get(method), _QUANT_CONFIG_CLASS.get(stored)
        if ours and theirs and ours != theirs:
            err("quantized-training", f"quant_method {method} on {args.str('model')}, a checkpoint already quantized "
                f"({stored}): transformers refuses a {ours} over a {theirs} checkpoint at load (\"The model is "
                f"quantized with {theirs} but you are passing a {ours} config.\")", "quant_method",
                hint="drop quant_method (LoRA over the checkpoint as it loads), or quantize the unquantized (BF16) "
                "release of the model")
        return  # an adapter over a trainable quantization: QLoRA
    if not stored:
        return
    model = args.str("model")
    if stored == "mxfp4":
        _mxfp4_untrainable(recipe, err, warn, model)
        return
    if stored == "fp8":
        _fp8_untrainable(recipe, err, warn, "model", f"{model} is an FP8 checkpoint: transformers loads it "
                         "FP8-quantized, and the Trainer refuses FP8 (\"quantized with fp8 but that quantization "
                         f"method do not support training\") with tuner_type {args.str('tuner_type') or 'lora'}",
                         "train the BF16 release of the model (the same id without -FP8)")
        return
    if full and stored in _TRAINABLE_QUANT:
        err("quantized-training", f"tuner_type full on {model}, a {stored.upper()}-quantized checkpoint: the Trainer "
            "refuses a quantized model with no adapter (\"You cannot perform fine-tuning on purely quantized "
            "models\")", "tuner_type",
            hint="tuner_type: lora over the quantized checkpoint, or full training on the unquantized release")


# flash-attn csrc/flash_attn/flash_api.cpp mha_fwd / mha_varlen_fwd: TORCH_CHECK(is_sm8x || is_sm90, "FlashAttention
# only supports Ampere GPUs or newer."). FlashAttention 3 is Hopper-first and 4 Blackwell/Hopper: none runs below 8.0.
FLASH_MIN_CAPABILITY = (8, 0)
FLASH_MAX_HEAD_DIM = 256
_FLASH_IMPLS = ("flash_attn", "flash_attention_2", "flash_attention_3", "flash_attention_4")
# flash-attn-4 (4.0.0b40) flash_attn/cute/interface.py _flash_attn_bwd asserts compute capability 9.x-12.x
# ("Unsupported compute capability. Supported: 9.x, 10.x, 11.x, 12.x"); its forward runs on 8.x, so training stops at
# the first backward. transformers' cuda_min_major_version 9 (modeling_utils.py _flash_attn_can_dispatch) is read only
# when the package check fails, i.e. never with flash-attn-4 installed. 2 and 3 take Ampere.
FLASH_IMPL_MIN_CAPABILITY = {"flash_attention_4": (9, 0)}


def flash_attn_gpu(recipe, args, shape: ModelShape, lay, err, warn):
    # ms-swift passes attn_impl to from_pretrained (swift/model/register.py: flash_attn -> flash_attention_2);
    # transformers does not test the GPU generation, the first forward's flash-attn kernel does.
    if recipe.engine != "swift":
        return
    impl = args.str("attn_impl")
    if impl not in _FLASH_IMPLS:
        return
    # flash-attn csrc/flash_attn/flash_api.cpp: "FlashAttention forward only supports head dimension at most 256"
    # (FlashAttention 3's hopper/ build and 4's cute interface stop at 256 too): Gemma 4's global-attention layers are
    # 512 wide (config.json global_head_dim), and transformers' Gemma4 class accepts flash_attention_2 at load.
    if isinstance(shape, ModelShape) and max(shape.head_dim, shape.global_head_dim) > FLASH_MAX_HEAD_DIM:
        width = max(shape.head_dim, shape.global_head_dim)
        err("flash-attn-head-dim", f"attn_impl {impl} on {shape.name}, whose attention heads are {width} wide: "
            f"FlashAttention stops at {FLASH_MAX_HEAD_DIM} (\"FlashAttention only supports head dimensions up to "
            "256\") and the first forward through those layers fails", "attn_impl",
            hint="attn_impl: sdpa (or eager), with packing: false and padding_free: false (they need flash "
                 "attention)")
        return
    gpu = recipe.launch.gpu
    if gpu not in GPUS:
        return
    cc = GPUS[gpu].compute_capability
    floor = FLASH_IMPL_MIN_CAPABILITY.get(impl)
    if floor and FLASH_MIN_CAPABILITY <= cc < floor:
        err("flash-attn-gpu", f"attn_impl {impl} on {gpu} (compute capability {cc[0]}.{cc[1]}): FlashAttention 4's "
            f"backward runs from compute capability {floor[0]}.x only (flash-attn-4 _flash_attn_bwd: \"Unsupported "
            "compute capability. Supported: 9.x, 10.x, 11.x, 12.x\"), so the first training step fails", "attn_impl",
            hint="attn_impl: flash_attn (FlashAttention 2) on this GPU")
        return
    if cc >= FLASH_MIN_CAPABILITY:
        return
    packed = args.bool("packing") or args.bool("padding_free")
    err("flash-attn-gpu", f"attn_impl {impl} on {gpu} (compute capability {cc[0]}.{cc[1]}): FlashAttention has no "
        "kernel below 8.0 and the first forward fails (\"FlashAttention only supports Ampere GPUs or newer.\")",
        "attn_impl", hint=("sdpa or eager, which also means packing: false and padding_free: false (they need flash "
                           "attention)" if packed else "attn_impl: sdpa (or eager)"))



def fsdp_reports(recipe, args, shape: ModelShape, lay, err, warn):
    # Combinations ms-swift 4.6 lets through to FSDP that public reports saw fail after start-up; ms-swift neither
    # documents nor refuses them (sft_args.py SftArguments._init_fsdp / _check_fsdp2_compatibility check neither).
    # Report-only evidence: warnings.
    if recipe.engine != "swift" or not args.str("fsdp"):
        return
    sp = args.int("sequence_parallel_size", 1) or 1
    if sp > 1:
        warn("fsdp-reports", f"fsdp with sequence_parallel_size {sp}: ms-swift documents no FSDP + Ulysses/ring "
             "layout, and a report saw the first step die with \"CUDA error: an illegal memory access\" "
             "(ms-swift#9895, FSDP QLoRA with sequence_parallel_size 2 on 2 GPUs)", "sequence_parallel_size",
             hint="deepspeed (zero2/zero3) with sequence_parallel_size, or FSDP without it")
    if (args.str("tuner_type") or "lora") != "full" and args.list("modules_to_save"):
        warn("fsdp-reports", f"fsdp with LoRA and modules_to_save {args.list('modules_to_save')}: a report saw "
             "checkpoint saving hang under FSDP full_shard once modules_to_save was set (ms-swift#9313: training "
             "steps ran, the checkpoint directory stayed partial)", "modules_to_save",
             hint="deepspeed instead of fsdp, or train those modules with LoRA (target_modules) instead")


def fsdp_wrap_qwen3_5(recipe, args, shape: ModelShape, lay, err, warn):
    # ms-swift 4.6 SftArguments._init_fsdp hands the fsdp config's "fsdp" / "fsdp_config" to transformers' Trainer,
    # whose accelerate FSDP plugin (FSDP1 set_auto_wrap_policy, FSDP2 fsdp2_prepare_auto_wrap_policy) looks up every
    # class of model._no_split_modules under TRANSFORMER_BASED_WRAP unless transformer_layer_cls_to_wrap names them,
    # raising "Could not find the transformer layer class X in the model." when one is missing. transformers 5.2.0's
    # Qwen3.5 lists one that does not exist (support table fsdp-wrap-qwen3_5), at Trainer set-up.
    fsdp = args.str("fsdp")
    if recipe.engine != "swift" or not fsdp or args.str("deepspeed") or not isinstance(shape, ModelShape):
        return
    if not (shape.model_type or "").startswith("qwen3_5"):
        return
    config = _json_config(fsdp, FSDP_PRESETS)
    inner = config.get("fsdp_config") if isinstance(config, dict) else None
    if not isinstance(inner, dict) or "auto_wrap" not in str(config.get("fsdp", "")):
        return  # unreadable here, or no auto wrap asked for
    # transformers 5.2.0 training_args.py TrainingArguments._process_fsdp_args picks the policy from the "auto_wrap"
    # option alone: SIZE_BASED_WRAP when min_num_params > 0, else TRANSFORMER_BASED_WRAP (with
    # transformer_layer_cls_to_wrap when named); the fsdp_config's own auto_wrap_policy key is not read there.
    named = inner.get("transformer_layer_cls_to_wrap", inner.get("fsdp_transformer_layer_cls_to_wrap"))
    try:
        min_params = int(inner.get("min_num_params", inner.get("fsdp_min_num_params", 0)) or 0)
    except (TypeError, ValueError):
        return  # transformers' own parsing decides
    if named or min_params > 0:
        return
    gaps = version_gaps("fsdp-wrap-qwen3_5", resolve_versions(recipe.env))
    if not gaps:
        return
    err("fsdp-wrap-qwen3_5", f"fsdp {fsdp} wraps {shape.name} by its _no_split_modules, which on {'; '.join(gaps)} "
        "name Qwen3_5TextDecoderLayer, a class the model does not have: accelerate stops the Trainer's set-up with "
        "\"Could not find the transformer layer class Qwen3_5TextDecoderLayer in the model.\"", "fsdp",
        hint="transformers >= 5.3 (declare it with SWIFT_EXT_TARGET_VERSIONS transformers=...), deepspeed instead of "
        "fsdp, or transformer_layer_cls_to_wrap naming the decoder layer (Qwen3_5DecoderLayer / "
        "Qwen3_5MoeDecoderLayer) in the fsdp config")


def liger_embedding(recipe, args, shape: ModelShape, lay, err, warn):
    # transformers' Trainer applies Liger to the model instance (trainer.py: apply_liger_kernel, since ms-swift 4.6
    # leaves it to transformers >= 4.45: swift/pipelines/train/tuner.py TunerMixin.prepare_model), replacing the
    # CausalLM forward that ms-swift's embedding head hooks (swift/model/patcher.py patch_output_normalizer turns
    # lm_head into the identity and rebuilds the output as {'last_hidden_state': ...}). Report-only: a warning.
    if recipe.engine != "swift" or not args.bool("use_liger_kernel") or args.str("task_type") != "embedding":
        return
    warn("liger-embedding", "use_liger_kernel with task_type embedding: Liger's fused forward replaces the one "
         "ms-swift's embedding output hook reads, and reports saw training stop with KeyError: 'last_hidden_state' "
         "(ms-swift#5219: Qwen3-Embedding full training with infonce; without Liger it trained)", "use_liger_kernel",
         hint="use_liger_kernel: false for embedding training")


def liger_lm_head_adapter(recipe, args, shape: ModelShape, lay, err, warn):
    # The Liger losses of GRPO and GKD hand the output head's weight tensor to a fused linear+loss kernel instead of
    # calling the head (swift/rlhf_trainers/grpo_trainer.py GRPOTrainer.compute_liger_loss:
    # lin_weight=unwrapped_model.lm_head.weight; gkd_trainer.py GKDTrainer._compute_liger_loss:
    # student_weight=student_head.weight). A LoRA-wrapped head answers .weight with its frozen base weight (peft
    # tuners/tuners_utils.py BaseTunerLayer.weight -> get_base_layer().weight), so the head's lora_A/lora_B never
    # enter the loss and train nothing; ms-swift's _prepare_liger_loss checks nothing about the adapter. Silent: a
    # warning. (modules_to_save lm_head is fine: ModulesToSaveWrapper forwards .weight to the trained copy.)
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd") \
            or not args.bool("use_liger_kernel") or (args.str("tuner_type") or "lora") not in ("lora", "lora_llm"):
        return
    heads = [m for m in args.list("target_modules") if str(m).split(".")[-1] == "lm_head"]
    if not heads:
        return
    warn("liger-lm-head-adapter", f"use_liger_kernel with {args.str('rlhf_type').upper()} and LoRA on the output head "
         f"(target_modules {heads}): the Liger loss multiplies the hidden states by lm_head.weight itself, which for a "
         "LoRA-wrapped head is the frozen base weight, so the head's adapter gets no gradient and trains nothing "
         "(huggingface/trl#4612; ms-swift's compute_liger_loss has the same line)", "use_liger_kernel",
         hint="drop lm_head from target_modules (modules_to_save: [lm_head] trains the head fully), or "
              "use_liger_kernel: false")


def llamapro_blocks(recipe, args, shape: ModelShape, lay, err, warn):
    # swift/tuners/llamapro.py LLaMAPro.prepare_model: assert num_hidden_layers % num_new_blocks == 0 ("Model layers N
    # should be divided by M"), num_new_blocks from llamapro_num_new_blocks (default 4,
    # swift/arguments/tuner_args.py) through swift/pipelines/train/tuner.py prepare_adapter.
    if recipe.engine != "swift" or args.str("tuner_type") != "llamapro" or not isinstance(shape, ModelShape):
        return
    blocks = args.int("llamapro_num_new_blocks") or 4
    if blocks < 1:
        return  # not a block count: llamapro's own arithmetic fails first, and the value is not ours to fix here
    if shape.num_layers and shape.num_layers % blocks:
        fits = [b for b in range(blocks, 0, -1) if shape.num_layers % b == 0][0]
        err("llamapro-blocks", f"tuner_type llamapro adds llamapro_num_new_blocks {blocks} blocks, which must divide "
            f"{shape.name}'s {shape.num_layers} layers (ms-swift asserts it when it builds the adapter)",
            "llamapro_num_new_blocks", hint=f"llamapro_num_new_blocks: {fits}")

def rollout_merge_quantized(recipe, args, shape: ModelShape, lay, err, warn):
    # GRPO/GKD with vLLM syncs a LoRA policy by merging the adapter into the model
    # (rlhf_trainers/rollout_mixin.py RolloutTrainerMixin._move_model_to_vllm: self.model.merge_adapter(); with
    # vllm_enable_lora the first sync still merges). PEFT's BaseTuner.merge_adapter calls _check_merge_allowed, and
    # LoraModel._check_merge_allowed raises "Cannot merge LORA layers when the model is gptq quantized" when
    # transformers' quantizer marked the model GPTQ (quantizers/base.py sets model.quantization_method): the run
    # stops at the first weight sync. bitsandbytes merges (dequantized), and ms-swift loads it into vLLM as such.
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd") \
            or not args.bool("use_vllm") or (args.str("tuner_type") or "lora") != "lora" or args.str("quant_method"):
        return
    if _stored_format(args, shape) != "gptq":
        return
    err("rollout-merge-quantized", f"{args.str('model')} is a GPTQ checkpoint: a LoRA policy reaches vLLM by merging "
        "the adapter into the model at each weight sync, and PEFT refuses to merge into GPTQ weights (\"Cannot merge "
        "LORA layers when the model is gptq quantized\"), at the first sync", "model",
        hint="train on the unquantized release (QLoRA: quant_method bnb with quant_bits 4), or use_vllm: false")


TRAINER_RULES = [fp16_full, fp16_gemma, quantized_training, rollout_merge_quantized, flash_attn_gpu, fsdp_reports,
                 fsdp_wrap_qwen3_5, liger_embedding, liger_lm_head_adapter, llamapro_blocks]
