"""The data behind `taskcli browse`: any target's rows on demand, a bounded cache, search.

    browser = open_browser("mixture.yaml", data_dir="data")
    browser.length, browser.item(412_000).row.source, browser.item(0).problems
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

import os
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from taskcli.conversation import ERROR, RULES, check_record, flatten_content, messages_of
from taskcli.errors import TaskcliError
from taskcli.files.jsonl import BOM, is_regular, normalise
from taskcli.show import WHOLE_FILE_BYTES, Row
from taskcli.targets import FILE, Target, classify, open_target, refuse_for_file

if TYPE_CHECKING:
    from taskcli.tasks.common import Task
    from taskcli.training.render import Rendering
    from taskcli.training.tokenizer import Tokenizer

CACHE_ROWS = 512  # rows kept decoded; a screen needs a few dozen
SEARCH_BATCH = 256  # rows of a file read per step of a search; checks for cancel as often
SEARCH_FIRST = 32  # rows of a task or spec a search reads first, in order, through the cache;
SEARCH_WINDOW = 1 << 12  # then a window of rows in storage order, each window twice the last
SEARCH_WINDOW_MAX = 1 << 18  # up to this: a pass over everything decodes each row group a few
# times only
SCAN_CHUNK = 1 << 20
READ_THREADS = 2  # rows read at once in the background: two row groups decode on two cores
DUPLICATE_PROGRESS_LINES = 1 << 14  # lines between progress calls of the duplicate scan
DUPLICATE_YIELD_LINES = 1 << 10  # lines between looks whether the scan must give way
HOLD_POLL = 0.02  # seconds between looks while the duplicate scan gives way
SHAPE_LOOKUP = 1024  # conversations looked through for the file's first shape


class LineIndex:
    """The byte offsets of a plain JSONL file's conversations, found only as far as asked.

    Blank lines hold no conversation and are skipped, as everywhere else; each conversation's
    1-based physical line is kept too, so a row can say where it is in the file.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.offsets = array("Q")
        self.lines = array("Q")
        self.scanned = 0  # bytes looked at
        self.physical = 0  # physical lines seen
        self.complete = False
        self.size = os.path.getsize(path)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.offsets)

    def scan_to(
        self,
        count: int | None,
        on_bytes: Callable[[int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Index until `count` conversations are known (None: the whole file), or `cancel`."""
        with self._lock, open(self.path, "rb") as file:
            file.seek(self.scanned)
            while not self.complete and (count is None or len(self.offsets) < count):
                if cancel is not None and cancel.is_set():
                    break
                chunk = file.read(SCAN_CHUNK)
                end = chunk.rfind(b"\n")
                if len(chunk) == SCAN_CHUNK and end < 0:
                    chunk += file.readline()  # one line longer than a chunk
                elif len(chunk) == SCAN_CHUNK:
                    chunk = chunk[: end + 1]  # the last line goes on in the next chunk
                self._index(chunk)
                self.complete = self.scanned >= self.size
                file.seek(self.scanned)
                if on_bytes is not None:
                    on_bytes(self.scanned)

    def _index(self, block: bytes) -> None:
        start = 0
        base = self.scanned
        while start < len(block):
            stop = block.find(b"\n", start)
            stop = len(block) if stop < 0 else stop
            self.physical += 1
            line = block[start:stop]
            if self.physical == 1 and line.startswith(BOM):
                line = line[3:]
            if line.strip():
                self.offsets.append(base + start)
                self.lines.append(self.physical)
            start = stop + 1
        self.scanned = base + len(block)

    def read(self, index: int) -> tuple[int, bytes, tuple[str, ...]]:
        """(physical line, raw bytes, the line's own rules) of conversation `index`, already
        indexed. The rules are validate's about how the line is written, not what it holds:
        ``bom`` (line 1 starts with a byte order mark) and ``crlf`` (it ends with CR LF)."""
        with open(self.path, "rb") as file:
            file.seek(self.offsets[index])
            raw = file.readline().rstrip(b"\n")
        rules = []
        if self.lines[index] == 1 and raw.startswith(BOM):
            raw = raw[3:]
            rules.append("bom")
        if raw.endswith(b"\r"):
            raw = raw[:-1]
            rules.append("crlf")
        return self.lines[index], raw, tuple(rules)


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
        from taskcli.files.jsonl import open_lines
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


def _shape(record: Any) -> str | None:
    """``array`` or ``object``: the two shapes of a conversation line (`messages_of`), else None."""
    _, problem = messages_of(record)
    if problem is not None:
        return None
    return "array" if type(record) is list else "object"


def _problems(record: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(problem.rule for problem in check_record(record)))


def text_of(conversation: dict[str, Any]) -> str:
    """What a search looks through: every message's content, tool parts included."""
    pieces = []
    for message in conversation.get("messages") or []:
        content = message.get("content", "") if isinstance(message, dict) else message
        try:
            pieces.append(flatten_content(content))
        except (KeyError, TypeError, IndexError):
            pieces.append(orjson.dumps(content).decode())
    return "\n".join(pieces)


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
        if target.kind == FILE and _seekable(target.text):
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
        self._shape_of_first: str | None = None  # "" when none was found
        self._task_locks: dict[int, threading.Lock] = {}  # tasks read one thread at a time
        self.view: Sequence[int] | None = None  # positions of the filtered source, or None
        self.source: int | None = None

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
        if self.target.plan is not None:
            return self.target.plan.total
        return len(self.target.task)

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
        self.source = source
        if source is None or self.target.plan is None:
            self.view = None
            return
        import numpy as np

        plan = self.target.plan
        owners, _ = plan.placement(range(plan.total))
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
        plan = self.target.plan
        if plan is not None:
            owners, _ = plan.placement(range(index, index + 1))
            return plan.spec.entries[int(owners[0])].task
        return self.target.name

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
            return [self._file_item(i, *self._index.read(i)) for i in indices]
        plan = self.target.plan
        if plan is not None:
            return self._spec_items(plan, indices)
        task = self.target.task
        physical = [task.physical_index(i) for i in indices]
        conversations = self._examples(task, physical)
        where = self.label
        return [
            Item(Row(i, c), where, _problems(c), self.target.name)
            for i, c in zip(indices, conversations, strict=True)
        ]

    def _examples(self, task: Task, indices: list[int]) -> list[dict[str, Any]]:
        """`task.get_examples`, by one thread at a time unless the task says it may be read in
        several (`Task.reads_in_threads`): the reader's threads share the task."""
        if task.reads_in_threads:
            return task.get_examples(indices)
        with self._items_lock:
            lock = self._task_locks.setdefault(id(task), threading.Lock())
        with lock:
            return task.get_examples(indices)

    def _file_item(self, index: int, line: int, raw: bytes, written: tuple[str, ...]) -> Item:
        """A file's row with every rule validate holds its line to: what the record breaks,
        how the line is `written`, and ``mixed-shapes`` when its shape is not the first
        conversation's (validate names only the first such line; every one breaks the rule)."""
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            text = raw.decode("utf-8", "replace")
            row = Row(index, {"line": text}, line=line)
            return Item(row, f"line {line:,}", ("invalid-json", *written), f"L{line}")
        conversation = normalise(record) if isinstance(record, list | dict) else {"line": record}
        row = Row(index, conversation, line=line)
        rules = [*_problems(record), *written]
        shape = _shape(record)
        if shape is not None and shape != self._first_shape():
            rules.append("mixed-shapes")
        return Item(row, f"line {line:,}", tuple(rules), f"L{line}")

    def _first_shape(self) -> str | None:
        """The shape (array or object) of the file's first conversation with one, which the
        others must share; looked for among the first `SHAPE_LOOKUP` conversations only."""
        if self._shape_of_first is None:
            assert self._index is not None
            found = ""
            for index in range(min(len(self._index), SHAPE_LOOKUP)):
                _, raw, _ = self._index.read(index)
                try:
                    found = _shape(orjson.loads(raw)) or ""
                except orjson.JSONDecodeError:
                    continue
                if found:
                    break
            self._shape_of_first = found
        return self._shape_of_first or None

    def _spec_items(self, plan: Any, indices: list[int]) -> list[Item]:
        """Rows of a spec: placed in one step, then read task by task (a batch each)."""
        from taskcli.export.formats import source_of

        low = min(indices)
        owners, examples = plan.placement(range(low, max(indices) + 1))
        placed = [(int(owners[i - low]), int(examples[i - low])) for i in indices]
        wanted: dict[int, list[int]] = {}
        for owner, example in placed:
            wanted.setdefault(owner, []).append(example)
        read = {
            owner: iter(self._examples(plan.tasks[owner], examples))
            for owner, examples in wanted.items()
        }
        items = []
        for index, (owner, example) in zip(indices, placed, strict=True):
            entry = plan.spec.entries[owner]
            conversation = next(read[owner])
            source = {"entry": entry.number, **source_of(entry, example)}
            row = Row(index, conversation, source=source, entry=entry.label)
            items.append(Item(row, entry.label, _problems(conversation), entry.task))
        return items

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
            for i, index in enumerate(indices):
                yield i, self._file_item(index, *self._index.read(index)).row.conversation
            return
        plan = self.target.plan
        if plan is None:
            task = self.target.task
            yield from task.iter_examples([task.physical_index(i) for i in indices])
            return
        low = min(indices)
        owners, examples = plan.placement(range(low, max(indices) + 1))
        wanted: dict[int, tuple[list[int], list[int]]] = {}
        for i, index in enumerate(indices):
            places, rows = wanted.setdefault(int(owners[index - low]), ([], []))
            places.append(i)
            rows.append(int(examples[index - low]))
        for owner, (places, rows) in wanted.items():
            for j, conversation in plan.tasks[owner].iter_examples(rows):
                yield places[j], conversation


def open_browser(
    text: str,
    subset: str | None = None,
    split: str | None = None,
    params: dict[str, Any] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    tokenizer: Tokenizer | None = None,
    max_tokens: int | None = None,
) -> Browser:
    """A browser over the target `text` names (`taskcli.targets`). A plain file is indexed
    here, whole when `show` would read it whole and otherwise only as far as the first screen;
    its broken lines are rows like any other, shown with their rule ids. A ``.gz`` file or
    standard input is read by the `customjson` task, which refuses a file with errors."""
    kind, _ = classify(text)
    if kind == FILE:
        refuse_for_file(text, subset, split, params)
    target = open_target(text, subset, split, params, data_dir=data_dir)
    if kind == FILE and not _seekable(text):
        target.sources  # noqa: B018 - reads and checks the file now
    return Browser(target, tokenizer=tokenizer, max_tokens=max_tokens)


def _seekable(path: str) -> bool:
    """A plain file, which can be indexed and read at any line, and read again by the duplicate
    scan (not stdin, a FIFO or a device, not ``.gz``)."""
    return is_regular(path) and not path.endswith(".gz")
