"""The dataset validator's throughput against a raw decode of every line (the practical limit) and
against ms-swift's own loader (the path users have today), plus peak memory at two file sizes.

Goals (issue #4): >= 40% of the raw-decode throughput using 2 cores; >= 20x ms-swift's path; peak
memory that does not grow with the file.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
SIZES_MB = (int(os.environ.get("SWIFT_EXT_BENCH_SMALL_MB", "60")), int(os.environ.get("SWIFT_EXT_BENCH_MB", "250")))


def make_file(path: Path, megabytes: int) -> Path:
    if path.is_file() and path.stat().st_size >= megabytes * 2**20:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    media = path.parent / "media"
    media.mkdir(exist_ok=True)
    for name in ("red_square.png", "blue_circle.png", "green_triangle.png", "moving_dot.mp4"):
        target = media / name
        if not target.exists():
            target.write_bytes((ROOT / "data" / "media" / name).read_bytes())
    rng = random.Random(0)
    words = "the a image shows red blue green circle square triangle dot moving left right answer question".split()
    target = megabytes * 2**20
    written = 0
    with open(path, "w", encoding="utf-8") as fh:
        n = 0
        while written < target:
            n += 1
            k = rng.randint(1, 2)
            images = [f"media/{rng.choice(['red_square', 'blue_circle', 'green_triangle'])}.png" for _ in range(k)]
            if n % 997 == 0:
                images[0] = "media/missing.png"  # a few real problems, as in real data
            question = "<image>" * k + " ".join(rng.choice(words) for _ in range(rng.randint(20, 60)))
            answer = " ".join(rng.choice(words) for _ in range(rng.randint(40, 160)))
            row = {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                                {"role": "user", "content": question}, {"role": "assistant", "content": answer}],
                   "images": images}
            if n % 5 == 0:
                row["videos"] = ["media/moving_dot.mp4"]
                row["messages"][1]["content"] = "<video>" + row["messages"][1]["content"]
            line = json.dumps(row) + "\n"
            fh.write(line)
            written += len(line)
    return path


def raw_decode_seconds(path: Path) -> float:
    import msgspec

    decoder = msgspec.json.Decoder()
    start = time.perf_counter()
    with open(path, "rb") as fh:
        for line in fh:
            decoder.decode(line)
    return time.perf_counter() - start


def validator_run(path: Path, jobs: int) -> tuple[float, int, dict]:
    """Wall seconds, peak RSS (KiB) of the largest process, and the report, from a fresh process."""
    code = (
        "import json, resource, sys, time\n"
        "from swift_ext.data import Options, check_file\n"
        "t = time.perf_counter()\n"
        f"r = check_file({str(path)!r}, Options(), jobs={jobs})\n"
        "dt = time.perf_counter() - t\n"
        "own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps({'seconds': dt, 'rss': max(own, kids), 'rows': r.rows, 'valid': r.valid_rows, "
        "'errors': r.errors}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["seconds"], data["rss"], data


def msswift_seconds(path: Path, megabytes: int = 16) -> tuple[float, float]:
    """ms-swift's load_dataset (strict=False, as users run it) on the first `megabytes` of the file."""
    slice_path = path.with_name("slice.jsonl")
    with open(path, "rb") as src, open(slice_path, "wb") as dst:
        size = 0
        for line in src:
            dst.write(line)
            size += len(line)
            if size >= megabytes * 2**20:
                break
    code = (
        "import time, logging\n"
        "from swift.dataset import load_dataset\n"
        "logging.disable(logging.WARNING)\n"
        "t = time.perf_counter()\n"
        f"load_dataset([{str(slice_path)!r}], strict=False, num_proc=1, load_from_cache_file=False)\n"
        "print(time.perf_counter() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=path.parent)
    return float(out.stdout.strip().splitlines()[-1]), size / 2**20


def main() -> None:
    small_mb, big_mb = SIZES_MB
    big = make_file(OUT / f"synthetic-{big_mb}mb.jsonl", big_mb)
    small = make_file(OUT / f"synthetic-{small_mb}mb.jsonl", small_mb)
    mb = big.stat().st_size / 2**20
    raw = raw_decode_seconds(big)
    ours, rss_big, info = validator_run(big, jobs=2)
    ours_1, _, _ = validator_run(big, jobs=1)
    _, rss_small, _ = validator_run(small, jobs=2)
    ms_seconds, ms_mb = msswift_seconds(big)
    print(f"file: {big.name}, {mb:.0f} MB, {info['rows']} rows ({info['errors']} with errors, all media checked on disk)")
    print(f"raw msgspec decode of every line (1 core)   {mb / raw:8.1f} MB/s   (baseline)")
    print(f"swift-ext data check --jobs 2             {mb / ours:8.1f} MB/s   {raw / ours:5.2f}x of raw decode   "
          f"{'PASS' if raw / ours >= 0.4 else 'FAIL'} (goal >= 0.40)")
    print(f"swift-ext data check --jobs 1             {mb / ours_1:8.1f} MB/s   {raw / ours_1:5.2f}x of raw decode")
    print(f"ms-swift load_dataset ({ms_mb:.0f} MB slice)        {ms_mb / ms_seconds:8.1f} MB/s   "
          f"swift-ext is {(mb / ours) / (ms_mb / ms_seconds):.0f}x faster   "
          f"{'PASS' if (mb / ours) / (ms_mb / ms_seconds) >= 20 else 'FAIL'} (goal >= 20x)")
    print(f"peak memory (largest process): {rss_small / 1024:.0f} MiB on {small_mb} MB, "
          f"{rss_big / 1024:.0f} MiB on {big_mb} MB")


if __name__ == "__main__":
    main()
