"""megatron-callbacks (swift_ext/msswift/startup_rules_megatron.py): Megatron-SWIFT builds each report_to / callbacks
entry from megatron_callbacks_map and raises KeyError for a name it lacks -- transformers' `none`, `all`, `mlflow`.
A refused recipe, the passing one beside it, the plugin that registers the name, and the map read from the installed
ms-swift."""

from __future__ import annotations

import pytest

from test_msrules import MEG_SFT, SWIFT_SFT, problems

CODE = "megatron-callbacks"


@pytest.mark.parametrize("bad, flag", [
    (["args.report_to=none"], "report_to"),
    (["args.report_to=[tensorboard, mlflow]"], "report_to"),
    (["args.callbacks=early_stop"], "callbacks"),
])
def test_a_callback_megatron_swift_lacks_is_refused(bad, flag):
    errors, _ = problems(MEG_SFT, *bad)
    assert (CODE, f"args.{flag}") in errors, errors


@pytest.mark.parametrize("good", [[], ["args.report_to=[tensorboard, wandb]"], ["args.report_to=swanlab"]])
def test_the_callbacks_megatron_swift_has_pass(good):
    errors, warnings = problems(MEG_SFT, *good)
    assert CODE not in {r for r, _ in errors | warnings}, (errors, warnings)


def test_transformers_engine_takes_report_to_none():
    errors, warnings = problems(SWIFT_SFT, "args.report_to=none")
    assert CODE not in {r for r, _ in errors | warnings}


def test_a_plugin_that_registers_the_callback_passes_and_an_unreadable_one_is_only_said(tmp_path):
    plugin = tmp_path / "mlflow_plugin.py"
    plugin.write_text("from swift.megatron.callbacks import megatron_callbacks_map\n"
                      "class MlflowCallback:\n    def __init__(self, trainer):\n        pass\n"
                      "megatron_callbacks_map['mlflow'] = MlflowCallback\n")
    errors, warnings = problems(MEG_SFT, "args.report_to=mlflow", f"args.external_plugins={plugin}")
    assert CODE not in {r for r, _ in errors | warnings}, (errors, warnings)
    computed = tmp_path / "computed_plugin.py"
    computed.write_text("from swift.megatron.callbacks import megatron_callbacks_map\n"
                        "NAME = 'ml' + 'flow'\nmegatron_callbacks_map[NAME] = object\n")
    errors, warnings = problems(MEG_SFT, "args.report_to=mlflow", f"args.external_plugins={computed}")
    assert CODE not in {r for r, _ in errors} and (CODE, "args.report_to") in warnings, (errors, warnings)


def test_the_map_is_read_from_the_installed_ms_swift():
    from swift_ext.msswift.plugin_registry import builtin_names

    names = builtin_names("megatron/callbacks/mapping.py", "megatron_callbacks_map")
    if names is None:
        pytest.skip("ms-swift is not installed here")
    assert names == {"print", "default_flow", "swanlab", "wandb", "tensorboard"}


# tracker-unused (swift_ext/msswift/startup_rules.py): tracker settings without the tracker in report_to log nowhere.
@pytest.mark.parametrize("base, given, flag", [
    (MEG_SFT, ["args.wandb_project=llm101"], "wandb_project"),  # report_to defaults to [tensorboard]
    (MEG_SFT, ["args.report_to=[wandb]", "args.swanlab_exp_name=run1"], "swanlab_exp_name"),
    (SWIFT_SFT, ["args.swanlab_project=demo"], "swanlab_project"),
])
def test_tracker_settings_without_the_tracker_are_said(base, given, flag):
    errors, warnings = problems(base, *given)
    assert ("tracker-unused", f"args.{flag}") in warnings, warnings
    assert "tracker-unused" not in {r for r, _ in errors}


@pytest.mark.parametrize("base, given", [
    (MEG_SFT, ["args.wandb_project=llm101", "args.report_to=[tensorboard, wandb]"]),
    (MEG_SFT, ["args.swanlab_project=demo", "args.report_to=swanlab"]),
    (SWIFT_SFT, ["args.swanlab_project=demo", "args.report_to=[swanlab]"]),
    (MEG_SFT, ["args.report_to=[wandb]"]),  # the defaults of the project names are not the recipe's
])
def test_tracker_settings_with_the_tracker_pass(base, given):
    errors, warnings = problems(base, *given)
    assert "tracker-unused" not in {r for r, _ in errors | warnings}, warnings


def test_only_the_tracker_callbacks_read_the_project_names():
    from swift_ext.msswift.schema import _package_dir

    root = _package_dir("swift")
    if root is None:
        pytest.skip("ms-swift is not installed here")
    megatron = root / "megatron"
    readers = {p.relative_to(megatron).as_posix() for p in megatron.rglob("*.py")
               if "args.wandb_project" in p.read_text(encoding="utf-8")}
    assert readers == {"callbacks/wandb.py"}, readers
    sft = (root / "arguments/sft_args.py").read_text(encoding="utf-8")
    assert "if 'swanlab' in self.report_to:\n            self._init_swanlab()" in sft


def test_the_transformers_integration_names_are_the_installed_ones():
    # report-to (swift_ext/msswift/startup_rules.py) reads INTEGRATION_TO_CALLBACK's keys from the source; the real map
    # and the real check agree.
    pytest.importorskip("transformers")
    from transformers.integrations.integration_utils import (INTEGRATION_TO_CALLBACK,
                                                             get_reporting_integration_callbacks)

    from swift_ext.msswift.plugin_registry import builtin_names

    read = builtin_names("integrations/integration_utils.py", "INTEGRATION_TO_CALLBACK", package="transformers")
    assert read == set(INTEGRATION_TO_CALLBACK)
    with pytest.raises(ValueError, match="is not supported"):
        get_reporting_integration_callbacks(["tensorbord"])
    with pytest.raises(ValueError, match="is not supported"):
        get_reporting_integration_callbacks(["tensorboard", "none"])
