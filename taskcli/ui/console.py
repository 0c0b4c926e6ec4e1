"""What goes to the terminal that is not a view: errors, notes, warnings, JSON, progress.

Results go to stdout, messages and progress bars to stderr, so ``--json`` output can be piped.
Rich honours ``NO_COLOR`` and drops colour when stdout is not a terminal. Rich modules that only
some commands need are imported inside the functions that use them: every command starts faster.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    pass


stdout = Console()


stderr = Console(stderr=True)


def print_error(message: str, hint: str | None = None) -> None:
    """``Error: message`` and ``Hint: hint`` on stderr.

    On a terminal, lines are wrapped at words to its width, never inside a `command` (a span in
    backticks) or a long path; anywhere else (a log file, a pipe) each line is written whole.
    """
    width = stderr.width if stderr.is_terminal else None
    if hint:
        hint = hint[0].upper() + hint[1:]  # a sentence of advice
    for label, text, style in (("Error:", message, "bold red"), ("Hint:", hint, "bold yellow")):
        if not text:
            continue
        for number, line in enumerate(wrap_message(text, width, len(label) + 1)):
            head = (label, style) if number == 0 else " " * len(label)
            stderr.print(Text.assemble(head, " ", line), highlight=False, soft_wrap=True)


def wrap_message(text: str, width: int | None, indent: int) -> list[str]:
    """The lines of `text`, each wrapped to `width` less `indent` (None: not wrapped), keeping
    every backtick span and every long word whole."""
    import re
    import textwrap

    if width is None:
        return text.splitlines() or [""]
    glue = "\x00"
    protected = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", glue), text)
    lines: list[str] = []
    for paragraph in protected.splitlines() or [""]:
        lead = paragraph[: len(paragraph) - len(paragraph.lstrip(" "))]
        wrapped = textwrap.wrap(
            paragraph,
            width=max(20, width - indent),
            subsequent_indent=lead + "  " if lead else "",
            break_long_words=False,
            break_on_hyphens=False,
            drop_whitespace=True,
        )
        lines += [line.replace(glue, " ") for line in wrapped or [""]]
    return lines


def print_json(value: Any) -> None:
    """One JSON document on stdout, indented for people who read it too."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def print_jsonl(rows: Iterable[Any]) -> None:
    """One compact JSON document per line on stdout."""
    write = sys.stdout.write
    for row in rows:
        write(orjson.dumps(row).decode() + "\n")


def print_note(message: str) -> None:
    """A line about the work (what was written, why fewer rows were shown) on stderr, whole."""
    stderr.print(Text(message), highlight=False, soft_wrap=True)


def print_warning(message: str) -> None:
    """A warning about the result (it may not mean what it seems) on stderr, whole."""
    stderr.print(Text(f"warning: {message}", style="yellow"), highlight=False, soft_wrap=True)


_active: list[Any] = []  # the bars and spinners on screen now


@contextlib.contextmanager
def _tracked(display: Any) -> Iterator[Any]:
    """`display` (a Rich Progress or Status) entered, and known to `stop_progress` meanwhile."""
    with display as shown:
        _active.append(display)
        try:
            yield shown
        finally:
            _active.remove(display)


def stop_progress() -> None:
    """Take every bar and spinner off the screen now (Ctrl-C), before the command unwinds."""
    for display in list(_active):
        display.stop()


@contextlib.contextmanager
def progress_bar(
    total: int, console: Any = None, label: str = "exporting"
) -> Iterator[Callable[[int], None] | None]:
    """A rows / rows-per-second / ETA bar on stderr when it is a terminal; otherwise None."""
    console = console or stderr
    if not console.is_terminal:  # decided before rich.progress is imported: a pipe pays nothing
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with _tracked(Progress(*columns, console=console, transient=True)) as bar:
        task_id = bar.add_task("export", total=total, rate="")

        def advance(rows: int) -> None:
            bar.advance(task_id, rows)
            speed = bar.tasks[0].speed
            bar.update(task_id, rate=f"{speed:,.0f} rows/s" if speed else "")

        yield advance


@contextlib.contextmanager
def byte_bar(total: int | None, label: str) -> Iterator[Callable[[int], None] | None]:
    """A bytes / MB-per-second / ETA bar on stderr when it is a terminal, for a pass over files
    whose size is known; otherwise None (nothing is drawn on a pipe or in a log)."""
    if not stderr.is_terminal or not total:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn(label),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with _tracked(Progress(*columns, console=stderr, transient=True)) as bar:
        task_id = bar.add_task(label, total=total)
        yield lambda count: bar.advance(task_id, count)


class ExportBar:
    """The export's progress: a phase name (planning, shuffling, converting, ordering,
    flushing), and the rows converted while that is what takes the time."""

    def __init__(self, progress: Any, task_id: Any) -> None:
        self.progress, self.task_id = progress, task_id

    def advance(self, rows: int) -> None:
        self.progress.advance(self.task_id, rows)

    def phase(self, name: str) -> None:
        self.progress.update(self.task_id, description=name)


@contextlib.contextmanager
def export_bar(total: int) -> Iterator[ExportBar | None]:
    """An `ExportBar` on stderr when it is a terminal; otherwise None."""
    if not stderr.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeRemainingColumn(),
    )
    with _tracked(Progress(*columns, console=stderr, transient=True)) as bar:
        yield ExportBar(bar, bar.add_task("starting", total=total))


@contextlib.contextmanager
def status(label: str) -> Iterator[None]:
    """A spinner with `label` on stderr while a step without a count runs (terminal only)."""
    if not stderr.is_terminal:
        yield
        return
    with _tracked(stderr.status(label)):
        yield


@contextlib.contextmanager
def count_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A ``done / total`` bar on stderr when it is a terminal; the callback takes both counts,
    because the total is known only once the work has started (`taskcli eval`)."""
    if not stderr.is_terminal:
        yield lambda done, total: None
        return
    from rich.progress import Progress

    with _tracked(Progress(console=stderr, transient=True)) as bar:
        task_id = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task_id, completed=done, total=total)
