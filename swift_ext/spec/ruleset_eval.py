"""The entries of the rules on the validation split's size (planner/eval_split_rules.py) and on deterministic_mode
(planner/determinism_rules.py). spec/ruleset.py joins them with the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import GMC, MS, SFT, Evidence, RuleInfo, code

DATASET_SPLIT = ("ms-swift swift/dataset/dataset_meta.py: DatasetLoader.post_process (val rows per entry: N of #N for "
                 "val_dataset, max(int(min(len, N) * split_dataset_ratio), 1) for a split)")
KNOWN_ROWS = ("every val_dataset entry, or with split_dataset_ratio every dataset entry, has #N or is a local .jsonl "
              "file of JSON lines (not a JSON array, which datasets' json builder reads whole); no streaming or "
              "cached datasets; a split_dataset_ratio split not interleaved with stopping_strategy all_exhausted "
              "(datasets.interleave_datasets oversamples the entries)")

EVAL_RULE_INFO = [
    RuleInfo("eval-split", "warning", "engine megatron: a validation set (val_dataset, or split_dataset_ratio of the "
             "dataset) smaller than one evaluation step (micro_batch_size x DP) is dropped, and the run never evaluates",
             (code(f"{MS} MegatronArguments.init_iters (a validation set shorter than micro_batch_size x DP becomes "
                   "None and eval_iters 0, an explicit eval_iters included)"),
              code("ms-swift swift/megatron/callbacks/default_flow.py: DefaultFlowCallback.on_step_end (evaluates "
                   "only when eval_iters > 0)"),
              code(DATASET_SPLIT)),
             "engine: megatron, eval_iters not 0; the validation rows known before launch (" + KNOWN_ROWS + ")"),
    RuleInfo("eval-split-drop-last", "error", "engine swift: with dataloader_drop_last, a validation set smaller than "
             "one evaluation round (per_device_eval_batch_size x processes) gives the evaluation no batch, and the "
             "Trainer raises KeyError on metric_for_best_model (ms-swift always sets one)",
             (code("accelerate data_loader.py: BatchSamplerShard._iter_with_no_split (with drop_last only full "
                   "rounds of per-device batches over all processes are yielded)"),
              code("transformers trainer.py: Trainer._determine_best_metric (KeyError \"The `metric_for_best_model` "
                   "training argument is set to 'eval_loss', which is not found in the evaluation metrics\")"),
              code("transformers trainer_callback.py: DefaultFlowCallback.on_step_end (a steps strategy evaluates at "
                   "the last step too)"),
              code(f"{SFT} SftArguments._init_metric_for_best_model (always sets one: loss, or rouge-l)"),
              code(DATASET_SPLIT),
              Evidence("report", "modelscope/ms-swift#5682", "GME embedding fine-tuning (train_gme.sh: 8 GPUs, "
                       "dataloader_drop_last, split_dataset_ratio 0.01) on the reporter's data: KeyError 'eval_loss' "
                       "at evaluation; the maintainer: every card needs at least one validation batch")),
             "engine: swift, command sft/pt, dataloader_drop_last true, no sequence parallelism, evaluation on; the "
             "validation rows known before launch (" + KNOWN_ROWS + ")"),
    RuleInfo("best-metric", "error", "engine swift sft/pt: metric_for_best_model (stated, or ms-swift's default) names "
             "a metric ms-swift computes only in other configurations: rouge/bleu without eval_metric nlg, loss with "
             "predict_with_generate, reward outside GRPO, or a progress entry (epoch, ...) logged without the eval_ "
             "prefix; the Trainer raises KeyError at the first evaluation",
             (code("transformers trainer.py: Trainer._determine_best_metric (KeyError \"The `metric_for_best_model` "
                   "training argument is set to ..., which is not found in the evaluation metrics\")"),
              code(f"{SFT} SftArguments._init_metric / _init_metric_for_best_model (eval_metric nlg for causal_lm with "
                   "predict_with_generate; metric_for_best_model rouge-l with it, else loss)"),
              code("ms-swift swift/metrics/nlg.py: compute_rouge_bleu (rouge-1, rouge-2, rouge-l, bleu-4); "
                   "swift/metrics/mapping.py eval_metrics_map; swift/trainers/mixin.py create_loss_and_eval_metric"),
              code("ms-swift swift/trainers/seq2seq_trainer.py: Seq2SeqTrainer.prediction_step (generation returns no "
                   "loss)"),
              Evidence("report", "modelscope/ms-swift#4323", "swift sft: KeyError 'eval_epoch' in "
                       "_determine_best_metric at evaluation"),
              Evidence("report", "modelscope/ms-swift#5682", "the evaluation metrics listed: eval_runtime, "
                       "eval_samples_per_second, eval_steps_per_second, and epoch, global_step/max_steps, percentage, "
                       "elapsed_time, remaining_time unprefixed")),
             "engine: swift, command sft/pt, a validation set and an evaluating strategy; not with external_plugins "
             "or eval_use_evalscope (they can add metrics), nor an eval_metric ms-swift does not ship; names outside "
             "these lists (custom losses, plugin metrics) are never refused"),
    RuleInfo("eval-vllm-lora", "error", "eval.backend vllm evaluates engine swift's LoRA checkpoints as base + "
             "--adapters, so the adapter must be one vLLM's LoRA loader takes: no use_dora, modules_to_save or "
             "lora_bias, and a lora_rank within vLLM's largest max_lora_rank (512)",
             (code("ms-swift swift/pipelines/infer/infer.py: SwiftInfer.__init__ (infer_backend vllm with adapters: an "
                   "AdapterRequest) / rlhf_trainers/args_mixin.py VllmArguments.get_vllm_engine_kwargs (enable_lora, "
                   "max_lora_rank=vllm_max_lora_rank)"),
              code("ms-swift swift/pipelines/train/tuner.py: LoraConfig(bias=lora_bias, use_dora, modules_to_save)"),
              Evidence("code", "vLLM vllm/lora/peft_helper.py: PEFTHelper._validate_features / validate_legal "
                       "(\"vLLM only supports modules_to_save being None.\", \"vLLM does not yet support DoRA.\", "
                       "\"LoRA rank ... is greater than max_lora_rank\", adapter bias refused; public source)"),
              Evidence("code", "vLLM vllm/config/lora.py: LoRAConfig (max_lora_rank one of 1 ... 512; public source)"),
              Evidence("report", "vllm-project/vllm#16764", "a DoRA-fine-tuned R1-Distill-Qwen adapter cannot be served "
                       "by vLLM (maintainer: vLLM does not support DoRA yet)"),
              Evidence("report", "modelscope/ms-swift#4221", "LoRA rank 32, swift infer with vLLM: \"LoRA rank 32 is "
                       "greater than max_lora_rank 16\" (swift-ext's evaluation now passes vllm_max_lora_rank)")),
             "recipes with eval.backend vllm, engine swift, tuner_type lora"),
    RuleInfo("eval-vllm-vision-lora", "warning", "eval.backend vllm with LoRA all-linear on a multimodal model whose "
             "vision tower or aligner is not frozen: vLLM applies LoRA to the language model only",
             (code("ms-swift swift/utils/transformers_utils.py: get_multimodal_target_regex (all-linear covers the "
                   "unfrozen vision tower and aligner)"),
              code("ms-swift swift/pipelines/infer/infer.py: SwiftInfer.__init__ (infer_backend vllm with adapters)"),
              Evidence("report", "modelscope/ms-swift#4974", "InternVL3-1B LoRA with freeze_vit/freeze_aligner false, "
                       "swift deploy with vLLM and --adapters: \"expected target modules in [...] but received "
                       "['mlp1.1', ...]\"; the pt backend runs it"),
              Evidence("report", "vllm-project/vllm#27916", "Qwen2.5-VL LoRA: \"vLLM currently only supports adding "
                       "LoRA to language model, visual... will be ignored\"")),
             "recipes with eval.backend vllm, engine swift, tuner_type lora, target_modules all-linear without "
             "target_regex, freeze_vit or freeze_aligner false, a model ms-swift's registry calls multimodal"),
    RuleInfo("eval-vllm-gpu", "warning", "eval.backend vllm without eval.devices: the local follower starts vLLM on "
             "the training's GPUs, and vLLM refuses to start when less than gpu_memory_utilization (0.9) of the "
             "first GPU's memory is free",
             (Evidence("code", "vLLM vllm/v1/worker/utils.py: request_memory (\"Free memory on device ... on startup "
                       "is less than desired GPU memory utilization\"; public source)"),
              code("ms-swift swift/rlhf_trainers/args_mixin.py: VllmArguments (vllm_gpu_memory_utilization 0.9)"),
              Evidence("policy", "swift_ext/runs/run.py start_eval_follower: the follower inherits the trainer's "
                       "environment unless eval.devices sets CUDA_VISIBLE_DEVICES")),
             "recipes with eval.backend vllm, eval.devices unset and GPUs in launch; `swift-ext submit` evaluates in "
             "jobs of their own, where it does not apply"),
    RuleInfo("eval-vllm-memory", "error", "eval.backend vllm: one GPU (launch.gpu) at vLLM's gpu_memory_utilization "
             "0.9 holds the model's weights and the KV cache of one sequence of the length vLLM derives from "
             "config.json (swift-ext's `swift infer` passes no max_model_len or tensor parallel size)",
             (Evidence("code", "vLLM vllm/v1/core/kv_cache_utils.py: check_enough_kv_cache_memory (\"To serve at "
                       "least one request with the model's max seq len ...\"; public source)"),
              code("ms-swift swift/rlhf_trainers/args_mixin.py: VllmArguments (vllm_gpu_memory_utilization 0.9, "
                   "vllm_tensor_parallel_size 1, vllm_max_model_len None)"),
              Evidence("policy", "swift_ext/after/evaluate.py infer_launch: the `swift infer` command sets none of "
                       "them"),
              Evidence("code", "vLLM vllm/v1/kv_cache_interface.py: SlidingWindowSpec.max_memory_usage_bytes (a "
                       "sliding-window layer holds at most its window plus one batch; public source)"),
              Evidence("report", "vllm-project/vllm#10517", "Llama-3.1-8B-Instruct on an RTX 3090 at 0.90: 14.99 GB "
                       "of weights leave 2.9 GiB of KV cache; max_model_len 29000 refused")),
             "recipes with eval.backend vllm and a known launch.gpu, eval.launch.partition unset; not with "
             "quant_method, rope_scaling or max_model_len (the checkpoint's size or length then differ); checkpoints "
             "of 16-bit or FP8 weights (the bound is weights plus full-attention KV, a lower bound: "
             "sliding-window layers -- Gemma 2/3/4, Mistral -- count only their window, Gated DeltaNet layers no "
             "KV)"),
    RuleInfo("deterministic-mode", "error, warning", "deterministic_mode (megatron_extra_kwargs) needs "
             "NVTE_ALLOW_NONDETERMINISTIC_ALGO=0 for Transformer Engine attention (error when the recipe's env sets "
             "another value, warning when it does not set it), and unpacked input for mcore-bridge's Gated DeltaNet",
             (code("megatron-core extensions/transformer_engine.py: TEDotProductAttention.__init__ "
                   "(\"deterministic_mode is on and we are using DotProductAttention from Transformer Engine, but "
                   "NVTE_ALLOW_NONDETERMINISTIC_ALGO is not 0\")"),
              code("mcore-bridge model/register.py: get_transformer_layer_spec (use_transformer_engine=True)"),
              code("mcore-bridge model/modules/gated_delta_net.py: GatedDeltaNet.forward (deterministic branch: "
                   "assert cu_seqlens is None, 'Packed sequences are not supported when fla is not available.')"),
              code(GMC + "; megatron_extra_kwargs last: the only way ms-swift 4.6 sets deterministic_mode")),
             "engine: megatron, megatron_extra_kwargs deterministic_mode truthy; the packed-input part for models with "
             "Gated DeltaNet layers (Qwen3-Next, Qwen3.5/3.6) under bridge_backend mcore-bridge and USE_MCORE_GDN not "
             "false, with padding_free (Megatron's default) or packing, not under attention_backend unfused (ms-swift "
             "model/utils.py _check_padding_free turns padding_free off there: the input is unpacked)"),
]
