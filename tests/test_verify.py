"""swift-ext verify: a merged model checked against base + adapter.

Fast tests build small safetensors checkpoints by hand (structure and weight checks, no ms-swift);
the slow tests take conftest's shared tiny LoRA SFT run of the Qwen3.6-architecture model, merged with
`swift-ext merge` (which verifies by default), then damage copies of the merge: one tensor scaled,
one MTP tensor dropped. Each must fail with the tensor named."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from conftest import swift_ext
from swift_ext.after.verify import VerifyReport, Shards, check_structure, check_weights, read_adapter, weight_index
from swift_ext.spec.findings import UserError


def write_model(path, tensors: dict, shards: dict | None = None):
    """A model dir: config.json and either one model.safetensors or the given shards + index."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"architectures": ["Nope"]}))
    if shards is None:
        save_file(tensors, path / "model.safetensors")
        return path
    weight_map = {}
    for name, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, path / name)
        weight_map.update({k: name for k in keys})
    (path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return path


def base_tensors():
    g = torch.Generator().manual_seed(0)
    return {"model.layers.0.q_proj.weight": torch.randn(8, 4, generator=g),
            "model.layers.0.norm.weight": torch.ones(4),
            "model.visual.patch.weight": torch.randn(3, 3, generator=g),
            "mtp.fc.weight": torch.randn(4, 8, generator=g),
            "mtp.layers.0.q_proj.weight": torch.randn(8, 4, generator=g)}


def adapter_dir(path, a, b, r=2, alpha=4):
    path.mkdir(parents=True)
    save_file({"base_model.model.model.layers.0.q_proj.lora_A.weight": a,
               "base_model.model.model.layers.0.q_proj.lora_B.weight": b}, path / "adapter_model.safetensors")
    (path / "adapter_config.json").write_text(json.dumps({"r": r, "lora_alpha": alpha, "peft_type": "LORA"}))
    return path


def run_checks(base, merged, adapter=None) -> VerifyReport:
    report = VerifyReport(str(merged), str(base), None)
    b, m = Shards(weight_index(base)), Shards(weight_index(merged))
    check_structure(report, b, m, set())
    if adapter is not None:
        check_weights(report, b, m, read_adapter(adapter))
    return report


def errors(report: VerifyReport) -> str:
    return "\n".join(f.message for f in report.findings if f.severity == "error")


def test_structure_clean_sharded_vs_single_file(tmp_path):
    t = base_tensors()
    base = write_model(tmp_path / "base", t, {"a.safetensors": [k for k in t if not k.startswith("mtp")],
                                              "b.safetensors": [k for k in t if k.startswith("mtp")]})
    merged = write_model(tmp_path / "merged", t)
    report = run_checks(base, merged)
    assert report.ok, errors(report)
    assert report.structure["by_group"] == {"MTP": 2, "text": 2, "vision": 1}


def test_structure_names_missing_mtp_extra_shape_dtype_and_nan(tmp_path):
    t = base_tensors()
    base = write_model(tmp_path / "base", t)
    bad = dict(t)
    del bad["mtp.fc.weight"]
    bad["model.layers.0.q_proj.lora_A.weight"] = torch.zeros(2, 4)
    bad["model.visual.patch.weight"] = torch.zeros(3, 4)
    bad["model.layers.0.norm.weight"] = torch.tensor([1.0, float("nan"), 1.0, float("inf")])
    bad["mtp.layers.0.q_proj.weight"] = t["mtp.layers.0.q_proj.weight"].to(torch.float16)
    report = run_checks(base, write_model(tmp_path / "merged", bad))
    text = errors(report)
    assert not report.ok
    assert "missing from the merged model: mtp.fc.weight (MTP)" in text
    assert "model.layers.0.q_proj.lora_A.weight" in text and "does not have" in text
    assert "model.visual.patch.weight: base [3, 3], merged [3, 4]" in text
    assert "model.layers.0.norm.weight: 1 NaN, 1 Inf" in text
    assert "mtp.layers.0.q_proj.weight: F16 (expected F32)" in text


def test_weights_recompute_the_lora_merge_and_name_a_damaged_tensor(tmp_path):
    t = base_tensors()
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 4, generator=g), torch.randn(8, 2, generator=g)
    adapter = adapter_dir(tmp_path / "ckpt", a, b)
    good = dict(t)
    good["model.layers.0.q_proj.weight"] = t["model.layers.0.q_proj.weight"] + (b @ a) * 2.0  # alpha / r
    report = run_checks(write_model(tmp_path / "base", t), write_model(tmp_path / "good", good), adapter)
    assert report.ok, errors(report)
    assert report.weights["largest_lora_delta"] > 0.1 and report.weights["lora_modules"] == 1

    unmerged = run_checks(tmp_path / "base", write_model(tmp_path / "unmerged", t), adapter)
    assert "not base + LoRA delta: model.layers.0.q_proj.weight" in errors(unmerged)
    touched = dict(good)
    touched["mtp.fc.weight"] = t["mtp.fc.weight"] * 1.01
    report = run_checks(tmp_path / "base", write_model(tmp_path / "touched", touched), adapter)
    assert "does not train differs from the base model: mtp.fc.weight" in errors(report)
    assert "q_proj" not in errors(report)


def test_verify_cli_errors_are_clear(tmp_path):
    result = swift_ext("verify", tmp_path / "nope")
    assert result.returncode == 2 and "no config.json" in result.stderr and "Traceback" not in result.stderr
    merged = write_model(tmp_path / "m", base_tensors())
    result = swift_ext("verify", merged)
    assert result.returncode == 2 and "--base" in result.stderr


# --------------------------------------------------------------------------------------------------
# The real chain on the tiny model


@pytest.fixture
def tiny_merge(tiny_sft_merge):
    return tiny_sft_merge


def damaged_copy(merged, dest, edit):
    shutil.copytree(merged, dest, ignore=shutil.ignore_patterns("verify*.json"))
    for shard in dest.glob("*.safetensors"):
        with safe_open(shard, "pt") as fh:
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        if edit(tensors):
            save_file(tensors, shard, metadata={"format": "pt"})
    index = dest / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    present = set()
    for shard in dest.glob("*.safetensors"):
        with safe_open(shard, "pt") as fh:
            present |= set(fh.keys())
    data["weight_map"] = {k: v for k, v in data["weight_map"].items() if k in present}
    index.write_text(json.dumps(data))
    return dest


@pytest.mark.slow
def test_clean_merge_verifies(tiny_merge):
    ckpt, merged, result = tiny_merge
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((merged / "verify.json").read_text())
    assert report["ok"] and report["adapter"] == str(ckpt)
    assert report["structure"]["by_group"]["MTP"] > 0 and report["structure"]["missing"] == []
    assert report["weights"]["lora_modules"] > 0 and report["weights"]["largest_lora_delta"] > 0
    parity = report["parity"]
    assert parity["prompts"] == 4 and parity["prompt_source"].endswith("val.jsonl")
    assert parity["max_abs_diff"] <= 1e-3 and parity["top1_agreement"] >= 0.99
    assert len(parity["per_layer_max_abs_diff"]) == 4
    assert report["generate"]["exit_code"] == 0 and isinstance(report["generate"]["response"], str)
    assert "top-1 agreement" in result.stdout and "verified" in result.stderr


@pytest.mark.slow
def test_perturbed_tensor_is_named(tiny_merge, tmp_path):
    ckpt, merged, _ = tiny_merge
    key = "model.language_model.layers.3.self_attn.o_proj.weight"

    def perturb(tensors):
        if key in tensors:
            tensors[key] = tensors[key] * 1.5
            return True
        return False

    bad = damaged_copy(merged, tmp_path / "perturbed", perturb)
    result = swift_ext("verify", bad, "--adapter", ckpt, "--no-generate", timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]
    report = json.loads((bad / "verify.json").read_text())
    assert not report["ok"] and key in report["weights"]["bad"][0]
    assert any(key in f["message"] and f["code"] == "weights" for f in report["findings"])
    assert report["parity"]["first_diverging_layer"] == 3  # the logits moved too, from that layer on


@pytest.mark.slow
def test_dropped_mtp_tensor_is_named(tiny_merge, tmp_path):
    ckpt, merged, _ = tiny_merge
    key = "mtp.fc.weight"

    def drop(tensors):
        return tensors.pop(key, None) is not None

    bad = damaged_copy(merged, tmp_path / "no-mtp", drop)
    result = swift_ext("verify", bad, "--adapter", ckpt, "--no-parity", "--no-generate", timeout=600)
    assert result.returncode == 1 and "verify failed" in result.stderr
    report = json.loads((bad / "verify.json").read_text())
    assert report["structure"]["missing"] == [key]
    assert any(f"missing from the merged model: {key} (MTP)" in f["message"] for f in report["findings"])


def test_base_model_found_in_the_hugging_face_cache_as_the_planner_finds_it(tmp_path, monkeypatch):
    """HF_HUB_CACHE honoured and the snapshot refs/main names preferred over a newer one: the same
    lookup the planner uses for model shapes (planner/hubcache.py)."""
    from swift_ext.after.verify import resolve_base
    from swift_ext.planner.shape_lookup import locate_config

    repo = tmp_path / "hub" / "models--acme--tiny"
    for rev in ("aaa111", "bbb222"):
        (repo / "snapshots" / rev).mkdir(parents=True)
        (repo / "snapshots" / rev / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("aaa111")
    os.utime(repo / "snapshots" / "aaa111", (1, 1))  # the older snapshot is the one main points at
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms-empty"))
    merged = tmp_path / "merged"
    merged.mkdir()
    assert resolve_base(merged, None, "acme/tiny") == repo / "snapshots" / "aaa111"
    assert locate_config("acme/tiny") == (repo / "snapshots" / "aaa111" / "config.json", "Hugging Face cache")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    with pytest.raises(UserError):
        resolve_base(merged, None, "acme/tiny")
