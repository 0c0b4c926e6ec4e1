"""Mixture specs: the YAML file that says which tasks go into a training file, and how.

    mode: mixture        # mixture (default): nanochat's TaskMixture shuffle; sequence: in order
    seed: 42             # the mixture shuffle seed (default 42)
    tasks:
      - task: gsm8k
        subset: main
        split: train
        repeat: 2        # the entry twice, exactly like listing it twice
      - task: mmlu
        subset: all
        split: test
        stop: 5200       # start / stop / step slice the task, as Task(start, stop, step)
      - task: customjson
        path: identity.jsonl   # other keys are the task's own parameters

`load_spec` checks the whole file against the registry before any data is loaded and reports
every mistake at once, one line each, so a long spec is fixed in one pass instead of one
error per run. Relative file paths are taken relative to the spec's own folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskcli.errors import UsageError, suggest
from taskcli.tasks import registry
from taskcli.tasks.common import Task, check_slice

MODES = ("mixture", "sequence")
TOP_LEVEL_KEYS = ("mode", "seed", "tasks")
ENTRY_KEYS = ("task", "subset", "split", "start", "stop", "step", "repeat")
DEFAULT_SEED = 42
# Bounds checked at load, so that no number in a spec can cost unbounded memory or overflow later.
MAX_SPEC_BYTES = 1 << 20
MAX_ENTRIES = 1000
MAX_REPEAT = 1000  # each repeat is one more member of the mixture, like listing the entry again
MAX_INDEX = 1 << 48  # start, stop and step: far beyond any dataset, well inside int64
SEED_RANGE = (-(1 << 63), (1 << 64) - 1)  # what the manifest (JSON, 64-bit) can record


@dataclass(frozen=True)
class Entry:
    """One checked item of ``tasks:``: what `create_task` needs, plus how often to repeat it."""

    number: int
    task: str
    subset: str | None
    split: str | None
    params: dict[str, Any] = field(default_factory=dict)
    start: int = 0
    stop: int | None = None
    step: int = 1
    repeat: int = 1

    @property
    def label(self) -> str:
        """``tasks[2] (gsm8k / main / train)``: how errors and reports name the entry."""
        words = " / ".join(w for w in (self.task, self.subset, self.split) if w)
        return f"tasks[{self.number}] ({words})"

    def origin(self, example: int) -> dict[str, Any]:
        """Where the entry's row holding `example` (an index into the entry's whole task) comes
        from, as the `full` export format and ``show --json`` write it under ``"source"``:
        ``taskcli show`` finds the row again from these."""
        origin = {"task": self.task, "subset": self.subset, "split": self.split, "index": example}
        if self.params:
            origin["params"] = self.params
        return origin

    def create(self, data_dir: str | os.PathLike[str] | None = None) -> Task:
        """The entry's task, sliced; the request was checked when the spec was loaded."""
        request = registry.Request(
            registry.get_task_class(self.task), self.subset, self.split, self.params
        )
        return request.create(data_dir=data_dir, start=self.start, stop=self.stop, step=self.step)

    def as_dict(self) -> dict[str, Any]:
        """The entry with every default filled in, as the manifest records it."""
        defaults = {p.name: p.default for p in registry.get_task_class(self.task).params}
        return {
            "task": self.task,
            "subset": self.subset,
            "split": self.split,
            "params": defaults | self.params,
            "start": self.start,
            "stop": self.stop,
            "step": self.step,
            "repeat": self.repeat,
        }


@dataclass(frozen=True)
class Spec:
    """A mixture spec that passed every check."""

    path: Path
    mode: str
    seed: int
    entries: tuple[Entry, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "mode": self.mode,
            "seed": self.seed,
            "tasks": [entry.as_dict() for entry in self.entries],
        }


def load_spec(path: str | Path) -> Spec:
    """Read and check a mixture spec; a UsageError lists every problem, one per line."""
    path = Path(path)
    document = _read_yaml(path)
    problems: list[str] = []
    if not isinstance(document, dict):
        raise _spec_error(
            path, [f"the spec must be a mapping with a 'tasks' list, got {_kind(document)}"]
        )
    for key in document:
        if key not in TOP_LEVEL_KEYS:
            problems.append(_unknown_key(str(key), TOP_LEVEL_KEYS, "top-level keys"))
    mode = document.get("mode", "mixture")
    if mode not in MODES:
        problems.append(f"mode: must be one of {', '.join(MODES)}; got {mode!r}")
    seed = document.get("seed", DEFAULT_SEED)
    if type(seed) is not int:
        problems.append(f"seed: must be an integer, got {_shown(seed)}")
    elif not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        problems.append(f"seed: must be between -2**63 and 2**64-1, got {_shown(seed)}")
    items = document.get("tasks")
    entries: list[Entry] = []
    if not isinstance(items, list) or not items:
        problems.append("tasks: must be a non-empty list of task entries")
    elif len(items) > MAX_ENTRIES:
        problems.append(
            f"tasks: at most {MAX_ENTRIES:,} entries, got {len(items):,} "
            "(use repeat: N to list an entry several times)"
        )
    else:
        for number, item in enumerate(items):
            entry = _check_entry(number, item, path.parent, problems)
            if entry is not None:
                entries.append(entry)
    if problems:
        raise _spec_error(path, problems)
    return Spec(path=path.resolve(), mode=mode, seed=seed, entries=tuple(entries))


def _read_yaml(path: Path) -> Any:
    import yaml

    from taskcli.files import safe_yaml

    try:
        with path.open("rb") as file:
            data = file.read(MAX_SPEC_BYTES + 1)
        if len(data) > MAX_SPEC_BYTES:
            raise UsageError(f"{path}: a mixture spec is at most {MAX_SPEC_BYTES:,} bytes")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise UsageError(f"mixture spec not found: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"mixture spec {path} is a folder, not a YAML file") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:  # unreadable, a file used as a folder, a disk error
        raise UsageError(f"mixture spec {path} cannot be read ({error.strerror})") from None
    try:
        return safe_yaml.load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        reason = " ".join(part for part in (error.context, error.problem) if part)
        raise UsageError(f"{where}: invalid YAML: {reason}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: invalid YAML: {error}") from None


def _check_entry(number: int, item: Any, folder: Path, problems: list[str]) -> Entry | None:
    """The checked entry, or None after adding its problems (as ``tasks[i]: ...``) to `problems`."""
    where = f"tasks[{number}]"
    if not isinstance(item, dict):
        problems.append(f"{where}: an entry must be a mapping with a 'task' key, got {_kind(item)}")
        return None
    name = item.get("task")
    if not isinstance(name, str):
        shown = "no 'task' key" if name is None else f"'task' is {_kind(name)}"
        problems.append(f"{where}: {shown}; name a task from `taskcli list`")
        return None
    try:
        cls = registry.get_task_class(name)
    except UsageError as error:
        problems.append(f"{where}: {error}")
        return None

    found: list[str] = []
    subset, split = _optional_text(item.get("subset")), _optional_text(item.get("split"))
    start, stop, step = item.get("start", 0), item.get("stop"), item.get("step", 1)
    too_large = [
        f"{key} must be at most {MAX_INDEX:,}, got {_shown(value)}"
        for key, value in (("start", start), ("stop", stop), ("step", step))
        if type(value) is int and value > MAX_INDEX
    ]
    found.extend(too_large)
    try:
        if not too_large:
            check_slice(start, stop, step)
    except ValueError as error:
        found.append(str(error))
    repeat = item.get("repeat", 1)
    if type(repeat) is not int or not 1 <= repeat <= MAX_REPEAT:
        found.append(f"repeat must be an integer from 1 to {MAX_REPEAT:,}, got {_shown(repeat)}")

    params = {key: value for key, value in item.items() if key not in ENTRY_KEYS}
    known = {p.name: p for p in cls.params}
    for key in [key for key in params if key not in known]:
        del params[key]
        found.append(_unknown_key(str(key), ENTRY_KEYS + tuple(known), f"keys for {name!r}"))

    request, request_problems = registry.check_request(cls, subset, split, params)
    found.extend(str(problem) for problem in request_problems)
    subset, split, params = request.subset, request.split, request.params
    for key, value in params.items():
        if known[key].is_path and isinstance(value, str):
            params[key] = _resolve_file(value, folder, key, found)

    problems.extend(f"{where}: {problem}" for problem in found)
    if found:
        return None
    return Entry(number, cls.name, subset, split, params, start, stop, step, repeat)


def _resolve_file(value: str, folder: Path, key: str, found: list[str]) -> str:
    """`value` as an absolute path, taken relative to the spec's folder; notes a missing file."""
    if "://" in value:
        return value
    target = (folder / Path(value).expanduser()).resolve()
    if not target.is_file():
        found.append(f"{key}: file not found: {target}")
    return str(target)


def _shown(value: Any) -> str:
    """`value` as a message shows it: a huge number by its size, not its thousands of digits."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text):,} characters)"


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _unknown_key(key: str, valid: tuple[str, ...], what: str) -> str:
    return f"unknown key {key!r}.{suggest(key, valid)} Valid {what}: {', '.join(valid)}."


def _kind(value: Any) -> str:
    """How YAML people name the type of `value`."""
    kinds = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "nothing"
    return kinds.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def _spec_error(path: Path, problems: list[str]) -> UsageError:
    if len(problems) == 1:
        return UsageError(f"{path}: {problems[0]}")
    lines = "\n".join(f"  {problem}" for problem in problems)
    return UsageError(f"{path}: {len(problems)} problems in the mixture spec:\n{lines}")
