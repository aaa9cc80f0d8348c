"""What one check is asked (Options) and what one chunk of a file gives back (ChunkResult), with the
limits both follow."""

from __future__ import annotations

import array
from collections import Counter
from dataclasses import dataclass, field

from swift_ext.spec.findings import Finding

MAX_LINE = 2**31 - 1  # Arrow's 32-bit string offsets: one value cannot be larger, so neither can a row
CHUNK = 8 * 1024 * 1024
LENGTH_SAMPLE = 100_000  # token lengths kept for percentiles (reservoir sample): bounded memory


@dataclass(frozen=True)
class Options:
    task: str = "sft"
    media_root: str | None = None
    deep: bool = False
    max_length: int | None = None
    tokenizer: str | None = None
    image_tokens: int | None = None  # IMAGE_MAX_TOKEN_NUM
    video_tokens: int | None = None  # VIDEO_MAX_TOKEN_NUM
    fps_max_frames: int | None = None  # FPS_MAX_FRAMES
    reward_columns: tuple[str, ...] = ("solution",)
    # kto: each row takes a neighbour's answer as its KL completion (every loss_type but apo_zero_unpaired:
    # swift/pipelines/train/kto.py prepare_kto_dataset), so rows sharing an answer fail (datasets/kto.py)
    kto_kl: bool = True
    num_labels: int | None = None  # seq_cls: the head's width and problem_type, from the recipe (datasets/encoder.py)
    problem_type: str | None = None
    hard_negatives: bool = False  # embedding with loss_type infonce and INFONCE_HARD_NEGATIVES set: negatives required
    # the recipe's `columns` argument, (from, to) pairs: ms-swift renames a file's columns with it before reading any
    # (datasets/mapping.py renamed_columns)
    columns: tuple[tuple[str, str], ...] = ()
    # the recipe's template_backend: ms-swift's own (swift) rebuilds the turns (E117); jinja hands them to the
    # tokenizer's chat template as written
    template_backend: str = "swift"


@dataclass
class ChunkResult:
    index: int
    lines: int = 0
    rows: int = 0
    valid: int = 0
    issues: list[Finding] = field(default_factory=list)
    roles: Counter = field(default_factory=Counter)
    media: Counter = field(default_factory=Counter)
    lengths: list[int] = field(default_factory=list)
    digest_lines: list[int] = field(default_factory=list)
    digests: list[bytes] = field(default_factory=list)  # 16-byte xxh3 digest of each row's messages and media
    line_blob: bytes = b""  # both packed by pack(): cheap to send between processes and to read with numpy
    digest_blob: bytes = b""

    def pack(self) -> "ChunkResult":
        self.line_blob, self.digest_blob = array.array("q", self.digest_lines).tobytes(), b"".join(self.digests)
        self.digest_lines, self.digests = [], []
        return self
    # (column, JSON type) the chunk saw first (not in the reference rows): the parent's E110 needs every type
    # a column holds
    types: list[tuple[str, str]] = field(default_factory=list)
