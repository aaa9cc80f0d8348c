# Handed to ms-swift as `--external_plugins`: importing swift_ext.rewards registers swift-ext's
# reward functions (math_accuracy, think_format, boxed_format, overlong_penalty, ngram_repetition,
# language_consistency) in ms-swift's `orms`, and the swift_ext_reward_audit callback (math_accuracy's
# counters as metrics) in its callback maps.
import swift_ext.rewards  # noqa: F401
