"""A mixture spec made concrete: its tasks built, the mixture over them, the rows to write.

    plan = build_plan(load_spec("mixture.yaml"), data_dir="data")
    plan.total                         # rows in the final order, repeats included
    rows = selected_rows(plan.total, limit=1000, shard=(2, 4))

The row order is exactly `TaskMixture` (or `TaskSequence`) over the spec's entries, each entry
repeated in place `repeat` times. `export`, `stats` and `show` of a spec all start here; nothing
in this module writes a file or draws anything.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from taskcli.errors import DatasetMissing, DataUnavailable, TaskcliError, UsageError
from taskcli.mixing.spec import Spec
from taskcli.tasks.capabilities import DataFiles
from taskcli.tasks.common import Task, TaskMixture, TaskSequence


@dataclass(frozen=True)
class Plan:
    """The spec's tasks, built, and the mixture over them (each entry `repeat` times)."""

    spec: Spec
    tasks: tuple[Task, ...]  # one per spec entry
    mixture: TaskSequence
    owners: tuple[int, ...]  # the spec entry of each task number of the mixture

    @property
    def total(self) -> int:
        return len(self.mixture)

    def entry_rows(self) -> list[int]:
        """How many rows each spec entry puts into the mixture, repeats included."""
        pairs = zip(self.tasks, self.spec.entries, strict=True)
        return [len(task) * entry.repeat for task, entry in pairs]

    def placement(self, rows: range) -> tuple[Any, Any]:
        """For each position in `rows` of the final order: its spec entry, and its example
        index in that entry's whole task (before the entry's slice), as numpy arrays."""
        import numpy as np

        mixture = self.mixture
        if isinstance(mixture, TaskMixture):
            order = np.frombuffer(mixture.order, dtype=np.int64)[rows.start : rows.stop]
        else:
            order = np.arange(rows.start, rows.stop, dtype=np.int64)
        offsets = np.asarray(mixture.offsets, dtype=np.int64)
        member = np.searchsorted(offsets, order, side="right") - 1
        # Each member's `physical_range()` indexed by the local positions, for all at once.
        ranges = [task.physical_range() for task in mixture.tasks]
        starts = np.asarray([r.start for r in ranges], dtype=np.int64)
        steps = np.asarray([r.step for r in ranges], dtype=np.int64)
        indices = starts[member] + (order - offsets[member]) * steps[member]
        return np.asarray(self.owners, dtype=np.int64)[member], indices

    def data_files(self) -> list[dict[str, Any]]:
        """The files the plan reads, with sizes (and Hub revisions when the task knows them)."""
        files: dict[str, dict[str, Any]] = {}
        for task, entry in zip(self.tasks, self.spec.entries, strict=True):
            if isinstance(task, DataFiles):
                for path in task.data_files:
                    files.setdefault(str(path), {"path": str(path), "revision": task.revision})
            for param in type(task).params:  # a local file a parameter names (word list, JSONL)
                value = entry.params.get(param.name)
                if param.is_path and isinstance(value, str) and os.path.isfile(value):
                    files.setdefault(value, {"path": value, "revision": None})
        for record in files.values():
            with contextlib.suppress(OSError):
                record["size"] = os.path.getsize(record["path"])
        return [files[path] for path in sorted(files)]

    def summary(self, limit: int | None = None, shard: tuple[int, int] | None = None) -> dict:
        """What ``export --dry-run`` shows: per entry its rows and share of the total."""
        total = self.total
        rows = selected_rows(total, limit, shard)
        return {
            "spec": str(self.spec.path),
            "mode": self.spec.mode,
            "seed": self.spec.seed,
            "entries": [
                {
                    "entry": entry.number,
                    "task": entry.task,
                    "subset": entry.subset,
                    "split": entry.split,
                    "params": entry.params,
                    "slice": [entry.start, entry.stop, entry.step],
                    "repeat": entry.repeat,
                    "rows": count,
                    "share": count / total if total else 0.0,
                }
                for entry, count in zip(self.spec.entries, self.entry_rows(), strict=True)
            ],
            "total": total,
            "selected": {"start": rows.start, "stop": rows.stop, "rows": len(rows)},
        }


def build_plan(spec: Spec, data_dir: str | os.PathLike[str] | None = None) -> Plan:
    """Create every entry's task; all entries that fail are reported together."""
    tasks: list[Task] = []
    errors: list[TaskcliError] = []
    for entry in spec.entries:
        try:
            task = entry.create(data_dir)
            len(task)  # opens the data, so a missing dataset is reported here with the rest
            tasks.append(task)
        except TaskcliError as error:
            errors.append(error.within(entry.label))
        except ValueError as error:
            errors.append(UsageError(f"{entry.label}: {error}"))
    if errors:
        raise _combined(errors, data_dir)
    return plan_over(spec, tasks)


def plan_over(spec: Spec, tasks: Sequence[Task]) -> Plan:
    """The plan of `spec` over its entries' tasks, already built (one per entry)."""
    members: list[Task] = []
    owners: list[int] = []
    for number, (task, entry) in enumerate(zip(tasks, spec.entries, strict=True)):
        members += [task] * entry.repeat  # in place, exactly like listing the entry again
        owners += [number] * entry.repeat
    if spec.mode == "sequence":
        mixture: TaskSequence = TaskSequence(members)
    else:
        mixture = TaskMixture(members, seed=spec.seed)
    return Plan(spec, tuple(tasks), mixture, tuple(owners))


def _combined(errors: list[TaskcliError], data_dir: str | os.PathLike[str] | None) -> TaskcliError:
    """One error for several: a usage error if any was one, else the first error's kind.

    Its hint is each error's own, once, except that the datasets missing from the Hub share one,
    last: a download command per dataset, then the data dir.
    """
    if len(errors) == 1:
        return errors[0]
    from taskcli.hub.data import how_to_get

    missing = list(dict.fromkeys(e.repo for e in errors if isinstance(e, DatasetMissing)))
    others = [e.hint for e in errors if e.hint and not isinstance(e, DatasetMissing)]
    hints = list(dict.fromkeys(others))
    if missing:  # last: it ends naming the data dir, where the CLI adds its flag
        hints.append(how_to_get(missing, data_dir))
    params = tuple(dict.fromkeys(param for error in errors for param in error.params))
    kind = UsageError if any(isinstance(e, UsageError) for e in errors) else type(errors[0])
    if kind is DatasetMissing:
        kind = DataUnavailable  # about several datasets, not one
    return kind(
        f"{len(errors)} entries failed:\n" + "\n".join(f"  {e}" for e in errors),
        hint="\n".join(hints) or None,
        params=params,
    )


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` as (2, 4): the second of four shards, numbered from 1."""
    number, sep, count = text.partition("/")
    try:
        shard, shards = int(number), int(count)
    except ValueError:
        shard = shards = 0
    if not sep or shards < 1 or not 1 <= shard <= shards:
        raise UsageError(
            f"shard must be K/N with 1 <= K <= N (shards are numbered from 1), got {text!r}.",
            params=("shard",),
        )
    return shard, shards


def selected_rows(
    total: int, limit: int | None = None, shard: tuple[int, int] | None = None
) -> range:
    """The positions of the final order to write: the first `limit`, then shard K of N of those.

    Shard K covers ``[(K-1)*n//N, K*n//N)``, so the shards are contiguous, differ in size by at
    most one row, and concatenated in order are exactly the unsharded output.
    """
    count = total if limit is None else min(limit, total)
    if shard is None:
        return range(count)
    k, n = shard
    return range((k - 1) * count // n, k * count // n)
