"""The `taskcli` command line: a thin Typer layer over the library.

Each command parses its options, calls the library, and prints: Rich for people, ``--json`` for
scripts. Library errors (`taskcli.errors`) become a one-line message and an exit code, never a
traceback. Heavy modules are imported inside the commands that use them, so ``taskcli --help``
and ``taskcli list`` start fast.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from taskcli import __version__
from taskcli.errors import TaskcliError


class _Group(TyperGroup):
    """Turns library errors into a message on stderr and the error's exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TaskcliError as error:
            from taskcli.output import print_error

            print_error(str(error))
            raise typer.Exit(error.exit_code) from None


app = typer.Typer(
    cls=_Group,
    name="taskcli",
    help="Chat datasets as one conversation format: list, show, validate, export and score them."
    "\n\nExample: [bold]taskcli show examples/identity.jsonl --count 2[/]",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")
]
SubsetOption = Annotated[
    str | None, typer.Option("--subset", help="Dataset subset (config); default: the task's own.")
]
SplitOption = Annotated[
    str | None, typer.Option("--split", help="Dataset split; default: the task's own.")
]
ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--param", "-p", metavar="KEY=VALUE", help="A task parameter; repeat for several."
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="TASKCLI_DATA_DIR",
        help="Folder of local dataset copies, laid out as `hf download REPO --local-dir "
        "DIR/REPO` leaves them. Without it, the Hugging Face Hub and its cache are used.",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"taskcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """Chat datasets as one conversation format: list, show, validate, export and score them."""


@app.command("list")
def list_tasks(json_output: JsonOption = False) -> None:
    """List the registered tasks: source, subsets, splits, parameters and evaluation.

    Example: [bold]taskcli list --json[/]
    """
    from taskcli import output
    from taskcli.registry import all_tasks, describe

    entries = [describe(cls) for cls in all_tasks().values()]
    if json_output:
        output.print_json(entries)
    else:
        output.print_task_table(entries)


def parse_params(pairs: list[str] | None) -> dict[str, str]:
    """``["size=10", "split=test"]`` as a dict; a pair without '=' is a usage error."""
    params: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--param")
        params[key.strip()] = value
    return params


@app.command()
def show(
    task: Annotated[
        str, typer.Argument(help="A task name (see `taskcli list`) or a path to a .jsonl file.")
    ],
    subset: SubsetOption = None,
    split: SplitOption = None,
    index: Annotated[int, typer.Option("--index", "-i", help="First example to show.")] = 0,
    count: Annotated[
        int, typer.Option("--count", "-n", min=1, help="How many examples to show.")
    ] = 1,
    param: ParamOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show conversations of a task, one panel per message.

    Example: [bold]taskcli show smoltalk --split test --index 0[/]
    """
    from taskcli import output
    from taskcli.registry import open_task

    opened = open_task(task, subset, split, parse_params(param), data_dir=data_dir)
    total = len(opened.task)
    if not 0 <= index < total:
        from taskcli.errors import UsageError

        raise UsageError(
            f"index {index} is out of range: {opened.label} has {total} examples "
            f"(indices 0 to {total - 1})."
            if total
            else f"{opened.label} has no examples."
        )
    conversations = opened.task.batch(index, index + count)
    if json_output:
        output.print_jsonl(conversations)
    else:
        output.print_conversations(opened.label, conversations, first_index=index, total=total)


def main() -> None:
    """Console-script entry point: SIGTERM unwinds like Ctrl-C, so partial outputs are removed."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    app()
