"""Model shapes: where the config.json comes from, the bundled configs against published sizes, bad configs,
and what `plan` does when no shape is found."""

from __future__ import annotations

import json

import pytest

from conftest import RECIPES, swift_ext
from swift_ext.spec.findings import UserError
from swift_ext.planner.model_shape import ShapeNotFound, from_config
from swift_ext.planner.shape_lookup import _bundled_index, bundled_models, resolve_shape

SFT = RECIPES / "qwen3_6/sft-lora-4x32g.yaml"

# Published totals (model cards / the hub's safetensors counts), in billions. `mtp=False` where the published
# figure is the main model's (DeepSeek-V3's 671B; the MTP block adds ~11.5B on the hub).
PUBLISHED = [
    ("deepseek-ai/DeepSeek-V3", 671, False),
    ("deepseek-ai/DeepSeek-R1", 671, False),
    ("Qwen/Qwen3-235B-A22B", 235.1, True),
    ("Qwen/Qwen3-30B-A3B", 30.5, True),
    ("Qwen/Qwen3-Next-80B-A3B-Instruct", 80, False),
    ("Qwen/Qwen3.6-35B-A3B", 35, False),
    ("Qwen/Qwen3.5-397B-A17B", 397, False),
    ("Qwen/Qwen3.5-27B", 27, False),
    ("Qwen/Qwen3.5-4B", 4.2, False),  # language model only (the bundled entry has no vision tower); card: "4B"
    ("Qwen/Qwen3-VL-30B-A3B-Instruct", 31.1, True),
    ("Qwen/Qwen3-VL-235B-A22B-Instruct", 236, True),
    ("zai-org/GLM-4.5", 355, False),
    ("zai-org/GLM-4.5-Air", 106, False),
    ("openai/gpt-oss-120b", 116.8, True),
    ("openai/gpt-oss-20b", 20.9, True),
    ("meta-llama/Llama-3.1-8B-Instruct", 8.03, True),
    ("meta-llama/Llama-3.1-70B-Instruct", 70.55, True),
    ("meta-llama/Llama-3.1-405B-Instruct", 405, True),
    ("meta-llama/Llama-3.2-1B-Instruct", 1.24, True),
    ("meta-llama/Llama-3.2-3B-Instruct", 3.21, True),
    ("Qwen/Qwen2.5-0.5B-Instruct", 0.49, True),
    ("Qwen/Qwen2.5-1.5B-Instruct", 1.54, True),
    ("Qwen/Qwen2.5-3B-Instruct", 3.09, True),
    ("Qwen/Qwen2.5-7B-Instruct", 7.61, True),
    ("Qwen/Qwen2.5-14B-Instruct", 14.7, True),
    ("Qwen/Qwen2.5-32B-Instruct", 32.8, True),
    ("Qwen/Qwen2.5-72B-Instruct", 72.7, True),
    ("Qwen/Qwen3-0.6B", 0.6, True),
    ("Qwen/Qwen3-1.7B", 1.7, True),
    ("Qwen/Qwen3-4B", 4.0, True),
    ("Qwen/Qwen3-8B", 8.2, True),
    ("Qwen/Qwen3-14B", 14.8, True),
    ("Qwen/Qwen3-32B", 32.8, True),
    ("OpenGVLab/InternVL3_5-8B", 8.5, True),
    ("OpenGVLab/InternVL3_5-30B-A3B", 30.8, True),
    ("OpenGVLab/InternVL3_5-14B", 15.1, True),
    ("OpenGVLab/InternVL3_5-38B", 38.4, True),
    ("OpenGVLab/InternVL3_5-241B-A28B", 240.7, True),
    ("OpenGVLab/InternVL3_5-GPT-OSS-20B-A4B-Preview", 21.2, True),
    ("meta-llama/Llama-4-Scout-17B-16E-Instruct", 109.7, True),  # 109,676,279,296 with the vision tower
    ("Qwen/Qwen2.5-VL-7B-Instruct", 8.29, True),  # model card: 8.29B
    ("Qwen/Qwen3-VL-8B-Instruct", 8.77, True),
    ("Qwen/Qwen1.5-MoE-A2.7B", 14.3, True),  # model card: 14.3B in all, 2.7B activated
    ("moonshotai/Moonlight-16B-A3B-Instruct", 16, True),  # model card: 16B total, 3B activated
    ("zai-org/GLM-4.5V", 106, True),  # xorbitsai/inference glm-4.5v.rst: 106 billion (GLM-4.5-Air-based)
    ("Qwen/Qwen3.5-122B-A10B", 122, False),  # model name / card: 122B total, 10B activated
    ("Qwen/Qwen3-Coder-30B-A3B-Instruct", 30.5, True),  # card: 30.5B in total, 3.3B activated
    ("Qwen/Qwen3-Coder-480B-A35B-Instruct", 480, True),  # card: 480B in total, 35B activated
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 1.78, True),  # hub count 1.78B (untied Qwen2.5-Math-1.5B)
    ("moonshotai/Kimi-K2-Instruct", 1026.5, True),  # hub count 1026.5B (card: "1T total, 32B activated")
    ("deepseek-ai/DeepSeek-V2-Lite-Chat", 15.706, True),  # its safetensors: 15,706,484,224
    ("deepseek-ai/DeepSeek-V2", 236, True),  # model card: 236B total, 21B activated
    ("MiniMaxAI/MiniMax-M2", 228.7, True),  # hub safetensors count 228,703,644,928 (M2.5, same shape)
    ("meta-llama/Meta-Llama-3-8B", 8.03, True),  # hub: 8.03B (the Llama-3.1-8B shape without its rope scaling)
    ("meta-llama/Meta-Llama-3-70B", 70.55, True),  # hub: 70.6B
    ("baidu/ERNIE-4.5-21B-A3B-PT", 21.8, True),  # hub: 21.8B (card: "21B total, 3B activated")
    # its model.safetensors.index.json (zhenhua32/Qwen2-VL): total_size 16,582,751,232 bytes of bf16 = 8.29B
    ("Qwen/Qwen2-VL-7B-Instruct", 8.29, True),
    ("Qwen/Qwen3-Embedding-0.6B", 0.6, True),  # Qwen3 Embedding report (arXiv 2506.05176) tables: 0.6B
    ("mistralai/Mixtral-8x7B-v0.1", 46.7, True),  # Mistral AI's announcement: 46.7B total, 12.9B per token
    ("microsoft/phi-4", 14.7, True),  # 14.7B as model lists quote the hub's count (card: "14B")
    ("mistralai/Mistral-7B-Instruct-v0.3", 7.25, True),  # Ollama library mistral:7b (v0.3): 7.25B
    ("zai-org/GLM-4-32B-0414", 32, True),  # THUDM/GLM-4 README: "featuring 32 billion parameters"
    ("ByteDance-Seed/Seed-OSS-36B-Instruct", 36, True),  # model name / card: 36B
    ("OpenGVLab/InternVL3-78B", 78.41, True),  # a model survey in the code corpus: "78.41 billion parameters total"
    ("meta-llama/Llama-4-Maverick-17B-128E-Instruct", 400, True),  # Meta's announcement: 400B total, 17B active
]

# Multimodal models whose card states the language model's size only ("Number of Parameters" under "Language
# Model"), or whose text_config is field for field a bundled text model's (Qwen3-VL-2B = Qwen3-1.7B, Qwen3-VL-4B =
# Qwen3-4B, Qwen3-VL-32B = Qwen3-32B, Qwen2.5-VL-3B = Qwen2.5-3B): the count without the vision tower and MTP
# against that figure. The tolerance is 2%, or the rounding of a figure stated to one digit ("0.8B": +-0.05).
PUBLISHED_LANGUAGE_MODEL = [
    ("Qwen/Qwen3.5-0.8B", 0.8, 0.05),  # card: Number of Parameters 0.8B
    ("Qwen/Qwen3.5-2B", 2, 0.5),  # card: 2B
    ("Qwen/Qwen3.5-9B", 9, None),  # card: Number of Parameters 9B
    ("Qwen/Qwen3-VL-2B-Instruct", 1.7, None),  # Qwen3-1.7B card: 1.7B
    ("Qwen/Qwen3-VL-4B-Instruct", 4.0, None),  # Qwen3-4B card: 4.0B
    ("Qwen/Qwen3-VL-32B-Instruct", 32.8, None),  # Qwen3-32B card: 32.8B
    ("Qwen/Qwen2.5-VL-3B-Instruct", 3.09, None),  # Qwen2.5-3B card: 3.09B
    ("google/gemma-4-26B-A4B-it", 25.2, None),  # card: 25.2B total, 3.8B active (vision encoder ~550M apart)
    ("Qwen/Qwen3-Omni-30B-A3B-Instruct", 30.53, None),  # keras-hub preset: thinker LM 30,532,122,624
    ("Qwen/Qwen2.5-Omni-7B", 7.61, None),  # thinker text_config = Qwen2.5-7B's; its card: 7.61B
    ("Qwen/Qwen2-VL-2B-Instruct", 1.54, None),  # text part = Qwen2.5-1.5B's shape; its card: 1.54B
    ("Qwen/Qwen2.5-VL-32B-Instruct", 32.8, None),  # text part = Qwen2.5-32B's shape (as Qwen2.5-32B-Instruct above)
    ("Qwen/Qwen2.5-VL-72B-Instruct", 72.7, None),  # text part = Qwen2.5-72B's shape; its card: 72.7B
    ("moonshotai/Kimi-VL-A3B-Instruct", 16, None),  # language decoder = Moonlight-16B-A3B (cards: 16B total)
    # transformers docs/source/en/model_doc/glm4v.md: "the open-source 9B parameter variant" (GLM-4-9B-0414 inside)
    ("zai-org/GLM-4.1V-9B-Thinking", 9, 0.5),
]


@pytest.fixture(autouse=True)
def empty_caches(tmp_path, monkeypatch):
    """The machine's own hub caches must not decide what these tests see."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-empty"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms-empty"))


@pytest.mark.parametrize("model, billions, with_mtp", PUBLISHED)
def test_bundled_parameter_counts_match_published_sizes(model, billions, with_mtp):
    shape = resolve_shape(model)
    assert shape.origin == "bundled config"
    assert abs(shape.total_params(mtp=with_mtp) / 1e9 - billions) / billions < 0.02


@pytest.mark.parametrize("model, billions, rounding", PUBLISHED_LANGUAGE_MODEL)
def test_bundled_language_models_match_published_sizes(model, billions, rounding):
    shape = resolve_shape(model)
    assert shape.origin == "bundled config" and shape.vision is not None
    language = (shape.total_params(mtp=False) - shape.vision_params()) / 1e9
    assert abs(language - billions) < (rounding if rounding is not None else 0.02 * billions)


def test_every_bundled_model_has_a_published_size_and_a_source():
    index = _bundled_index()
    tested = {m for m, _, _ in PUBLISHED} | {m for m, _, _ in PUBLISHED_LANGUAGE_MODEL}
    for model in bundled_models():
        entry, _ = index[model.lower()]
        assert entry["source"].strip(), model
        assert model in tested, f"{model}: add its published size to PUBLISHED"


def test_deepseek_mla_and_dense_layers_are_read():
    shape = resolve_shape("deepseek-ai/DeepSeek-V3")
    assert shape.is_mla and shape.num_dense_layers == 3 and shape.num_moe_layers == 58
    assert shape.shared_expert_intermediate_size == 2048 and shape.mtp_num_layers == 1
    # MLA: q 7168*1536 + 1536*128*192, kv 7168*576 + 512*128*256, o 128*128*7168
    assert shape.full_attention_params() == 7168 * 1536 + 1536 * 128 * 192 + 7168 * 576 + 512 * 128 * 256 + 128 * 128 * 7168
    assert 660e9 < shape.total_params(mtp=True) - 0 < 690e9


def test_gpt_oss_experts_come_from_num_local_experts():
    shape = resolve_shape("openai/gpt-oss-120b")
    assert (shape.num_experts, shape.num_experts_per_tok, shape.moe_intermediate_size) == (128, 4, 2880)
    assert shape.intermediate_size == 0 and shape.head_dim == 64


def test_router_score_function_and_pre_softmax_as_mcore_bridge_reads_them():
    # mcore-bridge config/parser.py: scoring_func (DeepSeek), a sigmoid router by model_type (Llama-4, GLM-4.5),
    # `moe_router_pre_softmax = not norm_topk_prob`; megatron-core's softmax / no pre-softmax otherwise.
    assert resolve_shape("LLM-Research/Llama-4-Scout-17B-16E-Instruct").router_score_function == "sigmoid"
    assert resolve_shape("zai-org/GLM-4.5-Air").router_score_function == "sigmoid"
    assert resolve_shape("deepseek-ai/DeepSeek-V3").router_score_function == "sigmoid"  # config.json scoring_func
    qwen = resolve_shape("Qwen/Qwen3-30B-A3B")
    assert (qwen.router_score_function, qwen.router_pre_softmax) == ("softmax", False)  # norm_topk_prob true
    base = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 64,
            "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32, "vocab_size": 100}
    assert from_config({**base, "model_type": "qwen2_moe", "norm_topk_prob": False}, name="x").router_pre_softmax
    assert from_config({**base, "model_type": "deepseek_v3", "scoring_func": "sigmoid"},
                       name="x").router_score_function == "sigmoid"
    assert from_config({**base, "model_type": "x", "moe_router_use_sigmoid": True},
                       name="x").router_score_function == "sigmoid"
    assert from_config({**base, "model_type": "x", "moe_router_use_sigmoid": False},
                       name="x").router_score_function == "softmax"
    # nemotron_h: mcore-bridge 1.6.3 parser.py:336 (and 1.6.5) sets the sigmoid router whatever config.json says
    assert from_config({**base, "model_type": "nemotron_h"}, name="x").router_score_function == "sigmoid"


def test_internvl_reads_llm_config_and_the_intern_vit():
    shape = resolve_shape("OpenGVLab/InternVL3_5-8B")
    assert shape.num_layers == 36 and shape.hidden_size == 4096
    assert shape.vision is not None and shape.vision.depth == 24 and shape.vision.hidden_size == 1024


def test_moonlight_is_mla_without_a_q_lora_and_two_shared_experts():
    shape = resolve_shape("moonshotai/Moonlight-16B-A3B-Instruct")
    assert shape.is_mla and shape.q_lora_rank == 0 and shape.num_dense_layers == 1 and shape.num_moe_layers == 26
    assert shape.shared_expert_intermediate_size == 2 * 1408 and shape.router_score_function == "sigmoid"
    # no q LoRA: q is one h -> heads*(nope+rope) projection
    assert shape.full_attention_params() == 2048 * 16 * 192 + 2048 * 576 + 512 * 16 * 256 + 16 * 128 * 2048


def test_moe_keys_other_families_spell_as_mcore_bridge_reads_them():
    # mcore-bridge config/parser.py config_mapping: moe_num_experts / moe_k / moe_num_shared_experts /
    # moe_layer_start_index (ERNIE-4.5), num_shared_experts (Ling/Ring 2.0, bailing_moe).
    ernie = resolve_shape("baidu/ERNIE-4.5-21B-A3B-PT")
    assert (ernie.num_experts, ernie.num_experts_per_tok, ernie.num_dense_layers) == (64, 6, 1)
    assert ernie.shared_expert_intermediate_size == 2 * 1536 and ernie.num_moe_layers == 27
    base = {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 4, "vocab_size": 100,
            "intermediate_size": 128, "moe_intermediate_size": 32}
    ling = from_config({**base, "num_experts": 8, "num_experts_per_tok": 2, "num_shared_experts": 1,
                        "first_k_dense_replace": 1}, "m")
    assert ling.shared_expert_intermediate_size == 32 and ling.num_dense_layers == 1
    # the first key set wins: DeepSeek's n_routed_experts is read before ERNIE's spelling
    both = from_config({**base, "n_routed_experts": 8, "moe_num_experts": 16, "moe_k": 2}, "m")
    assert (both.num_experts, both.num_experts_per_tok) == (8, 2)


def test_deepseek_v2_and_kimi_k2_are_mla_with_their_routers():
    lite = resolve_shape("deepseek-ai/DeepSeek-V2-Lite")
    assert lite.is_mla and lite.q_lora_rank == 0 and lite.num_moe_layers == 26
    # norm_topk_prob false -> mcore-bridge sets moe_router_pre_softmax; softmax scores (no scoring_func override)
    assert (lite.router_score_function, lite.router_pre_softmax) == ("softmax", True)
    kimi = resolve_shape("moonshotai/Kimi-K2-Instruct")
    assert (kimi.num_experts, kimi.num_dense_layers, kimi.mtp_num_layers) == (384, 1, 0)
    assert kimi.router_score_function == "sigmoid" and kimi.max_positions == 131072
    assert resolve_shape("moonshotai/Kimi-K2-Instruct-0905").max_positions == 262144
    assert resolve_shape("moonshotai/Kimi-K2-Base").max_positions == 0  # its length is not bundled


def test_glm4v_vision_tower_blocks_and_merger_follow_glm_layout():
    # transformers glm4v: each block's MLP is gate/up/down of out_hidden_size wide; the merger is a 2x2
    # downsample conv, proj and gate/up/down of intermediate_size. llama.cpp PR #16600: GLM-4.5V's ViT ~681M.
    shape = resolve_shape("zai-org/GLM-4.5V")
    v = shape.vision
    assert v is not None and v.layout == "glm4v" and shape.router_score_function == "sigmoid"
    assert abs(v.depth * v.block_params() / 1e6 - 681) < 5
    assert v.merger_params() == 4 * 1536 * 4096 + 4096 * 4096 + 3 * 4096 * 13696
    # GLM-4.6V shares the shape but not a published length (its 128K context is not a config.json reading)
    assert resolve_shape("ZhipuAI/GLM-4.6V").max_positions == 0 and shape.max_positions == 65536
    qwen = from_config({**resolve_shape_config("zai-org/GLM-4.5V"), "model_type": "qwen2_5_vl"}, name="x").vision
    assert qwen.layout == "qwen" and qwen.block_params() == 4 * 1536**2 + 2 * 1536 * 13696


def test_gemma4_global_layers_moe_beside_the_dense_mlp_and_vision_tower():
    # mcore-bridge mm_gpts/gemma4.py: full_attention layers use global_head_dim and, with attention_k_eq_v,
    # num_global_key_value_heads and no V; every MoE layer keeps its dense MLP beside the experts.
    shape = resolve_shape("google/gemma-4-26B-A4B-it")
    h = 2816
    sliding = h * (16 * 256 + 2 * 8 * 256) + 16 * 256 * h
    full = h * (16 * 512 + 2 * 512) + 16 * 512 * h  # K only: the key is the value
    assert (shape.num_global_layers, shape.num_full_attention_layers) == (5, 30)
    assert shape.full_attention_params() == (25 * sliding + 5 * full) // 30
    assert shape.shared_expert_intermediate_size == 2112 and not shape.shared_expert_gate
    assert (shape.num_experts, shape.num_experts_per_tok, shape.num_moe_layers) == (128, 8, 30)
    # the tower: 27 blocks of q/k/v/o and a gated MLP; one projection into the language model
    v = shape.vision
    assert v.layout == "gemma4" and v.block_params() == 4 * 1152**2 + 3 * 1152 * 4304 and v.merger_params() == 1152 * h
    assert abs(shape.vision_params() / 1e6 - 550) < 10  # card: vision encoder ~550M
    # without attention_k_eq_v the full layers keep num_key_value_heads and a V projection
    config = resolve_shape_config("google/gemma-4-26B-A4B-it")
    plain = from_config({**config, "text_config": {**config["text_config"], "attention_k_eq_v": False}}, "x")
    assert plain.num_global_key_value_heads == 8 and not plain.global_k_eq_v
    assert plain.full_attention_params() > shape.full_attention_params()


def test_gemma4_without_layer_types_is_a_user_error():
    config = resolve_shape_config("google/gemma-4-26B-A4B-it")
    text = {k: v for k, v in config["text_config"].items() if k != "layer_types"}
    with pytest.raises(UserError, match="layer_types"):
        from_config({**config, "text_config": text}, "x")


def test_omni_models_read_the_thinker():
    # mcore-bridge config/parser.py _convert_config reads thinker_config's text_config; the towers come from
    # thinker_config.vision_config (Qwen3Omni_Vit / Qwen2_5Omni_Vit); the talker is not trained.
    omni = resolve_shape("Qwen/Qwen3-Omni-30B-A3B-Instruct")
    qwen3 = resolve_shape("Qwen/Qwen3-30B-A3B")
    # the Qwen3-30B-A3B language model, with a vocabulary of 152064 rather than 151936 (untied: embedding and head)
    assert omni.total_params() - omni.vision_params() - qwen3.total_params() == (152064 - 151936) * 2048 * 2
    assert omni.vision.depth == 27 and omni.vision.mergers == 4 and omni.max_positions == 65536
    assert omni.shared_expert_intermediate_size == 0 and not omni.router_pre_softmax
    # the Thinking release is the same thinker; its length is not bundled (alias_config reaches into thinker_config)
    thinking = resolve_shape("Qwen/Qwen3-Omni-30B-A3B-Thinking")
    assert thinking.total_params() == omni.total_params() and thinking.max_positions == 0
    assert resolve_shape("Qwen/Qwen3-Omni-30B-A3B-Instruct").max_positions == 65536
    omni7 = resolve_shape("Qwen/Qwen2.5-Omni-7B")
    assert omni7.total_params() - omni7.vision_params() == resolve_shape("Qwen/Qwen2.5-7B-Instruct").total_params()
    with pytest.raises(UserError, match="thinker_config"):
        from_config({"model_type": "qwen2_5_omni", "thinker_config": [1]}, "x")


def test_qwen2_vl_tower_is_embed_dim_wide_and_its_hidden_size_is_the_merger_output():
    # transformers Qwen2VLVisionConfig: embed_dim 1280 is the tower, mlp_ratio 4 its MLP (fc1/fc2 of 5120), and
    # hidden_size the merger's output (the language model's 3584); reading hidden_size as the tower's width
    # made a 3584-wide tower of 28x the parameters
    shape = resolve_shape("Qwen/Qwen2-VL-7B-Instruct")
    v = shape.vision
    assert (v.depth, v.hidden_size, v.intermediate_size, v.out_hidden_size) == (32, 1280, 5120, 3584)
    assert v.block_params() == 4 * 1280**2 + 2 * 1280 * 5120 and v.merger_params() == 5120**2 + 5120 * 3584
    assert shape.mrope and shape.max_positions == 32768
    config = resolve_shape_config("Qwen/Qwen2-VL-7B-Instruct")
    half = from_config({**config, "vision_config": {**config["vision_config"], "mlp_ratio": 2.5}}, "x").vision
    assert half.intermediate_size == 3200
    with pytest.raises(UserError, match="vision_config.mlp_ratio"):
        from_config({**config, "vision_config": {**config["vision_config"], "mlp_ratio": "4"}}, "x")


def test_llama4_interleaved_dense_layers_and_shared_expert_as_mcore_bridge_builds_them():
    # mcore-bridge config/parser.py (llama4): moe_layer_freq from interleave_moe_layer_step (MoE when
    # i % step == step - 1), dense layers of intermediate_size_mlp, one shared expert of the experts' width
    mav = resolve_shape("meta-llama/Llama-4-Maverick-17B-128E-Instruct")
    assert (mav.num_dense_layers, mav.num_moe_layers, mav.intermediate_size) == (24, 24, 16384)
    assert mav.shared_expert_intermediate_size == 8192 and mav.router_score_function == "sigmoid"
    # a published Llama-4 config.json spells no shared expert; it is read as mcore-bridge builds the model
    scout = resolve_shape_config("meta-llama/Llama-4-Scout-17B-16E-Instruct")
    text = {k: v for k, v in scout["text_config"].items() if k != "n_shared_experts"}
    plain = from_config({**scout, "text_config": text}, "x")
    assert plain.total_params() == resolve_shape("meta-llama/Llama-4-Scout-17B-16E-Instruct").total_params()
    assert plain.shared_expert_intermediate_size == 8192 and plain.num_dense_layers == 0


def resolve_shape_config(model):
    return _bundled_index()[model.lower()][0]["config"]


def test_qwen3_moe_mlp_only_layers_and_sparse_step_make_dense_layers():
    base = {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 8, "vocab_size": 100,
            "intermediate_size": 128, "moe_intermediate_size": 32, "num_experts": 4, "num_experts_per_tok": 2}
    assert from_config({**base, "mlp_only_layers": [0, 1]}, "m").num_dense_layers == 2
    assert from_config({**base, "decoder_sparse_step": 2}, "m").num_dense_layers == 4
    assert from_config({**base, "first_k_dense_replace": 3}, "m").num_dense_layers == 3


# ---- where the config.json comes from ------------------------------------------------------------------

QWEN3_8B = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 4096, "intermediate_size": 12288,
            "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
            "vocab_size": 151936, "tie_word_embeddings": False}


def _hf_snapshot(cache, model, rev, config):
    repo = cache / ("models--" + model.replace("/", "--"))
    (repo / "snapshots" / rev).mkdir(parents=True)
    (repo / "snapshots" / rev / "config.json").write_text(json.dumps(config))
    return repo


def test_hf_cache_snapshot_named_by_refs_main(tmp_path, monkeypatch):
    cache = tmp_path / "hf"
    repo = _hf_snapshot(cache, "acme/Mystery-8B", "aaa111", QWEN3_8B)
    _hf_snapshot(cache, "acme/Mystery-8B", "bbb222", {**QWEN3_8B, "num_hidden_layers": 12})
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("aaa111")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    shape = resolve_shape("acme/Mystery-8B")
    assert shape.origin == "Hugging Face cache" and shape.num_layers == 36
    assert shape.source == str(repo / "snapshots" / "aaa111" / "config.json")


def test_hf_home_is_used_when_hf_hub_cache_is_not_set(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    _hf_snapshot(tmp_path / "home" / "hub", "acme/Mystery-8B", "c0ffee", QWEN3_8B)
    assert resolve_shape("acme/Mystery-8B").origin == "Hugging Face cache"


@pytest.mark.parametrize("layout", ["models/acme--Mystery-8B.1/snapshots/master", "models/acme/Mystery-8B___1",
                                    "hub/models/acme/Mystery-8B___1"])
def test_modelscope_cache_layouts(tmp_path, monkeypatch, layout):
    # modelscope_hub writes models/ORG--NAME/snapshots/REV; older SDKs models/ORG/NAME with '.' as '___'.
    cache = tmp_path / "ms"
    (cache / layout).mkdir(parents=True)
    (cache / layout / "config.json").write_text(json.dumps(QWEN3_8B))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(cache))
    shape = resolve_shape("acme/Mystery-8B.1")
    assert shape.origin == "ModelScope cache" and shape.source == str(cache / layout / "config.json")


def test_order_local_then_caches_then_model_config_then_bundled(tmp_path, monkeypatch):
    cfg = tmp_path / "given.json"
    cfg.write_text(json.dumps({**QWEN3_8B, "num_hidden_layers": 4}))
    assert resolve_shape("Qwen/Qwen3-8B", cfg).origin == "--model-config"  # beats bundled
    _hf_snapshot(tmp_path / "hf-empty", "Qwen/Qwen3-8B", "r1", QWEN3_8B)
    assert resolve_shape("Qwen/Qwen3-8B", cfg).origin == "Hugging Face cache"  # the real download beats both
    local = tmp_path / "Qwen" / "Qwen3-8B"
    local.mkdir(parents=True)
    (local / "config.json").write_text(json.dumps(QWEN3_8B))
    monkeypatch.chdir(tmp_path)
    assert resolve_shape("Qwen/Qwen3-8B", cfg).origin == "local directory"


def test_plan_says_which_source_it_used(tmp_path):
    _hf_snapshot(tmp_path / "hf", "acme/Mystery-8B", "abc", QWEN3_8B)
    env = {"HF_HUB_CACHE": str(tmp_path / "hf"), "MODELSCOPE_CACHE": str(tmp_path / "ms")}
    result = swift_ext("plan", SFT, "args.model=acme/Mystery-8B", "args.expert_model_parallel_size=1",
                       "args.mtp_num_layers=null", "--json", env=env)
    data = json.loads(result.stdout)
    assert data["model_source"]["kind"] == "Hugging Face cache"
    assert data["model_source"]["path"].endswith("snapshots/abc/config.json")
    text = swift_ext("plan", SFT, env=env).stdout
    assert "from bundled config" in text and "qwen.json" in text


@pytest.mark.parametrize("given, bundled, published", [
    ("/data/models/Qwen3-8B", "Qwen/Qwen3-8B", "Qwen/Qwen3-8B"),
    ("/mnt/ckpt/Qwen3-30B-A3B-Instruct-2507/", "Qwen/Qwen3-30B-A3B", "Qwen/Qwen3-30B-A3B-Instruct-2507"),
    ("Qwen3-VL-8B-Instruct-mcore", "Qwen/Qwen3-VL-8B-Instruct", "Qwen/Qwen3-VL-8B-Instruct"),
    ("unsloth/Qwen3-8B", "Qwen/Qwen3-8B", "Qwen/Qwen3-8B")])
def test_a_model_path_not_readable_here_takes_the_bundled_config_of_its_name(given, bundled, published):
    # Reports give the model as the training machine's path (/root/Qwen3-8B, the docs' Qwen3-30B-A3B-Base-mcore): the
    # layout and memory are those of the published model the directory is named after (an alias's own fields, such
    # as the 2507 release's length, included), and the plan says so.
    shape, same = resolve_shape(given), resolve_shape(published)
    assert shape.origin.startswith(f"bundled config of {bundled}, by the directory name")
    assert shape.name == given and same.origin == "bundled config"
    assert (shape.num_layers, shape.hidden_size, shape.num_experts, shape.max_positions) == \
        (same.num_layers, same.hidden_size, same.num_experts, same.max_positions)


@pytest.mark.parametrize("given", ["/data/models/checkpoint-500", "/data/Qwen3-8B-finetuned", "acme/Mystery-7B"])
def test_a_path_whose_name_is_no_published_model_is_still_unknown(given):
    with pytest.raises(ShapeNotFound):
        resolve_shape(given)


def test_a_readable_directory_beats_the_name(tmp_path):
    local = tmp_path / "Qwen3-8B"
    local.mkdir()
    (local / "config.json").write_text(json.dumps({**QWEN3_8B, "num_hidden_layers": 4}))
    shape = resolve_shape(str(local))
    assert shape.origin == "local directory" and shape.num_layers == 4


# ---- degrade, don't block ------------------------------------------------------------------------------------

def test_unknown_model_is_one_warning_and_the_plan_still_runs(write, tmp_path):
    path = write("r.yaml", "command: sft\nlaunch: {gpus_per_node: 8, gpu: H100}\nargs:\n  model: acme/Mystery-7B\n"
                           "  dataset: [a.jsonl]\n  global_batch_size: 12\n  micro_batch_size: 1\n")
    env = {"HF_HUB_CACHE": str(tmp_path / "hf"), "MODELSCOPE_CACHE": str(tmp_path / "ms")}
    result = swift_ext("plan", path, "args.global_batch_size=16", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("layout and memory not checked: no config.json for acme/Mystery-7B") == 1
    assert "--model-config" in result.stderr and "Traceback" not in result.stderr
    printed = swift_ext("plan", path, "args.global_batch_size=16", "--print", env=env)
    assert printed.returncode == 0 and "megatron sft" in printed.stdout and "--model acme/Mystery-7B" in printed.stdout
    data = json.loads(swift_ext("plan", path, "args.global_batch_size=16", "--json", env=env).stdout)
    assert data["ok"] and data["memory"] is None and data["model_source"] is None and data["layout"]["world"] == 8
    # rules that need no shape still run: 12 is not a multiple of micro_batch_size*DP = 8
    bad = swift_ext("plan", path, env=env)
    assert bad.returncode == 2 and "global_batch_size 12" in bad.stderr
    cfg = write("cfg.json", json.dumps({"hidden_size": 4096, "num_attention_heads": 32, "num_hidden_layers": 32,
                                        "vocab_size": 32000, "intermediate_size": 11008}))
    given = swift_ext("plan", path, "args.global_batch_size=16", "--model-config", cfg, "--json", env=env)
    assert json.loads(given.stdout)["model_source"]["kind"] == "--model-config"


def test_search_without_a_shape_says_what_to_do(write, tmp_path):
    path = write("r.yaml", "command: sft\nlaunch: {gpus_per_node: 8, gpu: H100}\nargs:\n  model: acme/Mystery-7B\n"
                           "  dataset: [a.jsonl]\n")
    result = swift_ext("plan", path, "--search", env={"HF_HUB_CACHE": str(tmp_path), "MODELSCOPE_CACHE": str(tmp_path)})
    assert result.returncode == 2 and "--model-config" in result.stderr and "Traceback" not in result.stderr


def test_no_gpu_model_is_a_warning_and_no_verdict(write):
    path = write("r.yaml", "command: sft\nlaunch: {gpus_per_node: 4}\nargs:\n  model: Qwen/Qwen3-8B\n  dataset: [a.jsonl]\n")
    result = swift_ext("plan", path, "--json")
    data = json.loads(result.stdout)
    assert result.returncode == 0 and data["ok"] and data["memory"]["verdict"] is None
    assert any(w["rule"] == "launch" and "launch.gpu" in w["message"] for w in data["warnings"])


# ---- bad config.json ---------------------------------------------------------------------------------------------

GOOD = {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 100, "intermediate_size": 128}


@pytest.mark.parametrize("change, says", [
    ({"num_attention_heads": 0}, "num_attention_heads must be positive"),
    ({"hidden_size": 0}, "hidden_size must be positive"),
    ({"num_hidden_layers": -2}, "num_hidden_layers must be positive"),
    ({"vocab_size": "lots"}, "vocab_size must be an integer"),
    ({"hidden_size": 65}, "not divisible by num_attention_heads"),
    ({"num_key_value_heads": 8}, "num_key_value_heads 8 > num_attention_heads 4"),
    ({"num_experts": 8}, "needs num_experts_per_tok"),
    ({"num_experts": 8, "num_experts_per_tok": 9}, "num_experts_per_tok 9 > 8 experts"),
    ({"intermediate_size": None}, "lacks 'intermediate_size'"),
    ({"head_dim": 2.5}, "head_dim must be an integer"),
    ({"hidden_size": True}, "hidden_size must be an integer"),
    ({"text_config": [1, 2]}, "not an object"),
])
def test_garbage_config_is_a_user_error_naming_the_field(change, says):
    with pytest.raises(UserError) as info:
        from_config({**GOOD, **change}, "m", source="cfg.json")
    assert says in str(info.value) and "cfg.json" in str(info.value)
    assert not isinstance(info.value, ShapeNotFound)


def test_zeros_in_a_local_config_fail_the_plan_cleanly(write, tmp_path):
    model = tmp_path / "zero-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({**GOOD, "num_attention_heads": 0, "num_key_value_heads": 0}))
    path = write("r.yaml", f"command: sft\nlaunch: {{gpus_per_node: 2, gpu: H100}}\nargs:\n  model: {model}\n"
                           "  dataset: [a.jsonl]\n")
    result = swift_ext("plan", path)
    assert result.returncode == 2 and "num_attention_heads must be positive" in result.stderr
    assert "Traceback" not in result.stderr and "ZeroDivisionError" not in result.stderr


@pytest.mark.parametrize("alias, entry, positions", [
    ("Qwen/QwQ-32B", "Qwen/Qwen2.5-32B-Instruct", 131072),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "Qwen/Qwen2.5-32B-Instruct", 131072),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", "Qwen/Qwen2.5-14B-Instruct", 131072),
    ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "Qwen/Qwen2.5-7B-Instruct", 131072),
    ("Qwen/Qwen2.5-Math-7B", "Qwen/Qwen2.5-7B-Instruct", 4096),
    ("Qwen/Qwen2.5-Coder-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct", 32768),
    ("Qwen/Qwen2.5-Coder-32B-Instruct", "Qwen/Qwen2.5-32B-Instruct", 32768),
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "meta-llama/Llama-3.1-8B-Instruct", 131072),
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-70B", "meta-llama/Llama-3.1-70B-Instruct", 131072),
])
def test_aliases_share_the_shape_and_keep_their_own_length(alias, entry, positions):
    # Aliases only where every shape field of the config.json matches; the length differs (alias_config).
    a, e = resolve_shape(alias), resolve_shape(entry)
    assert a.total_params() == e.total_params() and a.vocab_size == e.vocab_size
    assert a.tie_word_embeddings == e.tie_word_embeddings and a.max_positions == positions


def test_sliding_layers_are_counted_from_layer_types_or_all_layers_without_them():
    # vLLM keeps only the window's KV for these layers (length_rules.rollout_engine_gib)
    base = {"model_type": "x", "num_hidden_layers": 6, "hidden_size": 64, "num_attention_heads": 4,
            "intermediate_size": 64, "vocab_size": 100, "sliding_window": 512}
    types = ["sliding_attention"] * 5 + ["full_attention"]
    assert from_config({**base, "layer_types": types}, name="x").num_sliding_layers == 5
    assert from_config(base, name="x").num_sliding_layers == 6  # Mistral-style: every layer slides
    assert from_config({**base, "use_sliding_window": False}, name="x").num_sliding_layers == 0  # Qwen2.5
    assert resolve_shape("google/gemma-4-26B-A4B-it").num_sliding_layers == 25
