"""ms-swift's template settings that decide a row's token count (TemplateSettings), the qwen_vl_utils
media values a run will use, and the model's tokenizer."""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from swift_ext.datasets.mediatokens import MEDIA_DEFAULTS, PATCH, StatsError
from swift_ext.msswift import model_table
from swift_ext.spec.findings import shown

FAST_TEMPLATES = {"qwen3_5"}  # templates the fast renderer reproduces (tested against ms-swift)


@dataclass(frozen=True)
class TemplateSettings:
    """Everything that decides a row's token count (and so the cache key besides the file)."""

    template: str
    tokenizer: str  # tokenizer.json
    model_dir: str | None = None  # for ms-swift's own template on rows the renderer does not cover
    system: str | None = None  # args.system: used when a row has no system turn
    loss_scale: str = "default"
    enable_thinking: bool = False
    add_non_thinking_prefix: bool = True
    max_pixels: int | None = None  # args.max_pixels (template-level rescale before qwen_vl_utils)
    media: tuple[tuple[str, float], ...] = ()  # resolved MEDIA_DEFAULTS
    media_root: str | None = None

    @property
    def last_round(self) -> bool:
        return self.loss_scale.split("+")[0] == "last_round"

    def media_value(self, key: str) -> float:
        return dict(self.media).get(key, MEDIA_DEFAULTS[key])


def media_settings(env: dict[str, str]) -> tuple[tuple[str, float], ...]:
    """The qwen_vl_utils values a run will use: recipe env, then the process env, then the defaults.
    MAX_PIXELS/MIN_PIXELS/VIDEO_*_PIXELS are converted to token numbers as ms-swift's
    compat_qwen_vl_utils does for 16-pixel patches."""
    merged = {**os.environ, **env}
    try:
        factor = PATCH * int(merged.get("SPATIAL_MERGE_SIZE", 2))
    except ValueError:
        raise StatsError(f"environment SPATIAL_MERGE_SIZE={merged['SPATIAL_MERGE_SIZE']!r}: expected a whole number") from None
    for pixels, tokens in (("MAX_PIXELS", "IMAGE_MAX_TOKEN_NUM"), ("MIN_PIXELS", "IMAGE_MIN_TOKEN_NUM"),
                           ("VIDEO_MAX_PIXELS", "VIDEO_MAX_TOKEN_NUM"), ("VIDEO_MIN_PIXELS", "VIDEO_MIN_TOKEN_NUM")):
        if merged.get(pixels) and not merged.get(tokens):
            try:  # int() as ms-swift's compat_qwen_vl_utils reads it: "1280*28*28" or "1e6" is no number there
                merged[tokens] = str(int(merged[pixels]) // factor**2)
            except ValueError:
                raise StatsError(f"environment {pixels}={merged[pixels]!r}: expected a whole number") from None
    out = []
    for key, default in MEDIA_DEFAULTS.items():
        raw = merged.get(key)
        try:
            value = type(default)(float(raw)) if raw not in (None, "") else default
        except ValueError:
            raise StatsError(f"environment {key}={raw!r}: expected a number") from None
        out.append((key, value))
    return tuple(out)


def tokenizer_file(path: str) -> str:
    p = Path(path)
    if p.is_dir():
        p = p / "tokenizer.json"
    if not p.is_file():
        raise StatsError(f"{path}: no tokenizer.json here")
    return str(p)


def load_tokenizer(path: str):
    return _load_tokenizer_file(tokenizer_file(path))


@lru_cache(maxsize=4)
def _load_tokenizer_file(path: str):
    # ~3 s for a 248k-vocabulary tokenizer.json: once per process (plan, then stats, then memory)
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(path)
    except Exception as exc:  # the tokenizers library raises a bare Exception for any unreadable file
        raise StatsError(f"{path}: not a Hugging Face tokenizer.json ({str(exc).splitlines()[0]})") from None


def template_for(model: Any, model_dir: str | None) -> str | None:
    """The template ms-swift picks for `model`, from its registry as msswift.model_table ships it: a local
    directory's args.json `template` (an ms-swift checkpoint; swift/template/register.py: get_template_meta
    reads it first), else the registered model the name matches, else the one template registered for the
    directory's model_type (args.json's, else config.json's). None where ms-swift could not tell either (it
    stops and asks for --template)."""
    saved = _json_file(model_dir, "args.json")
    if isinstance(saved.get("template"), str) and saved["template"].strip():
        return saved["template"].strip()
    names = [n for n in (model if isinstance(model, str) else None, model_dir) if n]
    for name in names:
        choice = model_table.template_for(name)
        if choice is not None:
            return choice.template
    model_type = saved.get("model_type") or _json_file(model_dir, "config.json").get("model_type")
    choice = model_table.template_for(None, model_type) if isinstance(model_type, str) else None
    return choice.template if choice is not None else None


def _json_file(model_dir: str | None, name: str) -> dict:
    if not model_dir:
        return {}
    try:
        data = json.loads(Path(model_dir, name).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def template_settings(model: Any = None, model_dir: str | None = None, *, fallback_dir: str | None = None,
                      template: str | None = None, tokenizer: str | None = None, args: dict | None = None,
                      env: dict | None = None, loss_scale: str = "default", media_root: str | None = None
                      ) -> tuple[TemplateSettings, list[str]]:
    """Settings for counting, from a recipe's model (its local directory already resolved: `model_dir`),
    args and env, or from --tokenizer/--template. `fallback_dir`: a local model directory with the real
    Qwen3.5/3.6 tokenizer (the bundled tiny model) for when the model is not local. Returns (settings,
    notes saying what was assumed). swift_ext.planner.datafit resolves the directories."""
    args = args or {}
    notes: list[str] = []
    template = template or args.get("template") or template_for(model, model_dir)
    if template is None:
        raise StatsError(f"cannot tell ms-swift's template for model {model!r}: pass --template (e.g. qwen3_5)"
                         if model else "no model: pass --recipe R.yaml, or --tokenizer and --template")
    known = model_table.load()["templates"]
    if template not in known:  # ms-swift's get_template_meta refuses it ('template_type: ... not in [...]')
        close = difflib.get_close_matches(str(template), list(known), n=3)
        raise StatsError(f"template {shown(template)} is not one ms-swift registers"
                         + (f": did you mean {' / '.join(close)}?" if close else ": pass --template (e.g. qwen3_5)"))
    if tokenizer is None and model_dir and Path(model_dir, "tokenizer.json").is_file():
        tokenizer = model_dir
    if (tokenizer is None or model_dir is None) and template == "qwen3_5":
        tiny = fallback_dir
        if tiny and tokenizer is None:
            tokenizer = tiny
            notes.append("tokenizer: the real Qwen3.5/3.6 vocabulary from the bundled tiny model "
                         "(`swift-ext build-model`), as the model is not a local directory")
        model_dir = model_dir or tiny
    if tokenizer is None:
        raise StatsError(f"no tokenizer for {model or template!r}: the model is not a local directory; pass "
                         "--tokenizer PATH (a tokenizer.json or model dir)")
    enable_thinking = args.get("enable_thinking")
    settings = TemplateSettings(
        template=template, tokenizer=str(tokenizer), model_dir=model_dir,
        system=_system_text(args.get("system")), loss_scale=str(args.get("loss_scale") or loss_scale),
        enable_thinking=bool(enable_thinking) if enable_thinking is not None else False,
        add_non_thinking_prefix=args.get("add_non_thinking_prefix", True) is not False,
        max_pixels=args.get("max_pixels"), media=media_settings(env or {}), media_root=media_root)
    if template not in FAST_TEMPLATES:
        notes.append(f"template {template}: every row goes through ms-swift's own template (slow path)")
    return settings, notes


def _system_text(value):
    """The system prompt as ms-swift's command line carries it: text (a number as its text); a value it has no
    text for (a YAML !!set, a list: plan.check_args refuses those) is no prompt to count with."""
    if isinstance(value, str) or value is None:
        return value
    from swift_ext.msswift.schema import render_scalar

    return render_scalar(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
