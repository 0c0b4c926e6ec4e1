"""A conversation as `show` and `browse` draw it: a header, its source, its other keys, and a
panel per message with tool parts standing out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.text import Text

if TYPE_CHECKING:
    from taskcli.show import Row, Shown

from taskcli.ui import console

ROLE_STYLES = {"system": "magenta", "user": "cyan", "assistant": "green"}


PART_STYLES = {"python": "bold yellow", "python_output": "yellow"}


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


METADATA_WIDTH = 120


def _metadata(conversation: dict[str, Any]) -> Text | None:
    """The conversation's other keys, one short line each: a multi-line value (HumanEval's
    test code) shows its first line and how many lines there are; ``--json`` shows it all."""
    fields = {k: v for k, v in conversation.items() if k != "messages"}
    if not fields:
        return None
    text = Text()
    for key, value in fields.items():
        shown = value if isinstance(value, str) else orjson.dumps(value).decode()
        lines = shown.strip().splitlines() or [""]
        shown = lines[0] + (f" … ({len(lines)} lines)" if len(lines) > 1 else "")
        if len(shown) > METADATA_WIDTH:
            shown = shown[: METADATA_WIDTH - 1] + "…"
        if text:
            text.append("\n")
        text.append(f"{key}: ", style="bold dim")
        text.append(shown, style="dim")
    return text


def header(shown: Shown, row: Row) -> str:
    """What a conversation's rule says: the target, the row, where the row comes from, and a
    file's format (as its records were read; a big file read only up to the row shown names
    its lines instead)."""
    label = escape(shown.label)
    said = f"  ·  {shown.format}" if shown.format is not None else ""
    if row.origin is not None:
        return f"[bold]{label}[/]  ·  row {row.index} of {shown.total} (0-based)"
    if shown.total is not None:
        return f"[bold]{label}[/]  ·  example {row.index} of {shown.total} (0-based){said}"
    lines = f" of {shown.lines:,}" if shown.lines is not None else ""
    return f"[bold]{label}[/]  ·  example {row.index} (0-based)  ·  line {row.line:,}{lines}"


def print_conversations(shown: Shown) -> None:
    """Each conversation under a header naming the target, the row, the total and the source."""
    for row in shown.rows:
        console.stdout.rule(header(shown, row))
        console.stdout.print(conversation_view(row))


def source_line(row: Row) -> Text:
    return Text(f"from {row.entry}, example {row.origin['index']} of its task", "bold dim")


def conversation_view(row: Row) -> RenderableType:
    """One conversation as `show` draws it: its source, its other keys, a panel per message
    (`taskcli browse` draws its conversation pane with this too)."""
    from rich.panel import Panel

    pieces: list[RenderableType] = []
    if row.origin is not None:
        pieces.append(source_line(row))
    metadata = _metadata(row.conversation)
    if metadata is not None:
        pieces.append(metadata)
    for message in row.conversation.get("messages", []):
        role = message.get("role", "?")
        style = ROLE_STYLES.get(role, "red")
        pieces.append(
            Panel(
                _content(message.get("content", "")),
                title=f"[bold {style}]{escape(str(role))}[/]",
                title_align="left",
                border_style=style,
            )
        )
    return Group(*pieces)
