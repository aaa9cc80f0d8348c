"""Reading a training script the way bash reads it, for the subset such scripts use (the reading half of
`swift-ext import`; msswift/importer.py maps the words to a recipe).

Logical lines (`\\` continuations joined, here-document bodies set aside), commands split at `;`, `&&`, `||` and
`&` (each is its own command to bash, so `A=1; megatron sft --lr $A` sees A), words split with quotes and escapes,
`$VAR` / `${VAR:-default}` of variables the script set, integer `$(( ))` and `$(expr ...)`. Everything bash would
compute at run time (command substitution, arrays, `${#X}`, loops) is kept as text with a note: this is not a shell.
Input a shell would refuse, or read differently from what it looks like, is a clear error or a note -- never a
silently different command.
"""

from __future__ import annotations

import ast
import re

from swift_ext.spec.findings import UserError
from swift_ext.spec.yamlio import MAX_DOCUMENT_BYTES

# A script is read whole (spec/yamlio.py read_text caps it at MAX_DOCUMENT_BYTES): a value the script's own
# variables grow past that size (A=$A$A, ten times) is no argument; bash would build it, we refuse it.
MAX_EXPANDED = MAX_DOCUMENT_BYTES
# Operators that end one command and start the next on the same line (bash's list operators).
SEPARATORS = {";", ";;", "&&", "||", "&"}


def logical_lines(text: str, notes: list[str], source: str):
    """(first line number, text) with backslash-newline continuations joined, comments kept, and the bodies of
    here-documents (`cat > f <<EOF ... EOF`) left out with a note: they are text fed to a command, not commands."""
    if "\n" not in text and "\r" in text.rstrip("\r"):  # several lines, each ended by CR alone
        raise UserError.one("no line breaks: the lines end in carriage returns only", file=source,
                            hint="the file uses carriage return line endings (old Mac); bash reads it as one line: "
                            "save it with LF line endings")
    lines = text.replace("\r\n", "\n").split("\n")
    buf: list[str] = []
    start = None
    quote = None  # a quote left open at the end of a line: a quoted string running over several lines is one word
    i = 0
    while i < len(lines):
        line, lineno = lines[i], i + 1
        i += 1
        if start is None:
            start = lineno
        comment = quote is None and line.strip().startswith("#")
        quote = None if comment else _quote_after(line, quote)
        if quote == '"' and line.endswith("\\"):  # backslash-newline inside double quotes joins the lines
            buf.append(line[:-1])
            continue
        if quote is not None:  # bash keeps the newline inside the quotes (ms-swift's examples/train/grpo/internal/
            buf.append(line + "\n")  # chord.sh exports a three-line system prompt in double quotes)
            continue
        if line.endswith("\\") and not comment:
            buf.append(line[:-1] + " ")
            continue
        if not comment and line.rstrip(" \t").endswith("\\") and i < len(lines) and lines[i][:1] in (" ", "\t", "-"):
            raise UserError.one("`\\` followed by trailing whitespace: bash does not continue the line there -- the "
                                "command ends on this line and the next line runs as a command of its own",
                                file=source, line=lineno, hint="remove the spaces or tabs after the `\\`")
        buf.append(line)
        logical = "".join(buf)
        yield start, logical
        buf, start = [], None
        for word, strip_tabs in heredoc_delimiters(logical):
            first = i + 1
            while i < len(lines) and (lines[i].lstrip("\t") if strip_tabs else lines[i]) != word:
                i += 1
            body = lines[first - 1:i]
            held = next((m.group(0) for b in body if (m := re.search(r"\b(megatron|swift) (sft|rlhf|pt)\b", b))), None)
            notes.append(f"{source}:{first}-{i + 1}: a here-document (text the command on line {first - 1} reads), "
                         "not commands; not imported" + (f" -- it holds `{held}`: if that is the run, import the "
                                                        "here-document's text as a script of its own" if held else ""))
            i += 1  # the delimiter line
    if buf:
        yield start, "".join(buf)


def _quote_after(line: str, quote: str | None) -> str | None:
    """The quote still open at the end of `line`, given the one open at its start: bash ends '...' only at the next
    ', "..." at an unescaped ", and outside quotes a # that starts a word comments out the rest of the line."""
    i = 0
    while i < len(line):
        c = line[i]
        if quote == "'":
            quote = None if c == "'" else quote
        elif c == "\\":
            i += 1
        elif quote == '"':
            quote = None if c == '"' else quote
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            break
        i += 1
    return quote


def heredoc_delimiters(line: str) -> list[tuple[str, bool]]:
    """The delimiter words of the here-documents `line` opens (`<<EOF`, `<<-'EOF'`), with whether `<<-` strips
    leading tabs from the body; `<<<` (a here-string), quoted `<<` and `$(( 1 << 2 ))` open none."""
    found = []
    i, n = 0, len(line)
    while i < n:
        skipped = _past_quoted(line, i, "'\"")
        if skipped is not None:
            i = skipped
        elif line.startswith("<<<", i):
            i += 3
        elif line.startswith("<<", i):
            j = i + 2 + (line[i + 2:i + 3] == "-")
            m = re.compile(r"\s*(?:'([^']*)'|\"([^\"]*)\"|\\?([^\s;&|<>()'\"]+))").match(line, j)
            if m:
                found.append((next(g for g in m.groups() if g is not None), line[i + 2:i + 3] == "-"))
                i = m.end()
            else:
                i += 2
        else:
            i += 1
    return found


def commands(line: str) -> list[tuple[str, str]]:
    """The commands of one logical line as (text, the operator after it): split at unquoted `;`, `;;`, `&&`, `||`
    and `&` -- not inside quotes, `$( )`, `${ }` or backticks, and not the `&` of a redirection (`2>&1`, `&>`)."""
    parts: list[tuple[str, str]] = []
    i, n, begin = 0, len(line), 0
    while i < n:
        c = line[i]
        skipped = _past_quoted(line, i, "'\"`")
        if skipped is not None:
            i = skipped
        elif c in ";&|":
            op = line[i:i + 2] if line[i:i + 2] in (";;", "&&", "||") else c
            if op == "|":  # a pipe (or `|&`) stays in its command: the importer leaves it out with a note
                i += 2 if line[i + 1:i + 2] == "&" else 1
                continue
            if op == "&" and (i > 0 and line[i - 1] in "<>" or line[i + 1:i + 2] == ">"):
                i += 1  # the `&` of a redirection: `2>&1`, `&>log`
                continue
            parts.append((line[begin:i], op))
            i += len(op)
            begin = i
        else:
            i += 1
    parts.append((line[begin:], ""))
    return [(text, op) for text, op in parts if text.strip() or op]


def _past_quoted(line: str, i: int, quotes: str) -> int | None:
    """Where scanning goes on when line[i] opens text bash does not split or act on -- a quote (one of `quotes`), an
    escaped character, `$( )` / `${ }` -- past that text; the line's end at an unquoted comment; None elsewhere."""
    c = line[i]
    if c in quotes:
        return _quote_end(line, i)
    if c == "\\":
        return i + 2
    if c == "#" and (i == 0 or line[i - 1] in " \t"):
        return len(line)
    if line.startswith("$(", i) or line.startswith("${", i):
        return _closing(line, i + 1)
    return None


def _quote_end(line: str, i: int) -> int:
    """Index after the quote (', " or `) opening at line[i] (the end of the line when it is not closed)."""
    quote, j = line[i], i + 1
    while j < len(line) and line[j] != quote:
        j += 2 if line[j] == "\\" and quote != "'" else 1
    return j + 1


def _closing(line: str, i: int) -> int:
    """Index after the bracket matching the `(` or `{` at line[i] (the end of the line when it is not closed)."""
    pair = {"(": ")", "{": "}"}[line[i]]
    depth = 0
    for j in range(i, len(line)):
        if line[j] == line[i]:
            depth += 1
        elif line[j] == pair:
            depth -= 1
            if depth == 0:
                return j + 1
    return len(line)


def split_words(line: str, variables: dict[str, str], notes: list[str], source: str, lineno: int) -> list[str]:
    """Bash word splitting for the subset scripts use: quotes, escapes, $VAR expansion, # comments, and `|`, `<`,
    `>` as the start of a word of their own (a pipe or a redirection, which the importer leaves out)."""
    words: list[str] = []
    cur: list[str] = []
    in_word = False
    size = 0
    i, n = 0, len(line)

    def put(text: str) -> None:
        nonlocal size
        size += len(text)
        if size > MAX_EXPANDED:
            raise UserError.one(f"this line expands to more than {MAX_EXPANDED >> 20} MiB of text (a variable that "
                                "grows itself?): no argument is that long", file=source, line=lineno)
        cur.append(text)

    while i < n:
        c = line[i]
        if c in " \t":
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
            i += 1
        elif c == "#" and not in_word:
            break
        elif c == "'":
            j = line.find("'", i + 1)
            if j < 0:
                raise UserError.one("unterminated single quote", file=source, line=lineno)
            put(line[i + 1 : j])
            in_word, i = True, j + 1
        elif c == '"':
            i += 1
            in_word = True
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n and line[i + 1] in '$`"\\':
                    put(line[i + 1])
                    i += 2
                elif line[i] in "$`":
                    value, i = _expand(line, i, variables, notes, source, lineno)
                    put(value)
                else:
                    put(line[i])
                    i += 1
            if i >= n:
                raise UserError.one("unterminated double quote", file=source, line=lineno)
            i += 1
        elif c == "\\" and i + 1 < n:
            put(line[i + 1])
            in_word, i = True, i + 2
        elif c in "$`":
            value, i = _expand(line, i, variables, notes, source, lineno)
            put(value)
            in_word = True
        elif c in "|<>":
            text = "".join(cur)
            # `2>&1`, `&>log`, `>>log` stay one redirection word; `1e-5>log` is a value, then a redirection
            if in_word and (c == "|" or not (text.isdigit() or text.endswith((">", "<", "&")))):
                words.append(text)
                cur, in_word = [], False
            put(c)
            in_word, i = True, i + 1
            if c == "|":  # a pipe is a word of its own (`|&` too)
                if line[i:i + 1] == "&":
                    put("&")
                    i += 1
                words.append("".join(cur))
                cur, in_word = [], False
        else:
            put(c)
            in_word, i = True, i + 1
    if in_word:
        words.append("".join(cur))
    return words


def expand_text(text: str, variables: dict, notes: list, source: str, lineno: int) -> str:
    """A word as bash expands it without splitting it (a `${VAR:-word}` default): variables, quotes removed."""
    return " ".join(split_words(text, variables, notes, source, lineno))


_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_BRACED = re.compile(rf"({_NAME})(?:(:?[-=+?])(.*))?", re.S)
_PLAIN = re.compile(rf"\$(?:({_NAME})|([0-9#?@*$!-]))")
_UNSET = ("swift-ext starts ms-swift with no shell, so nothing expands it later: replace it with its value in the "
          "recipe")


def _expand(line: str, i: int, variables: dict, notes: list, source: str, lineno: int) -> tuple[str, int]:
    """One `$...` (or backtick) at line[i]: a variable the script set, `${VAR:-default}`, or (kept as written,
    with a note) a variable set outside the script, a command substitution, arithmetic, an array."""
    at = f"{source}:{lineno}"
    if line[i] == "`":
        end = _quote_end(line, i)
        if end > len(line):
            raise UserError.one("unterminated backquote (`)", file=source, line=lineno)
        notes.append(f"{at}: `{line[i:end]}` is computed by the shell at run time; kept as text -- replace it with "
                     "its value")
        return line[i:end], end
    if line.startswith("$((", i):
        end = _closing(line, i + 1)
        value = _arithmetic(line[i + 3:end - 2], variables)
        if value is not None:
            return str(value), end
        notes.append(f"{at}: `{line[i:end]}` uses values the script does not set; kept as text -- replace it with its "
                     "value")
        return line[i:end], end
    if line.startswith("$(", i):
        end = _closing(line, i + 1)
        text = line[i:end]
        # `$(expr 16 / $nproc_per_node)`: the integer arithmetic ms-swift's own examples size
        # gradient_accumulation_steps with (examples/train/deepspeed/train_zero3.sh, multi-node/swift/...).
        expr = re.fullmatch(r"\$\(\s*expr\s+([^()`;|&<>]*?)\s*\)", text)
        value = _arithmetic(expr.group(1).replace("\\*", "*"), variables) if expr and _expr_words(expr.group(1)) else None
        if value is not None:
            return str(value), end
        notes.append(f"{at}: `{text}` is computed by the shell at run time; kept as text -- replace it with its value")
        return text, end
    if line.startswith("${", i):
        end = _closing(line, i + 1)
        if line[end - 1:end] != "}":
            raise UserError.one(f"`{line[i:i + 20]}...`: `${{` without its closing `}}` (bash: bad substitution)",
                                file=source, line=lineno)
        text, inner = line[i:end], line[i + 2:end - 1]
        m = _BRACED.fullmatch(inner)
        if m is None:
            what = "a bash array" if "[" in inner else "a bash expansion"
            notes.append(f"{at}: `{text}` is {what} swift-ext does not evaluate; kept as text -- replace it with its "
                         "value")
            return text, end
        name, op, word = m.groups()
        if name in variables and not (op and op.startswith(":") and variables[name] == ""):
            return (variables[name] if op not in ("+", ":+") else expand_text(word, variables, notes, source,
                                                                               lineno)), end
        if op in ("-", ":-", "=", ":="):
            default = expand_text(word or "", variables, notes, source, lineno)
            notes.append(f"{at}: ${name} is not set by the script; used its default {default!r}")
            return default, end
        if op in ("+", ":+"):
            return "", end
        notes.append(f"{at}: ${name} is not set by the script; kept as `{text}` -- {_UNSET}")
        return text, end
    m = _PLAIN.match(line, i)
    if not m:
        if line.startswith("$'", i) or line.startswith('$"', i):
            notes.append(f"{at}: `$'...'` (ANSI-C quoting) is a bash expansion swift-ext does not evaluate; kept as "
                         "text")
        return "$", i + 1
    name = m.group(1)
    if name is None:
        notes.append(f"{at}: `{m.group(0)}` is a shell special parameter; kept as text")
        return m.group(0), m.end()
    if name in variables:
        return variables[name], m.end()
    notes.append(f"{at}: ${name} is not set by the script; kept as `{m.group(0)}` -- {_UNSET}")
    return m.group(0), m.end()


def _expr_words(text: str) -> bool:
    """`expr`'s own grammar: operands and operators are separate words (`expr 16/4` prints `16/4`, and
    `expr 1 - - 1` is a syntax error), so only `OPERAND (OP OPERAND)*` is arithmetic."""
    words = text.replace("\\*", "*").split()
    operand = r"-?\d+|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?"
    return len(words) % 2 == 1 and all(
        re.fullmatch(operand, w) if k % 2 == 0 else w in ("+", "-", "*", "/", "%") for k, w in enumerate(words))


def _arithmetic(expr: str, variables: dict) -> int | None:
    """Bash `$(( ))` over integers and variables the script set (+ - * / % and parentheses); else None."""

    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            text = variables.get(node.id, "")
            return int(text) if re.fullmatch(r"-?\d{1,18}", text.strip()) else None  # past 4300 digits int() raises
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = value(node.operand)
            return None if inner is None else -inner
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)):
            a, b = value(node.left), value(node.right)
            if a is None or b is None or (isinstance(node.op, (ast.FloorDiv, ast.Mod)) and b == 0):
                return None
            # the shell's integer division and remainder truncate toward zero (-7 / 2 is -3, -7 % 2 is -1), exactly
            quotient = (abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)) if b else None
            return {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}.get(type(node.op)) if not isinstance(
                node.op, (ast.FloorDiv, ast.Mod)) else (quotient if isinstance(node.op, ast.FloorDiv) else a - b * quotient)
        return None

    text = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", r"\1", expr).replace("/", "//")
    try:
        # a long `1+1+...` chain nests one node per operator: past the parser's (or value()'s) recursion depth
        # it is no longer a size anyone computes by hand, and stays text with its note
        result = value(ast.parse(text.strip(), mode="eval").body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return result if result is None or abs(result) < 10**18 else None


# Characters a script copied from a web page or a document carries, which bash reads as plain text.
_DASHES = {"\u2010": "hyphen", "\u2011": "non-breaking hyphen", "\u2012": "figure dash", "\u2013": "en dash",
           "\u2014": "em dash", "\u2015": "horizontal bar", "\u2212": "minus sign"}
_QUOTES = "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb"
_SPACES = "\u00a0\u2007\u202f\u3000\u2002\u2003\u2009\u200b"


def lookalike(word: str) -> str | None:
    """What in `word` looks like shell syntax to a reader but is text to bash, or None."""
    if word[:1] in _DASHES and word[1:2].isalpha() or word[:2] in [d + d for d in _DASHES]:
        name = _DASHES[word[0]]
        return (f"`{word}` starts with {'an' if name[0] in 'aeiou' else 'a'} {name} (U+{ord(word[0]):04X}), not `--`: "
                "bash passes it as text, "
                f"so ms-swift reads it as a value (pasted from a document?) -- write `--{word.lstrip(''.join(_DASHES))}`")
    quote = next((c for c in (word[:1], word[-1:]) if c and c in _QUOTES), None)
    if quote:
        return (f"`{word}` holds a typographic quote (U+{ord(quote):04X}), which bash keeps as part of the text "
                "(pasted from a document?) -- use ' or \"")
    space = next((c for c in word if c in _SPACES), None)
    if space:
        return (f"`{word}` holds a non-breaking space (U+{ord(space):04X}), which bash does not split words at -- "
                "replace it with a space")
    return None


def lookalike_hint(text: str) -> str | None:
    """For "no training command found": a non-breaking space that glued `megatron sft` to its flags."""
    space = next((c for c in text if c in _SPACES), None)
    return (f"the script holds non-breaking spaces (U+{ord(space):04X}), which bash does not split words at: "
            "replace them with spaces") if space else None
