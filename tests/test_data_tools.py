"""The `tools` column (E116, swift_ext/datasets/rows.py RowChecker._tools): each form checked against what ms-swift
4.6's own preprocessor and agent template do with it."""

from __future__ import annotations

import json

import pytest

from swift_ext.datasets import check as d

BASE = {"messages": [{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "content": "Sunny."}]}
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "the weather",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
BARE = {"name": "get_weather", "description": "the weather"}  # wrap_tool adds the OpenAI envelope

TOOLS = {
    "JSON list": (json.dumps([TOOL]), False),
    "list of objects": ([TOOL], False),
    "list of JSON strings": ([json.dumps(TOOL)], False),
    "one JSON object": (json.dumps(BARE), False),
    "one object": (BARE, False),
    "empty list": ([], False),
    "Python literal list": (str([BARE]), True),
    "text": ("get the weather", True),
    "empty text": ("", True),
    "cut JSON string in a list": ([json.dumps(TOOL)[:-1]], True),
    "list of names": (["get_weather"], True),
    "JSON list of numbers": ("[1, 2]", True),
}


def _check(tmp_path, tools):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({**BASE, "tools": tools}) + "\n")
    return [i.code for i in d.check_file(str(path), d.Options()).issues]


@pytest.mark.parametrize("name", TOOLS)
def test_tools_forms(tmp_path, name):
    tools, refused = TOOLS[name]
    assert _check(tmp_path, tools) == (["E116"] if refused else [])


@pytest.fixture(scope="module")
def agent_template(msswift_processor):
    from swift import get_template

    template = get_template(msswift_processor, template_type="qwen3_5", agent_template="hermes")
    template.set_mode("train")
    return template


@pytest.mark.parametrize("name", TOOLS)
def test_ms_swift_gives_the_same_verdict(tmp_path, agent_template, name):
    """One file per form (a file's rows share one tools type: E110 is another check): ms-swift's loader
    (load_dataset: RowPreprocessor._normalize_tools) then Template.encode; a raise drops the row."""
    from swift.dataset import load_dataset

    tools, refused = TOOLS[name]
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({**BASE, "tools": tools}) + "\n")
    try:
        train, _ = load_dataset([str(path)], strict=False, load_from_cache_file=False)
        agent_template.encode(dict(train[0]))
        failed = False
    except Exception:  # noqa: BLE001 - the preprocessor drops the row (ZeroDivisionError on an empty file) or
        failed = True  # the template asserts a dict (AssertionError) / raises ValueError
    assert failed == refused, name



RESULT = '{"weather": "sunny"}'
CALL = json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})
# (messages, code): the turn orders ms-swift 4.6's template cannot pair (E117, E118) and near-by ones it encodes
TURNS = {
    "tool first": ([("tool", RESULT), ("user", "Paris?"), ("assistant", "Sunny.")], "E117"),
    "system then tool_response": ([("system", "Be brief."), ("tool_response", RESULT), ("assistant", "Sunny.")], "E117"),
    "system then observation": ([("system", "Be brief."), ("observation", RESULT), ("assistant", "Sunny.")], "E117"),
    "user then tool": ([("user", "Paris?"), ("tool", RESULT), ("assistant", "Sunny.")], None),
    "user, tool, user": ([("user", "Paris?"), ("tool", RESULT), ("user", "So?"), ("assistant", "Sunny.")], None),
    "call then response": ([("user", "Paris?"), ("tool_call", CALL), ("tool_response", RESULT),
                            ("assistant", "Sunny.")], None),
    "two calls": ([("user", "Paris?"), ("tool_call", CALL), ("tool_response", RESULT), ("tool_call", CALL),
                   ("tool_response", RESULT), ("assistant", "Sunny.")], None),
    "assistant first then tool": ([("assistant", "Checking."), ("tool", RESULT), ("assistant", "Sunny.")], None),
    "call, response, user": ([("user", "Paris?"), ("tool_call", CALL), ("tool_response", RESULT), ("user", "So?"),
                              ("assistant", "Sunny.")], "E118"),
    "answer, tool, user": ([("user", "Paris?"), ("assistant", "Checking."), ("tool", RESULT), ("user", "So?"),
                            ("assistant", "Sunny.")], "E118"),
    "call, response, answer, user": ([("user", "Paris?"), ("tool_call", CALL), ("tool_response", RESULT),
                                      ("assistant", "Sunny."), ("user", "Tomorrow?"), ("assistant", "Rain.")], None),
}


def _turns(name):
    return {"messages": [{"role": r, "content": c} for r, c in TURNS[name][0]]}


@pytest.mark.parametrize("name", TURNS)
def test_turn_orders_the_template_cannot_pair(tmp_path, name):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(_turns(name)) + "\n")
    codes = [i.code for i in d.check_file(str(path), d.Options()).issues if i.code.startswith("E")]
    assert codes == ([TURNS[name][1]] if TURNS[name][1] else [])
    # the jinja backend hands the turns to the tokenizer's chat template as written
    jinja = d.check_file(str(path), d.Options(template_backend="jinja")).issues
    assert not {"E117", "E118"} & {i.code for i in jinja}


@pytest.mark.parametrize("name", TURNS)
def test_ms_swift_drops_the_rows_e117_e118_refuse(tmp_path, agent_template, name):
    """ms-swift's loader keeps the row; the template raises at encode (Template._preprocess_standalone_tools:
    ValueError; Template._swift_encode: AssertionError on the answer's role), and the row is dropped."""
    from swift.dataset import load_dataset

    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(_turns(name)) + "\n")
    train, _ = load_dataset([str(path)], strict=False, load_from_cache_file=False)
    try:
        agent_template.encode(dict(train[0]))
        failed = None
    except ValueError as exc:
        assert "standalone tool message" in str(exc)
        failed = "E117"
    except AssertionError as exc:
        assert 'response_role: "user"' in str(exc)
        failed = "E118"
    assert failed == TURNS[name][1], name
