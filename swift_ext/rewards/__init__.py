"""GRPO reward functions in ms-swift's ORM interface. Importing this package registers them in
ms-swift's `orms` registry; recipes name them in `args.reward_funcs` and swift-ext adds
`--external_plugins swift_ext/plugins/swift_ext_rewards.py` (which only imports this package).

- math_accuracy:    1.0 when the final answer is mathematically equivalent to `solution` (math-verify)
- think_format:     exactly one reasoning block with reasoning in it, then a non-empty answer
- boxed_format:     exactly one balanced \\boxed{...} in the answer part
- overlong_penalty: DAPO soft overlong punishment (max_completion_length, soft_cache_length)
- ngram_repetition: penalty for repeated word n-grams (one linear pass)
- language_consistency: share of the completion's letters in the prompt's script (language.py)
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

from swift.rewards import ORM, AsyncORM, orms
from swift.utils import get_logger

from swift_ext.rewards import audit
from swift_ext.rewards.language import LanguageConsistencyReward
from swift_ext.rewards.verifypool import COUNTERS, BatchStats, answer_part, clean_text, last_boxed, score_math

logger = get_logger()
LOG_EVERY_STEPS = int(os.environ.get("SWIFT_EXT_REWARD_LOG_EVERY", "50"))
MAX_GOLD_WARNINGS = 5


class MathAccuracyReward(ORM):
    """1.0 if the completion's final answer equals `solution` mathematically (math-verify), else 0.0.

    Counters per batch (`last_stats`) and per run (`total`) go to ms-swift's metrics through the
    swift_ext_reward_audit callback, else into one log line every LOG_EVERY_STEPS steps (audit.py).
    """

    def __init__(self, args: Any = None, **kwargs):
        super().__init__(args, **kwargs)
        self.last_stats: BatchStats | None = None
        self.total = BatchStats()
        self.metrics_sink = None  # set by audit.attach: per-batch counters into trainer._metrics
        self._logged_step: int | None = None
        self._warned_golds: set[str] = set()

    def attach_metrics(self, sink) -> None:
        self.metrics_sink = sink

    def __call__(self, completions, solution=None, **kwargs) -> list[float]:
        completions = list(completions or [])
        solutions = list(solution) if isinstance(solution, (list, tuple)) else [solution] * len(completions)
        try:
            scores, stats = score_math(completions, solutions)
        except Exception:  # a reward must never take the trainer down
            logger.exception("math_accuracy failed on a batch; scoring it 0")
            return [0.0] * len(completions)
        self.last_stats = stats
        self.total.add(stats)
        self._report(stats, kwargs.get("trainer_state"))
        return scores

    def _report(self, stats: BatchStats, trainer_state) -> None:
        for gold in stats.unparsed_golds:  # a data problem: say which solution, a few times per run
            if gold not in self._warned_golds and len(self._warned_golds) < MAX_GOLD_WARNINGS:
                self._warned_golds.add(gold)
                logger.warning("math_accuracy: cannot read this solution, its completions score 0: %s", gold[:200])
        if self.metrics_sink is not None:
            self.metrics_sink({name: getattr(stats, name) for name in COUNTERS})
            return
        step = getattr(trainer_state, "global_step", None)
        if step is None or LOG_EVERY_STEPS <= 0:
            return
        if self._logged_step is None or step - self._logged_step >= LOG_EVERY_STEPS:
            self._logged_step = step
            logger.info("math_accuracy at step %d, run totals: %s", step, self.total.as_dict())


class AsyncMathAccuracyReward(AsyncORM):
    """The same reward for async callers: scoring runs in a thread, the event loop stays free."""

    def __init__(self, args: Any = None, **kwargs):
        super().__init__(args, **kwargs)
        self._sync = MathAccuracyReward(args)

    def attach_metrics(self, sink) -> None:
        self._sync.attach_metrics(sink)

    @property
    def last_stats(self) -> BatchStats | None:
        return self._sync.last_stats

    async def __call__(self, completions, solution=None, **kwargs) -> list[float]:
        return await asyncio.to_thread(self._sync, completions, solution, **kwargs)


class ThinkFormatReward(ORM):
    """1.0 for exactly one reasoning block with some reasoning in it, followed by a non-empty answer.

    The completion ms-swift scores starts with the template's response prefix (Template.decode_generate_ids
    prepends it): for qwen3/qwen3_5 with thinking on that is `<think>\\n`, which the model must close
    itself; with thinking off (ms-swift's default for these templates) it is the empty block
    `<think>\\n\\n</think>\\n\\n`, which the model did not write. An empty block is therefore no reasoning
    and scores 0 (it used to score 1.0 on every completion: zero reward variance, nothing learned). A
    completion that only closes the block (`... </think> answer`: a prefix kept out of the text) counts too.
    """

    def __init__(self, args: Any = None, **kwargs):
        super().__init__(args, **kwargs)
        self._warned_empty_block = False

    def __call__(self, completions, **kwargs) -> list[float]:
        texts = [clean_text(c) for c in completions or []]
        if texts and not self._warned_empty_block and all(t is not None and _EMPTY_THINK.match(t) for t in texts):
            self._warned_empty_block = True
            logger.warning("think_format: every completion starts with an empty <think></think> block, the one "
                           "ms-swift's template adds when thinking is off: they all score 0. Set "
                           "args.enable_thinking: true to train reasoning, or drop think_format from reward_funcs.")
        return [self._score(t) for t in texts]

    @staticmethod
    def _score(text: str | None) -> float:
        if text is None or text.count("</think>") != 1 or text.count("<think>") > 1:
            return 0.0
        opened = text.find("<think>")
        closed = text.find("</think>")
        if opened >= 0 and (opened > closed or text[:opened].strip()):
            return 0.0
        reasoning = text[opened + len("<think>") if opened >= 0 else 0:closed]
        if not reasoning.strip():
            return 0.0
        return 1.0 if text[closed + len("</think>"):].strip() else 0.0


_EMPTY_THINK = re.compile(r"\s*<think>\s*</think>")


class BoxedFormatReward(ORM):
    r"""1.0 when the answer part holds exactly one `\boxed{...}`, with balanced braces."""

    def __call__(self, completions, **kwargs) -> list[float]:
        out = []
        for completion in completions or []:
            text = clean_text(completion)
            part = answer_part(text) if text is not None else None
            if part is None or part.count("\\boxed{") != 1:
                out.append(0.0)
                continue
            out.append(1.0 if last_boxed(part) is not None else 0.0)
        return out


class OverlongPenaltyReward(ORM):
    """DAPO's soft overlong punishment: 0 up to L_max - L_cache tokens, then linearly down to -1 at L_max,
    -1 beyond. L_max = max_completion_length; L_cache = soft_cache_length (default L_max / 5, as in DAPO's
    20480 / 4096)."""

    def __init__(self, args: Any = None, **kwargs):
        super().__init__(args, **kwargs)
        self.max_length = int(getattr(args, "max_completion_length", None) or 512)
        cache = getattr(args, "soft_cache_length", None)
        self.cache_length = int(cache) if cache else max(1, self.max_length // 5)
        self.cache_length = min(self.cache_length, self.max_length)

    def __call__(self, completions, **kwargs) -> list[float]:
        ids = kwargs.get("response_token_ids") or kwargs.get("completion_ids")
        out = []
        for i, completion in enumerate(completions or []):
            length = _token_count(ids[i] if ids is not None and i < len(ids) else None, completion)
            out.append(self.penalty(length))
        return out

    def penalty(self, length: int) -> float:
        expected = self.max_length - self.cache_length
        if length <= expected:
            return 0.0
        if length > self.max_length:
            return -1.0
        return (expected - length) / self.cache_length


def _token_count(ids, completion) -> int:
    if ids is not None:
        return sum(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)
    text = clean_text(completion) or ""
    return len(text) // 4  # no token ids given: ~4 characters per token


class NgramRepetitionReward(ORM):
    """-(share of repeated word n-grams) * |max_penalty|; one pass over the words, hashing n-gram tuples.
    n = repetition_n_grams (default 3), max_penalty = repetition_max_penalty (default -1.0)."""

    def __init__(self, args: Any = None, **kwargs):
        super().__init__(args, **kwargs)
        self.n = int(getattr(args, "repetition_n_grams", None) or 3)
        self.max_penalty = -abs(float(getattr(args, "repetition_max_penalty", None) or 1.0))

    def __call__(self, completions, **kwargs) -> list[float]:
        out = []
        for completion in completions or []:
            words = (clean_text(completion) or "").lower().split()
            total = len(words) - self.n + 1
            if total <= 0:
                out.append(0.0)
                continue
            seen = {tuple(words[i : i + self.n]) for i in range(total)}
            out.append((1 - len(seen) / total) * self.max_penalty)
        return out


REWARDS = {
    "math_accuracy": MathAccuracyReward,
    "think_format": ThinkFormatReward,
    "boxed_format": BoxedFormatReward,
    "overlong_penalty": OverlongPenaltyReward,
    "ngram_repetition": NgramRepetitionReward,
    "language_consistency": LanguageConsistencyReward,
}
for _name, _cls in REWARDS.items():
    orms[_name] = _cls
orms["math_accuracy_async"] = AsyncMathAccuracyReward
audit.register()
