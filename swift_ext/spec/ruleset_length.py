"""The entries of the sequence-length rules (planner/length_rules.py): max_length, rollouts and rope scaling against
the model's positions, both engines. spec/ruleset.py joins them with the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import Evidence, RuleInfo, code

LENGTH_RULE_INFO = [
    # --- sequence length against the model's positions, both engines (planner/length_rules.py)
    RuleInfo("max-positions", "error, warning",
             "the training sequence (GRPO: max_length + max_completion_length) past the positions config.json "
             "covers, with no rope_scaling (warning: ms-swift trains out of range without a word); "
             "vllm_max_model_len past the length vLLM derives from config.json and the recipe's rope_scaling (error: "
             "vLLM refuses it)",
             (code("ms-swift swift/arguments/base_args/base_args.py: BaseArguments.__post_init__ (max_length is "
                    "filled from HfConfigFactory.get_max_model_len only when unset; no check against it)"),
              code("ms-swift swift/arguments/base_args/model_args.py: ModelArguments._init_rope_scaling (RoPE is "
                    "extended only when rope_scaling is given)"),
              Evidence("code", "vLLM vllm/config/model.py: _get_and_verify_max_len (\"User-specified max_model_len "
                       "(...) is greater than the derived max_model_len\"; public source, vLLM is not installed)"),
              Evidence("report", "modelscope/ms-swift#7018", "swift pt, Qwen3-8B-Base (32768 positions), max_length "
                       "64000, no scaling: ran without error"),
              code("ms-swift swift/infer_engine/vllm_engine.py: VllmEngine._get_hf_config_overrides (a recipe's "
                    "rope_scaling reaches vLLM as hf_overrides; max_model_len alone does not) and "
                    "VllmEngine._prepare_engine_kwargs (vllm_engine_kwargs' own hf_overrides are merged in: a length "
                    "key or rope section there is what vLLM derives from)"),
              Evidence("report", "modelscope/ms-swift#5146", "GRPO colocate, Qwen3-8B, max_model_len 122880, "
                       "vllm_max_model_len 122880: vLLM refuses (the report's command-line YaRN reaches vLLM on 4.6)"),
              Evidence("report", "modelscope/ms-swift#3907", "Qwen2.5-7B-Instruct (32768 positions), vllm_max_model_len "
                       "72000: \"User-specified max_model_len (72000) is greater than the derived max_model_len\"")),
             "both engines, a model whose config.json gives its length (bundled presets carry it where published); "
             "the warning only without rope_scaling, the error where a colocated vLLM engine is built (GRPO/GKD with "
             "use_vllm and no server; not Megatron GKD with lmbda 0) unless env VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 "
             "or vllm_engine_kwargs' hf_overrides set a length key or rope_scaling / rope_parameters (not judged); "
             "a warning instead where the length is a bundled config standing in for an unreadable directory of "
             "that name (its config.json may carry the rope_scaling Qwen2.5/Qwen3's model cards tell users to add)"),
    RuleInfo("video-frames-length", "warning", "the recipe env's FPS_MAX_FRAMES for a Qwen-VL-family model whose "
             "smallest video at that many frames (FPS_MAX_FRAMES / FRAME_FACTOR grids of VIDEO_MIN_TOKEN_NUM tokens) is "
             "past max_length: every video long enough to reach it makes a row over max_length",
             (code("qwen_vl_utils 0.0.14 vision_process.py: smart_nframes (duration x FPS frames, clipped to "
                   "FPS_MAX_FRAMES) / fetch_video (each frame pair at least VIDEO_MIN_TOKEN_NUM tokens)"),
              code("ms-swift swift/template/base.py: Template._encode_truncated (truncation_strategy delete -> "
                   "MaxLengthError: the row is dropped; left/right keep the protected video tokens whole)"),
              Evidence("report", "modelscope/ms-swift#7845", "Qwen3-VL-8B LoRA, max_length 4096, FPS_MAX_FRAMES 360: "
                       "row fetching fails; FPS_MAX_FRAMES 16 trains")),
             "both engines, model types whose loader goes through qwen_vl_utils, FPS_MAX_FRAMES set in the recipe env, "
             "max_length set; VIDEO_MIN_PIXELS without VIDEO_MIN_TOKEN_NUM not judged"),
    RuleInfo("rollout-length", "warning", "vllm_max_model_len below max_length + max_completion_length cuts "
             "completions short (neither engine refuses it)",
             (code("ms-swift swift/infer_engine/infer_engine.py: InferEngine.set_default_max_tokens (max_tokens cut to "
                    "max_model_len - prompt; \"leaves no room for generation\")"),
              Evidence("report", "modelscope/ms-swift#4893", "swift infer with vLLM: \"max_model_len(40960) - "
                       "num_tokens(118444) < max_tokens(1024)\"")),
             "both engines, GRPO with use_vllm colocate and an explicit max_length; without one, only a "
             "vllm_max_model_len no longer than max_completion_length (every completion cut)"),
    RuleInfo("vllm-memory", "error", "the colocated vLLM worker's share (vllm_gpu_memory_utilization x GPU memory) "
             "cannot hold its weight shard plus the KV cache of one max_model_len sequence",
             (Evidence("code", "vLLM vllm/v1/core/kv_cache_utils.py: check_enough_kv_cache_memory (\"No available "
                       "memory for the cache blocks\"; \"To serve at least one request with the model's max seq "
                       "len\"; public source)"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py (colocated engine: gpu_memory_utilization, "
                    "tensor_parallel_size, max_model_len)"),
              Evidence("code", "vLLM vllm/v1/kv_cache_interface.py: SlidingWindowSpec.max_memory_usage_bytes (a "
                       "sliding-window layer holds min(window - 1 + max_num_batched_tokens, max_model_len) tokens; "
                       "the bound counts the window; public source)")),
             "GRPO/GKD with use_vllm colocated (or engine megatron; not Megatron GKD with lmbda 0, which builds no "
             "engine: megatron/trainers/rollout_mixin.py _init_rollout_engine), launch.gpu known; skipped for checkpoints "
             "below 16 bits the shape cannot tell (gpt-oss MXFP4, AWQ/GPTQ, any quantization_config but fp8) -- FP8 "
             "checkpoints (config.json quantization_config fp8, as Kimi-K2's; -FP8 releases; DeepSeek-V3) count 1 "
             "byte per weight"),
    RuleInfo("vllm-memory-margin", "warning", "the colocated vLLM worker's share holds its weight shard and one "
             "max_model_len sequence's KV cache (vllm-memory) but not, with a 1 GiB margin, the profile run's "
             "activation peak vLLM takes first (a 2048-token batch and the sampler's logits, estimated)",
             (Evidence("code", "vLLM vllm/v1/worker/gpu_worker.py: Worker.determine_available_memory (KV cache = "
                       "requested_memory - (weights + profile_run torch peak + non-torch increase)); "
                       "vllm/v1/core/kv_cache_utils.py: check_enough_kv_cache_memory (public source)"),
              Evidence("report", "modelscope/ms-swift#4594", "GRPO, vllm_mode colocate, Qwen3-1.7B LoRA, "
                       "vllm_gpu_memory_utilization 0.1, 8 x A100, ZeRO-3 offload: the run fails with vLLM and trains "
                       "without it")),
             "where vllm-memory applies and does not refuse; a warning because the profile peak is estimated (its "
             "real value depends on the vLLM version's profile batch and sampler)"),
    RuleInfo("sequence-parallel-size", "error", "engine swift: sequence_parallel_size must divide the processes; past "
             "gcd(KV heads, size) the rest is ring attention, which needs padding_free, which Qwen3.5/3.6's Gated "
             "DeltaNet refuses and which takes no sliding-window layers",
             (code("ms-swift swift/sequence_parallel/sequence_parallel.py: SequenceParallel._init_device_mesh / prepare "
                    "(\"needs ulysses/ring-attention, which needs --padding_free true\")"),
              code("ms-swift swift/model/models/qwen.py: _patch_qwen3_5_linear_attention_sequence_parallel (\"does not "
                    "support derived ring attention\")"),
              code("ms-swift swift/sequence_parallel/sequence_parallel.py: local_flash_attn (window_size=kwargs.get("
                   "'sliding_window') or (-1, -1), an int from transformers' attention layers) -> "
                   "swift/sequence_parallel/zigzag_ring_attn.py: forward (window_size[0])"),
              Evidence("report", "zhuzilin/ring-flash-attention#35", "feature request, open: the ring flash attention "
                       "ms-swift's zigzag ring derives from takes no window_size"),
              Evidence("report", "modelscope/ms-swift#9162", "the PR adding Qwen3.5 linear-attention sequence parallelism "
                       "lists rp_world_size > 1 as unsupported")),
             "engine: swift, sequence_parallel_size > 1; the window: a config.json sliding_window some layer uses "
             "(layer_types, or use_sliding_window not false)"),
    RuleInfo("sequence-parallel-logits", "error", "engine swift: use_logits_to_keep true excludes "
             "sequence_parallel_size > 1 (sft/pt causal LM, DPO): ms-swift raises NotImplementedError at the first step",
             (code("ms-swift swift/trainers/mixin.py: SwiftMixin.prepare_logits_to_keep (NotImplementedError under "
                   "sequence parallel) / get_use_logits_to_keep (a stated value is kept)"),
              code("ms-swift swift/trainers/seq2seq_trainer.py: Seq2SeqTrainer._prepare_inputs; "
                   "swift/rlhf_trainers/dpo_trainer.py: DPOTrainer.concatenated_forward"),
              Evidence("report", "modelscope/ms-swift#9765", "Qwen3.6-35B-A3B long-context SFT, 8x H20, ms-swift "
                       "4.4.1: --use_logits_to_keep true with sequence parallel raises NotImplementedError")),
             "engine: swift, sequence_parallel_size > 1, use_logits_to_keep true; sft/pt with task_type causal_lm, "
             "or rlhf_type dpo (GRPO keeps its own logits selection)"),
    RuleInfo("vllm-lora-rank", "error", "with vllm_enable_lora, lora_rank is vLLM's max_lora_rank and must be one it "
             "accepts (1, 8, 16, 32, 64, 128, 256, 320, 512)",
             (Evidence("code", "vLLM vllm/config/lora.py: LoRAConfig (\"max_lora_rank (...) must be one of\"; public "
                       "source)"),
              code("ms-swift swift/rlhf_trainers/rollout_mixin.py (max_lora_rank=args.lora_rank)"),
              Evidence("report", "PrimeIntellect-ai/prime-rl#1408", "LoRA rank 4 rejected by vLLM; the framework rounds "
                       "max_lora_rank up"),
              Evidence("report", "verl-project/verl#3696", "LoRA rank 1 with vLLM rollouts refused (vLLM requires 8); "
                       "maintainers: v0.11.0 allows 8 ... 512, rank 1 arrived with vllm-project/vllm#26461 (0.11.1)")),
             "GRPO/GKD building a colocated engine (use_vllm, no server; not Megatron GKD with lmbda 0) with "
             "vllm_enable_lora and tuner_type lora; rank 1 refused only when the recipe names a target vLLM before "
             "0.11.1 (SWIFT_EXT_TARGET_VERSIONS / SWIFT_EXT_VLLM_VERSION)"),
    RuleInfo("rope-scaling-length", "error", "rope_scaling without a factor (the string form) needs max_model_len",
             (code("ms-swift swift/arguments/base_args/model_args.py: ModelArguments._init_rope_scaling "
                    "(\"max_model_len must be set if rope_scaling does not contain a \\\"factor\\\"\")"),
              code("ms-swift swift/utils/utils.py: json_parse_to_dict (a path that exists is a JSON file, loaded)")),
             "both engines, rope_scaling set (not 'default') without a factor and without max_model_len; a JSON file "
             "here is judged by its content, a path not here is not judged"),
]
