"""MoE token-dispatcher rules and the pipeline-layout MTP-stage rule: combinations megatron-core 0.16.1
(or ms-swift's model build) refuses only once the model is being built on every rank, checked first.
Registered with layout.py's rules (engine megatron)."""

from __future__ import annotations

from swift_ext.msswift.conventions import is_true
from swift_ext.planner.mcore_config import (builds_with_mcore_bridge, config_value, dispatcher_of, flag, from_extra, is_on,
                                            variable_seq_lengths)
from swift_ext.planner.model_shape import ModelShape
from swift_ext.planner.pipeline_stages import parse_pipeline_layout
from swift_ext.spec.gpus import GPUS


# Evidence: megatron-core 0.16.1 transformer/transformer_config.py TransformerConfig.__post_init__:
# "Token dispatcher type: allgather does not support variable sequence length, please use alltoall
# dispatcher instead" whenever variable_seq_lengths (whatever the model), which ms-swift 4.6 turns on by default
# through either bridge_backend (mcore_config.variable_seq_lengths; mcore-bridge 1.6.5 keeps the default, :299).
def allgather_dispatcher_variable_lengths(recipe, args, shape: ModelShape, lay, err, warn):
    if dispatcher_of(args) != "allgather":
        return
    if not variable_seq_lengths(args):
        return
    if not builds_with_mcore_bridge(args):
        why = "packing (which forces padding_free)" if args.bool("packing") else "padding_free (ms-swift's default)"
        err("moe-dispatcher", f"moe_token_dispatcher_type allgather with {why}: ms-swift builds the model with "
            "variable_seq_lengths, which megatron-core's allgather dispatcher refuses",
            flag(args, "moe_token_dispatcher_type"),
            hint="use moe_token_dispatcher_type: alltoall (ms-swift's default), or padding_free: false without packing")
        return
    err("moe-dispatcher", "moe_token_dispatcher_type allgather: mcore-bridge (ms-swift's default bridge_backend) "
        "builds the model with variable_seq_lengths=True, which megatron-core's allgather dispatcher refuses",
        flag(args, "moe_token_dispatcher_type"),
        hint="use moe_token_dispatcher_type: alltoall (ms-swift's default); with padding_free: false and no "
             "packing, megatron_extra_kwargs: {variable_seq_lengths: false} also lets allgather build")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__, inside the shared-expert block:
# "moe_shared_expert_overlap only works with alltoall token dispatcher." (only models with shared
# experts reach it: ms-swift's examples set moe_shared_expert_overlap on Qwen3-MoE, which has none).
def shared_expert_overlap_dispatcher(recipe, args, shape: ModelShape, lay, err, warn):
    if not is_on(args, "moe_shared_expert_overlap") or dispatcher_of(args) == "alltoall":
        return
    if not shape.is_moe or not shape.shared_expert_intermediate_size:
        return
    err("moe-dispatcher", f"moe_shared_expert_overlap only works with the alltoall token dispatcher "
        f"({shape.name} has shared experts; moe_token_dispatcher_type is {dispatcher_of(args)})",
        flag(args, "moe_shared_expert_overlap"),
        hint="drop moe_shared_expert_overlap, or use moe_token_dispatcher_type: alltoall")


# Evidence (report): modelscope/ms-swift issue 9823 (2026-07-30; Qwen3.5-397B-A17B, layout "E(|tt)*30,|mL"):
# mcore-bridge builds the MTP block from the current virtual stage's decoder layer specs, so a stage
# holding MTP ('m') and no decoder layer ('t') fails with an IndexError at model build; the fix proposed in
# ms-swift PR 9827 was closed unmerged. Scope: ms-swift with mcore-bridge (4.x) and an explicit layout.
# A warning, not a refusal: megatron-core itself accepts such a layout, and a later mcore-bridge may too.
# bridge_backend megatron-bridge builds through Megatron-Bridge's GPTModelProvider.provide, whose mtp_block_spec
# (src/megatron/bridge/models/gpt_provider.py) takes the default layer spec when the stage has no decoder layer -- as
# Megatron-LM's pretrain_gpt.py does; Megatron-Bridge's own DeepSeek-V3 presets run "Et|(tt|)*30mL": no warning there.
def mtp_only_layout_stage(recipe, args, shape, lay, err, warn):
    if args.str("bridge_backend") == "megatron-bridge":
        return
    text = args.str("pipeline_model_parallel_layout")
    stages = parse_pipeline_layout(text) if text else None
    if not stages:
        return
    lonely = [i for i, stage in enumerate(stages) if "m" in stage and "t" not in stage]
    if lonely:
        warn("pipeline-layout-mtp-stage", f"pipeline_model_parallel_layout {text!r}: stage {lonely[0]} holds the "
             "MTP layer(s) but no decoder layer; ms-swift's model build (mcore-bridge) takes the MTP block's "
             "layer spec from that stage's decoder layers and fails there (ms-swift issue 9823)",
             "pipeline_model_parallel_layout", hint="move at least one decoder layer 't' into the stage with 'm'")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__: "Expert bias for aux-loss-free routing only
# supports sigmoid score function." ms-swift 4.6 has no moe_router_enable_expert_bias argument: it reaches the
# config through megatron_extra_kwargs, while the score function comes from the model (mcore-bridge
# hf_to_mcore_config: sigmoid for DeepSeek-V3/GLM-4.5-style routers, softmax for Qwen MoE and gpt-oss) unless the
# same kwargs override it. Report: NVIDIA/Megatron-LM#1971 (GPT-OSS with expert bias and a softmax router).
# With a sigmoid router the config builds, but a checkpoint without expert bias (the model's router softmax and the
# same kwargs switching it to sigmoid, or Llama-4's sigmoid router without bias) then fails to load: mcore-bridge
# 1.6.3 bridge/gpt_bridge.py GPTBridge._set_router (`if moe_router_enable_expert_bias: _set_state_dict(...,
# 'router.expert_bias', ..., self.hf_expert_bias_key)`, the default key 'gate.e_score_correction_bias') and
# _set_state_dict (`hf_state_dict[hf_key].load()` on the layer's plain dict): KeyError. ms-swift 4.6
# trainers/base.py _prepare_peft_model loads the HF weights that way whenever mcore_model is unset. Report:
# ms-swift#6793 (Qwen3-30B-A3B-Instruct-2507 with --moe_router_enable_expert_bias true and
# --moe-router-score-function sigmoid fails). Scope: engine megatron, bridge_backend mcore-bridge, mcore_model unset.
def expert_bias_needs_sigmoid(recipe, args, shape: ModelShape, lay, err, warn):
    # megatron_extra_kwargs: ms-swift 4.6 swift/megatron/model/utils.py `kwargs.update`s the TransformerConfig with it
    if not is_on(args, "moe_router_enable_expert_bias") or not shape.is_moe:
        return
    score = config_value(args, "moe_router_score_function") or shape.router_score_function
    if score != "sigmoid":
        err("moe-expert-bias", f"megatron_extra_kwargs sets moe_router_enable_expert_bias, but {shape.name}'s "
            f"router scores with {score}: megatron-core refuses expert bias (aux-loss-free routing) for anything "
            "but a sigmoid router", "megatron_extra_kwargs",
            hint="drop moe_router_enable_expert_bias (keep the auxiliary load-balancing loss), or train a model "
            "whose router is sigmoid")
        return
    if not _expert_bias_missing_from_checkpoint(args, shape):
        return
    err("moe-expert-bias", f"megatron_extra_kwargs sets moe_router_enable_expert_bias on {shape.name}, whose "
        "checkpoint carries no expert-bias tensor (its router is "
        f"{shape.router_score_function}{' without expert bias' if shape.router_score_function == 'sigmoid' else ''}"
        "): loading the HF weights, mcore-bridge reads each router's expert bias from the checkpoint and stops with a "
        "KeyError on the first MoE layer", "megatron_extra_kwargs",
        hint="drop moe_router_enable_expert_bias and moe_router_score_function from megatron_extra_kwargs (the "
             "model's routing comes from config.json)")


# Whether the checkpoint holds the routers' expert bias, as mcore-bridge 1.6.3 config/parser.py hf_to_mcore_config
# decides moe_router_enable_expert_bias: on for sigmoid routers unless the model type turns it off (llama4: sigmoid
# without bias), off for softmax routers. GPTBridge._set_router loads router.expert_bias from the checkpoint's
# hf_expert_bias_key whenever the running config has expert bias on: `hf_state_dict[hf_key]` on a plain dict.
def _checkpoint_has_expert_bias(shape: ModelShape) -> bool:
    return shape.router_score_function == "sigmoid" and shape.model_type != "llama4"


def _expert_bias_missing_from_checkpoint(args, shape: ModelShape) -> bool:
    """Expert bias on where mcore-bridge loads HF weights (mcore_model unset) that hold none: the KeyError above."""
    return is_on(args, "moe_router_enable_expert_bias") and not _checkpoint_has_expert_bias(shape) \
        and not args.str("mcore_model") and builds_with_mcore_bridge(args)


# Evidence (reports; DeepEP is not a megatron-core check): megatron-core 0.16.1 transformer/moe/token_dispatcher.py
# MoEFlexTokenDispatcher runs DeepEP's kernels (transformer/moe/fused_a2a.py: deep_ep.Buffer) when moe_enable_deepep
# is set, or the flex dispatcher keeps its default backend 'deepep'. DeepEP's intranode kernels need NVLink-connected
# sm80 (A100/A800), sm90 or sm100 GPUs: deepseek-ai/DeepEP#162 ("The intranode kernels can support Ampere GPUs (tested
# internally with A100 NVLink connections, PCIe not working)"), deepseek-ai/DeepEP#481 (4 x A6000, sm86 over PCIe:
# the sm86 build does not import), nvidia-cosmos/cosmos-rl#441 (DeepEP disabled below Hopper: "it does not work with
# older GPUs like L40"); the sm86/sm89 cards of the GPU table (A10, L20, L40S, RTX 4090) are PCIe boards, and V100 is
# below sm80 (refused: no DeepEP build; the PCIe boards are said, the maintainers' word being "not working" rather
# than a check in the code). Across nodes DeepEP's internode kernels are Hopper's: deepseek-ai/DeepEP#234 ("For
# intranode kernels, yes (with NVLink connections)! For internode kernels, currently not" on A800), #149 ("For
# internode kernels, we don't have plan to support") -- said (untested rather than refused by DeepEP's code) when the expert group
# (ETP x EP, consecutive ranks) spans nodes on sm80. Scope: engine megatron, MoE models, launch.gpu named.
def deepep_gpu(recipe, args, shape: ModelShape, lay, err, warn):
    backend = str(config_value(args, "moe_flex_dispatcher_backend") or "deepep")
    deepep = is_on(args, "moe_enable_deepep") or (dispatcher_of(args) == "flex" and backend == "deepep")
    gpu = recipe.launch.gpu
    if not deepep or not shape.is_moe or gpu not in GPUS:
        return
    where = flag(args, "moe_enable_deepep" if is_on(args, "moe_enable_deepep") else "moe_token_dispatcher_type")
    cc = GPUS[gpu].compute_capability
    hint = "moe_token_dispatcher_type: alltoall (ms-swift's default) without moe_enable_deepep"
    if cc < (8, 0):
        err("deepep-gpu", f"DeepEP token dispatch on {gpu} (compute capability {cc[0]}.{cc[1]}): DeepEP's kernels "
            "are built for sm80 and later (NVLink-connected A100/A800, Hopper, Blackwell)", where, hint=hint)
    elif cc in ((8, 6), (8, 9)):
        warn("deepep-gpu", f"DeepEP token dispatch on {gpu} (compute capability {cc[0]}.{cc[1]}, a PCIe board "
             "without NVLink): DeepEP's intranode kernels were tested only over NVLink ('PCIe not working', "
             "deepseek-ai/DeepEP#162; an sm86 PCIe build does not import, #481; nvidia-cosmos/cosmos-rl#441 turned "
             "DeepEP off for L40-class GPUs)", where, hint=hint)
    elif cc == (8, 0) and lay.gpus_per_node and lay.etp * lay.ep > lay.gpus_per_node:
        warn("deepep-gpu", f"DeepEP token dispatch on {gpu} with an expert group of ETP x EP = {lay.etp * lay.ep} "
             f"ranks over {lay.gpus_per_node} GPUs per node: the group spans nodes, and DeepEP's internode "
             "kernels are built for Hopper; on Ampere only the intranode (NVLink) kernels are supported "
             "(deepseek-ai/DeepEP#234, #149)", where, hint=hint + ", or an expert group within one node")


# Evidence (reports; the failing code is DeepEP's hybrid-ep branch, not installed here): megatron-core 0.16.1
# transformer/moe/token_dispatcher.py _HybridEPManager.setup_metadata/dispatch hands each rank's own token count to
# hybrid_ep_dispatch (transformer/moe/fused_a2a.py) as it comes -- no padding to a common length (later Megatron-Core
# added per-layer uneven-input padding; NVIDIA-NeMo/RL#4079) -- and ms-swift 4.6 pads a micro-batch only to a multiple
# of TP (with SP), CP and the FP8 block (swift/megatron/utils/utils.py get_padding_to): padding-free / packed batches
# and padded ones alike differ in length from rank to rank of the expert group. HybridEP then hangs (ranks disagree on
# reallocating its buffer and skip an all-gather) or mixes routing maps of different lengths (deepseek-ai/DeepEP#604,
# SFT with variable sequence lengths), fails to JIT-compile when a rank's count is not a multiple of its chunk
# (NVIDIA-NeMo/Megatron-Bridge#3294, Qwen3.5 MoE, "MAX_NUM_OF_TOKENS_PER_RANK must be multiple of
# NUM_OF_TOKENS_PER_CHUNK"); ms-swift PR 8393 (padding to max_length for hybridep, after a hang on Qwen3-30B-A3B) was
# closed unmerged, NeMo-RL (#2964) and NeMo-Automodel (#3641) pad every rank to one count before dispatch. A warning:
# the failure is DeepEP's, reported rather than read in an installed line. Scope: engine megatron, MoE models, the
# flex dispatcher with moe_flex_dispatcher_backend hybridep (only megatron_extra_kwargs sets it in ms-swift 4.6).
def hybridep_token_counts(recipe, args, shape: ModelShape, lay, err, warn):
    if dispatcher_of(args) != "flex" or not shape.is_moe or is_on(args, "moe_enable_deepep"):
        return  # moe_enable_deepep with hybridep is moe-deepep's error
    if str(config_value(args, "moe_flex_dispatcher_backend") or "deepep") != "hybridep":
        return
    mode = ("packed" if args.bool("packing") else "padding-free" if args.bool("padding_free")
            else "padded to each batch's longest")
    warn("moe-hybridep-lengths", f"the flex dispatcher's HybridEP backend with ms-swift's {mode} micro-batches: "
         "megatron-core 0.16 dispatches each rank's own token count, ms-swift pads only to TP/CP/FP8 multiples, and "
         "HybridEP needs one count across the expert group -- reports saw it hang or mix routing maps "
         "(deepseek-ai/DeepEP#604; ms-swift PR 8393, unmerged) and fail to JIT-compile on an unaligned count "
         "(NVIDIA-NeMo/Megatron-Bridge#3294)", "megatron_extra_kwargs",
         hint="moe_token_dispatcher_type: alltoall (ms-swift's default), or the deepep backend -- unless every sample "
              "(or pack) is exactly max_length tokens (pretraining text cut to length), the one case ms-swift's "
              "batches all match")


# The ETP x EP group sizes DeepEP's Buffer has a dispatch / combine config for (deep_ep buffer.py
# Buffer.get_dispatch_config / get_combine_config: `assert num_ranks in config_map, f'Unsupported number of EP ranks:
# {num_ranks}'`). The union over DeepEP's releases: 48 and 96 were added after the first (deep_ep/buffer.py at
# 04b06f7 has the other ten; deep_ep/buffers/legacy.py on main all twelve), so a size only an older DeepEP lacks is
# not judged.
DEEPEP_GROUP_SIZES = (2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 144, 160)
# DeepEP's normal (high-throughput) kernels take 8 consecutive ranks for one NVLink node (NUM_MAX_NVL_PEERS, static-
# asserted 8: rdma_rank = rank / 8) and reach the other nodes over RDMA.
DEEPEP_NODE_GPUS = 8


# Evidence: megatron-core 0.16.1 transformer/moe/fused_a2a.py get_buffer builds DeepEP's Buffer over the flex
# dispatcher's group -- the expert tensor x expert model parallel group (token_dispatcher.py MoEFlexTokenDispatcher:
# tp_ep_group), ETP x EP consecutive ranks -- asking Buffer.get_dispatch_config(group.size()) and
# get_combine_config(group.size()) first, which assert the size is one DeepEP has a config for
# (deepseek-ai/DeepEP#541: "AssertionError: Unsupported number of EP ranks: 12"; #464: no more than 160 = 8 x 20
# ranks). That fails on every rank at the first MoE dispatch: refused. A group wider than a node of fewer than 8 GPUs
# breaks DeepEP's 8-GPUs-a-node assumption (the ranks it takes for NVLink peers sit on other nodes): said, from reports
# (deepseek-ai/DeepEP#392, the maintainer: "the current normal kernels limits the number of GPUs per node to 8, the
# normal mode doesn't support GB200 yet"; #104: one GPU a node fails DeepEP's buffer assertion; Megatron-Bridge's
# flex_dispatcher_backend.py refuses DeepEP on GB200, four GPUs a node). Scope: engine megatron, MoE models, the
# DeepEP backend (moe_enable_deepep, or the flex dispatcher's default backend), ETP x EP above 1 (below:
# moe-dispatcher).
def deepep_group(recipe, args, shape: ModelShape, lay, err, warn):
    backend = str(config_value(args, "moe_flex_dispatcher_backend") or "deepep")
    deepep = is_on(args, "moe_enable_deepep") or (dispatcher_of(args) == "flex" and backend == "deepep")
    group = lay.etp * lay.ep
    if not deepep or not shape.is_moe or group <= 1 or not lay.pp or (lay.world // lay.pp) % group:
        return  # an expert grid that does not divide the world is expert-layout's error
    where = flag(args, "moe_enable_deepep" if is_on(args, "moe_enable_deepep") else "moe_token_dispatcher_type")
    if group not in DEEPEP_GROUP_SIZES:
        per_stage = lay.world // lay.pp
        eps = [n // lay.etp for n in DEEPEP_GROUP_SIZES if n % lay.etp == 0 and per_stage % n == 0
               and shape.num_experts % (n // lay.etp) == 0]
        err("deepep-group", f"DeepEP token dispatch over an expert group of ETP x EP = {group} ranks: DeepEP has no "
            f"dispatch/combine config for {group} ranks (\"Unsupported number of EP ranks: {group}\" at the first MoE "
            f"dispatch); it takes {', '.join(map(str, DEEPEP_GROUP_SIZES))}", "expert_model_parallel_size",
            hint=(f"expert_model_parallel_size {' or '.join(map(str, eps[-3:]))} (with ETP {lay.etp}), or " if eps
                  else "") + "moe_token_dispatcher_type: alltoall (ms-swift's default) without moe_enable_deepep")
    elif lay.gpus_per_node and lay.gpus_per_node < DEEPEP_NODE_GPUS and group > lay.gpus_per_node:
        warn("deepep-group", f"DeepEP token dispatch over an expert group of ETP x EP = {group} ranks on nodes of "
             f"{lay.gpus_per_node} GPUs: DeepEP's normal kernels take 8 consecutive ranks as one NVLink node, so "
             "part of each 'node' sits on another machine (deepseek-ai/DeepEP#392: GB200's 4 GPUs a node are not "
             "supported; #104; Megatron-Bridge refuses DeepEP there)", where,
             hint=f"an expert group within one node (ETP x EP <= {lay.gpus_per_node}), or moe_token_dispatcher_type: "
                  "alltoall without moe_enable_deepep")


def _router_groups(value) -> int:
    """Group-limited routing's group count as routing sees it: unset, 0 and 1 all route over one group."""
    return value if type(value) is int and value > 1 else 1


# Evidence (reports; nothing refuses it): ms-swift 4.6 has no argument for the router's top-k, score function,
# pre-softmax or group-limited routing -- mcore-bridge derives them from the checkpoint's config.json
# (config/parser.py hf_to_mcore_config: num_experts_per_tok, scoring_func, norm_topk_prob, n_group, topk_group) and
# megatron_extra_kwargs, applied last (swift/megatron/model/utils.py get_mcore_model_config), replaces them. Another
# value builds and trains, but the pretrained router and experts then select and weight experts as they were not
# trained to: Pai-Megatron-Patch#562 (Moonlight-16B-A3B run with moe-router-topk 8 where config.json says 6; the
# maintainers fixed their script), #529 (Moonlight SFT "loss is too large" with 8 groups / group top-k 4 where the
# model routes over one group). A value equal to the model's is not said, nor one the model leaves unset. Scope:
# engine megatron, MoE models, megatron_extra_kwargs setting moe_router_topk, moe_router_score_function,
# moe_router_pre_softmax, moe_router_num_groups or moe_router_group_topk (an invalid combination is moe-router's).
def router_override(recipe, args, shape: ModelShape, lay, err, warn):
    extra = args.mapping("megatron_extra_kwargs")
    if not shape.is_moe or not extra or _expert_bias_missing_from_checkpoint(args, shape):
        return  # the last: the weights do not load at all (moe-expert-bias' error)
    changed = []
    if "moe_router_topk" in extra and type(extra["moe_router_topk"]) is int and shape.num_experts_per_tok \
            and extra["moe_router_topk"] != shape.num_experts_per_tok:
        changed.append(f"moe_router_topk {extra['moe_router_topk']} (config.json: {shape.num_experts_per_tok})")
    score = extra.get("moe_router_score_function")
    if isinstance(score, str) and score != shape.router_score_function:
        changed.append(f"moe_router_score_function {score} (the model's router: {shape.router_score_function})")
    pre = extra.get("moe_router_pre_softmax")
    softmax = (score or shape.router_score_function) == "softmax"
    if isinstance(pre, bool) and pre != shape.router_pre_softmax and softmax:
        changed.append(f"moe_router_pre_softmax {str(pre).lower()} (the model's: "
                       f"{str(shape.router_pre_softmax).lower()})")
    model_groups = _router_groups(shape.router_num_groups)
    groups = _router_groups(extra.get("moe_router_num_groups", shape.router_num_groups))
    if groups != model_groups:
        changed.append(f"moe_router_num_groups {groups} (config.json's n_group: {model_groups})")
    elif groups > 1 and "moe_router_group_topk" in extra and type(extra["moe_router_group_topk"]) is int \
            and shape.router_group_topk and extra["moe_router_group_topk"] != shape.router_group_topk:
        changed.append(f"moe_router_group_topk {extra['moe_router_group_topk']} (config.json's topk_group: "
                       f"{shape.router_group_topk})")
    # expert bias off on a checkpoint trained with it: mcore-bridge's _set_router then skips loading
    # e_score_correction_bias, and the sigmoid top-k picks experts without the bias the model was trained with
    if "moe_router_enable_expert_bias" in extra and not is_true(extra["moe_router_enable_expert_bias"]) \
            and _checkpoint_has_expert_bias(shape):
        changed.append("moe_router_enable_expert_bias false (the checkpoint's routers add their expert bias "
                       "before the top-k)")
    if changed:
        warn("moe-router-override", f"megatron_extra_kwargs routes {shape.name} otherwise than its checkpoint was "
             f"trained: {'; '.join(changed)}. It builds and trains, but the pretrained router and experts then pick "
             "and weight experts as they never learned to (a loss far above the base model's from the first step: "
             "Pai-Megatron-Patch#529, #562)", "megatron_extra_kwargs",
             hint="drop the router fields from megatron_extra_kwargs (mcore-bridge takes them from config.json), "
                  "unless the model is meant to learn another routing")


# Evidence: megatron-core 0.16.1 marks the experts' weights for the expert data-parallel gradient reduction only when
# expert_model_parallel_size > 1: extensions/transformer_engine.py TELinear / TEGroupedLinear.__init__ (expert linears:
# `allreduce = not self.expert_parallel`, expert_parallel = EP > 1) and transformer/moe/experts.py GroupedMLP. With
# EP 1 they carry allreduce=True, so distributed/distributed_data_parallel.py DistributedDataParallel.__init__ buckets
# them with the dense parameters and reduces their gradients over the dense data-parallel group (intra_dp_cp_group:
# ranks that share the attention TP rank), not over the expert data-parallel group the expert layout needs. The two
# groups are the same only when expert_tensor_parallel_size equals tensor_model_parallel_size. ETP below TP (ms-swift
# 4.6 defaults expert_tensor_parallel_size to 1 whatever TP is: megatron_args.py): each TP rank's full expert copy
# sees only its sequence-parallel shard of the tokens and keeps only that part of the gradient, so the copies drift
# apart; ETP above TP: gradients of different expert shards are averaged together. Nothing raises. Reports:
# NVIDIA/Megatron-LM#1628 (TP 1, EP 1, ETP 4 on 8 x 4090D: "the grad sync is incorrect and the loss curve is bad"
# against TP 1, EP 4, ETP 1), PR #5916 (merged after 0.16.1: "if EP = 1 and ETP != TP ... the gradients themselves
# are not correctly reduced across the expert data-parallel group ... This will cause ranks to diverge"). mcore-
# bridge's LoRA adapters on the experts are expert TE grouped linears too (tuners/lora.py, is_expert), so LoRA that
# reaches the experts is hit the same way. Scope: MoE models, EP 1, ETP != TP, the experts trained (full tuning, or
# LoRA whose target_modules reach them).
def expert_grads_without_expert_parallel(recipe, args, shape: ModelShape, lay, err, warn):
    if not shape.is_moe or lay.ep != 1 or lay.etp == lay.tp:
        return
    tuner = args.str("tuner_type") or "full"
    if tuner in ("lora", "lora_llm"):
        from swift_ext.planner.warn_rules import lora_targets  # warn_rules reads this module's neighbours

        if "experts" not in lora_targets(recipe, args, shape):
            return
    elif tuner != "full":
        return
    how = ("each tensor-parallel rank keeps its full expert copy's gradient from its own sequence shard only, so the "
           "copies drift apart") if lay.etp < lay.tp else "gradients of different expert shards are averaged together"
    warn("moe-expert-grad-sync", f"expert_model_parallel_size 1 with expert_tensor_parallel_size {lay.etp} and "
         f"tensor_model_parallel_size {lay.tp}: megatron-core 0.16.1 reduces the experts' gradients with the expert "
         "data-parallel group only when EP > 1, and otherwise over the dense data-parallel group, which is not the "
         f"experts' group when ETP != TP: {how}, without an error (NVIDIA/Megatron-LM#1628, PR #5916)",
         flag(args, "expert_tensor_parallel_size"),
         hint=(f"expert_tensor_parallel_size: {lay.tp} (the attention TP), or split the experts with "
               "expert_model_parallel_size > 1") if tuner == "full" else
              ("split the experts with expert_model_parallel_size > 1 (mcore-bridge's LoRA refuses ETP > 1), or "
               "leave the experts out of target_modules"))


def _positive_coefficients(coeff) -> bool:
    """Some moe_aux_loss_coeff value the config gets is a number above 0 (a list holds one per balancing type)."""
    for value in (coeff if isinstance(coeff, list) else [coeff]):
        try:
            if float(value) > 0:
                return True
        except (TypeError, ValueError):
            continue  # not a number: the argument-type rule's
    return False


# Evidence (reports; nothing refuses it): megatron-core 0.16.1 transformer/moe/router.py TopKRouter._apply_aux_loss
# adds the load-balancing loss of every listed type (aux_loss, seq_aux_loss, global_aux_loss) with its
# moe_aux_loss_coeff to the router's gradient in every training forward (MoEAuxLossAutoScaler; schedules.py
# forward_step scales it per micro-batch), whatever loss the trainer computes: ms-swift 4.6's Megatron GRPO trainer
# neither drops nor rescales it (the coefficient is only logged, trainers/base.py). ms-swift defaults the coefficient
# to 0 (megatron_args.py), which GRPO recipes usually keep; one copied from an SFT recipe (ms-swift's MoE SFT examples
# set 1e-3) pushes every step's router toward uniform expert load while the policy gradient moves it elsewhere.
# Reports: NVIDIA-NeMo/RL PR #3169 (Qwen3.5-35B-A3B-Base DAPO/GRPO, router aux coefficient 0.001 taken from the HF
# config: ~10x the grad norm at step 1 (1.88 against ~0.1), token_mult_prob_error up to 2, and a lower
# DAPOMathAIME2024 validation accuracy than the same run at 0; the PR sets it to 0 in those recipes), NVIDIA/Megatron-LM
# PR #5694 (Megatron Lite's VERL path inherited 0.001 where the Megatron reference runs with load balancing 'none':
# a 3.4x gradient-norm error; fixed by defaulting the RL aux loss to off). NeMo-RL's and verl's Megatron GRPO recipes
# set it to 0 or the balancing type to none (one verl Qwen3-VL example keeps 0.01: a warning, not a refusal).
# Scope: engine megatron, rlhf_type grpo, MoE models, a moe_aux_loss_coeff above 0 for a balancing type other than
# none (sinkhorn takes none: moe-load-balancing's).
def rl_aux_loss(recipe, args, shape: ModelShape, lay, err, warn):
    if recipe.command != "rlhf" or args.str("rlhf_type") != "grpo" or not shape.is_moe:
        return
    coeff = config_value(args, "moe_aux_loss_coeff")
    if not _positive_coefficients(coeff):
        return
    kinds = config_value(args, "moe_router_load_balancing_type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if kinds != [None] and all(str(kind) in ("none", "sinkhorn") for kind in kinds):
        return  # no load-balancing loss is built (None: mcore-bridge's aux_loss / seq_aux_loss default)
    warn("rl-moe-aux-loss", f"moe_aux_loss_coeff {coeff!r} in GRPO on {shape.name}: megatron-core adds the router's "
         "load-balancing loss to every policy update, pulling the router toward uniform expert load against the "
         "policy gradient; NeMo-RL saw ~10x the grad norm at step 1 and a lower validation accuracy with 0.001 "
         "(NVIDIA-NeMo/RL PR #3169; Megatron-LM PR #5694: a 3.4x gradient-norm error against the reference without "
         "it)", flag(args, "moe_aux_loss_coeff"),
         hint="moe_aux_loss_coeff: 0 (ms-swift's default; NeMo-RL's and verl's MoE RL recipes), unless the run is "
              "meant to keep balancing the experts")


# Evidence: megatron-core 0.16.1 distributed/finalize_model_grads.py finalize_model_grads runs
# _update_router_expert_bias after every step when moe_router_enable_expert_bias, whatever requires_grad says (the
# bias is a buffer moved by token counts, moe_router_bias_update_rate); mcore-bridge 1.6.3 config/parser.py turns
# expert bias on for every sigmoid router but Llama-4's, and model/modules/topk_router.py TopKRouter keeps counting
# tokens under LoRA (no frozen_expert_bias: that came with mcore-bridge PR #195, after 1.6.3). The LoRA save,
# bridge/gpt_bridge.py _set_state_dict with peft_format, writes only LoRA tensors (and modules_to_save copies), so
# router.expert_bias is not in the adapter. ms-swift 4.6 trainers/base.py save_checkpoint also writes the merged model
# (which carries the trained bias) only with merge_lora (default: save_safetensors). Report: modelscope/mcore-bridge
# PR #195 ("MoE expert bias keeps updating even when the router weight is frozen. Reloading the base model and
# adapter can therefore ... change expert selection"). Scope: engine megatron, tuner_type lora, MoE models with expert
# bias on and a non-zero update rate, save_safetensors on, merge_lora false, no router in modules_to_save.
def lora_adapter_drops_expert_bias(recipe, args, shape: ModelShape, lay, err, warn):
    if not shape.is_moe or args.str("tuner_type") != "lora" or not args.bool("save_safetensors"):
        return
    merge = args.stated("merge_lora")
    if merge is None or is_true(merge):
        return
    if not is_on(args, "moe_router_enable_expert_bias", _checkpoint_has_expert_bias(shape)):
        return
    rate = config_value(args, "moe_router_bias_update_rate", 1e-3)
    if isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate == 0:
        return
    if any("router" in str(m) for m in args.list("modules_to_save")):
        return
    warn("lora-expert-bias-unsaved", f"{shape.name}'s routers keep an expert bias that Megatron moves after every "
         "step (aux-loss-free balancing, moe_router_bias_update_rate), LoRA or not, but with merge_lora false the "
         "saved adapter holds only the LoRA tensors: the base model plus this adapter routes with the checkpoint's "
         "bias, not the one the adapter was trained with (mcore-bridge PR #195, after 1.6.3)",
         "merge_lora",
         hint="merge_lora: true (the merged checkpoint carries router.expert_bias), or keep the bias fixed with "
              "megatron_extra_kwargs {moe_router_bias_update_rate: 0}")


# Evidence: megatron-core 0.16.1 transformer/moe/experts.py, checks the expert modules run when the model is built or
# in its first forward (after TransformerConfig.__post_init__, which tests neither): GroupedMLP.forward /
# TEGroupedMLP.forward / SequentialMLP.forward assert moe_router_topk == 1 under moe_apply_probs_on_input;
# TEGroupedMLP.__init__ asserts not (add_bias_linear and bias_dropout_fusion); the legacy GroupedMLP.forward asserts
# bf16. ms-swift 4.6 swift/megatron/model/utils.py turns bias_dropout_fusion (its argument, default true) off only
# when the model's own config has add_bias_linear (gpt-oss), before megatron_extra_kwargs is applied; mcore-bridge
# 1.6.3 config/parser.py sets moe_apply_probs_on_input for Llama-4 only (top-1 routers).
def expert_module_config(recipe, args, shape: ModelShape, lay, err, warn):
    if not shape.is_moe:
        return
    llama4 = "llama4" in (shape.model_type, shape.text_model_type.removesuffix("_text"))
    topk = config_value(args, "moe_router_topk", shape.num_experts_per_tok)
    if is_on(args, "moe_apply_probs_on_input", llama4) and type(topk) is int and topk > 1:
        err("moe-experts-config", f"moe_apply_probs_on_input with moe_router_topk {topk}: megatron-core's expert "
            "modules (TEGroupedMLP/SequentialMLP.forward) assert moe_router_topk == 1 in the first forward",
            flag(args, "moe_apply_probs_on_input") if from_extra(args, "moe_apply_probs_on_input")
            else flag(args, "moe_router_topk"),
            hint="drop moe_apply_probs_on_input (or route top-1)")
    grouped = is_on(args, "moe_grouped_gemm")  # ms-swift default: true
    native_bias = shape.softmax_type == "learnable"  # gpt-oss: ms-swift already turns bias_dropout_fusion off
    if grouped and from_extra(args, "add_bias_linear") and is_on(args, "add_bias_linear") and not native_bias \
            and is_on(args, "bias_dropout_fusion", True):
        err("moe-experts-config", "megatron_extra_kwargs add_bias_linear on a MoE model with moe_grouped_gemm and "
            "bias_dropout_fusion on (ms-swift's default): megatron-core's TEGroupedMLP.__init__ refuses the pair "
            "when the model is built", "megatron_extra_kwargs",
            hint="drop add_bias_linear, or set bias_dropout_fusion: false")
    if grouped and is_on(args, "moe_use_legacy_grouped_gemm") and is_on(args, "fp16"):
        err("moe-experts-config", "moe_use_legacy_grouped_gemm with fp16: megatron-core's legacy GroupedMLP.forward "
            "asserts bf16 in the first forward", flag(args, "moe_use_legacy_grouped_gemm"),
            hint="bf16, or drop moe_use_legacy_grouped_gemm (TEGroupedMLP)")


MOE_RULES = [allgather_dispatcher_variable_lengths, shared_expert_overlap_dispatcher, mtp_only_layout_stage,
             expert_bias_needs_sigmoid, deepep_gpu, hybridep_token_counts,
             deepep_group, router_override, expert_grads_without_expert_parallel, rl_aux_loss,
             lora_adapter_drops_expert_bias, expert_module_config]
