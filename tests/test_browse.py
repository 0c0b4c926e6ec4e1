"""`taskcli browse`: the screen driven by Textual's headless pilot (keys in, screen text out),
the row source underneath it, and the command's refusals."""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from textual import events
from typer.testing import CliRunner

from taskcli import browse as browsing
from taskcli.browse import Browser, open_browser
from taskcli.cli import app as cli_app
from taskcli.files import reader
from taskcli.files.reader import LineIndex, read_window
from taskcli.targets import open_target
from taskcli.tasks import Task, registry
from taskcli.tasks.capabilities import ReadsInThreads
from taskcli.ui.browse.app import BrowseApp
from taskcli.ui.browse.help_screen import KEYS
from tests.screen import screen_lines, screen_text
from tests.specfiles import write_spec


def browser_of(
    text: str,
    subset: str | None = None,
    split: str | None = None,
    params: dict[str, Any] | None = None,
    **options: Any,
) -> Browser:
    """A browser over the target `text` names, opened as the command opens it."""
    data_dir = options.pop("data_dir", None)
    return open_browser(open_target(text, subset, split, params, data_dir=data_dir), **options)


def conversation(user: str, assistant: str = "ok") -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    }


def write_rows(path: Path, count: int, special: dict[int, Any] | None = None) -> Path:
    """`count` conversations ("question i"), some replaced by `special` lines."""
    lines = []
    for i in range(count):
        row = (special or {}).get(i, conversation(f"question {i}", f"answer {i}"))
        lines.append(row if isinstance(row, str) else json.dumps(row))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    special = {
        3: conversation("Which fruit is a Strawberry?", "a berry"),
        5: {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
        9: conversation("strawberry again"),
    }
    return write_rows(tmp_path / "rows.jsonl", 40, special)


def drive(browser: Browser, keys: list[str], size: tuple[int, int] = (80, 24)) -> BrowseApp:
    """Run the app headless, press `keys` (a string of several characters is typed), and leave
    the finished app with its last screen in `app.last_screen`."""

    async def run() -> BrowseApp:
        app = BrowseApp(browser)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            for key in keys:
                await pilot.press(key)
                await wait_idle(app, pilot)  # a search or a read to the end has finished
            await wait_idle(app, pilot)
            app.last_screen = screen_text(app)  # type: ignore[attr-defined]
            app.last_lines = screen_lines(app)  # type: ignore[attr-defined]
        return app

    return asyncio.run(run())


async def wait_idle(app: BrowseApp, pilot: Any) -> None:
    """Until no search runs, every row asked for was read and drawn, and a file's duplicate
    scan is over."""
    await pilot.pause()
    assert await app.settle(timeout=10)
    scan = app.browser.duplicates
    for _ in range(1000):
        if scan is None or scan.done:
            break
        await asyncio.sleep(0.01)
    await pilot.pause()


def typed(text: str) -> list[str]:
    """Keys that type `text` into the prompt."""
    return list(text)


def status(app: BrowseApp) -> str:
    return app.last_lines[-2]  # type: ignore[attr-defined]


def message(app: BrowseApp) -> str:
    return app.last_lines[-1]  # type: ignore[attr-defined]


# -- the screen ----------------------------------------------------------------------------


def test_first_screen_shows_rows_conversation_and_status(rows_file: Path) -> None:
    app = drive(browser_of(str(rows_file)), [])
    lines = app.last_lines
    assert lines[0].startswith("row source")
    assert "question 0" in lines[1] and "question 1" in lines[2]
    assert "user" in app.last_screen and "answer 0" in app.last_screen  # the panels of `show`
    assert status(app).startswith(" row 0 of 40 · valid · line 1 · /tmp")


def test_navigation_keys(rows_file: Path) -> None:
    browser = browser_of(str(rows_file))
    assert "row 2 of 40" in status(drive(browser, ["j", "j", "down", "k"]))
    assert "row 39 of 40" in status(drive(browser, ["G"]))
    assert "row 39 of 40" in status(drive(browser, ["end", "j"]))  # clamped at the end
    assert "row 0 of 40" in status(drive(browser, ["G", "g"]))
    assert "row 0 of 40" in status(drive(browser, ["end", "home", "up"]))
    paged = drive(browser, ["pagedown"])
    page = int(status(paged).split("row ")[1].split(" ")[0])
    assert 15 <= page <= 22  # one screen of the row list at 24 lines
    assert "row 0 of 40" in status(drive(browser, ["pagedown", "pageup"]))


def test_status_names_the_rules_a_row_breaks(rows_file: Path) -> None:
    app = drive(browser_of(str(rows_file)), [":", *typed("5"), "enter"])
    assert "row 5 of 40" in status(app)
    assert "roles-not-alternating" in status(app)


def test_jump_to_an_index_and_refusals(rows_file: Path) -> None:
    browser = browser_of(str(rows_file))
    app = drive(browser, [":", *typed("27"), "enter"])
    assert "row 27 of 40" in status(app)
    assert "question 27" in app.last_screen
    app = drive(browser, [":", *typed("400"), "enter"])
    assert "row 0 of 40" in status(app) and "no row 400" in message(app)
    app = drive(browser, [":", *typed("x1"), "enter"])
    assert "not a row index" in message(app)
    app = drive(browser, [":", *typed("12"), "escape"])  # cancelled: nowhere
    assert "row 0 of 40" in status(app)


def test_search_hits_next_previous_and_misses(rows_file: Path) -> None:
    browser = browser_of(str(rows_file))
    app = drive(browser, ["slash", *typed("BERRY"), "enter"])
    assert "row 3 of 40" in status(app)  # any case
    assert "next match" in message(app)
    assert "row 9 of 40" in status(drive(browser, ["slash", *typed("berry"), "enter", "n"]))
    app = drive(browser, ["slash", *typed("berry"), "enter", "n", "N"])
    assert "row 3 of 40" in status(app)
    app = drive(browser, ["slash", *typed("nowhere"), "enter"])
    assert "row 0 of 40" in status(app) and "'nowhere': not found" in message(app)
    assert "no search yet" in message(drive(browser, ["n"]))


def test_search_wraps_around_the_end_and_says_so(rows_file: Path) -> None:
    """As vim: past the last match the search goes on from the top (from the bottom with N),
    and the message line says it did."""
    browser = browser_of(str(rows_file))
    app = drive(browser, ["slash", *typed("berry"), "enter", "n", "n"])
    assert "row 3 of 40" in status(app)
    assert "search hit BOTTOM, continuing at TOP" in message(app)
    app = drive(browser, ["slash", *typed("berry"), "enter", "N"])
    assert "row 9 of 40" in status(app)
    assert "search hit TOP, continuing at BOTTOM" in message(app)
    # The only match is the row the search starts on: found again, after going round.
    app = drive(browser, [":", *typed("9"), "enter", "slash", *typed("again"), "enter"])
    assert "row 9 of 40" in status(app) and "continuing at TOP" in message(app)


def test_a_wrapped_search_looks_at_each_row_once(rows_file: Path) -> None:
    """Round the end, the second pass stops where the first began (`until`)."""
    browser = browser_of(str(rows_file))
    never = threading.Event()
    assert browser.search("nowhere", 5, 1, never) is None
    looked: list[int] = []
    assert browser.search("nowhere", -1, 1, never, looked.append, until=6) is None
    assert looked and looked[-1] == 6  # rows 0..5, and not one more
    assert browser.search("berry", -1, 1, never, until=3) is None  # row 3 is not looked at
    assert browser.search("berry", -1, 1, never, until=4) == 3
    assert browser.search("berry", browser.length, -1, never, until=9) is None
    assert browser.search("berry", browser.length, -1, never, until=8) == 9


def test_matches_are_marked_in_the_conversation(rows_file: Path) -> None:
    """After a search, each occurrence in the pane (any case) is drawn unlike the text around
    it: in the screenshot, its own style, with and without colour."""

    async def run() -> str:
        app = BrowseApp(browser_of(str(rows_file)))
        async with app.run_test(size=(100, 24)) as pilot:
            await pilot.press("slash", *"BERRY", "enter")
            await wait_idle(app, pilot)
            return app.export_screenshot()

    pieces = [
        (style, html.unescape(text).replace("\xa0", " "))
        for style, text in re.findall(r'<text class="([^"]*)"[^>]*>([^<]*)</text>', run_svg(run))
    ]
    marked = {style for style, text in pieces if text == "berry"}  # searched as 'BERRY'
    assert len([text for _, text in pieces if text == "berry"]) == 2  # 'Strawberry', 'a berry'
    assert len(marked) == 1
    assert dict((text, style) for style, text in pieces)["Which fruit is a Straw"] not in marked


def run_svg(run: Callable[[], Any]) -> str:
    return asyncio.run(run())


def test_escape_cancels_a_running_search(rows_file: Path) -> None:
    class Slow(Browser):
        def _scan(self, indices: list[int]) -> Any:
            for pair in super()._scan(indices):
                time.sleep(0.02)
                yield pair

    monkey = browser_of(str(rows_file))
    slow = Slow(monkey.target)
    monkey_search = slow.search

    async def run() -> str:
        app = BrowseApp(slow)
        async with app.run_test() as pilot:
            await pilot.press("slash", *"nowhere", "enter")
            assert app.busy
            await pilot.press("j")  # the screen reads nothing while the search reads
            assert app.cursor == 0
            await pilot.press("escape")
            await wait_idle(app, pilot)
            return screen_lines(app)[-1]

    async def quit_while_searching() -> bool:
        app = BrowseApp(slow)
        async with app.run_test() as pilot:
            await pilot.press("slash", *"nowhere", "enter")
            assert app.busy
            await pilot.press("ctrl+c")
            await pilot.pause()
            running = app.is_running
        return running or not app.cancel.is_set()

    monkeypatch_batch = browsing.SEARCH_BATCH
    browsing.SEARCH_BATCH = 1  # a step per row, so the search is still running at Esc
    try:
        assert "search cancelled" in asyncio.run(run())
        started = time.monotonic()
        assert asyncio.run(quit_while_searching()) is False  # gone, and the search told to stop
        assert time.monotonic() - started < 5
    finally:
        browsing.SEARCH_BATCH = monkeypatch_batch
    assert monkey_search("berry", -1, 1, threading.Event()) == 3


@pytest.mark.parametrize(("first", "window"), [(2, 3), (32, 1 << 12)])
def test_search_in_a_mixture_finds_the_nearest_match_in_view_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: int, window: int
) -> None:
    monkeypatch.setattr(browsing, "SEARCH_FIRST", first)
    monkeypatch.setattr(browsing, "SEARCH_WINDOW", window)
    write_rows(tmp_path / "a.jsonl", 30)
    write_rows(tmp_path / "b.jsonl", 12, {i: conversation(f"bee {i}") for i in range(0, 12, 3)})
    spec = write_spec(
        tmp_path,
        "tasks:\n  - {task: customjson, path: a.jsonl}\n  - {task: customjson, path: b.jsonl}\n",
    )
    browser = browser_of(str(spec))
    hits = [
        k
        for k in range(browser.length)
        if "bee" in browsing.text_of(browser.item(k).row.conversation)
    ]
    assert len(hits) == 4
    never = threading.Event()
    found, k = [], -1
    while (k := browser.search("BEE", k, 1, never)) is not None:
        found.append(k)
    assert found == hits
    assert browser.search("bee", hits[-1], -1, never) == hits[-2]
    assert browser.search("bee", hits[0], -1, never) is None
    browser.filter_source(1)  # within one source: positions in the filtered view
    first = next(
        k
        for k in range(browser.length)
        if "bee" in browsing.text_of(browser.item(k).row.conversation)
    )
    assert browser.search("bee", -1, 1, never) == first


def test_a_task_target(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)
    params = {"word_list": "examples/words.txt", "size": "30"}
    browser = browser_of("spellingbee", split="test", params=params)
    app = drive(browser, ["G"])
    assert "row 29 of 30" in status(app) and "spellingbee" in status(app)
    assert "spelling" in app.last_lines[1]


class Counted(Task):
    """A plugin task that counts the threads inside `get_examples` at once (the most, ever)."""

    name = "counted"
    description = "Sixty short exchanges, read slowly."
    inside, most, guard = 0, 0, threading.Lock()

    def num_examples(self) -> int:
        return 60

    def get_example(self, index: int) -> dict[str, Any]:
        return conversation(f"question {index}")

    def get_examples(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        with Counted.guard:
            Counted.inside += 1
            Counted.most = max(Counted.most, Counted.inside)
        time.sleep(0.01)
        try:
            return [self.get_example(i) for i in indices]
        finally:
            with Counted.guard:
                Counted.inside -= 1


class CountedInThreads(Counted, ReadsInThreads):
    name = "counted-in-threads"


@pytest.mark.parametrize(("task", "threads"), [(Counted, 1), (CountedInThreads, 2)])
def test_a_task_is_read_in_two_threads_only_when_it_says_it_may_be(
    monkeypatch: pytest.MonkeyPatch, task: type[Counted], threads: int
) -> None:
    """A plugin task may keep state between reads: only a task that takes on `ReadsInThreads`
    is read by the reader's two threads at once."""
    monkeypatch.setattr(Counted, "most", 0)
    registry.register(task)
    try:
        app = drive(browser_of(task.name), ["pagedown", "pagedown"])
    finally:
        registry.clear_cache()
    assert "of 60 · valid" in status(app) and Counted.most == threads


def test_search_is_cancellable(rows_file: Path) -> None:
    browser = browser_of(str(rows_file))
    cancel = threading.Event()
    assert browser.search("strawberry", -1, 1, cancel) == 3
    cancel.set()
    assert browser.search("strawberry", -1, 1, cancel) is None


def test_token_toggle(rows_file: Path, tmp_path: Path) -> None:
    from taskcli.training.tokenizer import load_tokenizer
    from tests.tokenizers_data import write_bytes_tokenizer

    app = drive(browser_of(str(rows_file)), ["t"])
    assert "no tokenizer" in message(app)
    tokenizer = load_tokenizer(str(write_bytes_tokenizer(tmp_path / "tok")))
    browser = browser_of(str(rows_file), tokenizer=tokenizer, max_tokens=0)
    app = drive(browser, ["t"])
    assert "tokens" in status(app)
    assert "trained" in app.last_screen and "<|assistant_start|>" in app.last_screen
    assert "untrained in ⟦ ⟧" in app.last_screen  # NO_COLOR (set for every test): marks
    assert "tok" in app.last_lines[0]  # the row list counts tokens now
    cut = drive(browser_of(str(rows_file), tokenizer=tokenizer, max_tokens=5), ["t"])
    assert "cut off at 5" in cut.last_screen and "✂ cut here" in cut.last_screen
    default = drive(browser_of(str(rows_file), tokenizer=tokenizer), ["t"])
    assert "0 cut off" in default.last_screen and "✂" not in default.last_screen
    back = drive(browser, ["t", "t"])
    assert "<|assistant_start|>" not in back.last_screen and "answer 0" in back.last_screen


def test_tokens_are_rendered_in_the_background(rows_file: Path, tmp_path: Path) -> None:
    from taskcli.training.tokenizer import load_tokenizer
    from tests.tokenizers_data import write_bytes_tokenizer

    tokenizer = load_tokenizer(str(write_bytes_tokenizer(tmp_path / "tok")))
    gate, threads = threading.Event(), set()

    class Slow(Browser):
        def _render(self, item: Any) -> Any:
            threads.add(threading.current_thread() is threading.main_thread())
            assert gate.wait(10)
            return super()._render(item)

    browser = Slow(browser_of(str(rows_file)).target, tokenizer=tokenizer)

    async def run() -> tuple[list[str], list[str]]:
        app = BrowseApp(browser)
        async with app.run_test(size=(120, 24)) as pilot:  # wide enough for the lengths
            await wait_idle(app, pilot)
            await pilot.press("t")
            waiting = screen_lines(app)
            gate.set()
            await wait_idle(app, pilot)
            return waiting, screen_lines(app)

    waiting, done = asyncio.run(run())
    assert waiting[0].endswith("│rendering row 0 into tokens…")
    assert "tok" in waiting[0] and waiting[1].startswith(" 0 L1         2      … question 0")
    assert "<|assistant_start|>" in "\n".join(done) and "…" not in done[1]
    assert threads == {False}  # never on the screen's thread


def test_source_filter_in_a_mixture(tmp_path: Path) -> None:
    write_rows(tmp_path / "a.jsonl", 30)
    write_rows(tmp_path / "b.jsonl", 10, {i: conversation(f"bee {i}") for i in range(10)})
    spec = write_spec(
        tmp_path,
        """\
        seed: 1
        tasks:
          - {task: customjson, path: a.jsonl}
          - {task: customjson, path: b.jsonl}
        """,
    )
    app = drive(browser_of(str(spec)), ["s"])
    assert "only tasks[0]" in status(app) and "(30)" in status(app)
    assert all("question" in line for line in app.last_lines[1:20])
    app = drive(browser_of(str(spec)), ["s", "s", "G"])
    assert "only tasks[1]" in status(app) and "(10)" in status(app)
    assert all("bee" in line for line in app.last_lines[1:11])
    app = drive(browser_of(str(spec)), ["s", "s", "s"])
    assert "of 40" in status(app) and "only" not in status(app)
    assert "one source" in message(drive(browser_of(str(tmp_path / "a.jsonl")), ["s"]))


def test_write_the_row(rows_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = drive(browser_of(str(rows_file)), ["j", "j", "j", "w", "enter"])
    assert "wrote row 3 to row-3.json" in message(app)
    written = json.loads((tmp_path / "row-3.json").read_text())
    assert written == {**conversation("Which fruit is a Strawberry?", "a berry"), "index": 3}
    keys = ["w", *["backspace"] * 20, *typed("out/x.json"), "enter"]
    failed = message(drive(browser_of(str(rows_file)), keys))
    assert "cannot write" in failed and "x.json" in failed


@pytest.mark.parametrize("target", ["file", "spec", "parquet"])
def test_what_w_writes_every_command_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    """A row of a file, of a mixture (with its source) and of Parquet (with tool parts), written
    by `w`, is a conversation file that show, validate, stats and export read back."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.chdir(tmp_path)
    words = Path(__file__).resolve().parent.parent / "examples" / "words.txt"
    write_rows(tmp_path / "a.jsonl", 5)
    parts = [
        {"type": "text", "text": "6*7 = "},
        {"type": "python", "text": "6*7"},
        {"type": "python_output", "text": "42"},
        {"type": "text", "text": "42"},
    ]
    messages = [{"role": "user", "content": "6*7?"}, {"role": "assistant", "content": None}]
    table = pa.table({"messages": [[messages[0], {**messages[1], "parts": parts}]] * 3})
    pq.write_table(table, tmp_path / "tools.parquet")
    spec = write_spec(
        tmp_path,
        f"seed: 2\ntasks:\n  - {{task: customjson, path: a.jsonl}}\n"
        f"  - {{task: spellingbee, split: train, size: 5, word_list: {words}}}\n",
    )
    texts = {"file": "a.jsonl", "spec": str(spec), "parquet": "tools.parquet"}
    app = drive(browser_of(texts[target]), ["j", "w", "enter"])
    assert "wrote row 1 to row-1.json" in message(app)
    written = json.loads((tmp_path / "row-1.json").read_text())
    assert ("source" in written) is (target == "spec")

    runner = CliRunner()
    shown = runner.invoke(cli_app, ["show", "row-1.json", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == {**written, "index": 0}
    checked = runner.invoke(cli_app, ["validate", "row-1.json"])
    assert checked.exit_code == 0 and "1 conversation, 0 errors" in checked.stdout
    stats = json.loads(runner.invoke(cli_app, ["stats", "row-1.json", "--json"]).stdout)
    assert stats["conversations"] == 1
    exported = runner.invoke(cli_app, ["export", "row-1.json", "-o", "back.jsonl"])
    assert exported.exit_code == 0, exported.output
    back = json.loads((tmp_path / "back.jsonl").read_text())
    assert back == {"messages": written["messages"]}
    if target == "parquet":
        assert back["messages"][1]["content"] == parts


def test_help_and_quit(rows_file: Path) -> None:
    app = drive(browser_of(str(rows_file)), ["question_mark"])
    for _keys, what in KEYS:
        assert what in app.last_screen
    closed = drive(browser_of(str(rows_file)), ["question_mark", "x"])
    assert "Keys" not in closed.last_screen

    async def quit_app(*keys: str) -> bool:
        app = BrowseApp(browser_of(str(rows_file)))
        async with app.run_test() as pilot:
            await pilot.press(*keys)
            await pilot.pause()
            return app.is_running

    assert asyncio.run(quit_app("q")) is False
    assert asyncio.run(quit_app("ctrl+c")) is False
    assert asyncio.run(quit_app("slash", "b", "ctrl+c")) is False  # from the prompt too
    assert asyncio.run(quit_app("question_mark", "ctrl+c")) is False  # and from the help
    assert "Ctrl-C quit" in drive(browser_of(str(rows_file)), []).last_screen


def burst(text: str) -> list[events.Key]:
    """The key events a terminal sends for `text` typed (or pasted) fast: all of them queued
    before the app handles the first, as the pilot's `press` (which waits after each) never
    does."""
    names = {":": "colon", "/": "slash", " ": "space", "\r": "enter", "\x1b": "escape"}
    return [events.Key(names.get(char, char), char) for char in text]


@pytest.mark.parametrize(
    ("typed_fast", "row"),
    [(":27\r", 27), ("/strawberry again\r", 9), ("/BERRY\r", 3), ("jj:5\r", 5), ("/x\x1bj", 1)],
)
def test_keys_typed_right_after_a_prompt_key_go_into_the_prompt(
    rows_file: Path, typed_fast: str, row: int
) -> None:
    """':' and '/' open the prompt before the keys behind them are handled: none is lost, and
    none is taken as a command ('s', 't', 'w', 'g', 'n' in 'strawberry again'); Esc closes it
    before the next key, which is a command again."""

    async def run() -> list[str]:
        app = BrowseApp(browser_of(str(rows_file)))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_idle(app, pilot)
            for key in burst(typed_fast):
                app.post_message(key)
            for _ in range(3):  # a jump's or a search's result, then the rows it shows
                await wait_idle(app, pilot)
            return screen_lines(app)

    lines = asyncio.run(run())
    assert f"row {row} of 40" in lines[-2], lines[-2:]


def test_120_columns_show_more(rows_file: Path) -> None:
    app = drive(browser_of(str(rows_file)), [], size=(120, 40))
    assert len(app.last_lines) == 40
    assert "question 36" in app.last_screen
    assert "question 36" not in drive(browser_of(str(rows_file)), []).last_screen
    header = app.last_lines[0]
    assert "msg" in header and "chars" in header  # room for every column


def test_at_80_columns_the_first_user_line_gets_the_room(tmp_path: Path) -> None:
    """At 80×24 the message count and the length give way: the row list shows 22 characters
    of the first user line (it showed 11)."""
    line = "Explain how a transformer attends to earlier tokens"
    rows = write_rows(tmp_path / "long.jsonl", 30, {i: conversation(line) for i in range(30)})
    app = drive(browser_of(str(rows)), [])
    header, first = app.last_lines[0], app.last_lines[1]
    assert header.startswith("row source") and "msg" not in header and "chars" not in header
    shown = first.split("│")[0].split(maxsplit=2)[2].rstrip()
    assert line.startswith(shown) and len(shown) >= 22, first


# -- rows read in the background ----------------------------------------------------------


class Gated(Browser):
    """Reads wait for `gate`; `order` is the order rows were asked of the data."""

    def __init__(self, target: Any) -> None:
        super().__init__(target)
        self.gate = threading.Event()
        self.order: list[int] = []

    def _read(self, indices: list[int]) -> Any:
        if threading.current_thread() is not threading.main_thread():
            self.order.extend(indices)
            assert self.gate.wait(10)
        return super()._read(indices)


def test_rows_show_a_placeholder_until_they_are_read(rows_file: Path) -> None:
    browser = Gated(browser_of(str(rows_file)).target)

    async def run() -> tuple[list[str], list[str]]:
        app = BrowseApp(browser)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            waiting = screen_lines(app)
            assert not app.settled
            browser.gate.set()
            await wait_idle(app, pilot)
            return waiting, screen_lines(app)

    waiting, done = asyncio.run(run())
    assert waiting[1].startswith(" 0 L1") and "reading" in waiting[1]  # index, source: known
    assert all("reading" in line for line in waiting[1:20])
    assert "question" not in "\n".join(waiting)
    assert waiting[0].endswith("│reading row 0…")  # the conversation pane
    assert waiting[-2].startswith(" row 0 of 40 · reading… · /tmp")  # no verdict yet
    assert "question 0" in done[1] and "question 19" in done[20] and "answer 0" in "\n".join(done)
    assert "reading" not in "\n".join(done)
    assert done[-2].startswith(" row 0 of 40 · valid · line 1")


def test_the_selected_row_is_read_first_and_rows_scrolled_away_are_not_read(
    rows_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browsing, "READ_THREADS", 1)
    browser = Gated(browser_of(str(rows_file)).target)

    async def run() -> str:
        app = BrowseApp(browser)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()  # row 0 is being read, rows 1-21 wait their turn
            while not browser.order:
                await asyncio.sleep(0.01)
            await pilot.press("colon", *"30", "enter")
            assert "reading row 30…" in screen_text(app)
            browser.gate.set()
            await wait_idle(app, pilot)
            return screen_text(app)

    screen = asyncio.run(run())
    assert browser.order[:2] == [0, 30]  # the row under the cursor before the rest
    assert sorted(browser.order[2:]) == list(range(10, 30))  # the screen around it, no more
    assert "question 30" in screen and "answer 30" in screen


def test_the_reader_reads_what_is_wanted_now_in_that_order() -> None:
    started, gate, read = threading.Event(), threading.Event(), []

    def slow(index: int) -> None:
        started.set()
        gate.wait(10)
        read.append(index)

    reader = browsing.RowReader(slow, threads=1)
    assert reader.idle
    reader.want([1, 2, 3])
    assert started.wait(10) and not reader.idle
    reader.want([7, 2, 7, 1])  # 1 is already being read: not again
    gate.set()
    assert reader.wait(10) and reader.idle
    assert read == [1, 7, 2]


def test_a_damaged_parquet_file_is_a_message_on_the_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests import hubdata

    hubdata.write_smoltalk(tmp_path, rows_per_split=40, rows_per_group=10)
    browser = browser_of("smoltalk", split="test", data_dir=tmp_path)
    for path in tmp_path.rglob("*.parquet"):
        path.write_bytes(b"PAR1 damaged after opening")  # the footers were read; rows are gone
    app = drive(browser, ["j"])
    assert app.is_running is False  # the screen closed normally, no exception
    rows = app.last_lines[1:21]
    assert all("smoltalk   ! cannot read row" in line for line in rows)
    assert app.last_lines[0].endswith("│cannot read row 1: cannot read row group 0")
    assert status(app).startswith(" row 1 of 40 · unreadable")
    assert "Traceback" not in app.last_screen


# -- the file's own rules: duplicates -------------------------------------------------------


def test_line_repeats_agrees_with_the_duplicate_rule(tmp_path: Path) -> None:
    from taskcli.files.reader import open_lines
    from taskcli.files.rules import check_file, line_repeats

    one, two = json.dumps(conversation("a")), json.dumps(conversation("b"))
    lines = [
        "\ufeff" + one,  # the BOM is not part of the conversation
        two,
        "",
        one + "\r",  # CRLF: the same conversation
        "  " + two,
        "{broken",
        "{broken",  # repeated errors are errors, not duplicates
        json.dumps(conversation("c")),
        one,
    ]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = check_file(str(path))
    errors = {p.line for p in report.errors}
    expected = {
        p.line: int(p.message.rsplit(" ", 1)[1]) for p in report.warnings if p.rule == "duplicate"
    }
    with open_lines(str(path)) as read:
        repeats = {line: first for line, first in line_repeats(read) if first is not None}
    assert expected == {4: 1, 5: 2, 9: 1}
    assert {line: first for line, first in repeats.items() if line not in errors} == expected


def test_status_line_names_duplicates_once_the_scan_reaches_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_rows(
        tmp_path / "d.jsonl",
        10,
        {7: conversation("question 2", "answer 2"), 8: "{broken", 9: "{broken"},
    )
    gate = threading.Event()

    class Held(browsing.DuplicateScan):
        def _run(self) -> None:
            assert gate.wait(10)
            super()._run()

    monkeypatch.setattr(browsing, "DuplicateScan", Held)

    async def run() -> list[str]:
        app = BrowseApp(browser_of(str(path)))
        statuses = []
        async with app.run_test(size=(100, 24)) as pilot:
            await pilot.press("colon", *"7", "enter")
            await pilot.pause()
            statuses.append(screen_lines(app)[-2])  # the scan is held back
            gate.set()
            await wait_idle(app, pilot)
            statuses.append(screen_lines(app)[-2])
            for row in ("2", "9"):
                await pilot.press("colon", row, "enter")
                await wait_idle(app, pilot)
                statuses.append(screen_lines(app)[-2])
        return statuses

    held, seven, two, nine = asyncio.run(run())
    assert held.startswith(" row 7 of 10 · checking duplicates… · line 8 ·")
    assert "valid" not in held and "duplicate " not in held
    assert seven.startswith(" row 7 of 10 · duplicate · line 8, repeats line 3 ·")
    assert two.startswith(" row 2 of 10 · valid · line 3 ·")  # the first is not a duplicate
    assert nine.startswith(" row 9 of 10 · invalid-json · line 10 ·")  # errors, no duplicate


def test_the_duplicate_scan_says_what_is_not_known_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browsing, "DUPLICATE_PROGRESS_LINES", 1)
    path = write_rows(tmp_path / "d.jsonl", 6, {4: conversation("question 1", "answer 1")})
    browser = browser_of(str(path))
    reached, go_on = threading.Event(), threading.Event()

    def progress() -> None:  # the scan waits here after its first line
        reached.set()
        assert go_on.wait(10)

    browser.scan_duplicates(progress)
    assert reached.wait(10)
    rows = [browser.item(k) for k in range(6)]
    assert browser.rules(rows[0]) == ((), True)  # line 1 was looked at
    assert browser.rules(rows[4]) == ((), False)  # not yet: neither unique nor repeated
    browser.duplicates.on_progress = lambda: None  # type: ignore[union-attr]
    go_on.set()
    for _ in range(1000):
        if browser.duplicates.done:  # type: ignore[union-attr]
            break
        time.sleep(0.01)
    assert browser.rules(rows[4]) == (("duplicate",), True)
    assert browser.rules(rows[5]) == ((), True)
    assert browser.duplicates.error is None  # type: ignore[union-attr]


def test_the_duplicate_scan_gives_way_to_the_rows_on_screen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browsing, "DUPLICATE_YIELD_LINES", 1)
    monkeypatch.setattr(browsing, "HOLD_POLL", 0.001)
    path = write_rows(tmp_path / "d.jsonl", 50)
    reading = threading.Event()
    reading.set()
    scan = browsing.DuplicateScan(str(path), lambda: None, lambda: not reading.is_set())
    for _ in range(1000):
        if scan.checked:
            break
        time.sleep(0.01)
    time.sleep(0.1)
    assert scan.checked == 1 and not scan.done  # waits after its first line
    scan.hold.set()
    reading.clear()
    time.sleep(0.1)
    assert scan.checked == 1  # held by the screen (a search reads the file)
    scan.hold.clear()
    for _ in range(1000):
        if scan.done:
            break
        time.sleep(0.01)
    assert scan.done and scan.checked > 50 and scan.first_of(50) is None


def test_a_fifo_is_read_once_as_a_stream(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    lines = "".join(json.dumps(conversation(f"question {i}")) + "\n" for i in range(5))

    def write() -> None:
        with open(fifo, "w") as out:
            out.write(lines)

    writer = threading.Thread(target=write)
    writer.start()
    browser = browser_of(str(fifo))
    writer.join(10)
    assert browser.total == 5 and browser.duplicates is None
    app = drive(browser, ["G"])
    assert "row 4 of 5" in status(app) and "question 4" in app.last_screen
    assert browser.duplicates is None  # no second reading of a stream


# -- big files: indexed lazily, memory bounded ---------------------------------------------


def test_big_file_opens_without_reading_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browsing, "WHOLE_FILE_BYTES", 1000)
    monkeypatch.setattr(browsing, "CACHE_ROWS", 64)
    path = write_rows(tmp_path / "big.jsonl", 5000, {4990: "{broken"})
    browser = browser_of(str(path))
    assert browser.total is None and 64 <= browser.length < 5000  # the first screen only
    app = drive(browser, [])
    assert "of 64+" in status(app) or "+ ·" in status(app)
    app = drive(browser, ["G"])
    assert "row 4,999 of 5,000" in status(app)
    app = drive(browser, [":", *typed("4990"), "enter"])
    assert "invalid-json" in status(app) and "line 4,991" in status(app)
    for k in range(0, 5000, 7):
        browser.item(k)
    assert browser.cached <= 64


def test_a_far_jump_in_a_big_file_reads_on_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browsing, "WHOLE_FILE_BYTES", 1000)
    path = write_rows(tmp_path / "big.jsonl", 5000)
    read_in: list[str] = []
    extend = browsing.Browser.extend

    def recorded(self, *args: Any, **kwargs: Any) -> None:
        read_in.append(threading.current_thread().name)
        extend(self, *args, **kwargs)

    monkeypatch.setattr(browsing.Browser, "extend", recorded)
    browser = browser_of(str(path))
    app = drive(browser, [":", *typed("3000"), "enter"])
    assert "row 3,000 of" in status(app) and "question 3000" in app.last_screen
    assert read_in and threading.main_thread().name not in read_in  # never on the UI thread
    assert not browser.complete  # read as far as row 3,000, not to the end
    app = drive(browser_of(str(path)), [":", *typed("7000"), "enter"])
    assert "no row 7,000: the target has 5,000 rows" in message(app)


def test_big_file_search_reads_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browsing, "WHOLE_FILE_BYTES", 1000)
    path = write_rows(tmp_path / "big.jsonl", 3000, {2500: conversation("needle here")})
    browser = browser_of(str(path))
    assert not browser.complete
    assert browser.search("needle", -1, 1, threading.Event()) == 2500


def test_a_search_back_from_the_top_of_a_big_file_reads_to_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """N on row 0 goes round to the bottom: a file indexed only as far as the screen is read
    to its end first (in the background), then searched up from there."""
    monkeypatch.setattr(browsing, "WHOLE_FILE_BYTES", 1000)
    path = write_rows(
        tmp_path / "big.jsonl", 3000, {5: conversation("needle"), 2500: conversation("needle")}
    )
    browser = browser_of(str(path))
    app = drive(browser, ["slash", *typed("needle"), "enter", "N"])  # row 5, then up
    assert "row 2,500 of 3,000" in status(app)
    assert "search hit TOP, continuing at BOTTOM" in message(app)
    assert browser.complete


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_line_index_agrees_with_the_jsonl_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(reader, "CHUNK_SIZE", chunk)
    text = b'\xef\xbb\xbf["a"]\r\n\n  \n' + b'{"messages": "' + b"x" * 200 + b'"}\n\n["last"]'
    path = tmp_path / "odd.jsonl"
    path.write_bytes(text)
    index = LineIndex(str(path))
    index.scan_to(1)
    assert len(index) >= 1
    index.scan_to(None)
    expected = read_window(str(path), 0, 100).lines
    assert [index.read(i)[:2] for i in range(len(index))] == expected
    assert [index.read(i)[2] for i in range(len(index))] == [("bom", "crlf"), (), ()]
    assert index.complete


def test_a_files_rows_name_how_their_lines_are_written(tmp_path: Path) -> None:
    """validate's rules about the lines themselves: a byte order mark, CRLF endings, and a
    shape other than the first conversation's (every such line; validate lists the first)."""
    array = json.dumps(conversation("a")["messages"])
    path = tmp_path / "written.jsonl"
    lines = ["\ufeff{broken", array, json.dumps(conversation("b")) + "\r", array + "\r", array]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    browser = browser_of(str(path))
    assert [browser.item(k).problems for k in range(5)] == [
        ("invalid-json", "bom"),
        (),
        ("crlf", "mixed-shapes"),
        ("crlf",),
        (),
    ]
    from taskcli.files.rules import check_file

    said = {(p.rule, p.line) for p in check_file(str(path)).warnings}
    assert {("bom", 1), ("crlf", 3), ("mixed-shapes", 3)} <= said
    app = drive(browser, [":", "2", "enter"], size=(100, 24))
    assert status(app).startswith(" row 2 of 5 · crlf mixed-shapes · line 3 ·")


# -- the command ---------------------------------------------------------------------------


def test_refuses_when_stdout_is_not_a_terminal(rows_file: Path) -> None:
    result = CliRunner().invoke(cli_app, ["browse", str(rows_file)])
    assert result.exit_code == 2
    assert "browse needs a terminal" in result.output
    assert f"taskcli show {rows_file}" in result.output
    assert "Traceback" not in result.output


def test_help_lists_the_keys() -> None:
    result = CliRunner().invoke(cli_app, ["browse", "--help"], terminal_width=100)
    assert result.exit_code == 0
    for key in ("k/j", "PgUp/PgDn", "g/G", "u/d", "`:`", "`/`", "n/N", "t text", "s one", "w "):
        assert key in result.output, key


def test_the_command_opens_the_target(rows_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a terminal, the command opens the target and runs the screen on it."""
    from taskcli import cli
    from taskcli.ui.browse import app as browse

    seen: list[Browser] = []
    run: Callable[[Browser], None] = seen.append
    monkeypatch.setattr(browse, "run", run)
    monkeypatch.setattr(cli, "_is_terminal", lambda: True)
    result = CliRunner().invoke(cli_app, ["browse", str(rows_file)])
    assert result.exit_code == 0, result.output
    assert seen and seen[0].total == 40
    missing = CliRunner().invoke(cli_app, ["browse", "nope.jsonl"])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_screenshots_are_current(tmp_path: Path) -> None:
    import runpy

    root = Path(__file__).resolve().parent.parent
    script = runpy.run_path(str(root / "scripts" / "render_screenshots.py"))
    small, large = script["render_browse"](tmp_path)
    for picture in (small, large):
        committed = root / "docs" / "images" / picture.name
        assert picture.read_text() == committed.read_text(), "run scripts/render_screenshots.py"
    text = small.read_text().replace("&#160;", " ")
    assert "row 3 of 372" in text and "spellingbee" in text and "assistant" in text
