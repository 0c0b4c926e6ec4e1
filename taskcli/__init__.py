"""taskcli: chat datasets as one conversation format, from the command line or from Python.

The public library is what this module names in `__all__`; everything the command line does is
one of these calls first::

    import taskcli

    target = taskcli.open_target("examples/local-mixture.yaml")
    shown = taskcli.show_rows(target, index=5)
    stats = taskcli.compute_stats(target)
    reports = taskcli.validate_files(["examples/identity.jsonl"])
    tokenizer = taskcli.load_tokenizer("tiktoken:cl100k_base")
    ids, mask = taskcli.render(shown.rows[0].conversation, tokenizer)

Writing a training file is ``taskcli.export.export(plan, "train.jsonl")`` (the `export`
package keeps that name). Each name is imported from its module when it is first used, so
``import taskcli`` (and ``taskcli --help``) loads none of the heavy libraries behind them.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Each public name and the module that defines it.
_HOMES = {
    # errors and the conversation rules
    "TaskcliError": "taskcli.errors",
    "UsageError": "taskcli.errors",
    "InvalidData": "taskcli.errors",
    "DataUnavailable": "taskcli.errors",
    "Problem": "taskcli.conversation",
    "check_messages": "taskcli.conversation",
    "check_record": "taskcli.conversation",
    # tasks and mixtures
    "Task": "taskcli.tasks.common",
    "TaskMixture": "taskcli.tasks.common",
    "TaskSequence": "taskcli.tasks.common",
    "create_task": "taskcli.tasks.registry",
    "all_tasks": "taskcli.tasks.registry",
    "register": "taskcli.tasks.registry",
    "load_spec": "taskcli.mixing.spec",
    "build_plan": "taskcli.mixing.plan",
    # targets and the commands' library sides
    "open_target": "taskcli.targets",
    "Target": "taskcli.targets",
    "Row": "taskcli.targets",
    "show_rows": "taskcli.show",
    "open_browser": "taskcli.browse",
    "validate_files": "taskcli.validate",
    "compute_stats": "taskcli.stats",
    "score_file": "taskcli.eval",
    "score_answers": "taskcli.eval",
    # the training view
    "load_tokenizer": "taskcli.training.tokenizer",
    "render": "taskcli.training.render",
    "render_many": "taskcli.training.render",
    "Rendering": "taskcli.training.render",
    "TemplateRendering": "taskcli.training.chat_template",
    # running model-written programs
    "run_program": "taskcli.sandbox.execution",
}

__all__ = ["__version__", *_HOMES]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'taskcli' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
