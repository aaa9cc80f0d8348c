"""Hostile values against the newer plan / data / import paths: megatron_extra_kwargs, the megatron-core config
rules, num_labels, DPO rejected sides, import --upgrade's vllm_mode. Each case was a traceback or a silent wrong
answer; each now ends in the right verdict or one clear error."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import RECIPES, ROOT, swift_ext
from swift_ext.msswift.importer import import_text
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

MEG_SFT = RECIPES / "qwen3_6/sft-lora-4x32g.yaml"
SELECTIVE = ("args.recompute_granularity=selective", "args.recompute_method=null", "args.recompute_num_layers=null")


def _errors(*overrides: str, base=MEG_SFT) -> list:
    return make_plan(load_recipe(base, list(overrides)), oracle=False).errors


def test_megatron_extra_kwargs_with_non_string_keys_is_a_clear_error(write):
    # {1: 2} was an internal error (difflib on an int key); the command line carries JSON, so ms-swift gets "1".
    path = write("r.yaml", f"extends: {MEG_SFT}\nargs:\n  megatron_extra_kwargs: {{1: 2, null: 3}}\n")
    result = swift_ext("plan", path)
    assert result.returncode == 2 and "internal error" not in result.stderr, result.stderr
    assert "megatron_extra_kwargs key '1' is not a field" in result.stderr
    assert "key 'null' is not a field" in result.stderr


def test_a_yaml_date_in_a_mapping_argument_is_refused_with_its_line(write):
    # A date has no JSON form: the plan (and its --print) was an internal error in the rules and in the argv.
    for text in ("{2020-01-01: 1}", "{recompute_modules: 2020-01-01}"):
        path = write("r.yaml", f"extends: {MEG_SFT}\nargs:\n  megatron_extra_kwargs: {text}\n")
        result = swift_ext("plan", path, "--print")
        assert result.returncode == 2 and "internal error" not in result.stderr, result.stderr
        assert f"{path}:3:3: args.megatron_extra_kwargs: expected a mapping of JSON values (quote dates" in result.stderr


def test_recompute_modules_as_a_string_in_megatron_extra_kwargs_is_refused():
    # megatron-core iterates it: set("moe_act") is its letters, "Invalid choices for recompute_modules".
    extra = 'args.megatron_extra_kwargs={"recompute_modules": "moe_act"}'
    refused = [e for e in _errors(*SELECTIVE, extra) if e.code == "recompute-modules"]
    assert [e.path for e in refused] == ["args.megatron_extra_kwargs"] and "letter by letter" in refused[0].message
    as_list = 'args.megatron_extra_kwargs={"recompute_modules": ["moe_act"]}'
    assert not [e for e in _errors(*SELECTIVE, as_list) if e.code == "recompute-modules"]
    # an argument string is one item on the command line: refused by name, with how to write a list
    joined = [e for e in _errors(*SELECTIVE, "args.recompute_modules=core_attn moe") if e.code == "recompute-modules"]
    assert joined and "[core_attn, moe]" in joined[0].hint


def test_a_one_item_load_balancing_list_in_megatron_extra_kwargs_needs_a_coefficient_list():
    # ms-swift unwraps a one-item *argument* list; megatron_extra_kwargs reaches TransformerConfig as written, and
    # its __post_init__ asserts moe_aux_loss_coeff is a list of the same length.
    one = 'args.megatron_extra_kwargs={"moe_router_load_balancing_type": ["aux_loss"]}'
    refused = [e for e in _errors(one) if e.code == "moe-load-balancing"]
    assert refused and "a single number, not a list" in refused[0].message
    both = 'args.megatron_extra_kwargs={"moe_router_load_balancing_type": ["aux_loss"], "moe_aux_loss_coeff": [0.001]}'
    assert not [e for e in _errors(both) if e.code == "moe-load-balancing"]
    assert not [e for e in _errors("args.moe_router_load_balancing_type=[aux_loss]") if e.code == "moe-load-balancing"]


@pytest.mark.slow
def test_megatron_core_refuses_what_the_two_rules_above_refuse():
    from megatron.core.transformer.transformer_config import TransformerConfig

    base = dict(num_layers=2, hidden_size=64, num_attention_heads=4)
    with pytest.raises(AssertionError, match="Invalid choices for recompute_modules"):
        TransformerConfig(**base, recompute_granularity="selective", recompute_modules="moe_act")
    with pytest.raises(AssertionError, match="moe_aux_loss_coeff must be a list"):
        TransformerConfig(**base, num_moe_experts=4, moe_router_load_balancing_type=["aux_loss"], moe_aux_loss_coeff=0.1)
    TransformerConfig(**base, num_moe_experts=4, moe_router_load_balancing_type=["aux_loss"], moe_aux_loss_coeff=[0.1])


@pytest.mark.parametrize("overrides, path", [(["args.num_labels=0"], "args.num_labels"),
                                             (["args.num_labels=-1"], "args.num_labels"),
                                             (["args.task_type=seq_cls"], "args.task_type")])
def test_num_labels_below_one_or_missing_for_seq_cls_is_refused(overrides, path):
    # The memory head sized these as a 1-label head and the plan said ok; ms-swift asserts num_labels for seq_cls
    # (get_model_info_meta) and torch refuses a negative head width.
    assert [e.path for e in _errors(*overrides) if e.code == "num-labels"] == [path]


def test_num_labels_that_ms_swift_takes_pass():
    assert not [e for e in _errors("args.num_labels=3") if e.code == "num-labels"]
    assert not [e for e in _errors("args.num_labels=0", "args.task_type=causal_lm") if e.code == "num-labels"]


LONG = "word " * 400
PAIR = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4."}]
REJECTED_FORMS = {
    "string": {"messages": PAIR, "rejected_response": LONG},
    # ms-swift 4.6 template_inputs.py _compat_rejected_response takes a list of non-user messages too
    "list": {"messages": PAIR, "rejected_response": [{"role": "assistant", "content": LONG}]},
    # and TemplateInputs.from_dict a whole rejected conversation
    "messages": {"messages": PAIR, "rejected_messages": [PAIR[0], {"role": "assistant", "content": LONG}]},
}


@pytest.fixture(scope="module")
def tiny():
    from swift_ext.planner.tinymodel import ensure_model

    return str(ensure_model("tiny-qwen3_6-moe"))


def _settings(tiny):
    from swift_ext.datasets.template import TemplateSettings, media_settings

    return TemplateSettings(template="qwen3_5", tokenizer=tiny, model_dir=tiny, loss_scale="default", system=None,
                            media=media_settings({}))


def test_every_rejected_form_ms_swift_takes_is_counted(tiny, tmp_path):
    # A list rejected_response or rejected_messages counted 0 rejected tokens: a DPO row over max_length was
    # kept and sized as one sequence.
    from swift_ext.datasets.lengths import measure_file

    counted = {}
    for form, row in REJECTED_FORMS.items():
        path = tmp_path / f"{form}.jsonl"
        path.write_text(json.dumps(row) + "\n")
        counted[form] = measure_file(str(path), _settings(tiny), use_cache=False).rejected
    assert counted["string"][0] > 400 and counted["list"] == counted["string"] == counted["messages"]


@pytest.mark.slow
def test_rejected_forms_equal_msswift_rlhf_encode(tiny, msswift_processor, tmp_path):
    from swift import get_template

    from swift_ext.datasets.lengths import _last_labelled_span, measure_file

    template = get_template(msswift_processor, template_type="qwen3_5")
    template.set_mode("rlhf")
    for form, row in REJECTED_FORMS.items():
        path = tmp_path / f"{form}.jsonl"
        path.write_text(json.dumps(row) + "\n")
        ours = measure_file(str(path), _settings(tiny), use_cache=False)
        encoded = template.encode(row)
        assert ours.rejected == [_last_labelled_span(encoded["rejected_labels"])], form
        assert ours.prompt[0] + ours.rejected[0] == len(encoded["rejected_input_ids"]), form


def test_data_stats_drops_a_dpo_row_whose_list_rejected_side_is_over_max_length(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps(REJECTED_FORMS["list"]) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"extends": str(RECIPES / "smoke/tiny-sft.yaml"), "command": "rlhf",
                                      "args": {"rlhf_type": "dpo", "val_dataset": None, "max_length": 128}}))
    result = swift_ext("data", "stats", data, "--recipe", recipe, "--no-cache", "--format", "json", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["truncation"]["rows_dropped"] == 1


@pytest.mark.parametrize("flags, mode", [('--use_vllm true --vllm_server_host ""', "colocate"),
                                         ("--use_vllm true --vllm_server_host $HOST", "server"),
                                         ("", "colocate"),  # Megatron GRPO: use_vllm defaults to true
                                         ("--use_vllm false", None)])
def test_upgrade_fills_vllm_mode_the_way_the_script_runs(flags, mode):
    (data, notes), = import_text(f"megatron rlhf --rlhf_type grpo --model Qwen/Qwen3-8B --dataset d.jsonl {flags}\n",
                                 upgrade=True)
    assert data["args"].get("vllm_mode") == mode, notes


@pytest.mark.parametrize("where, key, value, says", [
    ("text_config", "num_key_value_heads", float("nan"), "num_key_value_heads must be an integer, got nan"),
    ("text_config", "num_key_value_heads", float("inf"), "num_key_value_heads must be an integer, got inf"),
    ("text_config", "num_attention_heads", float("-inf"), "num_attention_heads must be an integer, got -inf"),
    ("text_config", "num_hidden_layers", 10**26, "is not a model's size"),  # walked layer by layer: never ended
    ("text_config", "num_experts", 99999999999999999999999999, "is not a model's size"),  # divisors() of it
])
def test_a_config_json_with_non_finite_or_absurd_sizes_is_a_clear_error(tiny, where, key, value, says):
    # json reads NaN / Infinity: int() of them was an internal error (ValueError / OverflowError).
    from pathlib import Path

    from swift_ext.planner.model_shape import from_config
    from swift_ext.spec.findings import UserError

    config = json.loads((Path(tiny) / "config.json").read_text())
    config[where][key] = value
    with pytest.raises(UserError, match=says):
        from_config(config, "tiny", "config.json")


def test_divisors_of_a_huge_size_do_not_walk_every_integer():
    # The layout rules list divisors of the experts, heads and world for their hints: range(1, n + 1) never ended.
    from swift_ext.planner.sizes import divisors

    assert divisors(2**40) == [2**k for k in range(41)]
    assert divisors(12) == [1, 2, 3, 4, 6, 12] and divisors(1) == [1] and divisors(0) == []


def test_transformers_names_in_modules_to_save_on_megatron_are_said():
    # peft's _set_trainable matches by name suffix and, not strict, wraps nothing for lm_head / embed_tokens on
    # Megatron's model: the run silently trains the adapters only.
    text_model = ("args.model=Qwen/Qwen3-30B-A3B", "args.mtp_num_layers=null")
    result = make_plan(load_recipe(MEG_SFT, [*text_model, "args.modules_to_save=[lm_head, embed_tokens]"]), oracle=False)
    said = [w for w in result.warnings if w.code == "lora-targets"]
    assert [w.path for w in said] == ["args.modules_to_save"] and "output_layer" in said[0].hint
    megatron = make_plan(load_recipe(MEG_SFT, [*text_model, "args.modules_to_save=[all-embedding, output_layer]"]),
                         oracle=False)
    assert not [w for w in megatron.warnings if w.code == "lora-targets"]


BRIDGE_1807 = ROOT / "tests/fixtures/issues/megatron-lm-1807-recompute-uniform-remainder.yaml"


@pytest.mark.parametrize("value", ["0", "-1", '"2"', "2.5", ".inf", ".nan", "1e30", "true", "null", "[1, 2]"])
@pytest.mark.parametrize("base", [MEG_SFT, BRIDGE_1807])
def test_recompute_num_layers_in_megatron_extra_kwargs_must_be_a_positive_integer(value, base):
    # megatron_extra_kwargs reaches TransformerConfig as written: inf was an internal error (int(inf)), "2" and 2.5
    # were read as 2, and 0 / -1 passed -- uniform recompute steps `layer_idx += recompute_num_layers`, which
    # never ends (the first forward hangs); a null replaces the argument and TransformerConfig refuses it.
    errors = _errors(f"args.megatron_extra_kwargs={{recompute_num_layers: {value}}}", base=base)
    refused = [e for e in errors if e.code == "recompute"]
    assert [e.path for e in refused] == ["args.megatron_extra_kwargs"], [(e.code, e.message) for e in errors]


def test_integer_recompute_and_mtp_counts_in_megatron_extra_kwargs_pass():
    assert not [e for e in _errors("args.megatron_extra_kwargs={recompute_num_layers: 4}", base=BRIDGE_1807)
                if e.code in ("recompute", "recompute-chunks")]
    assert not [e for e in _errors("args.megatron_extra_kwargs={recompute_num_layers: 1, mtp_num_layers: 1}")
                if e.code in ("recompute", "recompute-mtp")]


@pytest.mark.parametrize("value", [".inf", '"2"', "2.5", "-1", "true"])
def test_mtp_num_layers_in_megatron_extra_kwargs_must_be_an_integer(value):
    # inf was an internal error in the recompute-mtp rule (int(inf)); "2" / 2.5 were taken as 2 MTP layers.
    errors = _errors(f"args.megatron_extra_kwargs={{mtp_num_layers: {value}}}")
    assert "args.megatron_extra_kwargs" in [e.path for e in errors if e.code == "recompute"]
    assert not [e for e in errors if e.code == "recompute-mtp" and e.path == "args.megatron_extra_kwargs"]


@pytest.mark.slow
def test_megatron_core_takes_a_zero_recompute_chunk_at_config_time():
    # So nothing stops it before the uniform loop in TransformerBlock._checkpointed_forward spins.
    from megatron.core.transformer.transformer_config import TransformerConfig

    TransformerConfig(num_layers=2, hidden_size=64, num_attention_heads=4, recompute_granularity="full",
                      recompute_method="uniform", recompute_num_layers=0)


@pytest.mark.parametrize("layout", ["E(tt|)*99999999999|L", "Et*" + "9" * 5000 + "|L"])
def test_a_layout_whose_repeats_explode_is_refused_not_expanded(layout):
    # Each rule that reads the layout expanded it first: a MemoryError (or int()'s 4300-digit limit).
    errors = _errors("args.pipeline_model_parallel_size=2", f"args.pipeline_model_parallel_layout='{layout}'")
    said = [e.message for e in errors if e.code == "pipeline-layout"]
    assert said and "expand to more than" in said[0]


def test_a_layout_with_foreign_characters_is_still_said_as_such():
    errors = _errors("args.pipeline_model_parallel_size=2", "args.pipeline_model_parallel_layout='Ex|tL'")
    assert any("may only hold E" in e.message for e in errors if e.code == "pipeline-layout")


TINY_GRPO = RECIPES / "smoke/tiny-grpo.yaml"


@pytest.mark.parametrize("value, refused", [("a" * 5000, True),  # os.stat: File name too long, an internal error
                                            ("a\x00b", True),  # os.stat: embedded null byte
                                            ("1", True), ("[1]", True), ("null", True),  # rope_scaling.get on them
                                            ('"foo"', True),  # JSON text: asserted to be a name
                                            ('"yarn"', False), ("yarn", False), ('{"rope_type": "yarn"}', False)])
def test_rope_scaling_strings_ms_swift_cannot_read_are_refused(value, refused):
    # set on the loaded recipe: a NUL byte has no form on the override command line
    recipe = load_recipe(TINY_GRPO)
    recipe = recipe.model_copy(update={"args": {**recipe.args, "rope_scaling": value}})
    errors = [e for e in make_plan(recipe, oracle=False).errors if e.code == "rope-scaling-type"]
    assert bool(errors) == refused, [e.message for e in errors]


def test_a_numeric_model_name_is_planned_not_an_internal_error():
    # `model: 7`: the shape lookup built Path(7), a TypeError; ms-swift gets the text "7".
    result = swift_ext("plan", MEG_SFT, "args.model=7")
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert "no config.json for 7" in result.stdout + result.stderr


@pytest.mark.parametrize("word, fused", [("1", False), ("yes", False), ("t", False), ("0", True), ("no", True)])
def test_upgrade_flips_every_spelling_of_a_3x_negated_switch(word, fused):
    # HfArgumentParser's string_to_bool read 1 / yes / t as true; the importer types `1` as a number, and only a
    # bool was flipped: `no_gradient_accumulation_fusion: 1` stayed, an argument 4.x does not have.
    (data, notes), = import_text(f"megatron sft --model Qwen/Qwen3-8B --dataset d.jsonl "
                                 f"--no_gradient_accumulation_fusion {word}\n", upgrade=True)
    assert data["args"].get("gradient_accumulation_fusion") is fused and "no_gradient_accumulation_fusion" not in \
        data["args"], notes
    (data, _), = import_text("megatron sft --model Qwen/Qwen3-8B --dataset d.jsonl "
                             "--no_gradient_accumulation_fusion maybe\n", upgrade=True)
    assert data["args"]["no_gradient_accumulation_fusion"] == "maybe"  # left for the recipe check to report


# --- megatron_extra_kwargs values against the config field's declared type (msswift/input_rules.py _extra_value) ----

def _extra_found(kwargs: dict, *overrides: str, base=MEG_SFT):
    result = make_plan(load_recipe(base, [f"args.megatron_extra_kwargs={json.dumps(kwargs)}", *overrides]),
                       oracle=False)
    pick = lambda found, code: [p for p in found if p.code == code]  # noqa: E731
    return {code: (pick(result.errors, code), pick(result.warnings, code))
            for code in ("megatron-extra-kwargs", "extra-kwargs-pipeline")}


def test_a_string_for_a_boolean_in_megatron_extra_kwargs_is_refused_because_megatron_core_reads_it_true():
    import dataclasses

    from megatron.core.model_parallel_config import ModelParallelConfig
    from megatron.core.transformer.transformer_config import TransformerConfig

    # the real dataclass declares bool and takes the string as given: "false" is a true value there (sequence
    # parallelism switched ON, refused without TP), while the boolean false is off
    assert {f.name: f.type for f in dataclasses.fields(TransformerConfig)}["moe_permute_fusion"] in (bool, "bool")
    with pytest.raises(ValueError, match="sequence parallelism without tensor parallelism"):
        ModelParallelConfig(sequence_parallel="false")
    assert ModelParallelConfig(sequence_parallel=False).sequence_parallel is False
    errors, _ = _extra_found({"moe_permute_fusion": "false"})["megatron-extra-kwargs"]
    assert [e.path for e in errors] == ["args.megatron_extra_kwargs"]
    assert "'false'" in errors[0].message and "moe_permute_fusion" in errors[0].message
    assert "reads as True" in errors[0].message and "{moe_permute_fusion: false}" in errors[0].hint
    # the wrong-typed value is not also moved to args as it is (the argument-conflict warning stays quiet)
    assert _extra_found({"moe_permute_fusion": "false"})["megatron-extra-kwargs"][1] == []
    assert _extra_found({"moe_permute_fusion": False})["megatron-extra-kwargs"][0] == []
    assert _extra_found({"moe_router_force_load_balancing": False})["megatron-extra-kwargs"] == ([], [])
    assert _extra_found({"moe_router_fusion": 1})["megatron-extra-kwargs"] == ([], [])  # 0/1: read as meant


@pytest.mark.parametrize("kwargs, words", [
    ({"moe_router_topk": "2"}, "{moe_router_topk: 2}"),            # int given a string: the number, unquoted
    ({"moe_router_topk": 2.0}, "{moe_router_topk: 2}"),            # int given a fraction
    ({"moe_router_topk": True}, "<an integer>"),                    # int given a boolean
    ({"attention_dropout": "1e-3"}, "write 1.0e-3"),                # YAML's 1e-3 is a string
    ({"fp8_recipe": "tensorwise2"}, "one of 'tensorwise'"),          # outside the Literal
    ({"moe_router_topk": None}, "<an integer>"),                    # not Optional, default not None
    ({"hierarchical_context_parallel_sizes": [2, "2"]}, "a list of integers"),
])
def test_a_value_of_another_type_than_the_field_declares_is_refused(kwargs, words):
    errors, _ = _extra_found(kwargs)["megatron-extra-kwargs"]
    assert len(errors) == 1 and errors[0].path == "args.megatron_extra_kwargs", errors
    assert words in errors[0].hint or words in errors[0].message, (errors[0].message, errors[0].hint)


@pytest.mark.parametrize("kwargs", [
    {"moe_router_dtype": "fp32"}, {"moe_router_dtype": "none"},     # mcore-bridge retypes it ('none' -> None)
    {"attention_dropout": 0}, {"attention_dropout": 0.0},           # an integer is a number
    {"fp8": None}, {"fp8_recipe": "blockwise"},                      # Optional takes null; inside the Literal
    {"params_dtype": "bf16"}, {"moe_layer_freq": "([1]*3+[0])*12"},  # a dtype; a pattern mcore-bridge evaluates
    {"cp_comm_type": ["p2p", "a2a"]}, {"window_size": "128,0"},      # a per-layer list; a string mcore-bridge parses
    {"recompute_modules": ["moe_act"]}, {"mtp_num_layers": 1},       # judged by the recompute rules, not twice
])
def test_values_the_config_takes_or_the_typing_cannot_decide_pass(kwargs):
    assert _extra_found(kwargs)["megatron-extra-kwargs"][0] == []


def test_the_retyped_fields_recorded_for_mcore_bridge_are_its_own_and_megatron_cores():
    import dataclasses

    from megatron.core.transformer.transformer_config import TransformerConfig
    from swift_ext.msswift.model_config_fields import TABLE, model_config_types

    table = json.loads(TABLE.read_text(encoding="utf-8"))  # read from mcore-bridge 1.6.3's wheel
    MODEL_CONFIG_OWN_FIELDS, MODEL_CONFIG_RETYPED_FIELDS = frozenset(table["fields"]), frozenset(table["retyped"])
    core = {f.name for f in dataclasses.fields(TransformerConfig) if f.init}
    assert MODEL_CONFIG_RETYPED_FIELDS <= MODEL_CONFIG_OWN_FIELDS & core
    # the layer counts and the pattern fields: retyped because mcore-bridge's __post_init__ converts them
    assert {"num_layers", "moe_layer_freq", "linear_attention_freq", "cp_comm_type"} <= MODEL_CONFIG_RETYPED_FIELDS
    types = model_config_types()
    assert not (MODEL_CONFIG_RETYPED_FIELDS | (MODEL_CONFIG_OWN_FIELDS - core)) & set(types)
    # the plain annotations read with ast are the ones the dataclass holds
    plain = {"bool": bool, "int": int, "float": float, "str": str}
    declared = {f.name: f.type for f in dataclasses.fields(TransformerConfig)}
    checked = [n for n, f in types.items() if f["type"]["kind"] in plain and not f["type"].get("optional")]
    assert len(checked) > 100
    for name in checked:
        assert declared[name] in (plain[types[name]["type"]["kind"]], types[name]["type"]["kind"]), name


def test_a_wrong_value_in_megatron_extra_kwargs_is_reported_at_its_line(write):
    path = write("r.yaml", f"extends: {MEG_SFT}\nargs:\n  megatron_extra_kwargs: {{moe_permute_fusion: 'false'}}\n")
    result = swift_ext("plan", path)
    assert result.returncode == 2 and "internal error" not in result.stderr, result.stderr
    assert f"{path}:3:3: args.megatron_extra_kwargs:" in result.stderr and "moe_permute_fusion" in result.stderr


# --- pipeline layout given in megatron_extra_kwargs (planner/pipeline_schedule.py extra_kwargs_pipeline) ---------

MOE_PP8 = ROOT / "tests/fixtures/working/megatron-moe-modelzoo-qwen3-235b-h100-deepep-recompute-moe-act.yaml"
NO_LAYOUT = "args.pipeline_model_parallel_layout=null"


def test_virtual_stages_given_only_in_megatron_extra_kwargs_are_refused():
    # the fixture's own layout (32 stages over PP 8) moved into megatron_extra_kwargs: ms-swift's _init_vpp_size
    # never sees it, mcore-bridge builds 4 chunks, parallel state has none
    found = _extra_found({"pipeline_model_parallel_layout": "Ett|(ttt|)*30ttL"}, NO_LAYOUT, base=MOE_PP8)
    errors, _ = found["extra-kwargs-pipeline"]
    assert len(errors) == 1 and errors[0].path == "args.megatron_extra_kwargs"
    assert "4 model chunk(s)" in errors[0].message and "does not support model chunking" in errors[0].message
    errors, _ = _extra_found({"virtual_pipeline_model_parallel_size": 2}, NO_LAYOUT,
                             base=MOE_PP8)["extra-kwargs-pipeline"]
    assert len(errors) == 1
    # a virtual size that disagrees with the argument's layout: TransformerConfig's assertion
    errors, _ = _extra_found({"virtual_pipeline_model_parallel_size": 2}, base=MOE_PP8)["extra-kwargs-pipeline"]
    assert len(errors) == 1 and "conflicts with" in errors[0].message
    # the same size as the argument's layout changes nothing
    assert _extra_found({"virtual_pipeline_model_parallel_size": 4}, base=MOE_PP8)["extra-kwargs-pipeline"] == ([], [])


def test_a_one_stage_per_rank_layout_in_megatron_extra_kwargs_works_but_is_said():
    found = _extra_found({"pipeline_model_parallel_layout": "Et*12|(t*12|)*6t*10L"}, NO_LAYOUT, base=MOE_PP8)
    errors, warnings = found["extra-kwargs-pipeline"]
    assert errors == [] and len(warnings) == 1 and "_init_vpp_size" in warnings[0].message
    assert "pipeline_model_parallel_layout: Et*12|(t*12|)*6t*10L" in warnings[0].hint
    _, warnings = _extra_found({"num_layers_in_first_pipeline_stage": 10}, NO_LAYOUT,
                               base=MOE_PP8)["extra-kwargs-pipeline"]
    assert len(warnings) == 1 and "decoder_first_pipeline_num_layers: 10" in warnings[0].hint


# --- a second hostile pass over what landed after f509c1b (deepspeed-hpz, rollout-fsdp1, plugin files, the reranker
# env, txt-file, Gemma 4 / Omni configs)

SWIFT_GRPO = ROOT / "tests/fixtures/working/ms-swift-example-swift-grpo-moe-colocate-lora.yaml"
DEEP_ARRAY = "[" * 100_000 + "]" * 100_000


def _plan(base, *overrides, model_config=None):
    return make_plan(load_recipe(base, list(overrides)), model_config=model_config, oracle=False)


def test_deeply_nested_deepspeed_and_fsdp_json_is_no_traceback(write):
    # json.loads raises RecursionError (not a ValueError) past its depth: deepspeed-hpz, rollout-fsdp1 and the
    # argument type check were internal errors. ms-swift cannot read such a file either; no rule judges it here.
    deep = write("ds.json", DEEP_ARRAY)
    for over in ([f"args.deepspeed={deep}", "args.zero_hpz_partition_size=8"],
                 ["args.deepspeed=null", f"args.fsdp={deep}"],
                 ["args.zero_hpz_partition_size=8", f"args.deepspeed='{'[' * 100_000}'"]):
        result = swift_ext("plan", SWIFT_GRPO, *over)
        assert "internal error" not in result.stderr, (over, result.stderr[-500:])


def test_fsdp_version_infinity_is_not_judged_and_no_traceback(write):
    # json reads Infinity; int() of it is an OverflowError (transformers' int() fails there too, at start-up)
    cfg = write("fsdp.json", '{"fsdp": "full_shard", "fsdp_config": {"fsdp_version": Infinity}}')
    plan = _plan(SWIFT_GRPO, "args.deepspeed=null", f"args.fsdp={cfg}")
    assert not [e for e in plan.errors if e.code == "rollout-fsdp1"]
    one = write("fsdp1.json", '{"fsdp": "full_shard", "fsdp_config": {"fsdp_version": 1}}')
    assert [e for e in _plan(SWIFT_GRPO, "args.deepspeed=null", f"args.fsdp={one}").errors if e.code == "rollout-fsdp1"]


@pytest.mark.parametrize("source", [b"\x00\xff\xfe binary", b"def (:\n", b"x = " + b"-" * 200_000 + b"1\n",
                                    b"x = " + b"+".join([b"a"] * 200_000) + b"\n"])
def test_a_plugin_file_python_cannot_compile_is_a_warning_not_a_traceback(write, source):
    # The parser's MemoryError / RecursionError on deep nesting were internal errors; a file that does not
    # compile was silently read as registering nothing (and every reward_model_plugin name in it refused).
    plugin = write("plugin.py", source)
    plan = _plan(SWIFT_GRPO, "args.reward_model=[Qwen/Qwen2.5-7B-Instruct]", "args.reward_model_plugin=[mine]",
                 f"args.external_plugins=[{plugin}]")
    said = [w for w in plan.warnings if w.code == "plugin-file"]
    assert said and "is not Python this interpreter can compile" in said[0].message
    assert not [e for e in plan.errors if e.code == "reward-model-plugin"]


@pytest.mark.parametrize("source", ["from swift.rewards import rm_plugin\nrm_plugin.rm_plugins['mine'] = object\n",
                                    "import swift.rewards.rm_plugin as m\ngetattr(m, 'rm_plugins')['mine'] = 1\n"])
def test_a_registry_reached_through_its_module_is_not_read_as_registering_nothing(write, source):
    # `module.rm_plugins['mine'] = ...` registers 'mine' in ms-swift; it was refused as "not a reward model plugin".
    plugin = write("plugin.py", source)
    plan = _plan(SWIFT_GRPO, "args.reward_model=[Qwen/Qwen2.5-7B-Instruct]", "args.reward_model_plugin=[mine]",
                 f"args.external_plugins=[{plugin}]")
    assert not [e for e in plan.errors if e.code == "reward-model-plugin"]
    plain = write("plain.py", "from swift.rewards import rm_plugins\nrm_plugins['other'] = object\n")
    refused = _plan(SWIFT_GRPO, "args.reward_model=[Qwen/Qwen2.5-7B-Instruct]", "args.reward_model_plugin=[mine]",
                    f"args.external_plugins=[{plain}]").errors
    assert [e for e in refused if e.code == "reward-model-plugin"]  # a file read whole still decides


def test_reward_funcs_a_plugin_file_fills_by_update_are_not_refused(write):
    plugin = write("plugin.py", "from swift.rewards import orms\norms.update({'mine': object})\n")
    plan = _plan(SWIFT_GRPO, "args.reward_funcs=[mine]", f"args.external_plugins=[{plugin}]")
    assert not [e for e in plan.errors if e.code == "reward-funcs"]
    plain = write("plain.py", "from swift.rewards import orms\norms['other'] = object\n")
    assert [e for e in _plan(SWIFT_GRPO, "args.reward_funcs=[mine]", f"args.external_plugins=[{plain}]").errors
            if e.code == "reward-funcs"]


RERANKER = """command: sft
engine: megatron
launch: {{gpus_per_node: 2, gpu: H100}}
env:
  MAX_NEGATIVE_SAMPLES: {value}
args:
  model: Qwen/Qwen2.5-7B-Instruct
  tuner_type: full
  tensor_model_parallel_size: 2
  micro_batch_size: 1
  global_batch_size: 16
  max_length: 1024
  task_type: generative_reranker
  loss_type: pointwise_reranker
  dataset: [x/y]
"""


@pytest.mark.parametrize("value, why", [('"-1"', "a negative count"), ('"1e9"', "int() refuses it"),
                                        ('""', "int() refuses it"), (".nan", "int() refuses it"),
                                        ('"' + "9" * 5000 + '"', "int() refuses it")])
def test_reranker_sample_counts_ms_swift_cannot_use_are_refused_at_their_env_line(write, value, why):
    # template/base.py _reranker_data_collator: int(os.environ[...]) then numpy choice(n, min(n, count)); these
    # were planned silently (the estimate took the default, or 0 negatives for -1).
    path = write("rr.yaml", RERANKER.format(value=value))
    result = swift_ext("plan", path)
    assert result.returncode == 2 and "internal error" not in result.stderr, result.stderr
    assert f"{path}:5:3: env.MAX_NEGATIVE_SAMPLES: env MAX_NEGATIVE_SAMPLES=" in result.stderr
    assert why in result.stderr


def test_reranker_sample_counts_int_reads_are_accepted():
    from swift_ext.spec.recipe import Recipe

    for value in ("7", " 3 ", "+2", "0"):
        recipe = Recipe(**{**yaml.safe_load(RERANKER.format(value=json.dumps(value))), "source": "rr.yaml"})
        assert not [e for e in make_plan(recipe, oracle=False).errors if e.code == "reranker-samples"], value


def test_a_txt_system_prompt_that_is_a_directory_is_refused(tmp_path):
    folder = tmp_path / "prompts.txt"
    folder.mkdir()
    for key in ("args.system", "args.new_special_tokens"):
        value = str(folder) if key == "args.system" else f"[{folder}]"
        refused = [e for e in _plan(SWIFT_GRPO, f"{key}={value}").errors if e.code == "txt-file"]
        assert refused and "is a directory here" in refused[0].message, key


def test_vision_config_fields_are_named_with_their_section(write):
    # "model config lacks 'hidden_size'" read as the language model's hidden_size, which the config has.
    from swift_ext.spec.findings import UserError

    preset = json.loads((ROOT / "swift_ext/planner/presets/gemma.json").read_text())["models"]
    gemma = preset["google/gemma-4-26B-A4B-it"]["config"]
    for change, said in ((lambda c: c["vision_config"].pop("hidden_size"), "'vision_config.hidden_size'"),
                         (lambda c: c["vision_config"].update(num_hidden_layers="x"), "vision_config.num_hidden_layers")):
        config = json.loads(json.dumps(gemma))
        change(config)
        path = write("config.json", json.dumps(config))
        try:
            plan = _plan(MEG_SFT, "args.model=/nonexistent/m", "args.mtp_num_layers=null", model_config=str(path))
            messages = [e.message for e in plan.errors if e.code == "model-shape"]
        except UserError as exc:
            messages = [p.message for p in exc.problems]
        assert any(said in m for m in messages), messages


def test_a_model_config_nested_too_deeply_is_a_clear_error(write):
    path = write("config.json", DEEP_ARRAY)
    result = swift_ext("plan", MEG_SFT, "args.model=/nonexistent/m", "--model-config", path)
    assert "internal error" not in result.stderr and "nested too deeply" in result.stderr, result.stderr[-400:]


@pytest.mark.parametrize("layout, why", [('"Et*40L"', "has 1 stages, which cannot be split over PP=2"),
                                         ('"x"', "does not parse"), ("true", "is bool, not a layout string"),
                                         ('"Et*99999999999|L"', "expands to more layer entries")])
def test_a_layout_only_in_megatron_extra_kwargs_is_judged_there(layout, why):
    # extra-kwargs-pipeline returned on such a layout, saying the pipeline-layout rule refuses it; that rule reads
    # args only, so the plan passed what TransformerConfig.__post_init__ (PipelineParallelLayerLayout) refuses.
    over = ["args.pipeline_model_parallel_size=2", "args.expert_model_parallel_size=2",
            "args.tensor_model_parallel_size=1", f'args.megatron_extra_kwargs={{"pipeline_model_parallel_layout": {layout}}}']
    refused = [e for e in _errors(*over) if e.code == "extra-kwargs-pipeline"]
    assert refused and why in refused[0].message, [e.message for e in _errors(*over)]
    fine = over[:3] + ['args.megatron_extra_kwargs={"pipeline_model_parallel_layout": "Et*20|t*20L"}']
    assert not [e for e in _errors(*fine) if e.code == "extra-kwargs-pipeline" and "megatron-core refuses" in e.message]


# --- Issue #21's start-up audit (hostile3): cp_comm_type's str-or-list type as ms-swift's command line really parses
# it, and the router group fields from megatron_extra_kwargs and from the model's n_group / topk_group.

from swift_ext.msswift import schema as msargs  # noqa: E402
from swift_ext.msswift.importer import _typed  # noqa: E402

WORKING = ROOT / "tests/fixtures/working"
DEEPSEEK = WORKING / "verl-example-deepseek671b-megatron-80gb.yaml"  # DeepSeek-V3: 256 experts, n_group 8 / topk 4
DENSE = WORKING / "ms-swift-example-gkd-dense.yaml"  # Qwen3-8B, CP 2


def _plan21(path, *overrides, model_config=None):
    return make_plan(load_recipe(path, list(overrides)), model_config=model_config, oracle=False)


def _errors21(result, code):
    return [p for p in result.errors if p.code == code]


# ms-swift 4.6's own parser for MegatronSftArguments, built as swift/utils/utils.py parse_args builds it, in a child
# process: mcore_bridge (not installed here) is stood in for by an empty module at import only, and the child keeps
# that stand-in and swift.megatron's modules out of the test process.
REAL_PARSER = r"""
import importlib.abc, importlib.machinery, json, sys, types
class Stub(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        return Stub(name)
    def __call__(self, *a, **k):
        return Stub('call')
class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] == 'mcore_bridge':
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec):
        return Stub(spec.name)
    def exec_module(self, module):
        module.__path__ = []
sys.meta_path.insert(0, Finder())
try:
    from swift.megatron.arguments import MegatronSftArguments
except Exception as exc:
    print(json.dumps({'skip': repr(exc)}))
    raise SystemExit(0)
from transformers import HfArgumentParser
from swift.utils.utils import _patch_get_type_hints
with _patch_get_type_hints():
    parser = HfArgumentParser([MegatronSftArguments])
action = next(a for a in parser._actions if a.dest == 'cp_comm_type')
out = {'type': getattr(action.type, '__name__', repr(action.type)), 'nargs': action.nargs}
ns, rest = parser.parse_known_args(['--cp_comm_type', 'a2a', 'p2p'])
out['list'] = [ns.cp_comm_type, rest]
ns, rest = parser.parse_known_args(['--megatron_extra_kwargs', json.dumps({'cp_comm_type': ['a2a', 'p2p']})])
out['extra'] = [ns.megatron_extra_kwargs, rest]
print(json.dumps(out))
"""


def test_msswift_parser_reads_cp_comm_type_as_one_string():
    import subprocess
    import sys

    pytest.importorskip("swift")
    done = subprocess.run([sys.executable, "-c", REAL_PARSER], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if "skip" in out:
        pytest.skip(f"ms-swift's Megatron arguments do not import here: {out['skip']}")
    assert out["type"] == "str" and out["nargs"] is None
    assert out["list"] == ["a2a", ["p2p"]]  # SwiftPipeline._parse_args: ValueError remaining_argv: ['p2p']
    assert json.loads(out["extra"][0])["cp_comm_type"] == ["a2a", "p2p"] and out["extra"][1] == []
    # swift-ext's reading of the type agrees
    ftype = msargs.schema_for("megatron", "sft").fields["cp_comm_type"].type
    assert msargs.parser_type(ftype) == {"kind": "str"}


def test_cp_comm_type_list_in_args_is_refused_with_the_extra_kwargs_way():
    layers = ["a2a"] * 36  # Qwen3-8B's 36 layers: right length, still not deliverable on the command line
    result = _plan21(DENSE, f"args.cp_comm_type={json.dumps(layers)}")
    found = _errors21(result, "argument-type")
    assert [p.path for p in found] == ["args.cp_comm_type"]
    assert "remaining_argv" in found[0].message and "megatron_extra_kwargs" in (found[0].hint or "")
    assert _errors21(_plan21(DENSE, "args.cp_comm_type=[a2a]"), "argument-type")  # one item: would arrive as a string
    assert not _errors21(_plan21(DENSE, "args.cp_comm_type=a2a"), "argument-type")
    moved = _plan21(DENSE, "args.megatron_extra_kwargs=" + json.dumps({"cp_comm_type": layers}))
    assert not _errors21(moved, "argument-type") and not _errors21(moved, "mcore-parallel")
    short = _plan21(DENSE, "args.megatron_extra_kwargs=" + json.dumps({"cp_comm_type": ["a2a", "p2p"]}))
    assert _errors21(short, "mcore-parallel")  # the list-length rule still judges the list that does arrive


def test_importer_reads_cp_comm_type_as_the_parser_does():
    spec = msargs.schema_for("megatron", "sft").fields["cp_comm_type"]
    assert _typed(spec, ["a2a"]) == "a2a"
    debug = msargs.schema_for("swift", "sft").fields["debug"]  # a union without None: the parser takes a list
    assert _typed(debug, ["underflow_overflow"]) == ["underflow_overflow"]


@pytest.mark.parametrize("extra", [{"moe_router_num_groups": -8, "moe_router_group_topk": 4},
                                   {"moe_router_num_groups": -4},
                                   {"moe_router_group_topk": -8},
                                   {"moe_router_num_groups": -8, "moe_router_group_topk": -8}])
def test_negative_group_fields_are_refused(extra):
    found = _errors21(_plan21(DEEPSEEK, "args.megatron_extra_kwargs=" + json.dumps(extra)), "moe-router")
    assert found and all(p.path == "args.megatron_extra_kwargs" for p in found)


def test_group_fields_set_null_in_extra_kwargs_say_so():
    result = _plan21(DEEPSEEK, "args.megatron_extra_kwargs=" + json.dumps({"moe_router_num_groups": None}))
    (found,) = _errors21(result, "moe-router")
    assert "megatron_extra_kwargs sets moe_router_num_groups null" in found.message
    assert "sets no n_group" not in found.message  # DeepSeek-V3 does set it: the recipe's null overrides it
    assert not _errors21(_plan21(DEEPSEEK, "args.megatron_extra_kwargs=" + json.dumps({"moe_router_group_topk": None})),
                       "moe-router")  # group routing off


def _config21(tmp_path, **changes):
    data = json.loads((ROOT / "swift_ext/planner/presets/deepseek.json").read_text())
    config = data["models"]["deepseek-ai/DeepSeek-V3"]["config"] | changes
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.mark.parametrize("changes", [{"n_group": 3}, {"topk_group": 99}, {"n_group": None}, {"n_group": 0}])
def test_model_group_fields_are_judged_without_the_recipe_naming_them(tmp_path, changes):
    found = _errors21(_plan21(DEEPSEEK, model_config=_config21(tmp_path, **changes)), "moe-router")
    assert found and all(p.path == "args.model" for p in found)
    assert any("n_group" in p.message or "topk_group" in p.message for p in found)


def test_model_group_fields_fine_as_published(tmp_path):
    assert not _errors21(_plan21(DEEPSEEK, model_config=_config21(tmp_path)), "moe-router")
    assert not _errors21(_plan21(DEEPSEEK, model_config=_config21(tmp_path, n_group=None, topk_group=None)), "moe-router")


@pytest.mark.parametrize("value", ['"8"', "[8]", "true", ".nan", "8.0", '"八"', "{a: 1}", "1e30"])
def test_wrong_types_for_group_fields_are_clear_errors(value):
    for key in ("moe_router_num_groups", "moe_router_group_topk"):
        result = _plan21(DEEPSEEK, "args.megatron_extra_kwargs={" + f"{key}: {value}" + "}")
        assert not result.ok and result.errors, (key, value)


@pytest.mark.parametrize("value", ['"8"', "[8]", "true", "-8", "1e30", '"八"', "{}"])
def test_wrong_types_for_model_group_fields_are_clear_errors(tmp_path, value):
    import yaml

    for key in ("n_group", "topk_group"):
        result = _plan21(DEEPSEEK, model_config=_config21(tmp_path, **{key: yaml.safe_load(value)}))
        assert not result.ok and any(key in p.message for p in result.errors), (key, value)


# hostile4: the flex dispatcher's TP is the expert TP; sinkhorn's `moe_aux_loss_coeff == 0`; unknown-name hints.
FLEX = ("args.moe_token_dispatcher_type=flex", "args.moe_shared_expert_overlap=false")


def test_flex_dispatcher_counts_the_expert_tensor_parallel_size_not_tp():
    # MoETokenDispatcher's tp_group is pg_collection.expt_tp; ms-swift's expert_tensor_parallel_size defaults to 1,
    # so TP=2 with EP=1 still fails "Flex token dispatcher requires TPxEP > 1" (this base is TP 2).
    refused = [e for e in _errors(*FLEX, "args.expert_model_parallel_size=1") if e.code == "moe-dispatcher"]
    assert refused and "ETP*EP = 1 (TP=2" in refused[0].message
    assert not [e for e in _errors(*FLEX, "args.expert_model_parallel_size=1", "args.expert_tensor_parallel_size=2")
                if e.code == "moe-dispatcher"]


SINKHORN = "args.moe_router_load_balancing_type=sinkhorn"


@pytest.mark.parametrize("coeff, refused", [
    ('args.megatron_extra_kwargs={"moe_aux_loss_coeff": [0.0]}', True),  # [0.0] == 0 is False: the assert fires
    ('args.megatron_extra_kwargs={"moe_aux_loss_coeff": 0}', False),
    ("args.moe_aux_loss_coeff=[0.0, 0.0]", True),  # two items stay a list
    ("args.moe_aux_loss_coeff=[0.0]", False),  # ms-swift unwraps one item
    ('args.moe_aux_loss_coeff="0.0"', False),  # argparse reads a float
    ("args.moe_aux_loss_coeff=null", False),  # ms-swift's default 0
    ("args.moe_aux_loss_coeff=0.001", True),
])
def test_sinkhorn_refuses_any_coefficient_megatron_core_does_not_see_as_zero(coeff, refused):
    found = [e for e in _errors(SINKHORN, coeff) if e.code == "moe-load-balancing"]
    assert bool(found) is refused, found


def test_a_sinkhorn_list_in_extra_kwargs_is_not_judged_as_sinkhorn():
    # TopKRouter.routing compares the type with the string "sinkhorn": a list takes the top-k path, whose
    # coefficients are read per type; the "no aux loss" refusal would be a wrong answer.
    extra = 'args.megatron_extra_kwargs={"moe_router_load_balancing_type": ["sinkhorn"], "moe_aux_loss_coeff": [0.01]}'
    assert not [e for e in _errors(extra) if e.code == "moe-load-balancing"]


@pytest.mark.parametrize("key, says", [
    ("sft-type", "use `tuner_type`"), ("SFT_TYPE", "use `tuner_type`"), ("use-flash-attn", "attention_backend"),
    ("Lora-Rank", "did you mean `lora_rank`?"), ("ｌｏｒａ_ｒａｎｋ", "did you mean `lora_rank`?"),
])
def test_unknown_names_in_other_spellings_get_the_same_hint(key, says):
    # argparse is case-sensitive and swift-ext's checks read field names: these stay refused, with the hint.
    from swift_ext.spec.findings import UserError

    try:
        found = _errors(f"args.{key}=1")
    except UserError as exc:
        found = exc.problems
    unknown = [e for e in found if e.path == f"args.{key}"]
    assert unknown and says in (unknown[0].hint or "") + unknown[0].message, unknown


def test_a_very_long_unknown_name_is_refused_quickly(monkeypatch):
    # Speed is not timed in unit tests (CI machines are noisy): what keeps it quick is that difflib's quadratic
    # fuzzy match is not run on names over 200 characters, so here it must not be called at all.
    import difflib

    from swift_ext.msswift.schema import schema_for

    schema = schema_for("megatron", "sft")

    def not_for_long_names(*a, **k):
        raise AssertionError("difflib.get_close_matches ran on a 20,000-character name")

    monkeypatch.setattr(difflib, "get_close_matches", not_for_long_names)
    assert schema.suggest("x" * 20000) is None


@pytest.mark.parametrize("source", [b"x = " + b"-" * 200_000 + b"1\n", b"x = " + b"+".join([b"a"] * 200_000) + b"\n",
                                    b"\x00\xff\xfe binary"])
def test_a_plugin_file_too_nested_to_parse_on_a_megatron_recipe_is_no_traceback(write, source):
    # megatron-model-type asks whether a plugin file may register a model: it read the file with its own
    # ast.parse, and a file nested past the parser's limits was an internal error (RecursionError / MemoryError).
    plugin = write("plugin.py", source)
    plan = _plan(MEG_SFT, f"args.external_plugins=[{plugin}]")
    assert not [e for e in plan.errors if e.code in (None, "internal")]
    assert [w for w in plan.warnings if w.code == "plugin-file"]


@pytest.mark.parametrize("override", ["args.deepspeed=[1]", "args.cp_comm_type=[a2a, p2p]"])
def test_a_list_for_a_one_string_union_argument_says_what_the_argument_is(override):
    # the list refusal covers every union ms-swift's parser reads as one string (deepspeed is a mapping or a string)
    base = SWIFT_GRPO if override.startswith("args.deepspeed") else MEG_SFT
    [problem] = [e for e in _plan(base, override).errors if e.path == override.split("=")[0]]
    assert "not a list" in problem.message and " or " in problem.message
    assert "str-or-list" not in problem.message
