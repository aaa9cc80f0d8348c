"""checkpoint-format (msswift/checkpoint_rules.py): a Megatron load argument pointed at the other checkpoint format.
mcore_* arguments need what megatron-core's dist_checkpointing opens (checked here against the installed
megatron-core itself), adapters a safetensors adapter; the directories each argument does read are not refused."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

RECIPE = {
    "description": "Megatron LoRA continued from a checkpoint",
    "command": "sft", "engine": "megatron",
    "launch": {"nodes": 1, "gpus_per_node": 8, "gpu": "H100"},
    "args": {"model": "Qwen/Qwen3-8B", "tuner_type": "lora", "target_modules": ["all-linear"],
             "dataset": ["train.jsonl"], "tensor_model_parallel_size": 2, "sequence_parallel": True,
             "micro_batch_size": 1, "global_batch_size": 16, "train_iters": 100, "max_length": 2048},
}


def _plan(tmp_path, recipe=RECIPE, **args):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**recipe, "args": {**recipe["args"], **args}}))
    plan = make_plan(load_recipe(path, []), oracle=False)
    return [f for f in plan.errors if f.code == "checkpoint-format"]


def _megatron_core():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core import dist_checkpointing
        from megatron.core.dist_checkpointing.core import CheckpointingConfig, CheckpointingException, save_config
    return dist_checkpointing, CheckpointingConfig, CheckpointingException, save_config


def _mcore_checkpoint(root: Path, step: int = 200, adapter: bool = True, weights: bool = True) -> Path:
    """checkpoint-N as ms-swift's save_checkpoint writes it: the tracker, iter_N with common.pt and (when it saved the
    models) megatron-core's metadata.json, written by megatron-core itself, and (save_safetensors) the adapter."""
    _, config, _, save_config = _megatron_core()
    ckpt = root / f"checkpoint-{step}"
    iter_dir = ckpt / f"iter_{step:07d}"
    iter_dir.mkdir(parents=True)
    (ckpt / "latest_checkpointed_iteration.txt").write_text(str(step))
    torch.save({"iteration": step}, iter_dir / "common.pt")
    if weights:
        save_config(config("torch_dist"), str(iter_dir))
    if adapter:
        (ckpt / "adapter_model.safetensors").write_bytes(b"")
        (ckpt / "adapter_config.json").write_text("{}")
    return ckpt


def _safetensors_adapter(root: Path) -> Path:
    """A save_safetensors LoRA checkpoint saved with no_save_optim (no mcore checkpoint: trainers/base.py)."""
    ckpt = root / "checkpoint-400"
    ckpt.mkdir(parents=True)
    for name in ("adapter_model.safetensors", "adapter_config.json", "args.json"):
        (ckpt / name).write_text("{}")
    return ckpt


def _hf_model(root: Path) -> Path:
    model = root / "Qwen3-8B"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model-00001-of-00002.safetensors").write_bytes(b"")
    return model


def _engine_refuses(directory: Path, iteration_dir: str) -> bool:
    """megatron-core's own reader on the directory load_mcore_checkpoint would open."""
    dist_checkpointing, _, CheckpointingException, _ = _megatron_core()
    try:
        dist_checkpointing.load_common_state_dict(str(directory / iteration_dir))
    except CheckpointingException:
        return True
    return False


@pytest.mark.parametrize("key, make, hint", [
    ("mcore_adapter", _safetensors_adapter, "adapters:"),              # ms-swift#6862: the safetensors adapter
    ("mcore_model", _hf_model, "model:"),                               # ms-swift#5914: the HF model directory
])
def test_an_mcore_argument_on_another_format_is_refused(tmp_path, key, make, hint):
    directory = make(tmp_path)
    found = _plan(tmp_path, **{key: str(directory)})
    assert [f.path for f in found] == [f"args.{key}"]
    assert hint in found[0].hint
    assert _engine_refuses(directory, "iter_0000000")


def test_the_run_directory_above_its_checkpoints_is_refused_with_the_latest_named(tmp_path):
    run = tmp_path / "v0-20260101-000000"
    _mcore_checkpoint(run, 100)
    _mcore_checkpoint(run, 200)
    found = _plan(tmp_path, mcore_adapter=str(run))
    assert [f.path for f in found] == ["args.mcore_adapter"]
    assert found[0].hint.startswith(f"mcore_adapter: {run}/checkpoint-200")
    assert _engine_refuses(run, "iter_0000000")


def test_a_tracker_naming_a_missing_iteration_is_refused(tmp_path):
    ckpt = _mcore_checkpoint(tmp_path, 300)
    shutil.rmtree(ckpt / "iter_0000300")
    assert [f.path for f in _plan(tmp_path, mcore_adapter=str(ckpt))] == ["args.mcore_adapter"]
    assert _engine_refuses(ckpt, "iter_0000300")


def test_a_checkpoint_saved_without_mcore_weights_is_refused_through_mcore_adapter(tmp_path):
    # save_safetensors with no_save_optim: save_checkpoint passes no models, iter_N holds common.pt alone
    ckpt = _mcore_checkpoint(tmp_path, 300, weights=False)
    found = _plan(tmp_path, mcore_adapter=str(ckpt))
    assert [f.path for f in found] == ["args.mcore_adapter"] and "only common.pt" in found[0].message
    assert found[0].hint.startswith(f"adapters: {ckpt}")
    assert _engine_refuses(ckpt, "iter_0000300")


def test_what_the_rule_accepts_megatron_core_loads(tmp_path):
    ckpt = _mcore_checkpoint(tmp_path, 7)
    assert not _plan(tmp_path, mcore_adapter=str(ckpt)) and not _engine_refuses(ckpt, "iter_0000007")


def test_adapters_on_an_mcore_only_checkpoint_are_refused(tmp_path):
    ckpt = _mcore_checkpoint(tmp_path, adapter=False)  # save_safetensors false: no adapter_model.safetensors
    found = _plan(tmp_path, adapters=[str(ckpt)])
    assert [f.path for f in found] == ["args.adapters"]
    assert found[0].hint == f"mcore_adapter: {ckpt}"


@pytest.mark.parametrize("args", [
    lambda t: {"mcore_adapter": str(_mcore_checkpoint(t))},             # the checkpoint-N itself
    lambda t: {"adapters": [str(_mcore_checkpoint(t))]},                # default save: both formats side by side
    lambda t: {"adapters": [str(_safetensors_adapter(t))]},             # the safetensors adapter, as #6862 was told
    lambda t: {"model": str(_hf_model(t))},                             # the HF model through model
    lambda t: {"mcore_adapter": "/not/here/checkpoint-200"},            # not readable here: not judged
    lambda t: {"adapters": [str(_mcore_checkpoint(t, adapter=False))],  # mcore_adapter is read instead of adapters
               "mcore_adapter": str(t / "checkpoint-200")},
])
def test_the_format_each_argument_reads_is_not_refused(tmp_path, args):
    assert not _plan(tmp_path, **args(tmp_path))


def test_a_full_checkpoint_through_mcore_model_is_not_refused(tmp_path):
    ckpt = _mcore_checkpoint(tmp_path, adapter=False)
    recipe = {**RECIPE, "args": {**RECIPE["args"], "tuner_type": "full"}}
    assert not _plan(tmp_path, recipe, mcore_model=str(ckpt))


def _with_args(ckpt: Path, **saved) -> Path:
    (ckpt / "args.json").write_text(json.dumps({"model": "Qwen/Qwen3-8B", **saved}))
    return ckpt


def test_a_lora_runs_checkpoint_as_mcore_model_is_refused(tmp_path):
    # save_checkpoint writes a LoRA run's mcore checkpoint with peft_format: the adapter tensors only
    ckpt = _with_args(_mcore_checkpoint(tmp_path), tuner_type="lora")
    found = _plan(tmp_path, mcore_model=str(ckpt))
    assert [f.path for f in found] == ["args.mcore_model"] and found[0].hint.startswith(f"mcore_adapter: {ckpt}")


@pytest.mark.parametrize("saved", [{"tuner_type": "full"},                                   # a full run's weights
                                   {"tuner_type": "lora_llm"},                               # saved without peft_format
                                   {"tuner_type": "lora", "to_mcore": True, "merge_lora": True,  # export merged it
                                    "tensor_model_parallel_size": 1},
                                   # `swift export --to_mcore --model <a LoRA run's checkpoint-N-merged>`: ExportArguments
                                   # (no Megatron fields) forced tuner_type lora from that args.json and merge_lora off,
                                   # and swift/megatron/convert.py saved the full model
                                   {"tuner_type": "lora", "to_mcore": True, "merge_lora": False, "to_ollama": False}])
def test_an_mcore_checkpoint_with_the_base_weights_is_not_refused(tmp_path, saved):
    ckpt = _with_args(_mcore_checkpoint(tmp_path), **saved)
    assert not _plan(tmp_path, mcore_model=str(ckpt))


def test_swift_exports_args_json_says_lora_without_megatron_fields():
    """Why a `swift export --to_mcore` output is told apart by its missing Megatron fields: the installed
    ExportArguments defaults tuner_type to lora (BaseArguments) even for a plain `--model Qwen/... --to_mcore true`,
    has no tensor_model_parallel_size, and save_args dumps every field into the output's args.json."""
    from dataclasses import fields

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from swift.arguments import ExportArguments
    defaults = {f.name: f.default for f in fields(ExportArguments)}
    assert defaults["tuner_type"] == "lora" and "to_mcore" in defaults
    assert "tensor_model_parallel_size" not in defaults


def test_a_plain_swift_export_to_mcore_as_mcore_model_is_not_refused(tmp_path):
    # args.json of `swift export --model Qwen/Qwen3-8B --to_mcore true`: tuner_type lora by default, merge_lora off
    ckpt = _with_args(_mcore_checkpoint(tmp_path, adapter=False), tuner_type="lora", to_mcore=True,
                      merge_lora=False, to_hf=False, quant_method=None)
    recipe = {**RECIPE, "args": {**RECIPE["args"], "tuner_type": "full"}}
    assert not _plan(tmp_path, recipe, mcore_model=str(ckpt))
    assert not _plan(tmp_path, mcore_model=str(ckpt))  # a LoRA on it: the base


def test_a_megatron_export_of_an_unmerged_lora_as_mcore_model_is_still_refused(tmp_path):
    # megatron export --to_mcore --adapters X (merge_lora false) saves with peft_format: the adapter tensors only
    ckpt = _with_args(_mcore_checkpoint(tmp_path), tuner_type="lora", to_mcore=True, merge_lora=False,
                      tensor_model_parallel_size=1)
    assert [f.path for f in _plan(tmp_path, mcore_model=str(ckpt))] == ["args.mcore_model"]


def test_megatron_cores_load_planner_refuses_keys_the_checkpoint_lacks():
    """The engine line: TorchDistLoadShardedStrategy.load plans with MCoreLoadPlanner, torch's DefaultLoadPlanner with
    allow_partial_load left False, whose local plan raises on a requested key the checkpoint's metadata lacks."""
    from torch.distributed.checkpoint.default_planner import create_default_local_load_plan
    from torch.distributed.checkpoint.metadata import Metadata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.dist_checkpointing.strategies.torch import MCoreLoadPlanner
    assert MCoreLoadPlanner().allow_partial_load is False
    lora_only = Metadata(state_dict_metadata={"model.decoder.layers.0.self_attention.linear_qkv.lora_A.default.weight":
                                              None})
    with pytest.raises(RuntimeError, match="Missing key in checkpoint state_dict"):
        create_default_local_load_plan({"model.decoder.layers.0.self_attention.linear_qkv.weight": torch.zeros(1)},
                                       lora_only, strict=not MCoreLoadPlanner().allow_partial_load)
