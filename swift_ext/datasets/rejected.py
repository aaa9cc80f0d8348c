"""The rejected side of a DPO row as ms-swift 4.6 builds it: which conversation it encodes as the rejected
sequence, or why it refuses the row. `data check` (rows.py, E204) and `data stats` (lengths.py) both read
it from here.

ms-swift's rules (checked against its loader and rlhf template encode):
- `rejected_response` (swift/template/template_inputs.py TemplateInputs._compat_rejected_response) replaces
  everything after the chosen conversation's last user turn: a string becomes one assistant turn, a list is
  taken as the messages themselves (no `user` among them; each an object with a role). Anything else, or
  null (dataset/preprocessor/core.py RowPreprocessor._check_rejected_response), is refused, and so is a
  single rejected turn equal to the single chosen one. It wins over `rejected_messages` when both are given.
- `rejected_messages` is a whole conversation, read like `messages` (MessagesPreprocessor.preprocess: a
  JSON string is parsed, sharegpt keys and role names mapped); not a list of objects: the row is dropped.
- neither: the rlhf encode raises `inputs.rejected is None`.
ms-swift also takes some rows whose rejected side teaches DPO nothing: an empty one (an empty
`rejected_messages` becomes a copy of the chosen conversation), one equal to the chosen conversation, one
with no final answer. These are refused here too, as E201 refuses a chosen side without a final answer.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from swift_ext.datasets.issues import json_type
from swift_ext.datasets.mapping import Unmapped, conversation

# The columns of a row's rejected side that ms-swift keeps (dataset/preprocessor/core.py RowPreprocessor.standard_keys:
# `rejected_` + each of _pair_keys, and rejected_response) and that TemplateInputs.from_dict hands to the rejected
# inputs. Two DPO rows differ if any of these do (duplicates.py).
REJECTED_COLUMNS = ("rejected_response", "rejected_messages", "rejected_images", "rejected_videos", "rejected_audios",
                    "rejected_tools", "rejected_objects")
# Roles that end a rejected side with something to score: an answer, or a (wrong) tool call.
FINAL_ROLES = ("assistant", "tool_call")
# Role names ms-swift's preprocessor maps in `messages` and `rejected_messages`, but never inside a
# `rejected_response` list (the template takes that list as it is and asserts the response role).
ROLE_ALIASES = ("human", "gpt", "bot", "function_call", "observation")


class Rejected(NamedTuple):
    """`messages`: the rejected conversation ms-swift encodes (None when it refuses the row, or a string
    `rejected_response` was checked with whole=False); `column`: the
    column it comes from; `own`: where that column's own turns start in `messages` (the turns before are the
    chosen prompt's); `refused`: why ms-swift refuses the row (or it teaches nothing), None when it is fine."""

    messages: list | None
    column: str
    own: int
    refused: str | None


_STRING_TAKEN = Rejected(None, "rejected_response", 0, None)  # the verdict on most rows, made once


def rejected_side(row: dict, file_has_response: bool = False, whole: bool = True) -> Rejected:
    """The rejected side of ROW (a dict with a non-empty `messages` list) as ms-swift builds it.
    `file_has_response`: other rows of the file have a `rejected_response` column, so the loader (Arrow: one
    set of columns per file) gives this row a null one, and ms-swift drops the row. `whole=False` (the
    per-row check, which reads only the verdict and the column's own turns) leaves out the conversation of
    a string `rejected_response`: building it is most of the cost of a DPO row's check."""
    messages = row["messages"]
    response = row.get("rejected_response", row)  # the row itself: no such column
    if response is not row:
        return _from_response(messages, response, whole)
    if file_has_response:
        return Rejected(None, "rejected_response", 0, "no `rejected_response` where other rows of this file have "
                        "one: ms-swift's loader gives this row a null one and drops it; write every row's rejected "
                        "side in the same column")
    if row.get("rejected_messages") is not None:
        return _from_messages(messages, row["rejected_messages"])
    return Rejected(None, "rejected_response", 0, "DPO rows need a `rejected_response` (a string, or a list of "
                    "the rejected turns) or `rejected_messages` (the whole rejected conversation): ms-swift's "
                    "rlhf encode fails with 'inputs.rejected is None'")


def _from_response(messages: list, response: Any, whole: bool) -> Rejected:
    if isinstance(response, str):
        if not response.strip():
            return Rejected(None, "rejected_response", 0, "`rejected_response` is empty: a DPO pair needs a "
                            "rejected answer")
        last = messages[-1]
        if type(last) is dict and response == last.get("content"):
            return Rejected(None, "rejected_response", 0, "`rejected_response` is the same as the chosen answer: "
                            "ms-swift drops this row")
        if not whole:
            return _STRING_TAKEN
    users = [i for i, m in enumerate(messages) if type(m) is dict and m.get("role") == "user"]
    start = users[-1] + 1 if users else 0  # template/utils.py get_last_user_round(include_tool=False) + 1
    chosen = messages[start:]

    def refused(why: str) -> Rejected:
        return Rejected(None, "rejected_response", start, why)

    if isinstance(response, str):
        return Rejected(messages[:start] + [{"role": "assistant", "content": response}], "rejected_response", start,
                        None)
    if not isinstance(response, list):
        return refused(f"`rejected_response` must be a string or a list of messages, got {json_type(response)}"
                       + (" (write it as a list: [{...}])" if isinstance(response, dict) else "")
                       + ": ms-swift refuses this row")
    if not response:
        return refused("`rejected_response` is an empty list: a DPO pair needs a rejected answer")
    for k, message in enumerate(response):
        role = message.get("role") if type(message) is dict else None
        if not isinstance(role, str):
            return refused(f"`rejected_response[{k}]` must be a message object with `role` and `content`, got "
                           f"{json_type(message)}")
        if role == "user":
            return refused(f"`rejected_response[{k}]` is a user turn: the list replaces the turns after the "
                           "last user turn, so ms-swift refuses a user role in it (put a whole conversation in "
                           "`rejected_messages`)")
        if role in ROLE_ALIASES:
            return refused(f"`rejected_response[{k}]` has role '{role}': ms-swift maps role names in `messages`, "
                           "not in a `rejected_response` list; use assistant, tool_call or tool_response")
    if len(response) == 1 and len(chosen) == 1 and type(chosen[0]) is dict and \
            response[0].get("content") == chosen[0].get("content") and "tool_calls" not in response[0]:
        return refused("`rejected_response` is the same as the chosen answer: ms-swift refuses this row")
    return _final(Rejected(messages[:start] + response, "rejected_response", start, None))


def _from_messages(messages: list, given: Any) -> Rejected:
    try:
        mapped = conversation({"rejected_messages": given}, "rejected_messages")[0]
    except Unmapped as exc:
        why = exc.args[2]
        if isinstance(given, list) and not given:
            why = "`rejected_messages` is empty: ms-swift would score the chosen conversation as the rejected one"
        return Rejected(None, "rejected_messages", 0, why)
    if mapped == messages:
        return Rejected(None, "rejected_messages", 0, "`rejected_messages` is the same as the chosen conversation")
    return _final(Rejected(mapped, "rejected_messages", 0, None))


def _final(side: Rejected) -> Rejected:
    """A rejected side that ends with nothing to score is refused, as a chosen side without an answer is."""
    last = side.messages[-1]
    role = last.get("role") if type(last) is dict else None
    content = last.get("content") if type(last) is dict else None
    if role in FINAL_ROLES and (content or (role == "assistant" and last.get("tool_calls"))):
        return side
    where = side.column if side.column == "rejected_messages" else f"the `{side.column}` list"
    return side._replace(messages=None, refused=f"{where} must end with a non-empty assistant turn (or a tool "
                         f"call), got {f'role {role!r}' if isinstance(role, str) else 'no role'}"
                         + (" with empty content" if role in FINAL_ROLES else ""))


def rejected_conversation(row: Any) -> list | None:
    """The rejected conversation of a row ms-swift takes, else None (a row without `messages`, or refused)."""
    if type(row) is not dict or type(row.get("messages")) is not list or not row["messages"]:
        return None
    if "rejected_response" not in row and row.get("rejected_messages") is None:
        return None
    return rejected_side(row).messages
