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
LONG_REASONING = "<think>\n" + "We try the next case and check the sum again. " * 400 + "\\boxed{999}\n</think>\n\n"
NOTES = " Note: the solution assumes the usual reading of the problem; other readings change nothing." * 40
CASES = [
    # (completion, solution, expected)
    (THINK + "The answer is \\boxed{13}.", "$13$", 1.0),
    (THINK + "The answer is \\boxed{14}.", "$13$", 0.0),
    ("<think>\n\n</think>\n\n\\boxed{\\frac{1}{2}}", "$0.5$", 1.0),
    ("First \\boxed{3}. " + "Checking again, that step dropped a term. " * 3 + "Corrected: \\boxed{4}", "$4$", 1.0),
    ("First \\boxed{4}. " + "Checking again, that step dropped a term. " * 3 + "Corrected: \\boxed{3}", "$4$", 0.0),
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
    ("", "$13$", 0.0),
    (None, "$13$", 0.0),
    (13, "$13$", 0.0),
]

# Several boxes of the final answer are one answer: a set, a list of tuples, a system of equations.
MULTI_PART = [
    (THINK + "So \\boxed{(1, 2)}, \\boxed{(2, 1)}, \\boxed{(3, 3)}.", "$(2,1),(1,2),(3,3)$", 1.0),
    (THINK + "\\boxed{k = 45} \\quad \\text{and} \\quad \\boxed{n = 2}", "$k = 45, n = 2$", 1.0),
    (THINK + "\\boxed{n = 2} \\quad \\text{and} \\quad \\boxed{k = 45}", "$k = 45, n = 2$", 1.0),  # any order
    (THINK + "\\boxed{1},\\boxed{2},\\boxed{3}", "$\\{1,2,3\\}$", 1.0),
    (THINK + "\\boxed{3}, \\boxed{1}, \\boxed{2}", "{1, 2, 3}", 1.0),  # a set written without $ or \\{
    (THINK + "The roots are $x_1 = \\boxed{\\frac{1+\\sqrt{5}}{2}}$ and $x_2 = \\boxed{\\frac{1-\\sqrt{5}}{2}}$.",
     "$x_{1}=\\frac{1+\\sqrt{5}}{2},\\quad x_{2}=\\frac{1-\\sqrt{5}}{2}$", 1.0),
    (THINK + "\\[\\boxed{1331} \\text{ and } \\boxed{1728}\\]", "1331 and 1728", 1.0),  # plain-text gold
    (THINK + "\\boxed{1728, 1331}", "1331 and 1728", 1.0),  # one box holding the list
    (THINK + "\\boxed{1728}", "$1331$ and $1728$", 1.0 * 0),
    (THINK + "- (a): \\boxed{12}\n- (b): \\boxed{7}", "12; 7", 1.0),  # a list of parts
    (THINK + "The answer is \\boxed{5}.\n\n**Final Answer**\n\\boxed{5}", "$5$", 1.0),  # restated: one answer
    ("<think>x</think>\\boxed{-2} \\quad \\text{and} \\quad \\boxed{1}.", "so the solutions are $n = \\boxed{1,-2}.$", 1.0),
    ("$\\boxed{1,2}$", "$\\boxed{1}\\boxed{2}$", 1.0),  # the gold's boxes are read the same way
    (THINK + "\\boxed{\\frac{1}{2}+\\frac{\\sqrt{5}}{2}} and \\boxed{\\frac{1}{2}-\\frac{\\sqrt{5}}{2}}",
     "x_{1}=\\frac{1+\\sqrt{5}}{2},\\quad x_{2}=\\frac{1-\\sqrt{5}}{2}", 1.0),  # equivalent forms, gold without $
    (THINK + "\\boxed{(0.5, 1)}, \\boxed{(1, 0.5)}", "$(\\frac12,1),(1,\\frac12)$", 1.0),
    (THINK + "\\boxed{2}, \\boxed{\\frac{6}{2}}", "$\\{2, 3\\}$", 1.0),
]

# Part of a set, more than the set, another interval end, half a union, one value against several.
STRICT = [
    ("The answer is \\boxed{1728}", "1331 and 1728", 0.0),  # Math-Verify issue #47
    (THINK + "\\boxed{1331}", "$1331, 1728$", 0.0),
    (THINK + "So \\boxed{(1, 2)}, \\boxed{(2, 1)}", "$(2,1),(1,2),(3,3)$", 0.0),  # proper subset
    (THINK + "\\boxed{1},\\boxed{2},\\boxed{3},\\boxed{4}", "$\\{1,2,3\\}$", 0.0),  # proper superset
    (THINK + "\\boxed{\\{1, 2, 3, 4\\}}", "$\\{1,2,3\\}$", 0.0),
    (THINK + "\\boxed{k = 45}", "$k = 45, n = 2$", 0.0),
    (THINK + "\\boxed{x = 3, y = 4}", "$x = 3$", 0.0),  # extra element
    (THINK + "\\boxed{3} and \\boxed{4}", "$4$", 0.0),  # two answers are not the last one
    (THINK + "\\boxed{\\frac{1}{2}, 0.5}", "$\\frac12$", 0.0),
    (THINK + "\\boxed{[0,1)}", "$[0,1]$", 0.0),  # interval ends
    (THINK + "\\boxed{(0,1]}", "$[0,1]$", 0.0),
    (THINK + "\\boxed{0, 1}", "$(0,1]$", 0.0),
    (THINK + "\\boxed{(-\\infty,0)}", "$(-\\infty,0)\\cup(1,\\infty)$", 0.0),  # half a union
    (THINK + "\\boxed{(1,\\infty)\\cup(-\\infty,0)}", "$(-\\infty,0)\\cup(1,\\infty)$", 1.0),
    (THINK + "\\boxed{5\\text{ m}}", "$5\\text{ cm}$", 0.0),  # units
    (THINK + "\\boxed{5\\text{ cm}}", "$5\\text{ cm}$", 1.0),
    (THINK + "\\boxed{125}", "$125$ miles", 1.0),
    (THINK + "\\boxed{15\\text{ cm}}", "$15\\mbox{ cm}^2$", 0.0),  # a length is not an area
    (THINK + "\\boxed{15\\text{ cm}^2}", "$15\\mbox{ cm}^2$", 1.0),
    (THINK + "\\boxed{125 \\text{ km}}", "$125$ miles", 0.0),
    (THINK + "\\boxed{50\\%}", "$50\\%$", 1.0),  # percentages
    (THINK + "\\boxed{0.5}", "$50\\%$", 1.0),
    (THINK + "\\boxed{5\\%}", "$50\\%$", 0.0),
    (THINK + "\\boxed{50}", "$0.5$", 0.0),
    (THINK + "\\boxed{2021}", "$\\pm 2021$", 0.0),
    (THINK + "\\boxed{\\text{Briana}}", "Evelyn", 0.0),  # plain-text golds
    (THINK + "\\boxed{\\text{Evelyn}}", "Evelyn", 1.0),
    (THINK + "\\boxed{32, 349}", "$32349$", 0.0),
    (THINK + "\\boxed{32{,}349}", "$32349$", 1.0),
    (THINK + "\\boxed{\\{1, 3\\}}", "$(1,3)$", 0.0),  # two numbers are not the interval
    (THINK + "\\boxed{(1, 3)}", "$(1,3)$", 1.0),
    (THINK + "\\boxed{-12}", "$-12$", 1.0),
    (THINK + "\\boxed{12}", "$-12$", 0.0),
]

# No fall-back that rewards the wrong thing.
FALLBACKS = [
    (THINK + "\\boxed{5} so far; then \\boxed{7", "$5$", 0.0),  # unterminated last box: no answer
    (THINK + "\\boxed{5", "$5$", 0.0),
    ("<think>\\boxed{13}</think>\n\nI am not sure.", "$13$", 0.0),  # a box in the reasoning block
    ("<think>the answer is \\boxed{13}", "$13$", 0.0),  # reasoning never closed: no answer part
    ("<think>\\boxed{13}</think>\n\n\\boxed{12}", "$13$", 0.0),
    (THINK + "\\fbox{13}", "$13$", 1.0),  # \\fbox reads like \\boxed
    (THINK + "\\fbox{12}", "$13$", 0.0),
    (THINK + "\\boxed{}", "$13$", 0.0),
    (THINK + "\\boxed{7}. I checked that the final answer is right.", "$7$", 1.0),  # not a restatement
    (THINK + "\\boxed{7}. So the final answer is $8$.", "$7$", 0.0),  # a restatement that corrects it
]

# A solved system's variable names, a named tuple prefix, `±` in the gold: the values are compared.
NAMED_AND_PM = [
    (THINK + "\\boxed{x = 1/2, x = -2}", "$\\frac12, -2$", 1.0),
    (THINK + "x = 1/2, x = -2", "1/2, -2", 1.0),  # plain text, last line
    (THINK + "So the solutions are $x = 1/2$ or $x = -2$.", "$1/2$ and $-2$", 1.0),
    (THINK + "\\boxed{x_1 = -2, \\quad x_2 = \\frac{1}{2}}", "1/2, -2", 1.0),  # any order, indexed names
    (THINK + "\\boxed{a = 4, -8, -10}", "4, -8, -10", 1.0),  # one name, several values
    (THINK + "\\boxed{x = 1/2, x = -2}", "$x = -2, x = 1/2$", 1.0),  # the gold names the same variable
    (THINK + "\\boxed{(x, y) = (5, 8) \\text{ and } (8, 5)}", "$(5,8), (8,5)$", 1.0),
    (THINK + "$(x, y) = \\boxed{(8, 5), (5, 8)}$", "$(5,8), (8,5)$", 1.0),  # a set of tuples: any order
    (THINK + "\\boxed{(x, y) = (5, 9)}", "$(5, 9)$", 1.0),
    (THINK + "\\boxed{3+\\sqrt{2}, 3-\\sqrt{2}}", "$3 \\pm \\sqrt{2}$", 1.0),
    (THINK + "\\boxed{3-\\sqrt{2}} and \\boxed{3+\\sqrt{2}}", "3 \\pm \\sqrt{2}", 1.0),
    (THINK + "\\boxed{x = 3+\\sqrt{2}, x = 3-\\sqrt{2}}", "$x = 3 \\pm \\sqrt{2}$", 1.0),
    (THINK + "\\boxed{\\frac{-1+\\sqrt{5}}{2}, \\frac{-1-\\sqrt{5}}{2}}", "$\\frac{-1 \\pm \\sqrt{5}}{2}$", 1.0),
    (THINK + "\\boxed{2, 4}", "$3 \\mp 1$", 1.0),
    (THINK + "\\boxed{1+i, 1-i}", "$1 ± i$", 1.0),
    (THINK + "\\boxed{2021, -2021}", "$\\pm 2021$", 1.0),
    (THINK + "\\boxed{\\pm 2021}", "$2021, -2021$", 1.0),  # a `±` in the answer states both values too
    (THINK + "So \\boxed{2} is wrong; the answer is \\boxed{5}", "$5$", 1.0),  # words between boxes
    (THINK + "First \\boxed{3}, then after checking \\boxed{1}, \\boxed{2}", "$\\{1, 2\\}$", 1.0),
    (THINK + "Hmm, \\boxed{4} does not work. We get $x = \\boxed{1}$ or $x = \\boxed{2}$.", "$1, 2$", 1.0),
]
NAMED_AND_PM_WRONG = [
    (THINK + "\\boxed{x = 1/2, x = 3}", "1/2, -2", 0.0),  # right name, wrong value
    (THINK + "x = 1/2, x = 2", "1/2, -2", 0.0),
    (THINK + "\\boxed{x = 1/2}", "1/2, -2", 0.0),  # subset
    (THINK + "\\boxed{x = 1/2, x = -2, x = 0}", "1/2, -2", 0.0),  # superset
    (THINK + "\\boxed{a = 4, -8}", "4, -8, -10", 0.0),
    (THINK + "\\boxed{a = 4, -8, 10}", "4, -8, -10", 0.0),
    (THINK + "\\boxed{y = 1/2, y = -2}", "$x = 1/2, x = -2$", 0.0),  # another variable than the gold's
    (THINK + "\\boxed{(x, y) = (8, 5)}", "$(5,8), (8,5)$", 0.0),  # subset of tuples
    (THINK + "\\boxed{(x, y) = (9, 5)}", "$(5, 9)$", 0.0),  # swapped components
    (THINK + "\\boxed{(x, y) = (2, 1), (4, 3)}", "$(1,2), (3,4)$", 0.0),
    (THINK + "\\boxed{(x, y) = (1, 2), (4, 3)}", "$(1,2), (3,4)$", 0.0),
    (THINK + "\\boxed{3+\\sqrt{2}}", "$3 \\pm \\sqrt{2}$", 0.0),  # half a ± pair
    (THINK + "\\boxed{3-\\sqrt{2}}", "$3 \\pm \\sqrt{2}$", 0.0),
    (THINK + "\\boxed{x = 3+\\sqrt{2}}", "$x = 3 \\pm \\sqrt{2}$", 0.0),
    (THINK + "\\boxed{\\frac{-1+\\sqrt{5}}{2}}", "$\\frac{-1 \\pm \\sqrt{5}}{2}$", 0.0),
    (THINK + "\\boxed{3+\\sqrt{2}, 3-\\sqrt{2}, 3}", "$3 \\pm \\sqrt{2}$", 0.0),  # superset
    (THINK + "\\boxed{3+\\sqrt{3}, 3-\\sqrt{3}}", "$3 \\pm \\sqrt{2}$", 0.0),
    (THINK + "\\boxed{3 \\pm \\sqrt{2}}", "$3 + \\sqrt{2}$", 0.0),  # two values against one
    (THINK + "\\boxed{5} is wrong; the answer is \\boxed{2}", "$5$", 0.0),  # only the last box counts
    (THINK + "\\boxed{1}, \\boxed{2} fail, so the answer is \\boxed{2}", "$\\{1, 2\\}$", 0.0),
    ("<think>So \\boxed{x = 1/2, x = -2}</think>\n\nI am not sure.", "1/2, -2", 0.0),  # in the reasoning
    ("<think>\\boxed{3+\\sqrt{2}, 3-\\sqrt{2}}</think>\n\n\\boxed{3+\\sqrt{2}}", "$3 \\pm \\sqrt{2}$", 0.0),
    (THINK + "We tried x = 1/2, x = -2 and then gave up.", "1/2, -2", 0.0),  # prose, not a final list
]

# Long, correct completions and long golds are not cut by the size caps.
LONG = [
    (LONG_REASONING + "The answer is \\boxed{42}.", "$42$", 1.0),
    (LONG_REASONING + "The answer is \\boxed{41}.", "$42$", 0.0),
    ("The area is $\\boxed{20\\%}$." + NOTES, "$20\\%$", 1.0),  # box, then pages of notes
    ("We get " + "$x = 2$ and so on. " * 150 + "Final Answer: The final answer is $10,455$. I hope it is correct."
     + NOTES, "$10455$", 1.0),
    ("so $0.04 \\cdot 10000 / 2 = \\boxed{200}$. " + "Then the second CD pays more. " * 10 + "$= \\boxed{255}$. "
     "Final Answer: The final answer is $10,455$. I hope it is correct.", "$10455$", 1.0),
    (THINK + "\\boxed{20}", "Let the share be $x$. " + "Solving the equations step by step gives it. " * 60
     + "So $x = 1/5$, or $\\boxed{20}$ percent.", 1.0),  # a worked solution as the gold
    (THINK + "\\boxed{21}", "Let the share be $x$. " + "Solving the equations step by step gives it. " * 60
     + "So $x = 1/5$, or $\\boxed{20}$ percent.", 0.0),
    (THINK + "\\boxed{" + " + ".join(["x"] * 300) + "}", "$300x$", 1.0),  # a long boxed expression
]


@pytest.mark.parametrize("table", ["CASES", "MULTI_PART", "STRICT", "FALLBACKS", "LONG", "NAMED_AND_PM",
                                   "NAMED_AND_PM_WRONG"])
def test_math_accuracy_table(orms, args, table, monkeypatch):
    # What is scored, not how fast: the GRPO deadline (2 s an item) is a speed bar, which a loaded CI machine misses
    # (the suite saw plain answers time out and score 0 at load 8); bench/bench_rewards.py measures the speed. The
    # shared pool gets the offline evaluation's patient deadline here, and no item may still run past it.
    from swift_ext.rewards import verifypool

    monkeypatch.setattr(verifypool.shared_pool(), "deadline_s", verifypool.OFFLINE_DEADLINE_S)
    rows = globals()[table]
    reward = orms["math_accuracy"](args=args)
    got = call(reward, [c for c, _, _ in rows], solution=[s for _, s, _ in rows])
    wrong = [(c if not isinstance(c, str) else c[-120:], s if len(s) < 120 else s[-120:], score)
             for (c, s, expected), score in zip(rows, got, strict=True) if score != expected]
    assert not wrong
    assert reward.last_stats.items == len(rows) and reward.last_stats.timeouts == 0


def test_counters(orms, args):
    reward = orms["math_accuracy"](args=args)
    completions = [THINK + "\\boxed{1}, \\boxed{2}", THINK + "\\boxed{3", "<think>open", THINK + "\\boxed{2}",
                   THINK + "\\boxed{9^{9^{9^{9}}}}", THINK + "\\boxed{4}", THINK + "\\boxed{5}"]
    solutions = ["$\\{1,2\\}$", "$3$", "$3$", "$1, 2$", "$3$", "]][[ \\frac{", None]
    assert call(reward, completions, solution=solutions) == [1.0] + [0.0] * 6
    stats = reward.last_stats.as_dict()
    assert stats["no_answer"] == 2  # unterminated box, unclosed reasoning block
    assert stats["guarded"] == 1  # the power tower was compared as text only
    assert stats["gold_unparsed"] == 2  # "]][[ \\frac{" and None: scored 0, counted, no exception
    assert stats["multi_part"] == 2  # several boxes; a gold with two parts
    assert reward.total.items == len(completions)


def test_an_unparseable_gold_is_reported_once_and_never_scores(orms, args, caplog):
    reward = orms["math_accuracy"](args=args)
    bad_gold = "]][[ \\frac{"
    for _ in range(3):
        assert call(reward, [THINK + "\\boxed{1}", bad_gold], solution=[bad_gold, bad_gold]) == [0.0, 0.0]
    warnings = [r for r in caplog.records if "cannot read this solution" in r.getMessage()]
    assert len(warnings) == 1 and bad_gold in warnings[0].getMessage()
    assert call(reward, [THINK + "\\boxed{]][[}"], solution=["]][["]) == [0.0]  # copied word for word: still 0


def test_counters_reach_the_trainer_metrics_through_the_callback(orms, args, caplog):
    from collections import defaultdict

    from swift.callbacks import callbacks_map

    from swift_ext.plugins import AUDIT_CALLBACK
    from swift_ext.rewards import audit

    assert callbacks_map[AUDIT_CALLBACK] is audit.RewardAuditCallback  # what --callbacks names
    reward = orms["math_accuracy"](args=args)
    # The attributes audit.attach reads on ms-swift's GRPO trainers (the slow e2e test runs the real one).
    trainer = SimpleNamespace(_metrics={"train": defaultdict(list), "eval": defaultdict(list)},
                              reward_funcs=[reward, orms["think_format"](args=args)],
                              reward_func_names=["MathAccuracyReward", "ThinkFormatReward"],
                              model=SimpleNamespace(training=True))
    assert audit.attach(trainer) == 1
    for step in (1, 2):
        call(reward, [THINK + "\\boxed{1}, \\boxed{2}", "<think>open"], solution=["$\\{1,2\\}$", "$1$"],
             trainer_state=SimpleNamespace(global_step=step))
    metrics = trainer._metrics["train"]
    assert metrics["rewards/MathAccuracyReward/multi_part"] == [1.0, 1.0]
    assert metrics["rewards/MathAccuracyReward/no_answer"] == [1.0, 1.0]
    assert metrics["rewards/MathAccuracyReward/timeouts"] == [0.0, 0.0]
    assert not trainer._metrics["eval"]
    assert not [r for r in caplog.records if r.getMessage().startswith("math_accuracy")]  # nothing logged


def test_without_the_callback_one_line_every_n_steps(orms, args, caplog, monkeypatch):
    import swift_ext.rewards as rewards

    monkeypatch.setattr(rewards, "LOG_EVERY_STEPS", 5)
    reward = orms["math_accuracy"](args=args)
    caplog.set_level("INFO")
    for step in range(1, 13):
        call(reward, [THINK + "\\boxed{1}"], solution=["$1$"], trainer_state=SimpleNamespace(global_step=step))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("math_accuracy")]
    assert [line.split(",")[0] for line in lines] == ["math_accuracy at step 1", "math_accuracy at step 6",
                                                      "math_accuracy at step 11"]
    assert "'items': 11" in lines[-1]  # run totals, not the last batch


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
    "".join(f"\\boxed{{{i}}}" for i in range(200_000)),  # 200k distinct boxes in a row: no answer, quickly
]


def _score_adversarial(reward):
    return call(reward, ADVERSARIAL, solution=["$3$"] * len(ADVERSARIAL))


def test_adversarial_inputs_are_bounded_on_the_main_thread(orms, args, monkeypatch):
    from swift_ext.rewards import verifypool

    # The patient deadline, as in test_math_accuracy_table: an input that reached sympy unscreened would still
    # run for minutes past it (and be counted); a loaded machine's slow but bounded items are not.
    monkeypatch.setattr(verifypool.shared_pool(), "deadline_s", verifypool.OFFLINE_DEADLINE_S)
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
    from swift_ext.rewards.verifypool import VerifyPool

    pool = VerifyPool(workers=1, deadline_s=0.5)
    try:
        warm, _ = pool.score([("$1$", "\\boxed{1}")])
        assert warm == [1.0]
        # Short, and sympy sums its ten million terms exactly: minutes. (score_math screens it out; the
        # pool itself is under test here.) A trig expression used before took 0.15 to 5 s from run to run.
        heavy = "\\boxed{\\sum_{k=1}^{10000000} \\frac{1}{k}}"
        scores, stats = pool.score([("$1$", heavy), ("$2$", "\\boxed{2}")])
        assert stats.timeouts == 1 and scores == [0.0, 1.0]
        again, stats = pool.score([("$5$", "\\boxed{5}")])  # the replacement worker serves the next batch
        assert again == [1.0] and stats.timeouts == 0
    finally:
        pool.close()


def test_a_worker_that_died_between_batches_is_replaced():
    from swift_ext.rewards.verifypool import OFFLINE_DEADLINE_S, VerifyPool

    pool = VerifyPool(workers=2, deadline_s=OFFLINE_DEADLINE_S)  # replacement, not speed, is under test
    try:
        assert pool.score([("$1$", "\\boxed{1}"), ("$2$", "\\boxed{3}")])[0] == [1.0, 0.0]
        for worker in pool._workers:  # e.g. the OOM killer
            worker.proc.kill()
            worker.proc.wait()
        scores, stats = pool.score([("$1$", "\\boxed{1}"), ("$2$", "\\boxed{2}"), ("$3$", "\\boxed{4}")])
        assert scores == [1.0, 1.0, 0.0] and stats.timeouts == 0
    finally:
        pool.close()


def test_gold_is_parsed_once_per_distinct_solution():
    from swift_ext.rewards.verifypool import VerifyPool

    pool = VerifyPool(workers=1)
    try:
        pairs = [("$7$", f"\\boxed{{{7 if i % 2 else 8}}}") for i in range(8)] + [("garbage ]][[ ", "\\boxed{1}")]
        scores, stats = pool.score(pairs)
        assert scores[:8] == [0.0, 1.0] * 4 and scores[8] == 0.0
        assert stats.gold_unparsed == 1 and stats.unparsed_golds == ["garbage ]][[ "]  # counted per item
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
    # The block ms-swift's qwen3_5 template prefixes to every completion when thinking is off: no reasoning.
    ("<think>\n\n</think>\n\nThe answer is 3.", 0.0),
    ("\n</think>\n\nThe answer is 3.", 0.0),
])
def test_think_format(orms, args, completion, expected):
    assert call(orms["think_format"](args=args), [completion]) == [expected]


def test_think_format_says_once_when_thinking_is_off(orms, args, caplog):
    reward = orms["think_format"](args=args)
    empty = ["<think>\n\n</think>\n\n jade pena", "<think>\n\n</think>\n\n要善于"]
    assert call(reward, empty) == [0.0, 0.0]
    assert call(reward, empty) == [0.0, 0.0]
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("think_format")]
    assert len(warnings) == 1 and "enable_thinking" in warnings[0]
    fresh = orms["think_format"](args=args)
    assert call(fresh, [THINK + "3", "<think>\n\n</think>\n\n3"]) == [1.0, 0.0]  # thinking on: no warning
    assert len([r for r in caplog.records if r.getMessage().startswith("think_format")]) == 1


def prompt(text):
    return [{"role": "user", "content": text}, {"role": "assistant", "content": "(the completion)"}]


@pytest.mark.parametrize("question, completion, expected", [
    ("Compute 50 - 37. Put the final answer in \\boxed{}.", "<think>\nfifty minus\n</think>\n\n\\boxed{13}", 1.0),
    ("Compute 50 - 37.", "<think>\nfifty 减去\n</think> \\boxed{13}", 5 / 7),  # 5 Latin letters, 2 Han
    ("Compute 50 - 37.", "<think>\n五十减去三十七\n</think> \\boxed{13}", 0.0),
    ("计算 50 减 37", "<think>\n五十减去三十七</think> \\boxed{13}", 1.0),  # LaTeX commands are no language
    ("50を37で引く", "ごじゅう 引く", 1.0),  # kana and kanji: one script family
    ("Вычислите 50 - 37", "Ответ: 13, ok", 5 / 7),
    ("Compute 50 - 37.", "\\boxed{13}", 1.0),  # text, no letters: nothing in another language
    ("Compute 50 - 37.", "", 0.0),
    ("Compute 50 - 37.", None, 0.0),
    ("50 - 37 = ?", "thirteen", 0.0),  # no letters in the prompt: no target
])
def test_language_consistency(orms, args, question, completion, expected):
    assert call(orms["language_consistency"](args=args), [completion], messages=[prompt(question)]) == \
        [pytest.approx(expected)]


def test_language_consistency_tells_random_completions_apart(orms, args):
    """What the tiny random model writes (tokens of every script): graded scores that differ within a group,
    so GRPO gets non-zero advantages from it where every 0/1 reward is 0."""
    group = ["<think>\n jade pena呼伦笙迎合 gelCraig有更现金流量 Именно到达了", "<think>\nekutif SubLObjectSubsystem название",
             "<think>\n要善于DataURL 샌 максималь日久 QVBoxLayout八路қты逃生", "<think>\n喜 chenHalf.lo twisted High不平"]
    question = "Compute 16 + 11. Put the final answer in \\boxed{}."
    scores = call(orms["language_consistency"](args=args), group, messages=[prompt(question)] * 4)
    assert len(set(scores)) == 4 and all(0.0 < s < 1.0 for s in scores)


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
    from swift_ext.planner.launch import build_launch
    from swift_ext.spec.recipe import load_recipe

    from conftest import RECIPES

    launch = build_launch(load_recipe(RECIPES / "smoke/tiny-grpo.yaml"))
    i = launch.argv.index("--external_plugins")
    assert launch.argv[i + 1] == str(REWARD_PLUGIN) and REWARD_PLUGIN.is_file()
    assert launch.argv[launch.argv.index("--callbacks") + 1] == "swift_ext_reward_audit"  # math_accuracy's counters
    plain = build_launch(load_recipe(RECIPES / "qwen3_6/grpo-lora-8gpu.yaml"))
    assert "--external_plugins" not in plain.argv  # only the built-in accuracy: nothing to add
    assert "--callbacks" not in plain.argv


@pytest.mark.slow
def test_tiny_grpo_recipe_learns(tiny_grpo_run):
    """`make rlhf`'s recipe, for real (conftest's shared run: the recipe's batch, generations and lengths,
    without ms-swift's evaluation, whose generations on the val split would double the run and prove nothing
    here): within a prompt's group the rewards differ (language_consistency on the random model's
    mixed-script tokens), so advantages, loss and gradient are not all zero, and `report` does not call
    every group zero-std."""
    import json

    from conftest import new_report

    out, result = tiny_grpo_run.out, tiny_grpo_run.result
    assert result.returncode == 0, result.stderr[-3000:]
    (log,) = out.glob("v*/logging.jsonl")
    rows = [r for r in map(json.loads, log.read_text().splitlines()) if "reward_std" in r]
    assert rows and any(r["reward_std"] > 0 and r["frac_reward_zero_std"] < 1 for r in rows), rows
    assert any(r["loss"] != 0 or r["grad_norm"] != 0 for r in rows), rows
    (completions,) = out.glob("v*/completions.jsonl")
    groups = [json.loads(line) for line in completions.read_text().splitlines()]
    assert any(len(set(g["advantages"])) > 1 for g in groups)
    # Thinking is on: what ms-swift scores starts with the template's `<think>\n`, not its empty block.
    assert all(g["completion"][0].startswith("<think>\n") for g in groups)
    summary = (new_report(out) / "summary.md").read_text()
    assert "prompt groups with zero reward std" in summary  # the line is there ...
    assert "have zero reward std" not in summary  # ... the warning is not
