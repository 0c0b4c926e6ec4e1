"""The task registry: built-in tasks plus those other packages add through entry points.

A third-party package registers a task by naming its `Task` subclass in the ``taskcli.tasks``
entry-point group of its own ``pyproject.toml``::

    [project.entry-points."taskcli.tasks"]
    trivia = "mypackage.trivia:Trivia"

The registry reads only class attributes (name, description, subsets, splits, params, ...), so
listing tasks loads no data and imports neither `datasets` nor `pyarrow`. `create_task` checks a
request against that metadata and says what the valid choices are when it is wrong.
"""

from __future__ import annotations

import difflib
import importlib
import os
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from taskcli.errors import UsageError
from taskcli.tasks.common import Task, check_slice

ENTRY_POINT_GROUP = "taskcli.tasks"

BUILTIN_TASKS = {
    "arc": "taskcli.tasks.arc:ARC",
    "mmlu": "taskcli.tasks.mmlu:MMLU",
    "gsm8k": "taskcli.tasks.gsm8k:GSM8K",
    "humaneval": "taskcli.tasks.humaneval:HumanEval",
    "smoltalk": "taskcli.tasks.smoltalk:SmolTalk",
    "customjson": "taskcli.tasks.customjson:CustomJSON",
    "spellingbee": "taskcli.tasks.spellingbee:SpellingBee",
    "simplespelling": "taskcli.tasks.spellingbee:SimpleSpelling",
}


def _load(target: str) -> type[Task]:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


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
        return _load(target)
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


def suggest(word: str, options: list[str] | tuple[str, ...]) -> str:
    """' Did you mean ...?' for the closest options, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(options), n=3, cutoff=0.5)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


def get_task_class(name: str) -> type[Task]:
    """The class registered as `name`; only its own module is imported."""
    names = task_names()
    if name not in names:
        raise UsageError(
            f"unknown task {name!r}.{suggest(name, names)} "
            f"Known tasks: {', '.join(names)} (see `taskcli list`)."
        )
    return _class_of(name)


def splits_for(cls: type[Task], subset: str | None) -> tuple[str, ...]:
    if isinstance(cls.splits, dict):
        return cls.splits.get(subset, ())
    return cls.splits


def describe(cls: type[Task]) -> dict[str, Any]:
    """The registry entry of a task class as plain data (what `taskcli list --json` prints)."""
    return {
        "name": cls.name,
        "description": cls.description,
        "source": cls.source,
        "eval_type": cls.eval_type,
        "subsets": list(cls.subsets),
        "default_subset": cls.default_subset,
        "splits": {k: list(v) for k, v in cls.splits.items()}
        if isinstance(cls.splits, dict)
        else list(cls.splits),
        "default_split": cls.default_split,
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


def _coerce(kind: type, raw: Any) -> Any:
    """`raw` as a value of `kind`; strings (from `-p key=value`) are parsed, others must match."""
    if isinstance(raw, str):
        if kind is bool:
            return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[
                raw.lower()
            ]
        return kind(raw)
    if type(raw) is kind or (kind is float and type(raw) is int):
        return raw
    raise ValueError(raw)


def _convert(cls: type[Task], key: str, raw: Any) -> Any:
    spec = next((p for p in cls.params if p.name == key), None)
    if spec is None:
        names = [p.name for p in cls.params]
        known = ", ".join(names) if names else "none"
        raise UsageError(
            f"task {cls.name!r} has no parameter {key!r}.{suggest(key, names)} "
            f"Its parameters: {known}."
        )
    try:
        value = _coerce(spec.type, raw)
    except (ValueError, KeyError):
        raise UsageError(
            f"parameter {key!r} of {cls.name!r} takes a {spec.type.__name__}, got {raw!r}."
        ) from None
    if spec.choices and value not in spec.choices:
        raise UsageError(
            f"parameter {key!r} of {cls.name!r} must be one of {', '.join(spec.choices)}; "
            f"got {value!r}."
        )
    return value


def choose_subset_split(
    cls: type[Task], subset: str | None, split: str | None
) -> tuple[str | None, str | None]:
    """The subset and split a request means, defaults filled in; UsageError lists valid ones."""
    name = cls.name
    if cls.subsets:
        subset = subset or cls.default_subset
        if subset not in cls.subsets:
            raise UsageError(
                f"task {name!r} has no subset {subset!r}.{suggest(subset or '', cls.subsets)} "
                f"Valid subsets: {', '.join(cls.subsets)}."
            )
    elif subset is not None:
        raise UsageError(f"task {name!r} has no subsets (got {subset!r}).")
    valid_splits = splits_for(cls, subset)
    if valid_splits:
        default = cls.default_split if cls.default_split in valid_splits else valid_splits[0]
        split = split or default
        if split not in valid_splits:
            where = f" in subset {subset!r}" if subset else ""
            raise UsageError(
                f"task {name!r} has no split {split!r}{where}. "
                f"Valid splits: {', '.join(valid_splits)}."
            )
    elif split is not None:
        raise UsageError(f"task {name!r} has no splits (got {split!r}).")
    return subset, split


def resolve(
    name: str,
    subset: str | None = None,
    split: str | None = None,
    params: dict[str, Any] | None = None,
) -> tuple[type[Task], dict[str, Any]]:
    """Check a request against the registry and return the class and its constructor arguments.

    Nothing is loaded, so every mistake in a request is found before any data is touched.
    """
    cls = get_task_class(name)
    kwargs: dict[str, Any] = {}
    subset, split = choose_subset_split(cls, subset, split)
    if subset is not None:
        kwargs["subset"] = subset
    if split is not None:
        kwargs["split"] = split
    for key, raw in (params or {}).items():
        kwargs[key] = _convert(cls, key, raw)
    return cls, kwargs


def create_task(
    name: str,
    subset: str | None = None,
    split: str | None = None,
    params: dict[str, Any] | None = None,
    *,
    data_dir: str | None = None,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
) -> Task:
    """A task instance from a request as people type it (the CLI's and mixture specs' path)."""
    cls, kwargs = resolve(name, subset, split, params)
    try:
        check_slice(start, stop, step)
    except ValueError as error:
        raise UsageError(f"{name}: {error}") from None
    if cls.uses_data_dir:
        kwargs["data_dir"] = data_dir
    return cls(start=start, stop=stop, step=step, **kwargs)


@dataclass(frozen=True)
class OpenedTask:
    """A task made from a command line, with the words that name it in headers and errors."""

    task: Task
    name: str
    subset: str | None
    split: str | None
    file: str | None = None  # the .jsonl path given in place of a task name

    @property
    def label(self) -> str:
        if self.file is not None:
            return self.file
        return " / ".join(part for part in (self.name, self.subset, self.split) if part)


def open_task(
    target: str,
    subset: str | None = None,
    split: str | None = None,
    params: dict[str, Any] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
) -> OpenedTask:
    """A task from a TASK argument: a registered name, or a ``.jsonl`` path (CustomJSON)."""
    params = dict(params or {})
    file = None
    if target.endswith((".jsonl", ".jsonl.gz")) or (
        os.sep in target and target not in task_names()
    ):
        params["path"] = file = target
        target = "customjson"
    _, kwargs = resolve(target, subset, split, params)
    task = create_task(
        target,
        kwargs.get("subset"),
        kwargs.get("split"),
        params,
        data_dir=os.fspath(data_dir) if data_dir is not None else None,
    )
    return OpenedTask(task, target, kwargs.get("subset"), kwargs.get("split"), file)
