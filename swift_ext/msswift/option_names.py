"""Which ms-swift argument a name on its command line sets: the name itself, its `--a-b` spelling, `--no_x` for a
boolean that defaults to true, or an unambiguous prefix of one of those.

ms-swift 4.6 parses every command (`swift sft|rlhf|pt`, and `megatron sft|rlhf|pt` whose pipelines are the same
SwiftPipeline) with transformers' HfArgumentParser (swift/utils/utils.py: parse_args, called from
swift/pipelines/base.py: SwiftPipeline._parse_args). That is an argparse.ArgumentParser with `allow_abbrev` left
True, so `--lora_r 8` sets lora_rank, and a prefix matching more than one option string stops the run at once
("ambiguous option: --lr could match --lr_scheduler_type, --lr-scheduler-type, ..."; exit 2, before
`ignore_args_error` is looked at). HfArgumentParser registers `--a_b` and `--a-b` for a field `a_b`, and `--no_a_b`,
`--no-a-b` for a boolean field whose default is True (transformers hf_argparser.py: _parse_dataclass_field).

We do not re-implement argparse's matching: we give a real argparse parser the same option strings and ask it,
so the answer is the one the running Python's argparse gives (3.11 counts `--learning_rate` and
`--learning-rate` as two matches: `--learn` is ambiguous there).
"""

from __future__ import annotations

import argparse
import bisect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from swift_ext.msswift.schema import ArgSchema

if TYPE_CHECKING:
    from swift_ext.spec.recipe import Recipe

_HELP = "\0help"
_NEGATED = "\0no"  # dest suffix of a `--no_x` option


@dataclass(frozen=True)
class NameReading:
    """What ms-swift's parser makes of `--NAME`."""

    name: str
    field: str | None = None  # the dataclass field it sets; None: unknown, ambiguous, or --help
    option: str | None = None  # the option string argparse matched, e.g. "--lora_rank"
    negated: bool = False  # matched `--no_FIELD`: sets FIELD to False and takes no value
    is_help: bool = False  # matched `--help`: ms-swift prints its help and exits
    candidates: tuple[str, ...] = ()  # an ambiguous prefix: the option strings argparse listed

    @property
    def abbreviated(self) -> bool:
        """A prefix of the option string, not the option (or its `-` spelling) itself."""
        return self.option is not None and self.option != f"--{self.name}"

    def problem(self, command: str) -> tuple[str, str] | None:
        """(message, hint) when ms-swift refuses or misreads the name as a recipe key; None when it sets `field`."""
        if self.candidates:
            fields = _fields_of(self.candidates)
            if len(fields) == 1:  # argparse before 3.12 counts an argument's `_` and `-` spellings as two matches
                return (f"`{command}`: `{self.name}` abbreviates {fields[0]}, but this Python's argparse counts its two "
                        f"spellings ({', '.join(self.candidates)}) as two matches: ms-swift's parser stops with "
                        "'ambiguous option'", f"write `{fields[0]}`")
            shown = ", ".join(fields[:8]) + (f", ... ({len(fields)} in all)" if len(fields) > 8 else "")
            return (f"`{command}`: `{self.name}` is an ambiguous abbreviation: ms-swift's parser stops with "
                    f"'ambiguous option' (it could be {shown})", "write the full name")
        if self.is_help:
            return (f"`{command}`: `{self.name}` abbreviates --help: ms-swift would print its help and exit",
                    "remove it, or write the full argument name")
        if self.negated:
            return (f"`{command}`: `{self.name}` is ms-swift's value-less flag {self.option}",
                    f"write `{self.field}: false`")
        return None


_SPACE = re.compile(r"\s")


def read_name(schema: ArgSchema, name: str) -> NameReading:
    """What `--NAME` means to ms-swift's parser for `schema`'s command."""
    if not name or name.startswith("-") or "=" in name or _SPACE.search(name):
        return NameReading(name)  # not one option word: argparse would not read it as `--NAME`
    parser = _parser(schema)
    if not parser.starts_an_option(f"--{name}"):
        return NameReading(name)  # argparse matches an option or a prefix of one: nothing else (and it is slow)
    try:
        namespace, rest = parser.parse_known_args([f"--{name}"])
    except _Ambiguous:
        return NameReading(name, candidates=tuple(o for o in parser.option_strings() if o.startswith(f"--{name}")))
    if rest:
        return NameReading(name)
    dest = next(d for d, v in vars(namespace).items() if v is not None)
    option = _matched_option(parser, name, dest)
    if dest == _HELP:
        return NameReading(name, option=option, is_help=True)
    if dest.endswith(_NEGATED):
        return NameReading(name, field=dest[: -len(_NEGATED)], option=option, negated=True)
    return NameReading(name, field=dest, option=option)


def resolved_name(schema: ArgSchema, name: str) -> str | None:
    """The field `name` sets with a value (exact, `-` spelling or prefix); None when it sets none."""
    reading = read_name(schema, name)
    return reading.field if reading.field and not reading.negated else None


class _Ambiguous(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the usage and exit; we only want its verdict
        raise _Ambiguous(message)

    def option_strings(self) -> list[str]:
        return [o for action in self._actions for o in action.option_strings]

    def starts_an_option(self, word: str) -> bool:
        """Some option string starts with `word` (a binary search of them, sorted once)."""
        if getattr(self, "_sorted", None) is None:
            self._sorted = sorted(self.option_strings())
        k = bisect.bisect_left(self._sorted, word)
        return k < len(self._sorted) and self._sorted[k].startswith(word)


_PARSERS: dict[tuple[str, str, tuple[str, ...]], _Parser] = {}


_BY_SCHEMA: dict[int, tuple[ArgSchema, _Parser]] = {}  # the same schema object asks once per argument name


def _parser(schema: ArgSchema) -> _Parser:
    seen = _BY_SCHEMA.get(id(schema))
    if seen is not None and seen[0] is schema:
        return seen[1]
    key = (schema.dataclass_name, schema.origin, tuple(schema.fields))
    parser = _PARSERS.get(key)
    if parser is None:
        # add_help=False and our own -h/--help: the real one would print and exit when a prefix matches it.
        parser = _Parser(add_help=False, allow_abbrev=True)
        parser.add_argument("-h", "--help", dest=_HELP, action="store_const", const=True)
        for name, spec in schema.fields.items():
            options = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
            parser.add_argument(*options, dest=name, action="store_const", const=True)
            if spec.type.get("kind") == "bool" and spec.default is True:
                parser.add_argument(f"--no_{name}", f"--no-{name.replace('_', '-')}", dest=name + _NEGATED,
                                    action="store_const", const=True)
        _PARSERS[key] = parser
    if len(_BY_SCHEMA) > 64:  # schemas built on the fly (tests, --search) are not kept alive for ever
        _BY_SCHEMA.clear()
    _BY_SCHEMA[id(schema)] = (schema, parser)
    return parser


def _matched_option(parser: _Parser, name: str, dest: str) -> str:
    options = next(a.option_strings for a in parser._actions if a.dest == dest)
    exact = f"--{name}"
    return exact if exact in options else next(o for o in options if o.startswith(exact))


def _fields_of(options: tuple[str, ...]) -> list[str]:
    """`--lora_rank, --lora-rank, --lora_alpha` -> [lora_rank, lora_alpha]: one name per argument."""
    seen: dict[str, None] = {}
    for option in options:
        seen.setdefault(option.lstrip("-").replace("-", "_"), None)
    return list(seen)


def resolve_recipe_names(recipe: Recipe, schema: ArgSchema) -> tuple[Recipe, list[str]]:
    """`recipe` with every args key that ms-swift reads as another argument's abbreviation or `-` spelling
    renamed to that argument, so the rules and the launched command see the full name; a note for each.
    Keys ms-swift refuses or misreads stay as written: plan.check_args reports them."""
    args: dict = {}
    positions = dict(recipe.positions)
    notes: list[str] = []
    renamed = False
    written_as: dict[str, str] = {}  # full name -> the key whose value it carries
    for key, value in recipe.args.items():
        full = key if key in schema.fields else (resolved_name(schema, key) or key)
        where = recipe.where(f"args.{key}")
        at = f"{where['file']}:{where['line']}: " if where.get("line") else ""
        if full != key:
            renamed = True
            how = "its `-` spelling" if key.replace("-", "_") == full else "an abbreviation ms-swift's parser accepts"
            notes.append(f"{at}args.{key} is --{key}, {how} of --{full}: planned and launched as `{full}`")
        if full in args:  # two keys for one argument: on ms-swift's command line the later flag wins
            notes.append(f"{at}args.{key} sets --{full} again: ms-swift takes the later value ({value!r})")
            del args[full]
        args[full] = value
        written_as[full] = key
    if not renamed:
        return recipe, []
    for full, key in written_as.items():  # a finding about `full` points at the key that set it
        for dotted in [p for p in recipe.positions if p == f"args.{key}" or p.startswith(f"args.{key}.")]:
            positions[f"args.{full}" + dotted[len(f"args.{key}"):]] = recipe.positions[dotted]
    return recipe.model_copy(update={"args": args, "positions": positions}), notes


def with_full_names(recipe: Recipe) -> Recipe:
    """`recipe` as ms-swift reads its args keys (resolve_recipe_names, without the notes)."""
    from swift_ext.msswift.schema import schema_for

    return resolve_recipe_names(recipe, schema_for(recipe.engine, recipe.command))[0]
