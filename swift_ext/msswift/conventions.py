"""How ms-swift spells things on its command line, read in one place: a flag and its values in argv,
and a dataset entry's `#N` sample suffix."""

from __future__ import annotations

import os
from dataclasses import dataclass


def flag_groups(argv: list[str]) -> list[list[str]]:
    """`--name v1 v2 --other` -> [["--name", "v1", "v2"], ["--other"]]: argv after the command words, one
    flag with its values per group (HfArgumentParser's nargs='+' reading). Items before the first flag
    form a group of their own."""
    groups: list[list[str]] = []
    for item in argv:
        if item.startswith("--") or not groups:
            groups.append([item])
        else:
            groups[-1].append(item)
    return groups


@dataclass(frozen=True)
class DatasetEntry:
    """One `dataset:` entry as ms-swift's DatasetSyntax.parse reads it: `[hf::|ms::]ID_OR_PATH[:subsets][#N]`."""

    text: str  # the entry as written
    base: str  # the entry without its #N suffix
    sample: str | None  # the text after '#', as written (None: no suffix)

    @property
    def sample_count(self) -> int | None:
        """N of `#N`; None without a suffix. Raises ValueError where ms-swift's int() does."""
        return None if self.sample is None else int(self.sample)

    @property
    def bad_sample(self) -> bool:
        """A suffix ms-swift's int() refuses: a ValueError in every rank at start-up."""
        try:
            self.sample_count
        except ValueError:
            return True
        return False


def parse_dataset_entry(entry) -> DatasetEntry:
    """Split the `#N` suffix off as DatasetSyntax.parse does: an existing path is taken whole (a file
    may have '#' in its name); otherwise the last '#' starts the sample count."""
    text = str(entry)
    if "#" not in text or os.path.exists(text):
        return DatasetEntry(text, text, None)
    base, _, sample = text.rpartition("#")
    return DatasetEntry(text, base, sample)


def without_sample_suffix(entry) -> str:
    """The file or dataset id of an entry, its `#N` suffix removed."""
    return parse_dataset_entry(entry).base


# A dataset entry ending in one of these (or starting like a path) names a local file, not a hub id.
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt", ".tsv", ".arrow")


def local_dataset_path(entry: str) -> str | None:
    """The file part of a `path[:subset][#count]` dataset entry when it names a local data file."""
    path = without_sample_suffix(entry)
    if path.lower().endswith(DATA_SUFFIXES) or path.startswith(("/", "./", "../", "~")):
        return path
    if ":" in path and path.rsplit(":", 1)[0].lower().endswith(DATA_SUFFIXES):
        return path.rsplit(":", 1)[0]
    return None


# HfArgumentParser's string_to_bool reads these (and refuses anything else); a recipe's "none" / ""
# for a bool means unset, i.e. false.
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", "none", ""}


def typed_text(text: str, ftype: dict | None = None):
    """A command-line (or recipe) string typed the way ms-swift's argument parser types it for a field of
    type `ftype` (the schema's {"kind": ...}); without a type, as YAML would type it. A string that does
    not parse for its type stays as written: check_value reports it."""
    from swift_ext.spec.yamlio import parse_scalar

    kind = (ftype or {}).get("kind", "any")
    if kind == "str" or (kind == "literal" and all(isinstance(c, str) for c in ftype["choices"])):
        return text
    low = text.strip().lower()
    if kind == "bool":
        return True if low in _TRUE else False if low in _FALSE else text
    if kind in ("int", "float"):
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            return text
    if low in ("true", "false"):
        return low == "true"
    value = parse_scalar(text)
    # YAML 1.1 reads yes/no/on/off as booleans; to ms-swift they are strings unless the field is bool.
    if isinstance(value, (dict, list, bool)) or value is None:
        return text
    return value


def is_true(value) -> bool:
    """A bool argument's value as ms-swift reads it: a string by string_to_bool, anything else by truth."""
    return typed_text(value, {"kind": "bool"}) is True if isinstance(value, str) else bool(value)
