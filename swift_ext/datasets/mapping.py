"""Rows without `messages`: the column layouts ms-swift maps into messages (auto_messages), so the
checks see the row as ms-swift will."""

from __future__ import annotations

import ast
import json
from collections import Counter

from swift_ext.datasets.issues import json_type

# ms-swift's AutoPreprocessor (swift/dataset/preprocessor/core.py): a dataset without `messages` is mapped
# into it from other column layouts. Column aliases are matched case-insensitively; when two columns map
# to the same target, ms-swift renames neither.
MESSAGE_COLUMNS = ("conversation", "conversations")
RESPONSE_ALIASES = {
    "system": ("system", "system_prompt"),
    "query": ("query", "prompt", "input", "instruction", "question", "problem"),
    "response": ("response", "answer", "output", "targets", "target", "answer_key", "answers", "solution", "text",
                 "completion", "content"),
}
SHAREGPT_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "bot": "assistant",
                  "function_call": "tool_call", "function_response": "tool_response",
                  "observation": "tool_response", "observations": "tool_response"}


class Unmapped(Exception):
    pass


def renamed_columns(row: dict, columns: tuple[tuple[str, str], ...]) -> dict:
    """The row under the recipe's `columns` mapping, as ms-swift renames it before any preprocessing
    (RowPreprocessor.__call__: safe_rename_columns(dataset, origin_columns)): names matched case-insensitively, a
    target two present columns map to is renamed from neither, a column mapped to itself stays. A rename onto a column
    the row already has is left out (datasets' rename_columns refuses it; the row is then judged as written)."""
    by_lower = {k.lower(): k for k in row if isinstance(k, str)}
    pairs = {by_lower[src.lower()]: dst for src, dst in columns if src.lower() in by_lower}
    targets = Counter(pairs.values())
    pairs = {src: dst for src, dst in pairs.items() if targets[dst] == 1 and src != dst and dst not in row}
    if not pairs:
        return row
    return {pairs.get(k, k): v for k, v in row.items()}


def _mapped_column(row: dict, target: str) -> str | None:
    """The one column ms-swift renames to `target`; two or more candidates means it renames none (E114)."""
    col, clash = _renamed(row, RESPONSE_ALIASES[target])
    if col is None and clash:
        raise Unmapped("E114", clash[0], f"columns {', '.join(clash)} all map to `{target}`: ms-swift renames none "
                       "of them")
    return col


def _renamed(row: dict, aliases: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """The column ms-swift reads for a target whose aliases are given (the target's own name first), and
    the columns that collided."""
    present = [k for k in row if k.lower() in aliases]
    if len(present) == 1:
        return present[0], []
    return (aliases[0] if aliases[0] in row else None), present


def auto_messages(row: dict, file_has_messages: bool) -> tuple[list, list[str]] | None:
    """For a row without `messages`: (messages, the column each message comes from) as ms-swift builds
    them, or None when the row has no layout ms-swift maps. Raises Unmapped (code, field, message) where
    ms-swift fails on the row or drops it."""
    if file_has_messages:  # ms-swift reads the whole file as `messages` rows: this one is dropped
        raise Unmapped("E101", "messages", "no `messages` list (earlier rows of this file have one, so ms-swift reads "
                "every row's `messages` and drops this one)")
    column, clash = _renamed(row, ("messages", *MESSAGE_COLUMNS))
    if column is None and clash:
        raise Unmapped("E114", clash[0], f"columns {', '.join(clash)} all map to `messages`: ms-swift renames none of them")
    if column is not None:
        return conversation(row, column)
    if "instruction" in row and "input" in row:  # alpaca: the two are joined into the query
        instruction, input_ = row.get("instruction"), row.get("input")
        query = f"{instruction}\n{input_}" if instruction and input_ else instruction or input_
        if not isinstance(query, str):
            raise Unmapped("E114", "instruction", f"`instruction`/`input` must give a string, got {json_type(query)}")
        where = "instruction" if instruction and not input_ else "input" if not instruction else "instruction+input"
        fields = {"query": (query, where)}
        out_col, _ = _renamed(row, RESPONSE_ALIASES["response"])
        out_col = out_col or ("output" if "output" in row else None)
    else:
        fields = {}
        col = _mapped_column(row, "query")
        if col is not None:
            fields["query"] = (row[col], col)
        out_col = _mapped_column(row, "response")
    if out_col is not None:
        fields["response"] = (row[out_col], out_col)
    sys_col = _mapped_column(row, "system")
    if not fields and "history" not in row:
        return None
    response = fields.get("response", (None, None))[0]
    if isinstance(response, list):  # ms-swift takes the first of several answers
        response = response[0] if response else None
    history = row.get("history") or []
    if isinstance(history, str):
        try:
            history = ast.literal_eval(history)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise Unmapped("E114", "history", "`history` is a string that is not a Python/JSON list of [query, response]") from None
    if not isinstance(history, list):
        raise Unmapped("E114", "history", f"`history` must be a list of [query, response] pairs, got {json_type(history)}")
    messages, where = [], []
    system = row.get(sys_col) if sys_col else None
    if system is not None:
        messages.append({"role": "system", "content": system})
        where.append(sys_col)
    turns = [*history, [fields.get("query", (None,))[0], response]]
    for i, pair in enumerate(turns):
        if not isinstance(pair, list) or len(pair) < 2:
            raise Unmapped("E114", f"history[{i}]", "each `history` entry must be a [query, response] pair")
        last = i == len(turns) - 1
        for role, text, k in (("user", pair[0], 0), ("assistant", pair[1], 1)):
            if text is not None:
                messages.append({"role": role, "content": text})
                where.append(fields.get("query" if k == 0 else "response", (None, "?"))[1] if last
                             else f"history[{i}][{k}]")
    return messages, where


def conversation(row: dict, column: str):
    """ms-swift's MessagesPreprocessor on a `conversation(s)` column: sharegpt `from`/`value` keys and role
    names mapped, the `system` column put first."""
    value = row[column]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                raise Unmapped("E114", column, f"`{column}` is a string that is not a JSON list of messages") from None
    if not isinstance(value, list) or not value:
        raise Unmapped("E101", column, f"`{column}` must be a non-empty list of messages, got {json_type(value) if value else 'an empty one'}: "
                "ms-swift drops this row")
    if not all(isinstance(m, dict) for m in value):
        raise Unmapped("E102", column, f"each message in `{column}` must be an object")
    sys_col, _ = _renamed(row, RESPONSE_ALIASES["system"])
    system = row.get(sys_col) if sys_col else None
    messages = [{("role" if k == "from" else "content" if k == "value" else k): v for k, v in m.items()}
                for m in value]
    where = [f"{column}[{i}]" for i in range(len(messages))]
    if "role" not in messages[0] and "content" not in messages[0]:  # {"human": ..., "gpt": ...} pairs
        out, out_where = [], []
        if system is not None:
            out.append({"role": "system", "content": system})
            out_where.append(sys_col)
        for i, m in enumerate(messages):
            user = next((m[k] for k in ("user", "human") if k in m), None)
            assistant = next((m[k] for k in ("assistant", "gpt", "bot") if k in m), None)
            out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
            out_where += [f"{column}[{i}]"] * 2
        return out, out_where
    if messages[0].get("role") != "system" and system is not None:
        messages.insert(0, {"role": "system", "content": system})
        where.insert(0, sys_col)
    for m in messages:
        role = m.get("role")
        if isinstance(role, str):
            m["role"] = SHAREGPT_ROLES.get(role.replace("-", "_"), SHAREGPT_ROLES.get(role, role)) \
                if role not in ("user", "assistant") else role
    return messages, where
