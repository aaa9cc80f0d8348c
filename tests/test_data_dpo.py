"""DPO rows' rejected side (E204, swift_ext/datasets/rejected.py): every form ms-swift 4.6 takes passes, what it
refuses is refused with its field, and ms-swift's own loader and rlhf template encode give the same verdict."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT
from swift_ext.datasets import check as d

U, A = {"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4."}
BAD = {"role": "assistant", "content": "5."}
CALL = {"role": "tool_call", "content": '{"name": "calc", "arguments": {"expr": "2+2"}}'}
RESULT = {"role": "tool_response", "content": "5"}

# Rows ms-swift loads and encodes in rlhf mode (ms-swift 4.6: template_inputs.py _compat_rejected_response,
# TemplateInputs.from_dict; preprocessor/core.py MessagesPreprocessor.preprocess on rejected_messages).
ACCEPTED = {
    "response string": {"rejected_response": "5."},
    "response list": {"rejected_response": [BAD]},
    "response list of a tool trajectory": {"rejected_response": [CALL, RESULT, BAD]},
    "response list ending in a tool call": {"rejected_response": [CALL]},
    "response list with content parts": {"rejected_response": [{"role": "assistant",
                                                               "content": [{"type": "text", "text": "5."}]}]},
    "rejected_messages": {"rejected_messages": [U, BAD]},
    "rejected_messages as a JSON string": {"rejected_messages": json.dumps([U, BAD])},
    "rejected_messages in sharegpt keys": {"rejected_messages": [{"from": "human", "value": "2 + 2?"},
                                                                 {"from": "gpt", "value": "5."}]},
    "rejected_messages with role aliases": {"rejected_messages": [{"role": "human", "content": "2 + 2?"},
                                                                  {"role": "gpt", "content": "5."}]},
    "both (rejected_response wins)": {"rejected_response": "5.", "rejected_messages": [U, {"role": "assistant",
                                                                                            "content": "6."}]},
}
# Rows ms-swift drops at load or fails to encode: (the row's extra columns, the field E-code names).
REFUSED = {
    "response object": ({"rejected_response": BAD}, ("E204", "rejected_response")),
    "response number": ({"rejected_response": 5}, ("E204", "rejected_response")),
    "response null": ({"rejected_response": None}, ("E204", "rejected_response")),
    "response same as chosen": ({"rejected_response": "4."}, ("E204", "rejected_response")),
    "response list same as chosen": ({"rejected_response": [A]}, ("E204", "rejected_response")),
    "response list with a user turn": ({"rejected_response": [U, BAD]}, ("E204", "rejected_response")),
    "response list of strings": ({"rejected_response": ["5."]}, ("E204", "rejected_response")),
    "response list without roles": ({"rejected_response": [{"content": "5."}]}, ("E204", "rejected_response")),
    "response list with a role alias": ({"rejected_response": [{"role": "gpt", "content": "5."}]},
                                        ("E204", "rejected_response")),
    "response list with a system turn": ({"rejected_response": [{"role": "system", "content": "s"}, BAD]},
                                         ("E107", "rejected_response[0]")),
    "rejected_messages object": ({"rejected_messages": BAD}, ("E204", "rejected_messages")),
    "rejected_messages text": ({"rejected_messages": "5."}, ("E204", "rejected_messages")),
    "rejected_messages of strings": ({"rejected_messages": ["5."]}, ("E204", "rejected_messages")),
    "rejected_messages with an unknown role": ({"rejected_messages": [U, BAD, {"role": "assitant", "content": "x"}]},
                                               ("E204", "rejected_messages")),
    "rejected_messages with a late system turn": ({"rejected_messages": [U, {"role": "system", "content": "s"}, BAD]},
                                                  ("E107", "rejected_messages[1]")),
    "no rejected side": ({}, ("E204", "rejected_response")),
}
# Rows ms-swift takes although DPO learns nothing from them: refused, as E201 refuses a chosen side without
# an answer (the rejected side empty, a copy of the chosen one, or without a final answer).
TEACH_NOTHING = {
    "response empty": {"rejected_response": " "},
    "response list empty": {"rejected_response": []},
    "rejected_messages empty": {"rejected_messages": []},
    "rejected_messages same as chosen": {"rejected_messages": [U, A]},
    "rejected_messages ending on the user": {"rejected_messages": [U]},
}


def _check(tmp_path, extra: dict, task: str = "dpo") -> d.DataCheckReport:
    path = tmp_path / "dpo.jsonl"
    path.write_text(json.dumps({"messages": [U, A], **extra}) + "\n")
    typed = d.check_file(str(path), d.Options(task=task))
    reference = d.check_file(str(path), d.Options(task=task), typed=False)
    assert json.dumps(typed.as_dict()) == json.dumps(reference.as_dict())  # the fast path (sft) agrees
    return typed


@pytest.mark.parametrize("name", ACCEPTED)
def test_every_rejected_form_ms_swift_takes_passes(tmp_path, name):
    report = _check(tmp_path, ACCEPTED[name])
    assert report.errors == 0 and report.valid_rows == 1, [i.render() for i in report.issues]


@pytest.mark.parametrize("name", REFUSED)
def test_a_rejected_side_ms_swift_refuses_is_an_error_on_its_field(tmp_path, name):
    extra, (code, field) = REFUSED[name]
    report = _check(tmp_path, extra)
    assert [(i.code, i.path, i.line) for i in report.issues if i.severity == "error"] == [(code, field, 1)]
    assert report.valid_rows == 0


@pytest.mark.parametrize("name", TEACH_NOTHING)
def test_a_rejected_side_that_teaches_nothing_is_refused(tmp_path, name):
    report = _check(tmp_path, TEACH_NOTHING[name])
    assert [i.code for i in report.issues if i.severity == "error"] == ["E204"]


@pytest.mark.parametrize("task", ["sft", "pt"])
def test_other_tasks_leave_the_rejected_columns_alone(tmp_path, task):
    for extra in [*ACCEPTED.values(), *(e for e, _ in REFUSED.values())]:
        assert _check(tmp_path, extra, task).errors == 0


def test_a_row_without_the_rejected_response_column_its_file_has_is_refused(tmp_path):
    # Arrow gives the file one set of columns: the second row reads rejected_response = null and
    # RowPreprocessor._check_rejected_response drops it, although its rejected_messages alone would do.
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps({"messages": [U, A], "rejected_response": "5."}) + "\n"
                    + json.dumps({"messages": [U, A], "rejected_messages": [U, BAD]}) + "\n")
    report = d.check_file(str(path), d.Options(task="dpo"))
    assert [(i.line, i.code, i.path) for i in report.issues if i.severity == "error"] == [(2, "E204", "rejected_response")]


def test_the_rejected_side_is_not_counted_in_the_role_summary(tmp_path):
    report = _check(tmp_path, {"rejected_messages": [U, CALL, RESULT, BAD]})
    assert report.roles == {"user": 1, "assistant": 1}


@pytest.fixture(scope="module")
def rlhf_template(msswift_processor):
    from swift import get_template

    template = get_template(msswift_processor, template_type="qwen3_5")
    template.set_mode("rlhf")
    return template


def _msswift_takes(rows: dict[str, dict], folder, template) -> set[str]:
    """The names of the rows ms-swift's load_dataset keeps and its rlhf template encodes with a rejected side."""
    from swift.dataset import load_dataset

    names = list(rows)
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps({"messages": [U, A], "id": i, **rows[n]}) + "\n" for i, n in enumerate(names)))
    try:
        train, _ = load_dataset([str(path)], strict=False, load_from_cache_file=False, remove_unused_columns=False)
    except ZeroDivisionError:  # ms-swift's loader dropped every row of the file (its split arithmetic divides by 0)
        return set()
    taken = set()
    for row in train:
        try:
            encoded = template.encode(dict(row))
        except Exception:  # noqa: BLE001 - ms-swift raises ValueError, AssertionError, KeyError, TypeError here
            continue
        if encoded.get("rejected_input_ids"):
            taken.add(names[row["id"]])
    return taken


def test_ms_swift_gives_the_same_verdict(tmp_path, rlhf_template):
    forms = {**ACCEPTED, **{n: e for n, (e, _) in REFUSED.items()}, **TEACH_NOTHING}
    # Arrow gives a file one set of columns: beside a row with rejected_response, another would read it as
    # null (dropped); beside one with rejected_messages, a row with neither would read that as null and
    # ms-swift would score its chosen conversation as the rejected one. So each such row has a file of its own.
    groups = [{n: e} for n, e in forms.items() if "rejected_messages" not in e or "rejected_response" in e]
    groups.append({n: e for n, e in forms.items() if "rejected_messages" in e and "rejected_response" not in e})
    taken = set()
    for k, group in enumerate(groups):
        (tmp_path / str(k)).mkdir()
        taken |= _msswift_takes(group, tmp_path / str(k), rlhf_template)
    assert taken == set(ACCEPTED) | set(TEACH_NOTHING)


def test_data_stats_sizes_the_rejected_response_when_both_columns_are_given(tmp_path):
    # TemplateInputs.from_dict builds rejected_messages from rejected_response when the row has it, so the
    # given rejected_messages are not what ms-swift encodes.
    from swift_ext.datasets.lengths import measure_file
    from swift_ext.datasets.template import TemplateSettings, media_settings
    from swift_ext.planner.tinymodel import ensure_model

    tiny = str(ensure_model("tiny-qwen3_6-moe"))
    settings = TemplateSettings(template="qwen3_5", tokenizer=tiny, model_dir=tiny, loss_scale="default", system=None,
                                media=media_settings({}))
    long = "word " * 300
    counted = {}
    for name, extra in {"string": {"rejected_response": long},
                        "both": {"rejected_response": long, "rejected_messages": [U, BAD]}}.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text(json.dumps({"messages": [U, A], **extra}) + "\n")
        counted[name] = measure_file(str(path), settings, use_cache=False).rejected
    assert counted["string"][0] > 300 and counted["both"] == counted["string"]


def test_bundled_dpo_data_still_passes():
    report = d.check_file(str(ROOT / "data/dpo/train.jsonl"), d.Options(task="dpo"))
    assert report.errors == 0 and report.valid_rows == report.rows > 0


@pytest.mark.parametrize("column, other", [("rejected_response", "6."), ("rejected_response", [{"role": "assistant",
                                                                                                  "content": "6."}]),
                                           ("rejected_messages", [U, {"role": "assistant", "content": "6."}])])
def test_rows_that_differ_only_in_the_rejected_side_are_not_duplicates(tmp_path, column, other):
    # Several rejected answers to one prompt and chosen answer are ordinary DPO data: one pair per row.
    first = {"rejected_response": "5."} if column == "rejected_response" else {"rejected_messages": [U, BAD]}
    rows = [{"messages": [U, A], **first}, {"messages": [U, A], column: other}, {"messages": [U, A], **first}]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = d.check_file(str(path), d.Options(task="dpo"))
    assert [i.line for i in report.issues if i.code == "W402"] == [3] and report.duplicates == 1  # a true repeat
    # and for SFT the rejected columns are not read: the rows are the same sample
    report = d.check_file(str(path), d.Options(task="sft"))
    assert [i.line for i in report.issues if i.code == "W402"] == [2, 3]


def test_dpo_duplicates_behind_the_bloom_filter_key_the_rejected_side_too(tmp_path, monkeypatch):
    # Past the exact limits the Bloom filter's candidates are confirmed by reading the file again
    # (duplicates.file_digests): with the same key, or a second rejected answer would be a repeat there.
    from swift_ext.datasets import duplicates

    monkeypatch.setattr(duplicates, "SET_DUPLICATES", 20)
    monkeypatch.setattr(duplicates, "EXACT_DUPLICATES", 50)
    monkeypatch.setattr(duplicates, "BLOOM_BITS", 256)
    rows = [{"messages": [{"role": "user", "content": f"{i} + {i}?"}, A], "rejected_response": r}
            for i in range(300) for r in ("5.", "6.")]
    rows.append(rows[101])
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = d.check_file(str(path), d.Options(task="dpo"), chunk_bytes=4096)  # later chunks: Bloom candidates
    assert [i.line for i in report.issues if i.code == "W402"] == [len(rows)] and report.duplicates == 1


IU = {"role": "user", "content": "<image>What shape is this?"}
SQUARE, CIRCLE = "data/media/red_square.png", "data/media/blue_circle.png"


def _media_issues(tmp_path, extra: dict, deep: bool = False) -> list[tuple[str, str]]:
    path = tmp_path / "mm-dpo.jsonl"
    path.write_text(json.dumps({"messages": [IU, {"role": "assistant", "content": "A square."}], "images": [SQUARE],
                               **extra}) + "\n")
    report = d.check_file(str(path), d.Options(task="dpo", media_root=str(ROOT), deep=deep))
    return [(i.code, i.path) for i in report.issues if i.severity == "error"]


NO = {"role": "assistant", "content": "A circle."}
MEDIA_ACCEPTED = {
    "rejected_response shares the chosen images": {"rejected_response": "A circle."},
    "rejected_messages with its own images": {"rejected_messages": [IU, NO], "rejected_images": [CIRCLE]},
    "rejected_messages with an image part": {"rejected_messages": [
        {"role": "user", "content": [{"type": "image", "image": CIRCLE}, {"type": "text", "text": "What shape?"}]}, NO]},
    "rejected_response with its own images": {"rejected_response": "A circle.", "rejected_images": [CIRCLE]},
}
MEDIA_REFUSED = {
    "missing rejected image": ({"rejected_messages": [IU, NO], "rejected_images": ["nope.png"]},
                               ("E301", "rejected_images[0]")),
    "missing image in a rejected part": ({"rejected_messages": [
        {"role": "user", "content": [{"type": "image", "image": "nope.png"}, {"type": "text", "text": "What?"}]}, NO]},
        ("E301", "rejected_messages[0].content[0].image")),
    # TemplateInputs.from_dict lends the chosen side's images only when the row has no rejected_messages
    "rejected_messages' tag without rejected_images": ({"rejected_messages": [IU, NO]}, ("E103", "rejected_images")),
    "more rejected images than tags": ({"rejected_messages": [IU, NO], "rejected_images": [CIRCLE, SQUARE]},
                                       ("E103", "rejected_images")),
    "a rejected answer's own tag beside the lent images": ({"rejected_response": "<image>A circle."},
                                                          ("E103", "rejected_response")),
    "bad rejected_images type": ({"rejected_messages": [IU, NO], "rejected_images": 5}, ("E304", "rejected_images")),
}


@pytest.mark.parametrize("name", MEDIA_ACCEPTED)
def test_rejected_media_ms_swift_loads_pass(tmp_path, name):
    assert _media_issues(tmp_path, MEDIA_ACCEPTED[name], deep=True) == []


@pytest.mark.parametrize("name", MEDIA_REFUSED)
def test_rejected_media_is_checked_as_the_chosen_side_media_are(tmp_path, name):
    extra, finding = MEDIA_REFUSED[name]
    assert _media_issues(tmp_path, extra) == [finding]


def test_rejected_media_is_decoded_with_deep(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    extra = {"rejected_messages": [IU, NO], "rejected_images": [str(broken)]}
    assert _media_issues(tmp_path, extra) == []
    assert _media_issues(tmp_path, extra, deep=True) == [("E305", "rejected_images[0]")]


def test_ms_swift_takes_the_rejected_images_as_the_check_does():
    # The rejected inputs ms-swift's template encodes (template_inputs.py TemplateInputs.from_dict): rejected_images
    # when given; the chosen images only when the row has no rejected_messages.
    from swift.template.template_inputs import TemplateInputs

    def rejected_images(extra):
        row = {"messages": [IU, {"role": "assistant", "content": "A square."}], "images": [SQUARE], **extra}
        return TemplateInputs.from_dict(row).rejected.images

    assert rejected_images({"rejected_response": "A circle."}) == [SQUARE]
    assert rejected_images({"rejected_response": "A circle.", "rejected_images": [CIRCLE]}) == [CIRCLE]
    assert rejected_images({"rejected_messages": [IU, NO], "rejected_images": [CIRCLE]}) == [CIRCLE]
    assert not rejected_images({"rejected_messages": [IU, NO]})
