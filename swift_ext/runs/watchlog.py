"""ms-swift's logging.jsonl (and the dicts it prints to stdout), read as it grows.

What ms-swift 4.6 writes per logged step (read from its source):
- `swift sft|rlhf` (swift/trainers/patcher.py add_train_message): `global_step/max_steps` "N/M",
  `elapsed_time`/`remaining_time` ("1h 2m 3s"), `train_speed(s/it)` (average since this session
  started), `memory(GiB)` (max reserved, rank 0), plus the trainer's loss, grad_norm, learning_rate and,
  with `include_num_input_tokens_seen: true`, transformers' `num_input_tokens_seen`. The last rows are
  `train_runtime`/`train_loss` and then `last_model_checkpoint`.
- `megatron sft|rlhf` (swift/megatron/callbacks/print.py): the same with `iteration` "N/M" instead of
  `global_step/max_steps`, memory = max over the model-parallel group; written by the last rank.
- GRPO (swift/rlhf_trainers/grpo_trainer.py, swift/megatron/trainers/grpo_trainer.py): `reward`,
  `reward_std`, `frac_reward_zero_std`, `rewards/<Func>/mean|std`, `completions/mean_length`,
  `completions/clipped_ratio`, `kl`, `clip_ratio/region_mean` (or `clip_ratio`), `step_time`.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from swift_ext.runs.rundir import RunDir

# -- reading the log -------------------------------------------------------------------------------

def parse_duration(text) -> float | None:
    """ms-swift's format_time ("1d 2h 3m 4s", "5s") -> seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    if not isinstance(text, str):
        return None
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([dhms])", text)
    if not parts:
        return None
    unit = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(float(n) * unit[u] for n, u in parts)


# A line ends at \n, \r\n or a lone \r: a trainer's stdout redirected to a file (tqdm's progress bars) ends its
# lines with \r. Not str.splitlines' other breaks (\x0c, \x85, U+2028): JSON keeps those inside a string value.
_LINE_END = re.compile(rb"\r\n|\r|\n")


def split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """(complete lines, what follows the last line end): the one splitting of a log into lines (LogFollower: `watch`
    as it follows the file, and `report` reading it whole). A CR LF cut between two reads gives an empty line."""
    *lines, rest = _LINE_END.split(data)
    return lines, rest


def parse_line(line: str) -> dict | None:
    """A logging.jsonl row, or the dict ms-swift prints to stdout (`{'loss': '1.2', ...}`)."""
    line = line.strip()
    start = line.find("{")
    if start < 0:
        return None
    text = line[start:]
    try:
        row = json.loads(text)
    except RecursionError:  # nested past the decoder's depth: no row ms-swift writes
        return None
    except ValueError:
        try:
            row = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return row if isinstance(row, dict) else None


def read_rows(path: Path) -> list[dict]:
    """Every row of a log file, its last line too (the run may have stopped in the middle of writing it)."""
    return LogFollower(path).poll(final=True)


class LogFollower:
    """Complete lines appended to a file since the last poll (a partial last line waits)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = b""

    def poll(self, final: bool = False) -> list[dict]:
        """`final`: the last look (`watch --once`): a last line without its line end is read too, as `report`
        reads it."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if size < self.offset:  # truncated or replaced: start over
            self.offset, self.partial = 0, b""
        if size == self.offset and not (final and self.partial):
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(size - self.offset)
        self.offset += len(data)
        lines, self.partial = split_lines(self.partial + data)
        if final:
            lines, self.partial = [*lines, self.partial], b""
        rows = []
        for raw in lines:
            row = parse_line(raw.decode("utf-8", errors="replace"))
            if row is not None:
                rows.append(row)
        return rows


def find_log(run: Path) -> Path | None:
    """RUN itself (a file), RUN/logging.jsonl, or the newest RUN/v*-*/logging.jsonl."""
    if run.is_file():
        return run
    return RunDir(run).log()


def step_of(row: dict) -> tuple[int, int] | None:
    text = row.get("global_step/max_steps", row.get("iteration"))
    if not isinstance(text, str) or "/" not in text:
        return None
    a, _, b = text.partition("/")
    try:
        return int(a), int(b)
    except ValueError:
        return None


def is_train_row(row: dict) -> bool:
    return (step_of(row) is not None and "train_runtime" not in row
            and any(k in row for k in ("loss", "grad_norm", "learning_rate", "reward")))


def is_final_row(row: dict) -> bool:
    return "train_runtime" in row or "last_model_checkpoint" in row


def restarts(steps: list[int]) -> list[tuple[int, int]]:
    """(step before, step after) wherever the logged step went back or repeated: the log holds more than
    one run (a restart from a checkpoint, or a second run writing into the same folder)."""
    return [(a, b) for a, b in zip(steps, steps[1:]) if b <= a]


def two_runs_warning(steps: list[int]) -> str | None:
    found = restarts(steps)
    if not found:
        return None
    where = ", ".join(f"{a} -> {b}" for a, b in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    return (f"this logging.jsonl holds {len(found) + 1} runs: the step went back ({where}); a restart from a "
            "checkpoint, or two runs writing into one output folder: rates are per run, the curves mix them")
