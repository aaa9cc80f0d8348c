"""Rules the Qwen3-Next / Qwen3.5 / Qwen3.6 family sweep added (issue #21): packed input to megatron-core's own Gated
DeltaNet under bridge_backend megatron-bridge (linear-attention-packed), the EP all-to-all overlap on a multimodal
model (moe-a2a-overlap), and a colocated vLLM too old for the model's architecture (vllm-model)."""

from __future__ import annotations

from conftest import FIXTURES, RECIPES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

ISSUES = FIXTURES / "issues"
NEXT_BRIDGE = ISSUES / "megatron-lm-3798-qwen3-next-megatron-bridge-padding-free.yaml"
NEXT_WORKING = FIXTURES / "working" / "megatron-bridge-qwen3-next-80b-a3b-sft-16gpu.yaml"
GRPO = RECIPES / "qwen3_6/grpo-lora-8gpu.yaml"
SFT = RECIPES / "qwen3_6/sft-lora-4x32g.yaml"


def plan_of(path, *overrides):
    return make_plan(load_recipe(path, list(overrides)), oracle=False)


def found(problems, code) -> list:
    return [p for p in problems if p.code == code]


# ---- linear-attention-packed ---------------------------------------------------------------------------------

def test_qwen3_next_under_megatron_bridge_refuses_padding_free_its_megatron_default():
    (error,) = found(plan_of(NEXT_BRIDGE).errors, "linear-attention-packed")
    assert error.path == "args.padding_free" and "0.16.1 < 0.19.0" in error.message
    assert "bridge_backend: mcore-bridge" in error.hint


def test_packing_is_named_when_it_is_what_turns_padding_free_on():
    (error,) = found(plan_of(NEXT_BRIDGE, "args.packing=true").errors, "linear-attention-packed")
    assert error.path == "args.packing" and "packing: false" in error.hint


def test_unpacked_input_the_default_backend_or_a_newer_megatron_core_pass():
    assert not found(plan_of(NEXT_BRIDGE, "args.padding_free=false").errors, "linear-attention-packed")
    assert not found(plan_of(NEXT_BRIDGE, "args.bridge_backend=mcore-bridge").errors, "linear-attention-packed")
    newer = plan_of(NEXT_BRIDGE, "env.SWIFT_EXT_TARGET_VERSIONS=megatron-core=0.19.0")
    assert not found(newer.errors, "linear-attention-packed")
    # Megatron-Bridge's own Qwen3-Next recipe turns packing off; under megatron-bridge it still plans clean of this rule
    assert not found(plan_of(NEXT_WORKING, "args.bridge_backend=megatron-bridge").errors, "linear-attention-packed")


def test_a_model_without_linear_attention_is_not_judged():
    plan = plan_of(NEXT_BRIDGE, "args.model=Qwen/Qwen3-30B-A3B")
    assert not found(plan.errors, "linear-attention-packed")


def test_doctor_reads_the_same_gate_from_the_support_table():
    from swift_ext.spec.support import Versions, recipe_features, unsupported

    raw = {"bridge_backend": "megatron-bridge"}
    assert "packed-linear-attention" in recipe_features(raw, "qwen3_next")
    assert "packed-linear-attention" not in recipe_features({**raw, "padding_free": False}, "qwen3_next")
    assert "packed-linear-attention" not in recipe_features({}, "qwen3_next")  # mcore-bridge
    assert unsupported(["packed-linear-attention"], Versions({"megatron-core": "0.16.1"}))
    assert not unsupported(["packed-linear-attention"], Versions({"megatron-core": "0.19.0"}))


# ---- moe-a2a-overlap on a multimodal model -------------------------------------------------------------------

OVERLAP = ("args.megatron_extra_kwargs={overlap_moe_expert_parallel_comm: true}", "args.recompute_granularity=selective",
           "args.recompute_method=null", "args.recompute_num_layers=null")


def _multimodal(plan) -> list:
    return [e for e in found(plan.errors, "moe-a2a-overlap") if "multimodal" in e.message]


def test_ep_overlap_on_a_multimodal_moe_is_refused_on_the_extra_kwargs():
    # Qwen3.6-35B-A3B is a multimodal model in ms-swift's registry: mcore-bridge builds a MultimodalGPTModel
    (error,) = _multimodal(plan_of(SFT, *OVERLAP))
    assert error.path == "args.megatron_extra_kwargs" and "qwen3_5_moe" in error.message
    assert not found(plan_of(SFT).errors, "moe-a2a-overlap")


def test_ep_overlap_on_a_text_moe_is_not_refused_as_multimodal():
    assert not _multimodal(plan_of(SFT, *OVERLAP, "args.model=Qwen/Qwen3-30B-A3B", "args.template=null"))


# ---- vllm-model ----------------------------------------------------------------------------------------------

def test_a_colocated_vllm_older_than_qwen35_support_is_refused_on_use_vllm():
    (error,) = found(plan_of(GRPO, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.15.0").errors, "vllm-model")
    assert error.path == "args.use_vllm" and "0.15.0 < 0.17.0" in error.message
    assert not found(plan_of(GRPO, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.17.0").errors, "vllm-model")


def test_the_older_vllm_spelling_is_read_too():
    assert found(plan_of(GRPO, "env.SWIFT_EXT_VLLM_VERSION=0.16.0").errors, "vllm-model")


def test_a_rollout_server_or_no_rollout_is_not_judged():
    old = "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.15.0"
    server = plan_of(GRPO, old, "args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]")
    assert not found(server.errors, "vllm-model")  # `swift rollout` runs (and checks) its own vLLM
    assert not found(plan_of(GRPO, old, "args.use_vllm=false").errors, "vllm-model")
    assert not found(plan_of(SFT, old).errors, "vllm-model")


def test_a_model_vllm_has_long_supported_is_not_judged():
    plan = plan_of(GRPO, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.15.0", "args.model=Qwen/Qwen3-30B-A3B",
                   "args.template=null")
    assert not found(plan.errors, "vllm-model")


def test_qwen3_vl_and_qwen3_next_need_the_vllm_that_registered_them():
    # ms-swift#6649 / vLLM's Qwen3-VL recipe: Qwen3-VL from vLLM 0.11.0; Qwen3-Next from 0.10.2 (gpustack#3827).
    for model, old, new in (("Qwen/Qwen3-VL-8B-Instruct", "0.10.2", "0.11.0"),
                            ("Qwen/Qwen3-VL-30B-A3B-Instruct", "0.10.2", "0.11.0"),
                            ("Qwen/Qwen3-Next-80B-A3B-Instruct", "0.10.1.1", "0.10.2")):
        base = (f"args.model={model}", "args.max_length=2048")
        (error,) = found(plan_of(GRPO, *base, f"env.SWIFT_EXT_TARGET_VERSIONS=vllm={old}").errors, "vllm-model")
        assert error.path == "args.use_vllm" and f"{old} <" in error.message, model
        assert not found(plan_of(GRPO, *base, f"env.SWIFT_EXT_TARGET_VERSIONS=vllm={new}").errors, "vllm-model")
    # Qwen2.5-VL has been in vLLM far longer than any version ms-swift 4.6 runs with
    older = plan_of(GRPO, "args.model=Qwen/Qwen2.5-VL-7B-Instruct", "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.10.2")
    assert not found(older.errors, "vllm-model")


def test_gpt_oss_and_glm4v_need_the_vllm_that_registered_them(tmp_path):
    # vllm PR #22259 / worker-vllm#206: gpt-oss from 0.10.1; gpustack#2730: GLM-4.5V not in 0.10.0; GLM-V#15:
    # GLM-4.1V unknown to 0.9.1 (VLMEvalKit PR #1165: >= 0.9.2).
    for model, old, new in (("openai/gpt-oss-20b", "0.10.0", "0.10.1"), ("ZhipuAI/GLM-4.5V", "0.10.0", "0.10.1")):
        base = (f"args.model={model}", "args.max_length=2048", "args.template=null")
        (error,) = found(plan_of(GRPO, *base, f"env.SWIFT_EXT_TARGET_VERSIONS=vllm={old}").errors, "vllm-model")
        assert error.path == "args.use_vllm" and f"{old} <" in error.message, model
        assert not found(plan_of(GRPO, *base, f"env.SWIFT_EXT_TARGET_VERSIONS=vllm={new}").errors, "vllm-model")
    # the gpt-oss wheel vLLM published before 0.10.1 (0.10.1+gptoss) counts as 0.10.1
    gptoss = ("args.model=openai/gpt-oss-20b", "args.max_length=2048", "args.template=null")
    assert not found(plan_of(GRPO, *gptoss, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.10.1+gptoss").errors, "vllm-model")
    from swift_ext.spec.support import BY_FEATURE, Versions, version_gaps
    assert version_gaps("vllm-glm4v", Versions({"vllm": "0.9.1"}, {"vllm": "test"}))
    assert not version_gaps("vllm-glm4v", Versions({"vllm": "0.9.2"}, {"vllm": "test"}))
    assert "glm4v_moe".startswith(BY_FEATURE["vllm-glm4v"].model_types)  # GLM-4.5V gets both rows


def test_the_expert_lora_rule_reads_the_declared_vllm_target_as_well(tmp_path):
    from swift_ext.planner.rollout_rules import vllm_version

    assert vllm_version({"SWIFT_EXT_TARGET_VERSIONS": "vllm=0.12.0"}) == (
        "0.12.0", "SWIFT_EXT_TARGET_VERSIONS in the recipe env")
    assert vllm_version({"SWIFT_EXT_VLLM_VERSION": "0.11.2", "SWIFT_EXT_TARGET_VERSIONS": "vllm=0.12.0"})[0] == "0.11.2"


# ---- vllm-feature-version --------------------------------------------------------------------------------------

def test_rollout_features_ms_swift_gates_on_the_trainers_vllm():
    # MegatronGRPOTrainer._init_rollout_engine refuses rollout IS below vLLM 0.10.2 (in server mode too: the check
    # reads the trainer's vLLM); MegatronRolloutMixin._prepare_vllm_engine asserts vLLM >= 0.14.0 for R3.
    dense = "args.model=Qwen/Qwen3-30B-A3B"  # a model any of these vLLMs knows (vllm-model stays out)
    rollout_is = "args.rollout_importance_sampling_mode=token_truncate"
    (error,) = found(plan_of(GRPO, dense, rollout_is, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.10.1").errors,
                     "vllm-feature-version")
    assert error.path == "args.rollout_importance_sampling_mode"
    assert not found(plan_of(GRPO, dense, rollout_is, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.10.2").errors,
                     "vllm-feature-version")
    server = ("args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]")
    assert found(plan_of(GRPO, dense, rollout_is, *server, "env.SWIFT_EXT_VLLM_VERSION=0.9.2").errors,
                 "vllm-feature-version")
    r3 = "args.router_replay_mode=R3"
    assert found(plan_of(GRPO, dense, r3, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.13.0").errors, "vllm-feature-version")
    assert not found(plan_of(GRPO, dense, r3, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.14.0").errors,
                     "vllm-feature-version")
    assert not found(plan_of(GRPO, dense, r3, *server, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.13.0").errors,
                     "vllm-feature-version")  # the server's engine is `swift rollout`'s
    assert not found(plan_of(GRPO, dense, r3, rollout_is).errors, "vllm-feature-version")  # no version: no verdict


# ---- r3-rollout-server ------------------------------------------------------------------------------------------

def test_r3_with_a_rollout_server_warns_that_the_server_must_return_the_routing():
    # ms-swift sets enable_return_routed_experts for a colocated engine only; a `swift rollout` server needs it in its
    # own vllm_engine_kwargs, or Megatron's replayed forward asserts (megatron/trainers/utils.py).
    moe = "args.model=Qwen/Qwen3-30B-A3B"
    r3 = "args.router_replay_mode=R3"
    server = ("args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]")
    (warning,) = found(plan_of(GRPO, moe, r3, *server).warnings, "r3-rollout-server")
    assert warning.path == "args.router_replay_mode" and "enable_return_routed_experts" in warning.hint
    assert not found(plan_of(GRPO, moe, r3).warnings, "r3-rollout-server")  # colocated: ms-swift asks for it
    assert not found(plan_of(GRPO, moe, "args.router_replay_mode=R2", *server).warnings, "r3-rollout-server")
    assert not found(plan_of(GRPO, "args.model=Qwen/Qwen3-8B", r3, *server).warnings, "r3-rollout-server")  # no router
