"""A checkpoint's args.json as ms-swift 4.6 reads it before its argument checks (both engines): the start-up rules
(startup_rules.py, startup_rules_megatron.py) judge the values a run will have after `load_args` fills them in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

# swift/arguments/base_args/base_args.py BaseArguments.load_args_from_ckpt: of its force_load_keys and its load_keys
# (taken only where the recipe leaves them unset), the ones these rules read; DataArguments' fields come along
# with load_data_args.
FORCE_LOADED = ("tuner_type",)
LOADED_WHEN_UNSET = ("quant_method", "quant_bits")
DATA_KEYS = ("dataset", "cached_dataset")


class SavedArgs(NamedTuple):
    """A checkpoint's args.json as load_args reads it, and the file (for findings that judge its values)."""
    values: dict
    path: str | None = None


def checkpoint_args(args) -> SavedArgs:
    """The args.json ms-swift loads before its own checks: only with load_args (false for training unless stated,
    sft_args.py SftArguments / megatron sft_args.py MegatronSftArguments), from the first adapter directory, else
    the model directory, that holds one (BaseArguments._init_ckpt_dir, swift/model/utils.py get_ckpt_dir; on the
    transformers engine resume_only_model points model or adapters at resume_from_checkpoint first,
    SftArguments.__post_init__). Empty where there is none readable here."""
    if not args.bool("load_args"):
        return SavedArgs({})
    adapters = [str(a) for a in args.list("adapters") or args.list("mcore_adapter")]
    model = args.str("model") or args.str("mcore_model")
    resume = args.str("resume_from_checkpoint")
    if resume and args.bool("resume_only_model"):
        if args.str("tuner_type") == "full":
            model = resume
        else:
            adapters = [resume]
    for directory in [*adapters, *([model] if model else [])]:
        path = Path(directory) / "args.json"
        try:
            saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except (OSError, ValueError, RecursionError):  # RecursionError: nested past the JSON decoder's depth
            saved = None
        if isinstance(saved, dict):
            return SavedArgs(saved, str(path))
    return SavedArgs({})


def loaded(args, key: str, saved: SavedArgs):
    """`key` as ms-swift holds it once `saved` (checkpoint_args) is loaded: BaseArguments.load_args_from_ckpt."""
    return saved.values[key] if _from_file(args, key, saved) else args.raw(key)


def origin(args, key: str, saved: SavedArgs) -> str:
    """Where `key`'s value comes from when it is not the recipe's: words for a finding's message, so a refusal of
    a value the recipe never wrote names the file it was read from."""
    return f" (read from {saved.path} by load_args)" if _from_file(args, key, saved) else ""


def _from_file(args, key: str, saved: SavedArgs) -> bool:
    if saved.values.get(key) is None:
        return False
    if key in FORCE_LOADED or (key in DATA_KEYS and args.bool("load_data_args")):
        return True
    return key in LOADED_WHEN_UNSET and args.raw(key) in (None, [], ())
