"""Per-GPU memory estimate for a Megatron recipe, by component. Pure arithmetic, no torch.

Model: the worst pipeline stage's share of
- weights: bf16 (1 byte with FP8 param gather); dense part sharded by TP, experts by EP*ETP, layers by
  PP; embedding/output on the first/last stage; the vision tower replicated on the first stage;
- gradients of trainable parameters (bf16 grad buffer: ms-swift leaves
  accumulate_allreduce_grads_in_fp32 off) and Adam state (fp32 master + 2 moments = 12 bytes),
  sharded over the data-parallel group by the distributed optimizer (experts over expert-DP), moved
  to the host by optimizer_cpu_offload * optimizer_offload_fraction;
- activations: tokens per micro-batch (max_length * micro_batch_size / CP), layer-boundary
  checkpoints under full recompute, one layer's working set, MoE dispatch buffers (top-k copies of
  every token, times an imbalance or capacity factor), Gated DeltaNet chunk states, and the logits of
  a 248k vocabulary (fp32 softmax unless the fused cross-entropy is used), times the micro-batches
  that 1F1B keeps in flight on the first stage;
- a fixed framework share (CUDA context, NCCL buffers) plus allocator fragmentation;
- colocated GRPO: vLLM's `vllm_gpu_memory_utilization` share while it generates; what sleep_level,
  offload_model and offload_optimizer release decides which phase is the peak.
Constants are explained where they are used; `make bench` reports the error against published runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swift_ext.layout import Args, Layout
from swift_ext.model_shape import ModelShape

GiB = 1024**3
FRAMEWORK_GIB = 2.5  # CUDA context (~0.6) + NCCL communicators/buffers incl. MoE all-to-all (~1.5) + TE workspaces
FRAGMENTATION = 0.07  # caching-allocator slack with expandable_segments (PyTorch docs: a few percent to ~10%)
MOE_IMBALANCE = 1.25  # dropless routing: the busiest EP rank receives ~25% more than average early in training
TIGHT = 0.10  # less headroom than this is "tight"


@dataclass(frozen=True)
class Estimate:
    per_gpu_gib: float
    capacity_gib: float | None
    components: dict[str, float]
    phase: str  # "train" or "rollout" (colocated GRPO): which phase sets the peak
    notes: list[str] = field(default_factory=list)
    # What the activations were sized for: "worst case" (every micro-batch micro_batch_size x max_length
    # tokens) or "data p99" (tokens in a p99 micro-batch of the recipe's own data, padding_free/packing).
    basis: str = "worst case"
    tokens_per_micro_batch: int | None = None
    worst_case_gib: float | None = None  # the worst-case estimate, shown beside a data-based one

    @property
    def verdict(self) -> str | None:
        if self.capacity_gib is None:
            return None
        if self.per_gpu_gib > self.capacity_gib:
            return "does_not_fit"
        if self.per_gpu_gib > self.capacity_gib * (1 - TIGHT):
            return "tight"
        return "fits"

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
        }


def estimate(shape: ModelShape, args: Args, lay: Layout, capacity_gib: float | None, command: str,
             data_tokens: int | None = None) -> Estimate:
    """The peak over pipeline stages (first: embedding, vision, most micro-batches in flight; last: output
    layer, logits, MTP), then the colocated-vLLM phases for GRPO.

    data_tokens: tokens in a p99 micro-batch of the recipe's own data (swift_ext.stats). Used for
    padding_free / packing SFT, where a micro-batch holds only the real tokens of its samples; the
    worst case (micro_batch_size x max_length) is computed beside it."""
    if data_tokens is not None and command != "rlhf" and (args.bool("padding_free") or args.bool("packing")):
        worst = estimate(shape, args, lay, capacity_gib, command)
        worst_tokens = args.micro_batch_size * (args.int("max_length") or 2048)
        if data_tokens < worst_tokens:
            from dataclasses import replace

            data = _estimate(shape, args, lay, capacity_gib, command, data_tokens)
            note = (f"activations sized for a p99 micro-batch of your data ({data_tokens} tokens); the worst case "
                    f"({worst_tokens} tokens) needs {worst.per_gpu_gib:.1f} GiB")
            return replace(data, basis="data p99", tokens_per_micro_batch=data_tokens,
                           worst_case_gib=worst.per_gpu_gib, notes=data.notes + [note])
    return _estimate(shape, args, lay, capacity_gib, command, None)


def _estimate(shape: ModelShape, args: Args, lay: Layout, capacity_gib: float | None, command: str,
              data_tokens: int | None) -> Estimate:
    notes: list[str] = []
    stages = [(True, True)] if lay.pp == 1 else [(True, False), (False, True)]
    components = max((_stage(shape, args, lay, first, last, command, data_tokens) for first, last in stages),
                     key=lambda c: sum(c.values()))
    if args.bool("optimizer_cpu_offload"):
        frac = args.float("optimizer_offload_fraction")
        notes.append(f"optimizer_cpu_offload keeps {1 - frac:.0%} of the optimizer state on the GPU")
    phase = "train"
    if command == "rlhf" and args.str("vllm_mode") == "colocate" and capacity_gib:
        components, phase = _colocated_vllm(components, args, capacity_gib, notes)
    tokens = data_tokens or _worst_case_tokens(args, command)
    return Estimate(sum(components.values()), capacity_gib, components, phase, notes,
                    tokens_per_micro_batch=tokens)


def _worst_case_tokens(args: Args, command: str) -> int:
    seq = args.int("max_length") or 2048
    if command == "rlhf" and args.str("rlhf_type") == "grpo":
        seq += args.max_completion_length  # prompt + completion are trained together
    return seq * args.micro_batch_size


def _stage(shape: ModelShape, args: Args, lay: Layout, first: bool, last: bool, command: str,
           data_tokens: int | None = None) -> dict[str, float]:
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
    embed = shape.vocab_size * h / tp if first else 0
    head = shape.vocab_size * h / tp if last and (not shape.tie_word_embeddings or pp > 1) else 0
    vision = shape.vision_params() if first and shape.vision and not args.bool("language_model_only") else 0
    mtp_dense = mtp * (shape.full_attention_params() + shape.dense_mlp_params_per_layer() + 2 * h * h) / tp
    dense_params = layers * dense_layer + mtp_dense + embed + head
    expert_params = (layers + mtp) * expert_layer
    weight_bytes = 1 if (args.str("fp8_format") and args.bool("fp8_param_gather")) else 2
    weights = (dense_params + expert_params + vision) * weight_bytes

    # ---- trainable parameters: gradients and optimizer ---------------------------------------------
    if (args.str("tuner_type") or "full") == "full":
        frozen_vit = args.bool("freeze_vit")
        train_dense, train_expert = dense_params + (0 if frozen_vit else vision), expert_params
    else:
        train_dense, train_expert = _lora_params(shape, args, args.int("lora_rank"), layers + mtp, tp, ep * etp)
    offload = args.float("optimizer_offload_fraction") if args.bool("optimizer_cpu_offload") else 0.0
    # bf16 grad buffer (ms-swift leaves accumulate_allreduce_grads_in_fp32 off); the CPU-offloaded
    # optimizer needs fp32 gradients on the GPU for its device-to-host copy.
    grads = (train_dense + train_expert) * (4 if offload else 2)
    # Distributed optimizer: fp32 master + exp_avg + exp_avg_sq (12 bytes) and the fp32 copy of the
    # gradient shard made for the step (4 bytes), sharded over DP*CP (experts: over expert-DP).
    per_param = 16 - (2 if args.bool("use_precision_aware_optimizer") else 0)  # bf16 moments
    if not args.bool("use_distributed_optimizer"):
        opt_state = per_param * (train_dense + train_expert)
    else:
        opt_state = per_param * (train_dense / (dp * cp) + train_expert / expert_dp)
    opt_state *= 1 - offload

    # ---- activations ----------------------------------------------------------------------------
    mbs = args.micro_batch_size
    tokens = (data_tokens or _worst_case_tokens(args, command)) / cp
    sp = args.bool("sequence_parallel") and tp > 1
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
    layer_act = attn_act + mlp_act
    # 1F1B: stage i keeps (pp - i) micro-batches' activations; the first stage the most.
    in_flight = min(pp if first else 1, max(args.global_batch_size // max(mbs * dp, 1), 1))
    boundary = tok_sp * h * bf16
    if (args.str("recompute_granularity") or "selective") == "full":
        per = args.int("recompute_num_layers") or 1
        if (args.str("recompute_method") or "uniform") == "uniform":
            stored = (layers / per) * boundary
        else:  # block: `per` layers recomputed, the rest of the stage stored whole
            stored = per * boundary + max(layers - per, 0) * layer_act
        activations = stored * in_flight + per * layer_act * 2  # the recomputed forward and its backward
    else:
        activations = (layers + mtp) * layer_act * in_flight
    if last:
        # logits over the vocabulary: bf16 logits + bf16 grads with the fused cross-entropy, plus fp32
        # softmax copies without it; one more set per MTP layer.
        ce_bytes = 4 if args.bool("cross_entropy_loss_fusion") else 10
        activations += tokens * shape.vocab_size / tp * ce_bytes * (1 + 0.5 * mtp)
    if vision:
        activations += 1.0 * GiB  # image/video patches at IMAGE_MAX_TOKEN_NUM-scale budgets, frozen tower
    components = {
        "weights": weights / GiB,
        "gradients": grads / GiB,
        "optimizer": opt_state / GiB,
        "activations": activations / GiB,
    }
    components["framework"] = FRAMEWORK_GIB + FRAGMENTATION * sum(components.values())
    return components


def _colocated_vllm(components: dict, args: Args, capacity_gib: float, notes: list[str]) -> tuple[dict, str]:
    util = args.float("vllm_gpu_memory_utilization")
    vllm = util * capacity_gib
    sleep = args.int("sleep_level") or 0
    notes.append(f"colocated vLLM takes {util:.0%} of each GPU while generating; sleep_level {sleep}")
    # While training, a sleeping engine keeps ~1 GiB (CUDA graphs, allocator pools); awake it keeps all.
    during_train = 1.0 if sleep >= 1 else vllm
    offload_model, offload_opt = args.bool("offload_model"), args.bool("offload_optimizer")
    rollout = {
        "weights": 0.0 if offload_model else components["weights"],
        "gradients": 0.0 if offload_opt else components["gradients"],
        "optimizer": 0.0 if offload_opt else components["optimizer"],
        "activations": 0.0,
        "framework": FRAMEWORK_GIB,
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


def _lora_params(shape: ModelShape, args: Args, rank: int, layers: float, tp: int, ep_etp: int) -> tuple[float, float]:
    """LoRA A/B parameters on one GPU: (dense part, expert part)."""
    targets = {str(t) for t in args.list("target_modules")} or {"all-linear"}
    h = shape.hidden_size
    r = rank
    full_frac = shape.num_full_attention_layers / shape.num_layers
    q_out = shape.num_attention_heads * shape.head_dim * (2 if shape.gated_attention else 1)
    kv = shape.num_key_value_heads * shape.head_dim
    full_attn = r * (h + q_out + kv * 2) + r * (h + kv) * 0 + r * (shape.num_attention_heads * shape.head_dim + h)
    lin = 0
    if shape.linear_num_value_heads:
        kd = shape.linear_num_key_heads * shape.linear_key_head_dim
        vd = shape.linear_num_value_heads * shape.linear_value_head_dim
        lin = r * (h + 2 * kd + 2 * vd) + r * (h + 2 * shape.linear_num_value_heads) + r * (vd + h)
    attn = full_frac * full_attn + (1 - full_frac) * (lin or full_attn)
    if shape.is_moe:
        mlp_dense = r * (h + 2 * shape.shared_expert_intermediate_size) + r * (shape.shared_expert_intermediate_size + h)
        experts = shape.num_experts * (r * (h + 2 * shape.moe_intermediate_size) + r * (shape.moe_intermediate_size + h))
    else:
        mlp_dense = r * (h + 2 * shape.intermediate_size) + r * (shape.intermediate_size + h)
        experts = 0
    if "all-linear" not in targets:
        mlp_dense = experts = 0 if not targets & {"linear_fc1", "linear_fc2"} else mlp_dense
    return layers * (attn + mlp_dense) / tp, layers * experts / ep_etp
