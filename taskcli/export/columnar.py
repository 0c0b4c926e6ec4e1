"""Export's fast path: conversations held as Arrow columns, checked and written in bulk.

A SmolTalk-sized export is half a million rows. Turning each row into Python dicts, checking it
message by message and serialising it costs tens of microseconds a row, nearly all of it per-object
work on rows that are plainly fine. Here a chunk of rows of type ``list<struct<role: string,
content: string>>`` goes through a few Arrow and numpy operations instead:

- `taskcli.files.arrow_rules.rows_without_errors` marks the rows that certainly break no error
  rule of `taskcli.conversation.check_messages`; every other row is left to `check_messages`,
  the one home of the rules, which says what is wrong with it.
- `json_lines` writes rows byte for byte as ``orjson.dumps`` writes the same conversation in a
  given `Layout`: the content strings are escaped by orjson itself, all in one call, and one
  Arrow cast copies them, with the fixed pieces between them, into lines in the order asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from taskcli.conversation import ROLES
from taskcli.export.formats import Layout
from taskcli.files.arrow_rules import message_fields, row_offsets

if TYPE_CHECKING:
    from taskcli.mixing.spec import Entry

BINARY = pa.large_binary()  # 64-bit offsets: a chunk of lines may pass 2 GB
_NOTHING = pa.scalar(b"", BINARY)
VIEW_INLINE = 12  # string views hold values this short themselves
MAX_VIEWED_BYTES = 2**31 - 1  # and point at most this far into a buffer


def message_heads(layout: Layout) -> pa.Array:
    """Each role's message up to its content's text, e.g. ``{"role":"user","content":"``."""
    return pa.array(
        [
            orjson.dumps({layout.role_key: name, layout.content_key: ""})[: -len(b'"}')]
            for name in layout.role_names
        ],
        BINARY,
    )


def source_tails(entry: Entry, indices: Any) -> pa.Array:
    """How each line of a `Layout.with_source` format ends: ``],"source":{...,"index":N...}}``.

    Cut from `Entry.origin` as orjson writes it, so it cannot differ from the row-by-row lines. The
    first ``,"index":0`` is the real one: inside a JSON string a quote is always escaped.
    """
    before, _, after = orjson.dumps(entry.origin(0)).partition(b',"index":0')
    numbers = pa.array(indices, pa.int64()).cast(pa.string()).cast(BINARY)
    return pc.binary_join_element_wise(
        pa.scalar(b'],"source":' + before + b',"index":', BINARY),
        numbers,
        pa.scalar(after + b"}", BINARY),
        _NOTHING,
    )


def json_lines(
    messages: pa.Array,
    layout: Layout,
    tails: pa.Array | None = None,
    order: np.ndarray | None = None,
) -> pa.Array:
    """The rows of `messages` as JSON lines in `layout`, each ending with a newline.

    Every row must pass `rows_without_errors`. `tails`, one per row, replaces `layout.tail`.
    `order` (row numbers) gives the order of the lines; by default it is the rows' own.

    A line is a run of pieces: before each message its head (with the line's head or the comma
    before it), then its escaped content, and after the last one the line's ending. The pieces
    are described as an Arrow string view array pointing into the few buffers that hold them,
    and one cast copies them all, in the order wanted, into the lines.
    """
    count = len(messages)
    order = np.arange(count) if order is None else np.asarray(order, dtype=np.int64)
    roles, contents = message_fields(messages)
    escaped = _escaped(contents)
    if count > 1 and _data_size(escaped) > MAX_VIEWED_BYTES:  # string views hold int32 offsets
        halves = np.array_split(order, 2)
        return pa.concat_arrays(
            [
                json_lines(messages.take(half), layout, None if tails is None else tails.take(half))
                for half in halves
            ]
        )
    endings = pa.array([b'"}' + layout.tail + b"\n"], BINARY)
    if tails is not None:
        close, newline = pa.scalar(b'"}', BINARY), pa.scalar(b"\n", BINARY)
        endings = pc.binary_join_element_wise(close, tails.cast(BINARY), newline, _NOTHING)
    heads = message_heads(layout)
    led = pc.binary_join_element_wise(pa.scalar(layout.head, BINARY), heads, _NOTHING)
    joined = pc.binary_join_element_wise(pa.scalar(b'"},', BINARY), heads, _NOTHING)
    leads = pa.concat_arrays([led, joined])  # a row's first message's head, then the others'

    offsets = row_offsets(messages)
    sizes = np.diff(offsets)
    row = np.repeat(np.arange(count), sizes)
    within = np.arange(len(row)) - offsets[row]  # each message's place in its row
    lead = np.asarray(pc.index_in(roles, value_set=pa.array(ROLES))) + len(ROLES) * (within > 0)
    ending = np.arange(count) if tails is not None else np.zeros(count, dtype=np.int64)

    # Where each row's pieces go: 2 per message and its ending, rows in `order`.
    pieces = 2 * sizes + 1
    first = np.empty(count, dtype=np.int64)
    first[order] = np.cumsum(pieces[order]) - pieces[order]
    views = np.empty((int(pieces.sum()), 4), dtype=np.int32)
    views[first[row] + 2 * within] = _views(leads, 0)[lead]
    views[first[row] + 2 * within + 1] = _views(escaped, 1)
    views[first + 2 * sizes] = _views(endings, 2)[ending]

    lengths = np.diff(value_offsets(leads))[lead] + np.diff(value_offsets(escaped))
    line_lengths = np.add.reduceat(lengths, offsets[:-1]) + np.diff(value_offsets(endings))[ending]
    line_offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(line_lengths[order], out=line_offsets[1:])
    data = [array.buffers()[2] for array in (leads, escaped, endings)]
    pieced = pa.Array.from_buffers(pa.binary_view(), len(views), [None, pa.py_buffer(views), *data])
    whole = pieced.cast(BINARY)
    return pa.Array.from_buffers(
        BINARY, count, [None, pa.py_buffer(line_offsets), whole.buffers()[2]]
    )


def _views(strings: pa.Array, buffer: int) -> np.ndarray:
    """Arrow string views of `strings` (large binary), as int32 quadruples: the length, then
    the bytes themselves if at most 12, else the first 4 bytes, `buffer` and the offset in it."""
    starts = value_offsets(strings)
    lengths = np.diff(starts)
    starts = starts[:-1]
    data = np.frombuffer(strings.buffers()[2] or b"\0", dtype=np.uint8)
    views = np.zeros((len(strings), 4), dtype=np.int32)
    views[:, 0] = lengths
    short = lengths <= VIEW_INLINE
    at = np.minimum(starts[short, None] + np.arange(VIEW_INLINE), len(data) - 1)
    inline = np.where(np.arange(VIEW_INLINE) < lengths[short, None], data[at], 0)
    views[short, 1:] = inline.astype(np.uint8).view(np.int32)
    long = ~short
    views[long, 1] = data[starts[long, None] + np.arange(4)].view(np.int32)[:, 0]
    views[long, 2] = buffer
    views[long, 3] = starts[long]
    return views


def value_offsets(strings: pa.Array) -> np.ndarray:
    """Where each value of a large binary array starts in its data buffer, and the last's end."""
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64)
    return offsets[strings.offset : strings.offset + len(strings) + 1]


def _data_size(strings: pa.Array) -> int:
    buffer = strings.buffers()[2]
    return 0 if buffer is None else buffer.size


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
