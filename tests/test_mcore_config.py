"""planner/mcore_config.py: the value a Megatron model config field gets from a recipe, as ms-swift 4.6's
get_mcore_model_config builds it (the argument, then megatron_extra_kwargs over it, as written) and as megatron-core
tests it (Python truth). The rules' side of it: test_mcore_config_rules.py (with megatron-core's own verdicts)."""

from __future__ import annotations

from swift_ext.msswift import schema as msargs
from swift_ext.msswift.bound_args import Args
from swift_ext.planner.mcore_config import config_value, flag, fp8_recipe_of, from_extra, is_list, is_on

SCHEMA = msargs.schema_for("megatron", "sft")


def _args(extra: dict | None = None, **given) -> Args:
    return Args({**given, **({"megatron_extra_kwargs": extra} if extra is not None else {})}, SCHEMA)


def test_extra_kwargs_win_over_the_argument_and_are_blamed():
    a = _args({"recompute_granularity": "full"}, recompute_granularity="selective")
    assert config_value(a, "recompute_granularity") == "full"
    assert flag(a, "recompute_granularity") == "megatron_extra_kwargs" and from_extra(a, "recompute_granularity")
    # a null there is what the config gets too (kwargs.update), not the argument's value
    assert config_value(_args({"moe_grouped_gemm": None}), "moe_grouped_gemm") is None
    b = _args(recompute_granularity="full")
    assert config_value(b, "recompute_granularity") == "full" and flag(b, "recompute_granularity") == (
        "recompute_granularity")
    assert config_value(_args(), "moe_grouped_gemm") is True  # ms-swift's default


def test_truth_is_megatron_cores():
    # ModelConfig(**kwargs) converts nothing: `if self.moe_layer_recompute:` takes the string "false" as on
    assert is_on(_args({"moe_layer_recompute": "false"}), "moe_layer_recompute")
    assert is_on(_args({"cpu_offloading": 1}), "cpu_offloading")
    assert not is_on(_args({"cpu_offloading": 0}), "cpu_offloading")
    assert not is_on(_args({"moe_grouped_gemm": None}), "moe_grouped_gemm")  # over ms-swift's default True
    # an argument is typed by ms-swift's parser first: "false" there is False
    assert not is_on(_args(moe_layer_recompute="false"), "moe_layer_recompute")
    assert is_on(_args(moe_layer_recompute="true"), "moe_layer_recompute")


def test_fields_without_an_argument_come_from_extra_kwargs_only():
    # ms-swift's parser refuses an unknown argument (check_args: unknown-argument): it never reaches the config
    assert not is_on(_args(cpu_offloading=True), "cpu_offloading")
    assert is_on(_args({"cpu_offloading": True}), "cpu_offloading")
    assert config_value(_args(), "moe_router_topk", 8) == 8  # the model's value where the recipe gives none


def test_fp8_fields_come_from_the_arguments_ms_swift_copies_them_from():
    assert config_value(_args(fp8_format="e4m3"), "fp8") == "e4m3" and fp8_recipe_of(_args(fp8_format="e4m3")) == (
        "delayed")
    assert fp8_recipe_of(_args({"fp8": "hybrid", "fp8_recipe": "blockwise"})) == "blockwise"
    # extra kwargs' null replaces fp8_format's value in the config: no FP8
    assert fp8_recipe_of(_args({"fp8": None}, fp8_format="e4m3")) is None
    assert fp8_recipe_of(_args()) is None
    assert is_on(_args(fp8_param_gather=True), "fp8_param") and flag(_args(), "fp8_param") == "fp8_param_gather"


def test_lists_reach_the_config_as_lists_from_extra_kwargs_only_when_one_item():
    # ms-swift unwraps a one-item argument list; megatron_extra_kwargs' list stays a list
    assert is_list(_args({"moe_aux_loss_coeff": [0.0]}), "moe_aux_loss_coeff", [0.0])
    assert not is_list(_args(moe_aux_loss_coeff=[0.0]), "moe_aux_loss_coeff", [0.0])
    assert is_list(_args(moe_aux_loss_coeff=[0.1, 0.2]), "moe_aux_loss_coeff", [0.1, 0.2])
