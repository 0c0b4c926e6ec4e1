"""Shell completion of task names, subsets, splits and parameter names.

Everything comes from the registry's class attributes, so pressing TAB loads no data and
imports neither `datasets` nor `pyarrow`. Each function takes what is typed so far and returns
the candidates that start with it (ignoring case).
"""

from __future__ import annotations

from taskcli.tasks import registry
from taskcli.tasks.common import Task


def _matching(candidates: list[str], incomplete: str) -> list[str]:
    folded = incomplete.casefold()
    return [c for c in candidates if c.casefold().startswith(folded)]


def _task_class(target: str | None) -> type[Task] | None:
    name = registry.canonical_name(target) if target else None
    return registry.get_task_class(name) if name else None


def task_names(incomplete: str) -> list[str]:
    """Registered task names starting with `incomplete`."""
    return _matching(registry.task_names(), incomplete)


def targets(incomplete: str) -> list[str]:
    """Task names, then the paths starting with `incomplete` (folders end in ``/``): every
    kind of TARGET, whichever shell asks."""
    import glob
    import os

    paths = sorted(glob.glob(glob.escape(incomplete) + "*"))
    return task_names(incomplete) + [p + "/" if os.path.isdir(p) else p for p in paths]


def subsets(target: str | None, incomplete: str) -> list[str]:
    """The subsets of the task `target` names."""
    cls = _task_class(target)
    return _matching(list(cls.subsets), incomplete) if cls else []


def splits(target: str | None, subset: str | None, incomplete: str) -> list[str]:
    """The splits of the task `target` names, in `subset` (or its default subset)."""
    cls = _task_class(target)
    if cls is None:
        return []
    return _matching(list(cls.splits_for(subset or cls.default_subset)), incomplete)


def params(target: str | None, incomplete: str) -> list[str]:
    """``name=`` for each parameter of the task `target` names."""
    cls = _task_class(target)
    return _matching([f"{p.name}=" for p in cls.params], incomplete) if cls else []
