"""The one swift-ext cache folder, and how to write into it so that readers never see half a file.

Several processes share the cache (two `make test` runs, a `plan` beside a `run`, many Slurm tasks on
one home), so every write goes to a temporary name in the same folder and is renamed into place:
rename within a folder is atomic, so a reader sees the old state or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

ENV = "SWIFT_EXT_CACHE"  # tests and CI point this at a private folder


def cache_root() -> Path:
    """SWIFT_EXT_CACHE when set (and not empty), else the platform's user cache folder for swift-ext
    ($XDG_CACHE_HOME/swift-ext or ~/.cache/swift-ext on Linux)."""
    base = os.environ.get(ENV)
    if base:
        return Path(base)
    import platformdirs

    return Path(platformdirs.user_cache_dir("swift-ext", appauthor=False))


def cache_dir(kind: str) -> Path:
    """The sub-folder for one kind of cached thing (models, stats, oracle, ...); not created here."""
    return cache_root() / kind


def write_text_atomic(path: Path, text: str) -> None:
    """Write PATH whole or not at all: a temporary file beside it, then os.replace. Raises OSError
    (a read-only cache): callers that only cache decide whether that matters."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def cached_json(name: str, build: Callable[[], dict]) -> dict:
    """A table derived from an installed package, kept in the cache as NAME (whose name carries what it was
    derived from, e.g. the package's version): read back when it parses, else BUILD() and stored. BUILD's
    exceptions reach the caller, which decides what to fall back to; a read-only cache only costs speed."""
    path = cache_root() / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    table = build()
    try:
        write_text_atomic(path, json.dumps(table))
    except OSError:
        pass
    return table


def build_dir_atomic(target: Path, build, is_complete) -> Path:
    """TARGET built by BUILD(folder) unless IS_COMPLETE(TARGET) already. Builds into a temporary
    folder beside TARGET and renames it into place, so a folder at TARGET is always whole. When
    another process published TARGET meanwhile, its copy is kept and ours discarded."""
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(tmp)
        if target.exists() and not is_complete(target):
            _discard(target)  # left by an interrupted build of an older swift-ext, which built in place
        try:
            tmp.rename(target)
        except OSError:
            if not is_complete(target):  # not a race lost to a complete copy: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _discard(path: Path) -> None:
    # Rename first (atomic), so no reader walks into a folder while it is being deleted.
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
    try:
        path.rename(aside / "x")
    except OSError:
        pass  # another process moved it already
    shutil.rmtree(aside, ignore_errors=True)
