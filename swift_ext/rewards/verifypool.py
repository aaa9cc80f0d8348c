"""Bounded-time math answer checking: answer extraction here, math-verify in worker processes.

math-verify's own timeouts use `signal.alarm`, which only works on the main thread (off it they are
silently skipped or raise), and a pathological answer (`9^{9^{9^{9}}}`, `(10^6)!`) can hold sympy for
minutes. So the parent never calls sympy: it extracts the answer text (cheap string scanning, size
caps), screens it, and sends it to a small pool of plain `python -m swift_ext.rewards.verifypool` workers
over pipes. A final answer written as several boxes (a solution set, tuples, a system of equations)
is read as one answer, and so is a gold written as a set, tuples, equations, `A and B` or a list;
`judge` then refuses math-verify's any-overlap credit for one value against several. Each item gets a deadline enforced from outside: a worker that misses it is killed and
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

MAX_ANSWER_CHARS = 2000  # all boxes of a final answer together; longer is not a final answer
MAX_PLAIN_CHARS = 16000  # a plain-text answer is looked for in this much of the end of the response
SCREEN_CHARS = 2000  # how much of a plain-text answer is screened for expressions sympy must not evaluate
MAX_BOX_GAP = 40  # letters/digits allowed between two boxes of one final answer ("and", "x_2 =", "(b)")
MAX_BOXES = 64  # more boxes in a row than any final answer has: no answer
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


_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BRACE = re.compile(r"[{}]")


def _box_end(text: str, inner: int) -> int | None:
    """Index just past the `}` that closes the brace group whose content starts at `inner`."""
    depth = 1
    for m in _BRACE.finditer(text, inner):
        depth += 1 if m.group() == "{" else -1
        if depth == 0:
            return m.end()
    return None


def last_boxed(text: str) -> str | None:
    r"""Content of the last `\boxed{...}` / `\fbox{...}`; None if there is none or it is unterminated."""
    opens = list(_BOX_OPEN.finditer(text))
    if not opens:
        return None
    end = _box_end(text, opens[-1].end())
    return text[opens[-1].end() : end - 1] if end is not None else None


# Between two boxes of one final answer: math delimiters, spacing, separators, words such as "and".
_GAP_NOISE = re.compile(r"\\(?:quad|qquad|text|textbf|mathrm|mbox|left|right|[,;:! ])|\\[\[\]()]|[\s${}\\&,;.:*]")


def _final_box_spans(text: str) -> list[tuple[int, int, int]] | None:
    """(start, content start, end) of each box of the final answer, in order; None: last box unterminated."""
    opens = list(_BOX_OPEN.finditer(text))
    spans: list[tuple[int, int, int]] = []  # last first while collecting
    for m in reversed(opens):
        if spans and m.start() >= spans[-1][0]:
            continue  # inside a box already taken
        end = _box_end(text, m.end())
        if end is None:
            if not spans:
                return None
            break
        if spans and end > spans[-1][0]:  # a box around the one taken: the outer box is the answer
            spans[-1] = (m.start(), m.end(), end)
            continue
        if spans and len(_GAP_NOISE.sub("", text[end : spans[-1][0]])) > MAX_BOX_GAP:
            break
        spans.append((m.start(), m.end(), end))
        if len(spans) > MAX_BOXES:
            return None
    return spans[::-1]


def final_boxes(text: str) -> list[str] | None:
    r"""The contents of the boxes that make up the final answer: the last box and every box before it
    separated only by a short connective (`, `, ` and `, `\quad \text{and} \quad`, `x_2 =`).
    [] when there is no box; None when the last box is unterminated or empty, or there are more than
    MAX_BOXES (no answer: never an earlier box). A box repeated word for word ("Final Answer") counts once.
    """
    spans = _final_box_spans(text)
    if spans is None:
        return None
    contents = {}  # insertion-ordered set
    for _, inner, end in spans:
        content = text[inner : end - 1].strip().rstrip(".").strip()
        if content:
            contents[content] = None
    return None if spans and not contents else list(contents)


_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S)
# "... the final answer is $x$ / \\(x\\) / 12": not "I checked that the final answer is right".
_FINAL_ANSWER_IS = re.compile(r"(?i:final answer.{0,100}?)\s+is:?\s*(?=[$\\\d(\[{-])")


def extract_answer(completion) -> tuple[str | None, str]:
    """(text to hand to math-verify, how it was found). None text means: scores 0."""
    text = clean_text(completion)
    if text is None:
        return None, "not-text"
    part = answer_part(text)
    if part is None:
        return None, "unclosed-think"
    tags = _ANSWER_TAG.findall(part[-(MAX_ANSWER_CHARS * 8):])
    how = "boxed"
    if tags:
        part, how = tags[-1].strip(), "answer-tag"
    boxes = final_boxes(part)
    if boxes is None:
        return None, "unterminated-box"
    if boxes:
        # A "the final answer is ..." sentence after the last box restates (or corrects) it: it counts.
        said = _FINAL_ANSWER_IS.search(part, _final_box_spans(part)[-1][2])
        if said is None:
            return "\\boxed{" + ", ".join(boxes) + "}", ("multi-boxed" if len(boxes) > 1 else how)
        part = part[said.start():]
    tail = part[-MAX_PLAIN_CHARS:].strip()
    return (tail or None), ("answer-tag" if tags else "plain")


_MATH_ENV = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)
_CONNECTIVE = re.compile(r"^(?:\s*(?:,|;|and|or|&)\s*)+$|^\s+$", re.I)
_WORDS_ONLY = re.compile(r"[A-Za-z][A-Za-z '\-]+")
_PROSE = re.compile(r"(?<!\\)\b[A-Za-z]{2,}\s+[A-Za-z]{2,}\s+[A-Za-z]{2,}\b")  # three words in a row


def gold_answer(solution) -> str | None:
    """The reference answer as one math string, in the same shape as extract_answer's boxes: the final
    boxes of a worked solution; `$a$ and $b$`, `a and b`, `a; b` as the list `a, b`; a word as text."""
    text = clean_text(solution)
    if text is None or not text.strip():
        return None
    text = text.strip()
    boxes = final_boxes(text)
    if boxes:
        return "\\boxed{" + ", ".join(boxes) + "}"
    envs = list(_MATH_ENV.finditer(text))
    if envs:
        between = [text[: envs[0].start()]] + [text[a.end() : b.start()] for a, b in zip(envs, envs[1:], strict=False)]
        between.append(text[envs[-1].end():])
        if all(not s or _CONNECTIVE.match(s) or s.strip() in ".," for s in between):
            inner = ", ".join(next(g for g in m.groups() if g is not None).strip() for m in envs)
            return "$" + inner + "$"
        return text[-MAX_PLAIN_CHARS:]
    if _WORDS_ONLY.fullmatch(text) and len(text) > 1 and not re.search(r"\b(?:and|or)\b", text):
        return "$\\text{" + text + "}$"
    if _PROSE.search(text):  # a sentence: math-verify finds the answer in it
        return text[-MAX_PLAIN_CHARS:]
    parts = re.split(r"\s*(?:,\s*and|,\s*or|;|\band\b|\bor\b|\\text\{\s*and\s*\})\s*", text)
    return "$" + ", ".join(p for p in parts if p) + "$"


_POWER = r"(\s*\^\s*\{?\s*\d\s*\}?|[²³])?"  # cm^2, cm^{3}, cm²: an area is not a length
_UNIT_TEXT = re.compile(r"\\(?:text|mbox|textnormal|textrm|mathrm)\s*\{([^{}]*)\}" + _POWER)
_UNIT_TRAILING = re.compile(r"[\d}$]\s*([A-Za-z]{2,})" + _POWER + r"\s*\.?\s*\$?$")
_NOT_UNITS = {"and", "or", "if", "for", "where", "when", "is", "the", "of"}


def units(answer: str) -> set[str]:
    """Unit words an answer states (`\\text{ cm}^2`, `$125$ miles`), singular, lower-case, with a power."""
    found: list[tuple[str, str | None]] = []
    for m in _UNIT_TEXT.finditer(answer):
        # Words, and single letters after a space (`5\text{ m}`; `\text{E}` is a choice, not a unit).
        words = re.findall(r"[A-Za-z]{2,}|(?<=\s)[A-Za-z]\b", m.group(1))
        found += [(w, None) for w in words[:-1]] + ([(words[-1], m.group(2))] if words else [])
    trailing = _UNIT_TRAILING.search(answer.strip())
    if trailing:
        found.append((trailing.group(1), trailing.group(2)))
    out = set()
    for word, power in found:
        word = word.lower()
        if word in _NOT_UNITS:
            continue
        word = word[:-1] if len(word) > 3 and word.endswith("s") else word
        digits = re.sub(r"\D", "", (power or "").replace("²", "2").replace("³", "3"))
        out.add(word + ("^" + digits if digits else ""))
    return out


_TRIG_POWER = re.compile(r"\\(?:sin|cos|tan|sec|csc|cot)\s*(?:\([^()]*\)|\{[^{}]*\})?\s*\^\s*\{?\s*\d{2,}")


def risky(answer: str) -> str | None:
    """Why sympy should not see this answer (a reason string), or None when it is safe."""
    boxed = answer.startswith("\\boxed")
    if boxed and len(answer) > MAX_ANSWER_CHARS:
        return "too-long"
    if not boxed:  # prose: screen the end, where math-verify looks first
        answer = answer[-SCREEN_CHARS:]
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
    if _TRIG_POWER.search(answer):  # `\sin(1)^{20}+\cos(1)^{20}`: seconds of trigsimp for a short answer
        return "high-power-of-trig"
    return None


def normalized(answer: str) -> str:
    """The answer's text without its box or `$`, `\\left`/`\\right` and whitespace: two answers equal
    here are the same answer (braces stay: `\\frac{1}{23}` is not `\\frac{12}{3}`)."""
    text = answer.strip()
    if text.startswith("\\boxed{") and text.endswith("}"):
        text = text[len("\\boxed{"):-1]
    text = text.replace("\\left", "").replace("\\right", "").replace("$", "")
    return re.sub(r"\s+", "", text)


_INTEGER = re.compile(r"-?\d{1,%d}" % MAX_DIGITS)


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
        original[gold] = solutions[i]
        answer, how = extract_answer(completions[i])
        if answer is None:
            stats.no_answer += 1
            continue
        if how == "multi-boxed":
            stats.multi_part += 1
            multi_boxed.add(i)
        stated, expected = units(answer), units(gold)
        if stated and expected and not stated & expected:
            continue  # 5 m is not 5 cm, though math-verify drops both units
        if how != "multi-boxed" and answer.startswith("\\boxed{") and _INTEGER.fullmatch(normalized(gold)) \
                and _INTEGER.fullmatch(normalized(answer)):
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


def _kind(value) -> str:
    """'several' (a finite set of 2+), 'one' (a number, expression or equation), 'other' (an interval,
    union, tuple, matrix, text: shapes math-verify compares on its own)."""
    from sympy import FiniteSet, MatrixBase, Set, Tuple

    if isinstance(value, FiniteSet) and len(value) > 1:
        return "several"
    if isinstance(value, (str, Set, Tuple, MatrixBase, tuple, list)):
        return "other"
    return "one"


def _is_interval(value) -> bool:
    from sympy import Interval

    return isinstance(value, Interval)


def judge(gold: list, answer: str) -> tuple[bool, str | None]:
    """math-verify's verdict on one answer against a parsed gold, made strict about the number of parts:
    math-verify credits any overlap between the candidates it extracted (its issue #47), so one value
    against several, or several against one, is decided here before it is asked."""
    from math_verify import parse, verify

    pred = parse(answer, parsing_timeout=None)
    if not pred:
        return False, "parse"
    if {_kind(gold[0]), _kind(pred[0])} == {"several", "one"}:
        return False, None
    if "\\{" in answer and _kind(pred[0]) == "several" and _is_interval(gold[0]):
        return False, None  # `\\{1, 3\\}` is two numbers, not the interval (1, 3) (math-verify credits it)
    return bool(verify(gold, pred, timeout_seconds=None)), None


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
        multi = bool(gold) and _kind(gold[0]) == "several"
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
