"""Issue #21: the reward / plugin names an external_plugins file registers, read with ast through the local modules
it imports (ms-swift's import_external_file puts the plugin's directory first on sys.path). Each pattern below is a
small version of what public ms-swift plugins do; a registry plan cannot list is said (a warning), and a plugin
read whole still has its unknown names refused."""

from __future__ import annotations

import pytest

from conftest import FIXTURES, RECIPES
from swift_ext.msswift.plugin_registry import FOLLOW_DEPTH, plugin_registry
from swift_ext.planner.plan import make_plan
from swift_ext.spec.recipe import load_recipe

GRPO = RECIPES / "qwen3_6/grpo-lora-8gpu.yaml"  # Megatron GRPO, colocated vLLM, reward_funcs [accuracy]
SWIFT_GRPO = FIXTURES / "working/ms-swift-example-swift-grpo-moe-colocate-lora.yaml"
REWARD = "from swift.rewards import ORM, orms\n\n\nclass R(ORM):\n    def __call__(self, completions, **kw):\n" \
         "        return [0.0] * len(completions)\n\n\n"


def tree(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path / "plugin.py"


def plan(base, plugin, *rewards):
    return make_plan(load_recipe(base, [f"args.external_plugins=[{plugin}]", f"args.reward_funcs=[{','.join(rewards)}]"]),
                     oracle=False)


def said(result, code="reward-funcs"):
    return [e.message for e in result.errors if e.code == code], [w.message for w in result.warnings if w.code == code]


SIBLINGS = {
    "star": {"plugin.py": "from my_rewards import *\n", "my_rewards.py": REWARD + "orms['mine'] = R\n"},
    "import": {"plugin.py": "import my_rewards  # noqa\n", "my_rewards.py": REWARD + "orms['mine'] = R\n"},
    "sys.path": {"plugin.py": "import os\nimport sys\nsys.path.append(os.path.dirname(__file__))\nimport helpers\n",
                 "helpers.py": REWARD + "orms['mine'] = R\n"},
    "package": {"plugin.py": "from rewards import R\n",
                "rewards/__init__.py": "from .acc import R\n", "rewards/acc.py": REWARD + "orms['mine'] = R\n"},
    "submodule": {"plugin.py": "from rewards import acc\n", "rewards/acc.py": REWARD + "orms['mine'] = R\n"},
    # relative imports inside a package next to the plugin (in the plugin file itself one fails at start-up: ms-swift
    # loads it as a top-level module, "attempted relative import with no known parent package")
    "relative": {"plugin.py": "import rewards  # noqa\n", "rewards/__init__.py": "from . import acc  # noqa\n",
                 "rewards/acc.py": "from .base import R\nfrom swift.rewards import orms\norms['mine'] = R\n",
                 "rewards/base.py": REWARD},
    "update": {"plugin.py": "from my_rewards import R\nfrom swift.rewards import orms\norms.update({'mine': R})\n",
               "my_rewards.py": REWARD},
    "alias": {"plugin.py": "from swift.rewards import orms as _orms\nfrom lib.r import R\n_orms['mine'] = R\n",
              "lib/r.py": REWARD},
    "cycle": {"plugin.py": "import a\n", "a.py": "import b\n", "b.py": "import a\n" + REWARD + "orms['mine'] = R\n"},
}


@pytest.mark.parametrize("case", sorted(SIBLINGS))
def test_rewards_registered_in_a_local_module_the_plugin_imports_plan(tmp_path, case):
    plugin = tree(tmp_path, SIBLINGS[case])
    got = plugin_registry([plugin], "orms")
    assert got.names == {"mine"} and not got.undecided, got
    assert said(plan(GRPO, plugin, "mine")) == ([], [])
    errors, _ = said(plan(GRPO, plugin, "mien"))  # a typo is still the trainer's KeyError
    assert errors == ["unknown reward function 'mien'"]


DYNAMIC = {
    "loop": {"plugin.py": "from my_rewards import *\n", "my_rewards.py": REWARD +
             "for name in ('mine', 'yours'):\n    orms[name] = R\n"},
    "decorator": {"plugin.py": "from registry import register\n\n\n@register('mine')\nclass Mine:\n    pass\n",
                  "registry.py": "from swift.rewards import orms\n\n\ndef register(name):\n"
                                 "    def add(cls):\n        orms[name] = cls\n        return cls\n    return add\n"},
    "comprehension": {"plugin.py": "from swift.rewards import orms\nfrom mine import ALL\n"
                                   "orms.update({k: v for k, v in ALL.items()})\n", "mine.py": "ALL = {}\n"},
    "setattr": {"plugin.py": "import swift.rewards.orm as m\ngetattr(m, 'orms')['mine'] = 1\n"},
    "not here": {"plugin.py": "import os, sys\nsys.path.insert(0, os.path.dirname(__file__))\n"
                              "import team_rewards_not_shipped  # noqa\n"},
    "relative not here": {"plugin.py": "from .gone import R\n"},
}


@pytest.mark.parametrize("case", sorted(DYNAMIC))
def test_a_registry_filled_dynamically_or_from_a_module_not_here_is_said_not_refused(tmp_path, case):
    plugin = tree(tmp_path, DYNAMIC[case])
    assert plugin_registry([plugin], "orms").undecided
    errors, warnings = said(plan(GRPO, plugin, "mine"))
    assert errors == [] and len(warnings) == 1 and "reward function 'mine' is not registered" in warnings[0]


def test_installed_and_standard_library_imports_do_not_make_the_registry_undecided(tmp_path):
    plugin = tree(tmp_path, {"plugin.py": "import json\nimport numpy\nfrom swift.rewards import ORM, orms\n"
                                          "class R(ORM):\n    pass\norms['mine'] = R\n"})
    assert plugin_registry([plugin], "orms").names == {"mine"} and not plugin_registry([plugin], "orms").undecided
    assert said(plan(GRPO, plugin, "other"))[0] == ["unknown reward function 'other'"]


def test_local_imports_are_followed_a_bounded_depth(tmp_path):
    chain = {"plugin.py": "import m1\n"}
    for i in range(1, FOLLOW_DEPTH + 1):
        chain[f"m{i}.py"] = f"import m{i + 1}\n"
    chain[f"m{FOLLOW_DEPTH + 1}.py"] = REWARD + "orms['mine'] = R\n"
    got = plugin_registry([tree(tmp_path, chain)], "orms")
    assert got.names == set() and f"more than {FOLLOW_DEPTH} imports" in got.undecided
    (tmp_path / "plugin.py").write_text("import m2\n")  # one level nearer: read
    got = plugin_registry([tmp_path / "plugin.py"], "orms")
    assert got.names == {"mine"} and not got.undecided


def test_the_transformers_engine_says_it_too(tmp_path):
    plugin = tree(tmp_path, DYNAMIC["loop"])
    errors, warnings = said(plan(SWIFT_GRPO, plugin, "mine"))
    assert errors == [] and warnings and "fills orms in a way not read here" in warnings[0]
    read = tree(tmp_path / "read", SIBLINGS["star"])
    assert said(plan(SWIFT_GRPO, read, "mine")) == ([], [])
    assert said(plan(SWIFT_GRPO, read, "mien"))[0] == ["unknown reward function 'mien'"]


def test_other_registries_follow_local_imports_too(tmp_path):
    # multi_turns (rollout/multi_turn.py) and rm_plugins (rewards/rm_plugin.py) are filled the same way.
    plugin = tree(tmp_path, {"plugin.py": "from sched import *  # noqa\n",
                             "sched.py": "from swift.rollout import multi_turns, MultiTurnScheduler\n"
                                         "class S(MultiTurnScheduler):\n    pass\nmulti_turns['my_sched'] = S\n"})
    got = plugin_registry([plugin], "multi_turns")
    assert got.names == {"my_sched"} and not got.undecided


REAL_IMPORT = """
import sys
from swift.rewards import orms
from swift.utils.utils import import_external_file
base = set(sys.modules)
for plugin in sys.argv[1:]:
    orms.pop('mine', None)
    import_external_file(plugin)  # what ms-swift does for each --external_plugins file
    print(plugin, 'mine' in orms)
    for name in set(sys.modules) - base:  # the next case's siblings share these names
        del sys.modules[name]
    sys.path.pop(0)
"""


def test_the_sibling_patterns_register_in_ms_swift_itself(tmp_path):
    # The patterns above are read as registering 'mine': ms-swift's own import of each agrees.
    import subprocess
    import sys

    plugins = [str(tree(tmp_path / case.replace(".", "_"), files)) for case, files in sorted(SIBLINGS.items())]
    out = subprocess.run([sys.executable, "-c", REAL_IMPORT, *plugins], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [w for p in plugins for w in (p, "True")]
