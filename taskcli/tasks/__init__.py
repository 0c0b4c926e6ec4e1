"""The task library: every dataset as a sliceable sequence of conversations.

    from taskcli.tasks import GSM8K, TaskMixture
    mixture = TaskMixture([GSM8K(split="train"), GSM8K(split="train")])  # GSM8K twice
    mixture[0]["messages"]

Task modules import `datasets` and `pyarrow` only when data is loaded, so importing this package
stays cheap; the concrete task classes are imported on first access.
"""

import importlib

from taskcli.tasks.common import (
    Conversation,
    Param,
    Task,
    TaskMixture,
    TaskSequence,
    multiple_choice_prompt,
)

# The built-in tasks: name -> "module:class". The registry adds plugins to these; a new task
# file is registered by one line here.
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
    "load_class",
    "multiple_choice_prompt",
]


def load_class(target: str) -> type[Task]:
    """The class a ``"module:class"`` target names; only its own module is imported."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def __getattr__(name: str) -> type[Task]:
    for target in BUILTIN_TASKS.values():
        if target.endswith(":" + name):
            return load_class(target)
    raise AttributeError(f"module 'taskcli.tasks' has no attribute {name!r}")
