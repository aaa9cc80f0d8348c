"""Pre-flight planner: model shapes, one test per layout rule (passing and failing), memory, search."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, RECIPES, swift_ext
from swift_ext.msswift.bound_args import Args
from swift_ext.planner.layout import check_layout
from swift_ext.planner.shape_lookup import resolve_shape
from swift_ext.msswift.schema import schema_for
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import Recipe, load_recipe
from swift_ext.planner.search import search

SFT = RECIPES / "qwen3_6/sft-lora-4x32g.yaml"
GRPO = RECIPES / "qwen3_6/grpo-lora-8gpu.yaml"


def rules_hit(recipe: Recipe) -> tuple[set[str], set[str]]:
    schema = schema_for(recipe.engine, recipe.command)
    args = Args.bind(recipe, schema)
    errors, warnings = check_layout(recipe, args, resolve_shape(recipe.args["model"]))
    return {e.code for e in errors}, {w.code for w in warnings}


def seed(path=SFT, *overrides) -> Recipe:
    return load_recipe(path, list(overrides))


# ---- acceptance -----------------------------------------------------------------------------------

def test_seed_sft_passes_every_rule_and_fits_4x40():
    plan = make_plan(seed())
    assert plan.errors == [] and plan.ok
    # The release note measured 32 GiB; the calibrated estimate (+/- its band) may call 40 GiB cards tight, never
    # refused.
    assert plan.memory.capacity_gib == 40 and plan.memory.verdict in ("fits", "tight")
    assert 24 <= plan.memory.per_gpu_gib <= 40


def test_seed_grpo_fits_8x80():
    plan = make_plan(seed(GRPO))
    assert plan.errors == [] and plan.memory.capacity_gib == 80 and plan.memory.verdict == "fits"
    assert "vllm" in plan.memory.components


def test_full_finetune_on_4x40_is_refused_with_the_reason():
    plan = make_plan(seed(SFT, "args.tuner_type=full"))
    assert not plan.ok and plan.memory.verdict == "does_not_fit"
    (problem,) = [p for p in plan.errors if p.code == "memory"]
    assert "does not fit in 40 GiB" in problem.message and "optimizer" in problem.message


def test_tp4_over_2_kv_groups_is_legal_on_megatron_core_016():
    # megatron-core 0.16's TransformerConfig accepts num_query_groups that is a multiple OR a divisor of TP.
    errors, warnings = rules_hit(seed(SFT, "args.tensor_model_parallel_size=4"))
    assert "kv-groups-tp" not in errors and "kv-groups-tp" in warnings


def test_tp4_refused_for_kv_groups_on_megatron_core_015():
    errors, _ = rules_hit(seed(SFT, "args.tensor_model_parallel_size=4", "env.SWIFT_EXT_MCORE_VERSION=0.15.0"))
    assert "kv-groups-tp" in errors


QWEN3_NEXT = FIXTURES / "working/megatron-bridge-qwen3-next-80b-a3b-sft-16gpu.yaml"  # TP=1, 16 heads / 2 KV groups
BRIDGE = "args.bridge_backend=megatron-bridge"


def test_gated_attention_past_the_kv_groups_refused_under_megatron_bridge_on_megatron_core_016():
    # megatron-core 0.16.1 SelfAttention.get_query_key_value_tensors narrows the query, not the output gate, when TP
    # exceeds num_query_groups; Megatron-Bridge's qwen3_next provider runs that SelfAttention (verl#5818, miles#972).
    errors, warnings = rules_hit(seed(QWEN3_NEXT, BRIDGE, "args.tensor_model_parallel_size=4"))
    assert "gated-attention-tp" in errors and "kv-groups-tp" not in errors | warnings
    # the same TP under mcore-bridge (the default): its GatedSelfAttention slices query and gate together -- legal
    errors, warnings = rules_hit(seed(QWEN3_NEXT, "args.tensor_model_parallel_size=4"))
    assert "gated-attention-tp" not in errors and "kv-groups-tp" in warnings
    # TP at the KV groups, or a megatron-core with the gate slice
    assert "gated-attention-tp" not in rules_hit(seed(QWEN3_NEXT, BRIDGE, "args.tensor_model_parallel_size=2"))[0]
    assert "gated-attention-tp" not in rules_hit(seed(QWEN3_NEXT, BRIDGE, "args.tensor_model_parallel_size=4",
                                                      "env.SWIFT_EXT_TARGET_VERSIONS=megatron-core=0.17.0"))[0]


def test_qwen36_tp4_over_2_kv_groups_is_not_refused_under_mcore_bridge():
    # ms-swift's default backend (mcore-bridge 1.6.3) builds GatedSelfAttention for Qwen3.5/3.6: no gate-slice error.
    errors, _ = rules_hit(seed(SFT, "args.tensor_model_parallel_size=4"))
    assert "gated-attention-tp" not in errors


def test_ep3_refused_for_256_experts():
    errors, _ = rules_hit(seed(SFT, "args.expert_model_parallel_size=3"))
    assert "experts-divisible" in errors


def test_expert_sizes_on_a_dense_model_warn_on_the_flag_the_recipe_set():
    # ETP alone used to be reported as "EP=1 ... remove expert_model_parallel_size", a flag not in the recipe.
    from conftest import FIXTURES
    dense = FIXTURES / "working" / "ms-swift-example-kto-dense.yaml"
    for overrides, path, said in (
            (["args.expert_tensor_parallel_size=2", "args.tensor_model_parallel_size=2"], "args.expert_tensor_parallel_size", "ETP=2"),
            (["args.expert_model_parallel_size=2"], "args.expert_model_parallel_size", "EP=2")):
        plan = make_plan(seed(dense, *overrides))
        (warning,) = [w for w in plan.warnings if w.code == "experts-divisible"]
        assert warning.path == path and said in warning.message, warning.render()
    assert "experts-divisible" not in {w.code for w in make_plan(seed(dense)).warnings}


def test_every_violation_is_listed_at_once():
    result = swift_ext("plan", SFT, "args.tensor_model_parallel_size=4", "args.expert_model_parallel_size=3",
                       "args.global_batch_size=3", "env.SWIFT_EXT_MCORE_VERSION=0.15.0", "--json")
    data = json.loads(result.stdout)
    assert result.returncode == 2
    assert {"kv-groups-tp", "experts-divisible", "expert-layout"} <= {v["rule"] for v in data["violations"]}



def test_a_layout_too_big_for_the_node_names_the_node_count_it_fits():
    # Published large-MoE scripts state the per-node count and leave NNODES to the launcher (ms-swift's
    # DeepSeek-V4.1 examples: EP8 x PP4 with NPROC_PER_NODE=8): the fix is more nodes, as well as smaller sizes.
    plan = make_plan(seed(SFT, "launch.nodes=1", "launch.gpus_per_node=8", "args.tensor_model_parallel_size=1",
                          "args.expert_model_parallel_size=8", "args.pipeline_model_parallel_size=4"))
    (error,) = [e for e in plan.errors if e.code == "expert-layout"]
    assert error.hint == "EP*ETP must divide 2: one of [1, 2]; or keep the sizes on launch.nodes: 4 (32 GPUs)"
    plan = make_plan(seed(SFT, "launch.nodes=1", "launch.gpus_per_node=8", "args.tensor_model_parallel_size=3"))
    (error,) = [e for e in plan.errors if e.code == "world-divisible"]
    assert error.hint.endswith("; or keep the sizes on launch.nodes: 3 (24 GPUs)"), error.hint

def test_a_world_size_error_names_the_factor_whose_reduction_fits():
    # NVIDIA-NeMo/RL PR 3150: TP2*PP2*CP4 = 16 on 8 training GPUs; CP (the largest factor that alone fits) is named.
    plan = make_plan(seed(SFT, "launch.nodes=1", "launch.gpus_per_node=8", "args.tensor_model_parallel_size=2",
                          "args.pipeline_model_parallel_size=2", "args.context_parallel_size=4"))
    (error,) = [e for e in plan.errors if e.code == "world-divisible"]
    assert error.path == "args.context_parallel_size", error.path
    plan = make_plan(seed(SFT, "launch.nodes=1", "launch.gpus_per_node=8", "args.tensor_model_parallel_size=3"))
    (error,) = [e for e in plan.errors if e.code == "world-divisible"]
    assert error.path == "args.tensor_model_parallel_size", error.path

# ---- one test per rule, failing and passing --------------------------------------------------------

RULE_CASES = [
    # rule, overrides that break it, overrides that satisfy it
    ("world-divisible", ["args.tensor_model_parallel_size=2", "args.pipeline_model_parallel_size=4"],
     ["args.tensor_model_parallel_size=2", "args.pipeline_model_parallel_size=2"]),
    ("expert-layout", ["args.expert_model_parallel_size=8"], ["args.expert_model_parallel_size=4"]),
    ("experts-divisible", ["args.expert_model_parallel_size=3", "launch.gpus_per_node=6"],
     ["args.expert_model_parallel_size=2", "launch.gpus_per_node=6"]),
    ("heads-tp", ["args.tensor_model_parallel_size=3", "launch.gpus_per_node=6", "args.expert_model_parallel_size=2"],
     ["args.tensor_model_parallel_size=2", "launch.gpus_per_node=6", "args.expert_model_parallel_size=2"]),
    ("kv-groups-tp", ["args.tensor_model_parallel_size=4", "env.SWIFT_EXT_MCORE_VERSION=0.15.0"],
     ["args.tensor_model_parallel_size=2", "env.SWIFT_EXT_MCORE_VERSION=0.15.0"]),
    ("linear-heads-tp", ["args.tensor_model_parallel_size=3", "launch.gpus_per_node=6", "args.expert_model_parallel_size=2"],
     ["args.tensor_model_parallel_size=1"]),
    ("layers-pp", ["args.pipeline_model_parallel_size=3", "args.tensor_model_parallel_size=1",
                   "launch.gpus_per_node=6", "args.expert_model_parallel_size=2", "args.global_batch_size=4"],
     ["args.pipeline_model_parallel_size=2", "args.tensor_model_parallel_size=1", "args.expert_model_parallel_size=2"]),
    ("global-batch", ["args.global_batch_size=3"], ["args.global_batch_size=4"]),
    ("sequence-parallel", ["args.sequence_parallel=false"], ["args.sequence_parallel=true"]),
    ("packing-modes", ["args.group_by_length=true"], ["args.group_by_length=false"]),
    ("recompute", ["args.recompute_granularity=selective"], ["args.recompute_granularity=full"]),
    ("save-total-limit", ["args.save_total_limit=1"], ["args.save_total_limit=2"]),
    ("fp8-gpu", ["args.fp8_format=e4m3", "args.fp8_recipe=blockwise", "launch.gpu=A100-80G"],
     ["args.fp8_format=e4m3", "args.fp8_recipe=blockwise", "launch.gpu=H100"]),
]


@pytest.mark.parametrize("rule, bad, good", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_rule(rule, bad, good):
    errors, _ = rules_hit(seed(SFT, *bad))
    assert rule in errors
    errors, _ = rules_hit(seed(SFT, *good))
    assert rule not in errors


def test_context_parallel_takes_any_max_length():
    # ms-swift 4.6 pads each sample to a multiple of 2*CP (Template._handle_megatron_cp) and the batch to TP*CP
    # under SP (get_padding_to): a max_length of 4097, or none, is no failure without padding_free either
    for length in ("args.max_length=4097", "args.max_length=null"):
        errors, _ = rules_hit(seed(SFT, "args.context_parallel_size=2", "args.tensor_model_parallel_size=2",
                                   "args.sequence_parallel=true", "args.packing=false", "args.padding_free=false",
                                   length))
        assert "context-parallel" not in errors, (length, errors)
    _, warned = rules_hit(seed(SFT, "args.context_parallel_size=2", "args.max_length=2048"))
    assert "context-parallel" in warned


def test_layers_pp_with_first_last_stage_counts():
    ok = seed(SFT, "args.pipeline_model_parallel_size=2", "args.tensor_model_parallel_size=1",
              "args.expert_model_parallel_size=2", "args.decoder_first_pipeline_num_layers=24")
    assert "layers-pp" not in rules_hit(ok)[0]
    bad = seed(SFT, "args.pipeline_model_parallel_size=4", "args.tensor_model_parallel_size=1",
               "args.decoder_first_pipeline_num_layers=9")  # 31 layers over 3 stages
    assert "layers-pp" in rules_hit(bad)[0]
    assert "layers-pp" in rules_hit(seed(SFT, "args.decoder_first_pipeline_num_layers=8"))[0]  # PP=1


def test_sequence_parallel_moe_needs_it_without_ep_dense_only_warns():
    # megatron-core MoELayer.forward refuses MoE training with TP > 1 and no sequence parallelism, any EP.
    errors, _ = rules_hit(seed(SFT, "args.sequence_parallel=false", "args.expert_model_parallel_size=1"))
    assert "sequence-parallel" in errors
    errors, warnings = rules_hit(seed(SFT, "args.sequence_parallel=false", "args.expert_model_parallel_size=1",
                                      "args.model=Qwen/Qwen3.5-27B"))
    assert "sequence-parallel" not in errors and "sequence-parallel" in warnings


def test_fp8_mxfp8_needs_blackwell():
    assert "fp8-gpu" in rules_hit(seed(SFT, "args.fp8_format=e4m3", "args.fp8_recipe=mxfp8", "launch.gpu=H100"))[0]
    assert "fp8-gpu" not in rules_hit(seed(SFT, "args.fp8_format=e4m3", "args.fp8_recipe=mxfp8", "launch.gpu=B200"))[0]


GRPO_CASES = [
    ("grpo-vllm", ["args.vllm_mode=null"], []),
    ("grpo-vllm", ["args.use_vllm=false"], []),
    ("grpo-batch", ["args.num_generations=7"], ["args.num_generations=4"]),  # 128 % 7
    ("grpo-batch", ["args.global_batch_size=32", "args.steps_per_generation=1", "args.num_generations=8"],
     ["args.global_batch_size=64"]),  # 32/8 = 4 prompts over DP=8
    ("grpo-batch", ["args.micro_batch_size=4", "args.global_batch_size=128", "args.steps_per_generation=1",
                    "args.num_generations=8"], ["args.micro_batch_size=2", "args.global_batch_size=128",
                                                "args.steps_per_generation=1", "args.num_generations=8"]),
    ("grpo-vllm", ["args.vllm_tensor_parallel_size=3"], ["args.vllm_tensor_parallel_size=4"]),
    # evaluation rolls out global_batch_size (64) / DP 8 = 8 completions per rank: num_generations_eval 16 leaves
    # none, 4 fits; micro_batch_size 2 trains (128 / 8 / 8 = 2 prompts per rank) but evaluates 1 prompt in pairs
    ("grpo-batch", ["args.split_dataset_ratio=0.01", "args.num_generations_eval=16"],
     ["args.split_dataset_ratio=0.01", "args.num_generations_eval=4"]),
    ("grpo-batch", ["args.split_dataset_ratio=0.01", "args.micro_batch_size=2"],
     ["args.split_dataset_ratio=0.01", "args.micro_batch_size=2", "args.eval_iters=0"]),
    # TP=2 on 8 GPUs (DP 4): 36 completions = 4 prompts x 9 pass the DP checks, but 36 // 8 per rank leaves the
    # model-parallel pair 8 of each DP rank's 9 (get_local_rollout_batch asserts); 72 fills them
    ("grpo-batch", ["args.tensor_model_parallel_size=2", "args.global_batch_size=36", "args.steps_per_generation=1",
                    "args.num_generations=9"],
     ["args.tensor_model_parallel_size=2", "args.global_batch_size=72", "args.steps_per_generation=1",
      "args.num_generations=9"]),
    ("grpo-batch", ["args.val_dataset=[AI-MO/NuminaMath-TIR]", "args.micro_batch_size=2"],
     ["args.micro_batch_size=2"]),  # no validation set: never evaluates
    # 4 validation rows are fewer than micro_batch_size 2 x DP 8: init_iters drops them, so no evaluation runs
    ("grpo-batch", ["args.val_dataset=[AI-MO/NuminaMath-TIR#64]", "args.micro_batch_size=2"],
     ["args.val_dataset=[AI-MO/NuminaMath-TIR#4]", "args.micro_batch_size=2"]),
    ("reward-funcs", ["args.reward_funcs=[accuracy, acuracy]"], ["args.reward_funcs=[accuracy, format]"]),
    ("reward-funcs", ["args.reward_weights=[1.0, 0.5]"], ["args.reward_weights=[1.0]"]),
    # the Megatron trainer never reads reward_model: its weights count reward_funcs (and a gym column) only
    ("reward-funcs", ["args.reward_model=[Qwen/Qwen3-0.6B]", "args.reward_weights=[1.0, 0.5]"],
     ["args.reward_model=[Qwen/Qwen3-0.6B]", "args.reward_weights=[1.0]"]),
    ("reward-funcs", ["args.use_gym_env=false", "args.reward_weights=[1.0, 0.5]"],
     ["args.use_gym_env=true", "args.reward_weights=[1.0, 0.5]"]),
]


def test_reward_weights_count_reward_models_on_the_transformers_engine_and_a_server_gym_column_either_way():
    from swift_ext.msswift import schema as msargs
    from swift_ext.msswift.bound_args import Args
    from swift_ext.planner.grpo_rules import reward_columns

    def columns(engine, *overrides):
        rec = seed(GRPO, f"engine={engine}", *overrides)
        return reward_columns(Args.bind(rec, msargs.schema_for(rec.engine, rec.command)), engine)

    assert columns("swift", "args.reward_model=[Qwen/Qwen3-0.6B]") == {2}
    assert columns("megatron", "args.reward_model=[Qwen/Qwen3-0.6B]") == {1}
    server = ("args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]")
    assert columns("megatron", *server) == {1, 2}  # use_gym_env unset: the server decides
    assert columns("megatron", *server, "args.use_gym_env=false") == {1}


def test_megatron_grpo_with_one_generation_is_said_not_refused():
    # rl_core/advantage.py compute_advantages: a group of one has advantage 0; Megatron's _init_grpo lets it through
    errors, warnings = rules_hit(seed(GRPO, "args.num_generations=1"))
    assert "grpo-generations" in warnings and "grpo-generations" not in errors
    assert "grpo-generations" not in rules_hit(seed(GRPO, "args.num_generations=1",
                                                    "args.teacher_model=Qwen/Qwen3.6-35B-A3B"))[1]  # OPD-RL signal
    assert "grpo-generations" not in rules_hit(seed(GRPO))[1]


def test_megatron_grpo_says_a_reward_model_is_never_loaded():
    _, warnings = rules_hit(seed(GRPO, "args.reward_model=[Qwen/Qwen3-0.6B]"))
    assert "reward-funcs" in warnings
    assert "reward-funcs" not in rules_hit(seed(GRPO))[1]


@pytest.mark.parametrize("rule, bad, good", GRPO_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(GRPO_CASES)])
def test_grpo_rule(rule, bad, good):
    assert rule in rules_hit(seed(GRPO, *bad))[0]
    assert rule not in rules_hit(seed(GRPO, *good))[0]


def test_megatron_rollout_shorter_than_prompt_plus_completion_is_not_refused():
    # ms-swift 4.6 megatron_args.py _init_grpo does not check it; the rollout engine cuts max_tokens
    # (length_rules.rollout_length warns, as on engine swift).
    plan = make_plan(seed(GRPO, "args.vllm_max_model_len=9000"), oracle=False)
    assert "grpo-vllm" not in {f.code for f in plan.errors}
    assert "rollout-length" in {f.code for f in plan.warnings}
    plan = make_plan(seed(GRPO), oracle=False)
    assert "rollout-length" not in {f.code for f in plan.warnings}


def test_megatron_server_mode_leaves_vllm_tp_to_the_server():
    server = ("args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]", "args.vllm_tensor_parallel_size=3")
    assert "grpo-vllm" not in rules_hit(seed(GRPO, *server))[0]
    assert "grpo-vllm" in rules_hit(seed(GRPO, "args.vllm_tensor_parallel_size=3"))[0]  # colocated: 16 heads


def test_reward_from_plugin_file_is_known(tmp_path):
    plugin = tmp_path / "plugin.py"
    plugin.write_text("from swift.rewards import ORM, orms\nclass R(ORM):\n    pass\norms['my_reward'] = R\n")
    rec = seed(GRPO, f"args.external_plugins=[{plugin}]", "args.reward_funcs=[my_reward]")
    assert "reward-funcs" not in rules_hit(rec)[0]
    assert "reward-funcs" in rules_hit(seed(GRPO, "args.reward_funcs=[my_reward]"))[0]


# ---- model shapes ------------------------------------------------------------------------------------

def test_shape_from_local_vl_config_reads_text_config(tmp_path):
    cfg = {"model_type": "qwen3_5_moe", "text_config": {
        "hidden_size": 2048, "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256,
        "num_hidden_layers": 40, "vocab_size": 248320, "num_experts": 256, "num_experts_per_tok": 8,
        "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512, "linear_num_key_heads": 16,
        "linear_num_value_heads": 32, "linear_key_head_dim": 128, "linear_value_head_dim": 128,
        "full_attention_interval": 4, "mtp_num_hidden_layers": 1},
        "vision_config": {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "out_hidden_size": 2048}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    shape = resolve_shape(str(tmp_path))
    preset = resolve_shape("Qwen/Qwen3.6-35B-A3B")
    assert shape.num_layers == 40 and shape.num_experts == 256 and shape.num_full_attention_layers == 10
    assert abs(shape.total_params() - preset.total_params()) / preset.total_params() < 0.01
    assert 34e9 < preset.total_params() < 37e9  # "35B total"


def test_missing_launch_numbers_are_named(write):
    path = write("r.yaml", "command: sft\nlaunch: {gpus_per_node: 8}\nargs:\n  model: Qwen/Qwen2.5-7B-Instruct\n"
                           "  dataset: [a.jsonl]\n")
    data = json.loads(swift_ext("plan", path, "--json").stdout)
    assert any("launch.gpu" in w["message"] for w in data["warnings"])
    assert data["memory"]["verdict"] is None and data["memory"]["capacity_gib"] is None


def test_json_schema_names_are_stable():
    data = json.loads(swift_ext("plan", SFT, "--json").stdout)
    assert {"ok", "violations", "layout", "memory"} <= set(data)
    assert set(data["layout"]) == {"tp", "pp", "cp", "ep", "etp", "dp", "world"}
    assert {"per_gpu_gib", "capacity_gib", "verdict", "components"} <= set(data["memory"])
    assert data["memory"]["verdict"] in {"fits", "tight", "does_not_fit"}
    assert abs(sum(data["memory"]["components"].values()) - data["memory"]["per_gpu_gib"]) < 0.1


def test_memory_grows_with_sequence_and_shrinks_with_parallelism():
    base = make_plan(seed()).memory.per_gpu_gib
    assert make_plan(seed(SFT, "args.max_length=8192")).memory.per_gpu_gib > base
    assert make_plan(seed(SFT, "launch.gpus_per_node=8", "args.expert_model_parallel_size=8",
                          "args.global_batch_size=4")).memory.per_gpu_gib < base


def test_memory_grad_buffer_is_fp32_unless_main_grads_dtype_is_bf16():
    # ms-swift turns accumulate_allreduce_grads_in_fp32 on for bf16 runs while main_grads_dtype is fp32;
    # with an fp32 buffer the optimizer step reads the gradient in place (no 4-byte fp32 copy).
    full = ["args.tuner_type=full", "launch.gpus_per_node=8", "args.expert_model_parallel_size=8"]
    fp32 = make_plan(seed(SFT, *full)).memory.components
    bf16 = make_plan(seed(SFT, *full, "args.main_grads_dtype=bf16")).memory.components
    assert fp32["gradients"] == pytest.approx(2 * bf16["gradients"])
    # Adam: fp32 master + two fp32 moments (12 bytes) from an fp32 buffer; 16 with the bf16 buffer's copy
    assert bf16["optimizer"] == pytest.approx(fp32["optimizer"] * 16 / 12)
    aware = make_plan(seed(SFT, *full, "args.use_precision_aware_optimizer=true")).memory.components
    # TE FusedAdam keeps only the 16-bit remainder of the fp32 master (store_param_remainders)
    assert aware["optimizer"] == pytest.approx(fp32["optimizer"] * 10 / 12)


def test_memory_logits_follow_the_cross_entropy_path_and_mtp():
    from swift_ext.planner.memory import CE_BYTES_FUSED, CE_BYTES_UNFUSED, GiB

    def acts(*overrides):
        plan = make_plan(seed(SFT, *overrides))
        return plan.memory.components["activations"], plan
    fused, plan = acts("args.mtp_num_layers=null")
    unfused, _ = acts("args.mtp_num_layers=null", "args.cross_entropy_loss_fusion=false")
    with_mtp, _ = acts()
    logit_gib = 4096 * plan.shape.vocab_size / 2 / GiB  # packing 4096 tokens, vocab over TP=2
    assert fused - unfused == pytest.approx(logit_gib * (CE_BYTES_FUSED - CE_BYTES_UNFUSED), rel=1e-6)
    assert with_mtp - fused == pytest.approx(logit_gib * 4, rel=1e-6)  # one more fp32 softmax kept


@pytest.mark.slow
def test_cross_entropy_bytes_per_logit_match_megatron_measured():
    """The constants memory.py uses, against megatron-core's own cross entropy run here (CPU, one rank)."""
    import subprocess
    import sys
    from pathlib import Path

    from swift_ext.planner.memory import CE_BYTES_FUSED, CE_BYTES_UNFUSED

    script = Path(__file__).parents[1] / "bench" / "measure_cross_entropy_bytes.py"
    for mode, expected in (("unfused", CE_BYTES_UNFUSED), ("fused", CE_BYTES_FUSED)):
        done = subprocess.run([sys.executable, str(script), mode, "4096", "16384"], capture_output=True,
                              text=True, timeout=600, check=True)
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        assert measured["held_for_backward"] == pytest.approx(4, abs=0.25)  # the fp32 softmax
        assert max(measured["forward_peak"], measured["backward_peak"]) == pytest.approx(expected, abs=0.25)


def test_run_refuses_a_plan_that_does_not_fit(tmp_path):
    result = swift_ext("run", SFT, "args.tuner_type=full", f"args.output_dir={tmp_path}/o")
    assert result.returncode == 2 and "does not fit" in result.stderr and "--force" in result.stderr


# ---- layout search --------------------------------------------------------------------------------------

def test_search_prints_top_five_ready_to_paste():
    result = swift_ext("plan", SFT, "--search")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip().startswith("#")]
    assert len(lines) == 5 and all(f"swift-ext plan {SFT}" in line for line in lines)


def _search(recipe):
    return search(make_plan(recipe), limit=50)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gpus=st.sampled_from([2, 4, 8]), nodes=st.sampled_from([1, 2]), gbs=st.sampled_from([8, 16, 32]),
       model=st.sampled_from(["Qwen/Qwen3.6-35B-A3B", "Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen3-30B-A3B"]),
       gpu=st.sampled_from(["H100", "A100-40G", "H200"]), tuner=st.sampled_from(["lora", "full"]))
def test_every_searched_layout_passes_the_rules_and_fits(gpus, nodes, gbs, model, gpu, tuner):
    base = [f"launch.gpus_per_node={gpus}", f"launch.nodes={nodes}", f"args.global_batch_size={gbs}",
            f"args.model={model}", f"launch.gpu={gpu}", f"args.tuner_type={tuner}", "args.mtp_num_layers=null"]
    recipe = seed(SFT, *base)
    for cand in _search(recipe):
        applied = seed(SFT, *base, *cand.override_args(dict(recipe.args)))
        plan = make_plan(applied)
        assert [p.code for p in plan.errors if p.code != "unknown-argument"] == []
        assert plan.memory.verdict in ("fits", "tight")


def test_search_finds_layouts_and_excludes_what_does_not_fit():
    found = _search(seed(SFT, "launch.gpus_per_node=8", "launch.gpu=H100", "args.global_batch_size=16"))
    assert len(found) >= 5
    assert found == sorted(found, key=lambda c: (c.step_seconds, c.per_gpu_gib))
    assert all(c.layout["world"] == 8 and c.layout["tp"] in (1, 2, 4, 8) for c in found)
    # TP=4 over 2 KV groups is legal on megatron-core 0.16 (the KV heads are replicated): proposed now.
    assert any(c.layout["tp"] == 4 for c in found)
    assert _search(seed(SFT, "args.tuner_type=full", "launch.gpus_per_node=2", "args.expert_model_parallel_size=2")) == []


def test_gkd_rolls_out_with_vllm_too():
    """ms-swift's own examples/megatron/rlhf/gkd/*.sh set vllm_mode with rlhf_type gkd (MegatronGKDTrainer
    uses the rollout mixin); only GRPO-only keys are said for it -- and never refused: ms-swift ignores them."""
    gkd = ["args.rlhf_type=gkd", "args.reward_funcs=null", "args.num_generations=null",
           "args.steps_per_generation=null", "args.vllm_mode=colocate"]
    assert "grpo-type" not in set().union(*rules_hit(seed(GRPO, *gkd)))
    errors, warnings = rules_hit(seed(GRPO, *gkd, "args.num_generations=8"))
    assert "grpo-type" in warnings and "grpo-type" not in errors
    errors, warnings = rules_hit(seed(GRPO, "args.rlhf_type=dpo", "args.reward_funcs=null",
                                      "args.num_generations=null", "args.steps_per_generation=null"))
    assert "grpo-type" in warnings and "grpo-type" not in errors


def test_mtp_layers_beyond_the_checkpoint_are_said_not_refused():
    # mcore-bridge 1.6.3/1.6.5 build mtp_num_layers MTP layers whatever config.json says and randomly initialise the
    # ones the checkpoint lacks (gpt_bridge.py _convert_mtp_layer); ms-swift exports the new count. It builds.
    errors, warnings = rules_hit(seed(SFT, "args.mtp_num_layers=2"))
    assert "mtp-layers" not in errors and "mtp-layers" in warnings
    errors, warnings = rules_hit(seed(SFT, "args.mtp_num_layers=1"))
    assert "mtp-layers" not in errors and "mtp-layers" not in warnings
    # MiniMax-M2's config.json says num_mtp_modules 3, a key mcore-bridge's config_mapping does not read (1.6.3, 1.6.5):
    # its MTP layers come from mtp_num_layers alone, so asking for them is said the same way, not refused.
    shape = resolve_shape("MiniMaxAI/MiniMax-M2")
    assert shape.mtp_num_layers == 0
    minimax = seed(SFT, "args.mtp_num_layers=3")
    minimax.args["model"] = "MiniMaxAI/MiniMax-M2"
    args = Args.bind(minimax, schema_for(minimax.engine, minimax.command))
    errors, warnings = check_layout(minimax, args, shape)
    assert "mtp-layers" not in {e.code for e in errors}
    assert any(w.code == "mtp-layers" and "all of them" in w.message for w in warnings)
