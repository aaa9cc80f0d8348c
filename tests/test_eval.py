"""Evaluation during training (swift_ext/after/evaluate.py, evalmetrics.py): the recipe's `eval:` section,
pass@k, best, idempotence; the slow tests train the tiny model for real with the follower next to it."""

from __future__ import annotations

import json
import math

import pytest

from conftest import RECIPES, new_report, swift_ext
from swift_ext.after import evalmetrics as em
from swift_ext.after import evaluate as ev
from swift_ext.spec.findings import UserError
from swift_ext.spec.recipe import Eval, load_recipe


def test_pass_at_k_by_hand():
    # n=4 samples, c=1 correct: pass@1 = 1/4; pass@2 = 1 - C(3,2)/C(4,2) = 1 - 3/6; pass@4 = 1
    assert em.pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert em.pass_at_k(4, 1, 2) == pytest.approx(0.5)
    assert em.pass_at_k(4, 1, 4) == 1.0
    assert em.pass_at_k(5, 0, 3) == 0.0
    assert em.pass_at_k(10, 3, 2) == pytest.approx(1 - math.comb(7, 2) / math.comb(10, 2))  # 1 - 21/45
    assert em.ks_for(4) == [1, 2, 4] and em.ks_for(6) == [1, 2, 4, 6] and em.ks_for(1) == [1]
    # two rows of 2 samples: row A 1 of 2 correct, row B 0 of 2; pass@1 = (0.5 + 0) / 2, pass@2 = (1 + 0) / 2
    assert em.pass_at_ks([1.0, 0.0, 0.0, 0.0], 2) == {"pass@1": 0.25, "pass@2": 0.5}


def test_scores_samples_against_the_rows_they_repeat():
    golds = [{"messages": [{"role": "user", "content": "1+1"}], "solution": "$2$"},
             {"messages": [{"role": "user", "content": "2+2"}], "solution": "$4$"}]
    results = [{"response": r} for r in (r"\boxed{2}", r"\boxed{3}", r"\boxed{5}", r"\boxed{4}")]
    summary, per = em.score_samples(results, golds, 2, 16, None, ["math_accuracy"])
    assert summary["math_accuracy"] == 0.5 and summary["pass@1"] == 0.5 and summary["pass@2"] == 1.0
    assert summary["math_timeouts"] == 0  # reported beside the accuracy, so a slow machine cannot hide in it
    assert [(p["row"], p["sample"], p["math_accuracy"]) for p in per] == [(0, 0, 1.0), (0, 1, 0.0), (1, 0, 0.0),
                                                                           (1, 1, 1.0)]
    # a killed `swift infer`: the missing samples are unscored, not wrong
    summary, _ = em.score_samples(results[:3], golds, 2, 16, None, None)
    assert summary["unscored"] == 1 and summary["math_accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert summary["pass@2"] == 1.0  # only the complete row counts


def test_a_reward_function_is_a_metric():
    golds = [{"messages": [], "solution": "$2$"}]
    summary, _ = em.score_samples([{"response": "<think>\nok\n</think>\n\n\\boxed{2}"}], golds, 1, 16, None,
                                  ["think_format", "boxed_format"])
    assert summary["think_format"] == 1.0 and summary["boxed_format"] == 1.0
    with pytest.raises(UserError, match="unknown evaluation metric 'acuracy'"):
        em.check_metric_names(["acuracy"], {"file": "x"})


def test_recipe_eval_section_and_overrides(tmp_path):
    rec = load_recipe(RECIPES / "smoke/tiny-sft.yaml", ["eval.every=2", "eval.launch.gpus=0", "eval.num_samples=4"])
    assert rec.eval == Eval(every=2, num_samples=4, launch={"gpus": 0})
    assert load_recipe(RECIPES / "smoke/tiny-sft.yaml").eval is None
    assert "eval" not in load_recipe(RECIPES / "smoke/tiny-sft.yaml").to_yaml_dict()  # a resolved copy stays off
    on = tmp_path / "on.yaml"
    on.write_text(f"extends: {RECIPES / 'smoke/tiny-sft.yaml'}\neval:\n")
    assert load_recipe(on).eval == Eval()
    bad = swift_ext("plan", RECIPES / "smoke/tiny-sft.yaml", "eval.evry=2")
    assert bad.returncode == 2 and "did you mean 'eval.every'" in bad.stderr and "Traceback" not in bad.stderr
    bad = swift_ext("plan", RECIPES / "smoke/tiny-sft.yaml", "eval.backend=sglang")
    assert bad.returncode == 2 and "eval.backend" in bad.stderr
    schema = swift_ext("schema")
    assert "eval.num_samples:" in schema.stdout and "eval.launch.time:" in schema.stdout


def _fake_run(tmp_path, steps=(2, 4, 6)):
    root = tmp_path / "run"
    version = root / "v0-20260101-000000"
    version.mkdir(parents=True)
    (version / "args.json").write_text(json.dumps({"model": "some/model", "tuner_type": "lora"}))
    for step in steps:
        ckpt = version / f"checkpoint-{step}"
        ckpt.mkdir()
        (ckpt / "args.json").write_text(json.dumps({"model": "some/model", "tuner_type": "lora"}))
        (ckpt / "trainer_state.json").write_text("{}")
    (version / "checkpoint-8").mkdir()  # a save still being written: no trainer_state.json
    (version / "checkpoint-8" / "args.json").write_text("{}")
    return root


def test_targets_every_nth_last_and_nothing_twice(tmp_path):
    root = _fake_run(tmp_path)
    assert ev.run_root(root / "v0-20260101-000000" / "checkpoint-2") == root
    assert [t.step for t in ev.targets(root, Eval(every=2), final=False)] == [0, 4]
    assert [t.step for t in ev.targets(root, Eval(every=2), final=True)] == [0, 4, 6]  # the last one always
    for step in (0, 4):
        em.append_line(ev.eval_dir(root), {"step": step, "checkpoint": "x", "acc": 0.5})
    assert [t.step for t in ev.targets(root, Eval(every=2), final=True)] == [6]
    assert ev.targets(root, Eval(), final=True, only=root / "v0-20260101-000000" / "checkpoint-4") == []


def test_best_checkpoint(tmp_path):
    root = _fake_run(tmp_path)
    for step, acc, tokens in ((0, 0.9, 10), (2, 0.4, 30), (4, 0.7, 20), (6, 0.7, 25)):
        em.append_line(ev.eval_dir(root), {"step": step, "checkpoint": f"ckpt-{step}", "acc": acc,
                                           "response_tokens": tokens})
    assert em.best(ev.eval_dir(root), "acc")["step"] == 4  # base (step 0) is no candidate; ties: earlier
    assert em.best(ev.eval_dir(root), "response_tokens")["step"] == 4  # lower is better for lengths
    assert em.best(ev.eval_dir(root), "acc", lower=True)["step"] == 2
    out = swift_ext("best", root, "--metric", "acc")
    assert out.returncode == 0 and out.stdout.strip() == "ckpt-4"
    out = swift_ext("best", root, "--metric", "accuracy")
    assert out.returncode == 2 and "no checkpoint has a numeric 'accuracy'" in out.stderr and "acc" in out.stderr


def test_eval_of_a_run_without_validation_rows_says_so(tmp_path):
    root = _fake_run(tmp_path, steps=(2,))
    result = swift_ext("eval", root, "--checkpoint", root / "v0-20260101-000000" / "checkpoint-2")
    assert result.returncode == 1 and "no validation split" in result.stderr and "Traceback" not in result.stderr
    assert not (root / "eval" / "metrics.jsonl").exists()


@pytest.mark.slow
def test_sft_run_evaluates_each_checkpoint(tiny_sft_run):
    """conftest's shared SFT run: 8 steps, saves at 4 and 8, `eval.every: 1` on 4 rows."""
    out, result = tiny_sft_run.out, tiny_sft_run.result
    assert result.returncode == 0, result.stderr[-3000:]
    lines = em.read_lines(out / "eval")
    assert [r["step"] for r in lines] == [0, 4, 8], (out / "eval" / "follow.log").read_text()[-3000:]
    for r in lines:
        assert r["rows"] == 4 and r["unscored"] == 0 and r["infer_exit_code"] == 0
        assert all(isinstance(r[k], (int, float)) for k in ("exact_match", "response_tokens", "hit_token_limit",
                                                            "think_block"))
        assert len((out / "eval" / f"step-{r['step']}.jsonl").read_text().splitlines()) == 4
    before = (out / "eval" / "metrics.jsonl").read_text()
    again = swift_ext("eval", out)
    assert again.returncode == 0 and "nothing to evaluate" in again.stdout
    assert (out / "eval" / "metrics.jsonl").read_text() == before
    report_dir = new_report(out)
    assert (report_dir / "eval.png").stat().st_size > 1000
    assert "Evaluation during training" in (report_dir / "summary.md").read_text()
    best = swift_ext("best", out, "--metric", "response_tokens")
    assert best.returncode == 0 and best.stdout.strip() in {r["checkpoint"] for r in lines[1:]}


@pytest.mark.slow
def test_grpo_run_evaluates_pass_at_k(tiny_grpo_run):
    """conftest's shared GRPO run: two steps, one save (step 2); swift-ext's follower evaluates 2 val rows x
    2 samples per checkpoint and the base, while ms-swift's own evaluation of val_dataset is off."""
    out, result = tiny_grpo_run.out, tiny_grpo_run.result
    assert result.returncode == 0, result.stderr[-3000:]
    lines = em.read_lines(out / "eval")
    assert [r["step"] for r in lines] == [0, 2], (out / "eval" / "follow.log").read_text()[-3000:]
    for r in lines:
        assert r["rows"] == 2 and r["samples"] == 2 and r["unscored"] == 0
        assert 0 <= r["pass@1"] <= r["pass@2"] <= 1 and r["pass@1"] == r["math_accuracy"]
        assert len((out / "eval" / f"step-{r['step']}.jsonl").read_text().splitlines()) == 4
