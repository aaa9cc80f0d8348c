"""`swift-ext data stats`: token counts against ms-swift's own template, truncation, packing, cache, CLI."""

from __future__ import annotations

import json
import os

import pytest

from conftest import ROOT, swift_ext
from swift_ext.datasets.lengthcache import cache_key
from swift_ext.datasets.lengths import Lengths, _last_labelled_span, measure, measure_file
from swift_ext.datasets.mediatokens import StatsError, smart_resize
from swift_ext.datasets.packing import Budget, after_truncation, micro_batches, pack, summarize
from swift_ext.datasets.template import TemplateSettings, media_settings
from swift_ext.planner import datafit

BUNDLED = ["data/sft/train.jsonl", "data/sft/val.jsonl", "data/mm/train.jsonl", "data/grpo/train.jsonl",
           "data/dpo/train.jsonl"]

# Shapes the bundled data lacks: history with thinking, consecutive user turns, an assistant-first row,
# a missing system (filled by args.system), a think block with odd spacing, media tags mid-sentence.
SYNTHETIC = [
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>\nhm\n</think>\n\nHello!"},
                  {"role": "user", "content": "  Sum 2 and 3 "}, {"role": "assistant", "content": "5"}]},
    {"messages": [{"role": "user", "content": "one"}, {"role": "user", "content": "two"},
                  {"role": "assistant", "content": "<think>  a  </think>answer"}]},
    {"messages": [{"role": "assistant", "content": "pretraining-like text"}]},
    {"messages": [{"role": "system", "content": " sys "}, {"role": "user", "content": "a"},
                  {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
                  {"role": "assistant", "content": "d"}, {"role": "user", "content": "e?"}]},
    {"messages": [{"role": "user", "content": "Look at <image> and then <video>, what now?"},
                  {"role": "assistant", "content": "Shapes."}],
     "images": ["../media/green_triangle.png"], "videos": ["../media/moving_dot.mp4"]},
]


@pytest.fixture(scope="module")
def tiny():
    from swift_ext.planner.tinymodel import ensure_model

    return str(ensure_model("tiny-qwen3_6-moe"))


@pytest.fixture(scope="module")
def synthetic_file(tmp_path_factory):
    # media paths are relative to data/mm, like the bundled multimodal file
    path = ROOT / "data" / "mm" / f".synthetic-{os.getpid()}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in SYNTHETIC))
    yield str(path)
    path.unlink()


def _settings(tiny, loss_scale="default", system=None):
    return TemplateSettings(template="qwen3_5", tokenizer=tiny, model_dir=tiny, loss_scale=loss_scale,
                                            system=system, media=media_settings({}))


def _msswift(processor, loss_scale, system=None, max_length=None, truncation="raise"):
    from swift import get_template

    template = get_template(processor, template_type="qwen3_5", default_system=system, max_length=max_length,
                            truncation_strategy=truncation, loss_scale=loss_scale)
    template.set_mode("train")
    return template


def _rows(path):
    base = os.path.dirname(path)
    for line in open(path, encoding="utf-8"):
        row = json.loads(line)
        for key in ("images", "videos"):
            if key in row:
                row[key] = [p if os.path.exists(p) else os.path.join(base, p) for p in row[key]]  # as stats does
        yield row


@pytest.mark.slow
@pytest.mark.parametrize("loss_scale,system", [("default", None), ("last_round", "You are terse.")])
def test_lengths_equal_msswift_template_encode(tiny, msswift_processor, synthetic_file, loss_scale, system):
    """Every row of the bundled data (and rows of shapes it lacks): total tokens, final-turn tokens and
    image/video pad tokens equal what ms-swift's real Template.encode produces."""
    template = _msswift(msswift_processor, loss_scale, system)
    pads = set(template._tokenize("<|image_pad|><|video_pad|>"))
    s = _settings(tiny, loss_scale, system)
    for rel in BUNDLED + [synthetic_file]:
        path = str(ROOT / rel)
        ours = measure_file(path, s, use_cache=False)
        assert ours.skipped == 0, ours.notes
        expected = []
        for row in _rows(path):
            enc = template.encode(row)
            expected.append((len(enc["input_ids"]), _last_labelled_span(enc["labels"]),
                             sum(1 for t in enc["input_ids"] if t in pads)))
        got = list(zip(ours.total, ours.completion, ours.media))
        assert got == expected, rel
    assert ours.slow_rows == 0  # the synthetic shapes are all rendered without ms-swift


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["delete", "left", "right"])
def test_truncation_matches_msswift(tiny, msswift_processor, strategy):
    """Counts and lengths after truncation equal ms-swift's template with the same max_length: rows it
    raises MaxLengthError for (`delete`) and the lengths `left`/`right` leave (media pads protected)."""
    from swift.template import MaxLengthError

    limit = 40
    template = _msswift(msswift_processor, "default", max_length=limit, truncation="raise" if strategy == "delete" else strategy)
    s = _settings(tiny)
    budget = Budget(max_length=limit, truncation_strategy=strategy)
    for rel in ("data/sft/train.jsonl", "data/mm/train.jsonl"):
        path = str(ROOT / rel)
        kept, report = after_truncation(measure_file(path, s, use_cache=False), budget)
        lengths, raised = [], 0
        for row in _rows(path):
            try:
                lengths.append(len(template.encode(row)["input_ids"]))
            except MaxLengthError:
                raised += 1
        assert report["rows_over"] > 0, "the check needs rows over the limit"
        if strategy == "delete":
            assert report["rows_dropped"] == raised
        assert kept == lengths, rel


def test_cli_stats_on_a_recipe_json(tmp_path, tiny):
    result = swift_ext("data", "stats", "--recipe", ROOT / "recipes/smoke/tiny-sft.yaml", "--format", "json",
                       "--no-cache")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["rows"] == 35 and out["rows_not_measured"] == 0
    assert out["tokens"]["total"]["max"] == 47 and out["tokens"]["total"]["min"] == 30
    assert out["truncation"] == {"max_length": 256, "strategy": "delete", "rows_over": 0, "tokens_cut": 0,
                                 "rows_dropped": 0}
    # tiny-sft: per_device_train_batch_size 2, gradient_accumulation_steps 1, one process, max_steps 8;
    # transformers keeps the last partial batch: ceil(35 / 2)
    assert out["epoch"]["steps_per_epoch"] == 18 and out["epoch"]["steps"] == 8
    assert out["micro_batch_tokens"]["worst_case"] == 2 * 256


def test_stats_on_a_recipe_takes_the_plans_layout(tmp_path, tiny):
    """`data stats --recipe` counts with the Plan's batch layout, not one it re-derives: with the nodes left
    to the scheduler only make_plan sizes the launch (planner/scheduled.py), so a recount from the recipe
    has no world size at all. Both report the same epoch, at the plan's data-parallel size (2 GPUs)."""
    from swift_ext.planner.plan import make_plan
    from swift_ext.spec.recipe import load_recipe

    recipe = tmp_path / "scheduled.yaml"
    recipe.write_text(f"extends: {ROOT / 'recipes/smoke/tiny-sft.yaml'}\n"
                      f"launch:\n  nodes: scheduler\n  gpus_per_node: 2\n"
                      f"args:\n  dataset: [{ROOT / 'data/sft/train.jsonl'}]\n  val_dataset: []\n")
    plan = make_plan(load_recipe(recipe), oracle=False)
    assert plan.recipe.launch.world_size == 2 and plan.epoch is not None
    result = swift_ext("data", "stats", "--recipe", recipe, "--format", "json", "--no-cache")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    # per_device_train_batch_size 2 x gradient_accumulation_steps 1 x 2 processes; ceil(35 / 4)
    assert out["epoch"]["samples_per_step"] == 4 and out["epoch"]["steps_per_epoch"] == 9
    assert out["epoch"] == plan.epoch


def test_cli_text_report_png_and_cache(tmp_path, tiny):
    png = tmp_path / "lengths.png"
    env = {"SWIFT_EXT_CACHE": str(tmp_path / "cache")}
    args = ["data", "stats", "data/sft/train.jsonl", "--tokenizer", tiny, "--max-length", "45", "--png", png]
    first = swift_ext(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert "rows over max_length 45" in first.stdout and "dropped" in first.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((tmp_path / "cache" / "stats").glob("*.json")), "lengths were not cached"
    again = swift_ext(*args, env=env)
    assert again.returncode == 2 and "already exists; not overwriting" in again.stderr
    cached = swift_ext(*args[:-2], env=env)
    assert "lengths from the cache" in cached.stdout


def test_cache_key_follows_content_tokenizer_and_template(tmp_path, tiny):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps(SYNTHETIC[0]) + "\n")
    s = _settings(tiny)
    key = cache_key(str(data), s)
    assert cache_key(str(data), _settings(tiny, loss_scale="last_round")) != key
    assert cache_key(str(data), TemplateSettings(**{**s.__dict__, "media": media_settings(
        {"IMAGE_MAX_TOKEN_NUM": "256"})})) != key
    data.write_text(json.dumps(SYNTHETIC[1]) + "\n")
    assert cache_key(str(data), s) != key


def test_media_settings_follow_qwen_vl_utils_env():
    media = dict(media_settings({"MAX_PIXELS": str(1024 * 32 * 32), "FPS_MAX_FRAMES": "12"}))
    assert media["IMAGE_MAX_TOKEN_NUM"] == 1024  # MAX_PIXELS // (16*2)**2, as compat_qwen_vl_utils
    assert media["FPS_MAX_FRAMES"] == 12 and media["VIDEO_MAX_TOKEN_NUM"] == 768
    with pytest.raises(StatsError, match="IMAGE_MAX_TOKEN_NUM"):
        media_settings({"IMAGE_MAX_TOKEN_NUM": "lots"})


def test_image_budget_changes_image_tokens(tiny, tmp_path):
    row = {"messages": [{"role": "user", "content": "<image>?"}, {"role": "assistant", "content": "x"}],
           "images": [str(ROOT / "data/media/red_square.png")]}
    data = tmp_path / "img.jsonl"
    data.write_text(json.dumps(row) + "\n")
    from PIL import Image

    w, h = Image.open(row["images"][0]).size
    expected_h, expected_w = smart_resize(h, w, 32, 4 * 1024, 16384 * 1024, 200)
    small = measure_file(str(data), _settings(tiny), use_cache=False)
    assert small.media == [expected_h * expected_w // 1024]
    big = TemplateSettings(**{**_settings(tiny).__dict__,
                                    "media": media_settings({"IMAGE_MIN_TOKEN_NUM": "64"})})
    assert measure_file(str(data), big, use_cache=False).media == [64]


def test_packing_and_micro_batches():
    lengths = [100, 900, 500, 500, 1000, 24, 300, 700]
    packs = pack(lengths, 1024)
    assert sum(packs) == sum(lengths) and max(packs) <= 1024
    assert len(packs) == 4  # ceil(4024 / 1024): best-fit-decreasing finds the minimum here
    summary = summarize(Lengths(["x"], prompt=lengths, completion=[0] * 8, media=[0] * 8),
                              Budget(max_length=1024, packing=True, packing_length=1024, padding_free=True,
                                           micro_batch_size=2, samples_per_step=2))
    assert summary["packing"]["efficiency"] == round(4024 / (4 * 1024), 4)
    assert summary["micro_batch_tokens"]["max"] <= 2048 and summary["micro_batch_tokens"]["worst_case"] == 2048
    padded = micro_batches([10, 100], 2, padded_to_longest=True)
    assert padded == [200]


def test_dpo_rows_count_their_chosen_and_rejected_sequences():
    """A DPO sample is two sequences, prompt + chosen and prompt + rejected, truncated one by one (delete drops
    the row when either is over max_length) and run in one micro-batch."""
    lengths = Lengths(["x"], prompt=[10, 10, 10], completion=[5, 30, 5], media=[0, 0, 0], rejected=[8, 5, 35])
    kept, report = after_truncation(lengths, Budget(task="dpo", max_length=40))
    assert kept == [10 + 5 + 10 + 8, 40 + 15] and report["rows_dropped"] == 1  # the third's rejected is 45
    cut, _ = after_truncation(lengths, Budget(task="dpo", max_length=40, truncation_strategy="right"))
    assert cut == [33, 55, 55]
    summary = summarize(lengths, Budget(task="dpo", max_length=64, padding_free=True, micro_batch_size=3))
    assert summary["micro_batch_tokens"]["max"] == 33 + 55 + 60
    assert summary["micro_batch_tokens"]["worst_case"] == 2 * 3 * 64
    sft, _ = after_truncation(lengths, Budget(task="sft", max_length=64))
    assert sft == [15, 40, 15]  # other tasks train the chosen sequence only


@pytest.mark.slow
def test_dpo_rejected_lengths_equal_msswift_rlhf_encode(tiny, msswift_processor):
    """The rejected sequence of every bundled DPO row has the final-turn tokens ms-swift's rlhf encoding gives it."""
    template = _msswift(msswift_processor, "default")
    template.set_mode("rlhf")
    path = str(ROOT / "data/dpo/train.jsonl")
    ours = measure_file(path, _settings(tiny), use_cache=False)
    expected = []
    for row in _rows(path):
        enc = template.encode(row)
        expected.append((len(enc["chosen_input_ids"]), _last_labelled_span(enc["rejected_labels"]),
                         len(enc["rejected_input_ids"])))
    got = [(p + c, r, p + r) for p, c, r in zip(ours.prompt, ours.completion, ours.rejected)]
    assert got == expected and all(r > 0 for r in ours.rejected)


def test_after_truncation_right_reports_lost_completions():
    lengths = Lengths(["x"], prompt=[10, 60, 10], completion=[5, 20, 50], media=[0, 0, 0])
    kept, report = after_truncation(lengths, Budget(max_length=40, truncation_strategy="right"))
    assert kept == [15, 40, 40]
    assert report["rows_over"] == 2 and report["rows_losing_completion_tokens"] == 2
    assert report["rows_without_completion"] == 1  # the 60-token prompt leaves no room for its answer
    split, rep = after_truncation(lengths, Budget(max_length=40, truncation_strategy="split"))
    assert split == [15, 40, 40, 40, 20] and rep["pieces"] == 4


def test_bad_input_is_a_clear_error(tmp_path, tiny):
    missing = swift_ext("data", "stats", tmp_path / "nope.jsonl", "--tokenizer", tiny)
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
    no_tok = swift_ext("data", "stats", "data/sft/train.jsonl", "--tokenizer", tmp_path)
    assert no_tok.returncode == 2 and "no tokenizer.json" in no_tok.stderr
    broken = tmp_path / "b.jsonl"
    broken.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
                      "{not json\n")
    result = swift_ext("data", "stats", broken, "--tokenizer", tiny, "--format", "json", "--no-cache")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows_not_measured"] == 1


def test_plan_sizes_memory_from_local_data(tiny):
    """padding_free SFT on local data: the estimate uses the data's largest micro-batch, says so, and keeps
    the worst case beside it; with a hub dataset it stays the worst case."""
    from swift_ext.planner.plan import make_plan
    from swift_ext.spec.recipe import load_recipe

    over = ["args.dataset=[data/sft/train.jsonl]", "args.packing=false", "args.padding_free=true",
            "args.micro_batch_size=2", "args.global_batch_size=4"]
    recipe = load_recipe(ROOT / "recipes/qwen3_6/sft-lora-4x32g.yaml", over)
    plan = make_plan(recipe)
    mem = plan.memory
    settings, _ = datafit.settings_from_recipe(recipe)
    summary = summarize(measure(["data/sft/train.jsonl"], settings, use_cache=False),
                              datafit.budget_from_plan(plan))
    assert mem.basis == "data max" and mem.tokens_per_micro_batch == summary["micro_batch_tokens"]["max"]
    assert mem.worst_case_gib > mem.per_gpu_gib + 1  # 2 x 4096 tokens vs ~90
    assert any(n.startswith("data: 35 rows") for n in plan.notes)
    assert mem.as_dict()["basis"] == "data max" and mem.as_dict()["worst_case_gib"] == round(mem.worst_case_gib, 2)
    hub = make_plan(load_recipe(ROOT / "recipes/qwen3_6/sft-lora-4x32g.yaml", over[1:]))
    assert hub.memory.basis == "worst case" and hub.memory.worst_case_gib is None
    assert hub.memory.per_gpu_gib == pytest.approx(mem.worst_case_gib)
    padded = make_plan(load_recipe(ROOT / "recipes/qwen3_6/sft-lora-4x32g.yaml", over[:2] + over[3:] +
                                   ["args.padding_free=false"]))
    assert padded.memory.basis == "worst case"  # padded batches: the worst case still applies


def test_stats_reads_compressed_files_names_unreadable_rows_and_caps_huge_rows(tmp_path, tiny):
    import gzip

    from swift_ext.datasets.lengths import ROW_BYTE_CAP

    s = _settings(tiny)
    rows = (ROOT / "data" / "sft" / "train.jsonl").read_bytes()
    plain = measure_file(str(ROOT / "data" / "sft" / "train.jsonl"), s, use_cache=False)
    # gzip content under a .jsonl name: ms-swift's json reader takes it, and so does data check
    (tmp_path / "train.jsonl").write_bytes(gzip.compress(rows))
    assert measure_file(str(tmp_path / "train.jsonl"), s, use_cache=False).total == plain.total
    huge = json.dumps({"messages": [{"role": "user", "content": "x " * (ROW_BYTE_CAP // 2 + 10)},
                                    {"role": "assistant", "content": "y"}]}).encode()
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(rows + b"{not json\n" + b'{"messages": "x"}\n' + huge + b"\n" + b'"\xff"\n')
    lengths = measure_file(str(mixed), s, use_cache=False)
    n = len(rows.splitlines())
    assert lengths.total == plain.total and lengths.skipped == 3 and lengths.too_large == 1
    named = [note for note in lengths.notes if str(mixed) in note]
    assert any(f":{n + 1}: not measured: invalid JSON" in note for note in named), named
    assert any(f":{n + 2}: not measured: not a JSON object" in note for note in named), named
    assert any(f":{n + 3}: a " in note and "not tokenized" in note for note in named), named
    assert any(f":{n + 4}: not measured: not UTF-8" in note for note in named), named
    summary = summarize(lengths, Budget(max_length=1 << 20))
    assert summary["rows_too_large"] == 1 and summary["truncation"]["rows_over"] == 1
    assert summary["truncation"]["rows_dropped"] == 1  # delete: ms-swift drops it


def test_the_msswift_path_leaves_the_process_loggers_as_they_were(tmp_path, tiny):
    """data stats quiets ms-swift's logger while it runs ms-swift's template, then restores it: a process that
    goes on (a notebook, a test session) keeps its logs (the level used to stay at ERROR for good)."""
    import logging

    tool = {"type": "function", "function": {"name": "add", "description": "add two numbers",
                                             "parameters": {"type": "object", "properties": {}}}}
    path = tmp_path / "tools.jsonl"
    path.write_text(json.dumps({"tools": [tool], "messages": [{"role": "user", "content": "1+1?"},
                                                              {"role": "assistant", "content": "2"}]}) + "\n")
    swift = logging.getLogger("swift")
    before = swift.level
    swift.setLevel(logging.INFO)
    try:
        ours = measure_file(str(path), _settings(tiny), use_cache=False)
        assert ours.slow_rows == 1 and swift.level == logging.INFO
    finally:
        swift.setLevel(before)
