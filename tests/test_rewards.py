"""swift-ext's GRPO rewards, loaded into ms-swift's registry exactly as --external_plugins does."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

from swift_ext.plugins import REWARD_NAMES, REWARD_PLUGIN


@pytest.fixture(scope="module")
def orms():
    from swift.rewards import orms
    from swift.utils import import_external_file

    import_external_file(str(REWARD_PLUGIN))  # what ms-swift does for each --external_plugins file
    return orms


@pytest.fixture(scope="module")
def args():
    # The fields of ms-swift's GRPO arguments these rewards read.
    return SimpleNamespace(max_completion_length=100, soft_cache_length=20, repetition_n_grams=3,
                           repetition_max_penalty=-1.0)


def call(reward, completions, **columns):
    """The way the GRPO trainer calls a reward: completions plus every dataset column as a list."""
    n = len(completions)
    kwargs = {"messages": [[{"role": "user", "content": "q"}]] * n, "trainer_state": SimpleNamespace(global_step=1),
              **columns}
    return reward(completions, **kwargs)


def test_registered_names_match_the_light_list(orms):
    import swift_ext.rewards as rewards

    assert set(rewards.REWARDS) | {"math_accuracy_async"} == set(REWARD_NAMES)
    assert all(name in orms for name in REWARD_NAMES)


THINK = "<think>\nLet me compute.\n</think>\n\n"
CASES = [
    # (completion, solution, expected)
    (THINK + "The answer is \\boxed{13}.", "$13$", 1.0),
    (THINK + "The answer is \\boxed{14}.", "$13$", 0.0),
    ("<think>\n\n</think>\n\n\\boxed{\\frac{1}{2}}", "$0.5$", 1.0),
    ("First \\boxed{3} then corrected: \\boxed{4}", "$4$", 1.0),  # the last box counts
    ("First \\boxed{4} then corrected: \\boxed{3}", "$4$", 0.0),
    ("<answer>42</answer>", "$42$", 1.0),
    ("<answer>41</answer>", "$42$", 0.0),
    ("The total is 7,425,000.", "$7425000$", 1.0),  # thousands separators
    ("The total is 7,425,001.", "$7425000$", 0.0),
    ("So the answer is 1/2", "$\\frac{1}{2}$", 1.0),  # plain fraction
    ("Therefore $x=3$.", "$3$", 1.0),  # an equation
    ("Therefore $x=4$.", "$3$", 0.0),
    ("The answer is 50%", "$50\\%$", 1.0),  # percentage
    ("The solutions are $\\{1, 2\\}$", "$\\{1,2\\}$", 1.0),  # sets
    ("The solutions are $\\{1, 3\\}$", "$\\{1,2\\}$", 0.0),
    ("The interval is $(0, 1]$", "$(0,1]$", 1.0),  # intervals
    ("The interval is $[0, 1]$", "$(0,1]$", 0.0),
    ("\\boxed{\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}}", "$\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}$", 1.0),
    ("\\boxed{\\begin{pmatrix}1&2\\\\3&5\\end{pmatrix}}", "$\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}$", 0.0),
    ("The final answer is 12.5", "$\\frac{25}{2}$", 1.0),
    ("Answer: 3,5", "$3.5$", 1.0),  # decimal comma
    ("<think>the answer is \\boxed{13}", "$13$", 0.0),  # reasoning never closed: no answer part
    ("<think>\\boxed{13}</think>\n\nI am not sure.", "$13$", 0.0),  # only text after </think> counts
    ("\\boxed{13", "$13$", 0.0),  # unbalanced box
    ("", "$13$", 0.0),
    ("\\boxed{13}", "", 0.0),
    ("\\boxed{13}", None, 0.0),
    (None, "$13$", 0.0),
    (13, "$13$", 0.0),
    ("\\boxed{13}", 13, 0.0),
]


def test_math_accuracy_table(orms, args):
    reward = orms["math_accuracy"](args=args)
    completions = [c for c, _, _ in CASES]
    got = call(reward, completions, solution=[s for _, s, _ in CASES])
    for (completion, solution, expected), score in zip(CASES, got):
        assert score == expected, (completion, solution, score)
    assert reward.last_stats.items == len(CASES)


ADVERSARIAL = [
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{(10^6)!}",
    "\\boxed{" + "{" * 10000 + "1" + "}" * 10000 + "}",
    "x" * 2_000_000 + " \\boxed{3}",
    "\\boxed{1\x002}",
    "\\boxed{\ud800\udfff 3}",
    "\\boxed{2^{100000}}",
    "\\boxed{" + "9" * 5000 + "}",
    "\\boxed{\\prod_{k=1}^{1000000} k}",
]


def _score_adversarial(reward):
    return call(reward, ADVERSARIAL, solution=["$3$"] * len(ADVERSARIAL))


def test_adversarial_inputs_are_bounded_on_the_main_thread(orms, args):
    reward = orms["math_accuracy"](args=args)
    started = time.monotonic()
    scores = _score_adversarial(reward)
    assert len(scores) == len(ADVERSARIAL) and all(s in (0.0, 1.0) for s in scores)
    assert scores[3] == 1.0  # a huge completion still has its final answer read
    # Nothing waits for sympy: every item finishes within its deadline (no timeouts needed here).
    assert reward.last_stats.timeouts == 0
    assert time.monotonic() - started < 60  # a hang would be minutes (built-in: 5 s per item, in sequence)


def test_adversarial_inputs_are_bounded_off_the_main_thread(orms, args):
    reward = orms["math_accuracy"](args=args)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("scores", _score_adversarial(reward)))
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive() and len(result["scores"]) == len(ADVERSARIAL)


def test_async_variant(orms, args):
    reward = orms["math_accuracy_async"](args=args)
    scores = asyncio.run(reward(["\\boxed{13}", "\\boxed{12}"], solution=["$13$", "$13$"]))
    assert scores == [1.0, 0.0]


def test_a_hung_worker_is_killed_replaced_and_counted():
    from swift_ext.verifypool import VerifyPool

    pool = VerifyPool(workers=1, deadline_s=0.5)
    try:
        warm, _ = pool.score([("$1$", "\\boxed{1}")])
        assert warm == [1.0]
        # Short and harmless-looking, but sympy's equivalence check against 1 takes ~5 s.
        heavy = "\\boxed{\\sin(1)^{20}+\\cos(1)^{20}+\\tan(1)^{20}}"
        scores, stats = pool.score([("$1$", heavy), ("$2$", "\\boxed{2}")])
        assert stats.timeouts == 1 and scores == [0.0, 1.0]
        again, stats = pool.score([("$5$", "\\boxed{5}")])  # the replacement worker serves the next batch
        assert again == [1.0] and stats.timeouts == 0
    finally:
        pool.close()


def test_gold_is_parsed_once_per_distinct_solution():
    from swift_ext.verifypool import VerifyPool

    pool = VerifyPool(workers=1)
    try:
        pairs = [("$7$", f"\\boxed{{{7 if i % 2 else 8}}}") for i in range(8)] + [("garbage ]][[", "\\boxed{1}")]
        scores, stats = pool.score(pairs)
        assert scores[:8] == [0.0, 1.0] * 4 and scores[8] == 0.0
        assert stats.parse_failures >= 1  # the unparseable gold, reported once for its group
    finally:
        pool.close()


@pytest.mark.parametrize("completion, expected", [
    ("<think>\nreasoning\n</think>\n\nThe answer is 3.", 1.0),
    ("reasoning\n</think>\n\nThe answer is 3.", 1.0),  # the prompt ended with <think>\n
    ("<think>\nreasoning\n</think>\n\n", 0.0),  # no answer
    ("<think>a</think><think>b</think> 3", 0.0),  # two blocks
    ("The answer is 3.", 0.0),  # no block
    ("x <think>a</think> 3", 0.0),  # block not at the start
    ("</think> 3 <think>", 0.0),
    (None, 0.0),
])
def test_think_format(orms, args, completion, expected):
    assert call(orms["think_format"](args=args), [completion]) == [expected]


@pytest.mark.parametrize("completion, expected", [
    ("so \\boxed{3}", 1.0),
    ("<think>\\boxed{1}</think> so \\boxed{3}", 1.0),  # only the answer part counts
    ("\\boxed{3} and \\boxed{4}", 0.0),
    ("\\boxed{3", 0.0),
    ("\\boxed{\\frac{1}{2}}", 1.0),
    ("no box", 0.0),
    (b"\\boxed{3}", 0.0),
])
def test_boxed_format(orms, args, completion, expected):
    assert call(orms["boxed_format"](args=args), [completion]) == [expected]


def test_overlong_penalty_reads_args(orms, args):
    reward = orms["overlong_penalty"](args=args)  # L_max 100, cache 20: free up to 80 tokens
    ids = [[1] * 50, [1] * 80, [1] * 90, [1] * 100, [1] * 101]
    assert call(reward, ["x"] * 5, response_token_ids=ids) == [0.0, 0.0, -0.5, -1.0, -1.0]
    default = orms["overlong_penalty"](args=SimpleNamespace(max_completion_length=1000))
    assert default.cache_length == 200


def test_ngram_repetition(orms, args):
    reward = orms["ngram_repetition"](args=args)
    fresh = " ".join(f"w{i}" for i in range(50))
    looped = " ".join(["the cat sat"] * 20)
    scores = call(reward, [fresh, looped, "", None, "a b"])
    assert scores[0] == 0.0 and -1.0 < scores[1] < -0.9 and scores[2:] == [0.0, 0.0, 0.0]
    big = " ".join(["spam eggs ham"] * 200_000)  # 600k words, one pass
    assert call(reward, [big])[0] < -0.99


def test_recipe_expansion_adds_the_plugin(tmp_path):
    from swift_ext.launch import build_launch
    from swift_ext.recipe import load_recipe

    from conftest import RECIPES

    launch = build_launch(load_recipe(RECIPES / "smoke/tiny-grpo.yaml"))
    i = launch.argv.index("--external_plugins")
    assert launch.argv[i + 1] == str(REWARD_PLUGIN) and REWARD_PLUGIN.is_file()
    plain = build_launch(load_recipe(RECIPES / "qwen3_6/grpo-lora-8gpu.yaml"))
    assert "--external_plugins" not in plain.argv  # only the built-in accuracy: nothing to add
