"""The `packed` format: the rows nanochat's SFT loader feeds the model, one Parquet row each.

Rows come in the order the loader yields them, rank by rank: for each rank its micro-batches
in turn, each of B rows, up to the run's end (the micro-batches trained before last_step) or,
for a rank that starves, up to the micro-batch from which every row would be padding. Columns
(`schema`): `rank`, `micro_batch`, `row` (0..B-1), `ids` (T + 1 int32, BOS-padded), `mask`
(T + 1 int8, 0 on the padding), `content_len` (tokens before the padding) and `segments` (per
conversation in the row: its `index` in the mixture, `task`, `subset`, `split`, `example` in the
whole task, `offset` in the row and `length`). nanochat's inputs are ``ids[:-1]``, its targets
``ids[1:]`` with -1 where ``mask[1:]`` is 0.

Where each conversation goes is known before any id is rendered (`PackedRun`), so the ids
take the path of the `tokens` format: each entry's placed conversations are rendered in worker
processes in their task's cheapest order (`taskcli.export.tokens.EntryTokens`), bucketed by
placement number and read back in placement order (`taskcli.export.order`); `PackedParquet`
lays the conversations of each row side by side, pads it, and writes row groups of a fixed
number of rows, so a rerun writes the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import numpy as np

from taskcli.errors import InvalidData
from taskcli.export.order import Background
from taskcli.export.tokens import TOP_BYTE, TRAINED, split_records

if TYPE_CHECKING:
    from taskcli.mixing.plan import Plan
    from taskcli.training.packing import PackRun, PackSettings, PackSummary
    from taskcli.training.tokenizer import Tokenizer

GROUP_TOKENS = 1 << 21  # ids per row group: 8 MB of int32 before compression


class PackedRun(Protocol):
    """What the format writes from: a target's run through the loader, as `taskcli pack`
    replays it (its `Packed`, handed over by the CLI: commands do not import one another).
    `entries`, `examples` and `lengths` have one value per mixture row."""

    @property
    def plan(self) -> Plan: ...
    @property
    def tokenizer(self) -> Tokenizer: ...
    @property
    def settings(self) -> PackSettings: ...
    @property
    def render_max_tokens(self) -> int: ...
    @property
    def run(self) -> PackRun: ...
    @property
    def summary(self) -> PackSummary: ...
    @property
    def entries(self) -> np.ndarray: ...
    @property
    def examples(self) -> np.ndarray: ...
    @property
    def lengths(self) -> np.ndarray: ...


def schema() -> Any:
    import pyarrow as pa

    def tokens_of(name: str, kind: Any) -> Any:
        return pa.field(name, pa.list_(pa.field("element", kind, nullable=False)), nullable=False)

    segment = pa.struct(
        [
            pa.field("index", pa.int64(), nullable=False),
            ("task", pa.string()),
            ("subset", pa.string()),
            ("split", pa.string()),
            pa.field("example", pa.int64(), nullable=False),
            pa.field("offset", pa.int32(), nullable=False),
            pa.field("length", pa.int32(), nullable=False),
        ]
    )
    return pa.schema(
        [
            pa.field("rank", pa.int32(), nullable=False),
            pa.field("micro_batch", pa.int32(), nullable=False),
            pa.field("row", pa.int32(), nullable=False),
            tokens_of("ids", pa.int32()),
            tokens_of("mask", pa.int8()),
            pa.field("content_len", pa.int32(), nullable=False),
            pa.field(
                "segments", pa.list_(pa.field("element", segment, nullable=False)), nullable=False
            ),
        ]
    )


@dataclass(frozen=True)
class PackedRows:
    """The rows to write, flat, in order: per row its rank, micro-batch, row in the batch,
    content length and the end of its segments (cumulative); per segment (placement) its
    mixture index and offset. `ranks` says, per rank, how many micro-batches are written and
    whether they stop at the run's end or at the rank's starvation."""

    rank: np.ndarray
    micro_batch: np.ndarray
    row: np.ndarray
    content: np.ndarray
    segment_end: np.ndarray
    index: np.ndarray
    offset: np.ndarray
    ranks: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, packed: PackedRun) -> PackedRows:
        run, batch = packed.run, packed.settings.device_batch_size
        parts: list[tuple[np.ndarray, ...]] = []
        ranks = []
        placed = 0
        for loader, fed in zip(run.loaders, run.fed_micro_batches, strict=True):
            starved = loader.starved_from
            micro_batches = fed if starved is None else min(fed, starved)
            rows = micro_batches * batch
            content, ends, index, offset = loader.flat_rows(rows)
            missing = rows - len(content)  # rows past the starvation point: all padding
            ends = np.concatenate((ends, np.full(missing, ends[-1] if len(ends) else 0)))
            numbers = np.arange(rows, dtype=np.int64)
            parts.append(
                (
                    np.full(rows, loader.rank, dtype=np.int32),
                    (numbers // batch).astype(np.int32),
                    (numbers % batch).astype(np.int32),
                    np.concatenate((content, np.zeros(missing, dtype=np.int64))),
                    ends + placed,
                    index,
                    offset,
                )
            )
            placed += len(index)
            stops_early = starved is not None and starved <= fed
            ranks.append(
                {
                    "rank": loader.rank,
                    "micro_batches": micro_batches,
                    "rows": rows,
                    "up_to": "starvation" if stops_early else "last_step",
                    "starved_from": starved,
                    "last_step_micro_batch": None
                    if loader.last_step_from is None
                    else loader.last_step_from + 1,
                }
            )
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty, empty, empty, empty, empty, empty, ())
        columns = [np.concatenate(column) for column in zip(*parts, strict=True)]
        return cls(*columns, ranks=tuple(ranks))

    @property
    def rows(self) -> int:
        return len(self.rank)

    @property
    def placements(self) -> int:
        return len(self.index)


class PackedParquet:
    """A `write(bytes)` callback for token records in placement order (`EntryTokens`'s) that
    writes `rows` as Parquet, a fixed number of rows per row group; `close` writes the rest (the
    padding rows after the last placement too) and the footer.

    Each record is checked against what the loader was replayed with (its entry, example and
    length): data that changed between the two passes is an error, never a wrong row.
    """

    def __init__(self, stream: BinaryIO, packed: PackedRun, rows: PackedRows) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.schema = schema()
        self.writer = pq.ParquetWriter(
            stream,
            self.schema,
            compression="zstd",
            use_dictionary=[
                "ids.list.element",
                "segments.list.element.task",
                "segments.list.element.subset",
                "segments.list.element.split",
            ],
            write_statistics=["rank", "micro_batch", "row", "content_len"],
        )
        entries = packed.plan.spec.entries
        self.names = {
            name: pa.array([getattr(entry, name) for entry in entries], pa.string())
            for name in ("task", "subset", "split")
        }
        self.packed, self.rows = packed, rows
        self.capacity = packed.settings.row_capacity
        self.bos = packed.tokenizer.padding_id
        self.group_rows = max(1, GROUP_TOKENS // self.capacity)
        self.words: list[np.ndarray] = []  # token words of placements not yet written
        self.counts: list[np.ndarray] = []
        self.received = 0  # placements received
        self.next_row = 0
        self.encoding = Background(_pool())

    def write(self, data: bytes | memoryview) -> None:
        counts, entry, example, token_words = split_records(np.frombuffer(data, dtype=np.uint32))
        self._check(counts, entry, example)
        self.words.append(token_words)
        self.counts.append(counts)
        self.received += len(counts)
        self._write_ready(final=False)

    def close(self) -> None:
        self._write_ready(final=True)
        self.encoding.wait()
        self.encoding.pool.shutdown()
        self.writer.close()

    def _check(self, counts: np.ndarray, entry: np.ndarray, example: np.ndarray) -> None:
        placement = slice(self.received, self.received + len(counts))
        index = self.rows.index[placement]
        packed = self.packed
        same = (
            (packed.entries[index] == entry)
            & (packed.examples[index] == example)
            & (packed.lengths[index] == counts)
        )
        if not same.all():
            wrong = int(index[np.argmin(same)])
            raise InvalidData(
                f"mixture row {wrong} renders to other tokens than were measured for packing: "
                "its data changed while the export ran; nothing was written."
            )

    def _write_ready(self, final: bool) -> None:
        """Write every whole group of rows whose placements have all arrived (all rows, at
        the end)."""
        rows = self.rows
        while self.next_row < rows.rows:
            stop = min(self.next_row + self.group_rows, rows.rows)
            if not final and (stop - self.next_row < self.group_rows or not self._arrived(stop)):
                return
            self._write_group(self.next_row, stop)
            self.next_row = stop

    def _arrived(self, stop: int) -> bool:
        return int(self.rows.segment_end[stop - 1]) <= self.received

    def _write_group(self, start: int, stop: int) -> None:
        import pyarrow as pa

        rows, capacity = self.rows, self.capacity
        first = int(rows.segment_end[start - 1]) if start else 0
        last = int(rows.segment_end[stop - 1])
        words, counts = self._take(last - first)
        content = rows.content[start:stop]
        if int(counts.sum()) != int(content.sum()):
            raise InvalidData("the rendered conversations do not fill their packed rows")
        size = stop - start
        filled = np.arange(capacity)[None, :] < content[:, None]
        ids = np.full((size, capacity), self.bos, dtype=np.int32)
        mask = np.zeros((size, capacity), dtype=np.int8)
        ids[filled] = np.bitwise_and(words, ~TRAINED).view(np.int32)
        mask[filled] = (words.view(np.uint8)[TOP_BYTE::4] >> 7).view(np.int8)
        list_offsets = pa.array(np.arange(0, size * capacity + 1, capacity, dtype=np.int32))
        index = rows.index[first:last]
        entry = pa.array(self.packed.entries[index].astype(np.int32))
        segments = pa.StructArray.from_arrays(
            [
                pa.array(index),
                *(self.names[name].take(entry) for name in ("task", "subset", "split")),
                pa.array(self.packed.examples[index].astype(np.int64)),
                pa.array(rows.offset[first:last].astype(np.int32)),
                pa.array(counts.astype(np.int32)),
            ],
            fields=list(self.schema.field("segments").type.value_type),
        )
        segment_offsets = np.concatenate(([first], rows.segment_end[start:stop])) - first
        columns = [
            pa.array(rows.rank[start:stop].astype(np.int32)),
            pa.array(rows.micro_batch[start:stop].astype(np.int32)),
            pa.array(rows.row[start:stop].astype(np.int32)),
            pa.ListArray.from_arrays(
                list_offsets, pa.array(ids.ravel()), type=self.schema.field("ids").type
            ),
            pa.ListArray.from_arrays(
                list_offsets, pa.array(mask.ravel()), type=self.schema.field("mask").type
            ),
            pa.array(content.astype(np.int32)),
            pa.ListArray.from_arrays(
                pa.array(segment_offsets.astype(np.int32)),
                segments,
                type=self.schema.field("segments").type,
            ),
        ]
        table = pa.Table.from_arrays(columns, schema=self.schema)
        self.encoding.submit(self.writer.write_table, table)

    def _take(self, placements: int) -> tuple[np.ndarray, np.ndarray]:
        """The token words and counts of the next `placements` placements received."""
        counts = np.concatenate(self.counts) if self.counts else np.zeros(0, dtype=np.int64)
        words = np.concatenate(self.words) if self.words else np.zeros(0, dtype=np.uint32)
        tokens = int(counts[:placements].sum())
        self.counts, self.words = [counts[placements:]], [words[tokens:]]
        return words[:tokens], counts[:placements]


def _pool() -> Any:
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=1)


def write_packed(
    packed: PackedRun,
    rows: PackedRows,
    stream: BinaryIO,
    tokens: Any,
    progress: Any = None,
    scratch: Any = None,
    on_phase: Any = None,
) -> list[int]:
    """Render the placed conversations again (with `tokens`, a `TokenSettings`) and write
    `rows` to `stream` as Parquet; returns each spec entry's placements."""
    from taskcli.export.order import scratch_buckets
    from taskcli.export.tokens import EntryTokens

    plan = packed.plan
    report = progress or (lambda count: None)
    phase = on_phase or (lambda name: None)
    sink = PackedParquet(stream, packed, rows)
    owners = packed.entries[rows.index]
    counts = [0] * len(plan.spec.entries)
    with scratch_buckets(rows.placements, scratch) as buckets:
        phase("rendering")
        for number, (entry, task) in enumerate(zip(plan.spec.entries, plan.tasks, strict=True)):
            places = np.flatnonzero(owners == number)
            counts[number] = len(places)
            if len(places):
                examples = packed.examples[rows.index[places]]
                EntryTokens(entry, task, tokens, buckets, report).add(examples, places)
        phase("packing")
        buckets.write_in_order(sink.write)
    sink.close()
    return counts
