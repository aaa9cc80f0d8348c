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
    """SafeLoader that also reads YAML 1.2 floats such as `1e-4` (PyYAML 1.1 keeps them as strings), and reads
    `10:00:00` as the text it is, as YAML 1.2 does: YAML 1.1's base-60 numbers made `time: 10:00:00` the integer
    36000, which a Slurm time limit reads as 36000 minutes."""


_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(  # YAML 1.1's ints (PyYAML's resolver) without the base-60 form
    _INT,
    re.compile(r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0[0-7_]+
        |[-+]?(?:0|[1-9][0-9_]*)
        |[-+]?0x[0-9a-fA-F_]+)$""", re.X),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(  # YAML 1.1's floats without the base-60 form, and 1.2's (`1e-4`, `5.`)
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


# Python's int() refuses decimal text past this many digits (sys.get_int_max_str_digits(), CVE-2020-10735).
_INT_DIGITS = 4300


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    digits = sum(c.isdigit() for c in node.value)
    if digits > _INT_DIGITS:  # PyYAML's int() raised a bare ValueError: no line, an internal error
        raise yaml.constructor.ConstructorError(
            None, None, f"an integer of {digits} digits: too long to be a number anything reads", node.start_mark)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def parse_scalar(text: str) -> Any:
    """Type a command-line value the way it would be typed in a recipe file (text YAML cannot read stays text)."""
    value, _ = read_scalar(text)
    return value


def read_scalar(text: str) -> tuple[Any, str | None]:
    """(value, None), or (text, why YAML cannot read it): a value typed as in a recipe file."""
    if not text.strip():
        return "", None
    loader = None
    try:
        loader = _Loader(text)  # inside: its reader refuses control characters (ReaderError) as it starts
        node = loader.get_single_node()
        if node is not None:  # the checks a recipe file gets: `&x {a: *x}` is an endless value
            _refuse_cycles(node, (), "")
            _refuse_alias_bomb(node, "")
        return (loader.construct_document(node) if node is not None else None), None
    except UserError as exc:
        return text, exc.problems[0].message
    except yaml.MarkedYAMLError as exc:
        return text, str(exc.problem or exc.context or exc)
    except yaml.YAMLError as exc:
        return text, str(exc)
    except RecursionError:  # PyYAML recurses once per nesting level: 100,000 `[` is past Python's stack
        return text, "nested too deeply"
    except (ValueError, TypeError, OverflowError, AttributeError, IndexError, KeyError) as exc:  # a tag's
        # constructor: `!!float x`, `!!timestamp x` (AttributeError inside PyYAML)
        return text, f"its tag makes no value of it ({exc})"
    finally:
        if loader is not None:
            loader.dispose()


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
        raise UserError.one(f"cannot read: {exc.strerror or exc}", file=short_name(str(path))) from None
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
    written: dict[int, set[int]] = {}
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_cycles(node, (), str(path))
            _refuse_alias_bomb(node, str(path))
            written = _written_keys(node)
        data = loader.construct_document(node) if node is not None else None
    except (ValueError, TypeError, OverflowError, AttributeError, IndexError, KeyError) as exc:  # a tag's
        # constructor: `lr: !!float x`, `!!timestamp x` (AttributeError inside PyYAML)
        raise UserError.one(f"YAML error: a tagged value makes no value ({exc})", file=str(path),
                            hint="drop the !!tag, or write a value of its type") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        raise UserError.one(
            f"{kind}: {exc.problem or exc.context}",
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
        _walk(node, (), str(path), positions, written)
    if isinstance(data, dict):
        for section in VERBATIM_SECTIONS:
            _keep_written_text(node, data, section)
    return data, positions


# Sections whose values are text to their reader (environment variables): a plain scalar there is kept as
# written, not as the number or boolean YAML 1.1 makes of it (`010` is 8, `0.10` is 0.1, `yes` is true, `1:30` is
# 90 to YAML -- the process would get "8", "0.1", "true", "90"). A null stays null (the recipe refuses it).
VERBATIM_SECTIONS = ("env",)


def _keep_written_text(node: yaml.Node, data: dict, section: str) -> None:
    values = data.get(section)
    section_node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == section), None)
    if not isinstance(values, dict) or not isinstance(section_node, yaml.MappingNode):
        return
    for key_node, value_node in section_node.value:
        typed = values.get(key_node.value)
        if (isinstance(value_node, yaml.ScalarNode) and value_node.style is None and key_node.value in values
                and typed is not None and not isinstance(typed, str)):  # a number, boolean or date YAML typed
            values[key_node.value] = value_node.value


def _written_keys(node: yaml.Node) -> dict[int, set[int]]:
    """Per mapping node, the ids of the key nodes written in it, before PyYAML's merge (`<<`) copies in others."""
    written: dict[int, set[int]] = {}
    stack, seen = [node], set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            written[id(n)] = {id(k) for k, _ in n.value if k.tag != "tag:yaml.org,2002:merge"}
            stack.extend(c for pair in n.value for c in pair)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    return written


def _walk(node: yaml.Node, prefix: tuple[str, ...], file: str, out: dict, mapping_keys: dict[int, set[int]]) -> None:
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[str] = set()
    written = mapping_keys.get(id(node), set())
    for key_node, value_node in node.value:
        key = str(key_node.value)
        line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
        if key in seen and id(key_node) in written:
            # PyYAML silently keeps the last duplicate; a recipe that says two things is a bug. A key that
            # overrides one a merge (`<<: *base`) brought in is YAML's way of saying "this one instead".
            raise UserError.one(
                "duplicate key", file=file, line=line, column=col, path=".".join(prefix + (key,))
            )
        if id(key_node) in written:
            seen.add(key)
        out[prefix + (key,)] = (file, line, col)
        _walk(value_node, prefix + (key,), file, out, mapping_keys)


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


def short_name(name: str, keep: int = 120) -> str:
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
