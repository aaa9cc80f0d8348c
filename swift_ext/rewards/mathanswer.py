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
MAX_BOX_GAP = 40  # characters of connectives and labels between two boxes of one final answer
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


# Between two boxes of one final answer: math delimiters, spacing, separators, connectives ("and",
# "or") and labels ("x_2 =", "(x, y) =", "(b)", "2."). Any other word ("so \boxed{2} is wrong; the
# answer is \boxed{5}") means the earlier box was not part of the answer.
_GAP_NOISE = re.compile(r"\\(?:quad|qquad|text|textbf|mathrm|mbox|left|right|[,;:! ])|\\[\[\]()]|[\s${}\\&,;.:*]")
_GAP_LABEL = re.compile(r"(?:(?:\\[A-Za-z]+|\b[A-Za-z])(?:_\{?[A-Za-z0-9]+\}?)?|\([A-Za-z](?:\s*,\s*[A-Za-z])+\))\s*=(?!=)"
                        r"|\(\s*(?:[A-Za-z]|[ivx]{1,4}|\d{1,2})\s*\)|\b(?:[a-z]|\d{1,2})[.)](?!\w)")
_GAP_CONNECTIVE = re.compile(r"\b(?:and|or)\b", re.I)


def _joins(gap: str) -> bool:
    """True when the text between two boxes only connects them (separators, "and", labels)."""
    if len(gap) > 40 * MAX_BOX_GAP:
        return False
    rest = _GAP_NOISE.sub(" ", _GAP_LABEL.sub(" ", gap))
    rest = _GAP_CONNECTIVE.sub(" ", _GAP_LABEL.sub(" ", rest))
    return not re.search(r"[A-Za-z0-9]", rest) and len(rest.replace(" ", "")) <= MAX_BOX_GAP


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
        if spans and not _joins(text[end : spans[-1][0]]):
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


# --------------------------------------------------------------------------------------------------
# One shape for the answer and the gold (parent side): a solved system's variable names, a named tuple
# prefix, `±`. Only a pair one of these rules applies to is rewritten; anything else passes unchanged.

_PM = re.compile(r"\\pm(?![A-Za-z])|\\mp(?![A-Za-z])|[±∓]")
_VAR = r"(?:\\(?:alpha|beta|gamma|delta|theta|lambda|mu|phi|varphi|psi|omega|rho|sigma|tau)|[A-Za-z])(?:_\{?[A-Za-z0-9]+\}?)?"
_NAME = rf"{_VAR}|\(\s*{_VAR}(?:\s*,\s*{_VAR})+\s*\)"
_NAMED = re.compile(rf"\s*(?P<name>{_NAME})\s*=(?!=)\s*(?P<value>.*)", re.S)
_NAME_IN_LINE = re.compile(rf"(?<![A-Za-z0-9\\_])(?:{_NAME})\s*=(?!=)")
_LIST_WORD = re.compile(r"\\text\s*\{\s*(?:and|or)\s*\}|\\q?quad(?![A-Za-z])|(?<!\\)\b(?:and|or)\b")
_RELATION = re.compile(r"[=<>≤≥≠]|\\(?:le|ge|leq|geq|ne|neq|in|lt|gt)(?![A-Za-z])")
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")  # prose, not a value (`\sqrt` is a command, not a word)


def _parts(math: str) -> list[str]:
    """The top-level parts of a list: split at `,`, `;`, "and", "or" outside every bracket."""
    text = _LIST_WORD.sub(",", math)
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c in ",;" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _variable(name: str) -> str:
    """`x_1`, `x_{2}` -> `x` (the roots of one variable); `( x, y )` -> `(x,y)`."""
    name = re.sub(r"\s+", "", name)
    return name if name.startswith("(") else re.sub(r"_.*", "", name)


def named_list(math: str) -> tuple[str, list[str]] | None:
    """(variable, values) when `math` is one variable's values: `x = 1/2, x = -2`, `a = 4, -8, -10`,
    `x_1 = 2 \\text{ and } x_2 = 3`, `(x, y) = (5, 8), (8, 5)`; None for anything else (a system of
    several variables, an inequality, prose)."""
    parts = _parts(math)
    if not parts or _NAMED.fullmatch(parts[0]) is None:
        return None
    variable, values = None, []
    for part in parts:
        m = _NAMED.fullmatch(part)
        if m is not None:
            if variable not in (None, _variable(m["name"])):
                return None  # `x = 3, y = 4`: a system, compared as equations
            variable, part = _variable(m["name"]), m["value"].strip()
        if not part or _RELATION.search(part) or _WORD.search(part):
            return None
        values.append(part)
    return variable, values


def _unwrap(text: str, plain: bool) -> tuple[str, str, bool] | None:
    """(math, wrapper, from a plain line) for a boxed or `$...$` answer, or for a plain answer's last
    line from its first `name =`; None when there is no such math."""
    text = text.strip()
    if text.startswith("\\boxed{") and _box_end(text, len("\\boxed{")) == len(text):
        return text[len("\\boxed{"):-1], "\\boxed{%s}", False
    if text.startswith("$") and text.endswith("$") and text.count("$") == 2 and len(text) > 2:
        return text[1:-1], "$%s$", False
    if not plain:
        return None
    line = text.rsplit("\n", 1)[-1].strip().rstrip(".").strip()
    line = re.sub(r"\\[()\[\]]|\$", " ", line)
    start = _NAME_IN_LINE.search(line)
    return (line[start.start():].strip(), "$%s$", True) if start else None


def _expand_pm(math: str) -> str:
    """`3 \\pm \\sqrt{2}` -> `3 + \\sqrt{2}, 3 - \\sqrt{2}`: the upper signs, then the lower ones, per part.
    A part that is a tuple, interval or set (a comma inside it), or an inequality, keeps its `±`."""
    if not _PM.search(math):
        return math
    out = []
    for part in _parts(math):
        value = (_NAMED.fullmatch(part) or {"value": part})["value"]
        if not _PM.search(part) or "," in part or "\\{" in part or _RELATION.search(value):
            out.append(part)
            continue
        for upper in (True, False):
            signed = _PM.sub(lambda m, u=upper: "+" if (m.group() in ("\\pm", "±")) == u else "-", part)
            out.append(re.sub(r"^(\s*\w+\s*=\s*|\s*)\+\s*", r"\1", signed).strip())
    return ", ".join(out)


def _drops_name(named, other_named, other_math: str) -> bool:
    """Whether one side's variable name goes: a list of values (or a tuple, or a `±`) of the variable
    the other side names too, or against bare values."""
    if named is None or not (len(named[1]) > 1 or named[0].startswith("(") or _PM.search(named[1][0])):
        return False
    return (other_named is not None and other_named[0] == named[0]) or not _RELATION.search(other_math)


def _rewritten(math: str, wrap: str, named) -> str | None:
    values = ", ".join(named[1]) if named else math
    expanded = _expand_pm(values)
    return None if named is None and expanded == math else wrap % expanded


def align(gold: str, answer: str) -> tuple[str, str]:
    """(gold, answer) in one shape, so that math-verify compares values with values:
    - one variable's values lose their name when the other side is bare values or names the same
      variable (`x = 1/2, x = -2` vs `1/2, -2`; `(x, y) = (5, 8), (8, 5)` vs `(5,8), (8,5)`); a single
      value keeps it (math-verify reads `x = 3` as 3 already), unless it is a tuple or holds a `±`;
      a plain-text answer is read this way from its last line only, and only when it is such a list;
    - `±` / `∓` become the two values they stand for (`3 \\pm \\sqrt{2}` is `3+\\sqrt{2}, 3-\\sqrt{2}`:
      either alone is a subset, scored 0 as ever).
    A pair none of this applies to comes back unchanged."""
    if len(gold) > MAX_ANSWER_CHARS or len(answer) > MAX_PLAIN_CHARS:
        return gold, answer
    g = _unwrap(gold, plain=False)
    if g is None:
        return gold, answer
    a = _unwrap(answer, plain=True)
    (g_math, g_wrap, _), (a_math, a_wrap, a_line) = g, a or (answer, "", True)
    g_named = named_list(g_math)
    a_named = named_list(a_math) if a is not None else None
    g_drop, a_drop = _drops_name(g_named, a_named, a_math), _drops_name(a_named, g_named, g_math)
    new_gold = _rewritten(g_math, g_wrap, g_named if g_drop else None) or gold
    if a is None or (a_line and not a_drop):
        return new_gold, answer
    return new_gold, _rewritten(a_math, a_wrap, a_named if a_drop else None) or answer
