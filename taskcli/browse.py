"""The data behind `taskcli browse`: any target's rows on demand, a bounded cache, search.

    browser = open_browser(open_target("mixture.yaml", data_dir="data"))
    browser.length, browser.item(412_000).row.origin, browser.item(0).problems
    browser.search("strawberry", start=-1, step=1, cancel=threading.Event())

Nothing here draws or imports Textual: the screen (`taskcli.ui.browse.app`) asks for the rows it
shows and nothing more, so a million-row mixture costs its order (8 bytes a row) plus the rows on
screen, however far one scrolls. A plain JSONL file is never read whole to open it: its lines
are indexed only as far as someone has looked (8 bytes per conversation), so the first screen of
a 1.5 GB file is there at once; a ``.gz`` file or standard input cannot be seeked, so it is read
through the `customjson` task instead. A file's rows are shown even when broken: their rule ids
(``invalid-json`` included) are what the status line is for, with the file's own ``duplicate``
found by a background scan (`DuplicateScan`).

The screen asks for rows with `want` and draws them with `peek`: `RowReader` reads them in
background threads, the row under the cursor first, so a screen whose rows fall in a dozen
parquet row groups is drawn at once and filled as they decode, two at a time.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from taskcli.conversation import ERROR, RULES, check_record, flatten_content
from taskcli.errors import TaskcliError
from taskcli.files.reader import (
    LINES,
    PARQUET,
    SHARDS,
    WHOLE_FILE_BYTES,
    LineIndex,
    container_of,
    is_regular,
)
from taskcli.targets import FILE, Row, Target
from taskcli.tasks.capabilities import ReadsInThreads

if TYPE_CHECKING:
    from taskcli.files.parquet import ParquetConversations
    from taskcli.tasks.common import Task
    from taskcli.training.tokenizer import Tokenizer
    from taskcli.training.tokens import Rendering

CACHE_ROWS = 512  # rows kept decoded; a screen needs a few dozen
SEARCH_BATCH = 256  # rows of a file read per step of a search; checks for cancel as often
SEARCH_FIRST = 32  # rows of a task or spec a search reads first, in order, through the cache;
SEARCH_WINDOW = 1 << 12  # then a window of rows in storage order, each window twice the last
SEARCH_WINDOW_MAX = 1 << 18  # up to this: a pass over everything decodes each row group a few
# times only
READ_THREADS = 2  # rows read at once in the background: two row groups decode on two cores
DUPLICATE_PROGRESS_LINES = 1 << 14  # lines between progress calls of the duplicate scan
DUPLICATE_YIELD_LINES = 1 << 10  # lines between looks whether the scan must give way
HOLD_POLL = 0.02  # seconds between looks while the duplicate scan gives way


class DuplicateScan:
    """Which lines of a plain file repeat an earlier line: validate's `duplicate` rule
    (`file_rules.line_repeats`), found by one pass over the file in a background thread.

    Memory is the rule's, a hash per distinct line, plus 16 bytes per repeated line; never the
    rows. `checked` is how many physical lines the pass has looked at: a line beyond it is
    neither a duplicate nor unique yet. `on_progress` is called from the thread now and then,
    and once at the end.

    The scan gives way: it waits while `idle()` is False (rows the screen wants are being
    read) or `hold` is set (a search or `End` reads the same file). Its Python loop would
    otherwise hold the GIL against their every step, and the screen's rows matter more.
    """

    def __init__(
        self, path: str, on_progress: Callable[[], None], idle: Callable[[], bool]
    ) -> None:
        self.path = path
        self.on_progress = on_progress
        self.idle = idle
        self.checked = 0
        self.done = False
        self.error: str | None = None
        self._lines = array("Q")  # repeated lines, ascending
        self._firsts = array("Q")  # the line each repeats
        self._stop = threading.Event()
        self.hold = threading.Event()  # set: wait (the screen reads the same file meanwhile)
        threading.Thread(target=self._run, name="taskcli-duplicates", daemon=True).start()

    def first_of(self, line: int) -> int | None:
        """The earlier line that physical `line` repeats, or None (unique, or not known yet)."""
        from bisect import bisect_left

        found = bisect_left(self._lines, line)
        if found < len(self._lines) and self._lines[found] == line:
            return self._firsts[found]
        return None

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        from taskcli.files.reader import open_lines
        from taskcli.files.rules import line_repeats

        try:
            with open_lines(self.path) as lines:
                for number, first in line_repeats(lines):
                    if first is not None:
                        self._firsts.append(first)  # first: `first_of` may look meanwhile
                        self._lines.append(number)
                    self.checked = number
                    if number % DUPLICATE_YIELD_LINES == 0:
                        while (self.hold.is_set() or not self.idle()) and not self._stop.is_set():
                            time.sleep(HOLD_POLL)
                        if self._stop.is_set():
                            return
                    if number % DUPLICATE_PROGRESS_LINES == 0:
                        self.on_progress()
            self.checked = 1 << 62  # blank lines at the end hold no conversation
        except Exception as error:  # an unreadable file: duplicates stay unknown, said once
            self.error = (str(error) or type(error).__name__).splitlines()[0]
        self.done = True
        self.on_progress()


class RowReader:
    """Rows read in background threads, most wanted first, so the screen never waits on them.

    `want` replaces the queue: the row under the cursor first, then the rest of the screen;
    rows scrolled away before their turn are never read. Up to `threads` rows are read at
    once (a shuffled mixture's neighbours sit in different row groups, decoded in parallel),
    by threads that start on demand and end when the queue is empty. `read(index)` does the
    work and keeps the result; `on_read` is called after each row, from the reading thread.
    """

    def __init__(self, read: Callable[[int], None], threads: int | None = None) -> None:
        self._read = read
        self._threads = threads or READ_THREADS
        self._queue: list[int] = []
        self._reading: set[int] = set()
        self._running = 0
        self._changed = threading.Condition()
        self.on_read: Callable[[], None] = lambda: None

    def want(self, indices: Sequence[int]) -> None:
        """Read `indices`, in this order, instead of whatever was queued."""
        with self._changed:
            self._queue = [i for i in dict.fromkeys(indices) if i not in self._reading]
            while self._running < min(self._threads, len(self._queue)):
                self._running += 1
                thread = threading.Thread(target=self._work, name="taskcli-rows", daemon=True)
                thread.start()

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being read."""
        with self._changed:
            return not self._queue and not self._reading

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until `idle` (True) or `timeout` seconds pass (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._queue and not self._reading, timeout)

    def _work(self) -> None:
        while True:
            with self._changed:
                if not self._queue:
                    self._running -= 1
                    return
                index = self._queue.pop(0)
                self._reading.add(index)
            try:
                self._read(index)
                self.on_read()
            finally:
                with self._changed:
                    self._reading.discard(index)
                    self._changed.notify_all()


@dataclass(frozen=True)
class Item:
    """A row as the browser shows it: the `show` row, its source in a few words, and the ids of
    the rules it breaks (what `validate` would report for it)."""

    row: Row
    where: str
    problems: tuple[str, ...]
    short: str = ""  # the source in the row list: a task's name, a file's line


def _problems(record: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(problem.rule for problem in check_record(record)))


def message_text(message: Any) -> str:
    """A message's text, tool parts included: what a search looks through, and what the row
    list counts in characters and quotes from."""
    content = message.get("content", "") if isinstance(message, dict) else message
    try:
        return flatten_content(content)
    except (KeyError, TypeError, IndexError):
        return orjson.dumps(content).decode()


def text_of(conversation: dict[str, Any]) -> str:
    """What a search looks through: every message's text (`message_text`)."""
    return "\n".join(message_text(message) for message in conversation.get("messages") or [])


class Browser:
    """A target's rows by position, through an optional filter by source, with a bounded cache.

    `length` is how many rows are known: the whole target, except for a plain file not yet
    indexed to its end (`complete` is then False and `extend` reads further).
    """

    def __init__(
        self,
        target: Target,
        *,
        tokenizer: Tokenizer | None = None,
        max_tokens: int | None = None,
    ) -> None:
        self.target = target
        self.label = target.label
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self._index: LineIndex | None = None
        self._parquet: ParquetConversations | None = None  # a Parquet file's rows, unchecked
        self._forced = (target.params or {}).get("input_format")
        if target.kind == FILE and container_of(target.text) in (PARQUET, SHARDS):
            from taskcli.files.parquet import open_parquet

            self._parquet = open_parquet(target.text, target.split)
            self._forced = self._forced or self._parquet.forced_format
        elif target.kind == FILE and container_of(target.text) == LINES and _seekable(target.text):
            self._index = LineIndex(target.text)
            whole = self._index.size <= WHOLE_FILE_BYTES
            self._index.scan_to(None if whole else CACHE_ROWS)
        self._items: OrderedDict[int, Item] = OrderedDict()
        self._failed: OrderedDict[int, str] = OrderedDict()  # rows that could not be read: why
        self._items_lock = threading.Lock()  # the reader's threads fill both
        # Rows as tokens (a tokenizer was given), or why nanochat could not render them.
        self._renderings: OrderedDict[int, Rendering | TaskcliError] = OrderedDict()
        self.tokens = False  # the screen shows tokens: the reader renders its rows too
        self.reader = RowReader(self._read_one)
        self.duplicates: DuplicateScan | None = None
        self._task_locks: dict[int, threading.Lock] = {}  # tasks read one thread at a time
        self.view: Sequence[int] | None = None  # positions of the filtered source, or None
        self.shown_source: int | None = None  # the one source in view, or None: all

    # -- the whole target ---------------------------------------------------------------
    @property
    def sources(self) -> tuple[str, ...]:
        """The named sources a filter can pick (a spec's entries)."""
        return tuple(s.name for s in self.target.sources) if self.target.is_spec else ()

    @property
    def total(self) -> int | None:
        """Rows in the target, or None while a plain file is not indexed to its end."""
        if self._index is not None:
            return len(self._index) if self._index.complete else None
        if self._parquet is not None:
            return len(self._parquet)
        return self.target.total

    @property
    def complete(self) -> bool:
        return self._index is None or self._index.complete

    def extend(
        self,
        count: int | None,
        on_bytes: Callable[[int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Index a plain file until `count` rows are known (None: to its end), or `cancel`."""
        if self._index is not None:
            self._index.scan_to(count, on_bytes, cancel)

    @property
    def file_size(self) -> int | None:
        return None if self._index is None else self._index.size

    # -- the rows in view ---------------------------------------------------------------
    @property
    def length(self) -> int:
        """Rows in view: the filtered source's, or all known."""
        if self.view is not None:
            return len(self.view)
        if self._index is not None:
            return len(self._index)
        return self.total or 0

    def position(self, k: int) -> int:
        """The target index of row `k` in view."""
        return int(self.view[k]) if self.view is not None else k

    def locate(self, index: int) -> int | None:
        """Where target index `index` is in view, or None (filtered out)."""
        if self.view is None:
            return index
        import numpy as np

        k = int(np.searchsorted(self.view, index))
        return k if k < len(self.view) and self.view[k] == index else None

    def filter_source(self, source: int | None) -> None:
        """Show only rows of spec entry `source` (None: every row)."""
        self.shown_source = source
        if source is None or self.target.plan is None:
            self.view = None
            return
        import numpy as np

        owners, _ = self.target.placement(range(self.target.total))
        self.view = np.flatnonzero(owners == source)

    def item(self, k: int) -> Item:
        """Row `k` in view, from the cache or read now (in this thread)."""
        index = self.position(k)
        cached = self.peek(k)
        if cached is not None:
            return cached
        item = self._read([index])[0]
        self._keep([item])
        return item

    def peek(self, k: int) -> Item | None:
        """Row `k` in view if it was read, without reading it."""
        index = self.position(k)
        with self._items_lock:
            cached = self._items.get(index)
            if cached is not None:
                self._items.move_to_end(index)
            return cached

    def failure(self, k: int) -> str | None:
        """Why row `k` in view could not be read in the background, if it could not."""
        with self._items_lock:
            return self._failed.get(self.position(k))

    def want(self, ks: Sequence[int]) -> None:
        """Read the rows `ks` in view in the background (`reader`), in this order, unless
        they were read already: the row under the cursor first, then the rest of the screen."""
        with self._items_lock:
            known = self._items.keys()
            if self.tokens and self.tokenizer is not None:
                known = known & self._renderings.keys()
            known = known | self._failed.keys()
        self.reader.want([i for i in map(self.position, ks) if i not in known])

    def prefetch(self, ks: range) -> None:
        """Read the rows `ks` in view that are not cached, together and now: the rows of a
        screen cost one read per task, not one per row (a Hub task reads a whole row group
        each time)."""
        with self._items_lock:
            missing = [self.position(k) for k in ks if self.position(k) not in self._items]
        if missing:
            self._keep(self._read(missing))

    def _keep(self, items: list[Item]) -> None:
        with self._items_lock:
            for item in items:
                self._items[item.row.index] = item
                self._failed.pop(item.row.index, None)
            while len(self._items) > CACHE_ROWS:
                self._items.popitem(last=False)

    def _read_one(self, index: int) -> None:
        """The reader's work: row `index` kept (and rendered into tokens when the screen shows
        them), or why it could not be read (one line)."""
        with self._items_lock:
            item = self._items.get(index)
        try:
            if item is None:
                item = self._read([index])[0]
                self._keep([item])
            if self.tokens and self.tokenizer is not None:
                self._render(item)
        except Exception as error:  # a damaged file is a message on the row, not a crash
            first = (str(error) or type(error).__name__).splitlines()[0]
            with self._items_lock:
                self._failed[index] = first
                while len(self._failed) > CACHE_ROWS:
                    self._failed.popitem(last=False)

    @property
    def cached(self) -> int:
        return len(self._items)

    def scan_duplicates(self, on_progress: Callable[[], None]) -> None:
        """Start looking for repeated conversations in a plain file (`DuplicateScan`), once;
        a later call only changes who hears of its progress."""
        if self._index is None:
            return
        if self.duplicates is None:
            self.duplicates = DuplicateScan(self._index.path, on_progress, lambda: self.reader.idle)
        self.duplicates.on_progress = on_progress

    def rules(self, item: Item) -> tuple[tuple[str, ...], bool]:
        """The rule ids `validate` would report for the row, with the file's own (`duplicate`)
        when the scan has reached it, and whether it has (False: there may be more)."""
        scan, line = self.duplicates, item.row.line
        if scan is None or line is None or any(RULES[rule][0] == ERROR for rule in item.problems):
            return item.problems, True  # a line with errors is never called a duplicate
        if scan.first_of(line) is not None:
            return (*item.problems, "duplicate"), True
        return item.problems, line <= scan.checked

    def short(self, k: int) -> str:
        """The source of row `k` in view as the row list shows it, known without reading it:
        a spec entry's task, a file's line, a task's name."""
        index = self.position(k)
        if self._index is not None:
            return f"L{self._index.lines[index]}"
        if self._parquet is not None:
            return f"R{index}"
        return self.target.source_name(index)

    def rendering(self, k: int) -> Rendering:
        """Row `k` as tokens (a tokenizer was given), rendered now unless it was; a row
        nanochat cannot render raises its `TaskcliError`."""
        rendered = self.peek_rendering(k)
        if rendered is None:
            rendered = self._render(self.item(k))
        if isinstance(rendered, TaskcliError):
            raise rendered
        return rendered

    def peek_rendering(self, k: int) -> Rendering | TaskcliError | None:
        """Row `k` as tokens, or why it cannot be, if the reader rendered it already."""
        with self._items_lock:
            return self._renderings.get(self.position(k))

    def _render(self, item: Item) -> Rendering | TaskcliError:
        """`item` as tokens, kept in a cache as small as the rows'."""
        from taskcli.training import render as tokens

        assert self.tokenizer is not None
        cut = tokens.DEFAULT_MAX_TOKENS if self.max_tokens is None else self.max_tokens
        rendered: Rendering | TaskcliError
        try:
            rendered = tokens.render(item.row.conversation, self.tokenizer, cut)
        except TaskcliError as error:  # a conversation nanochat could not render
            rendered = error
        with self._items_lock:
            self._renderings[item.row.index] = rendered
            if len(self._renderings) > CACHE_ROWS // 4:
                self._renderings.popitem(last=False)
        return rendered

    def _read(self, indices: list[int]) -> list[Item]:
        """Rows at target `indices`, read together (one open, one task batch)."""
        if self._index is not None:
            lines = self._index.read_many(indices)
            return [self._file_item(i, *line) for i, line in zip(indices, lines, strict=True)]
        if self._parquet is not None:
            records = self._parquet.records(indices)
            return [self._row_item(i, record) for i, record in zip(indices, records, strict=True)]
        items = []
        for row in self.target.rows(indices, read=self._examples):
            where, short = self.label, self.target.name
            if row.origin is not None:  # a spec's row: its entry, and the entry's task
                where, short = row.entry or where, row.origin["task"]
            items.append(Item(row, where, _problems(row.conversation), short))
        return items

    def _examples(self, task: Task, indices: list[int]) -> list[dict[str, Any]]:
        """`task.get_examples`, by one thread at a time unless the task says it may be read in
        several (`ReadsInThreads`): the reader's threads share the task."""
        if isinstance(task, ReadsInThreads):
            return task.get_examples(indices)
        with self._items_lock:
            lock = self._task_locks.setdefault(id(task), threading.Lock())
        with lock:
            return task.get_examples(indices)

    def _file_item(self, index: int, line: int, raw: bytes, written: tuple[str, ...]) -> Item:
        """A file's row with every rule validate holds its line to (`files.rules.row_rules`)."""
        from taskcli.files.rules import NOT_PARSED, row_rules

        assert self._index is not None
        first = self._index.first_shape()
        record, reading, rules = row_rules(line, raw, written, first, self._forced)
        if record is NOT_PARSED:
            conversation = {"line": raw.decode("utf-8", "replace")}
        else:
            conversation = reading.conversation or {"line": record}
        return Item(Row(index, conversation, line=line), f"line {line:,}", rules, f"L{line}")

    def _row_item(self, index: int, record: Any) -> Item:
        """A Parquet file's row with the rules validate holds it to."""
        from taskcli.files.formats import read
        from taskcli.files.rules import record_rules

        reading = read(record, self._forced)
        rules = record_rules(record, reading, None, self._forced)
        conversation = reading.conversation or {"row": record}
        return Item(Row(index, conversation), f"row {index:,}", rules, f"R{index}")

    # -- search -------------------------------------------------------------------------
    def search(
        self,
        query: str,
        start: int,
        step: int,
        cancel: threading.Event,
        progress: Callable[[int], None] | None = None,
        until: int | None = None,
    ) -> int | None:
        """The first row in view after `start` (before it when `step` is -1) whose messages
        hold `query`, in any case; None when there is none or `cancel` was set. With `until`,
        rows from `until` on (down, when `step` is -1) are not looked at: a search that wrapped
        around the end stops where the first pass began.

        Rows are read a window at a time and not cached; `progress` sees how many were looked
        through. A file is read in order and the search stops at the first match. A task or a
        spec is read in order for its next few rows (those on screen are cached), then a
        window at a time in storage order (`Task.iter_examples`), each block once, since a
        shuffled mixture's neighbours sit in different row groups; the nearest match in the
        window wins, and each window is twice the last, up to a limit.
        """
        needle = query.casefold()
        file = self._index is not None
        window = SEARCH_BATCH if file else SEARCH_FIRST
        ordered = True  # a step read in view order stops at its first match
        k = start + step
        looked = 0
        while not cancel.is_set():
            if step > 0 and k + window > self.length and not self.complete:
                self.extend(k + window if until is None else min(k + window, until))
            end = self.length if step > 0 else -1
            if until is not None:
                end = min(end, until) if step > 0 else max(end, until)
            if k < 0 or k >= self.length or (k >= end if step > 0 else k <= end):
                return None
            ks = range(k, min(k + window, end)) if step > 0 else range(k, max(k - window, end), -1)
            best = None
            pairs = self._in_order(ks) if ordered else self._scan(list(map(self.position, ks)))
            for n, (i, conversation) in enumerate(pairs, 1):
                if needle in text_of(conversation).casefold():
                    if ordered:
                        return ks[i]
                    best = i if best is None else min(best, i)
                if n % SEARCH_BATCH == 0:
                    if cancel.is_set():
                        return None
                    if progress is not None:
                        progress(looked + n)
            if best is not None:
                return ks[best]
            looked += len(ks)
            if progress is not None:
                progress(looked)
            k = ks[-1] + step
            if not file:
                window = SEARCH_WINDOW if ordered else min(window * 2, SEARCH_WINDOW_MAX)
                ordered = False
        return None

    def _in_order(self, ks: range) -> Iterator[tuple[int, dict[str, Any]]]:
        """The rows `ks` in view, in that order: a file's read on, anything else through the
        row cache (the rows on screen are there already)."""
        if self._index is not None:
            yield from self._scan(list(map(self.position, ks)))
            return
        self.prefetch(ks if ks.step > 0 else range(ks[-1], ks[0] + 1))
        for i, k in enumerate(ks):
            yield i, self.item(k).row.conversation

    def _scan(self, indices: list[int]) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(i, conversation at target index indices[i])`` for every i, in the order that is
        cheapest to read: a file's own order, a task's storage order."""
        if self._index is not None:
            lines = self._index.read_many(indices)
            for i, (index, line) in enumerate(zip(indices, lines, strict=True)):
                yield i, self._file_item(index, *line).row.conversation
            return
        if self._parquet is not None:
            for i, record in self._parquet.scan(indices):
                yield i, self._row_item(indices[i], record).row.conversation
            return
        yield from self.target.scan(indices)


def open_browser(
    target: Target, *, tokenizer: Tokenizer | None = None, max_tokens: int | None = None
) -> Browser:
    """A browser over an opened target (`taskcli.targets.open_target`). A plain file is indexed
    here, whole when `show` would read it whole and otherwise only as far as the first screen,
    and a Parquet file's rows are read at random; their broken rows are rows like any other,
    shown with their rule ids. A ``.gz`` file, a ``.json`` document or standard input is read by
    the `customjson` task, which refuses a file with errors."""
    if target.kind == FILE and not _seekable(target.text):
        target.sources  # noqa: B018 - reads and checks the file now
    return Browser(target, tokenizer=tokenizer, max_tokens=max_tokens)


def _seekable(path: str) -> bool:
    """A plain file of JSON lines, which can be indexed and read at any line, and read again by
    the duplicate scan (not stdin, a FIFO or a device, not ``.gz``), or Parquet."""
    container = container_of(path)
    if container in (PARQUET, SHARDS):
        return True
    return container == LINES and is_regular(path) and not path.endswith(".gz")
