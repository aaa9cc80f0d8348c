"""`data stats` counts with the template ms-swift picks, read from ms-swift's registry (msswift.model_table), not
guessed from the model's name."""

from __future__ import annotations

import json

import pytest

from swift_ext.datasets.template import template_for
from swift_ext.msswift import model_table
from swift_ext.planner.datafit import counting_settings
from swift_ext.planner.tinymodel import ensure_model


@pytest.mark.parametrize("model, template", [
    ("Qwen/Qwen3.6-35B-A3B", "qwen3_5"),
    ("Qwen/Qwen3.5-9B", "qwen3_5"),
    ("Qwen/Qwen3-30B-A3B-Instruct-2507", "qwen3_nothinking"),  # the name guess knew only qwen3.5/3.6
    ("openai/gpt-oss-20b", model_table.template_for("openai/gpt-oss-20b").template),
    ("/data/models/Qwen/Qwen3___6-35B-A3B", "qwen3_5"),  # a ModelScope cache path, named as ms-swift matches it
])
def test_a_registered_model_gets_ms_swifts_template(model, template):
    assert template_for(model, None) == template


def _model_dir(tmp_path, name, **files):
    d = tmp_path / name
    d.mkdir()
    for file, content in files.items():
        (d / f"{file}.json").write_text(json.dumps(content))
    return str(d)


def test_a_local_directory_is_read_as_ms_swift_reads_it(tmp_path):
    # its name, when registered
    assert template_for(None, _model_dir(tmp_path, "Qwen3.6-35B-A3B", config={"model_type": "qwen3_5_moe"})) == "qwen3_5"
    # an ms-swift checkpoint's args.json names its template
    ckpt = _model_dir(tmp_path, "checkpoint-100", args={"template": "qwen3_8", "model_type": "qwen3_5_moe"})
    assert template_for("/ckpt/checkpoint-100", ckpt) == "qwen3_8"
    # else the model_type's one registered template ...
    llama = _model_dir(tmp_path, "my-llama", config={"model_type": "deepseek_vl2"})
    assert template_for(llama, llama) == model_table.template_for(None, "deepseek_vl2").template
    # ... and none where the type registers several (qwen3_5_moe: qwen3_5 and qwen3_8): ms-swift asks for --template
    mine = _model_dir(tmp_path, "my-finetune", config={"model_type": "qwen3_5_moe"})
    assert template_for(mine, mine) is None


def test_the_tiny_model_counts_with_the_template_of_the_model_it_shrinks():
    ensure_model("tiny-qwen3_6-moe")
    settings, _ = counting_settings("swift-ext://tiny-qwen3_6-moe")
    assert settings.template == "qwen3_5"


@pytest.mark.parametrize("saved, expected", [
    ("", "cannot tell ms-swift's template"),  # args.json `template: ""`: was an internal error from ms-swift
    ("qwen3_55", "did you mean qwen3_5"),  # a name ms-swift does not register: was an internal ValueError
])
def test_a_template_ms_swift_does_not_register_is_one_line(tmp_path, saved, expected):
    from swift_ext.datasets.mediatokens import StatsError
    from swift_ext.datasets.template import template_settings

    ckpt = _model_dir(tmp_path, "my-ckpt", config={"model_type": "qwen3_5_moe"}, args={"template": saved})
    with pytest.raises(StatsError, match=expected):
        template_settings(ckpt, ckpt, fallback_dir=str(tmp_path))
