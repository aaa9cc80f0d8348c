"""The oracle's verdicts on disk, so a second `run`/`submit --dry-run` of the same recipe skips the
seconds of importing torch + megatron-core for an answer it already has.

The key is a hash of everything the verdict reads: the model shape, every argument with a value
(the recipe's and ms-swift's defaults: the oracle copies them into megatron-core's configs), the
layout, training or not, the versions of megatron-core, torch and swift-ext, and the text of the
oracle's own modules (a swift-ext checkout changes them without a version bump). Computing it
imports nothing heavy: versions come from package metadata. Files live in the one swift-ext cache
folder (spec.cachedirs: SWIFT_EXT_CACHE, else the user cache folder), under oracle/.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
from pathlib import Path
from typing import Any

from swift_ext.spec.cachedirs import cache_dir, write_text_atomic

FORMAT = 1  # bump when the stored verdict's fields change
# the oracle's code, and the reader its translation shares with the rules (mcore-bridge's rewrites): a change to any
# of them makes a stored verdict stale
_ORACLE_MODULES = ("oracle.py", "oracle_grid.py", "oracle_cache.py", "mcore_config.py")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _sources_digest() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in _ORACLE_MODULES:
        try:
            h.update((here / name).read_bytes())
        except OSError:
            h.update(name.encode())
    return h.hexdigest()[:16]


def key(shape: Any, args: Any, lay: Any, training: bool, mcore_version: str) -> str:
    from swift_ext import __version__

    payload = {
        "format": FORMAT,
        "shape": dataclasses.asdict(shape),
        "args": {name: args.raw(name) for name in sorted(args.names())},
        "layout": lay.as_dict(),
        "training": training,
        "versions": {"megatron-core": mcore_version, "torch": _version("torch"), "swift-ext": __version__,
                     "oracle-sources": _sources_digest()},
    }
    text = json.dumps(payload, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def path_for(cache_key: str) -> Path:
    return cache_dir("oracle") / f"{cache_key}.json"


def load(cache_key: str) -> dict | None:
    """The stored verdict ({"version", "findings": [Finding fields], "notes"}), or None."""
    try:
        data = json.loads(path_for(cache_key).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data


def store(cache_key: str, verdict: dict) -> None:
    path = path_for(cache_key)
    try:
        write_text_atomic(path, json.dumps({"format": FORMAT, **verdict}, indent=1))  # a parallel `submit` never reads half a file
    except OSError:
        pass  # a read-only home only costs the next call the import
