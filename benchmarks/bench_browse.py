"""How fast `taskcli browse` shows a 1M-row mixture and a 1.7 GB JSONL file, and its memory.

    python benchmarks/bench_browse.py                 # the ~1M-row mixture of bench_export
    python benchmarks/bench_browse.py --rows 50000    # the same, scaled down
    python benchmarks/bench_browse.py --mixture-only --threads 1   # one thread reading rows

It reuses `bench_export.py`'s local copies (SmolTalk-like parquet files, GSM8K, ARC; built
under `benchmarks/data/export/` when missing) and its mixture spec. One child process then runs
the real screen headless (Textual's pilot, 80×24); keys are posted as the terminal posts them
(`pilot.press` would wait for the whole process to be idle, background reads included). Rows
are read in background threads, so each move is measured twice: until the row under the cursor
is in the conversation pane, and until every row on screen is filled in. It reports the first
screen (the plan built, the order shuffled, the row list drawn and row 0 shown) and every
visible row filled, `End` to the last row, a `:` jump to the middle, a thousand rows down
one by one (the keys handled, then the screen filled), and the child's peak RSS (the row
cache and the decoded row groups are bounded, so it stays flat). The same is then measured on
a plain JSONL file of about 1.7 GB (`--file-rows` conversations of ~4 kB, all alike), which is
indexed only as far as the screen needs, and to its end by `End`, while the duplicate scan
reads it whole in the background (its end is reported too).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_export import SMOLTALK_ROWS, build_data, write_specs  # noqa: E402

CHILD = """
import asyncio, json, resource, sys, time
started = time.perf_counter()
from taskcli.ui.browse.app import BrowseApp
from taskcli import browse as browsing
from taskcli.browse import open_browser
from taskcli.targets import open_target

async def shown(app, k):
    # Until the conversation of row k in view is in the pane (not its placeholder); the
    # screen paints it within a frame. Not `pilot.pause()`: it waits for the whole process
    # to be idle, background reads included.
    index = app.browser.position(k)
    while app.shown != index:
        if app.browser.failure(k):
            raise SystemExit(app.browser.failure(k))
        await asyncio.sleep(0.002)
    return time.perf_counter()

async def press(app, *keys):
    # Keys as the terminal sends them, without `pilot.press`, which waits for the process
    # to be idle (up to a second), background reads included.
    for key in keys:
        await asyncio.sleep(0.01)
        last = time.perf_counter()  # the figure counts from the last key
        app.simulate_key(key)
    return last

async def filled(app, pilot):
    # Until every row asked for was read and handed to the screen (painted within a frame).
    assert await app.settle(timeout=120)
    return time.perf_counter()

def arrow_peak():
    # The most Arrow ever held at once (decoded row groups), if pyarrow was loaded at all.
    pyarrow = sys.modules.get("pyarrow")
    return pyarrow.default_memory_pool().max_memory() if pyarrow else 0

async def main():
    browsing.READ_THREADS = int(sys.argv[3])
    browser = open_browser(open_target(sys.argv[1], data_dir=sys.argv[2]))
    opened = time.perf_counter()
    app = BrowseApp(browser)
    async with app.run_test(size=(80, 24)) as pilot:
        first = await shown(app, 0)
        visible = await filled(app, pilot)
        pressed = await press(app, "end")
        while app.busy or not browser.complete:  # a file is read to its end in a worker
            await asyncio.sleep(0.01)
        end = await shown(app, browser.length - 1)
        last = app.query_one("#status").render().plain
        end_filled = await filled(app, pilot)
        pressed_jump = await press(app, "colon", *str(browser.length // 2), "enter")
        jump = await shown(app, browser.length // 2)
        jump_filled = await filled(app, pilot)
        await press(app, "home")
        await filled(app, pilot)
        moving = time.perf_counter()
        for step in range(1000):  # faster than a held-down key: a frame every 20 rows
            app.action_move(1)
            if step % 20 == 0:
                await asyncio.sleep(1 / 60)
        keys = time.perf_counter() - moving
        await shown(app, app.cursor)
        scrolled = await filled(app, pilot) - moving
        scan = browser.duplicates  # a file's duplicate scan, running all along
        while scan is not None and not scan.done:
            await asyncio.sleep(0.05)
        scanned = time.perf_counter() - started if scan is not None else None
    print(json.dumps({
        "open": opened - started, "first_screen": first - started,
        "visible": visible - started, "end": end - pressed, "jump": jump - pressed_jump,
        "end_filled": end_filled - pressed, "jump_filled": jump_filled - pressed_jump,
        "keys_1000": keys, "scroll_1000": scrolled, "rows": browser.length,
        "status": last, "cached": browser.cached, "duplicates": scanned,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "arrow_peak": arrow_peak(),
    }))

asyncio.run(main())
"""


def big_file(rows: int) -> Path:
    """A plain JSONL file of `rows` conversations of about 4 kB each, built once."""
    path = ROOT / "benchmarks" / "data" / "browse" / f"big-{rows}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        user, assistant = "word " * 400, "answer " * 300
        line = json.dumps({"messages": [{"role": "user", "content": user}]})
        line = line[:-2] + ', {"role": "assistant", "content": "' + assistant + '"}]}\n'
        with open(path.with_suffix(".tmp"), "w") as out:
            for _ in range(rows):
                out.write(line)
        path.with_suffix(".tmp").rename(path)
    return path


def run_child(target: Path, data_dir: Path, env: dict[str, str], threads: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(target), str(data_dir), str(threads)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the browse child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_figures(figures: dict) -> None:
    print(f"open (plan, order, imports)   {figures['open']:6.2f} s")
    print(f"first screen drawn            {figures['first_screen']:6.2f} s   (list, row 0 shown)")
    print(f"every visible row filled      {figures['visible']:6.2f} s")
    print(f"End: the last row shown       {figures['end']:6.2f} s   ({figures['status'].strip()})")
    print(f"  and its screen filled       {figures['end_filled']:6.2f} s")
    print(f"':' jump to the middle        {figures['jump']:6.2f} s")
    print(f"  and its screen filled       {figures['jump_filled']:6.2f} s")
    print(f"1000 rows down: keys handled  {figures['keys_1000']:6.2f} s")
    print(f"  and the screen filled       {figures['scroll_1000']:6.2f} s")
    if figures["duplicates"] is not None:
        print(f"duplicate scan over           {figures['duplicates']:6.2f} s   (from the start)")
    print(f"peak RSS                      {figures['peak_rss'] / 1e6:6.0f} MB")
    print(f"  of which Arrow at most      {figures['arrow_peak'] / 1e6:6.0f} MB")
    print(f"rows in the cache             {figures['cached']:6,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=SMOLTALK_ROWS, help="SmolTalk rows to build.")
    parser.add_argument(
        "--file-rows", type=int, default=400_000, help="Conversations in the JSONL file."
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="Threads reading rows (READ_THREADS)."
    )
    parser.add_argument("--mixture-only", action="store_true", help="Skip the JSONL file.")
    args = parser.parse_args()
    root = build_data(args.rows)
    _, mixture, rows = write_specs(root, args.rows)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HOME": str(root / "hf-home"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TASKCLI_CACHE_DIR": str(root / "cache"),
    }
    figures = run_child(mixture, root, env, args.threads)
    print(f"mixture: {rows:,} rows ({figures['rows']:,} in the browser)")
    print_figures(figures)
    if args.mixture_only:
        return
    path = big_file(args.file_rows)
    figures = run_child(path, root, env, args.threads)
    print(f"\nJSONL file: {path.stat().st_size / 1e9:.2f} GB, {figures['rows']:,} rows")
    print_figures(figures)


if __name__ == "__main__":
    main()
