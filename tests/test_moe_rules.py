"""planner/moe_rules.py on published ms-swift examples (tests/fixtures/working) with one flag changed:
the rule fires on the combination megatron-core refuses and stays quiet on the published one."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"


def _findings(name: str, *overrides: str):
    result = make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)
    return {(p.code, p.path) for p in result.errors}, {(p.code, p.path) for p in result.warnings}


def test_allgather_dispatcher_refused_with_packing_and_shared_expert_overlap():
    # GLM-4.5-Air has shared experts and the example packs: megatron-core refuses both with allgather.
    errors, _ = _findings("ms-swift-example-lora-mtp.yaml", "args.moe_token_dispatcher_type=allgather")
    assert ("moe-dispatcher", "args.moe_token_dispatcher_type") in errors
    assert ("moe-dispatcher", "args.moe_shared_expert_overlap") in errors


def test_allgather_dispatcher_needs_variable_seq_lengths_off_with_mcore_bridge():
    # Qwen3-30B-A3B has no shared experts. mcore-bridge's ModelConfig defaults variable_seq_lengths to True, so
    # allgather fails even without padding_free, unless megatron_extra_kwargs turns it off (applied last).
    allgather = ("args.moe_token_dispatcher_type=allgather", "args.padding_free=false")
    errors, _ = _findings("ms-swift-example-lora-moe.yaml", *allgather)
    assert ("moe-dispatcher", "args.moe_token_dispatcher_type") in errors
    for off in ("false", '"false"', "0"):
        errors, _ = _findings("ms-swift-example-lora-moe.yaml", *allgather,
                              f'args.megatron_extra_kwargs={{"variable_seq_lengths": {off}}}')
        assert not {e for e in errors if e[0] == "moe-dispatcher"}, off
    # megatron-bridge sets variable_seq_lengths only with padding_free
    bridge = _findings("ms-swift-example-lora-moe.yaml", *allgather, "args.bridge_backend=megatron-bridge",
                       "args.tuner_type=full")[0]
    assert not {e for e in bridge if e[0] == "moe-dispatcher"}
    bridge = _findings("ms-swift-example-lora-moe.yaml", "args.moe_token_dispatcher_type=allgather",
                       "args.padding_free=true", "args.bridge_backend=megatron-bridge", "args.tuner_type=full")[0]
    assert ("moe-dispatcher", "args.moe_token_dispatcher_type") in bridge


def test_dispatcher_given_in_megatron_extra_kwargs_is_the_one_judged():
    # get_mcore_model_config updates the config with megatron_extra_kwargs last: its dispatcher is megatron-core's
    allgather = 'args.megatron_extra_kwargs={"moe_token_dispatcher_type": "allgather"}'
    errors, _ = _findings("ms-swift-example-lora-mtp.yaml", allgather)
    assert {e for e in errors if e[0] == "moe-dispatcher"} == {("moe-dispatcher", "args.megatron_extra_kwargs"),
                                                                ("moe-dispatcher", "args.moe_shared_expert_overlap")}
    errors, _ = _findings("ms-swift-example-lora-mtp.yaml", "args.moe_token_dispatcher_type=allgather",
                          'args.megatron_extra_kwargs={"moe_token_dispatcher_type": "alltoall"}')
    assert not {e for e in errors if e[0] == "moe-dispatcher"}


def test_published_dispatcher_settings_pass():
    errors, warnings = _findings("ms-swift-example-lora-mtp.yaml")
    assert not {e for e in errors | warnings if e[0] in ("moe-dispatcher", "pipeline-layout-mtp-stage")}


def test_expert_bias_passes_on_a_sigmoid_router_and_is_refused_on_a_softmax_one():
    # GLM-4.5-Air routes with sigmoid (mcore-bridge), Qwen3-30B-A3B with softmax.
    bias = 'args.megatron_extra_kwargs={"moe_router_enable_expert_bias": true}'
    errors, _ = _findings("ms-swift-example-lora-mtp.yaml", bias)
    assert not {e for e in errors if e[0] == "moe-expert-bias"}
    errors, _ = _findings("ms-swift-example-lora-moe.yaml", bias)
    assert ("moe-expert-bias", "args.megatron_extra_kwargs") in errors
    # DeepSeek-V3 routes with sigmoid (config.json scoring_func; slime's model args set expert bias on it).
    errors, _ = _findings("verl-example-deepseek671b-megatron-80gb.yaml", bias)
    assert not {e for e in errors if e[0] == "moe-expert-bias"}


def test_expert_bias_on_a_checkpoint_without_one_is_refused_where_the_hf_weights_load():
    # The kwargs make Qwen3-30B-A3B's router sigmoid, so the config builds, but its checkpoint holds no expert bias:
    # mcore-bridge's GPTBridge._set_router then reads a key the HF checkpoint lacks (ms-swift#6793's setup).
    sigmoid = ('args.megatron_extra_kwargs={"moe_router_enable_expert_bias": true, '
               '"moe_router_score_function": "sigmoid"}')
    errors, _ = _findings("ms-swift-example-lora-moe.yaml", sigmoid)
    assert ("moe-expert-bias", "args.megatron_extra_kwargs") in errors
    # the sigmoid router alone (no expert bias) loads: only moe-router-override's warning is due
    errors, warnings = _findings("ms-swift-example-lora-moe.yaml",
                                 'args.megatron_extra_kwargs={"moe_router_score_function": "sigmoid"}')
    assert not {e for e in errors if e[0] == "moe-expert-bias"}
    assert ("moe-router-override", "args.megatron_extra_kwargs") in warnings
    # Llama-4 routes with sigmoid and no expert bias (mcore-bridge hf_to_mcore_config turns it off)
    errors, _ = _findings("ms-swift-example-megatron-llama4-scout-lora.yaml",
                          'args.megatron_extra_kwargs={"moe_router_enable_expert_bias": true}')
    assert ("moe-expert-bias", "args.megatron_extra_kwargs") in errors
    errors, _ = _findings("ms-swift-example-megatron-llama4-scout-lora.yaml")
    assert not {e for e in errors if e[0] == "moe-expert-bias"}



def test_mtp_only_layout_stage_warns_under_mcore_bridge_only():
    # Megatron-Bridge's DeepSeek-V3 H100 preset ends its layout with a stage holding only the MTP layer ("...|mL");
    # its GPTModelProvider mtp_block_spec falls back to the default layer spec there, mcore-bridge does not.
    name = "megatron-bridge-deepseek-v3-h100-1024gpu-deepep-a2a-overlap-mtp.yaml"
    _, warnings = _findings(name)
    assert not {w for w in warnings if w[0] == "pipeline-layout-mtp-stage"}
    _, warnings = _findings(name, "args.bridge_backend=mcore-bridge")
    assert ("pipeline-layout-mtp-stage", "args.pipeline_model_parallel_layout") in warnings


def test_lora_adapter_without_merge_warns_on_expert_bias_routers_only():
    # GLM-4.5-Air routes with sigmoid and an expert bias Megatron keeps updating; the adapter does not hold it.
    name = "ms-swift-example-megatron-glm45-air-lora-attn.yaml"
    _, warnings = _findings(name, "args.merge_lora=false")
    assert ("lora-expert-bias-unsaved", "args.merge_lora") in warnings
    # the published run merges (merge_lora defaults to save_safetensors): the merged model carries the bias
    _, warnings = _findings(name)
    assert not {w for w in warnings if w[0] == "lora-expert-bias-unsaved"}
    # a fixed bias, or the router saved with the adapter, leaves nothing to lose
    for fix in ('args.megatron_extra_kwargs={"moe_router_bias_update_rate": 0}', "args.modules_to_save=[router]"):
        _, warnings = _findings(name, "args.merge_lora=false", fix)
        assert not {w for w in warnings if w[0] == "lora-expert-bias-unsaved"}, fix
    # Qwen3-30B-A3B's softmax router has no expert bias: its published unmerged LoRA run is not warned
    _, warnings = _findings("ms-swift-example-lora-moe.yaml")
    assert not {w for w in warnings if w[0] == "lora-expert-bias-unsaved"}


def test_expert_bias_switched_off_on_a_checkpoint_trained_with_it_is_a_router_override():
    # GLM-4.5-Air's sigmoid routers add e_score_correction_bias before the top-k; off, mcore-bridge skips it
    name = "ms-swift-example-megatron-glm45-air-lora-attn.yaml"
    _, warnings = _findings(name, 'args.megatron_extra_kwargs={"moe_router_enable_expert_bias": false}')
    assert ("moe-router-override", "args.megatron_extra_kwargs") in warnings
    _, warnings = _findings(name, 'args.megatron_extra_kwargs={"moe_router_enable_expert_bias": true}')
    assert not {w for w in warnings if w[0] == "moe-router-override"}
    # Qwen3-30B-A3B's softmax router never had one
    _, warnings = _findings("ms-swift-example-lora-moe.yaml",
                            'args.megatron_extra_kwargs={"moe_router_enable_expert_bias": false}')
    assert not {w for w in warnings if w[0] == "moe-router-override"}


def test_expert_module_settings_refused_only_where_the_experts_assert():
    # megatron-core experts.py: moe_apply_probs_on_input needs a top-1 router (Qwen3-30B-A3B routes top-8);
    # TEGroupedMLP.__init__ refuses add_bias_linear beside bias_dropout_fusion (ms-swift's default true); the legacy
    # GroupedMLP.forward needs bf16. Each nearby setting the experts accept plans.
    moe = "ms-swift-example-lora-moe.yaml"
    rule = ("moe-experts-config", "args.megatron_extra_kwargs")
    assert rule in _findings(moe, 'args.megatron_extra_kwargs={"moe_apply_probs_on_input": true}')[0]
    assert rule not in _findings(moe, 'args.megatron_extra_kwargs={"moe_apply_probs_on_input": true, '
                                      '"moe_router_topk": 1}')[0]
    assert rule in _findings(moe, 'args.megatron_extra_kwargs={"add_bias_linear": true}')[0]
    assert rule not in _findings(moe, 'args.megatron_extra_kwargs={"add_bias_linear": true, '
                                      '"bias_dropout_fusion": false}')[0]
    assert rule not in _findings(moe, 'args.megatron_extra_kwargs={"add_bias_linear": true}',
                                 "args.moe_grouped_gemm=false")[0]
    legacy = 'args.megatron_extra_kwargs={"moe_use_legacy_grouped_gemm": true}'
    assert rule in _findings(moe, legacy, "args.fp16=true", "args.bf16=false")[0]
    assert rule not in _findings(moe, legacy)[0]
    # gpt-oss has biases of its own: ms-swift turns bias_dropout_fusion off for it, so restating add_bias_linear plans
    assert rule not in _findings("ms-swift-example-megatron-gpt-oss-20b-lora.yaml",
                                 'args.megatron_extra_kwargs={"add_bias_linear": true}')[0]
