"""plugin-relative-import: ms-swift 4.6 imports an external_plugins file as a top-level module with no package
(swift/utils/utils.py import_external_file), so a relative import in the file itself fails at start-up; the same import
by name works (the file's directory is put first on sys.path). Confirmed by ms-swift's own loader (the slow test)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from swift_ext.msswift import plugin_imports as pi
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

SWIFT = pi._package_dir("swift")
pytestmark = pytest.mark.skipif(SWIFT is None, reason="ms-swift is not installed here")

HELPER = "def score(text):\n    return float('boxed' in text)\n"
PLUGIN = """\
{head}
from swift.rewards import ORM, orms


class Boxed(ORM):

    def __call__(self, completions, **kwargs):
        {body}
        return [score(c) for c in completions]


orms['boxed'] = Boxed
"""
RECIPE = """\
command: rlhf
engine: swift
launch: {nodes: 1, gpus_per_node: 1, gpu: A100-80G}
args:
  rlhf_type: grpo
  model: Qwen/Qwen2.5-7B-Instruct
  external_plugins: [plugin.py]
  reward_funcs: [boxed]
  dataset: [AI-MO/NuminaMath-TIR]
  tuner_type: lora
  per_device_train_batch_size: 8
  num_generations: 8
"""


def plan_with(tmp_path: Path, monkeypatch, head: str = "", body: str = "pass", *over):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "helper.py").write_text(HELPER)
    (tmp_path / "plugin.py").write_text(PLUGIN.format(head=head, body=body))
    (tmp_path / "grpo.yaml").write_text(RECIPE)
    plan = make_plan(load_recipe(tmp_path / "grpo.yaml", list(over)), oracle=False)
    return ([p for p in plan.errors if p.code == "plugin-relative-import"],
            [p for p in plan.warnings if p.code == "plugin-relative-import"])


def test_a_relative_import_in_the_plugin_file_is_refused_with_the_import_by_name(tmp_path, monkeypatch):
    (error,), warned = plan_with(tmp_path, monkeypatch, "from .helper import score")
    assert not warned and error.path == "args.external_plugins"
    assert "plugin.py, line 1: `from .helper import score`" in error.message and "no known parent package" in error.message
    assert error.hint.startswith("`from helper import score`")
    (package_form,), _ = plan_with(tmp_path, monkeypatch, "from . import helper\nscore = helper.score")
    assert package_form.hint.startswith("`import helper`")
    # 3.x's name for the same list
    (old,), _ = plan_with(tmp_path, monkeypatch, "from .helper import score", "pass",
                          "args.external_plugins=null", "args.custom_register_path=plugin.py")
    assert old.path == "args.custom_register_path"


def test_the_same_plugin_importing_by_name_plans(tmp_path, monkeypatch):
    assert plan_with(tmp_path, monkeypatch, "from helper import score") == ([], [])


def test_inside_a_function_it_is_a_warning_and_a_guarded_one_is_not_judged(tmp_path, monkeypatch):
    errors, (warning,) = plan_with(tmp_path, monkeypatch, "", "from .helper import score")
    assert not errors and "when that function runs" in warning.message
    guarded = "try:\n    from .helper import score\nexcept ImportError:\n    from helper import score"
    assert plan_with(tmp_path, monkeypatch, guarded) == ([], [])


def test_two_dots_get_no_import_by_name(tmp_path, monkeypatch):
    (error,), _ = plan_with(tmp_path, monkeypatch, "from ..helper import score")
    assert not error.hint.startswith("`")


@pytest.mark.slow
def test_ms_swifts_loader_fails_the_relative_import_and_runs_the_one_by_name(tmp_path):
    (tmp_path / "helper.py").write_text(HELPER)
    (tmp_path / "relative.py").write_text("from .helper import score\n")
    (tmp_path / "by_name.py").write_text("from helper import score\n")
    script = textwrap.dedent(f"""
        from swift.utils.utils import import_external_file
        try:
            import_external_file({str(tmp_path / 'relative.py')!r})
        except ImportError as exc:
            print('relative:', exc)
        print('by name:', import_external_file({str(tmp_path / 'by_name.py')!r}).score('boxed'))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert "relative: attempted relative import with no known parent package" in out.stdout, out.stderr[-2000:]
    assert "by name: 1.0" in out.stdout
