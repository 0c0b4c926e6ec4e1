"""What only some tasks can do: small capabilities, each taken on by the tasks that need it.

A task is `Task`'s small contract (nanochat's: `num_examples`, `get_example`, `evaluate`,
`eval_type`, plus slicing); every command works with that alone. A capability lets one command
do more, or do it faster, and the command asks for it with ``isinstance(task, Capability)``:

- what a task *has* is a `Protocol`: defining its members gives a task the capability (a plugin
  need not import anything), and inheriting it says so to readers and type checkers;
- what a task *promises* is a plain class to inherit: nothing in the code could show it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from taskcli.tasks.common import Conversation


@runtime_checkable
class MessagesColumn(Protocol):
    """Conversations that are exactly ``{"messages": [{"role", "content"}, ...]}`` from one Arrow
    column of the task's rows (`taskcli.tasks.hub.HubChatTask`: SmolTalk). `taskcli export`
    writes those rows straight from Arrow (`taskcli.export.columnar`), without a Python object
    per row, byte for byte as the row-by-row path would."""

    @abstractmethod
    def iter_message_arrays(
        self, indices: Sequence[int], chunk_rows: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        """``(positions, messages)``: the messages of the examples ``indices[positions]`` as an
        Arrow list array, in the order cheapest to read."""

    @abstractmethod
    def conversation_from_messages(self, messages: Any, index: int) -> Conversation:
        """The conversation of example `index` from its column's value alone (for the rare rows
        the bulk path leaves to the conversation rules)."""


@runtime_checkable
class RunsCode(Protocol):
    """Answers are programs (HumanEval): `taskcli eval` runs the programs `build_program` makes in
    the sandbox, many at a time, instead of calling `evaluate` one answer at a time."""

    @abstractmethod
    def build_program(self, conversation: Conversation, completion: str) -> str:
        """The program that passes when `completion` answers `conversation` rightly."""


@runtime_checkable
class ExampleIds(Protocol):
    """Examples carry their dataset's own id (HumanEval's ``"HumanEval/0"``, ARC's ``"id"``):
    `taskcli eval` then takes answers that name examples by it, as other harnesses write them,
    besides taskcli's index. `answer_id` is the conversation's key holding the id."""

    answer_id: str


@runtime_checkable
class ReadsAhead(Protocol):
    """Data that takes a while to decode (`HubTask`'s Parquet blocks): `taskcli export` calls
    `read_ahead` before a pass over every example, so the decoding overlaps its shuffle."""

    @abstractmethod
    def read_ahead(self) -> None:
        """Start getting the first examples of a whole pass ready, in the background."""


@runtime_checkable
class DataFiles(Protocol):
    """Examples read from files taskcli can name (`HubTask`'s Parquet or Arrow files): an export's
    manifest records them with their Hub revision, and `eval --details` refuses to overwrite
    them. Files named by `Param(is_path=True)` parameters count without this."""

    @property
    @abstractmethod
    def data_files(self) -> list[Any]:
        """The files (paths, or `taskcli.hub.data.DataFile`s)."""

    @property
    @abstractmethod
    def revision(self) -> str | None:
        """The Hub commit of the data, when known."""


class ChecksMessages:
    """A promise: every conversation the task returns has passed `check_messages` (a broken one
    raises InvalidData), as SmolTalk's rows and CustomJSON's file are checked when read.
    `taskcli export` then skips its own check, a third of what a SmolTalk row costs."""


class ReadsInThreads:
    """A promise: `get_examples` may run in several threads at once, because it keeps no state
    between calls (each call opens what it reads, or each thread has its own). `taskcli browse`
    then reads the task's rows in two threads; any other task is read by one at a time."""
