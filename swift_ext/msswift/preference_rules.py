"""ms-swift 4.6's preference and distillation trainers (GKD, PPO, the reference model of DPO/KTO) refusing, or
silently dropping, settings that no argument class checks: GKD's JSD interpolation and on-policy fraction, PPO's
mini-batch split, `ref_adapters` outside DPO/KTO/GRPO, and Megatron's reference model under LoRA. Split from
rlhf_rules.py by concern (the loss names live there); rules.py registers PREFERENCE_RULES. Each rule names the file
and function of the installed `swift` / `trl` package it mirrors."""

from __future__ import annotations

import math

from swift_ext.msswift.checkpoint_args import checkpoint_args, loaded


def gkd_ranges(recipe, args, err, warn):
    # beta interpolates the generalized JSD between forward (0) and reverse (1) KL. Engine swift: ms-swift's
    # GKDConfig.__post_init__ (rlhf_trainers/arguments.py) runs trl's GKDConfig.__post_init__
    # (trl/experimental/gkd/gkd_config.py), which raises "lmbda must be in the range [0.0, 1.0]." / "beta must be in
    # the range [0.0, 1.0]." when the training arguments are built. Megatron checks neither; its loss
    # (rlhf_trainers/gkd_loss.py gkd_loss, called by megatron/trainers/gkd_trainer.py MegatronGKDTrainer.loss_func)
    # takes log(beta) and log1p(-beta) for 0 < beta < 1 only by construction: beta > 1 or < 0 makes them NaN, so the
    # loss is NaN from the first step. lmbda there is only a probability threshold (random() < lmbda): out of range
    # it is always / never on-policy, which runs.
    if recipe.command != "rlhf" or args.str("rlhf_type") != "gkd":
        return
    beta = args.float("beta")  # unset: 0.5 for GKD on both engines (RLHFArguments._set_default, the Megatron mixin)
    if args.has("beta") and beta is not None and not 0.0 <= beta <= 1.0:
        how = ("trl's GKDConfig refuses it when the training arguments are built (\"beta must be in the range "
               "[0.0, 1.0].\")" if recipe.engine == "swift" else
               "Megatron's GKD loss takes log(beta) and log(1 - beta), so every loss is NaN from the first step")
        err("gkd-range", f"beta {beta:g} is GKD's generalized-JSD interpolation (0 forward KL, 1 reverse KL), not a "
            f"DPO-style temperature: {how}", "beta",
            hint="beta in [0, 1] (0.5 is ms-swift's GKD default; 1.0 reverse KL for on-policy distillation)")
    lmbda = args.float("lmbda")
    if recipe.engine == "swift" and args.has("lmbda") and lmbda is not None and not 0.0 <= lmbda <= 1.0:
        err("gkd-range", f"lmbda {lmbda:g} is the share of student-generated (on-policy) batches: trl's GKDConfig "
            "refuses it outside [0, 1] when the training arguments are built (\"lmbda must be in the range "
            "[0.0, 1.0].\")", "lmbda", hint="lmbda in [0, 1] (1.0: every batch on-policy)")


def gkd_on_policy(recipe, args, err, warn):
    # Megatron GKD draws the on-policy share from the student's vLLM rollouts only: megatron/trainers/gkd_trainer.py
    # MegatronGKDTrainer._determine_data_source takes DataSource.STUDENT with probability lmbda when use_vllm, and
    # without vLLM logs "On-policy mode triggered but use_vllm=False. Falling back to dataset responses." once and
    # trains on the dataset's responses every step: an off-policy (sequence-level KD) run whatever lmbda says. (Engine
    # swift's GKD generates with the model itself when vLLM is off.)
    if recipe.engine != "megatron" or recipe.command != "rlhf" or args.str("rlhf_type") != "gkd":
        return
    lmbda = args.float("lmbda")
    if args.bool("use_vllm") or lmbda is None or lmbda <= 0:
        return
    warn("gkd-on-policy", f"Megatron GKD with lmbda {lmbda:g} and use_vllm false: the trainer generates on-policy "
         "responses only through vLLM, so every on-policy draw falls back to the dataset's responses (ms-swift logs "
         "it once) and the run distils off-policy only", "use_vllm",
         hint="use_vllm: true (vllm_mode colocate or server) for on-policy distillation, or lmbda: 0 to say off-policy")


def ref_adapters_type(recipe, args, err, warn):
    # pipelines/train/rlhf.py SwiftRLHF.prepare_model: with ref_adapters it asserts len(ref_adapters) == 1, loads the
    # adapter as 'ref_adapter', then asserts rlhf_type in {dpo, kto, grpo} ("Currently, only DPO, KTO, and GRPO support
    # `ref_adapters`."): CPO/SimPO/ORPO are reference-free, RM/PPO/GKD have their own models. Both asserts run while the
    # model is prepared, after it has loaded. (Megatron: megatron-adapters says one ref_adapter.)
    refs = args.list("ref_adapters")
    if recipe.engine != "swift" or recipe.command != "rlhf" or not refs:
        return
    rlhf_type = args.str("rlhf_type") or "dpo"
    if len(refs) > 1:
        err("ref-adapters", f"{len(refs)} ref_adapters: ms-swift loads one reference adapter (it asserts "
            "len(ref_adapters) == 1 when the model is prepared)", "ref_adapters", hint="one ref_adapters entry")
    if rlhf_type not in ("dpo", "kto", "grpo"):
        why = {"orpo": "ORPO is reference-free", "cpo": "CPO is reference-free", "simpo": "SimPO is reference-free",
               "rm": "a reward model has no reference", "ppo": "PPO's reference is its ref_model / the base model",
               "gkd": "GKD's other model is teacher_model (with teacher_adapters)"}.get(rlhf_type, "")
        err("ref-adapters", f"ref_adapters with rlhf_type {rlhf_type}: ms-swift asserts that only DPO, KTO and GRPO "
            f"take a reference adapter, after loading the model ({why})", "ref_adapters",
            hint="drop ref_adapters" + (" (teacher_adapters for GKD's teacher)" if rlhf_type == "gkd" else ""))


def ppo_batch(recipe, args, err, warn):
    # trl/experimental/ppo/ppo_trainer.py PPOTrainer.__init__ (ms-swift's PPOTrainer calls it when the trainer is
    # built): local_batch_size = per_device_train_batch_size x gradient_accumulation_steps must split into
    # num_mini_batches ("`local_batch_size` must be a multiple of `num_mini_batches`"; the global batch, world x
    # local, then divides too), and whiten_rewards asserts a per-rank mini-batch of at least 8 ("Per-rank minibatch
    # size ... is insufficient for whitening"). An unset gradient_accumulation_steps is filled as
    # TrainArgumentsMixin.__post_init__ does: max(1, ceil(16 / per_device_train_batch_size / processes)).
    if recipe.engine != "swift" or recipe.command != "rlhf" or args.str("rlhf_type") != "ppo":
        return
    per_device = args.int("per_device_train_batch_size", 1) or 1
    gas = args.int("gradient_accumulation_steps")
    filled = gas is None
    if filled:
        gas = max(1, math.ceil(16 / per_device / max(1, recipe.launch.world_size)))
    local = per_device * gas
    minis = args.int("num_mini_batches", 1) or 1
    origin = " (ms-swift fills it)" if filled else ""
    if minis > 0 and local % minis:
        err("ppo-batch", f"PPO's per-rank batch per_device_train_batch_size {per_device} x gradient_accumulation_steps "
            f"{gas}{origin} = {local} does not split into num_mini_batches {minis}: trl's PPOTrainer refuses it when "
            "it is built (\"`local_batch_size` must be a multiple of `num_mini_batches`\")", "num_mini_batches",
            hint=f"num_mini_batches a divisor of {local}, or a per-rank batch divisible by {minis}")
    elif args.bool("whiten_rewards") and minis > 0 and local // minis < 8:
        err("ppo-batch", f"whiten_rewards with a per-rank PPO mini-batch of {local // minis} ({local} samples / "
            f"num_mini_batches {minis}): trl's PPOTrainer asserts at least 8 to whiten the rewards", "whiten_rewards",
            hint="whiten_rewards: false, or per_device_train_batch_size x gradient_accumulation_steps >= "
                 f"8 x num_mini_batches ({8 * minis})")


def megatron_ref_model_lora(recipe, args, err, warn):
    # megatron/trainers/rlhf_mixin.py MegatronRLHFTrainer.prepare_model builds and loads ref_models (from
    # mcore_ref_model, else ref_model or model) only for tuner_type full; under LoRA null_ref_context takes the
    # policy with its adapter disabled (or the ref_adapter) and ref_model / mcore_ref_model are never read -- the
    # engine swift refuses the same pair (RLHFArguments.__post_init__: "... LoRA training does not require a
    # ref_model"), Megatron says nothing. RM and GKD build no reference at all.
    if recipe.engine != "megatron" or recipe.command != "rlhf":
        return
    key = next((k for k in ("ref_model", "mcore_ref_model") if args.str(k)), None)
    if key is None:
        return
    rlhf_type = args.str("rlhf_type") or "dpo"
    tuner = str(loaded(args, "tuner_type", checkpoint_args(args)) or "full")
    if rlhf_type in ("rm", "gkd"):
        why = f"rlhf_type {rlhf_type} builds no reference model"
    elif tuner != "full":
        why = (f"with tuner_type {tuner} the reference is the policy with its adapter disabled (or ref_adapters), "
               "and no separate reference model is built")
    else:
        return
    warn("megatron-ref-model", f"{key} {args.str(key)} is never loaded: {why}", key,
         hint=("ref_adapters (an SFT LoRA as the reference) or tuner_type: full to train against a separate "
               "reference model" if rlhf_type not in ("rm", "gkd") else f"drop {key}"))


PREFERENCE_RULES = [gkd_ranges, gkd_on_policy, ref_adapters_type, ppo_batch, megatron_ref_model_lora]
