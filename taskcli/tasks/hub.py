"""The base of every task read from a Hugging Face dataset: one split, shuffled with seed 42.

Example i is row ``perm[i]`` of the split, ``perm = numpy.random.default_rng(42).permutation(n)``:
exactly the order `datasets.Dataset.shuffle(seed=42)` gives, so `taskcli show gsm8k --index 17` is
the conversation a nanochat user trains on as example 17. A subclass names its repository and
metadata and says how one row becomes a conversation::

    class Riddles(HubTask):
        name = "riddles"
        repo = dataset = "someone/riddles"
        splits = ("train",)

        def row_to_conversation(self, row):
            return {"messages": [{"role": "user", "content": row["riddle"]},
                                 {"role": "assistant", "content": row["answer"]}]}

Rows come from `taskcli.hub.data` (a local copy under the data dir, else the Hub) and are read in
bulk: `get_examples` reads each row group it needs once. A dataset whose rows are conversations
already (a column of messages, SmolTalk's shape) subclasses `HubChatTask` instead, and `taskcli
export` writes it straight from Arrow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from taskcli.conversation import check_messages, first_error
from taskcli.errors import InvalidData
from taskcli.hub.data import DataFile, open_rows
from taskcli.tasks.capabilities import (
    ChecksMessages,
    DataFiles,
    MessagesColumn,
    ReadsAhead,
    ReadsInThreads,
)
from taskcli.tasks.common import Conversation, Task

SHUFFLE_SEED = 42


class HubTask(Task, ReadsInThreads, ReadsAhead, DataFiles):
    """A task over one split of one config of a Hub dataset, in seed-42 shuffled order.

    Its rows decode with a file handle per thread (`ParquetRows`), so it may be read in threads.
    """

    repo: ClassVar[str] = ""
    # The Hub config to read when the task has no subsets of its own.
    config: ClassVar[str] = "default"
    uses_data_dir: ClassVar[bool] = True

    def __init__(
        self,
        subset: str | None = None,
        split: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
    ) -> None:
        super().__init__(start, stop, step)
        self.subset, self.split = self.choose_subset_split(subset, split)
        self.rows = open_rows(self.repo, self.subset or self.config, self.split, data_dir)

        import numpy as np

        self.perm = np.random.default_rng(SHUFFLE_SEED).permutation(self.rows.num_rows)

    def row_to_conversation(self, row: dict[str, Any]) -> Conversation:
        """The conversation of one row of the dataset; raise InvalidData for a broken row."""
        raise NotImplementedError

    @property
    def label(self) -> str:
        return f"{self.repo} ({' / '.join(p for p in (self.subset, self.split) if p)})"

    @property
    def data_files(self) -> list[DataFile]:
        return self.rows.files

    @property
    def revision(self) -> str | None:
        return self.rows.revision

    def num_examples(self) -> int:
        return self.rows.num_rows

    def get_example(self, index: int) -> Conversation:
        return self.get_examples([index])[0]

    def get_examples(self, indices: Sequence[int]) -> list[Conversation]:
        wanted = self._checked(indices)
        row_numbers = self.perm[wanted]
        rows = self.rows.take(row_numbers)
        return [
            self._convert(row, number, index)
            for row, number, index in zip(rows, row_numbers.tolist(), wanted.tolist(), strict=True)
        ]

    def iter_examples(self, indices: Sequence[int]) -> Iterator[tuple[int, Conversation]]:
        """The examples in storage order, one block at a time (`Rows.scan`)."""
        wanted = self._checked(indices)
        row_numbers = self.perm[wanted]
        numbers, examples = row_numbers.tolist(), wanted.tolist()  # numpy scalars cost per row
        for i, row in self.rows.scan(row_numbers):
            yield i, self._convert(row, numbers[i], examples[i])

    def read_ahead(self) -> None:
        """Start decoding the first data blocks, for a pass over every example about to begin."""
        if len(self) == self.rows.num_rows:
            self.rows.read_ahead()

    def _checked(self, indices: Sequence[int]) -> Any:
        """`indices` as a numpy array, or IndexError naming the valid range."""
        import numpy as np

        wanted = np.asarray(indices, dtype=np.int64)
        if wanted.size and (wanted.min() < 0 or wanted.max() >= self.rows.num_rows):
            raise IndexError(
                f"example indices must be in 0..{self.rows.num_rows - 1} for {self.label}"
            )
        return wanted

    def _convert(self, row: dict[str, Any], row_number: int, index: int) -> Conversation:
        """`row_to_conversation`, with errors that say which row of which dataset broke."""
        try:
            return self.row_to_conversation(row)
        except InvalidData as error:
            raise InvalidData(f"{self.label} row {row_number} (example {index}): {error}") from None
        except KeyError as error:
            raise InvalidData(
                f"{self.label} row {row_number} (example {index}) has no column {error}; "
                f"its columns: {', '.join(row)}"
            ) from None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(subset={self.subset!r}, split={self.split!r}, "
            f"start={self.start}, stop={self.stop}, step={self.step})"
        )


class HubChatTask(HubTask, MessagesColumn, ChecksMessages):
    """A Hub task whose rows are conversations already: the `messages_column` of each row,
    ``[{"role": ..., "content": ...}, ...]``, checked against the conversation rules as it is
    read (a row that breaks one is an error naming the row, never silently dropped).

    Its conversation is exactly ``{"messages": <that column>}``, so `taskcli export` writes the
    rows straight from Arrow (`MessagesColumn`).
    """

    messages_column: ClassVar[str] = "messages"

    def row_to_conversation(self, row: dict[str, Any]) -> Conversation:
        column = row[self.messages_column]
        try:
            messages = [{"role": m["role"], "content": m["content"]} for m in column]
        except (TypeError, KeyError):  # not a list of full messages: the rules say what is wrong
            messages = column
        error = first_error(check_messages(messages))
        if error is not None:
            where = f" (at {error.path})" if error.path else ""
            raise InvalidData(f"[{error.rule}] {error.message}{where}")
        return {"messages": messages}

    def iter_message_arrays(
        self, indices: Sequence[int], chunk_rows: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        """The `messages_column` in storage order, one block at a time (`Rows.scan_blocks`)."""
        wanted = self._checked(indices)
        for positions, rows in self.rows.scan_blocks(self.perm[wanted], chunk_rows):
            column = rows.column(self.messages_column)
            if hasattr(column, "chunks"):  # a table's column; a record batch's is one array
                column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
            yield positions, column

    def conversation_from_messages(self, messages: Any, index: int) -> Conversation:
        return self._convert({self.messages_column: messages}, int(self.perm[index]), index)


class MultipleChoiceTask(HubTask):
    """A Hub task whose answer is one choice letter (ARC, MMLU)."""

    eval_type: ClassVar[str | None] = "categorical"

    def evaluate(self, conversation: Conversation, response: str) -> bool:
        """Whether the response, stripped, is exactly the reference letter."""
        return response.strip() == conversation["messages"][-1]["content"]
