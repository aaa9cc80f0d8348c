"""Parallel-layout and batch rules: a pure function of the recipe's arguments and the model's shape.

Each rule returns Problems naming the rule, the numbers, and the nearest legal values. The places in
ms-swift 4.6 / megatron-core that enforce each rule (late, inside the ranks) are cited per rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from swift_ext.msswift.bound_args import Args
from swift_ext.spec.findings import Finding
from swift_ext.spec.gpus import GPUS
from swift_ext.planner.attention_rules import ATTENTION_RULES, ATTENTION_VERSIONED_RULES
from swift_ext.planner.comm_overlap_rules import COMM_OVERLAP_RULES, COMM_OVERLAP_VERSIONED_RULES
from swift_ext.planner.determinism_rules import DETERMINISM_RULES
from swift_ext.planner.grpo_rules import grpo
from swift_ext.planner.loss_fusion_rules import LOSS_FUSION_VERSIONED_RULES
from swift_ext.planner.mcore_bridge_rules import MCORE_BRIDGE_RULES
from swift_ext.planner.mcore_config import (builds_with_mcore_bridge, config_value, flag, from_extra, granularity_of,
                                            is_on)
from swift_ext.planner.mcore_config_rules import MCORE_CONFIG_RULES, MCORE_CONFIG_VERSIONED_RULES
from swift_ext.planner.mcore_feature_rules import MCORE_FEATURE_RULES
from swift_ext.planner.moe_rules import MOE_RULES
from swift_ext.planner.pipeline_rules import PIPELINE_RULES
from swift_ext.planner.pipeline_schedule import SCHEDULE_RULES
from swift_ext.planner.optimizer_rules import OPTIMIZER_VERSIONED_RULES
from swift_ext.planner.precision_rules import PRECISION_RULES, PRECISION_VERSIONED_RULES
from swift_ext.planner.te_offload_rules import TE_OFFLOAD_VERSIONED_RULES
from swift_ext.planner.model_shape import ModelShape
from swift_ext.planner.sizes import divisors, nearest
from swift_ext.planner.warn_rules import ENGINE_RULES
from swift_ext.spec.recipe import Recipe
from swift_ext.spec.support import Versions, capability_gap, resolve_versions, version_gaps


@dataclass(frozen=True)
class Layout:
    tp: int
    pp: int
    cp: int
    ep: int
    etp: int
    world: int
    # GPUs a node: which EP peers NCCL reaches over NVLink rather than the network (memory.py); 0 when unknown.
    gpus_per_node: int = 0

    @property
    def dp(self) -> int:
        return self.world // (self.tp * self.pp * self.cp) if self.world % (self.tp * self.pp * self.cp) == 0 else 0

    def as_dict(self) -> dict:
        return {"tp": self.tp, "pp": self.pp, "cp": self.cp, "ep": self.ep, "etp": self.etp, "dp": self.dp,
                "world": self.world}


def layout_of(args: Args, world: int, gpus_per_node: int | str = 0) -> Layout:
    # Sizes below 1 are reported by plan.check_args; here they count as 1 so no rule divides by zero.
    def size(name: str) -> int:
        return max(args.int(name) or 1, 1)

    return Layout(tp=size("tensor_model_parallel_size"), pp=size("pipeline_model_parallel_size"),
                  cp=size("context_parallel_size"), ep=size("expert_model_parallel_size"),
                  etp=size("expert_tensor_parallel_size"), world=world,
                  gpus_per_node=gpus_per_node if isinstance(gpus_per_node, int) else 0)  # "scheduler": unknown


def check_layout(recipe: Recipe, args: Args, shape: ModelShape | None,
                 versions: Versions | None = None) -> tuple[list[Finding], list[Finding]]:
    """(errors, warnings) for a Megatron recipe. Every rule runs; all violations are returned at once.
    Without a model shape (no config.json found) the rules that read it are skipped; the rest still run.
    `versions`: what the version-gated rules judge against (spec.support); default: the recipe's env,
    then the installed packages."""
    errors: list[Finding] = []
    warnings: list[Finding] = []
    world = recipe.launch.world_size
    lay = layout_of(args, world, recipe.launch.gpus_per_node)
    versions = versions if versions is not None else resolve_versions(recipe.env)
    err, warn = _reporters(recipe, errors), _reporters(recipe, warnings)
    for rule in RULES:
        try:
            rule(recipe, args, shape if shape is not None else _UNKNOWN_SHAPE, lay, err, warn)
        except _ShapeUnknown:
            pass  # this rule needs the model's shape; plan reports once that it was not checked
    for rule in VERSIONED_RULES:
        try:
            rule(recipe, args, shape if shape is not None else _UNKNOWN_SHAPE, lay, err, warn, versions)
        except _ShapeUnknown:
            pass
    return errors, warnings


def _reporters(recipe: Recipe, into: list[Finding]) -> Callable[..., None]:
    """err/warn(rule, message, key=None, hint=None): a Finding located at args.KEY in the recipe (env.NAME as given:
    a rule about the recipe's environment)."""
    def report(rule: str, message: str, key: str | None = None, hint: str | None = None) -> None:
        path = (key if key.startswith("env.") else f"args.{key}") if key else None
        where = recipe.where(path) if path else {"file": recipe.source}
        where.pop("path", None)
        into.append(Finding(message, code=rule, hint=hint, path=path, **where))
    return report


def check_engine_rules(recipe: Recipe, args: Args, shape: ModelShape | None,
                       broken: list[Finding] | tuple = ()) -> tuple[list[Finding], list[Finding]]:
    """(errors, warnings) of the rules both engines share (warn_rules.ENGINE_RULES), for engine swift, where
    the layout rules do not run; engine megatron runs them as part of RULES. `broken`: the problems of a
    config.json that was found but is unusable, reported (once) by the first rule that needs the head counts."""
    errors: list[Finding] = []
    warnings: list[Finding] = []
    lay = layout_of(args, recipe.launch.world_size)
    stand_in = _UnknownShape(list(broken)) if shape is None else shape
    for rule in ENGINE_RULES:
        try:
            rule(recipe, args, stand_in, lay, _reporters(recipe, errors), _reporters(recipe, warnings))
        except _ShapeUnknown as unknown:
            for p in unknown.problems:
                if p not in errors:
                    p.code = p.code or "model-shape"
                    errors.append(p)
    return errors, warnings


class _ShapeUnknown(Exception):
    def __init__(self, name: str, problems: list[Finding] = ()):
        super().__init__(name)
        self.problems = list(problems)


# The sequence-parallel and vLLM tensor-parallel checks split these over ranks: a config.json that gives no usable
# value for them (num_key_value_heads 0 ...) is an error there, not a silent pass.
HEAD_FIELDS = ("num_attention_heads", "num_key_value_heads")


class _UnknownShape:
    """Stands in for the shape when no config.json was found (a rule that reads it stops there), or when the one
    found is unusable (a rule that needs the head counts stops with the config's own error)."""

    def __init__(self, problems: list[Finding] = ()):
        # Only the config's problems with the head counts themselves: model_shape.from_config also refuses what
        # only the Megatron estimate needs (a ChatGLM-style config without intermediate_size or
        # num_hidden_layers), which transformers and engine swift read without complaint.
        self._problems = [p for p in problems if any(f in p.message for f in HEAD_FIELDS)]

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise _ShapeUnknown(name, self._problems if name in HEAD_FIELDS else ())


_UNKNOWN_SHAPE = _UnknownShape()


AddFinding = Callable[..., None]
RULES: list[Callable[[Recipe, Args, ModelShape, Layout, AddFinding, AddFinding], None]] = []


def rule(fn):
    RULES.append(fn)
    return fn


# Rules whose verdict depends on versions or the GPU: the function also gets the spec.support.Versions
# the plan judges against; the gates themselves are rows of spec.support.SUPPORT.
VERSIONED_RULES: list[Callable[..., None]] = [*MCORE_CONFIG_VERSIONED_RULES, *COMM_OVERLAP_VERSIONED_RULES,
                                              *LOSS_FUSION_VERSIONED_RULES, *PRECISION_VERSIONED_RULES,
                                              *OPTIMIZER_VERSIONED_RULES, *ATTENTION_VERSIONED_RULES,
                                              *TE_OFFLOAD_VERSIONED_RULES]


def versioned_rule(fn):
    VERSIONED_RULES.append(fn)
    return fn

# The rule names that mirror megatron-core (not ms-swift): the oracle's differential test compares
# exactly these with megatron-core's own verdict (tests/test_oracle.py).
MCORE_RULES = {"world-divisible", "expert-layout", "experts-divisible", "heads-tp", "kv-groups-tp",
               "linear-heads-tp", "linear-attention-cp", "layers-pp", "pipeline-layout", "sequence-parallel", "recompute",
               "fp8-param", "recompute-modules", "moe-deepep", "moe-load-balancing", "moe-bias-etp", "dsa-attention"}


@rule
def world_divisible(recipe, args, shape, lay, err, warn):
    # megatron-core parallel_state.initialize_model_parallel: world % (TP*PP*CP) == 0.
    model = lay.tp * lay.pp * lay.cp
    if lay.world % model:
        legal = [d for d in divisors(lay.world)]
        # Name the largest factor whose reduction to 1 alone makes it fit (NeMo-RL PR 3150: CP 4 of TP2*PP2*CP4 on 8).
        fits = [(v, k) for k, v in (("context_parallel_size", lay.cp), ("pipeline_model_parallel_size", lay.pp),
                                    ("tensor_model_parallel_size", lay.tp)) if v > 1 and lay.world % (model // v) == 0]
        key = max(fits, key=lambda f: f[0])[1] if fits else "tensor_model_parallel_size"
        err("world-divisible", f"world size {lay.world} (= {recipe.launch.nodes} nodes x "
            f"{recipe.launch.gpus_per_node} GPUs) is not divisible by TP*PP*CP = {lay.tp}*{lay.pp}*{lay.cp} = {model}",
            key, hint=f"TP*PP*CP must divide {lay.world}: one of {legal}"
            + _nodes_that_fit(recipe, lay))


@rule
def expert_layout(recipe, args, shape, lay, err, warn):
    # megatron-core parallel_state: the expert grid is ETP x EP x (expert DP) x PP; world/PP % (ETP*EP) == 0.
    if lay.world % lay.pp == 0 and (lay.world // lay.pp) % (lay.ep * lay.etp):
        per_stage = lay.world // lay.pp
        # Name the flag whose reduction fixes it: expert TP when EP alone fits (Megatron-Bridge PR 5754: ETP
        # left to default to TP), else EP (slime issue 1818).
        key = "expert_tensor_parallel_size" if lay.etp > 1 and per_stage % lay.ep == 0 else "expert_model_parallel_size"
        err("expert-layout", f"world/PP = {per_stage} is not divisible by ETP*EP = {lay.etp}*{lay.ep} = {lay.etp * lay.ep}",
            key, hint=f"EP*ETP must divide {per_stage}: one of {divisors(per_stage)}" + _nodes_that_fit(recipe, lay))


def _nodes_that_fit(recipe, lay, most: int = 64) -> str:
    """The fewest nodes of this recipe's size at which the parallel sizes as written fit megatron-core's grid
    (world divisible by TP*PP*CP, world/PP by EP*ETP): published large-MoE scripts give the per-node count and
    leave the node count to the launcher, so the other way out is more nodes, not smaller sizes."""
    gpus = recipe.launch.gpus_per_node
    if not isinstance(gpus, int) or not isinstance(recipe.launch.nodes, int) or gpus < 1:
        return ""
    for nodes in range(recipe.launch.nodes + 1, most + 1):
        world = nodes * gpus
        if world % (lay.tp * lay.pp * lay.cp) == 0 and (world // lay.pp) % (lay.ep * lay.etp) == 0:
            return f"; or keep the sizes on launch.nodes: {nodes} ({world} GPUs)"
    return ""


@rule
def experts_divisible(recipe, args, shape, lay, err, warn):
    # megatron-core MoELayer: num_moe_experts % expert_model_parallel_size == 0.
    if not shape.is_moe:
        # ms-swift's get_mcore_model_config (swift/megatron/model/utils.py) sets EP/ETP to 1 in the model
        # config of a dense model; only the rank grid (expert-layout) still sees them.
        # Name the size the recipe set: an ETP alone used to be reported as "EP=1 ... remove
        # expert_model_parallel_size", a flag the recipe does not have.
        stated = [(name, f"{label}={size}") for name, label, size in (
            ("expert_model_parallel_size", "EP", lay.ep), ("expert_tensor_parallel_size", "ETP", lay.etp)) if size > 1]
        if stated:
            warn("experts-divisible", f"{shape.name} is a dense model: expert parallelism "
                 f"({', '.join(said for _, said in stated)}) has nothing to split and is ignored", stated[0][0],
                 hint="remove " + " and ".join(name for name, _ in stated))
        return
    if shape.num_experts % lay.ep:
        legal = [d for d in divisors(shape.num_experts) if d <= max(lay.world, 1)]
        err("experts-divisible", f"{shape.num_experts} experts cannot be split over EP={lay.ep}",
            "expert_model_parallel_size", hint=f"nearest legal EP: {nearest(lay.ep, legal)}")


@rule
def heads_tp(recipe, args, shape, lay, err, warn):
    # megatron-core TransformerConfig.__post_init__: num_attention_heads % TP == 0.
    if shape.num_attention_heads % lay.tp:
        legal = divisors(shape.num_attention_heads)
        err("heads-tp", f"{shape.num_attention_heads} attention heads cannot be split over TP={lay.tp}",
            "tensor_model_parallel_size", hint=f"nearest legal TP: {nearest(lay.tp, legal)}")


@versioned_rule
def kv_groups_tp(recipe, args, shape, lay, err, warn, versions):
    # Evidence and the version gate: spec/ruleset.py and spec/support.py row kv-groups-replicated.
    groups = shape.num_key_value_heads
    if not groups % lay.tp:
        return
    mcore = versions.mcore
    replicated = not version_gaps("kv-groups-replicated", versions)
    version = ".".join(map(str, mcore))
    if replicated and not lay.tp % groups:
        # megatron-core SelfAttention.get_query_key_value_tensors all-gathers the QKV projection on every rank and keeps
        # one KV group; mcore-bridge 1.6.3's gated attention (model/modules/gated_self_attention.py GatedSelfAttention)
        # does the same and slices the output gate with the query -- only megatron-core's own gate is wrong
        # (gated-attention-tp).
        if shape.num_attention_heads % lay.tp == 0 and not _unsliced_gate(args, shape, lay, versions):
            warn("kv-groups-tp", f"TP={lay.tp} > {groups} KV groups: megatron-core {version} replicates each KV "
                 f"group's heads on {lay.tp // groups} ranks, each all-gathering the whole QKV projection (legal; "
                 "more KV memory and communication per rank)", "tensor_model_parallel_size")
        return
    legal = sorted({d for d in divisors(max(lay.world, 1)) if not groups % d or (replicated and not d % groups)})
    allowed = "a divisor or a multiple" if replicated else "a divisor"
    err("kv-groups-tp", f"{groups} KV groups (num_key_value_heads) and TP={lay.tp}: megatron-core {version} needs TP "
        f"to be {allowed} of {groups}", "tensor_model_parallel_size",
        hint=f"one of {legal}" + ("" if replicated else "; megatron-core >= 0.16 also accepts multiples"))


def _unsliced_gate(args, shape, lay, versions) -> list[str]:
    """Why megatron-core's own SelfAttention hands each rank the whole KV group's output gate ([] when it does not):
    TP above the KV groups with attention_output_gate, built by Megatron-Bridge's provider (spec/support.py row
    gated-attention-kv-replicated). mcore-bridge 1.6.3's GatedSelfAttention (model/modules/gated_self_attention.py) and
    Qwen3NextSelfAttention (USE_MCORE_GDN=0) override get_query_key_value_tensors and slice query and gate together."""
    if builds_with_mcore_bridge(args) or not config_value(args, "attention_output_gate", shape.gated_attention):
        return []
    # TP past the groups and not a multiple of them is kv-groups-tp's refusal (TransformerConfig, before any forward)
    if lay.tp <= shape.num_key_value_heads or lay.tp % shape.num_key_value_heads:
        return []
    return version_gaps("gated-attention-kv-replicated", versions)


@versioned_rule
def gated_attention_tp(recipe, args, shape, lay, err, warn, versions):
    gaps = _unsliced_gate(args, shape, lay, versions)
    if not gaps:
        return
    groups = shape.num_key_value_heads
    legal = [d for d in divisors(groups) if not shape.num_attention_heads % d]
    err("gated-attention-tp", f"TP={lay.tp} > {groups} KV groups with gated attention under bridge_backend "
        f"megatron-bridge: megatron-core's SelfAttention narrows each rank's query heads but not its output gate "
        f"({shape.num_attention_heads // groups} gate heads for {shape.num_attention_heads // lay.tp} query heads), "
        f"and _apply_output_gate fails on the first forward ({'; '.join(gaps)})", "tensor_model_parallel_size",
        hint=f"tensor_model_parallel_size one of {legal}, or bridge_backend: mcore-bridge (its GatedSelfAttention "
        "slices the gate with the query)")


@versioned_rule
def linear_attention_cp(recipe, args, shape, lay, err, warn, versions):
    # The gate is spec/support.py's cp-linear-attention row (megatron-core >= 0.18).
    if not shape.linear_num_value_heads or lay.cp == 1 or not version_gaps("cp-linear-attention", versions):
        return
    mcore = versions.mcore
    err("linear-attention-cp", f"{shape.name} has Gated DeltaNet layers: megatron-core {'.'.join(map(str, mcore))} "
        f"does not support context parallel with them (CP={lay.cp})", "context_parallel_size",
        hint="set context_parallel_size: 1, or target megatron-core >= 0.18 (`plan --target-versions "
        "megatron-core=0.18.0`, or env SWIFT_EXT_TARGET_VERSIONS in the recipe, when the cluster runs it)")


@versioned_rule
def linear_attention_packed(recipe, args, shape, lay, err, warn, versions):
    # The gate is spec/support.py's packed-linear-attention row. bridge_backend megatron-bridge builds megatron-core's
    # own GatedDeltaNet (Megatron-Bridge qwen3_next_bridge.py), which refuses any packed_seq_params; ms-swift passes
    # them whenever padding_free is on (its Megatron default; packing forces it) and sets variable_seq_lengths for
    # it (swift/megatron/model/utils.py _get_megatron_bridge_model). mcore-bridge's GatedDeltaNet takes packed input.
    if args.str("bridge_backend") != "megatron-bridge" or not shape.linear_num_value_heads:
        return
    key = "packing" if args.bool("packing") else "padding_free" if args.bool("padding_free") else None
    gaps = version_gaps("packed-linear-attention", versions)
    if key is None or not gaps:
        return
    err("linear-attention-packed", f"{shape.name} has Gated DeltaNet layers and bridge_backend megatron-bridge builds "
        f"megatron-core's own GatedDeltaNet, which raises 'GDN does not support packed sequence for now' on the packed "
        f"input {key} gives it ({'; '.join(gaps)})", key,
        hint="bridge_backend: mcore-bridge (its GatedDeltaNet takes packed input), or padding_free: false"
        + (" and packing: false" if key == "packing" else ""))


@rule
def linear_heads_tp(recipe, args, shape, lay, err, warn):
    # Gated DeltaNet (mcore-bridge's qwen3_5 linear attention) splits key and value heads over TP.
    if not shape.linear_num_value_heads:
        return
    for what, n in (("key", shape.linear_num_key_heads), ("value", shape.linear_num_value_heads)):
        if n % lay.tp:
            err("linear-heads-tp", f"{n} linear-attention {what} heads cannot be split over TP={lay.tp}",
                "tensor_model_parallel_size", hint=f"TP must divide {n}: one of {divisors(n)}")


RULES.extend(PIPELINE_RULES)  # layers-pp, pipeline-layout: planner/pipeline_rules.py


@rule
def global_batch(recipe, args, shape, lay, err, warn):
    # ms-swift megatron_args.py:1003: global_batch_size % (micro_batch_size * DP) == 0.
    if not lay.dp:
        return
    gbs, mbs = args.global_batch_size, args.micro_batch_size
    step = mbs * lay.dp
    if gbs % step:
        lower, upper = (gbs // step) * step, (gbs // step + 1) * step
        err("global-batch", f"global_batch_size {gbs} is not divisible by micro_batch_size*DP = {mbs}*{lay.dp} = {step}",
            "global_batch_size", hint=f"nearest legal: {' or '.join(str(v) for v in (lower, upper) if v > 0)}")


@rule
def sequence_parallel(recipe, args, shape, lay, err, warn):
    # megatron-core moe_layer.py MoELayer.forward raises in training when TP > 1 without sequence
    # parallelism (any EP); model_parallel_config.py only warns for EP > 1. megatron_extra_kwargs' value wins
    # (ms-swift get_mcore_model_config updates the config with it last).
    sp = is_on(args, "sequence_parallel")
    if lay.tp > 1 and not sp:
        if shape.is_moe:
            err("sequence-parallel", f"MoE training with TP={lay.tp} requires sequence_parallel: true (megatron-core's "
                "MoELayer refuses it otherwise)", "sequence_parallel")
        else:
            warn("sequence-parallel", f"TP={lay.tp} without sequence_parallel keeps full activations on every TP rank",
                 "sequence_parallel", hint="set sequence_parallel: true")
    if args.bool("tp_comm_overlap") and not (args.bool("sequence_parallel") and lay.tp > 1):
        # ms-swift megatron_args.py:949 (its own argument, before megatron_extra_kwargs reaches the config), after
        # MegatronArguments.__post_init__ turned sequence_parallel off at TP 1 (megatron_args.py:943)
        err("sequence-parallel", "tp_comm_overlap needs sequence_parallel: true" + (
            f" and TP > 1 (at TP={lay.tp} ms-swift turns sequence_parallel off first)"
            if args.bool("sequence_parallel") else ""), "tp_comm_overlap",
            hint="drop tp_comm_overlap" if lay.tp <= 1 else "sequence_parallel: true")


@rule
def context_parallel(recipe, args, shape, lay, err, warn):
    # No length is refused: ms-swift 4.6 pads each sample to a multiple of 2*CP (template/base.py
    # Template._handle_megatron_cp) and the batch to a multiple of TP*CP under SP (megatron/utils/utils.py
    # get_padding_to), so the 2*CP chunks megatron-core's get_batch_on_this_cp_rank cuts always divide, whatever
    # max_length is; and an unset max_length is the model's max_model_len (BaseArguments.__post_init__).
    if lay.cp == 1:
        return
    max_length = args.int("max_length")
    if max_length is not None and max_length < 4096 and not _trains_completions(recipe, args):
        # GRPO/GKD train prompt + completion together (memory.py counts both), so a short max_length
        # alone says nothing there (slime's GLM-4.5 script: CP=2 on 32k-token responses).
        warn("context-parallel", f"CP={lay.cp} on {max_length}-token sequences costs communication for little memory",
             "context_parallel_size")


def _trains_completions(recipe, args) -> bool:
    return recipe.command == "rlhf" and args.str("rlhf_type") in ("grpo", "gkd")


@rule
def packing_modes(recipe, args, shape, lay, err, warn):
    # ms-swift megatron_args.py:852 (group_by_length vs padding_free); megatron_base_args.py:36 (packing forces it).
    packing = args.bool("packing")
    padding_free = args.bool("padding_free") or packing
    if args.bool("group_by_length") and padding_free:
        why = "packing (which forces padding_free)" if packing else "padding_free"
        err("packing-modes", f"group_by_length cannot be combined with {why}", "group_by_length",
            hint="set padding_free: false and packing: false, or drop group_by_length")
    if packing and args.has("padding_free") and args.stated("padding_free") is False:  # before the coercion
        warn("packing-modes", "packing: true forces padding_free on; padding_free: false is ignored by ms-swift",
             "padding_free")


@rule
def recompute(recipe, args, shape, lay, err, warn):
    # ms-swift megatron_args.py:849 (MegatronArguments.__post_init__, on its own arguments): selective granularity
    # with a recompute_method raises.
    if args.str("recompute_granularity") == "selective" and args.has("recompute_method") and args.str("recompute_method"):
        err("recompute", "recompute_method only applies to recompute_granularity: full", "recompute_method",
            hint="drop recompute_method, or use recompute_granularity: full")
    # megatron-core TransformerConfig.__post_init__: full needs a recompute_method and recompute_num_layers, selective
    # must not set recompute_num_layers. It judges the config's values, and megatron_extra_kwargs' win there
    # (ms-swift get_mcore_model_config: kwargs.update last); nothing else in ms-swift reads these arguments, so a
    # full recompute whose method and count come from megatron_extra_kwargs runs.
    granularity = granularity_of(args)
    if granularity not in (None, "full", "selective"):
        # Only megatron_extra_kwargs gets here (ms-swift's parser limits the argument to selective/full/none and
        # turns 'none' into None): TransformerConfig.__post_init__ raises 'When using recompute_granuarlity: none
        # must be "full"or "selective"' -- the string "none" is not megatron-core's None.
        err("recompute", f"megatron_extra_kwargs gives recompute_granularity "
            f"{config_value(args, 'recompute_granularity')!r}: the model config takes "
            "it as written (only ms-swift's argument parsing turns 'none' into None) and megatron-core's "
            "TransformerConfig refuses anything but full, selective or null", "megatron_extra_kwargs",
            hint="megatron_extra_kwargs: {recompute_granularity: null}, or args.recompute_granularity: none")
        return
    if granularity == "full" and config_value(args, "recompute_method") is None:
        err("recompute", "recompute_granularity: full needs recompute_method (uniform or block)",
            flag(args, "recompute_granularity"))
    num = config_value(args, "recompute_num_layers")
    if granularity == "full" and num is None and not from_extra(args, "recompute_num_layers"):
        # (megatron_extra_kwargs' explicit null: mcore_config_rules.recompute_layer_counts says it)
        err("recompute", "recompute_granularity: full needs recompute_num_layers (1 .. layers per pipeline stage)",
            "recompute_num_layers", hint="recompute_num_layers: 1")
    elif granularity == "selective" and num is not None:
        err("recompute", "recompute_num_layers must be unset with recompute_granularity: selective",
            flag(args, "recompute_num_layers"))


@rule
def save_limit(recipe, args, shape, lay, err, warn):
    limit = args.int("save_total_limit")
    if limit is not None and limit < 2:  # ms-swift megatron_args.py:913
        err("save-total-limit", f"save_total_limit must be >= 2, got {limit}", "save_total_limit")


# mtp_num_layers is ms-swift's argument alone: mcore-bridge (1.6.3 and 1.6.5) reads no MTP count from config.json
# (config/parser.py config_mapping has no num_nextn_predict_layers / mtp_num_hidden_layers / num_mtp_modules for
# it), builds that many MTP layers (model/register.py ModelLoader.build_model) and loads each from the checkpoint,
# randomly initialising one it does not find (bridge/gpt_bridge.py GPTBridge._convert_mtp_layer: "MTP Layer ...
# safetensors weights not found, this part will be randomly initialized."). ms-swift's export then writes the new
# count into config.json (swift/megatron/init.py _patch_mcore_bridge.save_weights). So more MTP layers than the checkpoint has is a
# setup that builds and trains -- from scratch for the extra layers: said, not refused.
@rule
def mtp_layers(recipe, args, shape, lay, err, warn):
    mtp = args.int("mtp_num_layers")
    if mtp and mtp > shape.mtp_num_layers:
        fresh = f"{mtp - shape.mtp_num_layers} of them" if shape.mtp_num_layers else "all of them"
        warn("mtp-layers", f"mtp_num_layers {mtp} but {shape.name}'s config.json has {shape.mtp_num_layers} MTP "
             f"layer(s) (mtp_num_hidden_layers / num_nextn_predict_layers): mcore-bridge builds {mtp} MTP layers and "
             f"randomly initialises the ones the checkpoint has no weights for ({fresh}), and the exported "
             f"config.json says {mtp}", "mtp_num_layers",
             hint=(f"mtp_num_layers: {shape.mtp_num_layers} to train only the checkpoint's MTP layers" if
                   shape.mtp_num_layers else "leave mtp_num_layers unset unless the MTP head is to be trained from "
                   "scratch"))


@rule
def fp8_param(recipe, args, shape, lay, err, warn):
    # megatron-core TransformerConfig.__post_init__: "fp8_param must be used together with fp8 mode",
    # "fp4 and fp8 cannot be used simultaneously"; ms-swift maps fp8_param_gather -> fp8_param.
    if args.bool("fp8_param_gather") and not args.str("fp8_format"):
        err("fp8-param", "fp8_param_gather needs fp8_format (e4m3 or hybrid)", "fp8_param_gather",
            hint="set fp8_format, or drop fp8_param_gather")
    if args.bool("fp4_param_gather") and not args.str("fp4_format"):  # "fp4_param must be used together with fp4 mode"
        err("fp8-param", "fp4_param_gather needs fp4_format (e2m1)", "fp4_param_gather", hint="set fp4_format: e2m1")
    if args.str("fp8_format") and args.str("fp4_format"):
        err("fp8-param", "fp4_format and fp8_format cannot be used together", "fp4_format")


@versioned_rule
def fp8_gpu(recipe, args, shape, lay, err, warn, versions):
    fmt = args.str("fp8_format")
    if not fmt:
        return
    fp8_recipe = args.str("fp8_recipe") or "delayed"
    # The Transformer Engine / CUDA versions and the GPUs each recipe needs: spec/support.py fp8-* rows (a version
    # not known here is not judged: plan's notes say which, spec.support.unknown_notes).
    from swift_ext.spec.support import BY_FEATURE, CUDA, gpu_needs

    feature = f"fp8-{fp8_recipe}"
    if feature not in BY_FEATURE:
        return  # a recipe name ms-swift does not know: check_args reports it
    for gap in version_gaps(feature, versions):
        cuda = gap.startswith("CUDA")  # Versions.describe(CUDA)
        err("fp8-gpu", f"FP8 recipe '{fp8_recipe}' is not supported with {gap}", "fp8_recipe",
            hint=f"a torch built for CUDA >= {BY_FEATURE[feature].needs[CUDA]}, or fp8_recipe tensorwise" if cuda
            else "use fp8_recipe delayed, or a newer transformer-engine")
    gpu = recipe.launch.gpu
    if gpu is None:
        warn("fp8-gpu", f"FP8 ({fp8_recipe}) needs {gpu_needs(feature)}; launch.gpu is not set",
             "fp8_format", hint="set launch.gpu so this can be checked")
        return
    cc = GPUS[gpu].compute_capability
    gap = capability_gap(feature, cc)
    if gap:
        runs = [r for r in ("tensorwise", "blockwise") if not capability_gap(f"fp8-{r}", cc)]
        err("fp8-gpu", f"FP8 recipe '{fp8_recipe}' cannot run on {gpu}: {gap} (it needs {gpu_needs(feature)})",
            "fp8_recipe", hint=f"fp8_recipe {' or '.join(runs)}, which {gpu} runs"
            if BY_FEATURE[feature].excluded_capability and runs else
            "use an H100/H200/H20-class GPU, or drop fp8_format")


@versioned_rule
def fp4_gpu(recipe, args, shape, lay, err, warn, versions):
    # fp4_format (e2m1, fp4_recipe nvfp4): the support table's fp4-nvfp4 row -- TE >= 2.7 for megatron-core to build the
    # recipe, a Blackwell data-centre GPU (compute capability >= 10.0) for TE's autocast to run it.
    if not args.str("fp4_format"):
        return
    from swift_ext.spec.support import gpu_needs

    feature = "fp4-nvfp4"
    for gap in version_gaps(feature, versions):
        err("fp4-gpu", f"FP4 (NVFP4) is not supported with {gap}", "fp4_format",
            hint="a newer transformer-engine, or fp8_format instead of fp4_format")
    gpu = recipe.launch.gpu
    if gpu is None:
        warn("fp4-gpu", f"FP4 (NVFP4) needs {gpu_needs(feature)}; launch.gpu is not set", "fp4_format",
             hint="set launch.gpu so this can be checked")
        return
    capability = GPUS[gpu].compute_capability
    gap = capability_gap(feature, capability)
    if gap and capability is not None and tuple(capability) >= (12, 0) and _nvfp4_round_to_nearest(recipe.env):
        # 12.x is excluded for the default recipe's RHT / stochastic-rounding kernels only: TE's NVFP4BlockScaling
        # (built with no arguments by megatron-core's get_fp4_recipe) reads disable_rht / disable_stochastic_rounding
        # from these env vars, and with both off the NVFP4 GEMMs run there (NVIDIA/TransformerEngine#3062's repro;
        # PR #3195's support matrix: 12.x "training without RHT and stochastic rounding"). Said, not refused: a TE
        # release that predates the env switches still runs the default recipe.
        warn("fp4-gpu", f"FP4 (NVFP4) on {gpu} (compute capability {capability[0]}.{capability[1]}): the recipe's env "
             "turns off the Hadamard transform and stochastic rounding (NVTE_NVFP4_DISABLE_RHT / "
             "NVTE_NVFP4_DISABLE_STOCHASTIC_ROUNDING), the one NVFP4 recipe 12.x runs; the full recipe needs 10.x",
             "fp4_format", hint="keep both switches in the launch environment (a B200-class GPU for the full recipe)")
    elif gap:
        err("fp4-gpu", f"FP4 (NVFP4) cannot run on {gpu}: {gap} (it needs {gpu_needs(feature)}; Transformer Engine "
            "fails at the first forward step)", "fp4_format",
            hint="fp8_format with fp8_recipe blockwise or tensorwise on Hopper, or a B200-class GPU for FP4")


def _nvfp4_round_to_nearest(env) -> bool:
    """The recipe's env switches TE's default NVFP4 recipe to round-to-nearest without the Hadamard transform
    (transformer_engine/common/recipe NVFP4BlockScaling: `os.getenv(NAME, "0") == "1"`)."""
    env = env or {}
    return all(str(env.get(name, "")).strip() == "1"
               for name in ("NVTE_NVFP4_DISABLE_RHT", "NVTE_NVFP4_DISABLE_STOCHASTIC_ROUNDING"))


# The Megatron GRPO rule (with the reward-name checks) lives in grpo_rules.py; it runs last, as it always did.
rule(grpo)
# Silent-misbehaviour rules both engines share (MTP untrained, missing plugin files, expert LoRA in vLLM).
for _shared in ENGINE_RULES:
    rule(_shared)
# MoE dispatcher / MTP-stage rules (moe_rules.py); megatron-core's config refusals (mcore_config_rules.py).
for _moe in (*MOE_RULES, *MCORE_CONFIG_RULES, *MCORE_FEATURE_RULES, *MCORE_BRIDGE_RULES):
    rule(_moe)
# The attention backend ms-swift's model build accepts for the model (attention_rules.py).
for _attention in ATTENTION_RULES:
    rule(_attention)
# The TP communication overlap's fixed-size userbuffers (comm_overlap_rules.py).
for _overlap in COMM_OVERLAP_RULES:
    rule(_overlap)
# deterministic_mode through megatron_extra_kwargs (determinism_rules.py).
for _determinism in DETERMINISM_RULES:
    rule(_determinism)
# The interleaved pipeline schedule's micro-batch count (pipeline_schedule.py).
for _schedule in SCHEDULE_RULES:
    rule(_schedule)
# Numerics settings reports saw train wrong (precision_rules.py).
for _precision in PRECISION_RULES:
    rule(_precision)
