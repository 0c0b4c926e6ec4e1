"""`taskcli show`: a few conversations of any target, with where each one comes from.

    shown = show_rows(open_target("examples/identity.jsonl"), index=2, count=3)
    [row.index for row in shown.rows], shown.total, shown.note

A conversation file of up to 32 MiB is read and checked whole, like the `customjson` task reads
it. A bigger one is read only as far as the last row asked for
(`taskcli.files.reader.read_window`), and its remaining lines are counted at memory speed
instead of parsed, so ``--index 5`` on a
multi-gigabyte file answers at once; only the rows shown are then checked against the
conversation rules, and `taskcli validate` checks the rest. A mixture spec shows rows of its
final order, each with its source (entry, task, subset, split, index), exactly as the `full`
export format records it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from taskcli.errors import InvalidData, UsageError
from taskcli.files.reader import (
    DOCUMENT,
    PARQUET,
    SHARDS,
    STDIN,
    WHOLE_FILE_BYTES,
    container_of,
    display_name,
)
from taskcli.targets import FILE, Row, Target


@dataclass(frozen=True)
class Shown:
    """The rows of a `show`, with what is known about the whole target."""

    label: str
    rows: list[Row]
    requested: int
    total: int | None  # conversations in the target, when known
    lines: int | None = None  # physical lines of a file whose conversations were not all read
    format: str | None = None  # a file's format, as its records were read

    @property
    def note(self) -> str | None:
        """Why fewer rows than asked for are shown, or None."""
        if len(self.rows) >= self.requested or self.total is None:
            return None
        return (
            f"showing {len(self.rows)} of {self.requested}: {self.label} has "
            f"{self.total:,} example{'' if self.total == 1 else 's'}."
        )


def show_rows(target: Target, *, index: int = 0, count: int = 1) -> Shown:
    """Rows ``index .. index+count-1`` of an opened target (`taskcli.targets.open_target`)."""
    if index < 0:
        raise UsageError(f"index must be 0 or more, got {index}.")
    if target.kind == FILE and not is_small(target.text):
        forced = (target.params or {}).get("input_format")
        if container_of(target.text) in (PARQUET, SHARDS):
            return _parquet_rows(target, index, count, forced)
        return _file_rows(target.text, index, count, forced)
    total = target.total
    _check_index(target.label, index, total)
    rows = target.rows(range(index, min(index + count, total)))
    fmt = target.task.format if target.kind == FILE else None
    return Shown(target.label, rows, count, total, format=fmt)


def is_small(path: str) -> bool:
    """Whether a file is read and checked whole, as the `customjson` task reads it: it costs
    little, and then the total is exact and a broken line anywhere is reported. A Parquet file
    or folder is never read whole: its rows are read at random, its total is in its footers.
    A ``.json`` file always is: only the task tells a document (parsed whole) from JSON lines."""
    container = container_of(path)
    if container in (PARQUET, SHARDS):
        return False
    if container == DOCUMENT:
        return True
    try:
        return path == STDIN or os.path.getsize(path) <= WHOLE_FILE_BYTES
    except OSError:
        return True  # the task's own error says what is wrong with it


def _check_index(label: str, index: int, total: int) -> None:
    if index < total:
        return
    if not total:
        raise UsageError(f"{label} has no examples.")
    raise UsageError(
        f"index {index} is out of range: {label} has {total:,} examples "
        f"(indices 0 to {total - 1:,})."
    )


def _file_rows(path: str, index: int, count: int, forced: str | None) -> Shown:
    import orjson

    from taskcli.files.reader import count_lines, read_window

    label = display_name(path)
    window = read_window(path, index, index + count)
    if window.complete:
        _check_index(label, index, window.seen)
    rows, fmt = [], forced
    for line, raw in window.lines:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise _bad_line(label, line, f"[invalid-json] invalid JSON: {error.msg}") from None
        conversation, fmt = _checked(record, forced, fmt, label, line)
        rows.append(Row(index + len(rows), conversation, line=line))
    lines = None
    if not window.complete and path != STDIN and not path.endswith(".gz"):
        lines = window.physical + count_lines(path, window.offset)
    total = window.seen if window.complete else None
    return Shown(label, rows, count, total, lines, format=fmt)


def _parquet_rows(target: Target, index: int, count: int, forced: str | None) -> Shown:
    """Rows of a Parquet file or folder, read at random: the row groups that hold them."""
    from taskcli.files.parquet import open_parquet

    conversations = open_parquet(target.text, target.split)
    forced = forced or conversations.forced_format
    total = len(conversations)
    _check_index(target.label, index, total)
    rows, fmt = [], forced
    positions = range(index, min(index + count, total))
    for position, record in zip(positions, conversations.records(positions), strict=True):
        conversation, fmt = _checked(record, forced, fmt, target.label, f"row {position}")
        rows.append(Row(position, conversation))
    return Shown(target.label, rows, count, total, format=fmt)


def _checked(
    record: Any, forced: str | None, seen: str | None, label: str, where: int | str
) -> tuple[dict[str, Any], str | None]:
    """A record shown as its conversation, checked against the conversation rules first (the
    first error is the command's error), and the file's format with it (`formats.overall`)."""
    from taskcli.conversation import first_error
    from taskcli.files.formats import overall, read

    reading = read(record, forced)
    problem = first_error(reading.problems)  # a record that is no conversation has one
    if problem is not None:
        at = f" (at {problem.path})" if problem.path else ""
        raise _bad_line(label, where, f"[{problem.rule}] {problem.message}{at}")
    return reading.conversation or {}, overall(seen, reading.fmt)


def _bad_line(label: str, where: int | str, what: str) -> InvalidData:
    again = "-" if label == display_name(STDIN) else label
    return InvalidData(
        f"{label}:{where}: {what}", hint=f"`taskcli validate {again}` lists every problem."
    )
