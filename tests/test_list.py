"""`taskcli list`: one row per task at 80 columns, one task in full, one JSON schema."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.tasks.registry import all_tasks, describe
from taskcli.tasks.spellingbee import WORD_LIST_URL

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def invoke(*args, width=80):
    """The command at `width` columns. Rich reads COLUMNS once, when the console is made (the
    first command a test process runs), so the console is swapped for one of that width."""
    from rich.console import Console

    from taskcli.ui import console

    original, console.stdout = console.stdout, Console(width=width)
    try:
        return runner.invoke(app, list(args))
    finally:
        console.stdout = original


def task_lines(text):
    """The table's lines that name a task, by task name."""
    lines = text.splitlines()
    return {
        line.split()[0]: line
        for line in lines
        if line.startswith(" ") and line.split() and line.split()[0] in all_tasks()
    }


@pytest.mark.parametrize("width", [60, 80, 100, 140])
def test_one_line_per_task_at_any_width(width):
    """As the README says: one line each, never wrapped, within the terminal's width."""
    result = invoke("list", width=width)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert all(len(line) <= width for line in lines)
    rows = [line for line in lines if line.startswith(" ") and line.strip()]
    header, rule, body = rows[0], rows[1], rows[2:]
    assert header.split()[0] == "task" and set(rule.strip()) == {"─"}
    assert [line.split()[0] for line in body] == list(all_tasks())  # no continuation lines


def test_columns_give_way_to_the_description():
    """At 80 columns the kind and the subsets give way so the description keeps 48 characters,
    cut after a word; at 140 every column and every description is whole."""
    narrow = task_lines(invoke("list").stdout)
    assert "categorical" not in narrow["arc"] and "ARC-Easy" not in narrow["arc"]
    assert "train, test*" in narrow["gsm8k"]  # GSM8K: the default split marked
    for name, cls in all_tasks().items():
        shown = narrow[name].split("  ")[-1].strip() if "…" in narrow[name] else None
        if shown:  # a prefix of the description, cut after a word
            assert cls.description.startswith(shown[:-1]), (name, shown)
            assert cls.description[len(shown) - 1] in " -," or shown[-2] in " -,", shown
            assert len(shown) >= 20
    wide = invoke("list", width=140).stdout
    assert "…" not in wide
    for name, cls in all_tasks().items():
        assert cls.description in task_lines(wide)[name]
    assert "all* +58" in task_lines(wide)["mmlu"]  # MMLU: the default subset, and the others
    assert "categorical" in task_lines(wide)["arc"]


def test_the_list_says_which_tasks_download_and_how_not_to():
    text = invoke("list").stdout
    assert "spellingbee, simplespelling fetch their word_list on first use, then cache it." in text
    assert "-p word_list=FILE uses a local file: no network needed." in text


def test_one_task_in_full():
    result = invoke("list", "MMLU")
    assert result.exit_code == 0
    cls = all_tasks()["mmlu"]
    for subset in cls.subsets:
        assert f"subset {subset}" in result.stdout
    assert "subset all*" in result.stdout and "cais/mmlu" in result.stdout
    spelling = invoke("list", "spellingbee").stdout
    assert "-p size=" in spelling and "-p word_list=" in spelling
    assert "default 1000" in spelling


@pytest.mark.parametrize("width", [40, 80, 200])
def test_a_url_is_printed_whole_with_how_to_do_without_it(width, monkeypatch, tmp_path):
    """The word list's URL on a line of its own, never broken (so it can be copied), with
    where the download is kept and the option that points at a local copy instead."""
    monkeypatch.setenv("TASKCLI_CACHE_DIR", str(tmp_path / "cache"))
    text = invoke("list", "spellingbee", width=width).stdout
    lines = [line.strip() for line in text.splitlines()]
    assert WORD_LIST_URL in lines
    assert "-p word_list=words_alpha.txt   (in a mixture spec: word_list: words_alpha.txt)" in lines
    flat = " ".join(text.split())
    assert "downloaded on first use and cached in" in flat
    assert str(tmp_path / "cache") in text
    assert "only that first run needs the network" in flat
    assert "(str, default: the URL below)" in flat


def test_json_has_one_schema_for_every_task():
    entries = json.loads(invoke("list", "--json").stdout)
    keys = {tuple(entry) for entry in entries}
    assert len(keys) == 1
    for entry in entries:
        assert isinstance(entry["splits"], list)
        assert isinstance(entry["subset_splits"], dict)
        assert set(entry["subset_splits"]) == set(entry["subsets"])
        for splits in entry["subset_splits"].values():
            assert set(splits) <= set(entry["splits"])
        assert isinstance(entry["params"], list)
    one = json.loads(invoke("list", "gsm8k", "--json").stdout)
    assert one == describe(all_tasks()["gsm8k"])


def complete(words, cword):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "_TASKCLI_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
    }
    done = subprocess.run(
        [sys.executable, "-m", "taskcli"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("taskcli show gs", 2, ["gsm8k"]),
        ("taskcli list sp", 2, ["spellingbee"]),
        ("taskcli show MMLU --subset abs", 4, ["abstract_algebra"]),
        ("taskcli stats gsm8k --split ", 4, ["train", "test"]),
        ("taskcli show arc --subset ARC-Challenge --split v", 6, ["validation"]),
        ("taskcli export spellingbee -p wo", 4, ["word_list="]),
        ("taskcli show examples/iden", 2, ["examples/identity.jsonl"]),
    ],
)
def test_completion_from_the_registry(words, cword, expected, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert complete(words, cword) == expected
