"""ms-swift 4.6's RLHF algorithm arguments that fail (or are dropped) inside the trainer rather than in an argument
class: the loss_type names each trainer computes, KTO's batch for its KL term, and GRPO's reference-model sync with
no reference model to sync. Split from rules.py by concern; rules.py registers RLHF_RULES with its own. Each rule
names the file and function of the installed `swift` package it mirrors."""

from __future__ import annotations

from swift_ext.msswift.checkpoint_args import checkpoint_args, loaded
from swift_ext.msswift.plugin_registry import builtin_names, registered_names
from swift_ext.msswift.schema import RENAMED_VALUES
from swift_ext.msswift.validation_split import every_train_row
from swift_ext.spec.findings import shown

# rlhf_trainers/grpo_trainer.py GRPOTrainer._compute_loss_and_metrics and megatron/trainers/grpo_trainer.py
# MegatronGRPOTrainer.loss_func: the loss_type branches; any other name raises "Unknown loss type" at the first
# loss, after the first rollout. GSPO is importance_sampling_level sequence, not a loss_type.
GRPO_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "real", "fipo")
# rlhf_trainers/dpo_trainer.py DPOTrainer.dpo_loss: the loss_type branches ("Unknown loss type" otherwise, at the
# first step); kto_pair is refused when the trainer is built (startup_rules.dpo_kto_pair).
DPO_LOSS_TYPES = ("sigmoid", "robust", "exo_pair", "hinge", "ipo", "bco_pair", "sppo_hard", "nca_pair", "aot_unpaired",
                  "aot", "apo_zero", "apo_down", "discopop", "sft")
# trl/experimental/kto/kto_trainer.py KTOTrainer.kto_loss (ms-swift's KTOTrainer, and Megatron's DummyKTOTrainer through
# trl's KTOTrainer alias): the two branches; any other name leaves chosen_losses unbound (UnboundLocalError at the
# first step -- trl's `choices` metadata is never checked, ms-swift builds KTOConfig directly).
KTO_LOSS_TYPES = ("kto", "apo_zero_unpaired")
# trl/experimental/cpo/cpo_trainer.py CPOTrainer.cpo_loss ("Unknown loss type", at the first step) for rlhf_type cpo and
# simpo (RLHFArguments._init_simpo runs SimPO as CPO); alphapo is CPOConfig.__post_init__'s alias for simpo.
CPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo", "simpo", "alphapo")


def loss_types(recipe, args, err, warn):
    rlhf_type = (args.str("rlhf_type") or "dpo") if recipe.command == "rlhf" else None
    names = [str(t) for t in args.list("loss_type")]
    if not names:
        return
    if recipe.command in ("sft", "pt") and recipe.engine == "swift":
        _sft_loss_type(args, names[0], err)
    elif rlhf_type == "grpo" and len(names) == 1 and names[0] not in GRPO_LOSS_TYPES:
        # several loss types are rlhf-loss-types' refusal (RLHFArguments._process_loss_type, DPO only)
        hint = "importance_sampling_level: sequence (GSPO) with loss_type grpo" if names[0] == "gspo" else \
            f"one of {', '.join(GRPO_LOSS_TYPES)}"
        err("loss-type", f"loss_type {shown(names[0])} is not a GRPO loss: the trainer raises 'Unknown loss type' at the "
            "first loss, after the first rollout", "loss_type", hint=hint)
    elif rlhf_type == "dpo" and recipe.engine == "swift":
        for name in dict.fromkeys(n for n in names if n not in DPO_LOSS_TYPES and n != "kto_pair"):
            err("loss-type", f"loss_type {shown(name)} is not a DPO loss: DPOTrainer.dpo_loss raises 'Unknown loss type' "
                "at the first step", "loss_type", hint=f"one of {', '.join(DPO_LOSS_TYPES)}")
    elif rlhf_type == "kto" and len(names) == 1 and names[0] not in KTO_LOSS_TYPES:
        err("loss-type", f"loss_type {shown(names[0])} is not a KTO loss: KTOTrainer.kto_loss computes only "
            f"{' and '.join(KTO_LOSS_TYPES)} and fails at the first step on anything else (its loss is never "
            "assigned)", "loss_type", hint="loss_type: kto (the default), or apo_zero_unpaired")
    elif rlhf_type in ("cpo", "simpo") and recipe.engine == "swift" and len(names) == 1 \
            and names[0] not in CPO_LOSS_TYPES:
        err("loss-type", f"loss_type {shown(names[0])} is not a {rlhf_type.upper()} loss: ms-swift trains "
            f"{rlhf_type} with trl's CPOTrainer, whose cpo_loss raises 'Unknown loss type' at the first step", "loss_type",
            hint=f"one of {', '.join(CPO_LOSS_TYPES)}" + (" (simpo is SimPO's default)" if rlhf_type == "simpo" else "")
            + (", or rlhf_type: dpo for the DPO losses" if names[0] in DPO_LOSS_TYPES else ""))
    elif rlhf_type == "dpo" and recipe.engine == "megatron" and names != ["sigmoid"]:
        # megatron/trainers/dpo_trainer.py MegatronDPOTrainer.loss_func calls the shared dpo_loss without loss_type,
        # whose default is 'sigmoid' (ms-swift PR #10167, open): any other loss trains as sigmoid DPO, silently.
        warn("megatron-dpo-loss", f"loss_type {' '.join(names)} is not used by Megatron DPO: its loss function calls dpo_loss "
             "without it, so the run trains sigmoid DPO", "loss_type",
             hint="loss_type: sigmoid, or engine: swift for the other DPO losses")


def per_sequence_advantage_without_teacher(recipe, args, err, warn):
    # ms-swift 4.6: rlhf_trainers/rollout_mixin.py RolloutTrainerMixin._setup_teacher and megatron/trainers/
    # rollout_mixin.py set `_has_teacher = explicit or _is_dynamic_self_distillation`, and
    # gkd_helpers.resolve_dynamic_opd_self_distillation is true whenever no teacher is configured -- so a plain
    # reward GRPO has _has_teacher true (checked: _setup_teacher on a bare trainer object). The loss
    # (rlhf_trainers/grpo_trainer.py _compute_loss_and_metrics, megatron/trainers/grpo_trainer.py loss_func) then raises
    # "OPD-RL (teacher) does not support loss_type='real' / off_policy_sequence_mask" for loss_type real/fipo or an
    # off_policy_sequence_mask_delta, at the first loss. The argument check (_check_opd_rl) reads only an explicit
    # teacher, which grpo-teacher refuses. A warning, not a refusal: ms-swift's published real/fipo examples are
    # written for this path (tests/fixtures/working), so this reads as a 4.6 regression rather than a contract.
    if recipe.command != "rlhf" or args.str("rlhf_type") != "grpo":
        return
    if args.str("teacher_model") or args.str("teacher_model_server"):
        return  # an explicit teacher: grpo-teacher's refusal
    if recipe.engine == "swift" and args.bool("use_liger_kernel"):
        return  # the Liger loss path does not reach that check (and refuses these itself)
    names = [str(t) for t in args.list("loss_type")]
    loss = names[0] if len(names) == 1 else None
    if loss in ("real", "fipo"):
        key, what = "loss_type", f"loss_type {loss}"
    elif args.raw("off_policy_sequence_mask_delta") is not None:
        key, what = "off_policy_sequence_mask_delta", "off_policy_sequence_mask_delta"
    else:
        return
    warn("grpo-dynamic-opd", f"{what} needs a per-sequence advantage, and ms-swift 4.6's GRPO trainer treats a run "
         "with no teacher as dynamic self-distillation (_has_teacher true): its loss raises 'OPD-RL (teacher) does "
         "not support ...' at the first step even without teacher_model", key,
         hint="check it on a short run first; loss_type grpo/dapo/cispo/sapo (or no off_policy_sequence_mask_delta) "
              "avoids that check")


def _sft_loss_type(args, name: str, err) -> None:
    # trainers/mixin.py SwiftMixin.create_loss_and_eval_metric: loss_map[args.loss_type] when the trainer is built
    # (swift/loss/mapping.py, plus what an external_plugins file adds with loss_map['name'] = ...); the RLHF
    # algorithm names (grpo, sigmoid, ...) are not in it -- they belong to `swift rlhf`.
    known = registered_names("loss/mapping.py", "loss_map", args.list("external_plugins"))
    if known is None:
        return  # ms-swift not here, or a plugin may register any name
    if name in known:
        return
    rlhf = name in GRPO_LOSS_TYPES or name in DPO_LOSS_TYPES or name in ("kto", "kto_pair", "simpo")
    renamed = RENAMED_VALUES["loss_type"].get(name)  # a 3.x reranker loss: name its 4.x spelling
    err("sft-loss-type", f"loss_type {shown(name)} is not a loss ms-swift's trainer knows (KeyError {shown(name)} when "
        "the trainer "
        "is built)" + (f": {name} is an RLHF algorithm's loss, for `swift rlhf`" if rlhf else "")
        + (f": ms-swift 3.x's name, which 4.x calls {renamed}" if renamed in known else ""), "loss_type",
        hint=("command: rlhf with rlhf_type grpo/dpo, or drop loss_type (the model's own loss)" if rlhf else
              f"loss_type: {renamed} (or `swift-ext import --upgrade` the 3.x script)" if renamed in known else
              f"one of {', '.join(sorted(known))}, or drop loss_type (the model's own loss)"))


def cispo_clip(recipe, args, err, warn):
    # rlhf_trainers/grpo_trainer.py GRPOTrainer._compute_loss_and_metrics and megatron/trainers/grpo_trainer.py
    # MegatronGRPOTrainer.loss_func: CISPO's weight is clamp(ratio, max=epsilon_high), an absolute cap on a ratio
    # near 1, and epsilon_high falls back to epsilon (0.2) when unset (GRPOTrainer._prepare_algorithm_params, the
    # Megatron trainer's __init__). A cap below 1 clamps every token's weight to it: no importance sampling is left and
    # the gradient shrinks by that factor, without a word. ms-swift's CISPO page sets epsilon_high 5.0 (ScaleRL).
    if recipe.command != "rlhf" or args.str("rlhf_type") != "grpo" or args.str("loss_type") != "cispo":
        return
    high = args.float("epsilon_high")
    cap = high if high is not None else (args.float("epsilon") or 0.2)
    if cap < 1.0:
        stated = f"epsilon_high {cap:g}" if high is not None else f"epsilon_high unset, so epsilon {cap:g},"
        warn("cispo-clip", f"loss_type cispo caps each token's importance weight at {stated} below the ratio of "
             "about 1 every token has: every weight is clamped to that constant, so CISPO keeps no importance "
             f"sampling and the gradient shrinks {1 / cap:.0f}x", "epsilon_high",
             hint="epsilon_high: 5.0 (ms-swift's CISPO documentation, after ScaleRL)")


# The loss_types whose surrogate is PPO's clamp(ratio, 1 - epsilon, 1 + epsilon_high) (GRPOTrainer.
# _compute_loss_and_metrics, MegatronGRPOTrainer.loss_func); cispo, sapo and real weigh the ratio otherwise.
PPO_CLIP_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "fipo")
GSPO_CLIP_MAX = 0.01  # the GSPO paper clips the sequence ratio at 3e-4 / 4e-4; PPO's 0.2 is ~500x wider
# The GSPO paper's setting: each rollout split into 4 mini-batches, so the policy drifts 3 updates from the one that
# sampled; with fewer the sequence ratio stays within ~1e-3 of 1 and the clip range hardly matters either way.
GSPO_UPDATES = 4


def _updates_per_rollout(recipe, args) -> int:
    """Optimizer steps taken on one generation batch (1: every update is on-policy and the ratio is exactly 1).
    swift: steps_per_generation (default gradient_accumulation_steps) over gradient_accumulation_steps, times
    num_iterations; Megatron: steps_per_generation (default 1), the generation batch over global_batch_size."""
    if recipe.engine == "megatron":
        spg, gen_bs, gbs = args.int("steps_per_generation"), args.int("generation_batch_size"), \
            args.int("global_batch_size")
        return max(spg or 1, (gen_bs // gbs) if gen_bs and gbs else 1)
    gas = args.int("gradient_accumulation_steps") or 1
    spg, gen_bs = args.int("steps_per_generation"), args.int("generation_batch_size")
    steps = (spg // gas) if spg else 1
    if gen_bs and not spg:
        per_step = (args.int("per_device_train_batch_size", 1) or 1) * recipe.launch.world_size * gas
        steps = gen_bs // per_step if per_step else 1
    return max(steps, 1) * max(args.int("num_iterations") or 1, 1)


def gspo_clip(recipe, args, err, warn):
    # GSPO (importance_sampling_level sequence / sequence_token) clips exp(mean token log-ratio), a per-token geometric
    # mean that moves by about 1e-4..1e-3 per update, with the same epsilon / epsilon_high as token-level GRPO
    # (GRPOTrainer._compute_loss_and_metrics, MegatronGRPOTrainer.loss_func; epsilon_high falls back to epsilon, 0.2).
    # The GSPO paper clips at 3e-4 / 4e-4 and ms-swift's GSPO page asks for those; at 0.2 the clip never binds, so
    # the off-policy updates run unclipped, silently (huggingface/trl#3834: TRL's GSPO shipped with 0.2). With one
    # update per rollout the ratio is exactly 1 and the clip is moot; the warning starts at the paper's 4 updates.
    if recipe.command != "rlhf" or args.str("rlhf_type") != "grpo" \
            or (args.str("importance_sampling_level") or "token") not in ("sequence", "sequence_token") \
            or (args.str("loss_type") or "grpo") not in PPO_CLIP_LOSS_TYPES:
        return
    low = args.float("epsilon")
    low = 0.2 if low is None else low
    high = args.float("epsilon_high")
    high = low if high is None else high
    if max(low, high) < GSPO_CLIP_MAX or (updates := _updates_per_rollout(recipe, args)) < GSPO_UPDATES:
        return
    key = "epsilon_high" if high >= GSPO_CLIP_MAX and args.has("epsilon_high") else "epsilon"
    warn("gspo-clip", f"importance_sampling_level {args.str('importance_sampling_level')} (GSPO) with the token-level "
         f"clip range epsilon {low:g} / epsilon_high {high:g}: the sequence ratio is a per-token geometric mean that "
         f"moves by ~1e-3, so the clip hardly ever binds and the {updates} updates per rollout run unclipped", key,
         hint="epsilon: 3e-4 and epsilon_high: 4e-4 (the GSPO paper, section 5.1; ms-swift's GSPO page)")

# rewards/orm.py: the built-in rewards that grade the final answer (MathAccuracy parses the <answer> tag or the
# boxed{} expression with math_verify; MathORM compares the extracted answer): a completion cut by max_tokens
# before its answer scores 0.
ANSWER_GRADED_REWARDS = ("accuracy", "math")
ANSWER_BUDGET_MIN = 512  # ms-swift's own max_completion_length default (both engines)
SMOKE_STEPS = 10  # train_iters / max_steps below this: a smoke run (ms-swift's Ascend GRPO example runs 1 iteration)


def completion_budget(recipe, args, err, warn):
    # A completion budget below ms-swift's 512 default with an answer-graded reward: step-by-step math answers run
    # 250-700 tokens, so most completions stop at max_tokens before the answer, every one in a group scores 0, the
    # group's advantages are 0 and the step trains nothing -- loss 0, grad_norm 0, no error (huggingface/trl#5697:
    # Qwen2.5-0.5B-Instruct on DeepMath-103K at TRL's 256 default, 97-99% clipped, reward 0; trl#6263 measured 50-80%
    # truncation at 256 on GSM8K for three models). Both engines pass max_completion_length as vLLM's max_tokens.
    if recipe.command != "rlhf" or args.str("rlhf_type") != "grpo" or not args.has("max_completion_length"):
        return
    graded = [r for r in (args.list("reward_funcs") or []) if str(r) in ANSWER_GRADED_REWARDS]
    budget = args.int("max_completion_length")
    if not graded or budget is None or budget >= ANSWER_BUDGET_MIN:
        return
    steps = args.int("train_iters") if recipe.engine == "megatron" else args.int("max_steps")
    if steps is not None and 0 < steps < SMOKE_STEPS:
        return  # a pipeline check of a few steps is not run for its learning signal
    warn("grpo-completion-budget", f"max_completion_length {budget} with the answer-graded reward {graded[0]}: "
         "worked solutions run past it, a completion cut before its answer scores 0, and groups where every "
         "completion is cut get zero advantages (loss 0, grad_norm 0, no error)", "max_completion_length",
         hint=f"max_completion_length: {ANSWER_BUDGET_MIN} or more (ms-swift's default; 1024+ for reasoning)")

# VllmArguments fields (rlhf_trainers/args_mixin.py) that only get_vllm_engine_kwargs reads -- for `swift rollout` /
# `swift infer` (pipelines/infer/rollout.py, infer.py). The trainer's own colocated engine is built from an explicit
# list (rlhf_trainers/rollout_mixin.py RolloutTrainerMixin._prepare_vllm_engine: tensor_parallel_size,
# gpu_memory_utilization, max_model_len, ..., max_lora_rank=lora_rank), and a server has its own: under `swift rlhf`
# these are parsed and dropped.
ROLLOUT_ONLY_VLLM_ARGS = {"vllm_pipeline_parallel_size": 1, "vllm_data_parallel_size": 1,
                          "vllm_enable_expert_parallel": False, "vllm_quantization": None,
                          "vllm_speculative_config": None, "vllm_use_async_engine": None, "vllm_max_lora_rank": 16}


def rollout_only_vllm_args(recipe, args, err, warn):
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd") \
            or not args.bool("use_vllm"):
        return
    mode = args.str("vllm_mode")
    for key, default in ROLLOUT_ONLY_VLLM_ARGS.items():
        value = args.raw(key)
        if not args.has(key) or value == default or (isinstance(default, bool) and not args.bool(key)):
            continue
        where = "the colocated engine is built without it" if mode == "colocate" else \
            "the rollout server (`swift rollout`) has its own"
        warn("vllm-settings", f"{key} {value} is not used by `swift rlhf`: {where}", key,
             hint=("pass it to `swift rollout` and use vllm_mode server" if mode == "colocate" else
                   f"pass {key} to `swift rollout`") + (
                 "; a colocated engine's size is vllm_tensor_parallel_size (world / TP engines, one per TP group)"
                 if key in ("vllm_pipeline_parallel_size", "vllm_data_parallel_size") else "")
             + ("; the colocated engine takes max_lora_rank from lora_rank" if key == "vllm_max_lora_rank" else ""))


def lora_sync_modules_to_save(recipe, args, err, warn):
    # rlhf_trainers/rollout_mixin.py RolloutTrainerMixin._move_adapter_to_vllm: after the first (merged, full) sync,
    # vllm_enable_lora sends get_peft_model_state_dict -- the LoRA A/B tensors and the full modules_to_save weights
    # ('base_model.model.lm_head.weight') -- as a TensorLoRARequest (colocated, or to a server started with
    # vllm_enable_lora). vLLM's LoRAModel.from_lora_tensors reads each name with parse_fine_tuned_lora_name, which
    # takes only lora_A/lora_B/lora_embedding_* names and raises "... is unsupported LoRA weight" for the rest
    # (vllm-project/vllm#9280; vllm/lora/utils.py). vLLM is not installed here to read, hence a warning.
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd") \
            or not args.bool("use_vllm") or not args.bool("vllm_enable_lora"):
        return
    if (args.str("tuner_type") or "lora") != "lora" or not args.list("modules_to_save"):
        return
    names = ", ".join(str(m) for m in args.list("modules_to_save"))
    warn("vllm-lora-sync", f"modules_to_save ({names}) with vllm_enable_lora: from the second weight sync ms-swift sends "
         "the adapter's state dict to vLLM, full modules_to_save weights included, and vLLM's LoRA loader refuses "
         "them ('... is unsupported LoRA weight')", "modules_to_save",
         hint="vllm_enable_lora: false (ms-swift merges LoRA and modules_to_save into every sync), or train "
              "without modules_to_save")


def lora_sync_unsupported(recipe, args, err, warn):
    # After the first (merged, full) weight sync, vllm_enable_lora syncs the adapter: both trainers send
    # asdict(peft_config) with the LoRA tensors (rlhf_trainers/rollout_mixin.py _move_adapter_to_vllm,
    # megatron/trainers/rollout_mixin.py; a server gets them through update_adapter_param), and ms-swift's own
    # patched_load_adapter (rlhf_trainers/utils.py) builds vLLM's PEFTHelper from that config and calls
    # validate_legal, which refuses DoRA ("vLLM does not yet support DoRA.") and any adapter bias ("Adapter bias
    # cannot be used without bias_enabled" / "Adapter bias is not supported.": ms-swift never enables LoRA bias in
    # the engine) in every vLLM release read (vllm/lora/peft_helper.py). vllm-project/vllm#6983: a DoRA adapter's
    # lora_magnitude_vector is "unsupported LoRA weight". The step-1 sync merges, so the run fails at the second.
    if recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd") or not args.bool("use_vllm") \
            or not args.bool("vllm_enable_lora") or (args.str("tuner_type") or "lora") != "lora":
        return
    found = [(k, why) for k, bad, why in (
        ("use_dora", recipe.engine == "swift" and args.bool("use_dora"), "vLLM does not yet support DoRA"),
        ("lora_bias", (args.str("lora_bias") or "none") != "none", "vLLM refuses an adapter bias")) if bad]
    server = args.str("vllm_mode") == "server"
    for key, why in found:
        message = (f"{key} with vllm_enable_lora: from the second weight sync ms-swift hands the adapter and its "
                   f"config to vLLM's LoRA loader, which refuses it ({why}; peft_helper validate_legal)")
        hint = f"vllm_enable_lora: false (ms-swift then merges the adapter into every sync), or drop {key}"
        if server:
            # the trainer syncs the adapter only when the `swift rollout` server was started with LoRA enabled
            warn("vllm-lora-sync", message + ", if the rollout server was started with vllm_enable_lora", key,
                 hint=hint)
        else:
            err("vllm-lora-sync", message, key, hint=hint)


def rollout_server_addresses(recipe, args, err, warn):
    # rlhf_trainers/vllm_client.py VLLMInferClient.__init__ / VLLMClient.__init__, built at start-up by
    # RLHFArguments._init_external_vllm (engine swift: rlhf_type grpo/gkd whenever vllm_server_host or
    # vllm_server_base_url is set) and MegatronRLHF._prepare_vllm_client (megatron/pipelines/train/rlhf.py: vllm_mode
    # server with use_vllm). Without base URLs it pairs vllm_server_host with vllm_server_port item by item ("host and
    # server_port must have same length when lists are provided"; the port defaults to [8000]), and
    # vllm_server_group_port, parsed as a list (List[int] in both argument classes, so never the int the client also
    # takes), needs one port per server ("group_port must be int or list of length num_servers"). Megatron passes an unset host straight in: len(None) fails (engine swift asserts a host for
    # server mode itself: rule grpo-vllm).
    if recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd"):
        return
    urls, hosts = args.list("vllm_server_base_url"), args.list("vllm_server_host")
    if recipe.engine == "megatron":
        if not args.bool("use_vllm") or args.str("vllm_mode") != "server":
            return
        if not urls and not hosts:
            err("vllm-server", "vllm_mode server without vllm_server_host or vllm_server_base_url: Megatron builds its "
                "rollout client from the host list and fails at start-up (TypeError on len(None))",
                "vllm_server_host", hint="vllm_server_host: [<the `swift rollout` host>] (and vllm_server_port)")
            return
    elif not urls and not hosts:
        return
    servers = len(urls) if urls else len(hosts)
    ports = args.list("vllm_server_port") or [8000]
    if not urls and len(ports) != servers:
        err("vllm-server", f"{servers} vllm_server_host value(s) and {len(ports)} vllm_server_port value(s): ms-swift's "
            "rollout client pairs them one to one and refuses the launch (\"host and server_port must have same "
            "length\")", "vllm_server_port", hint=f"one port per host: {servers} value(s)")
    groups = args.list("vllm_server_group_port")
    if groups and len(groups) != servers:
        err("vllm-server", f"{len(groups)} vllm_server_group_port values for {servers} rollout server(s): ms-swift "
            "refuses it (\"group_port must be int or list of length num_servers\")", "vllm_server_group_port",
            hint=f"one group port per server ({servers} value(s)), or leave it unset (51216 + i)")


def rollout_is_filtered_logprobs(recipe, args, err, warn):
    # The rollout importance-sampling correction (rollout_importance_sampling_mode: GRPOTrainer._get_rollout_is_correction,
    # the Megatron trainer alike) weighs each token by exp(old_logps - rollout_logps). Both rollout mixins ask vLLM for
    # logprobs_mode 'processed_logprobs' (temperature-scaled), which vLLM takes after top-k/top-p filtering: the
    # sampled token's rollout logprob is renormalised over the kept tokens while the trainer's is over the whole
    # vocabulary, so every ratio is biased below 1 and the truncation/masking acts on that bias, silently. ms-swift's
    # maintainers changed the defaults to top_k -1 / top_p 1.0 for this (modelscope/ms-swift#8442); NeMo-RL refuses
    # top_p filtering with its vLLM logprobs for the same reason (NVIDIA-NeMo/RL#2053).
    if recipe.command != "rlhf" or args.str("rlhf_type") != "grpo" or not args.bool("use_vllm") \
            or args.raw("rollout_importance_sampling_mode") is None:
        return
    top_p, top_k = args.float("top_p"), args.int("top_k")
    key = "top_p" if top_p is not None and top_p < 1.0 else "top_k" if top_k is not None and top_k > 0 else None
    if key is not None:
        value = f"top_p {top_p:g}" if key == "top_p" else f"top_k {top_k}"
        warn("rollout-is-filtering", f"{value} with rollout_importance_sampling_mode: vLLM's rollout logprobs are "
             "taken after that filtering (renormalised over the kept tokens) while the trainer's cover the whole "
             "vocabulary, so the importance ratio is biased and the correction truncates or masks on that bias", key,
             hint="top_p: 1.0 and top_k: -1 (ms-swift's defaults since #8442), or drop rollout_importance_sampling_mode")
    # vLLM's sampler applies the repetition penalty before the processed logprobs are taken (vllm/v1/sample/sampler.py
    # Sampler: penalties, then temperature, then top-k/top-p); both rollout mixins pass repetition_penalty to the
    # request (RequestConfig) while the trainer's logprobs never see it: the same bias, on every repeated token.
    penalty = args.float("repetition_penalty")
    if penalty is not None and penalty != 1.0:
        warn("rollout-is-filtering", f"repetition_penalty {penalty:g} with rollout_importance_sampling_mode: vLLM "
             "takes its processed rollout logprobs after the penalty, the trainer's logprobs are unpenalised, so the "
             "importance ratio of every repeated token is biased and the correction truncates or masks on that bias",
             "repetition_penalty", hint="repetition_penalty: 1.0, or drop rollout_importance_sampling_mode")


# Online quantizations whose vLLM linear method rewrites each weight after loading (quantized, and for FP8 stored
# transposed with a scale): vLLM's load_weights then takes no checkpoint-layout bf16 tensor into those parameters.
ONLINE_QUANTIZATIONS = ("fp8", "fbgemm_fp8", "ptpc_fp8", "mxfp8")


def fp8_rollout_sync(recipe, args, err, warn):
    # vllm_engine_kwargs reach the colocated engine's EngineArgs (rlhf_trainers/rollout_mixin.py and
    # megatron/trainers/rollout_mixin.py _prepare_vllm_engine: engine_kwargs=vllm_engine_kwargs), so
    # {"quantization": "fp8"} quantizes the bf16 checkpoint online when the engine starts. Every weight sync then hands
    # the trainer's bf16 tensors to the vLLM model's own load_weights (megatron rollout_mixin._export_and_load_weights;
    # RolloutTrainerMixin._load_state_dict_to_vllm: llm_model.load_weights), not vLLM's reload lifecycle, and the
    # quantized parameters no longer take them: vllm-project/vllm#17272 ("Attempted to load weight (torch.Size([3840,
    # 1280])) into parameter (torch.Size([1280, 3840]))", bf16 training into an fp8 vLLM); verl#7136 and TRL#7085 had to
    # route FP8 rollouts through vLLM's reload_weights for this. vLLM is not installed here to read: a warning.
    if recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd") or not args.bool("use_vllm") \
            or args.str("vllm_mode") != "colocate":
        return
    quant = args.mapping("vllm_engine_kwargs").get("quantization")
    if not isinstance(quant, str) or quant.lower() not in ONLINE_QUANTIZATIONS:
        return
    warn("fp8-rollout-sync", f"vllm_engine_kwargs quantization {quant} quantizes the colocated rollout engine online, "
         "but ms-swift syncs the trained bf16 weights with vLLM's plain load_weights, which the quantized parameters "
         "do not take (shape/dtype mismatch at the first weight sync; vllm-project/vllm#17272)", "vllm_engine_kwargs",
         hint="drop quantization from vllm_engine_kwargs (roll out in the training dtype)")


def grpo_reward_source(recipe, args, err, warn):
    # rlhf_trainers/grpo_trainer.py GRPOTrainer.__init__ ("You must specify reward_funcs or reward_model") and
    # megatron/trainers/grpo_trainer.py _prepare_rewards ("reward_funcs is not set") refuse only when the trainer has
    # no teacher either -- and with no teacher at all 4.6 runs dynamic self-distillation (rollout_mixin.py
    # _setup_teacher: _is_self_distillation, gkd_helpers.resolve_dynamic_opd_self_distillation -> _has_teacher true),
    # so it starts: rows that carry a teacher_prompt give a signal, other rows none. Said, not refused. (The Megatron
    # trainer never reads reward_model: the reward-funcs warning says so.) use_gym_env left unset in server mode is
    # asked of the rollout server (both trainers' _resolve_use_gym_env): not judged there.
    if recipe.command != "rlhf" or args.str("rlhf_type") != "grpo":
        return
    if args.list("reward_funcs") or args.str("teacher_model") or args.str("teacher_model_server"):
        return
    if recipe.engine == "swift" and args.list("reward_model"):
        return
    gym = args.raw("use_gym_env")
    if args.raw("gym_env") is not None or (gym is not None and args.bool("use_gym_env")):
        return
    if gym is None and args.bool("use_vllm") and args.str("vllm_mode") == "server":
        return
    warn("grpo-reward", "GRPO with no reward_funcs" + ("" if recipe.engine == "megatron" else ", no reward_model")
         + ", no gym environment and no teacher: ms-swift starts in self-distillation (OPD-RL), where only rows "
         "that carry a teacher_prompt give a learning signal; every other row scores nothing",
         "reward_funcs", hint="reward_funcs: [accuracy, format] (or an external_plugins reward), or teacher_prompt "
         "in the rows for self-distillation")


# swift/rollout/multi_turn.py: the built-in schedulers that record a trajectory's 'total_reward' in rollout_infos
# (GYMScheduler.on_turn_end, and OpenEnvScheduler, its subclass).
GYM_SCHEDULERS = ("gym_scheduler", "openenv_scheduler")


def gym_reward_without_gym_rollout(recipe, args, err, warn):
    # rl_core/grpo_algorithm.py score_completions (both trainers' _score_completions): with use_gym_env on it reads
    # `s.rollout_infos['total_reward']` for every sample, which only a gym scheduler's on_turn_end writes; a single-turn
    # rollout records {'num_turns': 1} (rlhf_trainers/rollout_mixin.py), so the first reward raises KeyError
    # 'total_reward' after the first rollout. gym_env turns use_gym_env on unless it is set (args_mixin.py
    # GRPOArgumentsMixin.__post_init__, megatron_args.py _init_grpo). Judged where the trainer runs the turns (no vLLM
    # server: `swift rollout` runs its own scheduler) and the scheduler is none or a built-in one that is not a gym
    # scheduler (an external_plugins scheduler may subclass GYMScheduler).
    if recipe.command != "rlhf" or args.str("rlhf_type") != "grpo":
        return
    gym = args.raw("use_gym_env")
    if not ((gym is not None and args.bool("use_gym_env")) or (gym is None and args.raw("gym_env") is not None)):
        return
    if args.bool("use_vllm") and args.str("vllm_mode") == "server":
        return
    key = "use_gym_env" if gym is not None else "gym_env"
    if recipe.engine == "swift" and not args.bool("use_vllm"):
        # rlhf_trainers/rollout_mixin.py _prepare_vllm sets self.use_gym_env = False and returns before reading
        # args.use_gym_env when use_vllm is off: scoring never reads total_reward, nothing fails, and the
        # environment's reward is silently left out (whatever the scheduler).
        warn("gym-scheduler", f"{key} is ignored without use_vllm: the trainer's TransformersEngine rollout turns "
             "use_gym_env off, so the gym environment's total_reward never enters the rewards", key,
             hint="use_vllm: true (vllm_mode colocate with multi_turn_scheduler gym_scheduler, or server)")
        return
    scheduler = args.str("multi_turn_scheduler")
    builtin = set(builtin_names("rollout/multi_turn.py", "multi_turns") or ())
    if scheduler in GYM_SCHEDULERS or (scheduler and scheduler not in builtin):
        return
    what = f"multi_turn_scheduler {scheduler}" if scheduler else "no multi_turn_scheduler"
    err("gym-scheduler", f"{key} makes GRPO score each completion with its gym environment's total_reward, but with "
        f"{what} the colocated rollout never runs the environment: the first reward fails (KeyError 'total_reward' "
        "in rollout_infos)", "multi_turn_scheduler" if scheduler else key,
        hint="multi_turn_scheduler: gym_scheduler (with gym_env and max_turns), or drop use_gym_env/gym_env")


def gym_env_name(recipe, args, err, warn):
    # swift/rollout/multi_turn.py GYMScheduler._create_env (the trainer's colocated gym_scheduler gets gym_env in its
    # scheduler_kwargs, rlhf_trainers/ and megatron/trainers/rollout_mixin.py): a row's env_config.name, else gym_env,
    # must be a key of rollout/gym_env.py `envs` (math_env built in, plus what external_plugins register), or the first
    # rollout raises "Environment '...' not found". Rows naming their own environment never read gym_env, but a
    # gym_env no registry holds is used by no row that works. Not judged with a rollout server (`swift rollout` takes
    # its own --gym_env) nor where a plugin file fills envs in a way not read here.
    if recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd"):
        return
    name = args.str("gym_env")
    if not name or args.str("multi_turn_scheduler") != "gym_scheduler":
        return
    if args.bool("use_vllm") and args.str("vllm_mode") == "server":
        return
    known = registered_names("rollout/gym_env.py", "envs", args.list("external_plugins"))
    if known is None or name in known or every_train_row(args, _names_its_env):
        return  # every row's env_config.name wins over gym_env (_create_env): gym_env is never read
    err("gym-env", f"gym_env {name!r} is not an environment ms-swift or an external_plugins file registers: the gym "
        "scheduler fails at the first rollout for every row without its own env_config.name (\"Environment ... not "
        "found\")", "gym_env", hint=f"one of {', '.join(sorted(known))}, or register it in an external_plugins file "
        f"(envs['{name}'] = MyEnv)")


def _names_its_env(row) -> bool:
    return isinstance(row, dict) and isinstance(row.get("env_config"), dict) and bool(row["env_config"].get("name"))


def chord_schedule(recipe, args, err, warn):
    # rlhf_trainers/utils.py compute_chord_loss (every training loss once chord_sft_dataset gives the trainer an SFT
    # iterator, grpo_trainer.py) calls mu_schedule_function with the four chord_mu_* arguments, all None by default
    # (args_mixin.py): `global_step < mu_warmup_steps`, `mu_warmup_steps + mu_decay_steps` and mu_valley are always
    # read, mu_peak unless both step counts are 0 -- None fails (TypeError) at the first step.
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") != "grpo" \
            or not args.list("chord_sft_dataset"):
        return
    needed = ["chord_mu_warmup_steps", "chord_mu_decay_steps", "chord_mu_valley"]
    if args.int("chord_mu_warmup_steps") or args.int("chord_mu_decay_steps"):
        needed.append("chord_mu_peak")
    missing = [k for k in needed if args.raw(k) is None]
    if missing:
        err("grpo-chord", f"chord_sft_dataset without {', '.join(missing)}: CHORD's mu schedule reads them at every "
            "step and fails on None at the first one", missing[0],
            hint="chord_mu_warmup_steps: 0, chord_mu_decay_steps: 200, chord_mu_peak: 0.9, chord_mu_valley: 0.05 "
                 "(ms-swift's chord example)")


def ppo_reward_model(recipe, args, err, warn):
    # PPO scores with one reward model and initialises its value model from it: pipelines/train/rlhf.py
    # SwiftRLHF._prepare_model_tokenizer loads value_model from reward_model ("assert len(model_id_or_path) == 1" for
    # PPO's reward key), and without one TRL's PPOTrainer.__init__ wraps a None value model (PolicyAndValueWrapper:
    # 'NoneType' object has no attribute 'base_model_prefix') when the trainer is built. reward_funcs are GRPO's
    # (huggingface/trl#2273: "PPO expects reward_model to be a model, not a function").
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") != "ppo":
        return
    models = args.list("reward_model")
    if not models:
        funcs = [str(f) for f in args.list("reward_funcs")]
        err("ppo-reward-model", "PPO needs a reward_model: ms-swift builds the value model from it, and without one "
            "the PPO trainer fails when it is built" + (f"; reward_funcs ({', '.join(funcs)}) are GRPO's and PPO "
                                                         "never reads them" if funcs else ""), "reward_model",
            hint="reward_model: [<a sequence-classification reward model, e.g. one trained with rlhf_type rm>], or "
                 "rlhf_type: grpo to train with reward functions")
    elif len(models) > 1:
        err("ppo-reward-model", f"{len(models)} reward models: PPO takes one (ms-swift asserts it when it loads "
            "them)", "reward_model", hint="one reward_model")


def kto_batch(recipe, args, err, warn):
    # pipelines/train/kto.py prepare_kto_dataset (both engines, before training): the KL term pairs each prompt with
    # another sample's completion in the same batch -- "Batch size is 1 (too small)" unless loss_type
    # apo_zero_unpaired. The batch is global_batch_size on Megatron, else processes x per-device batch x
    # gradient accumulation (TrainArgumentsMixin.__post_init__ fills an unset accumulation to ceil(16 / batch /
    # processes), never a total of 1). Only the datasets `_get_dataset` loads go through it: SwiftSft._prepare_dataset
    # calls it for dataset / val_dataset, not for a cached_dataset alone. The loss_type is read as
    # RLHFArguments._process_loss_type leaves it: a one-item list is its item.
    if recipe.command != "rlhf" or args.str("rlhf_type") != "kto":
        return
    names = [str(t) for t in args.list("loss_type")]
    if names == ["apo_zero_unpaired"] or not (args.list("dataset") or args.list("val_dataset")):
        return
    if recipe.engine == "megatron":
        total, key = args.global_batch_size, "global_batch_size"
    else:
        gas = args.int("gradient_accumulation_steps")
        if gas is None:
            return
        total = recipe.launch.world_size * (args.int("per_device_train_batch_size", 1) or 1) * gas
        key = "per_device_train_batch_size"  # a total of 1 is one process, one sample, no accumulation
    if total is not None and total <= 1:
        err("kto-batch", f"KTO with a batch of {total}: ms-swift refuses it before training (its KL term estimates "
            "the reference point from the other samples of the batch)", key,
            hint="a global batch of 2 or more (gradient_accumulation_steps or per_device_train_batch_size), or "
                 "loss_type apo_zero_unpaired")


def sync_ref_model(recipe, args, err, warn):
    # rlhf_trainers/rollout_mixin.py SyncRefModelCallback.on_step_end returns when trainer.ref_model is None, which
    # it is unless the policy trains in full with beta != 0 (rlhf_args.py RLHFArguments.__post_init__ drops
    # ref_model for beta 0 and never makes one for LoRA: the reference is the adapter-disabled base). TRL's own
    # GRPOTrainer refuses the pair (huggingface/trl#3108, PR #4912); ms-swift deletes that __init__ and the sync
    # silently never happens. Megatron GRPO refuses sync_ref_model itself (rule megatron-grpo).
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") != "grpo" \
            or not args.bool("sync_ref_model"):
        return
    tuner = str(loaded(args, "tuner_type", checkpoint_args(args)) or "lora")
    beta_zero = args.raw("beta") is not None and args.float("beta") == 0.0
    if tuner != "full" or beta_zero:
        why = "beta 0 drops the reference model" if beta_zero else \
            f"tuner_type {tuner} has no reference model of its own (the reference is the base with the adapter off)"
        warn("sync-ref-model", f"sync_ref_model does nothing here: {why}, and ms-swift's sync callback skips a missing "
             "reference without a word", "sync_ref_model",
             hint="sync_ref_model: false, or tuner_type: full with beta > 0 for a TR-DPO-style synced reference")


def continued_adapter_reference(recipe, args, err, warn):
    # With LoRA the reference of DPO/KTO/GRPO is the policy with its adapter disabled (rlhf_trainers/rlhf_mixin.py
    # and megatron/trainers/rlhf_mixin.py MegatronRLHFTrainer.null_ref_context), unless ref_adapters loads one as
    # 'ref_adapter'. Continuing an SFT adapter (adapters / mcore_adapter, or resume_only_model, which
    # SftArguments.__post_init__ turns into adapters) without ref_adapters measures the KL or the implicit reward
    # against the base model without that SFT: ms-swift's documentation asks for `--adapters sft_ckpt --ref_adapters
    # sft_ckpt` (ms-swift#8047: DPO from an SFT LoRA by resume_only_model trains differently from DPO on the merged
    # model; huggingface/trl#3194).
    if recipe.command != "rlhf":
        return
    rlhf_type = args.str("rlhf_type") or "dpo"
    if rlhf_type not in ("dpo", "kto", "grpo") or (args.str("tuner_type") or "lora") not in ("lora", "lora_llm"):
        return
    if rlhf_type == "grpo" and args.raw("beta") is not None and args.float("beta") == 0.0:
        return  # no reference model at all
    if args.list("ref_adapters") or args.str("mcore_ref_adapter"):
        return
    if recipe.engine == "megatron":
        source = next((k for k in ("adapters", "mcore_adapter") if args.list(k)), None)
    elif args.list("adapters"):
        source = "adapters"
    else:
        source = "resume_only_model" if args.str("resume_from_checkpoint") and args.bool("resume_only_model") else None
    if source is None:
        return
    start = args.str("resume_from_checkpoint") if source == "resume_only_model" else str(args.list(source)[0])
    what = "KL term" if rlhf_type == "grpo" else "implicit reward"
    warn("rlhf-ref-adapter", f"training continues the LoRA adapter {start} ({source}) without ref_adapters: the "
         f"reference model is the base with that adapter disabled, so the {what} is measured against the model before "
         "its SFT", "ref_adapters", hint=f"ref_adapters: [{start}] (ms-swift's documented way to start {rlhf_type} "
         "from an SFT LoRA), or merge the adapter and train on the merged model")


RLHF_RULES = [loss_types, per_sequence_advantage_without_teacher, ppo_reward_model, cispo_clip, gspo_clip, completion_budget, rollout_only_vllm_args, lora_sync_modules_to_save,
              lora_sync_unsupported, rollout_server_addresses, rollout_is_filtered_logprobs, fp8_rollout_sync,
              grpo_reward_source, gym_reward_without_gym_rollout, gym_env_name, chord_schedule, kto_batch,
              sync_ref_model, continued_adapter_reference]
