"""Conversations from a local JSONL file, one per line: the data people write by hand.

Each line is a JSON array of messages (nanochat's CustomJSON shape) or an object with a
``"messages"`` key, whose other keys are kept as the conversation's metadata::

    [{"role": "user", "content": "Who made you?"}, {"role": "assistant", "content": "..."}]
    {"messages": [{"role": "user", "content": "Hi"}, ...], "source": "identity"}

Either way example i is ``{"messages": [...], **metadata}``. The file is read and checked by
`taskcli.files.reader` and `taskcli.files.rules`, exactly as `taskcli validate` reads and checks it,
so the two never disagree: any error fails the load, naming the first few as
``file:line: [rule] message``; warnings do not.

Only the file's line index is kept (`taskcli.files.reader.LineIndex`, 16 bytes a conversation) and
an example is parsed again when asked for, so a multi-gigabyte file costs megabytes. A ``.gz`` file
(or standard input, ``-``, a FIFO) cannot be seeked, so its conversations are kept in memory as
compact JSON instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from taskcli.errors import InvalidData, UsageError
from taskcli.files.reader import STDIN, LineIndex, decode, display_name, is_regular
from taskcli.tasks.common import Conversation, Param, Task

if TYPE_CHECKING:
    from taskcli.files.rules import FileReport

SHOWN_ERRORS = 5


class CustomJSON(Task):
    """Conversations from a local JSONL file: ``-p path=FILE.jsonl``, or in `show` just the path."""

    name = "customjson"
    description = "Conversations from a local JSONL file: message arrays or {'messages': ...}."
    source = "local file"
    # Every line passed `check_messages` when the file was loaded (any error fails the load),
    # and a file changed since is refused: an export need not check the rows again.
    checks_messages = True
    reads_in_threads = True  # the file is indexed when loaded; each read opens it anew
    params = (
        Param(
            "path",
            str,
            None,
            "The JSONL file (required; `taskcli show FILE.jsonl` is shorthand).",
            is_path=True,
        ),
    )

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
    ) -> None:
        if path is None:
            raise UsageError(
                "task 'customjson' needs a file: -p path=FILE.jsonl "
                "(or give the path itself: taskcli show FILE.jsonl)."
            )
        super().__init__(start=start, stop=stop, step=step)
        self.path = os.fspath(path)
        # A FIFO or a device is read once, as a stream: opening it again would wait for a
        # writer that is gone, or read other bytes.
        seekable = is_regular(self.path) and not self.path.endswith(".gz")
        self._index = LineIndex(self.path) if seekable else None
        self._kept: list[bytes] | None = None if seekable else []
        self._load()

    def _load(self) -> None:
        import orjson

        from taskcli.files.rules import check_file

        index, kept = self._index, self._kept

        def remember(line: int, offset: int, conversation: Any) -> None:
            if index is not None:
                index.add(line, offset)
            else:
                kept.append(orjson.dumps(conversation))

        report = check_file(self.path, on_valid=remember)
        if report.errors:
            raise invalid_file(report)
        if index is not None:
            self._stamp = _stamp(self.path)

    def num_examples(self) -> int:
        return len(self._index) if self._index is not None else len(self._kept)

    def get_example(self, index: int) -> Conversation:
        return self.get_examples([index])[0]

    def get_examples(self, indices: Sequence[int]) -> list[Conversation]:
        if self._index is None:
            return [decode(self._kept[i]) for i in indices]
        if _stamp(self.path) != self._stamp:
            raise InvalidData(f"{self.path} changed after it was loaded; load it again.")
        return [decode(raw) for _, raw, _ in self._index.read_many(indices)]

    def __repr__(self) -> str:
        return (
            f"CustomJSON(path={self.path!r}, start={self.start}, stop={self.stop}, "
            f"step={self.step})"
        )


def invalid_file(report: FileReport) -> InvalidData:
    """The error for a file with errors: what is wrong, its first few problems, and the command
    that lists them all. A file that is mostly not JSON says so first, in one line."""
    from taskcli.files.rules import format_problem

    path = report.path
    shown = "\n".join("  " + format_problem(path, p) for p in report.errors[:SHOWN_ERRORS])
    more = len(report.errors) - SHOWN_ERRORS
    headline = report.not_json() or (
        f"{path}: {report.rejected:,} of {report.conversations:,} lines are not valid "
        f"conversations ({len(report.errors):,} errors):"
    )
    again = STDIN if path == display_name(STDIN) else path
    return InvalidData(
        f"{headline}\n{shown}" + (f"\n  ... and {more:,} more" if more > 0 else ""),
        hint=f"`taskcli validate {again}` lists every problem.",
    )


def _stamp(path: str) -> tuple[int, int]:
    """Size and modification time: enough to notice that the file was rewritten."""
    try:
        status = os.stat(path)
    except OSError:
        raise InvalidData(f"{path} disappeared after it was loaded.") from None
    return status.st_size, status.st_mtime_ns
