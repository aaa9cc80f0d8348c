"""KTO rows whose KL completion is their own answer (a file-level check: E206 every row, W403 a share of them).

ms-swift 4.6 builds KTO's KL term from a neighbour's answer: swift/pipelines/train/kto.py prepare_kto_dataset
(every loss_type but apo_zero_unpaired) shuffles the dataset and, in batches of the global batch size,
KTOPreprocessor.batched_preprocess gives row i the last message content of row i-1 (the first row takes the
batch's last) as its `rejected_response`. At encode, swift/template/template_inputs.py
TemplateInputs._compat_rejected_response asserts `rejected_response != response` wherever the turns after the
last user turn are one message: a row whose neighbour ends with the same text fails to encode. LazyLLMDataset
(swift/dataset/utils.py, the non-streaming train and val datasets of swift/pipelines/train/sft.py
_post_process_datasets) then logs the traceback and draws another row in its place; with `strict` it raises. When
every answer is the same, every row fails, and after n_try_fetch (10) draws LazyLLMDataset raises 'Failed to
retrieve the dataset' at the first batch. ms-swift#4535 reports rows lost this way on data with few distinct
answers.

The neighbour is drawn by a shuffle, so the share of rows that fail is an expectation: a row with answer r fails
when its neighbour, one of the other N - 1 rows, ends with r. tests/test_data_kto.py runs ms-swift's own
_get_kl_dataset and TemplateInputs.from_dict against this count.
"""

from __future__ import annotations

from collections import Counter

import msgspec
import xxhash

from swift_ext.datasets.issues import data_finding
from swift_ext.datasets.mapping import Unmapped, auto_messages, conversation
from swift_ext.datasets.reader import numbered_lines
from swift_ext.spec.findings import Finding

# Distinct answers counted: past it, an answer not yet seen is taken as unique (it adds no risk), so the share is a
# lower bound on such files and memory stays bounded. KTO files with repeated answers repeat early.
DISTINCT_CAP = 500_000
WARN_SHARE = 0.05  # below, a few rows redrawn: not worth a warning on every KTO file with some repeated answers
_DECODER = msgspec.json.Decoder()


def _messages(row) -> list | None:
    """The conversation ms-swift's preprocessor gives the row (role names mapped), None for a row it refuses."""
    if type(row) is not dict:
        return None
    try:
        if "messages" in row:
            return conversation(row, "messages")[0]
        mapped = auto_messages(row, False)
    except Unmapped:
        return None
    return mapped[0] if mapped else None


def _answers(messages: list) -> tuple[str | None, bool]:
    """(the last message's text, whether the row's own answer is what the assert compares): the text is what a
    neighbour takes as its KL completion; the assert only runs where the turns after the last user turn are one
    plain assistant message (template_inputs.py: `len(messages[idx:]) == 1`; tool calls are normalised first)."""
    last = messages[-1]
    text = last.get("content") if type(last) is dict else None
    if not isinstance(text, str):
        return None, False
    users = [i for i, m in enumerate(messages) if type(m) is dict and m.get("role") == "user"]
    tail = messages[users[-1] + 1:] if users else messages
    compared = len(tail) == 1 and last.get("role") == "assistant" and not last.get("tool_calls")
    return text, compared


def kto_kl_findings(path: str, layout: str) -> list[Finding]:
    """E206 when every row's answer is the one text all its neighbours end with (the run stops at the first
    batch), else W403 when at least WARN_SHARE of the rows are expected to draw a neighbour with their own answer."""
    ends: Counter = Counter()  # digest of the last message's text -> rows ending with it
    own: Counter = Counter()  # digest of the answer -> rows whose answer the assert compares
    rows = distinct = 0
    for _, raw in numbered_lines(path, layout):
        if type(raw) is int or not raw.strip():
            continue
        try:
            messages = _messages(_DECODER.decode(raw))
        except (msgspec.DecodeError, RecursionError):
            continue
        if not messages:
            continue
        text, compared = _answers(messages)
        rows += 1
        if text is None:
            continue
        key = xxhash.xxh3_64_intdigest(text.encode("utf-8", "surrogatepass"))
        if key not in ends:
            distinct += 1
            if len(ends) >= DISTINCT_CAP:
                continue
        ends[key] += 1
        if compared:
            own[key] += 1
    if rows < 2:
        return []
    at_risk = sum(n * (ends[key] - 1) for key, n in own.items()) / (rows - 1)
    if own and sum(own.values()) == rows and distinct == 1:
        return [data_finding(path, 0, "E206", "messages", (
            f"every one of the {rows} rows ends with the same answer: ms-swift's KTO pairs each row with a "
            "neighbour's answer as its KL completion (pipelines/train/kto.py KTOPreprocessor), asserts the two differ "
            "(template_inputs.py _compat_rejected_response), so every row fails to encode and LazyLLMDataset raises "
            "'Failed to retrieve the dataset' at the first batch. Write the answers out (not one shared label), or "
            "use loss_type apo_zero_unpaired, which takes no KL completion"))]
    if at_risk < WARN_SHARE * rows:
        return []
    return [data_finding(path, 0, "W403", "messages", (
        f"{distinct} distinct answers over {rows} rows: about {at_risk / rows:.0%} of the rows (~{round(at_risk)}) "
        "draw a neighbour ending with their own answer as KTO's KL completion (pipelines/train/kto.py "
        "KTOPreprocessor), fail the rejected_response != response assert (template_inputs.py) and are replaced by "
        "another row: those rows never train and others repeat (ms-swift#4535). Give rows distinct answers, or use "
        "loss_type apo_zero_unpaired, which takes no KL completion"))]
