"""Memory verdict against its measured error band; gradients and Adam state only for trainable parameters."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


from conftest import FIXTURES
from swift_ext.planner import memory_band
from swift_ext.planner.memory import Estimate
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import Recipe, load_recipe

BENCH = Path(__file__).parents[1] / "bench" / "bench_memory_estimate.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_memory_estimate", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stored_band_is_the_band_of_the_bench_points():
    """memory_band.py is what `bench_memory_estimate.py --write-band` writes from the points today."""
    bench = _bench()
    assert bench.band_of(bench.point_errors()) == {"WORST_UNDERESTIMATE": memory_band.WORST_UNDERESTIMATE,
                                                  "WORST_OVERESTIMATE": memory_band.WORST_OVERESTIMATE,
                                                  "POINTS": memory_band.POINTS}


def test_published_error_table_is_the_bench_points_today():
    """docs/memory-points.md is what `bench_memory_estimate.py --write-docs` writes from the points today."""
    bench = _bench()
    assert bench.TABLE_FILE.read_text() == bench.error_table(bench.point_errors()), \
        "rerun python bench/bench_memory_estimate.py --write-docs"


def test_no_point_published_as_running_is_refused():
    """Planned with its stated figure as the card's capacity, no published run is refused for memory."""
    assert _bench().refused_points() == []


def test_verdict_edges_follow_the_band():
    cap = 80.0
    below = cap * (1 + memory_band.WORST_UNDERESTIMATE)
    above = cap * (1 + memory_band.WORST_OVERESTIMATE)
    assert Estimate(below * 0.99, cap, {}, "train").verdict == "fits"
    assert Estimate(below * 1.01, cap, {}, "train").verdict == "tight"
    assert Estimate(above * 0.99, cap, {}, "train").verdict == "tight"
    assert Estimate(above * 1.01, cap, {}, "train").verdict == "does_not_fit"


def _packing_32k(*extra: tuple[str, object], gpu_gib: float = 80) -> Recipe:
    """ms-swift examples/models/qwen3_5/packing.sh (8 x 80 GiB), the run that was refused at 84.7 GiB."""
    args = {"model": "Qwen/Qwen3.6-35B-A3B", "tuner_type": "full", "tensor_model_parallel_size": 4,
            "expert_model_parallel_size": 8, "micro_batch_size": 1, "global_batch_size": 4,
            "recompute_granularity": "full", "recompute_method": "uniform", "recompute_num_layers": 1,
            "packing": True, "max_length": 32768, "sequence_parallel": True, "moe_expert_capacity_factor": 2,
            "mtp_num_layers": 1, "optimizer_cpu_offload": True, "use_precision_aware_optimizer": True,
            "optimizer_offload_fraction": 0.64, "cross_entropy_loss_fusion": True, "dataset": ["x/y"]}
    args.update(dict(extra))
    return Recipe(command="sft", launch={"gpus_per_node": 8, "gpu_memory_gib": gpu_gib}, args=args, source="t.yaml")


def test_published_32k_full_sft_is_tight_not_refused():
    plan = make_plan(_packing_32k())
    assert plan.memory.per_gpu_gib > 80 and plan.memory.verdict == "tight" and plan.ok
    (warning,) = [w for w in plan.warnings if w.code == "memory"]
    assert "error band" in warning.message and f"{memory_band.POINTS} published runs" in warning.message


def _components(*extra):
    return make_plan(_packing_32k(*extra)).memory.components


def test_freeze_llm_drops_the_language_models_gradients_and_optimizer():
    trained = _components()
    frozen = _components(("freeze_llm", True))
    assert trained["gradients"] > 1 and trained["optimizer"] > 1
    # only the (frozen by default) vision tower and aligner remain: nothing trains
    assert frozen["gradients"] == 0 and frozen["optimizer"] == 0
    assert frozen["weights"] == trained["weights"]
    vit = _components(("freeze_llm", True), ("freeze_vit", False))
    assert 0 < vit["gradients"] < trained["gradients"]


def test_freeze_llm_is_ignored_on_a_text_only_model():
    """megatron_args._init_multimodal_full only applies freeze_llm to multimodal models."""
    text = [("model", "Qwen/Qwen3-30B-A3B"), ("tensor_model_parallel_size", 1), ("mtp_num_layers", None)]
    assert _components(*text, ("freeze_llm", True))["gradients"] == _components(*text)["gradients"]


def test_trainable_regex_selects_parameter_groups():
    trained = _components()
    # freeze every expert, as a regex over megatron-core names does (ms-swift has no expert-freeze flag)
    no_experts = _components(("freeze_parameters_regex", r"mlp\.experts\."))
    assert no_experts["gradients"] < trained["gradients"] / 4
    # only the attention of the first two layers trains
    attn = _components(("freeze_llm", True), ("trainable_parameters_regex", r"layers\.[01]\.self_attention"))
    assert 0 < attn["gradients"] < no_experts["gradients"]
    prefix = _components(("freeze_parameters", ["language_model.decoder"]))
    assert 0 < prefix["gradients"] < no_experts["gradients"]  # embedding, output layer and MTP still train


def test_lora_trains_only_adapters_and_freeze_llm_removes_them():
    lora = _components(("tuner_type", "lora"), ("lora_rank", 8), ("target_modules", ["all-linear"]))
    full = _components()
    assert 0 < lora["gradients"] < full["gradients"] / 20
    frozen = _components(("tuner_type", "lora"), ("lora_rank", 8), ("target_modules", ["all-linear"]),
                         ("freeze_llm", True))
    assert frozen["gradients"] == 0


def test_lora_adapters_are_fp32_unless_lora_dtype_says_otherwise():
    """ms-swift leaves PEFT's autocast on while lora_dtype is unset: adapters are fp32 weights (twice their
    bf16 size) that are their own optimizer master; lora_dtype bfloat16 brings back the fp32 master copy.
    Their upcast, dropped-out inputs are saved per adapted layer, visible when every layer keeps its own."""
    lora = (("tuner_type", "lora"), ("lora_rank", 8), ("target_modules", ["all-linear"]),
            ("optimizer_cpu_offload", False), ("use_precision_aware_optimizer", False))
    base = _components(*lora, ("freeze_llm", True))["weights"]  # the same model without language-model adapters
    fp32 = _components(*lora)
    bf16 = _components(*lora, ("lora_dtype", "bfloat16"))
    assert fp32["weights"] - base == pytest.approx(2 * (bf16["weights"] - base)) and bf16["weights"] > base
    assert fp32["optimizer"] == pytest.approx(bf16["optimizer"] * 8 / 12)  # Adam moments only, no master
    selective = ("recompute_granularity", "selective")
    plain = _components(*lora, ("lora_dtype", "bfloat16"), ("lora_dropout", 0.0), selective)["activations"]
    assert _components(*lora, selective)["activations"] > plain


def test_lora_modules_to_save_trains_a_bf16_copy_of_embedding_and_output_layer():
    """PEFT's ModulesToSaveWrapper trains a deep copy of each module next to the frozen original (ms-swift's
    loss_scale.sh / new_special_tokens.sh train word_embeddings and output_layer beside LoRA): 2 bytes more of
    weights, fp32 gradients, and an fp32 master clone + Adam moments sharded over DP, per copied parameter."""
    lora = (("model", "Qwen/Qwen3-30B-A3B"), ("tensor_model_parallel_size", 1), ("mtp_num_layers", None),
            ("tuner_type", "lora"), ("lora_rank", 8), ("target_modules", ["all-linear"]),
            ("optimizer_cpu_offload", False), ("use_precision_aware_optimizer", False))
    plain = _components(*lora)
    saved = _components(*lora, ("modules_to_save", ["word_embeddings", "output_layer"]))
    copies = 2 * 151936 * 2048 / 2**30  # Qwen3-30B-A3B: vocab x hidden, embedding and untied output layer
    assert saved["weights"] - plain["weights"] == pytest.approx(2 * copies, rel=1e-6)
    assert saved["gradients"] - plain["gradients"] == pytest.approx(4 * copies, rel=1e-6)
    assert saved["optimizer"] - plain["optimizer"] == pytest.approx(12 * copies / 8, rel=1e-6)  # EP 8 x DP 8
    only_embedding = _components(*lora, ("modules_to_save", ["all-embedding"]))
    assert only_embedding["gradients"] - plain["gradients"] == pytest.approx(2 * copies, rel=1e-6)


def test_muon_keeps_one_momentum_buffer_and_only_dist_muon_shards_it():
    """megatron-core's Muon: 2-D weights but embedding/output get master + momentum (8 bytes), the rest Adam (12);
    ms-swift turns the distributed optimizer off for Muon (_check_muon), dist_muon shards layer-wise over DP."""
    base = {"model": "Qwen/Qwen2.5-7B-Instruct", "tuner_type": "full", "tensor_model_parallel_size": 2,
            "micro_batch_size": 1, "global_batch_size": 16, "max_length": 2048, "dataset": ["x/y"]}

    def optimizer_gib(gpus, **extra):
        plan = make_plan(Recipe(command="sft", launch={"gpus_per_node": gpus}, args={**base, **extra}, source="m.yaml"))
        return plan, plan.memory.components["optimizer"]

    _, adam = optimizer_gib(2)  # DP 1: Adam's 12 bytes per parameter, unsharded either way
    plan, muon = optimizer_gib(2, optimizer="muon")
    embed_and_head = 2 * 152064 * 3584 / 2 / 2**30  # untied embedding and output layer, TP 2
    params = adam / 12
    assert muon == pytest.approx(8 * (params - embed_and_head) + 12 * embed_and_head, rel=1e-6)
    assert plan.args.bool("use_distributed_optimizer") is False
    _, adam4 = optimizer_gib(4)
    _, muon4 = optimizer_gib(4, optimizer="muon")
    _, dist4 = optimizer_gib(4, optimizer="dist_muon")
    assert adam4 == pytest.approx(adam / 2) and muon4 == pytest.approx(muon) and dist4 == pytest.approx(muon / 2)


def test_te_cross_entropy_keeps_fewer_bytes_per_logit():
    native = _components()["activations"]
    te = _components(("cross_entropy_fusion_impl", "te"))["activations"]
    assert te < native


def test_selective_recompute_of_the_moe_block_keeps_only_its_input():
    """recompute_modules moe checkpoints MoELayer.forward (megatron-core moe_layer.py): the dispatch buffers of
    every layer are no longer kept; "mlp" recomputes dense MLPs only, so it leaves an MoE model's estimate alone."""
    selective = (("recompute_granularity", "selective"), ("recompute_method", None), ("recompute_num_layers", None))
    default = _components(*selective)["activations"]
    moe = _components(*selective, ("recompute_modules", ["core_attn", "moe"]))["activations"]
    dense_mlp = _components(*selective, ("recompute_modules", ["core_attn", "mlp"]))["activations"]
    assert moe < default / 2
    assert dense_mlp == default
    full = _components(("recompute_modules", ["core_attn", "moe"]))["activations"]
    assert full == _components()["activations"]  # full granularity: megatron-core never reads recompute_modules


def _grpo_recipe(**over) -> Recipe:
    args = {"rlhf_type": "grpo", "model": "Qwen/Qwen3-30B-A3B", "tuner_type": "lora", "tensor_model_parallel_size": 2,
            "expert_model_parallel_size": 4, "pipeline_model_parallel_size": 2, "context_parallel_size": 2,
            "sequence_parallel": True, "micro_batch_size": 2, "global_batch_size": 64, "num_generations": 8,
            "steps_per_generation": 2, "reward_funcs": ["accuracy"], "use_vllm": True, "vllm_mode": "colocate",
            "vllm_gpu_memory_utilization": 0.3, "vllm_tensor_parallel_size": 4, "sleep_level": 2,
            "offload_model": True, "offload_optimizer": True, "max_length": 8192, "max_completion_length": 8192,
            "recompute_granularity": "selective", "padding_free": True, "dataset": ["x/y"]}
    args.update(over)
    return Recipe(command="rlhf", launch={"gpus_per_node": 8, "gpu": "H100"}, args=args, source="grpo.yaml")


def test_grpo_worst_case_beyond_memory_warns_with_the_tokens_that_fit():
    """Rollouts are rarely all at their longest: a worst case that does not fit is a warning naming the tokens per
    micro-batch that do, while one longest sequence per micro-batch still fits."""
    plan = make_plan(_grpo_recipe())
    assert plan.memory.verdict == "worst_case_does_not_fit" and plan.ok
    fits = plan.memory.fits_up_to_tokens
    assert 16384 <= fits < plan.memory.tokens_per_micro_batch
    [warning] = [w for w in plan.warnings if w.code == "memory"]
    assert f"up to ~{fits} tokens per micro-batch fit" in warning.message


def test_grpo_refused_when_one_longest_sequence_does_not_fit():
    plan = make_plan(_grpo_recipe(max_length=32768, max_completion_length=32768, micro_batch_size=1,
                                  vllm_max_model_len=65536))
    assert plan.memory.verdict == "does_not_fit" and not plan.ok
    assert any(e.code == "memory" for e in plan.errors)


def test_packed_sft_worst_case_is_the_run_and_stays_refused():
    plan = make_plan(Recipe(command="sft", launch={"gpus_per_node": 2, "gpu": "H100"}, source="sft.yaml", args={
        "model": "Qwen/Qwen3-30B-A3B", "tuner_type": "full", "expert_model_parallel_size": 2, "packing": True,
        "max_length": 65536, "micro_batch_size": 1, "global_batch_size": 8, "dataset": ["x/y"]}))
    assert plan.memory.verdict == "does_not_fit" and not plan.ok


def _dpo_recipe(**extra):
    return Recipe(command="rlhf", launch={"gpus_per_node": 4}, source="dpo.yaml", args={
        "model": "Qwen/Qwen2.5-7B-Instruct", "rlhf_type": "dpo", "tuner_type": "full", "tensor_model_parallel_size": 4,
        "micro_batch_size": 8, "global_batch_size": 16, "max_length": 8192, "recompute_granularity": "full",
        "recompute_method": "uniform", "recompute_num_layers": 1, "sequence_parallel": True, "dataset": ["x/y"],
        **extra})


@pytest.mark.parametrize("rlhf_type", ["dpo", "rm"])
@pytest.mark.parametrize("packing", [False, True])
def test_a_preference_pair_is_two_sequences_in_the_worst_case_micro_batch(rlhf_type, packing):
    """DPO and reward-model samples are a chosen and a rejected sequence in one micro-batch; packed, a pair
    longer than packing_length is not split but gets a pack of its own, as ms-swift's packing does."""
    from swift.dataset.packing import calculate_matched_group

    packs, _ = calculate_matched_group([(0, 12000), (1, 3000), (2, 5000)], 8192, is_finished=True)
    assert [sum(n for _, n in pack) for pack in packs if any(i == 0 for i, _ in pack)] == [12000]
    plan = make_plan(_dpo_recipe(rlhf_type=rlhf_type, micro_batch_size=1, packing=packing))
    assert plan.memory.tokens_per_micro_batch == 2 * 8192


def test_padding_free_dpo_is_sized_from_its_data_tokens():
    """A padding-free DPO micro-batch holds the real tokens of its chosen and rejected sequences: the data's
    largest micro-batch replaces the worst case (2 x micro_batch_size x max_length); packed DPO keeps the worst case."""
    from swift_ext.planner.memory import estimate

    plan = make_plan(_dpo_recipe())
    worst = estimate(plan.shape, plan.args, plan.layout, None, "rlhf")
    assert worst.tokens_per_micro_batch == 2 * 8 * 8192
    data = estimate(plan.shape, plan.args, plan.layout, None, "rlhf", data_tokens=8000)
    assert data.basis == "data max" and data.tokens_per_micro_batch == 8000
    assert data.per_gpu_gib < worst.per_gpu_gib and data.worst_case_gib == worst.per_gpu_gib
    packed = make_plan(_dpo_recipe(packing=True))
    same = estimate(packed.shape, packed.args, packed.layout, None, "rlhf", data_tokens=8000)
    assert same.tokens_per_micro_batch == 2 * 8 * 8192


def test_embedding_rows_are_not_sized_from_their_messages_alone():
    """An embedding row is anchor + positive(s) + negatives, each its own sequence; the data side counts its
    `messages` only, so the estimate keeps the worst case rather than a p99 that leaves the others out."""
    from swift_ext.planner.memory import estimate

    plan = make_plan(Recipe(command="sft", launch={"gpus_per_node": 2}, source="emb.yaml", args={
        "model": "Qwen/Qwen3-8B", "task_type": "embedding", "loss_type": "infonce", "tuner_type": "full",
        "tensor_model_parallel_size": 2, "micro_batch_size": 16, "global_batch_size": 16, "max_length": 8192,
        "dataset": ["x/y"]}))
    mem = estimate(plan.shape, plan.args, plan.layout, None, "sft", data_tokens=2000)
    assert mem.basis != "data max" and mem.tokens_per_micro_batch == 16 * 8192


def _head_plan(command: str = "sft", **args):
    """Qwen2.5-7B (untied vocab head) on 2 x TP, no recompute, so each component adds up layer by layer."""
    base = {"model": "Qwen/Qwen2.5-7B-Instruct", "tuner_type": "full", "tensor_model_parallel_size": 2,
            "micro_batch_size": 1, "global_batch_size": 16, "max_length": 4096, "recompute_granularity": "none",
            "sequence_parallel": True, "cross_entropy_loss_fusion": True, "dataset": ["x/y"]}
    base.update(args)
    return make_plan(Recipe(command=command, launch={"gpus_per_node": 2}, source="head.yaml", args=base))


def _head_delta(plan, other, key):
    from swift_ext.planner.memory import GiB
    return (plan.memory.components[key] - other.memory.components[key]) * GiB


def test_seq_cls_head_is_num_labels_wide_and_keeps_no_vocab_logits():
    """mcore-bridge gpt_model.py builds seq_cls's output layer as OutputLayerLinear(hidden, num_labels), whole on
    every TP rank, and returns [b, s, num_labels] logits whose last tokens the loss reads: no vocab head, no
    vocab cross entropy. num_labels alone makes the task seq_cls (ms-swift get_model_info_meta)."""
    causal = _head_plan()
    seq_cls = _head_plan(task_type="seq_cls", num_labels=265)
    s = causal.shape
    vocab_head, labels_head = s.vocab_size * s.hidden_size / 2, 265 * s.hidden_size
    assert _head_delta(causal, seq_cls, "weights") == pytest.approx(2 * (vocab_head - labels_head))
    assert _head_delta(causal, seq_cls, "gradients") == pytest.approx(4 * (vocab_head - labels_head))
    tokens = 4096
    ce = tokens * s.vocab_size / 2 * 10  # fused cross entropy, 10 bytes per logit
    head = tokens * (4 * s.hidden_size + 6 * 265)  # gathered input + its gradient; logits, transpose, index zeros
    assert _head_delta(causal, seq_cls, "activations") == pytest.approx(ce - head)
    implied = _head_plan(num_labels=265)
    assert implied.memory.components == seq_cls.memory.components


def test_reward_model_is_a_one_label_head_saved_beside_lora():
    """megatron rlhf --rlhf_type rm is seq_cls with num_labels 1 (rlhf_args.py), and ms-swift's get_modules_to_save
    adds output_layer for seq_cls: LoRA trains a bf16 copy of the hidden-wide head, not of a vocab head."""
    lora = {"tuner_type": "lora", "lora_rank": 8, "target_modules": ["all-linear"]}
    rm = _head_plan("rlhf", rlhf_type="rm", **lora)
    causal = _head_plan(**lora)
    s = causal.shape
    # frozen vocab head gone; the 1 x hidden head and its trained copy in its place
    assert _head_delta(causal, rm, "weights") == pytest.approx(2 * (s.vocab_size * s.hidden_size / 2 - 2 * s.hidden_size))
    assert _head_delta(rm, causal, "gradients") == pytest.approx(4 * s.hidden_size)


def test_embedding_has_no_output_layer_and_no_logits():
    """task_type embedding: mcore-bridge sets output_layer None and returns the L2-normalised hidden states."""
    causal = _head_plan()
    emb = _head_plan(task_type="embedding", loss_type="infonce")
    s = causal.shape
    assert _head_delta(causal, emb, "weights") == pytest.approx(2 * s.vocab_size * s.hidden_size / 2)
    tokens = 4096
    ce = tokens * s.vocab_size / 2 * 10
    assert _head_delta(causal, emb, "activations") == pytest.approx(ce - tokens * 6 * s.hidden_size)


def test_generative_reranker_keeps_two_logits_per_token_not_the_vocabulary():
    """generative_reranker keeps the vocab head's weights but never computes vocabulary logits: mcore-bridge 1.6.3 /
    1.6.5 gpt_model.py _forward_generative_reranker multiplies the gathered hidden states by the two "yes"/"no"
    rows of the output weight only. Per token: the gathered input and its gradient (4h) and a few [tokens, 2]
    bf16 tensors (10 bytes), where causal_lm's cross entropy keeps 10 V/TP."""
    for tp in (2, 4):
        tokens = 8 * 4096  # a reranker row is 8 sequences (test_a_reranker_row_is_its_positive_and_negatives...)
        causal = _head_plan(tensor_model_parallel_size=tp, max_length=tokens)
        rerank = _head_plan(tensor_model_parallel_size=tp, task_type="generative_reranker",
                            loss_type="pointwise_reranker")
        v, h = causal.shape.vocab_size, causal.shape.hidden_size
        assert rerank.memory.components["weights"] == causal.memory.components["weights"]
        assert _head_delta(causal, rerank, "activations") == pytest.approx(tokens * (10 * v / tp - 4 * h - 10))


def _fp8_plan(gpus: int = 2, **extra):
    """Qwen2.5-7B full SFT at TP 2 (ms-swift examples/megatron/fp8.sh's model): untied 152064 x 3584 embedding and
    output layer, the rest the decoder layers' linears (and their norms)."""
    args = {"model": "Qwen/Qwen2.5-7B-Instruct", "tuner_type": "full", "tensor_model_parallel_size": 2,
            "micro_batch_size": 1, "global_batch_size": 16, "max_length": 256, "dataset": ["x/y"], **extra}
    return make_plan(Recipe(command="sft", launch={"gpus_per_node": gpus}, args=args, source="fp8.yaml"))


_FP8_EMBED_AND_HEAD = 2 * 152064 * 3584 / 2  # per TP rank


def test_fp8_weights_cost_what_bf16_weights_do_and_bf16_weights_under_fp8_add_a_cached_fp8_copy():
    """FP8 primary weights keep a row-wise and a column-wise copy (2 bytes); bf16 weights under FP8 compute get TE's
    cached FP8 workspace (row-wise + column-wise) on every decoder linear, not on the embedding or output layer."""
    from swift_ext.planner.memory import GiB

    bf16 = _fp8_plan().memory.components["weights"] * GiB
    params = _fp8_plan(fp8_format="e4m3", fp8_recipe="blockwise", fp8_param_gather=True).memory.components["weights"]
    compute = _fp8_plan(fp8_format="e4m3", fp8_recipe="blockwise").memory.components["weights"] * GiB
    assert params * GiB == pytest.approx(bf16)
    assert compute - bf16 == pytest.approx(2 * (bf16 / 2 - _FP8_EMBED_AND_HEAD), rel=1e-6)


def test_fp8_given_in_megatron_extra_kwargs_is_estimated_as_the_model_config_gets_it():
    """get_mcore_model_config updates the config with megatron_extra_kwargs last: its fp8 / fp8_param are what
    get_fp8_context tests, as fp8_format / fp8_param_gather are; a null fp8 there turns fp8_format's FP8 off."""
    bf16 = _fp8_plan().memory.components
    compute = _fp8_plan(fp8_format="e4m3", fp8_recipe="blockwise").memory.components
    params = _fp8_plan(fp8_format="e4m3", fp8_recipe="blockwise", fp8_param_gather=True).memory.components
    assert compute["weights"] > bf16["weights"]  # TE's cached FP8 copy of the bf16 weights
    assert _fp8_plan(fp8_recipe="blockwise", megatron_extra_kwargs={"fp8": "e4m3"}).memory.components == compute
    assert _fp8_plan(fp8_recipe="blockwise", megatron_extra_kwargs={"fp8": "e4m3", "fp8_param": True}
                     ).memory.components == params
    assert _fp8_plan(fp8_format="e4m3", fp8_recipe="blockwise", megatron_extra_kwargs={"fp8_param": True}
                     ).memory.components == params
    assert _fp8_plan(fp8_format="e4m3", megatron_extra_kwargs={"fp8": None}).memory.components == bf16


@pytest.mark.parametrize("gather", [True, False])
def test_precision_aware_master_is_an_fp32_clone_under_a_non_delayed_fp8_recipe(gather):
    """optimizer_config.py: use_precision_aware_optimizer_no_fp8_or_ds_fp8 follows fp8_recipe alone; False, the
    distributed optimizer clones fp32 masters (4 bytes) instead of TE's 2-byte remainders: 2 bytes more per parameter."""
    from swift_ext.planner.memory import GiB

    pa = {"use_precision_aware_optimizer": True, "fp8_format": "e4m3", "fp8_param_gather": gather}
    delayed = _fp8_plan(**pa, fp8_recipe="delayed")
    blockwise = _fp8_plan(**pa, fp8_recipe="blockwise")
    params = _fp8_plan().memory.components["weights"] * GiB / 2  # DP 1: the whole rank's parameters, bf16
    gap = (blockwise.memory.components["optimizer"] - delayed.memory.components["optimizer"]) * GiB
    assert gap == pytest.approx(2 * params, rel=1e-6)
    fp16_master = _fp8_plan(**pa, fp8_recipe="blockwise", main_params_dtype="fp16")
    assert fp16_master.memory.components["optimizer"] == pytest.approx(delayed.memory.components["optimizer"])


def test_fp8_weights_requantized_at_the_step_hold_a_bf16_copy_of_the_master_shard():
    """TE cast_master_weights_to_fp8 keeps `master_weight.to(bf16)` of every FP8 shard until the last cast; with
    short sequences that, not the activations, is the peak above the states. Skipped when the Adam kernel casts
    (precision-aware, delayed recipe)."""
    from swift_ext.planner.memory import GiB

    fp8 = {"fp8_format": "e4m3", "fp8_recipe": "blockwise", "fp8_param_gather": True}
    bf16 = _fp8_plan()
    linears = bf16.memory.components["weights"] * GiB / 2 - _FP8_EMBED_AND_HEAD
    assert _fp8_plan(**fp8).memory.components["activations"] * GiB == pytest.approx(2 * linears, rel=1e-6)
    assert _fp8_plan(4, **fp8).memory.components["activations"] * GiB == pytest.approx(linears, rel=1e-6)  # DP 2
    kernel = _fp8_plan(**{**fp8, "fp8_recipe": "delayed"}, use_precision_aware_optimizer=True)
    assert kernel.memory.components["activations"] == pytest.approx(bf16.memory.components["activations"])


def test_a_registered_reward_model_is_a_one_label_seq_cls_head():
    """ms-swift's get_model_info_meta: a ModelMeta with is_reward (every RMModelType) and no task_type given sets
    num_labels 1, whatever num_labels says, hence task_type seq_cls; the estimate reads is_reward from the registry."""
    from swift_ext.msswift.model_table import model_meta

    assert model_meta("Qwen/Qwen2.5-7B-Instruct", "qwen2_reward")["reward"]
    assert not model_meta("Qwen/Qwen2.5-7B-Instruct")["reward"]
    one_label = _head_plan(task_type="seq_cls", num_labels=1)
    for extra in ({}, {"num_labels": 5}):
        reward = _head_plan(model_type="qwen2_reward", **extra)
        assert reward.memory.components == one_label.memory.components, extra
    # an explicit task_type is taken as given (ms-swift skips the registry's defaults)
    assert _head_plan(model_type="qwen2_reward", task_type="seq_cls", num_labels=5).memory.components == \
        _head_plan(task_type="seq_cls", num_labels=5).memory.components


def _alltoall_framework(ep: int, nodes: int, etp: int = 1, gpus_per_node: int | str = 8) -> float:
    from swift_ext.planner.layout import layout_of
    from swift_ext.planner.memory import _nccl_gib
    from swift_ext.planner.shape_lookup import resolve_shape
    from swift_ext.spec.recipe import load_recipe

    path = Path(__file__).parent / "fixtures" / "working" / "megatron-bridge-qwen3-next-80b-a3b-h100-ep128-alltoall-128gpu.yaml"
    args = make_plan(load_recipe(path, [f"args.expert_model_parallel_size={ep}",
                                        f"args.expert_tensor_parallel_size={etp}"]), oracle=False).args
    shape = resolve_shape("Qwen/Qwen3-Next-80B-A3B-Instruct")
    return _nccl_gib(shape, args, layout_of(args, nodes * 8, gpus_per_node))


def test_all_to_all_buffers_cost_nvlink_peers_fully_and_network_peers_by_their_channels():
    """The per-peer all-to-all figure is an intra-node measurement (32 P2P channels a peer, NVIDIA/nccl#1685); a
    peer on another node gets 2 channels (NVIDIA/nccl#1424). EP=8 on one node is unchanged; EP=128 over 16 nodes
    (Megatron-Bridge's QWEN3_NEXT_80B_A3B_PRETRAIN_CONFIG_H100_BF16_V1) no longer counts 127 NVLink peers."""
    from swift_ext.planner.memory import ALL_TO_ALL_GIB_PER_PEER as PEER, FRAMEWORK_GIB as BASE

    assert _alltoall_framework(8, 1) == pytest.approx(BASE + 7 * PEER)
    assert _alltoall_framework(16, 2) == pytest.approx(BASE + (7 + 8 * 2 / 32) * PEER)
    assert _alltoall_framework(128, 16) == pytest.approx(BASE + (7 + 120 * 2 / 32) * PEER)
    # with ETP=2 an EP group's members sit two ranks apart: four of them on a node
    assert _alltoall_framework(16, 4, etp=2) == pytest.approx(BASE + (3 + 12 * 2 / 32) * PEER)
    # a node size left to the scheduler: every peer counted as NVLink, the old (larger) figure
    assert _alltoall_framework(16, 2, gpus_per_node="scheduler") == pytest.approx(BASE + 15 * PEER)


def test_a_reranker_row_is_its_positive_and_negatives_in_one_micro_batch():
    """template/base.py _reranker_data_collator: a training row becomes up to MAX_POSITIVE_SAMPLES (1) x (1 +
    MAX_NEGATIVE_SAMPLES (7)) sequences of one micro-batch; the worst case sizes 8 max_length sequences per row, and
    the recipe's env changes the count as it changes ms-swift's."""
    def plan(env=None):
        args = {"model": "Qwen/Qwen2.5-7B-Instruct", "tuner_type": "full", "tensor_model_parallel_size": 2,
                "micro_batch_size": 1, "global_batch_size": 16, "max_length": 1024, "task_type": "generative_reranker",
                "loss_type": "pointwise_reranker", "dataset": ["x/y"]}
        return make_plan(Recipe(command="sft", launch={"gpus_per_node": 2}, env=env or {}, source="rr.yaml", args=args))

    assert plan().memory.tokens_per_micro_batch == 8 * 1024
    assert plan({"MAX_NEGATIVE_SAMPLES": "3"}).memory.tokens_per_micro_batch == 4 * 1024
    assert plan({"MAX_NEGATIVE_SAMPLES": "3", "MAX_POSITIVE_SAMPLES": "2"}).memory.tokens_per_micro_batch == 8 * 1024
    assert plan({"MAX_NEGATIVE_SAMPLES": "many"}).memory.tokens_per_micro_batch == 8 * 1024  # ms-swift's int() fails


def test_padded_unpacked_sft_worst_case_is_a_bound_not_a_refusal():
    """Without packing a micro-batch is padded to its longest sample (get_padding_to rounds to a small multiple only),
    so padding_free false is as variable as padding_free true: a worst case beyond the card is a warning naming the
    tokens that fit, while one max_length sequence per micro-batch fits; packed, it stays refused."""
    def plan(**over):
        args = {"model": "Qwen/Qwen3-8B", "tuner_type": "full", "tensor_model_parallel_size": 2, "micro_batch_size": 16,
                "global_batch_size": 16, "max_length": 8192, "padding_free": False, "recompute_granularity": "full",
                "recompute_method": "uniform", "recompute_num_layers": 1, "dataset": ["x/y"], **over}
        return make_plan(Recipe(command="sft", launch={"gpus_per_node": 2, "gpu": "H100"}, source="pad.yaml", args=args))

    padded = plan()
    assert padded.memory.verdict == "worst_case_does_not_fit" and padded.ok
    assert 8192 <= padded.memory.fits_up_to_tokens < padded.memory.tokens_per_micro_batch
    packed = plan(packing=True, padding_free=True, micro_batch_size=1, max_length=16 * 8192)
    assert packed.memory.verdict == "does_not_fit" and not packed.ok


def test_a_huge_reranker_negative_cap_is_a_warning_not_an_absurd_refusal():
    """MAX_NEGATIVE_SAMPLES caps the documents a row takes; a row with fewer takes fewer, so a huge cap makes the
    worst case huge but the run is refused only if one max_length sequence per micro-batch does not fit."""
    args = {"model": "Qwen/Qwen2.5-7B-Instruct", "tuner_type": "full", "tensor_model_parallel_size": 2,
            "micro_batch_size": 1, "global_batch_size": 16, "max_length": 1024, "task_type": "generative_reranker",
            "loss_type": "pointwise_reranker", "dataset": ["x/y"]}
    plan = make_plan(Recipe(command="sft", launch={"gpus_per_node": 2, "gpu": "H100"}, source="rr.yaml", args=args,
                            env={"MAX_NEGATIVE_SAMPLES": "99999999"}))
    assert plan.memory.verdict == "worst_case_does_not_fit" and plan.ok


def test_grpo_pipeline_worst_case_is_one_longest_micro_batch_among_shorter_ones():
    """verl's run_deepseek671b_math_megatron.sh ("512 H20(96GB)"): PP=16 without recompute keeps 16 micro-batches in
    flight on the first stage. All 16 at 6144 tokens would not fit; one at its longest beside shorter rollouts does
    (gsm8k's are a few hundred tokens), so the run is planned with a warning. One micro-batch at its longest that does
    not fit even alone stays refused."""
    path = FIXTURES / "working" / "verl-example-deepseek-v3-0324-megatron-h20-512gpu-pp16-ep32.yaml"
    plan = make_plan(load_recipe(path), oracle=False)
    assert plan.ok and plan.memory.verdict == "worst_case_does_not_fit" and plan.memory.in_flight == 16
    assert 0 < plan.memory.fits_up_to_tokens < plan.memory.tokens_per_micro_batch
    [warning] = [w for w in plan.warnings if w.code == "memory"]
    assert "with all 16 micro-batches the first pipeline stage holds in flight" in warning.message
    longer = make_plan(load_recipe(path, ["args.max_completion_length=60000", "args.vllm_max_model_len=62048"]),
                       oracle=False)
    assert not longer.ok and longer.memory.verdict == "does_not_fit"
    assert [e.code for e in longer.errors] == ["memory"]


def test_settings_given_in_megatron_extra_kwargs_are_estimated_as_the_config_gets_them():
    """get_mcore_model_config updates the config with megatron_extra_kwargs last: recompute, sequence parallel,
    the fused cross entropy and the dispatcher given there are what megatron-core runs, so the estimate reads them
    through the same reader as the config rules (mcore_config), not from the arguments alone."""
    selective = (("recompute_granularity", "selective"), ("recompute_method", None), ("recompute_num_layers", None))
    as_args = _components()["activations"]  # full uniform 1 as arguments
    as_extra = _components(*selective, ("megatron_extra_kwargs", {"recompute_granularity": "full",
                                                                  "recompute_method": "uniform",
                                                                  "recompute_num_layers": 1}))["activations"]
    assert as_extra == as_args and _components(*selective)["activations"] > as_args
    assert _components(("megatron_extra_kwargs", {"sequence_parallel": False}))["activations"] > as_args
    assert _components(("megatron_extra_kwargs", {"cross_entropy_fusion_impl": "te"}))["activations"] == \
        _components(("cross_entropy_fusion_impl", "te"))["activations"]


def test_the_rollout_phase_frees_the_gradient_buffer_with_the_model_not_the_optimizer():
    """ms-swift 4.6 offload_megatron_model_to_cpu (offload_model) frees the DDP grad_data with the param_data;
    offload_megatron_optimizer (offload_optimizer) moves only the fp32 master shards and Adam moments."""
    def rollout(**over):
        plan = make_plan(_grpo_recipe(tuner_type="full", model="Qwen/Qwen2.5-7B-Instruct", expert_model_parallel_size=1,
                                      context_parallel_size=1, pipeline_model_parallel_size=1, micro_batch_size=1,
                                      max_length=1024, max_completion_length=1024, vllm_gpu_memory_utilization=0.7,
                                      **over))
        assert plan.memory.phase == "rollout", plan.memory.phase
        return plan.memory.components
    only_optimizer = rollout(offload_model=False, offload_optimizer=True)
    only_model = rollout(offload_model=True, offload_optimizer=False)
    assert only_optimizer["gradients"] > 0 and only_optimizer["optimizer"] == 0
    assert only_model["gradients"] == 0 and only_model["weights"] == 0 and only_model["optimizer"] > 0


def test_an_unpacked_sft_whose_longest_sample_is_unmeasured_is_said_not_refused():
    """Without packing a micro-batch is as long as its samples; with hub data the longest sample is not measured here,
    so a max_length sample that would not fit is said (on the first lever), not refused: Baseten's Qwen3.6-35B-A3B
    LoRA at max_length 131072 trained LongAlign-10k (8K-64K-token samples) on 8 H200s. Packed, every micro-batch is
    max_length long, and GRPO's rollouts reach max_completion_length whatever the data: both stay refused."""
    path = FIXTURES / "working" / "baseten-cookbook-megatron-qwen36-35b-a3b-lora-ep8-128k-h200.yaml"
    plan = make_plan(load_recipe(path), oracle=False)
    assert plan.ok and plan.memory.verdict == "worst_case_does_not_fit"
    [warning] = [w for w in plan.warnings if w.code == "memory"]
    assert "the data's longest sample decides" in warning.message and warning.path == "args.max_length"
    packed = make_plan(load_recipe(path, ["args.packing=true", "args.padding_free=true"]), oracle=False)
    assert not packed.ok and "memory" in [e.code for e in packed.errors]
    assert not make_plan(_grpo_recipe(max_length=32768, max_completion_length=32768, micro_batch_size=1,
                                      vllm_max_model_len=65536)).ok
