"""Conversations from a local file: the data people write by hand, and what other tools write.

A file is JSON lines (``.jsonl``, ``.jsonl.gz``, standard input), a JSON document (``.json``:
one conversation, or an array of them), a Parquet file, or a folder of Parquet shards as the
Hugging Face Hub lays them out (``data/train-00000-of-00003.parquet``; `split` picks the
shards). Its records may be in any of the formats of `taskcli.files.formats`, each read in its
own (``input_format`` forces one)::

    [{"role": "user", "content": "Who made you?"}, {"role": "assistant", "content": "..."}]
    {"messages": [{"role": "user", "content": "Hi"}, ...], "source": "identity"}
    {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}

Either way example i is ``{"messages": [...], **metadata}``. The file is read and checked by
`taskcli.files.reader` and `taskcli.files.rules`, exactly as `taskcli validate` reads and checks
it, so the two never disagree: any error fails the load, naming the first few as
``file:line: [rule] message``; warnings do not.

Only the file's line index is kept (`taskcli.files.reader.LineIndex`, 16 bytes a conversation),
or a Parquet file's footers, and an example is read again when asked for, so a multi-gigabyte
file costs megabytes. A ``.gz`` file (or standard input, ``-``, a FIFO) cannot be seeked, and a
JSON document is parsed whole, so their conversations are kept in memory as compact JSON.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from taskcli.conversation import RECORD_FORMATS
from taskcli.errors import InvalidData, UsageError
from taskcli.files.reader import (
    DOCUMENT,
    PARQUET,
    SHARDS,
    STDIN,
    LineIndex,
    container_of,
    display_name,
    is_regular,
    read_document,
)
from taskcli.tasks.capabilities import ChecksMessages, DataFiles, ReadsInThreads
from taskcli.tasks.common import Conversation, Param, Task

if TYPE_CHECKING:
    from taskcli.files.parquet import ParquetConversations
    from taskcli.files.rules import FileReport

SHOWN_ERRORS = 5


# ChecksMessages: every record passed `check_messages` when the file was loaded (any error
# fails the load), and a file changed since is refused. ReadsInThreads: the file is indexed
# when loaded, and each read opens it anew. DataFiles: a Parquet file's or folder's files.
class CustomJSON(Task, ChecksMessages, ReadsInThreads, DataFiles):
    """Conversations from a local file: ``-p path=FILE``, or in `show` just the path."""

    name = "customjson"
    description = "Conversations from a local file: JSONL, .json, Parquet or a folder of shards."
    dataset = "local file"
    params = (
        Param(
            "path",
            str,
            None,
            "The file or folder (required; `taskcli show FILE.jsonl` is shorthand).",
            is_path=True,
        ),
        Param(
            "input_format",
            str,
            None,
            "Read every record in this format instead of each in its own.",
            choices=RECORD_FORMATS,
        ),
    )

    @classmethod
    def choose_subset_split(
        cls, subset: str | None, split: str | None
    ) -> tuple[str | None, str | None]:
        """No subsets; a split names a folder's shards (``train-00000-of-00001.parquet``), which
        only the folder knows: it is checked when the folder is opened."""
        if subset is not None:
            raise UsageError(f"task {cls.name!r} has no subsets (got {subset!r}).")
        return None, split

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        input_format: str | None = None,
        split: str | None = None,
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
        self.input_format = input_format
        container = container_of(self.path)
        if split is not None and container != SHARDS:
            raise UsageError(
                f"{self.path} is one file: a split chooses the shards of a folder.",
                params=("split",),
            )
        self.split = split
        self.format: str | None = None  # the format its records were read in
        self._parquet: ParquetConversations | None = None
        self._index: LineIndex | None = None
        self._kept: list[bytes] | None = None
        self._load(container)

    def _load(self, container: str) -> None:
        """Check the whole file as `taskcli validate` does, keeping what reads it again: the
        line index of a plain file, a Parquet file's footers, or the conversations of a stream
        or a JSON document."""
        import orjson

        from taskcli.files.rules import check_file, check_records

        options: dict[str, Any] = {"forced": self.input_format}
        records = read_document(self.path) if container == DOCUMENT else None
        if container in (PARQUET, SHARDS):
            from taskcli.files.parquet import open_parquet

            self._parquet = open_parquet(self.path, self.split)
            self.input_format = options["forced"] = self.input_format or self._parquet.forced_format
        elif records is None and is_regular(self.path) and not self.path.endswith(".gz"):
            # A FIFO or a device is read once, as a stream: opening it again would wait for a
            # writer that is gone, or read other bytes.
            self._index = LineIndex(self.path)
        index, kept = self._index, []

        def remember(line: int, offset: int, conversation: Any) -> None:
            if index is not None:
                index.add(line, offset)
            else:
                kept.append(orjson.dumps(conversation))

        if self._parquet is not None:
            records = self.input_format not in (None, "messages")  # else rows known fine need none
            scanned = self._parquet.scan_all(records=records)
            report = check_records(scanned, self.path, **options)
        elif records is not None:
            items = ((i, record, None) for i, record in enumerate(records))
            report = check_records(items, self.path, on_valid=remember, **options)
        else:
            report = check_file(self.path, on_valid=remember, **options)
        if report.errors:
            raise invalid_file(report)
        self.format = report.format
        if index is not None or self._parquet is not None:
            self._stamp = _stamp(self.path)
        else:
            self._kept = kept
        if self._parquet is not None and self._parquet.messages_only:
            # SmolTalk's rows and nothing else, all checked: `taskcli export` may write them
            # straight from Arrow, as it writes SmolTalk's. This file's task takes on
            # `MessagesColumn` by defining its members; the class cannot, before a file is read.
            self.iter_message_arrays = self._message_arrays
            self.conversation_from_messages = self._conversation_from_messages

    def num_examples(self) -> int:
        if self._parquet is not None:
            return len(self._parquet)
        return len(self._index) if self._index is not None else len(self._kept or ())

    def get_example(self, index: int) -> Conversation:
        return self.get_examples([index])[0]

    def get_examples(self, indices: Sequence[int]) -> list[Conversation]:
        from taskcli.files.formats import decode

        if self._kept is not None:
            return [decode(self._kept[i]) for i in indices]
        self._check_unchanged()
        if self._parquet is not None:
            return [self._conversation(record) for record in self._parquet.records(indices)]
        assert self._index is not None
        forced = self.input_format
        return [decode(raw, forced) for _, raw, _ in self._index.read_many(indices)]

    def iter_examples(self, indices: Sequence[int]) -> Any:
        """In storage order, a row group at a time, for a Parquet file."""
        if self._parquet is None:
            yield from super().iter_examples(indices)
            return
        self._check_unchanged()
        for i, record in self._parquet.scan(indices):
            yield i, self._conversation(record)

    def _message_arrays(
        self, indices: Sequence[int], chunk_rows: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        """`MessagesColumn.iter_message_arrays`, for a file of messages only."""
        assert self._parquet is not None
        self._check_unchanged()
        yield from self._parquet.message_arrays(indices, chunk_rows)

    def _conversation_from_messages(self, messages: Any, index: int) -> Conversation:
        """`MessagesColumn.conversation_from_messages`: a row of messages only is its record."""
        return self._conversation({"messages": messages})

    def _conversation(self, record: Any) -> Conversation:
        from taskcli.files.formats import conversation_of

        return conversation_of(record, self.input_format)

    def _check_unchanged(self) -> None:
        if _stamp(self.path) != self._stamp:
            raise InvalidData(f"{self.path} changed after it was loaded; load it again.")

    @property
    def data_files(self) -> list[Any]:
        """A Parquet file's or folder's files (a JSON file is named by its `path` already)."""
        return list(self._parquet.files) if self._parquet is not None else []

    @property
    def revision(self) -> str | None:
        """None: a local file has no Hub commit."""
        return None

    def __repr__(self) -> str:
        return (
            f"CustomJSON(path={self.path!r}, start={self.start}, stop={self.stop}, "
            f"step={self.step})"
        )


def invalid_file(report: FileReport) -> InvalidData:
    """The error for a file with errors: what is wrong, its first few problems, and the command
    that lists them all. A file that is mostly not JSON says so first, in one line; a file that
    cannot be read is the error that says why, and an empty one that one problem."""
    from taskcli.files.rules import format_problem

    path = report.path
    if report.unreadable is not None:
        return report.unreadable
    if report.errors.counts.get("empty-file"):
        return InvalidData(format_problem(path, report.errors[0], report.unit))
    shown = "\n".join(
        "  " + format_problem(path, p, report.unit) for p in report.errors[:SHOWN_ERRORS]
    )
    more = len(report.errors) - SHOWN_ERRORS
    headline = report.not_json() or (
        f"{path}: {report.rejected:,} of {report.conversations:,} {report.unit}s are not valid "
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
