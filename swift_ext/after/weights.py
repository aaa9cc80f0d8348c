"""Where a safetensors checkpoint keeps each tensor, and which part of the model a tensor belongs to.

Shared by `merge` (it restores MTP tensors an export drops) and `verify` (it checks them), so neither
imports the other."""

from __future__ import annotations

import json
from pathlib import Path

from swift_ext.spec.findings import UserError


def weight_index(model_dir: Path) -> dict[str, Path]:
    """tensor name -> shard file, from model.safetensors.index.json, else the single/loose files."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError.one(f"unreadable safetensors index: {exc}", file=str(index)) from None
        return {k: model_dir / v for k, v in weight_map.items()}
    files = sorted(model_dir.glob("*.safetensors"))
    files = [f for f in files if not f.name.startswith("adapter_model")]
    if not files:
        raise UserError.one("no safetensors weights here (model.safetensors or an index)", file=str(model_dir))
    found: dict[str, Path] = {}
    for f in files:
        with open_safetensors(f) as fh:
            found.update({k: f for k in fh.keys()})
    return found


def open_safetensors(path: Path):
    """safetensors' `safe_open`, with a truncated or foreign file (an interrupted copy or download) named
    in one line instead of the library's bare "invalid header length"."""
    from safetensors import SafetensorError, safe_open

    try:
        return safe_open(path, "pt")
    except (SafetensorError, OSError) as exc:
        raise UserError.one(f"not a readable safetensors file ({exc}): truncated or damaged?", file=str(path),
                            hint="copy or download it again") from None


def tensor_group(key: str) -> str:
    if key.startswith("mtp.") or ".mtp." in key:
        return "MTP"
    if ".visual." in key or key.startswith(("visual.", "model.visual")) or "vision_tower" in key:
        return "vision"
    return "text"
