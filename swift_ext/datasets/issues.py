"""What `data check` reports: its codes, its findings (spec.findings.Finding), and the error that stops a file."""

from __future__ import annotations

from typing import Any

from swift_ext.spec.codes import CODES as ALL_CODES
from swift_ext.spec.findings import Finding

# code -> (severity, name), the data family of the one table of codes (swift_ext/spec/codes.py). Codes are
# stable: scripts and CI read them.
CODES: dict[str, tuple[str, str]] = {code: (c.severity, c.title) for code, c in ALL_CODES.items()
                                     if c.family == "data" and c.severity != "retired"}


def data_finding(file: str, line: int, code: str, column: str, message: str) -> Finding:
    """A dataset finding: `line` 0 is the whole file; `column` the row's field it is about ('' for the row)."""
    return Finding(message, code=code, severity=CODES[code][0], file=file, line=line, path=column)


class FileCheckError(Exception):
    """A file that cannot be checked at all (missing, a directory, no tokenizer): one line for the user."""


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"
