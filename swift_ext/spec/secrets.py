"""Which environment variables hold secrets: never written to recipes, manifests, scripts or stdout."""

from __future__ import annotations

import re

_SECRET_WORDS = {"KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS", "APIKEY"}
_COUNTING = ("NUM", "NUMS", "LEN", "LENGTH", "COUNT", "SIZE", "LIMIT", "MAX", "MIN")
# A name ending in one of these holds where a secret is, not the secret (HF_TOKEN_PATH, huggingface_hub's file).
_LOCATION = ("PATH", "FILE", "DIR")
# A switch about a token, not the token (huggingface_hub's HF_HUB_DISABLE_IMPLICIT_TOKEN=1).
_SWITCH = {"DISABLE", "ENABLE"}
# A vocabulary token: ms-swift's GENERATIVE_RERANKER_POSITIVE_TOKEN / _NEGATIVE_TOKEN (swift/utils/torch_utils.py
# get_generative_reranker_logits: the token strings, "yes" / "no"), and the tokenizer's special tokens.
_VOCABULARY = {"POSITIVE", "NEGATIVE", "PAD", "BOS", "EOS", "UNK", "SEP", "CLS", "MASK", "SPECIAL", "STOP",
               "IMAGE", "VIDEO", "AUDIO"}


def is_secret(name: str) -> bool:
    """*KEY*, *TOKEN*, *SECRET*, *PASSWORD*-style names (HF_TOKEN, WANDB_API_KEY), but not counts that
    merely mention tokens (IMAGE_MAX_TOKEN_NUM, VIDEO_MAX_TOKEN_NUM), vocabulary tokens
    (GENERATIVE_RERANKER_POSITIVE_TOKEN), switches (HF_HUB_DISABLE_IMPLICIT_TOKEN) or paths (HF_TOKEN_PATH)."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name.upper()) if p]
    if not parts or parts[-1] in _COUNTING or parts[-1] in _LOCATION or _SWITCH & set(parts):
        return False
    if parts[-1] == "TOKEN" and len(parts) > 1 and parts[-2] in _VOCABULARY \
            and not any(p in _SECRET_WORDS or p.endswith(("KEY", "SECRET", "PASSWORD")) for p in parts[:-1]):
        return False
    return any(p in _SECRET_WORDS or p.endswith(("KEY", "TOKEN", "SECRET", "PASSWORD")) for p in parts)


def masked_env(env: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if is_secret(k) else v) for k, v in env.items()}


def secret_env_problems(recipe) -> list:
    """A secret in a recipe's `env:` ends up in version control, manifests and batch scripts."""
    from swift_ext.spec.findings import Finding

    return [Finding("looks like a secret: recipes are shared, copied into run manifests and batch scripts",
                    code="secret", hint=f"remove it from the recipe and `export {name}=...` in your shell; "
                    "swift-ext passes the environment through", **recipe.where(f"env.{name}"))
            for name in recipe.env if is_secret(name)]


# --------------------------------------------------------------------------------------------------
# ms-swift arguments that are credentials. They may not be written in a recipe: the recipe names an
# environment variable (`hub_token: $HF_TOKEN`), printed commands, manifests and batch scripts show that
# reference, and only the process swift-ext starts gets the value.

# The ms-swift arguments (all commands) that carry a credential, and the variable each is conventionally
# passed through. tests/test_secrets.py checks this against every argument name in the schema snapshot.
SECRET_ARGS = {
    "hub_token": "HF_TOKEN",  # push_to_hub; huggingface_hub reads HF_TOKEN itself as well
    "swanlab_token": "SWANLAB_API_KEY",  # SwanLab's own variable
    "swanlab_secret": "SWANLAB_SECRET",  # the Lark webhook secret of swanlab_lark_webhook_url
}
_ARG_SECRET_ENDINGS = ("_token", "_secret", "_password", "_passwd", "_api_key", "_apikey", "_access_key")
_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def is_secret_arg(name: str) -> bool:
    """hub_token, swanlab_token, *_api_key, *_password ... (an argument name, not a variable name)."""
    low = name.lower()
    return low in SECRET_ARGS or low in ("token", "secret", "password", "api_key") or low.endswith(_ARG_SECRET_ENDINGS)


def secret_arg_env(name: str) -> str:
    """The environment variable that passes argument `name`."""
    return SECRET_ARGS.get(name, name.upper())


def env_reference(value) -> str | None:
    """`$NAME` / `${NAME}` -> NAME: the recipe passes the value through the environment."""
    match = _REFERENCE.fullmatch(value.strip()) if isinstance(value, str) else None
    return match.group(1) if match else None


def secret_arg_problems(recipe) -> list:
    """A credential written into a recipe's args ends up in version control, manifests and scripts."""
    from swift_ext.spec.findings import Finding

    found = []
    for name, value in recipe.args.items():
        if not is_secret_arg(name) or value is None or env_reference(value):
            continue
        var = secret_arg_env(name)
        found.append(Finding("a credential written into the recipe: recipes are shared and copied into run "
                             "manifests and batch scripts", code="secret",
                             hint=f"write `{name}: ${var}` and `export {var}=...` in your shell",
                             **recipe.where(f"args.{name}")))
    return found


def masked_args(args: dict) -> dict:
    """A recipe's args for writing down (manifests, batch scripts): credentials as `$VARIABLE` references."""
    return {k: (f"${secret_arg_env(k)}" if is_secret_arg(k) and v is not None and not env_reference(v) else v)
            for k, v in args.items()}


# --------------------------------------------------------------------------------------------------
# Shell text in other arguments. A credential argument is the one place a `$NAME` value is read from the
# environment (planner/launch.py, at launch). Everywhere else swift-ext hands ms-swift the text as written: it
# starts ms-swift with an argv list, no shell (runs/process.py), and its batch scripts quote `$` (runs/submit.py).
# `import` keeps what bash would compute at run time (`${MODEL:?}`, `$(date)`, `${DATA[@]}`) as text, noted.

# `${...}`, `$(...)`, a backquoted command, or `$NAME` starting the value or a path segment (`$HOME/x`, `out/$RUN`);
# `Costs $5, answer in $USD` in a prompt is text.
_SHELL_TEXT = re.compile(r"\$\{[^}]*\}?|\$\([^)]*\)?|`[^`]*`|(?:^|[/=:])\$[A-Za-z_][A-Za-z0-9_]*")


def shell_text_problems(recipe) -> list:
    """Arguments holding shell syntax that nothing will expand: ms-swift would get `${MODEL:?}` as the model."""
    from swift_ext.spec.findings import Finding

    found = []
    for name, value in recipe.args.items():
        if is_secret_arg(name):
            continue
        for item in value if isinstance(value, list) else [value]:
            match = _SHELL_TEXT.search(item) if isinstance(item, str) else None
            if match:
                found.append(Finding(f"holds shell syntax `{match.group(0)}`: swift-ext starts ms-swift with no shell, "
                                     "so ms-swift gets this text as written", code="shell-text",
                                     hint="write the value itself (a recipe is not a script; `import` keeps what a "
                                     "script computes at run time as text)", **recipe.where(f"args.{name}")))
                break
    return found
