"""Rules on the vLLM rollout engine a GRPO / GKD recipe colocates, both engines: which vLLM the run targets, and
whether that vLLM knows the model's architecture at all. Registered with the shared engine rules
(warn_rules.ENGINE_RULES), which layout.py runs for engine megatron and check_engine_rules for engine swift."""

from __future__ import annotations

import os

from swift_ext.planner.config_keys import MAX_LENGTH_KEYS, ROPE_WITHOUT_FACTOR
from swift_ext.spec.gpus import GPUS
from swift_ext.spec.support import BY_FEATURE, VLLM_MODEL_FEATURES, Versions, resolve_versions, version_gaps

# The older, vLLM-only spelling of a target version (SWIFT_EXT_TARGET_VERSIONS "vllm=..." says the same).
ENV_VLLM_VERSION = "SWIFT_EXT_VLLM_VERSION"

ROLLOUT_RULES: list = []


def rollout_rule(fn):
    ROLLOUT_RULES.append(fn)
    return fn


def vllm_version(env: dict[str, str] | None) -> tuple[str | None, str]:
    """(version, where from) of the vLLM the run targets: SWIFT_EXT_VLLM_VERSION in the recipe env or the
    environment, else the support table's resolution (SWIFT_EXT_TARGET_VERSIONS there, then the installed copy)."""
    for label, source in (("recipe env", env or {}), ("environment", os.environ)):
        if source.get(ENV_VLLM_VERSION):
            return source[ENV_VLLM_VERSION].strip(), f"{ENV_VLLM_VERSION} in the {label}"
    versions = resolve_versions(env)
    if "vllm" in versions.versions:
        return versions.versions["vllm"], versions.sources["vllm"]
    return None, "not installed"


def colocated_engine(recipe, args) -> bool:
    """Whether the run builds a colocated vLLM engine: GRPO or GKD with use_vllm (engine megatron's default is on, for
    every command) and no rollout server (a server runs its own vLLM, which `swift rollout` checks when it starts);
    Megatron GKD with lmbda 0 never generates and builds none (megatron/trainers/rollout_mixin.py _init_rollout_engine
    returns first), engine swift's GKD always does (rlhf_trainers/gkd_trainer.py calls prepare_rollout)."""
    if recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd") or not args.bool("use_vllm"):
        return False
    if args.str("vllm_mode") == "server":
        return False
    return not (recipe.engine == "megatron" and args.str("rlhf_type") == "gkd" and args.float("lmbda") == 0)


def engine_overrides_length(args) -> bool:
    """Whether vllm_engine_kwargs' hf_overrides rewrite a length key or the rope section of the config vLLM reads:
    ms-swift 4.6 (infer_engine/vllm_engine.py _prepare_engine_kwargs) merges them into the engine's hf_overrides,
    which vLLM applies to config.json before _get_and_verify_max_len derives the length from it (NeMo-RL's DAPO
    recipe raises Qwen2.5-Math-7B's max_position_embeddings to 16384 that way)."""
    overrides = args.mapping("vllm_engine_kwargs").get("hf_overrides")
    return isinstance(overrides, dict) and bool(set(overrides) & {*MAX_LENGTH_KEYS, "rope_scaling", "rope_parameters"})


@rollout_rule
def vllm_model_support(recipe, args, shape, lay, err, warn):
    if not colocated_engine(recipe, args) or not shape.model_type:
        return
    version, where = vllm_version(recipe.env)
    if version is None:
        return  # no verdict without a version (vLLM is not installed here and the recipe names none)
    # spec/support.py VLLM_MODEL_FEATURES: the rows whose architecture an older vLLM does not register
    for feature in VLLM_MODEL_FEATURES:
        row = BY_FEATURE[feature]
        if not shape.model_type.startswith(row.model_types):
            continue
        for gap in version_gaps(feature, Versions({"vllm": version}, {"vllm": where})):
            err("vllm-model", f"{row.what}: {gap} ({where}); vLLM refuses the architecture when the rollout engine "
                "starts (\"Model architectures [...] are not supported for now\"), or falls back to its generic "
                "Transformers backend, which fails in the rollout (ms-swift#6649: IndexError)", "use_vllm",
                hint=f"a vLLM >= {row.needs['vllm']} for the rollout (set the target with SWIFT_EXT_TARGET_VERSIONS "
                "vllm=... in the recipe env when the cluster has it), or use_vllm: false")


# Rollout features ms-swift itself gates on the trainer's vLLM version (rlhf_trainers/utils.py check_vllm_version_ge):
# (argument, the value that needs it, minimum vLLM, where ms-swift raises, the engines and vLLM modes it applies to).
VLLM_FEATURE_FLOORS = (
    # rlhf_trainers/rollout_mixin.py RolloutTrainerMixin._prepare_vllm and megatron/trainers/grpo_trainer.py
    # MegatronGRPOTrainer._init_rollout_engine: "rollout_importance_sampling_mode is not supported in vLLM version <
    # 0.10.2" (the rollout logprobs need logprobs_mode processed_logprobs), checked in the trainer whatever vllm_mode.
    ("rollout_importance_sampling_mode", None, "0.10.2", "the trainer's rollout set-up", ("swift", "megatron"),
     ("colocate", "server")),
    # megatron/trainers/rollout_mixin.py MegatronRolloutMixin._prepare_vllm_engine: R3 asks the colocated engine for
    # enable_return_routed_experts ("Please upgrade vllm to 0.14.0 or higher").
    ("router_replay_mode", "R3", "0.14.0", "the colocated engine's start", ("megatron",), ("colocate",)),
)


@rollout_rule
def vllm_feature_floor(recipe, args, shape, lay, err, warn):
    from packaging.version import InvalidVersion, Version

    if recipe.command != "rlhf" or args.str("rlhf_type") != "grpo" or not args.bool("use_vllm"):
        return
    version, where = vllm_version(recipe.env)
    if version is None or "dev" in version:  # check_vllm_version_ge counts a dev build as the newest
        return
    try:
        have = Version(version)
    except InvalidVersion:
        return
    for key, value, floor, when, engines, modes in VLLM_FEATURE_FLOORS:
        stated = args.str(key)
        if stated is None or (value is not None and stated != value) or recipe.engine not in engines \
                or args.str("vllm_mode") not in modes or have >= Version(floor):
            continue
        err("vllm-feature-version", f"{key} {stated} needs vLLM >= {floor}, the run targets {version} ({where}): "
            f"ms-swift refuses it at {when}", key,
            hint=f"a vLLM >= {floor} (SWIFT_EXT_TARGET_VERSIONS vllm=... in the recipe env when the cluster has it), "
                 f"or drop {key}")


# The first vLLM release whose default MoE kernel for bf16 experts ("auto") is a FlashInfer backend on Hopper and
# Blackwell instead of Triton: NVIDIA-NeMo/RL#2586 (vLLM 0.17.1 -> 0.20.0: "the default MoE kernel backend for this
# model changes from TRITON to FLASHINFER_CUTLASS"); NVIDIA-NeMo/RL#2618 names Triton "the backend that was default
# in vLLM 0.18.0". Releases between are not judged.
VLLM_FLASHINFER_MOE_SINCE = "0.20.0"


@rollout_rule
def vllm_moe_backend_sync(recipe, args, shape, lay, err, warn):
    # Both trainers sync a colocated engine in place: the checkpoint-layout tensors go through the vLLM model's own
    # load_weights into the live parameters, then process_weights_after_loading runs again
    # (megatron/trainers/rollout_mixin.py _export_and_load_weights: patch_vllm_moe_model_weight_loader,
    # llm_model.load_weights, finish_vllm_weight_reload; rlhf_trainers/rollout_mixin.py the same), not vLLM's layerwise
    # reload. That holds while the MoE kernel keeps the experts in checkpoint layout (Triton); the FlashInfer kernels
    # vLLM picks by default since 0.20 re-lay w13/w2 out one way: NeMo-RL saw high rollout-vs-train logprob error on
    # H100 and a crash at refit on GB200 ("shard_dim=0 is not a valid data dimension for a 3D tensor", #2618) and pins
    # moe_backend triton (#2586, #2734 gpt-oss, #2873 Qwen3-30B-A3B / DeepSeek-V3); verl#7978 hit the same ValueError on
    # B200 with vLLM 0.24. vLLM is not installed here to read the kernel choice: a warning, judged only for a known vLLM.
    from packaging.version import InvalidVersion, Version

    if not colocated_engine(recipe, args) or not shape.is_moe:
        return
    gpu = GPUS.get(recipe.launch.gpu or "")
    if gpu is not None and gpu.compute_capability < (9, 0):
        return  # the reports are Hopper and Blackwell; FlashInfer's CUTLASS / TRT-LLM MoE kernels need sm90+
    backend = args.mapping("vllm_engine_kwargs").get("moe_backend")
    if isinstance(backend, str) and backend.lower() == "triton":
        return
    version, where = vllm_version(recipe.env)
    if version is None:
        return
    try:
        if Version(version).release < Version(VLLM_FLASHINFER_MOE_SINCE).release:
            return
    except InvalidVersion:
        return
    chosen = f"moe_backend {backend}" if backend else f"the default MoE kernel of vLLM {version} ({where})"
    warn("vllm-moe-backend-sync", f"{chosen} for the colocated engine of an MoE model: since vLLM "
         f"{VLLM_FLASHINFER_MOE_SINCE} that is a FlashInfer kernel whose expert layout ms-swift's in-place weight sync "
         "(load_weights, then process_weights_after_loading) does not restore -- rollouts from corrupted experts "
         "(H100: high rollout logprob error) or a crash at the first sync on Blackwell (\"shard_dim=0 is not a valid "
         "data dimension for a 3D tensor\"; NVIDIA-NeMo/RL#2618, verl-project/verl#7978)", "vllm_engine_kwargs",
         hint="vllm_engine_kwargs: {moe_backend: triton} (NeMo-RL's and verl's fix)")


# Models a vLLM release cannot start with LoRA enabled (spec/support.py rows), and what fails there.
VLLM_LORA_MODEL_FEATURES = {
    "vllm-lora-qwen3_vl": "it wraps the vision tower's linears as LoRA layers, and the engine fails when it starts "
                          "(\"assert token_lora_mapping.size(0) == M\" in _lora_shrink during the profile run; "
                          "ms-swift#6670, vllm-project/vllm#27669)",
    "vllm-lora-qwen3_5": "its LoRA layer for the Gated DeltaNet input projection (in_proj_qkvz: 4 slices, 2 packed "
                         "modules) fails in the LoRA warm-up or at the first adapter load (\"IndexError: list index out "
                         "of range\" in set_lora; vllm-project/vllm#35286)",
}


def vllm_lora_model_gaps(model_type: str | None, env) -> list[tuple[str, str, str]]:
    """(what, why, hint) for each row of VLLM_LORA_MODEL_FEATURES the target vLLM fails for this model type; []
    without a known vLLM version."""
    version, where = vllm_version(env)
    if version is None or not model_type:
        return []
    found = []
    for feature, failure in VLLM_LORA_MODEL_FEATURES.items():
        row = BY_FEATURE[feature]
        if model_type.startswith(row.model_types):
            # qwen3_5: the fix (vllm-project/vllm#36976) postdates 0.17.0; which release first carries it is not read
            newer = "a vLLM with vllm-project/vllm#36976 (after 0.17.0)" if feature == "vllm-lora-qwen3_5" \
                else f"vLLM >= {row.needs['vllm']}"
            found += [(row.what, f"{gap} ({where}): {failure}", newer)
                      for gap in version_gaps(feature, Versions({"vllm": version}, {"vllm": where}))]
    return found


@rollout_rule
def vllm_lora_model_support(recipe, args, shape, lay, err, warn):
    # Both trainers start the colocated engine with enable_lora when tuner_type is lora and vllm_enable_lora is on
    # (rlhf_trainers/rollout_mixin.py _prepare_vllm_engine lora_kwargs; megatron/trainers/rollout_mixin.py
    # _prepare_vllm_engine enable_lora), and vLLM runs its profile pass with LoRA layers in place when it starts.
    if not colocated_engine(recipe, args) or not args.bool("vllm_enable_lora") or args.str("tuner_type") != "lora":
        return
    for what, why, newer in vllm_lora_model_gaps(shape.model_type, recipe.env):
        err("vllm-lora-model", f"vllm_enable_lora starts the colocated vLLM with LoRA, and {what} needs a newer vLLM: "
            f"{why}", "vllm_enable_lora",
            hint=f"vllm_enable_lora: false (the merged LoRA weights are synced instead), or {newer} for the rollout "
                 "(SWIFT_EXT_TARGET_VERSIONS vllm=... in the recipe env when the cluster has it)")


# Evidence: megatron-core 0.16.1 optimizer/distrib_optimizer.py DistributedOptimizer.step_with_ready_grads: with
# overlap_param_gather the updated parameter shards are all-gathered only by the next forward's pre-hooks
# (distributed_data_parallel.py start_param_sync); until then each data-parallel rank holds its own shard of the step
# and the other ranks' shards from the step before. ms-swift 4.6's Megatron rollout reads the weights in between:
# trainers/base.py train_step zeroes the buffers, then _replace_data_iterator builds the rollout
# (rollout_mixin.py _generate_completions -> _move_model_to_vllm -> bridge.export_weights) before
# forward_backward_func runs, and nothing forces the parameter sync first (only evaluation and saving do:
# should_disable_forward_pre_hook / disable_forward_pre_hook). vLLM then generates from a mix of the new and the
# previous step's weights, silently. Reports: NVIDIA-NeMo/RL#552 (distributed optimizer + overlap_param_gather:
# divergence, blocked), PR #4086 (the cause: "every DP rank exports its own updated shard next to stale copies of the
# others"; fixed by a synchronous all-gather before refit), RLinf PR #56 (abnormal updates in the inference workers).
# Scope: engine megatron, a rollout engine that receives the trained weights (GRPO with vLLM, colocated or server;
# GKD generating on-policy), overlap_param_gather with the distributed optimizer (ms-swift's default; not
# Megatron-FSDP, which gathers in its own hooks), and parameters sharded: DP x CP > 1, or an expert data-parallel
# group above 1 for a MoE model.
@rollout_rule
def rollout_param_gather(recipe, args, shape, lay, err, warn):
    if recipe.engine != "megatron" or recipe.command != "rlhf" or not args.bool("use_vllm"):
        return
    kind = args.str("rlhf_type")
    if not (kind == "grpo" or (kind == "gkd" and args.float("lmbda") != 0)):
        return
    if not args.bool("overlap_param_gather") or not args.bool("use_distributed_optimizer") \
            or args.bool("use_megatron_fsdp"):
        return
    dense_shards = lay.dp * lay.cp
    expert_shards = lay.world // (lay.pp * lay.ep * lay.etp) if shape is not None and shape.is_moe else 1
    if dense_shards <= 1 and expert_shards <= 1:
        return
    warn("rollout-param-gather", f"overlap_param_gather with the distributed optimizer ({dense_shards} dense shards"
         + (f", {expert_shards} expert shards" if expert_shards > 1 else "") + "): megatron-core all-gathers the "
         "updated parameters only in the next forward, and ms-swift syncs the weights to vLLM before it, so every "
         "rollout after the first step comes from each rank's own fresh shard next to the previous step's others -- "
         "rollouts from a policy that is not the trained one, without an error (NVIDIA-NeMo/RL#552, PR #4086)",
         "overlap_param_gather",
         hint="overlap_param_gather: false (ms-swift's default) for RL with a vLLM rollout")


@rollout_rule
def r3_rollout_server(recipe, args, shape, lay, err, warn):
    # Megatron R3 replays the experts the rollout engine chose. A colocated engine is asked for them by ms-swift itself
    # (megatron/trainers/rollout_mixin.py _prepare_vllm_engine: vllm_engine_kwargs['enable_return_routed_experts'] =
    # True); a rollout server is `swift rollout`'s vLLM, built from its own vllm_engine_kwargs (pipelines/infer/
    # rollout.py get_vllm_engine_kwargs), and nothing on the trainer's side turns it on. Without it every choice's
    # routed_experts is None, rlhf_trainers/utils.py drops the batch's routing, and the first replayed forward on an MoE
    # layer asserts (megatron/trainers/utils.py compute_per_token_logps_fn: "When router_replay_mode = R3,
    # routed_experts must be in data"). slime#1909 / radixark/miles#407 hit the same split: R3 on the trainer, a rollout
    # engine that returns no routing. The server's flags are not in the recipe: a warning.
    if recipe.engine != "megatron" or recipe.command != "rlhf" or args.str("rlhf_type") != "grpo":
        return
    if args.str("router_replay_mode") != "R3" or not args.bool("use_vllm") or args.str("vllm_mode") != "server":
        return
    if not shape.is_moe:
        return  # no router: RouterReplayHelper finds no instance and nothing is replayed
    warn("r3-rollout-server", "router_replay_mode R3 with vllm_mode server: ms-swift asks only a colocated vLLM to "
         "return the routed experts; the `swift rollout` server returns them only when it was started with "
         "--vllm_engine_kwargs '{\"enable_return_routed_experts\": true}' (vLLM >= 0.14), else the first training "
         "step asserts \"When router_replay_mode = R3, routed_experts must be in data\"", "router_replay_mode",
         hint="start `swift rollout` with --vllm_engine_kwargs '{\"enable_return_routed_experts\": true}', or use "
              "vllm_mode colocate, or router_replay_mode R2 (replays the trainer's own routing)")


@rollout_rule
def vllm_mm_cache(recipe, args, shape, lay, err, warn):
    # A colocated vLLM on a vision-language model keeps vLLM's multimodal processor cache (mm_processor_cache_gb:
    # megatron/trainers/rollout_mixin.py and rlhf_trainers/rollout_mixin.py pass vllm_mm_processor_cache_gb, None
    # leaving vLLM's default 4 GiB). Its sender and receiver LRU caches can fall out of step under many distinct
    # images and the engine dies on "AssertionError: Expected a cached item for mm_hash" (vllm-project/vllm#31404,
    # still open with its fix, PR #34749); ms-swift's maintainers answer it with vllm_mm_processor_cache_gb 0
    # (ms-swift#9863: Megatron GRPO dense_colocate example on Qwen2.5-VL-3B, after the last step; ms-swift#7307
    # Qwen3-VL). It strikes late and at random: said, not refused.
    if not colocated_engine(recipe, args) or shape.vision is None or args.bool("language_model_only"):
        return
    cache = args.float("vllm_mm_processor_cache_gb")
    if cache is not None and cache <= 0:
        return
    size = "vLLM's default 4 GiB" if cache is None else f"{cache:g} GiB"
    warn("vllm-mm-cache", f"the colocated vLLM rolls out a vision-language model with its multimodal processor cache "
         f"on ({size}): vLLM's cache can lose an item it still expects and the engine dies mid-run with "
         "\"Expected a cached item for mm_hash\" (vllm-project/vllm#31404)", "vllm_mm_processor_cache_gb",
         hint="vllm_mm_processor_cache_gb: 0 (ms-swift's answer to it; images are processed again per request)")


# The generation length from which vllm-cascade-attn warns: verl PR #3595's condition is "very long" inputs and outputs
# (multi-turn reasoning); 4096 tokens is well above ms-swift's 512-token default and short-answer tasks.
CASCADE_LONG_COMPLETION = 4096


@rollout_rule
def vllm_cascade_attention(recipe, args, shape, lay, err, warn):
    # vLLM V1 runs cascade attention (the shared prefix once, then each request's suffix, merged) when every running
    # request shares a long prefix -- GRPO's num_generations copies of a prompt. On FlashAttention-2 GPUs it drifts
    # from the reference: vllm-project/vllm#19384 (Qwen3 generations degrade on Ampere, fixed by disable_cascade_attn;
    # also seen on GB200), #22103 (cascade accuracy on A100), verl PR #3595 (RL on non-Hopper GPUs -- A100, L20, B200 --
    # with long sequences: rollout/training logprob gap and grad-norm blow-ups; fix disable_cascade_attn). vLLM made it
    # opt-in (vllm-project/vllm#36318), but ms-swift passes its own vllm_disable_cascade_attn (default false) to every
    # engine it builds (rlhf_trainers/args_mixin.py, megatron_args.py; infer_engine/vllm_engine.py
    # _prepare_engine_kwargs writes it over vllm_engine_kwargs' own disable_cascade_attn whenever EngineArgs has the
    # field), so the engine keeps it on. Hopper (FA3) is not in the reports. Silent: a warning, for a known non-Hopper
    # card, and for long generations (the reports' condition: long reasoning outputs; at least
    # CASCADE_LONG_COMPLETION tokens of max_completion_length), where the drift compounds. The shared prefix is found
    # through shared KV blocks (vLLM v1 KVCacheManager.get_num_common_prefix_blocks: blocks whose ref_cnt is every
    # running request's), which only prefix caching shares: with vllm_enable_prefix_caching false (ms-swift's default
    # is true for both engines) each request holds its own blocks and cascade attention never runs.
    if not colocated_engine(recipe, args) or args.str("rlhf_type") != "grpo" or args.bool("vllm_disable_cascade_attn"):
        return
    if args.raw("vllm_enable_prefix_caching") is not None and not args.bool("vllm_enable_prefix_caching"):
        return
    gpu = GPUS.get(recipe.launch.gpu or "")
    if gpu is None or gpu.compute_capability < (8, 0) or gpu.compute_capability[0] == 9:
        return  # unknown card; below sm80 vLLM has no FlashAttention backend to cascade with; Hopper runs FA3
    if (args.max_completion_length or 0) < CASCADE_LONG_COMPLETION:
        return
    warn("vllm-cascade-attn", f"the colocated vLLM on {recipe.launch.gpu} (sm{gpu.compute_capability[0]}"
         f"{gpu.compute_capability[1]}, not Hopper) keeps cascade attention on: ms-swift passes "
         "vllm_disable_cascade_attn false, GRPO's num_generations copies of each prompt are the shared-prefix batches "
         f"it is used for, and its numerics drift on these GPUs (vllm-project/vllm#19384, #22103): over "
         f"{args.max_completion_length}-token generations the rollout logprobs part from the trainer's, with grad-norm "
         "spikes in long-sequence RL (verl-project/verl PR #3595)",
         "vllm_disable_cascade_attn", hint="vllm_disable_cascade_attn: true (verl's fix, and vLLM's own default)")


# The first vLLM release read for vllm-chunked-prefill-budget's refusal: SchedulerConfig.verify_max_model_len
# ("max_num_batched_tokens (...) is smaller than max_model_len (...)" when chunked prefill is off) is the same from
# 0.15.0 to 0.29.0 (unslothai/unsloth-zoo#1211). Earlier V1 releases kept chunked prefill on whatever the flag said, so
# there (and without a known version) the rule only warns.
VLLM_CHUNKED_PREFILL_CHECK_SINCE = "0.15.0"


@rollout_rule
def vllm_chunked_prefill_budget(recipe, args, shape, lay, err, warn):
    # vllm_engine_kwargs reach the colocated engine's EngineArgs unchanged (ms-swift never sets max_num_batched_tokens
    # or enable_chunked_prefill itself). With chunked prefill off, a prefill must fit one scheduler step, and vLLM
    # refuses a step budget below max_model_len when the engine starts: verl#7624 (verl's default 8192 with
    # enable_chunked_prefill False against Llama-3.2-1B's 131072 positions, vLLM 0.24), verl PR #7632 (Qwen2.5-VL-3B,
    # 128000), verl PR #259. max_model_len is vllm_max_model_len, else what vLLM derives from config.json (judged only
    # without rope_scaling or hf_overrides that change it: at least max_position_embeddings). ms-swift's own
    # max_model_len changes it too on a checkpoint whose rope carries a factor (yarn, linear, dynamic):
    # ModelArguments._init_rope_scaling drops the config's factor for ceil(max_model_len / original), the loader writes
    # that rope into the config, and VllmEngine._get_hf_config_overrides hands the changed rope to vLLM as hf_overrides
    # (DeepSeek-V2-Lite with max_model_len 8192: yarn 4096 x 2 = 8192, not 163840) -- not judged there either.
    from packaging.version import InvalidVersion, Version

    if not colocated_engine(recipe, args):
        return
    kwargs = args.mapping("vllm_engine_kwargs")
    budget = kwargs.get("max_num_batched_tokens")
    if kwargs.get("enable_chunked_prefill") is not False or not isinstance(budget, int) or isinstance(budget, bool):
        return
    length = args.int("vllm_max_model_len")
    if length is None:
        if args.raw("rope_scaling") or engine_overrides_length(args) or not shape.max_positions:
            return
        if args.int("max_model_len") and shape.rope_scaling and shape.rope_scaling not in ROPE_WITHOUT_FACTOR:
            return
        length = shape.max_positions
    if budget >= length:
        return
    version, where = vllm_version(recipe.env)
    try:
        known = version is not None and Version(version).release >= Version(VLLM_CHUNKED_PREFILL_CHECK_SINCE).release
    except InvalidVersion:
        known = False
    source = "vllm_max_model_len" if args.int("vllm_max_model_len") else "the length vLLM derives from config.json"
    message = (f"vllm_engine_kwargs turn chunked prefill off with max_num_batched_tokens {budget}, below max_model_len "
               f"{length} ({source}): vLLM refuses it when the rollout engine starts (\"max_num_batched_tokens "
               f"({budget}) is smaller than max_model_len ({length})\"; verl#7624)")
    hint = f"drop enable_chunked_prefill from vllm_engine_kwargs, or max_num_batched_tokens >= {length}, or " \
           f"vllm_max_model_len <= {budget}"
    if known:
        err("vllm-chunked-prefill-budget", f"{message}; vLLM {version} ({where})", "vllm_engine_kwargs", hint=hint)
    else:
        warn("vllm-chunked-prefill-budget", f"{message} -- on vLLM >= {VLLM_CHUNKED_PREFILL_CHECK_SINCE} (the target "
             f"vLLM is {version or 'not known here'}; early V1 releases kept chunked prefill on)", "vllm_engine_kwargs",
             hint=hint)


@rollout_rule
def rollout_server_qlora(recipe, args, shape, lay, err, warn):
    # A QLoRA policy (quant_method bnb, quant_bits 4) keeps its base weights as bitsandbytes-packed 4-bit tensors, and
    # the first weight sync sends them as they are (rlhf_trainers/rollout_mixin.py _move_full_model_to_vllm ->
    # _collect_state_dict_for_vllm: named_parameters' param.data; every later sync too unless vllm_enable_lora). The
    # colocated engine is built for that: ms-swift starts it with quantization 'bitsandbytes' for a bnb 4-bit model
    # (_prepare_vllm_engine, ms-swift PR #8350 "support qlora grpo"). A rollout server is started by `swift rollout`
    # with its own flags; one that loaded the bf16 checkpoint refuses the packed tensors in load_weights at the first
    # sync (ms-swift#6884: QLoRA GRPO against an external vLLM, qwen3_moe load_weights). The server is not in the
    # recipe: a warning. The sync runs only before a generation (_generate_completions: needs_weight_sync), and GKD
    # with lmbda 0 never generates (gkd_trainer.py _rollout_samples: a draw in [0, 1) <= lmbda picks the student), so
    # nothing is ever sent there.
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd") \
            or not args.bool("use_vllm") or args.str("vllm_mode") != "server":
        return
    if args.str("rlhf_type") == "gkd" and args.float("lmbda") == 0:
        return
    if (args.str("quant_method") or "").lower() != "bnb" or args.int("quant_bits") != 4 \
            or (args.str("tuner_type") or "lora") != "lora":
        return
    warn("rollout-server-qlora", "QLoRA (quant_method bnb, quant_bits 4) with a rollout server: the first weight sync "
         "sends the base model's bitsandbytes-packed 4-bit tensors, which a `swift rollout` server holding the bf16 "
         "checkpoint refuses in load_weights (ms-swift#6884); only the colocated engine is started with bitsandbytes "
         "quantization for it", "vllm_mode",
         hint="vllm_mode: colocate (ms-swift starts that engine with quantization bitsandbytes), or start the server "
              "with `swift rollout --vllm_quantization bitsandbytes`")
