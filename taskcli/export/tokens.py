"""The `tokens` format: every conversation as the token ids and loss mask nanochat's SFT
trains on, written as Parquet.

It goes through the same two passes as every export (`taskcli.export.writing.write_rows`):
`EntryTokens` renders an entry's examples in worker processes (`taskcli.tokens.render_batches`)
and buckets each as a binary record, a 16-byte header (token count, entry, index) then one
uint32 per token whose top bit says whether it is trained; `TokenParquet` takes the records back
in the final order and writes each run as a row group with the columns of `SCHEMA`. No token
passes through a Python object on its way, so the rendering is what costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from taskcli.export.lines import Progress, check_example
from taskcli.export.order import Buckets
from taskcli.spec import Entry
from taskcli.tasks.common import Task

if TYPE_CHECKING:
    from taskcli.tokenizer import Tokenizer
    from taskcli.tokens import TokenBatch

HEADER_WORDS = 4  # token count, entry number, index (low, high), as uint32 words
TRAINED = np.uint32(1 << 31)


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

    return pa.schema(
        [
            ("ids", pa.list_(pa.int32())),
            ("mask", pa.list_(pa.int8())),
            ("entry", pa.int32()),
            ("task", pa.string()),
            ("subset", pa.string()),
            ("split", pa.string()),
            ("index", pa.int64()),
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
        from taskcli.tokens import render_batches

        wanted_list = wanted.tolist()
        read: list[int] = []  # which of `wanted` each rendered conversation is, in order

        def conversations():
            for i, conversation in self.task.iter_examples(wanted_list):
                check_example(self.entry, self.task, wanted_list[i], conversation)
                read.append(i)
                yield conversation

        settings = self.settings
        for batch in render_batches(
            conversations(), settings.tokenizer, settings.max_tokens, settings.workers
        ):
            which = np.asarray(read[batch.start : batch.start + len(batch)], dtype=np.int64)
            bound_for = places[which]
            order = self.buckets.run_order(bound_for)
            records = encode(batch, self.entry.number, wanted[which], order)
            self.buckets.add(bound_for[order], records)
            self.report(len(batch))


def encode(batch: TokenBatch, entry: int, indices: Any, order: Any) -> Any:
    """The conversations of `batch`, taken in `order`, as records (see the module's docstring),
    one Arrow binary value each: one copy of the tokens, their headers between them."""
    import pyarrow as pa

    from taskcli.export.columnar import BINARY

    offsets = np.asarray(batch.offsets, dtype=np.int64)
    words = np.frombuffer(batch.ids, dtype=np.int32).view(np.uint32) | (
        np.frombuffer(batch.mask, dtype=np.uint8).astype(np.uint32) << 31
    )
    counts = np.diff(offsets)[order]
    indices = np.asarray(indices, dtype=np.int64)[order]
    headers = np.empty((len(counts), HEADER_WORDS), dtype=np.uint32)
    headers[:, 0] = counts
    headers[:, 1] = entry
    headers[:, 2] = indices & 0xFFFFFFFF
    headers[:, 3] = indices >> 32
    pieces = []
    for k, conversation in enumerate(np.asarray(order).tolist()):
        pieces.append(headers[k])
        pieces.append(words[offsets[conversation] : offsets[conversation + 1]])
    out = np.concatenate(pieces) if pieces else np.empty(0, dtype=np.uint32)
    bounds = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts + HEADER_WORDS, out=bounds[1:])
    return pa.Array.from_buffers(
        BINARY, len(counts), [None, pa.py_buffer(bounds * 4), pa.py_buffer(out)]
    )


class TokenParquet:
    """A `write(bytes)` callback for runs of token records, in the final order, that writes
    them to `stream` as Parquet row groups. `close` writes the footer."""

    def __init__(self, stream: BinaryIO, entries: tuple[Entry, ...]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.writer = pq.ParquetWriter(stream, schema(), compression="zstd")
        self.entries = {
            name: pa.array([getattr(entry, name) for entry in entries], pa.string())
            for name in ("task", "subset", "split")
        }

    def write(self, data: bytes | memoryview) -> None:
        import pyarrow as pa

        words = np.frombuffer(data, dtype=np.uint32)
        starts = []
        position = 0
        while position < len(words):  # records say their own length
            starts.append(position)
            position += HEADER_WORDS + int(words[position])
        first = np.asarray(starts, dtype=np.int64)
        counts = words[first].astype(np.int64)
        entry = words[first + 1].astype(np.int32)
        index = words[first + 2].astype(np.int64) | (words[first + 3].astype(np.int64) << 32)
        tokens = np.ones(len(words), dtype=bool)
        tokens[(first[:, None] + np.arange(HEADER_WORDS)).ravel()] = False
        token_words = words[tokens]
        list_offsets = pa.array(np.append(0, np.cumsum(counts)).astype(np.int32))
        ids = (token_words & ~TRAINED).astype(np.int32)
        mask = (token_words >> 31).astype(np.int8)
        picked = pa.array(entry)
        columns = [
            pa.ListArray.from_arrays(list_offsets, pa.array(ids)),
            pa.ListArray.from_arrays(list_offsets, pa.array(mask)),
            picked,
            *(self.entries[name].take(picked) for name in ("task", "subset", "split")),
            pa.array(index),
        ]
        self.writer.write_table(pa.Table.from_arrays(columns, schema=schema()))

    def close(self) -> None:
        self.writer.close()
