"""A hostile tester's list: bad inputs a real user produces, each answered with one clear line naming the
culprit and exit 2 (never a traceback, never the "internal error" line of the central funnel); and
valid-but-unusual inputs (BOM, CRLF, tabs in the wrong place, spaces and non-ASCII in paths, anchors and
merge keys) accepted. Each case was a bug found by trying it; they run in-process through `run_cli`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import RECIPES
from swift_ext.cli.main import run_cli

TINY_SFT = RECIPES / "smoke/tiny-sft.yaml"
MEGATRON = RECIPES / "qwen3_6/sft-lora-4x32g.yaml"
ROW = '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}'
LOG_ROW = '{"loss": 1.0, "global_step/max_steps": "1/8"}'
BOM = b"\xef\xbb\xbf"


@pytest.fixture
def tiny_tokenizer():
    from swift_ext.planner.tinymodel import ensure_model

    return str(ensure_model("tiny-qwen3_6-moe"))


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = run_cli([str(a) for a in argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "internal error" not in captured.err, captured.err
    return code, captured.out, captured.err


def put(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def tiny_recipe_text() -> str:
    return TINY_SFT.read_text(encoding="utf-8")


# (name, files to write {relative path: content}, argv with {d} for the scratch dir, words the error must name)
BAD = [
    ("nul-in-a-recipe-value", {"r.yaml": lambda: tiny_recipe_text().replace("template: qwen3_5", 'template: "a\\0b"')},
     ["plan", "{d}/r.yaml"], ["r.yaml:", "args.template", "NUL"]),
    ("tab-after-a-colon", {"r.yaml": lambda: tiny_recipe_text().replace("  max_length: 256", "  max_length:\t256")},
     ["plan", "{d}/r.yaml"], ["r.yaml:", "tabs"]),
    ("gpus-per-node-typo-1e9", {}, ["plan", TINY_SFT, "launch.gpus_per_node=1e9"], ["launch.gpus_per_node", "64"]),
    ("env-name-with-a-space", {}, ["plan", TINY_SFT, "env.A B=1"], ["env", "'A B'"]),
    ("env-name-empty", {}, ["plan", TINY_SFT, "env.=1"], ["env", "not an environment variable name"]),
    ("run-output-dir-is-a-file", {"out.jsonl": ROW}, ["run", TINY_SFT, "args.output_dir={d}/out.jsonl/sub"],
     ["args.output_dir", "is a file"]),
    ("stats-empty-file", {"e.jsonl": ""}, ["data", "stats", "{d}/e.jsonl", "--tokenizer", "{tok}"],
     ["e.jsonl", "nothing to measure"]),
    ("stats-not-jsonl", {"n.jsonl": "a: 1\nb: 2\n"}, ["data", "stats", "{d}/n.jsonl", "--tokenizer", "{tok}"],
     ["n.jsonl", "not JSON Lines", "refuses it"]),
    ("stats-png-into-missing-dir", {"ok.jsonl": ROW + "\n"},
     ["data", "stats", "{d}/ok.jsonl", "--tokenizer", "{tok}", "--png", "{d}/no/such/dir/h.png"],
     ["h.png", "directory does not exist"]),
    ("stats-binary-tokenizer", {"ok.jsonl": ROW + "\n", "tok.json": b"\xd4\xff\x01garbage"},
     ["data", "stats", "{d}/ok.jsonl", "--tokenizer", "{d}/tok.json"], ["tok.json", "tokenizer.json"]),
    ("check-binary-tokenizer", {"ok.jsonl": ROW + "\n", "tok.json": b"\xd4\xff\x01garbage"},
     ["data", "check", "{d}/ok.jsonl", "--tokenizer", "{d}/tok.json", "--max-length", "5"], ["tok.json", "tokenizer.json"]),
    ("check-write-clean-into-missing-dir", {"ok.jsonl": ROW + "\n"},
     ["data", "check", "{d}/ok.jsonl", "--write-clean", "{d}/no/such/dir/c.jsonl"], ["c.jsonl", "directory does not exist"]),
    ("import-output-into-missing-dir", {"s.sh": "megatron sft --model Qwen/Qwen3-8B --dataset a.jsonl\n"},
     ["import", "{d}/s.sh", "-o", "{d}/no/such/dir/r.yaml"], ["r.yaml", "directory does not exist"]),
    ("watch-binary-log", {"run/v0-1/logging.jsonl": b"\x00\x01\x02binary\n"}, ["watch", "{d}/run", "--once"],
     ["logging.jsonl", "binary"]),
    ("watch-log-without-rows", {"run/logging.jsonl": "garbage\nmore garbage\n"}, ["watch", "{d}/run", "--once"],
     ["logging.jsonl", "no JSON rows"]),
    ("watch-model-config-dir-without-config", {"run/logging.jsonl": LOG_ROW + "\n", "cfg/x.txt": ""},
     ["watch", "{d}/run", "--once", "--model-config", "{d}/cfg"], ["cfg", "without config.json"]),
    ("submit-then-twice", {}, ["submit", MEGATRON, "--dry-run", "--then", "merge", "--then", "merge"],
     ["--then merge", "more than once"]),
    ("submit-sweep-repeated-value", {}, ["submit", MEGATRON, "--dry-run", "--sweep", "args.lr=1e-5,1e-5"],
     ["args.lr", "more than once"]),
    ("submit-sweep-same-key-twice", {},
     ["submit", MEGATRON, "--dry-run", "--sweep", "args.lr=1e-5,2e-5", "--sweep", "args.lr=3e-5,4e-5"],
     ["args.lr", "swept twice"]),
    ("dataset-sample-suffix-not-a-number", {}, ["plan", TINY_SFT, "args.dataset=[AI-ModelScope/alpaca#abc]"],
     ["args.dataset", "alpaca#abc", "not a sample count"]),
    ("data-check-sample-suffix-not-a-number", {"ok.jsonl": ROW + "\n"}, ["data", "check", "{d}/ok.jsonl#abc"],
     ["ok.jsonl#abc", "not a sample count"]),
    ("empty-model", {}, ["plan", TINY_SFT, "args.model="], ["args.model", "empty"]),
    ("compare-metrics-is-a-list", {"a/eval-1/metrics.json": "[1, 2]", "b/metrics.json": '{"exact_match": 0.5}'},
     ["infer", "--compare", "{d}/a", "--compare", "{d}/b"], ["a/eval-1/metrics.json", "holds none of the metrics"]),
    ("compare-metrics-without-numbers", {"a/metrics.json": '{"exact_match": "abc"}', "b/metrics.json": '{"exact_match": 1}'},
     ["infer", "--compare", "{d}/a", "--compare", "{d}/b"], ["a/metrics.json", "holds none of the metrics"]),
    ("status-manifest-is-a-list", {"run/swift-ext-run-20260101-000000.json": "[1, 2]"}, ["status", "{d}/run"],
     ["run", "unreadable manifest(s): swift-ext-run-20260101-000000.json"]),
    ("status-manifest-jobs-not-a-list", {"run/swift-ext-run-20260101-000000.json": '{"slurm": {"jobs": 5}}'},
     ["status", "{d}/run"], ["run", "no Slurm submission recorded"]),
    ("verify-truncated-safetensors", {"m/config.json": '{"hidden_size": 8}',
                                      "m/model.safetensors": b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":"},
     ["verify", "{d}/m", "--base", "{d}/m", "--no-generate"], ["m/model.safetensors", "truncated or damaged"]),
]


@pytest.mark.parametrize("name, files, argv, words", BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_one_clear_line(capsys, tmp_path, tiny_tokenizer, name, files, argv, words):
    for rel, content in files.items():
        put(tmp_path / rel, content() if callable(content) else content)
    code, _, err = cli(capsys, *[str(a).format(d=tmp_path, tok=tiny_tokenizer) for a in argv])
    assert code == 2, (code, err)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors and any(all(w in line for w in words) for line in errors), err


def test_nothing_is_created_by_a_refused_run(capsys, tmp_path):
    put(tmp_path / "out.jsonl", ROW)
    code, _, _ = cli(capsys, "run", TINY_SFT, f"args.output_dir={tmp_path}/out.jsonl")
    assert code == 2 and (tmp_path / "out.jsonl").read_text() == ROW


# Valid, if unusual: all accepted.

def test_recipe_with_bom_crlf_comments_anchors_in_a_unicode_dir_with_spaces(capsys, tmp_path):
    text = tiny_recipe_text().replace("  lora_rank: 8\n", "  lora_rank: &rank 8  # shared\n").replace(
        "  lora_alpha: 32\n", "  lora_alpha: *rank\n").replace("launch:\n", "launch:\n  <<: {nodes: 1}\n", 1)
    text = text.replace("nodes: 1\n  gpus_per_node", "gpus_per_node")  # the merge key gives `nodes`
    path = put(tmp_path / "dir with space/ünï/récipe 1.yaml", BOM + text.replace("\n", "\r\n").encode("utf-8"))
    code, out, err = cli(capsys, "plan", path, "--json")
    assert code == 0, err
    argv = json.loads(out)["argv"]
    assert argv[argv.index("--lora_alpha") + 1] == "8"


def test_an_empty_section_means_no_settings_there(capsys, tmp_path):
    """`launch:` with nothing under it (a key left for later) is null in YAML: the defaults, not an error,
    and it does not wipe what a base recipe set."""
    child = put(tmp_path / "child.yaml", f"extends: {MEGATRON}\nlaunch:\nenv:\n")
    code, out, err = cli(capsys, "plan", child, "--json")
    assert code == 0, err
    assert json.loads(out)["layout"] is not None
    assert "NPROC_PER_NODE" in json.loads(out)["env"] and json.loads(out)["env"]["NPROC_PER_NODE"] == "4"


def test_report_and_watch_read_a_bom_crlf_log_in_a_unicode_dir(capsys, tmp_path):
    run = tmp_path / "ünï run"
    put(run / "v0-1/logging.jsonl", BOM + (LOG_ROW + "\r\n" + LOG_ROW.replace('"1/8"', '"2/8"') + "\r\n").encode())
    code, out, err = cli(capsys, "report", run)
    assert code == 0, err
    code, out, err = cli(capsys, "watch", run, "--once", "--json")
    assert code == 0, err
    assert [json.loads(line)["step"] for line in out.splitlines() if '"step"' in line[:20]] == [1, 2]


def test_stats_reads_a_bom_jsonl(capsys, tmp_path, tiny_tokenizer):
    path = put(tmp_path / "dir with space/tráin.jsonl", BOM + (ROW + "\r\n" + ROW + "\r\n").encode())
    code, out, err = cli(capsys, "data", "stats", path, "--tokenizer", tiny_tokenizer, "--format", "json",
                         "--no-cache")
    assert code == 0, err
    assert json.loads(out)["rows_not_measured"] == 0
