"""The entries of the refusals that hang on the model being multimodal, both engines (msswift/multimodal_rules.py).
spec/ruleset.py joins them with the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import Evidence, RuleInfo, code

MULTIMODAL_RULE_INFO = [
    RuleInfo("lora-multimodal-targets", "error", "LoRA with target_modules all-linear on a multimodal model needs "
             "one of freeze_llm, freeze_vit, freeze_aligner false (freeze_vit and freeze_aligner default to true)",
             (code("ms-swift swift/utils/transformers_utils.py: get_multimodal_target_regex (assert len(modules) > 0, "
                   "from swift/pipelines/train/tuner.py get_target_modules in prepare_adapter)"),
              code("ms-swift swift/megatron/utils/utils.py: get_multimodal_target_regex (the same assert, from "
                   "get_target_modules in prepare_adapter, run by prepare_mcore_model for tuner_type lora)")),
             "both engines, command sft/pt/rlhf, a model ms-swift's registry marks multimodal, an adapter tuner "
             "(engine swift: not ia3/lora_llm/dummy, no adapters or resume_from_checkpoint; engine megatron: lora, "
             "not language_model_only), all-linear in target_modules and no target_regex, the three freeze flags true"),
    RuleInfo("truncation-split", "error", "truncation_strategy split only for causal-LM pre-training: not with the "
             "chat template (sft's default), an RLHF algorithm, another task_type, or lazy_tokenize (ms-swift's "
             "default for a multimodal model)",
             (code("ms-swift swift/pipelines/train/sft.py: SwiftSft._encode_dataset (\"`--truncation_strategy split` "
                   "is currently only supported for pre-training.\"; assert not args.lazy_tokenize; MegatronSft "
                   "inherits it)"),
              code("ms-swift swift/arguments/base_args/base_args.py: BaseArguments._init_lazy_tokenize (unset: true "
                   "for a multimodal model without streaming, packing, group_by_length or a cached_dataset)"),
              code("ms-swift swift/arguments/pretrain_args.py: PretrainArguments (use_chat_template False; "
                   "TemplateArguments turns None into True elsewhere)")),
             "both engines, command sft/pt/rlhf (not GRPO/GKD: their datasets are encoded later; GRPO's own refusal "
             "is grpo-truncation), a dataset or val_dataset to encode; lazy_tokenize judged where the registry knows "
             "the model"),
    RuleInfo("lazy-group-by-length", "error", "group_by_length with a stated lazy_tokenize true -- the batch sampler "
             "reads a 'lengths' column only eager tokenization adds (both engines)",
             (code("ms-swift swift/trainers/mixin.py: SwiftMixin.get_train_dataloader (group_by_length: "
                   "batch_sampler_params['lengths'] = train_dataset['lengths'])"),
              code("ms-swift swift/dataset/utils.py: LazyLLMDataset.__getitem__ (a string key goes to the raw rows); "
                   "swift/pipelines/train/sft.py SwiftSft._encode_dataset (AddLengthPreprocessor only when not "
                   "lazy_tokenize)"),
              Evidence("report", "modelscope/ms-swift#8470", "Qwen3.5-2B full SFT with --lazy_tokenize true: setting "
                       "group_by_length true gives \"ValueError: Column 'lengths' doesn't exist\"")),
             "command sft/pt, group_by_length true, lazy_tokenize stated true (unset it is false under "
             "group_by_length: BaseArguments._init_lazy_tokenize), a dataset to tokenize (cached_dataset rows carry "
             "lengths), no streaming; engine swift with sequence_parallel_size 1, or engine megatron with padding_free "
             "false (megatron/trainers/batch_sampler.py MegatronPretrainingRandomSampler reads dataset['lengths'])"),
    RuleInfo("template-system", "error, warning", "a system prompt (the system argument, or a dataset row's system "
             "turn) for a template without a system slot (deepseek_ocr, paligemma, molmo, ...; every template under "
             "use_chat_template false): refused at start-up for the argument; rows dropped (warning), or the run "
             "refused when every row has one",
             (code("ms-swift swift/template/template_meta.py: TemplateMeta.check_system (\"The template does not "
                   "support `system`\"; support_system from __post_init__)"),
              code("ms-swift swift/template/base.py: Template.__init__ (check_system(default_system)) and "
                   "Template._get_system (check_system of the row's system)"),
              Evidence("report", "modelscope/ms-swift#8159", "swift sft of DeepSeek-OCR-2 (template deepseek_ocr2) "
                       "on rows with a system turn: \"AssertionError: The template does not support `system`\"")),
             "both engines, command sft/pt/rlhf, a template ms-swift's registry resolves (or use_chat_template "
             "false); rows: local JSON datasets the validator reads"),
    RuleInfo("media-env", "error", "the recipe env's image/video budgets a Qwen-VL-family processor reads (MAX_PIXELS, "
             "MIN_PIXELS, VIDEO_MAX/MIN_PIXELS while their *_TOKEN_NUM is unset; IMAGE/VIDEO_MAX/MIN_TOKEN_NUM, "
             "FPS_MAX/MIN_FRAMES, SPATIAL_MERGE_SIZE, MAX_RATIO, FRAME_FACTOR; FPS) are numbers int() (FPS: float()) "
             "reads: not shell arithmetic such as 1280*28*28, not 1003520.0",
             (code("ms-swift swift/model/models/qwen.py: compat_qwen_vl_utils (int(value) of the *_PIXELS variables)"),
              code("ms-swift swift/model/models/qwen.py: patch_qwen_vl_utils (get_env_args(key, int | float))"),
              code("ms-swift swift/utils/utils.py: get_env_args (type_func(value))")),
             "both engines, model types whose loader goes through qwen_vl_utils / keye_vl_utils (Qwen2-VL, Qwen2.5-VL, "
             "Qwen3-VL, Qwen3.5/3.6, the Omni models, Keye-VL, ...); the env values set and not empty"),
    RuleInfo("lora-tower-wrapper", "error", "LoRA target_modules names (not all-linear) that a multimodal model's towers give "
             "to a wrapper peft cannot adapt: Gemma 4's vision/audio q/k/v/o_proj, gate/up/down_proj, post, ffw_layer_*, "
             "linear_start/end are Gemma4ClippableLinear",
             (code("transformers models/gemma4/modeling_gemma4.py: Gemma4ClippableLinear (nn.Module holding .linear) in "
                   "Gemma4VisionAttention / Gemma4VisionMLP / the audio tower"),
              code("peft tuners/lora/model.py: LoraModel._create_new_module (\"Target module ... is not supported\")"),
              code("ms-swift swift/pipelines/train/tuner.py: get_target_modules (explicit names passed on; all-linear -> "
                   "the language-model regex, find_all_linears skips gemma4clippablelinear)"),
              Evidence("report", "huggingface/peft#3129", "Gemma 4 LoRA with target_modules q_proj/k_proj/v_proj meant "
                       "for the language model hits the audio tower's Gemma4ClippableLinear (as peft PR #3154 quotes it)")),
             "engine: swift, tuner_type lora / longlora / adalora, target_modules given as names without all-linear and "
             "without target_regex, a model ms-swift's registry calls multimodal with model_type gemma4"),
    RuleInfo("ddp-text-only-vision", "warning", "full training with a trainable vision tower / aligner on DDP (no "
             "DeepSpeed/FSDP) for a template that feeds text-only batches through the vision tower only under "
             "DeepSpeed (InternVL, Kimi-VL, Keye-VL, Ovis2.5, SAIL-VL2): a micro-batch without images stops DDP",
             (code("ms-swift swift/template/templates/internvl.py: InternvlTemplate._post_encode (`elif "
                   "is_deepspeed_enabled():` dummy image; moonshot.py, kwai.py, qwen.py Ovis2_5Template alike)"),
              code("transformers trainer.py: Trainer._build_accelerator_args (find_unused_parameters = not gradient "
                   "checkpointing for a PreTrainedModel when ddp_find_unused_parameters is unset)"),
              code("torch nn/parallel/distributed.py: DistributedDataParallel.forward (\"Expected to have finished "
                   "reduction in the prior iteration before starting a new one\")")),
             "engine: swift, more than one process, no deepspeed/fsdp, tuner_type full, freeze_vit or freeze_aligner "
             "false, gradient checkpointing on (the default), ddp_find_unused_parameters not true, one of those "
             "templates; whether the rows mix text-only ones is not read"),
    RuleInfo("media-env-unread", "warning", "the Qwen-VL media budgets (MAX_PIXELS, MIN_PIXELS, VIDEO_MAX/MIN/TOTAL_PIXELS, "
             "IMAGE/VIDEO_MAX/MIN_TOKEN_NUM, FPS, FPS_MAX/MIN_FRAMES, ...) set in the recipe env for a multimodal model "
             "whose processor never reads them: the images and videos keep that model's own sizes and frame counts",
             (code("ms-swift swift/model/models/qwen.py: compat_qwen_vl_utils / patch_qwen_vl_utils (the only readers, "
                   "from the loaders of the qwen_vl_utils / keye_vl_utils model types)"),
              code("ms-swift swift/template/templates/moss.py: MossVLTemplate._processor_env_keys (MOSS-VL reads the "
                   "video budgets and frame rate itself)"),
              code("ms-swift swift/template/templates/qwen.py: Ovis2_5Template.init_env_args (Ovis2.5 reads MIN_PIXELS, "
                   "MAX_PIXELS and VIDEO_MAX_PIXELS itself)"),
              code("ms-swift swift/template/templates/internvl.py: InternvlhfTemplate._encode (load_video_hf keeps "
                   "every frame; InternvlhfTemplate.init_env_args skips InternVL's MAX_NUM / VIDEO_SEGMENTS)"),
              Evidence("report", "modelscope/ms-swift#6191", "InternVL3.5-4B-hf LoRA with MAX_PIXELS, VIDEO_MAX_PIXELS "
                       "and MAX_NUM set: rows of 256210 tokens against max_length 81420 (\"the max frame setting does not "
                       "take effect\")")),
             "both engines, a model ms-swift's registry calls multimodal whose model_type is not a qwen_vl_utils one; "
             "the env values set and not empty (MOSS-VL, Ovis2.5: the names their templates read are left out)"),
    RuleInfo("vit-lr-frozen", "warning", "vit_lr / aligner_lr on a multimodal model whose vision tower / aligner is "
             "frozen (freeze_vit / freeze_aligner true, ms-swift's default): the rate applies to trainable parameters "
             "only, so it changes nothing",
             (code("ms-swift swift/optimizers/multimodal.py: get_param_startswith (skips parameters without "
                   "requires_grad) / MultimodalOptimizerCallback.create_optimizer"),
              code("ms-swift swift/megatron/trainers/base.py: BaseMegatronTrainer._get_param_groups (skips parameters "
                   "without requires_grad; vit_lr / aligner_lr for visual._vision_tower / _aligner)"),
              code("ms-swift swift/arguments/tuner_args.py: TunerArguments._init_multimodal_full (freeze_vit -> "
                   "freeze_parameters; MegatronArguments._init_multimodal_full alike)"),
              code("ms-swift swift/utils/transformers_utils.py: get_multimodal_target_regex (a frozen part gets no "
                   "LoRA under all-linear)")),
             "both engines, command sft/pt/rlhf, tuner_type full, or lora with all-linear and no target_regex / "
             "modules_to_save; no trainable_parameters, adapters, resume_from_checkpoint or language_model_only; "
             "engine swift: optimizer unset or multimodal"),
]
