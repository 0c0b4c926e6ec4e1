"""Render the pictures of `taskcli show`, `stats` and `browse` in docs/images/ from real output.

    python scripts/render_screenshots.py             # writes docs/images/*.svg
    python scripts/render_screenshots.py -o /tmp/img

Each picture is the CLI itself, run through `typer.testing.CliRunner` while `taskcli.ui.console`'s
console is swapped for a recording one, then saved with Rich's ``save_svg``. So the pictures are the
real drawing code's output, and rerunning this script after a change redraws them. The `browse`
screen is run headless by Textual's pilot at 80×24 and 120×40 and saved with its own screenshot
export. Only bundled data is used (`examples/`), so it runs offline and gives the same pictures
every time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.ui import console

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
WIDTH = 100

# The mixture pictured by `taskcli stats`: the bundled conversations and two spelling drills.
MIXTURE = """\
tasks:
  - task: customjson
    path: {examples}/identity.jsonl
    repeat: 4
  - task: spellingbee
    word_list: {examples}/words.txt
    size: 300
  - task: simplespelling
    word_list: {examples}/words.txt
    size: 100
"""


@contextlib.contextmanager
def recording_console() -> Iterator[Console]:
    """`taskcli.ui.console.stdout` replaced by a colourful, recording, fixed-width console."""
    recorder = Console(
        record=True,
        width=WIDTH,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        no_color=False,
    )
    original = console.stdout
    console.stdout = recorder
    try:
        yield recorder
    finally:
        console.stdout = original


def run(console: Console, args: list[str], shown: str) -> None:
    """Run ``taskcli ARGS`` into `console`, after a prompt line showing the command as `shown`."""
    console.print(f"$ taskcli {shown}", style="bold", highlight=False)
    result = CliRunner().invoke(app, args)
    if result.exit_code != 0:
        why = result.output or repr(result.exception)
        raise RuntimeError(f"taskcli {shown} exited {result.exit_code}: {why}")
    console.print()


def render(out_dir: Path) -> list[Path]:
    """Write show.svg and stats.svg into `out_dir` and return their paths.

    Commands run from the repository root with relative paths, as a reader would type them, so
    the pictures do not depend on where the checkout lives.
    """
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    words = "word_list=examples/words.txt"

    show_svg = out_dir / "show.svg"
    with contextlib.chdir(ROOT), recording_console() as console:
        run(console, ["show", "examples/identity.jsonl"], "show examples/identity.jsonl")
        run(
            console,
            ["show", "spellingbee", "-p", words, "--index", "3"],
            "show spellingbee -p word_list=examples/words.txt --index 3",
        )
        console.save_svg(str(show_svg), title="taskcli show")

    stats_svg = out_dir / "stats.svg"
    with tempfile.TemporaryDirectory() as folder, recording_console() as console:
        spec = Path(folder) / "mixture.yaml"
        spec.write_text(MIXTURE.format(examples=EXAMPLES))
        run(console, ["stats", str(spec)], "stats mixture.yaml")
        console.save_svg(str(stats_svg), title="taskcli stats")
    return [show_svg, stats_svg]


# What the browse pictures show: the mixture, three rows down (a spelling drill with tool parts).
BROWSE_TARGET = "examples/local-mixture.yaml"
BROWSE_KEYS = ("j", "j", "j")
BROWSE_SIZES = ((80, 24), (120, 40))


def render_browse(out_dir: Path) -> list[Path]:
    """Write browse-80x24.svg and browse-120x40.svg into `out_dir` and return their paths."""
    import asyncio

    from taskcli.browse import open_browser
    from taskcli.targets import open_target
    from taskcli.ui.browse.app import BrowseApp

    async def picture(size: tuple[int, int]) -> str:
        app = BrowseApp(open_browser(open_target(BROWSE_TARGET)))
        async with app.run_test(size=size) as pilot:
            await pilot.press(*BROWSE_KEYS)
            await pilot.pause()
            await app.settle()  # the rows read in the background are on the screen
            await pilot.pause()
            return app.export_screenshot(title="taskcli browse")

    paths = []
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    no_color = os.environ.pop("NO_COLOR", None)  # the pictures are in colour wherever made
    try:
        with contextlib.chdir(ROOT):
            for width, height in BROWSE_SIZES:
                path = out_dir / f"browse-{width}x{height}.svg"
                path.write_text(asyncio.run(picture((width, height))))
                paths.append(path)
    finally:
        if no_color is not None:
            os.environ["NO_COLOR"] = no_color
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out-dir", type=Path, default=ROOT / "docs" / "images")
    out_dir = parser.parse_args().out_dir
    for path in [*render(out_dir), *render_browse(out_dir)]:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
