"""ms-swift 4.6's DeepSpeed / FSDP config files as the transformers engine reads them, and what the Trainer refuses
about a DeepSpeed config: a name that is no preset, file or JSON object, ZeRO++ without zero_optimization, values that are neither "auto" nor the training
arguments', and ZeRO-3 over bitsandbytes weights stored in another dtype. Registered through startup_rules.py's
STARTUP_RULES (msswift/rules.py runs them)."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

from swift_ext.msswift import schema as msargs
from swift_ext.msswift.json_args import repaired_object
from swift_ext.spec.findings import UserError, shown
from swift_ext.spec.yamlio import short_name

# The preset names SftArguments._init_fsdp / _init_deepspeed map to files in the installed swift/config/.
FSDP_PRESETS = ("fsdp2",)
# What each holds (ZeRO stage, optimizer offloaded, parameters offloaded) for the memory floor (planner/memory_swift.py),
# which must work where ms-swift is not installed; tests/test_memory_swift.py checks it against the installed files.
DEEPSPEED_PRESET_ZERO = {"zero0": (0, False, False), "zero1": (1, False, False), "zero2": (2, False, False),
                         "zero3": (3, False, False), "zero2_offload": (2, True, False), "zero3_offload": (3, True, True)}
DEEPSPEED_PRESETS = tuple(DEEPSPEED_PRESET_ZERO)


def _json_config(value, presets: tuple[str, ...]) -> dict | None:
    """A config as swift/utils/utils.py json_parse_to_dict reads it (a mapping as is, a preset's file, an existing
    path, else JSON text); None when it cannot be read here (a path on the training machine, text only json_repair
    could mend)."""
    from swift_ext.msswift.schema import _package_dir

    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return None
    root = _package_dir("swift")
    path = root / "config" / f"{value}.json" if value in presets and root else Path(value)
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else value
        parsed = json.loads(text)
    except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested past the decoder's depth
        return None
    return parsed if isinstance(parsed, dict) else None


def config_names(recipe, args, err, warn):
    # swift/arguments/sft_args.py SftArguments._init_deepspeed / _init_fsdp: a preset name becomes the installed
    # swift/config/NAME.json; anything else goes to swift/utils/utils.py json_parse_to_dict -- an existing file, else
    # JSON text, else json_repair's mend of it, which for a bare word is '' and json.loads raises. The config must be an
    # object (`.get`, `in` on it next). A misspelt preset (zero3_offlod, fsdp2_offload) or transformers' option string
    # ("full_shard auto_wrap") stops the run at start-up.
    if recipe.engine != "swift":
        return
    for name, presets in (("deepspeed", DEEPSPEED_PRESETS), ("fsdp", FSDP_PRESETS)):
        value = args.raw(name)
        if not isinstance(value, str) or not value.strip() or value in presets or _json_config(value, presets):
            continue
        if "/" in value or "\\" in value or value.lower().endswith(".json"):
            warn("config-name", f"{name} {short_name(value)!r}: no such file here; ms-swift reads it on the training "
                 "machine, and where it is missing there takes the text for JSON and fails at start-up", name,
                 hint=f"the config's path as the training machine sees it, or one of ms-swift's presets: "
                      f"{', '.join(presets)}")
            continue
        if repaired_object(value) is not False:
            continue
        old_name = msargs.RENAMED_VALUES.get(name, {}).get(value)
        close = [old_name] if old_name else difflib.get_close_matches(value, presets, n=1, cutoff=0.5)
        err("config-name", f"{name} {shown(value)} is none of ms-swift's presets ({', '.join(presets)}), no JSON file "
            "and no JSON object: ms-swift cannot read a config from it at start-up (json_parse_to_dict raises on text "
            "json_repair cannot mend; a JSON value that is no object fails where the config is read)", name,
            hint=f"{name}: {old_name} (ms-swift 2.x's name for it; `swift-ext import --upgrade` renames it)" if old_name
            else f"did you mean {close[0]}?" if close else
            f"one of {', '.join(presets)}, the path of a JSON config, or a JSON object")


def deepspeed_hpz(recipe, args, err, warn):
    # swift/arguments/sft_args.py SftArguments._init_deepspeed (sft and rlhf): with zero_hpz_partition_size,
    # `assert 'zero_optimization' in self.deepspeed` before setting zero_optimization.zero_hpz_partition_size. Only
    # with deepspeed set (without it the value is not read); the presets all have zero_optimization.
    ds = args.raw("deepspeed")
    if recipe.engine != "swift":
        return
    if not ds:
        # The same method reads zero_hpz_partition_size and deepspeed_autotp_size only inside `if self.deepspeed:`
        # (the autotp assert that asks for --deepspeed sits inside it too, so it never fires): without a DeepSpeed
        # config both are dropped without a word and the run trains plain DDP, unsharded and untensor-parallel.
        for name in ("deepspeed_autotp_size", "zero_hpz_partition_size"):
            if args.raw(name) is not None:
                warn("deepspeed-unread", f"{name} {args.str(name)} without deepspeed: ms-swift reads it only with a "
                     "DeepSpeed config, so it is dropped and the run trains without it", name,
                     hint=f"deepspeed: zero3 (or another ZeRO config) beside {name}, or drop {name}")
        return
    if args.raw("zero_hpz_partition_size") is None:
        return
    config = _json_config(ds, DEEPSPEED_PRESETS)
    if config is not None and "zero_optimization" not in config:
        err("deepspeed-hpz", f"zero_hpz_partition_size needs a DeepSpeed config with zero_optimization; deepspeed "
            f"{args.str('deepspeed')} has none (ms-swift asserts it)", "zero_hpz_partition_size",
            hint="a ZeRO stage in the config (zero_optimization: {stage: 3}, e.g. deepspeed: zero3), or drop "
                 "zero_hpz_partition_size")


# transformers integrations/deepspeed.py HfTrainerDeepSpeedConfig.trainer_config_process: each of these DeepSpeed
# config keys that is not "auto" must equal the TrainingArguments value (fill_match), else trainer_config_finalize
# raises "Please correct the following DeepSpeed config values that mismatch TrainingArguments values" when the
# Trainer builds the engine. The value is ms-swift's, after its defaults (adam_beta2 0.95, weight_decay 0.1, ...).
def _ds_node(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _same(ds_value, hf_value) -> bool:
    if isinstance(ds_value, list) and isinstance(hf_value, list):
        return len(ds_value) == len(hf_value) and all(map(_same, ds_value, hf_value))
    if isinstance(ds_value, bool) or isinstance(hf_value, bool):
        return bool(ds_value) == bool(hf_value) if isinstance(ds_value, bool) else False
    try:
        return float(ds_value) == float(hf_value)
    except (TypeError, ValueError):
        return False


def deepspeed_values(recipe, args, err, warn):
    ds = args.raw("deepspeed")
    if recipe.engine != "swift" or not ds:
        return
    config = _json_config(ds, DEEPSPEED_PRESETS)
    if config is None:
        return
    bs = args.int("per_device_train_batch_size") or 1
    ga = args.int("gradient_accumulation_steps") or 1
    full = (args.str("tuner_type") or "lora") == "full"
    # SftArguments._init_override: an unset learning_rate is 1e-5 for full training, 1e-4 otherwise
    lr = args.float("learning_rate") if args.has("learning_rate") else (1e-5 if full else 1e-4)
    fp16, bf16 = args.mixed_precision()
    # transformers integrations/deepspeed.py trainer_config_process: fp16.enabled / bf16.enabled are matched against
    # `fp16 or fp16_full_eval` and `bf16 or bf16_full_eval`
    fp16 = fp16 or args.bool("fp16_full_eval") if fp16 is not None else fp16
    bf16 = bf16 or args.bool("bf16_full_eval") if bf16 is not None else bf16
    # Batch keys are not judged where something else sets them first: auto_find_batch_size retries smaller batches,
    # the deepspeed_elastic callback rewrites them (trainers/utils.py), a scheduler decides the world size.
    batch_decided = args.bool("auto_find_batch_size") or "deepspeed_elastic" in [str(c) for c in args.list("callbacks")]
    checks = [] if batch_decided else [
        ("train_micro_batch_size_per_gpu", bs, "per_device_train_batch_size"),
        ("gradient_accumulation_steps", ga, "gradient_accumulation_steps")]
    if not batch_decided and not recipe.launch.scheduled:
        checks.append(("train_batch_size", recipe.launch.world_size * bs * ga,
                       f"processes {recipe.launch.world_size} x per_device_train_batch_size x gradient_accumulation_steps"))
    checks += [
        ("gradient_clipping", args.float("max_grad_norm"), "max_grad_norm"),
        ("optimizer.params.lr", lr, "learning_rate"),
        ("optimizer.params.betas", [args.float("adam_beta1"), args.float("adam_beta2")], "adam_beta1, adam_beta2"),
        ("optimizer.params.eps", args.float("adam_epsilon"), "adam_epsilon"),
        ("optimizer.params.weight_decay", args.float("weight_decay"), "weight_decay"),
        ("scheduler.params.warmup_max_lr", lr, "learning_rate"),
        ("fp16.enabled", fp16, "fp16 (from torch_dtype unless set)"),
        ("bf16.enabled", bf16, "bf16 (from torch_dtype unless set)")]
    mismatches = []
    for dotted, hf_value, hf_name in checks:
        ds_value = _ds_node(config, dotted)
        if ds_value is None or ds_value == "auto" or hf_value is None or _same(ds_value, hf_value):
            continue
        if isinstance(hf_value, list) and None in hf_value:
            continue
        mismatches.append((dotted, f"{dotted}={json.dumps(ds_value)} vs {hf_name} = {json.dumps(hf_value)}"))
    if mismatches:
        # The config is what the fix edits (transformers: "set these DeepSpeed config values to 'auto'").
        err("deepspeed-values", f"deepspeed config {args.str('deepspeed')}: {'; '.join(m for _, m in mismatches)}: "
            "transformers refuses a DeepSpeed config value that is not \"auto\" and differs from the training "
            "argument (\"Please correct the following DeepSpeed config values that mismatch TrainingArguments "
            "values\") when the Trainer builds the engine", "deepspeed",
            hint=f"set {', '.join(repr(d) for d, _ in mismatches)} to \"auto\" in the DeepSpeed config (ms-swift "
                 "fills them from the arguments), or use a preset (deepspeed: zero2 / zero3)")


def _zero_stage(config: dict) -> int | None:
    stage = _ds_node(config, "zero_optimization.stage")
    try:
        return int(stage)
    except (TypeError, ValueError):
        return None


def zero3_bnb(recipe, args, err, warn):
    # ZeRO-3 partitions every parameter, frozen ones included, and gathers them in groups that must share one dtype
    # (deepspeed runtime/zero/partition_parameters.py: all_gather_coalesced -> get_only_unique_item(p.ds_tensor.dtype),
    # "expected there to be only one unique element"; _all_gather_dtype: "all params must have the same dtype").
    # bitsandbytes stores 4-bit weights packed in uint8 unless bnb_4bit_quant_storage names a float dtype, and 8-bit
    # ones in int8, beside the bf16/fp16 norms and embeddings. peft's DeepSpeed guide (PR #1550): ZeRO-3 QLoRA needs
    # bnb_4bit_quant_storage equal to torch_dtype. ms-swift passes bnb_4bit_quant_storage through unchanged
    # (swift/arguments/base_args/quant_args.py QuantizeArguments.get_quantization_config), None by default.
    ds = args.raw("deepspeed")
    if recipe.engine != "swift" or not ds or (args.str("quant_method") or "").lower() != "bnb":
        return
    config = _json_config(ds, DEEPSPEED_PRESETS)
    if config is None or _zero_stage(config) != 3:
        return
    bits = str(args.raw("quant_bits") or "")
    storage = (args.str("bnb_4bit_quant_storage") or "").lower().replace("torch.", "")
    dtype = (args.str("torch_dtype") or "").lower().replace("torch.", "")
    if bits == "8":
        why = "bitsandbytes 8-bit keeps its weights in int8"
        hint = "quant_bits 4 with bnb_4bit_quant_storage equal to torch_dtype, or deepspeed: zero2"
    elif not storage:
        why = "bnb_4bit_quant_storage is unset, so the 4-bit weights are stored packed in uint8"
        hint = f"bnb_4bit_quant_storage: {dtype or 'bfloat16'} (the torch_dtype), or deepspeed: zero2"
    elif dtype and storage != dtype:
        why = f"bnb_4bit_quant_storage {storage} is not the torch_dtype {dtype}"
        hint = f"bnb_4bit_quant_storage: {dtype}"
    else:
        return
    err("zero3-bnb", f"DeepSpeed ZeRO-3 over a bitsandbytes model: {why}, beside the float weights; ZeRO-3 gathers "
        "parameters in groups of one dtype and fails on the mix (\"all params must have the same dtype\" / "
        "\"expected there to be only one unique element\")", "bnb_4bit_quant_storage" if bits != "8" else "quant_bits",
        hint=hint)


def _frozen_parts(args) -> str | None:
    """What stays frozen in the model ms-swift trains, or None when every weight trains."""
    from swift_ext.msswift.multimodal_rules import _multimodal

    tuner = args.str("tuner_type") or "lora"
    if tuner != "full":
        return f"the base weights under tuner_type {tuner}"
    try:
        ratio = float(args.raw("freeze_parameters_ratio") or 0)
    except (TypeError, ValueError):
        ratio = 0.0
    if args.list("freeze_parameters") or ratio > 0:
        return "the weights freeze_parameters / freeze_parameters_ratio freeze"
    if _multimodal(args) and (args.bool("freeze_vit") is not False or args.bool("freeze_aligner") is not False
                              or args.bool("freeze_llm")):
        return "the vision tower / aligner (freeze_vit, freeze_aligner default to true)"
    return None


def zero3_nonreentrant_checkpoint(recipe, args, err, warn):
    # ms-swift's trainer patches torch.utils.checkpoint with one use_reentrant for the run
    # (swift/trainers/mixin.py SwiftMixin._fix_gradient_checkpointing): gradient_checkpointing_kwargs' value, else
    # True under DeepSpeed. Non-reentrant checkpointing re-runs each block's forward in the backward, where ZeRO-3's
    # forward post-hook partitions the frozen parameters back to shape [0] while torch's checkpoint still holds them
    # undetached, and its metadata check raises (DeepSpeed issue #4332; fixed by DeepSpeed PR #8148, July 2026).
    # Report-only evidence for the DeepSpeed side (not installed here): a warning.
    if recipe.engine != "swift" or not args.raw("deepspeed"):
        return
    config = _json_config(args.raw("deepspeed"), DEEPSPEED_PRESETS)
    if config is None or _zero_stage(config) != 3:
        return
    kwargs = args.raw("gradient_checkpointing_kwargs")
    if isinstance(kwargs, str):
        try:
            kwargs = json.loads(kwargs)
        except ValueError:
            return  # json-string / json-argument judge text that is not JSON
    if not isinstance(kwargs, dict) or kwargs.get("use_reentrant") is not False:
        return
    if args.bool("gradient_checkpointing") is False and not args.bool("vit_gradient_checkpointing"):
        return  # no checkpointed block to recompute
    frozen = _frozen_parts(args)
    if frozen is None:
        return
    warn("zero3-nonreentrant-checkpoint", f"gradient_checkpointing_kwargs use_reentrant false under DeepSpeed ZeRO-3 "
         f"with frozen weights ({frozen}): the checkpoint recompute finds ZeRO-3's re-partitioned frozen parameters "
         "(shape [0]) and the first backward stops with \"CheckpointError: Recomputed values for the following tensors "
         "have different metadata\" on DeepSpeed releases without PR #8148", "gradient_checkpointing_kwargs",
         hint="drop use_reentrant (ms-swift checkpoints reentrantly under DeepSpeed by default), or deepspeed: zero2")


def zero3_generation_gather(recipe, args, err, warn):
    # Generation on the trained model itself (GRPO / on-policy GKD without vLLM: swift/rlhf_trainers/rollout_mixin.py
    # RolloutTrainerMixin._generate_completions; sft predict_with_generate: swift/trainers/seq2seq_trainer.py
    # Seq2SeqTrainer.prediction_step) runs inside swift/utils/transformers_utils.py unwrap_model_for_generation, which
    # under ZeRO-3 gathers every parameter once for the whole generate unless ds3_gather_for_generation is false; then
    # ZeRO-3's hooks all-gather each layer's shards again at every decoding step. Nothing fails, the first step looks
    # hung for hours (huggingface/trl#3858, the maintainer: intended behaviour). A warning.
    if recipe.engine != "swift" or args.bool("ds3_gather_for_generation") is not False or not args.raw("deepspeed"):
        return
    config = _json_config(args.raw("deepspeed"), DEEPSPEED_PRESETS)
    if config is None or _zero_stage(config) != 3:
        return
    rlhf_type = args.str("rlhf_type")
    if recipe.command == "rlhf" and rlhf_type in ("grpo", "gkd"):
        if args.bool("use_vllm"):
            return  # vLLM generates; the trained model is not decoded token by token
        try:
            lmbda = float(args.raw("lmbda")) if args.has("lmbda") else 0.5  # RLHFArguments.lmbda default
        except (TypeError, ValueError):
            return  # argument-type judges it
        if rlhf_type == "gkd" and lmbda <= 0:
            return  # no on-policy generation
        what = f"{rlhf_type.upper()}'s rollouts (no vLLM)"
    elif recipe.command == "sft" and args.bool("predict_with_generate"):
        what = "predict_with_generate's evaluation"
    else:
        return
    warn("zero3-generation-gather", f"ds3_gather_for_generation false under DeepSpeed ZeRO-3: {what} decode with the "
         "weights still sharded, so every decoding step all-gathers each layer across the ranks; generation slows by "
         "orders of magnitude and the first step can look hung for hours (huggingface/trl#3858)",
         "ds3_gather_for_generation",
         hint="ds3_gather_for_generation: true (the default; one gather per generate), or use_vllm for the rollouts")


def trainer_wrapper_refusals(recipe, args, err, warn):
    # transformers trainer.py Trainer.create_accelerator_and_postprocess (called by __init__; reached through ms-swift's trainers, which call
    # it unchanged): save_only_model with load_best_model_at_end under DeepSpeed or FSDP raises "{DeepSpeed|FSDP} can't
    # be used with `save_only_model` along with `load_best_model_at_end`." -- the wrapped engine reloads its own
    # checkpoint format, which save_only_model does not write (transformers#27751 hit it at the end of training,
    # PR #28866 made it an up-front error); auto_find_batch_size under ZeRO-3 raises "`auto_find_batch_size` isn't
    # supported yet with DeepSpeed Zero-3." Neither is touched by ms-swift's arguments.
    if recipe.engine != "swift" or recipe.command not in ("sft", "pt", "rlhf"):
        return
    ds, fsdp = args.raw("deepspeed"), args.str("fsdp")
    if args.bool("save_only_model") and args.bool("load_best_model_at_end") and (ds or fsdp):
        wrapper = "DeepSpeed" if ds else "FSDP"
        err("save-only-best-model", f"save_only_model with load_best_model_at_end under {wrapper}: the Trainer refuses "
            f"it at start-up (\"{wrapper} can't be used with `save_only_model` along with `load_best_model_at_end`\"; "
            "the best checkpoint is reloaded through the wrapper's own checkpoint, which save_only_model does not "
            "write)", "save_only_model", hint="save_only_model: false, or load_best_model_at_end: false")
    if args.bool("auto_find_batch_size") and ds:
        config = _json_config(ds, DEEPSPEED_PRESETS)
        if config is not None and _zero_stage(config) == 3:
            err("auto-batch-zero3", "auto_find_batch_size under DeepSpeed ZeRO-3: the Trainer refuses it at start-up "
                "(\"`auto_find_batch_size` isn't supported yet with DeepSpeed Zero-3\")", "auto_find_batch_size",
                hint="auto_find_batch_size: false, or deepspeed: zero2")


# DeepSpeed's per-rank ZeRO optimizer files (runtime/engine.py _get_rank_zero_ckpt_name: [bf16_]zero_pp_rank_{dp}_
# mp_rank_{mp:02d}_optim_states.pt), one per data-parallel rank of the run that saved them.
_ZERO_OPTIM_FILE = re.compile(r"zero_pp_rank_(\d+)_mp_rank_\d+_optim_states\.pt$")


def _checkpoint_dp_size(directory: Path) -> int | None:
    """The data-parallel size a DeepSpeed checkpoint (checkpoint-N/ with global_stepN/) was saved at: the global step
    dir 'latest' names (else the last one), counted by its ZeRO optimizer files; None when none is readable here."""
    if not directory.is_dir():
        return None
    latest = directory / "latest"
    tag = latest.read_text(encoding="utf-8").strip() if latest.is_file() else ""
    steps = [directory / tag] if tag and (directory / tag).is_dir() else sorted(directory.glob("global_step*"))
    if not steps:
        return None
    ranks = {int(m.group(1)) for f in steps[-1].iterdir() if (m := _ZERO_OPTIM_FILE.search(f.name))}
    return max(ranks) + 1 if ranks else None


def deepspeed_resume_world(recipe, args, err, warn):
    # transformers integrations/deepspeed.py deepspeed_load_checkpoint (Trainer._inner_training_loop on
    # resume_from_checkpoint under DeepSpeed) calls engine.load_checkpoint(load_optimizer_states=True), and DeepSpeed's
    # runtime/engine.py DeepSpeedEngine._load_zero_checkpoint raises ZeRORuntimeException ("The checkpoint being loaded
    # used a DP world size of N but the current world size is M. Automatic adjustment of ZeRO's optimizer state
    # partitioning with a new world size is not currently supported.") for any ZeRO stage unless the config loads a
    # universal checkpoint (checkpoint.load_universal, which ms-swift's _load_optimizer_and_scheduler reads too).
    # ms-swift's resume_only_model swallows the failed load (swift/trainers/mixin.py
    # SwiftMixin._patch_deepspeed_load_checkpoint). Judged only for a checkpoint directory readable here.
    if recipe.engine != "swift" or recipe.command not in ("sft", "pt", "rlhf") or args.bool("resume_only_model"):
        return
    resume, ds = args.str("resume_from_checkpoint"), args.raw("deepspeed")
    if not resume or not ds or (args.int("sequence_parallel_size") or 1) > 1:
        return
    # The deepspeed_elastic callback makes ms-swift turn checkpoint.load_universal on itself
    # (swift/trainers/utils.py prepare_deepspeed_elastic_config -> enable_deepspeed_load_universal) and resume only
    # from a checkpoint with latest_universal, else from scratch (swift/pipelines/train/sft.py _get_resume_checkpoint
    # -> get_resume_checkpoint_until_find_ucp): the world-size check is never reached.
    if "deepspeed_elastic" in [str(c) for c in args.list("callbacks")]:
        return
    config = _json_config(ds, DEEPSPEED_PRESETS)
    if config is None or not _zero_stage(config) or _ds_node(config, "checkpoint.load_universal"):
        return
    saved = _checkpoint_dp_size(Path(resume))
    try:
        world = recipe.launch.world_size
    except UserError:
        return  # the scheduler sizes the run
    # DeepSpeed compares data-parallel sizes: AutoTP (deepspeed_autotp_size, SftArguments._init_deepspeed writes it
    # into tensor_parallel.autotp_size) takes its ranks out of the data-parallel group, and the rank files count the
    # dp rank (zero_pp_rank_{dp}_mp_rank_{tp}).
    try:
        autotp = int(args.raw("deepspeed_autotp_size") or _ds_node(config, "tensor_parallel.autotp_size") or 1)
    except (TypeError, ValueError):
        return  # argument-type judges it
    if autotp > 1:
        if world % autotp:
            return  # the AutoTP layout is judged elsewhere
        world //= autotp
    if saved is None or saved == world:
        return
    err("deepspeed-resume-world", f"resume_from_checkpoint {resume} holds ZeRO optimizer state of {saved} data-parallel "
        f"ranks, and this run has {world}: DeepSpeed refuses to load it (\"The checkpoint being loaded used a DP world "
        f"size of {saved} but the current world size is {world}. Automatic adjustment of ZeRO's optimizer state "
        "partitioning with a new world size is not currently supported.\")", "resume_from_checkpoint",
        hint=f"resume on {saved} GPUs, or resume_only_model: true (weights only), or convert it with DeepSpeed's "
             "ds_to_universal.py and set checkpoint.load_universal in the DeepSpeed config")


DEEPSPEED_RULES = [config_names, deepspeed_hpz, deepspeed_values, zero3_bnb, zero3_nonreentrant_checkpoint,
                   zero3_generation_gather, trainer_wrapper_refusals, deepspeed_resume_world]
