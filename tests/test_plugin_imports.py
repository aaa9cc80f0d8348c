"""plugin-imports: the swift imports of an external_plugins file, read against the installed ms-swift without
importing it (msswift/plugin_imports.py). 3.x plugins import swift.llm / swift.plugin, which 4.x removed: ms-swift
dies importing the file at start-up. Each verdict here is confirmed by Python's own import of the installed package
(one subprocess), and ms-swift's own absolute imports must all read as resolvable."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT
from swift_ext.msswift import plugin_imports as pi
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

SWIFT = pi._package_dir("swift")
pytestmark = pytest.mark.skipif(SWIFT is None, reason="ms-swift is not installed here")

# A reward plugin as ms-swift 3.x's examples/train/grpo/plugin/plugin.py wrote one (its imports, our own body).
PLUGIN_3X = '''\
import re
from typing import List

from swift.llm import Template, to_device
from swift.plugin import ORM, orms, rm_plugins
from swift.utils import get_logger

logger = get_logger()


class Boxed(ORM):

    def __call__(self, completions, **kwargs) -> List[float]:
        return [float(bool(re.search(r"\\\\boxed", c))) for c in completions]


orms['boxed'] = Boxed
'''


def write(tmp_path: Path, text: str, name: str = "plugin.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def real_imports(statements: list[str]) -> dict[str, str]:
    """statement -> '' when Python imports it from the installed ms-swift, else the exception's type name: the
    judge every reading here is checked against (one process: importing ms-swift takes seconds)."""
    script = textwrap.dedent(f"""
        import json, warnings
        warnings.simplefilter("ignore")
        out = {{}}
        for s in {statements!r}:
            try:
                exec(s, {{}})
                out[s] = ""
            except Exception as exc:
                out[s] = type(exc).__name__
        print("RESULT" + json.dumps(out))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd="/")
    line = next((x for x in run.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, run.stderr[-2000:]
    return json.loads(line[len("RESULT"):])


def test_a_3x_plugin_is_refused_line_by_line_with_the_4x_import_as_hint(tmp_path):
    bad = pi.bad_plugin_imports([write(tmp_path, PLUGIN_3X)])
    assert [(b.line, b.missing_module, b.names, b.in_function) for b in bad] == [
        (4, "swift.llm", ("Template", "to_device"), False),
        (5, "swift.plugin", ("ORM", "orms", "rm_plugins"), False),
    ]
    assert bad[0].hints == ("from swift.template import Template", "from swift.utils import to_device")
    assert bad[1].hints == ("from swift.rewards import ORM, orms, rm_plugins",)


def test_name_checks_follow_the_lazy_packages(tmp_path):
    path = write(tmp_path, """\
        from swift.utils import get_logger, no_such_helper
        from swift.rewards import ORM, multi_turns
        from swift import llm
        from swift import is_torch_musa_installed
        import swift.llm.template
        from swift.rewards import orm
        from swift.trainers import patcher
        from swift.rollout import multi_turns, MultiTurnScheduler
        import swift.rewards.orm
    """)
    bad = {b.line: b for b in pi.bad_plugin_imports([path])}
    assert set(bad) == {1, 2, 3, 4, 5}
    assert (bad[1].module, bad[1].missing_module, bad[1].names, bad[1].hints) == \
        ("swift.utils", None, ("no_such_helper",), ())
    assert bad[2].names == ("multi_turns",) and bad[2].hints == ("from swift.rollout import multi_turns",)
    assert bad[3].names == ("llm",)
    # swift/__init__.py imports it, but the _LazyModule that replaces the package serves only _import_structure
    assert bad[4].names == ("is_torch_musa_installed",)
    assert bad[5].missing_module == "swift.llm"


def test_every_verdict_and_hint_matches_what_python_imports(tmp_path):
    lines = ["from swift.llm import Template, to_device", "from swift.plugin import ORM, orms, rm_plugins",
             "from swift.utils import get_logger, no_such_helper", "from swift.rewards import ORM, multi_turns",
             "from swift import llm", "from swift import is_torch_musa_installed", "import swift.llm.template",
             "from swift.rewards import orm", "from swift.trainers import patcher", "import swift.rewards.orm",
             "from swift.rollout import multi_turns, MultiTurnScheduler", "from swift.utils import to_device",
             "from swift import get_logger", "from swift.infer_engine import InferRequest"]
    bad = pi.bad_plugin_imports([write(tmp_path, "\n".join(lines) + "\n")])
    refused = {lines[b.line - 1] for b in bad}
    hints = sorted({h for b in bad for h in b.hints})
    assert len(refused) == 7 and len(hints) >= 4
    real = real_imports(lines + hints)
    assert {s for s in lines if real[s]} == refused, real
    assert all(real[h] == "" for h in hints), {h: real[h] for h in hints}
    assert {real[s] for s in refused} <= {"ImportError", "ModuleNotFoundError"}


def test_imports_that_may_not_run_or_are_caught_are_not_judged(tmp_path):
    path = write(tmp_path, """\
        import contextlib
        from typing import TYPE_CHECKING
        try:
            from swift.plugin import ORM, orms
        except ImportError:
            from swift.rewards import ORM, orms
        try:
            from swift.rewards import ORM
        except (ModuleNotFoundError, AttributeError):
            from swift.plugin import ORM
        try:
            import swift.llm
        except Exception:
            pass
        try:
            from swift.llm import Template
        except:
            pass
        with contextlib.suppress(ImportError):
            from swift.llm import to_device
        if TYPE_CHECKING:
            from swift.llm import InferRequest
        else:
            from swift.plugin import rm_plugins
        if __name__ == '__main__':
            from swift.llm import sft_main
        if ORM is not None:
            from swift.llm import PtEngine
        for _ in range(1):
            from swift.llm import RequestConfig
        from . import helpers
        from swift_ext.rewards import math_accuracy
        import swiftly
    """)
    bad = pi.bad_plugin_imports([path])
    # only the runtime branch of `if TYPE_CHECKING` runs for sure
    assert [(b.line, b.names) for b in bad] == [(24, ("rm_plugins",))]


def test_an_unguarded_try_and_a_class_body_run_on_import(tmp_path):
    path = write(tmp_path, """\
        try:
            from swift.plugin import ORM
        except KeyError:
            pass
        finally:
            from swift.llm import Template
        class Wrapper:
            from swift.plugin import orms
    """)
    assert [(b.line, b.in_function) for b in pi.bad_plugin_imports([path])] == [(2, False), (6, False), (8, False)]


def test_an_import_inside_a_function_is_a_warning_through_plan(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, """\
        from swift.rewards import ORM, orms


        class Judge(ORM):

            def __call__(self, completions, **kwargs):
                from swift.llm import PtEngine  # 3.x's engine: TransformersEngine in swift.infer_engine now
                return [0.0 for _ in completions]


        orms['judge'] = Judge
    """)
    recipe = _grpo_recipe(tmp_path, "judge")
    result = make_plan(load_recipe(recipe, []), oracle=False)
    assert not [e for e in result.errors if e.code == "plugin-imports"]
    warned = [w for w in result.warnings if w.code == "plugin-imports"]
    assert [w.path for w in warned] == ["args.external_plugins"]
    assert "plugin.py, line 7" in warned[0].message and "when that function runs" in warned[0].message
    assert warned[0].hint == "not defined anywhere in ms-swift 4.6.0: PtEngine"

    # the same plugin file given as custom_register_path (3.x's name, appended to external_plugins)
    refused = make_plan(load_recipe(recipe, ["args.external_plugins=null", "args.custom_register_path=plugin.py"]),
                        oracle=False)
    assert [w.path for w in refused.warnings if w.code == "plugin-imports"] == ["args.custom_register_path"]


def test_plan_names_the_3x_plugin_on_the_flag_that_names_it(tmp_path, monkeypatch):
    # said, not refused: the run imports the training machine's copy of the file (plugin_imports.plugin_imports)
    monkeypatch.chdir(tmp_path)
    write(tmp_path, PLUGIN_3X)
    recipe = _grpo_recipe(tmp_path, "boxed")
    result = make_plan(load_recipe(recipe, []), oracle=False)
    assert not [e for e in result.errors if e.code == "plugin-imports"]
    errors = [w for w in result.warnings if w.code == "plugin-imports"]
    assert [e.path for e in errors] == ["args.external_plugins"] * 2
    assert "plugin.py, line 5: `from swift.plugin import ORM, orms, rm_plugins`" in errors[1].message
    assert "no module swift.plugin" in errors[1].message
    assert errors[1].hint == "from swift.rewards import ORM, orms, rm_plugins"


def test_the_issue_fixture_is_named_for_its_import_not_a_missing_file():
    # tests/test_issue_fixtures.py checks the culprit flag; here: for this rule (plugin-file would name it too)
    from test_issue_fixtures import plan

    path = FIXTURES / "issues" / "ms-swift-3197-plugin-imports-swift-plugin-orm.yaml"
    result = plan(path)
    assert result.ok and [(w.code, w.path) for w in result.warnings if w.code.startswith("plugin")] == [
        ("plugin-imports", "args.external_plugins")]
    assert not [w for w in plan(path, "args.external_plugins=plugin_4x.py").warnings if w.code == "plugin-imports"]


def test_the_shipped_plugin_and_reward_modules_pass():
    shipped = [ROOT / "swift_ext/plugins/swift_ext_rewards.py", *sorted((ROOT / "swift_ext/rewards").glob("*.py"))]
    swift_imports = sum(1 for p in shipped for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
                        if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("swift."))
    assert swift_imports >= 5  # the reward modules do import ms-swift: the check below is not vacuous
    assert pi.bad_plugin_imports([str(p) for p in shipped]) == []


def test_ms_swifts_own_absolute_imports_all_resolve():
    # ms-swift 4.6's own modules import themselves absolutely hundreds of times (and import fine): a reading that
    # refused any of them would be wrong about the package layout
    files = sorted(SWIFT.rglob("*.py"))
    count = sum(1 for p in files for line in p.read_text(encoding="utf-8", errors="replace").splitlines()
                if line.lstrip().startswith(("from swift.", "import swift.")))
    assert count > 300
    assert pi.bad_plugin_imports([str(p) for p in files]) == []


def test_modules_that_build_names_dynamically_are_not_judged(tmp_path):
    def names(text: str):
        path = Path(write(tmp_path, text, "mod.py"))
        return pi._bound_names(str(path), path.stat().st_mtime_ns)

    assert names("from os.path import *\n") is None
    assert names("def __getattr__(name):\n    return name\n") is None
    assert names("globals().update(a=1)\n") is None
    assert names("globals()['b'] = 2\n") is None
    assert names("import sys\nx = globals()['__file__']\nif (y := 1):\n    pass\nfor i in []:\n    pass\n") == \
        {"sys", "x", "y", "i"}
    # a lazy package whose _import_structure is changed after it is built
    assert names("import sys\n_import_structure = {'a': ['A']}\n_import_structure['b'] = ['B']\n"
                 "sys.modules[__name__] = _LazyModule(__name__, __file__, _import_structure, extra_objects={})\n") is None
    assert names("import sys\n_import_structure = {'a': ['A']}\n"
                 "sys.modules[__name__] = _LazyModule(__name__, __file__, _import_structure, extra_objects={})\n") == \
        {"a", "A"}


def _grpo_recipe(folder, reward: str):
    """A one-GPU GRPO recipe loading plugin.py from `folder` for the reward `reward`."""
    recipe = folder / "grpo.yaml"
    recipe.write_text(textwrap.dedent(f"""\
        command: rlhf
        engine: swift
        launch: {{nodes: 1, gpus_per_node: 1, gpu: A100-80G}}
        args:
          rlhf_type: grpo
          model: Qwen/Qwen2.5-7B-Instruct
          external_plugins: [plugin.py]
          reward_funcs: [{reward}]
          dataset: [AI-MO/NuminaMath-TIR]
          tuner_type: lora
          per_device_train_batch_size: 8
          num_generations: 8
    """), encoding="utf-8")
    return recipe
