"""deepstack-first-stage: Qwen3-VL's deepstack features are added after decoder layers 0..2, all in the model chunk
that holds the vision tower (mcore-bridge 1.6.3 model/mm_gpts/qwen3_vl.py Qwen3VLTransformerBlock.forward asserts
len(deepstack_visual_embeds) <= len(self.layers)). The chunk sizes are checked against the installed megatron-core's
own get_num_layers_to_build."""

from __future__ import annotations

from pathlib import Path

import pytest

from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

RECIPE = """\
description: Qwen3-VL-30B-A3B LoRA on Megatron
command: sft
engine: megatron
launch: {nodes: 1, gpus_per_node: 8, gpu: H100}
args:
  model: Qwen/Qwen3-VL-30B-A3B-Instruct
  dataset: [AI-ModelScope/LaTeX_OCR#20000]
  tuner_type: lora
  pipeline_model_parallel_size: 4
  expert_model_parallel_size: 2
  micro_batch_size: 1
  global_batch_size: 16
  max_length: 2048
  moe_grouped_gemm: true
"""


def _codes(tmp_path: Path, *overrides: str) -> set[tuple[str, str]]:
    path = tmp_path / "qwen3vl.yaml"
    path.write_text(RECIPE)
    return {(f.code, f.path) for f in make_plan(load_recipe(path, list(overrides)), oracle=False).errors}


@pytest.mark.parametrize("overrides, key", [
    # 48 layers / PP 4 = 12 per rank, / 6 virtual stages = 2 in the first chunk
    (("args.virtual_pipeline_model_parallel_size=6",), "args.virtual_pipeline_model_parallel_size"),
    (("args.pipeline_model_parallel_size=2", "args.decoder_first_pipeline_num_layers=2"),
     "args.decoder_first_pipeline_num_layers"),
    (("args.pipeline_model_parallel_layout=Ett|(tttttttttttttttt|)*2,ttttttttttttttL",),
     "args.pipeline_model_parallel_layout"),
])
def test_fires_when_the_first_chunk_has_fewer_layers_than_deepstack_features(tmp_path, overrides, key):
    assert ("deepstack-first-stage", key) in _codes(tmp_path, *overrides)


@pytest.mark.parametrize("overrides", [
    (),  # 12 layers on the first stage
    ("args.virtual_pipeline_model_parallel_size=4",),  # 3 per chunk: exactly enough
    ("args.pipeline_model_parallel_size=2", "args.decoder_first_pipeline_num_layers=3"),
    ("args.virtual_pipeline_model_parallel_size=6", "args.language_model_only=true"),  # no vision tower built
])
def test_near_by_layouts_pass(tmp_path, overrides):
    assert "deepstack-first-stage" not in {c for c, _ in _codes(tmp_path, *overrides)}


def test_text_model_with_the_same_split_passes(tmp_path):
    codes = _codes(tmp_path, "args.model=Qwen/Qwen3-30B-A3B", "args.virtual_pipeline_model_parallel_size=6")
    assert "deepstack-first-stage" not in {c for c, _ in codes}


@pytest.mark.parametrize("pp, vpp, first, last, embedding", [
    (4, 6, None, None, False), (4, 4, None, None, False), (2, None, 2, None, False), (4, None, None, 9, False),
    (2, 2, 4, None, False), (7, None, None, None, True), (7, 7, None, None, True),
])
def test_fires_exactly_where_megatron_core_builds_too_few_layers(tmp_path, pp, vpp, first, last, embedding):
    # the first chunk's size from the installed megatron-core itself, against the rule's verdict through plan
    torch = pytest.importorskip("torch")
    from megatron.core.transformer.transformer_block import get_num_layers_to_build
    from megatron.core.transformer.transformer_config import TransformerConfig

    config = TransformerConfig(num_layers=48, hidden_size=64, num_attention_heads=4, pipeline_dtype=torch.bfloat16,
                               pipeline_model_parallel_size=pp, virtual_pipeline_model_parallel_size=vpp,
                               num_layers_in_first_pipeline_stage=first, num_layers_in_last_pipeline_stage=last,
                               account_for_embedding_in_pipeline_split=embedding)
    built = get_num_layers_to_build(config, vp_stage=0 if vpp else None, pp_rank=0)
    overrides = [f"args.pipeline_model_parallel_size={pp}", f"launch.gpus_per_node={2 * pp}"]
    for key, value in (("virtual_pipeline_model_parallel_size", vpp), ("decoder_first_pipeline_num_layers", first),
                       ("decoder_last_pipeline_num_layers", last)):
        if value is not None:
            overrides.append(f"args.{key}={value}")
    if embedding:
        overrides.append("args.account_for_embedding_in_pipeline_split=true")
    fired = "deepstack-first-stage" in {c for c, _ in _codes(tmp_path, *overrides)}
    assert fired == (built < 3), built
