"""The one finding type every check reports with — plan, data, doctor, resume, verify, the oracle — and the
one table of its codes (swift_ext/spec/codes.py), from which docs/codes.md is generated.

A finding says what is wrong (or worth knowing), where, how sure we are (severity), and what to do. The
code names the check that found it: stable, documented, greppable in logs and `--json` output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swift_ext.spec.codes import CODES, family_of

SEVERITIES = ("error", "warning", "note")


def shortened(text: str, keep: int = 60) -> str:
    """`text` fit for a one-line message: a 5,000-character value repeated in full buries what the message says."""
    return text if len(text) <= keep else f"{text[:keep]}... ({len(text)} characters)"


def shown(value, keep: int = 60) -> str:
    """A value as a message quotes it (its repr), shortened like any text."""
    return shortened(repr(value), keep)


@dataclass
class Finding:
    """One thing a check found, located as precisely as the check knows."""

    message: str
    code: str | None = None  # a key of spec.codes.CODES; None only for plain input errors raised by UserError.one
    severity: str = "error"  # error: refused / blocks; warning: runs, but not as meant; note: worth knowing
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str | None = None  # dotted recipe field ("args.mtp_num_layers") or dataset column ("messages")
    hint: str | None = None  # "did you mean ...", or what to do instead
    source: str | None = None  # where the check's verdict comes from when not the code's own rule (a function)
    details: list[str] = field(default_factory=list)  # e.g. the tensors a verify check names

    def where(self) -> str:
        """`file:line:column` as far as known; '' when the finding is about no file."""
        if not self.file:
            return ""
        where = self.file
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        return where

    def render(self) -> str:
        if family_of(self.code) == "data":  # `file:line: CODE name: message (column)`, as data check prints
            where = f"{self.file}:{self.line}" if self.line else self.file  # line 0: the whole file
            return f"{where}: {self.code} {CODES[self.code].title}: {self.message}" + (
                f" ({self.path})" if self.path else "")
        where = self.where()
        text = (where + ": " if where else "") + (f"{shortened(self.path, 80)}: " if self.path else "") + self.message
        if self.hint:
            text += f" ({self.hint})"
        return text

    def as_dict(self) -> dict:
        if family_of(self.code) == "data":  # data check's --format json: every key, always (scripts read it)
            return {"file": self.file, "line": self.line or 0, "code": self.code, "severity": self.severity,
                    "field": self.path or "", "message": self.message}
        out = {"code": self.code, "severity": self.severity, "message": self.message}
        for key in ("file", "line", "column", "path", "hint", "source"):
            value = getattr(self, key)
            if value not in (None, ""):
                out[key] = value
        if self.details:
            out["details"] = list(self.details)
        return out

    @property
    def blocking(self) -> bool:
        return self.severity == "error"


@dataclass
class UserError(Exception):
    """Raised for bad input. The CLI prints every finding and exits with `exit_code`."""

    problems: list[Finding] = field(default_factory=list)
    exit_code: int = 2

    @classmethod
    def one(cls, message: str, **where) -> "UserError":
        return cls([Finding(message, **where)])

    def __str__(self) -> str:
        return "\n".join(p.render() for p in self.problems)
