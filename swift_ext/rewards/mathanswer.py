"""What a math answer is: extraction from a completion, the gold's reading, and the comparison rules.

Parent side (pure string work, size caps, no sympy): `extract_answer` finds the final answer (the last
group of boxes after the reasoning block, a `<answer>` tag, else plain text), `gold_answer` reads the
reference the same way, `align` puts both in one shape (a solved system's variable names, `(x, y) =`
before tuples, and `±` expanded to its two values), and `units` / `risky` / `normalized` screen the pair.
Worker side: `judge` asks math-verify and refuses its any-overlap credit for one value against several.
The pool that runs `judge` under a deadline is verifypool.py.
"""

from __future__ import annotations

import re

MAX_ANSWER_CHARS = 2000  # all boxes of a final answer together; longer is not a final answer
MAX_PLAIN_CHARS = 16000  # a plain-text answer is looked for in this much of the end of the response
SCREEN_CHARS = 2000  # how much of a plain-text answer is screened for expressions sympy must not evaluate
MAX_BOX_GAP = 40  # letters/digits allowed between two boxes of one final answer ("and", "x_2 =", "(b)")
MAX_BOXES = 64  # more boxes in a row than any final answer has: no answer
MAX_BRACE_DEPTH = 40
MAX_DIGITS = 200


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


INTEGER = re.compile(r"-?\d{1,%d}" % MAX_DIGITS)


# --------------------------------------------------------------------------------------------------
# The comparison (worker side)


def kind(value) -> str:
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
    if {kind(gold[0]), kind(pred[0])} == {"several", "one"}:
        return False, None
    if "\\{" in answer and kind(pred[0]) == "several" and _is_interval(gold[0]):
        return False, None  # `\\{1, 3\\}` is two numbers, not the interval (1, 3) (math-verify credits it)
    return bool(verify(gold, pred, timeout_seconds=None)), None
