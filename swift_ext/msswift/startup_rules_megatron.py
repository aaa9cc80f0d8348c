"""ms-swift 4.6's Megatron-engine start-up refusals (`megatron sft|pt|rlhf`) beside the other rule modules: Muon's
settings, the optimizer megatron-core builds (SGD under the distributed optimizer, the dtypes CPU offload drops),
the weight-decay schedule, lora_llm, the one adapter / ref_adapter, vit_lr on text models, a teacher server under
Ray, and a model (or teacher) mcore-bridge has no Megatron model for. Each names the file and function of the
installed `swift` package (or megatron-core) it mirrors; startup_rules.py registers MEGATRON_STARTUP_RULES with its
own.
"""

from __future__ import annotations

from functools import lru_cache

from swift_ext.msswift.checkpoint_args import checkpoint_args, loaded, origin
from swift_ext.msswift.model_table import model_meta
from swift_ext.msswift.validation_split import train_rows
from swift_ext.msswift.plugin_registry import (
    builtin_names,
    missing_plugin_files,
    plugin_names,
    plugins_may_register_models,
    plugins_readable,
    registered_names,
)

# -------------------------------------------------------------------------------------------------
# Megatron engine (`megatron sft|rlhf`)


def muon_optimizer(recipe, args, err, warn):
    # swift/megatron/arguments/megatron_args.py MegatronArguments._check_muon (and _check_muon_mcore_support).
    optimizer = args.str("optimizer") or "adam"
    if recipe.engine != "megatron" or "muon" not in optimizer:
        return
    if optimizer == "muon":
        for key in ("overlap_grad_reduce", "overlap_param_gather"):
            if args.bool(key):
                err("muon-optimizer", f"optimizer muon does not support {key}", key,
                    hint=f"{key}: false, or optimizer: dist_muon")
    # megatron-core optimizer/muon.py get_megatron_muon_optimizer (both muon and dist_muon): "muon with fp16 is not
    # supported." ms-swift copies fp16 into the OptimizerConfig; _init_mixed_precision fills an unset fp16 from
    # torch_dtype (float16/float32 -> fp16; Args.mixed_precision).
    if args.mixed_precision()[0]:
        err("muon-optimizer", f"optimizer {optimizer} does not run in fp16: megatron-core raises 'muon with fp16 is not "
            "supported.' while building the optimizer", "fp16" if args.has("fp16") else "torch_dtype",
            hint="bf16: true (torch_dtype: bfloat16), or optimizer: adam")
    installed = _mcore_muon()
    if installed is None:
        return  # megatron-core is not installed here: its version decides at start-up
    config_fields, param_overrides = installed
    if param_overrides:
        for key in ("vit_lr", "aligner_lr"):
            if args.raw(key) is not None:
                err("muon-optimizer", f"{key} is not supported with optimizer {optimizer} on this megatron-core",
                    key, hint=f"drop {key}; muon_lr gives the Muon-managed matrices their own learning rate")
    defaults = args.schema.fields if args.schema is not None else {}
    for key in ("muon_scalar_optimizer", "muon_coefficient_type"):
        spec = defaults.get(key)
        if key not in config_fields and spec is not None and args.has(key) and args.raw(key) != spec.default:
            err("muon-optimizer", f"{key} is not an OptimizerConfig field of the installed megatron-core: ms-swift "
                "refuses a non-default value", key, hint=f"drop {key}, or upgrade megatron-core")


def distributed_optimizer(recipe, args, err, warn):
    # megatron-core 0.16.1 optimizer/distrib_optimizer.py DistributedOptimizer.__init__ asserts its inner optimizer is
    # Adam/AdamW or HybridDeviceOptimizer ("Only Adam and HybridDeviceOptimizer currently supported, due to
    # checkpointing requirements."); optimizer/__init__.py _get_megatron_optimizer_based_on_param_groups wraps the SGD
    # it builds for optimizer sgd in one whenever use_distributed_optimizer is on -- ms-swift's default, which it turns
    # off only for Muon (_check_muon). optimizer_cpu_offload builds a HybridDeviceOptimizer instead (CPU SGD: accepted);
    # Megatron-FSDP is left alone (its own sharding path).
    if recipe.engine != "megatron" or (args.str("optimizer") or "adam") != "sgd":
        return
    if args.bool("use_distributed_optimizer") and not args.bool("optimizer_cpu_offload") \
            and not args.bool("use_megatron_fsdp"):
        err("distributed-optimizer", "optimizer sgd with the distributed optimizer (use_distributed_optimizer, on by "
            "default) fails while the optimizer is built: megatron-core's DistributedOptimizer takes only Adam",
            "optimizer", hint="use_distributed_optimizer: false (or optimizer: adam)")


def offload_optimizer_dtypes(recipe, args, err, warn):
    # megatron-core 0.16.1 optimizer/__init__.py _get_megatron_optimizer_based_on_param_groups: optimizer_cpu_offload
    # builds HybridDeviceOptimizer(param_update_in_fp32=True) and passes it none of exp_avg_dtype / exp_avg_sq_dtype /
    # main_params_dtype; cpu_offloading/hybrid_optimizer.py _get_sub_optimizer_param_groups clones every parameter it
    # updates to fp32, and torch's AdamW (CPU) / FusedAdam (GPU share) keep moments like their parameter: fp32.
    # The low-precision settings are accepted and silently dropped (radixark/Megatron-LM#67).
    if recipe.engine != "megatron" or not args.bool("optimizer_cpu_offload"):
        return
    _offload_path(args, warn)
    if not args.bool("use_precision_aware_optimizer"):
        return  # without the precision-aware optimizer, optimizer-precision refuses the dtypes outright
    for key in ("exp_avg_dtype", "exp_avg_sq_dtype", "main_params_dtype"):
        value = args.str(key)
        if value is not None and value != "fp32":
            warn("optimizer-offload-dtypes", f"{key}: {value} is ignored under optimizer_cpu_offload: megatron-core's "
                 "HybridDeviceOptimizer keeps fp32 master weights and fp32 Adam moments (the offloaded and the GPU "
                 "share alike), so the memory this setting should save is not saved", key,
                 hint=f"drop {key} (fp32 is what runs), or optimizer_cpu_offload: false to keep {value} states")


def _offload_path(args, warn) -> None:
    """optimizer_cpu_offload off the one path megatron-core's HybridDeviceOptimizer is built for. Megatron-LM's own
    training arguments (megatron/training/arguments.py validate_args, public source) refuse it without
    --use-precision-aware-optimizer ("the hybrid device optimizer reuses the code path of this flag"), which in turn
    needs the distributed optimizer; ms-swift 4.6 checks neither. Without the distributed optimizer, megatron-core
    0.16.1 optimizer/__init__.py wraps the hybrid optimizer in Float16OptimizerWithFloat16Params, whose __init__
    swaps fp32 copies into its param_groups after HybridDeviceOptimizer built its sub-optimizers on the original
    parameters (only DistributedOptimizer.__init__ rebuilds it on its shards)."""
    if "muon" in (args.str("optimizer") or "adam") or args.bool("use_megatron_fsdp"):
        return  # Muon builds its own optimizers; Megatron-FSDP forces the distributed optimizer
    if not args.bool("use_distributed_optimizer"):
        warn("optimizer-offload-path", "optimizer_cpu_offload without the distributed optimizer: megatron-core wraps its "
             "hybrid CPU/GPU optimizer in Float16OptimizerWithFloat16Params, which swaps in fp32 parameter copies the "
             "hybrid optimizer's sub-optimizers were not built on (a path Megatron-LM's arguments never allow)",
             "use_distributed_optimizer", hint="use_distributed_optimizer: true (ms-swift's default)")
    elif not args.bool("use_precision_aware_optimizer"):
        warn("optimizer-offload-path", "optimizer_cpu_offload without use_precision_aware_optimizer: Megatron-LM's own "
             "arguments refuse the pair (the hybrid device optimizer reuses the precision-aware code path); ms-swift "
             "passes it through", "optimizer_cpu_offload",
             hint="use_precision_aware_optimizer: true (as ms-swift's offload examples set it)")


@lru_cache(maxsize=1)
def _mcore_muon() -> tuple[frozenset, bool] | None:
    """(OptimizerConfig's fields, whether Muon splits parameters through config_overrides -- the presence of
    megatron.core.optimizer.layer_wise_optimizer.is_managed_by_layer_wise_optimizer, what
    MegatronArguments._muon_routes_through_param_overrides imports), read from the installed source."""
    import ast

    from swift_ext.msswift.source_reader import _SourceReader

    reader = _SourceReader()
    try:
        config_fields = frozenset(reader.dataclass_fields("megatron.core.optimizer.optimizer_config",
                                                          "OptimizerConfig"))
    except (LookupError, OSError, SyntaxError):
        return None
    parsed = reader.parse("megatron.core.optimizer.layer_wise_optimizer")
    name = "is_managed_by_layer_wise_optimizer"
    routes = parsed is not None and any(isinstance(n, ast.FunctionDef) and n.name == name for n in parsed[0].body)
    return config_fields, routes


def weight_decay_schedule(recipe, args, err, warn):
    # swift/megatron/arguments/megatron_args.py MegatronArguments._init_weigh_decay: constant takes weight_decay and
    # no start/end; linear or cosine need both start_weight_decay and end_weight_decay.
    if recipe.engine != "megatron":
        return
    style = args.str("weight_decay_incr_style") or "constant"
    given = [k for k in ("start_weight_decay", "end_weight_decay") if args.raw(k) is not None]
    if style == "constant" and given:
        err("weight-decay-schedule", f"{' and '.join(given)} need weight_decay_incr_style linear or cosine "
            "(constant takes weight_decay only)", given[0],
            hint=f"weight_decay_incr_style: linear (or cosine), or drop {' and '.join(given)}")
    elif style != "constant" and len(given) < 2:
        missing = [k for k in ("start_weight_decay", "end_weight_decay") if k not in given]
        err("weight-decay-schedule", f"weight_decay_incr_style {style} needs {' and '.join(missing)}", missing[0],
            hint="set start_weight_decay and end_weight_decay, or weight_decay_incr_style: constant")


def lora_llm(recipe, args, err, warn):
    # swift/megatron/arguments/megatron_args.py MegatronArguments.__post_init__ ("lora_llm is only supported for
    # multimodal models") and _check_mcore_bridge (not with language_model_only).
    saved = checkpoint_args(args)
    if recipe.engine != "megatron" or loaded(args, "tuner_type", saved) != "lora_llm":
        return
    where = origin(args, "tuner_type", saved)
    if args.bool("language_model_only") and args.str("bridge_backend") != "megatron-bridge":
        err("lora-llm", f"tuner_type lora_llm{where} is not supported with language_model_only", "tuner_type",
            hint="tuner_type: lora")
        return
    meta = model_meta(args.str("model"), args.str("model_type"))
    if meta is not None and not meta["multimodal"]:
        err("lora-llm", f"tuner_type lora_llm{where} is only for multimodal models, not {meta['model_type']}",
            "tuner_type", hint="tuner_type: lora")


def megatron_adapters(recipe, args, err, warn):
    # swift/megatron/arguments/megatron_args.py MegatronArguments._load_adapter_config ("Currently only support one
    # adapter") and swift/megatron/trainers/rlhf_mixin.py MegatronRLHFTrainer.prepare_model (one ref_adapter).
    if recipe.engine != "megatron":
        return
    adapters = args.list("adapters")
    if len(adapters) > 1:
        err("megatron-adapters", f"{len(adapters)} adapters: Megatron loads one", "adapters",
            hint="merge the adapters first (swift export --merge_lora), then pass one")
    refs = args.list("ref_adapters")
    if recipe.command == "rlhf" and len(refs) > 1 and not args.str("mcore_ref_adapter"):
        err("megatron-adapters", f"{len(refs)} ref_adapters: Megatron loads one", "ref_adapters",
            hint="one ref_adapters entry")


def megatron_vit_lr(recipe, args, err, warn):
    # swift/megatron/trainers/base.py BaseMegatronTrainer._get_param_groups (building the optimizer, before step 1):
    # "vit_lr and aligner_lr are only supported for multimodal models."
    if recipe.engine != "megatron":
        return
    given = [k for k in ("vit_lr", "aligner_lr") if args.raw(k) is not None]
    meta = model_meta(args.str("model"), args.str("model_type")) if given else None
    if meta is not None and not meta["multimodal"]:
        err("vit-lr-multimodal", f"{' and '.join(given)} are only for multimodal models, not {meta['model_type']}",
            given[0], hint=f"drop {' and '.join(given)}")


def megatron_callbacks(recipe, args, err, warn):
    # swift/megatron/arguments/megatron_args.py MegatronArguments.__post_init__ appends report_to to callbacks, and
    # swift/megatron/trainers/base.py BaseMegatronTrainer.__init__ builds each with megatron_callbacks_map[callback]
    # (swift/megatron/callbacks/mapping.py: print, default_flow, tensorboard, wandb, swanlab). Neither the parser nor
    # __post_init__ checks the names, so transformers' report_to values (none, all, mlflow, ...) pass and the trainer
    # raises KeyError once the model is built. An external_plugins file may add entries to the map.
    if recipe.engine != "megatron":
        return
    given = [("report_to", str(v)) for v in args.list("report_to")] + [("callbacks", str(v))
                                                                       for v in args.list("callbacks")]
    builtin = builtin_names("megatron/callbacks/mapping.py", "megatron_callbacks_map")
    if not given or builtin is None:
        return  # ms-swift not here: its map decides at start-up
    paths = args.list("external_plugins")
    known = builtin | plugin_names(paths, "megatron_callbacks_map")
    undecided = bool(paths) and (bool(missing_plugin_files(paths))
                                 or not plugins_readable(paths, "megatron_callbacks_map"))
    for key, name in given:
        if name in known:
            continue
        hint = ("drop report_to (Megatron's default is tensorboard; the print callback always runs)"
                if name in ("none", "all") else f"one of {', '.join(sorted(known - {'print', 'default_flow'}))}")
        message = (f"{key} {name}: Megatron-SWIFT has no such callback (its map: {', '.join(sorted(known))}); the "
                   f"trainer raises KeyError {name!r} when it is built")
        if undecided:
            warn("megatron-callbacks", message + ", unless an external_plugins file registers it", key, hint=hint)
        else:
            err("megatron-callbacks", message, key, hint=hint)
        return


# swift/megatron/pipelines/train/sft.py MegatronSft.prepare_trainer: these task types get their own trainer, whose
# __init__ builds `loss_map[args.loss_type]` unguarded (the transformers engine's create_loss_and_eval_metric skips a
# loss_type of None). The losses ms-swift's docs and examples pair with each.
MEGATRON_TASK_LOSSES = {"embedding": ("infonce", "cosine_similarity", "contrastive", "online_contrastive"),
                        "generative_reranker": ("pointwise_reranker", "listwise_reranker"),
                        # No task_type argument takes it on Megatron, but the registry gives it to reranker models
                        # (bge-reranker, jina-reranker-m0) and MegatronSft.prepare_trainer routes it to the same trainer.
                        "reranker": ("pointwise_reranker", "listwise_reranker")}


def megatron_task_loss(recipe, args, err, warn):
    # megatron/trainers/embedding_trainer.py MegatronEmbeddingTrainer.__init__ and reranker_trainer.py
    # MegatronRerankerTrainer.__init__: loss_map[args.loss_type] (swift/loss/mapping.py, plus what an external_plugins
    # file registers). MegatronArguments leaves loss_type None outside RLHF, so without one the trainer raises
    # KeyError: None once the model is built. The task type is the recipe's, else the one ms-swift's registry gives
    # the model (ModelArguments._init_model_info).
    if recipe.engine != "megatron" or recipe.command not in ("sft", "pt"):
        return
    task = args.str("task_type")
    if task is None:
        meta = model_meta(args.str("model"), args.str("model_type")) if args.str("model") else None
        task = meta["task_type"] if meta is not None else None
    if task not in MEGATRON_TASK_LOSSES:
        return
    loss = args.str("loss_type")
    if loss is not None:  # no loss_type is KeyError None whatever a plugin registers
        known = registered_names("loss/mapping.py", "loss_map", args.list("external_plugins"))
        if known is None or loss in known:
            return  # ms-swift not here, a plugin may register the name, or the name is known
    elif builtin_names("loss/mapping.py", "loss_map") is None:
        return  # ms-swift not here: its trainers decide at start-up
    said = "no loss_type" if loss is None else f"loss_type {loss!r}, which loss_map lacks,"
    err("megatron-task-loss", f"task_type {task} with {said}: Megatron's {task} trainer builds loss_map[loss_type] "
        f"and raises KeyError {loss!r} once the model is built", "loss_type",
        hint=f"loss_type: {MEGATRON_TASK_LOSSES[task][0]} (or one of {', '.join(MEGATRON_TASK_LOSSES[task][1:])})")


def unfused_padding_free(recipe, args, err, warn):
    # swift/megatron/model/utils.py _check_padding_free: attention_backend unfused takes no packed (THD) input, so
    # ms-swift logs a warning and sets padding_free False (trainers/base.py syncs the template). Asked-for packing then
    # packs nothing: swift/template/base.py Template.data_collator flattens each pack back into its samples and pads
    # them as separate rows, so a micro-batch carries every sample of its pack, padded to the longest.
    if recipe.engine != "megatron" or (args.str("attention_backend") or "flash") != "unfused":
        return
    key = "packing" if args.bool("packing") else "padding_free" if args.has("padding_free") and args.bool(
        "padding_free") else None
    if key is None:
        return
    warn("unfused-padding-free", f"{key} with attention_backend unfused: ms-swift turns padding_free off (the unfused "
         "backend takes no packed input)" + (", so each pack is split back into padded rows: a micro-batch holds every "
                                             "sample of its pack" if key == "packing" else ""), key,
         hint="attention_backend: flash (or fused), or drop " + key)


def megatron_ray_teacher(recipe, args, err, warn):
    # swift/megatron/arguments/megatron_args.py RLHFMegatronArgumentsMixin._check_teacher: the Ray pipeline only
    # colocates a teacher_model.
    if recipe.engine == "megatron" and recipe.command == "rlhf" and args.bool("use_ray") \
            and args.str("teacher_model_server") and (args.str("rlhf_type") or "dpo") in ("grpo", "gkd"):
        err("grpo-teacher", "teacher_model_server is not supported with use_ray", "teacher_model_server",
            hint="teacher_model: <checkpoint>, or use_ray: false")


def megatron_model_supported(recipe, args, err, warn):
    # swift/megatron/arguments/megatron_args.py MegatronArguments.__post_init__ ("Model: {model} is not supported.")
    # and _init_teacher_model (the same for teacher_model, whatever the rlhf_type): get_model_meta of
    # _get_mcore_model_type is None. Only on bridge_backend mcore-bridge (the default): megatron-bridge skips both.
    # MegatronBaseArguments.__post_init__ runs BaseArguments.__post_init__ -- which imports external_plugins /
    # custom_register_path (_import_external_plugins) -- before MegatronArguments.__post_init__: a plugin that
    # registers a model (ms-swift register_model with an mcore_model_type, or mcore-bridge's register_model) is in
    # the registries when the check runs. Where a plugin may do so the verdict is said, not refused.
    if recipe.engine != "megatron" or recipe.command not in ("sft", "pt", "rlhf") \
            or args.str("bridge_backend") == "megatron-bridge":
        return
    meta = model_meta(args.str("model"), args.str("model_type")) if args.str("model") else None
    plugins = args.list("external_plugins") + args.list("custom_register_path")
    if plugins and plugins_may_register_models(plugins):
        err = warn
    if meta is not None:
        _bridge_check(err, warn, "model", args.str("model"), meta["model_type"], meta["mcore_model_type"])
    teacher = args.str("teacher_model") if recipe.command == "rlhf" else None
    teacher_meta = model_meta(teacher, args.str("teacher_model_type")) if teacher else None
    # _get_mcore_model_type reads self.model_meta.mcore_model_type -- the student's -- for the teacher too: with the
    # student unknown here, so is the teacher's answer.
    if teacher_meta is not None and meta is not None:
        _bridge_check(err, warn, "teacher_model", teacher, teacher_meta["model_type"], meta["mcore_model_type"])


def _bridge_check(err, warn, flag: str, model: str, model_type: str, override: str | None) -> None:
    from swift_ext.msswift.mcore_support import verdict

    found = verdict(model_type, override)
    if found.support.registered != "no":
        return  # "conditional" (an mcore-bridge `if`, e.g. USE_MCORE_GDN) is not refused: it may be registered
    if found.installed:
        where = f"mcore-bridge {found.support.version} (installed here)"
    elif found.later:
        where = f"mcore-bridge {found.support.version} (the oldest release ms-swift 4.6 accepts)"
    else:
        where = f"mcore-bridge {found.support.version} (the oldest release ms-swift 4.6 accepts) to {found.latest}"
    if found.later:
        warn("megatron-model-type", f"{flag} {model} (model_type {model_type}) has no Megatron model in {where}; "
             f"mcore-bridge {found.later} adds it: with an older one ms-swift refuses it (\"Model: {model} is not "
             "supported.\")", flag, hint=f"pip install 'mcore-bridge>={found.later}' on the training nodes")
        return
    err("megatron-model-type", f"{flag} {model} (model_type {model_type}) has no Megatron model in {where}: ms-swift "
        f"refuses it (\"Model: {model} is not supported.\")" + (
            "" if err is not warn else ", unless an external_plugins file registers one (it is imported first)"),
        flag, hint="train it with the transformers engine (swift sft/rlhf), or bridge_backend: megatron-bridge where "
                   "Megatron-Bridge has the model (text-only models)")


def megatron_run_length(recipe, args, err, warn):
    # swift/megatron/arguments/megatron_args.py MegatronArguments.init_iters sets train_iters only from
    # num_train_epochs (both default None; nothing else fills them), and swift/megatron/utils/megatron_lm_utils.py
    # builds the LR scheduler with `wd_incr_steps = args.train_iters * args.global_batch_size`: with neither, a
    # TypeError before the first step. A warning, not a refusal: setups translated from RL frameworks count rollouts,
    # not iterations, and the length is the one value such a translation must still choose.
    if recipe.engine != "megatron" or args.has("train_iters") or args.has("num_train_epochs"):
        return
    warn("megatron-run-length", "neither train_iters nor num_train_epochs is set: ms-swift 4.6's Megatron trainer "
         "sets train_iters only from num_train_epochs, and building the LR scheduler multiplies train_iters "
         "(TypeError on None before the first step)", "train_iters",
         hint="set num_train_epochs (iterations from the dataset's size) or train_iters")


def megatron_epoch_iters(recipe, args, err, warn):
    # swift/megatron/arguments/megatron_args.py MegatronArguments.init_iters: with num_train_epochs, train_iters =
    # (rows // (micro_batch_size * DP) * (micro_batch_size * DP) * num_generations (GRPO; 1 otherwise)) *
    # num_train_epochs // global_batch_size, overriding any stated train_iters. A training set smaller than one global
    # batch of samples gives 0; swift/megatron/utils/megatron_lm_utils.py get_optimizer_param_scheduler then passes
    # lr_decay_steps = train_iters * global_batch_size = 0 and megatron-core's OptimizerParamScheduler.__init__
    # asserts lr_decay_steps > 0 (a bare AssertionError; THUDM/slime#2366 is the same arithmetic in slime). With
    # lr_decay_iters stated the scheduler builds and the loop runs 0 iterations. The rows are an upper bound, so a
    # refusal here is certain.
    if recipe.engine != "megatron" or not args.has("num_train_epochs"):
        return
    epochs, rows = args.float("num_train_epochs"), train_rows(args)
    if epochs is None or epochs <= 0 or rows is None:
        return
    generations = (args.int("num_generations") or 1) if args.str("rlhf_type") == "grpo" else 1
    gbs = args.int("global_batch_size") or 16
    samples = rows * generations * epochs
    if samples >= gbs:
        return
    per = f"{rows} row(s) x num_generations {generations}" if generations > 1 else f"{rows} row(s)"
    what = (f"at most {per} x {epochs:g} epoch(s) = {samples:g} samples, under one global_batch_size {gbs}: "
            "init_iters computes train_iters 0")
    if args.has("lr_decay_iters"):
        warn("epoch-iters", f"{what}, so the run trains 0 iterations", "global_batch_size",
             hint=f"global_batch_size {int(samples)} or less, or more rows / epochs")
    else:
        err("epoch-iters", f"{what}, and the LR scheduler's lr_decay_steps = 0 fails megatron-core's "
            "OptimizerParamScheduler (assert lr_decay_steps > 0) before the first step", "global_batch_size",
            hint=f"global_batch_size {int(samples)} or less (a multiple of micro_batch_size x DP), or more rows / "
                 "epochs")

MEGATRON_STARTUP_RULES = [muon_optimizer, distributed_optimizer, offload_optimizer_dtypes, weight_decay_schedule,
                          lora_llm, megatron_adapters, megatron_vit_lr, megatron_callbacks,
                          megatron_task_loss, unfused_padding_free, megatron_ray_teacher,
                          megatron_model_supported, megatron_run_length, megatron_epoch_iters]
