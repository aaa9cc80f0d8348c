"""One row's checks (RowChecker): messages, roles, the task's rules, media counts and entries, objects and,
with a tokenizer, length. The reference every faster path must agree with."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from swift_ext.datasets import encoder
from swift_ext.datasets.issues import data_finding, json_type
from swift_ext.spec.findings import Finding
from swift_ext.datasets.mapping import Unmapped, auto_messages, renamed_columns
from swift_ext.datasets.mediacheck import MediaChecker
from swift_ext.datasets.options import ChunkResult, Options
from swift_ext.datasets.rejected import rejected_side

ROLES = {"system", "user", "assistant", "tool_call", "tool_response", "tool"}
ALIASES = {"human": "user", "gpt": "assistant", "bot": "assistant", "function_call": "tool_call",
           "observation": "tool_response"}
MESSAGE_KEYS = {"role", "content", "loss", "loss_scale", "name", "tool_calls", "tool_call_id", "reasoning_content"}
PART_MEDIA = ("image", "video", "audio")
MEDIA = (("images", "<image>", "E103", "E305"), ("videos", "<video>", "E104", "E306"), ("audios", "<audio>", "E105", "E307"))


class RowChecker:
    def __init__(self, path: str, opts: Options, tokenizer=None, reference: dict[str, str] | None = None):
        self.path = path
        self.reference = reference or {}  # the file's first rows' column types: its layout, for ms-swift
        self.opts = opts
        self.tokenizer = tokenizer
        self.media = MediaChecker(path, opts)
        self.files_ok = self.media.files_ok  # entries that name an existing file: the typed path accepts these

    def check(self, row: Any, line: int, out: ChunkResult) -> Any:
        """Check one row; returns it as ms-swift will see it (other column layouts mapped into `messages`)."""
        issues: list[Finding] = []

        def add(code: str, fld: str, message: str) -> None:
            issues.append(data_finding(self.path, line, code, fld, message))

        if not isinstance(row, dict):
            add("E002", "", f"expected a JSON object per line, got {json_type(row)}")
            out.rows += 1
            out.issues.extend(issues)
            return row
        if self.opts.columns:
            row = renamed_columns(row, self.opts.columns)
        where = None
        if "messages" not in row:
            try:
                mapped = auto_messages(row, "messages" in self.reference)
            except Unmapped as exc:
                add(*exc.args)
            else:
                if mapped is not None:
                    row, where = {**row, "messages": mapped[0]}, mapped[1]
        messages = row.get("messages")
        texts: list[str] = []
        parts: dict[str, list] = {key: [] for key, *_ in MEDIA}  # media given as content parts: (entry, field)
        if not isinstance(messages, list) or not messages:
            if issues:
                pass  # the mapping said why
            elif "messages" not in row:
                add("E101", "messages", "no `messages` list, and none of the columns ms-swift maps into one "
                    "(conversations; instruction/input/output; query/response and their aliases)")
            elif where is not None:
                add("E101", "messages", "the mapped columns give no message: ms-swift drops this row")
            else:
                add("E101", "messages", f"`messages` must be a non-empty list, got {json_type(messages)}")
        else:
            self._messages(messages, add, texts, out, parts)
            self._task(row, messages, add, out)
        joined = "\x00".join(texts) if len(texts) != 1 else texts[0]
        for key, tag, count_code, _ in MEDIA:
            if parts[key] and row.get(key):  # StdTemplateInputs.from_dict asserts one or the other
                add(count_code, key, f"{len(parts[key])} {key} in content parts and a `{key}` column: ms-swift "
                    "refuses a row with both")
            elif parts[key]:
                self.media.column(row, key, tag, count_code, joined, add, out, parts=parts[key])
            elif key in row or tag in joined:
                self.media.column(row, key, tag, count_code, joined, add, out, tags_added=True)
        if "objects" in row:
            self._objects(row["objects"], add)
        if row.get("tools") is not None:
            self._tools(row["tools"], add)
        if self.opts.max_length and self.tokenizer is not None and texts:
            self._length(row, texts, add, out)
        out.rows += 1
        errors = [i for i in issues if i.code.startswith("E")]
        if not errors:
            out.valid += 1
        if where is not None:  # name the column the user wrote, not the message ms-swift makes of it
            for issue in issues:
                match = re.match(r"messages\[(\d+)\](.*)", issue.path)
                if match and int(match.group(1)) < len(where):
                    rest = match.group(2)
                    issue.path = where[int(match.group(1))] + ("" if rest in (".role", ".content") else rest)
        out.issues.extend(issues)
        return row

    def _messages(self, messages: list, add, texts: list[str], out: ChunkResult | None, parts: dict,
                  column: str = "messages", first: int = 0) -> None:
        """Each message's checks. A rejected side (out None) is checked as ms-swift encodes it, not as an
        answer the model learns: no role counts, no <think> balance, no repeated-role warning; `first` is
        the index of its first message in the conversation ms-swift builds (for E107)."""
        previous = None
        # the turn before each one as ms-swift's template sees it: a leading system turn is taken out of the
        # conversation (StdTemplateInputs.from_dict), a rejected side follows the chosen side's user turn
        before = "user" if first else None
        for i, msg in enumerate(messages):
            fld = f"{column}[{i}]"
            if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
                add("E102", fld, "each message must be an object with `role` and `content`")
                continue
            role = msg["role"]
            if not isinstance(role, str):
                add("E106", f"{fld}.role", f"role must be a string, got {json_type(role)}")
                continue
            if role in ALIASES:
                add("N112", f"{fld}.role", f"'{role}' is read by ms-swift as '{ALIASES[role]}'")
                role = ALIASES[role]
            elif role not in ROLES:
                close = [r for r in sorted(ROLES | set(ALIASES)) if r[:2] == role[:2]]
                add("E106", f"{fld}.role", f"unknown role '{role}'" + (f"; did you mean '{close[0]}'?" if close else ""))
                continue
            if out is not None:
                out.roles[role] += 1
            extra = set(msg) - MESSAGE_KEYS
            if extra:
                add("W111", fld, f"ms-swift drops these message keys: {', '.join(sorted(extra))}")
            content = msg["content"]
            if role == "tool_call":
                self._tool_call(content, f"{fld}.content", add)
            if role == "assistant" and "tool_calls" in msg:
                self._tool_calls(msg["tool_calls"], f"{fld}.tool_calls", add)
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, (list, dict)) and role in ("tool_call", "tool", "tool_response"):
                pass  # ms-swift writes a tool turn's non-string content out as JSON text (StdTemplateInputs.from_dict)
            elif isinstance(content, list):
                self._parts(content, fld, add, texts, parts)
            elif content is None and role == "assistant" and msg.get("tool_calls"):
                pass
            else:
                add("E109", f"{fld}.content", f"content must be a string or a list of parts, got {json_type(content)}")
            if role == "system" and i + first != 0:
                add("E107", fld, "a system message may only come first")
            if self.opts.template_backend == "swift" and role != "system":
                before = self._turn_order(role, before, fld, add)
            if out is None:
                continue
            if role == previous and role in ("user", "assistant"):
                add("W113", fld, f"two '{role}' turns in a row")
            if role == "assistant" and isinstance(content, str):
                opened, closed = content.count("<think>"), content.count("</think>")
                if opened != closed or (closed and content.find("</think>") < content.find("<think>")):
                    add("E401", f"{fld}.content", f"<think> x{opened} but </think> x{closed}")
            previous = role

    @staticmethod
    def _turn_order(role: str, before: str | None, fld: str, add) -> str:
        """The turn ms-swift's template makes of this one (Template._swift_prepare_inputs): tool_call turns become
        the assistant's, a tool response after a user turn is folded into it (_preprocess_standalone_tools), one
        after the assistant's call is the next query. The template then pairs query (user or tool) and answer
        turns and asserts each answer is the assistant's (Template._swift_encode), so a user turn straight after
        a call's tool response fails. Returns the turn as the next one sees it."""
        if role in ("tool", "tool_response"):
            if before is None:
                add("E117", f"{fld}.role", "a tool response with no user or assistant turn before it: ms-swift's "
                    "template folds a tool response into the user turn before it or takes it as the answer to the "
                    "assistant's call, and raises 'A standalone tool message must follow a user message.' here, "
                    "dropping the row")
            return "user" if before in (None, "user") else "tool"  # None: one finding per row (ms-swift stops there)
        if role == "user" and before == "tool":
            add("E118", f"{fld}.role", "a user turn straight after the tool response to an assistant's call: ms-swift's "
                "template takes the tool response as a query, and asserts the turn after it is the assistant's "
                "(AssertionError 'response_role: \"user\"'), dropping the row; put the assistant's reply to the tool "
                "result between them, or fold the text into the tool response")
        return "assistant" if role == "tool_call" else role

    def _parts(self, content: list, fld: str, add, texts: list[str], parts: dict) -> None:
        """Content given as a list of parts, read as ms-swift's StdTemplateInputs.remove_messages_media does:
        a text part is text; an image/video/audio part (or image_url/...: {"url": ...}) becomes its tag in
        the text and its value one entry of the row's images/videos/audios."""
        for j, part in enumerate(content):
            pfld = f"{fld}.content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if not isinstance(kind, str):
                add("E109", pfld, "content parts must be objects with a `type`")
                continue
            if kind == "text":
                texts.append(str(part.get("text", "")))
                continue
            media = kind[:-len("_url")] if kind.endswith("_url") else kind
            if media not in PART_MEDIA:
                add("E109", f"{pfld}.type", f"content part type '{kind}': ms-swift reads text, image, video and audio "
                    "parts (or image_url, video_url, audio_url)")
                continue
            texts.append(f"<{media}>")
            value = part.get(kind)
            if isinstance(value, dict):
                if "url" not in value:
                    add("E304", f"{pfld}.{kind}", f"a `{kind}` object must carry a `url`")
                    continue
                value = value["url"]
            if value:  # an empty one adds the tag and no entry: the count check says so
                parts[media + "s"].append((value, f"{pfld}.{kind}"))

    def _tool_call(self, content: Any, fld: str, add) -> None:
        """A `tool_call` turn as ms-swift's agent template reads it (BaseAgentTemplate._parse_tool_call, and
        Qwen3CoderAgentTemplate._format_tool_calls for qwen3_5): JSON (or a Python literal) of an object
        with `name` and `arguments` (or `parameters`), the arguments an object or a string holding one."""
        call = _parse_json(content)
        if not isinstance(call, dict) or "name" not in call:
            add("E115", fld, "a tool call must be a JSON object with `name` and `arguments`, e.g. "
                '{"name": "get_weather", "arguments": {"city": "Paris"}}; ms-swift\'s tool parser fails on this')
            return
        arguments = call.get("arguments")
        arguments = _parse_json(call.get("parameters") if arguments is None else arguments)
        if arguments is None or (arguments and not isinstance(arguments, dict)):
            add("E115", fld, f"the tool call's `arguments` must be a JSON object (or a string of one), got "
                f"{json_type(arguments) if arguments is not None else 'nothing readable'}: qwen3_5's tool parser "
                "writes out each argument by name")

    def _tools(self, tools: Any, add) -> None:
        """The `tools` column as ms-swift reads it: RowPreprocessor._normalize_tools makes a list of it (a string is
        JSON-decoded when it can be, else one entry; anything not a list one entry), then Template._preprocess_tools
        reads each string entry with the agent template's _parse_json (JSON, else a Python literal) and wrap_tool
        asserts a dict: a row with any other entry is dropped ("AssertionError: tool: None")."""
        entries = tools
        if isinstance(entries, str):
            try:
                entries = json.loads(entries)
            except ValueError:
                pass
        entries = entries if isinstance(entries, list) else [entries]
        for k, entry in enumerate(entries):
            if not isinstance(_parse_json(entry), dict):
                where = "tools" if entries is not tools else f"tools[{k}]"
                add("E116", where, f"each tool must be an object (or a JSON string of one), got "
                    f"{json_type(entry) if not isinstance(entry, str) else repr(entry[:60])}: ms-swift's agent template "
                    "asserts a dict and drops the row")
                return

    def _tool_calls(self, calls: Any, fld: str, add) -> None:
        """OpenAI-style assistant `tool_calls`, turned into tool_call turns by ms-swift's
        normalize_openai_tool_calls ({"function": {"name", "arguments"}} or the function itself)."""
        if not isinstance(calls, list):
            if calls:
                add("E115", fld, f"`tool_calls` must be a list of calls, got {json_type(calls)}")
            return
        for k, call in enumerate(calls):
            function = call.get("function", call) if isinstance(call, dict) else None
            if not isinstance(function, dict) or "name" not in function:
                add("E115", f"{fld}[{k}]", "each tool call needs a `function` with a `name` (and `arguments`)")
                continue
            self._tool_call({"name": function["name"], "arguments": function.get("arguments", {})}, f"{fld}[{k}]", add)

    def _task(self, row: dict, messages: list, add, out: ChunkResult) -> None:
        task = self.opts.task
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        last_role = last.get("role") if isinstance(last.get("role"), str) else None
        last_role = ALIASES.get(last_role, last_role)
        # encoder tasks (seq_cls, embedding, rerankers: planner/datafit.py ENCODER_TASKS) train no answer: no E201
        if task in ("sft", "pt", "dpo", "kto"):
            # A final tool call is an answer too: ms-swift folds tool_call turns into the assistant turn before them
            # (Template._preprocess_tool_call) and trains the call (an agent trajectory split after each call), as
            # it does an assistant turn with OpenAI `tool_calls` and no content (normalize_openai_tool_calls).
            content = last.get("content")
            answered = isinstance(content, (str, list, dict)) and content and (
                last_role == "assistant" or (last_role == "tool_call" and not isinstance(content, list)))
            # Pre-training (swift/megatron pt: PretrainArguments use_chat_template False, loss_scale 'all') trains
            # every token of the text, a final user turn's too; planner/datafit.py asks for "sft" where a pt
            # recipe sets another loss_scale.
            answered = answered or (task == "pt" and isinstance(content, str) and content.strip() != "")
            if not answered and not (last_role == "assistant" and last.get("tool_calls")):
                earlier = task in ("sft", "pt") and any(
                    isinstance(m, dict) and isinstance(m.get("role"), str) and (m.get("content") or m.get(
                        "tool_calls")) and ALIASES.get(m["role"], m["role"]) in ("assistant", "tool_call")
                    for m in messages[:-1])
                if earlier and last_role in ("tool", "tool_response"):
                    # An agent trajectory cut after a tool result: Template._get_std_messages appends an empty
                    # assistant turn, so ms-swift trains the calls before it (loss_scale default) and nothing after.
                    add("W208", f"messages[{len(messages) - 1}]", "the row ends with a tool response: ms-swift trains "
                        "the assistant turns before it, not a reply to this result (with loss_scale last_round the "
                        "row trains nothing); add the assistant's reply to train it")
                elif earlier and (last_role == "user" or (last_role == "assistant" and content == "")):
                    # A conversation cut after a user turn (ShareGPT dumps often end with `human`): ms-swift loads it
                    # and _get_std_messages appends an empty assistant turn, so the earlier answers train and the
                    # last question none; an empty final answer ("" passes _check_messages) trains as an empty reply.
                    what = "a user turn" if last_role == "user" else "an empty assistant turn"
                    add("W209", f"messages[{len(messages) - 1}]", f"the row ends with {what}: ms-swift trains the "
                        "earlier assistant turns" + (", not an answer to it" if last_role == "user" else
                                                     " and an empty reply here") + " (with loss_scale last_round "
                        + ("nothing" if last_role == "user" else "only the empty reply") + "); end it with the "
                        "assistant's answer to train one")
                else:
                    add("E201", f"messages[{len(messages) - 1}]", "SFT rows must end with a non-empty assistant turn "
                        "(or a tool call)")
        if task == "grpo":
            # ms-swift drops a final assistant turn before the rollout (swift.utils.remove_response, called by
            # GRPOTrainer._apply_chat_template_to_messages_list and RolloutMixin._preprocess_inputs), so a
            # row that carries its reference answer as the last turn is fine; what is left must end with the user.
            prompt = messages[:-1] if last_role == "assistant" else messages
            before = prompt[-1] if prompt and isinstance(prompt[-1], dict) else {}
            role = before.get("role") if isinstance(before.get("role"), str) else None
            # A tool response is a query too (Template._swift_encode takes user or tool as the query role): an agent
            # trajectory cut after a tool result rolls out the model's next step.
            if ALIASES.get(role, role) not in ("user", "tool_response", "tool"):
                add("E202", f"messages[{max(len(prompt) - 1, 0)}]", "GRPO rows end with the user turn (or tool response) "
                    "the model answers (a final assistant turn is dropped before the rollout; the turn before it must "
                    "be the user's or a tool's)")
            for column in self.opts.reward_columns:
                # swift/rewards/orm.py MathAccuracy.__call__ (CosineReward scores with it): re.search on the value
                # raises TypeError for anything but a string (a row without the column gets None from the JSON
                # loader); a blank string parses to nothing and every completion of the row scores 0 ("reward 0 to
                # skip this example"): it runs, and the row teaches the accuracy reward nothing.
                value = row.get(column)
                if not isinstance(value, str):
                    add("E203", column, f"the `{column}` column the reward needs must be a string, "
                        f"got {json_type(value) if column in row else 'nothing'}")
                elif not value.strip():
                    add("W204", column, f"the `{column}` column is blank: the math accuracy reward cannot parse it and "
                        "scores every completion of this row 0 (the row teaches that reward nothing)")
        if task == "dpo":
            self._rejected(row, add, out)
        if task == "kto" and not isinstance(row.get("label"), bool):
            add("E205", "label", f"KTO rows need a boolean `label`, got {json_type(row.get('label'))}")
        encoder.check_row(row, task, self.opts, add)  # E208/E207 (encoder tasks)

    def _rejected(self, row: dict, add, out: ChunkResult) -> None:
        """A DPO row's rejected side, as ms-swift builds it (swift_ext.datasets.rejected): refused where
        ms-swift refuses it (or it teaches DPO nothing), else its own turns checked as messages are."""
        file_has_response = "rejected_response" in self.reference
        side = rejected_side(row, file_has_response, whole=False)
        if side.refused is not None:
            add("E204", side.column, side.refused)
            return
        texts: list[str] = []
        parts: dict[str, list] = {key: [] for key, *_ in MEDIA}
        if side.messages is not None:  # a list of turns or a whole conversation (a string has no turns to check)
            self._messages(side.messages[side.own:], add, texts, None, parts, column=side.column, first=side.own)
        elif isinstance(row.get("rejected_response"), str):
            texts.append(row["rejected_response"])
        self._rejected_media(row, side, texts, parts, file_has_response, add, out)

    def _rejected_media(self, row: dict, side, own_texts: list[str], own_parts: dict, file_has_response: bool, add,
                        out: ChunkResult) -> None:
        """The rejected side's media, checked as the chosen side's are. ms-swift's TemplateInputs.from_dict gives
        the rejected inputs the `rejected_images`/`_videos`/`_audios` columns and content parts of the rejected
        conversation (StdTemplateInputs.from_dict); the chosen side's columns only where the row has no
        `rejected_messages` (a `rejected_response` builds it on the chosen prompt). Entries of the chosen
        prompt's parts were checked with the chosen side: only their count is checked here."""
        lends = row.get("rejected_messages") is None
        given = {key: row.get(f"rejected_{key}") for key, *_ in MEDIA}
        if lends and all(v is None for v in given.values()) and not any(own_parts.values()) and \
                not any(tag in text for text in own_texts for _, tag, *_ in MEDIA):
            return  # the usual row: the rejected side shows the chosen side's media, checked there
        full = side.messages if side.messages is not None else rejected_side(row, file_has_response).messages
        texts: list[str] = []
        parts: dict[str, list] = {key: [] for key, *_ in MEDIA}
        self._messages(full or [], lambda *_: None, texts, None, parts)  # the whole conversation: tags and parts
        joined = "\x00".join(texts)
        for key, tag, count_code, _ in MEDIA:
            column = f"rejected_{key}"
            placeholders = joined.count(tag)
            if parts[key] and given[key]:
                add(count_code, column, f"{len(parts[key])} {key} in the rejected side's content parts and a "
                    f"`{column}` column: ms-swift refuses a row with both")
            elif parts[key]:
                if placeholders != len(parts[key]):
                    add(count_code, side.column, f"{placeholders} {tag} placeholder(s) but {len(parts[key])} {key} "
                        "in the rejected side's content parts")
                for entry, fld in own_parts[key]:
                    out.media[key] += 1
                    self.media.entry(entry, fld, key, add)
            elif given[key] is not None or (placeholders and not (lends and row.get(key) is not None)):
                self.media.column({column: given[key]}, column, tag, count_code, joined, add, out, kind=key)
            elif placeholders:
                lent = row[key] if isinstance(row[key], list) else [row[key]]
                if placeholders != len(lent):
                    add(count_code, side.column, f"{placeholders} {tag} placeholder(s) in the rejected conversation "
                        f"but {len(lent)} `{key}`, which it shares with the chosen side (no `{column}`)")

    def _objects(self, objects: Any, add) -> None:
        if not isinstance(objects, dict):
            add("E309", "objects", "`objects` must be an object with `ref` and `bbox` lists")
            return
        bbox = objects.get("bbox")
        ref = objects.get("ref")
        if not isinstance(bbox, list) or not all(
                isinstance(b, list) and len(b) in (2, 4) and all(isinstance(x, (int, float)) for x in b) for b in bbox):
            add("E309", "objects.bbox", "bbox must be a list of [x1, y1, x2, y2] (or [x, y]) number lists")
            return
        if ref is not None and (not isinstance(ref, list) or len(ref) != len(bbox)):
            add("E309", "objects.ref", f"{len(ref) if isinstance(ref, list) else 'no'} refs for {len(bbox)} boxes")

    def _length(self, row: dict, texts: list[str], add, out: ChunkResult) -> None:
        tokens = sum(len(e.ids) for e in self.tokenizer.encode_batch(texts, add_special_tokens=False))
        tokens += 8 * len(texts)  # chat-template tokens around each turn (qwen3_5: <|im_start|>role\n ... <|im_end|>\n)
        images = len(row.get("images") or []) if isinstance(row.get("images"), list) else 0
        videos = len(row.get("videos") or []) if isinstance(row.get("videos"), list) else 0
        tokens += images * (self.opts.image_tokens or 1024)
        tokens += videos * (self.opts.video_tokens or 128) * (self.opts.fps_max_frames or 16)
        out.lengths.append(tokens)
        if tokens > self.opts.max_length:
            add("W501", "messages", f"~{tokens} tokens > max_length {self.opts.max_length}: ms-swift truncates or "
                "drops this row (truncation_strategy)")


def _parse_json(value: Any) -> Any:
    """ms-swift's BaseAgentTemplate._parse_json: a string is JSON, else a Python literal, else nothing (None)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        try:
            return ast.literal_eval(value)
        except Exception:  # literal_eval raises several types; ms-swift catches them all too
            return None
