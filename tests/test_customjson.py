"""The customjson task: a local JSONL file as conversations, checked by validate's own rules."""

import gzip
import io
import json
import os
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.conversation import check_messages
from taskcli.errors import InvalidData, UsageError
from taskcli.targets import open_target
from taskcli.tasks import TaskMixture
from taskcli.tasks.customjson import CustomJSON
from taskcli.tasks.registry import all_tasks, create_task, describe

ROOT = Path(__file__).resolve().parent.parent
IDENTITY = ROOT / "examples" / "identity.jsonl"
runner = CliRunner()

USER = {"role": "user", "content": "Who are you?"}
ASSISTANT = {"role": "assistant", "content": "nanobot."}


def write(path: Path, *lines: bytes) -> Path:
    path.write_bytes(b"".join(lines))
    return path


def conversation(i: int) -> list[dict]:
    return [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"{i}"}]


def test_registry_entry():
    entry = describe(all_tasks()["customjson"])
    assert entry["source"] == "local file"
    assert entry["eval_type"] is None
    assert entry["subsets"] == [] and entry["splits"] == []
    param, input_format = entry["params"]
    assert (param["name"], param["type"], param["default"]) == ("path", "str", None)
    assert "required" in param["help"]
    assert input_format["name"] == "input_format" and input_format["default"] is None


def test_the_bundled_identity_conversations():
    task = CustomJSON(path=IDENTITY)
    assert len(task) == 36
    raw = [json.loads(line) for line in IDENTITY.read_text().splitlines()]
    assert list(task) == [{"messages": messages} for messages in raw]
    for example in task:
        assert check_messages(example["messages"]) == []
    assert any(example["messages"][0]["role"] == "system" for example in task)
    assert any(len(example["messages"]) >= 4 for example in task)


def test_both_shapes_blank_lines_bom_and_crlf(tmp_path):
    path = write(
        tmp_path / "data.jsonl",
        b"\xef\xbb\xbf" + orjson.dumps(conversation(0)) + b"\r\n",
        b"\n  \n",
        orjson.dumps({"id": "x1", "messages": conversation(1), "tags": ["a"]}) + b"\n",
        orjson.dumps(conversation(2)),  # no final newline
    )
    task = CustomJSON(path=path)
    assert len(task) == 3
    assert task[0] == {"messages": conversation(0)}
    assert task[1] == {"id": "x1", "messages": conversation(1), "tags": ["a"]}
    assert task[2] == {"messages": conversation(2)}
    assert task[-1] == task[2]
    assert task.batch(0, 10) == [task[0], task[1], task[2]]


def test_slicing_and_mixing(tmp_path):
    path = write(
        tmp_path / "ten.jsonl", *(orjson.dumps(conversation(i)) + b"\n" for i in range(10))
    )
    task = CustomJSON(path=path, start=1, stop=8, step=3)
    assert [example["messages"][1]["content"] for example in task] == ["1", "4", "7"]
    with pytest.raises(IndexError, match="3 examples"):
        task[3]
    mixture = TaskMixture([CustomJSON(path=path), CustomJSON(path=path)])
    contents = sorted(int(example["messages"][1]["content"]) for example in mixture)
    assert contents == sorted(list(range(10)) * 2)


def test_examples_are_fresh_copies(tmp_path):
    path = write(tmp_path / "one.jsonl", orjson.dumps(conversation(0)) + b"\n")
    task = CustomJSON(path=path)
    task[0]["messages"].clear()
    assert task[0] == {"messages": conversation(0)}


def test_bad_lines_fail_the_load_with_file_and_line(tmp_path):
    lines = [orjson.dumps(conversation(0)) + b"\n", b"\n"]
    lines += [orjson.dumps([USER, USER]) + b"\n"] * 7
    path = write(tmp_path / "bad.jsonl", *lines, b"[1,]\n")
    with pytest.raises(InvalidData) as caught:
        CustomJSON(path=path)
    message = str(caught.value)
    assert f"{path}: 8 of 9 lines are not valid conversations (15 errors)" in message
    assert f"{path}:3: [roles-not-alternating] 'user' follows 'user'" in message
    assert "(at messages[1].role)" in message
    assert f"{path}:5: [roles-not-alternating]" in message
    assert f"{path}:6:" not in message  # only the first five errors
    assert "... and 10 more" in message
    assert f"taskcli validate {path}" in caught.value.hint


def test_warnings_do_not_fail_the_load(tmp_path):
    line = orjson.dumps([USER, ASSISTANT, {"role": "user", "content": "And?"}])
    path = write(tmp_path / "warned.jsonl", line + b"\r\n", line + b"\n")
    assert len(CustomJSON(path=path)) == 2


def test_a_missing_file_or_no_path_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        CustomJSON(path=tmp_path / "missing.jsonl")
    with pytest.raises(UsageError, match="needs a file"):
        CustomJSON()
    with pytest.raises(UsageError, match="needs a file"):
        create_task("customjson")


def test_an_empty_file_is_invalid_not_an_empty_task(tmp_path):
    with pytest.raises(InvalidData, match="empty-file"):
        CustomJSON(path=write(tmp_path / "empty.jsonl", b""))


def test_gzip_files(tmp_path):
    path = tmp_path / "data.jsonl.gz"
    path.write_bytes(
        gzip.compress(b"".join(orjson.dumps(conversation(i)) + b"\n" for i in range(3)))
    )
    task = CustomJSON(path=path)
    assert [example["messages"] for example in task] == [conversation(i) for i in range(3)]
    assert open_target(str(path)).task[1] == {"messages": conversation(1)}


def test_standard_input_is_kept_in_memory(monkeypatch):
    lines = b"".join(orjson.dumps(conversation(i)) + b"\n" for i in range(3))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(lines)))
    task = CustomJSON(path="-")
    assert task[2] == {"messages": conversation(2)} and len(task) == 3


def test_a_file_changed_after_loading_is_noticed(tmp_path):
    path = write(tmp_path / "data.jsonl", orjson.dumps(conversation(0)) + b"\n")
    task = CustomJSON(path=path)
    path.write_bytes(b"[" + b" " * 100 + b"]\n")
    os.utime(path, ns=(1, 1))
    with pytest.raises(InvalidData, match="changed after it was loaded"):
        task[0]


def test_offsets_not_conversations_are_kept(tmp_path):
    path = write(
        tmp_path / "data.jsonl", *(orjson.dumps(conversation(i)) + b"\n" for i in range(50))
    )
    task = CustomJSON(path=path)
    assert task._kept is None and len(task._index) == 50
    assert task._index.offsets.itemsize == 8


# --- through the CLI -----------------------------------------------------------------------


def test_show_a_jsonl_path():
    result = runner.invoke(app, ["show", str(IDENTITY), "--index", "16"])
    assert result.exit_code == 0, result.output
    assert f"{IDENTITY}  ·  example 16 of 36" in result.stdout
    assert "Can you do math?" in result.stdout
    assert "python ▶ 37*48" in result.stdout and "output ◀ 1776" in result.stdout


def test_show_json_prints_the_conversations_as_they_are(tmp_path):
    path = write(tmp_path / "data.jsonl", orjson.dumps({"messages": conversation(0), "id": 3}))
    result = runner.invoke(app, ["show", "customjson", "-p", f"path={path}", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"messages": conversation(0), "id": 3, "index": 0}


def test_show_a_bad_file_exits_1_with_the_lines(tmp_path):
    path = write(tmp_path / "bad.jsonl", orjson.dumps(conversation(0)) + b"\n", b"[NaN]\n")
    result = runner.invoke(app, ["show", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2: [invalid-json]" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [["show", "nope.jsonl"], ["show", "customjson"]])
def test_show_without_a_file_exits_2(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "no such file" in result.stderr or "needs a file" in result.stderr


def test_list_shows_path_as_required():
    result = runner.invoke(app, ["list", "customjson"])
    assert result.exit_code == 0
    row = next(line for line in result.stdout.splitlines() if "-p path=" in line)
    assert "required" in row
