"""`data stats` tokenizing throughput against a bare `tokenizers` batch encode of the same texts.

The baseline holds the exact strings `data stats` tokenizes (the rendered qwen3_5 template text of every
row) in memory and calls `Tokenizer.encode_batch` on them in the same batches - no file reading, JSON
decoding, rendering or bookkeeping. `data stats` does all of that from the file on disk (cache off).
Goal (issue #13): data stats >= 0.5x the bare encode's tokens per second. Best of three interleaved runs;
the one-off load of the tokenizer (~3 s for the 248k vocabulary, once per process) is excluded from both.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from swift_ext.datasets.lengths import BATCH_ROWS, measure_file
from swift_ext.datasets.render import render
from swift_ext.datasets.template import TemplateSettings, load_tokenizer, media_settings

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
MEGABYTES = int(os.environ.get("SWIFT_EXT_BENCH_STATS_MB", "10"))


def make_file(path: Path, megabytes: int) -> Path:
    """Chat SFT rows with a long-tailed length distribution, words drawn from the README's prose."""
    if path.is_file() and path.stat().st_size >= megabytes * 2**20:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    words = [w for w in (ROOT / "README.md").read_text(encoding="utf-8").split() if "<" not in w]
    rng = random.Random(0)
    target, written = megabytes * 2**20, 0
    with open(path, "w", encoding="utf-8") as fh:
        while written < target:
            question = " ".join(rng.choice(words) for _ in range(int(rng.lognormvariate(3.5, 0.8)) + 3))
            answer = " ".join(rng.choice(words) for _ in range(int(rng.lognormvariate(5.0, 0.9)) + 3))
            row = {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                                {"role": "user", "content": question}, {"role": "assistant", "content": answer}]}
            line = json.dumps(row, ensure_ascii=False) + "\n"
            fh.write(line)
            written += len(line.encode())
    return path


def main() -> None:
    from swift_ext.planner.tinymodel import ensure_model

    model = str(ensure_model("tiny-qwen3_6-moe"))
    settings = TemplateSettings(template="qwen3_5", tokenizer=model, media=media_settings({}))
    path = make_file(OUT / f"stats-text-{MEGABYTES}mb.jsonl", MEGABYTES)

    # the baseline's input: the very strings data stats tokenizes, prepared outside the timed region
    texts = []
    for line in open(path, encoding="utf-8"):
        r = render(json.loads(line), settings)
        texts += [r.prompt, r.completion]
    t0 = time.perf_counter()
    tok = load_tokenizer(model)  # cached for the process: data stats below reuses it
    load_seconds = time.perf_counter() - t0

    def bare() -> tuple[float, int]:
        t0 = time.perf_counter()
        n = 0
        step = 2 * BATCH_ROWS
        for i in range(0, len(texts), step):
            n += sum(len(e.ids) for e in tok.encode_batch(texts[i:i + step], add_special_tokens=False))
        return time.perf_counter() - t0, n

    def ours() -> tuple[float, int]:
        t0 = time.perf_counter()
        lengths = measure_file(str(path), settings, use_cache=False)
        return time.perf_counter() - t0, sum(lengths.total)

    runs = {"bare": [], "ours": []}
    for _ in range(3):  # interleaved, best of three: the machine is shared
        runs["bare"].append(bare())
        runs["ours"].append(ours())
    (tb, nb), (to, no) = min(runs["bare"]), min(runs["ours"])
    assert nb == no, f"token counts differ: bare {nb}, data stats {no}"
    mb = path.stat().st_size / 2**20
    print(f"file: {path.name}, {mb:.0f} MB, {len(texts) // 2} rows, {nb:,} tokens; "
          f"tokenizers threads: {os.environ.get('RAYON_NUM_THREADS', os.cpu_count())}")
    print(f"bare tokenizers encode_batch: {nb / tb / 1e6:.2f} M tokens/s ({tb:.2f} s)")
    print(f"swift-ext data stats (file -> lengths): {no / to / 1e6:.2f} M tokens/s ({to:.2f} s, {mb / to:.1f} MB/s)")
    print(f"ratio data stats / bare encode: {tb / to:.2f}x (goal >= 0.5x); tokenizer load, once per process: "
          f"{load_seconds:.1f} s")


if __name__ == "__main__":
    main()
