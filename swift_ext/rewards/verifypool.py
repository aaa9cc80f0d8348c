"""Bounded-time math answer checking: the parent reads answers, math-verify runs in worker processes.

math-verify's own timeouts use `signal.alarm`, which only works on the main thread (off it they are
silently skipped or raise), and a pathological answer (`9^{9^{9^{9}}}`, `(10^6)!`) can hold sympy for
minutes. So the parent never calls sympy: it extracts and screens the answer text (mathanswer.py: cheap
string scanning, size caps) and sends it to a small pool of plain `python -m swift_ext.rewards.verifypool`
workers over pipes, where mathanswer.judge compares it with the gold. Each item gets a deadline
enforced from outside: a worker that misses it is killed and replaced, and the item scores 0.0 and is
counted. No signals and no fork, so it behaves the same on the main thread, in a thread, or under
asyncio, and inside a CUDA-initialised trainer.

Nothing from a completion is evaluated outside math-verify's parser; workers get text only.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

# answer_part, clean_text and last_boxed are re-exported for rewards/__init__ (the format rewards).
from swift_ext.rewards.mathanswer import (
    INTEGER,
    align,
    answer_part,
    clean_text,
    extract_answer,
    gold_answer,
    judge,
    kind,
    last_boxed,
    normalized,
    risky,
    units,
)

__all__ = ["COUNTERS", "BatchStats", "VerifyPool", "answer_part", "clean_text", "last_boxed", "score_math",
           "score_math_offline", "shared_pool"]

DEFAULT_DEADLINE_S = float(os.environ.get("SWIFT_EXT_REWARD_TIMEOUT", "2.0"))
# Evaluation (infer's metrics, evals beside training) is not a training step to keep bounded: on a loaded
# machine (a CI runner, a node still serving) plain answers took longer than the reward's 2 s and scored 0.
OFFLINE_DEADLINE_S = float(os.environ.get("SWIFT_EXT_EVAL_TIMEOUT", "20.0"))
STARTUP_S = 30.0  # a new worker's import of sympy/math-verify on a loaded machine
DEFAULT_WORKERS = int(os.environ.get("SWIFT_EXT_REWARD_WORKERS", "0")) or min(2, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------------
# The pool (parent side)


COUNTERS = ("timeouts", "guarded", "no_answer", "gold_unparsed", "answer_unparsed", "multi_part")


@dataclass
class BatchStats:
    """What one batch (or, summed, a whole run) met. Counts are items (completions)."""

    items: int = 0
    timeouts: int = 0  # past the per-item deadline: the worker was killed and replaced
    guarded: int = 0  # compared as text only, because sympy must not evaluate them
    no_answer: int = 0  # nothing to score: not text, unclosed reasoning block, unterminated last box
    gold_unparsed: int = 0  # the solution itself could not be read: scored 0, never 1
    answer_unparsed: int = 0  # an answer was found but math-verify could not read it
    multi_part: int = 0  # several boxes, or a gold with several parts (set, tuples, equations)
    seconds: float = 0.0
    unparsed_golds: list = field(default_factory=list)  # a few examples, for the warning
    multi_gold: set = field(default_factory=set)  # indices of the scored pairs whose gold has several parts

    @property
    def mean_latency_ms(self) -> float:
        return 1000 * self.seconds / self.items if self.items else 0.0

    def as_dict(self) -> dict:
        return {"items": self.items, **{name: getattr(self, name) for name in COUNTERS},
                "mean_latency_ms": round(self.mean_latency_ms, 3)}

    def add(self, other: "BatchStats") -> None:
        for name in ("items", "seconds", *COUNTERS):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.unparsed_golds = (self.unparsed_golds + other.unparsed_golds)[:5]


@dataclass
class _Worker:
    proc: subprocess.Popen
    buffer: bytes = b""
    task: list = field(default_factory=list)  # item indices still owed by this worker
    gold: str | None = None
    deadline: float = 0.0
    ready: bool = False  # has answered once: its interpreter and math-verify are loaded


class VerifyPool:
    """Scores (gold, answer) pairs with math-verify in worker processes, each item under a deadline."""

    def __init__(self, workers: int = DEFAULT_WORKERS, deadline_s: float = DEFAULT_DEADLINE_S):
        self.size = max(1, workers)
        self.deadline_s = deadline_s
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()  # one batch at a time; callers may be on any thread
        self._weights: list[int] = []
        self.total = BatchStats()

    # -- lifecycle ---------------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        # A fixed hash seed: sympy's set/dict iteration order (and so its path and time through an
        # expression) then no longer varies from worker to worker, so a score never depends on which
        # worker happened to get the item.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONHASHSEED": "0"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "swift_ext.rewards.verifypool"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )
        os.set_blocking(proc.stdout.fileno(), False)
        return _Worker(proc)

    def _ensure(self) -> None:
        self._workers = [w for w in self._workers if w.proc.poll() is None]
        while len(self._workers) < self.size:
            self._workers.append(self._spawn())

    def cpu_seconds(self) -> float | None:
        """CPU time the live workers have used (Linux /proc; None elsewhere): a load-independent cost."""
        tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        total = 0.0
        for w in self._workers:
            try:
                with open(f"/proc/{w.proc.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                return None
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        return total

    def close(self) -> None:
        for w in self._workers:
            _kill(w.proc)
        self._workers = []

    def __del__(self):  # best effort; workers also exit when their stdin closes
        try:
            self.close()
        except Exception:
            pass

    # -- scoring -----------------------------------------------------------------------------------
    def score(self, pairs: list[tuple[str, str]]) -> tuple[list[float], BatchStats]:
        """Scores for (gold, answer) pairs: 1.0 when math-verify finds them equivalent, else 0.0."""
        # GRPO's completions of one prompt often agree word for word: each distinct pair is checked once.
        copies: dict[tuple[str, str], list[int]] = {}
        for i, pair in enumerate(pairs):
            copies.setdefault(pair, []).append(i)
        distinct = list(copies)
        with self._lock:
            distinct_scores, stats = self._score(distinct, [len(copies[p]) for p in distinct])
        scores = [0.0] * len(pairs)
        for pair, score in zip(distinct, distinct_scores, strict=True):
            for i in copies[pair]:
                scores[i] = score
        stats.items = len(pairs)
        stats.multi_gold = {i for j in stats.multi_gold for i in copies[distinct[j]]}
        return scores, stats

    def _score(self, pairs: list[tuple[str, str]], weights: list[int]) -> tuple[list[float], BatchStats]:
        started = time.perf_counter()
        stats = BatchStats(items=len(pairs))
        scores = [0.0] * len(pairs)
        self._weights = weights  # how many items each pair stands for, for the counters
        # Group by gold so each distinct solution is parsed once per batch (GRPO repeats prompts).
        groups: dict[str, list[int]] = {}
        for i, (gold, _) in enumerate(pairs):
            groups.setdefault(gold, []).append(i)
        queue = list(groups.items())
        self._ensure()
        sel = selectors.DefaultSelector()
        busy: dict[int, _Worker] = {}
        respawns: list[int] = []

        def assign(worker: _Worker) -> None:
            gold, idxs = queue.pop(0)
            worker.task, worker.gold = list(idxs), gold
            message = {"gold": gold, "items": [[i, pairs[i][1]] for i in idxs]}
            try:
                worker.proc.stdin.write(_encode(message) + b"\n")
                worker.proc.stdin.flush()
            except (BrokenPipeError, OSError):  # it died between batches: replace it, a few times a batch
                queue.insert(0, (gold, idxs))
                _kill(worker.proc)
                self._workers.remove(worker)
                respawns.append(1)
                if len(respawns) <= 2 * self.size:
                    self._workers.append(self._spawn())
                return
            # The gold parse, then the first item; a fresh worker also needs to import math-verify/sympy.
            worker.deadline = time.monotonic() + self.deadline_s * 2 + (0 if worker.ready else STARTUP_S)
            busy[worker.proc.stdout.fileno()] = worker
            sel.register(worker.proc.stdout, selectors.EVENT_READ, worker)

        def replace(worker: _Worker) -> None:
            sel.unregister(worker.proc.stdout)
            busy.pop(worker.proc.stdout.fileno(), None)
            _kill(worker.proc)
            self._workers.remove(worker)
            fresh = self._spawn()
            self._workers.append(fresh)

        for w in list(self._workers):
            if queue:
                assign(w)
        while not busy and queue and self._workers:  # every first write failed: the replacements take over
            assign(self._workers[-1])
        while busy:
            now = time.monotonic()
            timeout = max(0.0, min(w.deadline for w in busy.values()) - now)
            for key, _ in sel.select(timeout):
                worker: _Worker = key.data
                try:
                    chunk = os.read(worker.proc.stdout.fileno(), 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:  # the worker died: its current item fails, the rest go back in the queue
                    self._fail_current(worker, scores, stats, queue)
                    replace(worker)
                    continue
                worker.buffer += chunk
                while b"\n" in worker.buffer:
                    line, worker.buffer = worker.buffer.split(b"\n", 1)
                    self._handle(worker, _decode(line), scores, stats)
                    worker.ready = True
                    worker.deadline = time.monotonic() + self.deadline_s
                if not worker.task:
                    sel.unregister(worker.proc.stdout)
                    busy.pop(worker.proc.stdout.fileno(), None)
                    if queue:
                        assign(worker)
            now = time.monotonic()
            for worker in [w for w in busy.values() if w.deadline <= now]:
                self._fail_current(worker, scores, stats, queue, timed_out=True)
                replace(worker)
            # Idle workers pick up whatever is left. A replacement still importing sympy gets work only
            # when no warm worker is left: a warm one finishes the batch sooner than a cold one starts.
            alive = [w for w in self._workers if w.proc.poll() is None]
            warm = any(w.ready for w in alive)
            for worker in alive:
                if queue and worker.proc.stdout.fileno() not in busy and (worker.ready or not warm):
                    assign(worker)
        sel.close()
        stats.seconds = time.perf_counter() - started
        self._accumulate(stats)
        return scores, stats

    def _handle(self, worker: _Worker, msg: dict, scores: list[float], stats: BatchStats) -> None:
        if "gold_ok" in msg:
            if not msg["gold_ok"]:
                stats.gold_unparsed += sum(self._weights[i] for i in worker.task)
                if len(stats.unparsed_golds) < 5:
                    stats.unparsed_golds.append(worker.gold)
            if msg.get("multi"):
                stats.multi_part += sum(self._weights[i] for i in worker.task)
                stats.multi_gold.update(worker.task)
            return
        idx = msg.get("i")
        if idx in worker.task:
            worker.task.remove(idx)
            scores[idx] = 1.0 if msg.get("s") else 0.0
            if msg.get("e") == "parse":
                stats.answer_unparsed += self._weights[idx]

    def _fail_current(self, worker: _Worker, scores, stats, queue, timed_out: bool = False) -> None:
        if not worker.task:
            return
        current, rest = worker.task[0], worker.task[1:]
        scores[current] = 0.0
        if timed_out:
            stats.timeouts += self._weights[current]
        if rest:
            queue.insert(0, (worker.gold, rest))
        worker.task = []

    def _accumulate(self, stats: BatchStats) -> None:
        self.total.add(stats)


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    for stream in (proc.stdin, proc.stdout):
        try:
            stream.close()
        except Exception:
            pass


def _encode(obj) -> bytes:
    import msgspec

    return msgspec.json.encode(obj)


def _decode(line: bytes) -> dict:
    import msgspec

    try:
        value = msgspec.json.decode(line)
        return value if isinstance(value, dict) else {}
    except msgspec.DecodeError:
        return {}


_POOL: VerifyPool | None = None


def shared_pool() -> VerifyPool:
    """One worker pool per process, shared by every math reward and metric."""
    global _POOL
    if _POOL is None:
        _POOL = VerifyPool()
    return _POOL


def score_math_offline(completions: list, solutions: list) -> tuple[list[float], BatchStats]:
    """score_math for evaluation: its own pool with the patient deadline, closed after. An item that still runs
    past it scores 0 and is counted in the stats' timeouts, which the metrics report."""
    pool = VerifyPool(deadline_s=OFFLINE_DEADLINE_S)
    try:
        return score_math(completions, solutions, pool=pool)
    finally:
        pool.close()


def score_math(completions: list, solutions: list, pool: VerifyPool | None = None) -> tuple[list[float], BatchStats]:
    """1.0/0.0 per completion (its final answer vs the solution) and the batch's counters; never raises.

    The final answer is every box after the reasoning block that belongs to the last group of boxes,
    read as one answer (a set, tuples, a system of equations), else the answer stated in plain text.
    The gold is read the same way. math-verify then compares them whole: a proper subset or superset
    of a set, an interval with another end, an incomplete union, one value against several: all 0.
    """
    pool = pool or shared_pool()
    n = len(completions)
    scores = [0.0] * n
    stats = BatchStats(items=n)
    pairs, where = [], []
    multi_boxed: set[int] = set()
    original: dict[str, str] = {}  # gold as read -> as written, for the warning
    for i in range(n):
        gold = gold_answer(solutions[i]) if i < len(solutions) else None
        if gold is None:
            stats.gold_unparsed += 1
            continue
        answer, how = extract_answer(completions[i])
        if answer is None:
            original[gold] = solutions[i]
            stats.no_answer += 1
            continue
        gold, answer = align(gold, answer)  # a solved system's names, a named tuple, `±`: one shape
        original[gold] = solutions[i]
        if how == "multi-boxed":
            stats.multi_part += 1
            multi_boxed.add(i)
        stated, expected = units(answer), units(gold)
        if stated and expected and not stated & expected:
            continue  # 5 m is not 5 cm, though math-verify drops both units
        if how != "multi-boxed" and answer.startswith("\\boxed{") and INTEGER.fullmatch(normalized(gold)) \
                and INTEGER.fullmatch(normalized(answer)):
            # Two integers: equal or not, no need for sympy (GRPO's usual gold, and most wrong answers).
            scores[i] = 1.0 if int(normalized(answer)) == int(normalized(gold)) else 0.0
            continue
        if risky(answer) is not None:
            # sympy must not evaluate it; only a textually identical answer is credited.
            stats.guarded += 1
            scores[i] = 1.0 if normalized(answer) == normalized(gold) else 0.0
            continue
        pairs.append((gold, answer))
        where.append(i)
    if pairs:
        pooled, pool_stats = pool.score(pairs)
        for i, s in zip(where, pooled, strict=True):
            scores[i] = s
        for name in ("timeouts", "gold_unparsed", "answer_unparsed"):
            setattr(stats, name, getattr(stats, name) + getattr(pool_stats, name))
        # Multi-part on either side, each item once.
        stats.multi_part += sum(1 for j in pool_stats.multi_gold if where[j] not in multi_boxed)
        stats.unparsed_golds = [original.get(g, g) for g in pool_stats.unparsed_golds]
        stats.seconds = pool_stats.seconds
    return scores, stats


# --------------------------------------------------------------------------------------------------
# The worker (child side): `python -m swift_ext.rewards.verifypool`


def _worker_main() -> None:  # pragma: no cover - runs in the child process
    import warnings

    warnings.filterwarnings("ignore")
    import logging

    logging.disable(logging.WARNING)  # math-verify warns once that its own timeout is disabled
    from math_verify import parse

    out = sys.stdout.buffer
    for raw in sys.stdin.buffer:
        msg = _decode(raw)
        gold_text = msg.get("gold")
        gold = []
        try:
            gold = parse(gold_text, parsing_timeout=None) if isinstance(gold_text, str) else []
        except Exception:
            gold = []
        # Only a string fallback (math-verify read no math in it) is as good as nothing: never scored.
        gold = gold if any(not isinstance(g, str) for g in gold) else []
        multi = bool(gold) and kind(gold[0]) == "several"
        out.write(_encode({"gold_ok": bool(gold), "multi": multi}) + b"\n")
        out.flush()
        for idx, answer in msg.get("items", []):
            score, err = False, None
            if gold:
                try:
                    score, err = judge(gold, answer)
                except Exception:
                    err = "parse"
            out.write(_encode({"i": idx, "s": score, "e": err}) + b"\n")
            out.flush()


if __name__ == "__main__":
    _worker_main()
