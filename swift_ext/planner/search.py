"""`swift-ext plan --search`: legal layouts for the recipe's GPUs that fit, ranked by a simple throughput model.

Throughput model (relative, per optimizer step; only used to order candidates):
- compute: 6 * active parameters * tokens / world / GPU bf16 peak, times 4/3 under full recompute
  (one extra forward) or 1.05 under selective recompute;
- tensor parallel: 4 collectives of the layer activations per layer and micro-batch (2 forward, 2
  backward), each moving 2*(TP-1)/TP of tokens*hidden*2 bytes;
- expert parallel: all-to-all dispatch + combine of top-k token copies, forward and backward,
  (EP-1)/EP of it leaving the GPU;
- data parallel: reduce-scatter + all-gather of the trainable gradients/parameters;
- context parallel: ring exchange of K/V for the full-attention layers;
- links: NVLink (~450 GB/s) while a group fits in one node, InfiniBand (~50 GB/s per GPU) across nodes;
- pipeline bubble: (PP-1)/(micro-batches + PP-1) of the step idle;
- GEMM efficiency falls as work is cut thinner: x t/(t+1024) for t tokens per GPU and micro-batch
  (CP splits them), x w/(w+256) for w = hidden/TP columns per GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from swift_ext.spec.gpus import GPUS
from swift_ext.msswift.bound_args import Args
from swift_ext.planner.layout import check_layout, layout_of
from swift_ext.planner.sizes import divisors
from swift_ext.planner.memory import estimate
from swift_ext.planner.model_shape import ModelShape
from swift_ext.spec.recipe import Recipe

# Keys a candidate replaces; the recipe's own pipeline split and recompute details go with them.
_DROPPED = ("recompute_method", "recompute_num_layers", "decoder_first_pipeline_num_layers",
            "decoder_last_pipeline_num_layers")

NVLINK = 450e9
INFINIBAND = 50e9


@dataclass(frozen=True)
class Candidate:
    overrides: dict
    layout: dict
    per_gpu_gib: float
    verdict: str
    step_seconds: float

    def override_text(self, current: dict | None = None) -> str:
        """The overrides that change something, ready to paste after the recipe path."""
        return " ".join(self.override_args(current)) or "(the recipe as it is)"

    def override_args(self, current: dict | None = None) -> list[str]:
        current = current or {}
        changed = {k: v for k, v in self.overrides.items() if current.get(k) != v}
        if "recompute_method" not in self.overrides and current.get("recompute_method") is not None:
            changed["recompute_method"] = "null"
            changed["recompute_num_layers"] = "null"
        return [f"args.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in changed.items()]


def search(plan, limit: int = 5) -> list[Candidate]:
    """Candidates for a planned Megatron recipe (`plan.Plan` with a model shape): the recipe, schema,
    bound args and shape are the plan's, so search sees exactly what `plan` checked."""
    recipe, shape, base_args = plan.recipe, plan.shape, plan.args
    world = recipe.launch.world_size
    gbs = base_args.global_batch_size
    found: list[Candidate] = []
    for tp in [d for d in divisors(world) if d <= 8]:
        for pp in [d for d in divisors(world // tp) if d <= shape.num_layers]:
            for cp in [d for d in divisors(world // (tp * pp)) if d <= 8]:
                dp = world // (tp * pp * cp)
                eps = [1] if not shape.is_moe else [d for d in divisors(world // pp) if shape.num_experts % d == 0]
                for ep in eps:
                    for mbs in (1, 2, 4, 8):
                        if gbs % (mbs * dp):
                            continue
                        for recompute in ("full", "selective"):
                            overrides = {
                                "tensor_model_parallel_size": tp,
                                "pipeline_model_parallel_size": pp,
                                "context_parallel_size": cp,
                                "expert_model_parallel_size": ep,
                                "expert_tensor_parallel_size": 1,
                                "micro_batch_size": mbs,
                                "sequence_parallel": tp > 1,
                                "recompute_granularity": recompute,
                            }
                            if recompute == "full":
                                overrides.update(recompute_method="uniform", recompute_num_layers=1)
                            cand = _evaluate(recipe, shape, base_args, overrides, plan.versions)
                            if cand is not None:
                                found.append(cand)
    found.sort(key=lambda c: (c.step_seconds, c.per_gpu_gib))
    return found[:limit]


def _evaluate(recipe: Recipe, shape: ModelShape, base_args: Args, overrides: dict,
              versions=None) -> Candidate | None:
    # The rules read only launch/source/where() from the recipe; the candidate's values come from args.
    args = base_args.with_overrides(overrides, drop=_DROPPED)
    errors, _ = check_layout(recipe, args, shape, versions)  # the plan's versions (--target-versions)
    if errors:
        return None
    lay = layout_of(args, recipe.launch.world_size, recipe.launch.gpus_per_node)
    mem = estimate(shape, args, lay, recipe.launch.memory_gib, recipe.command)
    if mem.verdict not in (None, "fits", "tight"):
        return None
    return Candidate(overrides, lay.as_dict(), mem.per_gpu_gib, mem.verdict or "unknown",
                     step_seconds(recipe, args, shape, lay))


def step_seconds(recipe: Recipe, args: Args, shape: ModelShape, lay) -> float:
    gpu = GPUS.get(recipe.launch.gpu or "H100") or GPUS["H100"]
    per_node = max(recipe.launch.gpus_per_node, 1)
    gbs, mbs = args.global_batch_size, args.micro_batch_size
    seq = args.int("max_length") or 2048
    tokens = gbs * seq
    h = shape.hidden_size
    active = shape.total_params() - shape.expert_params_per_layer() * shape.num_layers * (
        1 - shape.num_experts_per_tok / shape.num_experts) if shape.is_moe else shape.total_params()
    recompute = 4 / 3 if args.str("recompute_granularity") == "full" else 1.05
    t = mbs * seq / lay.cp
    w = h / lay.tp
    efficiency = 0.4 * t / (t + 1024) * w / (w + 256)  # ~40% MFU at large, unsplit GEMMs
    compute = 6 * active * tokens / lay.world / (gpu.bf16_tflops * 1e12 * efficiency) * recompute

    def link(group: int, stride: int) -> float:
        return NVLINK if group * stride <= per_node else INFINIBAND

    dp = max(lay.dp, 1)
    micro_batches = max(gbs // (mbs * dp), 1)
    layers_stage = shape.num_layers / lay.pp
    tok_mb = mbs * seq / lay.cp
    comm = 0.0
    if lay.tp > 1:
        volume = 4 * layers_stage * 2 * (lay.tp - 1) / lay.tp * tok_mb * h * 2
        comm += micro_batches * volume / link(lay.tp, 1)
    if shape.is_moe and lay.ep > 1:
        volume = 4 * layers_stage * (lay.ep - 1) / lay.ep * tok_mb / max(lay.tp, 1) * shape.num_experts_per_tok * h * 2
        comm += micro_batches * volume / link(lay.ep, lay.tp)
    if lay.cp > 1:
        volume = 2 * shape.num_full_attention_layers / lay.pp * tok_mb * 2 * shape.num_key_value_heads * shape.head_dim * 2
        comm += micro_batches * volume / link(lay.cp, lay.tp)
    if dp > 1:
        trainable = shape.total_params() / (lay.tp * lay.pp)
        if (args.str("tuner_type") or "full") != "full":
            trainable *= 0.01
        comm += 2 * 2 * (dp - 1) / dp * trainable * 2 / link(dp, lay.tp * lay.cp)
    bubble = (lay.pp - 1) / (micro_batches + lay.pp - 1)
    return (compute + comm) / (1 - bubble)
