"""`swift-ext infer/eval` with the vLLM backend and a LoRA checkpoint: `swift infer --infer_backend vllm --adapters
CKPT` gives vLLM max_lora_rank = vllm_max_lora_rank (16 by default), and vLLM's loader refuses DoRA, modules_to_save
and an adapter bias. The adapter configs are written by PEFT itself (LoraConfig.save_pretrained), as ms-swift saves
them."""

from __future__ import annotations

import json

import pytest
from peft import LoraConfig

from conftest import swift_ext
from swift_ext.after.evaluate import Target, infer_launch
from swift_ext.after.merge import read_checkpoint
from swift_ext.spec.findings import UserError
from swift_ext.spec.recipe import Eval

ARGS = {"model": "Qwen/Qwen3-8B", "model_type": "qwen3", "tuner_type": "lora", "template": "qwen3"}


def lora_checkpoint(tmp_path, args=ARGS, **lora) -> object:
    ckpt = tmp_path / "run" / "v0-20261207-101010" / "checkpoint-100"
    ckpt.mkdir(parents=True)
    (ckpt / "args.json").write_text(json.dumps(args))
    LoraConfig(target_modules=["q_proj", "v_proj"], **lora).save_pretrained(str(ckpt))
    (ckpt / "adapter_model.safetensors").write_bytes(b"\0")
    val = tmp_path / "val.jsonl"
    val.write_text('{"messages": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]}\n')
    return ckpt, val


def infer_print(ckpt, val, backend="vllm"):
    return swift_ext("infer", str(ckpt), "--split", str(val), "--backend", backend, "--print")


def test_rank_above_vllms_default_gets_a_max_lora_rank_that_holds_it(tmp_path):
    # modelscope/ms-swift#4221: LoRA rank 32 with `swift infer --infer_backend vllm`: "LoRA rank 32 is greater than
    # max_lora_rank 16"; the printed command passed ms-swift's InferArguments check (`--print` runs it first).
    ckpt, val = lora_checkpoint(tmp_path, r=32)
    result = infer_print(ckpt, val)
    assert result.returncode == 0, result.stderr
    assert "--vllm_max_lora_rank 32" in result.stdout and f"--adapters {ckpt}" in result.stdout


def test_an_odd_rank_is_rounded_up_to_one_vllm_accepts(tmp_path):
    ckpt, val = lora_checkpoint(tmp_path, r=48)
    result = infer_print(ckpt, val)
    assert result.returncode == 0, result.stderr
    assert "--vllm_max_lora_rank 64" in result.stdout


def test_default_rank_and_transformers_backend_add_nothing(tmp_path):
    ckpt, val = lora_checkpoint(tmp_path, r=16, use_dora=True)
    result = infer_print(ckpt, val, backend="transformers")  # transformers loads DoRA: nothing to refuse
    assert result.returncode == 0, result.stderr
    assert "vllm_max_lora_rank" not in result.stdout
    # A rank vLLM's default 16 holds gets no flag: max_lora_rank 1 (the "smallest that holds" rank 1) is refused by
    # vLLM's LoRAConfig before 0.11.1 (vllm-project/vllm#26461), and ms-swift 4.6 lists vLLM 0.11.0.
    for r in (8, 1):
        plain, val2 = lora_checkpoint(tmp_path / f"r{r}", r=r)
        result = infer_print(plain, val2)
        assert result.returncode == 0 and "vllm_max_lora_rank" not in result.stdout, result.stderr
    above, val3 = lora_checkpoint(tmp_path / "r17", r=17)
    assert "--vllm_max_lora_rank 32" in infer_print(above, val3).stdout


@pytest.mark.parametrize("lora, flag", [({"use_dora": True}, "use_dora"),
                                        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
                                        ({"bias": "all"}, "lora_bias"),
                                        ({"r": 1024}, "lora_rank")])
def test_what_vllm_refuses_is_one_line_naming_the_flag(tmp_path, lora, flag):
    ckpt, val = lora_checkpoint(tmp_path, **lora)
    result = infer_print(ckpt, val)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "--backend vllm" in result.stderr and flag in result.stderr and "swift-ext merge" in result.stderr


def test_eval_with_the_vllm_backend_refuses_a_dora_checkpoint_and_sizes_the_rank(tmp_path):
    ckpt, _ = lora_checkpoint(tmp_path, r=64)
    launch, _, _ = infer_launch(Target(100, read_checkpoint(ckpt)), Eval(backend="vllm"), tmp_path, tmp_path / "w")
    assert launch.argv[launch.argv.index("--vllm_max_lora_rank") + 1] == "64"
    dora, _ = lora_checkpoint(tmp_path / "d", use_dora=True)
    with pytest.raises(UserError, match="eval.backend vllm.*use_dora"):
        infer_launch(Target(100, read_checkpoint(dora)), Eval(backend="vllm"), tmp_path, tmp_path / "w")
    launch, _, _ = infer_launch(Target(100, read_checkpoint(dora)), Eval(), tmp_path, tmp_path / "w")
    assert "--adapters" in launch.argv and "--vllm_max_lora_rank" not in launch.argv


def test_ms_swift_hands_the_passed_rank_to_vllm(tmp_path):
    """The command swift-ext builds, parsed by ms-swift's own InferArguments (swift/utils/utils.py parse_args, as
    `swift infer` does) over the tiny model: get_vllm_engine_kwargs gives vLLM enable_lora and the rank passed."""
    from swift.arguments import InferArguments
    from swift.utils import parse_args

    from swift_ext.after.infer import plan_infer
    from swift_ext.planner.tinymodel import ensure_model

    ckpt, val = lora_checkpoint(tmp_path, r=64)
    (ckpt / "args.json").write_text(json.dumps({"model": str(ensure_model("tiny-qwen3_6-moe")), "tuner_type": "lora",
                                                "template": "qwen3_5"}))
    argv = plan_infer(read_checkpoint(ckpt), str(val), backend="vllm").launch.argv
    assert argv[:2] == ["swift", "infer"]
    args, remaining = parse_args(InferArguments, argv[2:])
    assert not remaining
    engine = args.get_vllm_engine_kwargs()
    assert engine["enable_lora"] and engine["max_lora_rank"] == 64
    i = argv.index("--vllm_max_lora_rank")
    unsized, _ = parse_args(InferArguments, argv[2:i] + argv[i + 2:])
    assert unsized.get_vllm_engine_kwargs()["max_lora_rank"] == 16  # what vLLM refused rank 64 with


VL_ARGS = {"model": "Qwen/Qwen2.5-VL-7B-Instruct", "model_type": "qwen2_5_vl", "tuner_type": "lora",
           "template": "qwen2_5_vl", "target_modules": ["all-linear"], "freeze_vit": True, "freeze_aligner": True}


@pytest.mark.parametrize("unfrozen", ["freeze_vit", "freeze_aligner"])
def test_a_vision_lora_is_refused_for_vllm_naming_the_training_flag(tmp_path, unfrozen):
    # modelscope/ms-swift#4974: InternVL3-1B LoRA with freeze_vit/freeze_aligner false served by vLLM with --adapters:
    # "expected target modules in [...] but received ['mlp1.1', ...]" (the pt backend ran it)
    ckpt, val = lora_checkpoint(tmp_path, {**VL_ARGS, unfrozen: False})
    result = infer_print(ckpt, val)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert unfrozen in result.stderr and "language model only" in result.stderr and "swift-ext merge" in result.stderr
    assert infer_print(ckpt, val, backend="transformers").returncode == 0


@pytest.mark.parametrize("args", [VL_ARGS,                                                   # towers frozen (default)
                                  {**VL_ARGS, "freeze_vit": False, "target_modules": ["q_proj"]},  # no all-linear
                                  {**ARGS, "target_modules": ["all-linear"], "freeze_vit": False}])  # text model
def test_a_language_model_lora_goes_to_vllm(tmp_path, args):
    ckpt, val = lora_checkpoint(tmp_path, args)
    result = infer_print(ckpt, val)
    assert result.returncode == 0, result.stderr


def test_infer_refuses_an_adapter_whose_base_model_is_gone(tmp_path):
    # swift infer --adapters loads args.json's model: a local path that is not here fails after the job starts
    ckpt, val = lora_checkpoint(tmp_path, {**ARGS, "model": str(tmp_path / "moved" / "Qwen3-8B")})
    result = infer_print(ckpt, val, backend="transformers")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "does not exist here" in result.stderr and "--base-model" in result.stderr
