"""best-metric (planner/best_metric_rules.py): metric_for_best_model naming a metric the evaluation never computes."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

RECIPE = FIXTURES / "issues" / "ms-swift-4323-metric-for-best-model-epoch.yaml"


def refused(*overrides: str) -> set[str]:
    result = make_plan(load_recipe(RECIPE, list(overrides)), oracle=False)
    return {e.path for e in result.errors if e.code == "best-metric"}


def test_a_progress_entry_never_becomes_an_eval_metric():
    assert refused() == {"args.metric_for_best_model"}  # epoch -> eval_epoch (ms-swift#4323)
    assert refused("args.metric_for_best_model=eval_epoch") == {"args.metric_for_best_model"}
    assert refused("args.metric_for_best_model=loss") == set()
    assert refused("args.metric_for_best_model=token_acc") == set()
    assert refused("args.metric_for_best_model=my_plugin_score") == set()  # not a name ms-swift computes elsewhere


def test_rouge_needs_eval_metric_nlg():
    assert refused("args.metric_for_best_model=rouge-l") == {"args.metric_for_best_model"}
    # predict_with_generate on a causal LM: SftArguments._init_metric resolves eval_metric nlg
    assert refused("args.metric_for_best_model=rouge-l", "args.predict_with_generate=true") == set()
    assert refused("args.metric_for_best_model=eval_bleu-4", "args.eval_metric=nlg") == set()
    # unset with predict_with_generate: ms-swift's default rouge-l, which eval_metric acc does not compute
    assert refused("args.metric_for_best_model=null", "args.predict_with_generate=true") == set()
    assert refused("args.metric_for_best_model=null", "args.predict_with_generate=true",
                   "args.eval_metric=acc") == {"args.eval_metric"}


def test_no_loss_when_the_evaluation_generates():
    assert refused("args.metric_for_best_model=loss", "args.predict_with_generate=true") == {"args.metric_for_best_model"}
    assert refused("args.metric_for_best_model=reward") == {"args.metric_for_best_model"}  # GRPO only


def test_a_run_that_never_evaluates_is_not_judged():
    assert refused("args.split_dataset_ratio=0") == set()  # no validation set: eval_strategy becomes 'no'
    assert refused("args.eval_strategy=no") == set()
    assert refused("args.eval_use_evalscope=true") == set()  # EvalScope adds its own metrics


def test_the_nlg_keys_are_ms_swifts():
    # jieba/rouge (ms-swift's eval extras) are not installed here to run compute_rouge_bleu: read its key list instead
    import inspect

    import pytest

    nlg = pytest.importorskip("swift.metrics.nlg")
    from swift_ext.planner.best_metric_rules import NLG_KEYS

    assert repr(list(NLG_KEYS)) in inspect.getsource(nlg.compute_rouge_bleu)
