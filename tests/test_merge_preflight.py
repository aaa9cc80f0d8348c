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


# --- what `megatron export` loads first (swift_ext/after/merge.py refuse_unloadable_megatron) ----------------------------

MEGATRON_LORA = {"model": "Qwen/Qwen3-8B", "model_type": "qwen3", "tuner_type": "lora",
                 "tensor_model_parallel_size": 2, "expert_model_parallel_size": 1}


def megatron_checkpoint(root, args: dict, torch_dist=True, step=200):
    ckpt = root / "run" / "v0-20261207-101010" / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "args.json").write_text(json.dumps(args))
    if torch_dist:
        (ckpt / f"iter_{step:07d}").mkdir()
        (ckpt / f"iter_{step:07d}" / "metadata.json").write_text(json.dumps({"sharded_backend": "torch_dist"}))
        (ckpt / "latest_checkpointed_iteration.txt").write_text(str(step))
    return ckpt


def test_a_megatron_checkpoint_with_nothing_to_load_is_refused(tmp_path):
    ckpt = megatron_checkpoint(tmp_path, MEGATRON_LORA, torch_dist=False)  # a save that never finished
    result = swift_ext("merge", str(ckpt), "--print")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "no latest_checkpointed_iteration.txt, so iter_0000000, which is not there" in result.stderr


@pytest.mark.parametrize("make_base, said", [
    (lambda t: t / "gone-mcore", "is not here"),                                      # moved or deleted
    (lambda t: (t / "Qwen3-8B").mkdir() or t / "Qwen3-8B", "holds no loadable mcore checkpoint"),  # an HF dir, not converted
])
def test_a_lora_on_an_mcore_base_needs_that_base(tmp_path, make_base, said):
    base = make_base(tmp_path)
    ckpt = megatron_checkpoint(tmp_path, {**MEGATRON_LORA, "mcore_model": str(base)})
    result = swift_ext("merge", str(ckpt), "--print")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert said in result.stderr and "mcore_model" in result.stderr


def test_a_lora_on_a_converted_base_merges_and_says_which_weights_are_read(tmp_path):
    base = megatron_checkpoint(tmp_path / "base", {"model": "Qwen/Qwen3-8B", "tuner_type": "full"}, step=1)
    ckpt = megatron_checkpoint(tmp_path, {**MEGATRON_LORA, "mcore_model": str(base)})
    plain = swift_ext("merge", str(ckpt), "--print")
    assert plain.returncode == 0 and f"--mcore_adapter {ckpt}" in plain.stdout, plain.stderr
    named = swift_ext("merge", str(ckpt), "--print", "--base-model", "Qwen/Qwen3-8B")
    assert named.returncode == 0 and "not from --base-model" in named.stdout + named.stderr, named.stderr


def test_megatron_cores_reader_refuses_what_merge_refuses(tmp_path):
    """The engine line: load_mcore_checkpoint hands DIR/iter_<N> to megatron-core's dist_checkpointing."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core import dist_checkpointing
        from megatron.core.dist_checkpointing.core import CheckpointingException
    ckpt = megatron_checkpoint(tmp_path, MEGATRON_LORA, torch_dist=False)
    with pytest.raises(CheckpointingException, match="does not exist"):
        dist_checkpointing.load_common_state_dict(str(ckpt / "iter_0000000"))
