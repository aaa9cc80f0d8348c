"""How math_accuracy's counters reach ms-swift's logged metrics.

ms-swift logs a reward only as `rewards/<Name>/mean|std`, computed from the scores the reward returns;
a reward function has no handle on the trainer. Its GRPO trainers (transformers and Megatron) keep
`trainer._metrics[mode]`, a dict of lists that every logging step averages (across data-parallel ranks
under Megatron), writes to the log/tensorboard/wandb and clears. The callback registered here, named
`swift_ext_reward_audit` (swift-ext adds `--callbacks swift_ext_reward_audit` when a recipe uses
math_accuracy), hands each audited reward a sink into that dict, so its per-batch counters are logged
next to `rewards/MathAccuracyReward/mean` as `rewards/MathAccuracyReward/timeouts`, `.../guarded`,
`.../no_answer`, `.../gold_unparsed`, `.../answer_unparsed`, `.../multi_part`.

Without the callback (ms-swift run by hand with only the plugin), the reward writes one summary line
every SWIFT_EXT_REWARD_LOG_EVERY steps (default 50) instead.
"""

from __future__ import annotations

import sys

from swift.callbacks.base import TrainerCallback

CALLBACK_NAME = "swift_ext_reward_audit"


def attach(trainer) -> int:
    """Gives every reward of the trainer that can report counters a sink into `trainer._metrics`;
    returns how many. Safe to call again (the trainer builds its rewards after its callbacks)."""
    metrics = getattr(trainer, "_metrics", None)
    if metrics is None:
        return 0
    attached = 0
    names = getattr(trainer, "reward_func_names", None) or []
    for i, func in enumerate(getattr(trainer, "reward_funcs", None) or []):
        if hasattr(func, "attach_metrics"):
            name = names[i] if i < len(names) else type(func).__name__
            func.attach_metrics(_Sink(trainer, name))
            attached += 1
    return attached


class _Sink:
    """Appends `rewards/<name>/<counter>` values to the trainer's metrics of the current mode."""

    def __init__(self, trainer, name: str):
        self.trainer = trainer
        self.name = name

    def __call__(self, counters: dict) -> None:
        metrics = self.trainer._metrics[_mode(self.trainer)]
        for key, value in counters.items():
            metrics[f"rewards/{self.name}/{key}"].append(float(value))


def _mode(trainer) -> str:
    # The rule both GRPO trainers use to pick the metrics dict.
    models = getattr(trainer, "unwrapped_models", None) or [getattr(trainer, "model", None)]
    return "train" if getattr(models[0], "training", True) else "eval"


def register() -> None:
    """Registers the callback in ms-swift's callback maps (transformers and, when installed, Megatron)."""
    from swift.callbacks import callbacks_map

    callbacks_map[CALLBACK_NAME] = RewardAuditCallback
    # `megatron rlhf` has imported swift.megatron before it loads plugins; anything else must not pay
    # for importing Megatron (seconds, and it may be missing) just to register a callback.
    if "swift.megatron" in sys.modules:
        try:
            from swift.megatron.callbacks import megatron_callbacks_map
        except ImportError:  # a Megatron stack that cannot train either; the trainer says why
            return
        megatron_callbacks_map[CALLBACK_NAME] = _megatron_callback_class()


class RewardAuditCallback(TrainerCallback):
    """transformers-backend (`swift rlhf`) callback: built with (args, trainer)."""

    def on_train_begin(self, args, state, control, **kwargs):
        attach(self.trainer)

    def on_step_begin(self, args, state, control, **kwargs):
        attach(self.trainer)


def _megatron_callback_class():
    from swift.megatron.callbacks.base import MegatronCallback

    class MegatronRewardAuditCallback(MegatronCallback):
        """Megatron-backend (`megatron rlhf`) callback: built with the trainer."""

        def on_train_begin(self):
            attach(self.trainer)

        def on_step_begin(self):
            attach(self.trainer)

    return MegatronRewardAuditCallback
