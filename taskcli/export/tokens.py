"""The `tokens` format: every conversation as the token ids and loss mask nanochat's SFT
trains on, written as Parquet.

It goes through the same two passes as every export (`taskcli.export.writing.write_rows`):
`EntryTokens` renders an entry's examples in worker processes
(`taskcli.training.render.render_batches`)
and buckets each as a binary record, a 16-byte header (token count, entry, index) then one
uint32 per token whose top bit says whether it is trained; `TokenParquet` takes the records back
in the final order and writes each run as a row group with the columns of `SCHEMA`. No token
passes through a Python object on its way, so the rendering is what costs.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from taskcli.export.lines import Progress, check_example
from taskcli.export.order import Background, Buckets
from taskcli.mixing.spec import Entry
from taskcli.tasks.common import Task

if TYPE_CHECKING:
    from taskcli.training.tokenizer import Tokenizer
    from taskcli.training.tokens import TokenBatch

HEADER_WORDS = 4  # token count, entry number, index (low, high), as uint32 words
TRAINED = np.uint32(1 << 31)
TOP_BYTE = 3 if sys.byteorder == "little" else 0  # where a uint32's top bit is, byte-wise


@dataclass(frozen=True)
class TokenSettings:
    """How conversations are rendered: the tokenizer, the cut, and the worker processes."""

    tokenizer: Tokenizer
    max_tokens: int
    workers: int

    def describe(self) -> dict[str, Any]:
        """What the manifest records of them."""
        return {"tokenizer": self.tokenizer.describe(), "max_tokens": self.max_tokens}


def schema() -> Any:
    """The Parquet columns: what a training loop reads (`ids`, `mask`) and where each row came
    from (`entry` of the spec, `task`, `subset`, `split`, `index` in the whole task)."""
    import pyarrow as pa

    def tokens_of(name: str, kind: Any) -> Any:  # every row has a list, every list item a value
        return pa.field(name, pa.list_(pa.field("element", kind, nullable=False)), nullable=False)

    return pa.schema(
        [
            tokens_of("ids", pa.int32()),
            tokens_of("mask", pa.int8()),
            pa.field("entry", pa.int32(), nullable=False),
            ("task", pa.string()),
            ("subset", pa.string()),
            ("split", pa.string()),
            pa.field("index", pa.int64(), nullable=False),
        ]
    )


@dataclass(frozen=True)
class EntryTokens:
    """One spec entry's examples rendered and bucketed as token records (cf. `EntryLines`)."""

    entry: Entry
    task: Task
    settings: TokenSettings
    buckets: Buckets
    report: Progress

    def add(self, wanted: Any, places: Any) -> None:
        """Render the examples `wanted` of the task and bucket them, bound for `places`."""
        from taskcli.training.render import render_batches

        wanted_list = wanted.tolist()
        read: list[int] = []  # which of `wanted` each rendered conversation is, in order

        def conversations():
            for i, conversation in self.task.iter_examples(wanted_list):
                check_example(self.entry, self.task, wanted_list[i], conversation)
                read.append(i)
                yield conversation

        settings = self.settings
        # Nothing past the cut is kept, so nothing past it needs encoding (measure_cut=False).
        for batch in render_batches(
            conversations(),
            settings.tokenizer,
            settings.max_tokens,
            settings.workers,
            measure_cut=False,
        ):
            which = np.asarray(read[batch.start : batch.start + len(batch)], dtype=np.int64)
            bound_for = places[which]
            order = self.buckets.run_order(bound_for)
            records = encode(batch, self.entry.number, wanted[which], order)
            self.buckets.add(bound_for[order], records)
            self.report(len(batch))


def encode(batch: TokenBatch, entry: int, indices: Any, order: Any) -> Any:
    """The conversations of `batch`, taken in `order`, as records (see the module's docstring),
    one Arrow binary value each. Built with whole-array operations, never a step per
    conversation: the records are laid out in batch order, then taken in `order`."""
    import pyarrow as pa

    from taskcli.export.columnar import BINARY

    offsets = np.asarray(batch.offsets, dtype=np.int64)
    counts = np.diff(offsets)
    starts = offsets[:-1] + HEADER_WORDS * np.arange(len(counts))  # each record's first word
    slots = (starts[:, None] + np.arange(HEADER_WORDS)).ravel()
    out = np.empty(len(batch.ids) + len(slots), dtype=np.uint32)
    is_token = np.ones(len(out), dtype=bool)
    is_token[slots] = False
    out[is_token] = np.frombuffer(batch.ids, dtype=np.uint32) | (
        np.frombuffer(batch.mask, dtype=np.uint8).astype(np.uint32) << 31
    )
    indices = np.asarray(indices, dtype=np.int64)
    out[slots] = np.column_stack(
        (counts, np.full(len(counts), entry), indices & 0xFFFFFFFF, indices >> 32)
    ).ravel()
    bounds = np.append(starts, len(out)) * 4
    records = pa.Array.from_buffers(
        BINARY, len(counts), [None, pa.py_buffer(bounds), pa.py_buffer(out)]
    )
    return records.take(pa.array(order))


def split_records(words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A run of buffered records (each a header of `HEADER_WORDS` words, then its token words)
    taken apart: each record's token count, entry and example index, and all token words in
    order (a copy)."""
    starts = []
    position = 0
    while position < len(words):  # records say their own length
        starts.append(position)
        position += HEADER_WORDS + int(words[position])
    first = np.asarray(starts, dtype=np.int64)
    counts = words[first].astype(np.int64)
    entry = words[first + 1].astype(np.int64)
    example = words[first + 2].astype(np.int64) | (words[first + 3].astype(np.int64) << 32)
    tokens = np.ones(len(words), dtype=bool)
    tokens[(first[:, None] + np.arange(HEADER_WORDS)).ravel()] = False
    return counts, entry, example, words[tokens]


class TokenParquet:
    """A `write(bytes)` callback for runs of token records, in the final order, that writes
    them to `stream` as Parquet row groups. `close` writes the footer.

    Encoding Parquet is most of what writing costs and releases the GIL, so it runs in a
    thread of its own while the caller takes the next run apart: two cores work on it.
    """

    def __init__(self, stream: BinaryIO, entries: tuple[Entry, ...]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.schema = schema()
        # Statistics of token lists help no reader, and a 0/1 mask compresses better than a
        # dictionary would encode it: both are left out, a fifth of the writing time.
        self.writer = pq.ParquetWriter(
            stream,
            self.schema,
            compression="zstd",
            use_dictionary=["ids.list.element", "task", "subset", "split"],
            write_statistics=["entry", "task", "subset", "split", "index"],
        )
        self.entries = {
            name: pa.array([getattr(entry, name) for entry in entries], pa.string())
            for name in ("task", "subset", "split")
        }
        self.encoding = Background(ThreadPoolExecutor(max_workers=1))

    def write(self, data: bytes | memoryview) -> None:
        import pyarrow as pa

        words = np.frombuffer(data, dtype=np.uint32)
        counts, entries, index, token_words = split_records(words)
        entry = entries.astype(np.int32)  # token_words is a copy: the id bits are cleared in place
        mask = token_words.view(np.uint8)[TOP_BYTE::4] >> 7  # each word's top bit
        ids = np.bitwise_and(token_words, ~TRAINED, out=token_words).view(np.int32)
        list_offsets = pa.array(np.append(0, np.cumsum(counts)).astype(np.int32))
        picked = pa.array(entry)
        columns = [
            pa.ListArray.from_arrays(list_offsets, pa.array(ids), type=self.schema[0].type),
            pa.ListArray.from_arrays(
                list_offsets, pa.array(mask.view(np.int8)), type=self.schema[1].type
            ),
            picked,
            *(self.entries[name].take(picked) for name in ("task", "subset", "split")),
            pa.array(index),
        ]
        self.encoding.submit(
            self.writer.write_table, pa.Table.from_arrays(columns, schema=self.schema)
        )

    def close(self) -> None:
        self.encoding.wait()
        self.encoding.pool.shutdown()
        self.writer.close()
