"""Rules for silent misbehaviour, both engines: things ms-swift accepts and then does quietly wrong
(an MTP head neither trained nor saved, expert LoRA that vLLM cannot load, a plugin file that is not
there). Registered with layout.py's rules for engine megatron; plan.py runs ENGINE_RULES for engine
swift through layout.check_engine_rules, with the same err/warn helpers.

Also the plan notes that say what LoRA `target_modules` expand to per layer type, and what happens to
the MTP weights on export.
"""

from __future__ import annotations

import importlib.util
import os
import re
from functools import lru_cache
from pathlib import Path

from swift_ext.msswift.bound_args import Args
from swift_ext.msswift.plugin_registry import unparsable_plugin_files
from swift_ext.planner.ddp_rules import DDP_RULES
from swift_ext.planner.best_metric_rules import BEST_METRIC_RULES
from swift_ext.planner.eval_split_rules import EVAL_SPLIT_RULES
from swift_ext.planner.grpo_rules import missing_plugin_files, unknown_reward_names
from swift_ext.planner.length_rules import LENGTH_RULES
from swift_ext.planner.linear_attention_rules import LINEAR_ATTENTION_RULES
from swift_ext.planner.model_shape import ModelShape
from swift_ext.planner.moe_lora_rules import MOE_LORA_RULES, converted_by_peft
from swift_ext.planner.peft_target_rules import PEFT_TARGET_RULES
from swift_ext.planner.rollout_rules import ENV_VLLM_VERSION, ROLLOUT_RULES, vllm_version
from swift_ext.planner.teacher_rules import TEACHER_RULES
from swift_ext.planner.trainer_rules import TRAINER_RULES
from swift_ext.planner.vera_rules import VERA_RULES
from swift_ext.spec.yamlio import short_name
from swift_ext.spec.findings import shown

# vLLM's FusedMoEWithLoRA (vllm/lora/layers/fused_moe.py) first shipped in v0.11.2 (its API page exists
# from docs.vllm.ai/en/v0.11.2; huggingface/trl issue #4584 "v0.11.2 introduced LoRA support for mixture
# of experts models"). Before it: "vLLM currently does not support fused MoE LoRA inference".
VLLM_MOE_LORA = (0, 11, 2)
# Qwen3.5/3.6-MoE expert LoRA from Megatron-swift still does not load (vllm-project/vllm issue #40005,
# open, opened by ms-swift's maintainer 2026-04-16): no released vLLM is known to load it.
VLLM_MOE_LORA_UNSUPPORTED_TYPES = ("qwen3_5_moe",)

ENGINE_RULES: list = []


def engine_rule(fn):
    ENGINE_RULES.append(fn)
    return fn


# Evidence: transformers 5.x models/qwen3_5_moe/modeling_qwen3_5_moe.py, qwen3_next and the DeepSeek/GLM
# models set `_keys_to_ignore_on_load_unexpected = [r"^mtp.*"]` (engine swift: MTP never loaded, so neither
# trained nor saved); ms-swift 4.6 swift/megatron/init.py _patch_mcore_bridge.save_weights and
# swift/megatron/model/utils.py (save_hf_weights) rewrite num_nextn_predict_layers/mtp_num_hidden_layers
# only `if mtp_num_layers:`, otherwise the copied HF config keeps advertising the MTP layers while
# mcore-bridge builds the GPT model without an MTP block (mtp_num_layers None: 1.6.3 model/register.py:196
# ModelLoader.build_model builds no mtp_block_spec; 1.6.5 alike).
@engine_rule
def mtp_untrained(recipe, args, shape, lay, err, warn):
    have = shape.mtp_num_layers
    if not have:
        return
    if recipe.engine == "megatron":
        if args.int("mtp_num_layers"):
            return
        # `mtp_num_layers: 0` is the published way to switch MTP off (NeMo-RL's Qwen3.5 DAPO recipe, ms-swift's
        # GLM-5.3 example): same consequence, but the message must not say the value is missing.
        said = "is 0" if args.has("mtp_num_layers") else "is not set"
        warn("mtp-untrained", f"{shape.name} has {have} MTP layer(s) but mtp_num_layers {said}: Megatron builds "
             "the model without them, so the MTP head is neither trained nor saved, while the saved config.json "
             "still advertises it (speculative decoding then uses missing or stale weights)", "mtp_num_layers",
             hint=f"set mtp_num_layers: {have}; or keep it unset and merge with `swift-ext merge`, which copies "
             "the base model's MTP weights back (save_missing_weights)")
    else:
        warn("mtp-untrained", f"{shape.name} has {have} MTP layer(s): the transformers engine (engine: swift) does "
             "not load them (transformers ignores mtp.* weights), so they are not trained and are missing from "
             "what it saves, while config.json still advertises them", "model",
             hint="train with engine: megatron and mtp_num_layers: " f"{have}; or merge with `swift-ext merge`, "
             "which copies the base model's MTP weights back")


# Evidence: ms-swift 4.6 swift/utils/utils.py import_external_file: os.path.abspath(os.path.expanduser(path)),
# i.e. relative to the working directory; a missing file fails there (assert os.path.isdir(py_dir), or
# spec_from_file_location/exec_module) inside every rank, after the job started. custom_register_path (the 3.x name)
# is imported the same way (BaseArguments._import_external_plugins appends it to external_plugins).
# A file missing here is a warning, as a missing local dataset is (plan.check_local_datasets): the run's working
# directory is on the training node -- ms-swift's own GRPO examples name examples/train/grpo/plugin/plugin.py,
# relative to an ms-swift checkout -- and plan cannot see it.
@engine_rule
def plugin_files(recipe, args, shape, lay, err, warn):
    # A file here that Python cannot compile fails the same import. Only a warning: the training nodes' Python
    # may be newer than this one (syntax this parser does not know).
    for path, why in unparsable_plugin_files(args.list("external_plugins")):
        warn("plugin-file", f"external_plugins file {short_name(path)!r} is not Python this interpreter can compile ({why}): "
             "ms-swift imports it on every rank at start-up, and swift-ext reads no reward or plugin names from it",
             "external_plugins", hint="point external_plugins at the plugin's .py source")
    missing = missing_plugin_files(args)
    if not missing:
        return

    unknown = unknown_reward_names(args) if recipe.command == "rlhf" and args.str("rlhf_type") == "grpo" else []
    for path in missing:
        key = "external_plugins" if path in map(str, args.list("external_plugins")) else "custom_register_path"
        because = (f"; reward_funcs {', '.join(map(repr, unknown))} cannot be checked (not registered by ms-swift "
                   "or swift-ext; perhaps by this file)") if unknown else ""
        here = short_name(os.path.abspath(os.path.expanduser(path)))  # a 100,000-character name is no message
        warn("plugin-file", f"{key} file {short_name(path)!r} not found here (ms-swift resolves it relative to the "
             f"working directory of the run, here {here}; a run started elsewhere "
             f"fails at start-up if it is not there either){because}", key,
             hint="run from the directory the path is relative to, or give an absolute path")


# Evidence: ms-swift 4.6 swift/megatron/trainers/rollout_mixin.py (args.tuner_type == 'lora' and
# args.vllm_enable_lora: adapter-only sync; otherwise LoRA is merged before the sync) and
# swift/rlhf_trainers/rollout_mixin.py (the same, with the warning "vLLM currently does not support LoRA in
# MoE configurations"); vLLM FusedMoEWithLoRA since v0.11.2; vllm-project/vllm issue #40005 (Qwen3.5-MoE).
# Server mode: both trainers take rollout_enable_lora from the server (vllm_client.enable_lora, False unless
# `swift rollout --vllm_enable_lora true`: deploy_args.py), so the recipe's own vllm_enable_lora: true is the
# only sign the server adapts; without it ms-swift merges, as its examples/megatron/grpo/moe_server_lora.sh does.
@engine_rule
def vllm_expert_lora(recipe, args, shape, lay, err, warn):
    if recipe.command != "rlhf" or args.str("rlhf_type") != "grpo" or not args.bool("use_vllm"):
        return
    if args.str("tuner_type") not in ("lora", None) or not shape.is_moe:
        return
    server = args.str("vllm_mode") == "server"
    if not args.bool("vllm_enable_lora"):
        return  # LoRA is merged into the weights before each sync (a server's default too)
    if "experts" not in lora_targets(recipe, args, shape):
        return
    version, where = vllm_version(recipe.env)
    how = ("the rollout server decides (swift rollout --vllm_enable_lora); with it on, " if server else "")
    if shape.model_type in VLLM_MOE_LORA_UNSUPPORTED_TYPES:
        why = f"no released vLLM is known to load {shape.model_type} expert LoRA (vllm-project/vllm issue #40005)"
    elif version is None:
        why = (f"vLLM is not installed here, so its expert-LoRA support (>= "
               f"{'.'.join(map(str, VLLM_MOE_LORA))}) cannot be checked; set {ENV_VLLM_VERSION} in the recipe env")
    elif _vtuple(version) < VLLM_MOE_LORA:
        why = f"vLLM {version} ({where}) predates LoRA on fused MoE experts ({'.'.join(map(str, VLLM_MOE_LORA))})"
    else:
        return
    warn("vllm-expert-lora", f"GRPO LoRA on the routed experts with adapter sync to vLLM: {how}{why}; rollouts then "
         "fail to load the adapter or run without the experts' LoRA and diverge from training",
         "vllm_enable_lora" if not server else "vllm_mode",
         hint="set vllm_enable_lora: false (ms-swift merges LoRA before each weight sync), or leave the experts "
         "out of target_modules")


# Evidence: megatron-core 0.16 distributed/finalize_model_grads.py finalize_model_grads calls
# _update_router_expert_bias after every backward when moe_router_enable_expert_bias (ms-swift's trainer installs it:
# megatron/trainers/base.py config.finalize_model_grads_func); mcore-bridge 1.6.3 config/parser.py turns that on for
# every sigmoid router but Llama-4's (DeepSeek-V3, Moonlight, Kimi-K2, GLM-4.5, ...; the rate is config.json's
# aux_loss_alpha, else 1e-3), and bridge/gpt_bridge.py _set_router exports router.expert_bias as
# gate.e_score_correction_bias only in the full export. ms-swift's Megatron rollout (megatron/trainers/rollout_mixin.py
# _move_model_to_vllm) does one full sync, then with vllm_enable_lora only _move_adapter_to_vllm
# (export_weights(peft_format=True): the LoRA tensors), unless sleep_level 2 forces the full sync every step.
@engine_rule
def vllm_lora_expert_bias(recipe, args, shape, lay, err, warn):
    if recipe.engine != "megatron" or recipe.command != "rlhf" or args.str("rlhf_type") != "grpo":
        return
    if not args.bool("use_vllm") or args.str("vllm_mode") == "server" or not args.bool("vllm_enable_lora"):
        return
    if args.str("tuner_type") != "lora" or args.int("sleep_level") == 2:
        return
    if not shape.is_moe or shape.router_score_function != "sigmoid" or shape.model_type == "llama4":
        return
    extra = args.mapping("megatron_extra_kwargs")
    if extra.get("moe_router_enable_expert_bias") is False or extra.get("moe_router_bias_update_rate") in (0, 0.0):
        return
    warn("vllm-lora-expert-bias", f"{shape.name}'s sigmoid routers keep an expert bias that Megatron updates after "
         "every step (aux-loss-free balancing: mcore-bridge turns moe_router_enable_expert_bias on), but with "
         "vllm_enable_lora ms-swift syncs only the LoRA tensors after the first step, so the rollout engine keeps the "
         "checkpoint's e_score_correction_bias and routes tokens to other experts than the policy being trained, more "
         "so each step", "vllm_enable_lora",
         hint="vllm_enable_lora: false (the merged sync carries router.expert_bias), or keep the bias fixed with "
         "megatron_extra_kwargs {moe_router_bias_update_rate: 0}")


# Evidence: ms-swift 4.6 swift/rlhf_trainers/rollout_mixin.py _prepare_vllm_engine logs that vLLM LoRA on a
# multimodal model "may lead to unexpected issues when applying LoRA to the ViT component ... please disable LoRA by
# setting vllm_enable_lora to False", and syncs the adapter (vision tower LoRA included) from the second sync on;
# vLLM takes LoRA on the language model only: "vLLM currently only supports adding LoRA to language model,
# visual.blocks.31.mlp.up_proj will be ignored" (vllm-project/vllm#27916, vLLM 0.8.4) or refuses the adapter ("...
# is unsupported LoRA weight", vllm-project/vllm#21500, Qwen2.5-VL-3B). Either way the rollouts stop following
# the policy being trained.
@engine_rule
def vllm_vision_lora(recipe, args, shape, lay, err, warn):
    if recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd") or not args.bool("use_vllm"):
        return
    if not shape.vision or not args.bool("vllm_enable_lora") or "vision" not in lora_targets(recipe, args, shape):
        return
    how = "if the rollout server was started with vllm_enable_lora, " if args.str("vllm_mode") == "server" else ""
    warn("vllm-vision-lora", f"LoRA on {shape.name}'s vision tower (freeze_vit/freeze_aligner false) with adapter sync "
         f"to vLLM: {how}vLLM applies LoRA to the language model only, so it drops the vision adapter (or refuses "
         "it as an unsupported LoRA weight) and rollouts come from a policy other than the one trained",
         "vllm_enable_lora", hint="vllm_enable_lora: false (ms-swift merges LoRA into every weight sync), or "
         "freeze_vit: true and freeze_aligner: true")


def _vtuple(text: str) -> tuple[int, ...]:
    from swift_ext.planner.oracle import version_tuple

    return version_tuple(text)


# ---- what target_modules expand to ----------------------------------------------------------------------

# Module names per layer part and engine, as ms-swift 4.6 finds them for `all-linear`:
# megatron: swift/megatron/utils/utils.py find_all_linears (TELinear, TELayerNormColumnParallelLinear,
#   TEGroupedLinear, nn.Linear; not output_layer); find_router only with `all-router` (TopKRouter);
#   multimodal models: get_multimodal_target_regex over language_model, plus the vision tower unless
#   freeze_vit and the aligner unless freeze_aligner. megatron-core 0.16: GatedDeltaNet in_proj/out_proj,
#   SelfAttention linear_qkv/linear_proj, MLP/experts/shared experts linear_fc1/linear_fc2, MTP eh_proj.
# swift: swift/utils/transformers_utils.py find_all_linears (class name contains "linear"; not lm_head);
#   transformers 5 Qwen3.5-MoE experts are fused nn.Parameters (Qwen3_5MoeExperts.gate_up_proj/down_proj)
#   that no `all-linear` reaches, and its router (TopKRouter.weight) neither.
_MODULES = {
    "megatron": {"linear_attention": ["in_proj", "out_proj"], "attention": ["linear_qkv", "linear_proj"],
                 "mla": ["linear_q_proj", "linear_q_down_proj", "linear_q_up_proj", "linear_kv_down_proj",
                         "linear_kv_up_proj", "linear_proj"],
                 "experts": ["linear_fc1", "linear_fc2"], "shared_expert": ["linear_fc1", "linear_fc2"],
                 "dense_mlp": ["linear_fc1", "linear_fc2"], "router": ["router"], "mtp": ["eh_proj"],
                 "vision": ["linear_qkv", "linear_proj", "linear_fc1", "linear_fc2"]},
    "swift": {"linear_attention": ["in_proj_qkv", "in_proj_z", "in_proj_b", "in_proj_a", "out_proj"],
              "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
              "mla": ["q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"],
              "experts": ["gate_proj", "up_proj", "down_proj"],
              "shared_expert": ["gate_proj", "up_proj", "down_proj", "shared_expert_gate"],
              "dense_mlp": ["gate_proj", "up_proj", "down_proj"], "router": ["gate"], "mtp": [],
              "vision": ["qkv", "proj", "linear_fc1", "linear_fc2"]},
}
_PART_NAMES = {"linear_attention": "Gated DeltaNet layers", "attention": "attention layers",
               "mla": "MLA attention layers", "experts": "MoE routed experts", "shared_expert": "shared expert",
               "dense_mlp": "dense MLP", "router": "router", "mtp": "MTP block", "vision": "vision tower/aligner"}


def _parts(recipe, args: Args, shape: ModelShape) -> list[str]:
    parts = []
    if shape.num_linear_attention_layers:
        parts.append("linear_attention")
    parts.append("mla" if shape.is_mla else "attention")
    if shape.is_moe:
        parts += ["experts", "router"] + (["shared_expert"] if shape.shared_expert_intermediate_size else [])
    if not shape.is_moe or shape.num_dense_layers:
        parts.append("dense_mlp")
    if recipe.engine == "megatron" and args.int("mtp_num_layers") and shape.mtp_num_layers:
        parts.append("mtp")
    if shape.vision:
        parts.append("vision")
    return parts


def lora_targets(recipe, args: Args, shape: ModelShape) -> dict[str, list[str]]:
    """{layer part: module names LoRA wraps there} as ms-swift expands target_modules (see _MODULES)."""
    if (args.str("tuner_type") or "lora") not in ("lora", "lora_llm"):
        return {}
    targets = [str(t) for t in args.list("target_modules")] or ["all-linear"]
    engine = recipe.engine if recipe.engine in _MODULES else "swift"
    names = _MODULES[engine]
    out: dict[str, list[str]] = {}
    for part in _parts(recipe, args, shape):
        if part == "router":
            hit = ["router"] if "all-router" in targets and engine == "megatron" else \
                [t for t in targets if t in names["router"]]
        elif part == "vision":
            tuned = not args.bool("freeze_vit") or not args.bool("freeze_aligner")
            llm_only = args.str("tuner_type") == "lora_llm"
            hit = names["vision"] if "all-linear" in targets and tuned and not llm_only else []
        elif part == "experts" and engine == "swift" and shape.model_type.startswith("qwen3_5"):
            hit = []  # fused expert parameters: only target_parameters reaches them
        elif "all-linear" in targets:
            hit = names[part]
        else:
            hit = [t for t in targets if t in names[part]]
        if hit:
            out[part] = hit
    return out


# transformers' projection names (Llama/Qwen/DeepSeek families), none of which megatron-core's GPT model has; with
# transformers' Gated DeltaNet input projections (Qwen3-Next, Qwen3.5/3.6: in_proj_qkv/z/b/a), which mcore-bridge's
# GatedDeltaNet fuses into one in_proj (model/modules/gated_delta_net.py; in_proj_qkvz/in_proj_ba only under
# linear_decoupled_in_proj, Qwen4-exp's, so those two are not listed).
HF_ONLY_TARGETS = frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "gate_proj", "up_proj", "down_proj",
                             "gate_up_proj", "in_proj_qkv", "in_proj_z", "in_proj_b", "in_proj_a"})
# Multimodal model types whose vision tower (transformers' own, kept by mcore-bridge) has none of those names either:
# Qwen3.5/3.6's Qwen3_5VisionModel is attn.qkv / attn.proj / mlp.linear_fc1 / linear_fc2 (+ merger linear_fc1/fc2).
HF_NAME_FREE_VISION = ("qwen3_5",)


# Evidence: ms-swift 4.6 swift/megatron/utils/utils.py get_target_modules passes names other than all-linear /
# all-embedding / all-router through unchanged to swift.tuners.LoraConfig, and peft 0.20 tuners_utils.py
# BaseTuner.inject_adapter raises "Target modules {...} not found in the base model" when none matches a module
# (by name or dotted suffix). Megatron's modules are linear_qkv/linear_proj/linear_fc1/linear_fc2 (see _MODULES).
# Text models only: a multimodal model keeps its transformers vision tower, where such names may exist.
@engine_rule
def megatron_lora_hf_names(recipe, args, shape, lay, err, warn):
    if recipe.engine != "megatron" or (args.str("tuner_type") or "lora") not in ("lora", "lora_llm"):
        return
    if args.str("target_regex"):
        return  # MegatronTunerMixin.__post_init__ replaces target_modules with target_regex (megatron_args.py)
    targets = [str(t) for t in args.list("target_modules")]
    if not targets or not set(targets) <= HF_ONLY_TARGETS:
        return
    if shape.vision is not None and not shape.model_type.startswith(HF_NAME_FREE_VISION):
        return
    err("lora-targets", f"target_modules {targets} are transformers module names; Megatron's model has none of them "
        "(its linears are linear_qkv, linear_proj, linear_fc1, linear_fc2), so peft finds no target and refuses "
        "(\"Target modules ... not found in the base model\")", "target_modules",
        hint="all-linear, or Megatron names: linear_qkv linear_proj (attention), linear_fc1 linear_fc2 (MLP/experts)"
        + (", in_proj out_proj (Gated DeltaNet)" if shape.linear_num_value_heads else ""))


# Every module attribute name a Megatron text model can hold: the `self.<name> = build_module(...)` / Linear /
# Embedding / router / ModuleList children of megatron-core 0.16.1 (transformer/, models/gpt, models/common, ssm/,
# tensor_parallel/) and of mcore-bridge 1.6.3's model/ and modules/ (its custom attention, DSA indexer, MTP, PLE and
# hyper-connection blocks), containers included. peft matches a target by the module's name or dotted suffix, so a
# name outside this set and outside HF_ONLY_TARGETS names no module at all (a typo such as linear_fc1x).
MEGATRON_MODULE_NAMES = frozenset({
    "linear_qkv", "linear_proj", "linear_fc1", "linear_fc2", "linear_q_proj", "linear_q_down_proj",
    "linear_q_up_proj", "linear_kv_down_proj", "linear_kv_up_proj", "linear_o_group_proj", "linear_weights_proj",
    "linear_wgate", "linear_wk", "linear_wkv", "linear_wq_b", "in_proj", "in_proj_ba", "in_proj_qkvz", "out_proj",
    "eh_proj", "g_proj", "gate_proj", "key_proj", "value_proj", "index_qk_proj", "fc1_latent_proj", "fc2_latent_proj",
    "per_layer_input_gate", "per_layer_model_projection", "per_layer_projection", "router", "output_layer",
    "embedding", "word_embeddings", "position_embeddings", "tokentype_embeddings", "embed_tokens_per_layer",
    "ngram_embedding", "experts", "local_experts", "shared_experts", "mlp", "self_attention", "cross_attention",
    "core_attention", "indexer", "mixer", "layers", "decoder", "input_layernorm", "pre_mlp_layernorm",
    "final_layernorm", "q_layernorm", "k_layernorm", "kv_layernorm", "q_norm", "k_norm", "post_mlp_layernorm",
    "post_self_attn_layernorm", "post_attention_layernorm", "post_feedforward_layernorm", "enorm", "hnorm", "norm",
    "out_norm", "conv1d"})
_TARGET_KEYWORDS = ("all-linear", "all-embedding", "all-router")


# Evidence: as for megatron_lora_hf_names above -- get_target_modules passes explicit names to peft unchanged, and
# peft 0.20 tuners_utils.py BaseTuner.inject_adapter wraps each module whose name is, or ends with '.' + , a target:
# when no target matches it raises "Target modules ... not found in the base model"; when some match, the names that
# match nothing are dropped without a word (the warnings after that branch fire only when nothing at all matched).
# Reported against Megatron-Bridge's own LoRA (NVIDIA-NeMo/Megatron-Bridge#1738: "linear_fc1x" for "linear_fc1" fails
# silently). Text models only, as above: a multimodal model keeps its transformers vision tower's names.
@engine_rule
def megatron_lora_unknown_names(recipe, args, shape, lay, err, warn):
    if recipe.engine != "megatron" or (args.str("tuner_type") or "lora") not in ("lora", "lora_llm"):
        return
    if args.str("target_regex") or shape.vision is not None:
        return
    targets = [str(t) for t in args.list("target_modules")]
    if any(set(t) & set("*()[]|^$\\?+") for t in targets):
        return  # regex syntax in a list entry: not ours to read
    unknown = [t for t in targets if t not in _TARGET_KEYWORDS
               and t.rsplit(".", 1)[-1] not in MEGATRON_MODULE_NAMES | HF_ONLY_TARGETS]
    if not unknown:
        return
    known = [t for t in targets if t not in unknown and t.rsplit(".", 1)[-1] not in HF_ONLY_TARGETS]
    hint = "Megatron names: linear_qkv linear_proj (attention), linear_fc1 linear_fc2 (MLP/experts), or all-linear"
    if not known:
        err("lora-targets", f"target_modules {targets} name no module of Megatron's model ({', '.join(unknown)} "
            "match none), so peft finds no target and refuses (\"Target modules ... not found in the base model\")",
            "target_modules", hint=hint)
    elif "all-linear" not in targets:
        warn("lora-targets", f"target_modules {unknown} name no module of Megatron's model: peft adapts the others "
             f"({', '.join(known)}) and drops these without an error: the modules they were meant for stay frozen",
             "target_modules", hint=hint)


# Evidence: the target names reach peft unchanged on both engines (swift: swift/utils/transformers_utils.py only
# expands all-linear; megatron: get_target_modules, above), and peft wraps a module only when its name ends with one.
# In transformers' Qwen3.5/3.6 / Qwen3-Next a linear-attention layer holds linear_attn.in_proj_qkv/z/b/a + out_proj
# (models/qwen3_5/modeling_qwen3_5.py Qwen3_5GatedDeltaNet), never q/k/v/o_proj; in megatron-core's GatedDeltaNet
# in_proj/out_proj, never linear_qkv/linear_proj. So an attention-only list (the Llama habit q_proj k_proj v_proj
# o_proj) adapts the attention of 1 layer in 4 and leaves the Gated DeltaNet layers frozen, without a word: reported
# as a bug in agentscope-ai/TuFT#149 (Qwen3.5-4B, peft 0.19.1: "silently skips every linear projection in the Gated
# DeltaNet blocks"). The run trains; a warning, only where the list adapts attention and no linear-attention name.
@engine_rule
def lora_skips_linear_attention(recipe, args, shape, lay, err, warn):
    if not shape.num_linear_attention_layers or args.str("target_regex"):
        return
    targets = [str(t) for t in args.list("target_modules")]
    if not targets or "all-linear" in targets:
        return
    parts = lora_targets(recipe, args, shape)
    if "attention" not in parts or "linear_attention" in parts:
        return
    engine = recipe.engine if recipe.engine in _MODULES else "swift"
    n_lin, n_all = shape.num_linear_attention_layers, shape.num_layers
    warn("lora-linear-attention", f"target_modules {targets} adapt the attention projections of the "
         f"{n_all - n_lin} full-attention layers only: the {n_lin} Gated DeltaNet layers' projections "
         f"({', '.join(_MODULES[engine]['linear_attention'])}) match none of them, so those layers' token mixing "
         "stays frozen without an error (agentscope-ai/TuFT#149, axolotl-ai-cloud/axolotl#3515)", "target_modules",
         hint=f"add {' '.join(_MODULES[engine]['linear_attention'])}, or use all-linear")


# transformers 5 stores the routed experts of most MoE families as fused 3-D nn.Parameters in an `...Experts` module
# (qwen3_5_moe Qwen3_5MoeExperts, qwen3_moe Qwen3MoeExperts, gpt_oss GptOssExperts, glm4_moe, deepseek_v3,
# ernie4_5_moe, minimax_m2, llama4 Llama4TextExperts, mixtral ...: gate_up_proj / down_proj), while a shared expert or a
# dense layer keeps gate_proj/up_proj/down_proj nn.Linear. peft's target_modules match modules only, so the MLP names
# adapt the shared expert (or nothing: gpt-oss, Qwen3-MoE have none) and no routed expert; ms-swift 4.6 passes
# target_parameters (peft's way to the fused experts) only when stated (swift/pipelines/train/tuner.py). Which model
# types fuse is read from the installed transformers' modeling file, so a version that splits them again is not warned.
# Reports: axolotl-ai-cloud/axolotl#3515 and agentscope-ai/TuFT#154 (Qwen3.5-MoE), unslothai/unsloth#3405 (gpt-oss-20b:
# gate/up/down_proj in the list, the experts untouched, "TRL silently ignores this"). The run trains: a warning.
_FUSED_EXPERTS = re.compile(r"^class (\w*Experts)\(nn\.Module\):(?:(?!^class ).)*?self\.(?:gate_up_proj|down_proj)"
                            r" = nn\.Parameter\(", re.S | re.M)


@lru_cache(maxsize=None)
def fused_experts_class(model_type: str) -> str:
    """The installed transformers' experts class of `model_type` when it holds the routed experts as fused
    parameters; "" when transformers, the model's modeling file or such a class is not there."""
    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations or not re.fullmatch(r"\w+", model_type):
        return ""
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / model_type / f"modeling_{model_type}.py"
    try:
        match = _FUSED_EXPERTS.search(path.read_text(encoding="utf-8"))
    except OSError:
        return ""
    return match.group(1) if match else ""


@engine_rule
def lora_misses_fused_experts(recipe, args, shape, lay, err, warn):
    if recipe.engine == "megatron" or not shape.is_moe:
        return
    if (args.str("tuner_type") or "lora") not in ("lora", "lora_llm") or args.list("target_parameters") \
            or args.str("target_regex"):
        return
    targets = [str(t) for t in args.list("target_modules")]
    mlp = [t for t in targets if t in _MODULES["swift"]["experts"]]
    if not mlp or "all-linear" in targets:
        return
    experts = fused_experts_class(shape.model_type) or fused_experts_class(shape.text_model_type)
    if not experts or converted_by_peft(shape.model_type):
        return  # peft 0.20 maps the expert names of the types it converts onto the fused parameters (moe_lora_rules)
    reach = ("only the shared expert" if shape.shared_expert_intermediate_size else
             "no MLP (it has no shared expert)")
    warn("lora-fused-experts", f"target_modules {mlp} reach {reach} of {shape.name}: its {shape.num_experts} routed "
         f"experts are fused parameters in transformers ({experts}.gate_up_proj / down_proj), not Linear modules, so "
         "they stay frozen and the adapter is a small fraction of the intended size, without an error",
         "target_modules",
         hint="add target_parameters: [mlp.experts.gate_up_proj, mlp.experts.down_proj] with lora_dropout: 0 (peft's "
         "ParamWrapper takes no dropout), or train with engine: megatron (its experts are linear_fc1/linear_fc2)")


# transformers' names of the embedding and output head; Megatron's are embedding(.word_embeddings) and output_layer.
HF_SAVE_NAMES = {"embed_tokens": "all-embedding", "lm_head": "output_layer", "wte": "all-embedding"}


# Evidence: ms-swift 4.6 swift/megatron/utils/utils.py get_modules_to_save passes names other than all-embedding
# through to its LoraConfig, and peft utils/other.py _set_trainable wraps each module whose name *ends with* one of
# them -- without strict_module_check, a name that matches nothing is no error: the run trains the adapters only,
# and the memory estimate (memory.py _modules_to_save) counts no copy. Text models only, as above.
@engine_rule
def megatron_modules_to_save_hf_names(recipe, args, shape, lay, err, warn):
    if recipe.engine != "megatron" or (args.str("tuner_type") or "lora") not in ("lora", "lora_llm"):
        return
    names = [str(m) for m in args.list("modules_to_save")]
    unmatched = [m for m in names if m.rsplit(".", 1)[-1] in HF_SAVE_NAMES]
    if not unmatched or shape.vision is not None:
        return
    megatron = sorted({HF_SAVE_NAMES[m.rsplit(".", 1)[-1]] for m in unmatched})
    warn("lora-targets", f"modules_to_save {unmatched} are transformers module names; Megatron's model has none of "
         "them, so peft wraps nothing and only the adapters train (no error)", "modules_to_save",
         hint=f"Megatron names: {', '.join(megatron)}")


def lora_notes(recipe, args: Args, shape: ModelShape) -> list[str]:
    """Plan notes: the LoRA modules per layer type, and what happens to MTP weights on export."""
    notes = []
    targets = lora_targets(recipe, args, shape)
    if (args.str("tuner_type") or "lora") in ("lora", "lora_llm"):
        label = {**_PART_NAMES, "attention": "gated attention layers" if shape.gated_attention else "attention layers"}
        listed = "; ".join(f"{label[p]}: {', '.join(m)}" for p, m in targets.items()) or "nothing"
        left = [label[p] for p in _parts(recipe, args, shape) if p not in targets]
        notes.append(f"LoRA target_modules {shown([str(t) for t in args.list('target_modules')] or ['all-linear'], 120)} "
                     f"expand to ({recipe.engine} engine): {listed}" + (f"; not adapted: {', '.join(left)}"
                                                                         if left else ""))
        if recipe.engine == "swift" and shape.is_moe and shape.model_type.startswith("qwen3_5") \
                and not args.list("target_parameters"):
            notes.append("routed experts are fused parameters in transformers (Qwen3_5MoeExperts): LoRA reaches "
                         "them only through target_parameters")
        if shape.mtp_num_layers:
            notes.append(f"{shape.name}'s {shape.mtp_num_layers} MTP layer(s) on export: `swift export --merge_lora` "
                         "on the transformers path drops mtp.*; `swift-ext merge` restores them from the base model "
                         "(after/merge.py keep_base_mtp; Megatron merges keep them with save_missing_weights)")
    return notes


# Sequence length against the model's positions, and rope_scaling without max_model_len (length_rules.py).
ENGINE_RULES.extend(LENGTH_RULES)
ENGINE_RULES.extend(ROLLOUT_RULES)
ENGINE_RULES.extend(TEACHER_RULES)
# The transformers Trainer's precision / quantization / flash-attention refusals (trainer_rules.py; engine swift).
ENGINE_RULES.extend(TRAINER_RULES)
ENGINE_RULES.extend(MOE_LORA_RULES)
# How engine swift's DDP wrapper takes the recipe's activation checkpointing (ddp_rules.py).
ENGINE_RULES.extend(DDP_RULES)
# Packed input to the transformers Gated DeltaNet (Qwen3-Next, Qwen3.5/3.6), both engines (linear_attention_rules.py).
ENGINE_RULES.extend(LINEAR_ATTENTION_RULES)
# The validation split against one evaluation step, both engines (eval_split_rules.py).
ENGINE_RULES.extend(EVAL_SPLIT_RULES)
# metric_for_best_model against the metrics the evaluation computes, engine swift sft/pt (best_metric_rules.py).
ENGINE_RULES.extend(BEST_METRIC_RULES)
# VeRA targets of different sizes, engine swift (vera_rules.py).
ENGINE_RULES.extend(VERA_RULES)
ENGINE_RULES.extend(PEFT_TARGET_RULES)
