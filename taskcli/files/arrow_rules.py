"""The conversation rules checked in bulk, on an Arrow column of messages: which rows certainly
break no rule, so that the per-row work can skip them.

A chunk of rows of type ``list<struct<role: string, content: string>>`` goes through a few Arrow
and numpy operations instead of a Python object per message:

- `rows_without_errors` marks the rows that certainly break no error rule of
  `taskcli.conversation.check_messages`: roles in turn, no NUL in any content. It recognises the
  common case only; every other row is left to `check_messages`, the one home of the rules, which
  says what is wrong with it. `RULE_COVERAGE` says, for every error rule, how this check stands
  to it; a test fails when a rule is added to `RULES` without a word here. `taskcli export`
  writes such rows straight from Arrow (`taskcli.export.columnar`).
- `rows_without_problems` marks the rows that certainly break no rule at all, warnings included:
  `taskcli validate` and the other readers of a Parquet file need not check them one by one
  (only the rules of ``validate --tokenizer``, which renders each row, are judged still).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from taskcli.conversation import ROLES

SYSTEM, USER, ASSISTANT = range(3)  # the positions of the roles in `ROLES`
_STRINGS = (pa.string(), pa.large_string())
# A content holding one of these is certainly not empty or whitespace (`empty-content`).
_VISIBLE = "[0-9A-Za-z]"

CHECKED, ROW_BY_ROW, NOT_A_ROW_RULE = "checked", "row by row", "not a row rule"
# How `rows_without_errors` stands to each error rule of `taskcli.conversation.RULES`:
# CHECKED, a row that breaks it is never marked fine; ROW_BY_ROW, columns in which it could be
# broken are never recognised (`holds_string_messages`), so `check_messages` judges every such
# row; NOT_A_ROW_RULE, it is about a file's lines or a command's option, not a row of Arrow data.
# The tests hold a breaking example of every CHECKED and ROW_BY_ROW rule.
RULE_COVERAGE: dict[str, str] = {
    "line-too-long": NOT_A_ROW_RULE,  # a JSONL reading limit
    "invalid-utf8": NOT_A_ROW_RULE,  # Arrow strings are UTF-8 by construction
    "invalid-json": NOT_A_ROW_RULE,
    "not-a-conversation": NOT_A_ROW_RULE,  # the column is messages by the task's declaration
    "empty-file": NOT_A_ROW_RULE,
    "unreadable-file": NOT_A_ROW_RULE,  # a file that cannot be read, not a row
    "system-not-allowed": NOT_A_ROW_RULE,  # export allows system messages
    "messages-not-list": CHECKED,  # a null row
    "message-not-object": CHECKED,  # a null message
    "unknown-role": CHECKED,  # a null role too
    "misplaced-system": CHECKED,
    "first-not-user": CHECKED,
    "roles-not-alternating": CHECKED,
    "no-exchange": CHECKED,
    "bad-content": CHECKED,  # a null content; other types are not string columns
    "nul-character": CHECKED,
    "bad-tool-call": NOT_A_ROW_RULE,  # OpenAI records are read from files, not Arrow columns
    "mixed-formats": NOT_A_ROW_RULE,  # a file's records, not a task's rows
    "template-error": NOT_A_ROW_RULE,  # only validate --tokenizer renders rows, one by one
    "missing-role": ROW_BY_ROW,  # a message struct without a role field
    "missing-content": ROW_BY_ROW,  # a message struct without a content field
    "bad-part": ROW_BY_ROW,  # parts are never recognised
}


def holds_string_messages(messages: Any) -> bool:
    """Whether `messages` is an Arrow list of structs with string ``role`` and ``content``."""
    kind = messages.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        return False
    item = kind.value_type
    if not pa.types.is_struct(item):
        return False
    fields = {item.field(i).name: item.field(i).type for i in range(item.num_fields)}
    return fields.get("role") in _STRINGS and fields.get("content") in _STRINGS


def rows_without_errors(messages: pa.Array) -> np.ndarray:
    """For each row of `messages` (see `holds_string_messages`): True if it certainly breaks no
    error rule of `check_messages` (system messages allowed). False means "check it there"."""
    if messages.null_count:
        valid = np.asarray(messages.is_valid())
        result = np.zeros(len(messages), dtype=bool)
        result[valid] = rows_without_errors(messages.filter(pa.array(valid)))
        return result
    offsets = row_offsets(messages)
    starts, lengths = offsets[:-1], np.diff(offsets)
    roles, contents = message_fields(messages)
    codes = np.asarray(pc.index_in(roles, value_set=pa.array(ROLES)).fill_null(-1))
    row = np.repeat(np.arange(len(messages)), lengths)
    system_first = np.zeros(len(messages), dtype=bool)
    filled = lengths > 0
    system_first[filled] = codes[starts[filled]] == SYSTEM
    # The turn of each message after the optional leading system message: user on even turns,
    # assistant on odd ones. The system message itself is turn -1.
    turn = np.arange(len(codes)) - starts[row] - system_first[row]
    in_turn = (codes == USER + (turn & 1)) | (turn < 0)
    broken = ~in_turn | np.asarray(contents.is_null())
    exchange = lengths - system_first >= 2  # in turn, that is a user message, then an assistant's
    fine = (np.bincount(row[broken], minlength=len(messages)) == 0) & exchange
    if has_nul(contents):
        with_nul = np.asarray(pc.match_substring(contents, "\x00").fill_null(False))
        fine &= np.bincount(row[with_nul], minlength=len(messages)) == 0
    return fine


def rows_without_problems(messages: pa.Array, *, allow_system: bool = True) -> np.ndarray:
    """For each row of `messages` (see `holds_string_messages`): True if `check_messages`
    certainly finds nothing in it, neither an error nor a warning. Conservative, as
    `rows_without_errors` is: a content without a letter or digit (`empty-content` perhaps), or
    with ``<|`` (`special-token` perhaps), a last message from the user (`ends-with-user`), and,
    unless `allow_system`, a system message make a row False, to be checked one by one."""
    fine = rows_without_errors(messages)
    if not fine.any():
        return fine
    offsets = row_offsets(messages)
    lengths = np.diff(offsets)
    roles, contents = message_fields(messages)
    row = np.repeat(np.arange(len(messages)), lengths)
    visible = pc.match_substring_regex(contents, _VISIBLE).fill_null(False)
    special = pc.match_substring(contents, "<|").fill_null(True)
    doubtful = ~np.asarray(visible) | np.asarray(special)
    fine &= np.bincount(row[doubtful], minlength=len(messages)) == 0
    filled = lengths > 0
    last = np.zeros(len(messages), dtype=object)
    last[filled] = roles.take(pa.array(offsets[1:][filled] - 1)).to_numpy(zero_copy_only=False)
    fine &= last != "user"
    if not allow_system:
        fine &= ~start_with_system(messages)
    return fine


def row_keys(messages: pa.Array) -> list[bytes]:
    """For each row of `messages`: what the `duplicate` rule compares, its roles and contents
    joined by NUL. Only for rows without problems (`rows_without_problems`): no content of
    theirs holds a NUL, and every role is one of three, so two rows share a key only when they
    hold the same messages."""
    roles, contents = message_fields(messages)
    pairs = pc.binary_join_element_wise(roles, contents, "\x00")
    offsets = pa.array(row_offsets(messages), pa.int64())
    rows = pa.LargeListArray.from_arrays(offsets, pairs)
    return pc.binary_join(rows, "\x00").cast(pa.large_binary()).to_pylist()


def start_with_system(messages: pa.Array) -> np.ndarray:
    """For each row of `messages`: whether its first message is a system message."""
    offsets = row_offsets(messages)
    roles, _ = message_fields(messages)
    filled = np.flatnonzero(np.diff(offsets) > 0)
    result = np.zeros(len(messages), dtype=bool)
    firsts = roles.take(pa.array(offsets[filled])).to_numpy(zero_copy_only=False)
    result[filled] = firsts == "system"
    return result


def row_offsets(messages: pa.Array) -> np.ndarray:
    """Where each row's messages start in the flattened messages, and (last) where they end."""
    offsets = np.asarray(messages.offsets, dtype=np.int64)
    return offsets - offsets[0]


def message_fields(messages: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The roles and contents of all messages, in order; a null message makes both null."""
    structs = messages.flatten()
    children = dict(zip((f.name for f in structs.type), structs.flatten(), strict=True))
    return children["role"], children["content"]


def has_nul(strings: pa.Array) -> bool:
    """Whether any of `strings` holds a NUL character: one pass over their bytes."""
    offsets_buffer, data = strings.buffers()[1:3]
    if data is None or not len(strings):
        return False
    width = np.int64 if strings.type == pa.large_string() else np.int32
    offsets = np.frombuffer(offsets_buffer, width)[
        strings.offset : strings.offset + len(strings) + 1
    ]
    values = np.frombuffer(data, np.uint8)[offsets[0] : offsets[-1]]
    return bool(values.size and values.min() == 0)
