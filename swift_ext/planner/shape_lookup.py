"""Where a model's config.json is, for the planner: `resolve_shape` reads the first source that has it.

Lookup order: `args.model` as a local directory; the Hugging Face cache
(`HF_HUB_CACHE`, `HF_HOME/hub`, `~/.cache/huggingface/hub`: `models--ORG--NAME/snapshots/REV/`, the
revision `refs/main` names first); the ModelScope cache (`MODELSCOPE_CACHE`, default
`~/.cache/modelscope`, as modelscope 1.40 / modelscope_hub lay it out: `models/ORG--NAME/snapshots/REV/`,
and the older `models/ORG/NAME` with dots as `___`, also under `hub/`); `--model-config`; the
config.json files bundled in `swift_ext/planner/presets/*.json`, by id, then -- for a path on the training machine
or another organisation's copy -- by the published name its last part carries. Every source is parsed by
model_shape.from_config.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from swift_ext.planner.hubcache import hf_cache_candidates, modelscope_cache_candidates
from swift_ext.planner.model_shape import BY_NAME_ORIGIN, ModelShape, ShapeNotFound, from_config
from swift_ext.spec.findings import UserError

PRESETS = Path(__file__).parent / "presets"


# ---- where the config.json is -------------------------------------------------------------------------

def resolve_shape(model: str | None, model_config: str | Path | None = None) -> ModelShape:
    """Shape of `model` from the first source that has its config.json (see the module docstring).
    Raises ShapeNotFound when none has it, UserError when the config found is unusable."""
    if model is not None and not isinstance(model, str):
        model = str(model)  # `model: 7` in YAML: ms-swift gets the text on its command line
    found = locate_config(model, model_config)
    if found is not None:
        path, origin = found
        return from_config_file(path, name=model or str(model_config), origin=origin)
    bundled = _bundled_entry(model)
    if bundled is not None:
        entry, preset_file = bundled
        shape = from_config(entry["config"], name=model, source=f"{preset_file.name}: {entry['source']}")
        return replace(shape, origin="bundled config", source=str(preset_file))
    if model is None:
        raise ShapeNotFound.one("the recipe has no `args.model`", hint="set args.model, or pass --model-config PATH")
    by_name = _bundled_by_directory_name(model)
    if by_name is not None:
        (entry, preset_file), name = by_name
        shape = from_config(entry["config"], name=model, source=f"{preset_file.name}: {entry['source']}")
        # the kind says which entry stood in (plan's `--json` model_source.kind), so a reader sees the guess
        return replace(shape, origin=f"{BY_NAME_ORIGIN}{entry['_id']}, by the directory name {name}",
                       source=str(preset_file))
    raise ShapeNotFound.one(
        f"no config.json for '{model}': not a local directory, not in the Hugging Face or ModelScope cache, "
        "and not bundled", path="args.model",
        hint="pass --model-config PATH/TO/config.json or download the model")


def locate_config(model: str | None, model_config: str | Path | None = None) -> tuple[Path, str] | None:
    """(config.json, which source) for `model`, from the local directory, the caches or --model-config."""
    if model:
        local = local_config(model)
        if local is not None:
            return local, "local directory"
        if _looks_like_hub_id(model):
            for path in hf_cache_candidates(model):
                if _is_file(path):
                    return path, "Hugging Face cache"
            for path in modelscope_cache_candidates(model):
                if _is_file(path):
                    return path, "ModelScope cache"
    if model_config is not None:
        path = Path(model_config).expanduser()
        return (path / "config.json" if path.is_dir() else path), "--model-config"
    return None


def local_config(model: str) -> Path | None:
    """MODEL/config.json when `model` names a local model directory."""
    path = Path(model).expanduser() / "config.json"
    return path if _is_file(path) else None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name the file system refuses (ENAMETOOLONG): no directory; ms-swift reads it as a hub id
        return False


def _looks_like_hub_id(model: str) -> bool:
    parts = model.split("/")
    return len(parts) == 2 and all(parts) and not model.startswith((".", "~"))


def from_config_file(path: Path, name: str, origin: str = "") -> ModelShape:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError.one("model config not found", file=str(path)) from None
    except IsADirectoryError:
        raise UserError.one("model config is a directory without config.json", file=str(path)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError.one(f"not a JSON config: {exc}", file=str(path)) from None
    except RecursionError:
        raise UserError.one("not a JSON config: nested too deeply to read", file=str(path)) from None
    if not isinstance(config, dict):
        raise UserError.one("not a JSON object", file=str(path))
    return replace(from_config(config, name=name, source=str(path)), origin=origin)


# ---- bundled configs ----------------------------------------------------------------------------------------

def bundled_models() -> list[str]:
    """Model ids with a bundled config (aliases included)."""
    return sorted({entry["_id"] for entry, _ in _bundled_index().values()})


def _bundled_entry(model: str | None) -> tuple[dict, Path] | None:
    if not model:
        return None
    return _bundled_index().get(model.lower())


# ms-swift's own naming for a checkpoint converted to Megatron's format (`swift export --to_mcore`, the docs'
# `--load Qwen3-30B-A3B-Base-mcore`): the same model's shape.
MCORE_SUFFIXES = ("-mcore", "_mcore")


def _bundled_by_directory_name(model: str) -> tuple[tuple[dict, Path], str] | None:
    """A model given as a path on the training machine (/data/models/Qwen3-8B, Qwen3-8B-mcore) or as another
    organisation's copy (unsloth/Qwen3-8B) that is not readable here: the bundled config whose published name is the
    path's last part. Fine-tunes and copies keep the architecture, so its shape is the model's; a name two bundled
    entries share is not guessed."""
    name = model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    lowered = name.lower()
    for suffix in MCORE_SUFFIXES:
        if lowered.endswith(suffix):
            lowered = lowered[: -len(suffix)]
    found = _bundled_names().get(lowered)
    return (found, name) if found is not None else None


@lru_cache(maxsize=1)
def _bundled_names() -> dict[str, tuple[dict, Path]]:
    """The published name (the part after ORG/) of every bundled id and alias, for names one entry owns."""
    names: dict[str, tuple[dict, Path]] = {}
    shared: set[str] = set()
    for key, (entry, path) in _bundled_index().items():
        short = key.rsplit("/", 1)[-1]
        if short in names and names[short][0]["_id"] != entry["_id"]:
            shared.add(short)
        names.setdefault(short, (entry, path))
    return {short: found for short, found in names.items() if short not in shared}


@lru_cache(maxsize=1)
def _bundled_index() -> dict[str, tuple[dict, Path]]:
    index: dict[str, tuple[dict, Path]] = {}
    for path in sorted(PRESETS.glob("*.json")):
        for model_id, entry in json.loads(path.read_text(encoding="utf-8"))["models"].items():
            entry = {**entry, "_id": model_id}
            for key in [model_id, *entry.get("aliases", [])]:
                index[key.lower()] = (_with_alias_fields(entry, key), path)
    return index


def _with_alias_fields(entry: dict, model_id: str) -> dict:
    """An alias shares its entry's shape, but not always its length: `alias_config` holds the config.json
    fields an alias publishes differently (Qwen3-8B-Base: 32768 positions, Qwen3-8B: 40960); a null there
    means the alias's value is not known, so the field is left out."""
    differs = entry.get("alias_config", {}).get(model_id)
    if not differs:
        return entry
    outer = dict(entry["config"])
    # Qwen2.5-Omni / Qwen3-Omni keep the language model under thinker_config (model_shape._multimodal_section)
    config = dict(outer["thinker_config"]) if isinstance(outer.get("thinker_config"), dict) else outer
    text_key = next((k for k in ("text_config", "llm_config") if isinstance(config.get(k), dict)), None)
    target = dict(config[text_key]) if text_key else config
    for key, value in differs.items():
        target.pop(key, None)
        if value is not None:
            target[key] = value
    if text_key:
        config[text_key] = target
    if config is not outer:
        outer["thinker_config"] = config
    return {**entry, "config": outer}
