"""Dataset validator: one test per code (data/bad/), the good bundled data, the CLI contract, chunked
parallel runs, ms-swift's own loader for comparison, and a fuzz test that it always returns a report."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, swift_ext, swift_ext_in_process
from swift_ext.datasets import check as d
from swift_ext.datasets import duplicates, fastpath, mapping, mediacheck, options, reader

BAD = sorted((ROOT / "data" / "bad").glob("*.jsonl"))
TASK_OF = {"E202": "grpo", "E203": "grpo", "W204": "grpo", "E204": "dpo", "E205": "kto", "E206": "kto", "W403": "kto",
           "E208": "generative_reranker", "W206": "reranker", "E207": "seq_cls", "W207": "seq_cls"}
OPTS_OF = {"W207": {"num_labels": 2}}  # a truncated float label is said only where the head is known single-label
DEEP = {"E305", "E306", "E307"}
FILE_LEVEL = {"E005", "E006", "E206", "W403"}  # one finding for the whole file, at line 0


def check(path, **opts) -> d.DataCheckReport:
    return d.check_file(str(path), d.Options(**opts))


def test_every_code_has_a_bad_file():
    # E004 needs a 2 GiB line and W501 a tokenizer: both are generated in their own tests below
    covered = {p.name[:4] for p in BAD} | {"E004", "W501"}
    assert covered == set(d.CODES)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_file_reports_its_code_on_the_right_line(path):
    code = path.name[:4]  # media paths in data/bad/ are relative to it: ROOT_IMAGE_DIR=data/bad, as it were
    report = check(path, task=TASK_OF.get(code, "sft"), deep=code in DEEP, media_root=str(path.parent),
                   **OPTS_OF.get(code, {}))
    last_line = 0 if code in FILE_LEVEL else len(path.read_bytes().splitlines())
    hits = [i for i in report.issues if i.code == code]
    assert hits, [i.render() for i in report.issues]
    assert hits[-1].line == last_line  # the faulty row is the file's last
    assert all(i.file == str(path) for i in report.issues)
    if d.CODES[code][0] == "error":
        assert report.errors >= 1 and (report.valid_rows < report.rows or code in FILE_LEVEL)
    else:
        assert report.errors == 0


def test_blank_solution_warns_and_a_missing_one_is_refused(tmp_path):
    # ms-swift's MathAccuracy (accuracy, cosine) scores a blank solution 0 and runs; None (a row without the column)
    # or a number raises TypeError in re.search at the first reward call.
    path = tmp_path / "grpo.jsonl"
    rows = [{"solution": ""}, {"solution": " "}, {}, {"solution": 4}, {"solution": "$4$"}]
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": "2+2?"}], **r}) + "\n" for r in rows))
    report = check(path, task="grpo")
    assert sorted((i.code, i.line) for i in report.issues if i.code in ("E203", "W204")) == [("E203", 3), ("E203", 4), ("W204", 1), ("W204", 2)]


def test_line_too_large(tmp_path):
    path = tmp_path / "huge.jsonl"
    with open(path, "w") as fh:
        fh.write('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}\n')
        fh.write('{"messages": [{"role": "user", "content": "' + "x" * (options.MAX_LINE + 10) + '"}]}\n')
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
        report = check(path)  # from the same working directory: where ms-swift looks for media
    finally:
        os.chdir(cwd)
    assert len(train) == 6  # accepted whole
    assert [(i.code, i.line, i.path) for i in report.issues if i.severity == "error"] == [
        ("E110", 1, "solution"), ("E301", 4, "images[0]")]


def test_mixed_content_types_across_rows(tmp_path):
    """A string content next to a list of parts mixes `messages`' contents (in one row too): only a string
    that reads as JSON changes on the way in, so only the answer "4" is E110 -- at its row, the first such."""
    def row(user, answer):
        return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}

    parts = [{"type": "text", "text": "hi"}]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [row("hi", "ok"), row(parts, "ok"), row("hi", "no")]))
    assert_typed_matches_reference(path, d.Options())
    assert check(path).errors == 0
    path.write_text("".join(json.dumps(r) + "\n" for r in [row("hi", "ok"), row(parts, "ok"), row("2+2?", "4"),
                                                            row("hi", "true"), row("hey", "ok")]))
    report = assert_typed_matches_reference(path, d.Options())
    assert [(i.code, i.line, i.path) for i in report.issues] == [("E110", 3, "messages")]
    assert '"4" here arrives as 4 (number); 1 more row' in report.issues[0].message
    assert report.valid_rows == 4
    from swift.dataset import load_dataset

    answers = lambda: [r["messages"][-1]["content"] for r in load_dataset(  # noqa: E731
        [str(path)], strict=False, load_from_cache_file=False, remove_unused_columns=False)[0]]
    assert answers() == ["ok", "ok", 4, True, "ok"]  # ms-swift's loader: the two E110 strings changed
    # Message keys that differ in datasets' first batch make each message one Json value: contents arrive as
    # written (find_mixed_struct_types_field_paths), so nothing to say.
    path.write_text("".join(json.dumps(r) + "\n" for r in [row(parts, "4"), {"messages": [
        {"role": "user", "content": "q", "loss": None}, {"role": "assistant", "content": "5", "loss": True}]}]))
    assert check(path).errors == 0
    assert answers() == ["4", "5"]


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
    assert len(reader.chunk_ranges(str(path), 4096)) > 10
    key = lambda r: [(i.line, i.code, i.path) for i in r.issues]  # noqa: E731
    assert key(parallel) == key(serial)
    assert (parallel.rows, parallel.valid_rows, parallel.duplicates) == (serial.rows, serial.valid_rows, serial.duplicates)
    assert serial.rows == 3000 and serial.duplicates > 2400  # ~500 distinct conversations repeated


def test_a_type_change_past_the_reference_rows_and_across_chunks(tmp_path):
    """Columns the first 1000 rows never type, and types first seen in different chunks: E110 is the same
    serial, in parallel chunks, and through the reference check; `images` first as a list (the typed path
    after the reference rows) then as a path is no error."""
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
            for i in range(1600)]
    rows[1100]["solution"] = "x^2"
    rows[1200]["solution"] = "4"  # the first string that reads as JSON: E110 here
    rows[1500]["solution"] = 4  # in a later chunk: the column is mixed only from here
    rows[1550]["solution"] = "[1, 2]"
    (tmp_path / "a.png").write_bytes((ROOT / "data/media/red_square.png").read_bytes())
    for i, image in ((1300, ["a.png"]), (1400, "a.png")):
        rows[i]["messages"][0]["content"] = "<image>" + rows[i]["messages"][0]["content"]
        rows[i]["images"] = image
    path = tmp_path / "late.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    opts = d.Options(media_root=str(tmp_path))
    serial = assert_typed_matches_reference(path, opts)
    parallel = d.check_file(str(path), opts, jobs=2, chunk_bytes=4096)
    assert len(reader.chunk_ranges(str(path), 4096)) > 10
    assert as_json(parallel) == as_json(serial)
    assert [(i.line, i.code, i.path) for i in serial.issues] == [(1201, "E110", "solution")]
    assert "1 more row" in serial.issues[0].message and serial.valid_rows == 1599


def test_bom_crlf_blank_lines_and_json_arrays(tmp_path):
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(row).encode() + b"\r\n\r\n\n" + json.dumps(row).encode())
    report = check(path)
    assert report.rows == 2 and report.errors == 0
    # the second passes (duplicates, E110) read the first row without its BOM, as the row checks do
    assert [(i.code, i.line) for i in report.issues] == [("W402", 4)]
    first, second = dict(row, solution="4"), dict(row, solution=4)
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(first).encode() + b"\n" + json.dumps(second).encode())
    assert [(i.code, i.line, i.path) for i in check(path).issues] == [("E110", 1, "solution"), ("W402", 2, "messages")]
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
    # plan's side in this process (what it finds, not the CLI process; `data check` above runs as a user's)
    plan = swift_ext_in_process("plan", ROOT / "recipes/smoke/tiny-sft.yaml",
                                "args.dataset=[data/bad/E106-unknown-role.jsonl]")
    assert plan.returncode == 2 and "E106 unknown-role" in plan.stderr


def test_plan_says_a_parquet_dataset_was_not_checked(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"query": ["q"], "response": ["r"]}), path)
    plan = swift_ext_in_process("plan", ROOT / "recipes/smoke/tiny-sft.yaml", f"args.dataset=[{path}]")
    assert plan.returncode == 0, plan.stderr
    assert f"{path}: ms-swift reads it with the `parquet` reader" in plan.stdout and "rows are not checked" in plan.stdout
    assert "0/0 rows valid" not in plan.stdout


def test_length_check_with_the_real_tokenizer(tmp_path):
    from swift_ext.planner.tinymodel import ensure_model

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
    junk = b"{" + os.urandom(5000).replace(b"\x00", b"")  # starts like JSON: checked line by line
    path.write_bytes(junk + b"\n" + b"[" * 100000 + b"\n" + b'{"messages": [' * 5000 + b"\n")
    report = check(path)
    assert report.rows >= 3 and report.valid_rows == 0 and report.errors == report.rows
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\x00\x01" + os.urandom(5000))
    report = check(binary)
    assert [(i.code, i.line) for i in report.issues] == [("E005", 0)] and "binary" in report.issues[0].message


VALID = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "<image>q"},
                      {"role": "assistant", "content": "a"}], "images": ["data/media/red_square.png"]}


def as_json(report: d.DataCheckReport) -> str:
    return json.dumps(report.as_dict(), ensure_ascii=False)


def assert_typed_matches_reference(path, opts: d.Options, **kwargs) -> d.DataCheckReport:
    """The typed fast path and the reference (every row through RowChecker.check): byte-identical output."""
    typed = d.check_file(str(path), opts, **kwargs)
    reference = d.check_file(str(path), opts, typed=False)
    assert as_json(typed) == as_json(reference)
    return typed


ROLES = st.sampled_from(["system", "user", "assistant", "tool", "human", "usr", "", None, 3])
TEXTS = st.one_of(st.sampled_from(["", "q", "<image>", "<image>q", "<video>v", "<think>x</think>a", "</think>",
                                   "<audio>", "a<image><image>"]), st.text(max_size=12))
MEDIA = st.one_of(st.none(), st.lists(st.sampled_from(["data/media/red_square.png", "data/media/missing.png",
                                                       "https://x.org/a.png", "data", ""]), max_size=3),
                  st.sampled_from(["data/media/red_square.png", 7]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_always_returns_a_report_and_typed_path_matches_reference(tmp_path, data):
    lines = []
    for _ in range(data.draw(st.integers(1, 6))):
        if data.draw(st.booleans()):
            lines.append(json.dumps(VALID).encode())  # repeats: duplicates, and a type for the next rows
        row = json.loads(json.dumps(VALID))
        row["messages"] = [{"role": data.draw(ROLES), "content": data.draw(st.one_of(TEXTS, st.none(), st.integers()))}
                           for _ in range(data.draw(st.integers(0, 4)))] if data.draw(st.booleans()) else row["messages"]
        for key in ("images", "videos"):
            if data.draw(st.booleans()):
                row[key] = data.draw(MEDIA)
        if data.draw(st.booleans()):
            row[data.draw(st.sampled_from(["id", "solution", "objects", "tools", "loss"]))] = data.draw(
                st.one_of(st.none(), st.integers(), st.text(max_size=4)))
        raw = json.dumps(row).encode()
        if data.draw(st.integers(0, 5)) == 0:  # byte damage
            pos = data.draw(st.integers(0, len(raw) - 1))
            raw = raw[:pos] + data.draw(st.binary(max_size=6)).replace(b"\n", b"") + raw[pos + 1:]
        lines.append(raw)
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = assert_typed_matches_reference(path, d.Options(media_root=str(ROOT)))
    if report.layout == "jsonl":
        assert report.rows == len([line for line in lines if line.strip()])
    assert report.valid_rows <= report.rows


def fuzz_corpus(path, rows: int = 4000, seed: int = 7):
    """A fixed corpus of mostly valid rows with every kind of damage mixed in: the typed path's reference."""
    import random

    rng = random.Random(seed)
    good = [json.loads(json.dumps(VALID)), {"messages": [{"role": "user", "content": "hi"},
                                                         {"role": "assistant", "content": "ok"}]}]
    out = []
    for i in range(rows):
        row = json.loads(json.dumps(rng.choice(good)))
        row["messages"][-1]["content"] += str(rng.randrange(rows // 2))  # duplicates too
        damage = rng.randrange(24)
        if damage == 0:
            row["messages"][rng.randrange(len(row["messages"]))]["role"] = rng.choice(["gpt", "tool", "robot", "user"])
        elif damage == 1:
            row["messages"][-1]["content"] = rng.choice(["", "<think>a", "x</think>", "<think>a</think>b", 5, None])
        elif damage == 2:
            row["images"] = rng.choice([[], ["data/media/missing.png"], "data/media/red_square.png", None,
                                        ["data/media/red_square.png"] * 2, ["https://e.org/a.png"]])
        elif damage == 3:
            row["messages"][0]["content"] = [{"type": "text", "text": "<image>hi"}]
        elif damage == 4:
            row[rng.choice(["solution", "objects", "id", "tools"])] = rng.choice([1, "x", None, {"bbox": [[1, 2]]}])
        elif damage == 5:
            row["messages"][0]["loss"] = False
        elif damage == 6:
            row["messages"] = row["messages"][::-1]
        elif damage == 10:  # other layouts: in a file whose rows have `messages`, ms-swift drops these
            user, answer = row["messages"][-2]["content"], row.pop("messages")[-1]["content"]
            row.update(rng.choice([{"instruction": user, "input": "", "output": answer}, {"query": user, "response": answer},
                                   {"conversations": [{"from": "human", "value": user}, {"from": "gpt", "value": answer}]}]))
        if i > 1500 and rng.random() < 0.05:  # a column first seen past the reference rows, in later chunks
            row["label"] = rng.choice([True, "yes", 1])
        line = json.dumps(row, ensure_ascii=rng.random() < 0.5)
        if damage == 7:
            line = line[: rng.randrange(len(line))]
        elif damage == 8:
            line = ""
        elif damage == 9:
            line = line.replace('"a', '"\\ud800a', 1)  # a lone surrogate: the C twin leaves it to the full check
        out.append(line)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def test_typed_path_matches_reference_on_bad_files_and_a_fuzz_corpus(tmp_path):
    for path in BAD:
        code = path.name[:4]
        for deep in (False, True):
            assert_typed_matches_reference(path, d.Options(task=TASK_OF.get(code, "sft"), deep=deep))
    corpus = fuzz_corpus(tmp_path / "corpus.jsonl")
    opts = d.Options(media_root=str(ROOT))
    report = assert_typed_matches_reference(corpus, opts)
    assert 2500 < report.valid_rows < report.rows == 4000 - len([1 for x in corpus.read_text().split("\n")[:-1] if not x])
    assert report.duplicates > 500 and len(report.counts()) >= 10
    chunked = d.check_file(str(corpus), opts, jobs=2, chunk_bytes=20_000)
    assert as_json(chunked) == as_json(report)


def tiny_png_base64() -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (2, 2), (255, 0, 0)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_media_entries_ms_swift_loads_are_accepted(tmp_path, monkeypatch):
    """Each entry ms-swift's own load_image opens: raw base64 (long, with '/' early; and short), a data:
    URI, a `~/` path, a path relative to the working directory; the validator accepts each, deep too."""
    import base64
    import io

    from PIL import Image
    from swift.template.vision_utils import load_image

    buf = io.BytesIO()
    Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(buf, format="JPEG", quality=95)
    jpeg = base64.b64encode(buf.getvalue()).decode()
    assert len(jpeg) > mediacheck.BASE64_AFTER and "/" in jpeg[:64]  # the case the old heuristic called a path
    tiny = tiny_png_base64()
    assert len(tiny) < mediacheck.BASE64_AFTER
    home = tmp_path / "home"
    (home / "pics").mkdir(parents=True)
    (home / "pics" / "a.png").write_bytes((ROOT / "data/media/red_square.png").read_bytes())
    monkeypatch.setenv("HOME", str(home))
    workdir = tmp_path / "work"
    (workdir / "imgs").mkdir(parents=True)
    (workdir / "imgs" / "b.png").write_bytes((ROOT / "data/media/blue_circle.png").read_bytes())
    monkeypatch.chdir(workdir)
    entries = [jpeg, tiny, "data:image/png;base64," + tiny, "~/pics/a.png", "imgs/b.png"]
    for entry in entries:
        assert load_image(entry).size[0] > 0  # ms-swift opens it
    data_dir = tmp_path / "elsewhere"
    data_dir.mkdir()
    path = data_dir / "mm.jsonl"
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": "<image>what?"},
                                                     {"role": "assistant", "content": f"a{i}"}], "images": [e]}) + "\n"
                            for i, e in enumerate(entries)))
    for deep in (False, True):
        report = assert_typed_matches_reference(path, d.Options(deep=deep))
        assert report.errors == 0 and report.valid_rows == 5, [i.render() for i in report.issues]
    bad = data_dir / "bad.jsonl"
    bad.write_text("".join(json.dumps({"messages": [{"role": "user", "content": "<image>what?"},
                                                    {"role": "assistant", "content": f"a{i}"}], "images": [e]}) + "\n"
                           for i, e in enumerate(["imgs/missing.png", "~/pics/none.png", "data:image/png;base64,@@",
                                                  "!" * 3000, tiny[:16] + "A" * 100])))
    report = d.check_file(str(bad), d.Options(deep=True))
    assert [(i.line, i.code) for i in report.issues] == [(1, "E301"), (2, "E301"), (3, "E308"), (4, "E308"), (5, "E305")]


def test_file_layouts_as_ms_swift_reads_them(tmp_path):
    """JSON Lines under a .json name, a JSON array under .jsonl, gzip content under .jsonl: ms-swift's loader
    takes each, and so does the validator, with exact line numbers; what it refuses is one error per file."""
    import gzip

    from swift.dataset import load_dataset

    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
    bad = {"messages": [{"role": "usr", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
    jsonl = "".join(json.dumps(r) + "\n" for r in (good, bad, good | {"images": []}))
    accepted = {"lines.json": jsonl.encode(), "array.jsonl": json.dumps([good, bad]).encode(),
                "packed.jsonl": gzip.compress(jsonl.encode())}
    refused = {"rows.jsonl.gz": gzip.compress(jsonl.encode()), "table.jsonl": b"query,response\nhi,ok\nhey,yo\n",
               "empty.jsonl": b"", "blank.jsonl": b"\n  \n"}
    for name, content in (accepted | refused).items():
        (tmp_path / name).write_bytes(content)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for name in accepted:
            train, _ = load_dataset([name], strict=False, load_from_cache_file=False)
            assert len(train) == (1 if name == "array.jsonl" else 2), name  # the `usr` row dropped
        for name in refused.keys() - {"rows.jsonl.gz"}:  # that one asks the hub for a dataset called 'gz'
            with pytest.raises(Exception):  # noqa: B017 - ms-swift raises ValueError, StopIteration, ...
                load_dataset([name], strict=False, load_from_cache_file=False)
    finally:
        os.chdir(cwd)
    for name in accepted:
        report = assert_typed_matches_reference(tmp_path / name, d.Options())
        assert [(i.line, i.code) for i in report.issues] == [(2, "E106")], name
        assert report.rows == (3 if name != "array.jsonl" else 2)
    expected = {"rows.jsonl.gz": "E005", "table.jsonl": "E005", "empty.jsonl": "E006", "blank.jsonl": "E006"}
    for name, code in expected.items():
        report = d.check_file(str(tmp_path / name), d.Options())
        assert [(i.line, i.code) for i in report.issues] == [(0, code)], name
    parquet = tmp_path / "table.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([good]), parquet)
    report = d.check_file(str(parquet), d.Options())
    assert report.errors == 0 and "not checked" in report.notes[0]
    (tmp_path / "p.jsonl").write_bytes(parquet.read_bytes())
    assert "Parquet" in d.check_file(str(tmp_path / "p.jsonl"), d.Options()).issues[0].message
    result = swift_ext("data", "check", tmp_path / "table.jsonl")
    assert result.returncode == 1 and result.stdout.count("E005") >= 1 and "E001" not in result.stdout
    out = tmp_path / "clean.jsonl"
    result = swift_ext("data", "check", tmp_path / "packed.jsonl", "--write-clean", out)
    assert "wrote 2 valid rows" in result.stdout and out.read_text() == "".join(
        json.dumps(r) + "\n" for r in (good, good | {"images": []}))


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=12),
       block=st.integers(1, 17), max_line=st.integers(0, 30), trailing=st.booleans())
def test_split_lines_one_item_per_line(lines, block, max_line, trailing):
    data = b"\n".join(lines) + (b"\n" if trailing and lines else b"")
    blocks = [data[i:i + block] for i in range(0, len(data), block)]
    got = list(reader.split_lines(blocks, max_line))
    want = data.split(b"\n")
    if want[-1] == b"":
        want.pop()  # the newline at the end of the file ends the last line, it does not start one
    assert len(got) == len(want)
    for item, line in zip(got, want, strict=True):
        if isinstance(item, int):  # too long to hold: its length
            assert item == len(line) > max_line
        else:  # held: never pieced together past max_line (a line inside one block is not copied)
            assert item == line and len(line) <= max(max_line, block)


def test_long_line_keeps_line_numbers(tmp_path):
    """A 70 MB line (over the old 64 MiB cap) is one row, and the rows after it keep their line numbers."""
    ok = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]})
    path = tmp_path / "long.jsonl"
    with open(path, "w") as fh:
        fh.write(ok + "\n")
        fh.write(json.dumps({"messages": [{"role": "user", "content": "x" * (70 << 20)},
                                          {"role": "assistant", "content": "long"}]}) + "\n")
        fh.write(ok.replace("user", "usr") + "\n" + ok.replace("ok", "fine") + "\n")
    report = d.check_file(str(path), d.Options(), jobs=2, chunk_bytes=1 << 20)
    assert (report.rows, report.valid_rows) == (4, 3)
    assert [(i.line, i.code) for i in report.issues] == [(3, "E106")]


def test_line_over_the_limit_is_one_row(tmp_path, monkeypatch):
    monkeypatch.setattr(options, "MAX_LINE", 1000)  # the real limit is Arrow's 2 GiB; serial run, so it applies
    ok = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]})
    path = tmp_path / "huge.jsonl"
    path.write_text(ok + "\n" + json.dumps({"messages": [{"role": "user", "content": "x" * 5000}]}) + "\n"
                    + ok.replace("user", "usr") + "\n")
    report = d.check_file(str(path), d.Options(), chunk_bytes=256)
    assert [(i.code, i.line) for i in report.issues] == [("E004", 2), ("E106", 3)] and report.rows == 3


def test_duplicates_compare_media_and_are_exact_behind_the_bloom_filter(tmp_path, monkeypatch):
    def row(i, image):
        return json.dumps({"messages": [{"role": "user", "content": f"<image>what is {i}?"},
                                        {"role": "assistant", "content": "a shape"}], "images": [image]})

    same_prompt = tmp_path / "mm.jsonl"
    same_prompt.write_text(row(1, "data/media/red_square.png") + "\n" + row(1, "data/media/blue_circle.png") + "\n"
                           + row(1, "data/media/red_square.png") + "\n")
    report = d.check_file(str(same_prompt), d.Options(media_root=str(ROOT)))
    assert [(i.line, i.code) for i in report.issues] == [(3, "W402")] and report.duplicates == 1
    # Past EXACT_DUPLICATES distinct rows the Bloom filter takes over; a tiny one hits on most rows, and
    # the second pass must still report exactly the true duplicates.
    monkeypatch.setattr(duplicates, "SET_DUPLICATES", 20)  # a set, then numpy arrays sorted at the end, then a Bloom filter
    monkeypatch.setattr(duplicates, "EXACT_DUPLICATES", 50)
    monkeypatch.setattr(duplicates, "BLOOM_BITS", 256)
    many = tmp_path / "many.jsonl"
    lines = [row(i, "data/media/red_square.png") for i in range(3000)]
    repeats = {500: 7, 1500: 1200, 2999: 10}  # line index -> the earlier row it repeats
    for at, earlier in repeats.items():
        lines[at] = lines[earlier]
    many.write_text("\n".join(lines) + "\n")
    report = d.check_file(str(many), d.Options(media_root=str(ROOT)))
    assert [(i.line, i.code) for i in report.issues] == [(at + 1, "W402") for at in sorted(repeats)]
    assert report.duplicates == 3
    monkeypatch.setattr(duplicates, "EXACT_DUPLICATES", 10_000)  # the arrays alone
    few = tmp_path / "few.jsonl"
    few.write_text("\n".join(lines[:1600]) + "\n")
    report = d.check_file(str(few), d.Options(media_root=str(ROOT)), chunk_bytes=4096)
    assert [(i.line, i.code) for i in report.issues] == [(501, "W402"), (1501, "W402")] and report.duplicates == 2


def test_typed_path_with_the_python_twin_matches_reference(tmp_path, monkeypatch):
    """The typed path with _row_summary (what runs when swift_ext/datasets/_rowcheck.c is not built)."""
    monkeypatch.setattr(fastpath, "row_summary", fastpath._row_summary)
    monkeypatch.setattr(fastpath, "check_buffer", fastpath._check_buffer)
    corpus = fuzz_corpus(tmp_path / "corpus.jsonl", rows=1500, seed=3)
    assert_typed_matches_reference(corpus, d.Options(media_root=str(ROOT)))
    for path in BAD:
        assert_typed_matches_reference(path, d.Options(task=TASK_OF.get(path.name[:4], "sft")))


def test_compiled_row_summary_is_built_and_matches_its_python_twin():
    """`make` builds swift_ext/datasets/_rowcheck.c (setup.py build_ext --inplace); the row loop uses it."""
    rowcheck = pytest.importorskip("swift_ext.datasets._rowcheck", reason="not built: run `make build`")
    assert fastpath.row_summary is rowcheck.summary and fastpath.check_buffer is rowcheck.check_buffer
    import xxhash

    @settings(max_examples=400, deadline=None)
    @given(roles=st.lists(st.sampled_from(["system", "user", "assistant", "tool"]), max_size=4),
           texts=st.lists(st.one_of(TEXTS, st.text(alphabet="<>/thinkvideoaudimg \x00é\U0001f600\ud800", max_size=20)),
                          min_size=4, max_size=4),
           media=st.lists(st.one_of(st.none(), st.lists(st.sampled_from(["a.png", "b.mp4", "c.wav", "x"]), max_size=3)),
                          min_size=3, max_size=3))
    def same(roles, texts, media):
        messages = [fastpath._Message(content=t, role="user") for t in texts[:len(roles)]]
        for m, role in zip(messages, roles, strict=False):
            m.role = role
        files_ok = {"a.png", "b.mp4", "c.wav"}
        args = (messages, *media, files_ok, xxhash.xxh3_128_digest)
        assert rowcheck.summary(*args) == fastpath._row_summary(*args)

    same()


# Rows in ms-swift's other layouts, one file per layout (ms-swift picks the layout per file), each row with an
# `id` ms-swift carries through. Every row either loads or is dropped by ms-swift's own preprocessing.
LAYOUTS = {
    "alpaca": [
        {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
        {"instruction": "Translate", "input": "bonjour", "output": "hello", "system": "You translate."},
        {"instruction": "Say hi", "input": "", "output": "hi", "history": [["q0", "a0"]]},
        {"instruction": "", "input": "only input", "output": "ok", "history": "[['q0', 'a0']]"},
        {"instruction": None, "input": None, "output": "x"},  # no query: ms-swift asserts and drops it
        {"instruction": "Look", "input": "<image>", "output": "red", "images": ["data/media/red_square.png"]},
    ],
    "query-response": [
        {"query": "What is 1+1?", "response": "2"},
        {"query": "Name a colour", "response": "red", "system": "Be short.", "history": [["hi", "hello"]]},
    ],  # a column keeps one JSON type per file (Arrow), so these two get files of their own
    "several-responses": [{"query": "Several", "response": ["first", "second"]}],  # ms-swift takes the first
    "history-strings": [{"query": "q", "response": "r", "history": "[['hi', 'hello']]"},
                        {"query": "q", "response": "r", "history": "[['hi'"}],  # not a list: dropped
    "prompt-completion": [
        {"prompt": "Say yes", "completion": "yes", "system_prompt": "Obey."},
        {"prompt": "Say no", "completion": "no"},
    ],
    "question-answer": [
        {"question": "Capital of France?", "answer": "Paris"},
        {"question": "Capital of Spain?", "answer": "Madrid"},
    ],
    "sharegpt": [
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
        {"conversations": [{"from": "system", "value": "sys"}, {"from": "user", "value": "q"},
                           {"from": "assistant", "value": "a"}]},
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hey"}], "system": "Be kind."},
        {"conversations": [{"from": "robot", "value": "hi"}, {"from": "gpt", "value": "hello"}]},  # unknown role
        {"conversations": []},  # nothing: dropped
        {"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": '{"name": "f", "arguments": {}}'},
                           {"from": "observation", "value": "ok"}, {"from": "gpt", "value": "done"}]},
        # (a tool call the template's parser cannot read loads fine but fails at encoding: E115, tested below)
    ],
    "sharegpt-pairs": [
        {"conversation": [{"human": "q1", "assistant": "a1"}, {"human": "q2", "assistant": "a2"}]},
    ],
}
LOAD_ERRORS = {"E101", "E102", "E106", "E114"}  # what ms-swift's preprocessing drops a row for


def test_other_layouts_agree_with_ms_swift_load_dataset(tmp_path, monkeypatch):
    """ms-swift maps alpaca, query/response (and aliases) and sharegpt rows into `messages`: the validator
    maps them the same way (same messages, row for row) and reports exactly the rows ms-swift drops."""
    from swift.dataset import load_dataset

    monkeypatch.chdir(ROOT)  # media paths are relative to the working directory, as ms-swift reads them
    for name, rows in LAYOUTS.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"id": i, **r}) + "\n" for i, r in enumerate(rows)))
        train, _ = load_dataset([str(path)], strict=False, load_from_cache_file=False, remove_unused_columns=False)
        loaded = {r["id"]: [{k: m[k] for k in ("role", "content")} for m in r["messages"]] for r in train}
        report = assert_typed_matches_reference(path, d.Options())
        dropped = {i.line - 1 for i in report.issues if i.code in LOAD_ERRORS}
        assert sorted(set(range(len(rows))) - dropped) == sorted(loaded), (name, [i.render() for i in report.issues])
        for i in loaded:
            mapped, _ = mapping.auto_messages(json.loads(json.dumps(rows[i])), False)
            assert mapped == loaded[i], (name, i)
        assert report.errors == len(dropped), (name, [i.render() for i in report.issues])
        assert not [i for i in report.issues if i.code == "E101" and "no `messages` list" in i.message]


def test_other_layouts_name_the_column_and_follow_the_file_layout(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"instruction": "q", "input": "", "output": "<think>x"}) + "\n"
                    + json.dumps({"query": "q", "prompt": "p"}) + "\n")
    assert [(i.code, i.path) for i in check(path).issues] == [("E401", "output"), ("E201", "query")]
    mixed = tmp_path / "mixed.jsonl"  # a file whose rows have `messages`: ms-swift reads only that column
    mixed.write_text(json.dumps(VALID) + "\n" + json.dumps({"query": "q", "response": "r"}) + "\n")
    report = check(mixed)
    assert [(i.line, i.code) for i in report.issues] == [(2, "E101")] and "earlier rows" in report.issues[0].message


def test_media_relative_to_the_dataset_folder_is_not_where_ms_swift_looks(tmp_path, monkeypatch):
    """ms-swift resolves a relative media path against the working directory and ROOT_IMAGE_DIR only: a
    path that exists only next to the dataset is an error naming the path (and the setting) that works."""
    from swift.template.vision_utils import load_image

    data_dir = tmp_path / "ds"
    (data_dir / "imgs").mkdir(parents=True)
    (data_dir / "imgs" / "a.png").write_bytes((ROOT / "data/media/red_square.png").read_bytes())
    path = data_dir / "train.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "<image>what?"},
                                             {"role": "assistant", "content": "red"}], "images": ["imgs/a.png"]}) + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROOT_IMAGE_DIR", raising=False)
    with pytest.raises(Exception):
        load_image("imgs/a.png")  # ms-swift does not find it from here
    report = assert_typed_matches_reference(path, d.Options())
    [issue] = report.issues
    assert (issue.code, issue.path) == ("E301", "images[0]")
    assert "write it as ds/imgs/a.png" in issue.message and f"ROOT_IMAGE_DIR={data_dir}" in issue.message
    monkeypatch.setenv("ROOT_IMAGE_DIR", str(data_dir))
    assert load_image("imgs/a.png").size[0] > 0  # now it does
    for opts in (d.Options(), d.Options(media_root=str(data_dir))):
        assert assert_typed_matches_reference(path, opts).errors == 0
    monkeypatch.delenv("ROOT_IMAGE_DIR")
    monkeypatch.chdir(data_dir)
    assert assert_typed_matches_reference(path, d.Options()).errors == 0


@pytest.mark.slow
def test_grpo_agent_rows_cut_after_a_tool_response_roll_out(tmp_path, msswift_processor):
    """A tool response is a query role (Template._swift_encode: user or tool): ms-swift encodes the prompt of a row
    cut after a tool result (its reference answer, if any, dropped by remove_response) and the model answers it."""
    from swift import get_template
    from swift.utils import remove_response

    call = {"role": "tool_call", "content": '{"name": "get_weather", "arguments": {"city": "Paris"}}'}
    rows = [
        {"messages": [{"role": "user", "content": "Weather in Paris?"}, call,
                      {"role": "tool_response", "content": "sunny"}], "solution": "sunny"},
        {"messages": [{"role": "user", "content": "Weather in Paris?"}, call, {"role": "tool", "content": "sunny"},
                      {"role": "assistant", "content": "It is sunny."}], "solution": "sunny"},
    ]
    path = tmp_path / "agent.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = check(path, task="grpo")
    assert report.errors == 0 and report.valid_rows == 2, [i.render() for i in report.issues]
    template = get_template(msswift_processor, template_type="qwen3_5", agent_template="hermes")
    template.set_mode("transformers")  # the rollout encodes the prompt to generate from
    for row in rows:
        remove_response(row["messages"])
        text = template.tokenizer.decode(template.encode(row)["input_ids"])
        assert "sunny" in text and text.rstrip().endswith("</think>")  # the model's turn opens after the tool result


def test_grpo_row_with_its_reference_answer_last_is_valid(tmp_path):
    # ms-swift's GRPO trainer drops a final assistant turn before the rollout (swift.utils.remove_response).
    path = tmp_path / "grpo.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}], "solution": "2"},
        {"messages": [{"role": "user", "content": "1+1?"}], "solution": "2"},
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                      {"role": "assistant", "content": "c"}], "solution": "2"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = check(path, task="grpo")
    assert [(i.code, i.line) for i in report.issues if i.severity == "error"] == [("E202", 3)]
    assert report.valid_rows == 2


def test_a_final_tool_call_needs_content(tmp_path):
    row = {"messages": [{"role": "user", "content": "Weather?"}, {"role": "tool_call", "content": ""}]}
    path = tmp_path / "call.jsonl"
    path.write_text(json.dumps(row) + "\n")
    assert [i.code for i in check(path).issues if i.severity == "error"] == ["E115", "E201"]


@pytest.mark.slow
def test_any_order_of_known_roles_is_accepted_as_ms_swift_encodes_it(tmp_path, msswift_processor):
    """E108 is retired: ms-swift's real template encodes these orders, so the validator must not refuse them."""
    from swift import get_template

    rows = [
        {"messages": [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "hi"},
                      {"role": "assistant", "content": "again"}]},
        {"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a lone answer"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "anyone?"},
                      {"role": "assistant", "content": "hello"}]},
        # an agent trajectory split after a tool call (ms-swift#9367): the call is the trained answer
        {"messages": [{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "content": "Checking."},
                      {"role": "tool_call", "content": '{"name": "get_weather", "arguments": {"city": "Paris"}}'}]},
        {"messages": [{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "content": None,
                      "tool_calls": [{"function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}]},
    ]
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = check(path)
    assert report.errors == 0 and report.valid_rows == len(rows), [i.render() for i in report.issues]
    template = get_template(msswift_processor, template_type="qwen3_5")
    template.set_mode("train")
    for row in rows:
        encoded = template.encode(json.loads(json.dumps(row)))
        assert encoded["input_ids"] and any(label != -100 for label in encoded["labels"])


def test_invalid_utf8_in_a_column_the_typed_decode_skips(tmp_path):
    """Found by the fuzz test: msgspec's typed decode skips unknown keys without validating their bytes, so
    the typed path took this row as clean (a duplicate of line 1) where the reference reports E003."""
    row = b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]'
    path = tmp_path / "utf8.jsonl"
    path.write_bytes(row + b"}\n" + row + b', "\x80id": null}\n')
    report = assert_typed_matches_reference(path, d.Options())
    assert [(i.line, i.code) for i in report.issues] == [(2, "E003")]


def test_invalid_utf8_with_the_python_twin(tmp_path, monkeypatch):
    monkeypatch.setattr(fastpath, "row_summary", fastpath._row_summary)
    monkeypatch.setattr(fastpath, "check_buffer", fastpath._check_buffer)
    test_invalid_utf8_in_a_column_the_typed_decode_skips(tmp_path)


def _issues_without_file(out: str) -> list:
    return [{k: v for k, v in i.items() if k != "file"} for i in json.loads(out)["issues"]]


def test_stdin_fifo_and_process_substitution_are_read(tmp_path):
    import subprocess
    import sys
    import threading

    src = ROOT / "data" / "bad" / "E106-unknown-role.jsonl"
    from_file = swift_ext("data", "check", src, "--format", "json")
    assert from_file.returncode == 1
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    stdin = subprocess.run([sys.executable, "-m", "swift_ext", "data", "check", "-", "--format", "json"],
                           input=src.read_bytes(), capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": path})
    assert stdin.returncode == 1, stdin.stderr
    assert json.loads(stdin.stdout)["files"] == ["<stdin>"]
    assert _issues_without_file(stdin.stdout) == _issues_without_file(from_file.stdout)
    assert {i["file"] for i in json.loads(stdin.stdout)["issues"]} == {"<stdin>"}
    substituted = subprocess.run(["bash", "-c", f'"{sys.executable}" -m swift_ext data check <(cat "{src}") --format json'],
                                 capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": path})
    assert substituted.returncode == 1, substituted.stderr
    assert _issues_without_file(substituted.stdout) == _issues_without_file(from_file.stdout)
    fifo = tmp_path / "rows"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(src.read_bytes()))
    writer.start()
    report = d.check_file(str(fifo), d.Options())
    writer.join()
    assert report.files == [str(fifo)] and [i.code for i in report.issues] == ["E106"]
    with pytest.raises(d.FileCheckError, match="a stream is read only once"):
        d.write_clean(str(fifo), report, str(tmp_path / "clean.jsonl"))


def test_input_format_reads_a_file_whose_name_says_nothing(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}] * 2
    noname = tmp_path / "rows"
    noname.write_text(json.dumps(rows))
    assert check(noname).issues[0].code == "E005"  # ms-swift has no reader for a name without an extension
    report = d.check_file(str(noname), d.Options(), input_format="json")
    assert (report.rows, report.layout) == (2, "json-array") and [i.code for i in report.issues] == ["W402"]
    assert any("--input-format" in note for note in report.notes)
    result = swift_ext("data", "check", "-", "--input-format", "yaml")
    assert result.returncode == 2 and "--input-format must be jsonl or json" in result.stderr


@pytest.mark.slow
def test_content_parts_and_tool_calls_as_ms_swift_encodes_them(tmp_path, msswift_processor):
    """Rows the validator accepts, ms-swift's real qwen3_5 template encodes; rows it refuses with E115, the
    template's tool parser fails on."""
    from swift import get_template

    image = str(ROOT / "data" / "media" / "red_square.png")
    weather = {"name": "get_weather", "arguments": {"city": "Paris"}}
    good = [
        {"messages": [{"role": "user", "content": [{"type": "image", "image": image},
                                                   {"type": "text", "text": "What shape?"}]},
                      {"role": "assistant", "content": "A square."}]},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}},
                                                   {"type": "text", "text": "Colour?"}]},
                      {"role": "assistant", "content": "Red."}]},
        {"messages": [{"role": "user", "content": "Weather in Paris?"},
                      {"role": "tool_call", "content": json.dumps(weather)},
                      {"role": "tool_response", "content": '{"temp": 21}'},
                      {"role": "assistant", "content": "21 degrees."}]},
        {"messages": [{"role": "user", "content": "Weather in Paris?"},
                      {"role": "assistant", "content": None, "tool_calls": [
                          {"id": "c1", "type": "function", "function": {"name": "get_weather",
                                                                        "arguments": '{"city": "Paris"}'}}]},
                      {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 21}'},
                      {"role": "assistant", "content": "21 degrees."}]},
    ]
    bad = [
        ({"messages": [{"role": "user", "content": "Weather?"},
                       {"role": "tool_call", "content": "get_weather(city='Paris')"},
                       {"role": "tool_response", "content": "21"}, {"role": "assistant", "content": "21."}]},
         "messages[1].content"),
        ({"messages": [{"role": "user", "content": "Weather?"},
                       {"role": "tool_call", "content": json.dumps({"name": "get_weather", "arguments": ["Paris"]})},
                       {"role": "tool_response", "content": "21"}, {"role": "assistant", "content": "21."}]},
         "messages[1].content"),
        ({"messages": [{"role": "user", "content": "Weather?"},
                       {"role": "assistant", "content": None, "tool_calls": [{"function": {"arguments": "{}"}}]},
                       {"role": "tool", "content": "21"}, {"role": "assistant", "content": "21."}]},
         "messages[1].tool_calls[0]"),
    ]
    found = []  # one file per row: Arrow types `content` by the first row (list here, string there: E110)
    for k, row in enumerate(good + [r for r, _ in bad]):
        path = tmp_path / f"row{k}.jsonl"
        path.write_text(json.dumps(row) + "\n")
        report = check(path)
        found.append([(i.code, i.path) for i in report.issues if i.severity == "error"])
        assert report.media["images"] == (1 if k < 2 else 0)
    assert found == [[]] * len(good) + [[("E115", fld)] for _, fld in bad]
    template = get_template(msswift_processor, template_type="qwen3_5")
    template.set_mode("train")
    for row in good:
        encoded = template.encode(json.loads(json.dumps(row)))
        assert encoded["input_ids"] and any(label != -100 for label in encoded["labels"])
    for row, _ in bad:
        with pytest.raises(Exception):  # noqa: B017 - ms-swift raises TypeError/KeyError/AttributeError here
            template.encode(json.loads(json.dumps(row)))


def test_media_in_content_parts_are_counted_and_checked(tmp_path):
    missing = {"messages": [{"role": "user", "content": [{"type": "image", "image": "nowhere.png"},
                                                         {"type": "text", "text": "and <image>?"}]},
                            {"role": "assistant", "content": "?"}]}
    both = {"messages": [{"role": "user", "content": [{"type": "video", "video": "data/media/moving_dot.mp4"}]},
                         {"role": "assistant", "content": "a dot"}], "videos": ["data/media/moving_dot.mp4"]}
    odd = {"messages": [{"role": "user", "content": [{"type": "file", "file": "a.pdf"}]},
                        {"role": "assistant", "content": "?"}]}
    path = tmp_path / "parts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (missing, both, odd)))
    report = check(path, media_root=str(ROOT))
    assert [(i.line, i.code, i.path) for i in report.issues] == [
        (1, "E103", "messages[0].content[0].image"), (1, "E301", "messages[0].content[0].image"),
        (2, "E104", "videos"), (3, "E109", "messages[0].content[0].type")]


def test_a_mixed_type_column_loads_but_changes_json_looking_strings(tmp_path):
    # datasets 4.x no longer fails on a JSON column whose type changes between rows: it types the column Json
    # and decodes each value as JSON, so a string that reads as JSON ("4") comes back as another type (4)
    # -- a reward's `solution`, or a `rejected_response` ms-swift then refuses. E110 says so instead of a failure.
    import datasets
    from swift.dataset import load_dataset

    def load(name, rows):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        loaded = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / name))
        train, _ = load_dataset([str(path)], strict=False, load_from_cache_file=False, remove_unused_columns=False)
        return path, loaded.features, train

    question = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    path, features, train = load("solution", [{"messages": question, "solution": s}
                                              for s in ("five", "4", 4, "four", "true", "[1]")])
    assert isinstance(features["solution"], datasets.Json)
    assert [r["solution"] for r in train] == ["five", 4, 4, "four", True, [1]]  # ms-swift's loader: "4" is a number now
    report = check(path, task="grpo")
    [finding] = [i for i in report.issues if i.code == "E110"]
    assert (finding.line, finding.path) == (2, "solution"), finding.render()  # the first string that changes
    assert '"4" here arrives as 4 (number); 2 more rows' in finding.message and "one type" in finding.message

    # The other half: a mixed column whose strings do not read as JSON arrives as written, and ms-swift takes
    # both forms -- `images` a path or a list of paths (its preprocessor makes a list of either), a
    # `rejected_response` a string or a list of messages.
    (tmp_path / "a.png").write_bytes((ROOT / "data/media/red_square.png").read_bytes())
    (tmp_path / "b.png").write_bytes((ROOT / "data/media/blue_circle.png").read_bytes())
    one, two = (str(tmp_path / "a.png"), [str(tmp_path / "a.png"), str(tmp_path / "b.png")])
    path, features, train = load("images", [
        {"messages": [{"role": "user", "content": "<image>what?"}, {"role": "assistant", "content": "red"}],
         "images": one},
        {"messages": [{"role": "user", "content": "<image><image>what?"}, {"role": "assistant", "content": "two"}],
         "images": two}])
    assert isinstance(features["images"], datasets.Json)
    assert [[i["path"] for i in r["images"]] for r in train] == [[one], two]
    report = check(path)
    assert report.errors == 0 and report.valid_rows == 2, [i.render() for i in report.issues]

    better = [{"role": "assistant", "content": "4"}]
    path, features, train = load("rejected", [{"messages": question, "rejected_response": "no"},
                                              {"messages": question, "rejected_response": better}])
    assert isinstance(features["rejected_response"], datasets.Json)
    assert [r["rejected_response"] for r in train] == ["no", better]
    report = check(path, task="dpo")
    assert not [i for i in report.issues if i.code == "E110"], [i.render() for i in report.issues]
    # and "4" next to those: the one value that changes, E110 at its row
    path, _, train = load("rejected4", [{"messages": question, "rejected_response": "no"},
                                        {"messages": question, "rejected_response": better},
                                        {"messages": question, "rejected_response": "4"}])
    assert [r["rejected_response"] for r in train] == ["no", better, 4]
    assert [(i.line, i.path) for i in check(path, task="dpo").issues if i.code == "E110"] == [(3, "rejected_response")]

@pytest.mark.parametrize("args, task", [
    ({"task_type": "seq_cls", "num_labels": 2}, "seq_cls"),
    ({"num_labels": 2}, "seq_cls"),  # get_model_info_meta: num_labels alone makes it seq_cls
    ({"task_type": "embedding"}, "embedding"),
    ({"task_type": "generative_reranker"}, "generative_reranker"),
    ({}, "sft"),  # a causal LM trains the final answer: E201 still applies
])
def test_encoder_task_rows_are_checked_without_the_sft_answer_rule(tmp_path, args, task):
    # ms-swift's documented seq_cls / embedding rows hold the input alone (docs Custom-dataset.md, Embedding.md);
    # planner/datafit.py asks the validator for the task type ms-swift resolves, so only a causal LM demands an answer.
    from swift_ext.planner.datafit import check_options
    from swift_ext.spec.recipe import load_recipe

    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "So happy"}], "label": 1}) + "\n")
    path = tmp_path / "r.yaml"
    path.write_text(json.dumps({"description": "t", "command": "sft", "engine": "swift",
                                "launch": {"nodes": 1, "gpus_per_node": 1},
                                "args": {"model": "Qwen/Qwen2.5-0.5B", "dataset": [str(data)], **args}}))
    opts, _ = check_options(load_recipe(path))
    assert opts.task == task
    codes = {i.code for i in d.check_file(str(data), opts).issues}
    assert ("E201" in codes) == (task == "sft")


@pytest.mark.parametrize("rlhf_type, task", [("orpo", "dpo"), ("cpo", "dpo"), ("simpo", "dpo"), ("rm", "dpo"),
                                             ("kto", "kto"), ("grpo", "grpo")])
def test_pair_rlhf_types_are_checked_as_dpo_rows(tmp_path, rlhf_type, task):
    # SwiftRLHF._prepare_template runs every type but kto/gkd/ppo/grpo in 'rlhf' mode, where Template._rlhf_encode
    # raises 'inputs.rejected is None': their rows are chosen/rejected pairs, as DPO's (ms-swift#5712: rm).
    from swift_ext.planner.datafit import validator_task
    from swift_ext.spec.recipe import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text(json.dumps({"description": "t", "command": "rlhf", "engine": "swift",
                                "launch": {"nodes": 1, "gpus_per_node": 1},
                                "args": {"model": "Qwen/Qwen2.5-0.5B", "rlhf_type": rlhf_type, "dataset": ["d.jsonl"]}}))
    assert validator_task(load_recipe(path)) == task


@pytest.mark.parametrize("funcs, columns", [(["cosine"], ("solution",)), (["accuracy", "format"], ("solution",)),
                                           (["format", "repetition"], ())])
def test_rewards_that_score_against_the_solution_ask_the_rows_for_it(tmp_path, funcs, columns):
    # swift/rewards/orm.py: MathAccuracy and CosineReward take `solution`; format and repetition read the completion.
    from swift_ext.planner.datafit import recipe_data
    from swift_ext.spec.recipe import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text(json.dumps({"description": "t", "command": "rlhf", "engine": "swift",
                                "launch": {"nodes": 1, "gpus_per_node": 1},
                                "args": {"model": "Qwen/Qwen2.5-0.5B", "rlhf_type": "grpo", "dataset": ["d.jsonl"],
                                         "reward_funcs": funcs}}))
    assert recipe_data(load_recipe(path)).reward_columns == columns


@pytest.mark.slow
def test_sft_rows_cut_after_a_tool_response_warn_as_ms_swift_trains_the_call_before(tmp_path, msswift_processor):
    """ms-swift takes an SFT row that ends with a tool result (Template._get_std_messages appends an empty assistant
    turn): it trains the earlier call and nothing after the result, and under loss_scale last_round nothing at all.
    W208 says so; a row with no earlier answer trains nothing and stays E201."""
    from swift import get_template

    call = {"role": "tool_call", "content": '{"name": "get_weather", "arguments": {"city": "Paris"}}'}
    cut = {"messages": [{"role": "user", "content": "Weather in Paris?"}, call,
                        {"role": "tool_response", "content": "sunny"}]}
    bare = {"messages": [{"role": "user", "content": "Weather in Paris?"}, {"role": "tool", "content": "sunny"}]}
    path = tmp_path / "agent.jsonl"
    path.write_text(json.dumps(cut) + "\n" + json.dumps(bare) + "\n")
    report = check(path)
    assert [(i.code, i.line) for i in report.issues] == [("W208", 1), ("E201", 2)], [i.render() for i in report.issues]
    trained = {}
    for loss_scale in ("default", "last_round"):
        template = get_template(msswift_processor, template_type="qwen3_5", agent_template="hermes",
                                loss_scale=loss_scale)
        template.set_mode("train")
        labels = template.encode({"messages": [dict(m) for m in cut["messages"]]})["labels"]
        trained[loss_scale] = template.tokenizer.decode([t for t in labels if t != -100])
    assert "get_weather" in trained["default"] and "sunny" not in trained["default"]
    assert trained["last_round"] == ""


def test_sft_rows_cut_after_a_user_turn_or_with_an_empty_final_answer_warn_after_an_earlier_answer(tmp_path):
    """W209: a conversation that ends with a user turn (ShareGPT dumps often end with `human`) or an empty assistant
    turn, after an answer, is a row ms-swift loads and trains (its earlier answers); without an earlier answer it
    trains nothing and stays E201."""
    hi, hello = {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there"}
    rows = [{"messages": [hi, hello, {"role": "user", "content": "Bye"}]},
            {"messages": [hi, {"role": "function_call", "content": '{"name": "w", "arguments": {}}'},
                          {"role": "observation", "content": "sunny"}, hello, {"role": "user", "content": "Bye"}]},
            {"messages": [hi, hello, {"role": "user", "content": "Bye"}, {"role": "assistant", "content": ""}]},
            {"messages": [hi]}, {"messages": [hi, {"role": "assistant", "content": ""}]},
            {"messages": [hi, {"role": "assistant", "content": ""}, {"role": "user", "content": "Bye"}]}]
    path = tmp_path / "cut.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = [(i.code, i.line) for i in check(path).issues if i.code in ("E201", "W209")]
    assert found == [("W209", 1), ("W209", 2), ("W209", 3), ("E201", 4), ("E201", 5), ("E201", 6)], found
    assert "E201" in {i.code for i in check(path, task="dpo").issues if i.line == 1}  # DPO: the chosen answer


@pytest.mark.slow
def test_ms_swift_loads_and_trains_the_answers_before_a_final_user_turn(tmp_path, msswift_processor):
    from swift import get_template
    from swift.dataset import load_dataset

    path = tmp_path / "sharegpt.jsonl"
    path.write_text(json.dumps({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello "
                    "there"}, {"from": "human", "value": "Bye"}]}) + "\n")
    train, _ = load_dataset([str(path)], num_proc=1)
    assert len(train) == 1 and [m["role"] for m in train[0]["messages"]] == ["user", "assistant", "user"]
    trained = {}
    for loss_scale in ("default", "last_round"):
        template = get_template(msswift_processor, template_type="qwen3_5", loss_scale=loss_scale)
        template.set_mode("train")
        labels = template.encode(train[0])["labels"]
        trained[loss_scale] = template.tokenizer.decode([t for t in labels if t != -100])
    assert "Hello there" in trained["default"] and "Bye" not in trained["default"]
    assert trained["last_round"] == ""


def test_pretraining_rows_train_their_text_whatever_role_ends_them(tmp_path):
    """swift/megatron pt (PretrainArguments: use_chat_template False, loss_scale 'all') trains every token, so a row of
    text in a user turn (a `query` / `prompt` column) is trained: no E201 under pt; with another loss_scale the recipe's
    rows are checked as sft rows (planner/datafit.py validator_task)."""
    from swift_ext.planner.datafit import validator_task
    from swift_ext.spec.recipe import load_recipe

    rows = [{"messages": [{"role": "user", "content": "The sky is blue."}]},
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                          {"role": "user", "content": "Bye"}]},
            {"messages": [{"role": "user", "content": ""}]}]
    path, query = tmp_path / "pt.jsonl", tmp_path / "query.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    query.write_text(json.dumps({"query": "The sea is blue."}) + "\n")
    assert [(i.code, i.line) for i in check(path, task="pt").issues if i.code in ("E201", "W209")] == [("E201", 3)]
    assert [(i.code, i.line) for i in check(path).issues if i.code in ("E201", "W209")] == [
        ("E201", 1), ("W209", 2), ("E201", 3)]
    assert not [i for i in check(query, task="pt").issues if i.severity == "error"]
    assert [i.code for i in check(query).issues if i.severity == "error"] == ["E201"]
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"description": "t", "command": "pt", "engine": "swift",
                                  "launch": {"nodes": 1, "gpus_per_node": 1},
                                  "args": {"model": "Qwen/Qwen2.5-0.5B", "dataset": [str(path)]}}))
    assert validator_task(load_recipe(recipe)) == "pt"
    assert validator_task(load_recipe(recipe, ["args.loss_scale=default"])) == "sft"


@pytest.mark.slow
def test_ms_swift_pretraining_trains_a_user_turn(msswift_processor):
    from swift import get_template

    template = get_template(msswift_processor, template_type="qwen3_5", use_chat_template=False, loss_scale="all")
    template.set_mode("train")
    labels = template.encode({"messages": [{"role": "user", "content": "The sky is blue."}]})["labels"]
    assert "sky is blue." in template.tokenizer.decode([t for t in labels if t != -100])
    from swift.arguments import PretrainArguments

    defaults = {f.name: f.default for f in PretrainArguments.__dataclass_fields__.values()}
    assert defaults["use_chat_template"] is False and defaults["loss_scale"] == "all"


def test_plan_reads_the_turn_orders_with_the_recipes_template_backend():
    # E117/E118 are ms-swift's own template's pairing (Template._swift_prepare_inputs); template_backend jinja hands
    # the turns to the tokenizer's chat template as written (datasets/rows.py RowChecker._turn_order)
    bad = "args.dataset=[data/bad/E118-user-after-tool-response.jsonl]"
    plan = swift_ext_in_process("plan", ROOT / "recipes/smoke/tiny-sft.yaml", bad)
    assert plan.returncode == 2 and "E118 user-after-tool-response" in plan.stderr
    jinja = swift_ext_in_process("plan", ROOT / "recipes/smoke/tiny-sft.yaml", bad, "args.template_backend=jinja")
    assert "E118 user-after-tool-response" not in jinja.stderr + jinja.stdout and "2/2 rows valid" in jinja.stdout


def test_missing_media_tags_are_ms_swifts_to_add(tmp_path, msswift_processor):
    # Template._add_default_tags puts the missing <image> tags at the start of the first message and the row trains
    # (N103, valid); an extra tag stays text (E103 as before). Both rows encoded with ms-swift 4.6's own template.
    from swift import get_template
    from swift.dataset import load_dataset

    image = str(ROOT / "data/media/red_square.png")
    rows = [{"messages": [{"role": "user", "content": "Colour?"}, {"role": "assistant", "content": "Red."}],
             "images": [image, image]},
            {"messages": [{"role": "user", "content": "<image>Colour?"}, {"role": "assistant", "content": "Red."}],
             "images": [image, image]}]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = check(path)
    assert [(i.code, i.line) for i in report.issues] == [("N103", 1), ("N103", 2)] and report.valid_rows == 2
    template = get_template(msswift_processor, template_type="qwen3_5")
    template.set_mode("train")
    train, _ = load_dataset([str(path)], strict=False, load_from_cache_file=False, shuffle=False)
    pad = msswift_processor.tokenizer.convert_tokens_to_ids("<|vision_start|>")
    for row in train:
        assert template.encode(dict(row))["input_ids"].count(pad) == 2  # both images placed
