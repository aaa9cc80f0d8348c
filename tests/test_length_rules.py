"""Sequence length against the model's positions (planner/length_rules.py) and the length fields the shape
reads from config.json (planner/model_shape.py), beyond the failed launches in tests/fixtures/issues
(ms-swift#7018, #5146): the other branches, and where the rules stay quiet."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from conftest import FIXTURES, RECIPES
from swift_ext.planner.model_shape import from_config
from swift_ext.planner.shape_lookup import resolve_shape
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

ISSUES = FIXTURES / "issues"
PT = "ms-swift-7018-max-length-past-positions"
GRPO = "ms-swift-5146-vllm-max-model-len-cli-rope"
DENSE = {"hidden_size": 1024, "num_attention_heads": 8, "num_hidden_layers": 2, "intermediate_size": 4096,
         "vocab_size": 1000}


def findings(name: str, *overrides: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    result = make_plan(load_recipe(ISSUES / f"{name}.yaml", list(overrides)), oracle=False)
    by_code = ({}, {})
    for into, found in zip(by_code, (result.errors, result.warnings)):
        for finding in found:
            into.setdefault(finding.code, set()).add(finding.path)
    return by_code


@pytest.mark.parametrize("extra, expected", [
    ({}, 0),
    ({"max_position_embeddings": 32768}, 32768),
    ({"max_position_embeddings": 32768, "seq_length": 8192}, 8192),  # ms-swift and vLLM take the smallest
    ({"max_position_embeddings": 40960, "rope_scaling": {"rope_type": "yarn", "factor": 4.0,
                                                         "original_max_position_embeddings": 32768}}, 131072),
    ({"max_position_embeddings": 131072, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                                                          "original_max_position_embeddings": 8192}}, 131072),
    ({"max_position_embeddings": 128000, "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}}, 128000),
    ({"max_position_embeddings": 262144, "rope_parameters": {"rope_type": "default", "rope_theta": 1e7}}, 262144),
])
def test_max_positions_as_vllm_derives_it(extra, expected):
    assert from_config({**DENSE, **extra}, name="m").max_positions == expected


def test_aliases_carry_their_own_published_length():
    assert resolve_shape("Qwen/Qwen3-8B").max_positions == 40960
    assert resolve_shape("Qwen/Qwen3-8B-Base").max_positions == 32768
    assert resolve_shape("Qwen/Qwen3-30B-A3B-Instruct-2507").max_positions == 262144
    assert resolve_shape("Qwen/Qwen3-30B-A3B-Thinking-2507").max_positions == 0  # not published here: unknown
    assert resolve_shape("Qwen/Qwen2.5-7B").max_positions == 131072
    assert resolve_shape("Qwen/Qwen2.5-7B-Instruct").max_positions == 32768
    dsv3 = resolve_shape("deepseek-ai/DeepSeek-V3")
    assert (dsv3.max_positions, dsv3.rope_scaling) == (163840, "yarn")


def test_training_length_is_quiet_within_positions_or_with_rope_scaling():
    assert "max-positions" not in findings(PT, "args.max_length=32768")[1]
    assert "max-positions" not in findings(PT, "args.rope_scaling=yarn", "args.max_model_len=65536")[1]
    assert "max-positions" not in findings(PT, "args.max_length=null")[1]  # ms-swift fills it from config.json


def test_grpo_counts_the_completion_and_blames_it_when_the_prompt_fits():
    errors, warnings = findings(GRPO, "args.rope_scaling=null", "args.max_model_len=null",
                                "args.vllm_max_model_len=40960", "args.max_length=40000")
    assert warnings["max-positions"] == {"args.max_completion_length"}
    assert "max-positions" not in errors
    _, warnings = findings(GRPO, "args.rope_scaling=null", "args.max_model_len=null",
                           "args.vllm_max_model_len=40960", "args.max_length=50000")
    assert warnings["max-positions"] == {"args.max_length"}


def test_vllm_refusal_is_skipped_by_its_env_override_and_for_server_mode():
    assert findings(GRPO)[0]["max-positions"] == {"args.vllm_max_model_len"}
    assert "max-positions" not in findings(GRPO, "env.VLLM_ALLOW_LONG_MAX_MODEL_LEN=1")[0]
    assert "max-positions" not in findings(GRPO, "args.vllm_mode=server",
                                           "args.vllm_server_host=[127.0.0.1]")[0]


def test_a_directory_named_after_the_model_is_warned_not_refused():
    # /data/models/Qwen3-8B, unreadable here, stands in as the published Qwen3-8B config (40960 positions); Qwen3's
    # model card tells users to add YaRN rope_scaling to that directory's config.json, from which vLLM derives 131072
    errors, warnings = findings(GRPO, "args.model=/data/models/Qwen3-8B")
    assert "max-positions" not in errors and "args.vllm_max_model_len" in warnings["max-positions"]
    # the published id itself is read as published: still refused
    assert findings(GRPO)[0]["max-positions"] == {"args.vllm_max_model_len"}


def test_vllm_engine_kwargs_hf_overrides_set_the_length_vllm_derives():
    # ms-swift 4.6 infer_engine/vllm_engine.py _prepare_engine_kwargs merges vllm_engine_kwargs' hf_overrides into the
    # engine's hf_overrides; vLLM applies them to the config before _get_and_verify_max_len, so a raised
    # max_position_embeddings (NeMo-RL's DAPO recipe: hf_config_overrides max_position_embeddings 16384 on
    # Qwen2.5-Math-7B, 4096 positions) or a rope_scaling there is what vLLM derives from: the plan cannot size
    # it from config.json. An hf_overrides that touches no length key leaves the refusal.
    override = 'args.vllm_engine_kwargs={"hf_overrides": {"max_position_embeddings": 131072}}'
    assert "max-positions" not in findings(GRPO, override)[0]
    rope = ('args.vllm_engine_kwargs={"hf_overrides": {"rope_scaling": {"rope_type": "yarn", "factor": 4.0, '
            '"original_max_position_embeddings": 40960}}}')
    assert "max-positions" not in findings(GRPO, rope)[0]
    other = 'args.vllm_engine_kwargs={"hf_overrides": {"architectures": ["Qwen3ForCausalLM"]}}'
    assert findings(GRPO, other)[0]["max-positions"] == {"args.vllm_max_model_len"}
    assert findings(GRPO, 'args.vllm_engine_kwargs={"max_num_batched_tokens": 8192}')[0]["max-positions"] == {
        "args.vllm_max_model_len"}


def test_recipe_rope_scaling_reaches_vllm():
    # ms-swift 4.6 vllm_engine.py _get_hf_config_overrides: the recipe's YaRN (factor ceil(122880 / 40960) = 3)
    # goes to vLLM as hf_overrides, which derives 40960 x 3 = 122880 (the report's launch, which now starts).
    assert "max-positions" not in findings(GRPO, "args.rope_scaling=yarn")[0]
    assert findings(GRPO, "args.rope_scaling=yarn", "args.vllm_max_model_len=131072")[0]["max-positions"] == {
        "args.vllm_max_model_len"}


def test_rope_scaling_in_config_json_raises_what_vllm_derives(tmp_path):
    config = {"model_type": "qwen3",
              "architectures": ["Qwen3ForCausalLM"], "hidden_size": 4096, "intermediate_size": 12288,
              "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
              "vocab_size": 151936, "max_position_embeddings": 40960,
              "rope_scaling": {"rope_type": "yarn", "factor": 3.0, "original_max_position_embeddings": 40960}}
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    errors, _ = findings(GRPO, f"args.model={tmp_path}", "args.model_type=qwen3")
    assert "max-positions" not in errors


def test_rope_scaling_without_factor_needs_max_model_len():
    assert findings(GRPO, "args.rope_scaling=yarn", "args.max_model_len=null")[0]["rope-scaling-length"] == {
        "args.max_model_len"}
    assert "rope-scaling-length" not in findings(GRPO, "args.max_model_len=null")[0]  # the JSON form has a factor
    assert "rope-scaling-length" not in findings(GRPO, "args.rope_scaling=yarn")[0]
    mrope = """args.rope_scaling='{"rope_type": "default", "mrope_section": [16, 24, 24]}'"""
    assert "rope-scaling-length" not in findings(GRPO, mrope, "args.max_model_len=null")[0]
    assert findings(GRPO, """args.rope_scaling='{"type": "yarn"}'""", "args.max_model_len=null")[0][
        "rope-scaling-length"] == {"args.max_model_len"}


def test_rope_scaling_given_as_a_json_file_is_judged_by_its_content(tmp_path, monkeypatch):
    # json_parse_to_dict (swift/utils/utils.py) loads a path that exists; it was refused as a factor-less string.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rope.json").write_text(json.dumps({"rope_type": "yarn", "factor": 4.0,
                                                    "original_max_position_embeddings": 32768}), encoding="utf-8")
    (tmp_path / "bare.json").write_text(json.dumps({"rope_type": "yarn"}), encoding="utf-8")
    assert "rope-scaling-length" not in findings(GRPO, "args.rope_scaling=rope.json", "args.max_model_len=null")[0]
    assert "rope-scaling-length" not in findings(GRPO, f"args.rope_scaling={tmp_path / 'rope.json'}",
                                                 "args.max_model_len=null")[0]
    # the file's content without a factor asserts as the inline JSON does
    assert findings(GRPO, "args.rope_scaling=bare.json", "args.max_model_len=null")[0]["rope-scaling-length"] == {
        "args.max_model_len"}
    # not here: the training machine's file (relative to the run's working directory), not judged
    assert "rope-scaling-length" not in findings(GRPO, "args.rope_scaling=configs/rope.json",
                                                 "args.max_model_len=null")[0]


def test_swift_colocated_rollout_tp_must_divide_the_heads():
    qwen25 = ("args.model=Qwen/Qwen2.5-7B-Instruct", "args.rope_scaling=null", "args.max_model_len=null",
              "args.vllm_max_model_len=null", "args.max_length=4096")  # 28 heads, 4 KV heads
    assert findings(GRPO, *qwen25, "args.vllm_tensor_parallel_size=8")[0]["grpo-vllm"] == {
        "args.vllm_tensor_parallel_size"}
    assert "grpo-vllm" not in findings(GRPO, *qwen25, "args.vllm_tensor_parallel_size=4")[0]
    assert "grpo-vllm" not in findings(GRPO, "args.vllm_tensor_parallel_size=8")[0]  # Qwen3-8B: 32 heads, 8 KV


def test_swift_rollout_shorter_than_prompt_plus_completion_is_a_warning():
    base = ("args.rope_scaling=null", "args.max_model_len=null", "args.max_length=8192")
    _, warnings = findings(GRPO, *base, "args.vllm_max_model_len=9000")
    assert warnings["rollout-length"] == {"args.vllm_max_model_len"}  # 8192 + 2048 > 9000
    _, warnings = findings(GRPO, *base, "args.vllm_max_model_len=10240")
    assert "rollout-length" not in warnings
    _, warnings = findings(GRPO, "args.rope_scaling=null", "args.max_model_len=null", "args.max_length=null",
                           "args.vllm_max_model_len=9000")
    assert "rollout-length" not in warnings  # max_length unset: ms-swift fills it; prompts are not judged
    # ... but an engine no longer than the completion budget cuts every completion, whatever the prompt
    _, warnings = findings(GRPO, "args.rope_scaling=null", "args.max_model_len=null", "args.max_length=null",
                           "args.max_completion_length=2048", "args.vllm_max_model_len=2048")
    assert warnings["rollout-length"] == {"args.vllm_max_model_len"}


def test_colocated_vllm_share_must_hold_the_weights_and_one_sequence():
    # Qwen3-8B: 8.2e9 bf16 weights = 15.3 GiB; KV 36 layers x 8 heads x 128 x 2 x 2 B = 144 KiB per token.
    base = ("args.rope_scaling=null", "args.max_model_len=null", "args.max_length=4096")
    errors, _ = findings(GRPO, *base, "args.vllm_max_model_len=40960", "args.vllm_gpu_memory_utilization=0.2")
    assert errors["vllm-memory"] == {"args.vllm_gpu_memory_utilization"}  # 16 GiB < 15.3 + 5.6
    errors, _ = findings(GRPO, *base, "args.vllm_max_model_len=8192", "args.vllm_gpu_memory_utilization=0.25")
    assert "vllm-memory" not in errors  # 20 GiB > 15.3 + 1.1
    errors, _ = findings(GRPO, *base, "args.vllm_max_model_len=40960", "args.vllm_gpu_memory_utilization=0.2",
                         "args.vllm_tensor_parallel_size=2")
    assert "vllm-memory" not in errors  # half the weights and KV heads per worker
    errors, _ = findings(GRPO, *base, "args.vllm_max_model_len=40960", "args.vllm_gpu_memory_utilization=0.2",
                         "args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]")
    assert "vllm-memory" not in errors  # an external server sizes itself
    for kwargs in ('{"cpu_offload_gb": 10}', '{"kv_cache_dtype": "fp8"}', '{"quantization": "fp8"}'):
        errors, _ = findings(GRPO, *base, "args.vllm_max_model_len=40960", "args.vllm_gpu_memory_utilization=0.2",
                             f"args.vllm_engine_kwargs='{kwargs}'")
        assert "vllm-memory" not in errors, kwargs  # weights offloaded or stored in fewer bytes: bound not valid


def test_colocated_vllm_share_without_room_for_the_profile_run_is_warned():
    # ms-swift#4594: Qwen3-1.7B (3.2 GiB of bf16 weights, 112 KiB of KV per token, 40960 positions) at 0.1 of an 80 GB
    # A100 = 8 GiB: weights + one 40960-token sequence = 7.6 GiB fit (no vllm-memory error), the profile run and the
    # margin do not.
    name = "ms-swift-4594-grpo-colocate-vllm-utilization-0.1"
    errors, warnings = findings(name)
    assert "vllm-memory" not in errors and warnings["vllm-memory-margin"] == {"args.vllm_gpu_memory_utilization"}
    for fix in ("args.vllm_gpu_memory_utilization=0.12", "args.vllm_max_model_len=3072"):
        errors, warnings = findings(name, fix)  # 9.6 GiB share; or a 3072-token sequence (0.3 GiB of KV)
        assert "vllm-memory" not in errors and "vllm-memory-margin" not in warnings, fix
    errors, warnings = findings(name, "args.vllm_gpu_memory_utilization=0.09")  # 7.2 GiB: the bound itself fails
    assert errors["vllm-memory"] == {"args.vllm_gpu_memory_utilization"} and "vllm-memory-margin" not in warnings
    _, warnings = findings(name, "args.vllm_mode=server", "args.vllm_server_host=[127.0.0.1]")
    assert "vllm-memory-margin" not in warnings  # an external server sizes itself


def test_profile_run_estimate_grows_with_the_batch_and_splits_over_tp():
    from swift_ext.planner.length_rules import rollout_profile_gib

    shape = resolve_shape("Qwen/Qwen3-1.7B")
    # 2048 tokens x (4 x 2048 + 3 x 6144) x 2 B = 0.10 GiB; 8 x 151936 x 4 B x 2 = 9 MiB of logits
    assert 0.10 < rollout_profile_gib(shape, 1, 8) < 0.12
    assert rollout_profile_gib(shape, 1, 256) > rollout_profile_gib(shape, 1, 8) > rollout_profile_gib(shape, 2, 8)


def test_swift_sequence_parallel_past_the_kv_heads_turns_to_ring_attention():
    # ms-swift#7018's pretraining: Qwen3-8B-Base has 8 KV heads, 8 GPUs.
    assert "sequence-parallel-size" not in findings(PT)[0]  # sp 8 = gcd(8, 8): Ulysses only
    errors, _ = findings(PT, "args.sequence_parallel_size=16", "launch.gpus_per_node=16")
    assert "sequence-parallel-size" not in errors  # ring 2, packing on: padding_free
    errors, _ = findings(PT, "args.sequence_parallel_size=16", "launch.gpus_per_node=16", "args.packing=false")
    assert errors["sequence-parallel-size"] == {"args.sequence_parallel_size"}
    errors, _ = findings(PT, "args.sequence_parallel_size=3")
    assert errors["sequence-parallel-size"] == {"args.sequence_parallel_size"}  # 3 does not divide 8 processes
    # Qwen3.6-35B-A3B: 2 KV heads; its Gated DeltaNet refuses the ring even with packing
    errors, _ = findings(PT, "args.model=Qwen/Qwen3.6-35B-A3B", "args.model_type=null", "args.sequence_parallel_size=4",
                         "launch.gpus_per_node=4")
    assert errors["sequence-parallel-size"] == {"args.sequence_parallel_size"}
    errors, _ = findings(PT, "args.model=Qwen/Qwen3.6-35B-A3B", "args.model_type=null", "args.sequence_parallel_size=2",
                         "launch.gpus_per_node=4")
    assert "sequence-parallel-size" not in errors


def test_megatron_grpo_with_a_vllm_server_has_no_colocated_engine_to_size():
    # ms-swift#8017's Megatron GRPO (Qwen3-8B, 15.3 GiB of bf16 weights): a 0.1 share of an H100 cannot hold them
    # colocated; with vllm_mode server the trainer builds no engine (slime's Qwen3-Next GSPO rebuild, 4 + 4 GPUs).
    meg = "ms-swift-8017-megatron-grpo-num-iterations"
    assert findings(meg, "args.vllm_gpu_memory_utilization=0.1")[0]["vllm-memory"] == {"args.vllm_gpu_memory_utilization"}
    errors, _ = findings(meg, "args.vllm_gpu_memory_utilization=0.1", "args.vllm_mode=server",
                         "args.vllm_server_host=[127.0.0.1]", "args.vllm_server_port=[8000]")
    assert "vllm-memory" not in errors


def test_vllm_memory_is_not_judged_when_weights_spread_past_the_tp_group():
    base = ("args.rope_scaling=null", "args.max_model_len=null", "args.max_length=4096",
            "args.vllm_max_model_len=40960", "args.vllm_gpu_memory_utilization=0.2")
    for extra in ("args.vllm_quantization=fp8", "args.vllm_enable_expert_parallel=true"):
        assert "vllm-memory" not in findings(GRPO, *base, extra)[0], extra


def test_vllm_weight_bytes_follow_the_checkpoints_quantization_config():
    # vLLM loads a checkpoint in the format its config.json's quantization_config names: Kimi-K2's releases are
    # block-FP8 with no FP8 in their names (1 byte a weight; 2 refused slime's run-kimi-k2-Instruct.sh, whose 16-GPU
    # engines on 96 GB H20 hold 60 GiB of FP8 weights a GPU), Kimi-K2-Thinking's is INT4 compressed-tensors (not judged).
    from swift_ext.planner.length_rules import rollout_engine_gib

    kimi = resolve_shape("moonshotai/Kimi-K2-Instruct")
    assert kimi.checkpoint_quant == "fp8"
    assert 59 < rollout_engine_gib(kimi, 16, 34816) < 0.7 * 96 < rollout_engine_gib(replace(kimi, checkpoint_quant=""),
                                                                                      16, 34816)
    assert resolve_shape("moonshotai/Kimi-K2-Thinking").checkpoint_quant == "compressed-tensors"
    assert rollout_engine_gib(resolve_shape("moonshotai/Kimi-K2-Thinking"), 16, 34816) is None
    dense = from_config(DENSE, name="local/dense")
    assert dense.checkpoint_quant == "" and rollout_engine_gib(dense, 1, 1) is not None
    for quant, expected in (({"quant_method": "FP8"}, "fp8"), ({"quant_method": "awq"}, "awq"), ({}, "unknown"),
                            ("fp8", "")):
        shape = from_config({**DENSE, "quantization_config": quant}, name="local/dense")
        assert shape.checkpoint_quant == expected, quant
    fp8 = from_config({**DENSE, "quantization_config": {"quant_method": "fp8"}}, name="local/dense")
    assert rollout_engine_gib(fp8, 1, 1) < rollout_engine_gib(dense, 1, 1)
    assert rollout_engine_gib(from_config({**DENSE, "quantization_config": {"quant_method": "awq"}},
                                          name="local/dense"), 1, 1) is None


def test_vllm_lora_rank_must_be_a_rank_vllm_accepts():
    base = ("args.rope_scaling=null", "args.max_model_len=null", "args.max_length=4096", "args.vllm_max_model_len=8192",
            "args.tuner_type=lora", "args.vllm_enable_lora=true")
    assert findings(GRPO, *base, "args.lora_rank=24")[0]["vllm-lora-rank"] == {"args.lora_rank"}
    assert "vllm-lora-rank" not in findings(GRPO, *base, "args.lora_rank=32")[0]
    assert "vllm-lora-rank" not in findings(GRPO, *base, "args.lora_rank=24", "args.vllm_enable_lora=false")[0]


def test_vllm_lora_rank_one_needs_vllm_0_11_1():
    # vllm-project/vllm#26461 added 1 to LoRAConfig's possible_max_ranks; an older target refuses it, a newer one or
    # an unknown vLLM (none here) takes it.
    base = ("args.rope_scaling=null", "args.max_model_len=null", "args.max_length=4096", "args.vllm_max_model_len=8192",
            "args.tuner_type=lora", "args.vllm_enable_lora=true", "args.lora_rank=1")
    errors = findings(GRPO, *base, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.10.2")[0]
    assert errors["vllm-lora-rank"] == {"args.lora_rank"}
    assert "vllm-lora-rank" not in findings(GRPO, *base, "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.11.1")[0]
    assert "vllm-lora-rank" not in findings(GRPO, *base)[0]
    assert "vllm-lora-rank" not in findings(GRPO, *base[:-1], "args.lora_rank=8",
                                            "env.SWIFT_EXT_TARGET_VERSIONS=vllm=0.10.2")[0]


def test_vllm_lora_rank_one_needs_a_vllm_that_takes_it():
    # verl-project/verl#3696: max_lora_rank 1 is refused by vLLM before 0.11.1 (vllm-project/vllm#26461).
    rank_one = "verl-3696-vllm-lora-rank-1"
    assert findings(rank_one)[0]["vllm-lora-rank"] == {"args.lora_rank"}
    for target in ("vllm=0.11.1", "vllm=0.11.1rc1", "vllm=0.12.0", "vllm=0.11.0.dev5", "megatron-core=0.16.1"):
        assert "vllm-lora-rank" not in findings(rank_one, f"env.SWIFT_EXT_TARGET_VERSIONS={target}")[0], target
    assert "vllm-lora-rank" not in findings(rank_one, "args.lora_rank=8")[0]
    assert "vllm-lora-rank" not in findings(rank_one, "args.vllm_enable_lora=false")[0]


def test_alias_config_names_only_real_aliases():
    # A typo in alias_config would silently leave the alias on its entry's length.
    from swift_ext.planner.shape_lookup import PRESETS

    for path in sorted(PRESETS.glob("*.json")):
        for model_id, entry in json.loads(path.read_text(encoding="utf-8"))["models"].items():
            unknown = set(entry.get("alias_config", {})) - set(entry.get("aliases", []))
            assert not unknown, (path.name, model_id, unknown)


@pytest.mark.parametrize("extra, expected", [
    ({"max_position_embeddings": float("inf")}, 0),
    ({"max_position_embeddings": float("nan"), "seq_length": 4096}, 4096),
    ({"max_position_embeddings": 32768, "rope_scaling": {"rope_type": "yarn", "factor": float("inf")}}, 32768),
])
def test_max_positions_ignores_non_finite_config_values(extra, expected):
    # json.loads accepts Infinity/NaN in a config.json; int(inf) raised OverflowError out of the plan
    assert from_config({**DENSE, **extra}, name="m").max_positions == expected


def test_infinite_max_length_is_an_argument_error_not_a_crash():
    # int(float("inf")) raises OverflowError, which BoundArgs._typed did not catch
    errors, _ = findings(PT, "args.max_length=.inf")
    assert "args.max_length" in set().union(*errors.values())



@pytest.mark.parametrize("factor", [".inf", ".nan", "1e308"])
def test_non_finite_recipe_rope_factor_does_not_crash(tmp_path, factor):
    # int(original * factor) raised OverflowError / ValueError out of the plan
    recipe = tmp_path / "r.yaml"
    base = RECIPES / "qwen3_6" / "grpo-lora-8gpu.yaml"
    recipe.write_text(f"extends: {base}\nargs:\n  rope_scaling: {{type: yarn, factor: {factor}}}\n"
                      "  vllm_max_model_len: 300000\n", encoding="utf-8")
    make_plan(load_recipe(recipe, []), oracle=False)


def test_a_config_with_no_kv_heads_is_a_config_error_in_the_head_checks_not_a_pass(tmp_path):
    # num_key_value_heads 0 used to read as "all heads" (`or heads`): gcd(0, sp) == sp and 0 % tp == 0 made both
    # head checks pass. Now it is config.json's own error, on the engine-swift head checks and on Megatron.
    model = tmp_path / "zero-kv"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({**DENSE, "model_type": "qwen3", "num_key_value_heads": 0}))
    with pytest.raises(Exception) as raised:
        from_config(json.loads((model / "config.json").read_text()), name="zero-kv", source=str(model / "config.json"))
    assert "num_key_value_heads" in str(raised.value) and "config.json" in str(raised.value)
    base = (f"args.model={model}", "args.model_type=qwen3", "args.rope_scaling=null", "args.max_model_len=null",
            "args.vllm_max_model_len=null", "args.max_length=4096")
    for extra in (["args.vllm_tensor_parallel_size=2"], ["args.sequence_parallel_size=2"]):
        result = make_plan(load_recipe(ISSUES / f"{GRPO}.yaml", [*base, *extra]), oracle=False)
        said = [e for e in result.errors if "num_key_value_heads" in e.message]
        assert len(said) == 1 and said[0].code == "model-shape" and said[0].file.endswith("config.json"), \
            [e.render() for e in result.errors]
    # not needed (no head check runs): the engine-swift plan stays quiet about it, as for any unread config
    result = make_plan(load_recipe(ISSUES / f"{GRPO}.yaml", [*base, "args.use_vllm=false", "args.vllm_mode=null"]),
                       oracle=False)
    assert not [e for e in result.errors if "num_key_value_heads" in e.message]
    # a missing or null num_key_value_heads is one KV head per attention head, as transformers reads it
    for kv in ({}, {"num_key_value_heads": None}):
        assert from_config({**DENSE, **kv}, name="mha").num_key_value_heads == 8


def test_a_config_the_megatron_estimate_cannot_read_does_not_stop_the_engine_swift_head_checks(tmp_path):
    # THUDM/glm-4-9b-chat's config.json (model_type chatglm) names its FFN ffn_hidden_size: model_shape refuses it
    # ("lacks 'intermediate_size'"), but transformers and engine swift read it fine, and its heads are usable. Only a
    # problem with the head counts themselves is the head checks' error; this one stays quiet, as before.
    model = tmp_path / "chatglm"
    model.mkdir()
    chatglm = {k: v for k, v in DENSE.items() if k != "intermediate_size"}
    (model / "config.json").write_text(json.dumps({**chatglm, "model_type": "chatglm", "ffn_hidden_size": 4096}))
    with pytest.raises(Exception, match="intermediate_size"):
        from_config(json.loads((model / "config.json").read_text()), name="chatglm")
    base = (f"args.model={model}", "args.model_type=qwen3", "args.rope_scaling=null", "args.max_model_len=null",
            "args.vllm_max_model_len=null", "args.max_length=4096")
    for extra in (["args.vllm_tensor_parallel_size=2"], ["args.sequence_parallel_size=2"]):
        result = make_plan(load_recipe(ISSUES / f"{GRPO}.yaml", [*base, *extra]), oracle=False)
        assert not [e for e in result.errors if "config" in e.message or e.code == "model-shape"], \
            [e.render() for e in result.errors]


@pytest.mark.parametrize("extra, expected", [
    ({"sliding_window": 4096}, 4096),  # Mistral-7B-v0.1, Phi-3, Gemma 2/3 checkpoints: no layer_types
    ({"sliding_window": 32768, "use_sliding_window": False}, 0),  # Qwen2/2.5: the layers pass None
    ({"sliding_window": None}, 0),  # Mistral v0.2+
    ({"sliding_window": 128, "layer_types": ["sliding_attention", "full_attention"]}, 128),  # gpt-oss
    ({"sliding_window": 4096, "layer_types": ["full_attention", "full_attention"]}, 0),
])
def test_sliding_window_is_read_where_a_layer_uses_it(extra, expected):
    assert from_config({**DENSE, **extra}, "m").sliding_window == expected


def test_swift_ring_attention_refuses_sliding_window_layers(tmp_path):
    # ms-swift's zigzag ring attention gets transformers' sliding_window int as flash-attn's (left, right) window_size.
    # Mistral-7B-v0.1's config.json: 32 heads, 8 KV heads, a 4096-token window on every layer.
    mistral = {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 4096,
               "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32,
               "num_key_value_heads": 8, "max_position_embeddings": 32768, "rope_theta": 10000.0,
               "sliding_window": 4096, "vocab_size": 32000, "torch_dtype": "bfloat16"}
    (tmp_path / "config.json").write_text(json.dumps(mistral), encoding="utf-8")
    model = (f"args.model={tmp_path}", "args.model_type=mistral", "args.max_length=32768")
    errors, _ = findings(PT, *model, "args.sequence_parallel_size=16", "launch.gpus_per_node=16")
    assert errors["sequence-parallel-size"] == {"args.sequence_parallel_size"}
    errors, _ = findings(PT, *model)  # sp 8 = gcd(8, 8): Ulysses alone, transformers' own flash call slides
    assert "sequence-parallel-size" not in errors
    (tmp_path / "config.json").write_text(json.dumps({**mistral, "sliding_window": None}), encoding="utf-8")
    errors, _ = findings(PT, *model, "args.sequence_parallel_size=16", "launch.gpus_per_node=16")
    assert "sequence-parallel-size" not in errors  # Mistral v0.2+: no window, the ring runs


def test_use_logits_to_keep_is_refused_under_sequence_parallel_only():
    # ms-swift#9765: prepare_logits_to_keep raises NotImplementedError under sequence parallel; unset, ms-swift turns
    # it off there itself, and without sequence parallel it runs
    case = "ms-swift-9765-use-logits-to-keep-sequence-parallel"
    assert findings(case)[0]["sequence-parallel-logits"] == {"args.use_logits_to_keep"}
    assert "sequence-parallel-logits" not in findings(case, "args.use_logits_to_keep=null")[0]
    assert "sequence-parallel-logits" not in findings(case, "args.sequence_parallel_size=1")[0]
    assert "sequence-parallel-logits" not in findings(case, "args.task_type=embedding")[0]
