"""The Megatron GRPO rule (rollout batch, vLLM) and the reward-name checks both engines share: reward_funcs
must name something ms-swift, swift-ext or a plugin file registers. Registered with layout.py's rules."""

from __future__ import annotations

import difflib

from swift_ext.msswift.bound_args import Args
from swift_ext.msswift.plugin_registry import builtin_names, plugin_names, plugins_undecided
from swift_ext.msswift.plugin_registry import missing_plugin_files as _missing_plugin_files
from typing import Callable

from swift_ext.planner.model_shape import ModelShape
from swift_ext.planner.sizes import divisors

AddFinding = Callable[..., None]  # err(rule, message, key=None, hint=None), as layout.check_layout passes it


def _colocate_vllm_tp(args, shape, lay, err) -> None:
    # megatron/trainers/rollout_mixin.py MegatronRolloutMixin._init_rollout_engine (colocate): "vllm_tensor_parallel_size
    # must divide world size"; vLLM then splits the heads over its TP.
    vtp = args.int("vllm_tensor_parallel_size") or 1
    if lay.world % vtp:
        err("grpo-vllm", f"world size {lay.world} is not divisible by vllm_tensor_parallel_size {vtp}",
            "vllm_tensor_parallel_size", hint=f"one of {divisors(lay.world)}")
    if isinstance(shape, ModelShape) and not vllm_tp_fits(shape, vtp):
        err("grpo-vllm", f"vLLM TP={vtp} does not fit {shape.num_attention_heads} heads / {shape.num_key_value_heads} "
            "KV groups", "vllm_tensor_parallel_size")


def grpo(recipe, args, shape, lay, err, warn):
    if recipe.command != "rlhf":
        return
    rlhf_type = args.str("rlhf_type")
    # GKD also rolls out with vLLM (MegatronGKDTrainer mixes in MegatronRolloutMixin, gkd_trainer.py:32) and
    # resolves its generation batch from steps_per_generation (megatron_args.py __post_init__ calls
    # _init_generation_batch_params for gkd; gkd_trainer.py:53 reads it): neither is a GRPO-only argument there.
    rollout_keys = ("vllm_mode", "steps_per_generation")
    grpo_keys = [k for k in ("reward_funcs", "num_generations", "vllm_mode", "steps_per_generation") if args.has(k)
                 and not (k in rollout_keys and rlhf_type == "gkd")]
    if rlhf_type != "grpo":
        # A warning: ms-swift runs the algorithm rlhf_type names and never reads these (gkd sets num_generations
        # to 1, megatron_args.py __post_init__); nothing fails on them -- the run just is not GRPO.
        if grpo_keys:
            warn("grpo-type", f"GRPO arguments ({', '.join(grpo_keys)}) but rlhf_type is '{rlhf_type}' "
                 "(ms-swift's default is dpo): ms-swift runs that algorithm and ignores them", "rlhf_type",
                 hint="set rlhf_type: grpo")
        if rlhf_type == "gkd":
            # MegatronArguments (rlhf_type gkd block of the RLHF mixin's __post_init__): num_generations = 1, then _init_generation_batch_params -- the same
            # resolve_generation_batch_size / validate_batch_dp_alignment GRPO gets.
            _generation_batch(args, lay, err, 1)
            # rollout_mixin.py _init_rollout_engine (colocate) refuses the same world / vllm TP mismatch for GKD,
            # which builds no engine at lmbda 0 (no on-policy generation).
            if args.bool("use_vllm") and args.str("vllm_mode") == "colocate" and args.float("lmbda") != 0:
                _colocate_vllm_tp(args, shape, lay, err)
        return
    if not args.bool("use_vllm"):
        err("grpo-vllm", "Megatron GRPO requires use_vllm: true", "use_vllm")  # megatron_args.py:460
    mode = args.str("vllm_mode")
    if mode is None:
        err("grpo-vllm", "vllm_mode is not set (ms-swift fails with 'Invalid vllm_mode: None')", "vllm_mode",
            hint="vllm_mode: colocate (rollouts on the training GPUs) or server; `swift-ext import --upgrade` adds it to "
            "an ms-swift 3.x script")
    _generation_batch(args, lay, err, args.int("num_generations"))
    _eval_batch(args, lay, err)
    # rl_core/advantage.py compute_advantages: every estimator subtracts the group mean, which for a group of one is the
    # reward itself -- all advantages are 0 and only the KL term moves the policy. The transformers engine refuses it
    # without a teacher (RLHFArguments._check_teacher, rule grpo-generations there); Megatron's _init_grpo does not.
    if args.int("num_generations") == 1 and not (args.str("teacher_model") or args.str("teacher_model_server")):
        warn("grpo-generations", "num_generations 1: each prompt's group holds one completion, so its advantage "
             "(reward minus the group mean) is 0 for every estimator and the rewards never reach the gradient "
             "(Megatron GRPO accepts it; the transformers engine refuses it)", "num_generations",
             hint="num_generations: 2 or more (8 is ms-swift's default)")
    # server mode: the external `swift rollout` has its own TP (megatron/trainers/rollout_mixin.py reads
    # vllm_tensor_parallel_size only to build the colocated engine)
    if mode == "colocate":
        _colocate_vllm_tp(args, shape, lay, err)
    # vllm_max_model_len below max_length + max_completion_length is not refused by ms-swift 4.6 (megatron_args.py
    # _init_grpo has no such check; the rollout engine shortens max_tokens): length_rules.rollout_length warns.
    reward_problems(args, err, recipe.engine, warn)
    # megatron/trainers/grpo_trainer.py _prepare_rewards builds rewards from reward_funcs only (reward_model_plugins
    # are [None] per function): a reward_model given to Megatron GRPO is parsed and never loaded.
    if args.list("reward_model"):
        warn("reward-funcs", "reward_model is not used by Megatron GRPO (its trainer scores with reward_funcs only): "
             "the reward model is never loaded", "reward_model",
             hint="score through a reward function (a plugin that calls the model), or train with engine: swift")


def _generation_batch(args, lay, err, num_gen):
    """megatron_args.py resolve_generation_batch_size and validate_batch_dp_alignment, run by
    _init_generation_batch_params for GRPO and for GKD (num_generations 1)."""
    gbs, mbs = args.global_batch_size, args.micro_batch_size
    spg, gen_bs = args.int("steps_per_generation"), args.int("generation_batch_size")
    # megatron_args.py:261 resolve_generation_batch_size
    if gen_bs is None:
        gen_bs = gbs * (spg or 1)
    elif spg is not None and gen_bs != gbs * spg:
        err("grpo-batch", f"generation_batch_size {gen_bs} != global_batch_size*steps_per_generation = {gbs * spg}",
            "generation_batch_size")
    elif gen_bs % gbs:
        err("grpo-batch", f"generation_batch_size {gen_bs} is not a multiple of global_batch_size {gbs}",
            "generation_batch_size")
    if num_gen > 1 and gen_bs % num_gen:
        err("grpo-batch", f"generation batch {gen_bs} (global_batch_size*steps_per_generation) is not divisible by "
            f"num_generations {num_gen}", "num_generations")
    elif lay.dp:
        # megatron_args.py:298 validate_batch_dp_alignment
        prompts = gen_bs // num_gen
        if prompts % lay.dp:
            err("grpo-batch", f"{prompts} prompts per generation (= {gen_bs} / {num_gen}) are not divisible by DP={lay.dp}",
                "global_batch_size")
        elif (prompts // lay.dp) % mbs:
            err("grpo-batch", f"{prompts // lay.dp} prompts per DP rank are not divisible by micro_batch_size {mbs}",
                "micro_batch_size")
        if gen_bs // lay.world < 1:
            err("grpo-batch", f"generation batch {gen_bs} is smaller than the world size {lay.world}",
                "global_batch_size")
        elif num_gen > 1 and gen_bs % lay.world and not (prompts % lay.dp or (prompts // lay.dp) % mbs):
            # megatron/trainers/grpo_trainer.py get_local_rollout_batch: each rank of a TP x PP x CP group takes
            # per_device_generation_batch_size = generation batch // world completions of its DP rank's
            # generation batch / DP, and asserts the group's slices cover them -- only when the world divides the
            # generation batch (GKD slices its own way, gkd_trainer.py).
            err("grpo-batch", f"generation batch {gen_bs} (global_batch_size*steps_per_generation) is not divisible by "
                f"the world size {lay.world}: Megatron GRPO gives each rank {gen_bs} // {lay.world} completions and its "
                f"model-parallel groups then cover {lay.world // lay.dp * (gen_bs // lay.world)} of the {gen_bs // lay.dp} "
                "each DP rank rolls out (get_local_rollout_batch asserts at the first step)", "global_batch_size",
                hint=f"a generation batch that is a multiple of {lay.world}")


def _eval_batch(args, lay, err):
    """Megatron GRPO's evaluation rollout (megatron/trainers/grpo_trainer.py): get_num_iters_per_step takes
    global_batch_size (not the generation batch) completions in eval mode, so each DP rank rolls out
    global_batch_size / DP / num_generations_eval prompts in micro-batches of micro_batch_size and asserts at least one
    ("num_iters_per_step=0 <= 0"); get_local_rollout_batch then asserts that those prompts times num_generations_eval
    refill the rank's global_batch_size / world completions -- both hold only when global_batch_size / DP is a multiple
    of num_generations_eval x micro_batch_size. The training checks (megatron_args.py validate_batch_dp_alignment) read
    the generation batch, which steps_per_generation > 1 or another num_generations_eval make larger: the run trains,
    then fails at its first evaluation. Evaluation runs with a validation set (val_dataset, or split_dataset_ratio > 0)
    unless eval_iters is 0 (MegatronArguments.init_iters)."""
    from swift_ext.msswift.validation_split import validation_rows

    has_val = bool(args.list("val_dataset")) or (args.float("split_dataset_ratio") or 0) > 0
    if not has_val or args.int("eval_iters") == 0 or not lay.dp:
        return
    num_gen = args.int("num_generations_eval") or args.int("num_generations") or 1
    gbs, mbs = args.global_batch_size, args.micro_batch_size
    if not gbs or not mbs or num_gen < 1 or gbs % lay.dp:
        return
    rows, _ = validation_rows(args)
    if rows is not None and rows < mbs * lay.dp:
        return  # init_iters drops a validation set smaller than one step: no evaluation runs (eval-split says so)
    per_dp = gbs // lay.dp
    if per_dp % (num_gen * mbs) == 0:
        return
    key = "num_generations_eval" if args.int("num_generations_eval") else "global_batch_size"
    err("grpo-batch", f"evaluation rolls out global_batch_size / DP = {gbs} / {lay.dp} = {per_dp} completions per DP "
        f"rank, not a multiple of num_generations{'_eval' if key == 'num_generations_eval' else ''} {num_gen} x "
        f"micro_batch_size {mbs}: Megatron GRPO asserts at its first evaluation (get_num_iters_per_step / "
        "get_local_rollout_batch), after training started", key,
        hint=f"global_batch_size a multiple of {num_gen * mbs * lay.dp}, a num_generations_eval dividing {per_dp // mbs}, "
             "or eval_iters: 0")


def vllm_tp_fits(shape: ModelShape, vtp: int) -> bool:
    """vLLM shards attention heads over TP ("Total number of attention heads (H) must be divisible by tensor
    parallel size (T)", vllm config ModelConfig.verify_with_parallel_config); KV heads are split, or replicated
    when TP is a multiple of them."""
    heads, kv = shape.num_attention_heads, shape.num_key_value_heads
    return not heads % vtp and (not kv % vtp or not vtp % kv)


def reward_problems(args: Args, err: AddFinding, engine: str, warn: AddFinding | None = None) -> None:
    """reward_funcs must name ms-swift built-ins, swift-ext's rewards, or names a plugin file registers;
    ms-swift itself only fails on an unknown name when the trainer is built (grpo_trainer.py:2228)."""
    funcs = [str(f) for f in args.list("reward_funcs")]
    known = known_reward_names(args)
    # A missing plugin file is reported once (warn_rules.plugin_files, rule plugin-file), naming these rewards. A
    # file (or a local module it imports) that fills `orms` in a way not read here -- a loop, a decorator, computed
    # keys, a module not here -- may register any name: said, not refused (plugin_registry.plugins_undecided).
    plugin_missing = bool(missing_plugin_files(args))
    undecided = "" if plugin_missing else plugins_undecided(plugin_paths(args), "orms")
    for name in funcs:
        if name in known or plugin_missing:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"did you mean {close[0]!r}? known: {', '.join(sorted(known))}" if close \
            else f"known: {', '.join(sorted(known))}"
        if not undecided:
            err("reward-funcs", f"unknown reward function '{name}'", "reward_funcs", hint=hint)
        elif warn is not None:
            warn("reward-funcs", f"reward function '{name}' is not registered by ms-swift, swift-ext or what plan "
                 f"can read of the external_plugins files ({undecided}); ms-swift fails when the trainer is built "
                 "if the plugin does not register it", "reward_funcs", hint=hint)
    weights = args.list("reward_weights")
    if weights and len(weights) not in reward_columns(args, engine):
        columns = " or ".join(str(n) for n in sorted(reward_columns(args, engine)))
        err("reward-funcs", f"{len(weights)} reward_weights for {columns} reward column(s) (reward_funcs"
            f"{', reward_model' if engine == 'swift' else ''} and a gym reward)", "reward_weights",
            hint=f"one weight per reward column: {columns}")


def reward_columns(args: Args, engine: str) -> set[int]:
    """The counts of reward columns reward_weights must match. One per reward function; on the transformers engine
    one per reward_model too (rlhf_trainers/grpo_trainer.py _prepare_rewards appends them; the Megatron trainer,
    megatron/trainers/grpo_trainer.py _prepare_rewards, never reads reward_model); plus a 'gym_reward' column when
    use_gym_env is on, which, unset, a vLLM server decides at start-up (both trainers' _resolve_use_gym_env /
    _init_rollout), so either count is possible there -- unless gym_env is set, which turns it on in both argument
    classes before any server is asked."""
    base = len(args.list("reward_funcs")) + (len(args.list("reward_model")) if engine == "swift" else 0)
    gym = args.raw("use_gym_env")
    if gym is None and args.raw("gym_env") is not None:
        gym = True  # megatron_args.py _init_grpo / args_mixin.py GRPOArgumentsMixin.__post_init__: gym_env implies it
    if gym is None:
        server = args.bool("use_vllm") and args.str("vllm_mode") == "server"
        return {base, base + 1} if server else {base}
    return {base + 1} if gym else {base}


def known_reward_names(args: Args) -> set[str]:
    from swift_ext.plugins import REWARD_NAMES

    return builtin_reward_names() | set(REWARD_NAMES) | plugin_reward_names(plugin_paths(args))


def plugin_paths(args: Args) -> list:
    """The plugin files ms-swift imports at start-up: external_plugins, then custom_register_path (its 3.x name,
    still read: BaseArguments._import_external_plugins appends it to external_plugins)."""
    return args.list("external_plugins") + args.list("custom_register_path")


def missing_plugin_files(args: Args) -> list[str]:
    """Plugin entries (plugin_paths) with no file behind them here (msswift/plugin_registry.py)."""
    return _missing_plugin_files(plugin_paths(args))


def unknown_reward_names(args: Args) -> list[str]:
    known = known_reward_names(args)
    return [str(f) for f in args.list("reward_funcs") if str(f) not in known]


def builtin_reward_names() -> frozenset[str]:
    """Keys of ms-swift's `orms` dict (swift/rewards/orm.py), read from source once per process
    (`--search` runs the rules for hundreds of candidates)."""
    return builtin_names("rewards/orm.py", "orms") or frozenset(
        {"toolbench", "math", "accuracy", "format", "react_format", "cosine", "repetition", "soft_overlong"})


def plugin_reward_names(paths: list) -> set[str]:
    """Names a plugin file registers with `orms['name'] = ...` (read, never imported)."""
    return plugin_names(paths, "orms")
