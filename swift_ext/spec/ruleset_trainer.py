"""The entries of engine swift's transformers-Trainer refusals that the recipe's precision, quantization and
attention kernel decide (planner/trainer_rules.py). spec/ruleset.py joins them with the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import Evidence, RuleInfo, code

TRAINER_RULE_INFO = [
    RuleInfo("fp16-full", "error", "tuner_type full with torch_dtype float16 (fp16 mixed precision, no DeepSpeed/FSDP): "
             "the Trainer's GradScaler refuses the float16 gradients at the first optimizer step",
             (code("torch amp/grad_scaler.py: GradScaler._unscale_grads_ (\"Attempting to unscale FP16 gradients.\", "
                   "allow_fp16=False from unscale_)"),
              code("ms-swift swift/arguments/base_args/model_args.py: ModelArguments._init_mixed_precision "
                   "(torch_dtype float16 -> fp16 unless stated)"),
              code("ms-swift swift/pipelines/train/tuner.py: TunerMixin.prepare_model (trainable float16 parameters "
                   "upcast to float32 on the adapter branch only)"),
              Evidence("report", "modelscope/ms-swift#5718", "full SFT of a float16 copy of a Qwen3 model, "
                       "several ranks, no DeepSpeed: 'Attempting to unscale FP16 gradients' in clip_grad_norm_"),
              Evidence("report", "InternLM/xtuner#161", "full fine-tuning with torch_dtype float16: fails without "
                       "DeepSpeed, runs with it")),
             "engine: swift, tuner_type full, torch_dtype float16 stated, fp16 not stated false, neither deepspeed "
             "(fp32 master weights) nor fsdp (ShardedGradScaler allows float16)"),
    RuleInfo("quantized-training", "error, warning", "the transformers Trainer trains a quantized model only through "
             "an adapter (tuner_type full on quant_method bnb/hqq/eetq/quanto or an AWQ/GPTQ checkpoint is refused) "
             "and never through FP8 (quant_method fp8, or an FP8 checkpoint on an sm89+ GPU, with any tuner); a "
             "quant_method whose transformers config class differs from a pre-quantized checkpoint's (bnb over gpt-oss's "
             "MXFP4, an AWQ/GPTQ/FP8 release) is refused at load; an MXFP4 checkpoint (gpt-oss) is warned on where "
             "transformers may keep it MXFP4, untrainable: `kernels` 0.17.x installed where plan runs and launch.gpu "
             "7.5+ -- a warning, since the training machine's packages decide and plan does not see them "
             "(elsewhere transformers dequantizes it to bf16 and it trains: nothing said)",
             (code("transformers trainer_utils.py: validate_quantization_for_training (called by Trainer.__init__: "
                   "'You cannot perform fine-tuning on purely quantized models'; '... do not support training' when "
                   "the quantizer's is_trainable is False)"),
              code("transformers quantizers/quantizer_finegrained_fp8.py: FineGrainedFp8HfQuantizer.is_trainable "
                   "(False) / validate_environment (dequantize below compute capability 8.9)"),
              code("ms-swift swift/arguments/base_args/quant_args.py: QuantizeArguments.get_quantization_config "
                   "(fp8 -> FineGrainedFP8Config; awq/gptq checkpoints load as their config.json says)"),
              code("transformers quantizers/auto.py: AutoHfQuantizer.merge_quantization_configs (called by "
                   "get_hf_quantizer for a pre-quantized config.json: 'The model is quantized with Mxfp4Config but you "
                   "are passing a BitsAndBytesConfig config.')"),
              code("transformers quantizers/quantizer_mxfp4.py: Mxfp4HfQuantizer.validate_environment (dequantize "
                   "unless compute capability >= 7.5, triton >= 3.4 and kernels are available) / is_trainable (False)"),
              Evidence("report", "axolotl-ai-cloud/axolotl#3530", "gpt-oss-20b QLoRA with bitsandbytes 4-bit over the "
                       "MXFP4 release fails; the maintainer: 'no mxfp4 support in bnb, gpt oss ships native mxfp4'"),
              Evidence("report", "huggingface/transformers#41516", "DeepSeek-V3.1 (FP8 checkpoint) with LoRA: "
                       "'QuantizationMethod.FP8 do not support training' at Trainer.__init__"),
              Evidence("report", "huggingface/transformers#46736", "DeepSeek-V4-Flash (FP8-only release), LoRA via "
                       "get_peft_model, transformers 5.9, 16 x H100: the same refusal")),
             "engine: swift; quant_method fp8 (any tuner); tuner_type full with quant_method bnb/hqq/eetq/quanto, or "
             "a checkpoint whose config.json quantization_config (else its id) says AWQ/GPTQ/bitsandbytes; an FP8 "
             "checkpoint with any tuner on launch.gpu of compute capability 8.9+ (error) or launch.gpu unset "
             "(warning; below 8.9 transformers dequantizes it); quant_method bnb/hqq/eetq/quanto over a checkpoint "
             "quantized in another format (config.json quantization_config; else the id: -FP8/-AWQ/-GPTQ tags, "
             "OpenAI's gpt-oss-20b/120b ids as MXFP4); an MXFP4 checkpoint without quant_method on launch.gpu 7.5+ with "
             "`kernels` >= 0.17, < 0.18 installed where plan runs"),
    RuleInfo("flash-attn-gpu", "error", "attn_impl flash_attn / flash_attention_2/3/4 on a GPU below compute "
             "capability 8.0 (V100): FlashAttention has no kernel there; flash_attention_4 below 9.0 (A100, L40, "
             "RTX 4090): transformers refuses it at load",
             (code("flash-attn csrc/flash_attn/flash_api.cpp: mha_fwd (\"FlashAttention only supports Ampere GPUs or "
                   "newer.\"; public source, not installed here)"),
              code("ms-swift swift/model/utils.py: AttnImpl.update_attn_impl (flash_attn -> flash_attention_2)"),
              code("flash-attn-4 4.0.0b40 flash_attn/cute/interface.py: _flash_attn_bwd (\"Unsupported compute "
                   "capability. Supported: 9.x, 10.x, 11.x, 12.x\"; the forward takes 8.x, the backward does not; "
                   "public wheel, not installed here). transformers' own cuda_min_major_version 9 "
                   "(PreTrainedModel._flash_attn_can_dispatch) is read only where the package check fails, so with "
                   "flash-attn-4 installed the model loads and the first backward fails"),
              Evidence("report", "dhcode-cpp/X-R1#45", "GRPO (TRL, attn_implementation flash_attention_2) on "
                       "Tesla V100: 'FlashAttention only supports Ampere GPUs or newer.' at the first step")),
             "engine: swift, attn_impl one of the flash implementations, launch.gpu below 8.0 (flash_attention_4: "
             "below 9.0)"),
    RuleInfo("fsdp-reports", "warning", "FSDP combinations ms-swift lets through that reports saw fail after start-up: "
             "sequence_parallel_size > 1 (illegal memory access at the first step), LoRA with modules_to_save "
             "(checkpoint saving hangs)",
             (Evidence("report", "modelscope/ms-swift#9895", "accelerate FSDP, QLoRA (bnb 4-bit), "
                       "sequence_parallel_size 2, 2 GPUs: 'CUDA error: an illegal memory access was encountered' in "
                       "the first training_step; SP alone and FSDP alone ran"),
              Evidence("report", "modelscope/ms-swift#9313", "Qwen2.5-Omni LoRA on the LLM self-attention with "
                       "modules_to_save (audio projector / visual merger), FSDP full_shard auto_wrap, 2 GPUs, "
                       "max_steps 1, save_steps 1: checkpoint saving hangs; without modules_to_save it passes"),
              code("ms-swift swift/arguments/sft_args.py: SftArguments._init_fsdp / _check_fsdp2_compatibility "
                   "(neither combination checked)")),
             "engine: swift, fsdp set; sequence_parallel_size > 1, or a tuner other than full with modules_to_save"),
    RuleInfo("fsdp-wrap-qwen3_5", "error", "FSDP with transformer-based auto wrap on Qwen3.5/3.6 needs transformers "
             ">= 5.3: 5.2.0's _no_split_modules name Qwen3_5TextDecoderLayer, which the model lacks, and accelerate "
             "refuses it when the Trainer wraps the model",
             (code("transformers models/qwen3_5/modeling_qwen3_5.py: Qwen3_5Model._no_split_modules (5.2.0: "
                   "Qwen3_5TextDecoderLayer; qwen3_5_moe: Qwen3_5MoeTextDecoderLayer; modeling_utils.py "
                   "PreTrainedModel.post_init joins the children's lists into the top model's; read from the released "
                   "wheel)"),
              code("accelerate utils/dataclasses.py: FullyShardedDataParallelPlugin.set_auto_wrap_policy (FSDP2: "
                   "utils/fsdp_utils.py fsdp2_prepare_auto_wrap_policy; \"Could not find the transformer layer class "
                   "... in the model.\")"),
              code("transformers training_args.py: TrainingArguments._process_fsdp_args (5.2.0: the \"auto_wrap\" "
                   "option gives TRANSFORMER_BASED_WRAP unless min_num_params > 0 or transformer_layer_cls_to_wrap is "
                   "named; the fsdp_config's auto_wrap_policy key is not read; from the released wheel)"),
              code("ms-swift swift/arguments/sft_args.py: SftArguments._init_fsdp (the fsdp config's fsdp / fsdp_config "
                   "go to the Trainer as they are; swift/config/fsdp2.json: TRANSFORMER_BASED_WRAP)"),
              Evidence("report", "huggingface/transformers#44382", "pull request \"fix qwen3.5 no split module\": "
                       "Qwen3_5Model / Qwen3_5MoeModel _no_split_modules \"affect the FSDP init of hf Trainer\"; "
                       "merged 2026-03-02, in 5.3.0"),
              Evidence("report", "hiyouga/LlamaFactory#10270", "Qwen3.5-4B full SFT, transformers 5.2.0, 2 x H100: "
                       "fails at start; the maintainer: the _no_split_modules of 5.2.0, update to 5.3.0 or use "
                       "DeepSpeed")),
             "engine: swift, fsdp (no deepspeed) whose config asks auto_wrap with min_num_params 0 and names no "
             "transformer_layer_cls_to_wrap (transformers 5.2 TrainingArguments then wraps TRANSFORMER_BASED_WRAP "
             "whatever the config's auto_wrap_policy says; min_num_params > 0 wraps by size), model_type qwen3_5*, a "
             "declared or installed transformers < 5.3 (support table: fsdp-wrap-qwen3_5)"),
    RuleInfo("liger-embedding", "warning", "use_liger_kernel with task_type embedding: reports saw KeyError "
             "'last_hidden_state' (Liger's forward bypasses ms-swift's embedding output hook)",
             (Evidence("report", "modelscope/ms-swift#5219", "Qwen3-Embedding-0.6B full training, task_type embedding, "
                       "loss infonce, ZeRO-2, flash_attn, use_liger_kernel true (RTX 6000 Ada; a second user on "
                       "another cluster): KeyError 'last_hidden_state'; with use_liger_kernel false it trains"),
              code("ms-swift swift/model/patcher.py: patch_output_normalizer (the embedding output hook)"),
              code("transformers trainer.py: Trainer.__init__ (apply_liger_kernel on the model instance)")),
             "engine: swift, task_type embedding, use_liger_kernel true"),
    RuleInfo("save-only-best-model", "error", "save_only_model with load_best_model_at_end under DeepSpeed or FSDP: "
             "the Trainer refuses it at start-up (the best checkpoint reloads through the wrapper's own format)",
             (code("transformers trainer.py: Trainer.create_accelerator_and_postprocess, from __init__ (\"DeepSpeed "
                   "can't be used with `save_only_model` along with `load_best_model_at_end`.\", FSDP likewise)"),
              Evidence("report", "huggingface/transformers#27751", "run_clm.py with DeepSpeed, save_only_model and "
                       "load_best_model_at_end: \"Can't find a valid checkpoint\" when the best model is loaded at "
                       "the end (PR #28866 turned it into the start-up error)")),
             "engine: swift, sft/pt/rlhf, save_only_model and load_best_model_at_end true, deepspeed or fsdp set"),
    RuleInfo("auto-batch-zero3", "error", "auto_find_batch_size under DeepSpeed ZeRO-3: the Trainer refuses it at "
             "start-up",
             (code("transformers trainer.py: Trainer.create_accelerator_and_postprocess, from __init__ "
                   "(\"`auto_find_batch_size` isn't supported yet with DeepSpeed Zero-3.\")"),),
             "engine: swift, sft/pt/rlhf, auto_find_batch_size true, a DeepSpeed config of ZeRO stage 3 readable here"),
    RuleInfo("deepspeed-resume-world", "error", "resume_from_checkpoint under DeepSpeed ZeRO loads the optimizer "
             "state of the saving run's data-parallel ranks only on as many ranks (unless a universal checkpoint is "
             "loaded or resume_only_model)",
             (code("DeepSpeed runtime/engine.py: DeepSpeedEngine._load_zero_checkpoint (\"The checkpoint being loaded "
                   "used a DP world size of N but the current world size is M ...\"; public source, not installed "
                   "here)"),
              code("transformers integrations/deepspeed.py: deepspeed_load_checkpoint (load_optimizer_states=True)"),
              code("ms-swift swift/trainers/mixin.py: SwiftMixin._patch_deepspeed_load_checkpoint (resume_only_model "
                   "swallows the failed load)"),
              code("ms-swift swift/trainers/utils.py: prepare_deepspeed_elastic_config -> "
                   "enable_deepspeed_load_universal, and swift/pipelines/train/sft.py _get_resume_checkpoint (the "
                   "deepspeed_elastic callback resumes only a universal checkpoint)"),
              Evidence("report", "deepspeedai/DeepSpeed#6441", "ZeRO-3 checkpoint of 8 data-parallel ranks resumed on "
                       "16: ZeRORuntimeException 'The checkpoint being loaded used a DP world size of 8 but the current "
                       "world size is 16'")),
             "engine: swift, sft/pt/rlhf, deepspeed with a ZeRO stage (no checkpoint.load_universal, no "
             "deepspeed_elastic callback), resume_from_checkpoint a checkpoint directory readable here, no "
             "resume_only_model, no sequence parallelism, launch sizes given; the saved dp ranks compared with the "
             "processes divided by deepspeed_autotp_size"),
    RuleInfo("fp16-gemma", "warning", "torch_dtype float16 (or fp16) on Gemma 2/3, published in bfloat16: their "
             "activations overflow float16 and a report saw loss 0, grad_norm 0 and NaN rewards from the start",
             (Evidence("report", "huggingface/trl#3236", "gemma-3-12b-it, DPOTrainer with a LoRA peft_config, "
                       "attn_implementation eager: full precision trains; with fp16 the logs show loss=0, "
                       "grad_norm=0, reward=nan"),
              code("transformers models/gemma3/modeling_gemma3.py: Gemma3RMSNorm.forward (float32 norm, cast back to "
                   "the run's dtype)")),
             "engine: swift, torch_dtype float16 or fp16 true, ms-swift model_type gemma2 / gemma3_text / "
             "gemma3_vision (stated, or the registry's for the model)"),
    RuleInfo("liger-lm-head-adapter", "warning", "use_liger_kernel with GRPO/GKD and LoRA on lm_head: the Liger loss "
             "reads lm_head.weight itself (the frozen base weight of a LoRA-wrapped head), so the head's adapter "
             "trains nothing",
             (code("ms-swift swift/rlhf_trainers/grpo_trainer.py: GRPOTrainer.compute_liger_loss "
                   "(lin_weight=unwrapped_model.lm_head.weight)"),
              code("ms-swift swift/rlhf_trainers/gkd_trainer.py: GKDTrainer._compute_liger_loss "
                   "(student_weight=student_head.weight)"),
              code("peft tuners/tuners_utils.py: BaseTunerLayer.weight (the base layer's weight)"),
              Evidence("report", "huggingface/trl#4612", "GRPOTrainer with use_liger_loss and a LoRA adapter whose "
                       "target_modules include lm_head: the head adapter is ignored by the fused loss and receives "
                       "no gradient (TRL PR #5977 refuses it at init since)")),
             "engine: swift, rlhf_type grpo or gkd, use_liger_kernel true, tuner_type lora / lora_llm, a target_modules "
             "entry naming lm_head (not modules_to_save, whose wrapper forwards .weight to the trained copy)"),
    RuleInfo("flash-attn-head-dim", "error", "attn_impl flash_attn / flash_attention_2/3/4 (what packing and "
             "padding_free need on the transformers engine) on a model with attention heads wider than 256 (Gemma 4's "
             "512-wide global layers): FlashAttention has no kernel for them",
             (code("flash-attn csrc/flash_attn/flash_api.cpp: mha_fwd (head dimension at most 256; public source, not "
                   "installed here)"),
              code("flash-attn flash_attn/cute/interface.py (flash-attn 4: head_dim <= 256)"),
              code("transformers models/gemma4/modeling_gemma4.py: Gemma4PreTrainedModel (_supports_flash_attn True: "
                   "accepted at load)"),
              Evidence("report", "Dao-AILab/flash-attention#2427", "Gemma 4 26B-A4B: global attention layers with "
                       "head_dim 512 raise 'FlashAttention only supports head dimensions up to 256'; the workaround is "
                       "SDPA for all layers")),
             "engine: swift, a flash attn_impl, a model whose config.json gives head_dim or global_head_dim > 256"),
    RuleInfo("ddp-reentrant", "error, warning", "gradient_checkpointing_kwargs use_reentrant true under plain DDP "
             "(engine swift, several ranks, neither deepspeed nor fsdp): where DDP searches for unused parameters "
             "(ddp_find_unused_parameters true, or unset on an adapter run, whose PeftModel the Trainer gives "
             "find_unused_parameters=True) it marks the checkpointed layers' parameters ready twice at the first step "
             "(error); otherwise reports saw the same error (warning). ms-swift's own choice on DDP is use_reentrant "
             "false",
             (code("torch nn/parallel/distributed.py: DistributedDataParallel (note: use_reentrant=True works only with "
                   "no unused parameters and find_unused_parameters not True; reducer.cpp 'Expected to mark a variable "
                   "ready only once')"),
              code("transformers trainer.py: Trainer._build_accelerator_args (find_unused_parameters = "
                   "ddp_find_unused_parameters; unset: not gradient_checkpointing for a PreTrainedModel, True for "
                   "any other model, e.g. a PeftModel)"),
              code("ms-swift swift/trainers/mixin.py: SwiftMixin._fix_gradient_checkpointing (use_reentrant from "
                   "gradient_checkpointing_kwargs, else False on DDP; forced into every torch.utils.checkpoint call)"),
              Evidence("measurement", "torch 2.14.1 here, 2 gloo ranks, a checkpointed 2-layer model: use_reentrant "
                       "True + find_unused_parameters True raises 'Expected to mark a variable ready only once'; the "
                       "other three combinations train; the same with a peft LoRA model (frozen base, adapters inside "
                       "the checkpointed blocks) and find_unused_parameters True"),
              Evidence("report", "modelscope/ms-swift#2746", "InternVL2.5-1B LoRA, 4 GPUs DDP, reentrant checkpointing "
                       "(ms-swift 3.0's default then): the error, also with ddp_find_unused_parameters true; the "
                       "maintainer's fix use_reentrant false"),
              Evidence("report", "modelscope/ms-swift#3446", "Qwen2-VL-Instruct LoRA caption training, DDP: lora_B of "
                       "layer 27 'marked as ready twice'"),
              Evidence("report", "modelscope/ms-swift#3171", "GRPO on 8 x H20 DDP: the error; the maintainer's fix "
                       "use_reentrant false or deepspeed zero2/zero3")),
             "engine: swift, gradient_checkpointing on, more than one torchrun rank, neither deepspeed nor fsdp, "
             "gradient_checkpointing_kwargs use_reentrant true stated, ddp_static_graph not true; error with "
             "ddp_find_unused_parameters true, or unset with a tuner_type other than full; warning otherwise"),
    RuleInfo("rollout-merge-quantized", "error", "GRPO/GKD with vLLM and a LoRA policy on a GPTQ checkpoint: every "
             "weight sync merges the adapter into the model, which PEFT refuses for GPTQ weights",
             (code("ms-swift swift/rlhf_trainers/rollout_mixin.py: RolloutTrainerMixin._move_model_to_vllm "
                   "(self.model.merge_adapter() before the sync)"),
              code("peft tuners/tuners_utils.py: BaseTuner.merge_adapter (_check_merge_allowed) / tuners/lora/model.py "
                   "LoraModel._check_merge_allowed (\"Cannot merge LORA layers when the model is gptq quantized\")"),
              code("transformers quantizers/base.py: HfQuantizer.preprocess_model (model.quantization_method from "
                   "config.json's quant_method)"),
              Evidence("report", "hiyouga/LlamaFactory#1545", "LoRA on a GPTQ Int4 model trains, the merge fails with "
                       "the same ValueError (maintainer: GPTQ weights cannot take a LoRA merge)")),
             "engine: swift, rlhf_type grpo/gkd, use_vllm, tuner_type lora, no quant_method, a checkpoint whose "
             "config.json quantization_config (else its id) says GPTQ"),
    RuleInfo("llamapro-blocks", "error", "tuner_type llamapro: llamapro_num_new_blocks (default 4) divides the model's "
             "layers",
             (code("ms-swift swift/tuners/llamapro.py: LLaMAPro.prepare_model (assert num_hidden_layers % "
                   "num_new_blocks == 0)"),),
             "engine: swift, tuner_type llamapro, a model whose config.json gives its layer count"),
]
