"""An entry's examples turned into JSON lines, each bound for its place in the final order.

Two ways, one result (`EntryLines`): row by row (`add_examples`: the task's conversations,
checked against the conversation rules, formatted by the format's `row` and serialised with
orjson), or, for tasks whose conversations are an Arrow column of messages and formats with a
`Layout`, in bulk (`add_from_arrow`, `taskcli.export.columnar`), byte for byte as the row-by-row
path would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from taskcli.conversation import check_messages, first_error
from taskcli.errors import InvalidData
from taskcli.export.formats import ExportFormat
from taskcli.export.order import Buckets, Pending
from taskcli.files.formats import Loss, Written
from taskcli.mixing.spec import Entry
from taskcli.tasks.capabilities import ChecksMessages, MessagesColumn
from taskcli.tasks.common import Task

ARROW_ROWS = 2048  # rows written from Arrow at a time: small enough to stay in the CPU caches
# Lines carry their newline from orjson on: no join has to add it. orjson escapes every control
# character inside strings, so a line holds no other newline (or carriage return).
APPEND_NEWLINE = orjson.OPT_APPEND_NEWLINE

Progress = Callable[[int], None]


@dataclass
class Tally:
    """What the rows made hold beyond plain strings, gathered as they are made (row by row: the
    bulk path writes string messages only): the rows whose tool parts the format wrote as text
    (`loss`, told to the user and recorded in the manifest), and for a Parquet output the
    optional message fields some row uses (`fields`, which its schema needs)."""

    loss: Loss
    fields: set[str] | None = None

    def record(self, written: Written) -> Any:
        """`written`'s record, with what it holds counted."""
        if self.fields is not None:
            from taskcli.export.parquet import optional_fields

            self.fields |= optional_fields(written.record)
        return self.loss.count(written)


@dataclass(frozen=True)
class EntryLines:
    """One spec entry's examples on their way to the buckets, in `fmt`, reporting progress and
    counting into `tally`."""

    entry: Entry
    task: Task
    fmt: ExportFormat
    buckets: Buckets
    report: Progress
    tally: Tally

    def add(self, wanted: Any, places: Any) -> None:
        """Check, format and bucket the examples `wanted` of the task, bound for `places`."""
        if isinstance(self.task, MessagesColumn) and self.fmt.layout is not None:
            self.add_from_arrow(self.task, wanted, places)
        else:
            self.add_examples(wanted, places)

    def add_examples(self, wanted: Any, places: Any) -> None:
        """The row-by-row path: each example read in the order cheapest for its task."""
        pending = Pending(self.buckets)
        wanted_list, places_list = wanted.tolist(), places.tolist()  # numpy scalars cost per row
        examples = self.task.iter_examples(wanted_list)
        for done, (i, conversation) in enumerate(examples, start=1):
            pending.add(places_list[i], self.line(wanted_list[i], conversation))
            if done % Pending.ROWS == 0:
                self.report(Pending.ROWS)
        pending.flush()
        self.report(len(places) % Pending.ROWS)

    def add_from_arrow(self, task: MessagesColumn, wanted: Any, places: Any) -> None:
        """The bulk path, for a task whose conversations are an Arrow column of messages.

        Rows that plainly pass the conversation rules are written in bulk
        (`taskcli.export.columnar`); the others, rare, go one by one through the task and the
        rules, which say what is wrong.
        """
        import numpy as np
        import pyarrow as pa

        from taskcli.export import columnar
        from taskcli.files import arrow_rules

        layout, buckets = self.fmt.layout, self.buckets
        pending = Pending(buckets)
        for positions, messages in task.iter_message_arrays(wanted, ARROW_ROWS):
            fine = np.zeros(len(positions), dtype=bool)
            if arrow_rules.holds_string_messages(messages):
                fine = arrow_rules.rows_without_errors(messages)
                if layout.fold_system:
                    fine &= ~arrow_rules.start_with_system(messages)
            if fine.any():
                chunk = messages if fine.all() else messages.filter(pa.array(fine))
                tails = None
                if layout.with_source:
                    tails = columnar.source_tails(self.entry, wanted[positions[fine]])
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
                    pending.add(int(places[position]), self.line(index, conversation))
            self.report(len(positions))
        pending.flush()

    def line(self, index: int, conversation: dict[str, Any]) -> bytes:
        """One example as a JSON line, checked first unless its task checked it already.

        (`ChecksMessages`: that check would be a third of what a SmolTalk row costs.)
        """
        entry = self.entry
        check_example(entry, self.task, index, conversation)
        record = self.tally.record(self.fmt.row(conversation, entry, index))
        try:
            return orjson.dumps(record, option=APPEND_NEWLINE)
        except orjson.JSONEncodeError as error:
            raise InvalidData(f"{entry.label} example {index}: {error}") from None


def check_example(entry: Entry, task: Task, index: int, conversation: dict[str, Any]) -> None:
    """InvalidData naming the entry and example when `conversation` breaks an error rule,
    unless its task checked it already."""
    if isinstance(task, ChecksMessages):
        return
    problem = first_error(check_messages(conversation.get("messages")))
    if problem is not None:
        raise InvalidData(
            f"{entry.label} example {index}: {problem.path}: {problem.message}. "
            "See it with `taskcli show`; nothing was written."
        )
