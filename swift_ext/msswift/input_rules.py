"""ms-swift's checks on the recipe's inputs, both engines, run before launch: the model_type and template
names ms-swift's registry knows, how the data is loaded (lazy_tokenize, streaming), the precision the GPU
can hold, and the save/eval schedule the transformers Trainer accepts. Split from rules.py by concern;
rules.py registers INPUT_RULES with its own."""

from __future__ import annotations

import difflib
import json
from functools import lru_cache

from swift_ext.msswift.model_config_fields import (floor_release, later_model_config_fields, model_config_fields,
                                                   model_config_types, value_fits)
from swift_ext.msswift.schema import describe
from swift_ext.msswift.model_table import load, model_meta, template_for
from swift_ext.msswift.template_system import chat_template_on, takes_system
from swift_ext.spec.findings import shown


# swift/model/model_meta.py _get_model_info: 'model_type: ... not in [MODEL_MAPPING]'; swift/template/register.py
# get_template_meta: 'template_type: ... not in [TEMPLATE_MAPPING]' -- both at argument parsing, on every rank,
# once the model is downloaded. The registry (msswift-models.json) is read from the installed ms-swift.
def registry_names(recipe, args, err, warn):
    if args.list("external_plugins") or args.list("custom_register_path"):
        # a plugin may register_model / register_template the name itself; custom_register_path is ms-swift 3's
        # name for the same files (base_args.py appends it to external_plugins)
        return
    table = load()
    for key, known, what in (("model_type", table["model_types"], "model type"),
                             ("template", table["templates"], "template")):
        name = args.str(key)
        if not name or name in known:
            continue
        close = difflib.get_close_matches(name, list(known), n=3)
        err("registry-name", f"{key} {shown(name)} is not a {what} ms-swift registers (it refuses it at start-up)", key,
            hint=f"did you mean {' / '.join(close)}?" if close else f"drop {key}: ms-swift reads it from the model")


def template_system(recipe, args, err, warn):
    # swift/template/base.py Template.__init__: template_meta.check_system(default_system) -- the `system` argument
    # -- asserts "The template does not support `system`" for a template without a system slot
    # (msswift/template_system.py), and for every template under use_chat_template false (`pt`), whose generate
    # meta has none. At start-up, both engines, before any data is read. A row's own system turn is the dataset
    # check's (planner/plan.py validate_datasets).
    system = args.str("system")
    if not system or recipe.command not in ("sft", "pt", "rlhf"):
        return
    chat = chat_template_on(recipe, args)
    choice = template_for(args.str("model"), args.str("model_type"), args.str("template"))
    if chat and choice is None:
        return  # the template is not known here
    if takes_system(choice.template if choice else "", chat):
        return
    why = (f"template {choice.template} has no system slot" if chat
           else "use_chat_template false (the generation template has no system slot)")
    err("template-system", f"system set but {why}: ms-swift asserts \"The template does not support `system`\" "
        "when it builds the template", "system",
        hint="drop system (or put the instruction in the user turn)" if chat
        else "drop system, or use_chat_template: true")


def lazy_tokenize_conflicts(recipe, args, err, warn):
    # swift/arguments/base_args/base_args.py BaseArguments._init_lazy_tokenize (both engines: MegatronBaseArguments
    # extends BaseArguments): an explicit lazy_tokenize refuses packing and streaming (left unset, ms-swift picks
    # false whenever either is on).
    if not args.bool("lazy_tokenize"):
        return
    for feature in ("packing", "streaming"):
        if args.bool(feature):
            err("lazy-tokenize", f"lazy_tokenize and {feature} are incompatible (ms-swift refuses the pair at start-up; "
                "before ms-swift 4 packing was silently dropped)", "lazy_tokenize",
                hint=f"remove lazy_tokenize (ms-swift then tokenizes ahead, as {feature} needs)")


def streaming_max_steps(recipe, args, err, warn):
    # transformers trainer.py Trainer.__init__: a train dataset without __len__ (ms-swift's streaming datasets are
    # iterable) needs max_steps > 0; num_train_epochs / max_epochs cannot be turned into steps. Engine megatron has
    # its own check (megatron_training).
    if recipe.engine != "swift" or not args.bool("streaming"):
        return
    if (args.int("max_steps") or -1) <= 0:
        err("streaming-max-steps", "a streaming dataset has no length, so the transformers Trainer cannot turn "
            "num_train_epochs/max_epochs into steps and refuses to start", "max_steps",
            hint="set max_steps (max_epochs then stops early at the epoch boundary)")


def shuffle_levels(recipe, args, err, warn):
    # Two shuffles, two flags (data_args.py: "for CPT/SFT, shuffling occurs at both the dataset level ... and the
    # dataloader level"). BaseArguments.load_dataset hands shuffle=dataset_shuffle (default true) to
    # dataset/loader.py load_dataset, which permutes the concatenated train rows once (dataset_meta.py
    # DatasetLoader.shuffle_dataset: dataset.shuffle(seed)) before encoding; the
    # trainer's sampler then reads train_dataloader_shuffle (trainers/mixin.py get_train_dataloader; Megatron:
    # trainers/base.py _prepare_dataloader). train_dataloader_shuffle false alone keeps the permuted order. GRPO reads
    # dataset_shuffle only (megatron_args.py _init_grpo copies it over train_dataloader_shuffle; the swift trainer's
    # shuffle_dataset is dataset_shuffle), so there the flag does nothing at all. A cached_dataset is not reshuffled at
    # load (pipelines/utils.py get_cached_dataset permutes only to sample), and packing reorders rows into packs anyway.
    if not args.has("train_dataloader_shuffle") or args.bool("train_dataloader_shuffle"):
        return
    if not args.list("dataset") or args.bool("packing"):
        return
    if args.raw("dataset_shuffle") is not None and not args.bool("dataset_shuffle"):
        return
    grpo = recipe.command == "rlhf" and args.str("rlhf_type") == "grpo"
    what = ("GRPO reads dataset_shuffle only, so train_dataloader_shuffle false changes nothing and the prompts come "
            "in a shuffled order" if grpo else
            "train_dataloader_shuffle false stops the sampler's shuffle, but dataset_shuffle (default true) has "
            "already permuted the train rows once when the dataset was loaded: the run reads them in that shuffled "
            "order, not the file's")
    warn("shuffle-levels", what, "dataset_shuffle",
         hint="dataset_shuffle: false as well (ms-swift's answer in ms-swift#3977: both flags)")


BF16_DTYPES = ("bfloat16", "bf16")


def bf16_gpu(recipe, args, err, warn):
    # vLLM refuses bfloat16 below compute capability 8.0 ("Bfloat16 is only supported on GPUs with compute capability
    # of at least 8.0", NVIDIA-NeMo/RL#259 -- vLLM is not installed here to cite); ms-swift passes torch_dtype to the
    # rollout engine. The transformers Trainer does not refuse it: TrainingArguments.__post_init__ asks
    # is_torch_bf16_gpu_available(), i.e. torch.cuda.is_bf16_supported(including_emulation=True), which is true on
    # a V100 or T4 (a bfloat16 tensor can be made there), so bf16 training starts and runs emulated -- a warning.
    # Only an explicit bf16 choice is judged: unset, ms-swift reads config.json.
    gpu = recipe.launch.gpu
    if gpu is None:
        return
    from swift_ext.spec.gpus import GPUS

    cc = GPUS[gpu].compute_capability
    if cc >= (8, 0):
        return
    dtype = (args.str("torch_dtype") or "").lower()
    # Only GRPO and GKD build a rollout engine (rlhf_args.py rlhf_support_vllm_types; megatron_args.py the same two):
    # use_vllm beside another algorithm is parsed and never read.
    rollout = recipe.command == "rlhf" and args.str("rlhf_type") in ("grpo", "gkd") and args.bool("use_vllm")
    if rollout and args.str("vllm_mode") != "server" and dtype in BF16_DTYPES:  # a server: its own GPUs
        err("bf16-gpu", f"{gpu} (compute capability {cc[0]}.{cc[1]}) has no bfloat16; the vLLM rollout engine refuses "
            f"torch_dtype {args.str('torch_dtype')} (bf16 needs 8.0+)", "torch_dtype",
            hint="torch_dtype: float16, or an Ampere-or-newer GPU")
        return
    # ms-swift _init_mixed_precision: an explicit bf16 wins, else torch_dtype decides.
    trainer_bf16 = args.bool("bf16") if args.has("bf16") else dtype in BF16_DTYPES
    if recipe.engine == "swift" and trainer_bf16:
        key = "bf16" if args.has("bf16") else "torch_dtype"
        value = "true" if key == "bf16" else args.str(key)
        warn("bf16-gpu", f"{gpu} (compute capability {cc[0]}.{cc[1]}) has no native bfloat16: the transformers Trainer "
             f"accepts {key} {value} (torch emulates bf16 there), but training runs far slower than in float16",
             key, hint="torch_dtype: float16, or an Ampere-or-newer GPU")


def validation_set(args) -> bool:
    """sft_args.py: eval_strategy becomes "no" only without eval_dataset (evalscope during training) and without a
    validation set (data_args.py _init_val_dataset_exists: val_dataset, cached_val_dataset or a split)."""
    return bool(args.list("val_dataset") or args.list("cached_val_dataset") or args.list("eval_dataset")) or (
        (args.float("split_dataset_ratio") or 0) > 0 and not args.bool("streaming"))


def evaluation_strategy(args) -> str:
    """The eval_strategy transformers receives from engine swift: SftArguments._init_eval_strategy defaults it to
    save_strategy ("steps" unless stated), and __post_init__ sets "no" without a validation set."""
    return (args.str("eval_strategy") or args.str("save_strategy") or "steps") if validation_set(args) else "no"


def best_model_schedule(recipe, args, err, warn):
    # transformers training_args.py TrainingArguments.__post_init__: load_best_model_at_end needs the eval strategy to
    # match the save strategy (unless save_strategy is "best") and, by steps, save_steps a multiple of eval_steps.
    # ms-swift 4.6 sft_args.py _init_eval_strategy: eval_strategy defaults to save_strategy and eval_steps to
    # save_steps, and SftArguments.__post_init__ sets eval_strategy "no" when there is no validation set.
    if recipe.engine != "swift" or not args.bool("load_best_model_at_end"):
        return
    save = args.str("save_strategy") or "steps"
    if save == "best":
        return
    has_val = validation_set(args)
    evaluation = evaluation_strategy(args)
    if evaluation != save:
        key = "eval_strategy" if has_val else "load_best_model_at_end"
        err("best-model-schedule", f"load_best_model_at_end needs evaluation on the save schedule, but eval_strategy is "
            f"{evaluation!r}{'' if has_val else ' (no validation set)'} and save_strategy {save!r}: the transformers "
            "Trainer refuses it", key,
            hint="add val_dataset or split_dataset_ratio" if not has_val else f"eval_strategy: {save}")
        return
    if evaluation != "steps":
        return
    save_steps = args.float("save_steps") or 0
    eval_steps = args.float("eval_steps") or save_steps
    if not save_steps or not eval_steps or save_steps % eval_steps == 0:
        return
    if save_steps >= 1 and eval_steps >= 1:
        if int(save_steps) % int(eval_steps):
            err("best-model-schedule", f"load_best_model_at_end needs save_steps to be a multiple of eval_steps, got "
                f"{int(save_steps)} and {int(eval_steps)}: the transformers Trainer refuses it", "save_steps",
                hint=f"save_steps: {int(eval_steps) * max(1, round(save_steps / eval_steps))}")
        return
    # A value below 1 is a ratio of the total steps: transformers refuses a ratio beside an absolute count, and two
    # ratios unless save_steps is a multiple of eval_steps in millionths (its LARGE_MULTIPLIER arithmetic).
    mixed = (save_steps < 1) != (eval_steps < 1)
    if mixed or (save_steps * 1_000_000) % (eval_steps * 1_000_000) != 0:
        err("best-model-schedule", f"load_best_model_at_end needs save_steps to be a multiple of eval_steps, got "
            f"{save_steps:g} and {eval_steps:g}{' (a ratio of the total steps beside an absolute count)' if mixed else ''}"
            ": the transformers Trainer refuses it", "eval_steps" if args.has("eval_steps") else "save_steps",
            hint="give both as step counts (save_steps a multiple of eval_steps), or both as ratios")


def fp16_and_bf16(recipe, args, err, warn):
    # ms-swift 4.6 model_args.py ModelArguments._init_mixed_precision fills only the unset one of fp16/bf16 from
    # torch_dtype (bfloat16 -> bf16, float16/float32 -> fp16); transformers TrainingArguments.__post_init__ then
    # refuses both: "At most one of fp16 and bf16 can be True, but not both". Megatron: MegatronArguments.
    # _init_mixed_precision fills them the same way and get_mcore_model_config passes both to megatron-core 0.16.1's
    # TransformerConfig.__post_init__: "Only one of self.fp16 ... and self.bf16 ... should be True."
    dtype = (args.str("torch_dtype") or "").lower()
    implied_bf16 = dtype in BF16_DTYPES
    implied_fp16 = dtype in ("float16", "fp16", "half", "float32", "fp32")
    fp16 = args.bool("fp16") if args.has("fp16") else implied_fp16
    bf16 = args.bool("bf16") if args.has("bf16") else implied_bf16
    if fp16 and bf16 and (args.has("fp16") or args.has("bf16")):
        key = "fp16" if args.has("fp16") and args.bool("fp16") else "bf16"
        err("mixed-precision", f"fp16 and bf16 end up both true ({key} set, the other from torch_dtype {dtype or '?'}): "
            f"{'megatron-core' if recipe.engine == 'megatron' else 'the transformers Trainer'} refuses it", key,
            hint="set only torch_dtype, or the matching one of fp16/bf16")


def megatron_extra_kwargs(recipe, args, err, warn):
    # swift/megatron/model/utils.py get_mcore_model_config: `kwargs.update(args.megatron_extra_kwargs)` after the
    # HF config and every argument named like a ModelConfig field, then `config_cls(**kwargs)` -- a dataclass
    # constructor, so an unknown key is a TypeError when the model is built (msswift/model_config_fields.py).
    # bridge_backend megatron-bridge hands them to its provider's apply_overrides_and_finalize instead: not read here.
    extra = args.mapping("megatron_extra_kwargs")
    if recipe.engine != "megatron" or not extra or args.str("bridge_backend") == "megatron-bridge":
        return
    found = model_config_fields()
    if found is None:
        return
    fields, _ = found
    arguments = set(args.schema.fields) if args.schema is not None else set()
    # get_mcore_model_config builds `getattr(args.megatron_model_meta, 'config_cls', ModelConfig)`: a plugin
    # (external_plugins / custom_register_path) can register a model meta whose config class has more fields, so
    # there an unknown key is said, not refused.
    plugins = bool(args.list("external_plugins") or args.list("custom_register_path"))
    later = later_model_config_fields()
    mla_only, mla_model = _mla_only_fields(fields), _mla_config_model(args)
    for key, value in extra.items():
        if key in mla_only and mla_model is not False:
            if mla_model is None:  # a model the registry does not know: its config class is read at start-up
                warn("megatron-extra-kwargs", f"megatron_extra_kwargs key {key!r} is a field of megatron-core's "
                     "MLATransformerConfig only: mcore-bridge builds it for deepseek_v41 (MLAModelConfig, from "
                     "mcore-bridge 1.6.5); for any other model ModelConfig(**kwargs) is a TypeError when the model "
                     "is built", "megatron_extra_kwargs", hint=f"remove {key} unless the model is deepseek_v41")
            continue  # deepseek_v41: MLAModelConfig takes it
        if key not in fields and key in later:
            # ms-swift 4.6 accepts any mcore-bridge from 1.6.3 up: a field a later release added builds there.
            warn("megatron-extra-kwargs", f"megatron_extra_kwargs key {key!r} is a field of mcore-bridge's "
                 f"ModelConfig only from mcore-bridge {later[key]} on (not in {floor_release()}, the oldest release "
                 "ms-swift 4.6 accepts): with an older one ModelConfig(**kwargs) is a TypeError when "
                 "the model is built", "megatron_extra_kwargs",
                 hint=f"pip install 'mcore-bridge>={later[key]}' on the training nodes")
        elif key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=1)
            if key in arguments:
                hint = f"it is an ms-swift argument, not a model config field: set `{key}: {json.dumps(value)}` in args"
            else:
                hint = f"did you mean {close[0]}?" if close else f"remove {key}"
            message = (f"megatron_extra_kwargs key {key!r} is not a field of the Megatron model config (mcore-bridge "
                       "ModelConfig / megatron-core TransformerConfig): ms-swift passes it to ModelConfig(**kwargs), a "
                       "TypeError ('unexpected keyword argument') when the model is built")
            if plugins:
                warn("megatron-extra-kwargs", f"{message}, unless a plugin of external_plugins registers a model "
                     "whose config class (model meta config_cls) has it", "megatron_extra_kwargs", hint=hint)
            else:
                err("megatron-extra-kwargs", message, "megatron_extra_kwargs", hint=hint)
        elif key not in JUDGED_BY_RECOMPUTE_RULES and _extra_value(key, value, err if not plugins else warn):
            continue  # a value of the wrong type: fixed where it stands, not moved to args as it is
        elif key in arguments and args.raw(key) not in (None, []) and _as_config_gets(key, args.raw(key)) != value:
            # get_mcore_model_config copies the argument into the config (when it is not None), then the
            # extra kwargs over it: the config takes the extra value, args keeps the argument's.
            stated = args.raw(key)
            source = "the recipe's" if args.has(key) else "ms-swift's default"
            warn("megatron-extra-kwargs", f"megatron_extra_kwargs sets {key}: {value!r}, which is also an ms-swift "
                 f"argument ({source} {stated!r}): the model config takes {value!r} (get_mcore_model_config applies "
                 f"megatron_extra_kwargs last), while everything else ms-swift reads from args.{key} keeps "
                 f"{stated!r}", "megatron_extra_kwargs",
                 hint=f"set `{key}: {json.dumps(value)}` in args and drop it from megatron_extra_kwargs")


# mcore-bridge 1.6.5 mm_gpts/deepseek_v41.py registers deepseek_v41 (absent from 1.6.3) with config_cls=MLAModelConfig
# (model_config.py: ModelConfig + megatron-core's MLATransformerConfig); every other registration keeps ModelConfig.
MLA_CONFIG_MODEL_TYPES = ("deepseek_v41",)


@lru_cache(maxsize=1)
def _mla_fields() -> frozenset[str]:
    from swift_ext.msswift.source_reader import _SourceReader

    try:
        return frozenset(_SourceReader().dataclass_fields("megatron.core.transformer.transformer_config",
                                                          "MLATransformerConfig"))
    except (LookupError, OSError, SyntaxError):
        return frozenset()


def _mla_only_fields(fields) -> frozenset[str]:
    """MLATransformerConfig's init fields that the model config (ModelConfig) lacks."""
    return _mla_fields() - fields


def _mla_config_model(args) -> bool | None:
    """Whether ms-swift builds this model's Megatron config as MLAModelConfig (MegatronArguments._get_mcore_model_type:
    the ModelMeta's mcore_model_type, else its model_type); None when the registry does not know the model."""
    meta = model_meta(args.str("model"), args.str("model_type")) if args.str("model") or args.str("model_type") \
        else None
    if meta is None:
        return None
    return (meta.get("mcore_model_type") or meta["model_type"]) in MLA_CONFIG_MODEL_TYPES


# planner/mcore_config_rules.py recompute_layer_counts and recompute_modules judge these values with what megatron-core
# does with them (a count that never ends a loop, a string read letter by letter): not said twice.
JUDGED_BY_RECOMPUTE_RULES = ("recompute_num_layers", "mtp_num_layers", "recompute_modules", "recompute_granularity")
_TRUE, _FALSE = ("true", "yes", "on", "1", "y"), ("false", "no", "off", "0", "n", "")


def _extra_value(key, value, say) -> bool:
    # get_mcore_model_config `kwargs.update`s megatron_extra_kwargs as written and ModelConfig(**kwargs) checks no
    # types: a string where megatron-core tests a boolean is true ("false" included), a string or a fraction where it
    # counts layers fails in arithmetic when the model is built. Judged against the field's declared type in
    # megatron-core 0.16.1's TransformerConfig / ModelParallelConfig (model_config_fields.model_config_types);
    # a type the annotation cannot decide (Any, a dtype, a callable, a field mcore-bridge retypes) is not judged.
    field = model_config_types().get(key)
    if field is None or value_fits(value, field["type"], field["default"]) is not False:
        return False
    kind, declared = field["type"], describe(field["type"])
    if kind["kind"] == "bool" and isinstance(value, str):
        meant = "true" if value.strip().lower() in _TRUE else "false" if value.strip().lower() in _FALSE else None
        say("megatron-extra-kwargs", f"megatron_extra_kwargs gives {key} {value!r}, a string where the model config "
            f"declares a boolean: ms-swift passes it as written (get_mcore_model_config) and megatron-core tests it "
            f"as a truth value, so {value!r} reads as {bool(value)}", "megatron_extra_kwargs",
            hint=f"write a YAML boolean, unquoted: megatron_extra_kwargs: {{{key}: {meant or 'true / false'}}}")
        return True
    hint = f"megatron_extra_kwargs: {{{key}: <{declared}>}}"
    if isinstance(value, str) and kind["kind"] in ("int", "float"):
        try:
            number = int(value) if kind["kind"] == "int" else float(value)
            hint = f"write the number unquoted: megatron_extra_kwargs: {{{key}: {json.dumps(number)}}}" + (
                " (YAML reads 1e-3 as a string: write 1.0e-3)" if "e" in value.lower() and "." not in value else "")
        except ValueError:
            pass
    elif type(value) is float and kind["kind"] == "int" and value.is_integer():
        hint = f"megatron_extra_kwargs: {{{key}: {int(value)}}}"
    say("megatron-extra-kwargs", f"megatron_extra_kwargs gives {key} {json.dumps(value)}{_json_kind(value)}, but "
        f"the model config declares {key} as {declared}: ms-swift passes it as written (get_mcore_model_config), "
        "nothing converts it, and megatron-core uses it as given", "megatron_extra_kwargs", hint=hint)
    return True


def _json_kind(value) -> str:
    for kind, name in ((bool, "a boolean"), (str, "a string"), (int, "an integer"), (float, "a fraction"),
                       (list, "a list"), (dict, "a mapping")):
        if isinstance(value, kind):
            return f" ({name})"
    return ""


def _as_config_gets(key, value):
    # MegatronArguments.__post_init__ turns a one-item moe_aux_loss_coeff / moe_router_load_balancing_type list into
    # its item before get_mcore_model_config copies it: [0.001] and 0.001 are the same value there.
    if key in ("moe_aux_loss_coeff", "moe_router_load_balancing_type") and isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def num_labels(recipe, args, err, warn):
    # swift/model/model_meta.py get_model_info_meta: task_type seq_cls asserts num_labels ("Please pass the parameter
    # `num_labels`."); the head is OutputLayerLinear(hidden, num_labels) (mcore-bridge; transformers' score layer on
    # engine swift): a negative width is torch's error at model build, 0 leaves nothing to classify -- and the memory
    # estimate would silently size a 1-label head. rlhf_type rm sets num_labels 1 itself (both rlhf_args.py).
    if recipe.command == "rlhf" and args.str("rlhf_type") == "rm":
        return
    # With task_type unset, get_model_info_meta makes a reward model's num_labels 1 whatever was given, and takes the
    # task from the model's ModelMeta when it names one (an embedding model ignores num_labels); otherwise a given
    # num_labels means seq_cls.
    meta = (model_meta(args.str("model"), args.str("model_type")) if args.str("model") else None) or {}
    labels, task = args.int("num_labels"), args.str("task_type")
    if task is None and meta.get("reward"):
        labels = 1
    if labels is not None and labels < 1 and (task or meta.get("task_type")) in (None, "seq_cls"):
        err("num-labels", f"num_labels {labels}: the classification head needs at least one output", "num_labels",
            hint="num_labels: the number of classes (1 for a regression or reward score)")
    elif labels is None and task == "seq_cls":
        err("num-labels", "task_type seq_cls without num_labels: ms-swift asserts 'Please pass the parameter "
            "`num_labels`.' when it loads the model", "task_type",
            hint="set num_labels (1 for a regression or reward score)")


# swift/template/base.py Template._reranker_data_collator (the first training batch; reranker and
# generative_reranker, both engines): `int(os.environ.get('MAX_POSITIVE_SAMPLES', 1))` and MAX_NEGATIVE_SAMPLES (7),
# then `random_state.choice(n, min(n, max_samples), replace=False)`: a value int() refuses ("1e9", "", "nan") is a
# ValueError, a negative one a ValueError from numpy ("negative dimensions are not allowed").
RERANKER_SAMPLES = ("MAX_POSITIVE_SAMPLES", "MAX_NEGATIVE_SAMPLES")


def reranker_samples(recipe, args, err, warn):
    if recipe.command not in ("sft", "pt") or args.str("task_type") not in ("reranker", "generative_reranker"):
        return
    for name in RERANKER_SAMPLES:
        if name not in args.env:
            continue
        value = args.env[name]
        try:
            count = int(value)  # as ms-swift reads it: " 7 ", "+7" and "7_0" are numbers, "1e9" and "7.0" are not
        except (TypeError, ValueError):
            count = None
        if count is not None and count >= 0:
            continue
        shown = value if len(str(value)) <= 40 else str(value)[:37] + "..."
        err("reranker-samples", f"env {name}={shown!r}: ms-swift's reranker collator reads it with int() and samples "
            "that many documents per row (numpy choice), so the first training batch fails "
            f"({'int() refuses it' if count is None else 'a negative count'})", f"env.{name}",
            hint=f"{name}: a whole number >= 0, written as digits (e.g. \"7\")")


def start_up_ranges(recipe, args, err, warn):
    # swift/dataset/dataset_meta.py BaseDatasetLoader.post_process: `assert 0 <= split_dataset_ratio <= 1` when the dataset
    # loads (both engines) -- unless DataArguments.__post_init__ first set it to 0 (a val_dataset, or a streaming
    # dataset with a ratio above 0: msswift/coercions.py says so).
    ratio = args.float("split_dataset_ratio")
    replaced = bool(args.list("val_dataset")) or (args.bool("streaming") and (ratio or 0) > 0)
    if ratio is not None and not 0 <= ratio <= 1 and not replaced:
        err("argument-range", f"split_dataset_ratio {ratio:g} is not a fraction of the dataset: ms-swift asserts "
            "0 <= split_dataset_ratio <= 1 when it loads the data", "split_dataset_ratio",
            hint="a fraction such as 0.01 (0: no validation split)")
    # swift/pipelines/base.py SwiftPipeline._set_seed: seed + rank into seed_everything -> transformers set_seed ->
    # numpy's RandomState.seed, which takes 0 .. 2**32 - 1 (a ValueError on every rank at start-up). Engine megatron
    # does not seed there (MegatronSft._set_seed is empty).
    seed = args.int("seed")
    ranks = recipe.launch.world_size if not recipe.launch.scheduled else 1
    if recipe.engine == "swift" and seed is not None and not 0 <= seed <= 2**32 - ranks:
        err("argument-range", f"seed {seed}: ms-swift seeds numpy with seed + rank, which must lie in 0 .. 2**32 - 1 "
            "(numpy refuses it on every rank at start-up)", "seed", hint="a seed from 0 to 4294967295 minus the ranks")


def comma_target_modules(recipe, args, err, warn):
    # ms-swift's parser takes lists space-separated (HfArgumentParser nargs): `--target_modules q_proj,v_proj` is ONE
    # name, 'q_proj,v_proj'. swift/pipelines/train/tuner.py get_target_modules passes explicit names on (the Megatron
    # engine's swift/megatron/utils/utils.py get_target_modules too), and peft tuners/tuners_utils.py
    # BaseTuner.inject_adapter matches module names by suffix: no module name holds a comma, so nothing matches and
    # it raises "Target modules {'q_proj,v_proj'} not found in the base model". target_regex replaces target_modules.
    if args.str("target_regex") or (args.str("tuner_type") or "lora") == "full":
        return
    given = [str(m) for m in args.list("target_modules")]
    joined = [m for m in given if "," in m]
    if joined:
        names = [n.strip() for m in joined for n in m.split(",") if n.strip()]
        hint = f"target_modules: [{', '.join(names)}] (on the command line: --target_modules {' '.join(names)})"
        # peft raises only when nothing matched at all (BaseTuner.inject_adapter: not targeted_module_names); beside
        # another entry (all-linear, a plain name) the comma entry silently matches nothing.
        if len(joined) == len(given) and not args.list("target_parameters"):
            err("target-modules-comma", f"target_modules entry {joined[0]!r} is one module name with a comma in it "
                "(ms-swift takes lists space-separated); no module matches it and peft refuses the adapter "
                "(\"Target modules ... not found in the base model\")", "target_modules", hint=hint)
        else:
            warn("target-modules-comma", f"target_modules entry {joined[0]!r} is one module name with a comma in it "
                 "(ms-swift takes lists space-separated): it matches no module, so the adapter goes only where the "
                 "other entries put it", "target_modules", hint=hint)


FREEZE_KEYS = ("trainable_parameters", "trainable_parameters_regex", "freeze_parameters", "freeze_parameters_regex",
               "freeze_parameters_ratio")


def _asks(args, key: str) -> bool:
    """The recipe's value asks for something (a non-empty list or regex, a positive ratio)."""
    if key.endswith("ratio"):
        return (args.float(key) or 0) > 0
    return bool(args.list(key)) if key.endswith("parameters") else bool(args.str(key))


def freeze_params_adapter(recipe, args, err, warn):
    # Both engines apply freeze_parameters* and trainable_parameters* only to full training: swift/pipelines/train/
    # tuner.py TunerMixin.prepare_model calls freeze_parameters / activate_parameters in its `tuner_type == 'full'`
    # branch (an adapter run freezes the whole base model, model.requires_grad_(False), and trains the adapter), and
    # swift/megatron/utils/utils.py prepare_mcore_model likewise (lora / lora_llm go to prepare_adapter alone). Asked
    # for under an adapter, they change nothing without a word: the parameters a user unfreezes stay frozen. LoRA's
    # way to train whole modules is modules_to_save. (Megatron's full turned lora by adapters is
    # coercions._megatron_adapters_lora.)
    tuner = args.str("tuner_type") or ("full" if recipe.engine == "megatron" else "lora")
    if tuner == "full":
        return
    given = [k for k in FREEZE_KEYS if args.has(k) and _asks(args, k)]
    if not given:
        return
    key = given[0]
    unfreeze = key.startswith("trainable")
    warn("freeze-params-adapter", f"{key} has no effect with tuner_type {tuner}: ms-swift applies "
         f"{'trainable_parameters' if unfreeze else 'freeze_parameters'}* only to full training (an adapter run "
         "freezes the whole base model and trains the adapter alone), so "
         + ("the parameters it names stay frozen" if unfreeze else "it freezes nothing the adapter trains"), key,
         hint=("modules_to_save: [<module names>] trains whole modules beside LoRA (or tuner_type: full)" if unfreeze
               else "target_modules / target_regex decide where LoRA goes (or tuner_type: full)"))


def padding_side_right(recipe, args, err, warn):
    # swift/template/base.py Template._data_collator: without padding_free, "padding_side must be "right" when
    # use_megatron or sequence_parallel_size > 1" (an assert at the first training batch). Megatron's padding_free
    # defaults true (packing forces it), but swift/megatron/model/utils.py _check_padding_free turns it off under
    # attention_backend unfused.
    if args.str("padding_side") != "left":
        return
    if recipe.engine == "megatron":
        padding_free = args.bool("padding_free") and (args.str("attention_backend") or "flash") != "unfused"
        why = "Megatron"
    else:
        padding_free = args.bool("padding_free")
        why = f"sequence_parallel_size {args.int('sequence_parallel_size')}"
        if (args.int("sequence_parallel_size") or 1) <= 1:
            return
    if padding_free:
        return
    err("padding-side", f"padding_side left without padding_free under {why}: the template's collator asserts "
        "padding_side right at the first batch", "padding_side",
        hint="padding_side: right (or padding_free: true)")


INPUT_RULES = [start_up_ranges, reranker_samples, registry_names, template_system, lazy_tokenize_conflicts, streaming_max_steps,
               shuffle_levels,
               bf16_gpu, best_model_schedule, fp16_and_bf16, megatron_extra_kwargs, num_labels, comma_target_modules,
               freeze_params_adapter, padding_side_right]
