"""The encoder tasks' rows (swift_ext/datasets/encoder.py): seq_cls labels (E207, W207), embedding and reranker
candidates (E208, W206); each verdict compared with what ms-swift 4.6's own template, collator and loss do."""

from __future__ import annotations

import json

import pytest

from swift_ext.datasets import check as d

Q = [{"role": "user", "content": "what joins two pipes?"}]
POS = [[{"role": "assistant", "content": "A collar."}]]
NEG = [[{"role": "assistant", "content": "A gland."}]]

# (task, row, extra options) -> the code said (None: clean)
CASES = {
    "embedding with a positive": ("embedding", {"positive_messages": POS}, {}, None),
    "embedding with positive and negatives": ("embedding", {"positive_messages": POS, "negative_messages": NEG * 2},
                                              {}, None),
    "embedding without a positive": ("embedding", {"negative_messages": NEG}, {}, "E208"),
    "embedding with an empty positive list": ("embedding", {"positive_messages": []}, {}, "E208"),
    "embedding positive of texts": ("embedding", {"positive_messages": ["A collar."]}, {}, "E208"),
    "reranker 3.x layout": ("generative_reranker", {"rejected_response": ["A gland.", "A flange."]}, {}, "E208"),
    "reranker positives only": ("reranker", {"positive_messages": POS}, {}, None),
    "reranker negatives only": ("generative_reranker", {"negative_messages": NEG}, {}, None),
    "reranker neither": ("reranker", {}, {}, "W206"),
    "seq_cls class 1 of 2": ("seq_cls", {"label": 1}, {"num_labels": 2}, None),
    "seq_cls class as text digit": ("seq_cls", {"label": "1"}, {"num_labels": 2}, None),
    "seq_cls ignore index": ("seq_cls", {"label": -100}, {"num_labels": 2}, None),
    "seq_cls class 2 of 2": ("seq_cls", {"label": 2}, {"num_labels": 2}, "E207"),
    "seq_cls negative class": ("seq_cls", {"label": -1}, {"num_labels": 2}, "E207"),
    "seq_cls word": ("seq_cls", {"label": "positive"}, {"num_labels": 2}, "E207"),
    "seq_cls no label": ("seq_cls", {}, {"num_labels": 2}, "E207"),
    "seq_cls soft label": ("seq_cls", {"label": 0.8}, {"num_labels": 2}, "W207"),
    "seq_cls whole float": ("seq_cls", {"label": 1.0}, {"num_labels": 2}, None),
    "regression float": ("seq_cls", {"label": 0.8}, {"num_labels": 1}, None),
    "regression text": ("seq_cls", {"label": "high"}, {"num_labels": 1}, "E207"),
    "multi-label indices": ("seq_cls", {"label": [0, 1]}, {"num_labels": 2, "problem_type":
                                                            "multi_label_classification"}, None),
    "multi-label none present": ("seq_cls", {"label": []}, {"num_labels": 2, "problem_type":
                                                             "multi_label_classification"}, None),
    "multi-label index past the head": ("seq_cls", {"label": [2]}, {"num_labels": 2, "problem_type":
                                                                     "multi_label_classification"}, "E207"),
    # data check without a recipe: the head is not known, only what fails whatever it is
    "seq_cls unknown head, class 7": ("seq_cls", {"label": 7}, {}, None),
    "seq_cls unknown head, word": ("seq_cls", {"label": "positive"}, {}, "E207"),
}


def _codes(tmp_path, task, row, opts):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"messages": Q, **row}) + "\n")
    report = d.check_file(str(path), d.Options(task=task, **opts))
    return [i.code for i in report.issues]


@pytest.mark.parametrize("name", CASES)
def test_encoder_rows(tmp_path, name):
    task, row, opts, code = CASES[name]
    assert _codes(tmp_path, task, row, opts) == ([code] if code else [])


def test_sft_rows_are_not_read_as_encoder_rows(tmp_path):
    # a `label` or a rejected_response list in an sft row is another task's column: not an encoder finding
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"messages": Q + [{"role": "assistant", "content": "A collar."}], "label": "x"}) + "\n")
    assert d.check_file(str(path), d.Options(task="sft")).issues == []


def _msswift_fails(processor_for, task, row, opts) -> bool:
    """Whether ms-swift 4.6 fails this row: its dataset preprocessing and Template.encode (a raise drops the row),
    then for seq_cls its collator and the head's loss over a batch of this row and a clean one."""
    import torch
    from datasets import Dataset
    from swift import get_template
    from swift.dataset.preprocessor import AutoPreprocessor

    full = {"messages": Q, **row}
    rows = AutoPreprocessor()(Dataset.from_list([full]), num_proc=1, strict=False)
    if len(rows) == 0:
        return True
    template = get_template(processor_for(task, opts), template_type="qwen3_5", max_length=256)
    template.set_mode("train")
    try:
        encoded = template.encode({k: v for k, v in rows[0].items() if v is not None})
    except Exception:  # noqa: BLE001 - ms-swift's encode raises IndexError / TypeError / ValueError here
        return True
    if task != "seq_cls":
        return False
    good = template.encode({"messages": Q, "label": 0})
    try:
        batch = template.data_collator([encoded, good])
        config = template.config
        logits = torch.zeros(2, config.num_labels)
        labels = batch.get("labels")
        if labels is None or labels.shape[0] != 2:
            return True  # fewer targets than inputs: the loss refuses the batch
        if config.problem_type == "single_label_classification":
            torch.nn.functional.cross_entropy(logits, labels)
        elif config.problem_type == "multi_label_classification":
            torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        else:
            torch.nn.functional.mse_loss(logits.squeeze(-1), labels)
    except Exception:  # noqa: BLE001 - the collator's IndexError, the loss's IndexError
        return True
    return False


@pytest.fixture(scope="module")
def processor_for():
    from swift import get_processor

    from swift_ext.planner.tinymodel import ensure_model

    cache = {}

    def get(task, opts):
        key = (task, opts.get("num_labels"), opts.get("problem_type"))
        if key not in cache:
            kwargs = {"num_labels": opts.get("num_labels"), "problem_type": opts.get("problem_type")} \
                if task == "seq_cls" else {}
            cache[key] = get_processor(str(ensure_model("tiny-qwen3_6-moe")), task_type=task, **kwargs)
        return cache[key]

    return get


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[2] or c[0] != "seq_cls"])
def test_ms_swift_gives_the_same_verdict(tmp_path, processor_for, name):
    task, row, opts, code = CASES[name]
    # an error is a row ms-swift fails on; a clean row or a warning (W206 trains nothing, W207 truncates) runs
    assert _msswift_fails(processor_for, task, row, opts) == (code is not None and code.startswith("E")), name


def test_hard_negatives_need_a_negative_in_every_row(tmp_path):
    # swift/loss/embedding.py _parse_multi_negative_sentences: `assert negatives > 0` once INFONCE_HARD_NEGATIVES is set
    import torch
    from swift.loss.embedding import _parse_multi_negative_sentences

    with pytest.raises(AssertionError):  # one row: anchor, positive, no negative
        _parse_multi_negative_sentences(torch.zeros(2, 4), torch.tensor([1.0]), hard_negatives=2)
    _parse_multi_negative_sentences(torch.zeros(3, 4), torch.tensor([1.0, 0.0]), hard_negatives=2)
    assert _codes(tmp_path, "embedding", {"positive_messages": POS}, {"hard_negatives": True}) == ["E208"]
    assert _codes(tmp_path, "embedding", {"positive_messages": POS, "negative_messages": NEG}, {"hard_negatives": True}) == []
    assert _codes(tmp_path, "embedding", {"positive_messages": POS}, {}) == []


def test_the_recipe_sets_hard_negatives_only_for_infonce(tmp_path):
    from swift_ext.planner.datafit import check_options
    from swift_ext.spec.recipe import Recipe

    def opts(loss, env):
        recipe = Recipe(command="sft", engine="swift", launch={"nodes": 1, "gpus_per_node": 1}, env=env, source="r.yaml",
                        args={"model": "Qwen/Qwen3-Embedding-0.6B", "task_type": "embedding", "loss_type": loss,
                              "dataset": ["train.jsonl"]})
        return check_options(recipe)[0]

    assert opts("infonce", {"INFONCE_HARD_NEGATIVES": "3"}).hard_negatives
    assert not opts("infonce", {}).hard_negatives
    assert not opts("cosine_similarity", {"INFONCE_HARD_NEGATIVES": "3"}).hard_negatives
