"""A recipe's `args` bound to ms-swift's own defaults: one typed view, built once per plan.

Every check (layout rules, memory, search, GRPO batch rules) reads arguments through this view, so a
value ms-swift would default comes from ms-swift's dataclass (the schema), not from a fallback repeated
at each use, and a value ms-swift's __post_init__ sets (packing -> padding_free, the transformers
engine's gradient_accumulation_steps ...) is already set here (swift_ext.msswift.coercions). Values are coerced once by the
field's type in the schema (`"true"` -> True, `"4"` -> 4); a value that does not coerce stays as
written (check_args reports it) and the typed getters treat it as unset.
"""

from __future__ import annotations

import json

from typing import Any

from swift_ext.msswift.coercions import Coercion, coerce
from swift_ext.msswift.conventions import is_true, typed_text
from swift_ext.msswift.schema import ArgSchema



class Args:
    """Recipe args with ms-swift's defaults filled in, values normalised to Python types."""

    def __init__(self, given: dict[str, Any], schema: ArgSchema | None = None,
                 defaults: dict[str, Any] | None = None, context: tuple[str, str, int] | None = None,
                 env: dict[str, str] | None = None):
        self._given = dict(given)
        # The recipe's environment: a few engine settings are environment variables, not arguments
        # (ms-swift's MAX_NEGATIVE_SAMPLES, read by the reranker collator).
        self.env = dict(env or {})
        self.schema = schema
        self._defaults = defaults if defaults is not None else (
            {name: f.default for name, f in schema.fields.items()} if schema is not None else {})
        kinds = {name: f.type for name, f in schema.fields.items()} if schema is not None else {}
        self._kinds = kinds
        # A recipe's `null` removes a value: ms-swift's default applies (launch.py leaves the flag out).
        self._stated = {**self._defaults,
                        **{k: _coerce(kinds.get(k), v) for k, v in self._given.items() if v is not None}}
        self._context = context  # (engine, command, world size): what ms-swift's coercions depend on
        self._apply_coercions()

    @classmethod
    def bind(cls, recipe, schema: ArgSchema) -> "Args":
        return cls(recipe.args, schema, context=(recipe.engine, recipe.command, recipe.launch.world_size),
                   env=recipe.env)

    def _apply_coercions(self) -> None:
        self._values = dict(self._stated)
        self._mappings: dict[str, dict] = {}
        self.coerced: dict[str, Coercion] = {}
        if self._context is None or self.schema is None:
            return
        for c in coerce(self._stated, set(self.schema.fields), *self._context):
            self._values[c.name] = c.value
            self.coerced[c.name] = c

    def stated(self, name: str) -> Any:
        """The value before ms-swift's __post_init__: the recipe's, else ms-swift's dataclass default."""
        return self._stated.get(name)

    def with_overrides(self, overrides: dict[str, Any], drop: tuple[str, ...] = ()) -> "Args":
        """A new view with some recipe values replaced (or removed): what `--search` tries, hundreds of times,
        so only the changed keys are coerced again."""
        new = Args.__new__(Args)
        new.schema, new._defaults, new._kinds, new._context = self.schema, self._defaults, self._kinds, self._context
        new.env = self.env
        new._given = {k: v for k, v in self._given.items() if k not in drop}
        new._given.update(overrides)
        new._stated = dict(self._stated)
        for key in (*drop, *overrides):
            value = new._given.get(key)
            if value is None:
                new._stated[key] = self._defaults.get(key)
            else:
                new._stated[key] = _coerce(self._kinds.get(key), value)
        new._apply_coercions()
        return new

    def has(self, name: str) -> bool:
        """The recipe sets `name` itself (not only ms-swift's default)."""
        return self._given.get(name) is not None

    def raw(self, name: str) -> Any:
        return self._values.get(name)

    def names(self) -> set[str]:
        """Every argument with a value: the recipe's and ms-swift's defaults (what the oracle copies)."""
        return set(self._values)

    def int(self, name: str, fallback: int | None = None) -> int | None:
        """`fallback` is only for arguments the command's dataclass does not have (engine swift)."""
        return self._typed(name, int, fallback)

    def float(self, name: str, fallback: float | None = None) -> float | None:
        return self._typed(name, float, fallback)

    def _typed(self, name: str, convert, fallback):
        # A value that does not convert is reported by plan.check_args; the checks use ms-swift's default.
        for value in (self._values.get(name), self._defaults.get(name)):
            if isinstance(value, list):
                value = value[0] if value else None
            if value is None:
                continue
            try:
                return convert(value)
            except (TypeError, ValueError, OverflowError):  # int(inf) overflows
                continue
        return fallback

    def bool(self, name: str) -> bool:
        return is_true(self._values.get(name))

    def str(self, name: str) -> str | None:
        value = self._values.get(name)
        return None if value is None else str(value)

    def list(self, name: str) -> list:
        value = self._values.get(name)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def mapping(self, name: str) -> dict:
        """A dict argument as ms-swift reads it (utils json_parse_to_dict: a dict, or a JSON object in a string);
        {} when unset or unreadable, which ms-swift's own parsing reports first. A mapping from the recipe goes
        through JSON as the command line carries it, so its keys are strings there (`{1: 2}` arrives as {"1": 2})."""
        # Read once per name: the layout search asks for megatron_extra_kwargs tens of thousands of times (40% of
        # `plan --search` re-encoding the same JSON); the values do not change after binding. A copy is returned, so
        # a caller's update cannot reach the next reader.
        if name not in self._mappings:
            value = self._values.get(name)
            try:
                value = json.loads(value if isinstance(value, str) else json.dumps(value))
            except (TypeError, ValueError, RecursionError):  # a date or other non-JSON value: check_args reports it
                value = {}
            self._mappings[name] = value if isinstance(value, dict) else {}
        return dict(self._mappings[name])

    def mixed_precision(self) -> tuple[bool | None, bool | None]:
        """(fp16, bf16) as ModelArguments._init_mixed_precision leaves them (MegatronArguments calls it too): the
        stated value, else from torch_dtype -- float16/float32 give fp16, bfloat16 gives bf16 (the names
        HfConfigFactory.to_torch_dtype takes with getattr(torch, name)); None where config.json's dtype decides."""
        dtype = (self.str("torch_dtype") or "").lower().replace("torch.", "")
        by_dtype = {"float16": (True, False), "half": (True, False), "float32": (True, False),
                    "float": (True, False), "bfloat16": (False, True)}.get(dtype, (None, None))
        return (self.bool("fp16") if self.has("fp16") else by_dtype[0],
                self.bool("bf16") if self.has("bf16") else by_dtype[1])

    # -- numbers several checks need; the defaults are ms-swift's (from the schema) ----------------------
    @property
    def global_batch_size(self) -> int:
        return self.int("global_batch_size")

    @property
    def micro_batch_size(self) -> int:
        return self.int("micro_batch_size")

    @property
    def max_completion_length(self) -> int:
        return self.int("max_completion_length") or 0


def _coerce(ftype: dict | None, value: Any) -> Any:
    """The value as ms-swift's argument parser would hold it; unchanged when it does not parse."""
    if ftype is None or value is None:
        return value
    kind = ftype.get("kind")
    if kind in ("bool", "int", "float") and isinstance(value, str):
        return typed_text(value, ftype)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
