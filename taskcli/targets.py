"""What `show`, `browse`, `stats`, `validate`, `export` and `eval` read: a task, a conversation
file or a spec, opened once, and its rows by index.

Every command that reads conversations takes one TARGET argument, read by one rule
(`classify`), first match wins:

1. ``-`` is standard input, read as a conversation file;
2. a name ending in ``.yaml`` or ``.yml`` is a mixture spec;
3. a name ending in ``.jsonl``, ``.json``, ``.gz`` or ``.parquet``, or holding a ``/``, is a
   conversation file (a folder of Parquet shards too);
4. a registered task name, in any case (``GSM8K`` is ``gsm8k``), is that task;
5. any other name that exists is a conversation file.

So a task name wins over a file of the same name in the current folder: write ``./gsm8k`` for
the file. Classifying loads nothing, so completion and error messages can use it freely;
`open_target` classifies once and builds what the target names, and the commands take the
opened `Target`. A target is made of sources (a spec's entries, or the one task or file); like
nanochat's ``TaskMixture.get_example``, `Target.placement` maps a row index to its source and
the example index in that source's task, and `Target.rows` reads rows with where they come
from::

    target = open_target("examples/mixture.yaml", data_dir="data")
    target.kind, target.label, [source.name for source in target.sources]
    [row.origin for row in target.rows([0, 1, 2])]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskcli.errors import UsageError
from taskcli.files.reader import STDIN, display_name

if TYPE_CHECKING:
    from taskcli.mixing.plan import Plan
    from taskcli.mixing.spec import Entry, Spec
    from taskcli.tasks.common import Conversation, Task
    from taskcli.training.tokens import Rendering

# How a task's examples are read: `Task.get_examples` unless a caller needs to hold a lock.
ReadExamples = Callable[["Task", list[int]], list["Conversation"]]

TASK, FILE, SPEC = "task", "file", "spec"
SPEC_SUFFIXES = (".yaml", ".yml")
FILE_SUFFIXES = (".jsonl", ".json", ".gz", ".parquet")
RULE = (
    "a target is a task name (any case), a conversation file (.jsonl, .json, .gz, .parquet, a "
    "folder of Parquet shards, any path with a '/', '-' for stdin) or a mixture spec (.yaml); "
    "a task name wins over a file of the same name: write ./NAME for the file."
)


def classify(text: str) -> tuple[str, str]:
    """``(kind, name)``: what `text` names by the rule above, and its canonical spelling (the
    registered name of a task, the text itself otherwise). Nothing is opened or loaded."""
    folded = text.casefold()
    if text == STDIN:
        return FILE, text
    if folded.endswith(SPEC_SUFFIXES):
        return SPEC, text
    if folded.endswith(FILE_SUFFIXES) or "/" in text or os.sep in text:
        return FILE, text
    from taskcli.tasks import registry  # only now: a file's name says what it is without it

    name = registry.canonical_name(text)
    if name is not None:
        return TASK, name
    if os.path.exists(text):
        return FILE, text
    raise UsageError(
        f"unknown task {text!r}, and no file of that name exists.{registry.closest_tasks(text)}",
        hint=f"{RULE} `taskcli list` names the tasks.",
    )


@dataclass(frozen=True)
class Row:
    """One conversation of a target: its index in the target, and where it comes from."""

    index: int
    conversation: dict[str, Any]
    line: int | None = None  # the physical line of a file
    origin: dict[str, Any] | None = None  # a spec row's entry, task, subset, split and index
    entry: str | None = None  # a spec row's entry label, for headers

    def to_json(self) -> dict[str, Any]:
        """The row as ``show --json`` prints it: the conversation plus ``index`` (and its
        origin as ``source``, for a spec), keys `taskcli validate` accepts as metadata."""
        row = {**self.conversation, "index": self.index}
        if self.origin is not None:
            row["source"] = self.origin
        return row

    def token_json(self, rendering: Rendering) -> dict[str, Any]:
        """The row as ``show --tokens --json`` prints it: ids, mask and counts, its index (and
        origin, for a spec)."""
        row = rendering.row(self.index)
        if self.origin is not None:
            row["source"] = self.origin
        return row


@dataclass(frozen=True)
class Source:
    """One named part of a target: a task, counted `repeat` times (a spec entry's ``repeat``)."""

    name: str
    task: Task
    repeat: int = 1


@dataclass(frozen=True)
class Target:
    """A TARGET argument made concrete: what it is, how headers name it, and its tasks.

    A task is one source; a spec has one source per entry, and its `plan`. A file is read
    (through the `customjson` task) only when its `sources` are first asked for: `show` and
    `stats` read files their own, cheaper way.
    """

    kind: str
    text: str  # as given (a task's registered name)
    label: str
    opened: tuple[Source, ...] | None = None
    subset: str | None = None
    split: str | None = None
    params: dict[str, Any] | None = None
    plan: Plan | None = None
    shadowed: str | None = None  # a note when a task's name is also a file here

    @property
    def is_spec(self) -> bool:
        return self.kind == SPEC

    @cached_property
    def sources(self) -> tuple[Source, ...]:
        """The named tasks that make up the target; a file is read and checked here."""
        from taskcli.tasks import registry

        if self.opened is not None:
            return self.opened
        task = registry.resolve("customjson", split=self.split, params=self.params).create()
        return (Source(self.label, task),)

    @property
    def task(self) -> Task:
        """The one task of a task or file target (a spec has a `plan` instead)."""
        if self.plan is not None:
            raise ValueError("a mixture spec has a plan, not one task")
        return self.sources[0].task

    @property
    def name(self) -> str:
        """The task's registered name (``customjson`` for a file)."""
        return self.text if self.kind == TASK else "customjson"

    @property
    def total(self) -> int:
        """Rows in the target (a file is read and checked whole to count them)."""
        return self.plan.total if self.plan is not None else len(self.task)

    def placement(self, rows: range) -> tuple[Any, Any]:
        """For each row index in `rows`: the number of its source, and its example index in that
        source's whole task (before any slice), as numpy arrays."""
        import numpy as np

        if self.plan is not None:
            return self.plan.placement(rows)
        examples = self.task.physical_range()[rows.start : rows.stop]
        return np.zeros(len(examples), dtype=np.int64), np.asarray(examples, dtype=np.int64)

    def source_name(self, index: int) -> str:
        """The task of the source row `index` comes from, known without reading the row."""
        if self.plan is None:
            return self.name
        owners, _ = self.placement(range(index, index + 1))
        return self.plan.spec.entries[int(owners[0])].task

    def rows(self, indices: Sequence[int], read: ReadExamples | None = None) -> list[Row]:
        """The rows at `indices`, read together: placed in one step, then read source by source
        (one `read` each, `Task.get_examples` by default). A spec's rows say their origin."""
        if not indices:
            return []
        owners, examples = self._placed(indices)
        wanted: dict[int, list[int]] = {}
        for owner, example in zip(owners, examples, strict=True):
            wanted.setdefault(owner, []).append(example)
        reader = read or _get_examples
        tasks = self._tasks
        conversations = {owner: iter(reader(tasks[owner], rows)) for owner, rows in wanted.items()}
        rows = []
        for index, owner, example in zip(indices, owners, examples, strict=True):
            conversation = next(conversations[owner])
            if self.plan is None:
                rows.append(Row(index, conversation))
                continue
            entry = self.plan.spec.entries[owner]
            origin = {"entry": entry.number, **entry.origin(example)}
            rows.append(Row(index, conversation, origin=origin, entry=entry.label))
        return rows

    def scan(self, indices: Sequence[int]) -> Iterator[tuple[int, Conversation]]:
        """``(i, conversation of row indices[i])`` for every i, in the order cheapest to read:
        each source's storage order (`Task.iter_examples`), each block once."""
        if not indices:
            return
        owners, examples = self._placed(indices)
        wanted: dict[int, tuple[list[int], list[int]]] = {}
        for i, (owner, example) in enumerate(zip(owners, examples, strict=True)):
            places, rows = wanted.setdefault(owner, ([], []))
            places.append(i)
            rows.append(example)
        tasks = self._tasks
        for owner, (places, rows) in wanted.items():
            for j, conversation in tasks[owner].iter_examples(rows):
                yield places[j], conversation

    @property
    def _tasks(self) -> tuple[Task, ...]:
        return self.plan.tasks if self.plan is not None else (self.task,)

    def _placed(self, indices: Sequence[int]) -> tuple[list[int], list[int]]:
        """`placement` of arbitrary `indices`, in one step over the range they span."""
        low = min(indices)
        owners, examples = self.placement(range(low, max(indices) + 1))
        at = [index - low for index in indices]
        return owners[at].tolist(), examples[at].tolist()


def _get_examples(task: Task, indices: list[int]) -> list[Conversation]:
    return task.get_examples(indices)


def refuse_options_for_spec(
    text: str, subset: str | None, split: str | None, params: dict[str, Any] | None
) -> None:
    """A spec sets subset, split and parameters per entry; given for the whole, they are a
    mistake."""
    given = [name for name, value in (("subset", subset), ("split", split)) if value]
    if params:
        given.append("params")
    if given:
        raise UsageError(
            f"{' and '.join(given)} cannot be given with a mixture spec ({text}).",
            hint=f"set subset, split and parameters on the entries of {text}.",
        )


def open_target(
    text: str,
    subset: str | None = None,
    split: str | None = None,
    params: dict[str, Any] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    input_format: str | None = None,
) -> Target:
    """The target `text` names (see the module's rule), opened: a task built, a spec's plan
    built, a file checked to exist (it is read when its `sources` are first used), read in
    `input_format` when one is given (a file's records are each read in their own otherwise)."""
    kind, name = classify(text)
    if input_format is not None and kind != FILE:
        raise UsageError(
            f"an input format is for conversation files; {text} is a "
            f"{'mixture spec' if kind == SPEC else 'registered task'}.",
            params=("input_format",),
        )
    if kind == SPEC:
        refuse_options_for_spec(text, subset, split, params)
        from taskcli.mixing.plan import build_plan
        from taskcli.mixing.spec import load_spec

        return spec_target(text, build_plan(load_spec(text), data_dir))
    if kind == FILE:
        folder = text != STDIN and os.path.isdir(text)
        refuse_for_file(text, subset, None if folder else split, params)
        if text != STDIN and not folder:
            _require_file(text)
        file_params = {"path": text}
        if input_format is not None:
            from taskcli.tasks import registry

            file_params["input_format"] = registry.get_task_class("customjson").convert_param(
                "input_format", input_format
            )
        label = display_name(text) + (f" / {split}" if folder and split else "")
        return Target(FILE, text, label, split=split if folder else None, params=file_params)
    from taskcli.tasks import registry

    request = registry.resolve(name, subset, split, params)
    task = request.create(data_dir=data_dir)
    label = " / ".join(part for part in (name, request.subset, request.split) if part)
    shadowed = None
    if os.path.exists(text):  # the rule read the task: say how to read the file instead
        shadowed = f"note: {text} is read as the task {name}; write ./{text} for the file."
    return Target(
        kind,
        name,
        label,
        (Source(label, task),),
        request.subset,
        request.split,
        request.params,
        shadowed=shadowed,
    )


def spec_target(text: str, plan: Plan) -> Target:
    """A target for a built plan: one source per entry, named as reports name entries."""
    sources = tuple(
        Source(entry.label, task, entry.repeat)
        for entry, task in zip(plan.spec.entries, plan.tasks, strict=True)
    )
    return Target(SPEC, text, Path(text).name, sources, plan=plan)


def refuse_for_file(
    text: str, subset: str | None, split: str | None, params: dict[str, Any] | None
) -> None:
    """A conversation file has no subsets, splits or parameters: given, they are a mistake."""
    given = [name for name, value in (("subset", subset), ("split", split)) if value]
    given += sorted(params or {})
    if given:
        raise UsageError(
            f"{' and '.join(given)} cannot be given with a conversation file ({text}).",
            hint="subsets, splits and parameters belong to registered tasks (`taskcli list`).",
        )


def _require_file(path: str) -> None:
    """A missing file is a usage error before anything else is done."""
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file.", hint=RULE)


def one_entry_spec(target: Target) -> Spec:
    """A task or file target as a spec of one entry in sequence mode, so `export` writes a
    single file or task through any format, with the manifest a spec export has."""
    from taskcli.mixing.spec import Entry, Spec

    params = dict(target.params or {})
    if target.kind == FILE and target.text != STDIN:
        params["path"] = os.path.abspath(target.text)
    if params.get("input_format") is None:
        params.pop("input_format", None)
    entry: Entry = Entry(0, target.name, target.subset, target.split, params)
    return Spec(path=Path(target.text), mode="sequence", seed=0, entries=(entry,))


def as_plan(target: Target) -> Plan:
    """The plan that writes `target`: the spec's own, or a one-entry spec over the opened task
    (nothing is read twice)."""
    if target.plan is not None:
        return target.plan
    from taskcli.mixing.plan import plan_over

    return plan_over(one_entry_spec(target), (target.task,))
