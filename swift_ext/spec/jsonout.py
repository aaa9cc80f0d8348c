"""JSON that swift-ext prints for other programs (`plan --json`, `watch --json`): strict JSON, as every reader takes
it. Python's json writes NaN and +-Infinity as bare tokens (not JSON: jq, JavaScript and Go refuse the whole line) --
a diverged run logs a NaN loss, so `watch --json` met them; here they are null. A value JSON has no form for (a
YAML date a recipe holds) is its text."""

from __future__ import annotations

import json
import math
from typing import Any


def dumps(value: Any, **kwargs) -> str:
    return json.dumps(_finite(value), default=str, allow_nan=False, **kwargs)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
