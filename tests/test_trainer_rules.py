"""The transformers Trainer's precision / quantization / flash-attention refusals (planner/trainer_rules.py) beyond
the failed launches in tests/fixtures/issues: each fires on its report's recipe, and the nearby setups that run
(DeepSpeed's fp32 master weights, adapters, QLoRA, an FP8 checkpoint dequantized below sm89, sdpa on a V100, the
Megatron engine) are left alone."""

from __future__ import annotations

from test_length_rules import findings

FP16_FULL = "ms-swift-5718-full-fp16-gradscaler"
BNB_FULL = "ms-swift-5422-embedding-full-bnb"
FP8_LORA = "transformers-37927-qwen3-fp8-lora"
V100_FLASH = "x-r1-45-v100-flash-attention"


def test_full_float16_without_deepspeed_is_refused_and_the_runs_that_keep_fp32_weights_are_not():
    assert findings(FP16_FULL)[0].get("fp16-full") == {"args.torch_dtype"}
    for runs in (("args.deepspeed=zero2",),        # DeepSpeed keeps fp32 master weights
                 ("args.fsdp=fsdp2",),             # FSDP's ShardedGradScaler allows float16 gradients
                 ("args.tuner_type=lora",),        # ms-swift upcasts trainable adapter weights to float32
                 ("args.torch_dtype=float32",),    # fp16 autocast over float32 weights
                 ("args.torch_dtype=bfloat16",),
                 ("args.fp16=false",)):            # no GradScaler
        assert "fp16-full" not in findings(FP16_FULL, *runs)[0], runs
    # the Megatron engine runs its own optimizer with fp32 main parameters
    assert "fp16-full" not in findings(FP16_FULL, "engine=megatron", "launch.gpu=A100-80G")[0]


def test_quantized_full_training_is_refused_and_qlora_is_not():
    assert findings(BNB_FULL)[0].get("quantized-training") == {"args.tuner_type"}
    assert "quantized-training" not in findings(BNB_FULL, "args.tuner_type=lora")[0]
    for method in ("hqq", "eetq", "quanto"):
        bits = "args.quant_bits=8"
        assert findings(BNB_FULL, f"args.quant_method={method}", bits)[0].get("quantized-training") == \
            {"args.tuner_type"}, method
    # quant_method fp8 builds transformers' FineGrainedFP8 quantizer, which no tuner trains through
    fp8 = ("args.tuner_type=lora", "args.quant_method=fp8", "args.quant_bits=null")
    assert findings(BNB_FULL, *fp8, "launch.gpu=H100")[0].get("quantized-training") == {"args.quant_method"}
    # below compute capability 8.9 transformers loads it dequantized (quantizer_finegrained_fp8 validate_environment)
    errors, warnings = findings(BNB_FULL, *fp8, "launch.gpu=A100-80G")
    assert "quantized-training" not in errors and "quantized-training" not in warnings
    # an AWQ / GPTQ checkpoint: adapters train, full does not
    assert findings(BNB_FULL, "args.quant_method=null", "args.quant_bits=null",
                    "args.model=Qwen/Qwen2.5-7B-Instruct-AWQ")[0].get("quantized-training") == {"args.tuner_type"}
    assert "quantized-training" not in findings(BNB_FULL, "args.quant_method=null", "args.quant_bits=null",
                                                "args.tuner_type=lora", "args.model=Qwen/Qwen2.5-7B-Instruct-AWQ")[0]


def test_an_fp8_checkpoint_is_refused_on_fp8_gpus_warned_without_a_gpu_and_left_alone_below_sm89():
    errors, warnings = findings(FP8_LORA)
    assert warnings.get("quantized-training") == {"args.model"} and "quantized-training" not in errors
    assert findings(FP8_LORA, "launch.gpu=H100")[0].get("quantized-training") == {"args.model"}
    assert findings(FP8_LORA, "launch.gpu=L40S")[0].get("quantized-training") == {"args.model"}
    errors, warnings = findings(FP8_LORA, "launch.gpu=A100-80G")  # transformers dequantizes it to bf16 there
    assert "quantized-training" not in errors and "quantized-training" not in warnings
    # config.json's quantization_config decides where the id does not say: DeepSeek-V3.1 is released in FP8
    assert findings(FP8_LORA, "launch.gpu=H100", "args.model=deepseek-ai/DeepSeek-V3.1")[0].get(
        "quantized-training") == {"args.model"}
    # ... and Moonlight, a deepseek_v3 model in bf16, is not
    errors, warnings = findings(FP8_LORA, "launch.gpu=H100", "args.model=moonshotai/Moonlight-16B-A3B-Instruct")
    assert "quantized-training" not in errors and "quantized-training" not in warnings


GPT_OSS_BNB = "axolotl-3530-gpt-oss-qlora-bnb-over-mxfp4"


def test_load_time_quantization_over_another_checkpoint_format_is_refused():
    # transformers merge_quantization_configs: BitsAndBytesConfig over gpt-oss's Mxfp4Config checkpoint
    assert findings(GPT_OSS_BNB)[0].get("quantized-training") == {"args.quant_method"}
    for method in ("hqq", "eetq", "quanto"):  # any other class than the checkpoint's
        assert findings(GPT_OSS_BNB, f"args.quant_method={method}", "args.quant_bits=8")[0].get(
            "quantized-training") == {"args.quant_method"}, method
    # an AWQ checkpoint under bnb: AwqConfig vs BitsAndBytesConfig
    assert findings(GPT_OSS_BNB, "args.model=Qwen/Qwen2.5-7B-Instruct-AWQ")[0].get("quantized-training") == \
        {"args.quant_method"}


def test_load_time_quantization_over_an_unquantized_checkpoint_or_none_is_not_refused():
    assert "quantized-training" not in findings(GPT_OSS_BNB, "args.quant_method=null", "args.quant_bits=null")[0]
    assert "quantized-training" not in findings(GPT_OSS_BNB, "args.model=Qwen/Qwen3-8B")[0]
    # a BF16 re-release of gpt-oss: not one of OpenAI's MXFP4 ids
    assert "quantized-training" not in findings(GPT_OSS_BNB, "args.model=unsloth/gpt-oss-20b-BF16")[0]


def test_gpt_oss_mxfp4_release_is_refused_only_where_transformers_keeps_it_mxfp4():
    from swift_ext.planner.trainer_rules import _kernels_viable
    plain = ("args.quant_method=null", "args.quant_bits=null")
    errors, warnings = findings(GPT_OSS_BNB, *plain)
    # said only where transformers would keep MXFP4 here: `kernels` 0.17.x installed (it is not in the test venv)
    assert "quantized-training" not in errors
    assert warnings.get("quantized-training") == ({"args.model"} if _kernels_viable() else None)
    # below compute capability 7.5 the quantizer dequantizes: nothing to say; a BF16 re-release: nothing either
    errors, warnings = findings(GPT_OSS_BNB, *plain, "launch.gpu=V100")
    assert "quantized-training" not in errors and "quantized-training" not in warnings
    errors, warnings = findings(GPT_OSS_BNB, *plain, "args.model=unsloth/gpt-oss-20b-BF16")
    assert "quantized-training" not in errors and "quantized-training" not in warnings


def test_gpt_oss_mxfp4_with_kernels_on_the_planning_machine_is_said_not_refused(monkeypatch):
    # `kernels` 0.17.x on the machine that plans says nothing about the training machine's packages, which decide
    # whether transformers keeps MXFP4: a warning, not a refusal (this venv has no `kernels`: the planning machine
    # that has one is stood in for by the version lookup the rule makes)
    import importlib.metadata as md

    real = md.version
    monkeypatch.setattr(md, "version", lambda name: "0.17.1" if name == "kernels" else real(name))
    errors, warnings = findings(GPT_OSS_BNB, "args.quant_method=null", "args.quant_bits=null")
    assert "quantized-training" not in errors
    assert warnings.get("quantized-training") == {"args.model"}


def test_flash_attention_below_sm80_is_refused_and_sdpa_or_an_ampere_gpu_is_not():
    assert findings(V100_FLASH)[0].get("flash-attn-gpu") == {"args.attn_impl"}
    for impl in ("flash_attention_2", "flash_attention_3"):
        assert findings(V100_FLASH, f"args.attn_impl={impl}")[0].get("flash-attn-gpu") == {"args.attn_impl"}
    assert "flash-attn-gpu" not in findings(V100_FLASH, "args.attn_impl=sdpa")[0]
    assert "flash-attn-gpu" not in findings(V100_FLASH, "launch.gpu=A10")[0]
    assert "flash-attn-gpu" not in findings(V100_FLASH, "launch.gpu=null")[0]  # no card named: not judged


DS_VALUES = "llamafactory-366-deepspeed-config-batch-values"


def test_explicit_deepspeed_values_must_match_the_arguments_and_auto_or_equal_ones_pass(tmp_path, monkeypatch):
    import json

    from test_issue_fixtures import ISSUES

    monkeypatch.chdir(ISSUES / "files" / "llamafactory-366")
    assert findings(DS_VALUES)[0].get("deepspeed-values") == {"args.deepspeed"}
    # the same file beside the arguments it states: accepted
    assert "deepspeed-values" not in findings(DS_VALUES, "args.per_device_train_batch_size=16",
                                              "args.gradient_accumulation_steps=8")[0]
    # ms-swift's presets leave every compared value "auto"
    for preset in ("zero2", "zero3", "zero3_offload"):
        assert "deepspeed-values" not in findings(DS_VALUES, f"args.deepspeed={preset}")[0], preset
    # fp16.enabled true beside bf16 training, and Adam betas beside ms-swift's adam_beta2 default 0.95
    config = tmp_path / "ds.json"
    config.write_text(json.dumps({"fp16": {"enabled": True}, "zero_optimization": {"stage": 2},
                                  "optimizer": {"type": "AdamW", "params": {"lr": "auto", "betas": [0.9, 0.999]}}}))
    errors = findings(DS_VALUES, f"args.deepspeed={config}", "args.torch_dtype=bfloat16")[0]
    assert errors.get("deepspeed-values") == {"args.deepspeed"}
    assert "deepspeed-values" not in findings(DS_VALUES, f"args.deepspeed={config}", "args.torch_dtype=float16",
                                              "args.adam_beta2=0.999")[0]
    # fp16/bf16 are not judged when config.json's dtype decides
    config.write_text(json.dumps({"bf16": {"enabled": True}, "zero_optimization": {"stage": 2}}))
    assert "deepspeed-values" not in findings(DS_VALUES, f"args.deepspeed={config}", "args.torch_dtype=null")[0]


def test_fsdp_report_warnings_stay_with_fsdp():
    sp, mts = "ms-swift-9895-fsdp-qlora-sequence-parallel", "ms-swift-9313-fsdp-lora-modules-to-save"
    assert findings(sp)[1].get("fsdp-reports") == {"args.sequence_parallel_size"}
    assert findings(mts)[1].get("fsdp-reports") == {"args.modules_to_save"}
    # DeepSpeed with sequence parallelism, and DeepSpeed with modules_to_save, are what ms-swift's examples run
    assert "fsdp-reports" not in findings(sp, "args.fsdp=null", "args.deepspeed=zero2")[1]
    assert "fsdp-reports" not in findings(mts, "args.fsdp=null", "args.deepspeed=zero3")[1]
    assert "fsdp-reports" not in findings(mts, "args.modules_to_save=null")[1]


def test_fsdp_auto_wrap_of_qwen35_is_refused_on_transformers_5_2_only():
    name = "llamafactory-10270-qwen35-fsdp-transformers-520"
    assert findings(name)[0].get("fsdp-wrap-qwen3_5") == {"args.fsdp"}
    # the MoE release lists the same missing class in 5.2.0
    assert findings(name, "args.model=Qwen/Qwen3.5-35B-A3B")[0].get("fsdp-wrap-qwen3_5") == {"args.fsdp"}
    # transformers 5.3 names Qwen3_5DecoderLayer; DeepSpeed does not read _no_split_modules; other models' lists hold
    assert "fsdp-wrap-qwen3_5" not in findings(name, "env.SWIFT_EXT_TARGET_VERSIONS=transformers=5.3.0")[0]
    assert "fsdp-wrap-qwen3_5" not in findings(name, "args.fsdp=null", "args.deepspeed=zero3")[0]
    assert "fsdp-wrap-qwen3_5" not in findings(name, "args.model=Qwen/Qwen3-4B")[0]
    # an fsdp config that names the layer class to wrap bypasses _no_split_modules
    config = ("args.fsdp='{\"fsdp\": \"full_shard auto_wrap\", \"fsdp_config\": {\"fsdp_version\": 2%s}}'")
    assert findings(name, config % "")[0].get("fsdp-wrap-qwen3_5") == {"args.fsdp"}
    named = ', "transformer_layer_cls_to_wrap": ["Qwen3_5DecoderLayer"]'
    assert "fsdp-wrap-qwen3_5" not in findings(name, config % named)[0]
    # transformers 5.2's TrainingArguments wraps by size only for min_num_params > 0 (the "auto_wrap" option alone
    # decides the policy there; the config's auto_wrap_policy key is not read)
    assert "fsdp-wrap-qwen3_5" not in findings(name, config % ', "min_num_params": 100000000')[0]
    assert "fsdp-wrap-qwen3_5" not in findings(name, config % ', "fsdp_min_num_params": 100000000')[0]
    sized = ', "auto_wrap_policy": "SIZE_BASED_WRAP"'
    assert findings(name, config % sized)[0].get("fsdp-wrap-qwen3_5") == {"args.fsdp"}


def test_liger_is_warned_for_embedding_training_only():
    name = "ms-swift-5219-liger-embedding"
    assert findings(name)[1].get("liger-embedding") == {"args.use_liger_kernel"}
    assert "liger-embedding" not in findings(name, "args.use_liger_kernel=false")[1]
    # causal-LM training with Liger (ms-swift's liger examples) is not warned
    assert "liger-embedding" not in findings(name, "args.task_type=causal_lm", "args.model_type=null",
                                             "args.loss_type=null", "args.model=Qwen/Qwen3-0.6B")[1]


def test_flash_attention_on_heads_wider_than_256_is_refused_on_the_transformers_engine_only():
    name = "flash-attention-2427-gemma4-head-dim-512"
    assert findings(name)[0].get("flash-attn-head-dim") == {"args.attn_impl"}
    assert "flash-attn-head-dim" not in findings(name, "args.attn_impl=sdpa")[0]
    # a 256-wide model (Qwen3.5's full-attention layers) and a 128-wide one are fine with flash attention
    for model in ("Qwen/Qwen3-8B", "Qwen/Qwen3.5-9B"):
        assert "flash-attn-head-dim" not in findings(name, f"args.model={model}")[0], model


def test_llamapro_blocks_must_divide_the_layers():
    base = ("args.tuner_type=llamapro", "args.torch_dtype=bfloat16")
    # Gemma 4 26B-A4B has 30 layers: 4 new blocks (the default) do not divide them, 3 do; Qwen3-8B's 36 take 4
    assert findings(FP16_FULL, *base, "args.model=google/gemma-4-26B-A4B-it", "args.model_type=null")[0].get(
        "llamapro-blocks") == {"args.llamapro_num_new_blocks"}
    assert "llamapro-blocks" not in findings(FP16_FULL, *base, "args.model=google/gemma-4-26B-A4B-it",
                                             "args.model_type=null", "args.llamapro_num_new_blocks=3")[0]
    assert "llamapro-blocks" not in findings(FP16_FULL, *base)[0]


def test_a_local_checkpoint_whose_config_names_no_quantization_is_not_judged_by_its_name(tmp_path):
    # The -FP8 tag in a name stands in only where no config.json of the model is read: a dequantized copy kept
    # under its old name trains as the bf16 model it is.
    import json

    from swift_ext.planner.shape_lookup import _bundled_entry

    entry, _ = _bundled_entry("Qwen/Qwen3-8B")
    local = tmp_path / "Qwen3-8B-FP8-dequantized-bf16"
    local.mkdir()
    (local / "config.json").write_text(json.dumps(entry["config"]), encoding="utf-8")
    errors, warnings = findings(FP8_LORA, f"args.model={local}", "launch.gpu=H100")
    assert "quantized-training" not in errors and "quantized-training" not in warnings, (errors, warnings)
    errors, _ = findings(FP8_LORA, "launch.gpu=H100")  # the published FP8 release, by name: refused
    assert "quantized-training" in errors


GRPO_GPTQ = "llamafactory-1545-grpo-lora-gptq-sync"


def test_grpo_lora_on_gptq_with_vllm_is_refused_on_the_model():
    assert findings(GRPO_GPTQ)[0].get("rollout-merge-quantized") == {"args.model"}
    for runs in (("args.model=Qwen/Qwen2.5-7B-Instruct",),                        # unquantized release
                 ("args.model=Qwen/Qwen2.5-7B-Instruct", "args.quant_method=bnb",  # QLoRA: bnb merges dequantized
                  "args.quant_bits=4"),
                 ("args.model=Qwen/Qwen2.5-7B-Instruct-AWQ",),                    # not judged: no engine line read
                 ("args.use_vllm=false",)):                                      # no weight sync
        assert "rollout-merge-quantized" not in findings(GRPO_GPTQ, *runs)[0], runs


def test_liger_loss_with_a_lora_head_is_warned_for_grpo_and_gkd_only():
    name = "trl-4612-grpo-liger-lm-head-lora"
    assert findings(name)[1].get("liger-lm-head-adapter") == {"args.use_liger_kernel"}
    # a dotted name of the head counts as the head too
    assert findings(name, "args.target_modules=[all-linear, model.lm_head]")[1].get("liger-lm-head-adapter") == \
        {"args.use_liger_kernel"}
    # without Liger the head's LoRA enters the loss through the head's forward
    assert "liger-lm-head-adapter" not in findings(name, "args.use_liger_kernel=false")[1]
    # LoRA off the head (all-linear leaves lm_head out), or the head trained whole through modules_to_save
    assert "liger-lm-head-adapter" not in findings(name, "args.target_modules=[all-linear]")[1]
    assert "liger-lm-head-adapter" not in findings(name, "args.target_modules=[all-linear]",
                                                   "args.modules_to_save=[lm_head]")[1]
    # full training reads the trained head's own weight
    assert "liger-lm-head-adapter" not in findings(name, "args.tuner_type=full", "args.target_modules=null")[1]


def test_the_liger_loss_reads_the_head_weight_directly():
    # the installed trainers the rule relies on: the fused loss takes the head's .weight, not the head's forward
    import inspect

    from swift.rlhf_trainers.gkd_trainer import GKDTrainer
    from swift.rlhf_trainers.grpo_trainer import GRPOTrainer
    assert "lin_weight=unwrapped_model.lm_head.weight" in inspect.getsource(GRPOTrainer.compute_liger_loss)
    assert "student_weight=student_head.weight" in inspect.getsource(GKDTrainer._compute_liger_loss)


def test_float16_on_gemma_is_warned_and_bfloat16_or_other_models_are_not():
    name = "trl-3236-gemma3-dpo-fp16-nan"
    assert findings(name)[1].get("fp16-gemma") == {"args.torch_dtype"}
    assert findings(name, "args.model=google/gemma-2-9b-it")[1].get("fp16-gemma") == {"args.torch_dtype"}
    assert findings(name, "args.torch_dtype=bfloat16", "args.fp16=true")[1].get("fp16-gemma") == {"args.fp16"}
    for fine in (("args.torch_dtype=bfloat16",), ("args.torch_dtype=float32",),
                 ("args.model=Qwen/Qwen2.5-7B-Instruct",),   # not a Gemma 2/3 release
                 ("engine=megatron", "launch.gpu=A100-80G")):
        assert "fp16-gemma" not in findings(name, *fine)[1], fine


def test_flash_attention_4_is_refused_below_hopper_and_2_is_not():
    fa4 = ("args.attn_impl=flash_attention_4",)
    assert findings(V100_FLASH, *fa4, "launch.gpu=A100-80G")[0].get("flash-attn-gpu") == {"args.attn_impl"}
    assert "flash-attn-gpu" not in findings(V100_FLASH, *fa4, "launch.gpu=H100")[0]
    for impl in ("flash_attn", "flash_attention_3"):  # transformers takes FlashAttention 2 and 3 on Ampere
        assert "flash-attn-gpu" not in findings(V100_FLASH, f"args.attn_impl={impl}", "launch.gpu=A100-80G")[0], impl


def test_transformers_sets_the_flash_attention_4_floor():
    from transformers.modeling_flash_attention_utils import FLASH_ATTENTION_COMPATIBILITY_MATRIX as matrix

    from swift_ext.planner.trainer_rules import FLASH_IMPL_MIN_CAPABILITY
    assert (matrix[4]["cuda_min_major_version"], 0) == FLASH_IMPL_MIN_CAPABILITY["flash_attention_4"]
    assert matrix[2].get("cuda_min_major_version", 0) <= 8 and matrix[3].get("cuda_min_major_version", 0) <= 8
