"""The cache of per-row lengths: one JSON file per (file content, tokenizer, template settings)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from swift_ext.datasets.template import TemplateSettings, tokenizer_file
from swift_ext.spec.cachedirs import cache_dir

CACHE_FORMAT = 4  # bump when the counting changes, so stale caches are not reused


def cache_path(key: str) -> Path:
    return cache_dir("stats") / f"{key}.json"


def cache_key(path: str, s: TemplateSettings) -> str:
    h = hashlib.sha256()
    h.update(f"format {CACHE_FORMAT}\n".encode())
    h.update(_file_digest(path).encode())
    h.update(_file_digest(tokenizer_file(s.tokenizer)).encode())
    settings = {k: v for k, v in asdict(s).items() if k not in ("tokenizer", "model_dir")}
    settings["media_base"] = s.media_root or os.path.abspath(os.path.dirname(path))
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def _file_digest(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()
