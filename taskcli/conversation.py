"""The conversation format and its rules, written once.

A conversation is a dict ``{"messages": [...], **metadata}``. A message is
``{"role": ..., "content": ...}``: an optional first ``system`` message, then ``user`` and
``assistant`` alternating, starting with ``user``. Content is a string; an assistant's content
may instead be a non-empty list of parts ``{"type": "text" | "python" | "python_output",
"text": str}`` -- a calculator or tool call and its result::

    {"messages": [
        {"role": "user", "content": "What is 48/2?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "48/2 = "},
            {"type": "python", "text": "48/2"},
            {"type": "python_output", "text": "24"},
            {"type": "text", "text": "24. #### 24"}]}]}

`check_messages` is the single implementation of these rules: `taskcli validate`, the
`customjson` and `smoltalk` tasks and `taskcli export` all call it, so they can never disagree.
It reports every problem (with a stable rule id and a JSON path) instead of stopping at the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}  # their "from" names
# The formats a conversation record may be written in (`taskcli.files.formats` reads and writes
# each); named here, where reading their names costs nothing.
RECORD_FORMATS = ("messages", "nanochat", "openai", "sharegpt")
PART_TYPES = ("text", "python", "python_output")

# nanochat's chat tokens, in the order a freshly trained nanochat tokenizer numbers them
# (`taskcli.training.tokenizer` renders with them).
CHAT_TOKENS = (
    "<|bos|>",
    "<|user_start|>",
    "<|user_end|>",
    "<|assistant_start|>",
    "<|assistant_end|>",
    "<|python_start|>",
    "<|python_end|>",
    "<|output_start|>",
    "<|output_end|>",
)
# Strings that chat tokenizers treat as control tokens; inside content they corrupt tokenisation.
SPECIAL_TOKENS = (
    *CHAT_TOKENS,
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)

ERROR = "error"
WARNING = "warning"

# Every rule id taskcli can report, with its severity and a one-line summary. The docs and
# their tests are checked against this table, so a new rule cannot go undocumented.
RULES: dict[str, tuple[str, str]] = {
    "line-too-long": (ERROR, "the line is longer than the line length limit; it is not parsed"),
    "invalid-utf8": (ERROR, "the line is not valid UTF-8"),
    "invalid-json": (ERROR, "the line is not valid JSON (NaN, Infinity and deep nesting included)"),
    "not-a-conversation": (
        ERROR,
        "the line is neither a JSON array of messages nor an object with a 'messages' key",
    ),
    "messages-not-list": (ERROR, "'messages' is not a list"),
    "message-not-object": (ERROR, "a message is not a JSON object"),
    "missing-role": (ERROR, "a message has no 'role'"),
    "missing-content": (ERROR, "a message has no 'content'"),
    "unknown-role": (ERROR, "a role other than system, user or assistant"),
    "misplaced-system": (ERROR, "a system message anywhere but first"),
    "system-not-allowed": (ERROR, "a system message while --no-system is given"),
    "first-not-user": (ERROR, "the first non-system message is not from the user"),
    "roles-not-alternating": (ERROR, "two user or two assistant messages in a row"),
    "no-exchange": (ERROR, "fewer than one user message followed by an assistant message"),
    "bad-content": (
        ERROR,
        "content is neither a string nor, for the assistant, a non-empty list of parts",
    ),
    "bad-part": (ERROR, "a part is not an object with a known 'type' and a string 'text'"),
    "nul-character": (ERROR, "content contains a NUL character"),
    "bad-tool-call": (
        ERROR,
        "an OpenAI tool call without a function name or JSON arguments, or a tool message "
        "answering no call",
    ),
    "mixed-formats": (ERROR, "a record in another format than the file's first (ShareGPT and not)"),
    "empty-file": (ERROR, "the file holds no conversations"),
    "unreadable-file": (
        ERROR,
        "the file cannot be read as conversations: a damaged Parquet file or .gz, a Parquet file "
        "without a conversation column, a JSON document too big to parse whole",
    ),
    "template-error": (
        ERROR,
        "with --tokenizer: the chat template refuses the conversation (it raises an error, the "
        "sandbox stops it, or it runs past its time or size limit)",
    ),
    "bom": (WARNING, "the file starts with a UTF-8 byte order mark"),
    "crlf": (WARNING, "the line ends with CRLF instead of LF"),
    "mixed-shapes": (WARNING, "the file mixes array lines and object lines"),
    "empty-content": (WARNING, "content is empty or only whitespace"),
    "unknown-key": (WARNING, "a message has keys other than 'role' and 'content'"),
    "ends-with-user": (WARNING, "the conversation ends on a user turn: nothing to learn from it"),
    "duplicate": (WARNING, "the same conversation appears earlier in the file"),
    "special-token": (WARNING, "content contains a chat special-token string"),
    "trains-nothing": (
        WARNING,
        "with --tokenizer: the chat template's mask trains no token of the conversation",
    ),
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: its id, a sentence for people, and where in the JSON it is.

    `line` is the 1-based physical line of a JSONL file, set by `taskcli.validate`.
    """

    rule: str
    message: str
    path: str | None = None
    line: int | None = None

    @property
    def severity(self) -> str:
        return RULES[self.rule][0]

    @property
    def is_error(self) -> bool:
        return RULES[self.rule][0] == ERROR


def type_name(value: Any) -> str:
    """The JSON name of a Python value's type, for messages people read."""
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "number",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)


def _scan_text(text: str, path: str, problems: list[Problem]) -> None:
    if "\x00" in text:
        problems.append(Problem("nul-character", "content contains a NUL character", path))
    if "<|" in text:  # every special token starts with it
        found = [token for token in SPECIAL_TOKENS if token in text]
        if found:
            problems.append(
                Problem("special-token", f"content contains special token {found[0]}", path)
            )


def _check_parts(parts: list, path: str, problems: list[Problem]) -> None:
    for j, part in enumerate(parts):
        if type(part) is dict:
            kind, text = part.get("type"), part.get("text")
            if kind in PART_TYPES and type(text) is str:
                if "\x00" in text or "|" in text:
                    _scan_text(text, f"{path}[{j}].text", problems)
                continue
        where = f"{path}[{j}]"
        if type(part) is not dict:
            problems.append(
                Problem("bad-part", f"a part must be an object, got {type_name(part)}", where)
            )
            continue
        if kind not in PART_TYPES:
            problems.append(
                Problem(
                    "bad-part",
                    f"unknown part type {kind!r}; expected one of " + ", ".join(PART_TYPES),
                    f"{where}.type",
                )
            )
        if type(text) is not str:
            problems.append(
                Problem(
                    "bad-part",
                    f"part text must be a string, got {type_name(text)}",
                    f"{where}.text",
                )
            )
        elif "\x00" in text or "|" in text:
            _scan_text(text, f"{where}.text", problems)


def check_messages(messages: Any, *, allow_system: bool = True) -> list[Problem]:
    """Every rule `messages` breaks, errors and warnings, in message order.

    This runs for every line `taskcli validate` reads, so the common case (a well-formed message
    in its turn) takes the shortest path: JSON paths are only built when something is wrong, and
    text is searched for special tokens only if it holds a ``|`` (a memchr-speed test).
    """
    if type(messages) is not list:
        return [
            Problem(
                "messages-not-list",
                f"messages must be an array, got {type_name(messages)}",
                "messages",
            )
        ]
    problems: list[Problem] = []
    expected = "user"
    previous = None
    exchanges = 0
    for i, message in enumerate(messages):
        if type(message) is not dict:
            problems.append(
                Problem(
                    "message-not-object",
                    f"a message must be an object, got {type_name(message)}",
                    f"messages[{i}]",
                )
            )
            continue
        role = message.get("role")
        if role == expected:  # the turn we were waiting for: user, then assistant, then user...
            if role == "assistant":
                exchanges += 1
            previous = role
            expected = "assistant" if role == "user" else "user"
        elif "role" not in message:
            problems.append(Problem("missing-role", "message has no 'role'", f"messages[{i}]"))
        elif type(role) is not str or role not in ROLES:
            problems.append(
                Problem(
                    "unknown-role",
                    f"unknown role {role!r}; expected system, user or assistant",
                    f"messages[{i}].role",
                )
            )
        elif role == "system":
            if not allow_system:
                problems.append(
                    Problem(
                        "system-not-allowed",
                        "system messages are not allowed (--no-system)",
                        f"messages[{i}].role",
                    )
                )
            elif i != 0:
                problems.append(
                    Problem(
                        "misplaced-system",
                        "a system message may only come first",
                        f"messages[{i}].role",
                    )
                )
        else:  # user or assistant out of turn
            if previous is None:
                problems.append(
                    Problem(
                        "first-not-user",
                        "the first message after the optional system message must be 'user', "
                        f"got {role!r}",
                        f"messages[{i}].role",
                    )
                )
            else:
                problems.append(
                    Problem(
                        "roles-not-alternating",
                        f"'{role}' follows '{previous}'; user and assistant must alternate",
                        f"messages[{i}].role",
                    )
                )
            previous = role
            expected = "assistant" if role == "user" else "user"

        content = message.get("content")
        if type(content) is str:
            if not content or content.isspace():
                problems.append(
                    Problem(
                        "empty-content",
                        "content is empty or whitespace",
                        f"messages[{i}].content",
                    )
                )
            elif "\x00" in content or "|" in content:
                _scan_text(content, f"messages[{i}].content", problems)
        elif type(content) is list and content and role == "assistant":
            _check_parts(content, f"messages[{i}].content", problems)
        elif "content" not in message:
            problems.append(
                Problem("missing-content", "message has no 'content'", f"messages[{i}]")
            )
        else:
            allowed = "a string or a non-empty list of parts" if role == "assistant" else "a string"
            got = type_name(content) if content != [] else "an empty array"
            problems.append(
                Problem(
                    "bad-content", f"content must be {allowed}, got {got}", f"messages[{i}].content"
                )
            )
        if len(message) > 2 or role is None or content is None:
            extra = sorted(k for k in message if k not in ("role", "content"))
            if extra:
                problems.append(
                    Problem("unknown-key", f"unknown key(s) {', '.join(extra)}", f"messages[{i}]")
                )

    if exchanges == 0:
        problems.append(
            Problem(
                "no-exchange",
                "a conversation needs at least one user message followed by an assistant message",
                "messages",
            )
        )
    elif previous == "user":
        problems.append(
            Problem(
                "ends-with-user",
                "the conversation ends on a user turn",
                f"messages[{len(messages) - 1}]",
            )
        )
    return problems


def messages_of(record: Any) -> tuple[Any, Problem | None]:
    """The messages of one JSONL record in either accepted shape, or why there are none.

    A record is a JSON array of messages (nanochat's CustomJSON shape) or an object with a
    ``"messages"`` key (the Hugging Face / OpenAI shape; other keys are metadata).
    """
    if type(record) is list:
        return record, None
    if type(record) is dict and "messages" in record:
        return record["messages"], None
    if type(record) is dict:
        return None, Problem("not-a-conversation", "an object line needs a 'messages' key", None)
    return None, Problem(
        "not-a-conversation",
        f"a line must be an array of messages or an "
        f"object with 'messages', got {type_name(record)}",
        None,
    )


def check_record(record: Any, *, allow_system: bool = True) -> list[Problem]:
    """Every rule one JSONL record breaks, whichever of the two shapes it has."""
    messages, problem = messages_of(record)
    if problem is not None:
        return [problem]
    return check_messages(messages, allow_system=allow_system)


def first_error(problems: list[Problem]) -> Problem | None:
    return next((p for p in problems if p.is_error), None)


def fold_system(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages without a leading system message: its text goes before the first user
    message's, separated by a blank line, as nanochat's tokenizer renders it and its CustomJSON
    loader requires (it refuses system messages). Other messages are returned as they are."""
    if len(messages) < 2 or messages[0].get("role") != "system":
        return messages
    if messages[1].get("role") != "user":  # not a conversation nanochat renders: left as it is
        return messages
    system, user, *rest = messages
    joined = flatten_content(system["content"]) + "\n\n" + flatten_content(user["content"])
    return [{**user, "content": joined}, *rest]


def flatten_content(content: str | list[dict]) -> str:
    """Content as one string: parts joined, tool calls written ``<<expr=result>>``.

    That is GSM8K's own calculator notation, so a GSM8K answer flattens back to its original text.
    """
    if type(content) is str:
        return content
    pieces = []
    for i, part in enumerate(content):
        kind, text = part["type"], part["text"]
        if kind == "python":
            pieces.append("<<" + text)
            following = content[i + 1]["type"] if i + 1 < len(content) else None
            if following != "python_output":
                pieces.append(">>")
        elif kind == "python_output":
            opened = i > 0 and content[i - 1]["type"] == "python"
            pieces.append(("" if opened else "<<") + ("=" + text if text else "") + ">>")
        else:
            pieces.append(text)
    return "".join(pieces)
