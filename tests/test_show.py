"""`taskcli show` as people see it: headers, tool calls, metadata, errors, a real process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hubdata import write_arc, write_gsm8k
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.tasks import ARC, GSM8K

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write_gsm8k(folder)
    write_arc(folder)
    return folder


def test_header_names_task_subset_split_index_and_total(data_dir):
    result = runner.invoke(
        app, ["show", "gsm8k", "--data-dir", str(data_dir), "-i", "2", "-n", "2"]
    )
    assert result.exit_code == 0, result.output
    total = len(GSM8K(data_dir=data_dir))
    assert f"gsm8k / main / test  ·  example 2 of {total}" in result.stdout
    assert f"example 3 of {total}" in result.stdout


def test_tool_calls_are_marked_apart_from_text(data_dir):
    conversation = GSM8K(data_dir=data_dir)[0]
    result = runner.invoke(app, ["show", "gsm8k", "--data-dir", str(data_dir)])
    parts = conversation["messages"][1]["content"]
    call = next(p["text"] for p in parts if p["type"] == "python")
    output = next(p["text"] for p in parts if p["type"] == "python_output")
    assert f"python ▶ {call}" in result.stdout
    assert f"output ◀ {output}" in result.stdout


def test_metadata_is_shown_compactly(data_dir):
    letters = ARC(data_dir=data_dir)[1]["letters"]
    result = runner.invoke(app, ["show", "arc", "--data-dir", str(data_dir), "--index", "1"])
    assert result.exit_code == 0, result.output
    assert f"letters: {json.dumps(letters, separators=(',', ':'))}" in result.stdout


def test_invalid_split_lists_the_valid_ones(data_dir):
    result = runner.invoke(app, ["show", "gsm8k", "--split", "dev", "--data-dir", str(data_dir)])
    assert result.exit_code == 2
    assert "Valid splits: train, test" in result.stderr


def test_bad_param_syntax_is_a_usage_error():
    result = runner.invoke(app, ["show", "spellingbee", "-p", "size"])
    assert result.exit_code == 2
    assert "expected KEY=VALUE" in result.output


def test_jsonl_path_is_shorthand_for_customjson():
    path = str(ROOT / "examples" / "identity.jsonl")
    short = runner.invoke(app, ["show", path, "--json", "-n", "3"])
    long = runner.invoke(app, ["show", "customjson", "-p", f"path={path}", "--json", "-n", "3"])
    assert short.exit_code == 0, short.output
    assert short.stdout == long.stdout
    assert len(short.stdout.splitlines()) == 3


def test_count_past_the_end_shows_what_there_is():
    path = str(ROOT / "examples" / "identity.jsonl")
    total = sum(1 for line in Path(path).read_text().splitlines() if line.strip())
    result = runner.invoke(app, ["show", path, "--json", "-i", str(total - 2), "-n", "10"])
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 2


def test_show_in_a_real_process(data_dir):
    done = subprocess.run(
        [sys.executable, "-m", "taskcli", "show", "gsm8k", "--index", "4", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TASKCLI_DATA_DIR": str(data_dir)},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {**GSM8K(data_dir=data_dir)[4], "index": 4}


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("taskcli 0.")


def test_a_file_is_named_by_its_path_in_the_header(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["show", "examples/identity.jsonl", "--index", "1"])
    assert result.exit_code == 0, result.output
    assert "examples/identity.jsonl  ·  example 1 of" in result.stdout
