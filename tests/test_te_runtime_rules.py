"""Transformer Engine runtime rules, each test changing a published working setup (tests/fixtures/working) or a
report's fixture: attention-fused (planner/attention_rules.py fused_attention_kernel: attention_backend fused leaves
only cuDNN's fused attention, which below sm90 trains head dims up to 128 only and takes THD only on sm90+; TE
fused_attn.cpp nvte_get_fused_attn_backend, NVIDIA/TransformerEngine#1610), attention-sinks-te, attention-env's
NVTE_APPLY_QK_LAYER_SCALING, cp-comm-type's MLA case and fp8-shape (planner/precision_rules.py)."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

QWEN25 = FIXTURES / "working" / "ms-swift-docs-megatron-quick-start-qwen25-7b-tp2.yaml"  # head dim 128, A100, flash
QWEN3_NEXT = FIXTURES / "working" / "ms-swift-example-megatron-qwen3-next-lora-no-padding-free.yaml"  # head dim 256
MLA = FIXTURES / "issues" / "transformer-engine-1610-mla-fused-below-sm90.yaml"  # MLA 192/128, A800, fused


def _found(path, *overrides: str) -> tuple[set[str], set[str]]:
    result = make_plan(load_recipe(path, list(overrides)), oracle=False)
    return ({p.path for p in result.errors if p.code == "attention-fused"},
            {p.path for p in result.warnings if p.code == "attention-fused"})


def test_heads_wider_than_128_under_fused_below_sm90_are_refused():
    assert _found(MLA) == ({"args.attention_backend"}, set())
    assert _found(QWEN3_NEXT, "args.attention_backend=fused", "launch.gpu=A100-80G") == ({"args.attention_backend"}, set())
    assert _found(QWEN3_NEXT, "args.attention_backend=fused", "launch.gpu=L40S") == ({"args.attention_backend"}, set())
    assert _found(QWEN25, "args.attention_backend=fused", "launch.gpu=V100")[0] == {"args.attention_backend"}


def test_hopper_and_newer_or_other_backends_are_not_judged():
    assert _found(MLA, "launch.gpu=H800") == (set(), set())
    assert _found(MLA, "launch.gpu=B200") == (set(), set())
    assert _found(QWEN3_NEXT, "args.attention_backend=fused") == (set(), set())  # H100
    for backend in ("unfused", "auto"):
        assert _found(MLA, f"args.attention_backend={backend}") == (set(), set()), backend
    assert _found(QWEN3_NEXT, "args.attention_backend=fused", "launch.gpu=null") == (set(), set())


def test_packed_input_under_fused_below_sm90_is_said_and_bshd_plans():
    # head dim 128: the kernel trains it on sm80; only THD (padding_free, the Megatron default) is in question
    assert _found(QWEN25, "args.attention_backend=fused") == (set(), {"args.attention_backend"})
    assert _found(QWEN25, "args.attention_backend=fused", "args.padding_free=false") == (set(), set())
    assert _found(QWEN25) == (set(), set())  # flash, ms-swift's default


# attention-sinks-te: megatron-core 0.16.1 TEDotProductAttention.__init__ asserts TE >= 2.8 for gpt-oss's learnable
# softmax_type; the version comes from the recipe's SWIFT_EXT_TARGET_VERSIONS (TE is not installed here).
GPT_OSS = FIXTURES / "working" / "ms-swift-example-megatron-gpt-oss-20b-lora.yaml"
GPT_OSS_SWIFT = FIXTURES / "working" / "ms-swift-example-swift-gpt-oss-20b-lora.yaml"


def _sinks(path, *overrides: str) -> set[str]:
    result = make_plan(load_recipe(path, list(overrides)), oracle=False)
    return {p.path for p in result.errors if p.code == "attention-sinks-te"}


def test_attention_sinks_on_a_transformer_engine_before_2_8_are_refused():
    assert _sinks(GPT_OSS, "env.SWIFT_EXT_TARGET_VERSIONS=te=2.7.0") == {"args.model"}
    assert _sinks(GPT_OSS, "env.SWIFT_EXT_TARGET_VERSIONS=transformer-engine=2.3.0") == {"args.model"}


def test_attention_sinks_on_2_8_or_an_unknown_version_or_other_models_plan():
    assert _sinks(GPT_OSS, "env.SWIFT_EXT_TARGET_VERSIONS=te=2.8.0") == set()
    assert _sinks(GPT_OSS) == set()  # TE not installed here: no verdict
    assert _sinks(QWEN25, "env.SWIFT_EXT_TARGET_VERSIONS=te=2.3.0") == set()
    assert _sinks(GPT_OSS_SWIFT, "env.SWIFT_EXT_TARGET_VERSIONS=te=2.3.0") == set()  # transformers engine: no TE


# attention-env, NVTE_APPLY_QK_LAYER_SCALING: megatron-core's TEDotProductAttention.__init__ raises when the variable
# and apply_query_key_layer_scaling (ms-swift: fp16's value by default) disagree.
def _qk_env(path, *overrides: str) -> tuple[set[str], set[str]]:
    result = make_plan(load_recipe(path, list(overrides)), oracle=False)
    return ({p.path for p in result.errors if p.code == "attention-env"},
            {p.path for p in result.warnings if p.code == "attention-env"})


def test_qk_layer_scaling_env_against_the_argument():
    where = {"env.NVTE_APPLY_QK_LAYER_SCALING"}
    assert _qk_env(QWEN25, "env.NVTE_APPLY_QK_LAYER_SCALING=1", "args.torch_dtype=bfloat16") == (where, set())
    assert _qk_env(QWEN25, "env.NVTE_APPLY_QK_LAYER_SCALING=1") == (set(), where)  # dtype left to the checkpoint
    assert _qk_env(QWEN25, "env.NVTE_APPLY_QK_LAYER_SCALING=yes") == (where, set())
    # what ms-swift itself sets: on with apply_query_key_layer_scaling / fp16, and a 0 it overwrites
    assert _qk_env(QWEN25, "env.NVTE_APPLY_QK_LAYER_SCALING=1", "args.apply_query_key_layer_scaling=true") == (set(), set())
    assert _qk_env(QWEN25, "env.NVTE_APPLY_QK_LAYER_SCALING=1", "args.torch_dtype=float16") == (set(), set())
    assert _qk_env(QWEN25, "env.NVTE_APPLY_QK_LAYER_SCALING=0") == (set(), set())
    assert _qk_env(QWEN25) == (set(), set())


# cp-comm-type, MLA: TE's attn_forward_func_with_cp asserts MLA context parallel takes p2p only (before TE commit
# ee5dcec): said for a2a / all_gather, not for p2p or a model without MLA.
MOONLIGHT = FIXTURES / "working" / "ms-swift-example-megatron-moonlight-deepseek-v3-pp2-shared-overlap.yaml"


def _cp_mla(path, *overrides: str) -> set[str]:
    result = make_plan(load_recipe(path, list(overrides)), oracle=False)
    return {p.message for p in result.warnings if p.code == "cp-comm-type" and "MLA" in p.message}


def test_mla_context_parallel_outside_p2p_is_said():
    for comm in ("a2a", "all_gather"):
        assert _cp_mla(MOONLIGHT, "args.context_parallel_size=2", f"args.cp_comm_type={comm}"), comm
    assert not _cp_mla(MOONLIGHT, "args.context_parallel_size=2", "args.cp_comm_type=p2p")
    assert not _cp_mla(MOONLIGHT, "args.context_parallel_size=2")
    assert not _cp_mla(QWEN25, "args.context_parallel_size=2", "args.cp_comm_type=all_gather")


# fp8-shape: TE's _Linear.forward asserts the per-rank weight width is a multiple of 16 under FP8; DeepSeek-V2-Lite's
# dense first layer (intermediate_size 10944) is 1368 per rank at TP=8.
V2_LITE = FIXTURES / "issues" / "megatron-lm-1698-mla-attention-backend-flash.yaml"  # DeepSeek-V2-Lite, TP=2


def _fp8_shape(path, *overrides: str) -> set[str]:
    result = make_plan(load_recipe(path, list(overrides)), oracle=False)
    return {p.path for p in result.errors if p.code == "fp8-shape"}


def test_fp8_refuses_a_per_rank_ffn_width_off_16():
    assert _fp8_shape(V2_LITE, "args.fp8_format=e4m3", "args.tensor_model_parallel_size=8", "launch.gpu=H100") == {
        "args.tensor_model_parallel_size"}


def test_fp8_plans_where_every_width_divides():
    assert _fp8_shape(V2_LITE, "args.fp8_format=e4m3", "args.tensor_model_parallel_size=4", "launch.gpu=H100") == set()
    assert _fp8_shape(V2_LITE, "args.tensor_model_parallel_size=8", "launch.gpu=H100") == set()  # no FP8
    assert _fp8_shape(QWEN25, "args.fp8_format=e4m3", "launch.gpu=H100") == set()


def test_mxfp8_refuses_a_per_rank_width_off_32_that_plain_fp8_takes():
    # TE's MXFP8Quantizer::create_tensor: 'MXFP8 requires tensor dims that are divisible by 32'; V2-Lite's 10944-wide
    # dense layer is 2736 per rank at TP=4 (16 * 171): FP8 runs it, MXFP8 does not; TP=2 (5472 = 32 * 171) fits both
    mx = ("args.fp8_format=e4m3", "args.fp8_recipe=mxfp8", "launch.gpu=B200")
    assert _fp8_shape(V2_LITE, *mx, "args.tensor_model_parallel_size=4") == {"args.tensor_model_parallel_size"}
    assert _fp8_shape(V2_LITE, *mx, "args.tensor_model_parallel_size=2") == set()
    assert _fp8_shape(V2_LITE, "args.fp8_format=e4m3", "args.fp8_recipe=blockwise", "launch.gpu=B200",
                      "args.tensor_model_parallel_size=4") == set()


def test_fused_with_deterministic_attention_below_sm90_is_refused():
    env = "env.NVTE_ALLOW_NONDETERMINISTIC_ALGO=0"
    assert _found(QWEN25, "args.attention_backend=fused", "args.padding_free=false", env) == (
        {"args.attention_backend"}, set())
    assert _found(QWEN25, "args.attention_backend=fused", "args.padding_free=false", env, "launch.gpu=H100") == (
        set(), set())
    assert _found(QWEN25, "args.attention_backend=flash", "args.padding_free=false", env) == (set(), set())


def test_flash_3_off_sm90_is_refused():
    def kernel(*overrides):
        result = make_plan(load_recipe(QWEN25, list(overrides)), oracle=False)
        return {p.path for p in result.errors if p.code == "attention-kernel"}
    assert kernel("args.attention_backend=flash_3") == {"args.attention_backend"}  # A100
    assert kernel("args.attention_backend=flash_3", "launch.gpu=B200") == {"args.attention_backend"}
    assert kernel("args.attention_backend=flash_3", "launch.gpu=H100") == set()
    assert kernel("args.attention_backend=flash_2") == set()


def test_flash_2_with_mla_is_refused_on_every_gpu():
    def kernel(*overrides):
        result = make_plan(load_recipe(MOONLIGHT, list(overrides)), oracle=False)
        return {p.path for p in result.errors if p.code == "attention-kernel"}
    assert kernel("args.attention_backend=flash_2") == {"args.attention_backend"}  # H800
    assert kernel("args.attention_backend=flash_3") == set()  # sm90: FA3 takes 192/128
    assert kernel("args.attention_backend=flash_2", "launch.gpu=null") == {"args.attention_backend"}


def test_qk_layer_scaling_env_is_not_read_by_sparse_attention_models():
    # DeepSeek-V3.2 (DSA): mcore-bridge builds every layer's core attention as megatron-core's DSAttention, never
    # TEDotProductAttention (the variable's only reader); the same config as plain MLA (DeepSeek-V3) still fails
    from swift_ext.msswift import schema as msargs
    from swift_ext.msswift.bound_args import Args
    from swift_ext.planner.layout import check_layout
    from swift_ext.planner.model_shape import from_config
    from swift_ext.spec.recipe import Recipe, Resources
    from test_mcore_config_rules import DSA_CONFIG

    def codes(config, name):
        recipe = Recipe(command="sft", engine="megatron", launch=Resources(nodes=8, gpus_per_node=8),
                        args={"model": name, "expert_model_parallel_size": 8, "pipeline_model_parallel_size": 8,
                              "global_batch_size": 64, "torch_dtype": "bfloat16"},
                        env={"NVTE_APPLY_QK_LAYER_SCALING": "1"})
        errors, _ = check_layout(recipe, Args(recipe.args, msargs.schema_for("megatron", "sft")),
                                 from_config(config, name=name))
        return {e.path for e in errors if e.code == "attention-env"}

    assert codes(DSA_CONFIG, "deepseek-ai/DeepSeek-V3.2") == set()
    v3 = {k: v for k, v in DSA_CONFIG.items() if not k.startswith("index_")} | {"model_type": "deepseek_v3"}
    assert codes(v3, "deepseek-ai/DeepSeek-V3") == {"env.NVTE_APPLY_QK_LAYER_SCALING"}
