"""Errors in one style, help that reads as sentences, and the rules reference offline."""

import io
import itertools

import pytest
from rich.console import Console
from typer.main import get_command
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.conversation import RULES
from taskcli.ui import console

runner = CliRunner()
BOX = "╭╮╰╯│"


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def printed_error(message, hint, *, terminal, width=60):
    """What `print_error` writes to a console of `width` columns."""
    stream = io.StringIO()
    recorder = Console(file=stream, force_terminal=terminal, width=width, color_system=None)
    original = console.stderr
    console.stderr = recorder
    try:
        console.print_error(message, hint)
    finally:
        console.stderr = original
    return stream.getvalue()


LONG = (
    "dataset allenai/ai2_arc (subset 'ARC-Easy', split 'test') is not available: there is no "
    "local copy at /data/allenai/ai2_arc, and the Hub is unreachable."
)
FIX = (
    "on a machine with network, run `hf download allenai/ai2_arc --repo-type dataset "
    "--local-dir /data/allenai/ai2_arc`, then use /data as the data dir."
)


def test_on_a_terminal_errors_wrap_at_words_and_keep_commands_whole():
    text = printed_error(LONG, FIX, terminal=True)
    lines = text.splitlines()
    assert lines[0].startswith("Error: ") and any(line.startswith("Hint: ") for line in lines)
    command = "`hf download allenai/ai2_arc --repo-type dataset --local-dir /data/allenai/ai2_arc`"
    assert any(command in line for line in lines), text
    for line in lines:
        if command not in line:
            assert len(line) <= 60, line
    # Words are never cut: every word of the message is on some line whole.
    words = set(" ".join(lines).split())
    assert set(LONG.split()) <= words


def test_off_a_terminal_each_line_is_written_whole():
    text = printed_error(LONG, FIX, terminal=False)
    assert text == f"Error: {LONG}\nHint: On{FIX[2:]}\n"  # a hint is a sentence


@pytest.mark.parametrize(
    "args",
    [
        ["show", "gsm8k", "--colour"],
        ["validate", "--max-errors", "-1", "x.jsonl"],
        ["show"],
        ["export", "x.yaml", "--limit", "many"],
    ],
)
def test_option_errors_are_in_the_same_style_without_a_panel(args):
    result = invoke(*args, env={"COLUMNS": "80"})
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: ")
    assert lines[-1] == f"Hint: `taskcli {args[0]} --help` lists what it takes."
    assert not any(mark in result.stderr for mark in BOX)


def test_help_points_to_the_rules_command_not_to_a_docs_file():
    for command in get_command(app).commands.values():
        assert "docs/rules.md" not in (command.help or "")
    result = invoke("validate", "--help", env={"COLUMNS": "80"})
    assert "taskcli rules" in " ".join(result.stdout.split())


@pytest.mark.parametrize("name", ["show", "export", "validate", "stats", "list", "rules"])
def test_help_reads_as_sentences_at_80_columns(name):
    result = invoke(name, "--help", env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    # Each paragraph of the docstring shows up whole once the box is taken away.
    text = " ".join(line.strip(" │") for line in result.stdout.splitlines())
    text = " ".join(text.split())
    doc = get_command(app).commands[name].help.split("\n\n")[0]
    assert " ".join(doc.split()) in text
    # No line of the description breaks off mid-sentence: one that goes on below is full.
    description = result.stdout.split("╭", 1)[0].splitlines()
    for line, following in itertools.pairwise(description):
        if line.strip() and following.strip() and not following.strip().startswith("Example"):
            assert len(line.rstrip()) >= 60, (line, following)


def test_rules_lists_every_rule_offline():
    result = invoke("rules", env={"COLUMNS": "80"})
    assert result.exit_code == 0
    for rule, (severity, _) in RULES.items():
        assert any(line.split()[:2] == [rule, severity] for line in result.stdout.splitlines())
    assert all(len(line) <= 80 for line in result.stdout.splitlines())


def test_one_rule_and_a_mistyped_one():
    one = invoke("rules", "roles-not-alternating", "--json")
    assert one.exit_code == 0
    assert one.stdout.count('"rule"') == 1 and "two user or two assistant" in one.stdout
    wrong = invoke("rules", "roles-not-alternate")
    assert wrong.exit_code == 2
    assert "Did you mean 'roles-not-alternating'" in wrong.stderr
