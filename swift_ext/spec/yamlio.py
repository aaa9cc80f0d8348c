"""YAML reading that remembers where every key came from (file, line, column)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from swift_ext.spec.findings import UserError

Position = tuple[str, int, int]  # file, line, column (1-based)

# A recipe is a few hundred lines; these bounds stop a hostile or broken file (a "billion laughs" alias
# bomb: a few lines whose aliases expand to 10^9 values) before anything walks the expanded value.
MAX_DOCUMENT_BYTES = 8 * 2**20
MAX_EXPANDED_NODES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads YAML 1.2 floats such as `1e-4` (PyYAML 1.1 keeps them as strings)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_scalar(text: str) -> Any:
    """Type a command-line value the way it would be typed in a recipe file."""
    try:
        return yaml.load(text, Loader=_Loader) if text.strip() else ""
    except yaml.YAMLError:
        return text


def read_text(path: Path, expected: str = "a YAML recipe file", limit: int | None = MAX_DOCUMENT_BYTES) -> str:
    try:
        # Inside the try: is_dir() itself raises for a name the filesystem refuses (ENAMETOOLONG).
        if path.is_dir():
            raise UserError.one(f"is a directory, expected {expected}", file=str(path))
        if limit is not None and path.stat().st_size > limit:
            raise UserError.one(f"{path.stat().st_size >> 20} MiB: too large for {expected} (limit "
                                f"{limit >> 20} MiB)", file=str(path))
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError.one("file not found", file=str(path)) from None
    except OSError as exc:
        raise UserError.one(f"cannot read: {exc.strerror or exc}", file=_short(str(path))) from None
    if b"\x00" in raw:
        raise UserError.one("not a text file (contains NUL bytes)", file=str(path))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError.one(f"not UTF-8 text (bad byte at offset {exc.start})", file=str(path)) from None


def load_yaml(path: Path) -> tuple[Any, dict[tuple[str, ...], Position]]:
    """Return the document and a map from key path (('args','lr')) to where that key is written."""
    text = read_text(path)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_cycles(node, (), str(path))
            _refuse_alias_bomb(node, str(path))
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise UserError.one(
            f"YAML syntax error: {exc.problem or exc.context}",
            file=str(path),
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
            hint="YAML takes spaces, not tabs, for indentation and after `key:`: replace the tab with spaces"
            if "'\\t'" in str(exc.problem) else None,
        ) from None
    except yaml.YAMLError as exc:
        raise UserError.one(f"YAML error: {exc}", file=str(path)) from None
    except RecursionError:
        raise UserError.one("YAML nested too deeply to be a recipe", file=str(path)) from None
    finally:
        loader.dispose()
    positions: dict[tuple[str, ...], Position] = {}
    if node is not None:
        _walk(node, (), str(path), positions)
    return data, positions


def _walk(node: yaml.Node, prefix: tuple[str, ...], file: str, out: dict) -> None:
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = str(key_node.value)
        line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
        if key in seen:
            # PyYAML silently keeps the last duplicate; a recipe that says two things is a bug.
            raise UserError.one(
                "duplicate key", file=file, line=line, column=col, path=".".join(prefix + (key,))
            )
        seen.add(key)
        out[prefix + (key,)] = (file, line, col)
        _walk(value_node, prefix + (key,), file, out)


def _refuse_cycles(node: yaml.Node, ancestors: tuple[int, ...], file: str, done: set[int] | None = None) -> None:
    """An alias inside the anchor it names (`a: &x [*x]`) builds an endless value: refuse it by line.
    `done` holds nodes already checked, so shared aliases (a YAML bomb) are walked once."""
    done = set() if done is None else done
    if id(node) in ancestors:
        raise UserError.one("YAML alias refers to a value that contains it (an endless cycle)", file=file,
                            line=node.start_mark.line + 1, column=node.start_mark.column + 1,
                            hint="copy the values instead of using the alias")
    if id(node) in done:
        return
    if isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = node.value
    else:
        children = []
    for child in children:
        _refuse_cycles(child, ancestors + (id(node),), file, done)
    done.add(id(node))


def _short(name: str, keep: int = 120) -> str:
    """A file name fit for a one-line error (an over-long name is the error itself)."""
    return name if len(name) <= keep else f"{name[:keep // 2]}...{name[-keep // 2:]} ({len(name)} characters)"


def _refuse_alias_bomb(node: yaml.Node, file: str) -> None:
    """Count the values the document expands to, aliases included (each shared node counted once per use,
    its size memoised so the count itself stays linear), and refuse past MAX_EXPANDED_NODES."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        if isinstance(n, yaml.MappingNode):
            children = [c for pair in n.value for c in pair]
        elif isinstance(n, yaml.SequenceNode):
            children = n.value
        else:
            children = []
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_EXPANDED_NODES:
                raise UserError.one(
                    f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} values (an alias bomb?)", file=file,
                    line=n.start_mark.line + 1, column=n.start_mark.column + 1,
                    hint="a recipe needs a few hundred values; copy them instead of nesting aliases")
        sizes[id(n)] = total
        return total

    size(node)
