"""Where a hub model's files already are on this machine: the Hugging Face and ModelScope caches.

One answer for the planner (model shapes) and `verify` (base weights). The Hugging Face side asks
huggingface_hub itself (`try_to_load_from_cache`: `models--ORG--NAME`, the snapshot `refs/main` names);
only the cache root is computed here, from the environment at call time, in huggingface_hub's order
(HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub): its `constants.HF_HUB_CACHE` is fixed at
import, so a variable set later (a test, a recipe's env) would be missed. Other snapshots follow,
newest first. ModelScope: modelscope 1.40 (modelscope_hub) writes BASE/models/ORG--NAME/snapshots/REV/
and reuses the older BASE/models/ORG/NA___ME (dots as ___), also under BASE/hub/ (the old default
root); BASE is MODELSCOPE_CACHE or ~/.cache/modelscope (modelscope_hub/_download.py,
modelscope/hub/utils/utils.py).
"""

from __future__ import annotations

import os
from pathlib import Path

CONFIG = "config.json"


def is_hub_id(model: str) -> bool:
    parts = str(model).split("/")
    return len(parts) == 2 and all(parts) and not str(model).startswith((".", "~", "/"))


def hf_hub_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "huggingface" / "hub"


def hf_cache_candidates(model: str, filename: str = CONFIG) -> list[Path]:
    """FILENAME in each cached snapshot of MODEL: the one refs/main names first."""
    hub = hf_hub_dir()
    repo = hub / ("models--" + model.replace("/", "--"))
    if not repo.is_dir():
        # huggingface_hub answers None too (file_download.try_to_load_from_cache: "No cache for this model"),
        # but importing it pulls in httpx and rich: a quarter of a plain `plan`'s wall time.
        return []
    out = []
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model, filename, cache_dir=hub)
        if isinstance(found, str):
            out.append(Path(found))
    except (ImportError, ValueError, OSError):
        pass
    return list(dict.fromkeys(out + [d / filename for d in _snapshots(repo / "snapshots")]))


def modelscope_cache_candidates(model: str, filename: str = CONFIG) -> list[Path]:
    base = Path(os.environ.get("MODELSCOPE_CACHE") or Path.home() / ".cache" / "modelscope").expanduser()
    owner, name = model.split("/", 1)
    safe = name.replace(".", "___")
    repo = base / "models" / f"{owner}--{name}"
    out = [repo / "snapshots" / rev / filename for rev in ("master", "main")]
    out += [d / filename for d in _snapshots(repo / "snapshots")]
    for root in (base, base / "hub"):
        out += [root / "models" / owner / safe / filename, root / "models" / owner / name / filename,
                root / owner / safe / filename, root / owner / name / filename]
    return out


def cached_model_dir(model: str) -> Path | None:
    """The directory holding MODEL's config.json in the Hugging Face or ModelScope cache, if one does."""
    if not is_hub_id(model):
        return None
    for path in (*hf_cache_candidates(model), *modelscope_cache_candidates(model)):
        if path.is_file():
            return path.parent
    return None


def _snapshots(snapshots: Path) -> list[Path]:
    """Every snapshot directory, newest first (a cache may hold several revisions)."""
    try:
        dirs = [d for d in snapshots.iterdir() if d.is_dir()]
    except OSError:
        return []
    return sorted(dirs, key=lambda d: d.stat().st_mtime, reverse=True)
