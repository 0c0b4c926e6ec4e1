"""The task library: every dataset as a sliceable sequence of conversations.

    from taskcli.tasks import GSM8K, TaskMixture
    mixture = TaskMixture([GSM8K(split="train"), GSM8K(split="train")])  # GSM8K twice
    mixture[0]["messages"]

Task modules import `datasets` and `pyarrow` only when data is loaded, so importing this package
stays cheap; the concrete task classes are imported on first access.
"""

from taskcli.tasks.common import Conversation, Param, Task, TaskMixture, TaskSequence, render_mc

__all__ = [
    "ARC",
    "GSM8K",
    "MMLU",
    "Conversation",
    "CustomJSON",
    "HumanEval",
    "Param",
    "SimpleSpelling",
    "SmolTalk",
    "SpellingBee",
    "Task",
    "TaskMixture",
    "TaskSequence",
    "render_mc",
]


def __getattr__(name: str):
    from taskcli.registry import BUILTIN_TASKS, _load

    for target in BUILTIN_TASKS.values():
        if target.endswith(":" + name):
            return _load(target)
    raise AttributeError(f"module 'taskcli.tasks' has no attribute {name!r}")
