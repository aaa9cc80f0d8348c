"""Dataset validator: one test per code (data/bad/), the good bundled data, the CLI contract, chunked
parallel runs, ms-swift's own loader for comparison, and a fuzz test that it always returns a report."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, swift_ext
from swift_ext import data as d

BAD = sorted((ROOT / "data" / "bad").glob("*.jsonl"))
TASK_OF = {"E202": "grpo", "E203": "grpo", "E204": "dpo", "E205": "kto"}
DEEP = {"E305", "E306", "E307"}


def check(path, **opts) -> d.Report:
    return d.check_file(str(path), d.Options(**opts))


def test_every_code_has_a_bad_file():
    # E004 needs a 64 MiB line and W501 a tokenizer: both are generated in their own tests below
    covered = {p.name[:4] for p in BAD} | {"E004", "W501"}
    assert covered == set(d.CODES)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_file_reports_its_code_on_the_right_line(path):
    code = path.name[:4]
    report = check(path, task=TASK_OF.get(code, "sft"), deep=code in DEEP)
    last_line = len(path.read_bytes().splitlines())
    hits = [i for i in report.issues if i.code == code]
    assert hits, [i.render() for i in report.issues]
    assert hits[-1].line == last_line  # the faulty row is the file's last
    assert all(i.file == str(path) for i in report.issues)
    if d.CODES[code][0] == "error":
        assert report.errors >= 1 and report.valid_rows < report.rows
    else:
        assert report.errors == 0


def test_line_too_large(tmp_path):
    path = tmp_path / "huge.jsonl"
    with open(path, "w") as fh:
        fh.write('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}\n')
        fh.write('{"messages": [{"role": "user", "content": "' + "x" * (d.MAX_LINE + 10) + '"}]}\n')
    report = check(path)
    assert [(i.code, i.line) for i in report.issues] == [("E004", 2)] and report.valid_rows == 1


@pytest.mark.parametrize("path, opts", [
    ("data/sft/train.jsonl", {}), ("data/sft/val.jsonl", {}), ("data/mm/train.jsonl", {"deep": True}),
    ("data/grpo/train.jsonl", {"task": "grpo"}), ("data/grpo/val.jsonl", {"task": "grpo"}),
    ("data/dpo/train.jsonl", {"task": "dpo", "deep": True}),
])
def test_good_bundled_data_passes(path, opts):
    report = check(ROOT / path, **opts)
    assert report.errors == 0 and report.valid_rows == report.rows > 0, [i.render() for i in report.issues]
    assert not [i for i in report.issues if i.severity == "warning"]


def test_multimodal_media_counted_and_decoded():
    report = check(ROOT / "data/mm/train.jsonl", deep=True)
    assert report.media == {"images": 5, "videos": 1}
    assert report.roles["tool_call"] == 1 and report.roles["tool_response"] == 1


def test_file_ms_swift_accepts_is_flagged_with_line_numbers(tmp_path):
    """ms-swift's loader takes this file without a word; the validator names the two broken rows."""
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "red_square.png").write_bytes((ROOT / "data/media/red_square.png").read_bytes())
    rows = []
    for i in range(6):
        rows.append({"messages": [{"role": "user", "content": f"<image>q{i}"}, {"role": "assistant", "content": f"a{i}"}],
                     "images": [f"media/{'red_square' if i != 3 else 'missing_cat'}.png"],
                     "solution": "1" if i != 4 else 2})
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from swift.dataset import load_dataset

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        train, _ = load_dataset([str(path)], strict=False, load_from_cache_file=False)
    finally:
        os.chdir(cwd)
    assert len(train) == 6  # accepted whole
    report = check(path)
    assert [(i.code, i.line, i.field) for i in report.issues if i.severity == "error"] == [
        ("E301", 4, "images[0]"), ("E110", 5, "solution")]


def test_mixed_content_types_across_rows(tmp_path):
    path = tmp_path / "mixed.jsonl"
    text = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                          {"role": "assistant", "content": "ok"}]}
    path.write_text("\n".join(json.dumps(r) for r in [text, text, parts, text, parts]) + "\n")
    report = check(path)
    assert [(i.code, i.line) for i in report.issues if i.code == "E110"] == [("E110", 3), ("E110", 5)]
    assert report.valid_rows == 3


def test_chunked_parallel_run_matches_serial(tmp_path):
    path = tmp_path / "many.jsonl"
    rows = []
    for i in range(3000):
        row = {"messages": [{"role": "user", "content": f"q{i % 500}"}, {"role": "assistant", "content": f"a{i % 500}"}]}
        if i % 301 == 0:
            row["messages"][0]["role"] = "usr"
        if i % 977 == 0:
            row = "not an object"
        rows.append(json.dumps(row))
    path.write_text("\r\n".join(rows) + "\r\n")
    serial = d.check_file(str(path), d.Options(), jobs=1)
    parallel = d.check_file(str(path), d.Options(), jobs=2, chunk_bytes=4096)
    assert len(d.chunk_ranges(str(path), 4096)) > 10
    key = lambda r: [(i.line, i.code, i.field) for i in r.issues]  # noqa: E731
    assert key(parallel) == key(serial)
    assert (parallel.rows, parallel.valid_rows, parallel.duplicates) == (serial.rows, serial.valid_rows, serial.duplicates)
    assert serial.rows == 3000 and serial.duplicates > 2400  # ~500 distinct conversations repeated


def test_bom_crlf_blank_lines_and_json_arrays(tmp_path):
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(row).encode() + b"\r\n\r\n\n" + json.dumps(row).encode())
    report = check(path)
    assert report.rows == 2 and report.errors == 0
    arr = tmp_path / "rows.json"
    arr.write_text(json.dumps([row, {"messages": []}]))
    report = check(arr)
    assert report.rows == 2 and [(i.code, i.line) for i in report.issues] == [("E101", 2)]


def test_sample_suffix_is_accepted(tmp_path):
    result = swift_ext("data", "check", f"{ROOT}/data/sft/train.jsonl#10")
    assert result.returncode == 0 and "sample suffix" in result.stdout


def test_cli_exit_codes_and_json_lists_every_issue(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps({"messages": [{"role": "robot", "content": "x"}]}) + "\n" for _ in range(30)))
    text = swift_ext("data", "check", path)
    assert text.returncode == 1 and "... 10 more E106" in text.stdout
    out = swift_ext("data", "check", path, "--format", "json")
    data = json.loads(out.stdout)
    assert out.returncode == 1 and data["rows"] == 30 and data["valid_rows"] == 0
    assert len([i for i in data["issues"] if i["code"] == "E106"]) == 30
    assert set(data["issues"][0]) == {"file", "line", "code", "severity", "field", "message"}
    assert swift_ext("data", "check", ROOT / "data/sft/train.jsonl").returncode == 0
    usage = swift_ext("data", "check", tmp_path)
    assert usage.returncode == 2 and "is a directory" in usage.stderr and "Traceback" not in usage.stderr
    assert swift_ext("data", "check", tmp_path / "missing.jsonl").returncode == 2
    assert swift_ext("data", "check", path, "--task", "rm").returncode == 2


def test_write_clean(tmp_path):
    src = ROOT / "data/bad/E106-unknown-role.jsonl"
    mixed = tmp_path / "in.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]})
    mixed.write_text(good + "\n" + src.read_text() + good.replace("hi", "hey") + "\n")
    before = mixed.read_bytes()
    out = tmp_path / "clean.jsonl"
    result = swift_ext("data", "check", mixed, "--write-clean", out)
    assert result.returncode == 1 and "wrote 2 valid rows" in result.stdout
    assert out.read_text().count("\n") == 2 and "usr" not in out.read_text()
    assert mixed.read_bytes() == before
    again = swift_ext("data", "check", mixed, "--write-clean", out)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_recipe_option_and_plan_integration():
    result = swift_ext("data", "check", "--recipe", ROOT / "recipes/smoke/tiny-grpo.yaml")
    assert result.returncode == 0 and "data/grpo/train.jsonl" in result.stdout
    hub = swift_ext("data", "check", "--recipe", ROOT / "recipes/qwen3_6/sft-lora-4x32g.yaml")
    assert hub.returncode == 0 and "hub dataset, not checked" in hub.stdout
    plan = swift_ext("plan", ROOT / "recipes/smoke/tiny-sft.yaml", "args.dataset=[data/bad/E106-unknown-role.jsonl]")
    assert plan.returncode == 2 and "E106 unknown-role" in plan.stderr


def test_length_check_with_the_real_tokenizer(tmp_path):
    from swift_ext.tinymodel import ensure_model

    model = ensure_model("tiny-qwen3_6-moe")
    path = tmp_path / "long.jsonl"
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "word " * n}]}
            for n in (10, 400)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = d.check_file(str(path), d.Options(max_length=128, tokenizer=str(model)))
    assert [(i.code, i.line) for i in report.issues] == [("W501", 2)]
    assert report.lengths[0] < 128 < report.lengths[1]


def test_arbitrary_bytes_and_deep_nesting(tmp_path):
    path = tmp_path / "junk.jsonl"
    path.write_bytes(os.urandom(5000) + b"\n" + b"[" * 100000 + b"\n" + b'{"messages": [' * 5000 + b"\n")
    report = check(path)
    assert report.rows >= 3 and report.valid_rows == 0 and report.errors == report.rows


VALID = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "<image>q"},
                      {"role": "assistant", "content": "a"}], "images": ["data/media/red_square.png"]}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_always_returns_a_report_and_fast_path_agrees(tmp_path, data):
    raw = json.dumps(VALID).encode()
    mutation = data.draw(st.sampled_from(["bytes", "json"]))
    if mutation == "bytes":
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:pos] + data.draw(st.binary(min_size=0, max_size=8)) + raw[pos + 1:]
        row = None
    else:
        row = json.loads(raw)
        target = data.draw(st.sampled_from(["role", "content", "images", "drop", "extra"]))
        value = data.draw(st.one_of(st.none(), st.integers(), st.text(max_size=20), st.lists(st.text(max_size=5), max_size=3),
                                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
        i = data.draw(st.integers(0, 2))
        if target == "role":
            row["messages"][i]["role"] = value
        elif target == "content":
            row["messages"][i]["content"] = value
        elif target == "images":
            row["images"] = value
        elif target == "drop":
            del row["messages"][i]
        else:
            row[data.draw(st.text(min_size=1, max_size=8))] = value
        raw = json.dumps(row).encode()
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(raw + b"\n")
    report = d.check_file(str(path), d.Options(media_root=str(ROOT)))
    assert report.rows == len([line for line in raw.split(b"\n") if line.strip()])
    assert report.valid_rows <= report.rows
    if row is not None:  # the fast path may only accept rows the full check finds nothing wrong with
        checker = d.RowChecker(str(path), d.Options(media_root=str(ROOT)))
        checker._exists["data/media/red_square.png"] = 0
        fast = checker.fast(row, d.ChunkResult(0))
        full = d.ChunkResult(0)
        d.RowChecker(str(path), d.Options(media_root=str(ROOT))).check(row, 1, full)
        if fast:
            assert full.issues == [] and full.valid == 1
