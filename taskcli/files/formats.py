"""Conversation records as other tools write them: four formats, read into taskcli's conversation
and written back from it, each in one place.

- ``messages``: ``{"messages": [{"role", "content"}, ...], **metadata}``: taskcli's own normal
  form, and Hugging Face's (SmolTalk's Parquet shards hold the same column);
- ``nanochat``: ``[{"role", "content"}, ...]``: a line of nanochat's CustomJSON files;
- ``openai``: OpenAI's chat fine-tuning rows, ``{"messages": [...]}`` where an assistant's tool
  call is ``"tool_calls": [{"id", "type": "function", "function": {"name", "arguments"}}]``
  (``arguments`` a JSON text) and its result a ``{"role": "tool", "tool_call_id", "content"}``
  message; messages may carry ``name`` and ``weight``;
- ``sharegpt``: ``{"conversations": [{"from", "value"}, ...]}`` with ``from`` one of ``human``,
  ``gpt``, ``system``, ``function_call`` and ``observation``.

A conversation's tool use is nanochat's: an assistant message whose content is a list of parts,
``python`` (a call) and ``python_output`` (its result) among ``text``. In ``openai`` a ``python``
part is a call of the function ``python`` with ``{"code": ...}`` as its arguments and a
``python_output`` part the ``tool`` message answering it; the assistant messages between the
calls become one assistant message again when read. A call of another function is read as a
``python`` part holding ``name(arguments)``. In ``sharegpt``, ``function_call`` and
``observation`` items are read the same way, as ``python`` and ``python_output`` parts (a
``function_call`` value that is no JSON call stays as it is).
``nanochat`` and ``sharegpt`` cannot say parts when written: tool calls are written as
``<<expr=result>>`` text, and the writer says so (`Written.lost`, counted by `Loss`). Nor can
``openai`` say a tool output that answers no call just before it: that is written as text too.

Problems are reported in the record's own terms (`Reading.problems` name its fields, such as
``conversations[3].from``), so `taskcli validate` points at what the file says.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from taskcli.conversation import (
    PART_TYPES,
    SHAREGPT_ROLES,
    Problem,
    check_messages,
    flatten_content,
    fold_system,
    type_name,
)

MESSAGES, NANOCHAT, OPENAI, SHAREGPT = "messages", "nanochat", "openai", "sharegpt"
SHAREGPT_FROM = {
    "system": "system",
    "human": "user",
    "gpt": "assistant",
    "function_call": "python",  # parts of the assistant message around them
    "observation": "python_output",
}
OPENAI_KEYS = ("tool_calls", "tool_call_id", "weight", "name")  # keys taskcli's messages lack
PYTHON = "python"  # the function an openai tool call of a python part calls
_PATH = re.compile(r"^messages\[(\d+)\](?:\.(role|content))?")  # what a path names, and where


@dataclass(frozen=True)
class Reading:
    """A record read as a conversation (None when it is not one), every rule it breaks in the
    record's own terms, and the format it was read in."""

    conversation: dict[str, Any] | None
    problems: list[Problem]
    fmt: str | None = None


@dataclass(frozen=True)
class Written:
    """A conversation written in a format: the record, and whether the format could not say
    all of it (tool parts written as text)."""

    record: Any
    lost: bool = False


def format_of(record: Any) -> str | None:
    """The format one record is written in, or None when it is in none of them."""
    if type(record) is list:
        return NANOCHAT
    if type(record) is not dict:
        return None
    if "conversations" in record and "messages" not in record:
        return SHAREGPT
    if "messages" in record:
        return OPENAI if _openai_signs(record["messages"]) else MESSAGES
    return None


def family_of(fmt: str | None) -> str | None:
    """``sharegpt``, or ``messages`` for the three formats read alike (each of ``messages``,
    ``nanochat`` and ``openai`` is a case of the others' shape), or None."""
    return None if fmt is None else SHAREGPT if fmt == SHAREGPT else MESSAGES


def read(record: Any, forced: str | None = None, *, allow_system: bool = True) -> Reading:
    """`record` as a conversation, with every rule it breaks. Each record is read in its own
    format (`format_of`) unless one is `forced` (``--input-format``): then a record in another
    shape is not a conversation."""
    if forced is not None and forced != _shape_of_format(record, forced):
        return Reading(None, [_not_in(forced, record)])
    if forced == SHAREGPT or (forced is None and format_of(record) == SHAREGPT):
        return _read_sharegpt(record, allow_system)
    return _read_messages(record, allow_system, openai=forced == OPENAI)


def overall(seen: str | None, fmt: str | None) -> str | None:
    """A file's format once a record read as `fmt` follows records read as `seen`: OpenAI's
    keys anywhere make it ``openai``; arrays and objects together are ``messages``."""
    if fmt is None or fmt == seen or seen in (OPENAI, SHAREGPT):
        return seen
    if seen is None or fmt in (OPENAI, SHAREGPT):
        return fmt
    return MESSAGES


def decode(line: bytes, forced: str | None = None) -> dict[str, Any]:
    """A line (or compact JSON) already found valid, as its conversation (`conversation_of`)."""
    return conversation_of(orjson.loads(line), forced)


def conversation_of(record: Any, forced: str | None = None) -> dict[str, Any]:
    """A record already found valid, as its conversation: `read` without the rules' cost."""
    if forced == SHAREGPT or (forced is None and type(record) is dict and "messages" not in record):
        return _sharegpt_conversation(record)[0]
    if type(record) is list:
        return {"messages": record}
    messages = record["messages"]
    if forced == OPENAI or _openai_signs(messages):
        return {**record, "messages": _from_openai(messages)[0]}
    return record


# --- messages, nanochat and openai ----------------------------------------------------------


def _shape_of_format(record: Any, fmt: str) -> str | None:
    """`fmt` when `record` has that format's shape (an array for nanochat, an object with
    'messages' for messages and openai, with 'conversations' for sharegpt), else None."""
    if type(record) is list:
        return NANOCHAT if fmt == NANOCHAT else None
    if type(record) is not dict:
        return None
    if "messages" in record:
        return fmt if fmt in (MESSAGES, OPENAI) else None
    return SHAREGPT if "conversations" in record and fmt == SHAREGPT else None


def _not_in(fmt: str, record: Any) -> Problem:
    shape = {
        NANOCHAT: "an array of messages",
        MESSAGES: "an object with 'messages'",
        OPENAI: "an object with 'messages'",
        SHAREGPT: "an object with 'conversations'",
    }[fmt]
    return Problem(
        "not-a-conversation", f"a {fmt} record is {shape}, got {_shape_name(record)}", None
    )


def _not_a_record(record: Any) -> Problem:
    """Why a record is in none of the formats, saying what it is."""
    if type(record) is dict:
        said = "an object needs a 'messages' key (ShareGPT: 'conversations'), got "
        said += _shape_name(record)
    else:
        said = (
            "a record is an array of messages or an object with 'messages' (ShareGPT: "
            f"'conversations'), got {type_name(record)}"
        )
    return Problem("not-a-conversation", said, None)


def _shape_name(record: Any) -> str:
    if type(record) is dict:
        keys = ", ".join(repr(key) for key in list(record)[:4])
        return f"an object with {keys}" if keys else "an empty object"
    return type_name(record)


def _read_messages(record: Any, allow_system: bool, *, openai: bool = False) -> Reading:
    """A record of messages (``messages``, ``nanochat``, or ``openai`` when it uses OpenAI's
    tool calls or `openai` is forced) as a conversation."""
    from taskcli.conversation import messages_of

    messages, shape_problem = messages_of(record)
    if shape_problem is not None:
        return Reading(None, [_not_a_record(record)])
    fmt = NANOCHAT if type(record) is list else MESSAGES
    if not openai:
        problems = check_messages(messages, allow_system=allow_system)
        if not any(p.rule in ("unknown-key", "unknown-role", "bad-content") for p in problems):
            return Reading(_normal(record), problems, fmt)  # the common case: no OpenAI keys
        if not _openai_signs(messages):
            return Reading(_normal(record), problems, fmt)
    converted, mapping_problems, origins = _from_openai(messages)
    problems = check_messages(converted, allow_system=allow_system)
    problems = [_in_terms(p, origins, "messages", "role", "content") for p in problems]
    conversation = {**record, "messages": converted}
    return Reading(conversation, mapping_problems + problems, OPENAI)


def _normal(record: Any) -> dict[str, Any]:
    return {"messages": record} if type(record) is list else record


def _openai_signs(messages: Any) -> bool:
    """Whether messages use OpenAI's tool calls (``tool_calls``, the ``tool`` role): then they
    are read as ``openai``. Its ``name`` and ``weight`` alone do not tell it (they are
    ``unknown-key`` warnings unless ``openai`` is forced)."""
    if type(messages) is not list:
        return False
    for message in messages:  # every record is asked: three lookups, no generator
        if type(message) is dict and (
            message.get("role") == "tool" or "tool_calls" in message or "tool_call_id" in message
        ):
            return True
    return False


class _Assistant:
    """The assistant message being gathered from OpenAI's assistant and tool messages."""

    def __init__(self, origin: int) -> None:
        self.parts: list[dict[str, str]] = []
        self.part_origins: list[int] = []
        self.origin = origin
        self.tools = False  # a tool call or result is among the parts
        self.waiting = False  # the last message was a call or a result: the next assistant joins
        self.plain: Any = None  # the content of a lone assistant message without tools

    def add(self, kind: str, text: str, origin: int) -> None:
        self.parts.append({"type": kind, "text": text})
        self.part_origins.append(origin)

    def message(self) -> dict[str, Any]:
        if not self.tools:
            return {"role": "assistant", "content": self.plain}
        return {"role": "assistant", "content": self.parts}


def _from_openai(messages: list[Any]) -> tuple[list[Any], list[Problem], list[int]]:
    """OpenAI's messages as taskcli's, the problems of reading them, and the original index of
    each message read (for naming problems in the file's terms)."""
    out: list[Any] = []
    origins: list[int] = []
    problems: list[Problem] = []
    gathering: _Assistant | None = None

    def close() -> None:
        nonlocal gathering
        if gathering is not None:
            out.append(gathering.message())
            origins.append(gathering.origin)
            gathering = None

    for i, message in enumerate(messages):
        role = message.get("role") if type(message) is dict else None
        if role == "assistant":
            if gathering is None or not gathering.waiting:
                close()
                gathering = _Assistant(i)
            _gather_assistant(gathering, message, i, problems)
        elif role == "tool":
            if gathering is None or not gathering.tools:
                problems.append(
                    Problem(
                        "bad-tool-call",
                        "a tool message answers no tool call before it",
                        f"messages[{i}]",
                    )
                )
                continue
            content = message.get("content")
            text = _text_of(content, f"messages[{i}].content", problems)
            gathering.add("python_output", text, i)
            gathering.waiting = True
        else:
            close()
            if type(message) is dict:
                message = {k: v for k, v in message.items() if k not in OPENAI_KEYS}
            out.append(message)
            origins.append(i)
    close()
    return out, problems, origins


def _gather_assistant(
    gathering: _Assistant, message: dict[str, Any], i: int, problems: list[Problem]
) -> None:
    content = message.get("content")
    calls = message.get("tool_calls")
    if not calls and not gathering.tools:  # a lone assistant message: its content as it is
        gathering.plain = content
        gathering.waiting = False
        if type(content) is str:
            gathering.add("text", content, i)
        elif type(content) is list:
            for part in content:
                gathering.parts.append(part)
                gathering.part_origins.append(i)
        return
    if not gathering.tools:  # tools from here on: what came before becomes parts
        gathering.tools = True
    if type(content) is list and _text_parts(content):
        for part in content:  # each part stays one, as `write_openai` wrote them
            kind = part.get("type")
            gathering.add(kind if kind in PART_TYPES else "text", part["text"], i)
    elif content is not None:
        gathering.add("text", _text_of(content, f"messages[{i}].content", problems), i)
    if calls is None:
        gathering.waiting = False
        return
    if type(calls) is not list:
        problems.append(
            Problem(
                "bad-tool-call",
                f"tool_calls must be an array, got {type_name(calls)}",
                f"messages[{i}].tool_calls",
            )
        )
        return
    for j, call in enumerate(calls):
        code = _call_code(call, f"messages[{i}].tool_calls[{j}]", problems)
        if code is not None:
            gathering.add("python", code, i)
    gathering.waiting = True


def _call_code(call: Any, path: str, problems: list[Problem]) -> str | None:
    """The python part of one OpenAI tool call: the code of a `python` call, or for another
    function its call written ``name(arguments)``; None (and a problem) when it is malformed."""
    function = call.get("function") if type(call) is dict else None
    name = function.get("name") if type(function) is dict else None
    arguments = function.get("arguments") if type(function) is dict else None
    if type(name) is not str or not isinstance(arguments, str | dict):
        problems.append(
            Problem(
                "bad-tool-call",
                "a tool call needs a function with a string 'name' and its 'arguments'",
                path,
            )
        )
        return None
    if type(arguments) is str:
        try:
            parsed = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            problems.append(
                Problem(
                    "bad-tool-call",
                    f"the arguments of a call to {name} are not JSON",
                    f"{path}.function.arguments",
                )
            )
            return f"{name}({arguments})"  # what the file says, shown as it is
    else:
        parsed = arguments
    if name == PYTHON and type(parsed) is dict and type(parsed.get("code")) is str:
        return parsed["code"]
    text = arguments if type(arguments) is str else orjson.dumps(arguments).decode()
    return f"{name}({text})"


def _text_of(content: Any, path: str, problems: list[Problem]) -> str:
    """OpenAI content as one string: a string, or the texts of a list of text parts."""
    if type(content) is str:
        return content
    if type(content) is list and _text_parts(content):
        return "".join(part["text"] for part in content)
    problems.append(
        Problem("bad-content", f"content must be a string, got {type_name(content)}", path)
    )
    return ""


def _text_parts(content: list[Any]) -> bool:
    """Whether a list content is OpenAI's text parts: objects with a string 'text'."""
    return all(type(part) is dict and type(part.get("text")) is str for part in content)


def write_openai(conversation: dict[str, Any]) -> Written:
    """A conversation as an OpenAI fine-tuning row: every tool part a real tool call. A tool
    output that answers no call just before it (no ``python`` part) cannot be a ``tool``
    message: it is written as text, ``<<=output>>``, and `Written.lost` says so."""
    messages: list[dict[str, Any]] = []
    calls = iter(range(1 << 62))  # call ids, numbered through the conversation
    lost = False
    for message in conversation["messages"]:
        content = message["content"]
        if message["role"] != "assistant" or all(
            part["type"] == "text" for part in _parts(content)
        ):
            messages.append({"role": message["role"], "content": content})
        else:
            turns, unanswered = _openai_turns(content, calls)
            messages += turns
            lost = lost or unanswered
    return Written({"messages": messages}, lost)


def _parts(content: Any) -> list[dict[str, str]]:
    return content if type(content) is list else []


def _openai_turns(parts: list[dict[str, str]], calls: Any) -> tuple[list[dict[str, Any]], bool]:
    """One assistant message's parts as OpenAI's assistant and tool messages (the text before
    a call and the call in one assistant message, each result a tool message), and whether an
    output answering no call was written as text."""
    turns: list[dict[str, Any]] = []
    texts: list[str] = []
    pending: list[dict[str, Any]] = []  # the calls of the assistant message being written
    last_call = None
    previous = None  # the kind of the part before
    unanswered = False

    def flush() -> None:
        said: Any = None
        if len(texts) == 1:
            said = texts[0]
        elif texts:
            said = [{"type": "text", "text": text} for text in texts]
        turn: dict[str, Any] = {"role": "assistant", "content": said}
        if pending:
            turn["tool_calls"] = list(pending)
        turns.append(turn)
        texts.clear()
        pending.clear()

    for part in parts:
        kind, text = part["type"], part["text"]
        if kind == "python_output" and previous not in ("python", "python_output"):
            kind, text, unanswered = "text", flatten_content([part]), True
        if kind == "text":
            if pending:
                flush()
            texts.append(text)
        elif kind == "python":
            last_call = f"call_{next(calls)}"
            arguments = orjson.dumps({"code": text}).decode()
            function = {"name": PYTHON, "arguments": arguments}
            pending.append({"id": last_call, "type": "function", "function": function})
        else:  # python_output, answering the call just before it
            if pending:
                flush()
            turns.append({"role": "tool", "tool_call_id": last_call, "content": text})
        previous = part["type"]
    if texts or pending:
        flush()
    return turns, unanswered


# --- sharegpt --------------------------------------------------------------------------------


def _read_sharegpt(record: Any, allow_system: bool) -> Reading:
    if type(record) is not dict or "conversations" not in record:
        return Reading(None, [_not_in(SHAREGPT, record)])
    items = record["conversations"]
    if type(items) is not list:
        return Reading(
            None,
            [
                Problem(
                    "messages-not-list",
                    f"conversations must be an array, got {type_name(items)}",
                    "conversations",
                )
            ],
        )
    conversation, problems, origins = _sharegpt_conversation(record)
    problems += [
        _in_terms(p, origins, "conversations", "from", "value")
        for p in check_messages(conversation["messages"], allow_system=allow_system)
    ]
    return Reading(conversation, problems, SHAREGPT)


def _sharegpt_conversation(record: dict[str, Any]) -> tuple[dict[str, Any], list[Problem], list]:
    """A ShareGPT record as a conversation (its other keys kept as metadata), the problems of
    reading its items, and each message's first item."""
    messages: list[Any] = []
    origins: list[int] = []
    problems: list[Problem] = []
    for i, item in enumerate(record["conversations"]):
        if type(item) is not dict:
            messages.append(item)
            origins.append(i)
            continue
        said = item.get("from")
        role = SHAREGPT_FROM.get(said) if type(said) is str else None
        if role is None:
            known = ", ".join(SHAREGPT_FROM)
            problems.append(
                Problem(
                    "unknown-role",
                    f"unknown 'from' value {said!r}; expected one of {known}",
                    f"conversations[{i}].from",
                )
            )
            continue
        value = item.get("value", item.get("content"))
        if role in ("python", "python_output"):
            if type(value) is not str:
                value = orjson.dumps(value).decode()
            if role == "python":
                value = _sharegpt_call(value)
            previous = messages[-1] if messages else None
            if type(previous) is dict and previous.get("role") == "assistant":
                content = previous["content"]
                if type(content) is str:
                    previous["content"] = content = [{"type": "text", "text": content}]
                content.append({"type": role, "text": value})
            else:
                messages.append({"role": "assistant", "content": [{"type": role, "text": value}]})
                origins.append(i)
            continue
        previous = messages[-1] if messages else None
        if (
            role == "assistant"
            and type(previous) is dict
            and previous.get("role") == "assistant"
            and type(previous["content"]) is list
            and previous["content"][-1]["type"] in ("python", "python_output")
        ):
            previous["content"].append({"type": "text", "text": value})  # after a tool's output
            continue
        message: dict[str, Any] = {"role": role}
        if "value" in item or "content" in item:
            message["content"] = value
        messages.append(message)
        origins.append(i)
    metadata = {key: value for key, value in record.items() if key != "conversations"}
    return {"messages": messages, **metadata}, problems, origins


def _sharegpt_call(value: str) -> str:
    """A ``function_call`` item's value as its python part: a call written as JSON,
    ``{"name", "arguments"}``, reads as an OpenAI call does (the code of `python`, else
    ``name(arguments)``); any other value as it is."""
    try:
        call = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if type(call) is not dict or type(call.get("name")) is not str or "arguments" not in call:
        return value
    code = _call_code({"function": call}, "", [])
    return value if code is None else code


def write_sharegpt(conversation: dict[str, Any]) -> Written:
    """A conversation as a ShareGPT record; tool parts are written as ``<<expr=result>>``."""
    messages = conversation["messages"]
    items = [
        {"from": SHAREGPT_ROLES[m["role"]], "value": flatten_content(m["content"])}
        for m in messages
    ]
    return Written({"conversations": items}, _has_tools(messages))


def _has_tools(messages: list[dict[str, Any]]) -> bool:
    """Whether any message holds a tool part (``python``, ``python_output``)."""
    return any(
        type(m["content"]) is not str and any(p["type"] != "text" for p in m["content"])
        for m in messages
    )


# --- messages and nanochat, written ----------------------------------------------------------


def write_messages(conversation: dict[str, Any]) -> Written:
    return Written({"messages": conversation["messages"]})


def write_nanochat(conversation: dict[str, Any]) -> Written:
    """nanochat's CustomJSON line: string contents, the system message folded in."""
    messages = fold_system(conversation["messages"])
    flat = [{"role": m["role"], "content": flatten_content(m["content"])} for m in messages]
    return Written(flat, _has_tools(messages))


WRITERS: dict[str, Callable[[dict[str, Any]], Written]] = {
    MESSAGES: write_messages,
    NANOCHAT: write_nanochat,
    OPENAI: write_openai,
    SHAREGPT: write_sharegpt,
}


# --- problems in the record's own terms ------------------------------------------------------


def _in_terms(problem: Problem, origins: list[int], key: str, role: str, content: str) -> Problem:
    """`problem`, found in the messages read from a record, with its path in the record's terms:
    ``messages[2].content`` of a ShareGPT record is ``conversations[3].value``."""
    if problem.path is None:
        return problem
    if problem.path == "messages":
        return Problem(problem.rule, problem.message, key, problem.line)
    found = _PATH.match(problem.path)
    if found is None:
        return problem
    index = int(found.group(1))
    place = origins[index] if index < len(origins) else index
    field_name = {"role": role, "content": content}.get(found.group(2) or "", "")
    path = f"{key}[{place}]" + (f".{field_name}" if field_name else "")
    return Problem(problem.rule, problem.message, path, problem.line)


@dataclass
class Loss:
    """What a format could not say, counted as conversations are written: the rows whose
    tool parts it wrote as text."""

    fmt: str
    rows: int = 0

    def count(self, written: Written) -> Any:
        """`written`'s record, its loss counted."""
        if written.lost:
            self.rows += 1
        return written.record

    def note(self) -> str | None:
        """One line for the user, or None when nothing was lost."""
        if not self.rows:
            return None
        rows = f"{self.rows:,} row" + ("" if self.rows == 1 else "s")
        what = "tool outputs without a call" if self.fmt == OPENAI else "tool calls"
        return f"{rows} had {what}, written as text in the {self.fmt} format"
