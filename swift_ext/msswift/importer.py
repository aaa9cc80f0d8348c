"""`swift-ext import`: an existing `megatron|swift sft|rlhf|pt` shell script -> a recipe.

Understands what such scripts contain: `NAME=value` lines (and `export`), env assignments in front
of the command, `\\` continuations, single/double quotes, `$VAR`/`${VAR}`/`"$VAR"` references to
variables the script sets, comments, and a leading `# 4 * 32GiB, 7min` note (kept as description).
It is not a shell: command substitution, arithmetic and loops are reported, not evaluated (save integer
`$(( ))` and `$(expr ...)` over values the script set). Reading the script's words is msswift/shellwords.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from swift_ext.msswift import schema as msargs
from swift_ext.spec.findings import UserError
from swift_ext.msswift.conventions import typed_text
from swift_ext.msswift.import_upgrade import megatron_wandb, upgrade_names, vllm_mode
from swift_ext.msswift.option_names import read_name
from swift_ext.msswift.shellwords import SEPARATORS, commands, logical_lines, lookalike, lookalike_hint, split_words
from swift_ext.spec.secrets import env_reference, is_secret, is_secret_arg, secret_arg_env
from swift_ext.spec.recipe import SCHEDULER
from swift_ext.spec.yamlio import read_text

COMMANDS = {("megatron", c) for c in ("sft", "rlhf", "pt")} | {("swift", c) for c in ("sft", "rlhf", "pt")}
LAUNCH_VARS = {"NPROC_PER_NODE", "NNODES", "CUDA_VISIBLE_DEVICES"}
RANK_VARS = {"NODE_RANK", "MASTER_ADDR", "MASTER_PORT"}  # per-node: the launcher supplies them
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_ARRAY = re.compile(r"^(export\s+)?[A-Za-z_][A-Za-z0-9_]*\+?=\(")


def import_file(path: Path, upgrade: bool = False) -> list[tuple[dict, list[str]]]:
    return import_text(read_text(path, "a shell script"), str(path), upgrade)


def import_text(text: str, source: str = "<script>", upgrade: bool = False) -> list[tuple[dict, list[str]]]:
    """One (recipe data, notes) per training command in the script, in order. `upgrade`: ms-swift 3.x
    argument names become their 4.x names (msargs.RENAMED) and removed ones are dropped, each noted."""
    notes: list[str] = []
    variables: dict[str, str] = {}
    exported: dict[str, str] = {}
    comment: str | None = None
    found: list[tuple[dict, list[str]]] = []
    for lineno, logical in logical_lines(text, notes, source):
        stripped = logical.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            said = stripped.lstrip("#").strip()
            if not stripped.startswith("#!") and said and not _COMMENTED_CODE.match(said):
                comment = said
            continue
        before: list[str] = []  # the commands before a training command on the same line (`cd DIR &&`)
        for part, op in commands(stripped):
            if _ARRAY.match(part.strip()):
                notes.append(f"{source}:{lineno}: `{part.strip()}` sets a bash array, which swift-ext does not read; "
                             "a use of it stays text -- write its values where the command uses them")
                continue
            words = split_words(part.strip(), variables, notes, source, lineno)
            export = bool(words) and words[0] == "export"
            if export:
                words = words[1:]
            assigns = []
            while words and _ASSIGN.match(words[0]):
                name, _, value = words.pop(0).partition("=")
                assigns.append((name, value))
            if not words:  # plain variable assignment(s)
                variables.update(assigns)
                if export:
                    exported.update(assigns)
                comment = comment if assigns else None
                continue
            if export:  # `export NAME` of a variable set earlier
                exported.update((w, variables[w]) for w in words if w in variables)
                continue
            if words[0] == "set":  # shell options (set -x, set -euo pipefail) say nothing about the run
                continue
            words, more = _command_part(words, notes, source, lineno)
            assigns += more
            env = {**exported, **dict(assigns)}
            words = _as_swift_command(words, env, notes, source, lineno)
            if len(words) >= 2 and (words[0], words[1]) in COMMANDS:
                if before:
                    notes.append(f"{source}:{lineno}: `{' '.join(before)}` before the command is not part of the recipe")
                data = _to_recipe(words, env, comment, notes, source, lineno)
                if upgrade:
                    data["args"] = upgrade_names(data["args"], msargs.schema_for(data["engine"], data["command"]),
                                                 notes, source, lineno)
                vllm_mode(data, upgrade, notes, f"{source}:{lineno}")
                megatron_wandb(data, upgrade, notes, f"{source}:{lineno}")
                found.append((data, notes))
                notes, before, comment = [], [], None
                continue
            elif len(words) >= 2 and words[0] in ("megatron", "swift"):
                notes.append(f"{source}:{lineno}: `{words[0]} {words[1]}` is not a training command; not imported")
            before = before + [part.strip(), op] if op in SEPARATORS else []
            comment = None
    if not found:
        raise UserError.one("no `megatron sft|rlhf|pt` or `swift sft|rlhf|pt` command found", file=source,
                            hint=lookalike_hint(text))
    found[-1][1].extend(notes)
    return found


# A commented-out command or flag is not a description of the run.
_COMMENTED_CODE = re.compile(r"^(--|[A-Za-z_][A-Za-z0-9_]*=|(megatron|swift|torchrun|accelerate|python[0-9.]*) |.*\\$)")
_SHELL_OPERATORS = {"|", "||", "&&", ";", "&", "|&"}
# ms-swift's entry points, as scripts start them under torchrun: swift/cli/_megatron/sft.py is `megatron sft`.
_ENTRY = re.compile(r"(?:^|/)swift/cli/(_megatron/)?(sft|rlhf|pt)\.py$")
# ... or as modules: `torchrun ... -m swift.cli.sft` (ms-swift's examples/train/moe/deepseek_v4_fsdp2_ep.sh).
_ENTRY_MODULE = re.compile(r"swift\.cli\.(_megatron\.)?(sft|rlhf|pt)")
_TORCHRUN_LAUNCH = {"nproc_per_node": "NPROC_PER_NODE", "nproc-per-node": "NPROC_PER_NODE", "nnodes": "NNODES"}
# The interpreter / launcher may be named by path (`PYTHON=/opt/env/bin/python; $PYTHON -m torch.distributed.run`,
# as in ms-swift's examples/megatron/grpo/test_lora_colocate.sh): match the last path component.
_PYTHON = re.compile(r"(?:\S*/)?python[0-9.]*")
_TORCHRUN = re.compile(r"(?:\S*/)?torchrun")
# `accelerate launch [--config_file F] swift/cli/rlhf.py ARGS` (ms-swift's examples/ascend/train/qwen3_5/
# qwen3_5_lora_grpo_megatron.sh): accelerate starts the processes itself, from its own flags and config file.
_ACCELERATE = re.compile(r"(?:\S*/)?accelerate")


# Words that run the next command unchanged: `nohup megatron sft ... &`, `exec swift sft`, `time ...`.
_WRAPPERS = {"nohup", "exec", "time", "command", "env"}
_STARTS = {"megatron", "swift", "torchrun"}


def _command_part(words: list[str], notes: list, source: str, lineno: int) -> tuple[list[str], list]:
    """The words from the training command on, and env assignments in front of it: strips wrapper words
    (nohup, exec, time, env NAME=value) and a preparatory `cd DIR &&` / `source FILE;` before the command,
    each noted. Lines that are not a training command come back unchanged."""
    assigns: list[tuple[str, str]] = []
    start = next((k for k, w in enumerate(words) if (w in _STARTS or _PYTHON.fullmatch(w) or _TORCHRUN.fullmatch(w)
                                                    or _accelerate_launch(words[k:]))
                  and (k == 0 or words[k - 1] in _SHELL_OPERATORS or words[k - 1] in _WRAPPERS
                       or _ASSIGN.match(words[k - 1]))), None)
    if not start:
        return words, assigns
    k = start
    while k > 0 and (words[k - 1] in _WRAPPERS or _ASSIGN.match(words[k - 1])):
        k -= 1
    if k > 0 and words[k - 1] not in _SHELL_OPERATORS:
        return words, assigns  # e.g. `echo megatron sft`: an argument, not a command
    if k > 0:
        notes.append(f"{source}:{lineno}: `{' '.join(words[:k])}` before the command is not part of the recipe")
    for word in words[k:start]:
        if _ASSIGN.match(word):
            name, _, value = word.partition("=")
            assigns.append((name, value))
        elif word != "env":
            notes.append(f"{source}:{lineno}: `{word}` in front of the command is not part of the recipe")
    return words[start:], assigns


def _as_swift_command(words: list[str], env: dict, notes: list, source: str, lineno: int) -> list[str]:
    """`torchrun [opts] swift/cli/_megatron/sft.py ARGS` (or python -m torch.distributed.run / python
    swift/cli/sft.py) -> ["megatron", "sft", ARGS]; torchrun's --nproc_per_node/--nnodes go to `env`."""
    if words and _TORCHRUN.fullmatch(words[0]):
        launcher = words[1:]
    elif len(words) > 2 and _PYTHON.fullmatch(words[0]) and words[1:3] == ["-m", "torch.distributed.run"]:
        launcher = words[3:]
    elif len(words) > 1 and _PYTHON.fullmatch(words[0]):
        launcher = words[1:]
    elif _accelerate_launch(words):
        launcher = words[2:]
    else:
        return words
    for k, word in enumerate(launcher):
        module = k > 0 and launcher[k - 1] == "-m"
        m = _ENTRY_MODULE.fullmatch(word) if module else _ENTRY.search(word)
        if m:
            opts = launcher[:k - 1] if module else launcher[:k]
            for j, opt in enumerate(opts):
                name, _, inline = opt.lstrip("-").partition("=")
                value = inline or (opts[j + 1] if j + 1 < len(opts) else "")
                if opt.startswith("--") and name in _TORCHRUN_LAUNCH:
                    env[_TORCHRUN_LAUNCH[name]] = value
            if _accelerate_launch(words):
                _accelerate_options(opts, env, notes, f"{source}:{lineno}")
            notes.append(f"{source}:{lineno}: `{words[0]} ... {word}` imported as `{'megatron' if m.group(1) else 'swift'} "
                         f"{m.group(2)}` (ms-swift starts torchrun itself from NPROC_PER_NODE/NNODES)")
            return ["megatron" if m.group(1) else "swift", m.group(2), *launcher[k + 1:]]
    return words


def _accelerate_launch(words: list[str]) -> bool:
    return len(words) > 1 and bool(_ACCELERATE.fullmatch(words[0])) and words[1] == "launch"


def _accelerate_options(opts: list[str], env: dict, notes: list, where: str) -> None:
    """accelerate launch's process counts to NPROC_PER_NODE/NNODES (its --num_processes counts all machines'
    processes); its config file -- FSDP or DeepSpeed settings in accelerate's own format -- has no place in a
    recipe, and the note says so (ms-swift's --fsdp / --deepspeed arguments carry them)."""
    values: dict[str, str] = {}
    for j, opt in enumerate(opts):
        if opt.startswith("--"):
            name, eq, inline = opt[2:].replace("-", "_").partition("=")
            values[name] = inline if eq else (opts[j + 1] if j + 1 < len(opts) and not opts[j + 1].startswith("--")
                                              else "")
    nodes = int(values["num_machines"]) if values.get("num_machines", "").isdigit() else 0
    if nodes:
        env["NNODES"] = str(nodes)
    nodes = nodes or (int(env["NNODES"]) if str(env.get("NNODES", "")).isdigit() else 1)
    procs = values.get("num_processes", "")
    if procs.isdigit() and nodes and int(procs) % nodes == 0:
        env["NPROC_PER_NODE"] = str(int(procs) // nodes)
    if values.get("config_file"):
        notes.append(f"{where}: accelerate's --config_file {values['config_file']} (its FSDP / DeepSpeed settings) is "
                     "not part of the recipe: the plan does not see it; give ms-swift's --fsdp or --deepspeed instead")


def _as_parser_reads(schema: msargs.ArgSchema, name: str, values: list, notes: list, at: str) -> tuple[str, list]:
    """The argument ms-swift's parser sets for `--NAME VALUES` (msswift.option_names): `--a-b` and an unambiguous
    prefix (`--lora_r`) under the full name, and a bare `--no_x` as `x: false`. Anything else stays as written
    for the recipe check to report."""
    reading = read_name(schema, name)
    if reading.field is None or (reading.negated and values):
        return name, values
    if reading.negated:
        given = f" (given as --{name})" if reading.abbreviated else ""
        notes.append(f"{at}: {reading.option}{given} sets {reading.field} to false: "
                     f"the recipe says `{reading.field}: false`")
        return reading.field, ["false"]
    if reading.abbreviated:
        notes.append(f"{at}: --{name} is ms-swift's abbreviation of --{reading.field} (its parser accepts an "
                     f"unambiguous prefix): the recipe says `{reading.field}`")
    return reading.field, values


def _to_recipe(words: list[str], env: dict[str, str], comment: str | None, notes: list[str],
               source: str, lineno: int) -> dict:
    engine, command = words[0], words[1]
    schema = msargs.schema_for(engine, command)
    args: dict[str, Any] = {}
    tokens = words[2:]
    for k, tok in enumerate(tokens):
        if tok in _SHELL_OPERATORS or _REDIRECTION.match(tok):
            notes.append(f"{source}:{lineno}: `{' '.join(tokens[k:])}` (redirection/pipe) is not part of the recipe")
            tokens = tokens[:k]
            break
    for tok in tokens:
        said = lookalike(tok)
        if said:
            notes.append(f"{source}:{lineno}: {said}")
    if "--" in tokens:
        notes.append(f"{source}:{lineno}: `--` ends the options: ms-swift's parser reads what follows as positional "
                     "values and stops (remaining_argv); imported as if it were not there -- remove it")
        tokens = [t for t in tokens if t != "--"]
    if tokens and not _is_option(tokens[0]):
        notes.append(f"{source}:{lineno}: positional `{tokens[0]}` (a config file?) is not imported")
    for tok, *values in _option_groups(tokens):
        if not _is_option(tok):
            continue
        if not tok.startswith("--"):
            notes.append(f"{source}:{lineno}: `{tok}` is not an ms-swift option (they start with `--`): its parser "
                         "stops on it (remaining_argv); imported as written for the recipe check to report")
        name = tok[2:] if tok.startswith("--") else tok
        if "=" in name:
            name, _, inline = name.partition("=")
            values = [inline]
        if name not in schema.fields:
            name, values = _as_parser_reads(schema, name, values, notes, f"{source}:{lineno}")
        if name in args:
            notes.append(f"{source}:{lineno}: --{name} given twice; the last one wins, as in ms-swift")
        args[name] = _typed(schema.fields.get(name), values)
        if is_secret_arg(name) and not env_reference(args[name]):
            var = secret_arg_env(name)
            args[name] = f"${var}"
            notes.append(f"{source}:{lineno}: --{name} is a credential: the recipe says `{name}: ${var}`; "
                         f"export {var}=... in your shell (the value is not copied)")
    launch: dict[str, Any] = {}
    recipe_env: dict[str, str] = {}
    for name, value in env.items():
        if is_secret(name):
            notes.append(f"{name} looks like a secret: not copied into the recipe; export it in your shell")
        elif name in RANK_VARS:
            notes.append(f"{name} is per node; `swift-ext submit` / the launcher sets it")
        elif name not in LAUNCH_VARS:
            recipe_env[name] = value
    devices = env.get("CUDA_VISIBLE_DEVICES")
    if devices is not None and "$" in devices:
        notes.append(f"{source}:{lineno}: CUDA_VISIBLE_DEVICES={devices} is decided at run time; not imported")
        devices = None
    listed = len([d for d in devices.split(",") if d.strip()]) if devices is not None else None
    # Sizes the scheduler decides (PAI-DLC: NNODES=$WORLD_SIZE, NPROC_PER_NODE unset or from nvidia-smi) stay
    # symbolic: `launch.*: scheduler`, and `plan` lists the world sizes the layout works at.
    nodes_by_scheduler = _symbolic(env.get("NNODES"))
    gpus_by_scheduler = _symbolic(env.get("NPROC_PER_NODE")) or (
        nodes_by_scheduler and "NPROC_PER_NODE" not in env and listed is None)
    nproc = None if gpus_by_scheduler else _count(
        env, "NPROC_PER_NODE", notes, source, lineno,
        f"launch.gpus_per_node set to {listed or 1} ({'from CUDA_VISIBLE_DEVICES' if listed else 'a guess'})")
    launch["gpus_per_node"] = SCHEDULER if gpus_by_scheduler else (
        nproc if nproc is not None else (listed if listed is not None else 1))
    if engine == "swift" and listed is not None and listed > 1 and "NPROC_PER_NODE" not in env \
            and "NNODES" not in env:
        # Without NPROC_PER_NODE / NNODES ms-swift starts no torchrun (swift/cli/main.py use_torchrun): ONE process
        # sees every listed GPU and spreads the model over them (device_map; utils/env.py is_mp) -- not one process
        # per GPU. One process per node keeps that (launch.build_launch then sets no NPROC_PER_NODE), the device
        # list stays in env.
        launch["gpus_per_node"] = 1
        notes.append(f"{source}:{lineno}: CUDA_VISIBLE_DEVICES={devices} without NPROC_PER_NODE: ms-swift runs one "
                     f"process that spreads the model over the {listed} GPUs (device_map): launch.gpus_per_node: 1 "
                     f"with the devices kept in env (for one process per GPU: gpus_per_node: {listed} and no "
                     "CUDA_VISIBLE_DEVICES)")
    if gpus_by_scheduler:
        notes.append(f"{source}:{lineno}: NPROC_PER_NODE={env.get('NPROC_PER_NODE', '(unset)')} is decided on the "
                     "node: launch.gpus_per_node: scheduler (`swift-ext plan --gpus-per-node G` checks a size)")
    if devices is not None and (gpus_by_scheduler or devices != ",".join(str(k) for k in range(launch["gpus_per_node"]))):
        recipe_env["CUDA_VISIBLE_DEVICES"] = devices  # a particular device set: keep it as written
    if nproc == 1 and engine == "swift":
        recipe_env["NPROC_PER_NODE"] = "1"  # swift-ext omits it for one GPU; the script asked for it
    if nodes_by_scheduler:
        launch["nodes"] = SCHEDULER
        notes.append(f"{source}:{lineno}: NNODES={env['NNODES']} is decided by the scheduler: launch.nodes: scheduler "
                     "(`swift-ext plan` lists the world sizes the layout works at; --nodes N checks one)")
    else:
        nodes = _count(env, "NNODES", notes, source, lineno, "launch.nodes set to 1: set it to the number of nodes "
                       "(or `swift-ext submit --nodes N`)")
        launch["nodes"] = nodes if nodes is not None else 1
    data: dict[str, Any] = {}
    if comment:
        data["description"] = comment
    data.update({"command": command, "engine": engine, "launch": launch})
    if recipe_env:
        data["env"] = recipe_env
    data["args"] = args
    return data


# A redirection word as shellwords.split_words leaves it: `>log`, `2>&1`, `&>log`, `<in`.
_REDIRECTION = re.compile(r"(\d*[<>]|&>)")


def _is_option(word: str) -> bool:
    """An option-like word to argparse: `--name`, or `-x...` that is not a negative number (`-1`, `-0.5`)."""
    return word.startswith("--") or bool(re.match(r"-[A-Za-z]", word))


def _option_groups(tokens: list[str]) -> list[list[str]]:
    """conventions.flag_groups as ms-swift's argparse reads a script: a `-lr` word ends the values of the flag
    before it (an option to argparse, which then refuses it) instead of becoming one of them."""
    groups: list[list[str]] = []
    for word in tokens:
        if _is_option(word) or not groups:
            groups.append([word])
        else:
            groups[-1].append(word)
    return groups


def _symbolic(text: str | None) -> bool:
    """A size the shell or scheduler computes: `$WORLD_SIZE`, `${WORLD_SIZE}`, `$(nvidia-smi ...)`."""
    return text is not None and "$" in text


def _count(env: dict, name: str, notes: list, source: str, lineno: int, fallback: str) -> int | None:
    """An integer launch variable (NPROC_PER_NODE, NNODES); None, with a note, when the shell decides it."""
    text = env.get(name)
    if text is None:
        return None
    digits = len(text.strip())
    if re.fullmatch(r"\s*\d+\s*", text) and digits > 9:  # int() refuses past 4300 digits; no machine has 1e9 nodes
        raise UserError.one(f"{name}={text.strip()[:12]}... ({digits} digits) is not a count", file=source,
                            line=lineno, hint=f"set {name} to the number of {'nodes' if name == 'NNODES' else 'GPUs'}")
    if re.fullmatch(r"\s*\d+\s*", text) and int(text) >= (0 if name == "NPROC_PER_NODE" else 1):
        return int(text)
    notes.append(f"{source}:{lineno}: {name}={text} is not a fixed count; {fallback}")
    return None


def _typed(spec: msargs.ArgField | None, values: list[str]) -> Any:
    if not values:
        return True  # bare flag: ms-swift's HfArgumentParser reads it as true
    read = msargs.parser_type(spec.type) if spec else {"kind": "any"}  # what ms-swift's parser makes of the text
    if read["kind"] == "list":
        return [_scalar(read.get("item", {"kind": "str"}), v) for v in values]
    if len(values) > 1:
        return [_scalar({"kind": "any"}, v) for v in values]
    return _scalar(spec.type if spec else {"kind": "any"}, values[0])


def _scalar(ftype: dict, text: str) -> Any:
    return typed_text(text, ftype)


def recipe_yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)
