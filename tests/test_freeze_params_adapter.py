"""freeze-params-adapter (swift_ext/msswift/input_rules.py): both engines apply freeze_parameters* and
trainable_parameters* to full training only, so under LoRA they change nothing. Said for each engine, not said for
full training, for an empty value, or for the LoRA way of training whole modules (modules_to_save)."""

from __future__ import annotations

import pytest

from test_msrules import MEG_SFT, SWIFT_SFT, problems

CODE = "freeze-params-adapter"


@pytest.mark.parametrize("base, given, flag", [
    (MEG_SFT, ["args.trainable_parameters=[output_layer]"], "trainable_parameters"),  # MEG_SFT is a LoRA run
    (MEG_SFT, ["args.freeze_parameters_regex=.*layers\\.0\\..*"], "freeze_parameters_regex"),
    (SWIFT_SFT, ["args.tuner_type=lora", "args.trainable_parameters=[lm_head]"], "trainable_parameters"),
    (SWIFT_SFT, ["args.tuner_type=lora", "args.freeze_parameters_ratio=0.5"], "freeze_parameters_ratio"),
    (MEG_SFT, ["args.tuner_type=full", "args.adapters=out/checkpoint-100", "args.trainable_parameters=[output_layer]"],
     "trainable_parameters"),  # Megatron turns full into lora when adapters are given
])
def test_said_under_an_adapter(base, given, flag):
    errors, warnings = problems(base, *given)
    assert (CODE, f"args.{flag}") in warnings, warnings
    assert CODE not in {r for r, _ in errors}


@pytest.mark.parametrize("base, given", [
    (MEG_SFT, ["args.tuner_type=full", "args.trainable_parameters=[output_layer]"]),
    (SWIFT_SFT, ["args.tuner_type=full", "args.freeze_parameters_ratio=0.5"]),
    (SWIFT_SFT, ["args.tuner_type=lora", "args.freeze_parameters_ratio=0"]),
    (SWIFT_SFT, ["args.tuner_type=lora", "args.modules_to_save=[lm_head]"]),
])
def test_not_said_where_they_apply_or_ask_nothing(base, given):
    errors, warnings = problems(base, *given)
    assert CODE not in {r for r, _ in errors | warnings}, warnings


def test_the_installed_ms_swift_applies_them_to_full_training_only():
    from swift_ext.msswift.schema import _package_dir

    root = _package_dir("swift")
    if root is None:
        pytest.skip("ms-swift is not installed here")
    tuner = (root / "pipelines/train/tuner.py").read_text(encoding="utf-8")
    full = tuner[tuner.index("elif args.tuner_type == 'full':"):]
    assert tuner.count("activate_parameters(model") == 1 and "activate_parameters(model" in full[:600]
    mcore = (root / "megatron/utils/utils.py").read_text(encoding="utf-8")
    prep = mcore[mcore.index("def prepare_mcore_model"):]
    prep = prep[:prep.index("\ndef ", 10)]
    assert prep.index("activate_parameters") < prep.index("elif args.tuner_type in {'lora', 'lora_llm'}")
