"""Megatron checkpoints as ms-swift 4.6 writes and reads them (`megatron sft|pt|rlhf`): the settings under which the
first mcore checkpoint save raises -- minutes or hours into a run -- and a resume that restores no optimizer state.
Each names the line of the installed `swift` package or megatron-core it mirrors; startup_rules.py registers
CHECKPOINT_RULES with the other start-up rules.
"""

from __future__ import annotations

import json
from pathlib import Path


def _writes_mcore_checkpoint(args) -> bool:
    """ms-swift megatron/trainers/base.py BaseMegatronTrainer.save_checkpoint passes the models to
    save_mcore_checkpoint unless save_safetensors and no_save_optim are both on (then only safetensors are written)."""
    return not (args.bool("save_safetensors") and args.bool("no_save_optim"))


def checkpoint_save(recipe, args, err, warn):
    if recipe.engine != "megatron" or not _writes_mcore_checkpoint(args):
        return
    fsdp = args.bool("use_megatron_fsdp")
    # megatron/utils/megatron_lm_utils.py save_mcore_checkpoint: "Megatron-FSDP fsdp_dtensor checkpoint does not support
    # async_save in Megatron-Core 0.16." (whenever the models are saved).
    if fsdp and args.bool("async_save"):
        err("checkpoint-save", "async_save with use_megatron_fsdp: ms-swift's first checkpoint save raises "
            "('Megatron-FSDP fsdp_dtensor checkpoint does not support async_save')", "async_save",
            hint="async_save: false (or save_safetensors: true with no_save_optim: true: no mcore checkpoint)")
    # _generate_state_dict: fsdp_dtensor checkpoints take exactly one model chunk ("Virtual pipeline parallel
    # checkpointing is not supported yet."); virtual stages build one chunk each.
    vpp = args.int("virtual_pipeline_model_parallel_size") or 1
    if fsdp and vpp > 1:
        err("checkpoint-save", f"use_megatron_fsdp with {vpp} virtual pipeline stages: ms-swift's fsdp_dtensor "
            "checkpoint takes exactly one model chunk and the first save raises NotImplementedError",
            "virtual_pipeline_model_parallel_size",
            hint="drop virtual_pipeline_model_parallel_size (or use_megatron_fsdp)")
    # get_sharded_sd_metadata: dist_ckpt_save_pre_mcore_014 selects the distributed optimizer's
    # 'fully_sharded_model_space' format; megatron-core 0.16.1 optimizer/distrib_optimizer.py
    # sharded_param_state_fs_model_space builds every state ShardedTensor with a flattened_range and
    # dist_checkpointing/mapping.py ShardedTensor.validate_metadata_integrity refuses it: "ShardedTensor.flattened_range
    # is not supported." Megatron-FSDP takes its own fsdp_dtensor format first; Muon runs without the distributed
    # optimizer (_check_muon).
    if (args.bool("dist_ckpt_save_pre_mcore_014") and args.bool("use_distributed_optimizer") and not fsdp
            and "muon" not in (args.str("optimizer") or "adam") and not args.bool("no_save_optim")):
        err("checkpoint-save", "dist_ckpt_save_pre_mcore_014 saves the distributed optimizer in its "
            "fully_sharded_model_space format, which megatron-core 0.16 refuses: the first checkpoint save raises "
            "'ShardedTensor.flattened_range is not supported.'", "dist_ckpt_save_pre_mcore_014",
            hint="dist_ckpt_save_pre_mcore_014: false (dist_ckpt_optim_fully_reshardable: true keeps the optimizer "
                 "state reshardable), or no_save_optim: true")


def lora_regex_save(recipe, args, err, warn):
    # ms-swift megatron/trainers/base.py BaseMegatronTrainer.save_checkpoint: under save_safetensors a LoRA run writes
    # its adapter with bridge.save_weights(peft_format=True) at every save -- with merge_lora too, since mcore-bridge
    # 1.6 sets GPTBridge._support_hf_grouped_lora, which turns skip_saving_adapter off. megatron/init.py
    # _patch_mcore_bridge's save_weights then writes adapter_config.json and asserts the peft target_modules are no
    # string ("target_regex is not currently supported for LoRA conversion"): MegatronTunerMixin.__post_init__ put the
    # target_regex string there, and megatron/utils/utils.py get_target_modules hands it to LoraConfig as is. The
    # run trains up to its first save_steps, then rank 0 raises. (A multimodal model's all-linear regex takes the
    # branch before the assert: that is ms-swift's own regex, never a target_regex.) lora_llm never saves an adapter.
    if recipe.engine != "megatron" or not args.str("target_regex") or not args.bool("save_safetensors"):
        return
    if args.str("tuner_type") != "lora":  # adapters make full lora: coercions._megatron_adapters_lora
        return
    if "all-linear" in args.str("target_regex"):
        return
    err("lora-regex-save", "LoRA with target_regex under save_safetensors (the default): each checkpoint writes the "
        "adapter in peft format, and ms-swift asserts its target_modules are no regex ('target_regex is not currently "
        "supported for LoRA conversion') -- at the first save, after save_steps of training (merge_lora does not skip "
        "the adapter save with mcore-bridge 1.6)", "target_regex",
        hint="target_modules with module names (linear_qkv linear_proj ...) instead of target_regex, or "
             "save_safetensors: false (mcore checkpoints only)")


def merge_lora_unsaved(recipe, args, err, warn):
    # ms-swift megatron/trainers/base.py BaseMegatronTrainer.save_checkpoint merges the LoRA weights and writes
    # checkpoint-N-merged only inside `if args.save_safetensors:`; with save_safetensors false a stated merge_lora true
    # writes the mcore checkpoint alone, and no merged model appears, without a word. (lora_llm refuses merge_lora
    # false itself: megatron-args.)
    if recipe.engine != "megatron" or args.bool("save_safetensors") or not args.bool("merge_lora") \
            or not args.has("merge_lora"):
        return
    if (args.str("tuner_type") or "full") == "full":  # adapters make full lora: coercions._megatron_adapters_lora
        return
    warn("merge-lora-unsaved", "merge_lora true with save_safetensors false: ms-swift merges and writes "
         "checkpoint-N-merged only when it saves safetensors, so no merged model is written (only the mcore "
         "checkpoint)", "merge_lora",
         hint="save_safetensors: true, or merge afterwards with `megatron export --mcore_adapter ... --merge_lora true`")


def resume_source(recipe, args, err, warn):
    # What a Megatron resume restores (ms-swift 4.6 megatron/trainers/base.py BaseMegatronTrainer._load_checkpoint,
    # megatron/utils/megatron_lm_utils.py load_mcore_checkpoint): the optimizer, LR scheduler, RNG and iteration come
    # only from the mcore checkpoint that holds them -- mcore_model for a full run, mcore_adapter for LoRA. With LoRA,
    # load_mcore_checkpoint reads mcore_model as the base model and forces no_load_optim, no_load_rng and finetune
    # there ("When training with LoRA and loading the base model"), returning iteration 0 over the one _load_iteration
    # read; model/adapters (safetensors) give at most the iteration (latest_checkpointed_iteration.txt), never the
    # optimizer. So a recipe that asks for the state (finetune false, or no_load_optim / no_load_rng written false)
    # without that checkpoint restarts Adam and the LR schedule without a word.
    if recipe.engine != "megatron":
        return
    lora = (args.str("tuner_type") or "full") in ("lora", "lora_llm") or bool(args.list("adapters"))
    source = "mcore_adapter" if lora else "mcore_model"
    asked = [k for k in ("finetune", "no_load_optim", "no_load_rng") if args.has(k) and args.bool(k) is False]
    if not asked:
        return
    if args.raw(source) is not None:
        # the checkpoint is there, but load_mcore_checkpoint reads optimizer, scheduler and RNG only when not finetune
        if "finetune" not in asked and args.bool("finetune"):
            warn("resume-source", f"{asked[0]}: false with finetune true (ms-swift's default): load_mcore_checkpoint "
                 f"takes only the weights from {source}, and the iteration restarts at 0", asked[0],
                 hint="finetune: false")
        return
    key = asked[0]
    if lora and args.raw("mcore_model") is not None:
        # load_mcore_checkpoint returns iteration 0 for the base load, over what _load_iteration read
        tail = (" (mcore_model is read as the base model only: ms-swift forces no_load_optim and finetune for it "
                "under LoRA, and the run restarts at iteration 0)")
    else:
        tail = " (at most the iteration comes back, from latest_checkpointed_iteration.txt beside model/adapters)"
    warn("resume-source", f"{key}: false asks to resume, but without {source} ms-swift restores no optimizer, "
         f"LR-scheduler or RNG state{tail}", key,
         hint=f"{source}: <output_dir>/checkpoint-N (saved with no_save_optim: false) and finetune: false")


# The LR-scheduler settings megatron-core's OptimizerParamScheduler.load_state_dict passes through _check_and_set (lr is
# its max_lr, train_iters its decay length while lr_decay_iters is unset), in ms-swift's argument names.
SCHEDULE_KEYS = ("lr", "min_lr", "lr_decay_style", "lr_warmup_iters", "lr_warmup_fraction", "lr_decay_iters",
                 "train_iters", "weight_decay")


def _saved_args(directory) -> dict:
    """args.json in a Megatron checkpoint directory (ms-swift's save_checkpoint copies the run's args.json into each
    checkpoint-N); empty where there is none readable here."""
    try:
        saved = json.loads((Path(str(directory)) / "args.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return saved if isinstance(saved, dict) else {}


def _resumed_optimizer_args(args) -> tuple[str, dict]:
    """(the flag that loads the checkpoint, its saved args.json) for a run that resumes the checkpoint's optimizer:
    mcore_adapter for LoRA runs, mcore_model otherwise; {} when unreadable here or saved without optimizer state."""
    lora = (args.str("tuner_type") or "full") in ("lora", "lora_llm") or bool(args.list("adapters"))
    source = "mcore_adapter" if lora else "mcore_model"
    directory = args.raw(source)
    saved = _saved_args(directory) if directory else {}
    return source, ({} if not saved or saved.get("no_save_optim") else saved)


def resume_schedule(recipe, args, err, warn):
    # ms-swift 4.6 megatron/utils/megatron_lm_utils.py get_optimizer_param_scheduler builds megatron-core's
    # OptimizerParamScheduler without use_checkpoint_opt_param_scheduler / override_opt_param_scheduler, so the
    # defaults hold (True / False); load_mcore_checkpoint, resuming the optimizer (not finetune, not no_load_optim, the
    # checkpoint saved with its optimizer), calls opt_param_scheduler.load_state_dict, whose _check_and_set then takes
    # the checkpoint's max_lr, min_lr, warmup and decay steps, decay style and weight decay over the run's own
    # ("using checkpoint value"). A resume that changes the schedule keeps the old one without a word (Megatron-LM
    # issues #963, #1138: the learning rate stayed at stage 1's after a resume with a new one). Judged only where the
    # checkpoint's args.json is readable here and both it and the recipe state the value.
    if recipe.engine != "megatron" or args.bool("finetune") or args.bool("no_load_optim"):
        return
    source, saved = _resumed_optimizer_args(args)
    if not saved:
        return
    for key in SCHEDULE_KEYS:
        if not args.has(key) or saved.get(key) is None:
            continue
        if key == "train_iters" and (args.has("lr_decay_iters") or saved.get("lr_decay_iters") is not None
                                     or args.has("num_train_epochs") or args.has("max_epochs")):
            continue  # the decay length is lr_decay_iters, or comes from the data
        ours, theirs = args.raw(key), saved[key]
        same = ours == theirs
        if not same:
            try:
                same = float(ours) == float(theirs)
            except (TypeError, ValueError):
                same = str(ours) == str(theirs)
        if not same:
            warn("resume-schedule", f"{key} {ours} differs from the {theirs} the checkpoint in {source} was saved "
                 "with: resuming its optimizer, megatron-core's LR scheduler takes the checkpoint's schedule "
                 "(use_checkpoint_opt_param_scheduler, ms-swift's default) and the new value is not used", key,
                 hint="keep the saved schedule, or start a new schedule from the weights: finetune: true (or "
                 "no_load_optim: true)")
            return

def resume_layout(recipe, args, err, warn):
    # ms-swift 4.6 megatron/utils/megatron_lm_utils.py load_mcore_checkpoint: resuming the optimizer (not finetune, not
    # no_load_optim, the checkpoint saved with it) under the distributed optimizer with a (TP, PP) other than the
    # checkpoint's raises RuntimeError("(TP, PP) mismatch after resume (...): not supported for DistributedOptimizer")
    # unless the checkpoint's distrib_optim_sharding_type (its content_metadata, from get_sharded_sd_metadata at save
    # time) is fully_reshardable (dist_ckpt_optim_fully_reshardable), fully_sharded_model_space
    # (dist_ckpt_save_pre_mcore_014) or fsdp_dtensor (use_megatron_fsdp): the default dp_reshardable state follows the
    # distributed optimizer's buckets and reshards across DP only (distrib_optimizer.py sharded_state_dict).
    if recipe.engine != "megatron" or args.bool("finetune") or args.bool("no_load_optim"):
        return
    if not args.bool("use_distributed_optimizer") and not args.bool("use_megatron_fsdp"):
        return
    source, saved = _resumed_optimizer_args(args)
    if not saved:
        return
    if saved.get("dist_ckpt_optim_fully_reshardable") or saved.get("dist_ckpt_save_pre_mcore_014") \
            or saved.get("use_megatron_fsdp"):
        return
    for key in ("tensor_model_parallel_size", "pipeline_model_parallel_size"):
        theirs = saved.get(key)
        ours = args.int(key) or 1
        if isinstance(theirs, int) and theirs != ours:
            err("resume-layout", f"{key} {ours} differs from the checkpoint's {theirs} ({source}): ms-swift's "
                "load_mcore_checkpoint refuses to resume the distributed optimizer across a (TP, PP) change from its "
                "default dp_reshardable checkpoint format ('(TP, PP) mismatch after resume: not supported for "
                "DistributedOptimizer')", key,
                hint=f"resume with {key}: {theirs}, or load only the weights (finetune: true or no_load_optim: true); "
                "save with dist_ckpt_optim_fully_reshardable: true to change the layout later")
            return

# Which format each load argument reads (ms-swift 4.6): mcore_model / mcore_adapter (and the RLHF reference's
# mcore_ref_model / mcore_ref_adapter) go through megatron/utils/megatron_lm_utils.py load_mcore_checkpoint, which reads
# DIR/latest_checkpointed_iteration.txt (_load_iteration: 0 when the file is missing) and then DIR/iter_<N:07d> with
# megatron-core's dist_checkpointing.load_common_state_dict, whose verify_checkpoint_and_load_strategy wants that
# directory and its metadata.json (a Megatron-FSDP fsdp_dtensor checkpoint: torch DCP's .metadata without common.pt,
# megatron_fsdp_checkpoint.py is_checkpoint). A Hugging Face model, the safetensors adapter of a save_safetensors run,
# the run directory above checkpoint-N, or a checkpoint saved with save_safetensors and no_save_optim (save_checkpoint
# then passes no models: iter_N holds common.pt alone) raise CheckpointingException ("Checkpoint directory ... does
# not exist" / "... is not a distributed checkpoint") after the model is built. adapters / ref_adapters go through
# mcore-bridge's GPTBridge.load_weights(peft_format=True) (trainers/base.py _prepare_peft_model,
# trainers/rlhf_mixin.py): its SafetensorLazyLoader reads adapter_model.safetensors (or a model.safetensors.index.json)
# and finds no tensors in an mcore-only checkpoint, so the first LoRA layer's hf_state_dict[...lora_A...] raises
# KeyError. Judged only for directories readable here.
MCORE_LOADS = ("mcore_model", "mcore_adapter", "mcore_ref_model", "mcore_ref_adapter")
PEFT_LOADS = ("adapters", "ref_adapters")
TRACKER = "latest_checkpointed_iteration.txt"


def mcore_checkpoint_problem(directory: Path) -> tuple[str, str] | None:
    """Why load_mcore_checkpoint cannot open `directory` -- (what is missing, megatron-core's message) -- or None when
    it can, or when the tracker is unreadable (not judged). Also read by after/merge.py for the export it builds."""
    tracker = directory / TRACKER
    try:
        step = int(tracker.read_text(encoding="utf-8").strip()) if tracker.is_file() else 0
    except (OSError, ValueError):
        return None
    iter_dir = directory / f"iter_{step:07d}"
    if not iter_dir.is_dir():
        where = f"{TRACKER} names {iter_dir.name}" if tracker.is_file() else f"no {TRACKER}, so {iter_dir.name}"
        return f"{where}, which is not there", f"Checkpoint directory .../{iter_dir.name} does not exist"
    fsdp = (iter_dir / ".metadata").is_file() and not (iter_dir / "common.pt").exists()
    if (iter_dir / "metadata.json").is_file() or fsdp:
        return None
    weightless = " (only common.pt: saved with save_safetensors and no_save_optim, which write no mcore weights)" \
        if (iter_dir / "common.pt").is_file() else ""
    return (f"{iter_dir.name} without metadata.json{weightless}", f".../{iter_dir.name} is not a distributed checkpoint")


def _adapter_only(directory: Path) -> bool:
    """An mcore checkpoint written by a LoRA run: BaseMegatronTrainer.save_checkpoint saves with peft_format
    (tuner_type lora), and save_mcore_checkpoint's _filter_adapter_state_dict keeps the lora_A / lora_B /
    modules_to_save tensors only (lora_llm saves the rest of the model). `megatron export --to_mcore` output is judged by
    what it saved (megatron/pipelines/export/export.py convert_hf2mcore: peft format unless merge_lora). `swift export
    --to_mcore` (swift/megatron/convert.py convert_hf2mcore) always saves the full model -- a fresh MegatronArguments,
    save_mcore_checkpoint's peft_format False -- although its args.json (ExportArguments, no Megatron fields such as
    tensor_model_parallel_size) says tuner_type lora with merge_lora false even for a plain `--model Qwen/...`:
    BaseArguments defaults tuner_type to lora (load_args_from_ckpt forces it from a LoRA run's args.json too), and
    ExportArguments turns merge_lora off under to_mcore."""
    saved = _saved_args(directory)
    if saved.get("tuner_type") != "lora":
        return False
    if saved.get("to_mcore") and "tensor_model_parallel_size" not in saved:
        return False  # swift export --to_mcore: the full model
    return not (saved.get("to_mcore") and saved.get("merge_lora"))


def _holds_peft_safetensors(directory: Path) -> bool:
    return (directory / "adapter_model.safetensors").is_file() or (directory / "model.safetensors.index.json").is_file()


def _what_it_is(directory: Path) -> tuple[str, str]:
    """(what the directory holds, the argument or checkpoint that reads it) for the message and hint."""
    if (directory / "adapter_model.safetensors").is_file():
        return "a safetensors LoRA adapter (adapter_model.safetensors)", "adapters"
    if (directory / "config.json").is_file() and (any(directory.glob("*.safetensors"))
                                                  or (directory / "model.safetensors.index.json").is_file()):
        return "a Hugging Face model (config.json + safetensors)", "model"
    steps = sorted((p for p in directory.glob("checkpoint-*") if p.name.removeprefix("checkpoint-").isdigit()),
                   key=lambda p: int(p.name.removeprefix("checkpoint-")))
    if steps:
        more = f", the latest of {len(steps)}" if len(steps) > 1 else ""
        return f"a run directory ({steps[-1].name}{more} is below it)", steps[-1].name
    return "no Megatron checkpoint", ""


def checkpoint_format(recipe, args, err, warn):
    if recipe.engine != "megatron":
        return
    for key in MCORE_LOADS:
        value = args.raw(key)
        if not isinstance(value, str) or not value or not Path(value).expanduser().is_dir():
            continue
        directory = Path(value).expanduser()
        problem = mcore_checkpoint_problem(directory)
        if problem is None:
            if key in ("mcore_model", "mcore_ref_model") and _adapter_only(directory):
                err("checkpoint-format", f"{key} {value} is the mcore checkpoint of a LoRA run (its args.json: "
                    "tuner_type lora), which holds the adapter weights only: load_mcore_checkpoint asks it for the "
                    "base weights and torch.distributed.checkpoint raises 'Missing key in checkpoint state_dict' "
                    "once the model is built", key,
                    hint=f"{key.replace('model', 'adapter')}: {value}, with the base model in model (or {key}) as "
                         "that run had it")
            continue
        missing, raised = problem
        what, reader = _what_it_is(directory)
        if reader.startswith("checkpoint-"):
            hint = f"{key}: {value.rstrip('/')}/{reader} (the checkpoint itself)"
        elif reader:
            hint = f"{reader}: {value} (that argument reads this format)" + (
                "" if reader != "adapters" else "; mcore_adapter takes the checkpoint-N of a run saved with "
                "no_save_optim false or save_safetensors false")
        else:
            hint = f"{key} takes an mcore checkpoint (a checkpoint-N with {TRACKER} and iter_N, or swift export --to_mcore output)"
        err("checkpoint-format", f"{key} {value} is {what}: {missing}, so load_mcore_checkpoint raises "
            f"CheckpointingException ('{raised}') once the model is built", key, hint=hint)
    if (args.str("tuner_type") or "full") not in ("lora", "lora_llm") and not args.list("adapters"):
        return  # full training never loads adapters (adapters turn it into lora: coercions._megatron_adapters_lora)
    for key in PEFT_LOADS:
        if key == "adapters" and args.raw("mcore_adapter") or key == "ref_adapters" and args.raw("mcore_ref_adapter"):
            continue  # the mcore checkpoint is read instead (_prepare_peft_model / rlhf_mixin)
        if key == "ref_adapters" and recipe.command != "rlhf":
            continue
        for value in args.list(key):
            directory = Path(str(value)).expanduser()
            if not directory.is_dir() or _holds_peft_safetensors(directory):
                continue
            mcore = mcore_checkpoint_problem(directory) is None and (directory / TRACKER).is_file()
            what = "an mcore (torch_dist) checkpoint without adapter_model.safetensors" if mcore else \
                "a directory without adapter_model.safetensors"
            mcore_key = "mcore_adapter" if key == "adapters" else "mcore_ref_adapter"
            err("checkpoint-format", f"{key} {value} is {what}: mcore-bridge's load_weights(peft_format=True) finds "
                "no adapter tensors there and raises KeyError on the first LoRA weight once the model is built", key,
                hint=f"{mcore_key}: {value}" if mcore else "point it at a checkpoint-N saved with save_safetensors: true")
            break

def mtp_checkpoint_tp(recipe, args, err, warn):
    # mcore-bridge 1.6.3 model/modules/mtp_layer.py:44 MultiTokenPredictionLayer.__init__ sets
    # `self.tp_group = getattr(self, 'tp_group', None)`, and megatron-core 0.16.1's MultiTokenPredictionLayer never
    # sets one: the attribute is None. MegatronModule.sharded_state_dict (transformer/module.py) then hands tp_group None
    # to make_sharded_tensors_for_checkpoint and to sharded_state_dict_default for the enorm / hnorm / final norm (TE
    # norms: no sharded_state_dict of their own); with the dp_cp_group given, transformer/utils.py keeps tp_group None
    # and get_pg_rank(None) is 0 -- every TP rank calls itself replica (0, 0, dp) of the same replicated tensor.
    # ms-swift's save_mcore_checkpoint calls dist_checkpointing.save(validate_access_integrity=True), whose
    # validation.py _validate_sharding_for_key raises "Invalid access pattern" when a shard has more than one main
    # replica. mcore-bridge 1.6.5 sets the TP group there ("If it stays None, sharded_state_dict uses tp rank 0 on
    # every TP rank and the replicated enorm/hnorm end up with two main replicas"). A LoRA checkpoint keeps only the
    # adapter tensors (_filter_adapter_state_dict), so only full-weight saves hold the norms. Warning: no public
    # report yet, and the failure comes at the first save, not at start-up.
    if recipe.engine != "megatron" or not _writes_mcore_checkpoint(args):
        return
    if args.str("bridge_backend") == "megatron-bridge":
        return
    mtp, tp = args.int("mtp_num_layers") or 0, args.int("tensor_model_parallel_size") or 1
    if mtp < 1 or tp <= 1 or args.str("tuner_type") == "lora":
        return
    warn("mtp-checkpoint-tp", f"mtp_num_layers {mtp} with tensor_model_parallel_size {tp}, saving an mcore checkpoint: "
         "mcore-bridge 1.6.3 leaves the MTP layer's tp_group None, so every TP rank claims to be the main replica of "
         "the MTP norms and dist_checkpointing's integrity check raises 'Invalid access pattern' at the first save "
         "(after save_steps of training)", "mtp_num_layers",
         hint="save_safetensors: true with no_save_optim: true (no mcore checkpoint), tensor_model_parallel_size: 1, "
              "or mcore-bridge >= 1.6.5")


CHECKPOINT_RULES = [checkpoint_save, mtp_checkpoint_tp, lora_regex_save, merge_lora_unsaved, resume_source,
                    resume_schedule, resume_layout, checkpoint_format]
