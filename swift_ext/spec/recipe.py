"""Recipe files -> one resolved, frozen `Recipe`.

A recipe is YAML: `command`, `engine`, `launch`, `env`, `description`, `extends`, and `args`, whose
keys are ms-swift's own argument names. `extends` pulls in base recipes (deep-merged, later wins);
command-line overrides (`args.max_length=4096`) are applied last. Every key remembers the file and line it
came from so that later checks can point at it.
"""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from swift_ext.spec.findings import Finding, UserError, shortened, shown
from swift_ext.spec.gpus import GPUS
from swift_ext.spec.yamlio import Position, load_yaml, read_scalar

OVERRIDE = "command line"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NODES = 8192
MAX_GPUS_PER_NODE = 64
# A time limit as sbatch --time reads it (Slurm's time_str2mins): MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS,
# or UNLIMITED / INFINITE in any case, or -1 (time_str2secs: `!xstrcasecmp(string, "-1")` is INFINITE too).
SLURM_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$|^-1$|^(?i:UNLIMITED|INFINITE)$")
SLURM_TIME_FORMS = "MM, HH:MM:SS, D-HH:MM:SS or UNLIMITED"
SCHEDULER = "scheduler"


class _Section(BaseModel):
    """A recipe section: its numeric fields take numbers, not booleans (pydantic's lax mode reads true as 1, so
    `eval.limit: true` evaluated one row)."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info) -> Any:
        kinds = typing.get_args(cls.model_fields[info.field_name].annotation) or (
            cls.model_fields[info.field_name].annotation,)
        numeric = set(kinds) <= {int, float, type(None)} and bool(set(kinds) & {int, float})
        if isinstance(value, bool) and numeric:
            raise ValueError(f"expected a number, got the boolean {str(value).lower()} (true or false is no count "
                             "or size)")
        return value


class Resources(_Section):
    """The recipe's `launch:` section: how many nodes and GPUs, and which GPU model. (The process to start,
    argv and environment, is swift_ext.planner.launch.Launch.)"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The upper bounds catch typos (1e9) before anything is sized by them (a process or device per GPU).
    # "scheduler": the cluster's scheduler decides (PAI-DLC's NNODES=$WORLD_SIZE, NPROC_PER_NODE from
    # nvidia-smi); `plan` then lists the world sizes the layout works at (planner/scheduled.py).
    nodes: int | Literal["scheduler"] = Field(
        1, description="Number of nodes (NNODES). 1 for a single machine; `scheduler` when the cluster decides.")
    gpus_per_node: int | Literal["scheduler"] = Field(
        1, description="GPUs used on each node (NPROC_PER_NODE). 0 runs on the CPU; `scheduler` when the "
        "cluster decides.")
    gpu: str | None = Field(
        None, description=f"GPU model, one of: {', '.join(GPUS)}. Sets memory and FP8 support."
    )
    gpu_memory_gib: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Usable memory per GPU in GiB; defaults to the GPU model's."
    )

    @field_validator("nodes", "gpus_per_node", mode="before")
    @classmethod
    def _size(cls, value: Any, info) -> Any:
        # One message for the int-or-"scheduler" union (pydantic would report each branch separately).
        if value == SCHEDULER:
            return value
        low, high = (1, MAX_NODES) if info.field_name == "nodes" else (0, MAX_GPUS_PER_NODE)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"expected a whole number greater than or equal to {low} and at most {high}, or "
                             f"'{SCHEDULER}', got {shown(value)}")
        return value

    @field_validator("gpu")
    @classmethod
    def _known_gpu(cls, value: str | None) -> str | None:
        if value is not None and value not in GPUS:
            close = difflib.get_close_matches(value, GPUS, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"unknown GPU model {shown(value)}, expected one of {', '.join(GPUS)}{hint}")
        return value

    @property
    def scheduled(self) -> list[str]:
        """The sizes left to the scheduler: "nodes", "gpus_per_node", or none."""
        return [name for name in ("nodes", "gpus_per_node") if getattr(self, name) == SCHEDULER]

    def sized(self, nodes: int, gpus_per_node: int) -> "Resources":
        return self.model_copy(update={"nodes": nodes, "gpus_per_node": gpus_per_node})

    @property
    def world_size(self) -> int:
        if self.scheduled:
            # Callers that need a number get the recipe make_plan sized (planner/scheduled.py).
            raise UserError.one(f"launch.{self.scheduled[0]} is decided by the scheduler: this needs a number",
                                hint="give the sizes: launch.nodes=N launch.gpus_per_node=G (plan: --nodes/--gpus-per-node)")
        return self.nodes * max(self.gpus_per_node, 1)

    @property
    def memory_gib(self) -> float | None:
        if self.gpu_memory_gib is not None:
            return self.gpu_memory_gib
        return GPUS[self.gpu].memory_gib if self.gpu else None


class Watch(_Section):
    """Hang detection by the sidecar that `swift-ext submit` starts next to training (swift_ext/runs/watch.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stall_minutes: float | None = Field(
        None, ge=0, description="Minutes without a new logging.jsonl row (or checkpoint) before the run counts "
        "as hung: the ranks' Python stacks are dumped into OUTPUT_DIR/swift-ext-watch/ and the step ends with "
        "exit code 75 so the job requeues and resumes. Default: max(10, 20 x the median minutes between rows); "
        "0 turns hang detection off.")
    startup_minutes: float = Field(
        60, gt=0, description="Allowance before the first logged step (model loading, vLLM start-up, first "
        "compile); stall_minutes, when set, applies from the start instead.")
    max_stall_requeues: int = Field(
        3, ge=0, description="How many times one job requeues itself after a hang before it gives up.")


class EvalLaunch(_Section):
    """Slurm resources of the evaluation jobs (`swift-ext submit`); a local run evaluates on its own machine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: str | None = Field(None, description="Slurm time limit of one checkpoint's evaluation job, e.g. 01:00:00.")
    partition: str | None = Field(None, description="Slurm partition of the evaluation jobs (default: the training's).")
    gpus: int = Field(1, ge=0, le=MAX_GPUS_PER_NODE, description="GPUs of one evaluation job (one node); 0 on CPU.")

    @field_validator("time", mode="before")
    @classmethod
    def _minutes(cls, value: Any) -> Any:
        value = str(value) if isinstance(value, int) and not isinstance(value, bool) else value  # `time: 30`
        if isinstance(value, str) and not SLURM_TIME.match(value):  # else sbatch refuses it at submit, past plan
            raise ValueError(f"not a Slurm time limit ({SLURM_TIME_FORMS})")
        return value


# The metrics swift_ext/after/evalmetrics.py computes itself; eval.metrics may also name a reward function.
EVAL_METRICS = ("exact_match", "math_accuracy", "response_tokens", "response_chars", "hit_token_limit",
                "think_block", "nonempty_think")


class Eval(_Section):
    """Evaluation of every saved checkpoint while the run trains (swift_ext/after/evaluate.py): `swift infer`
    in a separate process (a follower locally, one Slurm job per checkpoint under `submit`), results in
    OUTPUT_DIR/eval/metrics.jsonl. Present (even empty: `eval: {}`) turns it on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str | None = Field(None, description="JSONL file of evaluation rows. Default: the run's validation "
                                "split as `swift-ext infer` resolves it (val_dataset, or split_dataset_ratio).")
    limit: int | None = Field(None, ge=1, description="Only the first N rows of the dataset.")
    every: int = Field(1, ge=1, description="Evaluate every N-th saved checkpoint (the last one always); the "
                       "base model is evaluated once as step 0.")
    metrics: list[str] | None = Field(None, description=f"Metric names: {', '.join(EVAL_METRICS)}, or any reward "
                                      "function ms-swift or swift-ext registers (not one an external_plugins file "
                                      "registers: the evaluation does not import those). Default: every built-in "
                                      "one that applies.")
    num_samples: int = Field(1, ge=1, le=1024, description="Samples per row; above 1 adds pass@k (unbiased "
                             "estimator 1 - C(n-c,k)/C(n,k)) for k = 1, 2, 4, ... n of math_accuracy (or "
                             "exact_match).")
    max_new_tokens: int = Field(512, ge=1, description="Generation limit per sample.")
    temperature: float | None = Field(None, ge=0, description="Sampling temperature; default 0 (greedy) for one "
                                      "sample, 1.0 when num_samples > 1.")
    enable_thinking: bool | None = Field(None, description="Thinking on/off; default: args.enable_thinking.")
    backend: Literal["pt", "transformers", "vllm"] = Field(
        "transformers", description="`swift infer --infer_backend` (pt is ms-swift 3's name for transformers).")
    devices: str | None = Field(None, description="CUDA_VISIBLE_DEVICES of the local evaluation process "
                                "(default: inherited; leave a GPU free for it next to training).")
    launch: EvalLaunch = Field(default_factory=EvalLaunch, description="Slurm resources (see eval.launch.*).")


class Recipe(BaseModel):
    """A run of ms-swift, fully resolved (extends merged, overrides applied) and frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field("", description="One line saying what this recipe is for.")
    command: Literal["sft", "rlhf", "pt"] = Field(
        description="ms-swift command: sft (fine-tuning), rlhf (GRPO, DPO, ...), pt (pre-training)."
    )
    engine: Literal["megatron", "swift"] = Field(
        "megatron",
        description="`megatron` runs `megatron <command>`; `swift` runs `swift <command>` "
        "(transformers backend: small models and CPU).",
    )
    launch: Resources = Field(default_factory=Resources, description="Nodes and GPUs (see launch.*).")
    watch: Watch = Field(default_factory=Watch, description="Hang detection (see watch.*).")
    eval: Eval | None = Field(None, description="Evaluate each checkpoint while training (see eval.*).")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables set for the run, e.g. PYTORCH_CUDA_ALLOC_CONF, "
        "IMAGE_MAX_TOKEN_NUM, VIDEO_MAX_TOKEN_NUM, FPS_MAX_FRAMES.",
    )
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="ms-swift arguments under their own names (`swift-ext args` lists them); "
        "null removes a value inherited from a base recipe.",
    )
    # Where things came from; not part of the recipe's content.
    source: str = Field("", exclude=True, description="The recipe file.")
    positions: dict[str, Position] = Field(default_factory=dict, exclude=True, repr=False)

    @field_validator("env", mode="before")
    @classmethod
    def _env_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            bad = [str(k) for k in value if not isinstance(k, str) or not _ENV_NAME.fullmatch(k)]
            if bad:  # the sbatch script exports these; `export A B=1` or `export =1` breaks it
                raise ValueError(f"{bad[0]!r} is not an environment variable name (letters, digits and _, "
                                 "not starting with a digit)")
            return {k: _env_text(v) for k, v in value.items()}
        return value

    def where(self, dotted: str) -> dict:
        """Location kwargs for a Finding about the key `dotted`."""
        pos = self.positions.get(dotted)
        if pos is None:
            return {"file": self.source, "path": dotted}
        return {"file": pos[0], "line": pos[1] or None, "column": pos[2] or None, "path": dotted}

    def to_yaml_dict(self) -> dict:
        data = self.model_dump(mode="json", exclude_defaults=False)
        if data.get("eval") is None:  # reloaded, `eval:` with no value means "on with defaults"
            data.pop("eval", None)
        return data


def _env_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a recipe file, merge what it extends, apply `path=value` overrides, validate."""
    path = Path(path)
    data, positions = _load_with_extends(path, stack=())
    for text in overrides:
        _apply_override(data, positions, text)
    data.pop("extends", None)
    _refuse_nul(data, positions, path, ())
    odd = [k for k in data if not isinstance(k, str)]  # Recipe(**data) takes only text keywords
    if odd:
        raise UserError([_non_string_key(k, ("?",), path, positions) for k in odd])
    args = data.get("args")
    if isinstance(args, dict):
        # `null` deletes an inherited value: ms-swift then uses its default.
        data["args"] = {k: v for k, v in args.items() if v is not None}
    try:
        return Recipe(
            **data,
            source=str(path),
            positions={".".join(k): v for k, v in positions.items()},
        )
    except ValidationError as exc:
        raise UserError([_pydantic_problem(err, path, positions) for err in exc.errors()]) from None


def _refuse_nul(value: Any, positions: dict, path: Path, key: tuple[str, ...]) -> None:
    """A NUL character (YAML "\\0") cannot travel in argv or the environment: exec refuses it."""
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_nul(v, positions, path, key + (str(k),))
    elif isinstance(value, list):
        for v in value:
            _refuse_nul(v, positions, path, key)
    elif isinstance(value, str) and "\0" in value:
        raise UserError.one("contains a NUL character, which no command line or environment can carry",
                            hint="remove the \\0 escape", **_where(positions, key, path))


def _load_with_extends(path: Path, stack: tuple[Path, ...]) -> tuple[dict, dict]:
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in stack + (resolved,))
        raise UserError.one(f"`extends` cycle: {chain}", file=str(path))
    data, positions = load_yaml(path)
    if data is None:
        raise UserError.one("empty recipe: expected a mapping with at least `command` and `args`", file=str(path))
    if not isinstance(data, dict):
        raise UserError.one(
            f"a recipe must be a YAML mapping, got {type(data).__name__}", file=str(path), line=1
        )
    bases = data.get("extends")
    bases = [] if bases is None else [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise UserError.one(
            "expected a file name or a list of file names", **_where(positions, ("extends",), path)
        )
    if any(not b.strip() for b in bases):  # a template whose name did not get filled in: not "extends nothing"
        raise UserError.one("an empty file name", **_where(positions, ("extends",), path),
                            hint="name the base recipe (e.g. extends: ../base.yaml), or remove `extends`")
    merged: dict = {}
    merged_positions: dict = {}
    for base in bases:
        base_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
        try:
            found = base_path.is_file()
        except OSError as exc:  # a name the filesystem refuses (ENAMETOOLONG): a usage error, not a crash
            raise UserError.one(f"base recipe cannot be read: {exc.strerror or exc}",
                                **_where(positions, ("extends",), path)) from None
        if not found:
            what = ("is a directory, not a file" if base_path.is_dir() else "is not a file (a device or socket?)"
                    ) if base_path.exists() else "not found"
            raise UserError.one(
                f"base recipe {base_path} {what}" if what != "not found" else f"base recipe not found: {base_path}",
                **_where(positions, ("extends",), path)
            )
        base_data, base_positions = _load_with_extends(base_path, stack + (resolved,))
        _deep_merge(merged, base_data)
        merged_positions.update(base_positions)
    for section in ("args", "env", "launch", "watch", "eval"):
        if section == "eval" and section in data and data[section] is None:
            data[section] = {}  # `eval:` alone turns evaluation on with its defaults
        elif section in data and data[section] is None:  # `launch:` with nothing under it: no settings here
            del data[section]
        if section in data and not isinstance(data[section], dict):
            raise UserError.one(
                f"`{section}` must be a mapping of names to values, got {_type_name(data[section])}",
                **_where(positions, (section,), path),
            )
    _deep_merge(merged, data)
    merged_positions.update(positions)
    merged.pop("extends", None)
    return merged, merged_positions


def _deep_merge(into: dict, other: dict) -> None:
    for key, value in other.items():
        if key == "extends":
            continue
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


_TOP_LEVEL = {"description", "command", "engine", "launch", "env", "args", "watch", "eval"}
_SECTIONS = {"launch": Resources, "watch": Watch, "eval": Eval, "eval.launch": EvalLaunch}
_INTERNAL = {"source", "positions"}  # filled by load_recipe, not written by users


def describe_fields() -> list[tuple[str, str, str, str]]:
    """(dotted name, type, default, description) of every recipe field around `args`: what `swift-ext schema`
    prints and docs/recipes.md's generated table holds."""
    rows = []
    for prefix, model in [("", Recipe), *((f"{name}.", model) for name, model in _SECTIONS.items())]:
        for fname, info in model.model_fields.items():
            if fname in _INTERNAL or fname in _SECTIONS and not prefix:
                continue
            kind = getattr(info.annotation, "__name__", None) or str(info.annotation).replace("typing.", "")
            default = "required" if info.is_required() else (
                "(section)" if info.default_factory is not None else repr(info.default))
            rows.append((prefix + fname, kind, default, info.description or ""))
    rows.append(("extends", "str | list[str]", "None", "base recipe file(s), relative to this one; deep-merged, "
                 "later wins"))
    return rows


def _apply_override(data: dict, positions: dict, text: str) -> None:
    if "=" not in text:
        raise UserError.one(
            f"override '{shortened(text)}' is not of the form path=value", file=OVERRIDE, hint="e.g. args.max_length=4096"
        )
    dotted, _, raw = text.partition("=")
    keys = tuple(dotted.strip().split("."))
    if keys[0] not in _TOP_LEVEL:
        close = difflib.get_close_matches(keys[0], _TOP_LEVEL, n=1)
        raise UserError.one(
            f"override for unknown path '{shortened(dotted)}'",
            file=OVERRIDE,
            hint=f"did you mean '{close[0]}'?" if close else f"top-level keys: {', '.join(sorted(_TOP_LEVEL))}",
        )
    section = _SECTIONS.get(".".join(keys[:-1]))
    if section and len(keys) >= 2 and keys[-1] not in section.model_fields:
        close = difflib.get_close_matches(keys[-1], section.model_fields, n=1)
        raise UserError.one(
            f"override for unknown path '{shortened(dotted)}'",
            file=OVERRIDE,
            hint=f"did you mean '{'.'.join(keys[:-1])}.{close[0]}'?" if close else None,
        )
    if keys[0] == "eval" and not (len(keys) == 2 or (len(keys) == 3 and keys[1] == "launch")):
        raise UserError.one(f"override path '{shortened(dotted)}' must be `eval.NAME` or `eval.launch.NAME`", file=OVERRIDE)
    if keys[0] in {"args", "env", "launch", "watch"} and len(keys) != 2:
        raise UserError.one(f"override path '{shortened(dotted)}' must be `{keys[0]}.NAME`", file=OVERRIDE)
    if keys[0] in {"description", "command", "engine"} and len(keys) != 1:
        raise UserError.one(f"override for unknown path '{shortened(dotted)}'", file=OVERRIDE)
    target = data
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = _override_value(dotted, raw, keys[0] == "env")
    positions[keys] = (OVERRIDE, 0, 0)


def _override_value(dotted: str, raw: str, text: bool) -> Any:
    """An override's value typed as the recipe file types it. `text`: an env value, kept as written (as in a file:
    yamlio.VERBATIM_SECTIONS). Text YAML cannot read stays text -- except a list or mapping begun and not
    finished (`[a, b`), or an integer too long to read: those were meant as a value, and as text they would
    reach ms-swift as something else."""
    value, problem = read_scalar(raw)
    if value is None and raw.strip() not in NULL_WORDS:
        # `---` (a document marker), `--- null` or `# x` read as an empty document: the key would be removed
        # silently. In a recipe file `lr: ---` is the text '---'; here too (the type check then names it).
        value = raw.strip()
    if text:  # a scalar YAML typed (010, yes, 1:30, a date) is its text; null, lists and mappings stay (refused)
        return value if value is None or isinstance(value, (str, list, dict)) else raw.strip()
    if problem and (raw.lstrip()[:1] in "[{" or re.fullmatch(r"\s*[-+]?[0-9_]+\s*", raw)):
        raise UserError.one(f"override {dotted}={shortened(raw)}: does not read as a YAML value ({problem})",
                            file=OVERRIDE, path=dotted,
                            hint="close the list or mapping, or quote the whole value for text: "
                            f"{dotted}=\"'{shortened(raw, 20)}'\"")
    return value


# The YAML 1.1 spellings of null: the only override values that remove a key (docs/recipes.md).
NULL_WORDS = frozenset({"null", "Null", "NULL", "~"})


def _where(positions: dict, key: tuple[str, ...], path: Path) -> dict:
    pos = positions.get(key)
    if pos is None:
        return {"file": str(path), "path": ".".join(key)}
    return {"file": pos[0], "line": pos[1] or None, "column": pos[2] or None, "path": ".".join(key)}


def _type_name(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _non_string_key(key: Any, loc: tuple[str, ...], path: Path, positions: dict) -> Finding:
    """A mapping key YAML did not read as text, at the line it was written (positions hold its raw text)."""
    parent = loc[:-1]
    raw = next((k[-1] for k in positions if k[:-1] == parent and len(k) == len(loc) and _yaml_scalar(k[-1]) == key
                and type(_yaml_scalar(k[-1])) is type(key)), str(key))
    where = _where(positions, parent + (raw,), path)
    return Finding(f"key `{raw}` is {_type_name(key) if key is not None else 'null'} to YAML, not a name",
                   hint=f"keys are names: quote it ('{raw}':) if you mean the text, or write the intended name",
                   **where)


def _yaml_scalar(text: str) -> Any:
    return read_scalar(text)[0]  # as the recipe's own loader typed it (spec/yamlio.py)


def _pydantic_problem(err: dict, path: Path, positions: dict) -> Finding:
    loc = tuple(str(p) for p in err["loc"])
    if loc[-1:] == ("[key]",):  # `1:`, `true:`, `~:` -- YAML reads the key as a number, boolean or null
        return _non_string_key(err.get("input"), loc[:-1], path, positions)
    where = _where(positions, loc, path)
    if err["type"] == "extra_forbidden":
        siblings = list(Recipe.model_fields) if len(loc) == 1 else \
            list(_SECTIONS.get(".".join(loc[:-1]), Resources).model_fields)
        siblings = [s for s in siblings if s not in ("source", "positions")]
        close = difflib.get_close_matches(loc[-1], siblings + ["extends"], n=1)
        return Finding(
            "unknown key",
            hint=f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(siblings)}",
            **where,
        )
    if err["type"] == "missing":
        return Finding("required key is missing", **where)
    got = err.get("input")
    message = err["msg"]
    if err["type"] == "literal_error":
        message = f"expected {err['ctx']['expected']}, got {shown(got)}"
    elif err["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    elif not isinstance(got, (dict, list)):
        message = f"{message}, got {shown(got)}"
    return Finding(message, **where)
