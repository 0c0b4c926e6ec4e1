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

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args), env={"COLUMNS": "80"})


def test_the_table_fits_80_columns_one_row_per_task():
    result = invoke("list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert len(lines) < 60  # it was 300
    names = [line.split()[0] for line in lines if line.startswith(" ") and line.split()]
    assert [n for n in names if n in all_tasks()] == list(all_tasks())


def test_descriptions_are_whole_words_and_defaults_are_marked():
    text = invoke("list").stdout
    words = set(text.split())
    for cls in all_tasks().values():
        assert set(cls.description.split()) <= words, cls.name
    assert "…" not in text
    assert "all* +58" in text  # MMLU: the default subset, and how many others
    assert "train, test*" in text  # GSM8K: the default split marked


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
