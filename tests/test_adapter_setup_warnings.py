"""The adapter and resume warnings of msswift/adapter_setup_rules.py: new special tokens whose embedding and head rows
an adapter leaves frozen (ms-swift#5998), and resume_only_model without ignore_data_skip, which still restores the
checkpoint's global step (ms-swift#6084). Each fires on its report's recipe and stays quiet on the nearest setup that
trains the rows, starts at step 0, or is not the case."""

from __future__ import annotations

from conftest import FIXTURES
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

ISSUES = FIXTURES / "issues"
NEW_TOKENS = ISSUES / "ms-swift-5998-lora-new-special-tokens-frozen.yaml"
RESUME = ISSUES / "ms-swift-6084-resume-only-model-step.yaml"


def _warned(path, *overrides: str, code: str) -> set[str]:
    result = make_plan(load_recipe(path, list(overrides)), oracle=False)
    return {p.path for p in result.warnings if p.code == code}


def test_new_tokens_under_a_frozen_adapter():
    assert _warned(NEW_TOKENS, code="new-tokens-frozen") == {"args.new_special_tokens"}
    assert _warned(NEW_TOKENS, "args.tuner_type=longlora", code="new-tokens-frozen") == {"args.new_special_tokens"}


def test_new_tokens_quiet_when_the_rows_train():
    for overrides in (["args.modules_to_save=[all-embedding,lm_head]"], ["args.modules_to_save=[lm_head]"],
                      ["args.target_modules=[all-linear,all-embedding]"], ["args.tuner_type=full"],
                      ["args.new_special_tokens=null"], ["args.trainable_parameters=[model.embed_tokens]"]):
        assert _warned(NEW_TOKENS, *overrides, code="new-tokens-frozen") == set(), overrides


def test_new_tokens_quiet_when_a_saved_adapter_is_loaded():
    # the loaded adapter's own config decides what trains (its modules_to_save come with it)
    assert _warned(NEW_TOKENS, "args.adapters=[output/checkpoint-100]", code="new-tokens-frozen") == set()


def test_resume_only_model_restores_the_old_step():
    assert _warned(RESUME, code="resume-only-model-step") == {"args.resume_only_model"}


def test_resume_only_model_quiet_when_it_starts_fresh_or_truly_resumes():
    for overrides in (["args.ignore_data_skip=true"], ["args.resume_only_model=false"],
                      ["args.resume_from_checkpoint=null", "args.resume_only_model=false"]):
        assert _warned(RESUME, *overrides, code="resume-only-model-step") == set(), overrides


def test_resume_only_model_streaming_is_left_to_the_replay_rule():
    assert _warned(RESUME, "args.streaming=true", "args.max_steps=1000",
                   code="resume-only-model-step") == set()
