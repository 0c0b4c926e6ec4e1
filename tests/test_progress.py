"""Progress on a terminal: bytes for a pass over files, named phases for an export; nothing on a
pipe or in a log."""

import os
import sys
from pathlib import Path

import orjson
import pytest
from terminal import read_to_end, start_on_terminal
from typer.testing import CliRunner

from taskcli.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def on_terminal(*args: str, cwd: Path) -> tuple[int, str]:
    """Run taskcli on a pseudo-terminal of 80 columns: its exit code and everything it drew."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    process, fd = start_on_terminal([sys.executable, "-m", "taskcli", *args], env, cwd)
    screen = read_to_end(fd)
    os.close(fd)
    return process.wait(), screen.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    line = orjson.dumps(
        [{"role": "user", "content": "q" * 200}, {"role": "assistant", "content": "a" * 300}]
    )
    (folder / "big.jsonl").write_bytes((line + b"\n") * 20000)
    return folder


@pytest.mark.parametrize(("command", "label"), [("stats", "reading"), ("validate", "checking")])
def test_a_pass_over_a_file_shows_bytes_on_a_terminal(big, command, label):
    code, screen = on_terminal(command, "big.jsonl", cwd=big)
    assert code == 0, screen
    assert label in screen and "MB" in screen  # bytes read of the file's size
    piped = runner.invoke(app, [command, str(big / "big.jsonl")])
    assert piped.exit_code == 0 and piped.stderr == ""


def test_export_names_its_phases_and_leaves_no_bar(big):
    code, screen = on_terminal("export", "big.jsonl", "-o", "out.jsonl", cwd=big)
    assert code == 0, screen
    assert "converting" in screen and "rows" in screen
    last = screen.rsplit("\x1b[2K", 1)[1]  # after the bar was erased
    assert "wrote 20,000 rows to out.jsonl" in last
    piped = runner.invoke(app, ["export", str(big / "big.jsonl"), "-o", str(big / "o2.jsonl")])
    assert piped.stderr.startswith("wrote 20,000 rows")
