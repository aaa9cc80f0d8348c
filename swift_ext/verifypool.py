"""Bounded-time math answer checking: answer extraction here, math-verify in worker processes.

math-verify's own timeouts use `signal.alarm`, which only works on the main thread (off it they are
silently skipped or raise), and a pathological answer (`9^{9^{9^{9}}}`, `(10^6)!`) can hold sympy for
minutes. So the parent never calls sympy: it extracts the answer text (cheap string scanning, size
caps), screens it, and sends it to a small pool of plain `python -m swift_ext.verifypool` workers
over pipes. Each item gets a deadline enforced from outside: a worker that misses it is killed and
replaced, and the item scores 0.0 and is counted. No signals and no fork, so it behaves the same on
the main thread, in a thread, or under asyncio, and inside a CUDA-initialised trainer.

Nothing from a completion is evaluated outside math-verify's parser; workers get text only.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

MAX_ANSWER_CHARS = 1000  # a final answer longer than this is not a final answer
MAX_TAIL_CHARS = 2000  # plain-text answers are looked for in the end of the response
MAX_BRACE_DEPTH = 40
MAX_DIGITS = 200
DEFAULT_DEADLINE_S = float(os.environ.get("SWIFT_EXT_REWARD_TIMEOUT", "2.0"))
STARTUP_S = 30.0  # a new worker's import of sympy/math-verify on a loaded machine
DEFAULT_WORKERS = int(os.environ.get("SWIFT_EXT_REWARD_WORKERS", "0")) or min(2, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------------
# Answer extraction (parent side, pure string work)


def clean_text(value) -> str | None:
    """A str with NULs removed and lone surrogates replaced; None for anything that is not text."""
    if not isinstance(value, str):
        return None
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")


def answer_part(completion: str) -> str | None:
    """Text after the last `</think>`. None when a reasoning block is opened but never closed."""
    close = completion.rfind("</think>")
    if close >= 0:
        return completion[close + len("</think>"):]
    if "<think>" in completion:
        return None
    return completion


def last_boxed(text: str) -> str | None:
    r"""Content of the last `\boxed{...}` (or `\fbox{...}`) with balanced braces; None if there is none."""
    for marker in ("\\boxed{", "\\fbox{"):
        start = text.rfind(marker)
        if start < 0:
            continue
        i = start + len(marker)
        depth = 1
        j = i
        while j < len(text) and depth:
            c = text[j]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            j += 1
        if depth == 0:
            return text[i : j - 1]
        return None  # unbalanced: no usable answer
    return None


_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S)


def extract_answer(completion) -> tuple[str | None, str]:
    """(text to hand to math-verify, how it was found). None text means: scores 0."""
    text = clean_text(completion)
    if text is None:
        return None, "not-text"
    part = answer_part(text)
    if part is None:
        return None, "unclosed-think"
    tags = _ANSWER_TAG.findall(part[-(MAX_ANSWER_CHARS * 8):])
    if tags:
        inner = tags[-1].strip()
        boxed = last_boxed(inner)
        return (("\\boxed{" + boxed + "}") if boxed is not None else inner), "answer-tag"
    boxed = last_boxed(part)
    if boxed is not None:
        return "\\boxed{" + boxed + "}", "boxed"
    if "\\boxed{" in part:
        return None, "unbalanced-boxed"
    tail = part[-MAX_TAIL_CHARS:].strip()
    return (tail or None), "plain"


def risky(answer: str) -> str | None:
    """Why sympy should not see this answer (a reason string), or None when it is safe."""
    # A boxed answer is capped at MAX_ANSWER_CHARS; a plain-text tail is already at most MAX_TAIL_CHARS.
    limit = MAX_ANSWER_CHARS if answer.startswith("\\boxed") else MAX_TAIL_CHARS
    if len(answer) > limit:
        return "too-long"
    depth = best = 0
    for c in answer:
        if c == "{" or c == "(":
            depth += 1
            best = max(best, depth)
        elif c == "}" or c == ")":
            depth -= 1
    if best > MAX_BRACE_DEPTH:
        return "too-deep"
    if re.search(r"\^\s*\{?[^{}]*\^\s*\{?[^{}]*\^", answer):  # power tower of height >= 3
        return "power-tower"
    if re.search(r"\d{4,}\s*\)?\s*!|\)\s*!", answer) or re.search(r"\\(?:prod|sum)_\{[^}]*\}\^\{?\d{5,}", answer):
        return "huge-factorial-or-product"
    if re.search(r"\d{%d,}" % MAX_DIGITS, answer):
        return "huge-number"
    if re.search(r"\^\s*\{?\s*\d{4,}", answer):
        return "huge-exponent"
    return None


def normalized(answer: str) -> str:
    """Whitespace/brace-insensitive text used to compare answers sympy must not evaluate."""
    text = answer
    if text.startswith("\\boxed{") and text.endswith("}"):
        text = text[len("\\boxed{"):-1]
    text = text.replace("\\left", "").replace("\\right", "").replace("$", "")
    return re.sub(r"[\s{}]", "", text)


# --------------------------------------------------------------------------------------------------
# The pool (parent side)


@dataclass
class BatchStats:
    items: int = 0
    timeouts: int = 0
    parse_failures: int = 0  # gold or answer that math-verify could not parse
    guarded: int = 0  # answers compared as text because sympy must not evaluate them
    no_answer: int = 0  # nothing extractable (non-text, unclosed <think>, unbalanced box)
    seconds: float = 0.0

    @property
    def mean_latency_ms(self) -> float:
        return 1000 * self.seconds / self.items if self.items else 0.0

    def as_dict(self) -> dict:
        return {"items": self.items, "timeouts": self.timeouts, "parse_failures": self.parse_failures,
                "guarded": self.guarded, "no_answer": self.no_answer,
                "mean_latency_ms": round(self.mean_latency_ms, 3)}


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
        self.total = BatchStats()

    # -- lifecycle ---------------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        # A fixed hash seed: sympy's set/dict iteration order (and so its path and time through an
        # expression) then no longer varies from worker to worker, so a score never depends on which
        # worker happened to get the item.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONHASHSEED": "0"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "swift_ext.verifypool"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )
        os.set_blocking(proc.stdout.fileno(), False)
        return _Worker(proc)

    def _ensure(self) -> None:
        self._workers = [w for w in self._workers if w.proc.poll() is None]
        while len(self._workers) < self.size:
            self._workers.append(self._spawn())

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
        with self._lock:
            return self._score(pairs)

    def _score(self, pairs: list[tuple[str, str]]) -> tuple[list[float], BatchStats]:
        started = time.perf_counter()
        stats = BatchStats(items=len(pairs))
        scores = [0.0] * len(pairs)
        # Group by gold so each distinct solution is parsed once per batch (GRPO repeats prompts).
        groups: dict[str, list[int]] = {}
        for i, (gold, _) in enumerate(pairs):
            groups.setdefault(gold, []).append(i)
        queue = list(groups.items())
        self._ensure()
        sel = selectors.DefaultSelector()
        busy: dict[int, _Worker] = {}

        def assign(worker: _Worker) -> None:
            gold, idxs = queue.pop(0)
            worker.task, worker.gold = list(idxs), gold
            message = {"gold": gold, "items": [[i, pairs[i][1]] for i in idxs]}
            try:
                worker.proc.stdin.write(_encode(message) + b"\n")
                worker.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                queue.insert(0, (gold, idxs))
                _kill(worker.proc)
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
            # Replacements (and idle workers) pick up whatever is left.
            for worker in self._workers:
                if queue and worker.proc.stdout.fileno() not in busy and worker.proc.poll() is None:
                    assign(worker)
        sel.close()
        stats.seconds = time.perf_counter() - started
        self._accumulate(stats)
        return scores, stats

    def _handle(self, worker: _Worker, msg: dict, scores: list[float], stats: BatchStats) -> None:
        if "gold_ok" in msg:
            if not msg["gold_ok"]:
                stats.parse_failures += 1
            return
        idx = msg.get("i")
        if idx in worker.task:
            worker.task.remove(idx)
            scores[idx] = 1.0 if msg.get("s") else 0.0
            if msg.get("e") == "parse":
                stats.parse_failures += 1

    def _fail_current(self, worker: _Worker, scores, stats, queue, timed_out: bool = False) -> None:
        if not worker.task:
            return
        current, rest = worker.task[0], worker.task[1:]
        scores[current] = 0.0
        if timed_out:
            stats.timeouts += 1
        if rest:
            queue.insert(0, (worker.gold, rest))
        worker.task = []

    def _accumulate(self, stats: BatchStats) -> None:
        for name in ("items", "timeouts", "parse_failures", "guarded", "no_answer", "seconds"):
            setattr(self.total, name, getattr(self.total, name) + getattr(stats, name))


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


def score_math(completions: list, solutions: list, pool: VerifyPool | None = None) -> tuple[list[float], BatchStats]:
    """1.0/0.0 per completion (its final answer vs the solution) and the batch's counters; never raises."""
    pool = pool or shared_pool()
    n = len(completions)
    scores = [0.0] * n
    stats = BatchStats(items=n)
    pairs, where = [], []
    for i in range(n):
        gold = clean_text(solutions[i]) if i < len(solutions) else None
        if not gold or not gold.strip():
            stats.no_answer += 1
            continue
        answer, _ = extract_answer(completions[i])
        if answer is None:
            stats.no_answer += 1
            continue
        if risky(answer) is not None or len(gold) > MAX_TAIL_CHARS:
            # sympy must not evaluate it; only a textually identical answer is credited.
            stats.guarded += 1
            scores[i] = 1.0 if normalized(answer) == normalized(gold) else 0.0
            continue
        pairs.append((gold, answer))
        where.append(i)
    if pairs:
        pooled, pool_stats = pool.score(pairs)
        for i, s in zip(where, pooled):
            scores[i] = s
        stats.timeouts += pool_stats.timeouts
        stats.parse_failures += pool_stats.parse_failures
        stats.seconds = pool_stats.seconds
    return scores, stats


# --------------------------------------------------------------------------------------------------
# The worker (child side): `python -m swift_ext.verifypool`


def _worker_main() -> None:  # pragma: no cover - runs in the child process
    import warnings

    warnings.filterwarnings("ignore")
    import logging

    logging.disable(logging.WARNING)  # math-verify warns once that its own timeout is disabled
    from math_verify import parse, verify

    out = sys.stdout.buffer
    for raw in sys.stdin.buffer:
        msg = _decode(raw)
        gold_text = msg.get("gold")
        gold = []
        try:
            gold = parse(gold_text, parsing_timeout=None) if isinstance(gold_text, str) else []
        except Exception:
            gold = []
        out.write(_encode({"gold_ok": bool(gold)}) + b"\n")
        out.flush()
        for idx, answer in msg.get("items", []):
            score, err = False, None
            if gold:
                try:
                    pred = parse(answer, parsing_timeout=None)
                    if pred:
                        score = bool(verify(gold, pred, timeout_seconds=None))
                    else:
                        err = "parse"
                except Exception:
                    err = "parse"
            out.write(_encode({"i": idx, "s": score, "e": err}) + b"\n")
            out.flush()


if __name__ == "__main__":
    _worker_main()
