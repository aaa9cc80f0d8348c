"""What `data check` reports: the stable codes, one finding (Issue), and the error that stops a file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# code -> (severity, name). Codes are stable: scripts and CI read them.
CODES: dict[str, tuple[str, str]] = {
    "E001": ("error", "invalid-json"),
    "E002": ("error", "not-an-object"),
    "E003": ("error", "invalid-utf8"),
    "E004": ("error", "line-too-large"),
    "E005": ("error", "not-json-lines"),
    "E006": ("error", "empty-dataset"),
    "E101": ("error", "messages-missing"),
    "E102": ("error", "bad-message"),
    "E103": ("error", "image-count-mismatch"),
    "E104": ("error", "video-count-mismatch"),
    "E105": ("error", "audio-count-mismatch"),
    "E106": ("error", "unknown-role"),
    "E107": ("error", "system-not-first"),
    # E108 bad-turn-order is retired (never reported, the number is not reused): ms-swift accepts any order of
    # its known roles. Its template merges repeated roles, folds tool_call turns into the assistant's and
    # puts an empty user turn before a leading assistant turn (Template._swift_prepare_inputs,
    # _preprocess_tool_call, _get_std_messages).
    "E109": ("error", "bad-content-type"),
    "E110": ("error", "mixed-column-type"),
    "W111": ("warning", "unknown-message-key"),
    "N112": ("note", "role-alias"),
    "W113": ("warning", "repeated-role"),
    "E114": ("error", "bad-column-mapping"),
    "E115": ("error", "bad-tool-call"),
    "E201": ("error", "sft-no-final-answer"),
    "E202": ("error", "grpo-last-not-user"),
    "E203": ("error", "grpo-missing-solution"),
    "E204": ("error", "dpo-bad-rejected"),
    "E205": ("error", "kto-bad-label"),
    "E301": ("error", "media-missing"),
    "E302": ("error", "media-not-a-file"),
    "N303": ("note", "media-url"),
    "E304": ("error", "media-bad-entry"),
    "E305": ("error", "image-unreadable"),
    "E306": ("error", "video-unreadable"),
    "E307": ("error", "audio-unreadable"),
    "E308": ("error", "bad-base64"),
    "E309": ("error", "bad-objects"),
    "E401": ("error", "unbalanced-think"),
    "W402": ("warning", "duplicate-row"),
    "W501": ("warning", "too-long"),
}


@dataclass
class Issue:
    file: str
    line: int
    code: str
    field: str
    message: str

    @property
    def severity(self) -> str:
        return CODES[self.code][0]

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "code": self.code, "severity": self.severity,
                "field": self.field, "message": self.message}

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file  # line 0: the whole file
        return f"{where}: {self.code} {CODES[self.code][1]}: {self.message}" + (
            f" ({self.field})" if self.field else "")


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
