"""Files handed to ms-swift's `--external_plugins`, and what they register (without importing ms-swift)."""

from pathlib import Path

REWARD_PLUGIN = Path(__file__).with_name("swift_ext_rewards.py")
# Kept equal to swift_ext.rewards.REWARDS (tested); listed here so planning never imports ms-swift.
REWARD_NAMES = ("math_accuracy", "think_format", "boxed_format", "overlong_penalty", "ngram_repetition",
                "language_consistency", "math_accuracy_async")
# Rewards whose counters (timeouts, guarded, no answer, gold unparsed, multi-part) reach ms-swift's
# logged metrics through this callback (swift_ext/rewards/audit.py); swift-ext adds it to `callbacks`.
AUDITED_REWARDS = ("math_accuracy", "math_accuracy_async")
AUDIT_CALLBACK = "swift_ext_reward_audit"
