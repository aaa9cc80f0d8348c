"""Media entries (images, videos, audios) as ms-swift's `load_file` reads them: paths where ms-swift looks,
URLs, base64 and data: URIs; with --deep, every file decoded."""

from __future__ import annotations

import base64
import binascii
import os
import re
from typing import Any

from swift_ext.datasets.issues import json_type
from swift_ext.datasets.options import ChunkResult, Options

BASE64_AFTER = 2000  # ms-swift's MAX_PATH_HEURISTIC: a longer media string is base64, never a path
UNREADABLE = {"images": "E305", "videos": "E306", "audios": "E307"}


class MediaChecker:
    """The media entries of one file's rows, checked the way ms-swift will load them; existence is
    remembered per entry (bounded), so a path repeated on many rows costs one stat."""

    def __init__(self, path: str, opts: Options):
        self.base = os.path.dirname(path) or "."  # not where ms-swift looks: named in hints only
        # ms-swift looks for a relative path in the working directory, then under ROOT_IMAGE_DIR
        # (swift/template/vision_utils.py _check_path); --media-root stands for ROOT_IMAGE_DIR.
        self.root = opts.media_root or os.environ.get("ROOT_IMAGE_DIR")
        self.opts = opts
        # media entry -> 0 file, 1 missing, 2 not a file, 3 base64, 4 only under the dataset's folder
        self._exists: dict[str, int] = {}
        self.found: dict[str, str] = {}  # media entry -> the file it names
        self.files_ok: set[str] = set()  # entries that name an existing file: the typed path accepts these

    def column(self, row: dict, key: str, tag: str, count_code: str, joined: str, add, out: ChunkResult,
               parts: list[tuple[Any, str]] | None = None, kind: str | None = None, tags_added: bool = False) -> None:
        """The row's `key` entries against its tags, each entry checked; `parts`: (entry, field) given as
        content parts instead of the column; `kind`: images, videos or audios where `key` is another column
        of them (rejected_images); `tags_added`: the row's own media column, whose missing tags ms-swift adds."""
        kind = kind or key
        placeholders = joined.count(tag)
        if parts is not None:
            if placeholders != len(parts):
                add(count_code, parts[0][1], f"{placeholders} {tag} placeholder(s) but {len(parts)} {key} in content "
                    "parts (a text part's own tags count too)")
            for entry, fld in parts:
                out.media[kind] += 1
                self.entry(entry, fld, kind, add)
            return
        entries = row.get(key)
        if entries is None:
            if placeholders:
                add(count_code, key, f"{placeholders} {tag} placeholder(s) but no `{key}`")
            return
        if isinstance(entries, (str, dict)):
            entries = [entries]
        if not isinstance(entries, list):
            add("E304", key, f"`{key}` must be a list, got {json_type(entries)}")
            return
        if placeholders < len(entries) and tags_added:
            # Template._add_default_tags (every template but two; _preprocess_inputs, multimodal rows) puts the
            # missing tags at the start of the first message: the row trains, its media first
            add("N103", key, f"{placeholders} {tag} placeholder(s) but {len(entries)} {key}: ms-swift puts the "
                f"{len(entries) - placeholders} missing tag(s) at the start of the first message")
        elif placeholders != len(entries):
            add(count_code, key, f"{placeholders} {tag} placeholder(s) but {len(entries)} {key}")
        for i, entry in enumerate(entries):
            out.media[kind] += 1
            self.entry(entry, f"{key}[{i}]", kind, add)

    def entry(self, entry: Any, fld: str, kind: str, add) -> None:
        """Classify one entry the way ms-swift's `load_file` will (swift/template/vision_utils.py): a string
        starting with 'http' is fetched; one over 2000 characters is base64; an existing path (as given,
        under ROOT_IMAGE_DIR or --media-root, with `~` expanded) is read - not one relative to the dataset's
        folder; a `data:` URI or a string that decodes as base64 is image bytes."""
        if isinstance(entry, dict):
            if isinstance(entry.get("bytes"), (str, bytes)):
                return
            entry = entry.get("path")
        if not isinstance(entry, str) or not entry.strip():
            add("E304", fld, "a media entry must be a path, a URL, base64 data or {path|bytes}")
            return
        entry = entry.strip()
        if entry.startswith("http"):
            add("N303", fld, "URL not fetched by the validator; ms-swift downloads it at load time")
            return
        if len(entry) > BASE64_AFTER:
            self._base64(entry, fld, kind, add)
            return
        state = self._exists.get(entry)
        if state is None:
            state, found = 1, None
            for candidate in self._candidates(entry):
                if os.path.isfile(candidate):
                    state, found = 0, candidate
                    break
                if os.path.exists(candidate):
                    state = 2
            if state == 1 and (entry.startswith("data:") or _looks_base64(entry)):
                state = 3
            elif state == 1 and os.path.isfile(self._in_dataset_folder(entry)):
                state = 4
            if len(self._exists) < 100_000:  # bounded: many distinct paths just cost a stat each
                self._exists[entry] = state
                if state == 0:
                    self.found[entry] = found
                    self.files_ok.add(entry)
        if state == 3:
            self._base64(entry, fld, kind, add)
        elif state == 1:
            add("E301", fld, f"file not found: {entry}" + ("" if os.path.isabs(os.path.expanduser(entry)) else
                                                           f" (looked in {self._where()})"))
        elif state == 4:
            there = self._in_dataset_folder(entry)
            add("E301", fld, f"file not found: {entry} (looked in {self._where()}); it is in the dataset's folder, "
                f"where ms-swift does not look: write it as {os.path.relpath(there)}, or run with "
                f"ROOT_IMAGE_DIR={os.path.abspath(self.base)} (data check: --media-root)")
        elif state == 2:
            add("E302", fld, f"not a file: {entry}")
        elif self.opts.deep:
            found = self.found.get(entry) or next(c for c in self._candidates(entry) if os.path.isfile(c))
            self._decode_path(found, fld, kind, add)

    def _candidates(self, entry: str) -> list[str]:
        """Where ms-swift looks, in its order: as given (the working directory), under ROOT_IMAGE_DIR,
        with `~` expanded."""
        return [entry, os.path.expanduser(os.path.join(self.root, entry) if self.root else entry)]

    def _in_dataset_folder(self, entry: str) -> str:
        return os.path.join(self.base, os.path.expanduser(entry))

    def _where(self) -> str:
        return f"the working directory {os.getcwd()}" + (f" and {self.root}" if self.root else "")

    def _base64(self, entry: str, fld: str, kind: str, add) -> None:
        if entry.startswith("data:"):
            match = re.match(r"data:(.+?);base64,(.+)", entry, re.S)
            if match is None:
                add("E308", fld, "a data: URI must look like data:<type>;base64,<data>")
                return
            entry = match.group(2)
        try:
            data = base64.b64decode(entry)  # not validate=True: ms-swift skips stray characters too
        except (binascii.Error, ValueError) as exc:
            add("E308", fld, f"not valid base64 data ({exc})")
            return
        if not data:
            add("E308", fld, "base64 data that decodes to nothing")
            return
        if self.opts.deep:
            self._decode_bytes(data, fld, kind, add)

    def _decode_path(self, path: str, fld: str, kind: str, add) -> None:
        code = UNREADABLE[kind]
        try:
            if kind == "images":
                from PIL import Image

                with Image.open(path) as img:
                    img.load()
                    if img.width < 1 or img.height < 1:
                        raise ValueError("empty image")
            else:
                _av_frames(path, video=kind == "videos")
        except Exception as exc:  # any decoder failure is the finding
            add(code, fld, f"cannot decode: {str(exc)[:120]}")

    def _decode_bytes(self, data: bytes, fld: str, kind: str, add) -> None:
        import io

        code = UNREADABLE[kind]
        try:
            if kind == "images":
                from PIL import Image

                with Image.open(io.BytesIO(data)) as img:
                    img.load()
            else:
                _av_frames(io.BytesIO(data), video=kind == "videos")
        except Exception as exc:
            add(code, fld, f"cannot decode: {str(exc)[:120]}")


def _looks_base64(entry: str) -> bool:
    """Short raw base64 (a tiny image) that is not a path ms-swift would find: strict alphabet and padding,
    and long enough that a missing relative path rarely passes for it."""
    if len(entry) < 64 or len(entry) % 4:
        return False
    try:
        base64.b64decode(entry, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _av_frames(source, video: bool) -> None:
    import av

    with av.open(source) as container:
        streams = container.streams.video if video else container.streams.audio
        if not streams:
            raise ValueError("no video stream" if video else "no audio stream")
        for _ in container.decode(streams[0]):
            return
        raise ValueError("no frames")
