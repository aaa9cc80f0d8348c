"""ms-swift's checks on how the data is encoded, both engines: the loss_scale names the template looks up, the
dict-valued arguments it parses as JSON (a `columns` mapping), cached datasets beside streaming, and tool turns
under the generation template `swift pt` uses (where truncation_strategy split is allowed is multimodal_rules.py's
truncation_split), and which model_type ms-swift matches for a model (a stated one of the other modality, a local
checkpoint it cannot match). Split from input_rules.py by concern; rules.py registers TEMPLATE_RULES with its own."""

from __future__ import annotations

import json
import re
from pathlib import Path

from packaging.version import InvalidVersion, Version

from swift_ext.msswift.model_table import matched_model_types, model_meta
from swift_ext.msswift.plugin_registry import builtin_names, registered_names

# Agent loss scales: each weighs the assistant turns around tool calls (swift/loss_scale/agent.py).
AGENT_LOSS_SCALES = ("react", "hermes", "qwen", "agentflan", "alpha_umi")


def loss_scale_names(recipe, args, err, warn):
    # swift/loss_scale/mapping.py get_loss_scale, which the template calls on the first row it encodes
    # (template/base.py Template.loss_scale): the value splits on '+'; a leading ALL_BASE_STRATEGY name (default,
    # last_round, all) is the base strategy and every other part must be a loss_scale_map key -- anything else is a
    # KeyError on every row. ms-swift 3.x's names (last_round_with_ignore_empty_think) are such keys no more; 4.x
    # writes last_round+ignore_empty_think. An external_plugins file may add keys with loss_scale_map['x'] = ...
    value = args.str("loss_scale")
    if not value:
        return
    known = registered_names("loss_scale/mapping.py", "loss_scale_map", args.list("external_plugins"))
    bases = builtin_names("loss_scale/base.py", "ALL_BASE_STRATEGY")
    if known is None or bases is None:
        return  # ms-swift not here, or a plugin may register any name
    parts = value.split("+")
    named = parts[1:] if parts[0] in bases else parts
    unknown = [p for p in named if p not in known]
    if not unknown:
        return
    fixed = "+".join(p.replace("_with_", "+") for p in parts)
    renamed = all(p in bases or p in known for p in fixed.split("+")) and fixed != value
    err("loss-scale", f"loss_scale {value!r}: {', '.join(repr(p) for p in unknown)} is neither a base strategy "
        f"({', '.join(sorted(bases))}) nor a loss scale ms-swift registers, so the template raises KeyError on every "
        "row it encodes" + (" (ms-swift 3.x's combined name; 4.x joins the parts with '+')" if renamed else ""),
        "loss_scale", hint=f"loss_scale: {fixed}" if renamed else
        f"a base strategy, optionally '+' loss scales: {', '.join(sorted(known))}")



def agent_template_name(recipe, args, err, warn):
    # swift/template/base.py Template.agent_template: agent_template_map[name]() (swift/agent_template/mapping.py) the
    # first time a row with `tools`, a tool_call or a tool response is encoded -- a KeyError that drops each such row
    # (nothing fails at start-up, and rows without tools never ask). An external_plugins file may add names with
    # agent_template_map['x'] = ...
    name = args.str("agent_template")
    if not name:
        return
    known = registered_names("agent_template/mapping.py", "agent_template_map", args.list("external_plugins"))
    if known is None:
        return  # ms-swift not here, or a plugin may register any name
    if name in known:
        return
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=3)
    warn("agent-template-name", f"agent_template {name!r} is not one ms-swift registers: every row with tools, a tool "
         "call or a tool response raises KeyError when encoded and is dropped", "agent_template",
         hint=f"did you mean {' / '.join(close)}?" if close else f"one of {', '.join(sorted(known))}")


def cached_dataset_streaming(recipe, args, err, warn):
    # swift/pipelines/train/sft.py SwiftSft._prepare_dataset (both engines): `assert not args.streaming, 'Cached
    # dataset does not support streaming.'` once cached_dataset or cached_val_dataset is given. GRPO refuses
    # cached_dataset outright (grpo-cached-dataset).
    if args.bool("streaming") and (args.list("cached_dataset") or args.list("cached_val_dataset")):
        key = "cached_dataset" if args.list("cached_dataset") else "cached_val_dataset"
        err("cached-dataset-streaming", "a cached dataset cannot be streamed: ms-swift asserts 'Cached dataset does not "
            "support streaming.' when it loads the data", "streaming",
            hint=f"streaming: false ({key} is already tokenized on disk)")


def resume_stream_replay(recipe, args, err, warn):
    # transformers Trainer._inner_training_loop skips the batches a resumed run already trained on unless
    # ignore_data_skip (global_step x gradient_accumulation_steps of them, max_steps being the streamed "epoch"); ms-swift
    # swift/trainers/mixin.py _patch_skip_first_batches routes that to get_train_dataloader(skip_batches=...), which for
    # a streamed (iterable) dataset is accelerate's DataLoaderDispatcher(skip_batches=...): every skipped batch is still
    # read, encoded and collated, then dropped. A late checkpoint on a large stream sits at step 0 for as long as the
    # first run took to read that far (ms-swift#3951: "stuck at 0%" resuming checkpoint-2000 with streaming, small data
    # resumed fine). resume_only_model with ignore_data_skip clears the resume (mixin.py SwiftMixin.__init__).
    if recipe.engine != "swift" or not args.bool("streaming") or args.bool("ignore_data_skip"):
        return
    checkpoint = args.str("resume_from_checkpoint")
    if not checkpoint:
        return
    found = re.search(r"checkpoint-(\d+)", checkpoint.rstrip("/").rsplit("/", 1)[-1])
    accumulation = args.int("gradient_accumulation_steps")
    if found and accumulation:
        skipped = (f"{int(found.group(1)) * accumulation} batches per process (step {found.group(1)} x "
                   f"gradient_accumulation_steps {accumulation})")
    else:
        skipped = "every batch the checkpoint's steps consumed"
    warn("resume-stream-replay", f"resuming a streamed dataset replays it: before the first step the trainer reads, "
         f"encodes and drops {skipped}, so the run sits at 0% for about as long as the first run took to get there",
         "resume_from_checkpoint", hint="ignore_data_skip: true (the stream restarts at its first row: those rows are "
         "seen twice), or a non-streamed dataset (its sampler skips indices without reading them)")


def generation_template_tools(recipe, args, err, warn):
    # template/base.py Template.__init__: with use_chat_template off (swift/megatron pt's default) the template is
    # TemplateMeta.to_generate_template_meta -- prompt '{{QUERY}}', chat_sep None. The hermes-family agent templates
    # (agent_template/hermes.py _format_tool_responses, minimax_m2, minicpm5) copy template_meta.chat_sep to close the
    # assistant turn before a tool response: AttributeError 'NoneType' object has no attribute 'copy' on every row
    # with a tool_response turn (ms-swift#8449, swift pt Qwen3.5-4B). An agent_template or agent loss_scale says the
    # data holds tool turns; the rows themselves are read by the data check, not here.
    if args.raw("use_chat_template") is None or args.bool("use_chat_template"):
        return
    agent = args.str("agent_template")
    scales = [p for p in (args.str("loss_scale") or "").split("+") if p in AGENT_LOSS_SCALES]
    if not agent and not scales:
        return
    what = f"agent_template {agent}" if agent else f"loss_scale {args.str('loss_scale')}"
    warn("generation-template-tools", f"{what} with use_chat_template off ({'swift pt' if recipe.command == 'pt' else 'as set'}"
         "): the generation template has no chat turns, so tool calls and tool responses have nothing to be laid out "
         "in (the hermes-style agent templates fail on each tool_response row: 'NoneType' object has no attribute "
         "'copy') and an agent loss_scale weighs no assistant turn", "use_chat_template",
         hint="use_chat_template: true (or `sft`) to train tool-use conversations")


def model_type_modality(recipe, args, err, warn):
    # swift/model/model_meta.py get_model_info_meta: a stated model_type wins over the one the registry matches for
    # the model's name, with no check that the two agree -- the stated type's loader, template and modality are used.
    # A multimodal checkpoint under a text model_type (ms-swift#4339: swift pt of Qwen2.5-VL-32B-Instruct with
    # model_type qwen2_5) loads without its processor's image handling, and a text checkpoint under a multimodal
    # type asks for a processor it lacks. Only a name the registry knows is compared (a fine-tuned copy under another
    # name, or a custom type from external_plugins, is not).
    stated = args.str("model_type")
    if not stated or args.list("external_plugins") or args.list("custom_register_path"):
        return
    registered = model_meta(args.str("model")) or {}
    chosen = model_meta(args.str("model"), stated) or {}
    if not registered or registered.get("model_type") == stated or "multimodal" not in chosen:
        return
    if bool(registered.get("multimodal")) == bool(chosen.get("multimodal")):
        return
    kinds = {True: "multimodal", False: "text-only"}
    warn("model-type-modality", f"model_type {stated} is a {kinds[bool(chosen['multimodal'])]} type, but ms-swift's "
         f"registry matches {args.str('model')} to {registered['model_type']} "
         f"({kinds[bool(registered['multimodal'])]}): the stated type wins, with its loader and template, and nothing "
         "checks that they fit the checkpoint", "model_type",
         hint=f"model_type: {registered['model_type']} (or drop model_type: ms-swift matches it from the model)")


# (model argument, its model_type argument, the rlhf_types that load it) -- swift/pipelines/train/rlhf.py
# SwiftRLHF._prepare_model_tokenizer; ref_model_type falls back to the student's resolved model_type
# (RLHFArguments.__post_init__, after ModelArguments._init_model_info): _main_model_type_resolves.
_MODEL_SLOTS = (("model", "model_type", None), ("ref_model", "ref_model_type", None),
                ("teacher_model", "teacher_model_type", ("gkd", "grpo")),
                ("reward_model", "reward_model_type", ("ppo", "grpo")))


def _local_architectures(model: str) -> list[str] | None:
    """config.json's architectures of a local model directory with no args.json naming a model_type (ms-swift
    reads that first: model_meta.py _read_args_json_model_type, through BaseArguments.load_args_from_ckpt, which
    takes model_type only from an args.json an ms-swift >= 4.0.0.dev wrote); None when there is nothing to read."""
    folder = Path(model).expanduser()
    try:
        if (folder / "args.json").is_file():
            saved = json.loads((folder / "args.json").read_text())
            if saved.get("model_type") and Version(str(saved.get("swift_version") or "0")) >= Version("4.0.0.dev"):
                return None
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError, AttributeError, InvalidVersion):
        return None
    return config.get("architectures") or [] if isinstance(config, dict) else None


def _loads_ref_model(args, rlhf_type) -> bool:
    # swift/arguments/rlhf_args.py RLHFArguments.__post_init__: a ref_model is loaded only by full-parameter
    # dpo/kto/ppo/grpo (grpo with beta 0 drops it); any other rlhf_type or tuner raises "CPO/ORPO or LoRA training
    # does not require a ref_model" (another failure, not this one)
    if rlhf_type not in ("dpo", "kto", "ppo", "grpo") or (args.str("tuner_type") or "lora") != "full":
        return False
    return not (rlhf_type == "grpo" and args.has("beta") and args.float("beta") == 0.0)


def _main_model_type_resolves(args) -> bool:
    """Whether ms-swift may give `model` a model_type -- False only when it certainly cannot: no model_type, a name
    the registry does not know, and a local config.json whose architecture no registered type has.
    RLHFArguments.__post_init__ runs SftArguments.__post_init__ first (ModelArguments._init_model_info sets
    model_type from get_model_info_meta), then sets ref_model_type = ref_model_type or model_type: a ref_model
    without ref_model_type takes the student's resolved type and is matched by name/architecture only when that
    is None."""
    model = args.str("model")
    if args.str("model_type") or not model or model_meta(model):
        return True
    architectures = _local_architectures(model)
    return architectures is None or bool(matched_model_types(architectures))


def model_type_unmatched(recipe, args, err, warn):
    # swift/model/model_meta.py get_model_info_meta: a model whose name is not in the registry (a fine-tuned or
    # merged local checkpoint) and no model_type falls to _get_model_info, which reads args.json's model_type, then
    # maps config.json's first architecture to the registered model_types; several (Qwen3VLForConditionalGeneration:
    # qwen3_vl, qwen3_vl_emb, qwen3_vl_reranker) raise "Failed to automatically match `model_type`" at startup.
    # SwiftRLHF._prepare_single_model asks the same for teacher_model / reward_model with their own *_model_type
    # (no fallback to model_type), ms-swift#8472 (GKD, model_type stated, teacher_model_type not).
    if recipe.engine != "swift" or args.list("external_plugins") or args.list("custom_register_path"):
        return
    rlhf_type = (args.str("rlhf_type") or "dpo") if recipe.command == "rlhf" else None
    for key, type_key, rlhf_types in _MODEL_SLOTS:
        if key != "model" and (rlhf_type is None or (rlhf_types and rlhf_type not in rlhf_types)):
            continue
        if key == "model" and args.bool("load_args") and (args.list("adapters") or args.str("resume_from_checkpoint")):
            continue  # BaseArguments._init_ckpt_dir: the adapter's args.json may name the model_type
        models = args.list(key) if key == "reward_model" else [args.str(key)]
        stated = args.list(type_key) if key == "reward_model" else [args.str(type_key)]
        if key == "ref_model":
            if not _loads_ref_model(args, rlhf_type) or _main_model_type_resolves(args):
                continue
        for i, model in enumerate(models):
            if not model or (stated[i] if i < len(stated) else None) or model_meta(model):
                continue
            architectures = _local_architectures(model)
            types = matched_model_types(architectures) if architectures is not None else []
            if len(types) < 2:
                continue
            err("model-type-unmatched", f"{key} {model} is not a name ms-swift's registry knows and no {type_key} is "
                f"given: its config.json architecture matches {len(types)} model_types ({', '.join(types)}), so "
                "ms-swift stops at startup with \"Failed to automatically match `model_type`\"", type_key,
                hint=f"{type_key}: the type the checkpoint was trained as (one of {', '.join(types)})")


TEMPLATE_RULES = [loss_scale_names, agent_template_name, cached_dataset_streaming, resume_stream_replay,
                  generation_template_tools, model_type_modality, model_type_unmatched]
