"""Lines put into the final order with memory that stays flat however large the output.

The final order is a random permutation of data that may not fit in memory. Lines arrive in
whatever order their tasks read cheapest and go to scratch files in a temporary folder, one per
run of consecutive output positions (`Buckets.add`); afterwards each run is read back, put in
order and written (`Buckets.write_in_order`). Memory keeps 16 bytes a line: its position and
length. Disk writes, hashing and compression release the GIL, so they run in a background thread
while the next lines are made.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

BUCKET_ROWS = 8192  # output rows per bucket: what putting one run in order holds in memory
MAX_BUCKETS = 256  # scratch files open at once at most; beyond that, buckets grow


class Background:
    """Runs one job at a time in a thread: disk writes, compression and hashing release the GIL,
    so they overlap the next rows' work on a second core. Waiting re-raises a job's error."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.running: Future | None = None

    def submit(self, job: Callable[..., Any], *args: Any) -> None:
        self.wait()
        self.running = self.pool.submit(job, *args)

    def wait(self) -> None:
        if self.running is not None:
            running, self.running = self.running, None
            running.result()


class Buckets:
    """Output lines grouped by runs of consecutive positions, each run restored in order.

    Lines arrive as Arrow binary arrays and go straight to one scratch file per run; memory
    keeps only each line's position and length (16 bytes).
    """

    def __init__(self, count: int, folder: Path, stack: contextlib.ExitStack) -> None:
        self.rows_each = max(BUCKET_ROWS, -(-count // MAX_BUCKETS))
        size = -(-count // self.rows_each)
        self.files: list[BinaryIO] = [
            stack.enter_context((folder / str(number)).open("wb")) for number in range(size)
        ]
        self.positions: list[list[Any]] = [[] for _ in self.files]
        self.lengths: list[list[Any]] = [[] for _ in self.files]
        self.background = Background(stack.enter_context(ThreadPoolExecutor(max_workers=1)))

    def run_order(self, positions: Any) -> Any:
        """The order that groups `positions` by run, keeping their order within a run."""
        import numpy as np

        return np.argsort(positions // self.rows_each, kind="stable")

    def add(self, positions: Any, lines: Any) -> None:
        """Add `lines` (an Arrow binary array, each line ending with its newline) at `positions`
        of the output, both already in `run_order`. Appending each run to its scratch file
        happens in the background, while the next lines are made."""
        import numpy as np

        from taskcli.export.columnar import value_offsets

        numbers = positions // self.rows_each
        lengths = np.diff(value_offsets(lines))
        bounds = [0, *(np.flatnonzero(np.diff(numbers)) + 1).tolist(), len(numbers)]
        runs = []
        for start, stop in itertools.pairwise(bounds):
            number = int(numbers[start])
            self.positions[number].append(positions[start:stop])
            self.lengths[number].append(lengths[start:stop])
            runs.append((self.files[number], stop - start))
        self.background.submit(_append_runs, lines, runs)

    def write_in_order(self, write: Callable[[bytes], Any], digest: Any = None) -> None:
        """Each run's lines mapped from its file (the cached pages, not a copy), put in order,
        hashed and written.

        The hashing (which releases the GIL) happens here while the background thread writes
        the previous run.
        """
        import numpy as np
        import pyarrow as pa

        from taskcli.export.columnar import BINARY

        self.background.wait()
        for number, file in enumerate(self.files):
            file.close()
            if not self.positions[number]:
                continue
            with pa.memory_map(file.name) as scratch:
                data = scratch.read_buffer()
            os.unlink(file.name)
            lengths = np.concatenate(self.lengths[number])
            offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            lines = pa.Array.from_buffers(BINARY, len(lengths), [None, pa.py_buffer(offsets), data])
            order = np.empty(len(lengths), dtype=np.int64)
            order[np.concatenate(self.positions[number]) - number * self.rows_each] = np.arange(
                len(lengths)
            )
            ordered = _joined(lines.take(order))
            if digest is not None:
                digest.update(ordered)
            self.background.submit(write, ordered)
        self.background.wait()


class Pending:
    """Lines made one by one, handed to the buckets `ROWS` at a time."""

    ROWS = 4096

    def __init__(self, buckets: Buckets) -> None:
        self.buckets = buckets
        self.positions: list[int] = []
        self.lines: list[bytes] = []

    def add(self, position: int, line: bytes) -> None:
        self.positions.append(position)
        self.lines.append(line)
        if len(self.lines) >= self.ROWS:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            import numpy as np
            import pyarrow as pa

            from taskcli.export.columnar import BINARY

            positions = np.asarray(self.positions, dtype=np.int64)
            order = self.buckets.run_order(positions)
            lines = pa.array([self.lines[i] for i in order.tolist()], BINARY)
            self.buckets.add(positions[order], lines)
            self.positions, self.lines = [], []


def _append_runs(lines: Any, runs: list[tuple[BinaryIO, int]]) -> None:
    """Append each run of `count` of `lines` in turn to its file."""
    from taskcli.export.columnar import value_offsets

    offsets = value_offsets(lines)
    view = memoryview(lines.buffers()[2])
    first = 0
    for file, count in runs:
        file.write(view[int(offsets[first]) : int(offsets[first + count])])
        first += count


def _joined(lines: Any) -> memoryview:
    """The lines of an Arrow binary array as one piece: a view of its data, not a copy."""
    from taskcli.export.columnar import value_offsets

    offsets = value_offsets(lines)
    return memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])]


@contextlib.contextmanager
def scratch_buckets(count: int, scratch: str | os.PathLike[str] | None) -> Iterator[Buckets]:
    """Buckets for `count` rows in a temporary folder under `scratch`, removed however we exit."""
    with (
        tempfile.TemporaryDirectory(
            dir=scratch, prefix=".taskcli-export-", suffix=".tmp"
        ) as folder,
        contextlib.ExitStack() as stack,
    ):
        yield Buckets(count, Path(folder), stack)
