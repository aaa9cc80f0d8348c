"""The entries of the preference / distillation trainer rules (msswift/preference_rules.py): GKD's beta and lmbda
ranges, PPO's mini-batch split, ref_adapters outside DPO/KTO/GRPO, Megatron's reference model under LoRA.
spec/ruleset.py joins them with the rest."""

from __future__ import annotations

from swift_ext.spec.rule_info import RuleInfo, code

PREFERENCE_RULE_INFO = [
    RuleInfo("gkd-range", "error", "GKD's beta (the generalized-JSD interpolation) in [0, 1] on both engines, and "
             "lmbda (the on-policy share) in [0, 1] on the transformers engine",
             (code("trl experimental/gkd/gkd_config.py: GKDConfig.__post_init__ (\"beta must be in the range [0.0, "
                   "1.0].\", \"lmbda must be in the range [0.0, 1.0].\"; run by ms-swift's "
                   "rlhf_trainers/arguments.py GKDConfig.__post_init__)"),
              code("ms-swift swift/rlhf_trainers/gkd_loss.py: gkd_loss (log(beta) and log1p(-beta): NaN outside [0, "
                   "1]; what megatron/trainers/gkd_trainer.py MegatronGKDTrainer.loss_func calls)")),
             "rlhf_type gkd with beta or lmbda stated; lmbda on engine swift only (Megatron reads it as a probability "
             "threshold, which runs)"),
    RuleInfo("gkd-on-policy", "warning", "Megatron GKD with lmbda > 0 and use_vllm false distils off-policy only: "
             "the on-policy draws fall back to the dataset's responses",
             (code("ms-swift swift/megatron/trainers/gkd_trainer.py: MegatronGKDTrainer._determine_data_source "
                   "(\"On-policy mode triggered but use_vllm=False. Falling back to dataset responses.\")"),),
             "engine: megatron, rlhf_type gkd, lmbda > 0 (ms-swift's default 0.5), use_vllm false"),
    RuleInfo("ref-adapters", "error", "ref_adapters (engine swift) is one adapter, for rlhf_type dpo, kto or grpo",
             (code("ms-swift swift/pipelines/train/rlhf.py: SwiftRLHF.prepare_model (assert len(ref_adapters) == 1; "
                   "\"Currently, only DPO, KTO, and GRPO support `ref_adapters`.\", after the model has loaded)"),),
             "engine: swift, command rlhf, ref_adapters set (Megatron's one-ref_adapter refusal is megatron-adapters')"),
    RuleInfo("ppo-batch", "error", "PPO's per-rank batch (per_device_train_batch_size x gradient_accumulation_steps) "
             "splits into num_mini_batches; whiten_rewards needs per-rank mini-batches of at least 8",
             (code("trl experimental/ppo/ppo_trainer.py: PPOTrainer.__init__ (exact_div: \"`local_batch_size` must "
                   "be a multiple of `num_mini_batches`\"; assert local_mini_batch_size >= 8 for whitening)"),
              code("ms-swift swift/trainers/arguments.py: TrainArgumentsMixin.__post_init__ (an unset "
                   "gradient_accumulation_steps becomes max(1, ceil(16 / per_device_train_batch_size / "
                   "processes)))")),
             "engine: swift, rlhf_type ppo"),
    RuleInfo("megatron-ref-model", "warning", "Megatron never loads ref_model / mcore_ref_model under LoRA (the "
             "reference is the adapter-disabled policy) or for rm / gkd",
             (code("ms-swift swift/megatron/trainers/rlhf_mixin.py: MegatronRLHFTrainer.prepare_model (ref_models "
                   "only for tuner_type full, rlhf_type not rm/gkd) / null_ref_context"),
              code("ms-swift swift/arguments/rlhf_args.py: RLHFArguments.__post_init__ (the transformers engine "
                   "refuses the same pair: rule ref-model)")),
             "engine: megatron, command rlhf, ref_model or mcore_ref_model set with a tuner other than full (as "
             "load_args reads it), or with rlhf_type rm / gkd"),
]
