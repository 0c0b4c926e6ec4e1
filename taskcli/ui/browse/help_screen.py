"""The help screen of `taskcli browse`: the keys, until any key is pressed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import ModalScreen
from textual.widgets import Static

if TYPE_CHECKING:
    from textual import events

# What `?` shows; `taskcli browse --help` lists the same keys (tests/test_browse.py checks).
KEYS = (
    ("↑ ↓  k j", "previous / next row"),
    ("PgUp PgDn", "a screen of rows up / down"),
    ("Home End  g G", "first / last row"),
    ("u d", "scroll the conversation up / down"),
    (":", "jump to a row index"),
    ("/", "search every row's text, matches marked (Esc cancels)"),
    ("n N", "next / previous match, round the end"),
    ("t", "text or tokens (needs --tokenizer)"),
    ("s", "show one source of a mixture, the next, then all"),
    ("w", "write the row as JSON to a file"),
    ("?", "this help"),
    ("q  Ctrl-C", "quit"),
)


class HelpScreen(ModalScreen[None]):
    """The keys, until any key is pressed."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    #help { width: auto; max-width: 76; height: auto; border: round $accent; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        text = Text("Keys\n", "bold")
        for keys, what in KEYS:
            text.append(f"{keys:<15}", "bold")
            text.append(f"{what}\n")
        text.append("any key closes this", "dim")
        yield Static(text, id="help")

    def on_key(self, event: events.Key) -> None:
        event.stop()
        self.dismiss()
