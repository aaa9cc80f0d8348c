"""ms-swift 4.6's argument-class and trainer set-up refusals that the other rule modules did not cover: the
reference model of LoRA/CPO/ORPO RLHF, quantization bits, FSDP beside
DeepSpeed, warmup, an empty dataset list, the transformers engine's GKD, RLSD/SDAR reweighting, swanlab
notifications, rope_scaling names, and (a second audit) a system/new_special_tokens
`.txt` file, GRPO's reward_model_plugin, FSDP1 under GRPO/GKD and ZeRO++ without zero_optimization.
Most run in an argument class's `__post_init__` (or a `_check_*`/`_init_*` it calls) on every rank once the job has
started; the trainer ones when the trainer is built or at the first step. Each rule names the file and function it
mirrors (paths inside the installed `swift` package). The Megatron engine's are in startup_rules_megatron.py;
rules.py registers STARTUP_RULES (both) with its own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from swift_ext.msswift.adapter_setup_rules import ADAPTER_SETUP_RULES
from swift_ext.msswift.peft_config_rules import PEFT_CONFIG_RULES
from swift_ext.msswift.checkpoint_args import checkpoint_args, loaded, origin
from swift_ext.msswift.checkpoint_rules import CHECKPOINT_RULES
from swift_ext.msswift.deepspeed_rules import (
    DEEPSPEED_RULES,
    FSDP_PRESETS,
    _json_config,
)
from swift_ext.msswift.device_map_rules import DEVICE_MAP_RULES
from swift_ext.msswift.ray_rules import RAY_RULES
from swift_ext.msswift.model_table import load as load_model_table
from swift_ext.msswift.model_table import model_meta, model_name
from swift_ext.msswift.plugin_registry import builtin_names, registered_names
from swift_ext.msswift.startup_rules_megatron import MEGATRON_STARTUP_RULES

# -------------------------------------------------------------------------------------------------
# transformers engine (`swift sft|rlhf`)

# rlhf_args.py RLHFArguments.__post_init__: these algorithms load the reference model themselves when training
# full parameters (ref_model defaults to the model); with any other tuner (or another algorithm) the reference
# is the base model with the adapter disabled, and a ref_model is refused.
REF_MODEL_FULL_TYPES = ("dpo", "kto", "ppo", "grpo")


def ref_model_tuner(recipe, args, err, warn):
    # swift/arguments/rlhf_args.py RLHFArguments.__post_init__ (the last block):
    # "CPO/ORPO or LoRA training does not require a ref_model to be passed in."
    if recipe.engine != "swift" or recipe.command != "rlhf" or not args.str("ref_model"):
        return
    # tuner_type is force-loaded from a checkpoint's args.json (load_args) before this check.
    saved = checkpoint_args(args)
    rlhf_type, tuner = args.str("rlhf_type") or "dpo", str(loaded(args, "tuner_type", saved) or "lora")
    if rlhf_type == "grpo" and args.raw("beta") is not None and args.float("beta") == 0.0:
        return  # beta 0: ms-swift drops ref_model (no KL term), no refusal
    if rlhf_type in REF_MODEL_FULL_TYPES and tuner == "full":
        return
    if rlhf_type in REF_MODEL_FULL_TYPES:
        why = (f"tuner_type {tuner}{origin(args, 'tuner_type', saved)}: the reference is the base model with the adapter disabled "
               f"(rlhf_type {rlhf_type} takes a ref_model only with tuner_type full)")
        hint = "drop ref_model, or tuner_type: full to train against a separate reference model"
    else:
        why = f"rlhf_type {rlhf_type} uses no reference model"
        hint = "drop ref_model" + (" (GKD's other model is teacher_model)" if rlhf_type == "gkd" else "")
    err("ref-model", f"ref_model is refused with {why}", "ref_model", hint=hint)


def fsdp_combinations(recipe, args, err, warn):
    # swift/arguments/sft_args.py SftArguments._init_fsdp ("FSDP2 is not compatible with DeepSpeed.") and
    # _check_fsdp2_compatibility (save_only_model with a sharded state dict). RLHFArguments runs it too.
    fsdp = args.str("fsdp")
    if recipe.engine != "swift" or not fsdp:
        return
    if args.str("deepspeed"):
        err("fsdp-args", f"fsdp ({fsdp}) and deepspeed ({args.str('deepspeed')}) cannot both be set: ms-swift "
            "refuses FSDP2 with DeepSpeed", "deepspeed", hint="keep one of fsdp and deepspeed")
    if args.bool("save_only_model"):
        config = _fsdp_config(fsdp)
        if config is not None:
            state_dict = str((config.get("fsdp_config") or {}).get("state_dict_type", "SHARDED_STATE_DICT"))
            if "SHARDED" in state_dict.upper():
                err("fsdp-args", f"save_only_model: true with FSDP2's {state_dict} (fsdp {fsdp}) is refused by "
                    "ms-swift", "save_only_model",
                    hint="save_only_model: false, or an fsdp config with state_dict_type FULL_STATE_DICT")


def _fsdp_config(fsdp: str) -> dict | None:
    """The FSDP config ms-swift reads for `fsdp` (a preset name, a JSON file or JSON text), or None when it cannot
    be read here (then ms-swift's own parsing decides)."""
    return _json_config(fsdp, FSDP_PRESETS)


def rollout_fsdp1(recipe, args, err, warn):
    # swift/rlhf_trainers/rollout_mixin.py RolloutTrainerMixin.__init__ (GRPOTrainer and GKDTrainer, when the trainer
    # is built): "FSDP1 is not supported. Please use FSDP2". The version is the fsdp_config's: SftArguments._init_fsdp
    # passes the config's "fsdp_config" on, and transformers' TrainingArguments._process_fsdp_args strips the
    # "fsdp_" prefix from its keys and reads "version". Only a stated 1 is judged: where none is stated the installed
    # transformers' default decides (2 in transformers 5.19; some earlier releases default to 1).
    fsdp = args.str("fsdp")
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd") \
            or not fsdp or args.str("deepspeed"):
        return  # fsdp with deepspeed is fsdp-args' refusal, made first (SftArguments._init_fsdp)
    config = _fsdp_config(fsdp)
    inner = config.get("fsdp_config") if config is not None else None
    if not isinstance(inner, dict):
        return
    version = _fsdp_version(inner)
    if version == 1:
        err("rollout-fsdp1", f"rlhf_type {args.str('rlhf_type')} refuses FSDP1 (fsdp {fsdp} sets fsdp_version 1): "
            "ms-swift's GRPO/GKD trainers need FSDP2", "fsdp",
            hint="fsdp: fsdp2 (ms-swift's preset), or fsdp_version: 2 in the config's fsdp_config")


def _fsdp_version(fsdp_config: dict) -> int | None:
    """The FSDP version transformers reads from `fsdp_config` ("fsdp_version" becomes "version" and wins), None when
    unstated or unreadable."""
    value = fsdp_config.get("fsdp_version", fsdp_config.get("version"))
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError, OverflowError):  # OverflowError: json reads Infinity
        return None


def warmup(recipe, args, err, warn):
    # swift/trainers/arguments.py TrainArgumentsMixin._handle_hf_removed_args (from TrainArgumentsMixin.__post_init__,
    # both `swift sft` and `swift rlhf`).
    ratio = args.float("warmup_ratio") or 0.0
    if recipe.engine != "swift" or not ratio:
        return
    if args.float("warmup_steps"):
        err("warmup", f"warmup_ratio ({ratio:g}) and warmup_steps ({args.raw('warmup_steps')}) cannot both be set",
            "warmup_ratio", hint="keep one of warmup_ratio and warmup_steps")
    elif ratio >= 1:
        err("warmup", f"warmup_ratio {ratio:g} must be below 1", "warmup_ratio",
            hint="a fraction of the steps (e.g. 0.05), or warmup_steps for a number of steps")


def swift_gkd(recipe, args, err, warn):
    # swift/arguments/rlhf_args.py RLHFArguments._check_gkd and _check_teacher (rlhf_type gkd, transformers engine).
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") != "gkd":
        return
    teacher = args.str("teacher_model") or args.str("teacher_model_server")
    if args.bool("async_generate"):
        err("swift-gkd", "async_generate is not supported for GKD", "async_generate")
    if args.bool("seq_kd"):
        err("swift-gkd", "seq_kd is deprecated and refused", "seq_kd")
    if args.str("teacher_model") and args.str("teacher_model_server"):
        err("swift-gkd", "teacher_model and teacher_model_server cannot both be set", "teacher_model_server",
            hint="keep one teacher: a local teacher_model or a teacher_model_server")
    topk = args.int("gkd_logits_topk")
    if args.str("teacher_model_server") and topk is None:
        err("swift-gkd", "teacher_model_server needs gkd_logits_topk (the server returns top-k logprobs only)",
            "gkd_logits_topk")
    if topk is not None and topk <= 0:
        err("swift-gkd", f"gkd_logits_topk must be a positive integer, got {topk}", "gkd_logits_topk")
    if args.bool("use_liger_kernel"):
        if not teacher:
            err("swift-gkd", "self-distillation GKD (no teacher_model) is not supported with use_liger_kernel",
                "use_liger_kernel", hint="set teacher_model, or use_liger_kernel: false")
        elif topk is not None:
            err("swift-gkd", "gkd_logits_topk is not supported with use_liger_kernel", "gkd_logits_topk",
                hint="drop gkd_logits_topk, or use_liger_kernel: false")
        # swift/rlhf_trainers/gkd_trainer.py GKDTrainer._prepare_liger_loss (trainer set-up, before step 1): the
        # fused JSD loss has no SFT term.
        elif teacher and (args.float("sft_alpha") or 0.0) != 0.0:
            err("swift-gkd", f"sft_alpha {args.float('sft_alpha'):g} is not supported with use_liger_kernel (the "
                "fused JSD loss has no SFT term)", "sft_alpha", hint="sft_alpha: 0, or use_liger_kernel: false")


# swift/rlhf_trainers/dpo_trainer.py DPOTrainer.__init__: trl dropped kto_pair from DPO.
def dpo_kto_pair(recipe, args, err, warn):
    if recipe.engine != "swift" or recipe.command != "rlhf" or (args.str("rlhf_type") or "dpo") != "dpo":
        return
    if "kto_pair" in [str(t) for t in args.list("loss_type")]:
        err("rlhf-loss-types", "loss_type kto_pair was removed from DPO (ms-swift refuses it when the trainer is "
            "built)", "loss_type", hint="rlhf_type: kto for KTO, or another DPO loss_type (sigmoid, ipo, ...)")


def grpo_reweight(recipe, args, err, warn):
    # swift/arguments/rlhf_args.py RLHFArguments._check_rlsd and _check_sdar (from _check_grpo, transformers engine).
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") != "grpo":
        return
    liger, server = args.bool("use_liger_kernel"), args.str("teacher_model_server")
    loss_type = str((args.list("loss_type") or [None])[0])
    if args.str("advantage_reweight") == "rlsd":
        lam, clip = args.float("rlsd_lambda"), args.float("rlsd_reweight_clip_range")
        if lam is not None and not 0.0 <= lam <= 1.0:
            err("grpo-reweight", f"rlsd_lambda must be in [0, 1], got {lam:g}", "rlsd_lambda")
        if clip is not None and clip < 0:
            err("grpo-reweight", f"rlsd_reweight_clip_range must be >= 0, got {clip:g}", "rlsd_reweight_clip_range")
        if not args.list("reward_funcs"):
            err("grpo-reweight", "advantage_reweight rlsd needs reward_funcs (its reweight direction is the sign of "
                "the GRPO advantage)", "reward_funcs", hint="reward_funcs: [<a registered reward>]")
        if liger:
            err("grpo-reweight", "advantage_reweight rlsd is not supported with use_liger_kernel", "use_liger_kernel")
        if loss_type in ("real", "fipo"):
            err("grpo-reweight", f"advantage_reweight rlsd does not support loss_type {loss_type}", "loss_type")
        if args.raw("off_policy_sequence_mask_delta") is not None:
            err("grpo-reweight", "advantage_reweight rlsd does not support off_policy_sequence_mask_delta",
                "off_policy_sequence_mask_delta")
        if server:
            err("grpo-reweight", "advantage_reweight rlsd does not support teacher_model_server", "teacher_model_server",
                hint="teacher_model: <local checkpoint>, or neither (dynamic self-distillation)")
    if (args.float("sdar_loss_coef") or 0.0) > 0:
        beta = args.float("sdar_gate_beta")
        if beta is not None and beta <= 0:
            err("grpo-reweight", f"sdar_gate_beta must be > 0, got {beta:g}", "sdar_gate_beta")
        if liger:
            err("grpo-reweight", "sdar_loss_coef > 0 is not supported with use_liger_kernel", "sdar_loss_coef")
        if args.str("advantage_reweight") == "rlsd":
            err("grpo-reweight", "sdar_loss_coef > 0 cannot be combined with advantage_reweight rlsd (pick one "
                "teacher-distillation mechanism)", "sdar_loss_coef")
        if server:
            err("grpo-reweight", "sdar_loss_coef > 0 does not support teacher_model_server", "teacher_model_server",
                hint="teacher_model: <local checkpoint>, or neither (dynamic self-distillation)")


def grpo_reasoning_parser(recipe, args, err, warn):
    # swift/rlhf_trainers/arguments.py GRPOConfig.__post_init__ (transformers engine).
    if recipe.engine == "swift" and recipe.command == "rlhf" and args.str("rlhf_type") == "grpo" \
            and args.str("vllm_reasoning_parser"):
        err("grpo-reasoning-parser", "vllm_reasoning_parser is not supported for GRPO training", "vllm_reasoning_parser",
            hint="drop vllm_reasoning_parser")


def grpo_reward_model_plugin(recipe, args, err, warn):
    # swift/rlhf_trainers/grpo_trainer.py GRPOTrainer._prepare_rewards (the trainer is built, before step 1): with a
    # reward_model, reward_model_plugin (default 'default' for each) must have one entry per reward model (assert)
    # naming a key of swift/rewards rm_plugins, which an external_plugins file may extend (ValueError "rm_plugin ...
    # is not implemented in swift.rewards"). Without reward_model the plugins are not read. The Megatron GRPO
    # trainer reads neither (megatron/trainers/grpo_trainer.py _prepare_rewards).
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") != "grpo":
        return
    models, plugins = args.list("reward_model"), [str(p) for p in args.list("reward_model_plugin")]
    if not models or not plugins:
        return
    if len(plugins) != len(models):
        err("reward-model-plugin", f"{len(plugins)} reward_model_plugin entries for {len(models)} reward_model(s): "
            "ms-swift needs one per reward model", "reward_model_plugin",
            hint="one reward_model_plugin per reward_model (default, genrm, or one an external_plugins file "
                 "registers), or drop reward_model_plugin for 'default' everywhere")
    # A missing plugin file is plugin-file's error; a file that fills rm_plugins in a way not read here decides.
    known = registered_names("rewards/rm_plugin.py", "rm_plugins", args.list("external_plugins"))
    if known is None:
        return
    for name in dict.fromkeys(p for p in plugins if p not in known):
        err("reward-model-plugin", f"reward_model_plugin {name!r} is not a reward model plugin ms-swift or an "
            "external_plugins file registers", "reward_model_plugin",
            hint=f"one of {', '.join(sorted(known))}, or register it in an external_plugins file "
                 f"(rm_plugins['{name}'] = ...)")


def reward_model_lists(recipe, args, err, warn):
    # swift/pipelines/train/rlhf.py SwiftRLHF._prepare_model_tokenizer (every rlhf_type, once a reward_model is
    # given, after the policy is loaded): reward_model_type, reward_template and reward_model_revision, when set, are
    # zipped with reward_model -- `assert len(rms) == len(rm_types) == len(rm_templates) == len(rm_revisions)`.
    # Nothing fills or broadcasts them before (RLHFArguments only declares them).
    if recipe.engine != "swift" or recipe.command != "rlhf":
        return
    models = args.list("reward_model")
    if not models:
        return
    for key in ("reward_model_type", "reward_template", "reward_model_revision"):
        values = args.list(key)
        if values and len(values) != len(models):
            err("reward-model-lists", f"{len(values)} {key} value(s) for {len(models)} reward_model(s): ms-swift pairs "
                "them one to one and asserts the lengths match when it loads the reward models", key,
                hint=f"one {key} per reward_model ({len(models)}), or leave it unset")


# Architectures whose checkpoint ms-swift loads as a generative model when it is a GRPO reward_model.
GENERATIVE_ARCH_SUFFIXES = ("ForCausalLM", "ForConditionalGeneration")


def grpo_generative_reward_model(recipe, args, err, warn):
    # pipelines/train/rlhf.py SwiftRLHF._prepare_single_model loads each reward_model with the task type
    # _get_model_task_type reads (args.json's task_type, else seq_cls for a *ForSequenceClassification architecture
    # or num_labels 1), else the policy's own task type (BaseArguments.get_model_processor: `task_type or
    # self.task_type`, causal_lm for GRPO). The 'default' plugin (rewards/rm_plugin.py DefaultRMPlugin.__call__)
    # returns `model(**inputs).logits[:, 0]`: a value head's score for a seq_cls model, but a whole vocabulary row per
    # completion for a causal LM, which rl_core/grpo_algorithm.py compute_rewards_per_func cannot turn into one
    # reward each (torch.tensor: "only one element tensors can be converted to Python scalars") -- at the first
    # reward, after the first rollout. A generative judge needs the genrm plugin (or a custom one).
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") != "grpo":
        return
    models = [str(m) for m in args.list("reward_model")]
    plugins = [str(p) for p in args.list("reward_model_plugin")] or ["default"] * len(models)
    types = [str(t) for t in args.list("reward_model_type")]
    if len(plugins) != len(models):
        return  # reward-model-plugin's refusal
    for i, (model, plugin) in enumerate(zip(models, plugins)):
        if plugin != "default":
            continue
        arch = _generative_reward_model(model, types[i] if i < len(types) else None)
        if arch:
            err("reward-model-task", f"reward_model {model!r} is a generative model ({arch}) scored by the 'default' "
                "reward_model_plugin, which reads a value head's logit: it gets a vocabulary row per completion and "
                "GRPO fails computing the first rewards", "reward_model_plugin",
                hint="reward_model_plugin: genrm (or your own plugin) for an LLM judge, or a sequence-classification "
                     "reward model (e.g. one trained with rlhf_type rm)")


def _generative_reward_model(model: str, model_type: str | None) -> str | None:
    """The architecture when ms-swift would load `model` as a causal LM reward model, else None (not known here,
    or a seq_cls / registered reward model)."""
    local = Path(model).expanduser()
    if (local / "config.json").is_file():
        try:
            config = json.loads((local / "config.json").read_text(encoding="utf-8"))
            saved = json.loads((local / "args.json").read_text(encoding="utf-8")) \
                if (local / "args.json").is_file() else None
            archs = [str(a) for a in config.get("architectures") or []]
            if saved is not None:  # _get_model_task_type reads args.json alone when there is one
                if saved.get("task_type") not in (None, "causal_lm"):
                    return None
            elif config.get("num_labels") == 1 or any("sequenceclassification" in a.lower() for a in archs):
                return None
        except (OSError, ValueError, AttributeError, TypeError):
            return None
    elif local.exists() or model.startswith((".", "/", "~")):
        return None
    else:
        # A hub name the registry does not hold is not judged even with reward_model_type: _get_model_task_type reads
        # the downloaded config.json, not the type's ModelMeta (Skywork-Reward-V2-Qwen3-* with reward_model_type
        # qwen3 is a Qwen3ForSequenceClassification checkpoint, loaded seq_cls).
        if model_name(model) not in load_model_table()["models"]:
            return None
        meta = model_meta(model, model_type)
        if not meta or meta.get("reward") or meta.get("task_type") not in (None, "causal_lm"):
            return None
        archs = [str(a) for a in meta.get("architectures") or []]
    if archs and all(a.endswith(GENERATIVE_ARCH_SUFFIXES) for a in archs):
        return ", ".join(archs)
    return None


# swift/arguments/sft_args.py SwanlabArguments._init_swanlab: the notification plugins it maps.
SWANLAB_NOTIFICATIONS = ("lark", "dingtalk", "email", "discord", "wxwork", "slack")
SWANLAB_EMAIL = ("swanlab_sender_email", "swanlab_receiver_email", "swanlab_smtp_server", "swanlab_smtp_port")


def swanlab_notification(recipe, args, err, warn):
    # SftArguments.__post_init__ calls _init_swanlab only with swanlab in report_to (sft and rlhf).
    method = args.str("swanlab_notification_method")
    if recipe.engine != "swift" or not method or "swanlab" not in [str(r) for r in args.list("report_to")]:
        return
    if method not in SWANLAB_NOTIFICATIONS:
        err("swanlab-notification", f"swanlab_notification_method {method!r} is not one ms-swift maps",
            "swanlab_notification_method", hint=f"one of {', '.join(SWANLAB_NOTIFICATIONS)}")
    elif method == "email":
        missing = [k for k in SWANLAB_EMAIL if not args.raw(k)]
        if missing:
            err("swanlab-notification", f"swanlab_notification_method email needs {', '.join(missing)}", missing[0])


# The tracker each report_to entry starts, and the arguments only that tracker reads. Megatron: the WandbCallback /
# SwanlabCallback (swift/megatron/callbacks/wandb.py, swanlab.py) are built from report_to alone
# (MegatronArguments.__post_init__: callbacks += report_to); ms-swift 3.x's Megatron enabled wandb from wandb_project
# (Megatron-LM's convention), 4.x does not. Engine swift: SftArguments.__post_init__ runs _init_swanlab, the only
# reader of the swanlab_* arguments, only with 'swanlab' in report_to.
TRACKER_ARGS = {
    "megatron": {"wandb": ("wandb_project", "wandb_exp_name"), "swanlab": ("swanlab_project", "swanlab_exp_name")},
    "swift": {"swanlab": ("swanlab_project", "swanlab_exp_name", "swanlab_workspace", "swanlab_mode")},
}


def tracker_unused(recipe, args, err, warn):
    report_to = [str(r) for r in args.list("report_to")]
    for tracker, keys in TRACKER_ARGS.get(recipe.engine, {}).items():
        given = [k for k in keys if args.has(k)]
        if given and tracker not in report_to:
            warn("tracker-unused", f"{', '.join(given)} set but report_to ({', '.join(report_to) or 'none'}) has no "
                 f"{tracker}: ms-swift starts the {tracker} run only for report_to {tracker}, so nothing is logged "
                 f"there" + (" (ms-swift 3.x's Megatron turned wandb on from wandb_project; 4.x does not)"
                             if tracker == "wandb" else ""), given[0],
                 hint=f"report_to: [{', '.join(report_to + [tracker])}]")


def report_to_names(recipe, args, err, warn):
    # transformers integrations/integration_utils.py get_reporting_integration_callbacks (Trainer.__init__): each
    # report_to entry must be a key of INTEGRATION_TO_CALLBACK ("... is not supported, only ... are supported");
    # TrainingArguments.__post_init__ turns report_to ['none'] / ['all'] into the strings first. The Megatron engine
    # has its own map (megatron-callbacks).
    if recipe.engine != "swift":
        return
    names = [str(r) for r in args.list("report_to")]
    known = builtin_names("integrations/integration_utils.py", "INTEGRATION_TO_CALLBACK", package="transformers")
    if not names or names in (["none"], ["all"]) or known is None:
        return
    bad = [n for n in names if n not in known]
    if bad:
        err("report-to", f"report_to {bad[0]}: not an integration transformers knows (" + (
            "'none' and 'all' stand alone" if bad[0] in ("none", "all") else f"{', '.join(sorted(known))}")
            + "); Trainer.__init__ raises ValueError", "report_to",
            hint="report_to: [tensorboard] (or none alone)")


# -------------------------------------------------------------------------------------------------
# Both engines

def txt_files(recipe, args, err, warn):
    # swift/arguments/base_args/template_args.py TemplateArguments.__post_init__ (system) and
    # swift/arguments/base_args/model_args.py ModelArguments._init_new_special_tokens (each new_special_tokens entry):
    # a value ending in '.txt' is a file -- `assert os.path.isfile(value)`, then read (system: its text; tokens:
    # split on whitespace); any other value is the text itself. Both run from BaseArguments.__post_init__ on every
    # rank, both engines, every command. os.path.isfile expands no '~' and reads a relative path from the job's
    # working directory.
    values = [("system", args.raw("system"))]
    values += [("new_special_tokens", t) for t in args.list("new_special_tokens")]
    for flag, value in values:
        if not isinstance(value, str) or not value.endswith(".txt") or os.path.isfile(value):
            continue
        what = "a system prompt file" if flag == "system" else "a file of special tokens"
        if os.path.isdir(value):
            # os.path.isfile is False for a directory: ms-swift's assert fails wherever the job runs.
            err("txt-file", f"{flag} {value!r} ends in .txt, so ms-swift reads it as {what}, but it is a directory "
                "here (ms-swift asserts os.path.isfile)", flag, hint=f"the path of the .txt file inside {value}")
            continue
        if value.startswith("~"):
            # swift-ext starts ms-swift without a shell (and quotes it in scripts): '~' reaches os.path.isfile as is.
            err("txt-file", f"{flag} {value!r} ends in .txt, so ms-swift reads it as {what}, and it does not expand "
                "'~': the file is never found", flag, hint=f"the absolute path ({os.path.expanduser(value)} here)")
            continue
        where = "" if os.path.isabs(value) else f"; relative paths are read from the job's working directory, " \
            f"here {os.path.abspath(value)}"
        # Only a warning, as for local datasets: a recipe is often planned on a laptop for files on the cluster.
        warn("txt-file", f"{flag} {value!r} ends in .txt, so ms-swift reads it as {what}, and it is not here{where} "
             "(a file missing where the job runs stops it at start-up)", flag,
             hint="run from the directory the path is relative to, or give an absolute path" if where else
             "check the path on the training machine")


# swift/arguments/base_args/quant_args.py QuantizeArguments.get_quantization_config, called by
# ModelArguments._init_model_info on both engines (MegatronBaseArguments runs BaseArguments.__post_init__).
QUANT_BITS = {"bnb": (4, 8), "quanto": (2, 4, 8, "float8"), "eetq": (8,)}  # eetq: transformers EetqConfig int8


def quant_bits(recipe, args, err, warn):
    saved = checkpoint_args(args)  # load_args fills an unset quant_method / quant_bits from args.json first
    method = loaded(args, "quant_method", saved)
    if method is None:
        bits = loaded(args, "quant_bits", saved)
        # ModelArguments.get_model_kwargs passes get_quantization_config(), None without quant_method: the model
        # loads unquantized and nothing says so. Only unsloth (tuner_backend unsloth: BaseArguments.
        # get_model_processor -> swift/model/register.py load_by_unsloth) reads quant_bits alone.
        if bits is not None and not (recipe.engine == "swift" and args.str("tuner_backend") == "unsloth"):
            warn("quant-bits-unused", f"quant_bits {bits} without quant_method: ms-swift does not quantize the model "
                 "(quant_bits is read only beside quant_method; a checkpoint already quantized with AWQ/GPTQ loads as "
                 "its own config says, whatever quant_bits is)", "quant_bits",
                 hint=f"quant_method: bnb (QLoRA, with quant_bits {bits}), or drop quant_bits")
        return
    if recipe.engine == "megatron" and str(method) in ("bnb", "hqq", "eetq", "quanto", "fp8"):
        # The quantization config reaches only transformers' from_pretrained (ModelArguments.get_model_kwargs). The
        # Megatron engine builds its model through mcore-bridge from the checkpoint's safetensors and loads the
        # transformers model only on the meta device, without weights (swift/megatron/pipelines/train/sft.py
        # MegatronSft: get_model_processor(load_model=False / return_dummy_model=True); swift/megatron/init.py: the
        # same for saving): nothing is quantized, and the LoRA run holds bf16 base weights.
        warn("quant-method-megatron", f"quant_method {method}{origin(args, 'quant_method', saved)} on the Megatron "
             "engine: ms-swift builds the Megatron model through mcore-bridge from the unquantized checkpoint weights "
             "and never applies the quantization config, so the base weights stay in bf16 (no QLoRA)", "quant_method",
             hint="engine swift for QLoRA (quant_method bnb, quant_bits 4), or fp8_format for Megatron's FP8 "
                  "training; drop quant_method here")
    if method in ("fp8", "awq", "gptq", "gptq_v2"):
        return  # fp8 needs no bits; pre-quantized AWQ/GPTQ build no config
    method, bits = str(method), loaded(args, "quant_bits", saved)
    allowed = QUANT_BITS.get(method)
    if bits is None:
        err("quant-bits", f"quant_method {method}{origin(args, 'quant_method', saved)} needs quant_bits", "quant_bits",
            hint=f"quant_bits: {' or '.join(map(str, allowed)) if allowed else '4'}")
    elif allowed and _bits(bits) not in allowed:
        err("quant-bits", f"quant_method {method}{origin(args, 'quant_method', saved)} does not support quant_bits "
            f"{bits}{origin(args, 'quant_bits', saved)}", "quant_bits",
            hint=f"quant_bits one of {', '.join(map(str, allowed))}")


def _bits(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


# swift/arguments/base_args/model_args.py ModelArguments._init_rope_scaling: a rope_scaling that is not JSON (nor a
# JSON file) is taken as a type name, asserted to be one of these.
ROPE_SCALING_NAMES = ("linear", "dynamic", "yarn")


def _is_file(value: str) -> bool:
    # ms-swift's json_parse_to_dict tries os.path.exists first; a name too long or with a NUL byte is no file
    # (os.stat raises OSError / ValueError on those, os.path.exists says False).
    try:
        return Path(value).is_file()
    except (OSError, ValueError):
        return False


def rope_scaling_type(recipe, args, err, warn):
    value = args.raw("rope_scaling")
    if not isinstance(value, str) or not value or _is_file(value):
        return
    # swift/utils/utils.py json_parse_to_dict reads any path that exists where the job runs (os.path.exists, then
    # json.load): a path not on this machine is the cluster's to judge, as the fsdp and checkpoint rules leave it.
    if "/" in value or "\\" in value or value.lower().endswith(".json"):
        return
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):  # RecursionError: nested past the JSON decoder's depth
        parsed = value  # json_parse_to_dict(strict=False) keeps the text
    if isinstance(parsed, dict):
        return  # JSON: its keys are ms-swift's and the model's to judge
    if not isinstance(parsed, str):
        # `1`, `[...]`, `null`: _init_rope_scaling calls rope_scaling.get(...) on it, an AttributeError
        err("rope-scaling-type", f"rope_scaling {value!r} is JSON but not an object (ms-swift reads it as the "
            "rope_scaling mapping)", "rope_scaling",
            hint='one of linear, dynamic, yarn, or JSON such as {"rope_type": "yarn", "factor": 4}')
        return
    value = parsed  # '"yarn"' is the name yarn
    if value not in ROPE_SCALING_NAMES:
        err("rope-scaling-type", f"rope_scaling {value!r} is neither JSON nor one of {', '.join(ROPE_SCALING_NAMES)}",
            "rope_scaling", hint='one of linear, dynamic, yarn, or JSON such as {"rope_type": "yarn", "factor": 4}')


def dataset_required(recipe, args, err, warn):
    # swift/arguments/sft_args.py SftArguments.__post_init__ and swift/megatron/arguments/sft_args.py
    # MegatronSftArguments.__post_init__: "Please input the training dataset." (load_data_args reads them from a
    # checkpoint's args.json: BaseArguments.load_args_from_ckpt, only with load_args, which training leaves false).
    saved = checkpoint_args(args)  # with load_data_args its dataset/cached_dataset replace the recipe's
    if loaded(args, "dataset", saved) or loaded(args, "cached_dataset", saved):
        return
    if args.bool("load_args") and args.bool("load_data_args") and not saved.values:
        return  # the checkpoint is not readable here: ms-swift reads it at start-up
    if args.bool("load_data_args") and not args.bool("load_args"):
        err("dataset-required", "no training dataset: load_data_args reads one from a checkpoint's args.json only "
            "with load_args: true (training defaults it to false)", "load_args",
            hint="load_args: true beside load_data_args, or dataset: [<hub id or path to a .jsonl>]")
        return
    read = (f" (load_data_args read them from {saved.path}, which holds none)"
            if saved.path and args.bool("load_data_args") else "")
    err("dataset-required", f"no training dataset: ms-swift refuses to start without dataset or cached_dataset{read}",
        "dataset", hint="dataset: [<hub id or path to a .jsonl>]")


STARTUP_RULES = [ref_model_tuner, fsdp_combinations, warmup, swift_gkd, dpo_kto_pair, grpo_reweight,
                 grpo_reasoning_parser, swanlab_notification, tracker_unused, report_to_names, quant_bits, rope_scaling_type, dataset_required,
                 txt_files, grpo_reward_model_plugin, grpo_generative_reward_model, reward_model_lists, rollout_fsdp1, *DEEPSPEED_RULES, *DEVICE_MAP_RULES, *RAY_RULES,
                 *MEGATRON_STARTUP_RULES, *CHECKPOINT_RULES, *ADAPTER_SETUP_RULES,
                 *PEFT_CONFIG_RULES]
