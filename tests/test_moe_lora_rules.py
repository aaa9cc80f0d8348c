"""LoRA on the MoE models peft 0.20 converts for transformers 5 (planner/moe_lora_rules.py): the table matches the
installed peft and transformers, the installed engine does what the rules say on a tiny Qwen3-MoE, each rule fires on
its recipe and leaves the nearby working setups alone."""

from __future__ import annotations

import types

import pytest

from swift_ext.planner.moe_lora_rules import CONVERTED_MODEL_TYPES, FUSED_PAIRS
from test_length_rules import findings

ALL_LINEAR = "peft-3009-qwen3-moe-all-linear-experts"


def test_the_converted_model_types_are_the_installed_peft_ones():
    from peft.utils.transformers_weight_conversion import _MODEL_TO_CONVERSION_PATTERN, _MOE_FUSED_TARGETS
    from transformers.conversion_mapping import get_checkpoint_conversion_mapping

    installed: dict[str, set[str]] = {}
    for model_type, pattern in _MODEL_TO_CONVERSION_PATTERN.items():
        if pattern in _MOE_FUSED_TARGETS and get_checkpoint_conversion_mapping(model_type) is not None:
            installed.setdefault(pattern, set()).add(model_type)
    assert installed == {p: set(types_) for p, types_ in CONVERTED_MODEL_TYPES.items()}
    assert {p: tuple(v["gate_up_proj"]) for p, v in _MOE_FUSED_TARGETS.items()} == FUSED_PAIRS


def _tiny_qwen3_moe():
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM
    return Qwen3MoeForCausalLM(Qwen3MoeConfig(
        vocab_size=128, hidden_size=32, intermediate_size=64, moe_intermediate_size=16, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, num_experts=4, num_experts_per_tok=2, head_dim=8))


def test_the_installed_engine_leaves_the_experts_out_of_all_linear_and_refuses_half_a_pair():
    from peft import LoraConfig, get_peft_model
    from swift.utils.transformers_utils import find_all_linears

    model = _tiny_qwen3_moe()
    targets = find_all_linears(model, model_arch=types.SimpleNamespace(lm_head="lm_head"))
    assert sorted(targets) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    trained = [n for n, p in get_peft_model(model, LoraConfig(target_modules=targets, r=4)).named_parameters()
               if p.requires_grad]
    assert trained and not [n for n in trained if "experts" in n]
    with pytest.raises(ValueError, match="Cannot convert PEFT target"):
        get_peft_model(_tiny_qwen3_moe(), LoraConfig(target_modules=["q_proj", "gate_proj", "down_proj"], r=4))


def test_all_linear_on_a_routed_only_moe_is_warned():
    assert findings(ALL_LINEAR)[1].get("lora-all-linear-experts") == {"args.target_modules"}
    assert findings(ALL_LINEAR, "args.model=MiniMaxAI/MiniMax-M2")[1].get(
        "lora-all-linear-experts") == {"args.target_modules"}


@pytest.mark.parametrize("good", [
    ["args.target_parameters=[mlp.experts.gate_up_proj, mlp.experts.down_proj]"],
    ["args.target_modules=[all-linear, gate_proj, up_proj, down_proj]"],  # peft maps the names to the experts
    ["args.target_modules=[q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]"],
    ["args.tuner_type=full", "args.target_modules=null"],
    ["args.model=Qwen/Qwen3-8B"],  # dense: all-linear covers the MLP
    ["args.model=deepseek-ai/DeepSeek-V3"],  # shared experts / dense layers: peft re-targets the experts
    ["engine=megatron"],
])
def test_all_linear_experts_quiet(good):
    assert "lora-all-linear-experts" not in findings(ALL_LINEAR, *good)[1], good


# The refusals judge a declared transformers 5 stack (the training machine's); this machine's copy alone only says it.
V5 = "env.SWIFT_EXT_TARGET_VERSIONS=transformers=5.19.0"


def test_on_the_installed_transformers_alone_the_fused_expert_failures_are_said_not_refused():
    for bad, code, path in (("args.target_modules=[q_proj, v_proj, gate_proj, down_proj]", "lora-fused-pair",
                             "args.target_modules"), ("args.model=zai-org/GLM-4.5-Air", "lora-param-wrapper",
                                                      "args.lora_dropout")):
        errors, warnings = findings(ALL_LINEAR, bad)
        assert code not in errors and warnings.get(code) == {path}, (errors, warnings)
        assert findings(ALL_LINEAR, V5, bad)[0].get(code) == {path}


def test_half_a_fused_pair_is_refused_and_both_halves_are_not():
    half = findings(ALL_LINEAR, V5, "args.target_modules=[q_proj, v_proj, gate_proj, down_proj]")[0]
    assert half.get("lora-fused-pair") == {"args.target_modules"}
    mixtral = findings(ALL_LINEAR, V5, "args.model=MiniMaxAI/MiniMax-M2", "args.target_modules=[w1, w2]")
    assert findings(ALL_LINEAR, V5, "args.model=deepseek-ai/DeepSeek-V3", "args.target_modules=[up_proj, down_proj]")[0].get(
        "lora-fused-pair") == {"args.target_modules"}
    assert mixtral[0].get("lora-fused-pair") == {"args.target_modules"}
    for ok in (["args.target_modules=[q_proj, v_proj, gate_proj, up_proj, down_proj]"],
               ["args.target_modules=[q_proj, v_proj, down_proj]"],
               ["args.target_modules=[q_proj, v_proj, gate_proj]", "args.model=Qwen/Qwen3-8B"],  # no conversion
               ["args.target_modules=[q_proj, v_proj, gate_proj]", "args.target_regex=.*proj"]):
        assert "lora-fused-pair" not in findings(ALL_LINEAR, V5, *ok)[0], ok


def test_the_installed_engine_refuses_dropout_on_fused_experts_even_from_all_linear():
    from swift.tuners import LoraConfig, Swift
    from swift.utils.transformers_utils import find_all_linears
    from transformers import Glm4MoeConfig, Glm4MoeForCausalLM

    config = Glm4MoeConfig(vocab_size=128, hidden_size=32, intermediate_size=64, moe_intermediate_size=16,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, n_routed_experts=4,
                           num_experts_per_tok=2, n_shared_experts=1, first_k_dense_replace=1, head_dim=8)
    targets = find_all_linears(Glm4MoeForCausalLM(config), model_arch=types.SimpleNamespace(lm_head="lm_head"))
    assert {"gate_proj", "up_proj", "down_proj"} <= set(targets)  # the shared expert's and dense layer's Linear
    lora = dict(task_type="CAUSAL_LM", lora_dtype=None, r=8, target_modules=targets, lora_alpha=32, bias="none")
    with pytest.raises(ValueError, match="ParamWrapper does not work with lora_dropout"):
        Swift.prepare_model(Glm4MoeForCausalLM(config), LoraConfig(lora_dropout=0.05, **lora))
    Swift.prepare_model(Glm4MoeForCausalLM(config), LoraConfig(lora_dropout=0.0, **lora))


def test_dropout_on_fused_experts_is_refused_and_dropout_zero_is_not():
    # all-linear on GLM-4.5 (shared experts, a dense first layer) with ms-swift's default dropout
    glm = ("args.model=zai-org/GLM-4.5-Air",)
    assert findings(ALL_LINEAR, V5, *glm)[0].get("lora-param-wrapper") == {"args.lora_dropout"}
    assert "lora-param-wrapper" not in findings(ALL_LINEAR, V5, *glm, "args.lora_dropout=0")[0]
    # named experts on Qwen3-MoE, and target_parameters on any model
    named = "args.target_modules=[q_proj, gate_proj, up_proj, down_proj]"
    assert findings(ALL_LINEAR, V5, named)[0].get("lora-param-wrapper") == {"args.lora_dropout"}
    assert findings(ALL_LINEAR, V5, named, "args.lora_dropout=0", "args.use_dora=true")[0].get(
        "lora-param-wrapper") == {"args.use_dora"}
    tp = "args.target_parameters=[mlp.experts.gate_up_proj, mlp.experts.down_proj]"
    assert findings(ALL_LINEAR, V5, tp)[0].get("lora-param-wrapper") == {"args.lora_dropout"}
    assert "lora-param-wrapper" not in findings(ALL_LINEAR, V5, tp, "args.lora_dropout=0")[0]
    # all-linear on a routed-only MoE (attention only), a dense model, and a declared transformers 4 stack
    for fine in ([], ["args.model=Qwen/Qwen3-8B", named],
                 [*glm, "env.SWIFT_EXT_TARGET_VERSIONS=transformers=4.57.1"]):
        assert "lora-param-wrapper" not in findings(ALL_LINEAR, V5, *fine)[0], fine


def test_the_published_qwen3_next_lora_example_is_refused_on_a_declared_transformers_5():
    # ms-swift's qwen3_next/transformers.sh was published for transformers 4.57 and runs there
    from test_issue_fixtures import FIXTURES, plan
    path = FIXTURES / "working" / "ms-swift-example-swift-qwen3-next-80b-lora-device-map-4gpu.yaml"
    assert plan(path).ok
    installed = plan(path, V5)  # the installed release, declared for the training machine
    assert [(e.code, e.path) for e in installed.errors] == [("lora-param-wrapper", "args.lora_dropout")]
    assert "lora-param-wrapper" in {w.code for w in plan(path).warnings}  # this machine's copy only: said
    assert plan(path, "env.SWIFT_EXT_TARGET_VERSIONS=transformers=4.57.1").warnings == [] or "lora-param-wrapper" \
        not in {w.code for w in plan(path, "env.SWIFT_EXT_TARGET_VERSIONS=transformers=4.57.1").warnings}


def test_the_installed_engine_leaves_unconverted_fused_experts_out_of_all_linear():
    from swift.tuners import LoraConfig, Swift
    from swift.utils.transformers_utils import find_all_linears
    from transformers import GptOssConfig, GptOssForCausalLM

    model = GptOssForCausalLM(GptOssConfig(vocab_size=128, hidden_size=32, intermediate_size=16, num_hidden_layers=1,
                                           num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                                           num_experts_per_tok=2, head_dim=8, layer_types=["full_attention"]))
    targets = find_all_linears(model, model_arch=types.SimpleNamespace(lm_head="lm_head"))
    model = Swift.prepare_model(model, LoraConfig(task_type="CAUSAL_LM", lora_dtype=None, r=8, target_modules=targets,
                                                  lora_alpha=32, lora_dropout=0.05, bias="none"))
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trained and not [n for n in trained if "experts" in n]


def test_all_linear_on_unconverted_fused_experts_is_warned():
    for model in ("openai/gpt-oss-20b", "Qwen/Qwen3.5-35B-A3B"):
        assert findings(ALL_LINEAR, f"args.model={model}")[1].get("lora-all-linear-experts") == \
            {"args.target_modules"}, model
        assert "lora-all-linear-experts" not in findings(
            ALL_LINEAR, f"args.model={model}", "args.target_parameters=[mlp.experts.gate_up_proj]",
            "args.lora_dropout=0")[1], model
