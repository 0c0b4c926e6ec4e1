"""`taskcli browse`: one screen to move through any target, row by row, as `show` draws it.

Textual is imported here and in the help screen only, and only `taskcli browse` imports them. The
rows come from `taskcli.browse.Browser` (on demand, a bounded cache), each conversation is drawn by
the same `taskcli.ui.conversation_view` and `taskcli.ui.token_view` functions as `show` (panels,
tool parts, tokens), and the status line names the rule ids `validate` would report for the row.
Rows are read by the browser's background threads and arrive as `RowsRead` messages: until then the
list and the pane say the row is being read, and no key waits for a read. Searching and reading a
big file to its end run in a worker thread, with progress, and Esc cancels them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Static

from taskcli.browse import message_text
from taskcli.errors import TaskcliError
from taskcli.training.render import DEFAULT_MAX_TOKENS
from taskcli.ui import conversation_view, token_view
from taskcli.ui.browse.help_screen import HelpScreen

if TYPE_CHECKING:
    from taskcli.browse import Browser, Item

PROGRESS_EVERY = 0.1  # seconds between progress messages of a search
SETTLE_POLL = 0.005  # seconds between looks while `BrowseApp.settle` waits


class RowsRead(Message):
    """Rows were read in the background (sent from the reader's threads)."""


class DuplicatesChecked(Message):
    """The duplicate scan went further (sent from its thread)."""


class RowList(Static):
    """The rows around the cursor, one line each: index, source, messages, length, first user
    line. Only the rows on screen are read."""

    def render(self) -> Text:
        app: BrowseApp = self.app  # type: ignore[assignment]
        return app.row_lines(self.size.width, self.size.height)


class BrowseApp(App[None]):
    """The row list beside the selected conversation, a status line, and a prompt line."""

    TITLE = "taskcli browse"
    AUTO_FOCUS = None  # keys go to the bindings; the prompt takes focus only when opened
    CSS = """
    Screen { layout: vertical; }
    #main { height: 1fr; }
    #rows { width: 45%; min-width: 30; height: 100%; border-right: solid $primary; }
    #pane { width: 1fr; }
    #status { height: 1; background: $primary-darken-2; color: $text; }
    #message { height: 1; color: $text-muted; }
    #prompt { height: 1; border: none; display: none; padding: 0; }
    """
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("up,k", "move(-1)", "up", show=False),
        Binding("down,j", "move(1)", "down", show=False),
        Binding("pageup", "page(-1)", "page up", show=False),
        Binding("pagedown", "page(1)", "page down", show=False),
        Binding("home,g", "first", "first", show=False),
        Binding("end,G", "last", "last", show=False),
        Binding("u", "scroll_pane(-1)", show=False),
        Binding("d", "scroll_pane(1)", show=False),
        Binding("colon", "ask('jump')", "jump", show=False),
        Binding("slash", "ask('search')", "search", show=False),
        Binding("n", "again(1)", "next match", show=False),
        Binding("N", "again(-1)", "previous match", show=False),
        Binding("t", "tokens", "tokens", show=False),
        Binding("s", "source", "source", show=False),
        Binding("w", "ask('write')", "write", show=False),
        Binding("question_mark", "help", "help", show=False),
        Binding("escape", "cancel", "cancel", show=False),
        Binding("q", "quit", "quit", show=False),
    ]

    def __init__(self, browser: Browser) -> None:
        super().__init__()
        self.browser = browser
        self.cursor = 0
        self.top = 0
        self.tokens = False
        self.query_text: str | None = None
        self.asking: str | None = None
        self.cancel = threading.Event()
        self.busy = False
        self.shown: int | None = None  # the target index of the conversation drawn
        browser.reader.on_read = self._row_read

    # -- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield RowList(id="rows")
            with VerticalScroll(id="pane", can_focus=False):
                yield Static(id="conversation")
        yield Static(id="status")
        yield Static("? keys · / search · : jump · q quit", id="message")
        yield Input(id="prompt")

    def on_mount(self) -> None:
        self.browser.scan_duplicates(self._duplicates_checked)
        self.show_row()

    def row_lines(self, width: int, height: int) -> Text:
        """The header and the rows from `top`, the cursor's reversed, each cut to `width`.

        Only rows already read are drawn whole; the others show what is known without
        reading them (index, source) and are asked of the background reader, the cursor's
        first. Drawing never waits on a read."""
        browser = self.browser
        self._keep_visible(height - 1)
        digits = len(f"{max(browser.length - 1, 0):,}")
        unit = "tok" if self.tokens else "chars"
        header = f"{'row':>{digits}} {'source':<8} msg {unit:>6} first user line"
        text = Text(header[:width], "bold dim", no_wrap=True, overflow="crop")
        visible = range(self.top, min(self.top + height - 1, browser.length))
        browser.want([self.cursor, *visible] if self.cursor in visible else visible)
        for k in visible:
            item = browser.peek(k)
            if item is None:
                failure = browser.failure(k)
                start = f"{browser.position(k):>{digits},} {browser.short(k)[:8]:<8} "
                rest = f"  ! {failure}" if failure else "  … reading"
                style = "red" if failure else "dim"
            else:
                messages = item.row.conversation.get("messages") or []
                length = self._length(k, messages)
                first = _first_user_line(messages)
                start = f"{item.row.index:>{digits},} {item.short[:8]:<8} "
                rest = f"{len(messages):>3} {length:>6} {first}"
                style = "red" if browser.rules(item)[0] else ""
            shown = Text(start + rest, "reverse" if k == self.cursor else style, no_wrap=True)
            shown.truncate(max(width, 1), overflow="crop", pad=True)
            text.append("\n")
            text.append_text(shown)
        return text

    def _length(self, k: int, messages: list[Any]) -> str:
        if self.tokens:
            rendered = self.browser.peek_rendering(k)
            if rendered is None:  # being rendered in the background
                return "…"
            if isinstance(rendered, TaskcliError):  # nanochat could not render it: no count
                return "?"
            return f"{rendered.num_tokens:,}"
        chars = sum(len(message_text(m)) for m in messages if isinstance(m, dict))
        return f"{chars:,}"

    def _keep_visible(self, rows: int) -> None:
        rows = max(rows, 1)
        if self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + rows:
            self.top = self.cursor - rows + 1

    def show_row(self) -> None:
        """Draw the conversation and the status line of the row under the cursor."""
        browser = self.browser
        pane = self.query_one("#conversation", Static)
        if browser.length == 0:
            pane.update(Text("no rows", "dim"))
            self.query_one("#status", Static).update(Text(f" {browser.label} · no rows"))
            return
        self.query_one("#rows", RowList).refresh()
        item = browser.peek(self.cursor)
        index = browser.position(self.cursor)
        ready = item is not None
        if ready and self.tokens and browser.peek_rendering(self.cursor) is None:
            ready = False
        self.shown = index if ready else None
        failure = browser.failure(self.cursor)
        if failure:
            pane.update(Text(f"cannot read row {index:,}: {failure}", "red"))
        elif item is None:
            pane.update(Text(f"reading row {index:,}…", "dim"))
        elif not ready:
            pane.update(Text(f"rendering row {index:,} into tokens…", "dim"))
        else:
            pane.update(self._view(item))
        if not ready:
            browser.want([self.cursor])
        self.query_one("#pane", VerticalScroll).scroll_home(animate=False)
        self.query_one("#status", Static).update(self._status(index, item))

    def on_rows_read(self, _message: RowsRead) -> None:
        """Rows arrived from the background reader: draw them, and the cursor's conversation
        when it is one of them."""
        self.query_one("#rows", RowList).refresh()
        browser = self.browser
        if not browser.length or self.shown == browser.position(self.cursor):
            return
        if browser.failure(self.cursor) or (
            browser.peek(self.cursor) is not None
            and (not self.tokens or browser.peek_rendering(self.cursor) is not None)
        ):
            self.show_row()

    def on_duplicates_checked(self, _message: DuplicatesChecked) -> None:
        """The duplicate scan went further: the status line may know more now."""
        self.query_one("#rows", RowList).refresh()
        item = self.browser.peek(self.cursor) if self.browser.length else None
        if item is not None:
            index = self.browser.position(self.cursor)
            self.query_one("#status", Static).update(self._status(index, item))

    def _duplicates_checked(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.post_message(DuplicatesChecked())

    def _row_read(self) -> None:
        """Called by the reader's threads: a message to the app's own thread, unless the app
        is gone already (the reader may finish a row after the screen closed)."""
        with contextlib.suppress(RuntimeError):
            self.post_message(RowsRead())

    @property
    def settled(self) -> bool:
        """No search and no row read in the background."""
        return not self.busy and self.browser.reader.idle

    async def settle(self, timeout: float = 30.0) -> bool:
        """Wait until `settled` and the rows read were handed to the screen (False: not within
        `timeout` seconds). Tests, the screenshots and the benchmark wait here before they
        look at the screen; a pilot's `pause()` then draws it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.settled:
                await asyncio.sleep(SETTLE_POLL)  # the app handles what the readers posted
                if self.settled:
                    return True
            await asyncio.sleep(SETTLE_POLL)
        return False

    def _view(self, item: Item) -> Any:
        if not self.tokens:
            return conversation_view.conversation_view(item.row)
        browser = self.browser
        rendering = browser.peek_rendering(self.cursor)  # `show_row` saw it there
        if isinstance(rendering, TaskcliError) or rendering is None:
            return Text(f"cannot render this row into tokens: {rendering}", "red")
        cut = DEFAULT_MAX_TOKENS if browser.max_tokens is None else browser.max_tokens
        return token_view.token_view(item.row, rendering, browser.tokenizer, cut, self.no_color)

    def _status(self, index: int, item: Item | None) -> Text:
        browser = self.browser
        total = browser.total
        of = f"{total:,}" if total is not None else f"{browser.length:,}+"
        text = Text(f" row {index:,} of {of} · ")
        if item is None:
            failure = browser.failure(self.cursor)
            text.append("unreadable" if failure else "reading…", "bold red" if failure else "dim")
        else:
            rules, known = browser.rules(item)
            if rules:
                text.append(" ".join(rules), "bold red")
            if not known:  # the duplicate scan has not reached it: not "valid" yet
                text.append(" " if rules else "")
                text.append("checking duplicates…", "dim")
            elif not rules:
                text.append("valid", "green")
            text.append(f" · {item.where}")
            if "duplicate" in rules and browser.duplicates is not None:
                text.append(f", repeats line {browser.duplicates.first_of(item.row.line):,}")
        if browser.shown_source is not None:
            text.append(f" · only {browser.sources[browser.shown_source]} ({browser.length:,})")
        if self.tokens:
            text.append(" · tokens")
        text.append(" · ")
        text.append(browser.label, "bold")
        text.truncate(self.size.width, overflow="ellipsis")
        return text

    def say(self, message: str, style: str = "") -> None:
        self.query_one("#message", Static).update(Text(message, style))

    # -- moving -------------------------------------------------------------------------
    def go(self, k: int) -> None:
        """Put the cursor on row `k` in view (clamped), reading more of a big file if needed.
        Not while a search or a read runs: it reads the same open files."""
        if self._still_working():
            return
        browser = self.browser
        if k >= browser.length and not browser.complete:
            browser.extend(k + self._page())
        self.cursor = max(0, min(k, browser.length - 1))
        self.show_row()

    def _still_working(self) -> bool:
        """A search or a read runs in a worker: the screen reads no rows meanwhile."""
        if self.busy:
            self.say("still working: wait, or Esc to stop", "red")
        return self.busy

    def _page(self) -> int:
        return max(self.query_one("#rows", RowList).size.height - 2, 1)

    def action_move(self, step: int) -> None:
        self.go(self.cursor + step)

    def action_page(self, direction: int) -> None:
        self.go(self.cursor + direction * self._page())

    def action_first(self) -> None:
        self.go(0)

    def action_last(self) -> None:
        browser = self.browser
        if browser.complete:
            self.go(browser.length - 1)
            return
        self._read_on(None, "reading to the end", lambda: self.go(browser.length - 1))

    def _read_on(self, count: int | None, doing: str, then: Callable[[], None]) -> None:
        """Index a plain file until `count` rows are known (None: to its end) in the
        background, with progress and Esc to stop, then call `then` on the app's thread."""
        size = self.browser.file_size or 1
        self._start(
            lambda: self.browser.extend(
                count,
                lambda done: self._progress(f"{doing}… {done / size:.0%} (Esc stops)"),
                self.cancel,
            ),
            lambda _: then(),
        )

    def action_scroll_pane(self, direction: int) -> None:
        pane = self.query_one("#pane", VerticalScroll)
        pane.scroll_relative(y=direction * max(pane.size.height // 2, 1), animate=False)

    # -- the prompt ---------------------------------------------------------------------
    def action_ask(self, what: str) -> None:
        if self._still_working():
            return
        prompt = self.query_one("#prompt", Input)
        self.asking = what
        labels = {"jump": "row index: ", "search": "search: ", "write": "write to: "}
        prompt.placeholder = labels[what]
        prompt.value = ""
        if what == "write" and self.browser.length:
            prompt.value = f"row-{self.browser.position(self.cursor)}.json"
        self.say(f"{labels[what]}(Enter to go, Esc to cancel)")
        prompt.display = True
        prompt.focus()

    def _close_prompt(self) -> None:
        prompt = self.query_one("#prompt", Input)
        prompt.display = False
        self.asking = None
        self.set_focus(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        what, value = self.asking, event.value.strip()
        self._close_prompt()
        if not value:
            self.say("")
        elif what == "jump":
            self._jump(value)
        elif what == "search":
            self.query_text = value
            self.action_again(1)
        elif what == "write":
            self._write(value)

    def _jump(self, value: str) -> None:
        try:
            index = int(value.replace(",", "").replace("_", ""))
        except ValueError:
            self.say(f"not a row index: {value!r}", "red")
            return
        browser = self.browser
        if index < 0:
            self.say("a row index is 0 or more", "red")
            return
        if not browser.complete and browser.view is None and index >= browser.length:
            self._read_on(index + 1, f"reading to row {index:,}", lambda: self._land(index))
            return
        self._land(index)

    def _land(self, index: int) -> None:
        """Go to target row `index`, or say why there is no such row in view."""
        browser = self.browser
        total = browser.total
        if browser.view is None and index >= browser.length and not browser.complete:
            self.say(f"stopped before row {index:,}: {browser.length:,} rows read so far", "red")
            return
        if browser.view is None and index >= browser.length:
            self.say(f"no row {index:,}: the target has {browser.length:,} rows", "red")
            return
        k = browser.locate(index)
        if k is None or (total is not None and index >= total):
            self.say(f"row {index:,} is not in {browser.sources[browser.shown_source]}", "red")
            return
        self.say(f"row {index:,}")
        self.go(k)

    def _write(self, path: str) -> None:
        from taskcli.files.atomic import atomic_output

        item = self.browser.peek(self.cursor)
        if item is None:
            index = self.browser.position(self.cursor)
            self.say(f"row {index:,} is not read (yet): nothing written", "red")
            return
        row = item.row
        try:
            with atomic_output(path) as out:
                out.write(orjson.dumps(row.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
        except OSError as error:
            self.say(f"cannot write {path}: {error.strerror or error}", "red")
            return
        except TaskcliError as error:  # `atomic_output` names the full path and the reason
            self.say(str(error), "red")
            return
        self.say(f"wrote row {row.index:,} to {path}", "green")

    # -- search, and work in the background ---------------------------------------------
    def action_again(self, step: int) -> None:
        if self.query_text is None:
            self.say("no search yet: / starts one", "red")
            return
        if self.busy or not self.browser.length:
            return
        query, start, browser = self.query_text, self.cursor, self.browser
        arrow = "next" if step > 0 else "previous"

        def search() -> int | None:
            last = [0.0]

            def progress(done: int) -> None:
                now = time.monotonic()
                if now - last[0] >= PROGRESS_EVERY:
                    last[0] = now
                    self._progress(f"searching {query!r}… {done:,} rows (Esc cancels)")

            return browser.search(query, start, step, self.cancel, progress)

        def found(k: int | None) -> None:
            if k is not None:
                self.say(f"{query!r}: {arrow} match")
                self.go(k)
            elif self.cancel.is_set():
                self.say("search cancelled")
            else:
                self.say(f"{query!r}: no {arrow} match", "red")

        self.say(f"searching {query!r}… (Esc cancels)")
        self._start(search, found)

    def _start(self, work: Any, then: Any) -> None:
        """Run `work` in a thread; `then` gets its result on the app's own thread. The
        duplicate scan waits meanwhile: a search or `End` on a big file reads the same file,
        and someone is waiting for it."""
        self.busy = True
        self.cancel.clear()
        self._hold_scan(True)

        def run() -> None:
            try:
                result = work()
            except Exception as error:  # a failure is a message on the screen, not a crash
                self.call_from_thread(self._failed, error)
                return
            self.call_from_thread(self._done, then, result)

        self.run_worker(run, thread=True, exclusive=True, group="work")

    def _done(self, then: Any, result: Any) -> None:
        self.busy = False
        self._hold_scan(False)
        then(result)

    def _failed(self, error: Exception) -> None:
        self.busy = False
        self._hold_scan(False)
        self.say(str(error), "red")

    def _hold_scan(self, hold: bool) -> None:
        scan = self.browser.duplicates
        if scan is not None:
            (scan.hold.set if hold else scan.hold.clear)()

    def _progress(self, message: str) -> None:
        self.call_from_thread(self.say, message)

    def action_cancel(self) -> None:
        if self.asking is not None:
            self._close_prompt()
            self.say("")
        elif self.busy:
            self.cancel.set()

    # -- views --------------------------------------------------------------------------
    def action_tokens(self) -> None:
        if self._still_working():
            return
        if self.browser.tokenizer is None:
            self.say("no tokenizer: start with --tokenizer SPEC to see tokens", "red")
            return
        self.tokens = self.browser.tokens = not self.tokens
        self.say("tokens: trained in green" if self.tokens else "text")
        self.show_row()

    def action_source(self) -> None:
        if self._still_working():
            return
        browser = self.browser
        if len(browser.sources) < 2:
            self.say("one source: only a mixture spec's rows can be filtered by source", "red")
            return
        index = browser.position(self.cursor)
        following = 0 if browser.shown_source is None else browser.shown_source + 1
        browser.filter_source(following if following < len(browser.sources) else None)
        k = browser.locate(index)
        if k is None:
            import numpy as np

            k = min(int(np.searchsorted(browser.view, index)), browser.length - 1)
        shown = browser.shown_source
        named = "all sources" if shown is None else browser.sources[shown]
        self.say(f"showing {named}")
        self.top = 0
        self.go(k)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())


def _first_user_line(messages: list[Any]) -> str:
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            for line in message_text(message).splitlines():
                if line.strip():
                    return line.strip()
    return ""


def run(browser: Browser) -> None:
    """Run the screen in this terminal. Keys are read from the terminal itself even when the
    conversations came from standard input."""
    if not sys.stdin.isatty():
        try:
            terminal = os.open("/dev/tty", os.O_RDONLY)
        except OSError:
            from taskcli.errors import UsageError

            raise UsageError("browse reads keys from a terminal, and there is none.") from None
        os.dup2(terminal, sys.stdin.fileno())
        os.close(terminal)
    BrowseApp(browser).run()
