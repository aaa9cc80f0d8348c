"""Recipe -> the exact process to start: environment and argv of `megatron|swift <command>`."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swift_ext.msswift.conventions import flag_groups
from swift_ext.msswift.schema import render_scalar
from swift_ext.spec.recipe import Recipe
from swift_ext.spec.secrets import env_reference, is_secret_arg, secret_arg_env

from swift_ext.planner.tinymodel import local_model_name, resolve_model


class EnvRef(str):
    """An argv item shown as a reference to an environment variable (`$HF_TOKEN`) instead of its value:
    a shell expands it, JSON stores it as the text `$HF_TOKEN`."""

    @classmethod
    def to(cls, name: str) -> "EnvRef":
        return cls(f"${name}")


def shell_word(item: str) -> str:
    """One argv item for a shell command line: quoted, except that a reference stays expandable."""
    return f'"{item}"' if isinstance(item, EnvRef) else shlex.quote(item)


def shell_lines(argv: list[str]) -> list[str]:
    """`megatron sft` then one flag with its values per line, as in ms-swift's example scripts."""
    return [" ".join(shell_word(a) for a in argv[:2])] + [
        " ".join(shell_word(a) for a in group) for group in flag_groups(argv[2:])]


@dataclass(frozen=True)
class Launch:
    """What to execute. `env` holds only what the recipe sets; the caller's environment is kept.
    `argv` is what is executed, credentials included; anything printed or stored uses printable_argv()."""

    env: dict[str, str]
    argv: list[str]
    output_dir: str | None = None
    local_models: dict[str, str] = field(default_factory=dict)  # name -> path, built before running
    secret_refs: dict[int, str] = field(default_factory=dict)  # argv index -> the variable that holds it

    def printable_argv(self) -> list[str]:
        """argv with every credential replaced by a reference to its variable: for printing, manifests and
        batch scripts (whose shell expands the reference from the job's environment)."""
        return [EnvRef.to(self.secret_refs[i]) if i in self.secret_refs else a for i, a in enumerate(self.argv)]

    def shell(self) -> str:
        """A copy-pasteable command in the style of ms-swift's example scripts; credentials as references."""
        lines = [f"{k}={shlex.quote(v)}" for k, v in self.env.items()]
        argv = self.printable_argv()
        lines.append(shell_lines(argv)[0])
        lines += ["    " + line for line in shell_lines(argv)[1:]]
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
    secret_refs: dict[int, str] = {}
    argv = [recipe.engine, recipe.command]
    for name, value in with_reward_plugin(recipe.args).items():
        if value is None:
            continue
        if is_secret_arg(name) and not isinstance(value, list):
            # A credential: the recipe names its variable (plan refuses a literal); the value is read here,
            # at launch, and only the executed argv holds it.
            var = env_reference(value) or secret_arg_env(name)
            if env_reference(value):
                value = os.environ.get(var, "")
            argv.append(f"--{name}")
            secret_refs[len(argv)] = var
            argv.append(render_scalar(value))
            continue
        model_name = local_model_name(value)
        if model_name is not None:
            value = resolve_model(value)
            local_models[model_name] = value
        argv.append(f"--{name}")
        argv.extend(render_values(value))
    return Launch(env=env, argv=argv, output_dir=_output_dir(recipe), local_models=local_models,
                  secret_refs=secret_refs)


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
