"""The encoder tasks' own row checks (RowChecker._task): seq_cls's `label` (E207, W207) and the embedding / reranker
rows' candidates (E208, W206), read as ms-swift 4.6 encodes and collates them.

- seq_cls: Template._seq_cls_encode keeps `label` (int() of it for single_label_classification: a word raises
  and the row is dropped); Template._seq_cls_data_collator gathers only the rows that have one, so a row without
  it leaves fewer targets than inputs ("Expected input batch_size (N) to match target batch_size (M)", or, alone
  in its batch, "The model did not return a loss"). The head has num_labels outputs: CrossEntropyLoss refuses a
  target outside [0, num_labels) (-100 is its ignore_index), the multi-label collator's one-hot
  (one_hot_labels[i, label] = 1) an index past num_labels - 1, and the regression collator's
  torch.tensor(labels, dtype=float32) anything but numbers. The problem type is ms-swift's: problem_type, else
  regression for num_labels 1 and single_label_classification otherwise (swift/model/model_meta.py
  get_model_info_meta).
- embedding: Template._embedding_encode reads the first of `positive_messages` (positive[0]): a row without one
  raises IndexError and is dropped.
- embedding / rerankers: TemplateInputs.__post_init__ builds each `positive_messages` / `negative_messages` entry
  as a conversation, and TemplateInputs._compat_rejected_response reads each entry of a `rejected_response`
  list as a message: 3.x's reranker rows ({"query", "response", "rejected_response": ["doc", ...]}) raise
  TypeError there and every row is dropped (ms-swift#9267). A reranker row with neither positives nor negatives
  encodes to no candidate at all (Template._reranker_encode): it trains nothing (W206).
- embedding with loss_type infonce and INFONCE_HARD_NEGATIVES set: swift/loss/embedding.py
  _parse_multi_negative_sentences asserts each row has a negative before padding them to that count (E208).
"""

from __future__ import annotations

import numbers
from typing import Any

from swift_ext.datasets.issues import json_type

CANDIDATES = ("positive_messages", "negative_messages")
LAYOUT = ("ms-swift 4.x reads embedding and reranker rows as `messages` (the query) plus `positive_messages` / "
          "`negative_messages`, each a list of conversations")


def check_row(row: dict, task: str, opts, add) -> None:
    if task == "seq_cls":
        _label(row, opts.num_labels, opts.problem_type, add)
    elif task in ("embedding", "reranker", "generative_reranker"):
        _candidates(row, task, opts.hard_negatives, add)


def resolved_problem_type(num_labels: int | None, problem_type: str | None) -> str | None:
    """ms-swift's problem type for seq_cls (get_model_info_meta); None where num_labels is not known."""
    if problem_type:
        return problem_type
    if num_labels is None:
        return None
    return "regression" if num_labels == 1 else "single_label_classification"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral)  # bool too: int(True) is 1, as torch reads it


def _label(row: dict, num_labels: int | None, problem_type: str | None, add) -> None:
    label = row.get("label")
    if label is None:
        add("E207", "label", "seq_cls rows need a `label`: ms-swift's collator gathers only the rows that have one, "
            "so the batch has fewer targets than inputs (or no loss at all)")
        return
    kind = resolved_problem_type(num_labels, problem_type)
    if kind == "regression" or (kind is None and isinstance(label, float)):
        values = label if isinstance(label, list) else [label]
        if not values or not all(isinstance(v, numbers.Real) for v in values):
            add("E207", "label", f"a regression label must be a number (or a list of them), got {json_type(label)}: "
                "torch.tensor(labels, dtype=float32) refuses it")
        return
    if kind == "multi_label_classification":
        values = label if isinstance(label, list) else [label]
        bad = [v for v in values if not _is_int(v) or v < 0 or (num_labels is not None and v >= num_labels)]
        if bad:
            add("E207", "label", f"multi-label labels are the indices of the classes present, each in [0, "
                f"{num_labels if num_labels is not None else 'num_labels'}); got {label!r}")
        return
    # single_label_classification (or not known yet): Template._seq_cls_encode takes int(label)
    if isinstance(label, str):
        try:
            label = int(label)
        except ValueError:
            add("E207", "label", f"label {row['label']!r} is not a class index: ms-swift's int(label) raises and "
                "drops the row (give the class number, 0 .. num_labels - 1)")
            return
    if not isinstance(label, numbers.Real):
        add("E207", "label", f"a single-label class must be a whole number, got {json_type(label)}: ms-swift's "
            "int(label) raises and drops the row")
        return
    if isinstance(label, float) and not label.is_integer():
        add("W207", "label", f"label {label!r} is not a class index: ms-swift's int(label) truncates it to "
            f"{int(label)} without a word (soft labels need problem_type regression)")
        return
    if num_labels is not None and kind is not None and int(label) != -100 and not 0 <= int(label) < num_labels:
        add("E207", "label", f"label {int(label)} is outside [0, {num_labels}) of the num_labels {num_labels} head: "
            "CrossEntropyLoss fails on the target (a CUDA device-side assert on GPUs)")


def _candidates(row: dict, task: str, hard_negatives: bool, add) -> None:
    rejected = row.get("rejected_response")
    if isinstance(rejected, list) and not all(isinstance(m, dict) for m in rejected):
        add("E208", "rejected_response", "a `rejected_response` list of texts (3.x's reranker layout): ms-swift 4.x "
            "reads each entry as a message and raises TypeError, dropping the row; " + LAYOUT)
        return
    present = {}
    for column in CANDIDATES:
        value = row.get(column)
        if value is None:
            continue
        if not isinstance(value, list) or not all(
                isinstance(conv, list) and conv and all(isinstance(m, dict) and "role" in m for m in conv)
                for conv in value):
            add("E208", column, f"`{column}` must be a list of conversations (each a non-empty list of messages with "
                f"a `role`), got {json_type(value)}: ms-swift cannot build its candidates and drops the row")
            return
        present[column] = len(value)
    if task == "embedding" and not present.get("positive_messages"):
        add("E208", "positive_messages", "an embedding row needs a `positive_messages` conversation: ms-swift's "
            "embedding encoder reads positive[0] and drops the row with IndexError; " + LAYOUT)
    elif task == "embedding" and hard_negatives and not present.get("negative_messages"):
        add("E208", "negative_messages", "INFONCE_HARD_NEGATIVES is set: ms-swift's InfoNCE loss pads or cuts every "
            "row's negatives to that count and asserts the row has at least one (AssertionError at the step that "
            "holds this row)")
    elif task != "embedding" and not any(present.values()):
        add("W206", "positive_messages", "a reranker row with neither `positive_messages` nor `negative_messages` "
            "gives ms-swift no candidate to score: it trains nothing; " + LAYOUT)
