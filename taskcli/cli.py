"""The `taskcli` command line: a thin Typer layer over the library.

Each command parses its options, calls the library, and prints: Rich for people, ``--json`` for
scripts. Library errors (`taskcli.errors`) become a one-line message and an exit code, never a
traceback. Heavy modules are imported inside the commands that use them, so ``taskcli --help``
and ``taskcli list`` start fast. Annotations are objects, not strings (no ``from __future__ import
annotations``): Typer reads them at every start, and evaluating strings would cost ~9 ms.
"""

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from taskcli import __version__
from taskcli.errors import TaskcliError
from taskcli.export.formats import formats_help


class _Group(TyperGroup):
    """Turns library errors into a message on stderr and the error's exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TaskcliError as error:
            from taskcli.render import print_error

            print_error(str(error))
            raise typer.Exit(error.exit_code) from None


app = typer.Typer(
    cls=_Group,
    name="taskcli",
    help="Chat datasets as one conversation format: look at them, check them, mix them into "
    "training files, measure them, and score model answers against them."
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
    """Chat datasets as one conversation format."""


@app.command("list")
def list_tasks(json_output: JsonOption = False) -> None:
    """List the registered tasks: source, subsets, splits, parameters and evaluation.

    Example: [bold]taskcli list --json[/]
    """
    from taskcli import render
    from taskcli.registry import all_tasks, describe

    entries = [describe(cls) for cls in all_tasks().values()]
    if json_output:
        render.print_json(entries)
    else:
        render.print_task_table(entries)


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
    max_line_bytes: MaxLineOption = None,
) -> None:
    """Show conversations of a task, one panel per message.

    Example: [bold]taskcli show smoltalk --split test --index 0[/]
    """
    from taskcli import render
    from taskcli.jsonl import line_limit
    from taskcli.registry import open_task

    with line_limit(max_line_bytes):
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
        render.print_jsonl(conversations)
    else:
        render.print_conversations(opened.label, conversations, first_index=index, total=total)


@app.command()
def validate(
    files: Annotated[
        list[str],
        typer.Argument(metavar="FILE", help="JSONL files of conversations; '-' reads stdin."),
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
            help='Write the lines without errors here, normalised to {"messages": [...]}.',
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects", metavar="PATH", help="Write the invalid lines here, with their reasons."
        ),
    ] = None,
    max_line_bytes: MaxLineOption = None,
) -> None:
    """Check chat JSONL files line by line: every broken rule, with file:line, in one pass.

    Exit code 0 when every file is valid, 1 when any is not, 2 for a usage error. Rules:
    docs/rules.md.

    Example: [bold]taskcli validate data.jsonl --rejects bad.jsonl --output-valid clean.jsonl[/]
    """
    from taskcli import render
    from taskcli.validate import validate_files

    reports = validate_files(
        files,
        allow_system=not no_system,
        output_valid=output_valid,
        rejects=rejects,
        keep_per_rule=max(max_errors, 1),
        spool=json_output,
        max_line_bytes=max_line_bytes,
    )
    passed = all(report.passes(strict=strict) for report in reports)
    if json_output:
        render.print_validation_json(reports, strict=strict)
    else:
        render.print_validation(reports, strict=strict, per_rule=max_errors)
    raise typer.Exit(0 if passed else 1)


@app.command()
def export(
    spec: Annotated[Path, typer.Argument(metavar="SPEC.yaml", help="The mixture spec.")],
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", metavar="OUT", help="Output file; '-' for stdout; .gz compresses."
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help=f"The line format. {formats_help()}",
        ),
    ] = "messages",
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
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
    max_line_bytes: MaxLineOption = None,
) -> None:
    """Export a mixture spec as a training file, with a manifest of what went in.

    The order is exactly nanochat's TaskMixture shuffle (or, with `mode: sequence`, the entries
    in turn); reruns are byte-identical; a failed or killed export leaves no partial file.

    Example: [bold]taskcli export examples/mixture.yaml -o train.jsonl --format nanochat[/]
    """
    from taskcli import render
    from taskcli.errors import UsageError
    from taskcli.export import export, get_format, manifest_location
    from taskcli.jsonl import line_limit
    from taskcli.plan import build_plan, parse_shard, selected_rows
    from taskcli.spec import load_spec

    get_format(fmt)
    shard_range = parse_shard(shard) if shard is not None else None
    if output is None and not dry_run:
        raise UsageError("missing --output/-o OUT (use -o - for standard output).")
    with line_limit(max_line_bytes):  # the JSONL files of `customjson` entries
        plan = build_plan(load_spec(spec), data_dir=data_dir)
    if dry_run:
        summary = plan.summary(limit, shard_range)
        if json_output:
            render.print_json(summary)
        else:
            render.print_plan(summary)
        return
    total = len(selected_rows(plan.total, limit, shard_range))
    with render.progress_bar(total) as progress:
        manifest = export(plan, output, fmt=fmt, limit=limit, shard=shard_range, progress=progress)
    if manifest is None:
        return
    if json_output:
        render.print_json(manifest)
    else:
        where = manifest_location(output)
        if where is None:
            note = "no manifest: not a regular file"
        else:  # beside the output, unless the output is a symlink to another folder
            beside = where.parent == Path(output).absolute().parent
            note = f"manifest: {where.name if beside else where}"
        render.error_console.print(
            f"wrote {manifest['rows']:,} rows to {output} ({note})", highlight=False
        )


@app.command()
def stats(
    target: Annotated[
        str,
        typer.Argument(help="A task name, a mixture spec (.yaml/.yml) or a path to a .jsonl file."),
    ],
    subset: SubsetOption = None,
    split: SplitOption = None,
    param: ParamOption = None,
    data_dir: DataDirOption = None,
    json_output: JsonOption = False,
    max_line_bytes: MaxLineOption = None,
) -> None:
    """Count conversations, messages and characters per role, with a length histogram.

    Percentiles are exact (nearest-rank). For a mixture spec, also each entry's rows and share.

    Example: [bold]taskcli stats smoltalk --split test[/]
    """
    from taskcli import render
    from taskcli.jsonl import line_limit
    from taskcli.stats import compute_stats, open_target

    with line_limit(max_line_bytes):
        opened = open_target(target, subset, split, parse_params(param), data_dir=data_dir)
    rows = sum(len(source.task) for source in opened.sources)
    with render.progress_bar(rows, label="reading") as progress:
        result = compute_stats(opened, on_progress=progress)
    if json_output:
        render.print_json(result.to_json())
    else:
        render.console.print(render.render_stats(result, show_sources=opened.is_spec))


@app.command("eval")
def eval_answers(
    task: Annotated[
        str, typer.Argument(metavar="TASK", help="The task the answers are for (`taskcli list`).")
    ],
    answers: Annotated[
        Path,
        typer.Argument(
            metavar="ANSWERS.jsonl",
            help='One answer per line: {"index": N, "completion": "..."}, N as `show` numbers it.',
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
        float, typer.Option(min=0.01, help="Seconds each program may run (code tasks).")
    ] = 5.0,
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
    from taskcli import render, scoring

    opened = scoring.open_for_eval(
        task, answers, subset, split, parse_params(param), data_dir=data_dir
    )
    with render.count_bar(f"scoring {opened.label}") as progress:
        result = scoring.score_file(
            opened,
            answers,
            workers=workers,
            timeout=timeout,
            details_path=details,
            on_progress=progress,
        )
    if json_output:
        render.print_json(result.to_dict())
    else:
        render.console.print(render.render_score(result))


def main() -> None:
    """Console-script entry point: SIGTERM unwinds like Ctrl-C, so partial outputs are removed."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    app(prog_name="taskcli")
