"""Engine swift: LoRA on the MoE models whose routed experts transformers 5 fuses into 3-D parameters and peft 0.20
re-targets on the fly (peft utils/transformers_weight_conversion.py _convert_peft_config_moe, run by
BaseTuner.inject_adapter for every model whose config.model_type has a transformers checkpoint conversion).

peft maps the v4 expert names in a target_modules list to the fused parameters (target_parameters): gate_proj +
up_proj -> gate_up_proj and down_proj -> down_proj (the qwen2_moe pattern), w1 + w3 -> gate_up_proj and w2 ->
down_proj (the mixtral pattern). Two consequences for ms-swift 4.6, which hands peft a list:

- lora-fused-pair: a list naming one half of a fused pair (gate_proj without up_proj, ...) is refused by that
  conversion ("Cannot convert PEFT target(s) gate_proj without also targeting up_proj because they are fused into
  gate_up_proj.") when the adapter is built.
- lora-param-wrapper: whatever reaches a fused parameter (target_parameters, or expert names peft converts) is wrapped
  in peft's ParamWrapper (tuners/lora/layer.py ParamWrapper.update_layer), which refuses lora_dropout != 0 -- ms-swift's
  default is 0.05 -- and use_dora ("lora.ParamWrapper does not work with lora_dropout != 0."), when the adapter is built.
  ms-swift's own all-linear list reaches them on a converted model with a shared expert or dense layer (GLM-4.5,
  DeepSeek-V3, Qwen3-Next): their gate/up/down_proj Linear names are the names peft converts.
- lora-all-linear-experts: ms-swift expands all-linear itself into the names of the nn.Linear leaves
  (swift/pipelines/train/tuner.py get_target_modules -> swift/utils/transformers_utils.py find_all_linears); the
  fused experts are no Linear, so on a model whose every MLP is routed (no shared expert, no dense layer) the list
  holds the attention projections only and peft's conversion, which adds the experts for the string "all-linear"
  alone, adds nothing: the routed experts stay frozen without a word (huggingface/peft#3009).

Registered with warn_rules.ENGINE_RULES.
"""

from __future__ import annotations

import importlib.metadata

from swift_ext.planner.model_shape import ModelShape
from swift_ext.spec.support import resolve_versions, version_tuple

# The model types peft 0.20 converts, by pattern: peft's _MODEL_TO_CONVERSION_PATTERN (transformers 5.19's
# conversion_mapping._MODEL_TO_CONVERSION_PATTERN plus mixtral) restricted to the patterns with fused targets
# (_MOE_FUSED_TARGETS) and a checkpoint conversion (get_checkpoint_conversion_mapping). tests/test_moe_lora_rules.py
# checks this table against the installed peft and transformers.
FUSED_PAIRS = {"qwen2_moe": ("gate_proj", "up_proj"), "mixtral": ("w1", "w3")}
CONVERTED_MODEL_TYPES = {
    "mixtral": ("minimax", "minimax_m2", "mixtral"),
    "qwen2_moe": ("afmoe", "deepseek_v2", "deepseek_v3", "deepseek_v32", "dots1", "ernie4_5_moe", "glm4_moe",
                  "glm4_moe_lite", "glm_moe_dsa", "glm4v_moe", "longcat_flash", "solar_open", "mellum", "qwen3_moe",
                  "qwen3_omni_moe", "qwen3_omni_moe_thinker", "qwen3_next", "hunyuan_v1_moe", "flex_olmo", "olmoe",
                  "exaone_moe", "cohere2_moe"),
}


def _pattern(model_type: str) -> str | None:
    return next((p for p, types in CONVERTED_MODEL_TYPES.items() if model_type in types), None)


def converted_by_peft(model_type: str | None) -> bool:
    """Whether peft 0.20 re-targets this model type's v4 expert names onto its fused expert parameters."""
    return bool(model_type) and _pattern(model_type) is not None


def _new_peft_lora(recipe, args) -> bool:
    """A new peft LoRA adapter built from a target_modules list: swift/pipelines/train/tuner.py prepare_adapter
    (tuner_backend peft, not use_swift_lora), skipped when a saved adapter is loaded instead; target_regex replaces
    the list with a string."""
    return (recipe.engine == "swift" and recipe.command in ("sft", "pt", "rlhf")
            and (args.str("tuner_type") or "lora") in ("lora", "lora_llm")
            and (args.str("tuner_backend") or "peft") == "peft" and not args.bool("use_swift_lora")
            and not args.str("target_regex") and not args.str("resume_from_checkpoint") and not args.list("adapters"))


def _fused_stack(recipe) -> bool:
    """transformers >= 5 (fused expert parameters; declared in SWIFT_EXT_TARGET_VERSIONS, else installed) under the
    installed peft >= 0.20 (the conversion and ParamWrapper these rules read); unknown versions: not judged."""
    transformers = resolve_versions(recipe.env).get("transformers")
    try:
        peft = version_tuple(importlib.metadata.version("peft"))
    except importlib.metadata.PackageNotFoundError:
        return False
    return bool(transformers) and transformers >= (5,) and peft >= (0, 20)


def _refuse_or_say(recipe, err, warn):
    """err when the recipe declares transformers >= 5 for the training machine; warn when only this machine's copy
    says so. A published MoE LoRA recipe was usually written for transformers 4 (one Linear per expert, where none of
    this fails), and the machine that plans is not the one that trains: the failure is said, with how to make it a
    verdict, rather than refusing a recipe that runs on the stack it was written for."""
    if resolve_versions(recipe.env).sources.get("transformers") != "installed":
        return err

    def say(code, message, key, hint=None):
        warn(code, message + " -- judged with this machine's transformers (installed); on a transformers 4 cluster "
             "none of this applies", key, hint=(hint or "") + "; declare the cluster's stack "
             "(SWIFT_EXT_TARGET_VERSIONS transformers=... in the recipe env) for a verdict")
    return say


def _leaf(name) -> str:
    return str(name).rsplit(".", 1)[-1]


def lora_fused_pair(recipe, args, shape: ModelShape, lay, err, warn):
    if not isinstance(shape, ModelShape) or not _new_peft_lora(recipe, args) or not _fused_stack(recipe):
        return
    pattern = _pattern(shape.model_type)
    if pattern is None:
        return
    leaves = {_leaf(t) for t in args.list("target_modules")}
    pair = FUSED_PAIRS[pattern]
    present = [p for p in pair if p in leaves]
    if len(present) != 1:
        return
    missing = next(p for p in pair if p not in present)
    err = _refuse_or_say(recipe, err, warn)
    err("lora-fused-pair", f"target_modules name {present[0]} but not {missing}: {shape.name} ({shape.model_type}) "
        f"keeps both in one fused expert parameter (gate_up_proj) under transformers 5, and peft refuses to convert "
        f"one half (\"Cannot convert PEFT target(s) {present[0]} without also targeting {missing} because they are "
        "fused into gate_up_proj.\") when ms-swift builds the adapter", "target_modules",
        hint=f"name both {pair[0]} and {pair[1]}, or neither")


# MoE model types whose routed experts transformers 5.19 keeps as fused parameters and peft 0.20 does not convert
# (GptOssExperts, Qwen3_5MoeExperts: gate_up_proj / down_proj nn.Parameter): all-linear and explicit names alike
# leave them frozen. tests/test_moe_lora_rules.py runs Swift.prepare_model on tiny ones.
UNCONVERTED_FUSED_TYPES = ("gpt_oss", "qwen3_5_moe", "qwen3_5_moe_text")


def lora_all_linear_experts(recipe, args, shape: ModelShape, lay, err, warn):
    if not isinstance(shape, ModelShape) or not shape.is_moe or not _new_peft_lora(recipe, args) \
            or not _fused_stack(recipe) or args.list("target_parameters"):
        return
    targets = [str(t) for t in args.list("target_modules")]
    if "all-linear" not in targets:
        return
    pattern = _pattern(shape.model_type)
    if pattern is None:
        if shape.model_type not in UNCONVERTED_FUSED_TYPES:
            return  # per-expert Linear (remote code), or a model not verified here
        covered = "the attention projections" + (" and the shared expert" if shape.shared_expert_intermediate_size
                                                 else "")
        hint_names = ""
    else:
        if shape.vision:
            return  # multimodal all-linear becomes a regex string (get_multimodal_target_regex), which peft resolves
        if shape.shared_expert_intermediate_size or shape.num_dense_layers:
            return  # a shared expert's or dense layer's gate/up/down_proj Linear makes peft re-target the experts
        expert_names = {n for pair in FUSED_PAIRS.values() for n in pair} | {"down_proj", "w2"}
        if expert_names & {_leaf(t) for t in targets}:
            return  # named expert projections are converted to the fused parameters
        covered = "the attention projections only"
        names = (*FUSED_PAIRS[pattern], "down_proj" if pattern == "qwen2_moe" else "w2")
        hint_names = (f" (or name {' '.join(names)} in target_modules, which peft maps to the fused experts, with "
                      "lora_dropout: 0)")
    warn("lora-all-linear-experts", f"target_modules all-linear on {shape.name}: ms-swift expands it to the nn.Linear "
         f"layers, and the {shape.num_experts} routed experts of every layer are fused parameters under transformers 5, "
         f"not Linear modules, so the adapter covers {covered} and the experts stay frozen without an error "
         "(huggingface/peft#3009)", "target_modules",
         hint="add target_parameters: [mlp.experts.gate_up_proj, mlp.experts.down_proj] with lora_dropout: 0"
              + hint_names)


# The names peft's conversion maps to a fused parameter, by pattern (peft _MOE_TARGET_MODULE_MAPPING's keys).
CONVERTED_NAMES = {"qwen2_moe": ("gate", "gate_proj", "up_proj", "down_proj"), "mixtral": ("gate", "w1", "w3", "w2")}


def lora_param_wrapper(recipe, args, shape: ModelShape, lay, err, warn):
    if not _new_peft_lora(recipe, args) or not _fused_stack(recipe):
        return
    why = ""
    if args.list("target_parameters"):
        why = f"target_parameters {args.list('target_parameters')}"
    elif isinstance(shape, ModelShape) and shape.is_moe and not shape.vision and _pattern(shape.model_type):
        pattern = _pattern(shape.model_type)
        targets = [str(t) for t in args.list("target_modules")]
        named = [t for t in targets if _leaf(t) in CONVERTED_NAMES[pattern]]
        if named:
            why = f"target_modules {named}, which peft converts to {shape.name}'s fused parameters"
        elif "all-linear" in targets and pattern == "qwen2_moe" \
                and (shape.shared_expert_intermediate_size or shape.num_dense_layers):
            why = (f"all-linear, which ms-swift expands to names that include the gate_proj/up_proj/down_proj of "
                   f"{shape.name}'s shared expert / dense layers, and peft converts those names to the fused experts")
    if not why:
        return
    try:
        dropout = float(args.raw("lora_dropout")) if args.has("lora_dropout") else 0.05  # TunerArguments default
    except (TypeError, ValueError):
        return  # argument-type judges it
    err = _refuse_or_say(recipe, err, warn)
    if args.bool("use_dora"):
        err("lora-param-wrapper", f"use_dora with {why}: peft wraps fused parameters in ParamWrapper, which refuses "
            "DoRA (\"lora.ParamWrapper does not work with use_dora=True.\") when the adapter is built", "use_dora",
            hint="use_dora: false")
    elif dropout != 0:
        err("lora-param-wrapper", f"lora_dropout {dropout}{'' if args.has('lora_dropout') else ' (ms-swift default)'} "
            f"with {why}: peft wraps fused parameters in ParamWrapper, which refuses any dropout (\"lora.ParamWrapper "
            "does not work with lora_dropout != 0.\") when the adapter is built", "lora_dropout", hint="lora_dropout: 0")


MOE_LORA_RULES = [lora_fused_pair, lora_param_wrapper, lora_all_linear_experts]
