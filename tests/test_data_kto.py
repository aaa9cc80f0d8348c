"""KTO rows whose KL completion is their own answer (swift_ext/datasets/kto.py: E206, W403), judged against ms-swift's
own KL pairing (swift/pipelines/train/kto.py _get_kl_dataset) and encode check (TemplateInputs.from_dict)."""

from __future__ import annotations

import json

from conftest import FIXTURES
from swift_ext.datasets.check import Options, check_file

ROWS = FIXTURES / "issues" / "files" / "ms-swift-4535"


def _write(tmp_path, answers, name="kto.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"question {i}"},
                                                     {"role": "assistant", "content": a}], "label": i % 2 == 0}) + "\n"
                            for i, a in enumerate(answers)))
    return path


def _codes(path, **opts):
    return [(i.code, i.severity) for i in check_file(str(path), Options(task="kto", **opts)).issues
            if i.code in ("E206", "W403")]


def _swift_failures(path, batch=8, seed=0):
    """Rows of PATH that fail ms-swift's encode after its KTO KL pairing (the assert), out of all rows."""
    from datasets import Dataset
    from swift.pipelines.train.kto import _get_kl_dataset
    from swift.template.template_inputs import TemplateInputs

    rows = [json.loads(line) for line in path.read_text().splitlines()]
    failed = 0
    for row in _get_kl_dataset(Dataset.from_list(rows), batch, 1, seed):
        try:
            TemplateInputs.from_dict(dict(row))
        except AssertionError:
            failed += 1
    return failed, len(rows)


def test_few_distinct_answers_warn_and_ms_swift_loses_those_rows():
    path = ROWS / "kto_rows.jsonl"
    assert _codes(path) == [("W403", "warning")]
    failed, rows = _swift_failures(path)
    assert failed >= rows // 4, (failed, rows)  # A/B answers: a large share of the rows fail to encode


def test_written_out_answers_pass_and_ms_swift_encodes_every_row():
    path = ROWS / "kto_rows_fixed.jsonl"
    assert _codes(path) == []
    assert _swift_failures(path)[0] == 0


def test_one_answer_for_every_row_is_an_error_and_ms_swift_gets_no_row(tmp_path):
    path = _write(tmp_path, ["yes"] * 12)
    assert _codes(path) == [("E206", "error")]
    failed, rows = _swift_failures(path)
    assert failed == rows
    # what the trainer's dataset does with it: every draw fails, then it gives up
    import pytest
    from datasets import Dataset
    from swift.dataset.utils import LazyLLMDataset
    from swift.pipelines.train.kto import _get_kl_dataset
    from swift.template.template_inputs import TemplateInputs

    kl = _get_kl_dataset(Dataset.from_list([json.loads(x) for x in path.read_text().splitlines()]), 4, 1, 0)
    lazy = LazyLLMDataset(kl, lambda row, return_length: TemplateInputs.from_dict(dict(row)), random_state=0)
    with pytest.raises(ValueError, match="Failed to retrieve the dataset"):
        lazy[0]


def test_no_kl_completion_or_mostly_distinct_answers_pass(tmp_path):
    same = _write(tmp_path, ["yes"] * 12)
    assert _codes(same, kto_kl=False) == []  # loss_type apo_zero_unpaired: prepare_kto_dataset takes no KL completion
    mostly = _write(tmp_path, [f"answer {i}" for i in range(38)] + ["yes", "yes"], "mostly.jsonl")
    assert _codes(mostly) == []  # one repeated pair in 40 rows: a row or so redrawn, under WARN_SHARE
    two_turn = tmp_path / "tools.jsonl"  # the same text after a tool turn: the assert compares only one-message tails
    two_turn.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"q{i}"}, {"role": "tool_call", "content": '{"name": "f", "arguments": {}}'},
        {"role": "tool_response", "content": "1"}, {"role": "assistant", "content": "done"}], "label": True}) + "\n"
        for i in range(6)))
    assert _codes(two_turn) == [] and _swift_failures(two_turn, batch=3)[0] == 0


def test_plan_passes_the_recipes_loss_type_to_the_check():
    from swift_ext.planner.datafit import check_options
    from swift_ext.spec.recipe import load_recipe

    recipe = FIXTURES / "issues" / "ms-swift-4535-kto-few-distinct-answers.yaml"
    assert check_options(load_recipe(recipe, []))[0].kto_kl
    assert not check_options(load_recipe(recipe, ["args.loss_type=apo_zero_unpaired"]))[0].kto_kl
    # `import` writes `--loss_type apo_zero_unpaired` as a one-item list (loss_type is a list argument); ms-swift
    # unwraps it (RLHFArguments._process_loss_type), and prepare_kto_dataset then builds no KL completion.
    assert not check_options(load_recipe(recipe, ["args.loss_type=[apo_zero_unpaired]"]))[0].kto_kl
    assert check_options(load_recipe(recipe, ["args.loss_type=[kto]"]))[0].kto_kl
