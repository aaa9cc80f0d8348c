"""User-facing errors: one readable message, exit code 2, never a traceback (unless --debug)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problem:
    """One thing wrong with user input, located as precisely as we know."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str | None = None  # dotted field path, e.g. "args.mtp_num_layers"
    hint: str | None = None  # "did you mean ...", or what to do instead
    rule: str | None = None  # stable name of the pre-flight rule that found it

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line:
                where += f":{self.line}"
                if self.column:
                    where += f":{self.column}"
            where += ": "
        text = where + (f"{self.path}: " if self.path else "") + self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


@dataclass
class UserError(Exception):
    """Raised for bad input. The CLI prints every problem and exits with `exit_code`."""

    problems: list[Problem] = field(default_factory=list)
    exit_code: int = 2

    @classmethod
    def one(cls, message: str, **where) -> "UserError":
        return cls([Problem(message, **where)])

    def __str__(self) -> str:
        return "\n".join(p.render() for p in self.problems)
