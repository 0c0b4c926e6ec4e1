"""`taskcli export`: a mixture spec turned into a training file, exactly and with a record.

    plan = build_plan(load_spec("mixture.yaml"), data_dir="data")
    manifest = export(plan, "train.jsonl", fmt="nanochat")

The row order is exactly `TaskMixture` (or `TaskSequence`) over the spec's entries, each entry
repeated in place `repeat` times. Each entry's rows are read in the order cheapest for its task
(storage order for Arrow data, `Task.iter_examples`), checked against the conversation rules,
serialised with `orjson`, and put back into the final order one run of positions at a time, so
memory stays flat however large the output. Tasks whose conversations are an Arrow column of
messages (SmolTalk) are checked and serialised a chunk of rows at a time (`taskcli.columnar`),
byte for byte as the row-by-row path would. The file is written through `atomic_output`: a
failure never leaves a partial file. Next to it goes ``OUT.manifest.json``: the resolved spec,
the row counts, the data files and the output's sha256, so "what exactly did my model train
on?" has an answer.

Formats, one line per conversation:

- ``messages``: ``{"messages": [...]}`` with assistant parts kept as lists.
- ``nanochat``: ``[{"role": ..., "content": "..."}, ...]``, every content a string (tool calls
  written ``<<expr=result>>``), as nanochat's CustomJSON loads it.
- ``openai``: ``{"messages": [...]}`` with string contents.
- ``sharegpt``: ``{"conversations": [{"from": "system" | "human" | "gpt", "value": "..."}]}``.
- ``full``: the task's whole conversation, metadata included, plus ``"source": {"task",
  "subset", "split", "index"}`` (and ``"params"`` when the entry sets any). ``index`` is the
  index in the whole task, before the entry's start/stop/step slice, so
  ``taskcli show TASK --subset S --split SP --index I`` shows that very row.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import hashlib
import itertools
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from taskcli import __version__, registry
from taskcli.atomic import atomic_output
from taskcli.conversation import ROLES, check_messages, first_error, flatten_content
from taskcli.errors import InvalidData, TaskcliError, UsageError
from taskcli.spec import Entry, Spec
from taskcli.tasks.common import Task, TaskMixture, TaskSequence

FORMATS = ("messages", "nanochat", "openai", "sharegpt", "full")
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}
# How the formats write a conversation of string contents, for rows written straight from Arrow
# (`taskcli.columnar.Layout`: head, tail, role key, content key, role names). `full` gives each
# row its own tail, the source.
LAYOUTS: dict[str, tuple[bytes, bytes, str, str, tuple[str, ...]]] = {
    "messages": (b'{"messages":[', b"]}", "role", "content", ROLES),
    "openai": (b'{"messages":[', b"]}", "role", "content", ROLES),
    "nanochat": (b"[", b"]", "role", "content", ROLES),
    "sharegpt": (
        b'{"conversations":[',
        b"]}",
        "from",
        "value",
        tuple(SHAREGPT_ROLES[role] for role in ROLES),
    ),
    "full": (b'{"messages":[', b"]}", "role", "content", ROLES),
}
BUCKET_ROWS = 8192  # output rows per bucket: what putting one run in order holds in memory
MAX_BUCKETS = 256  # scratch files open at once at most; beyond that, buckets grow
PENDING_ROWS = 4096  # lines made one by one are handed to the buckets this many at a time
ARROW_ROWS = 2048  # rows written from Arrow at a time: small enough to stay in the CPU caches
# Lines carry their newline from orjson on: no join has to add it. orjson escapes every control
# character inside strings, so a line holds no other newline (or carriage return).
APPEND_NEWLINE = orjson.OPT_APPEND_NEWLINE

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Plan:
    """The spec's tasks, built, and the mixture over them (each entry `repeat` times)."""

    spec: Spec
    tasks: tuple[Task, ...]  # one per spec entry
    mixture: TaskSequence
    owners: tuple[int, ...]  # the spec entry of each task number of the mixture

    @property
    def total(self) -> int:
        return len(self.mixture)

    def entry_rows(self) -> list[int]:
        """How many rows each spec entry puts into the mixture, repeats included."""
        pairs = zip(self.tasks, self.spec.entries, strict=True)
        return [len(task) * entry.repeat for task, entry in pairs]


def build_plan(spec: Spec, data_dir: str | os.PathLike[str] | None = None) -> Plan:
    """Create every entry's task; all entries that fail are reported together."""
    tasks: list[Task] = []
    errors: list[TaskcliError] = []
    for entry in spec.entries:
        try:
            task = registry.create_task(
                entry.task,
                entry.subset,
                entry.split,
                entry.params,
                data_dir=os.fspath(data_dir) if data_dir is not None else None,
                start=entry.start,
                stop=entry.stop,
                step=entry.step,
            )
            len(task)  # opens the data, so a missing dataset is reported here with the rest
            tasks.append(task)
        except (TaskcliError, ValueError) as error:
            kind = type(error) if isinstance(error, TaskcliError) else UsageError
            errors.append(kind(f"{entry.label}: {error}"))
    if errors:
        raise _combined(errors)
    members: list[Task] = []
    owners: list[int] = []
    for number, (task, entry) in enumerate(zip(tasks, spec.entries, strict=True)):
        members += [task] * entry.repeat  # in place, exactly like listing the entry again
        owners += [number] * entry.repeat
    if spec.mode == "sequence":
        mixture: TaskSequence = TaskSequence(members)
    else:
        mixture = TaskMixture(members, seed=spec.seed)
    return Plan(spec, tuple(tasks), mixture, tuple(owners))


def _combined(errors: list[TaskcliError]) -> TaskcliError:
    """One error for several: a usage error if any was one, else the first error's kind."""
    if len(errors) == 1:
        return errors[0]
    kind = UsageError if any(isinstance(e, UsageError) for e in errors) else type(errors[0])
    return kind(f"{len(errors)} entries failed:\n" + "\n".join(f"  {e}" for e in errors))


def check_format(fmt: str) -> None:
    if fmt not in FORMATTERS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` as (2, 4): the second of four shards, numbered from 1."""
    number, sep, count = text.partition("/")
    try:
        shard, shards = int(number), int(count)
    except ValueError:
        shard = shards = 0
    if not sep or shards < 1 or not 1 <= shard <= shards:
        raise UsageError(
            f"--shard must be K/N with 1 <= K <= N (shards are numbered from 1), got {text!r}."
        )
    return shard, shards


def selected_rows(
    total: int, limit: int | None = None, shard: tuple[int, int] | None = None
) -> range:
    """The positions of the final order to write: the first `limit`, then shard K of N of those.

    Shard K covers ``[(K-1)*n//N, K*n//N)``, so the shards are contiguous, differ in size by at
    most one row, and concatenated in order are exactly the unsharded output.
    """
    count = total if limit is None else min(limit, total)
    if shard is None:
        return range(count)
    k, n = shard
    return range((k - 1) * count // n, k * count // n)


def _flat(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": flatten_content(m["content"])} for m in messages]


def _source(entry: Entry, index: int) -> dict[str, Any]:
    source = {"task": entry.task, "subset": entry.subset, "split": entry.split, "index": index}
    if entry.params:
        source["params"] = entry.params
    return source


FORMATTERS: dict[str, Callable[[dict[str, Any], Entry, int], Any]] = {
    "messages": lambda conv, entry, index: {"messages": conv["messages"]},
    "nanochat": lambda conv, entry, index: _flat(conv["messages"]),
    "openai": lambda conv, entry, index: {"messages": _flat(conv["messages"])},
    "sharegpt": lambda conv, entry, index: {
        "conversations": [
            {"from": SHAREGPT_ROLES[m["role"]], "value": flatten_content(m["content"])}
            for m in conv["messages"]
        ]
    },
    "full": lambda conv, entry, index: {**conv, "source": _source(entry, index)},
}


def write_rows(
    plan: Plan,
    rows: range,
    fmt: str,
    write: Callable[[bytes], Any],
    progress: Progress | None = None,
    scratch: str | os.PathLike[str] | None = None,
    digest: Any = None,
) -> list[int]:
    """Write `rows` (positions in the final order) as JSON lines; returns each entry's count.

    `digest` (a hashlib object), when given, is updated with every byte written.

    The final order is a random permutation of data that may not fit in memory, so this takes
    two passes. First each entry's rows are read in the order cheapest for its task (storage
    order for Arrow data, one block at a time), checked, formatted and appended to scratch files
    in a temporary folder under `scratch`, one per run of consecutive output positions. Then each
    run is read back, put in order and written. Memory stays flat however large the output; and
    nothing is written before every row passed the conversation rules: the first that breaks
    them raises InvalidData, naming the entry and the row's index in its task.
    """
    check_format(fmt)
    if len(rows) == plan.total and plan.tasks:
        plan.tasks[0].read_ahead()  # its first data is decoded while the order is shuffled
    owners, indices = _placement(plan, rows)
    counts = [0] * len(plan.spec.entries)
    if not rows:
        return counts
    import numpy as np

    report = progress or (lambda count: None)
    # Millions of short-lived rows trigger full garbage collections; freezing what is alive now
    # (modules, the plan) spares each of them a walk over it, about a second per million rows.
    gc.freeze()
    try:
        with _buckets(len(rows), scratch) as buckets:
            for number, (entry, task) in enumerate(zip(plan.spec.entries, plan.tasks, strict=True)):
                places = np.flatnonzero(owners == number)  # positions within `rows`
                counts[number] = len(places)
                wanted = indices[places]
                if getattr(task, "messages_column", None) and fmt in LAYOUTS:
                    _add_from_arrow(entry, task, wanted, places, fmt, buckets, report)
                else:
                    _add_examples(entry, task, wanted, places, fmt, buckets, report)
            buckets.write_in_order(write, digest)
    finally:
        gc.unfreeze()
    return counts


def _add_examples(
    entry: Entry,
    task: Task,
    wanted: Any,
    places: Any,
    fmt: str,
    buckets: _Buckets,
    report: Progress,
) -> None:
    """Check, format and bucket the examples `wanted` of one entry's task, bound for `places`."""
    pending = _Pending(buckets)
    wanted_list, places_list = wanted.tolist(), places.tolist()  # numpy scalars cost per row
    for done, (i, conversation) in enumerate(task.iter_examples(wanted_list), start=1):
        pending.add(places_list[i], _line(entry, task, wanted_list[i], conversation, fmt))
        if done % PENDING_ROWS == 0:
            report(PENDING_ROWS)
    pending.flush()
    report(len(places) % PENDING_ROWS)


def _add_from_arrow(
    entry: Entry,
    task: Any,
    wanted: Any,
    places: Any,
    fmt: str,
    buckets: _Buckets,
    report: Progress,
) -> None:
    """`_add_examples` for a task whose conversations are an Arrow column (`messages_column`).

    Rows that plainly pass the conversation rules are written in bulk (`taskcli.columnar`);
    the others, rare, go one by one through the task and the rules, which say what is wrong.
    """
    import numpy as np
    import pyarrow as pa

    from taskcli import columnar

    layout = columnar.Layout(*LAYOUTS[fmt])
    pending = _Pending(buckets)
    for positions, messages in task.iter_message_arrays(wanted, ARROW_ROWS):
        fine = np.zeros(len(positions), dtype=bool)
        if columnar.holds_string_messages(messages):
            fine = columnar.rows_without_errors(messages)
        if fine.any():
            chunk = messages if fine.all() else messages.filter(pa.array(fine))
            tails = _full_tails(entry, wanted[positions[fine]]) if fmt == "full" else None
            bound_for = places[positions[fine]]
            order = buckets.run_order(bound_for)
            lines = columnar.json_lines(chunk, layout, tails, order)
            buckets.add(bound_for[order], lines)
        others = np.flatnonzero(~fine)
        if others.size:
            for position, value in zip(
                positions[others].tolist(), messages.take(others).to_pylist(), strict=True
            ):
                index = int(wanted[position])
                conversation = task.conversation_from_messages(value, index)
                pending.add(int(places[position]), _line(entry, task, index, conversation, fmt))
        report(len(positions))
    pending.flush()


def _line(entry: Entry, task: Task, index: int, conversation: dict[str, Any], fmt: str) -> bytes:
    """One example as a JSON line in `fmt`, checked first unless its task checked it already.

    (`Task.checks_messages`: that check would be a third of what a SmolTalk row costs.)
    """
    if not task.checks_messages:
        problem = first_error(check_messages(conversation.get("messages")))
        if problem is not None:
            raise InvalidData(
                f"{entry.label} example {index}: {problem.path}: {problem.message}. "
                "See it with `taskcli show`; nothing was written."
            )
    try:
        return orjson.dumps(FORMATTERS[fmt](conversation, entry, index), option=APPEND_NEWLINE)
    except orjson.JSONEncodeError as error:
        raise InvalidData(f"{entry.label} example {index}: {error}") from None


def _full_tails(entry: Entry, indices: Any) -> Any:
    """How each `full` line written from Arrow ends: ``],"source":{...,"index":N...}}``.

    Cut from `_source` as orjson writes it, so it cannot differ from the row-by-row lines. The
    first ``,"index":0`` is the real one: inside a JSON string a quote is always escaped.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from taskcli.columnar import BINARY

    before, _, after = orjson.dumps(_source(entry, 0)).partition(b',"index":0')
    numbers = pa.array(indices, pa.int64()).cast(pa.string()).cast(BINARY)
    return pc.binary_join_element_wise(
        pa.scalar(b'],"source":' + before + b',"index":', BINARY),
        numbers,
        pa.scalar(after + b"}", BINARY),
        pa.scalar(b"", BINARY),
    )


def _placement(plan: Plan, rows: range) -> tuple[Any, Any]:
    """For each position in `rows`: its spec entry, and its index in that entry's whole task."""
    import numpy as np

    mixture = plan.mixture
    if isinstance(mixture, TaskMixture):
        order = np.frombuffer(mixture.order, dtype=np.int64)[rows.start : rows.stop]
    else:
        order = np.arange(rows.start, rows.stop, dtype=np.int64)
    offsets = np.asarray(mixture.offsets, dtype=np.int64)
    member = np.searchsorted(offsets, order, side="right") - 1
    starts = np.asarray([task.start for task in mixture.tasks], dtype=np.int64)
    steps = np.asarray([task.step for task in mixture.tasks], dtype=np.int64)
    indices = starts[member] + (order - offsets[member]) * steps[member]
    return np.asarray(plan.owners, dtype=np.int64)[member], indices


class _Background:
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


class _Buckets:
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
        self.background = _Background(stack.enter_context(ThreadPoolExecutor(max_workers=1)))

    def run_order(self, positions: Any) -> Any:
        """The order that groups `positions` by run, keeping their order within a run."""
        import numpy as np

        return np.argsort(positions // self.rows_each, kind="stable")

    def add(self, positions: Any, lines: Any) -> None:
        """Add `lines` (an Arrow binary array, each line ending with its newline) at `positions`
        of the output, both already in `run_order`. Appending each run to its scratch file
        happens in the background, while the next lines are made."""
        import numpy as np

        from taskcli.columnar import value_offsets

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

        from taskcli.columnar import BINARY

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


class _Pending:
    """Lines made one by one, handed to the buckets `PENDING_ROWS` at a time."""

    def __init__(self, buckets: _Buckets) -> None:
        self.buckets = buckets
        self.positions: list[int] = []
        self.lines: list[bytes] = []

    def add(self, position: int, line: bytes) -> None:
        self.positions.append(position)
        self.lines.append(line)
        if len(self.lines) >= PENDING_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            import numpy as np
            import pyarrow as pa

            from taskcli.columnar import BINARY

            positions = np.asarray(self.positions, dtype=np.int64)
            order = self.buckets.run_order(positions)
            lines = pa.array([self.lines[i] for i in order.tolist()], BINARY)
            self.buckets.add(positions[order], lines)
            self.positions, self.lines = [], []


def _append_runs(lines: Any, runs: list[tuple[BinaryIO, int]]) -> None:
    """Append each run of `count` of `lines` in turn to its file."""
    from taskcli.columnar import value_offsets

    offsets = value_offsets(lines)
    view = memoryview(lines.buffers()[2])
    first = 0
    for file, count in runs:
        file.write(view[int(offsets[first]) : int(offsets[first + count])])
        first += count


def _joined(lines: Any) -> memoryview:
    """The lines of an Arrow binary array as one piece: a view of its data, not a copy."""
    from taskcli.columnar import value_offsets

    offsets = value_offsets(lines)
    return memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])]


@contextlib.contextmanager
def _buckets(count: int, scratch: str | os.PathLike[str] | None) -> Iterator[_Buckets]:
    """Buckets for `count` rows in a temporary folder under `scratch`, removed however we exit."""
    with (
        tempfile.TemporaryDirectory(
            dir=scratch, prefix=".taskcli-export-", suffix=".tmp"
        ) as folder,
        contextlib.ExitStack() as stack,
    ):
        yield _Buckets(count, Path(folder), stack)


def manifest_path(output: str | os.PathLike[str]) -> Path:
    """Where the manifest of `output` goes: ``train.jsonl`` -> ``train.jsonl.manifest.json``."""
    output = Path(output)
    return output.with_name(output.name + ".manifest.json")


def export(
    plan: Plan,
    output: str | os.PathLike[str],
    *,
    fmt: str = "messages",
    limit: int | None = None,
    shard: tuple[int, int] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any] | None:
    """Write the plan's rows to `output` ("-" for stdout) and return the manifest written.

    A file output appears only once complete, then its manifest; a ``.gz`` suffix compresses.
    Standard output gets no manifest (None is returned).
    """
    rows = selected_rows(plan.total, limit, shard)
    if os.fspath(output) == "-":
        _export_to_stdout(plan, rows, fmt, progress)
        return None
    target = Path(output)
    if target.is_dir():
        raise UsageError(f"output {target} is a folder; give a file name.")
    if not target.parent.is_dir():
        raise UsageError(f"output folder {target.parent} does not exist.")
    digest = hashlib.sha256()
    try:
        with atomic_output(target) as sink:
            compressed = isinstance(sink, gzip.GzipFile)
            # Uncompressed, the bytes written are the file's bytes: hash them on the way.
            written = write_rows(
                plan,
                rows,
                fmt,
                sink.write,
                progress,
                scratch=target.parent,
                digest=None if compressed else digest,
            )
        if compressed:
            with target.open("rb") as finished:
                digest = hashlib.file_digest(finished, "sha256")
        manifest = _manifest(plan, target, fmt, limit, shard, rows, written, digest.hexdigest())
        with atomic_output(manifest_path(target), compress=False) as sink:
            sink.write(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    except OSError as error:
        raise TaskcliError(f"cannot write {target}: {error.strerror or error}") from None
    return manifest


def _export_to_stdout(plan: Plan, rows: range, fmt: str, progress: Progress | None) -> None:
    stdout: BinaryIO = sys.stdout.buffer
    try:
        write_rows(plan, rows, fmt, stdout.write, progress)
        stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): that is its choice, not a failure.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())


def _manifest(
    plan: Plan,
    target: Path,
    fmt: str,
    limit: int | None,
    shard: tuple[int, int] | None,
    rows: range,
    written: list[int],
    digest: str,
) -> dict[str, Any]:
    spec = plan.spec
    entries = []
    for entry, count, in_file in zip(spec.entries, plan.entry_rows(), written, strict=True):
        entries.append(
            {"entry": entry.number, **entry.as_dict(), "rows": count, "written": in_file}
        )
    return {
        "taskcli_version": __version__,
        "spec": spec.as_dict(),
        "seed": spec.seed,
        "format": fmt,
        "limit": limit,
        "shard": None
        if shard is None
        else {"shard": shard[0], "of": shard[1], "start": rows.start, "stop": rows.stop},
        "entries": entries,
        "total": plan.total,
        "rows": len(rows),
        "data_files": data_files(plan),
        "output": {"file": target.name, "bytes": target.stat().st_size, "sha256": digest},
    }


def data_files(plan: Plan) -> list[dict[str, Any]]:
    """The files the plan reads, with sizes (and Hub revisions when the task knows them)."""
    files: dict[str, dict[str, Any]] = {}
    for task, entry in zip(plan.tasks, plan.spec.entries, strict=True):
        revision = getattr(task, "revision", None)
        for path in getattr(task, "data_files", None) or []:
            files.setdefault(str(path), {"path": str(path), "revision": revision})
        for param in registry.get_task_class(entry.task).params:
            value = entry.params.get(param.name)
            if param.is_path and isinstance(value, str) and os.path.isfile(value):
                files.setdefault(value, {"path": value, "revision": None})
    for record in files.values():
        with contextlib.suppress(OSError):
            record["size"] = os.path.getsize(record["path"])
    return [files[path] for path in sorted(files)]


def plan_summary(
    plan: Plan, limit: int | None = None, shard: tuple[int, int] | None = None
) -> dict[str, Any]:
    """What `--dry-run` shows: per entry its rows and share of the total, and the total."""
    total = plan.total
    rows = selected_rows(total, limit, shard)
    return {
        "spec": str(plan.spec.path),
        "mode": plan.spec.mode,
        "seed": plan.spec.seed,
        "entries": [
            {
                "entry": entry.number,
                "task": entry.task,
                "subset": entry.subset,
                "split": entry.split,
                "params": entry.params,
                "slice": [entry.start, entry.stop, entry.step],
                "repeat": entry.repeat,
                "rows": count,
                "share": count / total if total else 0.0,
            }
            for entry, count in zip(plan.spec.entries, plan.entry_rows(), strict=True)
        ],
        "total": total,
        "selected": {"start": rows.start, "stop": rows.stop, "rows": len(rows)},
    }


def print_plan(summary: dict[str, Any]) -> None:
    """The dry-run plan as a Rich table on stdout."""
    from rich.table import Table

    from taskcli.output import console

    table = Table(
        title=f"{summary['spec']}  ·  mode {summary['mode']}, seed {summary['seed']}",
        title_justify="left",
    )
    for column in ("entry", "task", "subset", "split", "slice", "repeat", "rows", "share"):
        numeric = column in ("repeat", "rows", "share")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    table.add_column("params", overflow="fold")
    for item in summary["entries"]:
        start, stop, step = item["slice"]
        table.add_row(
            f"tasks[{item['entry']}]",
            item["task"],
            item["subset"] or "-",
            item["split"] or "-",
            f"{start}:{'' if stop is None else stop}:{step}",
            str(item["repeat"]),
            f"{item['rows']:,}",
            f"{item['share']:.1%}",
            " ".join(f"{key}={value}" for key, value in item["params"].items()),
        )
    table.add_section()
    table.add_row("total", "", "", "", "", "", f"{summary['total']:,}", "100.0%", "")
    console.print(table)
    selected = summary["selected"]
    if selected["rows"] != summary["total"]:
        console.print(
            f"would write rows {selected['start']:,} to {selected['stop']:,} of the final order "
            f"({selected['rows']:,} rows)"
        )
