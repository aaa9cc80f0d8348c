"""math_accuracy vs ms-swift's built-in `accuracy` on a GRPO-shaped batch, same machine, same run.

Batch: 64 prompts x 8 completions (~1-2k characters of reasoning each), 5% adversarial answers
(power towers, huge factorials, deep nesting, a heavy-but-short trig expression). Goal (issue #5):
ours <= 3 s per batch on 2 cores; every clean item the built-in credits is credited by ours too.
"""

from __future__ import annotations

import logging
import random
import time

ADVERSARIAL = [
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{(10^6)!}",
    "\\boxed{" + "{" * 3000 + "1" + "}" * 3000 + "}",
    "\\boxed{\\sin(1)^{20}+\\cos(1)^{20}+\\tan(1)^{20}}",
]
FORMS = [  # (how the model writes the right answer, gold) for a value v
    lambda v: (f"so the answer is \\boxed{{{v}}}.", f"${v}$"),
    lambda v: (f"Therefore the answer is ${v}$.", f"${v}$"),
    lambda v: (f"The total is {v:,}.", f"${v}$"),
    lambda v: (f"<answer>{v}</answer>", f"${v}$"),
    lambda v: (f"So $x = {v}$.", f"${v}$"),
    lambda v: (f"\\boxed{{\\frac{{{2 * v}}}{{2}}}}", f"${v}$"),
]


def make_batch(seed: int = 0) -> tuple[list[str], list[str], list[bool]]:
    rng = random.Random(seed)
    completions, solutions, adversarial = [], [], []
    for _ in range(64):
        value = rng.randint(10, 10_000_000)
        form = rng.choice(FORMS)
        _, gold = form(value)
        for _ in range(8):
            reasoning = " ".join(rng.choice(["we", "compute", "the", "sum", "then", "check", "carry", str(rng.randint(0, 99))])
                                 for _ in range(rng.randint(180, 330)))
            if rng.random() < 0.05:
                answer, bad = rng.choice(ADVERSARIAL), True
            else:
                answer, bad = form(value if rng.random() < 0.6 else value + 1)[0], False
            completions.append(f"<think>\n{reasoning}\n</think>\n\n{answer}")
            solutions.append(gold)
            adversarial.append(bad)
    return completions, solutions, adversarial


def main() -> None:
    import swift_ext.rewards  # noqa: F401  (registers ours)
    from swift.rewards import orms

    completions, solutions, adversarial = make_batch()
    chars = sum(map(len, completions)) / len(completions)
    ours = orms["math_accuracy"]()
    ours(completions[:8], solution=solutions[:8])  # start the worker pool (once per process)
    t = time.perf_counter()
    ours_scores = ours(completions, solution=solutions)
    ours_s = time.perf_counter() - t
    builtin = orms["accuracy"]()
    logging.disable(logging.ERROR)  # math-verify logs each of its timeouts with the whole expression
    t = time.perf_counter()
    builtin_scores = builtin(completions, solution=solutions)
    builtin_s = time.perf_counter() - t
    logging.disable(logging.NOTSET)
    clean = [i for i, bad in enumerate(adversarial) if not bad]
    missed = [i for i in clean if builtin_scores[i] == 1.0 and ours_scores[i] != 1.0]
    print(f"batch: {len(completions)} completions, {sum(adversarial)} adversarial, ~{chars:.0f} characters each")
    print(f"swift-ext math_accuracy   {ours_s:7.2f} s/batch   credited {sum(ours_scores):4.0f}   "
          f"{ours.last_stats.as_dict()}   {'PASS' if ours_s <= 3 else 'FAIL'} (<= 3 s)")
    print(f"ms-swift accuracy (built-in) {builtin_s:7.2f} s/batch   credited {sum(builtin_scores):4.0f}")
    print(f"speed-up: {builtin_s / ours_s:.0f}x; clean items the built-in credits that ours does not: {len(missed)}"
          f"; clean items only ours credits: {sum(1 for i in clean if ours_scores[i] == 1.0 and builtin_scores[i] != 1.0)}")


if __name__ == "__main__":
    main()
