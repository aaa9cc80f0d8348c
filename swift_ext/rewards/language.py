"""language_consistency: the share of a completion's letters written in the prompt's script (DeepSeek-R1's
language-consistency reward, which counts the target language's words in the reasoning; here per letter,
by Unicode script, so no language model is needed).

Why letters by script: the prompt says which language the answer should be in, and a model that drifts
into another language mid-reasoning (a known failure of RL on multilingual models) changes script. Digits,
punctuation, spaces and LaTeX are no language and are not counted; nor are the `<think>` tags.

It is graded (not 0/1), so completions of the same prompt differ by it even when none is right: on the
tiny random model of the CPU smoke recipe it is the reward that gives GRPO a signal to learn from.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from swift.rewards import ORM

from swift_ext.rewards.verifypool import clean_text

# Scripts one language writes together: Japanese mixes kanji and kana, Korean may use hanja.
_SCRIPT_FAMILY = {"CJK": "HAN", "HIRAGANA": "HAN", "KATAKANA": "HAN", "HALFWIDTH": "HAN", "FULLWIDTH": "HAN",
                  "IDEOGRAPHIC": "HAN", "HANGUL": "HAN"}
# Markup is no language: tags such as <think>, and LaTeX commands (\boxed, \frac) in any language's answer.
_MARKUP = re.compile(r"</?[A-Za-z_]+>|\\[A-Za-z]+")


@lru_cache(maxsize=65536)
def script_of(char: str) -> str | None:
    """The Unicode script family of a letter (`LATIN`, `CYRILLIC`, `HAN`, ...); None for a non-letter."""
    if not char.isalpha():
        return None
    try:
        first = unicodedata.name(char).split(" ", 1)[0]
    except ValueError:  # unnamed code points
        return "UNKNOWN"
    return _SCRIPT_FAMILY.get(first, first)


def script_counts(text: str) -> dict[str, int]:
    text = _MARKUP.sub(" ", text)
    counts: dict[str, int] = {}
    for char in text:
        script = script_of(char)
        if script is not None:
            counts[script] = counts.get(script, 0) + 1
    return counts


def prompt_script(messages) -> str | None:
    """The script most of the prompt's letters (system and user turns, not the completion) are in."""
    counts: dict[str, int] = {}
    for message in messages or []:
        if not isinstance(message, dict) or message.get("role") not in ("system", "user"):
            continue
        content = clean_text(message.get("content"))
        for script, n in script_counts(content or "").items():
            counts[script] = counts.get(script, 0) + n
    return max(counts, key=counts.get) if counts else None


class LanguageConsistencyReward(ORM):
    """Share (0..1) of the completion's letters in the prompt's script. A completion with text but no letters
    (`\\boxed{27}`) scores 1.0, an empty one 0.0; a prompt without letters gives no target: 0.0 for all."""

    def __call__(self, completions, messages=None, **kwargs) -> list[float]:
        completions = list(completions or [])
        conversations = messages if isinstance(messages, (list, tuple)) else [None] * len(completions)
        return [self._score(c, conversations[i] if i < len(conversations) else None)
                for i, c in enumerate(completions)]

    @staticmethod
    def _score(completion, conversation) -> float:
        target = prompt_script(conversation) if isinstance(conversation, (list, tuple)) else None
        text = clean_text(completion)
        if target is None or not text or not text.strip():
            return 0.0
        counts = script_counts(text)
        letters = sum(counts.values())
        return counts.get(target, 0) / letters if letters else 1.0
