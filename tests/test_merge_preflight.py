"""`swift-ext merge` refuses, before `swift export` loads anything, a LoRA checkpoint whose base model is a GPTQ/AWQ
release: PEFT cannot merge into those weights (modelscope/ms-swift#1839, AWQ base; #780: "bnb, gptq, awq"; the
same ValueError in hiyouga/LlamaFactory#1545). bitsandbytes checkpoints merge (PEFT dequantizes)."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import swift_ext


def lora_checkpoint(tmp_path, base_config: dict, base_name="base"):
    base = tmp_path / base_name
    base.mkdir(parents=True)
    (base / "config.json").write_text(json.dumps({"model_type": "qwen2", "hidden_size": 64, **base_config}))
    ckpt = tmp_path / "run" / "v0-20261207-101010" / "checkpoint-50"
    ckpt.mkdir(parents=True)
    (ckpt / "args.json").write_text(json.dumps({"model": str(base), "tuner_type": "lora", "model_type": "qwen2"}))
    (ckpt / "adapter_config.json").write_text(json.dumps({"r": 8, "peft_type": "LORA"}))
    (ckpt / "adapter_model.safetensors").write_bytes(b"\0")
    return ckpt, base


@pytest.mark.parametrize("method", ["gptq", "awq"])
def test_a_gptq_or_awq_base_is_refused_naming_the_model(tmp_path, method):
    ckpt, base = lora_checkpoint(tmp_path, {"quantization_config": {"quant_method": method, "bits": 4}})
    result = swift_ext("merge", str(ckpt), "--print")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{method.upper()}-quantized" in result.stderr and "args.json" in result.stderr
    assert "--base-model" in result.stderr


def test_a_hub_id_tagged_awq_is_refused_from_its_id(tmp_path):
    ckpt, _ = lora_checkpoint(tmp_path, {})
    result = swift_ext("merge", str(ckpt), "--print", "--base-model", "Qwen/Qwen2.5-72B-Instruct-AWQ")
    assert result.returncode == 2 and "AWQ-quantized (its id)" in result.stderr, result.stderr


def test_bitsandbytes_and_unquantized_bases_merge(tmp_path):
    ckpt, _ = lora_checkpoint(tmp_path, {"quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": True}})
    result = swift_ext("merge", str(ckpt), "--print")
    assert result.returncode == 0 and "--merge_lora true" in result.stdout, result.stderr
    plain, _ = lora_checkpoint(tmp_path / "p", {})
    assert swift_ext("merge", str(plain), "--print").returncode == 0


def test_peft_refuses_the_merge_into_gptq_weights():
    """The engine line the refusal stands for: transformers' quantizer sets model.quantization_method from
    config.json's quant_method (quantizers/base.py), and PEFT's merge refuses "gptq"."""
    from peft import LoraConfig, get_peft_model

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(4, 4)

    model = get_peft_model(Tiny(), LoraConfig(target_modules=["proj"], r=2))
    model.base_model.model.quantization_method = "gptq"
    with pytest.raises(ValueError, match="Cannot merge LORA layers when the model is gptq quantized"):
        model.merge_and_unload()
    model.base_model.model.quantization_method = "bitsandbytes"
    model.merge_and_unload()  # what the bnb case reaches


def test_the_iter_folder_inside_a_checkpoint_names_its_checkpoint(tmp_path):
    # ms-swift 4.x Megatron: CKPT/iter_0000050 holds the torch_dist shards, args.json is in CKPT
    ckpt, _ = lora_checkpoint(tmp_path, {})
    (ckpt / "iter_0000050").mkdir()
    result = swift_ext("merge", str(ckpt / "iter_0000050"), "--print")
    assert result.returncode == 2 and f"pass its checkpoint folder: {ckpt}" in result.stderr, result.stderr
