"""Which template ms-swift will use for a model, and whether that template can pack (padding_free/packing).

The facts come from ms-swift's model and template registries (msswift/registry_reader.py reads them from the
installed source with `ast`) and ship as msswift-models.json beside msswift-args.json, so `plan` answers
from a JSON file in milliseconds. When the installed ms-swift is another version than the shipped table's,
the table is read from the installed source instead (about a second, then cached). Regenerate the shipped
file after upgrading ms-swift: `python -m swift_ext.msswift.model_table`; tests/test_model_table.py fails
when it differs from the installed source.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from swift_ext.msswift.schema import installed_version
from swift_ext.spec.cachedirs import cached_json

TABLE = Path(__file__).parent / "msswift-models.json"


@dataclass(frozen=True)
class TemplateChoice:
    template: str
    model_type: str | None  # None: the model is not in ms-swift's registry (the template was named)
    supports_padding_free: bool | None  # None: not known before the model's config.json is read


def generate() -> dict:
    from swift_ext.msswift.registry_reader import build_table

    table = build_table()
    table.pop("skipped")
    return {"ms_swift": installed_version(), **table}


@lru_cache(maxsize=1)
def load() -> dict:
    shipped = json.loads(TABLE.read_text())
    version = installed_version()
    if version is None or version == shipped["ms_swift"]:
        return shipped
    try:
        return cached_json(f"msswift-models-{version}.json", generate)
    except Exception:  # noqa: BLE001 - a registry laid out differently must not stop a plan: keep the shipped one
        return shipped


def model_name(model_id_or_path: str) -> str:
    """The name ms-swift matches against its registry (swift/model/model_meta.py: get_model_name), lower case."""
    path = model_id_or_path.replace("\\", "/").rstrip("/")
    match = re.search(r"/models--(?:.+?--)?(.+?)/snapshots/", path) or re.search(
        r"/models/(?:.+?--)?(.+?)/snapshots/", path)
    name = match.group(1) if match else path.rsplit("/", 1)[-1].replace("___", ".")
    return name.lower()


def model_meta(model: str | None, model_type: str | None = None) -> dict | None:
    """{model_type, template, multimodal, reward (is_reward), task_type, mcore_model_type} of the ModelMeta ms-swift resolves for `model` (an explicit
    `model_type` wins, swift/model/model_meta.py: get_model_info_meta); None for a model it does not know."""
    table = load()
    meta = table["models"].get(model_name(model)) if model else None
    if meta is not None and model_type in (None, meta["model_type"]):
        return {**table["model_types"][meta["model_type"]], **meta}
    if model_type and model_type in table["model_types"]:
        return {"model_type": model_type, **table["model_types"][model_type]}
    return None


def matched_model_types(architectures: list[str] | None) -> list[str]:
    """The model_types ms-swift's registry files under a config.json's first architecture
    (swift/model/model_meta.py: get_matched_model_types, which `_get_model_info` asks when no model_type is given
    and the name matched nothing); more than one makes it stop with "Failed to automatically match `model_type`"."""
    first = (architectures or ["null"])[0]
    return sorted(t for t, meta in load()["model_types"].items()
                  if first in (meta.get("architectures") or ["null"]))


def template_for(model: str | None, model_type: str | None = None, template: str | None = None) -> TemplateChoice | None:
    """The template ms-swift picks (swift/model/model_meta.py: get_model_info_meta, then
    swift/template/register.py: get_template_meta), and whether `SwiftSft._prepare_template` lets it pack;
    None where the registry does not say (a local path it does not know and no `template` named, or a template
    ms-swift does not have: its own argument check reports that)."""
    table = load()
    meta = model_meta(model, model_type) or {}
    multimodal = meta.get("multimodal")
    chosen = template or meta.get("template")
    if not chosen or chosen not in table["templates"]:
        return None
    support = table["templates"][chosen]
    if support is None and multimodal is not None:
        support = not multimodal  # SwiftSft._prepare_template: None means "only for text-only models"
    return TemplateChoice(chosen, meta.get("model_type"), support)


def write_table(path: Path = TABLE) -> Path:
    if installed_version() is None:
        raise RuntimeError("ms-swift is not installed")
    path.write_text(json.dumps(generate(), indent=0, sort_keys=True) + "\n")
    return path


if __name__ == "__main__":
    print(write_table())
