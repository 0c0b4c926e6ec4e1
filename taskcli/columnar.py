"""Conversations held as Arrow columns, checked and written as JSON lines in bulk.

A SmolTalk-sized export is half a million rows. Turning each row into Python dicts, checking it
message by message and serialising it costs tens of microseconds a row, nearly all of it per-object
work on rows that are plainly fine. Here a chunk of rows of type ``list<struct<role: string,
content: string>>`` goes through a few Arrow and numpy operations instead:

- `rows_without_errors` marks the rows that certainly break no error rule of
  `taskcli.conversation.check_messages`: roles in turn, no NUL in any content. It recognises the
  common case only; every other row is left to `check_messages`, the one home of the rules, which
  says what is wrong with it.
- `json_lines` writes rows byte for byte as ``orjson.dumps`` writes the same conversation in a
  given `Layout`: the content strings are escaped by orjson itself, all in one call, and Arrow
  joins the fixed pieces around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from taskcli.conversation import ROLES

BINARY = pa.large_binary()  # 64-bit offsets: a chunk of lines may pass 2 GB
SYSTEM, USER, ASSISTANT = range(3)  # the positions of the roles in `ROLES`
_STRINGS = (pa.string(), pa.large_string())
_NOTHING = pa.scalar(b"", BINARY)


@dataclass(frozen=True)
class Layout:
    """How an output format writes a conversation whose contents are all strings.

    A line is `head`, the messages joined by commas, the tail (`tail`, or one per row) and a
    newline; a message is ``{"<role_key>": <name of its role>, "<content_key>": <content>}``.
    """

    head: bytes
    tail: bytes
    role_key: str = "role"
    content_key: str = "content"
    role_names: tuple[str, str, str] = ROLES  # what system, user and assistant are called

    def message_heads(self) -> pa.Array:
        """Each role's message up to its content's text, e.g. ``{"role":"user","content":"``."""
        return pa.array(
            [
                orjson.dumps({self.role_key: name, self.content_key: ""})[: -len(b'"}')]
                for name in self.role_names
            ],
            BINARY,
        )


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
    offsets = _row_offsets(messages)
    starts, lengths = offsets[:-1], np.diff(offsets)
    roles, contents = _fields(messages)
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
    if _has_nul(contents):
        with_nul = np.asarray(pc.match_substring(contents, "\x00").fill_null(False))
        fine &= np.bincount(row[with_nul], minlength=len(messages)) == 0
    return fine


def json_lines(messages: pa.Array, layout: Layout, tails: pa.Array | None = None) -> pa.Array:
    """The rows of `messages` as JSON lines in `layout`, each ending with a newline.

    Every row must pass `rows_without_errors`. `tails`, one per row, replaces `layout.tail`.
    A row's first message carries the line's head and its last the tail, so joining each row's
    messages with commas gives the whole line: one pass over the bytes fewer.
    """
    offsets = _row_offsets(messages)
    roles, contents = _fields(messages)
    codes = np.asarray(pc.index_in(roles, value_set=pa.array(ROLES)))
    first = np.zeros(len(codes), dtype=np.int64)
    first[offsets[:-1]] = len(ROLES)
    heads = layout.message_heads()
    led = pc.binary_join_element_wise(pa.scalar(layout.head, BINARY), heads, _NOTHING)
    heads = pa.concat_arrays([heads, led])
    last = np.zeros(len(codes), dtype=np.int64)
    if tails is None:
        endings = pa.array([b'"}', b'"}' + layout.tail + b"\n"], BINARY)
        last[offsets[1:] - 1] = 1
    else:
        close, newline = pa.scalar(b'"}', BINARY), pa.scalar(b"\n", BINARY)
        ends = pc.binary_join_element_wise(close, tails.cast(BINARY), newline, _NOTHING)
        endings = pa.concat_arrays([pa.array([b'"}'], BINARY), ends])
        last[offsets[1:] - 1] = np.arange(1, len(messages) + 1)
    each = pc.binary_join_element_wise(
        heads.take(codes + first), _escaped(contents), endings.take(last), _NOTHING
    )
    rows = pa.LargeListArray.from_arrays(pa.array(offsets), each)
    return pc.binary_join(rows, pa.scalar(b",", BINARY))


def _escaped(strings: pa.Array) -> pa.Array:
    """Each string as orjson writes it, without the quotes around it.

    One ``orjson.dumps`` of the whole list, cut apart at the ``","`` between the strings, costs a
    third of one call per string. Inside a string a quote is always escaped, so ``","`` can only
    be a boundary, except after a string that ends with ``",`` (escaped ``\\",`` + its closing
    quote): chunks holding one are escaped one string at a time.
    """
    if not len(strings):
        return pa.array([], BINARY)
    if pc.any(pc.ends_with(strings, '",')).as_py():
        return pa.array([orjson.dumps(text)[1:-1] for text in strings.to_pylist()], BINARY)
    listed = orjson.dumps(strings.to_pylist())
    inside = pa.py_buffer(np.array([2, len(listed) - 2], dtype=np.int64))  # without [" and "]
    whole = pa.Array.from_buffers(BINARY, 1, [None, inside, pa.py_buffer(listed)])
    return pc.split_pattern(whole, pattern=b'","').flatten()


def _row_offsets(messages: pa.Array) -> np.ndarray:
    """Where each row's messages start in the flattened messages, and (last) where they end."""
    offsets = np.asarray(messages.offsets, dtype=np.int64)
    return offsets - offsets[0]


def _fields(messages: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The roles and contents of all messages, in order; a null message makes both null."""
    structs = messages.flatten()
    children = dict(zip((f.name for f in structs.type), structs.flatten(), strict=True))
    return children["role"], children["content"]


def _has_nul(strings: pa.Array) -> bool:
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
