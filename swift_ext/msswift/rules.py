"""ms-swift's own argument checks that need no GPU, for both engines, run before launch.

ms-swift validates most combinations in the `__post_init__` of its argument dataclasses, or when the
trainer is built -- inside every rank, after the job has queued, started and loaded the model. Each
rule here mirrors one such check on the recipe's arguments alone and cites the file and function of
ms-swift 4.6 (paths inside the installed `swift` package), megatron-core 0.16 or vLLM it mirrors.
Rules that need the model's shape or the parallel layout live in layout.py.
"""

from __future__ import annotations

from typing import Callable

from swift_ext.msswift.validation_split import validation_rows
from swift_ext.msswift.model_table import model_meta, template_for
from swift_ext.msswift.plugin_registry import builtin_names, plugin_names, plugins_readable
from swift_ext.spec.findings import Finding
from swift_ext.spec.recipe import Recipe

AddFinding = Callable[..., None]
RULES: list[Callable[[Recipe, object, AddFinding, AddFinding], None]] = []

FLASH_IMPLS = ("flash_attn", "flash_attention_2", "flash_attention_3", "flash_attention_4")


def rule(fn):
    RULES.append(fn)
    return fn


def check_msswift(recipe: Recipe, args) -> tuple[list[Finding], list[Finding]]:
    """(errors, warnings) from every rule; `args` is a layout.Args over ms-swift's defaults."""
    errors: list[Finding] = []
    warnings: list[Finding] = []

    def report(into: list[Finding]) -> AddFinding:
        def add(rule_name: str, message: str, key: str | None = None, hint: str | None = None) -> None:
            # a key is an args key, or "env.NAME" for a value of the recipe's env
            path = (key if key.startswith("env.") else f"args.{key}") if key else None
            where = recipe.where(path) if path else {"file": recipe.source}
            where.pop("path", None)
            into.append(Finding(message, code=rule_name, hint=hint, path=path, **where))
        return add

    for fn in RULES:
        fn(recipe, args, report(errors), report(warnings))
    return errors, warnings


def _world(recipe: Recipe) -> int:
    return recipe.launch.world_size


def _grpo(recipe: Recipe, args) -> bool:
    return recipe.command == "rlhf" and args.str("rlhf_type") == "grpo"


def _eval_on(args) -> bool:
    # ms-swift evaluates when there is a validation split and eval_strategy is not 'no'; an unset eval_strategy is
    # save_strategy's (sft_args.py SftArguments._init_eval_strategy), so save_strategy no evaluates nothing either.
    has_val = bool(args.list("val_dataset")) or (args.float("split_dataset_ratio") or 0) > 0
    return has_val and (args.str("eval_strategy") or args.str("save_strategy") or "steps") != "no"


def _grpo_eval_size(args, err, prompts: int) -> None:
    # swift/rlhf_trainers/grpo_trainer.py GRPOTrainer.__init__ asserts len(eval_dataset) >= per_device_eval_batch_size
    # x processes // num_generations_eval ("eval_dataset size ... is smaller than total_eval_batch_size") before
    # step 1, unless eval_use_evalscope.
    if args.bool("eval_use_evalscope"):
        return
    rows, key = validation_rows(args)  # msswift/validation_split.py: the one reading of the split's size
    if rows is not None and rows < prompts:
        err("grpo-eval-size", f"the validation set holds at most {rows} row(s) ({key}), "
            f"fewer than the {prompts} prompt(s) one GRPO evaluation batch takes (per_device_eval_batch_size x "
            "processes // num_generations_eval): the trainer asserts at start-up", key,
            hint=f"at least {prompts} validation rows (a larger {key} or #N), or a smaller per_device_eval_batch_size")


# -------------------------------------------------------------------------------------------------
# transformers engine (`swift sft|rlhf`)


@rule
def packing_attn_impl(recipe, args, err, warn):
    # swift/arguments/sft_args.py SftArguments._check_padding_free: packing/padding_free need a
    # flash-attention attn_impl (None, i.e. "from config.json", is refused too).
    if recipe.engine != "swift" or not (args.bool("packing") or args.bool("padding_free")):
        return
    impl = args.str("attn_impl")
    if impl not in FLASH_IMPLS:
        feature = "packing" if args.bool("packing") else "padding_free"
        err("packing-attn-impl", f"{feature} needs a flash-attention attn_impl on the transformers engine, got "
            f"{impl or 'none (read from config.json)'}", "attn_impl",
            hint=f"set attn_impl: flash_attn (one of {', '.join(FLASH_IMPLS)}), or drop {feature}")


@rule
def template_padding_free(recipe, args, err, warn):
    # swift/pipelines/train/sft.py SwiftSft._prepare_template: padding_free/packing need a template whose class
    # says support_padding_free, and None there means "text-only models only". The Megatron pipelines go through
    # it too (swift/megatron/pipelines/train/sft.py MegatronSft.__init__, rlhf.py MegatronRLHF._prepare_template),
    # where padding_free defaults to true (megatron_args.py) -- a multimodal model whose template cannot pack
    # fails at start-up unless padding_free: false. `args` already has packing -> padding_free
    # (megatron_base_args.py MegatronBaseArguments.__post_init__).
    packing, padding_free = args.bool("packing"), args.bool("padding_free")
    if not (packing or padding_free):
        return
    choice = template_for(args.str("model"), args.str("model_type"), args.str("template"))
    if choice is None or choice.supports_padding_free is not False:
        return  # a model ms-swift's registry does not know: its template is read at start-up
    which = "packing" if packing else "padding_free"
    defaulted = which == "padding_free" and not args.has("padding_free")
    model = f"model type {choice.model_type}" if choice.model_type else "this model"
    err("template-padding-free", f"template {choice.template} ({model}) does not support padding free or packing"
        + (" (padding_free is on by default on Megatron)" if defaulted else ""), which,
        hint="packing: false and padding_free: false" if packing else "padding_free: false")


@rule
def rlhf_features(recipe, args, err, warn):
    if recipe.engine != "swift" or recipe.command != "rlhf":
        return
    rlhf_type = args.str("rlhf_type") or "dpo"
    # swift/arguments/rlhf_args.py RLHFArguments._check_padding_free
    if (args.bool("packing") or args.bool("padding_free")) and rlhf_type not in ("grpo", "dpo", "kto", "gkd"):
        err("rlhf-padding-free", f"rlhf_type {rlhf_type} does not support padding_free/packing",
            "packing" if args.bool("packing") else "padding_free", hint="set packing and padding_free to false")
    # swift/arguments/rlhf_args.py RLHFArguments._check_sequence_parallel
    if (args.int("sequence_parallel_size", 1) or 1) > 1 and rlhf_type not in ("grpo", "dpo"):
        err("rlhf-sequence-parallel", f"rlhf_type {rlhf_type} does not support sequence_parallel_size > 1",
            "sequence_parallel_size", hint="sequence_parallel_size: 1")
    # swift/arguments/rlhf_args.py RLHFArguments._process_loss_type: several loss types, and loss_weights, are DPO's
    # (trl's DPOConfig), one weight per loss type. It returns at once when loss_type is unset, so loss_weights alone
    # is asserted nowhere for the other algorithms: their configs (KTOConfig, GRPOConfig, ...) have no such field,
    # TrainerFactory.get_training_args drops it, and it is ignored. For DPO an unset loss_type becomes ['sigmoid']
    # (_set_default) and trl's DPOConfig.__post_init__ refuses a weight count other than one.
    loss_types, weights = [str(t) for t in args.list("loss_type")], args.list("loss_weights")
    if rlhf_type != "dpo" and (len(loss_types) > 1 or (weights and loss_types)):
        key = "loss_weights" if weights and len(loss_types) <= 1 else "loss_type"
        err("rlhf-loss-types", f"{'loss_weights' if key == 'loss_weights' else 'several loss types'} are only "
            f"supported for rlhf_type dpo, not {rlhf_type}", key)
    elif weights and rlhf_type != "dpo":
        warn("rlhf-loss-types", f"loss_weights is ignored for rlhf_type {rlhf_type}: only DPO combines several "
             "losses, and without loss_type ms-swift does not check it", "loss_weights", hint="drop loss_weights")
    elif weights and len(weights) != max(len(loss_types), 1):
        err("rlhf-loss-types", f"loss_weights has {len(weights)} value(s) for {max(len(loss_types), 1)} loss type(s)",
            "loss_weights", hint="one weight per loss_type entry")


@rule
def swift_grpo(recipe, args, err, warn):
    if recipe.engine != "swift" or not _grpo(recipe, args):
        return
    teacher = args.str("teacher_model") or args.str("teacher_model_server")
    num_gen = args.int("num_generations")  # ms-swift default from the schema
    # swift/arguments/rlhf_args.py RLHFArguments._check_teacher
    if num_gen == 1 and not teacher:
        err("grpo-generations", "GRPO needs num_generations >= 2 (advantages compare completions of one prompt)",
            "num_generations", hint="num_generations: 2 or more")
    # swift/arguments/rlhf_args.py RLHFArguments._init_grpo
    if args.list("cached_dataset") or args.list("cached_val_dataset"):
        err("grpo-cached-dataset", "cached_dataset is not supported for GRPO", "cached_dataset")
    # swift/rlhf_trainers/args_mixin.py RolloutTrainerArgumentsMixin._init_generation_batch_params
    # (GRPOConfig.__post_init__); gradient_accumulation_steps defaults to 1 for GRPO (RLHFArguments._set_default).
    world = _world(recipe)
    pdtbs = args.int("per_device_train_batch_size", 1) or 1
    gas = args.int("gradient_accumulation_steps") or 1
    global_bs = pdtbs * world
    gen_bs, spg = args.int("generation_batch_size"), args.int("steps_per_generation")
    if gen_bs is None and spg is None:
        gen_bs = global_bs * gas
    elif gen_bs is not None and spg is None:
        if gen_bs % global_bs:
            err("grpo-batch", f"generation_batch_size {gen_bs} is not divisible by the global batch "
                f"per_device_train_batch_size*processes = {pdtbs}*{world} = {global_bs}", "generation_batch_size")
            return
    elif gen_bs is None:
        gen_bs = global_bs * spg
    elif gen_bs != global_bs * spg:
        err("grpo-batch", f"generation_batch_size {gen_bs} != per_device_train_batch_size*processes*"
            f"steps_per_generation = {pdtbs}*{world}*{spg} = {global_bs * spg}", "generation_batch_size")
        return
    if num_gen > 1 and gen_bs % num_gen:
        valid = [n for n in range(2, gen_bs + 1) if gen_bs % n == 0]
        err("grpo-batch", f"generation batch {gen_bs} (= per_device_train_batch_size {pdtbs} x {world} process(es) x "
            f"{spg or gas} step(s)) is not divisible by num_generations {num_gen}", "num_generations",
            hint=f"num_generations one of {valid[:8]}, or raise per_device_train_batch_size / steps_per_generation")
    if num_gen > 1 and _eval_on(args):
        eval_gen = args.int("num_generations_eval") or num_gen
        eval_bs = (args.int("per_device_eval_batch_size", 1) or 1) * world
        if eval_bs % eval_gen:
            err("grpo-batch", f"global eval batch {eval_bs} (per_device_eval_batch_size x {world}) is not divisible "
                f"by num_generations{'_eval' if args.int('num_generations_eval') else ''} {eval_gen}",
                "per_device_eval_batch_size", hint=f"a multiple of {eval_gen}")
        else:
            _grpo_eval_size(args, err, eval_bs // eval_gen)
    # swift/arguments/rlhf_args.py RLHFArguments._check_grpo (liger loss) and _check_teacher (OPD-RL)
    if args.bool("use_liger_kernel"):
        for key, bad, why in (("padding_free", args.bool("padding_free") or args.bool("packing"), "padding free"),
                              ("sequence_parallel_size", (args.int("sequence_parallel_size", 1) or 1) > 1,
                               "sequence parallel"),
                              ("delta", args.raw("delta") is not None, "two-sided GRPO loss (delta)"),
                              ("advantage_estimator", (args.str("advantage_estimator") or "grpo") != "grpo",
                               "advantage estimators other than grpo"),
                              ("top_entropy_quantile", (args.float("top_entropy_quantile") or 1.0) < 1.0, "entropy mask"),
                              ("log_entropy", args.bool("log_entropy"), "log entropy"),
                              ("off_policy_sequence_mask_delta", args.raw("off_policy_sequence_mask_delta") is not None,
                               "off-policy sequence masking"),
                              ("importance_sampling_level", (args.str("importance_sampling_level") or "token") not in
                               ("token", "sequence"), "importance_sampling_level other than token/sequence"),
                              ("teacher_model" if args.str("teacher_model") else "teacher_model_server",
                               bool(args.str("teacher_model") or args.str("teacher_model_server")),
                               "a teacher (OPD-RL, _check_teacher)")):
            if bad:
                err("grpo-liger", f"the Liger GRPO loss does not support {why}", key, hint="or use_liger_kernel: false")


@rule
def swift_rollout(recipe, args, err, warn):
    # swift/arguments/rlhf_args.py RLHFArguments._init_rollout (GRPO and GKD on the transformers engine).
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd"):
        return
    use_vllm, mode = args.bool("use_vllm"), args.str("vllm_mode")
    if mode is not None and not use_vllm:
        err("grpo-vllm", f"vllm_mode: {mode} but use_vllm is false", "vllm_mode",
            hint="set use_vllm: true, or remove vllm_mode")
    if mode is None and use_vllm:
        err("grpo-vllm", "use_vllm: true needs vllm_mode (colocate or server)", "vllm_mode",
            hint="vllm_mode: colocate, or server with vllm_server_host; `swift-ext import --upgrade` adds it to an "
            "ms-swift 3.x script")
    if mode == "server" and use_vllm and not (args.str("vllm_server_host") or args.str("vllm_server_base_url")):
        err("grpo-vllm", "vllm_mode: server needs vllm_server_host (or vllm_server_base_url)", "vllm_server_host",
            hint="start `swift rollout` and point vllm_server_host at it")
    # GKD refuses async_generate in every mode (RLHFArguments._check_gkd, rule swift-gkd): asking GKD for server mode
    # here would be a second error for the same flag, pointing at a fix ms-swift refuses next. The multi-turn
    # refusal is _check_grpo's, GRPO only.
    grpo_async = args.bool("async_generate") and args.str("rlhf_type") == "grpo"
    if grpo_async and mode != "server":
        err("grpo-vllm", "async_generate needs vllm_mode: server", "async_generate")
    if grpo_async and args.str("multi_turn_scheduler"):
        err("grpo-vllm", "async_generate is not supported with multi_turn_scheduler", "async_generate",
            hint="async_generate: false for multi-turn rollouts")
    # RLHFArguments._init_external_vllm connects to a rollout server whenever vllm_server_host/base_url is set,
    # whatever vllm_mode says; with colocate the trainer then also builds its own engine on the training GPUs
    # (ms-swift#4525: colocate with a server host, "Server is not up yet" at start-up).
    server = next((k for k in ("vllm_server_host", "vllm_server_base_url") if args.str(k)), None)
    if use_vllm and mode == "colocate" and server:
        err("grpo-vllm", f"{server} is set with vllm_mode: colocate: ms-swift connects to that rollout server at "
            "start-up and still rolls out on a colocated engine", server,
            hint=f"vllm_mode: server to roll out on the server, or drop {server} to colocate")
    # swift/rlhf_trainers/rollout_mixin.py (colocate): vllm_tensor_parallel_size must divide the processes.
    vtp = args.int("vllm_tensor_parallel_size", 1) or 1
    if use_vllm and mode == "colocate" and _world(recipe) % vtp:
        err("grpo-vllm", f"vllm_tensor_parallel_size {vtp} must divide the {_world(recipe)} training process(es)",
            "vllm_tensor_parallel_size")


# -------------------------------------------------------------------------------------------------
# Both engines


@rule
def grpo_common(recipe, args, err, warn):
    if not _grpo(recipe, args):
        return
    src = "megatron_args.py RLHFMegatronArgumentsMixin._init_grpo" if recipe.engine == "megatron" else \
        "rlhf_args.py RLHFArguments._init_grpo"
    strategy = args.str("truncation_strategy")
    if strategy is not None and strategy not in ("left", "delete"):  # both _init_grpo
        err("grpo-truncation", f"GRPO needs truncation_strategy left or delete, got {strategy} ({src})",
            "truncation_strategy", hint="truncation_strategy: left")
    if "soft_overlong" in [str(f) for f in args.list("reward_funcs")] and args.raw("soft_cache_length") is None:
        err("grpo-soft-overlong", f"the soft_overlong reward needs soft_cache_length ({src})", "soft_cache_length")
    elif "soft_overlong" in [str(f) for f in args.list("reward_funcs")]:
        # rewards/orm.py SoftOverlong.__init__ asserts soft_cache_length < soft_max_length when the trainer builds its
        # rewards; _init_grpo fills an unset soft_max_length with max_completion_length (both engines).
        cache = args.int("soft_cache_length")
        limit = args.int("soft_max_length") or args.int("max_completion_length", 512) or 512
        limit_key = "soft_max_length" if args.int("soft_max_length") else "max_completion_length"
        if cache is not None and cache >= limit:
            err("grpo-soft-overlong", f"soft_cache_length {cache} must be below the soft_max_length {limit}"
                f"{' (max_completion_length)' if limit_key == 'max_completion_length' else ''}: the soft_overlong "
                "reward asserts it when the trainer is built (it penalises the last soft_cache_length tokens before "
                "that length)", "soft_cache_length", hint=f"soft_cache_length below {limit}, e.g. {max(limit // 4, 1)}")
    # Greedy decoding (temperature 0 in the rollout's request config) gives every generation of a prompt the same
    # completion, hence the same reward: the group-relative advantage (reward - group mean) is 0 for every sample
    # and only the KL term (beta) moves the policy. ms-swift accepts it without a word.
    group_baseline = (args.str("advantage_estimator") or "grpo") in ("grpo", "rloo")  # reinforce++: batch baseline
    # top_k 1 is the same greedy decoding (vLLM keeps only the most likely token; the rollout's request config
    # takes args.top_k in both rollout mixins).
    greedy_temp = args.has("temperature") and (args.float("temperature") or 0.0) == 0.0
    greedy_top_k = args.has("top_k") and args.int("top_k") == 1
    if (greedy_temp or greedy_top_k) and group_baseline and (args.int("num_generations") or 0) > 1:
        key, what = ("temperature", "temperature 0") if greedy_temp else ("top_k", "top_k 1 (greedy decoding)")
        warn("grpo-greedy", f"{what} makes the num_generations completions of each prompt identical, so every "
             "GRPO advantage is zero and the rewards never reach the gradient", key,
             hint="sample: temperature around 0.7-1.0" + ("" if greedy_temp else ", top_k -1 (ms-swift's default)"))
    # megatron_args.py RLHFMegatronArgumentsMixin._check_teacher / rlhf_args.py RLHFArguments._check_teacher
    if args.str("teacher_model") and args.str("teacher_model_server"):
        err("grpo-teacher", "teacher_model and teacher_model_server cannot both be set", "teacher_model_server")
    # _check_opd_rl (both engines): a teacher makes the advantage per-token (OPD-RL).
    if args.str("teacher_model") or args.str("teacher_model_server"):
        if args.str("loss_type") in ("real", "fipo"):
            err("grpo-teacher", f"with a teacher (OPD-RL), loss_type {args.str('loss_type')} is not supported (it "
                "needs a per-sequence advantage)", "loss_type", hint="grpo, bnpo, dr_grpo, dapo, cispo or sapo")
        if args.raw("off_policy_sequence_mask_delta") is not None:
            err("grpo-teacher", "with a teacher (OPD-RL), off_policy_sequence_mask_delta is not supported",
                "off_policy_sequence_mask_delta")
        if not args.list("reward_funcs") and args.bool("dynamic_sample"):
            err("grpo-teacher", "dynamic_sample needs reward_funcs (pure OPD-RL distillation has no reward variance)",
                "dynamic_sample")
        if not args.list("reward_funcs") and args.str("scale_rewards") == "gdpo":
            err("grpo-teacher", "scale_rewards gdpo needs reward_funcs", "scale_rewards")
    # megatron/trainers/rollout_mixin.py and rlhf_trainers/rollout_mixin.py _prepare_scheduler: `assert
    # multi_turn_scheduler in multi_turns` (swift/rollout/multi_turn.py, plus what external_plugins register). It runs
    # in every vLLM mode and without vLLM: the transformers trainer's prepare_rollout calls it before _prepare_vllm,
    # Megatron's _init_rollout_engine before its `if not args.use_vllm: return` -- the trainer asserts even when a
    # `swift rollout` server runs the turns.
    # A plugin that fills multi_turns in a way plugin_registry cannot read (a loop, a computed key) registers names
    # not read here: its file decides (the loss_map and rm_plugins rules leave it the same way).
    scheduler = args.str("multi_turn_scheduler")
    plugins = args.list("external_plugins")
    if scheduler and plugins_readable(plugins, "multi_turns"):
        known = set(builtin_names("rollout/multi_turn.py", "multi_turns") or ()) | plugin_names(plugins, "multi_turns")
        if known and scheduler not in known:
            err("grpo-multi-turn", f"unknown multi_turn_scheduler {scheduler!r}", "multi_turn_scheduler",
                hint=f"known: {', '.join(sorted(known))} (or register one in an external_plugins file)")


@rule
def vllm_settings(recipe, args, err, warn):
    if recipe.command != "rlhf" or args.str("rlhf_type") not in ("grpo", "gkd") or not args.bool("use_vllm"):
        return
    # vLLM CacheConfig (vllm/config/cache.py): gpu_memory_utilization is a fraction in (0, 1]. Only an engine the
    # trainer builds reads it (rollout_mixin.py _prepare_vllm_engine, both engines: colocate; the Ray pipeline's
    # rollout replicas): in server mode `swift rollout` has its own and the trainer never reads this one.
    util = args.float("vllm_gpu_memory_utilization")
    trainer_engine = args.str("vllm_mode") != "server" or args.bool("use_ray")
    if util is not None and not 0 < util <= 1 and trainer_engine:
        err("vllm-settings", f"vllm_gpu_memory_utilization {util} is not a fraction in (0, 1]",
            "vllm_gpu_memory_utilization", hint="e.g. 0.5 when vLLM shares the GPUs with training (colocate)")
    elif util is not None and not 0 < util <= 1:
        warn("vllm-settings", f"vllm_gpu_memory_utilization {util} is not a fraction in (0, 1], and vllm_mode server "
             "does not use it (the rollout server has its own)", "vllm_gpu_memory_utilization",
             hint="drop it, and set it on `swift rollout`")
    elif util is not None and args.str("vllm_mode") == "colocate" and util >= 0.9 and not args.bool("sleep_level"):
        # 0.9 is ms-swift's default (args_mixin.py VllmArguments, megatron_args.py): left unset, the colocated engine
        # keeps 90% of each GPU while the policy trains beside it (TRL lowered its own default to 0.3 for this).
        stated = "" if args.has("vllm_gpu_memory_utilization") else " (vllm_gpu_memory_utilization unset: ms-swift's " \
            "default)"
        warn("vllm-settings", f"colocated vLLM takes {util:.0%} of each GPU{stated} and training shares it without "
             "sleep_level to release it", "vllm_gpu_memory_utilization", hint="0.4-0.6, or sleep_level: 1")
    # swift/arguments/rlhf_args.py RLHFArguments._external_vllm_warning: ignored for an external server.
    if args.str("vllm_server_host") and args.has("vllm_max_model_len"):
        warn("vllm-settings", "vllm_max_model_len is ignored with an external vLLM server: pass it to "
             "`swift rollout` instead", "vllm_max_model_len")


# -------------------------------------------------------------------------------------------------
# Megatron engine (`megatron sft|rlhf`)


@rule
def megatron_grpo_refusals(recipe, args, err, warn):
    # swift/megatron/arguments/megatron_args.py RLHFMegatronArgumentsMixin._init_grpo._check_not_supported
    if recipe.engine != "megatron" or not _grpo(recipe, args):
        return
    if (args.int("num_iterations", 1) or 1) > 1:
        err("megatron-grpo", f"num_iterations {args.int('num_iterations')} > 1 is not supported by Megatron GRPO",
            "num_iterations", hint="num_iterations: 1 (or train on the transformers engine)")
    if args.bool("async_generate"):
        err("megatron-grpo", "async_generate is not supported by Megatron GRPO", "async_generate")
    if args.bool("sync_ref_model"):
        err("megatron-grpo", "sync_ref_model is not supported by Megatron GRPO", "sync_ref_model")
    num_gen = args.int("num_generations") or 1
    if args.str("loss_type") == "real" and (args.int("micro_batch_size", 1) or 1) % num_gen:
        err("megatron-grpo", f"loss_type real needs micro_batch_size to be a multiple of num_generations {num_gen}",
            "micro_batch_size")


@rule
def megatron_gkd(recipe, args, err, warn):
    # megatron_args.py RLHFMegatronArgumentsMixin.__post_init__ (gkd)
    if recipe.engine != "megatron" or recipe.command != "rlhf" or args.str("rlhf_type") != "gkd":
        return
    # _check_teacher runs for every GKD run (grpo_common covers GRPO, where it runs only with a teacher).
    if args.str("teacher_model") and args.str("teacher_model_server"):
        err("megatron-gkd", "teacher_model and teacher_model_server cannot both be set", "teacher_model_server",
            hint="keep one: teacher_model (a colocated teacher) or teacher_model_server (an API teacher)")
    topk = args.int("gkd_logits_topk")
    if args.str("teacher_model_server") and topk is None:
        err("megatron-gkd", "teacher_model_server needs gkd_logits_topk", "gkd_logits_topk")
    if topk is not None and topk <= 0:
        err("megatron-gkd", f"gkd_logits_topk must be a positive integer, got {topk}", "gkd_logits_topk")
    if args.bool("seq_kd"):
        err("megatron-gkd", "seq_kd is not supported", "seq_kd")


@rule
def megatron_training(recipe, args, err, warn):
    if recipe.engine != "megatron":
        return
    pp = args.int("pipeline_model_parallel_size", 1) or 1
    ratio = args.float("freeze_parameters_ratio") or 0
    if 0 < ratio < 1 and pp > 1:  # megatron_args.py MegatronTunerMixin.__post_init__
        err("megatron-args", "freeze_parameters_ratio is not supported with pipeline_model_parallel_size > 1",
            "freeze_parameters_ratio")
    if args.raw("save_total_limit") is not None and args.bool("async_save"):  # MegatronArguments.__post_init__
        err("megatron-args", "async_save cannot be combined with save_total_limit", "async_save")
    tuner = args.str("tuner_type")
    if tuner == "lora_llm":  # MegatronArguments.__post_init__
        # merge_lora unset takes save_safetensors' value first (MegatronArguments.__post_init__)
        merge = args.bool("merge_lora") if args.raw("merge_lora") is not None else args.bool("save_safetensors")
        if not merge:
            key = "merge_lora" if args.raw("merge_lora") is not None else "save_safetensors"
            err("megatron-args", "tuner_type lora_llm needs merge_lora: true" + (
                "" if key == "merge_lora" else " (unset, it takes save_safetensors' false)"), key,
                hint="merge_lora: true")
        if not args.bool("no_save_optim"):
            err("megatron-args", "tuner_type lora_llm needs no_save_optim: true", "no_save_optim")
    if args.str("bridge_backend") == "megatron-bridge" and tuner not in (None, "full"):  # _check_bridge_backend
        err("megatron-args", "LoRA training is not supported with bridge_backend megatron-bridge", "bridge_backend",
            hint="bridge_backend: mcore-bridge, or tuner_type: full")
    backend = args.str("attention_backend") or "flash"
    if backend.startswith("flash_") and backend[len("flash_"):] not in ("2", "3", "4"):  # _init_attention_backend
        err("megatron-args", f"attention_backend {backend}: flash-attention version must be 2, 3 or 4",
            "attention_backend")
    if args.bool("use_megatron_fsdp"):  # MegatronArguments._check_megatron_fsdp
        if (args.str("optimizer") or "adam") not in ("sgd", "adam"):
            err("megatron-args", f"Megatron-FSDP does not support the {args.str('optimizer')} optimizer",
                "optimizer")
        if recipe.env.get("CUDA_DEVICE_MAX_CONNECTIONS", "1") == "1":
            err("megatron-args", "Megatron-FSDP needs CUDA_DEVICE_MAX_CONNECTIONS > 1 (ms-swift sets 1 by default)",
                "use_megatron_fsdp", hint="env: {CUDA_DEVICE_MAX_CONNECTIONS: '32'}")
    # megatron/trainers/batch_sampler.py MegatronPretrainingRandomSampler: "shuffle must be True when group_by_length
    # is True" -- built by base.py _prepare_dataloader for a dataset with a length only (a streaming one gets
    # build_streaming_dataloader, which reads neither). GRPO's shuffle is dataset_shuffle: megatron_args.py
    # RLHFMegatronArgumentsMixin._init_grpo copies it over train_dataloader_shuffle.
    shuffle_key = "dataset_shuffle" if _grpo(recipe, args) and args.raw("dataset_shuffle") is not None \
        else "train_dataloader_shuffle"
    if args.bool("group_by_length") and not args.bool("streaming") and args.raw(shuffle_key) is not None \
            and not args.bool(shuffle_key):
        err("megatron-args", f"group_by_length needs {shuffle_key}: true", shuffle_key)
    # MegatronArguments.init_iters, after the model is loaded: a streaming dataset has no length, so epochs cannot
    # become train_iters, and save_strategy epoch has no epoch end to save at.
    if args.bool("streaming"):
        if args.raw("num_train_epochs") is not None and args.raw("train_iters") is None:
            err("megatron-args", "a streaming dataset has no length: num_train_epochs cannot be turned into "
                "train_iters (MegatronArguments.init_iters raises after the model is loaded)", "train_iters",
                hint="set train_iters (and drop num_train_epochs)")
        if args.str("save_strategy") == "epoch":
            err("megatron-args", "save_strategy epoch is not supported with a streaming dataset", "save_strategy",
                hint="save_strategy: steps with save_steps")
        # Only val_dataset streams a validation set: DataArguments.__post_init__ sets split_dataset_ratio 0 for a
        # stream (coercions._split_dropped; plan says so as msswift-override), so a split never needs eval_iters.
        eval_iters = args.int("eval_iters")  # 0 is explicit (no evaluation): init_iters raises only below 0
        if args.list("val_dataset") and (eval_iters is None or eval_iters < 0):  # the val set streams too
            err("megatron-args", "a streaming validation dataset has no length: eval_iters cannot be derived "
                "(MegatronArguments.init_iters raises after the model is loaded)", "eval_iters",
                hint="set eval_iters (the number of eval batches per evaluation)")
    optimizer = args.str("optimizer") or "adam"
    if (args.has("muon_lr") or args.has("muon_min_lr")) and "muon" not in optimizer:  # _check_muon
        err("megatron-args", "muon_lr/muon_min_lr need optimizer: muon or dist_muon", "optimizer")


# MegatronArguments.__post_init__, once get_model_info_meta has resolved the model's ms-swift model type.
QK_LAYERNORM_WD_TYPES = ("qwen3_next", "qwen3_5", "qwen3_5_moe", "qwen4_exp")


@rule
def megatron_model_type(recipe, args, err, warn):
    if recipe.engine != "megatron":
        return
    meta = model_meta(args.str("model"), args.str("model_type"))
    if meta is None:
        return  # a model ms-swift's registry does not know: its type is read from config.json at start-up
    model_type = meta["model_type"]
    if args.bool("apply_wd_to_qk_layernorm") and model_type not in QK_LAYERNORM_WD_TYPES:
        err("qk-layernorm-wd", f"apply_wd_to_qk_layernorm is only supported for model types "
            f"{', '.join(QK_LAYERNORM_WD_TYPES)}, not {model_type}", "apply_wd_to_qk_layernorm",
            hint="apply_wd_to_qk_layernorm: false")
    if args.str("bridge_backend") == "megatron-bridge":
        # MegatronRLHFArguments.__post_init__ sets task_type seq_cls (num_labels 1) for rlhf_type rm before
        # MegatronArguments.__post_init__ checks the backend, over whatever task_type the recipe gave.
        rm = recipe.command == "rlhf" and args.str("rlhf_type") == "rm"
        task_type = "seq_cls" if rm else args.str("task_type") or meta["task_type"] or (
            "seq_cls" if args.int("num_labels") is not None else "causal_lm")
        if meta["multimodal"]:
            err("megatron-bridge-model", f"multimodal training ({model_type}) is not supported with bridge_backend "
                "megatron-bridge", "bridge_backend", hint="bridge_backend: mcore-bridge")
        elif task_type != "causal_lm":
            key = "task_type" if args.str("task_type") and not rm else "bridge_backend"
            err("megatron-bridge-model", f"task_type {task_type}" + (" (what rlhf_type rm trains)" if rm else "")
                + " is not supported with bridge_backend megatron-bridge", key, hint="bridge_backend: mcore-bridge")
    # MegatronArguments._check_recompute: LoRA adapters reorder the backward pass so the selective-recompute hook
    # reads freed tensors.
    if (model_type == "deepseek_v41" and args.str("tuner_type") in ("lora", "lora_llm")
            and args.str("recompute_granularity") == "selective"):
        err("deepseek-v41-recompute", "recompute_granularity selective (the default) is not supported with LoRA on "
            "deepseek_v41", "recompute_granularity", hint="recompute_granularity: full (or none), or tuner_type: full")


@rule
def megatron_optimizer_precision(recipe, args, err, warn):
    if recipe.engine != "megatron":
        return
    aware = args.bool("use_precision_aware_optimizer")
    # megatron-core optimizer/optimizer_config.py OptimizerConfig.__post_init__ (ms-swift copies these fields).
    if aware:
        if (args.str("optimizer") or "adam") != "adam":
            err("optimizer-precision", "use_precision_aware_optimizer only works with optimizer: adam", "optimizer")
        # MegatronArguments._check_megatron_fsdp turns the distributed optimizer on for Megatron-FSDP first.
        if not args.bool("use_distributed_optimizer") and not args.bool("use_megatron_fsdp"):
            err("optimizer-precision", "use_precision_aware_optimizer needs use_distributed_optimizer: true",
                "use_distributed_optimizer")
    else:
        for key in ("main_grads_dtype", "main_params_dtype", "exp_avg_dtype", "exp_avg_sq_dtype"):
            value = args.str(key)
            if value is not None and value != "fp32":
                err("optimizer-precision", f"{key}: {value} needs use_precision_aware_optimizer: true "
                    "(only fp32 otherwise)", key, hint=f"set use_precision_aware_optimizer: true, or {key}: fp32")
    # FP8 parameters with the precision-aware optimizer: evidence and scope in spec/ruleset.py (fp8-optimizer).
    # Refused only on the code path the reports ran: TE's FusedAdam owning the master weights of FP8 params.
    if aware and args.str("fp8_format") and args.bool("fp8_param_gather") and fused_adam_owns_fp8_master(args):
        err("fp8-optimizer", "FP8 parameters (fp8_param_gather) with use_precision_aware_optimizer fail at "
            "the first optimizer step", "use_precision_aware_optimizer",
            hint="drop use_precision_aware_optimizer (and exp_avg_dtype/exp_avg_sq_dtype), or fp8_param_gather; "
            "fp8_recipe blockwise/tensorwise/mxfp8 with main_params_dtype fp32 take megatron-core's own "
            "FP32 main-param path (ms-swift's examples/megatron/fp8)")
    # megatron-core's HybridDeviceOptimizer (optimizer_cpu_offload) with FP8 parameters crashes while the
    # optimizer is built: "optimizer can only optimize Tensors, but one of the params is NoneType"
    # (NVIDIA/Megatron-LM issue #5083, open); Megatron-LM's own training arguments allow the pair only with
    # fp8_recipe delayed, and #5083 reports the crash regardless. ms-swift does not check it.
    if args.bool("optimizer_cpu_offload") and args.bool("fp8_param_gather") and args.str("fp8_format"):
        err("fp8-optimizer", "optimizer_cpu_offload with FP8 parameters (fp8_param_gather) crashes building the "
            "optimizer (HybridDeviceOptimizer)", "optimizer_cpu_offload",
            hint="drop optimizer_cpu_offload or fp8_param_gather")


def fused_adam_owns_fp8_master(args) -> bool:
    """megatron-core 0.16.1 optimizer/optimizer_config.py OptimizerConfig.__post_init__ sets
    `use_precision_aware_optimizer_no_fp8_or_ds_fp8` when main_params_dtype != fp32, fp8_recipe is None or
    delayed, or optimizer_cpu_offload: then distrib_optimizer.py keeps no FP32 main params of its own and
    TE's FusedAdam updates the FP8 parameters through its master weights (use_decoupled_grad) -- the path
    ms-swift #8001 and #6994 (fp8_recipe delayed) failed on. Otherwise (blockwise, tensorwise, mxfp8 with
    fp32 main params) megatron-core keeps FP32 main params and FusedAdam only holds the moments."""
    return ((args.str("main_params_dtype") or "fp32") != "fp32" or (args.str("fp8_recipe") or "delayed") == "delayed"
            or args.bool("optimizer_cpu_offload"))


# The rules of the recipe's inputs (model_type and template names, data loading, precision), both engines.
from swift_ext.msswift.input_rules import INPUT_RULES  # noqa: E402  (input_rules takes nothing from here)
from swift_ext.msswift.rlhf_rules import RLHF_RULES  # noqa: E402  (nor does rlhf_rules)
from swift_ext.msswift.preference_rules import PREFERENCE_RULES  # noqa: E402  (nor does preference_rules)
from swift_ext.msswift.startup_rules import STARTUP_RULES  # noqa: E402  (nor does startup_rules)
from swift_ext.msswift.plugin_imports import PLUGIN_IMPORT_RULES  # noqa: E402  (nor does plugin_imports)
from swift_ext.msswift.multimodal_rules import MULTIMODAL_RULES  # noqa: E402  (nor does multimodal_rules)
from swift_ext.msswift.template_rules import TEMPLATE_RULES  # noqa: E402  (nor does template_rules)
from swift_ext.msswift.range_rules import RANGE_RULES  # noqa: E402  (nor does range_rules)
from swift_ext.msswift.json_args import JSON_ARG_RULES  # noqa: E402  (nor does json_args)
from swift_ext.msswift.encoder_rules import ENCODER_RULES  # noqa: E402  (nor does encoder_rules)
from swift_ext.msswift.reward_arg_rules import REWARD_ARG_RULES  # noqa: E402  (nor does reward_arg_rules)
from swift_ext.msswift.teacher_server_rules import TEACHER_SERVER_RULES  # noqa: E402  (nor does teacher_server_rules)
from swift_ext.msswift.rollout_port_rules import ROLLOUT_PORT_RULES  # noqa: E402  (nor does rollout_port_rules)
from swift_ext.msswift.multinode_save_rules import MULTINODE_SAVE_RULES  # noqa: E402  (nor does multinode_save_rules)
from swift_ext.msswift.trainer_args_rules import TRAINER_ARGS_RULES  # noqa: E402  (nor does trainer_args_rules)

RULES.extend(INPUT_RULES)
RULES.extend(STARTUP_RULES)
RULES.extend(RLHF_RULES)
RULES.extend(PREFERENCE_RULES)
RULES.extend(PLUGIN_IMPORT_RULES)
RULES.extend(MULTIMODAL_RULES)
RULES.extend(TEMPLATE_RULES)
RULES.extend(RANGE_RULES)
RULES.extend(JSON_ARG_RULES)
RULES.extend(ENCODER_RULES)
RULES.extend(REWARD_ARG_RULES)
RULES.extend(TEACHER_SERVER_RULES)
RULES.extend(ROLLOUT_PORT_RULES)
RULES.extend(MULTINODE_SAVE_RULES)
RULES.extend(TRAINER_ARGS_RULES)
