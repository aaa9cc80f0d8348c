"""target_modules that name no module of the model (engine swift): peft 0.20 BaseTuner.inject_adapter
(peft/tuners/tuners_utils.py) matches each listed name against the model's module names (equal, or a suffix after a
dot) and, when none matches, raises "Target modules {...} not found in the base model" while prepare_adapter
(swift/pipelines/train/tuner.py) builds the adapter. Only judged on the text-only dense families whose module names
follow from the architecture (vera_rules.STANDARD_TYPES), for plain names (no dots, no regex). Only a warning where
the shape is a bundled config guessed from the directory's name (the path on the training machine may hold another
architecture), and not judged with external_plugins / custom_register_path (a plugin may register the model's loader,
which can add modules, or a tuner under that tuner_type in swift/tuner_plugin tuners_map, which prepare_model
prefers over prepare_adapter). Registered with warn_rules.ENGINE_RULES."""

from __future__ import annotations

from swift_ext.planner.vera_rules import STANDARD_TYPES

# Every module name segment of LlamaForCausalLM / Qwen2ForCausalLM / Qwen3ForCausalLM / MistralForCausalLM (and their
# sequence-classification heads), in transformers' modeling files; layer indices are numeric segments.
_MODULE_NAMES = frozenset({
    "model", "embed_tokens", "layers", "self_attn", "q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm", "mlp",
    "gate_proj", "up_proj", "down_proj", "act_fn", "input_layernorm", "post_attention_layernorm", "norm",
    "rotary_emb", "lm_head", "score", "v_head"})
# ms-swift's shorthands, expanded by get_target_modules before peft sees the list
_SHORTHANDS = ("all-linear", "all-embedding")
# prepare_adapter's tuner_types that hand target_modules to a peft tuner's inject_adapter
_PEFT_TUNERS = ("lora", "longlora", "adalora", "vera", "boft", "fourierft")


def _matches(target: str, layers: int) -> bool:
    return target in _MODULE_NAMES or (target.isdigit() and int(target) < max(layers, 1))


def target_modules_not_found(recipe, args, shape, lay, err, warn):
    if recipe.engine != "swift" or recipe.command not in ("sft", "pt", "rlhf"):
        return
    tuner = args.str("tuner_type")
    if tuner not in _PEFT_TUNERS or args.str("resume_from_checkpoint") or args.list("adapters"):
        return  # prepare_adapter runs only for a new adapter
    if tuner in ("lora", "longlora") and (args.bool("use_swift_lora") or args.str("tuner_backend") == "unsloth"):
        return  # swift's own LoRA / unsloth: not peft's inject_adapter as built here
    if args.str("target_regex") or args.list("target_parameters"):
        return
    if args.list("external_plugins") or args.list("custom_register_path"):
        return
    targets = [str(t) for t in args.list("target_modules") or []]
    if not targets or any(t in _SHORTHANDS or "." in t or not t.replace("_", "").isalnum() for t in targets):
        return
    if shape.model_type not in STANDARD_TYPES or shape.num_experts or shape.vision is not None:
        return
    if any(_matches(t, shape.num_layers) for t in targets):
        return
    hint = "target_modules: [all-linear], or names such as q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"
    if shape.guessed_by_name:
        # the published config stands in for a path plan cannot read: the directory may hold another architecture
        warn("peft-target-modules", f"target_modules {targets} name no module of {shape.model_type}, the published "
             f"config standing in for the model's directory ({shape.origin}): if the directory holds that "
             "architecture, peft's inject_adapter raises \"Target modules ... not found in the base model\"",
             "target_modules", hint=hint + ", or pass --model-config with the directory's config.json")
        return
    err("peft-target-modules", f"target_modules {targets} name no module of {shape.model_type} ({shape.name}): "
        "peft's inject_adapter raises \"Target modules ... not found in the base model\" in prepare_adapter",
        "target_modules", hint=hint)


PEFT_TARGET_RULES = [target_modules_not_found]
