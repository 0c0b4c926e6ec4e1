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

from taskcli.errors import InvalidData, UsageError
from taskcli.files.reader import STDIN, WHOLE_FILE_BYTES, display_name
from taskcli.targets import FILE, Row, Target


@dataclass(frozen=True)
class Shown:
    """The rows of a `show`, with what is known about the whole target."""

    label: str
    rows: list[Row]
    requested: int
    total: int | None  # conversations in the target, when known
    lines: int | None = None  # physical lines of a file whose conversations were not all read

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
        return _file_rows(target.text, index, count)
    total = target.total
    _check_index(target.label, index, total)
    rows = target.rows(range(index, min(index + count, total)))
    return Shown(target.label, rows, count, total)


def is_small(path: str) -> bool:
    """Whether a file is read and checked whole, as the `customjson` task reads it: it costs
    little, and then the total is exact and a broken line anywhere is reported."""
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


def _file_rows(path: str, index: int, count: int) -> Shown:
    import orjson

    from taskcli.conversation import check_record, first_error
    from taskcli.files.reader import count_lines, normalise, read_window

    label = display_name(path)
    window = read_window(path, index, index + count)
    if window.complete:
        _check_index(label, index, window.seen)
    rows = []
    for line, raw in window.lines:
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise _bad_line(label, line, f"[invalid-json] invalid JSON: {error.msg}") from None
        problem = first_error(check_record(record))
        if problem is not None:
            where = f" (at {problem.path})" if problem.path else ""
            raise _bad_line(label, line, f"[{problem.rule}] {problem.message}{where}")
        rows.append(Row(index + len(rows), normalise(record), line=line))
    lines = None
    if not window.complete and path != STDIN and not path.endswith(".gz"):
        lines = window.physical + count_lines(path, window.offset)
    return Shown(label, rows, count, window.seen if window.complete else None, lines)


def _bad_line(label: str, line: int, what: str) -> InvalidData:
    again = "-" if label == display_name(STDIN) else label
    return InvalidData(
        f"{label}:{line}: {what}", hint=f"`taskcli validate {again}` lists every problem."
    )
