"""Everything taskcli draws: Rich panels, tables and bars for people, compact JSON for scripts.

The one module that draws with Rich. Library modules return data (a `Stats`, a `Score`, a plan
summary, validation reports); the functions here turn it into output. Results go to stdout,
messages and progress bars to stderr, so ``--json`` output can be piped. Rich honours
``NO_COLOR`` and drops colour when stdout is not a terminal. Rich modules that only some commands
need are imported inside the functions that use them: every command starts faster.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.text import Text

if TYPE_CHECKING:
    from rich.measure import Measurement
    from rich.table import Table

    from taskcli.file_rules import FileReport
    from taskcli.scoring import Score
    from taskcli.stats import SourceStats, Stats, Summary

console = Console()
error_console = Console(stderr=True)

ROLE_STYLES = {"system": "magenta", "user": "cyan", "assistant": "green"}
PART_STYLES = {"python": "bold yellow", "python_output": "yellow"}


def print_error(message: str) -> None:
    """The message on stderr, not wrapped, so paths and commands in it copy whole."""
    error_console.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def print_json(value: Any) -> None:
    """One JSON document on stdout, indented for people who read it too."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def print_validation_json(reports: list[FileReport], *, strict: bool) -> None:
    """`taskcli validate --json`, written piece by piece: millions of problems are read back
    from their spool files one at a time instead of being gathered into one document."""
    write = sys.stdout.write
    passed = all(report.passes(strict=strict) for report in reports)
    write(f'{{\n  "valid": {"true" if passed else "false"},\n  "files": [\n')
    for number, report in enumerate(reports):
        if number:
            write(",\n")
        for chunk in report.json_chunks(strict=strict):
            write(chunk)
    write("\n  ]\n}\n")


def print_jsonl(rows: Iterable[Any]) -> None:
    """One compact JSON document per line on stdout."""
    write = sys.stdout.write
    for row in rows:
        write(orjson.dumps(row).decode() + "\n")


def _splits_text(splits: list[str] | dict[str, list[str]]) -> str:
    if isinstance(splits, dict):
        distinct = {tuple(v) for v in splits.values()}
        if len(distinct) == 1:
            return ", ".join(distinct.pop())
        return "; ".join(f"{k}: {', '.join(v)}" for k, v in splits.items())
    return ", ".join(splits)


def _subsets_text(subsets: list[str]) -> str:
    if len(subsets) > 6:
        return ", ".join(subsets[:5]) + f", … ({len(subsets)} in all)"
    return ", ".join(subsets)


def print_task_table(entries: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="Registered tasks", title_justify="left", show_lines=False)
    table.add_column("task", style="bold")
    table.add_column("description")
    table.add_column("source", style="dim")
    table.add_column("subsets")
    table.add_column("splits")
    table.add_column("params")
    table.add_column("eval")
    for entry in entries:
        params = ", ".join(
            f"{p['name']} (required)" if p["default"] is None else f"{p['name']}={p['default']}"
            for p in entry["params"]
        )
        table.add_row(
            entry["name"],
            entry["description"],
            entry["source"],
            _subsets_text(entry["subsets"]),
            _splits_text(entry["splits"]),
            params,
            entry["eval_type"] or "-",
        )
    console.print(table)


def _content(content: str | list[dict[str, str]]) -> RenderableType:
    """A message's content; tool calls and their output stand out from the text around them."""
    if isinstance(content, str):
        return Text(content)
    pieces: list[RenderableType] = []
    for part in content:
        kind = part.get("type", "?")
        if kind in PART_STYLES:
            label = "python ▶" if kind == "python" else "output ◀"
            pieces.append(
                Text.assemble((f"{label} ", "dim"), (part.get("text", ""), PART_STYLES[kind]))
            )
        else:
            pieces.append(Text(part.get("text", "")))
    return Group(*pieces)


def _metadata(conversation: dict[str, Any]) -> Text | None:
    fields = {k: v for k, v in conversation.items() if k != "messages"}
    if not fields:
        return None
    text = Text()
    for key, value in fields.items():
        shown = value if isinstance(value, str) else orjson.dumps(value).decode()
        if len(shown) > 120:
            shown = shown[:117] + "…"
        text.append(f"{key}: ", style="bold dim")
        text.append(shown + "  ", style="dim")
    return text


def print_conversations(
    label: str, conversations: list[dict[str, Any]], *, first_index: int, total: int
) -> None:
    """Each conversation under a header naming task, subset, split, index and total."""
    from rich.panel import Panel

    for offset, conversation in enumerate(conversations):
        index = first_index + offset
        console.rule(f"[bold]{escape(label)}[/]  ·  example {index} of {total} (0-based)")
        metadata = _metadata(conversation)
        if metadata is not None:
            console.print(metadata)
        for message in conversation.get("messages", []):
            role = message.get("role", "?")
            style = ROLE_STYLES.get(role, "red")
            console.print(
                Panel(
                    _content(message.get("content", "")),
                    title=f"[bold {style}]{escape(str(role))}[/]",
                    title_align="left",
                    border_style=style,
                )
            )


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def print_validation(reports: list[FileReport], *, strict: bool, per_rule: int) -> None:
    """`taskcli validate` for people: per file a summary, then problems grouped by rule.

    Each rule shows its first `per_rule` occurrences as ``file:line: [rule] message (at path)``;
    the counts are always complete, and a hint says how to see what was left out.
    """
    from taskcli.file_rules import format_problem

    left_out = False
    for report in reports:
        passed = report.passes(strict=strict)
        summary = Text.assemble(
            ("✓ " if passed else "✗ ", "bold green" if passed else "bold red"),
            (f"{report.path}: ", "bold"),
            _plural(report.conversations, "conversation"),
            f" ({report.rejected:,} invalid)" if report.rejected else "",
            ", ",
            (_plural(len(report.errors), "error"), "red" if report.errors else ""),
            ", ",
            (_plural(len(report.warnings), "warning"), "yellow" if report.warnings else ""),
            ("  valid" if passed else "  invalid", "bold green" if passed else "bold red"),
        )
        console.print(summary, highlight=False, soft_wrap=True)
        for problems, kind, style in (
            (report.errors, "error", "red"),
            (report.warnings, "warning", "yellow"),
        ):
            groups: dict[str, list[Any]] = {}
            for problem in problems:
                groups.setdefault(problem.rule, []).append(problem)
            for rule, group in groups.items():
                count = problems.counts[rule]  # every occurrence, not only those kept
                console.print(
                    Text.assemble("  ", (rule, f"bold {style}"), f": {_plural(count, kind)}"),
                    highlight=False,
                    soft_wrap=True,
                )
                for problem in group[:per_rule]:
                    console.print(
                        Text("    " + format_problem(report.path, problem)),
                        highlight=False,
                        soft_wrap=True,
                    )
                if count > per_rule:
                    left_out = True
                    console.print(
                        Text(f"    … and {count - per_rule:,} more", style="dim"),
                        highlight=False,
                        soft_wrap=True,
                    )
    if len(reports) > 1:
        failed = sum(not report.passes(strict=strict) for report in reports)
        console.print(
            f"{_plural(len(reports), 'file')}: {len(reports) - failed:,} valid, {failed:,} invalid",
            highlight=False,
        )
    if left_out:
        console.print(
            Text(
                "Not every occurrence is shown: raise --max-errors, or use --json to list all "
                "(--rejects PATH saves the invalid lines with their reasons).",
                style="dim",
            ),
            highlight=False,
            soft_wrap=True,
        )


# --- export ---------------------------------------------------------------------------------


def print_plan(summary: dict[str, Any]) -> None:
    """The dry-run plan as a Rich table on stdout."""
    from rich.table import Table

    table = Table(
        title=f"{summary['spec']}  ·  mode {summary['mode']}, seed {summary['seed']}",
        title_justify="left",
    )
    for column in ("entry", "task", "subset", "split", "slice", "repeat", "rows", "share"):
        numeric = column in ("repeat", "rows", "share")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    table.add_column("params", overflow="fold")
    for item in summary["entries"]:
        start, stop, step = item["slice"]
        table.add_row(
            f"tasks[{item['entry']}]",
            item["task"],
            item["subset"] or "-",
            item["split"] or "-",
            f"{start}:{'' if stop is None else stop}:{step}",
            str(item["repeat"]),
            f"{item['rows']:,}",
            f"{item['share']:.1%}",
            " ".join(f"{key}={value}" for key, value in item["params"].items()),
        )
    table.add_section()
    table.add_row("total", "", "", "", "", "", f"{summary['total']:,}", "100.0%", "")
    console.print(table)
    selected = summary["selected"]
    if selected["rows"] != summary["total"]:
        console.print(
            f"would write rows {selected['start']:,} to {selected['stop']:,} of the final order "
            f"({selected['rows']:,} rows)"
        )


# --- stats ---------------------------------------------------------------------------------

BAR_WIDTH = 40
_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar `fraction` (0..1) of `width` cells long, in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, rest = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[rest] if rest else "")


class Bar:
    """A bar chart cell: `fraction` of whatever width (up to BAR_WIDTH) its column gets."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        from rich.measure import Measurement

        return Measurement(min(10, options.max_width), min(BAR_WIDTH, options.max_width))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(bar(self.fraction, options.max_width), style="cyan", no_wrap=True)


def _range_label(low: int, high: int) -> str:
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


def _summary_row(name: str, summary: Summary) -> list[str]:
    return [
        name,
        f"{summary.count:,}",
        f"{summary.min:,}",
        f"{summary.median:,}",
        f"{summary.p95:,}",
        f"{summary.max:,}",
        f"{summary.mean:,.1f}",
    ]


def _summary_table(title: str, rows: list[list[str]]) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("", style="bold")
    for column in ("conversations", "min", "median", "p95", "max", "mean"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def _bar_table(title: str, label: str, extra: tuple[str, ...] = ()) -> Table:
    """A table of name, rows, share and a bar, plus `extra` right-aligned columns."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column(label, style="bold")
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    table.add_column("", ratio=1)
    for column in extra:
        table.add_column(column, justify="right", no_wrap=True)
    return table


def _histogram_table(stats: Stats) -> Table:
    table = _bar_table("Length histogram (total characters per conversation)", "characters")
    largest = max(b.count for b in stats.histogram)
    for b in stats.histogram:
        table.add_row(
            _range_label(b.low, b.high),
            f"{b.count:,}",
            f"{stats.share(b.count):.1%}",
            Bar(b.count / largest),
        )
    return table


def _sources_table(sources: list[SourceStats]) -> Table:
    table = _bar_table("Share per source", "source", ("characters", "share"))
    for source in sources:
        table.add_row(
            escape(source.name),
            f"{source.rows:,}",
            f"{source.row_share:.1%}",
            Bar(source.row_share),
            f"{source.characters:,}",
            f"{source.character_share:.1%}",
        )
    return table


def render_stats(stats: Stats, *, show_sources: bool = False) -> RenderableType:
    """The stats as Rich tables with bar charts; `show_sources` adds the share per source."""
    from taskcli.stats import PERCENTILE_METHOD

    header = Text.assemble(
        ("Stats of ", "bold"),
        (stats.label, "bold cyan"),
        f"  ·  {stats.conversations:,} conversations  ·  {PERCENTILE_METHOD} percentiles",
    )
    if not stats.conversations:
        return Group(header, Text("No conversations.", style="yellow"))
    from rich.table import Table

    overview = Table(title="Conversations", title_justify="left", show_header=False)
    overview.add_column(style="bold")
    overview.add_column(justify="right")
    overview.add_column(justify="right")
    overview.add_row("conversations", f"{stats.conversations:,}", "")
    for name, count in (
        ("with a system message", stats.with_system),
        ("with tool calls", stats.with_tool_calls),
    ):
        overview.add_row(name, f"{count:,}", f"{stats.share(count):.1%}")
    per_conversation = [_summary_row("messages", stats.messages)] + [
        _summary_row(f"{escape(role)} characters", summary)
        for role, summary in stats.characters.items()
    ]
    pieces: list[RenderableType] = [
        header,
        overview,
        _summary_table("Per conversation", per_conversation),
    ]
    pieces.append(_histogram_table(stats))
    if show_sources:
        pieces.append(_sources_table(stats.sources))
    return Group(*pieces)


# --- eval -----------------------------------------------------------------------------------


def render_score(score: Score) -> RenderableType:
    """The score for people: accuracy with its count and interval, failures, subjects."""
    from rich.table import Table

    label = " / ".join(part for part in (score.task, score.subset, score.split) if part)
    low, high = score.ci95
    headline = Text.assemble(
        (label, "bold"),
        ": accuracy ",
        (f"{score.accuracy:.1%}", "bold"),
        f" ({score.correct}/{score.n} correct), 95% CI {low:.1%} to {high:.1%}",
    )
    pieces: list[RenderableType] = [headline]
    if score.n < score.examples:
        pieces.append(Text(f"answered {score.n} of the task's {score.examples} examples", "dim"))
    if score.failures:
        counts = ", ".join(f"{reason} {count}" for reason, count in sorted(score.failures.items()))
        if score.exceptions:
            types = ", ".join(f"{name} {count}" for name, count in score.exceptions.most_common())
            counts += f" ({types})"
        pieces.append(Text(f"failed programs: {counts}"))
    if score.by_subject:
        table = Table(title="by subject", title_justify="left")
        table.add_column("subject")
        table.add_column("correct", justify="right")
        table.add_column("n", justify="right")
        table.add_column("accuracy", justify="right")
        for subject, (n, correct) in sorted(score.by_subject.items()):
            table.add_row(subject, str(correct), str(n), f"{correct / n:.1%}")
        pieces.append(table)
    return Group(*pieces)


# --- progress ------------------------------------------------------------------------------


@contextlib.contextmanager
def progress_bar(
    total: int, console: Any = None, label: str = "exporting"
) -> Iterator[Callable[[int], None] | None]:
    """A rows / rows-per-second / ETA bar on stderr when it is a terminal; otherwise None."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = console or error_console
    if not console.is_terminal:
        yield None
        return
    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task_id = bar.add_task("export", total=total, rate="")

        def advance(rows: int) -> None:
            bar.advance(task_id, rows)
            speed = bar.tasks[0].speed
            bar.update(task_id, rate=f"{speed:,.0f} rows/s" if speed else "")

        yield advance


@contextlib.contextmanager
def count_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A ``done / total`` bar on stderr when it is a terminal; the callback takes both counts,
    because the total is known only once the work has started (`taskcli eval`)."""
    from rich.progress import Progress

    terminal = error_console.is_terminal
    with Progress(console=error_console, transient=True, disable=not terminal) as bar:
        task_id = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task_id, completed=done, total=total)
