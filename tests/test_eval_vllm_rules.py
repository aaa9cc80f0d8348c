"""The recipe's eval.backend vllm at plan time (planner/eval_rules.py): engine swift's LoRA checkpoints are evaluated
as `swift infer --infer_backend vllm --adapters CKPT`, whose adapter vLLM must load (eval-vllm-lora; the same
adapter features after/infer.py refuses when the evaluation starts, tests/test_after_vllm_adapter.py), and the
local follower's vLLM starts on the trainer's GPUs unless eval.devices says otherwise (eval-vllm-gpu)."""

from __future__ import annotations

import pytest

from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

SFT = """\
description: Qwen3-8B LoRA SFT evaluated with vLLM on a GPU of its own
command: sft
engine: swift
launch: {nodes: 1, gpus_per_node: 3, gpu: H100}
env: {CUDA_VISIBLE_DEVICES: "0,1,2"}
args:
  model: Qwen/Qwen3-8B
  tuner_type: lora
  lora_rank: 32
  dataset: ['swift/self-cognition#500']
  split_dataset_ratio: 0.01
  max_length: 2048
eval:
  backend: vllm
  devices: "3"
"""


def plan_of(tmp_path, *overrides):
    path = tmp_path / "r.yaml"
    path.write_text(SFT)
    return make_plan(load_recipe(path, list(overrides)), oracle=False)


def codes(problems, code):
    return [p for p in problems if p.code == code]


def test_lora_rank_32_with_its_own_gpu_plans_clean(tmp_path):
    # rank 32 is above vLLM's default max_lora_rank 16: the evaluation passes --vllm_max_lora_rank 32 itself
    result = plan_of(tmp_path)
    assert not codes(result.errors, "eval-vllm-lora") and not codes(result.warnings, "eval-vllm-gpu")


@pytest.mark.parametrize("override, path", [("args.use_dora=true", "args.use_dora"),
                                            ("args.modules_to_save=[lm_head]", "args.modules_to_save"),
                                            ("args.lora_bias=all", "args.lora_bias"),
                                            ("args.lora_rank=1024", "args.lora_rank")])
def test_an_adapter_vllm_refuses_is_an_error_on_its_flag(tmp_path, override, path):
    found = codes(plan_of(tmp_path, override).errors, "eval-vllm-lora")
    assert [f.path for f in found] == [path]


def test_the_transformers_backend_or_a_full_run_is_not_judged(tmp_path):
    assert not codes(plan_of(tmp_path, "args.use_dora=true", "eval.backend=transformers").errors, "eval-vllm-lora")
    assert not codes(plan_of(tmp_path, "args.modules_to_save=[lm_head]", "args.tuner_type=full").errors,
                     "eval-vllm-lora")


def test_vllm_next_to_training_without_eval_devices_is_warned(tmp_path):
    found = codes(plan_of(tmp_path, "eval.devices=null").warnings, "eval-vllm-gpu")
    assert [f.path for f in found] == ["eval.backend"]


VL = """\
description: InternVL3-1B LoRA with the vision tower unfrozen, evaluated with vLLM
command: sft
engine: swift
launch: {nodes: 1, gpus_per_node: 1, gpu: A100-80G}
args:
  model: OpenGVLab/InternVL3-1B-Instruct
  tuner_type: lora
  target_modules: [all-linear]
  freeze_vit: false
  dataset: ['AI-ModelScope/LaTeX_OCR#2000']
  split_dataset_ratio: 0.01
eval:
  backend: vllm
  devices: "1"
"""


def vl_plan(tmp_path, *overrides):
    path = tmp_path / "vl.yaml"
    path.write_text(VL)
    return make_plan(load_recipe(path, list(overrides)), oracle=False)


def test_vision_lora_with_vllm_evaluation_is_warned_on_the_unfrozen_part(tmp_path):
    assert [f.path for f in codes(vl_plan(tmp_path).warnings, "eval-vllm-vision-lora")] == ["args.freeze_vit"]
    aligner = vl_plan(tmp_path, "args.freeze_vit=true", "args.freeze_aligner=false")
    assert [f.path for f in codes(aligner.warnings, "eval-vllm-vision-lora")] == ["args.freeze_aligner"]


@pytest.mark.parametrize("runs", [("args.freeze_vit=true",),                   # LoRA on the language model only
                                  ("eval.backend=transformers",),              # PEFT loads any adapter
                                  ("args.model=Qwen/Qwen3-8B",)])              # a text model has no vision tower
def test_language_model_lora_or_transformers_evaluation_is_not_warned(tmp_path, runs):
    assert not codes(vl_plan(tmp_path, *runs).warnings, "eval-vllm-vision-lora")


# eval-vllm-memory: the evaluation's `swift infer --infer_backend vllm` runs on one GPU at 0.9 with max_model_len
# from config.json (vllm-project/vllm#10517: Llama-3.1-8B-Instruct on a 24 GB card).
def test_weights_plus_one_config_length_sequence_past_the_gpu_is_an_error_on_eval_backend(tmp_path):
    result = plan_of(tmp_path, "args.model=meta-llama/Llama-3.1-8B-Instruct", "launch.gpu=RTX4090")
    found = codes(result.errors, "eval-vllm-memory")
    assert [f.path for f in found] == ["eval.backend"]
    assert "131072" in found[0].message


@pytest.mark.parametrize("runs", [(),                                            # Qwen3-8B (40960) on an 80 GB H100
                                  ("args.model=meta-llama/Llama-3.1-8B-Instruct",),  # 31 GiB of 72 on the H100
                                  ("launch.gpu=RTX4090", "args.model=Qwen/Qwen2.5-1.5B-Instruct"),  # a small model
                                  ("args.model=meta-llama/Llama-3.1-8B-Instruct", "launch.gpu=RTX4090",
                                   "eval.backend=transformers"),                   # no KV cache up front
                                  ("args.model=meta-llama/Llama-3.1-8B-Instruct", "launch.gpu=RTX4090",
                                   "eval.launch.partition=big")])                  # evaluated on another machine
def test_an_evaluation_that_fits_or_runs_elsewhere_is_not_refused(tmp_path, runs):
    assert not codes(plan_of(tmp_path, *runs).errors, "eval-vllm-memory")


# Sliding-window layers hold only their window's KV in vLLM (vllm/v1/kv_cache_interface.py SlidingWindowSpec.
# max_memory_usage_bytes): Gemma-4-26B-A4B's 25 sliding layers (window 1024) beside 5 global ones at 262144
# tokens need ~2.7 GiB next to 48 GiB of weights, not the 60 GiB of thirty full-length layers.
def test_sliding_window_layers_count_their_window_not_the_config_length(tmp_path):
    gemma = ("args.model=google/gemma-4-26B-A4B-it",)
    assert not codes(plan_of(tmp_path, *gemma).errors, "eval-vllm-memory")            # 50.7 GiB of 72 on an H100
    found = codes(plan_of(tmp_path, *gemma, "launch.gpu=L40S").errors, "eval-vllm-memory")  # 48 GiB of weights
    assert [f.path for f in found] == ["eval.backend"]                                   # past 43.2 GiB of 48
