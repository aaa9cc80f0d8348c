"""The recipe's `columns` argument renames a local file's columns before ms-swift reads any (RowPreprocessor.__call__:
safe_rename_columns(dataset, origin_columns)), so the data check judges the renamed row: a seq_cls `label` or a
GRPO `solution` given under another name and mapped with `columns` is there. Each case is compared with ms-swift's
own loader (swift.dataset.load_dataset with the same columns)."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import swift_ext_in_process
from swift_ext.datasets.mapping import renamed_columns

SEQ_CLS = {"command": "sft", "engine": "swift", "launch": {"gpus_per_node": 1, "nodes": 1, "gpu": "A100-80G"},
           "args": {"model": "Qwen/Qwen2.5-0.5B", "tuner_type": "lora", "task_type": "seq_cls", "num_labels": 2,
                    "per_device_train_batch_size": 1}}
GRPO = {"command": "rlhf", "engine": "swift", "launch": {"gpus_per_node": 2, "nodes": 1, "gpu": "A100-80G"},
        "args": {"rlhf_type": "grpo", "model": "Qwen/Qwen2.5-0.5B-Instruct", "tuner_type": "lora",
                 "reward_funcs": ["accuracy"], "use_vllm": True, "vllm_mode": "colocate",
                 "num_generations": 4, "per_device_train_batch_size": 4, "max_completion_length": 256}}


def _files(tmp_path, recipe, rows, columns):
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = json.loads(json.dumps(recipe))
    recipe["args"]["dataset"] = [str(tmp_path / "rows.jsonl")]
    if columns is not None:
        recipe["args"]["columns"] = columns
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    return tmp_path / "r.yaml"


def _loaded(tmp_path, columns):
    from swift.dataset import load_dataset

    train, _ = load_dataset([str(tmp_path / "rows.jsonl")], columns=columns, split_dataset_ratio=0,
                            remove_unused_columns=False)
    return train


CLS_ROWS = [{"messages": [{"role": "user", "content": f"text {i}"}], "target": i % 2} for i in range(8)]
GRPO_ROWS = [{"messages": [{"role": "user", "content": f"{i}+1?"}], "answer": str(i + 1)} for i in range(8)]


@pytest.mark.parametrize("recipe, rows, column, code", [(SEQ_CLS, CLS_ROWS, {"target": "label"}, "E207"),
                                                        (GRPO, GRPO_ROWS, {"answer": "solution"}, "E203")])
def test_a_column_the_recipe_maps_is_read_under_its_new_name(tmp_path, recipe, rows, column, code):
    recipe_file = _files(tmp_path, recipe, rows, column)
    (target,) = column.values()
    assert target in _loaded(tmp_path, column).column_names  # ms-swift renames it before reading the rows
    assert target not in _loaded(tmp_path, None).column_names
    mapped = swift_ext_in_process("plan", recipe_file)
    assert mapped.returncode == 0 and code not in mapped.stdout + mapped.stderr, mapped.stdout + mapped.stderr
    assert "8/8 rows valid" in mapped.stdout  # the rows were checked, under their new names
    as_text = swift_ext_in_process("plan", _files(tmp_path, recipe, rows, json.dumps(column)))  # the CLI's JSON form
    assert as_text.returncode == 0, as_text.stdout + as_text.stderr
    unmapped = swift_ext_in_process("plan", _files(tmp_path, recipe, rows, None))  # the real failure: still refused
    assert unmapped.returncode != 0 and code in unmapped.stdout + unmapped.stderr


def test_renaming_follows_ms_swifts_safe_rename_columns():
    """Case-insensitive names; two present columns mapped to one target rename neither (ResponsePreprocessor.
    safe_rename_columns, run here on the same columns as a datasets.Dataset)."""
    from datasets import Dataset
    from swift.dataset.preprocessor.core import ResponsePreprocessor

    row = {"messages": [], "Target": 1, "grade": 2, "note": "x"}
    for columns in ({"target": "label"}, {"target": "label", "grade": "label"}, {"note": "note"}):
        theirs = ResponsePreprocessor.safe_rename_columns(Dataset.from_list([row]), columns).column_names
        ours = renamed_columns(row, tuple(columns.items()))
        assert sorted(ours) == sorted(theirs), columns
