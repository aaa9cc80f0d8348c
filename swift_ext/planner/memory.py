"""Per-GPU memory estimate for a Megatron recipe, by component. Pure arithmetic, no torch.

Model: the worst pipeline stage's share of
- weights: bf16, or FP8 row-wise + column-wise copies, 2 bytes too, plus TE's cached FP8 copy of bf16 weights
  under FP8 compute (memory_fp8.py); dense part sharded by TP, experts by EP*ETP, layers by
  PP; embedding/output on the first/last stage (the output head by task type, memory_head.py; an
  embedding on an MTP last stage); the vision tower replicated on the first stage;
- gradients of trainable parameters in an fp32 grad buffer (ms-swift turns
  accumulate_allreduce_grads_in_fp32 on while main_grads_dtype is fp32) and Adam state (fp32 master +
  2 moments = 12 bytes; 10 with the precision-aware optimizer's param remainders), sharded over the
  data-parallel group by the distributed optimizer (experts over expert-DP), moved to the host by
  optimizer_cpu_offload * optimizer_offload_fraction; LoRA adapters (fp32 unless lora_dtype says otherwise)
  add their own weights, no master copy when fp32, and their dropout/upcast input copies per adapted layer;
- activations: tokens per micro-batch (max_length * micro_batch_size / CP, or the largest micro-batch of the
  recipe's data), layer-boundary checkpoints under full recompute (times the micro-batches 1F1B keeps
  in flight on the first stage), then the larger of one recomputed layer's working set (MoE dispatch
  buffers: top-k copies of every token, times an imbalance or capacity factor; Gated DeltaNet chunk
  states) and the last stage's head: logits and cross entropy (10 bytes per logit fused, 6 unfused, measured
  by bench/measure_cross_entropy_bytes.py, + 4 per MTP layer; other heads per memory_head.py), or the
  embedding's dense gradient;
  without full recompute every layer's saved tensors, but selective recompute of the MoE / dense MLP block
  ("moe" / "mlp" in recompute_modules) keeps only that block's input, plus one block's working set;
- a framework share (CUDA context, NCCL communicators, all-to-all peer buffers for EP) plus allocator
  fragmentation;
- colocated GRPO: vLLM's `vllm_gpu_memory_utilization` share while it generates; what sleep_level,
  offload_model and offload_optimizer release decides which phase is the peak.
Constants are explained where they are used; `make bench` reports the error against published runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swift_ext.planner import memory_band, memory_fp8, memory_lora
from swift_ext.planner.layout import Args, Layout
from swift_ext.planner.mcore_config import (config_value, dispatcher_of, granularity_of, is_on, layer_count,
                                             selective_recompute_modules)
from swift_ext.planner.memory_head import head_bytes_per_token, head_params
from swift_ext.planner.memory_trainable import is_multimodal, parameter_groups, trainable_names
from swift_ext.planner.model_shape import ModelShape

GiB = 1024**3
# Three constants no code states, calibrated within the ranges public measurements allow by
# `python bench/fit_memory_constants.py` on the published points (bench/memory_points.yaml); it prints
# the choice and its leave-one-out error. Each range: (low, high, grid step, evidence).
CALIBRATION_RANGES = {
    "FRAMEWORK_GIB": (2.0, 4.5, 0.5, "CUDA context ~0.6 GB; NCCL 0.54-0.69 GB per communicator on 4 x A100 "
                      "NVLink (NVIDIA/nccl#964) and ~1.6 GB for one, ~6 GB for three or more on allreduce "
                      "(NVIDIA/nccl#864); Megatron opens TP, DP, EP, expert-DP and model-parallel groups"),
    "ALL_TO_ALL_GIB_PER_PEER": (0.45, 1.05, 0.15, "NCCL's all-to-all opens send/recv channels to every EP "
                                "peer: 3.3 GB on 8 x H100 = 0.44 GiB per peer (NVIDIA/nccl#1685); memory "
                                "grows linearly with channels (NVIDIA/nccl#986)"),
    "FRAGMENTATION": (0.05, 0.15, 0.025, "caching-allocator slack: a few percent with expandable_segments, "
                      "more with the variable shapes of dropless MoE routing"),
}
# Chosen by bench/fit_memory_constants.py on 68 points (2.5, 0.75, 0.15): in-sample worst underestimate -9.6%
# over the points whose figure is a reading, leave-one-out -11.4%; see docs/memory-points.md.
FRAMEWORK_GIB = 2.5  # CUDA context + NCCL collective communicators + TE/cuBLAS workspaces
# NCCL's all-to-all (MoE alltoall dispatcher, torch all_to_all_single) opens send/recv channels to every
# peer of the EP group.
ALL_TO_ALL_GIB_PER_PEER = 0.75
# Channels NCCL's send/recv opens to one peer: 32 over NVLink P2P in an 8 x H100 all-to-all (NVIDIA/nccl#1685,
# "as many as 32 channels are created, per pair of GPUs"), NCCL_NCHANNELS_PER_NET_PEER (typically 2,
# NVIDIA/nccl#1424) to a peer across the network.
P2P_CHANNELS_PER_PEER = 32
NET_CHANNELS_PER_PEER = 2
FRAGMENTATION = 0.15  # caching-allocator slack over live memory
MOE_IMBALANCE = 1.25  # dropless routing: the busiest EP rank receives ~25% more than average early in training
CE_BYTES_FUSED, CE_BYTES_UNFUSED, CE_BYTES_TE = 10, 6, 2  # peak bytes per logit, see _stage
_DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}


@dataclass(frozen=True)
class Estimate:
    per_gpu_gib: float
    capacity_gib: float | None
    components: dict[str, float]
    phase: str  # "train" or "rollout" (colocated GRPO): which phase sets the peak
    notes: list[str] = field(default_factory=list)
    # What the activations were sized for: "worst case" (every micro-batch micro_batch_size x max_length
    # tokens) or "data max" (tokens in the largest micro-batch of the recipe's own data, padding_free/packing).
    basis: str = "worst case"
    tokens_per_micro_batch: int | None = None
    worst_case_gib: float | None = None  # the worst-case estimate, shown beside a data-based one
    # Variable-length micro-batches (variable_length_batches) whose worst case does not fit but whose
    # one-longest-sequence micro-batch does: the most tokens per micro-batch that fit (set by the plan).
    fits_up_to_tokens: int | None = None
    # Micro-batches in flight on the first pipeline stage at fits_up_to_tokens each (1 without a pipeline).
    in_flight: int = 1

    @property
    def verdict(self) -> str | None:
        """Judged against the estimate's own error band, measured on published runs (memory_band.py):
        "does_not_fit" only when even the largest overestimate seen would not bring the run under the
        capacity, "fits" when even the largest underestimate seen would stay under it, "tight" between."""
        if self.capacity_gib is None:
            return None
        if self.per_gpu_gib > self.capacity_gib * (1 + memory_band.WORST_OVERESTIMATE):
            return "worst_case_does_not_fit" if self.fits_up_to_tokens else "does_not_fit"
        if self.per_gpu_gib > self.capacity_gib * (1 + memory_band.WORST_UNDERESTIMATE):
            return "tight"
        return "fits"

    def verdict_message(self) -> str:
        """One line for the plan's error or warning: the estimate, the capacity and the band behind the verdict."""
        band = (f"the estimate's error on {memory_band.POINTS} published runs spans "
                f"{memory_band.WORST_UNDERESTIMATE:+.0%} to {memory_band.WORST_OVERESTIMATE:+.0%}")
        if self.verdict == "does_not_fit":
            return (f"estimated {self.per_gpu_gib:.1f} GiB per GPU does not fit in {self.capacity_gib:g} GiB even "
                    f"at the largest overestimate seen ({band})")
        if self.verdict == "worst_case_does_not_fit":
            return (f"the worst case ({self.tokens_per_micro_batch} tokens per micro-batch, every sample at its "
                    f"longest) needs an estimated {self.per_gpu_gib:.1f} GiB per GPU, beyond {self.capacity_gib:g} GiB "
                    f"even at the largest overestimate seen ({band}); up to ~{self.fits_up_to_tokens} tokens per "
                    + ("micro-batch fit: a micro-batch of longer samples will run out of memory" if self.in_flight == 1
                       else f"micro-batch fit with all {self.in_flight} micro-batches the first pipeline stage holds "
                            "in flight that long, and one micro-batch at its longest fits beside shorter ones: a run "
                            "of long samples one after another will run out of memory"))
        return (f"estimated {self.per_gpu_gib:.1f} GiB per GPU of {self.capacity_gib:g} GiB is within the "
                f"estimate's error band of the limit ({band}): it may not fit")

    def as_dict(self) -> dict:
        return {
            "per_gpu_gib": round(self.per_gpu_gib, 2),
            "capacity_gib": self.capacity_gib,
            "verdict": self.verdict,
            "phase": self.phase,
            "components": {k: round(v, 2) for k, v in self.components.items()},
            "basis": self.basis,
            "tokens_per_micro_batch": self.tokens_per_micro_batch,
            "worst_case_gib": round(self.worst_case_gib, 2) if self.worst_case_gib is not None else None,
            "fits_up_to_tokens": self.fits_up_to_tokens,
        }


def estimate(shape: ModelShape, args: Args, lay: Layout, capacity_gib: float | None, command: str,
             data_tokens: int | None = None) -> Estimate:
    """The peak over pipeline stages (first: embedding, vision, most micro-batches in flight; last: output
    layer, logits, MTP), then the colocated-vLLM phases for GRPO.

    data_tokens: tokens in the largest micro-batch of the recipe's own data (swift_ext.datasets.stats). Used for
    padding_free / packing SFT, where a micro-batch holds only the real tokens of its samples; the
    worst case (micro_batch_size x max_length) is computed beside it. Also padding_free DPO (not packed), whose
    data tokens count both sequences of each sample (swift_ext.datasets.packing: chosen and rejected)."""
    if data_tokens is not None and _sized_by_data(args, command):
        worst = estimate(shape, args, lay, capacity_gib, command)
        worst_tokens = _worst_case_tokens(args, command)
        if data_tokens < worst_tokens:
            from dataclasses import replace

            data = _estimate(shape, args, lay, capacity_gib, command, data_tokens)
            note = (f"activations sized for the largest micro-batch of your data ({data_tokens} tokens); the worst case "
                    f"({worst_tokens} tokens) needs {worst.per_gpu_gib:.1f} GiB")
            return replace(data, basis="data max", tokens_per_micro_batch=data_tokens,
                           worst_case_gib=worst.per_gpu_gib, notes=data.notes + [note])
    return _estimate(shape, args, lay, capacity_gib, command, None)


def _estimate(shape: ModelShape, args: Args, lay: Layout, capacity_gib: float | None, command: str,
              data_tokens: int | None, in_flight_cap: int | None = None) -> Estimate:
    notes: list[str] = []
    components = max((_stage(shape, args, lay, first, last, command, data_tokens, in_flight_cap)
                      for first, last in pipeline_stages(lay)), key=lambda c: sum(c.values()))
    if args.bool("optimizer_cpu_offload"):
        frac = args.float("optimizer_offload_fraction")
        notes.append(f"optimizer_cpu_offload keeps {1 - frac:.0%} of the optimizer state on the GPU")
    phase = "train"
    if command == "rlhf" and args.str("vllm_mode") == "colocate" and capacity_gib:
        components, phase = _colocated_vllm(components, args, capacity_gib, notes, _nccl_gib(shape, args, lay))
    tokens = data_tokens or _worst_case_tokens(args, command)
    return Estimate(sum(components.values()), capacity_gib, components, phase, notes,
                    tokens_per_micro_batch=tokens)


# Tasks whose row is several sequences in one micro-batch (anchor, positives, negatives; query and documents:
# ms-swift template/base.py `_embedding_encode`, `_reranker_encode`).
MULTI_SEQUENCE_TASKS = ("embedding", "reranker", "generative_reranker")


def _sized_by_data(args: Args, command: str) -> bool:
    """Whether a micro-batch holds only the real tokens of its data (padding_free / packing), counted the way
    the data side counts them: SFT, and DPO without packing (a sample's chosen and rejected sequences)."""
    if command == "rlhf":
        return args.str("rlhf_type") == "dpo" and args.bool("padding_free") and not args.bool("packing")
    if args.str("task_type") in MULTI_SEQUENCE_TASKS:
        return False  # the data side counts a row's `messages` only, not its positives/negatives/documents
    return args.bool("padding_free") or args.bool("packing")


def variable_length_batches(args: Args, command: str) -> bool:
    """Whether a micro-batch is only as long as its samples and is rarely full: every micro-batch that is not
    packed (packing fills each one to max_length). padding_free concatenates the samples' real tokens; without it
    the collator pads to the batch's longest sample, rounded up to a small multiple only (ms-swift 4.6
    megatron/utils/utils.py get_padding_to: TP under SP, CP, 16-128 for FP8, 64 for fused attention; the
    transformers engine's template pads to the longest too), never to max_length. GRPO's micro-batches hold
    rollouts of whatever length the policy wrote. For these the worst case (every sequence at its longest)
    is a bound, not the run."""
    if command == "rlhf" and args.str("rlhf_type") == "grpo":
        return True
    return not args.bool("packing")


def longest_sequence(args: Args, command: str) -> int:
    """Tokens of one sequence at its longest: the worst case of a one-sample micro-batch. A reranker row counts as one
    sequence here: how many of its documents join it (up to the MAX_*_SAMPLES caps) depends on the data."""
    per_row = _worst_case_tokens(args, command) // max(args.micro_batch_size, 1)
    if command in ("sft", "pt") and args.str("task_type") in ("reranker", "generative_reranker"):
        per_row //= reranker_group(args)
    return max(per_row, 1)


def in_flight_micro_batches(args: Args, lay: Layout) -> int:
    """Micro-batches whose activations the first pipeline stage holds at once under 1F1B (see _stage)."""
    return min(lay.pp, max(args.global_batch_size // max(args.micro_batch_size * max(lay.dp, 1), 1), 1))


def longest_fits_among_short(shape: ModelShape, args: Args, lay: Layout, capacity_gib: float, command: str) -> bool:
    """Variable-length micro-batches under a pipeline: whether the run fits with one micro-batch holding a sequence at
    its longest while the other micro-batches the first stage keeps in flight are short (their activations left out).
    The worst case puts every in-flight micro-batch at its longest at once: PP of them on the first stage, a bound that
    GRPO rollouts and padding-free samples of mixed length do not reach (verl's run_deepseek671b_math_megatron.sh, PP=16
    without recompute on 512 H20, trains gsm8k rollouts of a few hundred tokens against a 6144-token bound). A
    micro-batch at its longest that does not fit even alone fails whatever the others hold."""
    one = _estimate(shape, args, lay, capacity_gib, command, longest_sequence(args, command), in_flight_cap=1)
    return one.verdict != "does_not_fit"


def largest_fitting_tokens(shape: ModelShape, args: Args, lay: Layout, capacity_gib: float, command: str) -> int:
    """The most tokens per micro-batch whose estimate the verdict does not refuse (0 if none): bisection on
    the activations' token count, which the estimate grows with monotonically."""
    def refused(tokens: int) -> bool:
        return _estimate(shape, args, lay, capacity_gib, command, tokens).verdict == "does_not_fit"
    lo, hi = 0, _worst_case_tokens(args, command)
    if not refused(hi):
        return hi
    while hi - lo > 64:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if not refused(max(mid, 1)) else (lo, mid)
    return lo


def _worst_case_tokens(args: Args, command: str) -> int:
    seq = args.int("max_length") or 2048
    if command == "rlhf" and args.str("rlhf_type") == "grpo":
        seq += args.max_completion_length  # prompt + completion are trained together
    if command == "rlhf" and args.str("rlhf_type") in ("dpo", "rm"):
        # A DPO or reward-model sample is a chosen and a rejected sequence run in one micro-batch
        # (template/base.py _rlhf_data_collator; megatron/trainers/dpo_trainer.py splits the outputs at
        # num_samples // 2), each truncated to max_length on its own. Packed, a pair counts whole against
        # packing_length (dataset/packing.py create_packed_idx sums the row's `lengths`), and a pair longer
        # than that gets a pack of its own (binpacking.to_constant_volume, and the greedy path alike): the
        # worst case is one pair of two max_length sequences either way.
        seq *= 2
    if command in ("sft", "pt") and args.str("task_type") in ("reranker", "generative_reranker"):
        seq *= reranker_group(args)
    return seq * args.micro_batch_size


def reranker_group(args: Args) -> int:
    """Sequences one reranker row becomes in a training micro-batch: ms-swift 4.6 template/base.py
    `_reranker_data_collator` takes up to MAX_POSITIVE_SAMPLES positives (default 1) and, after each, up to
    MAX_NEGATIVE_SAMPLES negatives (default 7), each its own sequence (query + document). Environment
    variables, read from the recipe's env."""
    def count(name: str, default: int) -> int:
        try:
            return max(int(args.env.get(name, default)), 0)
        except (TypeError, ValueError):
            return default  # ms-swift's int() fails at the first batch (rule reranker-samples); the default here
    positives, negatives = count("MAX_POSITIVE_SAMPLES", 1), count("MAX_NEGATIVE_SAMPLES", 7)
    return max(positives * (1 + negatives), 1)


def _stage(shape: ModelShape, args: Args, lay: Layout, first: bool, last: bool, command: str,
           data_tokens: int | None = None, in_flight_cap: int | None = None) -> dict[str, float]:
    tp, pp, cp, ep, etp = lay.tp, lay.pp, lay.cp, lay.ep, lay.etp
    dp = max(lay.dp, 1)
    expert_dp = max(lay.world // (pp * ep * etp), 1)
    h = shape.hidden_size

    # ---- parameters of this stage ----------------------------------------------------------------
    layers = _layers_on_stage(shape, args, pp, first, last)
    full_frac = shape.num_full_attention_layers / shape.num_layers
    attn = full_frac * shape.full_attention_params() + (1 - full_frac) * shape.linear_attention_params()
    dense_layer = (attn + shape.dense_mlp_params_per_layer()) / tp
    expert_layer = shape.expert_params_per_layer() / (ep * etp)
    mtp = (args.int("mtp_num_layers") or 0) if last else 0
    # The MTP stage holds an embedding too (megatron/core/models/gpt/gpt_model.py builds one when
    # `pre_process or mtp_process`), tied to the first stage's through the embedding group.
    embed = shape.vocab_size * h / tp if first or (mtp and pp > 1) else 0
    head = head_params(shape, args, command, tp, pp) if last else 0  # by task type: memory_head.py
    vision = shape.vision_params() if first and shape.vision and not args.bool("language_model_only") else 0
    mtp_dense = mtp * (shape.full_attention_params() + shape.dense_mlp_params_per_layer() + 2 * h * h) / tp
    dense_params = layers * dense_layer + mtp_dense + embed + head
    expert_params = (layers + mtp) * expert_layer
    # FP8 primary weights (fp8_param_gather) are 2 bytes, a row-wise and a column-wise copy, as bf16 ones are;
    # bf16 weights under FP8 compute get a cached FP8 copy besides (memory_fp8.py).
    fp8_layer_params = layers * dense_layer + mtp_dense + expert_params  # the linears of FP8 layers
    weights = (dense_params + expert_params + vision) * 2 + fp8_layer_params * memory_fp8.weight_cache_bytes(args)
    full_ft = (args.str("tuner_type") or "full") == "full"
    if command == "rlhf" and full_ft and args.str("rlhf_type") in ("dpo", "kto", "grpo"):
        # Full-parameter DPO/KTO/GRPO build a frozen reference model with the same layout
        # (megatron/trainers/rlhf_mixin.py prepare_model: tuner_type full and rlhf_type not rm/gkd); LoRA
        # runs use the base weights with the adapters disabled instead.
        weights += (dense_params + expert_params + vision) * 2 \
            + fp8_layer_params * memory_fp8.weight_cache_bytes(args, trains=False)

    # ---- trainable parameters: gradients and optimizer ---------------------------------------------
    embed_trains = False
    saved_copies = 0.0  # LoRA's modules_to_save: whole modules trained beside the adapters
    step_cast = 0.0  # bytes the optimizer step holds to re-quantize FP8 weights (LoRA trains none of them)
    if full_ft:
        groups = parameter_groups(shape, mtp, is_multimodal(shape, args))
        names = trainable_names(groups, args, is_multimodal(shape, args))
        first_layers = range(0, round(layers)) if first else range(0)
        last_layers = range(shape.num_layers - round(layers), shape.num_layers) if last else range(0)
        embed_trains = any(g.where == "embed" and g.name in names for g in groups)
        head_trains = any(g.where == "head" and g.name in names for g in groups) or (
            embed_trains and shape.tie_word_embeddings)
        on_stage = [g for g in groups if g.name in names and (
            (g.where == "layer" and (g.layer in first_layers or g.layer in last_layers))
            or (g.where == "mtp" and mtp) or (g.where in ("vision", "aligner") and vision))]
        train_dense = sum(g.params for g in on_stage if g.kind == "dense") / tp \
            + sum(g.params for g in on_stage if g.kind == "vision") \
            + (embed if embed_trains else 0) + (head if head_trains else 0)
        train_expert = sum(g.params for g in on_stage if g.kind == "expert") / (ep * etp)
        # This rank's master shard of the FP8 layers' trained linears (the router is TopKRouter's plain parameter).
        fp8_dense = sum(g.params for g in on_stage if g.kind == "dense" and g.where in ("layer", "mtp")
                        and "router" not in g.name) / tp
        shards = (dp * cp, expert_dp) if args.bool("use_distributed_optimizer") else (1, 1)
        step_cast = memory_fp8.step_cast_bytes(args) * (fp8_dense / shards[0] + train_expert / shards[1])
    else:
        train_dense, train_expert = memory_lora.lora_params(shape, args, args.int("lora_rank"), layers + mtp, tp,
                                                            ep * etp)
        if vision and not args.bool("freeze_vit") and "all-linear" in {str(t) for t in args.list("target_modules")}:
            v = shape.vision  # every linear of every block gets an adapter (get_multimodal_target_regex)
            train_dense += args.int("lora_rank") * v.lora_width_per_block() * v.depth
        saved_embed, saved_head = memory_lora.modules_to_save(args, command)
        embed_trains = saved_embed and bool(embed)
        saved_copies = (embed if saved_embed else 0) + (head if saved_head else 0)
        train_dense += saved_copies
    trainable = train_dense + train_expert
    # LoRA adapters are parameters the weights above leave out, and ms-swift keeps them in fp32 unless
    # lora_dtype is set: megatron/utils/utils.py prepare_adapter passes lora_dtype (default None) to its
    # LoraConfig, swift/tuners/peft.py _cast_adapter_dtype_hook then leaves PEFT's autocast_adapter_dtype=True,
    # and peft/tuners/tuners_utils.py cast_adapter_dtype upcasts every bf16 adapter weight to fp32.
    lora_bytes = memory_lora.lora_bytes(args) if not full_ft else 0
    # A modules_to_save copy keeps the base dtype (2 bytes): cast_adapter_dtype upcasts only BaseTunerLayer
    # adapters, and ModulesToSaveWrapper is not one.
    weights += (trainable - saved_copies) * lora_bytes + saved_copies * 2
    offload = args.float("optimizer_offload_fraction") if args.bool("optimizer_cpu_offload") else 0.0
    # Grad buffer, whole on every rank (the distributed optimizer shards the step, not the buffer): fp32.
    # ms-swift's MegatronArguments._map_dtype turns accumulate_allreduce_grads_in_fp32 on for bf16 runs
    # while main_grads_dtype is its default fp32, and megatron_lm_utils passes that to the DDP config as
    # grad_reduce_in_fp32 (megatron/core/distributed/param_and_grad_buffer.py sizes the buffer with it).
    grad_bytes = 2 if args.str("main_grads_dtype") == "bf16" else 4
    grads = trainable * grad_bytes
    # Optimizer state per trainable parameter, sharded over DP*CP (experts over expert-DP) by the
    # distributed optimizer. megatron/core/optimizer/distrib_optimizer.py:
    # _build_model_and_main_param_groups clones an fp32 master shard (4 bytes) unless the precision-aware
    # optimizer holds it; _copy_model_grads_to_main_grads gives the step `shard_model_grad.float()`, a
    # view of an fp32 grad buffer and a 4-byte copy only of a bf16 one. Adam's exp_avg / exp_avg_sq are
    # 4 bytes each (optimizer/__init__.py init_state_fn), or exp_avg_dtype / exp_avg_sq_dtype with the
    # precision-aware optimizer, whose TE FusedAdam keeps only the 16-bit remainder of the fp32 master
    # (OptimizerConfig.store_param_remainders, on by default).
    precision_aware = args.bool("use_precision_aware_optimizer")
    moments = 8
    if precision_aware:
        moments = _DTYPE_BYTES.get(args.str("exp_avg_dtype") or "fp32", 4) \
            + _DTYPE_BYTES.get(args.str("exp_avg_sq_dtype") or "fp32", 4)
    grad_copy = 4 if grad_bytes == 2 else 0
    # An fp32 parameter is its own master copy: distrib_optimizer.py _build_model_and_main_param_groups takes
    # a view of an fp32 param (`model_param.type() == 'torch.cuda.FloatTensor'`) and clones only 16-bit ones.
    master = 0 if lora_bytes == 4 else 4
    if offload:
        # cpu_offloading/hybrid_optimizer.py _get_sub_optimizer_param_groups: the first `fraction` of the
        # parameters the step updates move to pinned host memory with their Adam state; the GPU keeps
        # the rest (param_update_in_fp32: an fp32 clone + fp32 moments). Without the precision-aware
        # optimizer the step's parameters are the fp32 master shards, which stay on the GPU as the
        # copy-back target of the offloaded part.
        per_param = (12 + grad_copy) * (1 - offload) if precision_aware else master + (8 + grad_copy) * (1 - offload)
    elif memory_fp8.precision_aware_master_in_mcore(args):
        # A tensorwise/blockwise/mxfp8 fp8_recipe: the distributed optimizer's own fp32 clone of every parameter
        # shard, 4 bytes, no 16-bit remainder (memory_fp8.py).
        per_param = 4 + moments
    elif precision_aware:
        # TE's FusedAdam holds the master: the 16-bit remainder of an fp32 one (store_param_remainders, on by
        # default), or an fp16 one with main_params_dtype fp16 (master_weight_dtype; remainders need fp32): 2 bytes.
        per_param = 2 + moments
    else:
        per_param = master + moments + grad_copy
    # The 16-bit modules_to_save copies need the fp32 master clone that fp32 adapters do without.
    saved_master = 4 * saved_copies if master == 0 and not precision_aware and not offload else 0
    if (args.str("optimizer") or "adam") in ("muon", "dist_muon") and not offload:
        embed_and_head = ((embed if embed_trains else 0) + (head if head_trains else 0)) if full_ft else saved_copies
        opt_state = _muon_state(args, per_param, master, trainable, train_dense, embed_and_head, dp * cp,
                                expert_dp) + saved_master
    elif not args.bool("use_distributed_optimizer"):
        opt_state = per_param * trainable + saved_master
    else:
        opt_state = per_param * (train_dense / (dp * cp) + train_expert / expert_dp) + saved_master / (dp * cp)

    # ---- activations ----------------------------------------------------------------------------
    mbs = args.micro_batch_size
    tokens = (data_tokens or _worst_case_tokens(args, command)) / cp
    sp = is_on(args, "sequence_parallel") and tp > 1
    tok_sp = tokens / (tp if sp else 1)
    bf16 = 2
    k = max(shape.num_experts_per_tok, 1)
    capacity = args.float("moe_expert_capacity_factor")
    moe_factor = min(capacity, 2 * MOE_IMBALANCE) if capacity else MOE_IMBALANCE
    if shape.is_moe:
        # permuted input (h) + fc1 out (2I) + activation (I) + fc2 out (h) for k copies of each token
        mlp_act = tok_sp * k * moe_factor * (2 * h + 3 * shape.moe_intermediate_size) * bf16 \
            + tokens * 3 * shape.shared_expert_intermediate_size * bf16 / tp
    else:
        mlp_act = tokens * 3 * shape.intermediate_size * bf16 / tp + tok_sp * h * bf16
    q_out = shape.num_attention_heads * shape.head_dim * (2 if shape.gated_attention else 1)
    attn_act = tokens * (q_out + 2 * shape.num_key_value_heads * shape.head_dim
                         + shape.num_attention_heads * shape.head_dim) * bf16 / tp + 4 * tok_sp * h * bf16
    if shape.linear_num_value_heads:
        # chunked gated delta rule: one fp32 (dk x dv) state per 64-token chunk and value head
        state = tokens / 64 * shape.linear_num_value_heads / tp * shape.linear_key_head_dim \
            * shape.linear_value_head_dim * 4
        attn_act += (1 - full_frac) * state
    # Selective recompute of a whole MLP block (megatron-core 0.16.1): "moe" wraps MoELayer.forward in
    # tensor_parallel.checkpoint (transformer/moe/moe_layer.py, moe_layer_recompute; shared experts included),
    # "mlp" the dense MLP (transformer_layer.py recompute_mlp, not on MoE layers). Only the block's input is
    # saved; its working set lives again once, while that layer's backward recomputes it.
    modules = selective_recompute_modules(args)
    recomputed_mlp = 0.0
    if ("moe" if shape.is_moe else "mlp") in modules:
        recomputed_mlp, mlp_act = mlp_act, tok_sp * h * bf16
    layer_act = attn_act + mlp_act
    if lora_bytes and trainable:
        expert_tokens = tok_sp * k * moe_factor if shape.is_moe else 0
        layer_act += memory_lora.lora_saved_bytes(shape, args, lora_bytes, tokens, tok_sp, expert_tokens, tp)
    # 1F1B: stage i keeps (pp - i) micro-batches' activations; the first stage the most.
    in_flight = min(pp if first else 1, max(args.global_batch_size // max(mbs * dp, 1), 1), in_flight_cap or pp)
    boundary = tok_sp * h * bf16
    # Logits and cross entropy on the last stage (the loss is computed inside GPTModel._postprocess;
    # ms-swift's loss_func only reduces the per-token losses). The output layer writes bf16 logits
    # [tokens, V/TP] (2 bytes each); VocabParallelCrossEntropy.calculate_logits_max (megatron/core/
    # tensor_parallel/cross_entropy.py) makes the fp32 copy (4) that becomes the softmax in place and is
    # saved for backward. Backward turns it into the gradient and casts a bf16 copy (2) for the output
    # layer. With cross_entropy_loss_fusion (ms-swift's default) those steps are torch.compile'd
    # (megatron/core/fusions/fused_cross_entropy.py, jit_fuser = torch.compile), and the compiled
    # calculate_gradients writes the fp32 gradient to a new buffer instead of in place (4 more).
    # Measured on this code path by bench/measure_cross_entropy_bytes.py (CPU, one rank): 6.0 bytes per
    # logit at the peak unfused, 10.0 fused; TORCH_LOGS=output_code shows the compiled gradient kernel
    # allocating a [tokens, V/TP] fp32 buffer next to its bf16 output (the functionalized index_put
    # works on a copy), a decision made before device code generation. Each MTP layer runs the output layer and the same cross entropy before
    # the main one; its fp32 softmax stays saved until backward (4 bytes per logit each), and the local
    # `mtp_logits` holds the last MTP layer's bf16 logits through the main forward (2, below the peak
    # of the fused backward).
    fused_ce = is_on(args, "cross_entropy_loss_fusion")
    if fused_ce and config_value(args, "cross_entropy_fusion_impl") == "te":
        # cross_entropy_fusion_impl te: language_module.py calls TE's parallel_cross_entropy, whose Triton
        # kernel (transformer_engine/pytorch/triton/cross_entropy.py cross_entropy_forward) writes the
        # gradient into its bf16 input in the forward and keeps only that: 2 bytes per logit (from TE's
        # source; TE needs CUDA, so not measured by bench/measure_cross_entropy_bytes.py).
        ce_bytes = CE_BYTES_TE + 4 * mtp
    elif fused_ce:
        ce_bytes = CE_BYTES_FUSED + 4 * mtp
    else:
        ce_bytes = CE_BYTES_UNFUSED + 4 * mtp + (2 if mtp else 0)
    # seq_cls, embedding and generative_reranker heads keep other tensors than the vocab cross entropy's.
    logits = tokens * head_bytes_per_token(shape, args, command, tp, ce_bytes) if last else 0.0
    # the model config's values: megatron_extra_kwargs wins over the argument (mcore_config)
    if granularity_of(args) == "full":
        per = layer_count(args, "recompute_num_layers") or 1
        if (config_value(args, "recompute_method") or "uniform") == "uniform":
            stored = (layers / per) * boundary
        else:  # block: `per` layers recomputed, the rest of the stage stored whole
            stored = per * boundary + max(layers - per, 0) * layer_act
        # A recomputed layer's working set (its forward again, then its backward) and the logits are
        # never alive together: the output layer's backward frees the logits before the last
        # transformer layer is recomputed (megatron/core/transformer/transformer_block.py
        # _checkpointed_forward wraps only the decoder layers).
        activations = stored * in_flight + max(per * layer_act * 2, logits)
        if embed_trains and first:
            # The embedding's backward (F.embedding in tensor_parallel/layers.py VocabParallelEmbedding)
            # makes a dense bf16 [V/TP, h] gradient that the DDP hook then adds into the fp32 grad buffer
            # (distributed/distributed_data_parallel.py, `param.main_grad.add_(param.grad.data)`). It is
            # the last step of a micro-batch's backward: only the other in-flight checkpoints remain.
            activations = max(activations, stored * (in_flight - 1) + embed * 2)
    else:
        # Without full recompute every layer's saved activations are still alive at the cross entropy.
        activations = (layers + mtp) * layer_act * in_flight + logits + recomputed_mlp
    if vision:
        activations += 1.0 * GiB  # image/video patches at IMAGE_MAX_TOKEN_NUM-scale budgets, frozen tower
    # The optimizer step follows the last backward, which freed the activations: its transient is the peak if larger.
    activations = max(activations, step_cast)
    components = {
        "weights": weights / GiB,
        "gradients": grads / GiB,
        "optimizer": opt_state / GiB,
        "activations": activations / GiB,
    }
    components["framework"] = _nccl_gib(shape, args, lay) + FRAGMENTATION * sum(components.values())
    return components


def stage_components(shape: ModelShape, args: Args, lay: Layout, first: bool, last: bool, command: str) -> dict:
    """One pipeline stage's components in GiB (weights, gradients, optimizer, activations, framework), at the recipe's
    worst-case tokens: what memory_teacher.py adds a teacher's shard to, stage by stage."""
    return _stage(shape, args, lay, first, last, command)


def pipeline_stages(lay: Layout) -> list[tuple[bool, bool]]:
    """(first, last) for the stages the estimate tells apart: one when PP is 1, else the first and the last."""
    return [(True, True)] if lay.pp == 1 else [(True, False), (False, True)]


def _nccl_gib(shape: ModelShape, args: Args, lay: Layout) -> float:
    """Memory outside PyTorch's allocator: the fixed share plus the all-to-all peers' buffers, which NCCL
    allocates itself (no allocator fragmentation on them) and keeps for the life of the communicator."""
    if not shape.is_moe or dispatcher_of(args) != "alltoall":
        return FRAMEWORK_GIB
    peers = max(lay.ep - 1, 0)
    # An EP group is ETP-strided consecutive ranks (megatron-core's expert grid), so a node holds
    # gpus_per_node / ETP of its members. ALL_TO_ALL_GIB_PER_PEER was fitted (bench/fit_memory_constants.py) on
    # published points whose EP groups all sit inside one node (EP <= 8 on 8-GPU nodes), so it is the figure of an
    # intra-node peer, and those points are unchanged by this split: there NCCL's all-to-all opens
    # P2P_CHANNELS_PER_PEER channels to each peer (NVIDIA/nccl#1685); a peer on another node gets
    # NET_CHANNELS_PER_PEER (NVIDIA/nccl#1424), and the buffers grow linearly with channels (NVIDIA/nccl#986).
    local = peers if not lay.gpus_per_node else min(peers, max(lay.gpus_per_node // lay.etp, 1) - 1)
    remote = peers - local
    return FRAMEWORK_GIB + (local + remote * NET_CHANNELS_PER_PEER / P2P_CHANNELS_PER_PEER) * ALL_TO_ALL_GIB_PER_PEER


def _colocated_vllm(components: dict, args: Args, capacity_gib: float, notes: list[str],
                    nccl_gib: float) -> tuple[dict, str]:
    util = args.float("vllm_gpu_memory_utilization")
    vllm = util * capacity_gib
    sleep = args.int("sleep_level") or 0
    notes.append(f"colocated vLLM takes {util:.0%} of each GPU while generating; sleep_level {sleep}")
    # While training, a sleeping engine keeps ~1 GiB (CUDA graphs, allocator pools); awake it keeps all.
    during_train = 1.0 if sleep >= 1 else vllm
    offload_model, offload_opt = args.bool("offload_model"), args.bool("offload_optimizer")
    # The gradient buffer leaves with the model, not the optimizer: ms-swift 4.6 megatron/trainers/utils.py
    # offload_megatron_model_to_cpu frees each DDP buffer's grad_data beside its param_data (offload_model), while
    # offload_megatron_optimizer moves only the fp32 master shards and the Adam moments (offload_optimizer).
    rollout = {
        "weights": 0.0 if offload_model else components["weights"],
        "gradients": 0.0 if offload_model else components["gradients"],
        "optimizer": 0.0 if offload_opt else components["optimizer"],
        "activations": 0.0,
        "framework": nccl_gib,  # the communicators outlive the sleep of the training side
        "vllm": vllm,
    }
    train = {**components, "vllm": during_train}
    if sum(rollout.values()) > sum(train.values()):
        return rollout, "rollout"
    return train, "train"


def _layers_on_stage(shape: ModelShape, args: Args, pp: int, first: bool, last: bool) -> float:
    if pp == 1:
        return shape.num_layers
    fixed_first = args.int("decoder_first_pipeline_num_layers")
    fixed_last = args.int("decoder_last_pipeline_num_layers")
    middle = pp - (fixed_first is not None) - (fixed_last is not None)
    rest = shape.num_layers - (fixed_first or 0) - (fixed_last or 0)
    even = rest / middle if middle else 0
    if first:
        return fixed_first if fixed_first is not None else even
    return fixed_last if fixed_last is not None else even


def _muon_state(args: Args, adam_per_param: float, master: int, trainable: float, train_dense: float,
                embed_and_head: float, dp_cp: int, expert_dp: int) -> float:
    """Optimizer bytes under Muon (megatron/core/optimizer/muon.py get_megatron_muon_optimizer): every trainable 2-D
    weight but the embedding and output layer goes to Muon, whose state is one momentum buffer next to the fp32
    master (Float16OptimizerWithFloat16Params): master + 4 bytes; the embedding, output layer and 1-D parameters go
    to Adam (master + 8). ms-swift turns the distributed optimizer off for both (_check_muon), so the state is
    whole on every rank, except under dist_muon, whose LayerWiseDistributedOptimizer gives each DP rank a share
    of the parameters (experts over expert-DP) and makes master copies only for that share."""
    muon = max(trainable - embed_and_head, 0.0) * (master + 4)
    adam = embed_and_head * adam_per_param
    if args.str("optimizer") != "dist_muon":
        return muon + adam
    dense_share = train_dense / trainable if trainable else 1.0
    return (muon + adam) * (dense_share / dp_cp + (1 - dense_share) / expert_dp)
