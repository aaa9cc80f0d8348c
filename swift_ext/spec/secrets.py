"""Which environment variables hold secrets: never written to recipes, manifests, scripts or stdout."""

from __future__ import annotations

import re

_SECRET_WORDS = {"KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS", "APIKEY"}
_COUNTING = ("NUM", "NUMS", "LEN", "LENGTH", "COUNT", "SIZE", "LIMIT", "MAX", "MIN")


def is_secret(name: str) -> bool:
    """*KEY*, *TOKEN*, *SECRET*, *PASSWORD*-style names (HF_TOKEN, WANDB_API_KEY), but not counts that
    merely mention tokens (IMAGE_MAX_TOKEN_NUM, VIDEO_MAX_TOKEN_NUM)."""
    parts = re.split(r"[^A-Za-z0-9]+", name.upper())
    if parts and parts[-1] in _COUNTING:
        return False
    return any(p in _SECRET_WORDS or p.endswith(("KEY", "TOKEN", "SECRET", "PASSWORD")) for p in parts if p)


def masked_env(env: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if is_secret(k) else v) for k, v in env.items()}


def secret_env_problems(recipe) -> list:
    """A secret in a recipe's `env:` ends up in version control, manifests and batch scripts."""
    from swift_ext.spec.errors import Problem

    return [Problem("looks like a secret: recipes are shared, copied into run manifests and batch scripts",
                    rule="secret", hint=f"remove it from the recipe and `export {name}=...` in your shell; "
                    "swift-ext passes the environment through", **recipe.where(f"env.{name}"))
            for name in recipe.env if is_secret(name)]
