"""The value a field of the Megatron model config (mcore-bridge ModelConfig, a megatron-core TransformerConfig) gets
from a recipe: the one reader the config rules (mcore_config_rules, mcore_feature_rules, mcore_bridge_rules,
moe_rules, layout) and the memory estimate share.

ms-swift 4.6 swift/megatron/model/utils.py get_mcore_model_config: mcore-bridge's hf_to_mcore_config gives the
model's values; every MegatronArguments attribute named like a config field and set (not None, not an empty list)
is copied over -- a few fields from an argument of another name (ARGUMENT_OF); then `kwargs.update(args.
megatron_extra_kwargs)` last, so a key there wins over the argument of the same name (Megatron-Bridge's provider
path, _get_megatron_bridge_model, also `overrides.update`s them last). MegatronArguments.__post_init__ parses
megatron_extra_kwargs with json_parse_to_dict and nothing converts its values: ModelConfig(**kwargs) checks no
types, and megatron-core tests a switch by Python truth (`if self.moe_layer_recompute:`), so the string "false"
there is on. (msswift/input_rules.py megatron_extra_kwargs refuses such a value; the rules here judge what the
engine then does with it.) An argument reaches the config as ms-swift's parser typed it, which is how the
bound Args hold it; an unknown argument never reaches it (ms-swift's parser refuses it, check_args says so).
"""

from __future__ import annotations

from typing import Any

# Config fields get_mcore_model_config fills from an argument of another name: MegatronArguments.__post_init__
# sets `self.fp8 = self.fp8_format` and `self.fp4 = self.fp4_format` (copied by name), and get_mcore_model_config
# sets kwargs['fp8_param'] = args.fp8_param_gather, kwargs['fp4_param'] = args.fp4_param_gather and
# num_layers_in_first/last_pipeline_stage from decoder_first/last_pipeline_num_layers.
ARGUMENT_OF = {"fp8": "fp8_format", "fp4": "fp4_format", "fp8_param": "fp8_param_gather",
               "fp4_param": "fp4_param_gather",
               "num_layers_in_first_pipeline_stage": "decoder_first_pipeline_num_layers",
               "num_layers_in_last_pipeline_stage": "decoder_last_pipeline_num_layers"}
STAGE_SIZE_FIELDS = ("num_layers_in_first_pipeline_stage", "num_layers_in_last_pipeline_stage")


def from_extra(args, name: str) -> bool:
    """The config gets `name` from megatron_extra_kwargs, exactly as written: none of ms-swift's argument parsing
    (a one-item list stays a list, a string stays a string)."""
    return name in args.mapping("megatron_extra_kwargs")


def flag(args, name: str) -> str:
    """The recipe key a finding about config field `name` points at: where its value came from."""
    return "megatron_extra_kwargs" if from_extra(args, name) else ARGUMENT_OF.get(name, name)


def config_value(args, name: str, default: Any = None) -> Any:
    """The value config field `name` gets from the recipe: megatron_extra_kwargs' (null included) when it has the
    key, else the ms-swift argument's (ms-swift's default when the recipe leaves it; as the argument holds it, an
    empty list included), else `default` (the model's or the config class's value, where the caller knows it)."""
    extra = args.mapping("megatron_extra_kwargs")
    if name in extra:
        return extra[name]
    argument = ARGUMENT_OF.get(name, name)
    if args.schema is not None and argument not in args.schema.fields:
        return default  # no such ms-swift argument: only megatron_extra_kwargs sets this field
    value = args.raw(argument)
    return default if value is None else value


def is_on(args, name: str, default: bool = False) -> bool:
    """The config switch `name` as megatron-core tests it: by Python truth of the value it gets (an extra kwargs
    string "false" is on, 0 and null are off)."""
    return bool(config_value(args, name, default))


def is_list(args, name: str, value) -> bool:
    """The config field `name` reaches megatron-core as a list: an argument list of two or more items (ms-swift
    unwraps one item), or any list megatron_extra_kwargs gives."""
    return isinstance(value, list) and (len(value) != 1 or from_extra(args, name))


def granularity_of(args) -> str | None:
    """recompute_granularity as the config gets it, None for no recompute. MegatronArguments.__post_init__ turns
    the argument 'none' into None (megatron_args.py:847); megatron_extra_kwargs' value reaches TransformerConfig as
    written, where only null is no recompute -- its string "none" stays "none", which TransformerConfig.__post_init__
    refuses (layout.recompute says so)."""
    value = config_value(args, "recompute_granularity")
    if value is None or (value in ("none", "None") and not from_extra(args, "recompute_granularity")):
        return None
    return str(value)


def layer_count(args, name: str) -> int | None:
    """The integer config field `name` (recompute_num_layers, mtp_num_layers) as megatron-core gets it, or None
    when unset or not an integer. An argument reaches the config parsed by ms-swift's argparse (check_args
    refuses what does not parse); megatron_extra_kwargs reaches it as written, so there only a JSON integer is
    one -- not "2", 2.5, true, NaN or inf, which megatron-core would index or loop with
    (recompute_layer_counts reports those)."""
    if not from_extra(args, name):
        return args.int(name)
    value = config_value(args, name)
    return value if type(value) is int else None


def builds_with_mcore_bridge(args) -> bool:
    """ms-swift builds the model config with mcore-bridge's ModelConfig (bridge_backend mcore-bridge, its default),
    whose __post_init__ rewrites some fields before TransformerConfig's checks run; 'megatron-bridge' hands the
    same values to Megatron-Bridge's provider instead (swift/megatron/model/utils.py get_mcore_model)."""
    return args.str("bridge_backend") != "megatron-bridge"


def variable_seq_lengths(args) -> bool:
    """The model config gets variable_seq_lengths=True. mcore-bridge (the default bridge_backend): its ModelConfig's
    field default is True (1.6.3 mcore_bridge/config/model_config.py:260; no ms-swift argument sets it), so only
    megatron_extra_kwargs {"variable_seq_lengths": false}, applied last, turns it off (as megatron-core's allgather
    check tests it, `is True`). megatron-bridge: ms-swift 4.6's _get_megatron_bridge_model sets it when padding_free
    (its default; packing forces it), after megatron_extra_kwargs (swift/megatron/model/utils.py)."""
    if not builds_with_mcore_bridge(args):
        return args.bool("padding_free") or args.bool("packing")
    return config_value(args, "variable_seq_lengths", True) is True


def mtp_layers_checked(args) -> int | None:
    """mtp_num_layers as TransformerConfig.__post_init__ checks it (the EP all-to-all overlap, the pipeline layout's
    'm' count): under mtp_shared_weights mcore-bridge's ModelConfig.__post_init__ (1.6.3 config/model_config.py:
    352-355) builds one shared MTP layer -- mtp_unroll_steps = mtp_num_layers, mtp_num_layers = 1 -- before
    TransformerConfig's checks; Megatron-Bridge keeps the count (ms-swift maps mtp_shared_weights to its
    mtp_use_repeated_layer). None: unset, or not an integer (recompute_layer_counts reports that)."""
    mtp = layer_count(args, "mtp_num_layers")
    if mtp and is_on(args, "mtp_shared_weights") and builds_with_mcore_bridge(args):  # 0: no MTP layer to share
        return 1
    return mtp


def recompute_module_list(args) -> list[str]:
    """recompute_modules as megatron-core iterates it."""
    # get_mcore_model_config skips an empty list, so TransformerConfig's own default (['core_attn']) applies.
    value = config_value(args, "recompute_modules")
    if isinstance(value, str) and from_extra(args, "recompute_modules"):
        return list(value)  # megatron-core iterates a string: set("moe_act") is its letters
    if value and not isinstance(value, (list, tuple)):  # a string argument (one item), or a number / mapping
        value = [value]
    return [str(m) for m in value] if value else ["core_attn"]


def selective_recompute_modules(args) -> frozenset[str]:
    """The modules megatron-core recomputes under selective granularity (empty under full or none): what the
    memory estimate keeps only the inputs of."""
    return frozenset(recompute_module_list(args)) if granularity_of(args) == "selective" else frozenset()


def fp8_recipe_of(args) -> str | None:
    """The model config's FP8 recipe, None without FP8 (config.fp8 unset: fp8_format, or megatron_extra_kwargs' fp8);
    fp8_recipe defaults to 'delayed'."""
    if not config_value(args, "fp8"):
        return None
    return str(config_value(args, "fp8_recipe") or "delayed")


def dispatcher_of(args) -> str:
    return str(config_value(args, "moe_token_dispatcher_type") or "alltoall")

