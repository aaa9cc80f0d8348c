"""An evaluation of a Megatron torch_dist checkpoint exports it first (`megatron export`, after/merge.py's plan, GPUs
numbered from 0); with eval.devices the export runs on those GPUs, not on the trainer's, or is refused when they are
fewer than the export's grid."""

from __future__ import annotations

import json

import pytest

from swift_ext.after.evaluate import Target, infer_launch
from swift_ext.after.merge import read_checkpoint
from swift_ext.spec.findings import UserError
from swift_ext.spec.recipe import Eval

ARGS = {"model": "Qwen/Qwen3-30B-A3B", "model_type": "qwen3_moe", "tuner_type": "lora", "template": "qwen3",
        "tensor_model_parallel_size": 2, "expert_model_parallel_size": 2, "pipeline_model_parallel_size": 1}


def torch_dist_checkpoint(tmp_path):
    ckpt = tmp_path / "run" / "v0-20261207-101010" / "checkpoint-100"
    (ckpt / "iter_0000100").mkdir(parents=True)
    (ckpt / "args.json").write_text(json.dumps(ARGS))
    (ckpt / "latest_checkpointed_iteration.txt").write_text("100")
    # megatron-core's marker of a distributed checkpoint, which merge checks before planning the export
    (ckpt / "iter_0000100" / "metadata.json").write_text(json.dumps({"sharded_backend": "torch_dist"}))
    return Target(100, read_checkpoint(ckpt))


def test_the_export_runs_on_eval_devices(tmp_path):
    _, _, before = infer_launch(torch_dist_checkpoint(tmp_path), Eval(devices="4,5,6"), tmp_path, tmp_path / "w")
    (export,) = before
    assert export.argv[:2] == ["megatron", "export"]
    assert export.env["NPROC_PER_NODE"] == "2" and export.env["CUDA_VISIBLE_DEVICES"] == "4,5"


def test_without_eval_devices_the_export_keeps_its_own_numbering(tmp_path):
    _, _, (export,) = infer_launch(torch_dist_checkpoint(tmp_path), Eval(), tmp_path, tmp_path / "w")
    assert export.env["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_fewer_eval_devices_than_the_export_needs_is_refused(tmp_path):
    with pytest.raises(UserError, match="eval.devices '7' has 1 GPU.*takes 2"):
        infer_launch(torch_dist_checkpoint(tmp_path), Eval(devices="7"), tmp_path, tmp_path / "w")
