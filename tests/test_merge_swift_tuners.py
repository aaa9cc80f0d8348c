"""`swift-ext merge` of checkpoints from ms-swift's own tuners (tuner_type adapter, llamapro, ...), which
SwiftModel.save_pretrained writes into CKPT/default/ rather than PEFT's top-level adapter_config.json. The
checkpoints here are written by ms-swift's real tuners on a two-layer model; ms-swift's Swift.merge_and_unload folds
only LoRA, so an `adapter` checkpoint cannot become a plain model and is refused, while LLaMA-Pro's blocks are part
of the model already and its merge is planned."""

from __future__ import annotations

import json

import pytest

from conftest import swift_ext

BASE = "meta-llama/Llama-3.2-1B"  # a hub id: merge --print checks its form, not its files


def tuner_checkpoint(tmp_path, tuner: str):
    pytest.importorskip("swift.tuners")
    from swift.tuners import AdapterConfig, LLaMAProConfig, Swift
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1)
    tuner_config = {"adapter": AdapterConfig(dim=16, target_modules=r".*mlp$", method_name="forward", hidden_pos=0,
                                             adapter_length=4),
                    "llamapro": LLaMAProConfig(model_type="llama", num_new_blocks=2)}[tuner]
    ckpt = tmp_path / "run" / "v0-20261207-101010" / "checkpoint-10"
    Swift.prepare_model(LlamaForCausalLM(config), tuner_config).save_pretrained(str(ckpt))
    (ckpt / "args.json").write_text(json.dumps({"model": BASE, "tuner_type": tuner}))
    return ckpt


def test_an_adapter_tuner_checkpoint_is_refused_saying_why(tmp_path):
    ckpt = tuner_checkpoint(tmp_path, "adapter")
    assert not (ckpt / "adapter_config.json").exists() and (ckpt / "default" / "adapter_config.json").is_file()
    result = swift_ext("merge", str(ckpt), "--print")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip()
    assert line.startswith(f"error: {ckpt / 'default' / 'adapter_config.json'}: a tuner_type adapter checkpoint"), line
    assert "folds only LoRA" in line and f"swift-ext infer {ckpt}" in line
    assert "nothing to merge" not in line
    assert not (ckpt.parent / "checkpoint-10-merged").exists()


def test_a_llamapro_checkpoint_is_merged_by_swift_export(tmp_path):
    ckpt = tuner_checkpoint(tmp_path, "llamapro")
    result = swift_ext("merge", str(ckpt), "--print")
    assert result.returncode == 0, result.stderr
    assert f"swift export \\\n    --adapters {ckpt} \\\n    --merge_lora true" in result.stdout, result.stdout
    assert not (ckpt.parent / "checkpoint-10-merged").exists()  # --print writes nothing


def test_a_reft_checkpoint_is_refused_at_its_own_folder(tmp_path):
    # ReFT saves under CKPT/reft/ (its adapter name), not default/: the refusal reads that config, not "no config".
    ckpt = tmp_path / "run" / "v0-20261207-101010" / "checkpoint-10"
    (ckpt / "reft").mkdir(parents=True)
    (ckpt / "reft" / "adapter_config.json").write_text(json.dumps({"swift_type": "reft"}))
    (ckpt / "args.json").write_text(json.dumps({"model": BASE, "tuner_type": "reft"}))
    result = swift_ext("merge", str(ckpt), "--print")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"error: {ckpt / 'reft' / 'adapter_config.json'}: a tuner_type reft checkpoint")
