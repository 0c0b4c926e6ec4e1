"""The newcomer path: help that teaches, colour that obeys NO_COLOR, completion, fast start-up."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from taskcli.cli import app

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = list(get_command(app).commands)
COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7])m")  # a foreground-colour escape
runner = CliRunner()


def run(*args, **env):
    """taskcli in a real process; the suite's NO_COLOR is dropped unless given again."""
    base = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    return subprocess.run(
        [sys.executable, "-m", "taskcli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        timeout=60,
    )


def test_every_command_is_listed_in_the_top_level_help():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("list", "show", "validate", "export", "stats", "eval"):
        assert name in COMMANDS and name in result.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_help_explains_itself_with_an_example(name):
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0
    assert "Example: taskcli " + ("eval" if name == "eval" else name) in result.stdout


def test_no_arguments_prints_help_not_a_traceback():
    result = runner.invoke(app, [])
    assert "Usage" in result.output and "Traceback" not in result.output


def test_no_color_is_honoured():
    coloured = run("show", "examples/identity.jsonl", FORCE_COLOR="1")
    plain = run("show", "examples/identity.jsonl", FORCE_COLOR="1", NO_COLOR="1")
    assert coloured.returncode == plain.returncode == 0
    assert COLOUR.search(coloured.stdout)
    assert not COLOUR.search(plain.stdout)


def test_show_completion_prints_a_completion_script():
    """Run from bash, as a user runs it: the shell is found among the process's ancestors, so
    the test passes wherever the suite runs (under nohup or an IDE too). A list, not one
    command, so that bash does not exec it in its own place."""
    base = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    done = subprocess.run(
        ["bash", "-c", '"$0" -m taskcli --show-completion; exit $?', sys.executable],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, "PYTHONPATH": str(ROOT), "SHELL": "/bin/bash"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "_taskcli_completion" in done.stdout


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "--json"]])
def test_help_and_list_import_no_heavy_library(args):
    code = (
        f"import sys\nfrom taskcli.cli import main\nsys.argv = ['taskcli', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('datasets', 'pyarrow', 'pandas', 'numpy') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in done.stderr


def test_unknown_option_is_a_usage_error():
    result = runner.invoke(app, ["show", "gsm8k", "--colour"])
    assert result.exit_code == 2
    assert "No such option" in result.output
