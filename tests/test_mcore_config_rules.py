"""planner/mcore_config_rules.py (and the fp4/mixed-precision additions to fp8-param / mixed-precision): megatron-core
0.16.1's TransformerConfig refusals a recipe reaches through ms-swift 4.6's model config. Each test takes a published
working setup (tests/fixtures/working), changes the flags that make megatron-core refuse it, and asserts the rule
names the culprit; the nearest legal variant passes. The last test runs megatron-core itself (the oracle, on the
CPU) on the refused variants: the rules refuse what the engine refuses."""

from __future__ import annotations

import dataclasses
import importlib.util

import pytest

from conftest import FIXTURES
from swift_ext.msswift import schema as msargs
from swift_ext.msswift.bound_args import Args
from swift_ext.planner.layout import check_layout, layout_of
from swift_ext.planner.model_shape import from_config
from swift_ext.planner.shape_lookup import resolve_shape
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import Recipe, Resources, load_recipe

WORKING = FIXTURES / "working"
QWEN35_MOE = "ms-swift-docs-qwen35-35b-a3b-megatron-lora.yaml"  # shared experts, moe_shared_expert_overlap, full recompute
QWEN3_MOE = "ms-swift-example-lora-moe.yaml"  # Qwen3-30B-A3B: no shared experts, moe_shared_expert_overlap set
DEEPSEEK = "verl-example-deepseek671b-megatron-80gb.yaml"  # multi-latent attention
GPT_OSS = "megatron-bridge-gpt-oss-20b-sft-8gpu.yaml"
DENSE = "ms-swift-example-gkd-dense.yaml"  # Qwen3-8B-Base, selective recompute, torch_dtype bfloat16
TEXT_MOE = "args.model=Qwen/Qwen3-Next-80B-A3B-Instruct"  # shared experts and MTP, no vision tower
SELECTIVE = ("args.recompute_granularity=selective", "args.recompute_method=null", "args.recompute_num_layers=null")


def _errors(name: str, *overrides: str, code: str) -> set[str]:
    result = make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)
    return {p.path for p in result.errors if p.code == code}


def _modules(name: str, modules: str, *overrides: str) -> set[str]:
    return _errors(name, *SELECTIVE, f"args.recompute_modules={modules}", *overrides, code="recompute-modules")


def test_moe_act_recompute_needs_grouped_gemm():
    assert _modules(QWEN35_MOE, "[moe_act]", "args.moe_grouped_gemm=false") == {"args.recompute_modules"}
    assert _modules(QWEN35_MOE, "[moe_act]") == set()  # moe_grouped_gemm true (ms-swift's default too)


def test_moe_act_and_layernorm_recompute_refused_with_fp8_delayed_scaling():
    # fp8_recipe defaults to delayed in ms-swift 4.6: stating only fp8_format is enough to hit it.
    assert _modules(QWEN35_MOE, "[moe_act]", "args.fp8_format=e4m3") == {"args.recompute_modules"}
    assert _modules(QWEN35_MOE, "[layernorm]", "args.fp8_format=hybrid", "args.fp8_recipe=delayed") == {
        "args.recompute_modules"}
    assert _modules(QWEN35_MOE, "[moe_act, layernorm]", "args.fp8_format=e4m3", "args.fp8_recipe=blockwise") == set()
    assert _modules(QWEN35_MOE, "[moe_act, layernorm]") == set()  # no FP8


def test_moe_act_recompute_under_fp8_current_scaling_needs_transformer_engine_2_6():
    recipe = load_recipe(WORKING / QWEN35_MOE, [*SELECTIVE, "args.recompute_modules=[moe_act]", "args.fp8_format=e4m3",
                                                "args.fp8_recipe=tensorwise"])

    def refused(te: str) -> set[str]:
        plan = make_plan(recipe, oracle=False, target_versions={"transformer-engine": te})
        return {e.path for e in plan.errors if e.code == "recompute-modules"}

    assert refused("2.5.0") == {"args.recompute_modules"}
    assert refused("2.6.0") == set()


def test_shared_experts_recompute_refused_with_shared_expert_overlap_on_a_model_with_shared_experts():
    assert _modules(QWEN35_MOE, "[shared_experts]") == {"args.recompute_modules"}  # the doc sets the overlap
    assert _modules(QWEN35_MOE, "[shared_experts]", "args.moe_shared_expert_overlap=false") == set()
    # Qwen3-30B-A3B has no shared experts: megatron-core skips the check (moe_shared_expert_intermediate_size None)
    assert _modules(QWEN3_MOE, "[shared_experts]") == set()


def test_mla_up_proj_recompute_needs_multi_latent_attention():
    assert _modules(QWEN35_MOE, "[mla_up_proj]") == {"args.recompute_modules"}
    assert _modules(DEEPSEEK, "[mla_up_proj]") == set()


def test_unknown_recompute_module_and_moe_layer_recompute_with_full_granularity():
    assert _modules(QWEN35_MOE, "[core_attn, attention]") == {"args.recompute_modules"}
    assert _modules(QWEN35_MOE, "[core_attn, moe, mlp]") == set()
    # full granularity: recompute_modules are not read, but moe_layer_recompute is refused
    assert _errors(QWEN35_MOE, "args.recompute_modules=[attention]", code="recompute-modules") == set()
    assert _errors(QWEN35_MOE, "args.moe_layer_recompute=true", code="recompute-modules") == {
        "args.moe_layer_recompute"}
    assert _errors(QWEN35_MOE, *SELECTIVE, "args.moe_layer_recompute=true", code="recompute-modules") == set()


def test_values_from_megatron_extra_kwargs_count_and_are_blamed_there():
    # get_mcore_model_config updates the config kwargs with megatron_extra_kwargs last: they win over the arguments.
    kwargs = 'args.megatron_extra_kwargs={"recompute_modules": ["moe_act"], "moe_grouped_gemm": false}'
    assert _errors(QWEN35_MOE, *SELECTIVE, kwargs, code="recompute-modules") == {"args.megatron_extra_kwargs"}
    kwargs = 'args.megatron_extra_kwargs={"recompute_modules": ["moe_act"], "moe_grouped_gemm": true}'
    assert _errors(QWEN35_MOE, *SELECTIVE, "args.moe_grouped_gemm=false", kwargs, code="recompute-modules") == set()


def test_deepep_needs_the_flex_dispatcher_which_refuses_padding_to_capacity():
    assert _errors(QWEN35_MOE, "args.moe_enable_deepep=true", code="moe-deepep") == {"args.moe_enable_deepep"}
    flex = ("args.moe_token_dispatcher_type=flex", "args.moe_shared_expert_overlap=false")
    assert _errors(QWEN35_MOE, *flex, "args.moe_enable_deepep=true", code="moe-deepep") == set()
    pad = ("args.moe_expert_capacity_factor=2", "args.moe_pad_expert_input_to_capacity=true")
    assert _errors(QWEN35_MOE, *flex, *pad, code="moe-deepep") == {"args.moe_pad_expert_input_to_capacity"}
    hybrid = 'args.megatron_extra_kwargs={"moe_flex_dispatcher_backend": "hybridep"}'
    assert _errors(QWEN35_MOE, *flex, *pad, hybrid, code="moe-deepep") == set()
    assert _errors(QWEN35_MOE, *pad, code="moe-deepep") == set()  # alltoall pads


def test_load_balancing_lists_capacity_factor_and_padding():
    two = "args.moe_router_load_balancing_type=[aux_loss, seq_aux_loss]"
    assert _errors(QWEN35_MOE, two, code="moe-load-balancing") == {"args.moe_aux_loss_coeff"}  # the doc gives one
    assert _errors(QWEN35_MOE, two, "args.moe_aux_loss_coeff=[0.001, 0.0001]", code="moe-load-balancing") == set()
    # moe_aux_loss_coeff 0: the router refuses an aux loss with sinkhorn (tests/test_mcore_startup_audit.py)
    sinkhorn = ("args.moe_router_load_balancing_type=[sinkhorn]", "args.moe_expert_capacity_factor=2",
                "args.moe_aux_loss_coeff=0")
    assert _errors(QWEN35_MOE, *sinkhorn, code="moe-load-balancing") == {"args.moe_expert_capacity_factor"}
    assert _errors(QWEN35_MOE, "args.moe_expert_capacity_factor=2", code="moe-load-balancing") == set()
    assert _errors(QWEN35_MOE, "args.moe_pad_expert_input_to_capacity=true", code="moe-load-balancing") == {
        "args.moe_pad_expert_input_to_capacity"}
    # a negative factor means none to megatron-core
    assert _errors(QWEN35_MOE, "args.moe_pad_expert_input_to_capacity=true", "args.moe_expert_capacity_factor=-1",
                   code="moe-load-balancing") == {"args.moe_pad_expert_input_to_capacity"}


def test_gpt_oss_expert_biases_need_etp_1():
    etp2 = ("args.tensor_model_parallel_size=2", "args.sequence_parallel=true", "args.expert_model_parallel_size=4",
            "args.expert_tensor_parallel_size=2")
    assert _errors(GPT_OSS, *etp2, code="moe-bias-etp") == {"args.expert_tensor_parallel_size"}
    assert _errors(GPT_OSS, code="moe-bias-etp") == set()
    # Qwen MoE experts have no biases: ETP > 1 is theirs to use
    assert _errors(QWEN3_MOE, "args.expert_tensor_parallel_size=2", "args.expert_model_parallel_size=2",
                   "args.tensor_model_parallel_size=2", "args.sequence_parallel=true", code="moe-bias-etp") == set()


# DeepSeek-V3.2's text config (published config.json, the fields the shape reads).
DSA_CONFIG = {"model_type": "deepseek_v32", "num_hidden_layers": 61, "hidden_size": 7168, "num_attention_heads": 128,
              "num_key_value_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128,
              "qk_rope_head_dim": 64, "v_head_dim": 128, "intermediate_size": 18432, "moe_intermediate_size": 2048,
              "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 3,
              "scoring_func": "sigmoid", "vocab_size": 129280, "index_n_heads": 64, "index_head_dim": 128,
              "index_topk": 2048}


def _dsa_errors(args: dict, world: int = 64) -> set[str]:
    recipe = Recipe(command="sft", engine="megatron", args={"model": "deepseek-ai/DeepSeek-V3.2", **args},
                    launch=Resources(nodes=world // 8, gpus_per_node=8))
    a = Args(recipe.args, msargs.schema_for("megatron", "sft"))
    errors, _ = check_layout(recipe, a, from_config(DSA_CONFIG, name="deepseek-ai/DeepSeek-V3.2"))
    return {e.path for e in errors if e.code == "dsa-attention"}


def test_sparse_attention_models_refuse_context_parallel_and_rope_fusion():
    base = {"expert_model_parallel_size": 8, "pipeline_model_parallel_size": 8, "global_batch_size": 64}
    assert _dsa_errors({**base, "context_parallel_size": 2, "tensor_model_parallel_size": 1}) == {
        "args.context_parallel_size"}
    assert _dsa_errors({**base, "apply_rope_fusion": True}) == {"args.apply_rope_fusion"}
    assert _dsa_errors(base) == set()


def test_fp4_param_gather_needs_fp4_format():
    assert _errors(QWEN35_MOE, "args.fp4_param_gather=true", code="fp8-param") == {"args.fp4_param_gather"}
    assert _errors(QWEN35_MOE, "args.fp4_param_gather=true", "args.fp4_format=e2m1", code="fp8-param") == set()


def test_fp16_on_a_bf16_megatron_recipe_is_refused():
    # torch_dtype bfloat16 fills bf16; an explicit fp16 makes both true, which TransformerConfig refuses.
    assert _errors(DENSE, "args.fp16=true", code="mixed-precision") == {"args.fp16"}
    assert _errors(DENSE, "args.fp16=true", "args.torch_dtype=float16", code="mixed-precision") == set()
    assert _errors(DENSE, "args.fp16=true", "args.bf16=false", code="mixed-precision") == set()


# The refused variants above, as megatron-core itself judges them (CPU; TE version checks assumed, see oracle.py).
ENGINE_CASES = [
    (QWEN35_MOE, (*SELECTIVE, "args.recompute_modules=[moe_act]", "args.moe_grouped_gemm=false")),
    (QWEN35_MOE, (*SELECTIVE, "args.recompute_modules=[moe_act]", "args.fp8_format=e4m3")),
    (QWEN35_MOE, (*SELECTIVE, "args.recompute_modules=[shared_experts]")),
    (QWEN35_MOE, (*SELECTIVE, "args.recompute_modules=[mla_up_proj]")),
    (QWEN35_MOE, (*SELECTIVE, "args.recompute_modules=[attention]")),
    (QWEN35_MOE, ("args.moe_layer_recompute=true",)),
    (QWEN35_MOE, ("args.moe_enable_deepep=true",)),
    (QWEN35_MOE, ("args.moe_token_dispatcher_type=flex", "args.moe_shared_expert_overlap=false",
                  "args.moe_expert_capacity_factor=2", "args.moe_pad_expert_input_to_capacity=true")),
    (QWEN35_MOE, ("args.moe_router_load_balancing_type=[aux_loss, seq_aux_loss]",)),
    (QWEN35_MOE, ("args.moe_router_load_balancing_type=[sinkhorn]", "args.moe_expert_capacity_factor=2")),
    (QWEN35_MOE, ("args.moe_pad_expert_input_to_capacity=true",)),
    (QWEN35_MOE, ("args.fp4_param_gather=true",)),
    (GPT_OSS, ("args.tensor_model_parallel_size=2", "args.sequence_parallel=true", "args.expert_model_parallel_size=4",
               "args.expert_tensor_parallel_size=2")),
    (DENSE, ("args.fp16=true",)),
    (QWEN3_MOE, ('args.megatron_extra_kwargs={"moe_router_enable_expert_bias": true}',)),  # moe-expert-bias
    # moe-dispatcher: the dispatcher megatron_extra_kwargs gives (GLM-4.5-Air has shared experts)
    ("ms-swift-example-lora-mtp.yaml", ('args.megatron_extra_kwargs={"moe_token_dispatcher_type": "allgather"}',)),
]


@pytest.mark.parametrize("name,overrides", ENGINE_CASES, ids=[" ".join(o[-1:]) for _, o in ENGINE_CASES])
def test_megatron_core_refuses_what_the_rules_refuse(name, overrides, tmp_path, monkeypatch):
    pytest.importorskip("megatron.core", reason="megatron-core (the `test` extra) is not installed")
    monkeypatch.setenv("SWIFT_EXT_CACHE", str(tmp_path / "cache"))  # a cached verdict would test nothing
    from swift_ext.planner import oracle

    recipe = load_recipe(WORKING / name, list(overrides))
    ours = {e.path for e in make_plan(recipe, oracle=False).errors}
    assert ours, "the rules must refuse it"
    a = Args.bind(recipe, msargs.schema_for("megatron", recipe.command))
    verdict = oracle.judge(resolve_shape(recipe.args["model"]), a, layout_of(a, recipe.launch.world_size), cache=False)
    assert not verdict.accepts, verdict.notes
    assert {f.path for f in verdict.findings} <= ours  # and blames the flag the rule names
    # the published setup itself: megatron-core accepts it
    base = load_recipe(WORKING / name)
    b = Args.bind(base, msargs.schema_for("megatron", base.command))
    assert oracle.judge(resolve_shape(base.args["model"]), b, layout_of(b, base.launch.world_size), cache=False).accepts


def test_megatron_core_refuses_sparse_attention_with_context_parallel(tmp_path, monkeypatch):
    pytest.importorskip("megatron.core", reason="megatron-core (the `test` extra) is not installed")
    monkeypatch.setenv("SWIFT_EXT_CACHE", str(tmp_path / "cache"))
    from swift_ext.planner import oracle

    shape = from_config(DSA_CONFIG, name="deepseek-ai/DeepSeek-V3.2")
    for args, flag in (({"context_parallel_size": 2}, "context_parallel_size"), ({"apply_rope_fusion": True},
                                                                                  "apply_rope_fusion")):
        a = Args({"expert_model_parallel_size": 8, "pipeline_model_parallel_size": 8, **args},
                 msargs.schema_for("megatron", "sft"))
        verdict = oracle.judge(shape, a, layout_of(a, 64), cache=False)
        assert [f.path for f in verdict.findings] == [f"args.{flag}"], verdict.findings


def test_a_missing_transformer_engine_kernel_is_a_note_not_a_refusal(tmp_path, monkeypatch):
    # verl's gpt-oss-20b recipe sets apply_rope_fusion; without TE here megatron-core says "apply_rope_fusion is not
    # available. Please install TE >= 1.4." -- the GPU node's installation, not the recipe.
    pytest.importorskip("megatron.core", reason="megatron-core (the `test` extra) is not installed")
    monkeypatch.setenv("SWIFT_EXT_CACHE", str(tmp_path / "cache"))
    from swift_ext.planner import oracle
    from swift_ext.planner.shape_lookup import resolve_shape

    recipe = load_recipe(WORKING / "verl-example-gptoss-20b-megatron-tp8.yaml")
    a = Args.bind(recipe, msargs.schema_for("megatron", recipe.command))
    verdict = oracle.judge(resolve_shape(recipe.args["model"]), a, layout_of(a, recipe.launch.world_size), cache=False)
    assert verdict.accepts, verdict.findings
    if importlib.util.find_spec("transformer_engine") is None:
        assert any("Please install TE" in n for n in verdict.notes), verdict.notes


def test_doctor_counts_the_fp8_act_norm_recompute_feature_only_where_megatron_core_reads_recompute_modules():
    # doctor's version table (spec/support.py recipe_features) and plan's versioned rule agree: under full (or no)
    # recompute granularity megatron-core never reads recompute_modules, so no Transformer Engine 2.6 is needed.
    from swift_ext.spec.support import recipe_features

    base = {"fp8_format": "e4m3", "fp8_recipe": "blockwise", "recompute_modules": ["core_attn", "moe_act"]}
    assert "fp8-recompute-act-norm" in recipe_features(base, "qwen3_moe")  # selective: ms-swift's default
    assert "fp8-recompute-act-norm" in recipe_features({**base, "recompute_granularity": "selective"}, "qwen3_moe")
    for granularity in ("full", "none"):
        assert "fp8-recompute-act-norm" not in recipe_features({**base, "recompute_granularity": granularity},
                                                              "qwen3_moe")
        recipe = load_recipe(WORKING / QWEN35_MOE, [f"args.recompute_granularity={granularity}",
                                                    "args.recompute_modules=[moe_act]", "args.fp8_format=e4m3",
                                                    "args.fp8_recipe=blockwise"])
        plan = make_plan(recipe, oracle=False, target_versions={"transformer-engine": "2.5.0"})
        assert not [e for e in plan.errors if e.code == "recompute-modules"]


# bridge_backend megatron-bridge builds megatron-core's own TransformerBlock, whose uniform recompute overruns; it takes
# full tuning only.
MEGATRON_CORE_BLOCKS = ("args.bridge_backend=megatron-bridge", "args.tuner_type=full")
FULL_UNIFORM = ("args.recompute_granularity=full", "args.recompute_method=uniform")


def _chunks(*overrides: str, name: str = QWEN3_MOE, backend: tuple[str, ...] = MEGATRON_CORE_BLOCKS) -> set[str]:
    # Qwen3-30B-A3B: 48 decoder layers; the published setup runs full uniform recompute of 1 layer.
    return _errors(name, *backend, *FULL_UNIFORM, *overrides, code="recompute-chunks")


def test_uniform_recompute_chunk_must_divide_each_model_chunk():
    # NVIDIA/Megatron-LM#1807: uniform recompute indexes past a chunk's last layer when the chunk is not a multiple.
    assert _chunks("args.pipeline_model_parallel_size=4", "args.recompute_num_layers=5") == {"args.recompute_num_layers"}
    assert not _chunks("args.pipeline_model_parallel_size=4", "args.recompute_num_layers=4")
    # with VPP the model chunk is the virtual stage: 48 / PP 2 / VPP 4 = 6 layers, so 4 fails and 3 fits
    vpp = ("args.pipeline_model_parallel_size=2", "args.virtual_pipeline_model_parallel_size=4")
    assert _chunks(*vpp, "args.recompute_num_layers=4") == {"args.recompute_num_layers"}
    assert not _chunks(*vpp, "args.recompute_num_layers=3")
    # uneven first/last stages: 10 | 14 | 14 | 10 layers, a chunk of 5 misses the 14-layer middle stages
    uneven = ("args.pipeline_model_parallel_size=4", "args.decoder_first_pipeline_num_layers=10",
              "args.decoder_last_pipeline_num_layers=10")
    assert _chunks(*uneven, "args.recompute_num_layers=5") == {"args.recompute_num_layers"}
    assert not _chunks(*uneven, "args.recompute_num_layers=2")
    # block recompute checkpoints single layers: no bound; megatron_extra_kwargs is where the value then comes from
    assert not _chunks("args.pipeline_model_parallel_size=4", "args.recompute_num_layers=5",
                       "args.recompute_method=block")
    assert _chunks("args.pipeline_model_parallel_size=4",
                   "args.megatron_extra_kwargs={recompute_num_layers: 5}") == {"args.megatron_extra_kwargs"}


def test_uniform_recompute_remainder_runs_under_mcore_bridge():
    # ms-swift's default bridge_backend builds mcore-bridge's TransformerBlock, whose uniform loop ends each chunk at
    # min(layer_idx + recompute_num_layers, layers of the block): a shorter last chunk, no IndexError.
    for backend in ((), ("args.bridge_backend=mcore-bridge",)):
        assert not _chunks("args.pipeline_model_parallel_size=4", "args.recompute_num_layers=5", backend=backend)


def test_uniform_recompute_chunks_skip_the_mamba_stack():
    # Megatron-Bridge builds Nemotron-H as a Mamba hybrid (MambaStack: no uniform recompute loop in megatron-core
    # 0.16.1), so the chunk bound of TransformerBlock does not apply; the same recipe on a GPT model is refused.
    recipe = load_recipe(WORKING / QWEN3_MOE, [*MEGATRON_CORE_BLOCKS, *FULL_UNIFORM,
                                               "args.pipeline_model_parallel_size=4", "args.recompute_num_layers=5"])
    a = Args.bind(recipe, msargs.schema_for("megatron", recipe.command))
    gpt = resolve_shape(recipe.args["model"])

    def chunks(shape) -> set[str]:
        return {e.path for e in check_layout(recipe, a, shape)[0] if e.code == "recompute-chunks"}

    assert chunks(gpt) == {"args.recompute_num_layers"}
    assert not chunks(dataclasses.replace(gpt, model_type="nemotron_h"))


def test_uniform_recompute_chunks_follow_an_explicit_pipeline_layout():
    # megatron-core's get_num_layers_to_build counts the 't' of each layout stage: 11 | 12 | 12 | 13 layers.
    layout = ("args.pipeline_model_parallel_size=4", "args.pipeline_model_parallel_layout=Et*11|t*12|t*12|t*13L")
    assert _chunks(*layout, "args.recompute_num_layers=2") == {"args.recompute_num_layers"}
    assert _chunks(*layout, "args.recompute_num_layers=12") == {"args.recompute_num_layers"}
    assert not _chunks(*layout, "args.recompute_num_layers=1")
    # two stages a rank (VPP 2 from the layout) and stages with no decoder layer: 'E' and 'L' alone build none
    interleaved = ("args.pipeline_model_parallel_size=2", "args.pipeline_model_parallel_layout=E|t*24|t*24|L")
    assert _chunks(*interleaved, "args.recompute_num_layers=5") == {"args.recompute_num_layers"}
    assert not _chunks(*interleaved, "args.recompute_num_layers=8")


def test_uniform_recompute_chunks_count_embedding_and_loss_in_the_pipeline_split():
    # Megatron-Bridge's Llama-3.1-405B: 126 layers + embedding + loss = 128 over PP 8 and VPP 2, 8 a model chunk;
    # the first chunk of the first stage and the last chunk of the last stage build 7.
    llama405b = "megatron-bridge-llama31-405b-tp8-pp8-vpp2-cp4-account-split-512gpu.yaml"
    assert _chunks("args.recompute_num_layers=8", name=llama405b) == {"args.recompute_num_layers"}
    assert _chunks("args.recompute_num_layers=7", name=llama405b) == {"args.recompute_num_layers"}
    assert not _chunks("args.recompute_num_layers=1", name=llama405b)
    # the loss alone in the split: Qwen3-30B-A3B's 48 + 1 = 49 do not split over PP 4 (layers-pp's refusal, not this)
    assert not _chunks("args.pipeline_model_parallel_size=4", "args.account_for_loss_in_pipeline_split=true",
                       "args.recompute_num_layers=5")
    # both in the split at PP 2: 50 / 2 = 25 a stage, 24 built on each: 5 misses, 4 fits
    both = ("args.pipeline_model_parallel_size=2", "args.account_for_embedding_in_pipeline_split=true",
            "args.account_for_loss_in_pipeline_split=true")
    assert _chunks(*both, "args.recompute_num_layers=5") == {"args.recompute_num_layers"}
    assert not _chunks(*both, "args.recompute_num_layers=4")


MTP = "ms-swift-example-lora-mtp.yaml"  # GLM-4.5-Air LoRA with mtp_num_layers 1, full uniform recompute of 1 layer


def _mtp(*overrides: str) -> tuple[set[str], set[str]]:
    result = make_plan(load_recipe(WORKING / MTP, list(overrides)), oracle=False)
    return ({p.path for p in result.errors if p.code == "recompute-mtp"},
            {p.path for p in result.warnings if p.code == "recompute-mtp"})


def test_mtp_layers_under_full_recompute():
    # megatron-core / mcore-bridge MultiTokenPredictionLayer._checkpointed_forward: uniform asserts
    # recompute_num_layers == 1; block skips recomputing the MTP layer (a warning, not a failure).
    assert _mtp() == (set(), set())  # the published setup
    assert _mtp("args.recompute_num_layers=2") == ({"args.recompute_num_layers"}, set())
    assert _mtp("args.megatron_extra_kwargs={recompute_num_layers: 4}") == ({"args.megatron_extra_kwargs"}, set())
    assert _mtp("args.recompute_method=block", "args.recompute_num_layers=2") == (set(), {"args.recompute_method"})
    # no MTP block (0 means none), or no full recompute: nothing to say
    assert _mtp("args.recompute_num_layers=2", "args.mtp_num_layers=0") == (set(), set())
    assert _mtp(*SELECTIVE) == (set(), set())
    # from megatron_extra_kwargs too (ms-swift applies them last)
    assert _mtp("args.mtp_num_layers=null", 'args.megatron_extra_kwargs={"mtp_num_layers": 1, "recompute_num_layers": 2}'
                ) == ({"args.megatron_extra_kwargs"}, set())


def test_attention_sinks_refuse_context_parallel_whatever_the_backend():
    # NVIDIA-NeMo/Megatron-Bridge#2298: no TE backend for learnable softmax under CP.
    for backend in ("unfused", "fused", "auto"):
        assert _errors(GPT_OSS, "args.context_parallel_size=2", "args.max_length=8192",
                       f"args.attention_backend={backend}", code="attention-sinks-cp") == {"args.context_parallel_size"}
    assert not _errors(GPT_OSS, code="attention-sinks-cp")


def test_attention_sinks_run_context_parallel_with_a2a_on_the_fused_backend():
    # TE get_attention_backend keeps FusedAttention for learnable softmax under CP only with cp_comm_type a2a
    # (NVIDIA/TransformerEngine#2541; Megatron-Bridge's gpt-oss recipe sets a2a whenever CP > 1).
    cp2 = ("args.context_parallel_size=2", "args.max_length=8192")
    for backend in ("fused", "auto"):
        assert not _errors(GPT_OSS, *cp2, f"args.attention_backend={backend}", "args.cp_comm_type=a2a",
                           code="attention-sinks-cp")
        assert not _errors(GPT_OSS, *cp2, f"args.attention_backend={backend}",
                           'args.megatron_extra_kwargs={"cp_comm_type": "a2a"}', code="attention-sinks-cp")
    # a2a does not help the unfused backend (disabled under CP with learnable softmax), nor p2p / all_gather fused
    assert _errors(GPT_OSS, *cp2, "args.attention_backend=unfused", "args.cp_comm_type=a2a",
                   code="attention-sinks-cp") == {"args.context_parallel_size"}
    for comm in ("p2p", "all_gather", "a2a+p2p"):
        assert _errors(GPT_OSS, *cp2, "args.attention_backend=fused", f"args.cp_comm_type={comm}",
                       code="attention-sinks-cp") == {"args.context_parallel_size"}


def _kw(body: str) -> str:
    return "args.megatron_extra_kwargs={" + body + "}"


OVERLAP = '"overlap_moe_expert_parallel_comm": true'
NO_RECOMPUTE = ("args.recompute_granularity=none", "args.recompute_method=null", "args.recompute_num_layers=null")


def test_ep_all_to_all_overlap_conditions():
    # The doc's EP=4 setup on a text MoE with shared experts and MTP (Qwen3-Next: the doc's Qwen3.5-35B-A3B is
    # multimodal, which the overlap refuses whatever the config: the next test); with recompute off and no
    # shared-expert overlap megatron-core takes the overlap.
    legal = (TEXT_MOE, *NO_RECOMPUTE, "args.moe_shared_expert_overlap=false")
    assert _errors(QWEN35_MOE, *legal, _kw(OVERLAP), code="moe-a2a-overlap") == set()
    # the doc as published: full uniform recompute and moe_shared_expert_overlap
    assert _errors(QWEN35_MOE, TEXT_MOE, _kw(OVERLAP), code="moe-a2a-overlap") == {
        "args.recompute_granularity", "args.recompute_method", "args.recompute_num_layers",
        "args.moe_shared_expert_overlap"}
    # recompute off but recompute_method still set: ms-swift passes it on ('none' only clears the granularity)
    assert _errors(QWEN35_MOE, TEXT_MOE, "args.recompute_granularity=none", "args.moe_shared_expert_overlap=false",
                   _kw(OVERLAP), code="moe-a2a-overlap") == {"args.recompute_method", "args.recompute_num_layers"}
    assert _errors(QWEN35_MOE, *legal, "args.expert_model_parallel_size=1", _kw(OVERLAP),
                   code="moe-a2a-overlap") == {"args.expert_model_parallel_size"}
    assert _errors(QWEN35_MOE, *legal, "args.mtp_num_layers=2", _kw(OVERLAP),
                   code="moe-a2a-overlap") == {"args.mtp_num_layers"}
    # mtp_shared_weights: mcore-bridge's ModelConfig makes it one shared layer before the check
    assert _errors(QWEN35_MOE, *legal, "args.mtp_num_layers=2", "args.mtp_shared_weights=true",
                   "args.pipeline_model_parallel_size=2", "args.virtual_pipeline_model_parallel_size=2", _kw(OVERLAP),
                   code="moe-a2a-overlap") == set()
    assert _errors(QWEN35_MOE, *legal, "args.mtp_num_layers=2", "args.mtp_shared_weights=true", _kw(OVERLAP),
                   code="moe-a2a-overlap") == {"args.pipeline_model_parallel_size"}
    assert _errors(QWEN35_MOE, *legal, "args.mtp_num_layers=1", _kw(OVERLAP),
                   code="moe-a2a-overlap") == {"args.pipeline_model_parallel_size"}  # one MTP layer needs PP
    for switch in ("delay_wgrad_compute", "ep_overlap_early_attn_memory_release"):
        assert _errors(QWEN35_MOE, TEXT_MOE, _kw(f'"{switch}": true'), code="moe-a2a-overlap") == {
            "args.megatron_extra_kwargs"}
        assert _errors(QWEN35_MOE, *legal, _kw(f'"{switch}": true, {OVERLAP}'), code="moe-a2a-overlap") == set()


def test_ep_all_to_all_overlap_on_the_multimodal_qwen35_is_refused_on_the_extra_kwargs():
    # mcore-bridge builds Qwen3.5-35B-A3B as a MultimodalGPTModel: the combined 1F1B schedule finds no
    # build_schedule_plan on it even where megatron-core's config checks all pass (Megatron-Bridge issue 2161)
    legal = (*NO_RECOMPUTE, "args.moe_shared_expert_overlap=false")
    assert _errors(QWEN35_MOE, *legal, _kw(OVERLAP), code="moe-a2a-overlap") == {"args.megatron_extra_kwargs"}
    assert _errors(QWEN35_MOE, *legal, TEXT_MOE, _kw(OVERLAP), code="moe-a2a-overlap") == set()


def test_activation_offloading_conditions():
    offload = '"cpu_offloading": true, "cpu_offloading_num_layers": 2'
    # ms-swift's default recompute_granularity is selective, which megatron-core's CPU offloading refuses
    assert _errors(QWEN3_MOE, "args.recompute_granularity=selective", "args.recompute_method=null",
                   "args.recompute_num_layers=null", _kw(offload),
                   code="activation-offloading") == {"args.recompute_granularity"}
    assert _errors(QWEN3_MOE, *NO_RECOMPUTE, _kw(offload), code="activation-offloading") == set()
    assert _errors(QWEN3_MOE, *NO_RECOMPUTE, _kw('"cpu_offloading": true, "cpu_offloading_num_layers": 48'),
                   code="activation-offloading") == {"args.megatron_extra_kwargs"}  # 48 layers: at most 47
    assert _errors(DENSE, "args.recompute_granularity=none", _kw(offload),
                   code="activation-offloading") == {"args.megatron_extra_kwargs"}  # PP 2
    fine = '"fine_grained_activation_offloading": true'
    assert _errors(DENSE, _kw(fine), code="activation-offloading") == {"args.megatron_extra_kwargs"}  # no modules
    assert _errors(DENSE, _kw(fine + ', "offload_modules": ["mlp"]'), code="activation-offloading") == {
        "args.megatron_extra_kwargs"}
    assert _errors(DENSE, _kw(fine + ', "offload_modules": ["attn_proj"]'), code="activation-offloading") == {
        "args.megatron_extra_kwargs"}
    assert _errors(DENSE, _kw(fine + ', "offload_modules": ["core_attn", "attn_proj"]'),
                   code="activation-offloading") == set()


def test_fp8_first_last_layers_in_bf16():
    bf16 = '"first_last_layers_bf16": true'
    assert _errors(DENSE, "args.fp8_format=e4m3", _kw(bf16), code="fp8-bf16-layers") == {"args.fp8_recipe"}
    current = ("args.fp8_format=e4m3", "args.fp8_recipe=tensorwise")
    assert _errors(DENSE, *current, _kw(bf16), code="fp8-bf16-layers") == set()
    # Qwen3-8B: 36 layers over PP 2 -> at most 18 per stage in BF16
    assert _errors(DENSE, *current, _kw(bf16 + ', "num_layers_at_end_in_bf16": 19'), code="fp8-bf16-layers") == {
        "args.megatron_extra_kwargs"}
    assert _errors(DENSE, *current, _kw(bf16 + ', "num_layers_at_end_in_bf16": 18'), code="fp8-bf16-layers") == set()
    assert _errors(DENSE, _kw(bf16), code="fp8-bf16-layers") == set()  # no FP8: megatron-core skips the block


def test_router_fields_from_extra_kwargs():
    pad = '"moe_router_padding_for_quantization": true'
    assert _errors(QWEN3_MOE, _kw(pad), code="moe-router") == {"args.megatron_extra_kwargs"}  # no FP8/FP4
    assert _errors(QWEN3_MOE, "args.fp8_format=e4m3", "args.fp8_recipe=blockwise", _kw(pad), code="moe-router") == set()
    # the compatibility alias megatron-core turns into padding_for_quantization before the same checks
    alias = '"moe_router_padding_for_fp8": true'
    assert _errors(QWEN3_MOE, _kw(alias), code="moe-router") == {"args.megatron_extra_kwargs"}
    assert _errors(QWEN3_MOE, "args.fp8_format=e4m3", "args.fp8_recipe=blockwise", _kw(alias), code="moe-router") == set()
    # Qwen3-30B-A3B: a softmax router without pre-softmax
    assert _errors(QWEN3_MOE, _kw('"moe_router_topk": 1'), code="moe-router") == {"args.megatron_extra_kwargs"}
    assert _errors(QWEN3_MOE, _kw('"moe_router_topk": 1, "moe_router_pre_softmax": true'), code="moe-router") == set()
    assert _errors(QWEN3_MOE, _kw('"moe_router_group_topk": 2, "moe_router_num_groups": 3'), code="moe-router") == {
        "args.megatron_extra_kwargs"}  # 128 experts
    assert _errors(QWEN3_MOE, _kw('"moe_router_group_topk": 8, "moe_router_num_groups": 4'), code="moe-router") == {
        "args.megatron_extra_kwargs"}
    assert _errors(QWEN3_MOE, _kw('"moe_router_group_topk": 2, "moe_router_num_groups": 8'), code="moe-router") == set()


def test_extra_kwargs_switches_are_on_by_python_truth():
    # ModelConfig(**kwargs) converts nothing and megatron-core tests `if self.moe_layer_recompute:`: the string "false"
    # is on (the published recipe recomputes full), as is 1 for cpu_offloading (beside ms-swift's selective default)
    assert _errors(QWEN35_MOE, _kw('"moe_layer_recompute": "false"'), code="recompute-modules") == {
        "args.megatron_extra_kwargs"}
    assert _errors(QWEN35_MOE, _kw('"moe_layer_recompute": false'), code="recompute-modules") == set()
    assert _errors(QWEN3_MOE, _kw('"cpu_offloading": 1, "cpu_offloading_num_layers": 2'),
                   code="activation-offloading") == {"args.recompute_granularity"}
    assert _errors(QWEN3_MOE, _kw('"cpu_offloading": 0'), code="activation-offloading") == set()
    # moe_layer.py MoELayer.forward raises on `not self.config.sequence_parallel` at TP > 1: 1 is on
    tp2 = "args.tensor_model_parallel_size=2"
    assert _errors(QWEN3_MOE, tp2, _kw('"sequence_parallel": 1'), code="sequence-parallel") == set()
    assert _errors(QWEN3_MOE, tp2, _kw('"sequence_parallel": 0'), code="sequence-parallel") == {
        "args.sequence_parallel"}


# The new rules' refused variants, as megatron-core itself judges them.
ENGINE_CASES_OVERLAP = [
    (QWEN35_MOE, (_kw(OVERLAP),)),
    (QWEN35_MOE, (*NO_RECOMPUTE, "args.moe_shared_expert_overlap=false", "args.mtp_num_layers=2", _kw(OVERLAP))),
    (QWEN35_MOE, (_kw('"delay_wgrad_compute": true'),)),
    (QWEN3_MOE, (_kw('"cpu_offloading": true, "cpu_offloading_num_layers": 2'),)),
    (DENSE, (_kw('"fine_grained_activation_offloading": true, "offload_modules": ["attn_proj"]'),)),
    (DENSE, ("args.fp8_format=e4m3", _kw('"first_last_layers_bf16": true'))),
    (QWEN3_MOE, (_kw('"moe_router_topk": 1'),)),
    (QWEN3_MOE, (_kw('"moe_router_group_topk": 2, "moe_router_num_groups": 3'),)),
    (QWEN3_MOE, (_kw('"moe_router_padding_for_quantization": true'),)),
    (QWEN3_MOE, (_kw('"moe_router_padding_for_fp8": true'),)),
    (QWEN35_MOE, (_kw('"moe_layer_recompute": "false"'),)),  # a non-empty string is true to megatron-core
    (QWEN3_MOE, (_kw('"cpu_offloading": 1, "cpu_offloading_num_layers": 2'),)),
]


@pytest.mark.parametrize("name,overrides", ENGINE_CASES_OVERLAP, ids=[o[-1][-60:] for _, o in ENGINE_CASES_OVERLAP])
def test_megatron_core_refuses_what_the_new_rules_refuse(name, overrides, tmp_path, monkeypatch):
    pytest.importorskip("megatron.core", reason="megatron-core (the `test` extra) is not installed")
    monkeypatch.setenv("SWIFT_EXT_CACHE", str(tmp_path / "cache"))
    from swift_ext.planner import oracle

    recipe = load_recipe(WORKING / name, list(overrides))
    assert make_plan(recipe, oracle=False).errors, "the rules must refuse it"
    a = Args.bind(recipe, msargs.schema_for("megatron", recipe.command))
    verdict = oracle.judge(resolve_shape(recipe.args["model"]), a, layout_of(a, recipe.launch.world_size), cache=False)
    assert not verdict.accepts, verdict.notes


def test_extra_kwargs_pairs_megatron_core_refuses():
    # Qwen3.5 has gated attention; Qwen3-8B has none and no experts; DeepSeek has multi-latent attention
    assert _errors(QWEN35_MOE, _kw('"fused_single_qkv_rope": true'), code="mcore-config") == {"args.megatron_extra_kwargs"}
    assert _errors(DENSE, _kw('"fused_single_qkv_rope": true'), code="mcore-config") == set()
    # mcore-bridge's ModelConfig turns rotary_interleaved off for MLA before TransformerConfig checks the pair
    assert _errors(DEEPSEEK, _kw('"rotary_interleaved": true'), code="mcore-config") == set()
    assert _errors(DEEPSEEK, "args.bridge_backend=megatron-bridge", _kw('"rotary_interleaved": true'),
                   code="mcore-config") == {"args.megatron_extra_kwargs"}
    assert _errors(DENSE, _kw('"rotary_interleaved": true'), code="mcore-config") == set()
    assert _errors(DENSE, _kw('"moe_ffn_hidden_size": 1024'), code="mcore-config") == {"args.megatron_extra_kwargs"}
    assert _errors(DENSE, _kw('"expert_model_parallel_size": 2'), code="mcore-config") == {"args.megatron_extra_kwargs"}
    assert _errors(QWEN3_MOE, _kw('"moe_ffn_hidden_size": 768'), code="mcore-config") == set()
    assert _errors(DENSE, _kw('"enable_cuda_graph": true, "external_cuda_graph": true'), code="mcore-config") == {
        "args.megatron_extra_kwargs"}


def test_cuda_graph_scopes_megatron_core_refuses():
    # a moe scope on a dense model; any graph but the full-iteration one under full recompute (QWEN35_MOE recomputes
    # fully, DENSE selectively); bench/mcore_audit's cuda-graph-* cases run the oracle on the same pairs
    te = '"cuda_graph_impl": "transformer_engine"'
    assert _errors(DENSE, _kw(te + ', "cuda_graph_scope": ["moe"]'), code="mcore-config") == {"args.megatron_extra_kwargs"}
    assert _errors(QWEN3_MOE, "args.recompute_granularity=selective", "args.recompute_method=null",
                   "args.recompute_num_layers=null", _kw(te + ', "cuda_graph_scope": ["attn"]'), code="mcore-config") == set()
    assert _errors(DENSE, _kw(te + ', "cuda_graph_scope": ["attn"]'), code="mcore-config") == set()
    assert _errors(QWEN35_MOE, _kw(te + ', "cuda_graph_scope": "attn"'), code="mcore-config") == {
        "args.megatron_extra_kwargs"}
    assert _errors(QWEN35_MOE, _kw(te), code="mcore-config") == {"args.megatron_extra_kwargs"}  # "full": the layer
    assert _errors(QWEN35_MOE, _kw('"cuda_graph_impl": "local", "cuda_graph_scope": ["full_iteration"]'),
                   code="mcore-config") == set()
    assert _errors(QWEN35_MOE, _kw('"cuda_graph_scope": ["attn"]'), code="mcore-config") == set()  # impl "none"


def test_local_cuda_graph_mlp_scope_without_attn_is_refused():
    # local graphs build the layer's graph manager before the layer knows whether it is MoE (Megatron-Bridge#4583):
    # mlp alone fails on a dense model; with attn, the whole layer, or transformer_engine graphs it builds
    local = '"cuda_graph_impl": "local", '
    assert _errors(DENSE, _kw(local + '"cuda_graph_scope": ["mlp"]'), code="cuda-graph-scope") == {
        "args.megatron_extra_kwargs"}
    assert _errors(DENSE, _kw(local + '"cuda_graph_scope": "mlp"'), code="cuda-graph-scope") == {
        "args.megatron_extra_kwargs"}
    for fine in (local + '"cuda_graph_scope": ["attn", "mlp"]', local + '"cuda_graph_scope": "full"',
                 '"cuda_graph_impl": "transformer_engine", "cuda_graph_scope": ["mlp"]', '"cuda_graph_scope": ["mlp"]'):
        assert _errors(DENSE, _kw(fine), code="cuda-graph-scope") == set(), fine


def test_te_cuda_graphs_are_said_to_stay_uncaptured():
    # ms-swift's trainer never runs TECudaGraphHelper: TE graphs are a no-op there; local graphs (captured by
    # megatron-core's schedules) and no graphs are not said
    def warned(body):
        result = make_plan(load_recipe(WORKING / DENSE, [_kw(body)]), oracle=False)
        return {p.path for p in result.warnings if p.code == "cuda-graph-te"}
    assert warned('"cuda_graph_impl": "transformer_engine", "cuda_graph_scope": ["attn"]') == {
        "args.megatron_extra_kwargs"}
    assert warned('"cuda_graph_impl": "local", "cuda_graph_scope": ["attn"]') == set()
    assert warned('"cuda_graph_scope": ["attn"]') == set()


def test_deprecated_cuda_graph_switches_map_onto_the_implementation():
    # TransformerConfig.__post_init__ maps enable_cuda_graph -> local and external_cuda_graph -> transformer_engine
    # while cuda_graph_impl is "none" (Megatron-LM#1566 asked for TE graphs through --external-cuda-graph)
    def warned(body):
        result = make_plan(load_recipe(WORKING / DENSE, [_kw(body)]), oracle=False)
        return {p.path for p in result.warnings if p.code == "cuda-graph-te"}
    assert warned('"external_cuda_graph": true, "cuda_graph_scope": "attn"') == {"args.megatron_extra_kwargs"}
    assert warned('"external_cuda_graph": false, "cuda_graph_scope": "attn"') == set()
    assert warned('"enable_cuda_graph": true, "cuda_graph_scope": ["attn"]') == set()
    # enable_cuda_graph is local graphs: the mlp-only scope fails as with cuda_graph_impl local; attn + mlp builds
    assert _errors(DENSE, _kw('"enable_cuda_graph": true, "cuda_graph_scope": ["mlp"]'),
                   code="cuda-graph-scope") == {"args.megatron_extra_kwargs"}
    assert _errors(DENSE, _kw('"enable_cuda_graph": true, "cuda_graph_scope": ["attn", "mlp"]'),
                   code="cuda-graph-scope") == set()
    # "Do not use enable_cuda_graph or external_cuda_graph with cuda_graph_impl."
    assert _errors(DENSE, _kw('"external_cuda_graph": true, "cuda_graph_impl": "transformer_engine"'),
                   code="mcore-config") == {"args.megatron_extra_kwargs"}
    assert _errors(DENSE, _kw('"external_cuda_graph": true, "cuda_graph_impl": "none"'), code="mcore-config") == set()
