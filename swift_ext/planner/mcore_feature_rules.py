"""megatron-core 0.16.1 start-up refusals of features a recipe reaches mostly through megatron_extra_kwargs
(issue #21's audits of TransformerConfig.__post_init__, ModelParallelConfig, the MoE set-up and the schedules, run
without --oracle): the EP all-to-all overlap, activation offloading, BF16 first/last layers under FP8, router
settings, refused pairs of config fields, and the parallel/pipeline-communication settings (mcore-parallel). The
recompute refusals and the first dispatcher and load-balancing ones are in mcore_config_rules.py; both read the
config's values through mcore_config.py.
Registered with layout.py's rules (engine megatron)."""

from __future__ import annotations

import json
from swift_ext.msswift.model_table import model_meta
from swift_ext.planner.mcore_config import (builds_with_mcore_bridge, config_value, dispatcher_of, flag, fp8_recipe_of,
                                            from_extra, granularity_of, is_list, is_on, mtp_layers_checked,
                                            variable_seq_lengths)
from swift_ext.planner.model_shape import ModelShape
from swift_ext.planner.pipeline_schedule import microbatches_per_step, virtual_stages


def _virtual_size(args, lay) -> int | None:
    """virtual_pipeline_model_parallel_size as the config gets it: a layout's stages / PP (None for one), the
    argument, or megatron_extra_kwargs over both (get_mcore_model_config updates the kwargs with them last)."""
    if from_extra(args, "virtual_pipeline_model_parallel_size"):
        return config_value(args, "virtual_pipeline_model_parallel_size")
    size = virtual_stages(args, lay.pp)
    return size if size > 1 else None  # ms-swift's _init_vpp_size turns an explicit 1 into None


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__, `if self.overlap_moe_expert_parallel_comm:`
# (asserts: virtual_pipeline_model_parallel_size set when PP > 1; expert_model_parallel_size > 1; the alltoall or
# flex dispatcher; recompute_granularity not full, recompute_method None, recompute_num_layers None; no
# moe_shared_expert_overlap; mtp_num_layers None or 1, and PP > 1 with one MTP layer), `if
# self.delay_wgrad_compute:` (overlap_moe_expert_parallel_comm on; not moe_use_legacy_grouped_gemm) and `if
# self.ep_overlap_early_attn_memory_release:` (overlap_moe_expert_parallel_comm on). ms-swift 4.6 has no argument
# for these three switches: they reach the config only through megatron_extra_kwargs (model/utils.py
# get_mcore_model_config), next to ms-swift's recompute_method / recompute_num_layers, which it passes whenever set.
# A multimodal model: megatron-core 0.16.1 pipeline_parallel/schedules.py runs combined_1f1b_schedule_for_no_pipelining
# (forward_backward_no_pipelining) or combined_1f1b_schedule_for_interleaved_pipelining (the interleaved schedule)
# under the overlap in training, and combined_1f1b.py combined_forward_backward_step
# looks up build_schedule_plan with utils.get_attr_wrapped_model (RuntimeError when no wrapper level has it) and
# asserts "only GPTModel is supported for EP A2A overlapping"; mcore-bridge 1.6.3 model/mm_gpt_model.py
# MultimodalGPTModel is a MegatronModule holding the GPTModel as .language_model, with no .module to descend to.
# Report: NVIDIA-NeMo/Megatron-Bridge#2161 (a VL model with the overlap fails in the same schedule).
def moe_a2a_overlap(recipe, args, shape: ModelShape, lay, err, warn):
    overlap = is_on(args, "overlap_moe_expert_parallel_comm")
    for name in ("delay_wgrad_compute", "ep_overlap_early_attn_memory_release"):
        if is_on(args, name) and not overlap:
            err("moe-a2a-overlap", f"megatron_extra_kwargs sets {name} without overlap_moe_expert_parallel_comm: "
                "megatron-core asserts the EP all-to-all overlap is on", "megatron_extra_kwargs",
                hint=f"add overlap_moe_expert_parallel_comm: true to megatron_extra_kwargs, or drop {name}")
    if is_on(args, "delay_wgrad_compute") and is_on(args, "moe_use_legacy_grouped_gemm"):
        err("moe-a2a-overlap", "delay_wgrad_compute with moe_use_legacy_grouped_gemm: megatron-core delays the "
            "weight gradients only in the TE grouped GEMM", flag(args, "moe_use_legacy_grouped_gemm"),
            hint="drop moe_use_legacy_grouped_gemm")
    if not overlap:
        return
    meta = model_meta(args.str("model"), args.str("model_type"))
    if meta is not None and meta["multimodal"] and args.str("bridge_backend") != "megatron-bridge":
        err("moe-a2a-overlap", f"overlap_moe_expert_parallel_comm (megatron_extra_kwargs) on a multimodal model "
            f"({meta['model_type']}): mcore-bridge builds it as a MultimodalGPTModel, not a GPTModel, and megatron-core's "
            "combined 1F1B schedule finds no build_schedule_plan on it (RuntimeError in the first training step)",
            flag(args, "overlap_moe_expert_parallel_comm"),
            hint="drop overlap_moe_expert_parallel_comm from megatron_extra_kwargs")
    else:
        # Read from the source, not seen run (no public report, no GPU here): so said, not refused. megatron-core
        # 0.16.1 pipeline_parallel/combined_1f1b.py combined_forward_backward_step calls
        # forward_step_func(data_iterator, model, return_schedule_plan=True) whenever the overlap is on in training
        # (schedules.py: the no-pipelining and interleaved schedules); ms-swift 4.6's trainers define
        # forward_step(self, data_iterator, model) (megatron/trainers/trainer.py, grpo_trainer.py, ...) and nothing in
        # ms-swift or mcore-bridge 1.6.3 handles the keyword.
        warn("moe-a2a-overlap", "overlap_moe_expert_parallel_comm (megatron_extra_kwargs): megatron-core's combined "
             "1F1B schedule calls the training forward step with return_schedule_plan=True, which ms-swift 4.6's "
             "forward_step(data_iterator, model) does not take -- read from both sources, this is a TypeError at the "
             "first training step (not yet seen in a run or a report)", flag(args, "overlap_moe_expert_parallel_comm"),
             hint="drop overlap_moe_expert_parallel_comm, or run one step to see it work before a long job")
    problems = []
    if lay.pp > 1 and _virtual_size(args, lay) is None:
        problems.append(("pipeline_model_parallel_size", f"pipeline_model_parallel_size {lay.pp} without a virtual "
                         "pipeline size", "virtual_pipeline_model_parallel_size (or a layout with several stages "
                         "per rank)"))
    if lay.ep <= 1:
        problems.append(("expert_model_parallel_size", f"expert_model_parallel_size {lay.ep} (it overlaps the expert "
                         "parallel all-to-all)", "expert_model_parallel_size > 1"))
    if dispatcher_of(args) not in ("alltoall", "flex"):
        problems.append(("moe_token_dispatcher_type", f"moe_token_dispatcher_type {dispatcher_of(args)}",
                         "moe_token_dispatcher_type: alltoall or flex"))
    if granularity_of(args) == "full":
        problems.append(("recompute_granularity", "recompute_granularity full", "recompute_granularity: selective "
                         "or none"))
    if config_value(args, "recompute_method") is not None:
        problems.append(("recompute_method", f"recompute_method {config_value(args, 'recompute_method')}",
                         "recompute_method: null"))
    if config_value(args, "recompute_num_layers") is not None:
        problems.append(("recompute_num_layers", f"recompute_num_layers {config_value(args, 'recompute_num_layers')}",
                         "recompute_num_layers: null"))
    if is_on(args, "moe_shared_expert_overlap"):
        problems.append(("moe_shared_expert_overlap", "moe_shared_expert_overlap", "moe_shared_expert_overlap: false"))
    mtp = mtp_layers_checked(args)  # one shared MTP layer under mcore-bridge's mtp_shared_weights
    if mtp is not None and mtp != 1:
        problems.append(("mtp_num_layers", f"mtp_num_layers {mtp} (it takes at most one MTP layer)",
                         "mtp_num_layers: 1, or none"))
    elif mtp == 1 and lay.pp <= 1:
        problems.append(("pipeline_model_parallel_size", "one MTP layer without pipeline parallel",
                         "pipeline_model_parallel_size > 1 (with a virtual size), or no MTP layer"))
    for name, what, fix in problems:
        err("moe-a2a-overlap", f"overlap_moe_expert_parallel_comm (megatron_extra_kwargs) with {what}: megatron-core "
            "refuses the EP all-to-all overlap there", flag(args, name),
            hint=f"{fix}, or drop overlap_moe_expert_parallel_comm from megatron_extra_kwargs")


# TransformerConfig.__post_init__: the modules fine_grained_activation_offloading may offload.
OFFLOAD_MODULES = ("core_attn", "attn_proj", "expert_fc1", "moe_act", "attn_norm", "mlp_norm", "qkv_linear")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__: "CPU offloading can be done only for layers less
# than {num_layers}" (cpu_offloading_num_layers outside [0, num_layers)), "Currently there is no support for
# Pipeline parallelism with CPU offloading", "CPU offloading does not work when activation recomputation is enabled"
# (any recompute_granularity -- ms-swift 4.6's default is selective), and the fine_grained_activation_offloading
# block (asserts: not with cpu_offloading; offload_modules given and each one of its allowed modules; ValueError
# "attn_proj cannot be set to offload_modules alone without core_attn"). ms-swift 4.6 has no argument for these
# fields (its own optimizer_cpu_offload is the optimizer's): only megatron_extra_kwargs reaches them.
def activation_offloading(recipe, args, shape: ModelShape, lay, err, warn):
    if is_on(args, "cpu_offloading"):
        layers = config_value(args, "cpu_offloading_num_layers")
        layers = 0 if layers is None else layers
        if type(layers) is int and (layers < 0 or layers >= shape.num_layers):
            err("activation-offloading", f"cpu_offloading_num_layers {layers}: megatron-core offloads at most "
                f"{shape.num_layers - 1} of {shape.name}'s {shape.num_layers} layers", "megatron_extra_kwargs",
                hint=f"cpu_offloading_num_layers between 0 and {shape.num_layers - 1}")
        if lay.pp > 1:
            err("activation-offloading", f"cpu_offloading with pipeline_model_parallel_size {lay.pp}: megatron-core "
                "offloads activations without pipeline parallel only", "megatron_extra_kwargs",
                hint="pipeline_model_parallel_size: 1, or drop cpu_offloading")
        granularity = granularity_of(args)
        if granularity is not None:
            default = "" if args.has("recompute_granularity") or flag(
                args, "recompute_granularity") != "recompute_granularity" else " (ms-swift's default)"
            err("activation-offloading", f"cpu_offloading with recompute_granularity {granularity}{default}: "
                "megatron-core offloads activations only without recompute", flag(args, "recompute_granularity"),
                hint="recompute_granularity: none, or drop cpu_offloading")
    if not is_on(args, "fine_grained_activation_offloading"):
        return
    if is_on(args, "cpu_offloading"):
        err("activation-offloading", "fine_grained_activation_offloading with cpu_offloading: megatron-core takes one "
            "of the two", "megatron_extra_kwargs", hint="drop one of them")
    modules = config_value(args, "offload_modules")
    if not modules:
        err("activation-offloading", "fine_grained_activation_offloading without offload_modules: megatron-core "
            "asserts the modules to offload are given", "megatron_extra_kwargs",
            hint=f"megatron_extra_kwargs: {{offload_modules: [core_attn, ...]}} (from {', '.join(OFFLOAD_MODULES)})")
        return
    modules = [modules] if isinstance(modules, str) else list(modules) if isinstance(modules, list) else []
    invalid = sorted({str(m) for m in modules} - set(OFFLOAD_MODULES))
    if invalid:
        err("activation-offloading", f"offload_modules {invalid} are not modules megatron-core offloads",
            "megatron_extra_kwargs", hint=f"choose from {', '.join(OFFLOAD_MODULES)}")
    if "attn_proj" in modules and "core_attn" not in modules:
        err("activation-offloading", "offload_modules attn_proj without core_attn: attn_proj's input is core_attn's "
            "output, which core_attn's backward needs", "megatron_extra_kwargs", hint="add core_attn to offload_modules")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__, `if self.fp8:` -- "Delayed scaling does not
# support first / last layer in BF16." and num_layers_at_start_in_bf16 / num_layers_at_end_in_bf16 (default 1)
# "must be between 0 and number of layers per pipeline stage" (num_layers // pipeline_model_parallel_size).
# first_last_layers_bf16 and the two counts reach the config only through megatron_extra_kwargs; fp8 is ms-swift's
# fp8_format, fp8_recipe its argument (default delayed).
def fp8_bf16_layers(recipe, args, shape: ModelShape, lay, err, warn):
    recipe_name = fp8_recipe_of(args)
    if recipe_name is None or not is_on(args, "first_last_layers_bf16"):
        return
    if recipe_name == "delayed":
        err("fp8-bf16-layers", "first_last_layers_bf16 (megatron_extra_kwargs) with FP8 delayed scaling: "
            "megatron-core keeps the first / last layers in BF16 only with current or block scaling",
            flag(args, "fp8_recipe"), hint="fp8_recipe: tensorwise or blockwise, or drop first_last_layers_bf16")
    most = shape.num_layers // lay.pp
    for name in ("num_layers_at_start_in_bf16", "num_layers_at_end_in_bf16"):
        value = config_value(args, name)
        value = 1 if value is None else value
        if type(value) is int and not 0 <= value <= most:
            err("fp8-bf16-layers", f"{name} {value}: megatron-core keeps between 0 and {most} layers (the layers per "
                "pipeline stage) in BF16", "megatron_extra_kwargs", hint=f"{name} between 0 and {most}")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__: `if self.moe_router_padding_for_fp8:` (sets
# moe_router_padding_for_quantization), then "fp8/fp4 must be specified when moe_router_padding_for_quantization is True.", "allgather and alltoall_seq dispatcher does not support
# moe_router_padding_for_quantization.", "Please use --moe-router-pre-softmax when topk is 1." (moe_router_topk 1 with
# a softmax router, no pre-softmax, not sinkhorn), and the group-limited routing block
# ("moe_router_topk_limited_devices is deprecated", "num_moe_experts (..) should be divisible by
# moe_router_num_groups", "moe_router_group_topk (..) should be smaller than moe_router_num_groups"). The router's
# top-k, score function and pre-softmax come from the model (mcore-bridge hf_to_mcore_config) unless
# megatron_extra_kwargs overrides them; the padding and group fields only from megatron_extra_kwargs.
def moe_router_config(recipe, args, shape: ModelShape, lay, err, warn):
    if not shape.is_moe:
        return
    # moe_router_padding_for_fp8 is the compatibility alias __post_init__ turns into padding_for_quantization
    # before the same checks (Megatron-MoE-ModelZoo's sbatch_benchmarking.sh passes it for PR=fp8)
    if is_on(args, "moe_router_padding_for_quantization") or is_on(args, "moe_router_padding_for_fp8"):
        if fp8_recipe_of(args) is None and not config_value(args, "fp4"):
            err("moe-router", "moe_router_padding_for_quantization (megatron_extra_kwargs) without FP8 or FP4: "
                "megatron-core pads the routing map for quantized GEMMs only", "megatron_extra_kwargs",
                hint="set fp8_format (or fp4_format), or drop moe_router_padding_for_quantization")
        if dispatcher_of(args) in ("allgather", "alltoall_seq"):
            err("moe-router", f"moe_router_padding_for_quantization with moe_token_dispatcher_type {dispatcher_of(args)}",
                flag(args, "moe_token_dispatcher_type"), hint="moe_token_dispatcher_type: alltoall")
    extra = args.mapping("megatron_extra_kwargs")
    topk = config_value(args, "moe_router_topk", shape.num_experts_per_tok)
    score = config_value(args, "moe_router_score_function", shape.router_score_function)
    pre = config_value(args, "moe_router_pre_softmax", shape.router_pre_softmax)
    # moe_utils.py topk_routing_with_score_function -> _compute_topk: torch.topk(scores, k=topk) over the experts;
    # a top-k above their number is "selected index k out of range" in the first step (TransformerConfig does not
    # compare the two).
    if type(topk) is int and shape.num_experts and topk > shape.num_experts and from_extra(args, "moe_router_topk"):
        err("moe-router", f"moe_router_topk {topk} is above {shape.name}'s {shape.num_experts} experts: megatron-core's "
            "router takes torch.topk(k=moe_router_topk) over them and fails with 'selected index k out of range' in "
            "the first step", "megatron_extra_kwargs", hint=f"moe_router_topk <= {shape.num_experts} (the model's own: "
            f"{shape.num_experts_per_tok})")
    if topk == 1 and score == "softmax" and not pre and not _sinkhorn(args) and any(from_extra(args, key) for key in (
            "moe_router_topk", "moe_router_score_function", "moe_router_pre_softmax")):
        err("moe-router", "moe_router_topk 1 with a softmax router and no pre-softmax: megatron-core refuses it (a "
            "softmax over one selected expert has no gradient)", "megatron_extra_kwargs",
            hint="megatron_extra_kwargs: {moe_router_pre_softmax: true}, or a top-k above 1")
    # The group fields come from the model too: mcore-bridge's config mapping turns n_group / topk_group into
    # moe_router_num_groups / _group_topk for every model, and megatron_extra_kwargs (null and 0 included) wins over
    # them. So a model's own pair is judged as much as the recipe's.
    def group_field(key: str, model_value: int):
        return (extra[key], "megatron_extra_kwargs") if key in extra else (model_value or None, "model")

    group_topk, topk_from = group_field("moe_router_group_topk", shape.router_group_topk)
    if not group_topk:
        return
    if is_on(args, "moe_router_topk_limited_devices"):
        err("moe-router", "moe_router_topk_limited_devices with moe_router_group_topk: megatron-core replaced the "
            "first by the second", "megatron_extra_kwargs", hint="drop moe_router_topk_limited_devices")
    groups, groups_from = group_field("moe_router_num_groups", shape.router_num_groups)
    where = "megatron_extra_kwargs" if "megatron_extra_kwargs" in (topk_from, groups_from) else "model"
    topk_said = f"{group_topk} ({shape.name}'s topk_group)" if topk_from == "model" else str(group_topk)
    groups_said = f"{groups} ({shape.name}'s n_group)" if groups_from == "model" else str(groups)
    if not groups:
        said = (f"megatron_extra_kwargs sets moe_router_num_groups {json.dumps(groups)}"
                if groups_from == "megatron_extra_kwargs" else f"{shape.name} sets no n_group")
        err("moe-router", f"moe_router_group_topk {topk_said} without moe_router_num_groups ({said}): megatron-core "
            "needs the number of groups for group-limited routing", where,
            hint="megatron_extra_kwargs: {moe_router_num_groups: N}, N dividing the experts")
    # Negative values pass neither the checks nor the router: with a negative group count TransformerConfig's
    # `moe_router_group_topk <= moe_router_num_groups` fails; a negative group top-k passes it, then moe_utils.py
    # group_limited_topk's torch.topk(k=topk // group_topk) / topk(k=group_topk) fail in the first training step.
    for name, value in (("moe_router_num_groups", groups), ("moe_router_group_topk", group_topk)):
        if type(value) is int and value < 0:
            err("moe-router", f"{name} {value} is negative: megatron-core's group-limited routing needs a positive "
                "number of groups and of selected groups (TransformerConfig's checks, then moe_utils.py "
                "group_limited_topk's torch.topk in the first step)", where, hint=f"{name}: a positive integer")
            return
    if type(groups) is int and groups > 0 and type(group_topk) is int:
        if shape.num_experts % groups:
            err("moe-router", f"moe_router_num_groups {groups_said} does not divide {shape.name}'s {shape.num_experts} "
                "experts", where, hint="a number of groups that divides the experts")
        if group_topk > groups:
            err("moe-router", f"moe_router_group_topk {topk_said} is above moe_router_num_groups {groups_said}",
                where, hint="moe_router_group_topk <= moe_router_num_groups")
        # moe_utils.py group_limited_topk scores each group by torch.topk(k=topk // group_topk) over its
        # num_experts // num_groups experts: a k above the group's size is "selected index k out of range" in the
        # first training step (nothing in TransformerConfig checks it).
        per_group = shape.num_experts // groups
        if type(topk) is int and group_topk > 0 and not shape.num_experts % groups and topk // group_topk > per_group:
            err("moe-router", f"moe_router_topk {topk} // moe_router_group_topk {topk_said} = {topk // group_topk} "
                f"experts scored per group, but moe_router_num_groups {groups_said} leaves {per_group} expert(s) in "
                f"each of {shape.name}'s groups: megatron-core's group_limited_topk fails with 'selected index k out "
                "of range' in the first step", where,
                hint=f"fewer groups (at most {shape.num_experts * group_topk // max(topk, 1)}) or a larger "
                "moe_router_group_topk")


# Evidence: megatron-core 0.16.1 TransformerConfig.__post_init__, one refusal per pair of fields, each reached through
# megatron_extra_kwargs (ms-swift 4.6 has no argument for the first field of any pair; bias_activation_fusion is
# its argument), the second from the recipe or the model (mcore-bridge hf_to_mcore_config: attention_output_gate for
# Qwen3.5/3.6 and Qwen3-Next, multi_latent_attention for DeepSeek-style models, no experts for a dense model).
def extra_kwargs_pairs(recipe, args, shape: ModelShape, lay, err, warn):
    gate = config_value(args, "attention_output_gate", shape.gated_attention)
    mla = bool(shape.kv_lora_rank) or is_on(args, "multi_latent_attention")
    # ms-swift's own expert_model_parallel_size is dropped for a dense model (get_mcore_model_config sets 1): only
    # megatron_extra_kwargs' value reaches the config there
    dense_ep = config_value(args, "expert_model_parallel_size") if from_extra(args, "expert_model_parallel_size") else 1
    scopes = _cuda_graph_scopes(args)
    pairs = [
        (is_on(args, "fused_single_qkv_rope") and gate, "fused_single_qkv_rope with gated attention "
         f"({shape.name}'s attention_output_gate)", "drop fused_single_qkv_rope"),
        # mcore-bridge's ModelConfig.__post_init__ sets rotary_interleaved False for multi-latent attention before
        # TransformerConfig's check (1.6.3 config/model_config.py:360-364): only Megatron-Bridge's provider reaches it
        (mla and is_on(args, "rotary_interleaved") and not builds_with_mcore_bridge(args),
         "rotary_interleaved with multi-latent attention (bridge_backend megatron-bridge)", "drop rotary_interleaved"),
        # MLATransformerConfig.__post_init__ only: Megatron-Bridge's MLAModelProvider is one, mcore-bridge's ModelConfig
        # (a TransformerConfig) is not -- there the gate is ignored (below)
        (mla and from_extra(args, "attention_output_gate") and gate and not builds_with_mcore_bridge(args),
         "attention_output_gate with multi-latent attention (bridge_backend megatron-bridge: MLATransformerConfig's "
         "NotImplementedError)", "drop attention_output_gate"),
        (is_on(args, "enable_cuda_graph") and is_on(args, "external_cuda_graph"),
         "enable_cuda_graph with external_cuda_graph", "keep one of them"),
        # "Do not use enable_cuda_graph or external_cuda_graph with cuda_graph_impl." (the deprecated switches only
        # map onto cuda_graph_impl while it is still "none")
        ((is_on(args, "enable_cuda_graph") or is_on(args, "external_cuda_graph"))
         and config_value(args, "cuda_graph_impl") not in (None, "none"),
         "enable_cuda_graph / external_cuda_graph with cuda_graph_impl", "keep cuda_graph_impl alone"),
        (is_on(args, "inference_fuse_tp_communication")
         and config_value(args, "transformer_impl") != "inference_optimized",
         "inference_fuse_tp_communication without transformer_impl inference_optimized",
         "drop inference_fuse_tp_communication (an inference setting)"),
        (not shape.is_moe and config_value(args, "moe_ffn_hidden_size") is not None,
         f"moe_ffn_hidden_size on {shape.name}, which has no experts", "drop moe_ffn_hidden_size"),
        (not shape.is_moe and type(dense_ep) is int and dense_ep > 1,
         f"expert_model_parallel_size above 1 on {shape.name}, which has no experts (ms-swift drops its argument for a "
         "dense model; megatron_extra_kwargs puts it back)", "drop expert_model_parallel_size from megatron_extra_kwargs"),
        # mcore-bridge ModelConfig.__post_init__ turns a 0 into None (no shared expert): only a negative reaches it
        (type(config_value(args, "moe_shared_expert_intermediate_size")) is int
         and config_value(args, "moe_shared_expert_intermediate_size") < 0,
         "a negative moe_shared_expert_intermediate_size", "drop moe_shared_expert_intermediate_size"),
        (is_on(args, "bias_activation_fusion") and is_on(args, "use_te_activation_func"),
         "bias_activation_fusion with use_te_activation_func", "drop one of them"),
        # cuda_graph_impl other than "none": the scope checks (TransformerConfig.__post_init__, "moe cuda graph is only
        # supported for MoE." / "full recompute is only supported with full iteration CUDA graph."); the default scope
        # "full" is the whole layer (an empty list), which is not full_iteration.
        (scopes is not None and not shape.is_moe and bool({"moe", "moe_router"} & set(scopes)),
         f"a moe/moe_router cuda_graph_scope on {shape.name}, which has no experts", "drop moe/moe_router from "
         "cuda_graph_scope"),
        (scopes is not None and granularity_of(args) == "full" and scopes != ["full_iteration"],
         "a CUDA graph (cuda_graph_impl) other than the full-iteration one with full recompute",
         "recompute_granularity: selective, or cuda_graph_impl: local with cuda_graph_scope full_iteration"),
    ]
    for refused, what, hint in pairs:
        if refused:
            err("mcore-config", f"megatron_extra_kwargs: {what}: megatron-core's TransformerConfig refuses the pair",
                "megatron_extra_kwargs", hint=hint)
    if mla and from_extra(args, "attention_output_gate") and gate and builds_with_mcore_bridge(args):
        # mcore-bridge 1.6.3 builds a ModelConfig (a TransformerConfig, so MLATransformerConfig's NotImplementedError
        # never runs) and its MLA attention (model/modules/multi_latent_attention.py, on megatron-core's
        # MLASelfAttention) never reads attention_output_gate: the model trains without the gate it asks for.
        warn("mcore-config", f"megatron_extra_kwargs: attention_output_gate on {shape.name}, which has multi-latent "
             "attention: mcore-bridge's MLA attention has no output gate and ignores it (only bridge_backend "
             "megatron-bridge's MLATransformerConfig refuses it)", "megatron_extra_kwargs",
             hint="drop attention_output_gate")


# Evidence: megatron-core 0.16.1 transformer/module.py GraphableMegatronModule.__init__ calls
# TransformerLayer.create_mcore_cudagraph_manager for cuda_graph_impl "local"; TransformerLayer.__init__ (and mcore-bridge
# 1.6.3 model/modules/transformer_layer.py TransformerLayer.__init__, which every GPT layer of the default backend is)
# runs it first, and its mlp branch (reached when the scope names mlp but not attn) asserts `not self.is_moe_layer`,
# set only after the MLP is built: AttributeError on the first layer (report NVIDIA-NeMo/Megatron-Bridge#4583).
# The attn branch comes first, so a scope with attn, the whole layer (the default) and the transformer_engine
# implementation (which never calls it) all build.
#
# TE graphs (cuda_graph_impl transformer_engine): TransformerLayer.__call__ (GraphableMegatronModule) replays them only
# once megatron-core's TECudaGraphHelper has captured them, which Megatron-LM's training loop does
# (megatron/training/training.py); ms-swift 4.6's trainer imports no megatron.training and neither it nor mcore-bridge
# 1.6.3 calls the helper, so the layers run eagerly: the graphs the recipe asks for never exist (said, not refused).
def cuda_graph_runtime(recipe, args, shape: ModelShape, lay, err, warn):
    scopes = _cuda_graph_scopes(args)
    if scopes is not None and _graph_impl(args) == "transformer_engine":
        warn("cuda-graph-te", f"megatron_extra_kwargs: {_graph_impl_said(args)}: ms-swift's trainer never "
             "runs megatron-core's TECudaGraphHelper (Megatron-LM's training loop does), so no graph is captured and "
             "every layer runs eagerly -- the setting only adds megatron-core's config checks",
             "megatron_extra_kwargs", hint="cuda_graph_impl local (captured by megatron-core's schedules), or drop it")
    if scopes is None or _graph_impl(args) != "local":
        return
    if "mlp" in scopes and "attn" not in scopes:
        err("cuda-graph-scope", f"megatron_extra_kwargs: {_graph_impl_said(args)} with cuda_graph_scope {scopes} (mlp "
            "without attn): megatron-core's TransformerLayer.create_mcore_cudagraph_manager reads is_moe_layer before "
            "the layer sets it -- AttributeError building the first layer", "megatron_extra_kwargs",
            hint="cuda_graph_scope [attn, mlp] (or the whole layer), or cuda_graph_impl transformer_engine")


def _cuda_graph_scopes(args) -> list | None:
    """cuda_graph_scope as TransformerConfig.__post_init__ reads it once megatron_extra_kwargs turns a CUDA graph on
    (None: cuda_graph_impl 'none', the default): a comma-separated string splits, "full" is the whole layer ([])."""
    if _graph_impl(args) in (None, "none"):
        return None
    scope = config_value(args, "cuda_graph_scope", "full")
    scopes = scope.split(",") if isinstance(scope, str) else list(scope) if isinstance(scope, list) else []
    return [] if scopes == ["full"] else [str(s) for s in scopes]


# TransformerConfig.__post_init__ (megatron-core 0.16.1) maps the deprecated switches onto cuda_graph_impl while it is
# "none": enable_cuda_graph -> "local", external_cuda_graph -> "transformer_engine" (Megatron-LM's --external-cuda-graph
# in reports such as NVIDIA/Megatron-LM#1566), so every graph rule reads the implementation through this.
def _graph_impl(args) -> str | None:
    impl = config_value(args, "cuda_graph_impl")
    if impl not in (None, "none"):
        return impl
    if is_on(args, "enable_cuda_graph"):
        return "local"
    if is_on(args, "external_cuda_graph"):
        return "transformer_engine"
    return impl


def _graph_impl_said(args) -> str:
    impl = _graph_impl(args)
    for alias in ("enable_cuda_graph", "external_cuda_graph"):
        if config_value(args, "cuda_graph_impl") in (None, "none") and is_on(args, alias):
            return f"{alias} (cuda_graph_impl {impl})"
    return f"cuda_graph_impl {impl}"


def _overlap_p2p(args, lay) -> bool:
    """overlap_p2p_comm as the config gets it: MegatronArguments._init_vpp_size turns it off without a virtual
    pipeline size; megatron_extra_kwargs wins over both."""
    if from_extra(args, "overlap_p2p_comm"):
        return is_on(args, "overlap_p2p_comm")
    return _virtual_size(args, lay) is not None and args.bool("overlap_p2p_comm")


# Evidence: megatron-core 0.16.1 model_parallel_config.py ModelParallelConfig.__post_init__ (TransformerConfig runs it):
# "Cannot use sequence parallelism without tensor parallelism", TransformerConfig's cp_comm_type list length, the three defer_embedding_wgrad_compute refusals (PP
# 1, gradient_accumulation_fusion off, wgrad_deferral_limit < 0) and "Pipeline parallel communication overlapping in
# warmup and flush is only compatible with overlap_p2p_comm but not batch_p2p_comm"; pipeline_parallel/schedules.py
# forward_backward_pipelining_without_interleaving: "Non-interleaved pipeline parallelism does not support overlapping
# p2p communication" (get_forward_backward_func picks it for PP > 1 without a virtual size; first step). ms-swift 4.6
# turns sequence_parallel off at TP 1 and overlap_p2p_comm off without a virtual size (megatron_args.py
# __post_init__, _init_vpp_size), but get_mcore_model_config updates the config with megatron_extra_kwargs after that;
# mcore-bridge 1.6.3 ModelConfig.__post_init__ sets batch_p2p_comm False whenever overlap_p2p_comm is on, so only
# overlap_p2p_comm off reaches the warm-up/flush refusal.
def parallel_config_extras(recipe, args, shape: ModelShape, lay, err, warn):
    if from_extra(args, "sequence_parallel") and is_on(args, "sequence_parallel") and lay.tp <= 1:
        err("mcore-parallel", "megatron_extra_kwargs: sequence_parallel with TP=1: megatron-core refuses sequence "
            "parallelism without tensor parallelism (ms-swift drops its own argument at TP 1, not this one)",
            "megatron_extra_kwargs", hint="drop sequence_parallel from megatron_extra_kwargs")
    if is_on(args, "defer_embedding_wgrad_compute"):
        limit = config_value(args, "wgrad_deferral_limit", 0)
        for refused, why in ((lay.pp == 1, "pipeline parallelism (PP=1)"),
                             (not is_on(args, "gradient_accumulation_fusion"), "gradient_accumulation_fusion"),
                             (type(limit) is int and limit < 0, f"wgrad_deferral_limit >= 0 (got {limit})")):
            if refused:
                err("mcore-parallel", f"megatron_extra_kwargs: defer_embedding_wgrad_compute needs {why}",
                    "megatron_extra_kwargs", hint="drop defer_embedding_wgrad_compute")
    comm = config_value(args, "cp_comm_type")
    if lay.cp > 1 and isinstance(comm, list) and len(comm) != shape.num_layers:
        # TransformerConfig.__post_init__: "Length of cp_comm_type (..) should equal to the total number of
        # transformer layers"; ms-swift's cp_comm_type takes a list (one type per layer) and passes it through.
        err("mcore-parallel", f"cp_comm_type lists {len(comm)} types for {shape.name}'s {shape.num_layers} layers: "
            "megatron-core needs one per layer", flag(args, "cp_comm_type"),
            hint=f"one type for all layers (e.g. p2p), or a list of {shape.num_layers}")
    overlap = _overlap_p2p(args, lay)
    if is_on(args, "overlap_p2p_comm_warmup_flush") and not overlap:
        err("mcore-parallel", "megatron_extra_kwargs: overlap_p2p_comm_warmup_flush needs overlap_p2p_comm, which "
            "ms-swift turns off without a virtual pipeline size", "megatron_extra_kwargs",
            hint="drop overlap_p2p_comm_warmup_flush, or use a virtual pipeline size")
    if (from_extra(args, "overlap_p2p_comm") and is_on(args, "overlap_p2p_comm") and lay.pp > 1
            and _virtual_size(args, lay) is None):
        err("mcore-parallel", f"megatron_extra_kwargs: overlap_p2p_comm with PP={lay.pp} and no virtual pipeline "
            "size: megatron-core's non-interleaved schedule refuses it in the first step", "megatron_extra_kwargs",
            hint="drop overlap_p2p_comm (ms-swift turns it on with a virtual pipeline size)")


# Evidence: megatron-core 0.16.1 pipeline_parallel/schedules.py forward_backward_pipelining_with_interleaving: without
# overlap_p2p_comm ("# No p2p overlap." steady state, and the last warm-up step) each step exchanges with one
# send_forward_backward_recv_forward_backward, whose _communicate (p2p_communication.py) posts a send and a receive
# to the previous AND to the next pipeline rank. With variable_seq_lengths it first runs _communicate_shapes, which
# always batches [send_prev, recv_prev, send_next, recv_next] into one batch_isend_irecv (it never reads
# batch_p2p_comm), and _batched_p2p_ops (batch_p2p_comm) posts the tensors in the same order. At PP 2 the previous
# and the next rank are the same peer; NCCL point-to-point is tagless, so same-peer operations pair in posting
# order, and both ranks post the same order while holding opposite prev/next roles: the activation and gradient
# shapes (and with batched transfers the tensors) arrive crossed, and the backward stops on a grad_output / output
# shape mismatch, or trains on the wrong tensors. _p2p_ops (batch_p2p_comm off) splits a size-2 group over two
# communicators for the tensors, not for the shapes. overlap_p2p_comm on sends each direction on its own.
# ms-swift 4.6: overlap_p2p_comm defaults to true (megatron_args.py), batch_p2p_comm to `not overlap_p2p_comm`
# (MegatronArguments._init_vpp_size), mcore-bridge turns batch_p2p_comm off when overlap_p2p_comm is on, and
# variable_seq_lengths is on by default (mcore_config.variable_seq_lengths). Reports: NVIDIA/Megatron-LM PR #1451
# (issue #1450: PP 2, VPP 2, variable_seq_lengths, batch_p2p_comm, overlap_p2p_comm off: "communication misorder"
# and a stuck run; gone with overlap_p2p_comm on and batch_p2p_comm off), PR #5271 (the root cause above, "training
# silently corrupts pipeline tensors and later crashes in torch.autograd.backward with a grad_output vs output shape
# mismatch"; not merged, and not in 0.16.1). Which schedules cross: bench/mcore_audit/p2p_pp2_pairing.py runs the
# 0.16.1 schedule per rank with a recording communicator and pairs the posted operations in order -- every step of
# M >= 3 micro-batches crosses receives; M = 2 (PP 2's smallest legal M) crosses none, because rank 0 runs all its
# micro-batches in the warm-up (get_pp_rank_microbatches: 2 + (V-1) x group >= 2V) and the combined call is never
# posted opposite a combined call. Scope: engine megatron, PP 2 with virtual pipeline stages, overlap_p2p_comm off as
# the config gets it, variable_seq_lengths on, more than 2 micro-batches per step.
def interleaved_pp2_without_p2p_overlap(recipe, args, shape: ModelShape, lay, err, warn):
    if lay.pp != 2 or _virtual_size(args, lay) is None or _overlap_p2p(args, lay):
        return
    if not variable_seq_lengths(args):
        return
    microbatches = microbatches_per_step(args, lay)
    if microbatches is None or microbatches <= 2:
        return  # unknown: the global-batch rule speaks; 2: all of rank 0's micro-batches run in the warm-up
    where = "megatron_extra_kwargs" if from_extra(args, "overlap_p2p_comm") else "overlap_p2p_comm"
    err("pipeline-p2p-pp2", "virtual pipeline stages at PP=2 with overlap_p2p_comm off: the interleaved schedule "
        "exchanges activations and gradients with one batched send/receive to the previous and the next stage, which "
        "at PP 2 are the same rank, and megatron-core 0.16.1's shape exchange (variable_seq_lengths, always on under "
        "ms-swift) posts them in an order that pairs them crossed: the stages get each other's shapes (and, batched, "
        f"tensors) and the backward stops on a shape mismatch (NVIDIA/Megatron-LM PR #1451, #5271; {microbatches} "
        "micro-batches per step: the steady 1F1B phase runs)", where,
        hint="overlap_p2p_comm: true (ms-swift's default with virtual stages), or no virtual pipeline stages at PP 2")


# Evidence: megatron-core 0.16.1 transformer/moe/token_dispatcher.py MoEFlexTokenDispatcher.__init__ ("Flex token
# dispatcher requires TPxEP > 1", when MoELayer builds it) and router.py TopKRouter.sinkhorn_load_balancing ("Sinkhorn
# routing does not support aux loss.", the first training step); ms-swift 4.6's moe_aux_loss_coeff defaults to 0.
# The dispatcher's "TP" is its tp_group, pg_collection.expt_tp (MoETokenDispatcher.__init__): the *expert* tensor
# parallel size, which ms-swift 4.6 defaults to 1 whatever tensor_model_parallel_size is (megatron_args.py).
# The router runs sinkhorn only when `self.routing_type == "sinkhorn"` (TopKRouter.routing), a string, and then asserts
# `moe_aux_loss_coeff == 0`: a list (megatron_extra_kwargs as written, or an argument of two items) never equals 0,
# nor does a string or null in megatron_extra_kwargs (nothing converts them).
def moe_layer_setup(recipe, args, shape: ModelShape, lay, err, warn):
    if not shape.is_moe:
        return
    if dispatcher_of(args) == "flex" and lay.etp * lay.ep == 1:
        where = f" (TP={lay.tp}, but the flex dispatcher's TP is the expert TP)" if lay.tp > 1 else ""
        err("moe-dispatcher", f"moe_token_dispatcher_type flex with ETP*EP = 1{where}: megatron-core's flex "
            "dispatcher needs expert TP*EP > 1", flag(args, "moe_token_dispatcher_type"),
            hint="alltoall, or EP > 1 (or expert_tensor_parallel_size > 1)")
    if not _sinkhorn(args):
        return
    coeff = config_value(args, "moe_aux_loss_coeff")
    if not _coefficient_is_zero(args, coeff):
        err("moe-load-balancing", f"moe_aux_loss_coeff {coeff!r} with sinkhorn load balancing: megatron-core's router "
            "asserts moe_aux_loss_coeff == 0 with sinkhorn in the first step", flag(args, "moe_aux_loss_coeff"),
            hint="moe_aux_loss_coeff: 0 (a number, not a list)")


# Evidence: megatron-core 0.16.1 pipeline_parallel/schedules.py forward_backward_no_pipelining (PP 1) hands the
# step to hybrid_cp_schedule.py hybrid_context_parallel_forward_backward whenever the config's
# hybrid_context_parallel is on; that reads each step's batch as `data = next(data_iterator); sample_id_groups =
# data[1]; batch = data[0]` -- the (samples, groups) pair only Megatron-LM's HybridCPDataLoaderWrapper builds, and
# only megatron/training/training.py wraps the iterator with it. ms-swift 4.6 has no argument for the switch (it
# reaches the config through megatron_extra_kwargs, get_mcore_model_config / _get_megatron_bridge_model), never
# imports that wrapper, and its trainers pass forward_backward_func their own iterator (trainers/base.py
# cyclic_iter over the DataLoader: a dict per micro-batch, so `data[1]` is KeyError: 1 in the first step;
# bench/mcore_audit/confirm_runtime.py hybrid-cp-dict-batch runs it).
# Report: NVIDIA-NeMo/Megatron-Bridge#4586 (Dynamic/Hybrid CP "does not work in Bridge out of the box even with the
# right mcore version": the glue is in megatron/training/training.py, which Bridge's own loop does not use).
# Under PP > 1 the pipelined schedules never read the switch and ms-swift builds its batches and CP slices itself
# (swift/megatron/utils get_batch_on_this_cp_rank, not megatron-core's hybrid-CP batch helper): the run trains with
# the fixed context_parallel_size, the balancing asked for silently absent -- a warning there.
def hybrid_context_parallel(recipe, args, shape: ModelShape, lay, err, warn):
    if not is_on(args, "hybrid_context_parallel"):
        return
    if lay.pp != 1:
        warn("hybrid-cp-schedule", f"megatron_extra_kwargs: hybrid_context_parallel at PP={lay.pp}: megatron-core's "
             "pipelined schedules never read it and ms-swift slices its batches for the fixed context_parallel_size, "
             "so no dynamic CP happens", "megatron_extra_kwargs",
             hint="drop hybrid_context_parallel; balance long samples with context_parallel_size / packing instead")
        return
    err("hybrid-cp-schedule", "megatron_extra_kwargs: hybrid_context_parallel at PP=1: megatron-core's schedule then "
        "reads each batch as the (samples, sample_id_groups) pair only Megatron-LM's own training loop builds "
        "(HybridCPDataLoaderWrapper); ms-swift's trainers hand it their micro-batch dicts, so the first step fails "
        "(KeyError: 1)", "megatron_extra_kwargs",
        hint="drop hybrid_context_parallel (and max_seqlen_per_dp_cp_rank); use context_parallel_size for a fixed CP")


def _sinkhorn(args) -> bool:
    """The config's moe_router_load_balancing_type is the string "sinkhorn" megatron-core compares with (router.py
    TopKRouter.routing, TransformerConfig's top-k 1 check): a list that reaches it as a list never is."""
    kind = config_value(args, "moe_router_load_balancing_type")
    if is_list(args, "moe_router_load_balancing_type", kind):
        return False
    return str(kind[0] if isinstance(kind, list) else kind) == "sinkhorn"  # ms-swift unwraps a one-item argument


def _coefficient_is_zero(args, coeff) -> bool:
    """moe_aux_loss_coeff as the config gets it equals 0 (TopKRouter.sinkhorn_load_balancing's assert)."""
    if coeff is None and not from_extra(args, "moe_aux_loss_coeff"):
        return True  # unset: ms-swift's default 0
    if is_list(args, "moe_aux_loss_coeff", coeff):
        return False
    if not from_extra(args, "moe_aux_loss_coeff"):
        value = coeff[0] if isinstance(coeff, list) else coeff  # ms-swift unwraps a one-item argument list
        try:
            return float(value) == 0  # ms-swift's argparse reads the argument as a float
        except (TypeError, ValueError):
            return True  # not a number: the argument-type rule's
    return coeff == 0  # as written: False == 0 passes, "0.0" / None / NaN do not


MCORE_FEATURE_RULES = [moe_a2a_overlap, activation_offloading, fp8_bf16_layers, moe_router_config, extra_kwargs_pairs,
                       cuda_graph_runtime,
                       parallel_config_extras, interleaved_pp2_without_p2p_overlap, moe_layer_setup,
                       hybrid_context_parallel]
