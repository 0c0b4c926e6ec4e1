"""How taskcli prints: Rich panels and tables for people, compact JSON for scripts.

Results go to stdout, messages and progress bars to stderr, so ``--json`` output can be piped.
Rich honours ``NO_COLOR`` and drops colour when stdout is not a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import orjson
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

console = Console()
error_console = Console(stderr=True)

ROLE_STYLES = {"system": "magenta", "user": "cyan", "assistant": "green"}
PART_STYLES = {"python": "bold yellow", "python_output": "yellow"}


def print_error(message: str) -> None:
    error_console.print(f"[bold red]Error:[/] {escape(message)}", highlight=False)


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
    table = Table(title="Registered tasks", title_justify="left", show_lines=False)
    table.add_column("task", style="bold")
    table.add_column("description")
    table.add_column("source", style="dim")
    table.add_column("subsets")
    table.add_column("splits")
    table.add_column("params")
    table.add_column("eval")
    for entry in entries:
        params = ", ".join(f"{p['name']}={p['default']}" for p in entry["params"])
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
