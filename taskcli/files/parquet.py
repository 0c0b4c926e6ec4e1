"""Rows of Parquet files, read a row group (or a slice of one) at a time: Hub datasets' local
copies, conversation files, shards in the Hugging Face layout.

Parquet files are read with Arrow directly, one row group at a time and only the row groups asked
for: nothing is copied into a cache, and showing one row decodes one row group. They are not
memory-mapped: parquet pages are decompressed and decoded into new Arrow buffers anyway, so a
mapping only adds the compressed file to the resident memory (a pass over a 1.2 GB copy peaked
at 1.4 GB RSS mapped, 0.25 GB read).
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskcli.errors import InvalidData

BLOCK_ROWS = 8192  # rows decoded at a time from a larger row group (`ParquetRows`)
STREAM_BUFFER_BYTES = 1 << 20  # read buffer while a large row group is streamed
FEW_ROWS = 16  # up to this many rows of one block are sliced out rather than taken
SCAN_ROWS = 2048  # rows of a block converted to Python at a time by `Rows.scan`
READ_AHEAD_BLOCKS = 2  # blocks `Rows.read_ahead` decodes before a scan starts
BLOCK_CACHE_BYTES = 256 << 20  # decoded parquet row groups kept for random reads
WHOLE_GROUP_BYTES = 64 << 20  # a row group up to this size (its footer says) is one block,
# decoded whole, even when it holds more than BLOCK_ROWS rows


@dataclass(frozen=True)
class DataFile:
    """A file rows were read from, with its size; usable wherever a path is."""

    path: str
    size: int

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path


class Rows:
    """The rows of one split, stored in blocks (parquet row groups or Arrow record batches).

    `take` reads each block it needs once and converts only the rows asked for, so a handful of
    rows costs a handful of blocks, and a permuted pass over everything costs one pass.
    """

    def __init__(
        self, block_sizes: Sequence[int], files: list[DataFile], revision: str | None
    ) -> None:
        import numpy as np

        self.starts = np.concatenate(([0], np.cumsum(block_sizes, dtype=np.int64)))
        self.num_rows = int(self.starts[-1])
        self.files = files
        self.revision = revision
        self._ahead: dict[int, Any] = {}  # blocks being decoded for the next scan (`read_ahead`)

    def block(self, number: int) -> Any:
        """Block `number` as an Arrow table or record batch."""
        raise NotImplementedError

    def take(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        """The rows at `indices` (any order, repeats allowed) as dicts, in that order."""
        import numpy as np

        wanted = np.asarray(indices, dtype=np.int64)
        if wanted.size == 0:
            return []
        if wanted.min() < 0 or wanted.max() >= self.num_rows:
            raise IndexError(f"row indices must be in 0..{self.num_rows - 1}")
        blocks = np.searchsorted(self.starts, wanted, side="right") - 1
        order = np.argsort(blocks, kind="stable")
        segments = np.split(order, np.flatnonzero(np.diff(blocks[order])) + 1)
        rows: list[Any] = [None] * len(wanted)
        for segment in segments:
            number = int(blocks[segment[0]])
            local = wanted[segment] - self.starts[number]
            block = self.block(number)
            if len(local) <= FEW_ROWS:  # slicing spares `show` the import of pyarrow.compute
                taken = [block.slice(i, 1).to_pylist()[0] for i in local.tolist()]
            else:
                taken = block.take(local).to_pylist()
            for position, row in zip(segment.tolist(), taken, strict=True):
                rows[position] = row
        return rows

    def row(self, index: int) -> dict[str, Any]:
        return self.take([index])[0]

    def read_block(self, number: int) -> Any:
        """Block `number` for one use, not kept: whole passes hold one block at a time."""
        return self.block(number)

    def read_ahead(self, count: int = READ_AHEAD_BLOCKS) -> None:
        """Start decoding the first `count` blocks in a thread, for a scan from the start that
        is about to begin: `scan_blocks` takes them up, so their decoding overlaps whatever the
        caller does first."""
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="taskcli-read-ahead")
        count = min(count, len(self.starts) - 1)
        self._ahead = {number: pool.submit(self.read_block, number) for number in range(count)}
        pool.shutdown(wait=False)  # the thread ends once the blocks are read

    def scan(self, indices: Sequence[int]) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(i, row indices[i])`` for every i, block by block in storage order (`scan_blocks`)."""
        for positions, rows in self.scan_blocks(indices, SCAN_ROWS):
            yield from zip(positions.tolist(), rows.to_pylist(), strict=True)

    def scan_blocks(
        self, indices: Sequence[int], chunk_rows: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        """``(positions, rows)``: Arrow rows ``indices[positions]``, in storage order.

        `positions` is a numpy array of places in `indices`; `rows` holds those rows in that
        order, at most `chunk_rows` at a time (default: all the block has). Each block is read
        once and let go (`blocks`), so a pass over every row of a split bigger than memory holds
        two blocks (where `take` keeps recent blocks, for random access), and index arrays of
        16 bytes a row.
        """
        import numpy as np

        wanted = np.asarray(indices, dtype=np.int64)
        if wanted.size == 0:
            return
        if wanted.min() < 0 or wanted.max() >= self.num_rows:
            raise IndexError(f"row indices must be in 0..{self.num_rows - 1}")
        order = np.argsort(wanted, kind="stable")
        blocks = np.searchsorted(self.starts, wanted[order], side="right") - 1
        bounds = np.flatnonzero(np.diff(blocks)) + 1
        numbers = blocks[[0, *bounds.tolist()]].tolist()
        segments = np.split(order, bounds)
        for number, segment, block in zip(numbers, segments, self.blocks(numbers), strict=True):
            size = chunk_rows or len(segment)
            for part in range(0, len(segment), size):
                positions = segment[part : part + size]
                local = wanted[positions] - self.starts[number]
                yield positions, _rows_at(block, local)

    def blocks(self, numbers: Sequence[int]) -> Iterator[Any]:
        """Blocks `numbers`, in that order, each read once and let go; the next ones are
        decoded in threads while this one is used (Arrow releases the GIL, so the decoding
        runs on another core), `readers(numbers)` at a time. A pass over every block
        (``range(len(self.starts) - 1)``) needs no index arrays: its memory is one block more
        than the readers, whatever the rows."""
        from concurrent.futures import ThreadPoolExecutor

        if not len(numbers):
            return
        ahead, self._ahead = self._ahead, {}
        readers = self.readers(numbers)
        with ThreadPoolExecutor(max_workers=readers) as reader:

            def read(number: int) -> Any:
                return ahead.pop(number, None) or reader.submit(self.read_block, number)

            upcoming = deque(map(read, numbers[:readers]))
            for step in range(len(numbers)):
                block = upcoming.popleft().result()
                if step + readers < len(numbers):
                    upcoming.append(read(numbers[step + readers]))
                yield block

    def readers(self, numbers: Sequence[int]) -> int:
        """Threads that may decode blocks `numbers` at once."""
        return 1


def _rows_at(block: Any, ascending: Any) -> Any:
    """The rows of `block` at `ascending` local indices: a zero-copy slice when they are one
    run (a whole pass), since `take` copies every buffer, lists of structs slowly. Indices may
    repeat (an entry repeated in a mixture), so a run is told by its steps, not its ends."""
    import numpy as np

    if (np.diff(ascending) == 1).all():
        return block.slice(int(ascending[0]), len(ascending))
    return block.take(ascending)


class ParquetRows(Rows):
    """Rows of local parquet files; only the footers are read until rows are asked for.

    A block is a row group of up to `WHOLE_GROUP_BYTES` (as its footer says), whatever its
    rows, or a slice of at most `BLOCK_ROWS` rows of a larger one: a file written as one row
    group of 200,000 rows would otherwise be decoded whole (1.7 GB for an export that holds
    200 MB with small groups). Slices come from a stream over the row group
    (`ParquetFile.iter_batches`), which decodes page by page; reading the slices in order, as a
    scan does, continues that stream instead of starting again. Only one stream runs at a time
    (a random read of a slice decodes those before it first), while whole row groups decode on
    two cores at once (`readers`).
    """

    def __init__(self, paths: Sequence[Path], revision: str | None = None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._files = []
        # (file number, row group, first row in the group, rows, rows in the group) per block
        self._blocks: list[tuple[int, int, int, int, int]] = []
        for path in paths:
            try:
                parquet = pq.ParquetFile(path)
                metadata = parquet.metadata
                groups = [metadata.row_group(g) for g in range(metadata.num_row_groups)]
            except (OSError, pa.ArrowException, ValueError) as error:
                raise InvalidData(
                    f"{path} is not a readable parquet file: {_one_line(error)}"
                ) from None
            for group, info in enumerate(groups):
                size = info.num_rows
                step = size if info.total_byte_size <= WHOLE_GROUP_BYTES else BLOCK_ROWS
                for first in range(0, size, max(step, 1)):
                    count = min(step, size - first)
                    self._blocks.append((len(self._files), group, first, count, size))
            self._files.append(parquet)
        files = [DataFile(str(path), os.path.getsize(path)) for path in paths]
        super().__init__([block[3] for block in self._blocks], files, revision)
        self._read: OrderedDict[int, Any] = OrderedDict()
        self._reading: dict[int, Any] = {}  # Futures of blocks being decoded
        self._read_lock = threading.Lock()  # guards both
        self._handles = threading.local()  # each thread's own open files (`_file`)
        self._stream: tuple[int, int, int, Any] | None = None  # file, group, next row, batches
        self._stream_lock = threading.Lock()  # a read-ahead and a scan may read at once
        self._stream_files: dict[int, Any] = {}

    @property
    def schema(self) -> Any:
        """The Arrow schema of the first file (a split's shards share it)."""
        return self._files[0].schema_arrow

    def block(self, number: int) -> Any:
        """Block `number`, kept among the most recently used while they fit in
        `BLOCK_CACHE_BYTES`: random reads all over a big split (`taskcli browse` scrolling a
        mixture) hold a bounded amount of memory, not every row group they ever touched.

        Threads may ask at once (`taskcli browse` reads rows in two): different blocks are
        decoded in parallel, and a block already being decoded is waited for, not decoded
        again."""
        from concurrent.futures import Future

        import pyarrow as pa

        with self._read_lock:
            table = self._read.get(number)
            if table is not None:
                self._read.move_to_end(number)
                return table
            pending = self._reading.get(number)
            mine = pending is None
            if pending is None:
                pending = self._reading[number] = Future()
        if not mine:
            return pending.result()  # the decoding thread's block, or its error
        try:
            table = self._decode(number)
        except BaseException as error:
            with self._read_lock:
                del self._reading[number]
            pending.set_exception(error)
            raise
        with self._read_lock:
            del self._reading[number]
            self._read[number] = table
            kept = sum(block.nbytes for block in self._read.values())
            while kept > BLOCK_CACHE_BYTES and len(self._read) > 1:
                _, dropped = self._read.popitem(last=False)
                kept -= dropped.nbytes
        pending.set_result(table)
        # Decoding leaves its scratch memory (and what the cache let go) with Arrow's
        # allocator, which keeps it for later: handed back now (a few ms), random reads hold
        # the cache and one decode, not every decode's peak (about 200 MB less for browse).
        pa.default_memory_pool().release_unused()
        return table

    def _file(self, file_number: int) -> Any:
        """This thread's handle on the file: one `ParquetFile` read by two threads at once
        fails, and separate handles decode in parallel (pyarrow releases the GIL), two row
        groups on two cores in about the time of one. The footer parsed at opening is shared."""
        import pyarrow.parquet as pq

        if threading.current_thread() is threading.main_thread():
            return self._files[file_number]
        handles = self._handles.__dict__.setdefault("files", {})
        parquet = handles.get(file_number)
        if parquet is None:
            opened = self._files[file_number]
            parquet = pq.ParquetFile(self.files[file_number].path, metadata=opened.metadata)
            handles[file_number] = parquet
        return parquet

    def readers(self, numbers: Sequence[int]) -> int:
        """Two when every block is a row group of its own: separate handles decode them in
        parallel (`_file`), and a pass then waits on decoding half as long (an export of
        Parquet shards is bound by it). The pieces of a larger row group come one after the
        other from one stream (`_slice`), which two threads would only take turns on."""
        return 2 if all(map(self._whole_group, numbers)) else 1

    def _whole_group(self, number: int) -> bool:
        """Block `number` is all of its row group (else a slice of a larger one)."""
        _, _, _, count, size = self._blocks[number]
        return count == size

    def read_block(self, number: int) -> Any:
        """The block, its strings checked to be UTF-8: a damaged file is `InvalidData` here,
        never a UnicodeDecodeError where its rows are used."""
        return self._decode(number)

    def _decode(self, number: int) -> Any:
        """Block `number`: its row group, or a slice of it."""
        import pyarrow as pa

        file_number, group, first, count, _ = self._blocks[number]
        try:
            if self._whole_group(number):
                block = self._file(file_number).read_row_group(group)
            else:
                block = self._slice(file_number, group, first, count)
            block.validate(full=True)
            return block
        except (OSError, pa.ArrowException, ValueError, StopIteration) as error:
            path = self.files[file_number].path
            reason = _one_line(error) or "the row group holds fewer rows than its metadata says"
            raise InvalidData(f"cannot read row group {group} of {path}: {reason}") from None

    def _streaming(self, file_number: int) -> Any:
        """The file opened to read a row group in pieces: buffered, without the pre-buffering
        that would load the row group's column chunks whole (1.1 GB peak instead of 0.4 GB
        for a 200,000-row group)."""
        import pyarrow.parquet as pq

        parquet = self._stream_files.get(file_number)
        if parquet is None:
            path = self.files[file_number].path
            parquet = pq.ParquetFile(path, buffer_size=STREAM_BUFFER_BYTES, pre_buffer=False)
            self._stream_files[file_number] = parquet
        return parquet

    def _slice(self, file_number: int, group: int, first: int, count: int) -> Any:
        """Rows ``first:first+count`` of a row group, from the stream over it."""
        with self._stream_lock:
            stream = self._stream
            if stream is None or stream[:3] != (file_number, group, first):
                batches = self._streaming(file_number).iter_batches(
                    batch_size=BLOCK_ROWS, row_groups=[group], use_threads=False
                )
                for _ in range(first // BLOCK_ROWS):  # a jump back or ahead decodes from the start
                    next(batches)
                stream = (file_number, group, first, batches)
            batch = next(stream[3])
            if batch.num_rows != count:
                raise ValueError(f"a slice of {batch.num_rows} rows where {count} were expected")
            self._stream = (file_number, group, first + count, stream[3])
            return batch


def _one_line(error: BaseException) -> str:
    """What Arrow says of an error, on one line (it spreads some over several)."""
    return " ".join(str(error).split())


class TableRows(Rows):
    """Rows of an Arrow table already open (the memory-mapped cache `datasets` loads)."""

    def __init__(self, table: Any, files: list[DataFile], revision: str | None = None) -> None:
        self._batches = [batch for batch in table.to_batches() if batch.num_rows]
        super().__init__([batch.num_rows for batch in self._batches], files, revision)

    def block(self, number: int) -> Any:
        return self._batches[number]


# --- conversation files in Parquet ------------------------------------------------------------

# The columns a Parquet file of conversations may keep them in, and the format each holds.
CONVERSATION_COLUMNS = {"messages": None, "conversations": "sharegpt"}
# A shard as the Hugging Face Hub names it: ``train-00000-of-00003.parquet``.
SHARD_NAME = re.compile(r"^(?P<split>[^/]+?)-\d{5}-of-\d{5}\.parquet$")
SHARD_DEPTH = 3  # folders below a target folder that are searched for shards
# A string column holding each row's other keys as a JSON object (how the `full` export format
# writes metadata and source), marked by this in its field's metadata: they are put back.
METADATA_COLUMN = "metadata"
ROW_KEYS = {b"taskcli": b"row keys as a JSON object"}


def split_shards(folder: Path) -> dict[str, list[Path]]:
    """The Parquet files under `folder` (``data/train-00000-of-00003.parquet`` and the like),
    by the split their names say, each split's in shard order; files not named as shards are
    the split ``train``."""
    splits: dict[str, list[Path]] = {}
    for depth in range(SHARD_DEPTH + 1):
        for path in sorted(folder.glob("/".join(["*"] * depth + ["*.parquet"]))):
            if path.is_file():
                named = SHARD_NAME.match(path.name)
                splits.setdefault(named["split"] if named else "train", []).append(path)
    return splits


def shards_of(folder: Path, split: str | None) -> tuple[list[Path], str]:
    """The shards of `split` (default: ``train``, or the only split there is) under `folder`."""
    from taskcli.errors import UsageError, suggest

    splits = split_shards(folder)
    if not splits:
        raise UsageError(
            f"{folder} is a folder without Parquet files.",
            hint="a folder target holds shards as `hf download` leaves them, such as "
            "data/train-00000-of-00003.parquet.",
        )
    if split is None:
        split = "train" if "train" in splits or len(splits) > 1 else next(iter(splits))
    if split not in splits:
        names = sorted(splits)
        raise UsageError(
            f"{folder} has no split {split!r}.{suggest(split, names)} Its splits: "
            f"{', '.join(names)}.",
            params=("split",),
        )
    return splits[split], split


def conversation_column(schema: Any, path: str) -> str:
    """The column a Parquet file keeps its conversations in; a file without one is an error
    that lists the columns it has."""
    for column in CONVERSATION_COLUMNS:
        if column in schema.names:
            return column
    tokens = " (a token export: taskcli reads conversations)" if "ids" in schema.names else ""
    raise InvalidData(
        f"{path} holds no conversations: it has no 'messages' or 'conversations' column"
        f"{tokens}. Its columns: {', '.join(schema.names) or 'none'}.",
        hint="a Parquet file of conversations keeps them in a 'messages' column (lists of "
        "role and content) or a ShareGPT 'conversations' column.",
    )


def record_of_row(row: dict[str, Any], keys_column: str | None = None) -> dict[str, Any]:
    """A Parquet row as the JSON record it stands for. Arrow gives every message every field
    of its struct, null where a message lacks it (a user message's ``tool_calls``); those are
    dropped, and a message's ``parts`` (how taskcli writes tool parts to Parquet, beside a null
    ``content``) become its content again. A `keys_column` (`row_keys_column`) holds more of the
    row's keys, as a JSON object: they take its place."""
    for column in CONVERSATION_COLUMNS:
        messages = row.get(column)
        if type(messages) is not list:
            continue
        for i, message in enumerate(messages):
            if type(message) is dict:
                kept = {k: v for k, v in message.items() if v is not None}
                parts = kept.pop("parts", None)
                if parts is not None and "content" not in kept:
                    kept["content"] = parts
                messages[i] = kept
    if keys_column is not None:
        keys = row.pop(keys_column)
        if keys is not None:
            row.update(_row_keys(keys, keys_column))
    return row


def _row_keys(text: str, column: str) -> dict[str, Any]:
    import orjson

    try:
        keys = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise InvalidData(
            f"the {column!r} column holds a row's keys, and not JSON: {error}"
        ) from None
    if type(keys) is not dict:
        raise InvalidData(f"the {column!r} column holds a row's keys, and not an object: {text}")
    return keys


def row_keys_column(schema: Any) -> str | None:
    """The column holding each row's other keys as a JSON object (`ROW_KEYS` marks it), if
    any: a `full` export."""
    for field in schema:
        if field.metadata and field.metadata.get(b"taskcli") == ROW_KEYS[b"taskcli"]:
            return field.name
    return None


def plain_messages(schema: Any, column: str) -> bool:
    """Whether the messages column is a list of ``{role, content}`` strings only, whose rows
    are JSON records as they are (no `record_of_row` needed)."""
    import pyarrow as pa

    kind = schema.field(column).type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        return False
    item = kind.value_type
    return pa.types.is_struct(item) and sorted(
        item.field(i).name for i in range(item.num_fields)
    ) in (
        ["content", "role"],
        ["from", "value"],
    )


def messages_only(schema: Any) -> bool:
    """Whether a schema holds nothing but a ``messages`` column of ``{role, content}`` strings,
    in that order (as taskcli writes them): every record is then exactly ``{"messages":
    [{"role": ..., "content": ...}, ...]}``, byte for byte what `taskcli.export.columnar` writes
    from the column alone."""
    import pyarrow as pa

    if schema.names != ["messages"]:
        return False
    kind = schema.field("messages").type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        return False
    item = kind.value_type
    strings = (pa.string(), pa.large_string())
    return (
        pa.types.is_struct(item)
        and [item.field(i).name for i in range(item.num_fields)] == ["role", "content"]
        and all(item.field(i).type in strings for i in range(item.num_fields))
    )


class ParquetConversations:
    """The conversation records of Parquet files (one file, or a split's shards): a row count
    from the footers alone, rows read at random (`records`) or in storage order (`scan`), one
    row group at a time, as the JSON records they stand for."""

    def __init__(self, paths: Sequence[Path], label: str) -> None:
        self.rows = ParquetRows(paths)
        schema = self.rows.schema
        self.column = conversation_column(schema, label)
        self.forced_format = CONVERSATION_COLUMNS[self.column]
        self._keys_column = row_keys_column(schema)
        self._plain = self._keys_column is None and plain_messages(schema, self.column)
        self.messages_only = messages_only(schema)
        self.files = self.rows.files

    def __len__(self) -> int:
        return self.rows.num_rows

    def message_arrays(
        self, indices: Sequence[int], chunk_rows: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        """``(positions, messages)``: the messages column of rows ``indices[positions]`` as one
        Arrow list array at a time, in storage order."""
        for positions, rows in self.rows.scan_blocks(indices, chunk_rows):
            column = rows.column(self.column)
            if hasattr(column, "chunks"):  # a table's column; a record batch's is one array
                column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
            yield positions, column

    def records(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        rows = self.rows.take(indices)
        keys = self._keys_column
        return rows if self._plain else [record_of_row(row, keys) for row in rows]

    def scan(self, indices: Sequence[int]) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(i, record indices[i])`` for every i, block by block in storage order."""
        for positions, rows in self.rows.scan_blocks(indices, SCAN_ROWS):
            yield from zip(positions.tolist(), self._records(rows), strict=True)

    def scan_all(
        self,
        on_bytes: Callable[[int], None] | None = None,
        *,
        allow_system: bool = True,
        records: bool = True,
    ) -> Iterator[tuple[int, dict[str, Any] | None, bytes | None]]:
        """``(row, record, known)`` for every row in storage order. `known` is the `duplicate`
        key of a row found in bulk to break no rule (`taskcli.files.arrow_rules`, system
        messages allowed or not), which need not be checked by itself; None for any other row.
        Without `records`, such a row of a file of messages only comes without its record
        (None): a check that keeps nothing needs none. `on_bytes` is told of the files' bytes
        in proportion to the rows read (a progress bar)."""
        total = len(self)
        size = sum(file.size for file in self.files)
        told = done = 0
        for block in self.rows.blocks(range(len(self.rows.starts) - 1)):
            for start in range(0, block.num_rows, SCAN_ROWS):
                chunk = block.slice(start, SCAN_ROWS)
                yield from zip(itertools.count(done), *self._judged(chunk, allow_system, records))
                done += chunk.num_rows
                if on_bytes is not None:
                    read = size * done // total
                    on_bytes(read - told)
                    told = read

    def _judged(
        self, rows: Any, allow_system: bool, records: bool
    ) -> tuple[list[Any], list[bytes | None]]:
        """The records of `rows` and their `known` keys (see `scan_all`), told from the Arrow
        column of messages in bulk; only a plain ``{role, content}`` column is, other rows are
        checked one by one."""
        if not self._plain or self.column != "messages":
            return self._records(rows), [None] * rows.num_rows
        import numpy as np
        import orjson

        from taskcli.files.arrow_rules import row_keys, rows_without_problems

        messages = rows.column(self.column)
        if hasattr(messages, "chunks"):  # a table's column; a record batch's is one array
            messages = messages.combine_chunks()
        fine = rows_without_problems(messages, allow_system=allow_system)
        if not self.messages_only:  # other columns: the whole record is the key
            converted = self._records(rows)
            keys = [orjson.dumps(r) if f else None for r, f in zip(converted, fine, strict=True)]
            return converted, keys
        keys = [None] * rows.num_rows
        found = row_keys(messages.filter(fine))
        for position, key in zip(np.flatnonzero(fine).tolist(), found, strict=True):
            keys[position] = key
        if records:
            return self._records(rows), keys
        converted = [None] * rows.num_rows
        doubtful = np.flatnonzero(~fine)
        if doubtful.size:
            for position, record in zip(
                doubtful.tolist(), self._records(rows.take(doubtful)), strict=True
            ):
                converted[position] = record
        return converted, keys

    def _records(self, rows: Any) -> list[dict[str, Any]]:
        """Arrow rows as the JSON records they stand for."""
        keys = self._keys_column
        converted = rows.to_pylist()
        return converted if self._plain else [record_of_row(row, keys) for row in converted]


def open_parquet(path: str, split: str | None = None) -> ParquetConversations:
    """The conversations of a Parquet file, or of a folder's shards of `split`."""
    location = Path(path)
    if location.is_dir():
        paths, _ = shards_of(location, split)
    else:
        paths = [location]
    return ParquetConversations(paths, path)
