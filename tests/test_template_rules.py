"""ms-swift 4.6's data-encoding refusals in swift_ext/msswift/template_rules.py: one failing and one passing recipe
per rule, and ms-swift's own code (its loss_scale factory, json_parse_to_dict, its real template on the tiny
Qwen3.6-architecture model) run on the same inputs to show it fails where the rule says and not elsewhere."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from swift_ext.msswift import template_rules
from test_msrules import MEG_SFT, SWIFT_GRPO, SWIFT_SFT, problems

PT = ["command=pt"]
UNMATCHED = (Path(__file__).parent / "fixtures/issues/files/ms-swift-8472/"
             "Qwen3-VL-32B-Instruct-sft-v35_checkpoint-617_merge")
TOOLS = ["args.agent_template=qwen3_5"]

CASES = [
    # a local checkpoint ms-swift cannot match to one model_type (its config.json: Qwen3-VL, three types), ms-swift#8472
    ("model-type-unmatched", "teacher_model_type", SWIFT_GRPO, ["args.rlhf_type=gkd", f"args.teacher_model={UNMATCHED}"],
     ["args.rlhf_type=gkd", f"args.teacher_model={UNMATCHED}", "args.teacher_model_type=qwen3_vl"]),
    # (rule, flag it names, base recipe, overrides that break it, overrides that satisfy it)
    ("loss-scale", "loss_scale", SWIFT_SFT, ["args.loss_scale=last_round_with_ignore_empty_think"],
     ["args.loss_scale=last_round+ignore_empty_think"]),
    ("loss-scale", "loss_scale", MEG_SFT, ["args.loss_scale=react+last_round"], ["args.loss_scale=last_round+react"]),
    ("loss-scale", "loss_scale", SWIFT_SFT, ["args.loss_scale=hermes_all"], ["args.loss_scale=all+hermes"]),
    ("json-argument", "columns", SWIFT_SFT, ["args.columns=old_name:new_name"],
     ["""args.columns='{"old_name": "new_name"}'"""]),
    ("json-argument", "columns", MEG_SFT, ["args.columns=instruction=query"], ["args.columns={instruction: query}"]),
    ("json-argument", "model_kwargs", SWIFT_SFT, ["args.model_kwargs=fps_max_frames:12"],
     ["""args.model_kwargs='{"fps_max_frames": 12}'"""]),
    ("truncation-split", "truncation_strategy", SWIFT_SFT, ["args.truncation_strategy=split"],
     [*PT, "args.truncation_strategy=split"]),
    ("truncation-split", "truncation_strategy", SWIFT_SFT, ["args.truncation_strategy=split", "args.task_type=seq_cls",
                                                            "args.num_labels=2", "args.use_chat_template=false"],
     ["args.truncation_strategy=split", "args.use_chat_template=false"]),
    ("truncation-split", "truncation_strategy", SWIFT_GRPO, ["args.rlhf_type=dpo", "args.truncation_strategy=split"],
     ["args.rlhf_type=dpo", "args.truncation_strategy=delete"]),
    ("truncation-split", "lazy_tokenize", SWIFT_SFT, [*PT, "args.truncation_strategy=split", "args.lazy_tokenize=true"],
     [*PT, "args.truncation_strategy=split", "args.lazy_tokenize=false"]),
    ("truncation-split", "truncation_strategy", MEG_SFT, ["args.truncation_strategy=split"],
     [*PT, "args.truncation_strategy=split", "args.packing=true"]),
    # Qwen3.6 is multimodal: unset, lazy_tokenize turns on unless the data streams or packs
    ("truncation-split", "truncation_strategy", MEG_SFT, [*PT, "args.truncation_strategy=split", "args.packing=false"],
     [*PT, "args.truncation_strategy=split", "args.packing=false", "args.lazy_tokenize=false"]),
    ("cached-dataset-streaming", "streaming", SWIFT_SFT, ["args.cached_dataset=[cache/train]", "args.streaming=true",
                                                          "args.max_steps=8"],
     ["args.cached_dataset=[cache/train]"]),
]


@pytest.mark.parametrize("rule, flag, base, bad, good", CASES, ids=[f"{c[0]}:{c[1]}:{c[2].stem}" for c in CASES])
def test_rule_fails_then_passes(rule, flag, base, bad, good):
    errors, _ = problems(base, *bad)
    assert (rule, f"args.{flag}") in errors, errors
    errors, _ = problems(base, *good)
    assert rule not in {r for r, _ in errors}, errors


def test_every_rule_has_a_case():
    source = inspect.getsource(template_rules)
    named = {line.split('"')[1] for line in source.splitlines() if line.strip().startswith('err("')}
    assert named and named <= {c[0] for c in CASES}, named - {c[0] for c in CASES}


def test_a_plugin_may_register_a_loss_scale(tmp_path):
    plugin = tmp_path / "plugin.py"
    plugin.write_text("from swift.loss_scale.mapping import loss_scale_map\nloss_scale_map['mine'] = object\n")
    errors, _ = problems(SWIFT_SFT, "args.loss_scale=last_round+mine", f"args.external_plugins=[{plugin}]")
    assert "loss-scale" not in {r for r, _ in errors}
    errors, _ = problems(SWIFT_SFT, "args.loss_scale=last_round+yours", f"args.external_plugins=[{plugin}]")
    assert ("loss-scale", "args.loss_scale") in errors


@pytest.mark.parametrize("value", ["default", "last_round", "all", "react", "last_round+ignore_empty_think",
                                   "all+hermes+ignore_empty_think", "last_round_with_ignore_empty_think",
                                   "react+last_round", "hermes_all", "ignore_empty_think+qwen"])
def test_ms_swift_builds_the_loss_scales_the_rule_accepts(value):
    # swift/loss_scale/mapping.py get_loss_scale, the factory Template.loss_scale calls on the first encoded row
    from swift.loss_scale import get_loss_scale

    errors, _ = problems(SWIFT_SFT, f"args.loss_scale={value}")
    refused = ("loss-scale", "args.loss_scale") in errors
    try:
        get_loss_scale(value)
        built = True
    except KeyError:
        built = False
    assert built != refused


@pytest.mark.parametrize("value", ["old_name:new_name", "instruction=query", "a b", '{"old": "new"}', "{old: new}"])
def test_ms_swift_parses_the_columns_the_rule_accepts(value):
    from swift.utils.utils import json_parse_to_dict

    errors, _ = problems(SWIFT_SFT, "args.columns=" + json.dumps(value))
    refused = ("json-argument", "args.columns") in errors
    try:
        parsed = json_parse_to_dict(value)
    except ValueError:
        parsed = None
    assert isinstance(parsed, dict) != refused


def test_tool_rows_fail_under_the_generation_template_the_warning_names():
    # ms-swift#8449: the docs' agent row through ms-swift 4.6's real qwen3_5 template and agent template; with
    # use_chat_template off (swift pt) HermesAgentTemplate._format_tool_responses copies chat_sep None.
    from swift.model import get_processor
    from swift.template import get_template
    from swift_ext.planner.tinymodel import ensure_model

    tool = {"name": "realtime_aqi", "arguments": {"city": "Beijing"}}
    row = {"tools": json.dumps([{"type": "function", "function": {"name": "realtime_aqi", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]),
        "messages": [{"role": "user", "content": "Air quality in Beijing?"},
                     {"role": "tool_call", "content": json.dumps(tool)},
                     {"role": "tool_response", "content": json.dumps({"city": "Beijing", "aqi": "10"})},
                     {"role": "assistant", "content": "The AQI in Beijing is 10."}]}
    processor = get_processor(str(ensure_model("tiny-qwen3_6-moe")))
    for chat in (True, False):
        template = get_template(processor, template_type="qwen3_5", use_chat_template=chat, agent_template="qwen3_5")
        template.set_mode("train")
        if chat:
            assert template.encode(json.loads(json.dumps(row)))["input_ids"]
        else:
            with pytest.raises(AttributeError, match="copy"):
                template.encode(json.loads(json.dumps(row)))
    _, warnings = problems(SWIFT_SFT, *PT, *TOOLS)
    assert ("generation-template-tools", "args.use_chat_template") in warnings
    for ok in ([*PT], [*TOOLS], [*PT, *TOOLS, "args.use_chat_template=true"]):  # sft keeps its chat template
        _, warnings = problems(SWIFT_SFT, *ok)
        assert "generation-template-tools" not in {r for r, _ in warnings}


@pytest.mark.parametrize("model, model_type, warned", [
    ("./Qwen2.5-VL-32B-Instruct/", "qwen2", True),  # ms-swift#4339's checkpoint under a text type
    ("Qwen/Qwen2.5-7B-Instruct", "qwen2_5_vl", True),
    ("Qwen/Qwen2.5-VL-32B-Instruct", "qwen2_5_vl", False),  # the registry's own type
    ("Qwen/Qwen3-8B", "qwen2", False),  # another text type: modality agrees
    ("/data/my-finetune", "qwen2", False),  # a name the registry does not know: nothing to compare
])
def test_a_stated_model_type_of_the_other_modality_is_warned(model, model_type, warned):
    _, warnings = problems(SWIFT_SFT, f"args.model={model}", f"args.model_type={model_type}", "args.template=null")
    assert (("model-type-modality", "args.model_type") in warnings) == warned, warnings


@pytest.mark.parametrize("name", ["hermes", "qwen3_5", "react_en", "qwen3_coder", "qwen3_coderx", "hermes2", "qwen"])
def test_agent_template_names_as_ms_swift_builds_them(name):
    # swift/template/base.py Template.agent_template: agent_template_map[name]() on the first row with tools
    from swift.agent_template import agent_template_map

    _, warnings = problems(SWIFT_SFT, f"args.agent_template={name}")
    assert (("agent-template-name", "args.agent_template") in warnings) == (name not in agent_template_map)


def test_an_agent_template_a_plugin_registers_is_accepted(tmp_path):
    plugin = tmp_path / "agent_plugin.py"
    plugin.write_text("from swift.agent_template import agent_template_map\nagent_template_map['mine'] = object\n")
    _, warnings = problems(SWIFT_SFT, "args.agent_template=mine", f"args.external_plugins=[{plugin}]")
    assert "agent-template-name" not in {r for r, _ in warnings}


def _checkpoint(folder, architecture, args_json=None):
    folder.mkdir(parents=True, exist_ok=True)
    config = {"architectures": [architecture], "model_type": "qwen3_vl" if "Qwen3VL" in architecture else "qwen2_5_vl"}
    (folder / "config.json").write_text(json.dumps(config))
    if args_json is not None:
        (folder / "args.json").write_text(json.dumps(args_json))
    return folder


@pytest.mark.parametrize("architecture, args_json, refused", [
    ("Qwen3VLForConditionalGeneration", None, True),  # qwen3_vl, qwen3_vl_emb, qwen3_vl_reranker
    ("Qwen2_5_VLForConditionalGeneration", None, False),  # one model_type: matched
    # ms-swift reads args.json's model_type first, from a 4.x args.json only (BaseArguments.load_args_from_ckpt)
    ("Qwen3VLForConditionalGeneration", {"model_type": "qwen3_vl", "swift_version": "4.6.0"}, False),
    ("Qwen3VLForConditionalGeneration", {"model_type": "qwen3_vl", "swift_version": "3.12.2"}, True),
])
def test_an_unmatched_local_checkpoint_needs_its_model_type(tmp_path, architecture, args_json, refused):
    # ms-swift's own _get_model_info on the same directory: it raises exactly where the rule refuses
    from swift.model.model_meta import _get_model_info

    folder = _checkpoint(tmp_path / "my-sft-merge", architecture, args_json)
    try:
        _get_model_info(str(folder), None, None)
        raised = False
    except ValueError as exc:
        raised = "Failed to automatically match `model_type`" in str(exc)
    assert raised == refused
    errors, _ = problems(SWIFT_GRPO, "args.rlhf_type=gkd", f"args.teacher_model={folder}")
    assert (("model-type-unmatched", "args.teacher_model_type") in errors) == refused, errors


def test_an_unmatched_teacher_is_accepted_with_its_own_model_type(tmp_path):
    folder = _checkpoint(tmp_path / "my-sft-merge", "Qwen3VLForConditionalGeneration")
    gkd = ["args.rlhf_type=gkd", f"args.teacher_model={folder}"]
    # model_type covers the student only: the teacher is still refused (ms-swift#8472)
    errors, _ = problems(SWIFT_GRPO, *gkd, "args.model_type=qwen3_5")
    assert ("model-type-unmatched", "args.teacher_model_type") in errors
    errors, _ = problems(SWIFT_GRPO, *gkd, "args.teacher_model_type=qwen3_vl")
    assert "model-type-unmatched" not in {c for c, _ in errors}
    # the student itself, under sft, with and without model_type
    errors, _ = problems(SWIFT_SFT, f"args.model={folder}", "args.template=null")
    assert ("model-type-unmatched", "args.model_type") in errors
    errors, _ = problems(SWIFT_SFT, f"args.model={folder}", "args.model_type=qwen3_vl", "args.template=null")
    assert "model-type-unmatched" not in {c for c, _ in errors}


@pytest.mark.parametrize("overrides, warned", [
    (["args.streaming=true", "args.max_steps=100", "args.resume_from_checkpoint=out/v0/checkpoint-40"], True),
    # ignore_data_skip: the trainer skips nothing; no streaming: the sampler skips indices without reading rows
    (["args.streaming=true", "args.max_steps=100", "args.resume_from_checkpoint=out/v0/checkpoint-40",
      "args.ignore_data_skip=true"], False),
    (["args.resume_from_checkpoint=out/v0/checkpoint-40"], False),
    (["args.streaming=true", "args.max_steps=100"], False),
])
def test_resuming_a_stream_warns_of_the_replay(overrides, warned):
    _, warnings = problems(SWIFT_SFT, *overrides)
    assert (("resume-stream-replay", "args.resume_from_checkpoint") in warnings) == warned, warnings


def test_accelerate_reads_the_batches_it_skips():
    # the replay the warning describes, run: accelerate's DataLoaderDispatcher over a stream fetches the skipped
    # batches (rows 0-5 here) and only then yields the first kept one
    import torch
    from accelerate import PartialState
    from accelerate.data_loader import DataLoaderDispatcher
    from torch.utils.data import IterableDataset

    PartialState()
    read = []

    class Stream(IterableDataset):
        def __iter__(self):
            for i in range(20):
                read.append(i)
                yield torch.tensor([i])

    first = next(iter(DataLoaderDispatcher(Stream(), batch_size=2, skip_batches=3)))
    assert first.flatten().tolist() == [6, 7] and read[:6] == [0, 1, 2, 3, 4, 5]


def test_a_ref_model_takes_the_students_resolved_model_type(tmp_path):
    # RLHFArguments.__post_init__ runs SftArguments.__post_init__ (ModelArguments._init_model_info: model_type =
    # get_model_info_meta(model)'s) before `ref_model_type = ref_model_type or model_type`: a ref_model with no
    # ref_model_type is matched by its own architecture only when the student resolved to no type
    from swift.arguments import ModelArguments, RLHFArguments

    post = inspect.getsource(RLHFArguments.__post_init__)
    assert post.index("SftArguments.__post_init__(self)") < post.index(
        "self.ref_model_type = self.ref_model_type or self.model_type")
    assert "self.model_type = self.model_info.model_type" in inspect.getsource(ModelArguments._init_model_info)
    dpo = ["args.rlhf_type=dpo", "args.tuner_type=full", f"args.ref_model={UNMATCHED}"]
    # a student ms-swift matches (the tiny model, or a registered name): the ref_model gets its type
    errors, _ = problems(SWIFT_GRPO, *dpo)
    assert "model-type-unmatched" not in {c for c, _ in errors}, errors
    errors, _ = problems(SWIFT_GRPO, *dpo, "args.model=Qwen/Qwen3-VL-8B-Instruct", "args.template=qwen3_vl")
    assert "model-type-unmatched" not in {c for c, _ in errors}, errors
    # LoRA loads no ref_model (ms-swift refuses the argument itself)
    errors, _ = problems(SWIFT_GRPO, "args.rlhf_type=dpo", f"args.ref_model={UNMATCHED}")
    assert "model-type-unmatched" not in {c for c, _ in errors}, errors
    # a student whose architecture no registered type has resolves to None: the ref_model is matched on its own
    student = _checkpoint(tmp_path / "my-student", "NoSuchArchForCausalLM")
    from swift.model.model_meta import _get_model_info
    assert _get_model_info(str(student), None, None).model_type is None
    errors, _ = problems(SWIFT_GRPO, *dpo, f"args.model={student}", "args.template=qwen3_5")
    assert ("model-type-unmatched", "args.ref_model_type") in errors, errors
    errors, _ = problems(SWIFT_GRPO, *dpo, f"args.model={student}", "args.template=qwen3_5",
                         "args.ref_model_type=qwen3_vl")
    assert "model-type-unmatched" not in {c for c, _ in errors}, errors
