"""The task registry: built-in tasks plus those other packages add through entry points.

A third-party package registers a task by naming its `Task` subclass in the ``taskcli.tasks``
entry-point group of its own ``pyproject.toml``::

    [project.entry-points."taskcli.tasks"]
    trivia = "mypackage.trivia:Trivia"

The registry looks tasks up by name and reads only class attributes (name, description,
subsets, splits, params, ...), so listing tasks loads no data and imports neither `datasets` nor
`pyarrow`. `resolve` checks a request once, with the class's own rules (`Task.choose_subset_split`,
`Task.convert_param`), and says what the valid choices are when it is wrong; the `Request` it
returns creates the task without checking again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from taskcli.errors import UsageError, suggest
from taskcli.tasks import BUILTIN_TASKS, load_class
from taskcli.tasks.common import Task, check_slice

ENTRY_POINT_GROUP = "taskcli.tasks"


@cache
def _targets() -> dict[str, str | EntryPoint | type[Task]]:
    """What to import for each task name, without importing anything yet."""
    targets: dict[str, str | EntryPoint | type[Task]] = dict(BUILTIN_TASKS)
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        targets.setdefault(entry.name, entry)  # a plugin cannot shadow a built-in task
    return targets


def task_names() -> list[str]:
    """Every registered task name: the built-ins, then plugins in name order."""
    return list(_targets())


@cache
def _class_of(name: str) -> type[Task]:
    target = _targets()[name]
    if isinstance(target, str):
        return load_class(target)
    return target.load() if isinstance(target, EntryPoint) else target


def all_tasks() -> dict[str, type[Task]]:
    """Every registered task class by name: the built-ins, then plugins in name order."""
    return {name: _class_of(name) for name in _targets()}


def register(cls: type[Task]) -> None:
    """Register a task class in this process under `cls.name`, as a plugin would be.

    For notebooks and tests; installed packages use the entry-point group instead.
    """
    _targets()[cls.name] = cls
    _class_of.cache_clear()


def clear_cache() -> None:
    """Forget what was registered, e.g. after installing a plugin in the same process."""
    _targets.cache_clear()
    _class_of.cache_clear()


def canonical_name(name: str) -> str | None:
    """The registered task `name` means, ignoring case (``GSM8K`` is ``gsm8k``), or None.

    An exact match wins, so a plugin task whose name differs only in case stays reachable.
    """
    names = task_names()
    if name in names:
        return name
    folded = name.casefold()
    return next((known for known in names if known.casefold() == folded), None)


def closest_tasks(name: str) -> str:
    """' Did you mean ...?' for the registered names closest to `name` (any case), or ''."""
    return suggest(name, task_names())


def unknown_task(name: str) -> UsageError:
    """The error for a name that is no registered task, with the closest names suggested."""
    return UsageError(
        f"unknown task {name!r}.{closest_tasks(name)} Known tasks: {', '.join(task_names())}.",
        hint="`taskcli list` describes every task.",
    )


def get_task_class(name: str) -> type[Task]:
    """The class registered as `name` (any case); only its own module is imported."""
    found = canonical_name(name)
    if found is None:
        raise unknown_task(name)
    return _class_of(found)


def describe(cls: type[Task]) -> dict[str, Any]:
    """The registry entry of a task class as plain data (what `taskcli list --json` prints).

    Every task has the same keys with the same types: ``splits`` is always the list of every
    split name, ``subset_splits`` always an object of each subset's splits (empty for a task
    without subsets), ``default_subset`` and ``default_split`` a name or null.
    """
    subset_splits = {subset: list(cls.splits_for(subset)) for subset in cls.subsets}
    every_split = list(dict.fromkeys(s for splits in subset_splits.values() for s in splits))
    default_split = cls.default_split
    if cls.subsets or cls.splits:
        default_split = cls.choose_subset_split(None, None)[1]
    return {
        "name": cls.name,
        "description": cls.description,
        "source": cls.dataset,  # the key `list --json` has always printed
        "eval_type": cls.eval_type,
        "subsets": list(cls.subsets),
        "default_subset": cls.default_subset,
        "splits": every_split if cls.subsets else list(cls.splits_for(None)),
        "subset_splits": subset_splits,
        "default_split": default_split,
        "params": [
            {
                "name": p.name,
                "type": p.type.__name__,
                "default": p.default,
                "help": p.help,
                **({"choices": list(p.choices)} if p.choices else {}),
            }
            for p in cls.params
        ],
    }


@dataclass(frozen=True)
class Request:
    """A checked request for a task: its class, subset, split and converted parameters."""

    cls: type[Task]
    subset: str | None = None
    split: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def create(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
    ) -> Task:
        """The task itself; data is opened here (by the task's constructor), nothing re-checked."""
        try:
            check_slice(start, stop, step)
        except ValueError as error:
            raise UsageError(f"{self.cls.name}: {error}") from None
        kwargs = dict(self.params)
        if self.subset is not None:
            kwargs["subset"] = self.subset
        if self.split is not None:
            kwargs["split"] = self.split
        if self.cls.uses_data_dir:
            kwargs["data_dir"] = os.fspath(data_dir) if data_dir is not None else None
        return self.cls(start=start, stop=stop, step=step, **kwargs)


def check_request(
    cls: type[Task],
    subset: str | None = None,
    split: str | None = None,
    params: dict[str, Any] | None = None,
) -> tuple[Request, list[UsageError]]:
    """The request as far as it checks out, and every problem with it: the subset/split choice
    and each parameter. The request is usable only when there are no problems.

    Mixture specs report all the problems at once; `resolve` raises the first.
    """
    problems: list[UsageError] = []
    try:
        subset, split = cls.choose_subset_split(subset, split)
    except UsageError as error:
        problems.append(error)
        subset = split = None
    converted = {}
    for key, raw in (params or {}).items():
        try:
            converted[key] = cls.convert_param(key, raw)
        except UsageError as error:
            problems.append(error)
    return Request(cls, subset, split, converted), problems


def resolve(
    name: str,
    subset: str | None = None,
    split: str | None = None,
    params: dict[str, Any] | None = None,
) -> Request:
    """Check a request against the registry; nothing is loaded, so every mistake in a request
    is found before any data is touched."""
    request, problems = check_request(get_task_class(name), subset, split, params)
    if problems:
        raise problems[0]
    return request


def create_task(
    name: str,
    subset: str | None = None,
    split: str | None = None,
    params: dict[str, Any] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
) -> Task:
    """A task instance from a request as people type it (the CLI's and the library's path)."""
    request = resolve(name, subset, split, params)
    return request.create(data_dir=data_dir, start=start, stop=stop, step=step)
