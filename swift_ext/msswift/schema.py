"""ms-swift's argument dataclasses, read from the installed source without importing it.

Importing `swift.megatron.arguments` imports mcore_bridge, which imports transformer_engine (CUDA
only) at import time, and importing any of ms-swift pulls in torch (seconds). So we parse the
source files with `ast`, follow the base classes across modules (ms-swift -> transformers), build
each dataclass's field list the way `dataclasses` does (reverse MRO, later wins), and cache the
result keyed on the installed versions. `swift-ext` then validates recipes in milliseconds on a
laptop or login node with no GPU.

When ms-swift is not installed (a laptop with only the light base install), the snapshot bundled in
`swift_ext/data/` (generated from ms-swift 4.6.0 by `python -m swift_ext.msswift.schema`, and tested
against the installed copy) is used, and the plan says so.
"""

from __future__ import annotations

import datetime
import difflib
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from swift_ext.spec.cachedirs import cached_json
from swift_ext.spec.findings import shown
from swift_ext.msswift.source_reader import _package_dir  # noqa: F401 -- also read by planner.layout, msswift.rules

# (engine, command) -> (module, class). Read from swift/megatron/arguments/__init__.py and
# swift/arguments/__init__.py of ms-swift 4.6.
DATACLASSES: dict[tuple[str, str], tuple[str, str]] = {
    ("megatron", "sft"): ("swift.megatron.arguments.sft_args", "MegatronSftArguments"),
    ("megatron", "rlhf"): ("swift.megatron.arguments.rlhf_args", "MegatronRLHFArguments"),
    ("megatron", "pt"): ("swift.megatron.arguments.pretrain_args", "MegatronPretrainArguments"),
    ("megatron", "export"): ("swift.megatron.arguments.export_args", "MegatronExportArguments"),
    ("swift", "sft"): ("swift.arguments.sft_args", "SftArguments"),
    ("swift", "rlhf"): ("swift.arguments.rlhf_args", "RLHFArguments"),
    ("swift", "pt"): ("swift.arguments.pretrain_args", "PretrainArguments"),
    ("swift", "export"): ("swift.arguments.export_args", "ExportArguments"),
    ("swift", "infer"): ("swift.arguments.infer_args", "InferArguments"),
}

# ms-swift 3.x / Megatron-LM names that 4.x replaced (ms-swift 4.0 release notes and its Megatron
# argument docs). A recipe using one gets told the new name.
RENAMED: dict[str, str] = {
    "train_type": "tuner_type",
    "load": "mcore_model",
    "save": "output_dir",
    "max_epochs": "num_train_epochs",
    "eval_interval": "eval_steps",
    "save_interval": "save_steps",
    "num_workers": "dataloader_num_workers",
    "adapter_load": "mcore_adapter",
    "ref_load": "mcore_ref_model",
    "ref_adapter_load": "mcore_ref_adapter",
    "log_interval": "logging_steps",
    "train_iters": "max_steps",
    "seq_length": "max_length",
    "tensorboard_dir": "logging_dir",
    # Megatron-LM's virtual-pipeline and GC names, which ms-swift 3.x passed through and 4.6's MegatronArguments
    # spells its own way (megatron_args.py: virtual_pipeline_model_parallel_size, microbatch_group_size_per_vp_stage,
    # manual_gc_steps).
    "num_virtual_stages_per_pipeline_rank": "virtual_pipeline_model_parallel_size",
    "microbatch_group_size_per_virtual_pipeline_stage": "microbatch_group_size_per_vp_stage",
    "manual_gc_interval": "manual_gc_steps",
}

# ms-swift 3.x's vLLM engine names (swift/llm/argument/infer_args.py VllmArguments: gpu_memory_utilization,
# tensor_parallel_size, ...; GRPO kept `tensor_parallel_size` as a deprecated alias of vllm_tensor_parallel_size),
# which 4.x's VllmArguments prefixes with vllm_. Only for the swift engine: a megatron script's tensor_parallel_size was
# never an argument there, and reading it as the rollout engine's TP would hide what the author meant.
VLLM_RENAMED: dict[str, str] = {
    "gpu_memory_utilization": "vllm_gpu_memory_utilization",
    "tensor_parallel_size": "vllm_tensor_parallel_size",
    "pipeline_parallel_size": "vllm_pipeline_parallel_size",
    "max_num_seqs": "vllm_max_num_seqs",
    "disable_custom_all_reduce": "vllm_disable_custom_all_reduce",
    "enforce_eager": "vllm_enforce_eager",
    "limit_mm_per_prompt": "vllm_limit_mm_per_prompt",
    "enable_prefix_caching": "vllm_enable_prefix_caching",
}

# Argument values 4.x renamed: 3.x's reranker losses (swift/plugin/loss.py loss_mapping: reranker, generative_reranker,
# listwise_reranker, listwise_generative_reranker) are 4.6's pointwise_reranker / listwise_reranker (swift/loss/
# mapping.py loss_map), the generative form chosen by task_type generative_reranker. ms-swift 2.x's DeepSpeed presets
# (its prepare_deepspeed mapping: default-zero2, default-zero3, zero2-offload, zero3-offload) are 4.6's zero2, zero3,
# zero2_offload, zero3_offload (SftArguments._init_deepspeed); 4.6 reads an old name as JSON text and fails.
RENAMED_VALUES: dict[str, dict[str, str]] = {
    "deepspeed": {
        "default-zero2": "zero2",
        "default-zero3": "zero3",
        "zero2-offload": "zero2_offload",
        "zero3-offload": "zero3_offload",
    },
    "loss_type": {
        "reranker": "pointwise_reranker",
        "generative_reranker": "pointwise_reranker",
        "listwise_generative_reranker": "listwise_reranker",
    },
}

# ms-swift 3.x's negated fusion switches, which 4.x turned round: 3.x documents `no_gradient_accumulation_fusion:
# Default is False. Specify --no_gradient_accumulation_fusion true to disable ...` (docs/source_en/Megatron-SWIFT/
# Command-line-parameters.md, 3.x), and ms-swift 4.6's MegatronArguments has `gradient_accumulation_fusion: bool =
# True` (swift/megatron/arguments/megatron_args.py), the same for masked_softmax and bias_dropout. So 3.x's
# `--no_X true` is 4.x's `X: false`. (4.6's parser reads a bare --no_X as X false, but `--no_X true` leaves `true`
# over and SwiftPipeline._parse_args raises on it.) Those three are the 3.x name without `no_`; 3.x's
# `no_rope_fusion: bool = False` (its MegatronArguments: RoPE fusion on unless MLA turned it off) is 4.6's
# `apply_rope_fusion: bool = False` (megatron_args.py; mcore's TransformerConfig field), the other way round too --
# so a 3.x script's `--no_rope_fusion false` asks for the fused RoPE 4.6 leaves off by default. 3.x's
# `no_bias_swiglu_fusion: bool = False` (its MegatronArguments, handed to Megatron-LM's parser as
# --no-bias-swiglu-fusion, dest bias_swiglu_fusion) reached the config as Megatron-LM's core_transformer_config_from_args
# wrote it, `kw_args['bias_activation_fusion'] = args.bias_swiglu_fusion` for a swiglu model; 4.6 sets the config
# field directly, `bias_activation_fusion: bool = True` (megatron_args.py). For a non-swiglu model 3.x's switch did
# nothing and 4.x's `false` turns off the bias-GeLU fusion too: a slower kernel, not another result.
NEGATED_RENAMED: dict[str, str] = {
    "no_gradient_accumulation_fusion": "gradient_accumulation_fusion",
    "no_masked_softmax_fusion": "masked_softmax_fusion",
    "no_bias_dropout_fusion": "bias_dropout_fusion",
    "no_rope_fusion": "apply_rope_fusion",
    "no_bias_swiglu_fusion": "bias_activation_fusion",
}

# 3.x Megatron names 4.6 spells in another unit: 3.x's MegatronArguments `distributed_timeout_minutes` (minutes) is
# 4.6's `ddp_timeout` in seconds (swift/utils/torch_utils.py init_process_group: timedelta(seconds=timeout);
# swift/megatron/utils/megatron_lm_utils.py _initialize_mpu: distributed_timeout_minutes = ddp_timeout // 60).
# name -> (4.x name, factor)
MEGATRON_RESCALED: dict[str, tuple[str, int]] = {
    "distributed_timeout_minutes": ("ddp_timeout", 60),
}

# 3.x arguments with no 4.x counterpart.
REMOVED: dict[str, str] = {
    "load_safetensors": "not an argument in ms-swift 4.x (mcore-bridge reads HF safetensors directly); remove it",
    "num_infer_workers": "ms-swift 3.4's count of colocated vLLM engines; 3.5+ colocates with `vllm_mode: colocate`, "
                         "one engine per vllm_tensor_parallel_size ranks; remove it",
    "gc_collect_after_offload": "deprecated in ms-swift 3.x GRPO and gone in 4.x (the rollout code empties the cache "
                                "itself: rlhf_trainers/utils.py aggressive_empty_cache); remove it",
}

# 3.x Megatron-only arguments with no 4.x counterpart. use_flash_attn was Megatron-LM's switch that ms-swift 3.x passed
# through (MegatronArguments: use_flash_attn False beside attention_backend 'flash'); 4.6's MegatronArguments has only
# attention_backend (default 'flash'). For the swift engine it was never an argument (OTHER_NAMES says so).
MEGATRON_REMOVED: dict[str, str] = {
    "use_flash_attn": "Megatron-LM's switch, not an ms-swift 4.x argument: 4.x's attention_backend (default flash) "
                      "chooses the kernel; remove it",
    # 3.x passed it to Megatron-LM's training_log (TFLOP/s per GPU); 4.6's Megatron trainer logs through its own
    # callbacks (swift/megatron/callbacks: print, tensorboard, wandb, swanlab), none of which computes throughput.
    "log_throughput": "Megatron-LM's TFLOP/s log, which ms-swift 4.6's Megatron trainer does not have (its print "
                      "callback logs train_speed(s/it) every logging_steps); remove it",
}

# Older ms-swift names, and names from other tools, that users pass and the parser refuses (`remaining_argv`), where
# difflib's nearest field would mislead (use_flash_attn -> use_flash_ckpt): the name the maintainers pointed to.
OTHER_NAMES: dict[str, str] = {
    "sft_type": "ms-swift 2.x's name for the tuner: use `tuner_type` (ms-swift#3763)",
    "use_flash_attn": "not an ms-swift argument: flash attention is `attn_impl: flash_attn` (ms-swift#2962)",
}

# TRL's names for what ms-swift calls otherwise: its parser refuses them (`remaining_argv`), as reported in
# ms-swift#4958 and ms-swift#8259 (--max_prompt_length on GRPO).
TRL_NAMES: dict[str, str] = {
    "max_prompt_length": "a TRL name, not an ms-swift argument: in GRPO/PPO ms-swift's `max_length` is the prompt limit",
}

SNAPSHOT = Path(__file__).parent / "msswift-args.json"


@dataclass(frozen=True)
class ArgField:
    name: str
    type: dict  # {"kind": bool|int|float|str|list|dict|any|literal|union, ...}
    default: Any
    help: str


@dataclass(frozen=True)
class ArgSchema:
    """The arguments one ms-swift command accepts."""

    dataclass_name: str
    fields: dict[str, ArgField]
    origin: str  # "ms-swift 4.6.0 (installed)" or "... (bundled snapshot)"

    def suggest(self, name: str, near: bool = True) -> str | None:
        """A hint for an unknown `name`: a renamed or removed argument, another spelling, and (with `near`) the
        closest field name -- difflib over every field, ~7 ms a name: callers stop asking after a few."""
        # The tables and fields are spelled with ASCII underscores in lower case; a key written with dashes
        # (transformers' HfArgumentParser also takes --lora-rank, but swift-ext's checks read lora_rank), in another
        # case (argparse is case-sensitive) or in full-width letters is looked up as that spelling too.
        plain = unicodedata.normalize("NFKC", name).replace("-", "_").lower()
        for key in dict.fromkeys((name, plain)):
            found = self._from_tables(key)
            if found:
                return found
        if plain in self.fields:
            return f"did you mean `{plain}`? (recipes spell arguments as ms-swift's field names)"
        for key in dict.fromkeys((name, plain)) if near else ():
            # difflib is quadratic in the name's length: a name far longer than any field is near none of them
            close = difflib.get_close_matches(key, self.fields, n=1, cutoff=0.75) if len(key) <= 200 else []
            if close:
                return f"did you mean `{close[0]}`?"
        return None

    def _from_tables(self, name: str) -> str | None:
        megatron = self.dataclass_name.startswith("Megatron")
        if name in REMOVED:
            return REMOVED[name]
        if megatron and name in MEGATRON_REMOVED:
            return MEGATRON_REMOVED[name]
        if name in OTHER_NAMES:
            return OTHER_NAMES[name]
        if name in TRL_NAMES and "max_length" in self.fields:
            return TRL_NAMES[name]
        renamed = RENAMED.get(name) or (None if megatron else VLLM_RENAMED.get(name))
        if renamed in self.fields:
            return f"`{name}` was renamed in ms-swift 4.x: use `{renamed}`"
        return None


# --------------------------------------------------------------------------------------------------
# Public entry point


def schema_for(engine: str, command: str) -> ArgSchema:
    all_schemas, origin = _load_all()
    module, cls = DATACLASSES[(engine, command)]
    raw = all_schemas[cls]
    return ArgSchema(
        dataclass_name=cls,
        fields={name: ArgField(name, f["type"], f["default"], f["help"]) for name, f in raw.items()},
        origin=origin,
    )


def installed_version() -> str | None:
    try:
        return importlib.metadata.version("ms-swift")
    except importlib.metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def _load_all() -> tuple[dict, str]:
    version = installed_version()
    if version is None or os.environ.get("SWIFT_EXT_ARGS_SNAPSHOT") == "1":
        data = json.loads(SNAPSHOT.read_text())
        return data["classes"], f"ms-swift {data['ms_swift']} (bundled snapshot; ms-swift not installed)"
    table = cached_json(f"msswift-args-{_cache_key(version)}.json",
                        lambda: {"ms_swift": version, "classes": extract_all()})
    return table["classes"], f"ms-swift {version} (installed)"


def _cache_key(version: str) -> str:
    # Versions alone miss editable installs of ms-swift; the argument files' mtimes catch edits.
    parts = [version, _dist_version("transformers") or "-"]
    root = _package_dir("swift")
    if root:
        for sub in ("arguments", "megatron/arguments", "trainers", "rlhf_trainers"):
            d = root / sub
            if d.is_dir():
                parts.append(str(max((p.stat().st_mtime_ns for p in d.glob("*.py")), default=0)))
    import hashlib

    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def extract_all() -> dict[str, dict]:
    """Field tables of every dataclass in DATACLASSES, from the installed source."""
    from swift_ext.msswift.source_reader import _SourceReader

    reader = _SourceReader()
    out = {}
    for module, cls in DATACLASSES.values():
        out[cls] = reader.dataclass_fields(module, cls)
    return out


# --------------------------------------------------------------------------------------------------
# Checking one value against a field's type, the way HfArgumentParser would parse its text


def check_argv(argv: list[str]) -> list[str]:
    """What ms-swift's parser would refuse in a command line swift-ext built itself (merge, infer):
    flags its dataclass does not have, values it cannot parse. Checked before anything is loaded."""
    schema = schema_for(argv[0], argv[1])
    problems = []
    i = 2
    while i < len(argv):
        name = argv[i][2:] if argv[i].startswith("--") else None
        j = i + 1
        while j < len(argv) and not argv[j].startswith("--"):
            j += 1
        values = argv[i + 1 : j]
        spec = schema.fields.get(name) if name else None
        if name is None:
            problems.append(f"`{argv[0]} {argv[1]}`: stray value {argv[i]!r}")
        elif spec is None:
            problems.append(f"`{argv[0]} {argv[1]}` has no argument --{name} ({schema.dataclass_name})")
        else:
            value = values if spec.type["kind"] == "list" else (values[0] if len(values) == 1 else values or True)
            expected = check_value(spec.type, value)
            if expected:
                problems.append(f"`{argv[0]} {argv[1]}` --{name}: expected {expected}")
        i = j
    return problems


def check_value(ftype: dict, value: Any) -> str | None:
    """None when `value` would parse as `ftype`; else what was expected."""
    if value is None:
        return None
    kind = ftype["kind"]
    if kind == "list":
        items = value if isinstance(value, list) else [value]
        for item in items:
            problem = check_value(ftype.get("item", {"kind": "any"}), item)
            if problem:
                return f"{describe(ftype)}; item {shown(item)}: {problem}"
        return None
    if isinstance(value, list) and kind == "union" and parser_type(ftype)["kind"] == "str":
        # ms-swift's parser reads one string here (parser_type): `--cp_comm_type a2a p2p` leaves `p2p` over and
        # SwiftPipeline._parse_args stops with `remaining_argv: ['p2p']`; a one-item list would reach the config as
        # a string, not the list it says.
        return (f"one value, not a list (ms-swift's HfArgumentParser reads this {describe(ftype)} argument as a "
                f"single string: a list on its command line stops it with remaining_argv), got the list {shown(value)}")
    if isinstance(value, list) and kind != "union":
        return f"{describe(ftype)}, got a list"
    if kind == "union":
        errors = [check_value(opt, value) for opt in ftype["options"]]
        if any(e is None for e in errors):
            return None
        # a mapping refused by the mapping option: that option's reason, not "a mapping or a string"
        mapping = [e for opt, e in zip(ftype["options"], errors) if isinstance(value, dict) and opt["kind"] == "dict"]
        return mapping[0] if mapping else f"{describe(ftype)}, got {shown(value)}"
    if kind == "dict":
        if isinstance(value, dict):
            try:  # the command line carries it as JSON (render_scalar): a YAML date or set has no JSON form
                json.dumps(value)
            except (TypeError, ValueError) as exc:
                return f"a mapping of JSON values (quote dates and other YAML-typed words), got {shown(value)}: {exc}"
            return None
        if isinstance(value, str):
            try:
                if isinstance(json.loads(value), dict):
                    return None
            except (ValueError, RecursionError):  # RecursionError: nested past the JSON decoder's depth
                pass
        return f"a mapping (or a JSON object string), got {shown(value)}"
    if isinstance(value, dict):
        return f"{describe(ftype)}, got a mapping"
    if kind == "bool":
        if isinstance(value, bool) or str(value).lower() in {"true", "false", "1", "0", "yes", "no"}:
            return None
        return f"true or false, got {shown(value)}"
    if kind == "int":
        if isinstance(value, bool):
            return f"an integer, got {shown(value)}"
        if isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"[-+]?\d+", value.strip())):
            return None
        return f"an integer, got {shown(value)}"
    if kind == "float":
        if isinstance(value, bool):
            return f"a number, got {shown(value)}"
        try:
            number = float(value)
        except (TypeError, ValueError):
            return f"a number, got {shown(value)}"
        # 1e400 reads as inf and would reach ms-swift as `--lr inf`: no argument means infinity or NaN.
        return None if math.isfinite(number) else f"a finite number, got {shown(value)}"
    if kind == "literal":
        choices = ftype["choices"]
        if value in choices or render_scalar(value) in [render_scalar(c) for c in choices]:
            return None
        # difflib is quadratic in the length: a value far longer than any choice is near none of them
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1) if len(str(value)) <= 200 else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"one of {', '.join(map(str, choices))}, got {shown(value)}{hint}"
    if not isinstance(value, (str, int, float, bool)):
        # YAML's !!binary, !!set and timestamps: ms-swift's command line would get Python's text of them (b'hello',
        # {'a'}, 2024-01-01 00:00:00), not what the recipe shows
        what = ("binary data (!!binary)" if isinstance(value, (bytes, bytearray)) else "a set (!!set)"
                if isinstance(value, (set, frozenset)) else "a date" if isinstance(value, datetime.date)
                else type(value).__name__)
        return (f"{describe(ftype)}, got {what} {shown(value)}: a command line has no form for it (YAML typed the value: "
                "quote it, e.g. '2024-01-01')")
    if kind == "str" and isinstance(value, bool):
        # A string argument never means true/false; YAML read a bare yes/no/on/off/true/false as a boolean, and
        # ms-swift would get "--x false" (e.g. eval_strategy: no -> false, which it refuses at start-up).
        return (f"a string, got the boolean {render_scalar(value)} (YAML reads a bare yes/no/on/off as a boolean: "
                f"quote the word, e.g. 'no')")
    return None  # str / any: every scalar's text is a valid string


def parser_type(ftype: dict) -> dict:
    """The type ms-swift's HfArgumentParser gives a field's command-line text (transformers 5.x hf_argparser
    _parse_dataclass_field, reached through swift/utils/utils.py parse_args): a union holding str and None (Optional)
    is read as one string -- cp_comm_type's Optional[Union[str, List[str]]] gets type=str, nargs=None; checked on
    MegatronSftArguments' own parser in tests/test_hostile_new_paths.py -- and a union of str and one other type
    without None as that other type (debug: Union[str, list[DebugOption]] -> nargs '+')."""
    if ftype["kind"] != "union" or not any(o["kind"] == "str" for o in ftype["options"]):
        return ftype
    if ftype.get("optional") or any(o.get("optional") or o["kind"] == "none" for o in ftype["options"]):
        return {"kind": "str"}
    others = [o for o in ftype["options"] if o["kind"] != "str"]
    return others[0] if len(others) == 1 else ftype


def describe(ftype: dict) -> str:
    """A declared type (an ms-swift argument's, or a megatron-core config field's) as a recipe author reads it."""
    kind = ftype["kind"]
    if kind == "literal":
        text = "one of " + ", ".join(map(repr, ftype["choices"]))
    elif kind == "union":
        text = " or ".join(describe(o) for o in ftype["options"])
    elif kind == "list":
        items = {"bool": "booleans", "int": "integers", "float": "numbers", "str": "strings", "dict": "mappings"}
        item = ftype.get("item", {}).get("kind")
        text = f"a list of {items[item]}" if item in items else "a list"
    else:
        text = {"bool": "a boolean", "int": "an integer", "float": "a number", "str": "a string",
                "dict": "a mapping", "any": "any value"}.get(kind, kind)
    return text + (" or null" if ftype.get("optional") else "")


def render_scalar(value: Any) -> str:
    """A value as ms-swift's command line takes it: booleans lower-case, floats shortest."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _short_float(value)
    if isinstance(value, dict):
        try:
            return json.dumps(value, separators=(",", ":"))
        except (TypeError, ValueError):  # a YAML date (check_value refuses it): its text, so the plan still prints
            return json.dumps(_as_text(value), separators=(",", ":"))
    return str(value)


def _as_text(value: Any) -> Any:
    """VALUE with every key, and every value JSON has no form for, as its text."""
    if isinstance(value, dict):
        return {k if isinstance(k, (str, int, float, bool)) or k is None else str(k): _as_text(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_text(v) for v in value]
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def write_snapshot(path: Path = SNAPSHOT) -> Path:
    """Regenerate the bundled snapshot from the installed ms-swift (run after upgrading ms-swift)."""
    version = installed_version()
    if version is None:
        raise RuntimeError("ms-swift is not installed")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"ms_swift": version, "classes": extract_all()}, indent=0, sort_keys=False) + "\n")
    return path


if __name__ == "__main__":
    print(write_snapshot())


def _short_float(value: float) -> str:
    """The shorter of Python's repr and exponent notation: 0.0001 -> 1e-4, 0.05 stays 0.05."""
    plain = repr(value)
    if value != value or value in (float("inf"), float("-inf")) or value == 0:
        return plain
    for digits in range(17):
        text = f"{value:.{digits}e}"
        if float(text) == value:
            break
    mantissa, exp = text.split("e")
    sign = "-" if exp.startswith("-") else ""
    exp_text = f"{mantissa}e{sign}{exp.lstrip('+-').lstrip('0') or '0'}"
    return exp_text if len(exp_text) < len(plain) else plain
