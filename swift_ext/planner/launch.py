"""Recipe -> the exact process to start: environment and argv of `megatron|swift <command>`."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swift_ext.msswift.schema import render_scalar
from swift_ext.spec.recipe import Recipe

from swift_ext.planner.tinymodel import SCHEME as LOCAL_MODEL_SCHEME  # noqa: F401  (models built on first use)
from swift_ext.planner.tinymodel import local_model_name, resolve_model


@dataclass(frozen=True)
class Launch:
    """What to execute. `env` holds only what the recipe sets; the caller's environment is kept."""

    env: dict[str, str]
    argv: list[str]
    output_dir: str | None = None
    local_models: dict[str, str] = field(default_factory=dict)  # name -> path, built before running

    def shell(self) -> str:
        """A copy-pasteable command in the style of ms-swift's example scripts."""
        lines = [f"{k}={shlex.quote(v)}" for k, v in self.env.items()]
        lines.append(" ".join(self.argv[:2]))
        rest = self.argv[2:]
        i = 0
        while i < len(rest):
            j = i + 1
            while j < len(rest) and not rest[j].startswith("--"):
                j += 1
            lines.append("    " + " ".join(shlex.quote(t) for t in rest[i:j]))
            i = j
        return " \\\n".join(lines) + "\n"


def build_launch(recipe: Recipe) -> Launch:
    env: dict[str, str] = {}
    gpus = recipe.launch.gpus_per_node
    if gpus > 0:
        # ms-swift starts torchrun when NPROC_PER_NODE/NNODES are set (swift/cli/main.py).
        if gpus > 1 or recipe.launch.nodes > 1 or recipe.engine == "megatron":
            env["NPROC_PER_NODE"] = str(gpus)
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(gpus))
    if recipe.launch.nodes > 1:
        env["NNODES"] = str(recipe.launch.nodes)
    env.update(recipe.env)

    local_models: dict[str, str] = {}
    argv = [recipe.engine, recipe.command]
    for name, value in with_reward_plugin(recipe.args).items():
        if value is None:
            continue
        model_name = local_model_name(value)
        if model_name is not None:
            value = resolve_model(value)
            local_models[model_name] = value
        argv.append(f"--{name}")
        argv.extend(render_values(value))
    return Launch(env=env, argv=argv, output_dir=_output_dir(recipe), local_models=local_models)


def with_reward_plugin(args: dict) -> dict:
    """Adds swift-ext's reward plugin to `external_plugins` when a swift-ext reward is named, and the
    callback that logs math_accuracy's counters as metrics to `callbacks` when that reward is."""
    from swift_ext.plugins import AUDIT_CALLBACK, AUDITED_REWARDS, REWARD_NAMES, REWARD_PLUGIN

    funcs = args.get("reward_funcs") or []
    funcs = [str(f) for f in (funcs if isinstance(funcs, list) else [funcs])]
    if not any(f in REWARD_NAMES for f in funcs):
        return args
    plugins = args.get("external_plugins") or []
    plugins = [str(p) for p in (plugins if isinstance(plugins, list) else [plugins])]
    if str(REWARD_PLUGIN) not in plugins:
        plugins.append(str(REWARD_PLUGIN))
    out = {**args, "external_plugins": plugins}
    if any(f in AUDITED_REWARDS for f in funcs):
        callbacks = args.get("callbacks") or []
        callbacks = [str(c) for c in (callbacks if isinstance(callbacks, list) else [callbacks])]
        out["callbacks"] = callbacks if AUDIT_CALLBACK in callbacks else [*callbacks, AUDIT_CALLBACK]
    return out


def render_values(value: Any) -> list[str]:
    if isinstance(value, list):
        return [render_scalar(v) for v in value]
    return [render_scalar(value)]


def _output_dir(recipe: Recipe) -> str | None:
    out = recipe.args.get("output_dir")
    if out is None:
        return None
    return str(Path(str(out)))
