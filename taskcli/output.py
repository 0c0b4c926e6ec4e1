"""How taskcli prints: Rich panels and tables for people, compact JSON for scripts.

Results go to stdout, messages and progress bars to stderr, so ``--json`` output can be piped.
Rich honours ``NO_COLOR`` and drops colour when stdout is not a terminal. Rich modules that only
some commands need are imported inside the functions that use them: every command starts faster.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.text import Text

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


def print_validation(reports: list[Any], *, strict: bool, per_rule: int) -> None:
    """`taskcli validate` for people: per file a summary, then problems grouped by rule.

    Each rule shows its first `per_rule` occurrences as ``file:line: [rule] message (at path)``;
    the counts are always complete, and a hint says how to see what was left out.
    """
    from taskcli.validate import format_problem

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
                console.print(
                    Text.assemble("  ", (rule, f"bold {style}"), f": {_plural(len(group), kind)}"),
                    highlight=False,
                    soft_wrap=True,
                )
                for problem in group[:per_rule]:
                    console.print(
                        Text("    " + format_problem(report.path, problem)),
                        highlight=False,
                        soft_wrap=True,
                    )
                if len(group) > per_rule:
                    left_out = True
                    console.print(
                        Text(f"    … and {len(group) - per_rule:,} more", style="dim"),
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
