"""ms-swift 4.6's refusals that depend on the model being multimodal, both engines: LoRA's `all-linear` on a
vision-language model with every part frozen (nothing left to target), and `truncation_strategy split`, which
ms-swift only takes for pre-training without lazy tokenization -- and lazy tokenization is what it picks for a
multimodal model (and a stated lazy_tokenize under group_by_length, which needs the eager lengths). Each names the file and function of the installed `swift` package it mirrors; rules.py registers
MULTIMODAL_RULES with its own."""

from __future__ import annotations

from swift_ext.msswift.model_table import model_meta, template_for
from swift_ext.msswift.template_system import chat_template_on

# swift/tuner_plugin/mapping.py tuners_map: these tuners build their own adapters (TunerMixin.prepare_model calls
# their prepare_model, not prepare_adapter), so get_target_modules never runs for them on engine swift.
_PLUGIN_TUNERS = ("ia3", "lora_llm", "dummy")


def _multimodal(args) -> str | None:
    """The model_type when ms-swift's registry calls the model multimodal, else None (text-only or unknown)."""
    meta = model_meta(args.str("model"), args.str("model_type")) if args.str("model") else None
    return meta["model_type"] if meta is not None and meta["multimodal"] else None


def lora_targets_all_frozen(recipe, args, err, warn):
    # Both engines expand `all-linear` on a multimodal model into one regex over the parts left unfrozen:
    # swift/utils/transformers_utils.py get_multimodal_target_regex (engine swift, from
    # swift/pipelines/train/tuner.py get_target_modules, called first thing in prepare_adapter) and
    # swift/megatron/utils/utils.py get_multimodal_target_regex (from get_target_modules in prepare_adapter, which
    # prepare_mcore_model runs for tuner_type lora). Both `assert len(modules) > 0, f'modules: {modules}'` -- with
    # freeze_llm, freeze_vit and freeze_aligner all true there is no module to put LoRA on, and the run stops
    # building the model. freeze_vit and freeze_aligner default to true, so `freeze_llm: true` alone is enough.
    # (tuner_type full with everything frozen is not judged here: it is a freeze list, not an assertion.)
    tuner = args.str("tuner_type") or ("lora" if recipe.engine == "swift" else "full")
    if recipe.command not in ("sft", "pt", "rlhf") or tuner == "full":
        return
    if "all-linear" not in args.list("target_modules") or args.str("target_regex"):
        return  # a target_regex replaces target_modules (TunerArguments / MegatronTunerMixin __post_init__)
    if recipe.engine == "swift":
        if tuner in _PLUGIN_TUNERS or args.str("resume_from_checkpoint") or args.list("adapters"):
            return  # a plugin tuner, or an adapter loaded (Swift.from_pretrained) instead of built
    elif tuner != "lora" or args.bool("language_model_only"):
        return  # lora_llm fixes freeze_llm false; language_model_only builds no vision tower
    if not all(args.bool(k) for k in ("freeze_llm", "freeze_vit", "freeze_aligner")):
        return
    model_type = _multimodal(args)
    if model_type is None:
        return
    err("lora-multimodal-targets", f"tuner_type {tuner} with target_modules all-linear on multimodal {model_type} "
        "and freeze_llm, freeze_vit and freeze_aligner all true leaves no module for LoRA: ms-swift's "
        "get_multimodal_target_regex asserts (\"modules: []\") while building the model", "freeze_llm",
        hint="freeze_llm: false to put LoRA on the language model, or freeze_vit: false / freeze_aligner: false "
        "for the vision side")


def truncation_split(recipe, args, err, warn):
    # swift/pipelines/train/sft.py SwiftSft._encode_dataset (MegatronSft inherits it), before any encoding:
    #   if args.truncation_strategy == 'split':
    #       if args.task_type != 'causal_lm' or template.mode != 'train' or args.use_chat_template: raise ValueError(
    #           '`--truncation_strategy split` is currently only supported for pre-training.')
    #       assert not args.lazy_tokenize, '`--truncation_strategy split` does not support lazy_tokenize'
    # use_chat_template defaults to true except for `pt` (PretrainArguments / MegatronPretrainArguments); the RLHF
    # templates are not in 'train' mode; lazy_tokenize left unset becomes true for a multimodal model
    # (swift/arguments/base_args/base_args.py BaseArguments._init_lazy_tokenize: unless streaming, packing,
    # group_by_length or a cached_dataset). GRPO/GKD skip _encode_dataset's check (pre_process false); GRPO refuses
    # split itself (grpo-truncation).
    if args.str("truncation_strategy") != "split" or recipe.command not in ("sft", "pt", "rlhf"):
        return
    rlhf_type = args.str("rlhf_type") if recipe.command == "rlhf" else None
    if rlhf_type in ("grpo", "gkd"):
        return
    if not (args.list("dataset") or args.list("val_dataset")):
        return  # only cached datasets: _encode_dataset is not reached
    if recipe.command == "rlhf":
        err("truncation-split", f"truncation_strategy split with rlhf_type {rlhf_type or 'dpo'}: ms-swift splits "
            "samples only for pre-training and refuses it before encoding (\"only supported for pre-training\")",
            "truncation_strategy", hint="truncation_strategy: delete (or left/right)")
        return
    task_type = args.str("task_type") or "causal_lm"
    if task_type != "causal_lm":
        err("truncation-split", f"truncation_strategy split with task_type {task_type}: ms-swift splits samples only "
            "for causal-LM pre-training (\"only supported for pre-training\")", "truncation_strategy",
            hint="truncation_strategy: delete (or left/right)")
        return
    if chat_template_on(recipe, args):
        where = f"ms-swift's default for `{recipe.command}`" if not args.has("use_chat_template") else "set"
        err("truncation-split", f"truncation_strategy split with use_chat_template true ({where}): ms-swift splits "
            "samples only for pre-training and refuses the chat template (\"only supported for pre-training\")",
            "truncation_strategy", hint="command pt (use_chat_template false), or truncation_strategy: delete")
        return
    lazy = args.raw("lazy_tokenize")
    why = "set"
    if lazy is None:
        model_type = _multimodal(args)
        auto = (model_type is not None and not args.bool("streaming") and not args.bool("packing")
                and not args.bool("group_by_length") and not args.list("cached_dataset")
                and not args.list("cached_val_dataset"))
        lazy, why = auto, f"ms-swift's choice for multimodal {model_type}"
    if lazy is True or args.bool("lazy_tokenize"):
        # the flag the recipe wrote is the one to change: lazy_tokenize where it is set, else the split
        err("truncation-split", f"truncation_strategy split with lazy_tokenize true ({why}): ms-swift asserts "
            "\"`--truncation_strategy split` does not support lazy_tokenize\" before encoding",
            "lazy_tokenize" if args.has("lazy_tokenize") else "truncation_strategy",
            hint="lazy_tokenize: false (split tokenizes the dataset ahead), or packing: true")


def lazy_group_by_length(recipe, args, err, warn):
    # swift/trainers/mixin.py SwiftMixin.get_train_dataloader (no sequence parallelism): group_by_length hands
    # BatchSamplerShard `train_dataset['lengths']`. Only the eager path adds that column (swift/pipelines/train/sft.py
    # SwiftSft._encode_dataset: AddLengthPreprocessor when not lazy_tokenize); a lazy dataset is a LazyLLMDataset
    # whose __getitem__ passes a string key to the raw rows (swift/dataset/utils.py), and datasets raises "Column
    # 'lengths' doesn't exist" when training starts. Left unset, lazy_tokenize is false under group_by_length
    # (BaseArguments._init_lazy_tokenize), so only a stated true fails. Engine megatron runs the same dataset code
    # (MegatronSft keeps SwiftSft._prepare_dataset) and its sampler reads the column too
    # (megatron/trainers/batch_sampler.py MegatronPretrainingRandomSampler: self.dataset['lengths']), reachable with
    # padding_free false (MegatronArguments refuses group_by_length with padding_free, its default, itself).
    if recipe.command not in ("sft", "pt") or not args.bool("group_by_length"):
        return
    if recipe.engine == "megatron" and args.bool("padding_free"):
        return  # megatron_args.py's own "group_by_length is not compatible with padding_free" comes first
    if recipe.engine not in ("swift", "megatron"):
        return
    if args.raw("lazy_tokenize") is not True or args.bool("streaming"):
        return
    if not args.list("dataset"):
        return  # cached_dataset alone: swift export's rows carry 'lengths' (SwiftSft._encode_dataset's AddLengthPreprocessor)
    if recipe.engine == "swift" and (args.int("sequence_parallel_size", 1) or 1) > 1:
        return  # ms-swift's sequence-parallel dataloader is built another way
    err("lazy-group-by-length", "group_by_length with lazy_tokenize true: ms-swift's batch sampler reads the "
        "dataset's 'lengths' column, which only eager tokenization adds -- the lazy dataset hands the key to the raw "
        "rows and training stops at its first dataloader (\"Column 'lengths' doesn't exist\")", "lazy_tokenize",
        hint="lazy_tokenize: false (group_by_length needs the lengths up front), or drop group_by_length")


def swift_vit_lr(recipe, args, err, warn):
    # swift/trainers/arguments.py TrainArgumentsMixin.__post_init__: vit_lr or aligner_lr with optimizer unset picks
    # optimizer 'multimodal'; swift/optimizers/multimodal.py MultimodalOptimizerCallback.create_optimizer then reads
    # model.model_meta.model_arch.vision_tower, which a text model's arch (ModelKeys, or None) does not have: an
    # AttributeError when the Trainer builds its optimizer. (Engine megatron's assert is startup_rules_megatron.py's.)
    if recipe.engine != "swift" or recipe.command not in ("sft", "pt", "rlhf"):
        return
    given = [k for k in ("vit_lr", "aligner_lr") if args.raw(k) is not None]
    if not given or (args.str("optimizer") or "multimodal") != "multimodal":
        return
    meta = model_meta(args.str("model"), args.str("model_type")) if args.str("model") else None
    if meta is not None and not meta["multimodal"]:
        err("vit-lr-multimodal", f"{' and '.join(given)} on text model {meta['model_type']}: ms-swift switches to its "
            "multimodal optimizer, which looks up the model's vision tower and fails building the optimizer",
            given[0], hint=f"drop {' and '.join(given)}")


# The model types whose loader's get_processor goes through swift/model/models/qwen.py compat_qwen_vl_utils (MAX_PIXELS,
# MIN_PIXELS, VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS -> `int(value)` when set and the matching *_TOKEN_NUM is not) and
# patch_qwen_vl_utils (get_env_args(key, int) -- float for FPS -- on every budget qwen_vl_utils' vision_process has):
# Qwen2VLLoader and its subclasses, and mllm.py's keye_vl loaders (keye_vl_utils), as the installed ms-swift 4.6
# registers them (swift.model.register.MODEL_MAPPING, loaders whose classes name qwen_vl_utils / keye_vl_utils).
QWEN_VL_UTILS_TYPES = frozenset({
    "clef", "jev", "keye_vl", "keye_vl_1_5", "omnijev", "ovis_ocr2", "qwen2_5_omni", "qwen2_5_vl", "qwen2_gme",
    "qwen2_vl", "qwen3_5", "qwen3_5_emb", "qwen3_5_moe", "qwen3_omni_moe", "qwen3_vl", "qwen3_vl_emb", "qwen3_vl_moe",
    "qwen3_vl_reranker", "qwen4_exp", "wemm_embedding"})
# compat_qwen_vl_utils: the pixel budgets, each only while its token budget is unset. patch_qwen_vl_utils: the budgets
# qwen_vl_utils 0.0.14 (the version ms-swift's Qwen2VLLoader takes) defines.
_PIXEL_ENV = {"MAX_PIXELS": "IMAGE_MAX_TOKEN_NUM", "MIN_PIXELS": "IMAGE_MIN_TOKEN_NUM",
              "VIDEO_MAX_PIXELS": "VIDEO_MAX_TOKEN_NUM", "VIDEO_MIN_PIXELS": "VIDEO_MIN_TOKEN_NUM"}
_MEDIA_INT_ENV = ("IMAGE_MAX_TOKEN_NUM", "IMAGE_MIN_TOKEN_NUM", "VIDEO_MAX_TOKEN_NUM", "VIDEO_MIN_TOKEN_NUM",
                  "FPS_MAX_FRAMES", "FPS_MIN_FRAMES", "SPATIAL_MERGE_SIZE", "MAX_RATIO", "FRAME_FACTOR")


def media_env_numbers(recipe, args, err, warn):
    # The processor loads on every rank before any data: a budget int() refuses ("1280*28*28", "1003520.0", "1e6":
    # shell arithmetic or a float written into the recipe) is a ValueError at start-up. Empty values are left alone
    # (compat_qwen_vl_utils skips them). Other models never read these variables.
    meta = model_meta(args.str("model"), args.str("model_type")) if args.str("model") else None
    if meta is None or meta["model_type"] not in QWEN_VL_UTILS_TYPES:
        return
    read = [p for p, tokens in _PIXEL_ENV.items() if not str(recipe.env.get(tokens) or "").strip()]
    for name in (*read, *_MEDIA_INT_ENV, "FPS"):
        value = recipe.env.get(name)
        if value is None or not str(value).strip():
            continue
        try:
            (float if name == "FPS" else int)(str(value))
        except ValueError:
            shown = value if len(str(value)) <= 40 else str(value)[:37] + "..."
            err("media-env", f"env {name}={shown!r}: ms-swift reads it with {'float' if name == 'FPS' else 'int'}() "
                f"when it loads {meta['model_type']}'s processor (swift/model/models/qwen.py compat_qwen_vl_utils / "
                "patch_qwen_vl_utils), so every rank stops with a ValueError before training", f"env.{name}",
                hint=f"{name}: the number written out in digits" + ("" if name == "FPS" else " (e.g. 1003520, not "
                                                                    "1280*28*28 or 1003520.0)"))


# The Qwen-VL media budgets as compat_qwen_vl_utils / patch_qwen_vl_utils read them (swift/model/models/qwen.py), plus
# VIDEO_TOTAL_PIXELS (patch_qwen_vl_utils sets it beside VIDEO_MAX_PIXELS). No other ms-swift 4.6 code reads these
# names, except MOSS-VL's template (swift/template/templates/moss.py MossVLTemplate._processor_env_keys: the video
# budgets and frame rate, read with os.getenv in _encode) and Ovis2.5's (swift/template/templates/qwen.py
# Ovis2_5Template.init_env_args: get_env_args min_pixels / max_pixels / video_max_pixels, which it hands its
# model's preprocess_inputs).
QWEN_MEDIA_ENV = ("MAX_PIXELS", "MIN_PIXELS", "VIDEO_MAX_PIXELS", "VIDEO_MIN_PIXELS", "VIDEO_TOTAL_PIXELS",
                  *_MEDIA_INT_ENV, "FPS")
_OTHER_READERS = {"moss_vl": ("VIDEO_MIN_PIXELS", "VIDEO_MAX_PIXELS", "FPS", "FPS_MIN_FRAMES", "FPS_MAX_FRAMES"),
                  "ovis2_5": ("MIN_PIXELS", "MAX_PIXELS", "VIDEO_MAX_PIXELS")}


def media_env_unread(recipe, args, err, warn):
    # A multimodal model whose loader does not go through qwen_vl_utils sizes images and videos with its own
    # processor (or its template's own variables: InternVL's MAX_NUM / VIDEO_SEGMENTS, MiniCPM-V's MAX_NUM_FRAMES, ...):
    # MAX_PIXELS, VIDEO_MAX_PIXELS, FPS_MAX_FRAMES and the rest change nothing, and a budget the recipe meant to cap
    # sequence length or memory is not applied. ms-swift says nothing (the variables are simply never read).
    model_type = _multimodal(args)
    if model_type is None or model_type in QWEN_VL_UTILS_TYPES:
        return
    unread = [n for n in QWEN_MEDIA_ENV if str(recipe.env.get(n) or "").strip()
              and n not in _OTHER_READERS.get(model_type, ())]
    if not unread:
        return
    for name in unread:
        warn("media-env-unread", f"env {name}: ms-swift reads it only for the Qwen-VL family's processor "
             f"(qwen_vl_utils: Qwen2/2.5/3-VL, Qwen3.5/3.6, Qwen-Omni, Keye-VL), not for {model_type}, whose images "
             "and videos keep their own processor's sizes and frame counts", f"env.{name}",
             hint="the template argument max_pixels (rescales images for every multimodal model), or the model's own "
                  "variables where its template has them (ms-swift's command-line parameters, model-specific section)")


# Templates whose _post_encode runs the vision tower on a text-only batch only under DeepSpeed (`elif
# is_deepspeed_enabled():` a dummy image; swift/template/templates/internvl.py InternvlTemplate /
# InternvlhfTemplate, moonshot.py Kimi*, kwai.py KeyeVLTemplate, qwen.py Ovis2_5Template, SailVLTemplate), as the
# installed registry's classes say (tests/test_multimodal_rules.py re-derives it). The Qwen-VL family and the templates
# using Template._get_inputs_embeds_hf run a dummy image on every training batch instead.
DEEPSPEED_ONLY_DUMMY_TEMPLATES = frozenset({
    "internvl", "internvl_phi3", "internvl2", "internvl2_phi3", "internvl2_5", "internvl3_5", "internvl3_5_gpt",
    "interns1", "internvl_hf", "keye_vl", "kimi_vl", "kimi_k25", "kimi_k3", "ovis2_5", "sail_vl2"})


def ddp_text_only_vision(recipe, args, err, warn):
    # transformers trainer.py Trainer._build_accelerator_args: with ddp_find_unused_parameters unset, a
    # PreTrainedModel (tuner_type full) under gradient checkpointing (ms-swift's default) gets find_unused_parameters
    # False; a LoRA PeftModel gets True. A micro-batch with no image then leaves the trainable vision tower / aligner
    # without gradients on that rank, and DDP stops at the next step ("Expected to have finished reduction in the
    # prior iteration before starting a new one"). Whether the data mixes text-only rows is not read here: a warning.
    if recipe.engine != "swift" or recipe.launch.scheduled or recipe.launch.world_size < 2:
        return
    if args.str("deepspeed") or args.str("fsdp") or (args.str("tuner_type") or "lora") != "full":
        return
    if args.bool("ddp_find_unused_parameters") or args.bool("gradient_checkpointing") is False:
        return
    if args.bool("freeze_vit") is not False and args.bool("freeze_aligner") is not False:
        return  # nothing trainable in the vision path
    if _multimodal(args) is None:
        return
    choice = template_for(args.str("model"), args.str("model_type"), args.str("template"))
    if choice is None or choice.template not in DEEPSPEED_ONLY_DUMMY_TEMPLATES:
        return
    key = "freeze_vit" if args.bool("freeze_vit") is False else "freeze_aligner"
    warn("ddp-text-only-vision", f"full training with {key} false on DDP ({recipe.launch.world_size} processes, no "
         f"DeepSpeed/FSDP): template {choice.template} runs the vision tower on a batch without images only under "
         "DeepSpeed, and with gradient checkpointing DDP does not look for unused parameters, so a micro-batch of "
         "text-only rows on any rank stops training (\"Expected to have finished reduction in the prior "
         "iteration\")", key,
         hint="deepspeed: zero2 (the template then feeds a dummy image), or ddp_find_unused_parameters: true, or "
              "rows that all carry an image")


# Module names a multimodal model's towers give to a wrapper peft cannot adapt. transformers 5.19
# models/gemma4/modeling_gemma4.py: Gemma4ClippableLinear (an nn.Module holding .linear, not an nn.Linear) is the
# vision tower's q/k/v/o_proj and gate/up/down_proj (Gemma4VisionAttention, Gemma4VisionMLP) and the audio tower's
# q/k/v_proj, post, ffw_layer_1/2, linear_start/end. peft 0.20 tuners/lora/model.py LoraModel._create_new_module
# raises "Target module ... is not supported" for it; peft matches target_modules names by suffix over the whole model
# (BaseTuner.inject_adapter), towers included, and ms-swift passes explicit names on unchanged
# (swift/pipelines/train/tuner.py get_target_modules; only all-linear becomes a language-model regex, and
# find_all_linears skips gemma4clippablelinear). tests/test_multimodal_rules.py re-reads the names from transformers.
WRAPPED_TOWER_LINEARS = {"gemma4": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                                    "post", "ffw_layer_1", "ffw_layer_2", "linear_start", "linear_end")}
_PEFT_LORA_TUNERS = ("lora", "longlora", "adalora")  # peft LoraModel / AdaLoraModel: target_modules by name


def lora_tower_wrapper_targets(recipe, args, err, warn):
    if recipe.engine != "swift" or (args.str("tuner_type") or "lora") not in _PEFT_LORA_TUNERS:
        return
    model_type = _multimodal(args)
    wrapped = WRAPPED_TOWER_LINEARS.get(model_type or "")
    targets = [str(t) for t in args.list("target_modules")]
    if not wrapped or args.str("target_regex") or "all-linear" in targets:
        return
    hit = [t for t in targets if t.rsplit(".", 1)[-1] in wrapped]
    if not hit:
        return
    err("lora-tower-wrapper", f"target_modules {hit} on {model_type}: its vision/audio towers have modules of those names "
        "that wrap their linear (Gemma4ClippableLinear), and peft matches the names there too and refuses them "
        "(\"Target module Gemma4ClippableLinear(...) is not supported\") when the adapter is built", "target_modules",
        hint="target_modules: [all-linear] (ms-swift then targets the language model's linears only), or a "
             "target_regex limited to the language model (e.g. '^model\\.language_model.*\\.(q_proj|v_proj)$')")


def vit_lr_frozen(recipe, args, err, warn):
    # vit_lr / aligner_lr set a learning rate for trainable parameters only: engine swift's multimodal optimizer
    # (swift/optimizers/multimodal.py get_param_startswith skips `not p.requires_grad`) and engine megatron's parameter
    # groups (swift/megatron/trainers/base.py _get_param_groups: `if not param.requires_grad: continue`). A frozen
    # tower has none: tuner full freezes it through freeze_parameters (TunerArguments / MegatronArguments
    # _init_multimodal_full), LoRA all-linear leaves it out of the target regex (get_multimodal_target_regex). freeze_vit
    # and freeze_aligner default to true, so vit_lr alone trains nothing at that rate, without a word.
    if recipe.command not in ("sft", "pt", "rlhf"):
        return
    tuner = args.str("tuner_type") or ("lora" if recipe.engine == "swift" else "full")
    if tuner not in ("full", "lora") or args.list("trainable_parameters") or args.str("trainable_parameters_regex"):
        return  # lora_llm / custom tuners train the towers themselves; an explicit trainable list may unfreeze them
    if tuner == "lora" and ("all-linear" not in args.list("target_modules") or args.str("target_regex")
                            or args.list("modules_to_save")):
        return  # explicit targets or modules_to_save may reach a tower whatever the freeze flags say
    if args.list("adapters") or args.str("resume_from_checkpoint") or args.bool("language_model_only"):
        return
    if recipe.engine == "swift" and (args.str("optimizer") or "multimodal") != "multimodal":
        return
    model_type = _multimodal(args)
    if model_type is None:
        return
    for lr, freeze, part in (("vit_lr", "freeze_vit", "vision tower"), ("aligner_lr", "freeze_aligner", "aligner")):
        if args.raw(lr) is None or args.bool(freeze) is False:
            continue
        why = "set" if args.has(freeze) else "ms-swift's default"
        warn("vit-lr-frozen", f"{lr} with {freeze} true ({why}) on multimodal {model_type}: the {part} has no "
             f"trainable parameter (tuner_type {tuner}), and ms-swift gives {lr} only to trainable ones, so it changes "
             "nothing", lr, hint=f"{freeze}: false to train the {part} at {lr}, or drop {lr}")


def eval_vllm_vision_lora(recipe, args, err, warn):
    # swift-ext evaluates engine swift's LoRA checkpoints with eval.backend vllm as `swift infer --infer_backend vllm
    # --adapters CKPT` (after/evaluate.py). `all-linear` reaches the vision tower / aligner when they are not frozen
    # (swift/utils/transformers_utils.py get_multimodal_target_regex), and vLLM applies LoRA to the language model
    # only: modelscope/ms-swift#4974 (InternVL3-1B, freeze_vit/freeze_aligner false, swift deploy with vLLM and
    # --adapters: "expected target modules in [...] but received ['mlp1.1', ...]"; the pt backend ran it), #5252 (the
    # same with ms-swift's LoRA demo); vllm-project/vllm#27916: other releases drop the vision LoRA with a log line.
    if recipe.engine != "swift" or recipe.eval is None or recipe.eval.backend != "vllm":
        return
    if (args.str("tuner_type") or "lora") != "lora" or "all-linear" not in args.list("target_modules") \
            or args.str("target_regex"):
        return
    key = next((k for k in ("freeze_vit", "freeze_aligner") if not args.bool(k)), None)
    model_type = _multimodal(args)
    if key is None or model_type is None:
        return
    warn("eval-vllm-vision-lora", f"{key} false with LoRA all-linear on multimodal {model_type} and eval.backend vllm: each "
         "checkpoint is evaluated as `swift infer --infer_backend vllm --adapters CKPT`, and vLLM applies LoRA to the "
         "language model only -- it refuses the adapter (\"expected target modules in [...]\") or drops its vision "
         "part, so no checkpoint is scored as trained", key,
         hint="eval.backend: transformers, or freeze_vit: true and freeze_aligner: true")


MULTIMODAL_RULES = [lora_targets_all_frozen, truncation_split, lazy_group_by_length, swift_vit_lr, media_env_numbers,
                    media_env_unread, lora_tower_wrapper_targets, ddp_text_only_vision, vit_lr_frozen,
                    eval_vllm_vision_lora]
