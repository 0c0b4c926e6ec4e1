"""What `show`, `stats`, `validate` and `export` read: a task, a conversation file or a spec.

Every command that reads conversations takes one TARGET argument, read by one rule
(`classify`), first match wins:

1. ``-`` is standard input, read as a conversation file;
2. a name ending in ``.yaml`` or ``.yml`` is a mixture spec;
3. a name ending in ``.jsonl``, ``.json`` or ``.gz``, or holding a ``/``, is a conversation file;
4. a registered task name, in any case (``GSM8K`` is ``gsm8k``), is that task;
5. any other name that exists is a conversation file.

So a task name wins over a file of the same name in the current folder: write ``./gsm8k`` for
the file. Classifying loads nothing, so completion and error messages can use it freely;
`open_target` then builds what the target names::

    target = open_target("examples/mixture.yaml", data_dir="data")
    target.kind, target.label, [source.name for source in target.sources]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskcli.errors import UsageError
from taskcli.files.jsonl import STDIN, display_name

if TYPE_CHECKING:
    from taskcli.mixing.plan import Plan
    from taskcli.mixing.spec import Entry, Spec
    from taskcli.tasks.common import Task

TASK, FILE, SPEC = "task", "file", "spec"
SPEC_SUFFIXES = (".yaml", ".yml")
FILE_SUFFIXES = (".jsonl", ".json", ".gz")
RULE = (
    "a target is a task name (any case), a conversation file (.jsonl, .json, .gz, any path "
    "with a '/', '-' for stdin) or a mixture spec (.yaml); a task name wins over a file of "
    "the same name: write ./NAME for the file."
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


def shadowed_file(text: str) -> str | None:
    """A note when `text` names a task and also a file here: the rule read it as the task."""
    kind, name = classify(text)
    if kind == TASK and os.path.exists(text):
        return f"note: {text} is read as the task {name}; write ./{text} for the file."
    return None


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

    @property
    def is_spec(self) -> bool:
        return self.kind == SPEC

    @cached_property
    def sources(self) -> tuple[Source, ...]:
        """The named tasks that make up the target; a file is read and checked here."""
        from taskcli.tasks import registry

        if self.opened is not None:
            return self.opened
        task = registry.resolve("customjson", params={"path": self.text}).create()
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
) -> Target:
    """The target `text` names (see the module's rule), opened: a task built, a spec's plan
    built, a file checked to exist (it is read when its `sources` are first used)."""
    from taskcli.tasks import registry

    kind, name = classify(text)
    if kind == SPEC:
        refuse_options_for_spec(text, subset, split, params)
        from taskcli.mixing.plan import build_plan
        from taskcli.mixing.spec import load_spec

        return spec_target(text, build_plan(load_spec(text), data_dir))
    if kind == FILE:
        refuse_for_file(text, subset, split, params)
        if text != STDIN:
            _require_file(text)
        return Target(FILE, text, display_name(text), params={"path": text})
    request = registry.resolve(name, subset, split, params)
    task = request.create(data_dir=data_dir)
    label = " / ".join(part for part in (name, request.subset, request.split) if part)
    return Target(
        kind, name, label, (Source(label, task),), request.subset, request.split, request.params
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
    """A missing or unreadable file is a usage error before anything else is done."""
    if os.path.isdir(path):
        raise UsageError(f"{path} is a folder, not a conversation file.")
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file.", hint=RULE)


def one_entry_spec(target: Target) -> Spec:
    """A task or file target as a spec of one entry in sequence mode, so `export` writes a
    single file or task through any format, with the manifest a spec export has."""
    from taskcli.mixing.spec import Entry, Spec

    params = dict(target.params or {})
    if target.kind == FILE and target.text != STDIN:
        params["path"] = os.path.abspath(target.text)
    entry: Entry = Entry(0, target.name, target.subset, target.split, params)
    return Spec(path=Path(target.text), mode="sequence", seed=0, entries=(entry,))


def as_plan(target: Target) -> Plan:
    """The plan that writes `target`: the spec's own, or a one-entry spec over the opened task
    (nothing is read twice)."""
    if target.plan is not None:
        return target.plan
    from taskcli.mixing.plan import plan_over

    return plan_over(one_entry_spec(target), (target.task,))
