"""The dataset validator's throughput on one core against a raw msgspec decode of every line (the practical
limit) and against ms-swift's own loader (the path users have today), on a text and a multimodal file;
the same findings as the reference implementation (every row through RowChecker.check); --jobs 2; and
peak memory at two file sizes.

Goals (issue #13): on one core, >= 0.40x the raw-decode throughput and >= 20x ms-swift's load_dataset,
text and multimodal, with identical findings. Times are medians of SWIFT_EXT_BENCH_REPEATS runs (the
machine may be shared), each in a fresh process. The one-core ratios use CPU time (process_time: what a
single-threaded run costs whatever else the machine runs); wall-clock figures are printed beside them.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
TEXT_MB = int(os.environ.get("SWIFT_EXT_BENCH_TEXT_MB", "60"))
SMALL_MB = int(os.environ.get("SWIFT_EXT_BENCH_SMALL_MB", "60"))
BIG_MB = int(os.environ.get("SWIFT_EXT_BENCH_MB", "250"))
REPEATS = int(os.environ.get("SWIFT_EXT_BENCH_REPEATS", "3"))
WORDS = "the a image shows red blue green circle square triangle dot moving left right answer question".split()


def _media(folder: Path) -> None:
    media = folder / "media"
    media.mkdir(parents=True, exist_ok=True)
    for name in ("red_square.png", "blue_circle.png", "green_triangle.png", "moving_dot.mp4"):
        target = media / name
        if not target.exists():
            target.write_bytes((ROOT / "data" / "media" / name).read_bytes())


def _write(path: Path, megabytes: int, make_row) -> Path:
    if path.is_file() and path.stat().st_size >= megabytes * 2**20:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    target, written, n = megabytes * 2**20, 0, 0
    with open(path, "w", encoding="utf-8") as fh:
        while written < target:
            n += 1
            line = json.dumps(make_row(rng, n)) + "\n"
            fh.write(line)
            written += len(line)
    return path


def _text(rng: random.Random, count: tuple[int, int]) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(*count)))


def make_file(path: Path, megabytes: int) -> Path:
    """Multimodal rows: system, user with 1-2 <image> (and a <video> in one row in five), assistant."""
    _media(path.parent)

    def row(rng: random.Random, n: int) -> dict:
        k = rng.randint(1, 2)
        images = [f"media/{rng.choice(['red_square', 'blue_circle', 'green_triangle'])}.png" for _ in range(k)]
        if n % 997 == 0:
            images[0] = "media/missing.png"  # a few real problems, as in real data
        out = {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                            {"role": "user", "content": "<image>" * k + _text(rng, (20, 60))},
                            {"role": "assistant", "content": _text(rng, (40, 160))}], "images": images}
        if n % 5 == 0:
            out["videos"] = ["media/moving_dot.mp4"]
            out["messages"][1]["content"] = "<video>" + out["messages"][1]["content"]
        return out

    return _write(path, megabytes, row)


def make_text_file(path: Path, megabytes: int) -> Path:
    """Text SFT rows (alpaca-like lengths): an optional system turn, one or two user/assistant exchanges."""

    def row(rng: random.Random, n: int) -> dict:
        messages = [{"role": "system", "content": "You are a helpful assistant."}] if n % 3 == 0 else []
        for _ in range(1 if n % 4 else 2):
            messages += [{"role": "user", "content": _text(rng, (10, 50))},
                         {"role": "assistant", "content": _text(rng, (30, 200)).replace(" a ", " a\n", 1)}]
        if n % 997 == 0:
            messages[-1]["role"] = "assitant"  # a few real problems, as in real data
        return {"messages": messages}

    return _write(path, megabytes, row)


def _python(code: str, cwd: Path = ROOT) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd,
                         env=env)  # this checkout's swift_ext, whatever the working directory
    return json.loads(out.stdout.strip().splitlines()[-1])


def raw_decode_seconds(path: Path) -> dict:
    """msgspec's decode of every line, nothing else: the limit a Python validator can approach."""
    return _python(
        "import json, time, msgspec\n"
        "decoder = msgspec.json.Decoder()\n"
        "t, c = time.perf_counter(), time.process_time()\n"
        f"with open({str(path)!r}, 'rb') as fh:\n"
        "    for line in fh:\n"
        "        decoder.decode(line)\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'cpu': time.process_time() - c}))\n")


def validator_run(path: Path, jobs: int, typed: bool = True, report_to: Path | None = None) -> dict:
    """Seconds, peak RSS (KiB) of the largest process and counts, from a fresh process; optionally the
    `--format json` report written to a file (for the identical-findings check)."""
    return _python(
        "import json, resource, time\n"
        "from swift_ext.datasets import check as data, fastpath\n"
        "t, c = time.perf_counter(), time.process_time()\n"
        f"r = data.check_file({str(path)!r}, data.Options(), jobs={jobs}, typed={typed})\n"
        "dt, cpu = time.perf_counter() - t, time.process_time() - c\n"
        f"if {str(report_to)!r} != 'None':\n"
        f"    open({str(report_to)!r}, 'w').write(json.dumps(r.as_dict(), ensure_ascii=False))\n"
        # ru_maxrss survives execve on Linux, so it would report the forking bench's own peak; VmHWM is this
        # process image's peak alone.
        "own = int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])\n"
        "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps({'seconds': dt, 'cpu': cpu, 'rss': max(own, kids), 'rows': r.rows, 'valid': r.valid_rows, "
        "'errors': r.errors, 'compiled': fastpath.row_summary is not fastpath._row_summary}))\n",
        cwd=path.parent)  # media paths are relative to the working directory, as ms-swift reads them


def msswift_seconds(path: Path, megabytes: int = 16) -> tuple[dict, float]:
    """ms-swift's load_dataset (strict=False, num_proc=1, as users run it) on the first `megabytes` of the
    file: wall seconds, and CPU seconds of the process and the worker it starts (datasets' map runs there)."""
    slice_path = path.with_name(f"slice-{path.stem}.jsonl")
    with open(path, "rb") as src, open(slice_path, "wb") as dst:
        size = 0
        for line in src:
            dst.write(line)
            size += len(line)
            if size >= megabytes * 2**20:
                break
    seconds = _python(
        "import json, time, logging, resource\n"
        "from swift.dataset import load_dataset\n"
        "logging.disable(logging.WARNING)\n"
        "kids = lambda: (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_CHILDREN))\n"
        "t, c, k = time.perf_counter(), time.process_time(), kids()\n"
        f"load_dataset([{str(slice_path)!r}], strict=False, num_proc=1, load_from_cache_file=False)\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'cpu': time.process_time() - c + kids() - k}))\n",
        cwd=path.parent)
    return seconds, size / 2**20


def scaling_model(path: Path) -> dict:
    """Amdahl's model of --jobs N from one core: CPU per row in the chunk workers (parallel) and in the
    parent (serial: reading the results, type changes, duplicates), measured by running both in one process,
    for a big file (duplicates past the set, in numpy arrays; numpy's import counted with the start-up)."""
    return _python(
        "import json, time, numpy\n"
        "from swift_ext.datasets import check as d, duplicates\n"
        "duplicates.SET_DUPLICATES = 0\n"
        f"p = {str(path)!r}\n"
        "ref = d._reference_types(p, 'jsonl')\n"
        "c = time.process_time()\n"
        "rows = sum(d.check_chunk(p, s, e, i, d.Options(), ref).rows for i, (s, e) in enumerate(d.chunk_ranges(p)))\n"
        "chunks = time.process_time() - c\n"
        "c = time.process_time()\n"
        "d.check_file(p, d.Options())\n"
        "whole = time.process_time() - c\n"
        "print(json.dumps({'worker': chunks / rows, 'parent': max(whole - chunks, 0) / rows}))\n", cwd=path.parent)


def medians(run) -> tuple[float, float]:
    """Median CPU seconds and median wall seconds of REPEATS runs."""
    runs = [run() for _ in range(REPEATS)]
    return statistics.median(r["cpu"] for r in runs), statistics.median(r["seconds"] for r in runs)


def bench_file(kind: str, path: Path) -> dict:
    mb = path.stat().st_size / 2**20
    raw, raw_wall = medians(lambda: raw_decode_seconds(path))
    ours, ours_wall = medians(lambda: validator_run(path, jobs=1))
    one_wall = ours_wall
    two = statistics.median(validator_run(path, jobs=2)["seconds"] for _ in range(REPEATS))
    typed_json, reference_json = OUT / f"report-{kind}-typed.json", OUT / f"report-{kind}-reference.json"
    info = validator_run(path, jobs=1, report_to=typed_json)
    reference = validator_run(path, jobs=1, typed=False, report_to=reference_json)
    identical = typed_json.read_bytes() == reference_json.read_bytes()
    ms, ms_mb = msswift_seconds(path)
    vs_raw = raw / ours
    vs_ms_wall, vs_ms_cpu = (mb / ours_wall) / (ms_mb / ms["seconds"]), (mb / ours) / (ms_mb / ms["cpu"])
    print(f"[{kind}] {path.name}: {mb:.0f} MB, {info['rows']} rows ({info['errors']} errors), row check in "
          f"{'C (swift_ext/datasets/_rowcheck.c)' if info['compiled'] else 'Python (the C part is not built: make build)'}")
    print(f"  raw msgspec decode of every line (1 core)  {mb / raw:7.1f} MB/s CPU ({mb / raw_wall:6.1f} wall)   (baseline)")
    print(f"  swift-ext data check --jobs 1              {mb / ours:7.1f} MB/s CPU ({mb / ours_wall:6.1f} wall)   "
          f"{vs_raw:5.2f}x of raw decode   {'PASS' if vs_raw >= 0.4 else 'FAIL'} (goal >= 0.40)")
    print(f"  swift-ext data check --jobs 2              {mb / two:7.1f} MB/s wall   {one_wall / two:4.2f}x of --jobs 1 wall")
    print(f"  reference (per-row Python check)           {mb / reference['cpu']:7.1f} MB/s CPU   findings "
          f"{'IDENTICAL' if identical else 'DIFFERENT'} (--format json, byte for byte)")
    print(f"  ms-swift load_dataset ({ms_mb:.0f} MB slice)       {ms_mb / ms['seconds']:7.1f} MB/s wall "
          f"({ms_mb / ms['cpu']:6.1f} CPU)   swift-ext --jobs 1 is {vs_ms_wall:.0f}x faster in wall time "
          f"{'PASS' if vs_ms_wall >= 20 else 'FAIL'} (goal >= 20x), {vs_ms_cpu:.0f}x in CPU time")
    model = scaling_model(path)
    w, p = model["worker"], model["parent"]
    print(f"  --jobs N model: {w * 1e6:.2f} us/row in workers, {p * 1e6:.2f} us/row serial in the parent -> "
          + ", ".join(f"{j} jobs {(w + p) / (p + w / j):.1f}x" for j in (2, 4, 8, 16, 32)) + " (+ ~0.5 s start)")
    return {"rss": info["rss"]}


def main() -> None:
    text = make_text_file(OUT / f"text-{TEXT_MB}mb.jsonl", TEXT_MB)
    big = make_file(OUT / f"synthetic-{BIG_MB}mb.jsonl", BIG_MB)
    small = make_file(OUT / f"synthetic-{SMALL_MB}mb.jsonl", SMALL_MB)
    print(f"medians of {REPEATS} runs each; {os.cpu_count()} CPUs here")
    bench_file("text", text)
    rss_big = bench_file("multimodal", big)["rss"]
    rss_small = validator_run(small, jobs=2)["rss"]
    print(f"peak memory (largest process, --jobs 2): {rss_small / 1024:.0f} MiB on {SMALL_MB} MB, "
          f"{validator_run(big, jobs=2)['rss'] / 1024:.0f} MiB on {BIG_MB} MB "
          f"(--jobs 1: {rss_big / 1024:.0f} MiB on {BIG_MB} MB)")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)")
