"""planner/attention_rules.py unfused_context_parallel (attention-cp): Transformer Engine runs context-parallel
attention only in its flash and fused backends, so attention_backend unfused (TE disables its unfused backend under
CP) or local (megatron-core turns all three TE backends off) with context_parallel_size > 1 finds no backend at the
first forward (NVIDIA/TransformerEngine#1051). Each test changes a published working setup (tests/fixtures/working)."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

WORKING = FIXTURES / "working"
LLAMA_CP2 = "megatron-bridge-llama3-70b-16k-tp8-cp2-32gpu.yaml"  # TP=8, CP=2, attention_backend flash
GPT_OSS = "megatron-bridge-gpt-oss-20b-sft-8gpu.yaml"  # learnable softmax: attention-sinks-cp's


def _found(name: str, *overrides: str, code: str = "attention-cp") -> tuple[set[str], set[str]]:
    result = make_plan(load_recipe(WORKING / name, list(overrides)), oracle=False)
    return ({p.path for p in result.errors if p.code == code}, {p.path for p in result.warnings if p.code == code})


def test_unfused_or_local_attention_under_context_parallel_is_refused():
    for backend in ("unfused", "local"):
        assert _found(LLAMA_CP2, f"args.attention_backend={backend}") == ({"args.attention_backend"}, set())


def test_flash_fused_and_auto_run_context_parallel_and_unfused_runs_without_it():
    for backend in ("flash", "fused", "auto"):
        assert _found(LLAMA_CP2, f"args.attention_backend={backend}") == (set(), set())
    assert _found(LLAMA_CP2, "args.attention_backend=unfused", "args.context_parallel_size=1") == (set(), set())


def test_local_without_a_named_gpu_is_said_not_refused():
    # ms-swift on Ascend passes attention_backend local to MindSpeed, which brings its own context-parallel attention
    assert _found(LLAMA_CP2, "args.attention_backend=local", "launch.gpu=null") == (set(), {"args.attention_backend"})


def test_learnable_softmax_models_are_left_to_attention_sinks_cp():
    cp2 = ("args.context_parallel_size=2", "args.max_length=8192", "args.attention_backend=unfused")
    assert _found(GPT_OSS, *cp2) == (set(), set())
    assert _found(GPT_OSS, *cp2, code="attention-sinks-cp")[0] == {"args.context_parallel_size"}


def _env_errors(*overrides: str) -> set[str]:
    result = make_plan(load_recipe(WORKING / LLAMA_CP2, list(overrides)), oracle=False)
    return {p.path for p in result.errors if p.code == "attention-env"}


def test_te_backend_switches_in_env_that_contradict_attention_backend_are_refused():
    # megatron-core LanguageModule._set_attention_backend asserts each switch already set matches the backend
    assert _env_errors("env.NVTE_FLASH_ATTN=0", "env.NVTE_FUSED_ATTN=1") == {"args.attention_backend"}  # flash
    assert _env_errors("args.attention_backend=fused", "env.NVTE_FLASH_ATTN=1") == {"args.attention_backend"}
    assert _env_errors("args.attention_backend=auto", "env.NVTE_UNFUSED_ATTN=0") == {"args.attention_backend"}


def test_switches_that_agree_with_attention_backend_build():
    assert _env_errors("env.NVTE_FLASH_ATTN=1", "env.NVTE_FUSED_ATTN=0") == set()  # flash sets exactly these
    assert _env_errors("args.attention_backend=fused", "env.NVTE_FUSED_ATTN=1", "env.NVTE_FLASH_ATTN=0") == set()
    assert _env_errors() == set()


GEMMA4 = "ms-swift-example-megatron-gemma4-26b-a4b-full-tp2-pp2-ep4-freeze-vit.yaml"  # sliding layers, unfused


def test_sliding_window_layers_under_p2p_context_parallel_are_refused():
    # TE's p2p context-parallel attention asserts on a window; the default cp_comm_type is p2p
    cp2 = ("args.context_parallel_size=2", "args.attention_backend=fused")
    assert _found(GEMMA4, *cp2, code="sliding-window-cp") == ({"args.context_parallel_size"}, set())
    assert _found(GEMMA4, *cp2, "args.cp_comm_type=p2p", code="sliding-window-cp") == ({"args.cp_comm_type"}, set())


def test_sliding_window_layers_run_a2a_context_parallel_and_full_attention_models_run_p2p():
    cp2 = ("args.context_parallel_size=2", "args.attention_backend=fused")
    assert _found(GEMMA4, *cp2, "args.cp_comm_type=a2a", code="sliding-window-cp") == (set(), set())
    assert _found(GEMMA4, code="sliding-window-cp") == (set(), set())  # the published recipe: no CP
    assert _found(LLAMA_CP2, code="sliding-window-cp") == (set(), set())  # Llama: no window, p2p CP
    # gpt-oss's window is attention-sinks-cp's (its sinks need a2a anyway); unfused under CP is attention-cp's
    assert _found(GPT_OSS, "args.context_parallel_size=2", "args.max_length=8192",
                  code="sliding-window-cp") == (set(), set())
    assert _found(GEMMA4, "args.context_parallel_size=2", code="sliding-window-cp") == (set(), set())


def test_a_contiguous_cp_split_outside_deepseek_v4_is_said():
    # mcore-bridge's split_cp_inputs hands each rank one contiguous block; the rotary and TE CP attention downstream
    # take the zigzag split, so positions and causal masks come out wrong with no error.
    assert _found(LLAMA_CP2, "args.cp_partition_mode=contiguous", code="cp-partition-mode") == \
        (set(), {"args.cp_partition_mode"})
    assert _found(LLAMA_CP2, "args.cp_partition_mode=zigzag", code="cp-partition-mode") == (set(), set())
    assert _found(LLAMA_CP2, "args.cp_partition_mode=contiguous", "args.context_parallel_size=1",
                  code="cp-partition-mode") == (set(), set())


QWEN25_CP1 = "ms-swift-example-megatron-lora-dense-qwen25-7b-tp2-mbs16.yaml"  # TP=2, CP=1, H100, attention_backend flash


def test_local_attention_finds_no_transformer_engine_backend_on_cuda():
    # attention-local (planner/attention_rules.py local_attention_backend): megatron-core sets all three NVTE switches
    # to 0 for local, and mcore-bridge builds TEDotProductAttention anyway
    assert _found(QWEN25_CP1, "args.attention_backend=local", code="attention-local") == ({"args.attention_backend"},
                                                                                         set())
    # no card named: Ascend's MindSpeed runs local with its own attention -- said, not refused
    assert _found(QWEN25_CP1, "args.attention_backend=local", "launch.gpu=null", code="attention-local") == (
        set(), {"args.attention_backend"})


def test_te_backends_build_and_local_under_context_parallel_stays_attention_cp():
    for backend in ("flash", "fused", "unfused", "auto"):
        assert _found(QWEN25_CP1, f"args.attention_backend={backend}", code="attention-local") == (set(), set())
    assert _found(LLAMA_CP2, "args.attention_backend=local", code="attention-local") == (set(), set())


def test_sparse_attention_models_are_not_judged_for_local():
    # DeepSeek-V3.2 / GLM-5 build megatron-core's own DSAttention, which the TE switches do not reach
    import dataclasses

    from swift_ext.msswift import schema as msargs
    from swift_ext.msswift.bound_args import Args
    from swift_ext.planner.layout import check_layout
    from swift_ext.planner.model_shape import from_config
    from swift_ext.spec.recipe import Recipe, Resources

    config = {"model_type": "deepseek_v32", "num_hidden_layers": 61, "hidden_size": 7168, "num_attention_heads": 128,
              "num_key_value_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128,
              "qk_rope_head_dim": 64, "v_head_dim": 128, "intermediate_size": 18432, "moe_intermediate_size": 2048,
              "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8, "first_k_dense_replace": 3,
              "scoring_func": "sigmoid", "vocab_size": 129280, "index_n_heads": 64, "index_head_dim": 128,
              "index_topk": 2048}
    args = {"model": "deepseek-ai/DeepSeek-V3.2", "expert_model_parallel_size": 8, "pipeline_model_parallel_size": 8,
            "global_batch_size": 64, "attention_backend": "local"}
    recipe = Recipe(command="sft", engine="megatron", args=args, launch=Resources(nodes=8, gpus_per_node=8, gpu="H100"))
    errors, warnings = check_layout(recipe, Args(recipe.args, msargs.schema_for("megatron", "sft")),
                                    from_config(config, name="deepseek-ai/DeepSeek-V3.2"))
    assert "attention-local" not in {p.code for p in errors + warnings}
    qwen = dataclasses.replace(from_config(config, name="x"), model_type="qwen2")
    errors, _ = check_layout(recipe, Args(recipe.args, msargs.schema_for("megatron", "sft")), qwen)
    assert "attention-local" in {p.code for p in errors}
