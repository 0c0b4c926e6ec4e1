"""`taskcli export`: the exact mixture order, every format, manifests, shards and atomicity."""

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import hubdata
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from specfiles import write_spec
from typer.testing import CliRunner

from taskcli import __version__
from taskcli.cli import app
from taskcli.errors import DataUnavailable
from taskcli.export import FORMATS, columnar, export, order
from taskcli.export.lines import APPEND_NEWLINE, EntryLines
from taskcli.files import arrow_rules
from taskcli.hub.data import TableRows
from taskcli.mixing.plan import build_plan, selected_rows
from taskcli.mixing.spec import load_spec
from taskcli.tasks import Param, Task, registry
from taskcli.tasks.capabilities import ChecksMessages
from taskcli.tasks.common import SCAN_CHUNK
from taskcli.ui.console import progress_bar

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Letters(Task):
    """``size`` short exchanges naming subset, split and index; example `bad` breaks the rules."""

    name = "letters"
    description = "Short exchanges that say where they come from."
    dataset = "synthetic"
    subsets = ("lower", "upper")
    default_subset = "lower"
    splits = ("train", "test")
    default_split = "train"
    params = (
        Param("size", int, 20, "How many examples."),
        Param("bad", int, -1, "The index of a conversation that starts with the assistant."),
        Param("notes", str, "", "A file that is only recorded in the manifest.", is_path=True),
    )
    batches: list[int] = []  # noqa: RUF012 -- the sizes of get_examples calls, for the bulk test

    def __init__(self, subset="lower", split="train", size=20, bad=-1, notes="", **slices):
        super().__init__(**slices)
        self.subset, self.split, self.size, self.bad = subset, split, size, bad

    def num_examples(self):
        return self.size

    def get_example(self, index):
        where = f"{self.subset} {self.split} {index}"
        if self.subset == "upper":
            where = where.upper()
        messages = [
            {"role": "user", "content": f"question {where}"},
            {"role": "assistant", "content": f"answer {where}"},
        ]
        if index == self.bad:
            messages.reverse()
        return {"messages": messages, "n": index}

    def get_examples(self, indices):
        Letters.batches.append(len(indices))
        return [self.get_example(i) for i in indices]


class Calc(Task):
    """A system prompt, then a calculator call in the assistant's parts, GSM8K style."""

    name = "calc"
    description = "Doubling with a calculator."
    dataset = "synthetic"
    params = (Param("size", int, 11, "How many examples."),)

    def __init__(self, size=11, **slices):
        super().__init__(**slices)
        self.size = size

    def num_examples(self):
        return self.size

    def get_example(self, index):
        total = str(2 * index)
        return {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": f"What is {index}+{index}?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": f"{index}+{index} = "},
                        {"type": "python", "text": f"{index}+{index}"},
                        {"type": "python_output", "text": total},
                        {"type": "text", "text": f"{total}. #### {total}"},
                    ],
                },
            ],
            "answer": total,
        }


class Offline(Task):
    """A task whose data is never there."""

    name = "offline"
    description = "Never available."
    dataset = "nowhere/offline"

    def num_examples(self):
        raise DataUnavailable("dataset nowhere/offline is not available offline")


@pytest.fixture(autouse=True)
def fake_tasks():
    for cls in (Letters, Calc, Offline):
        registry.register(cls)
    Letters.batches = []
    yield
    registry.clear_cache()


def run(*args: str):
    """`taskcli ARGS` through the real CLI; a failure must be a message, never a traceback."""
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def flat(text: str) -> str:
    return " ".join(text.split())


def read_jsonl(path: Path) -> list:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


MIXTURE = """
    seed: 5
    tasks:
      - task: letters
        split: test
        size: 30
      - task: letters
        subset: upper
        size: 20
        start: 3
        stop: 17
        step: 2
        repeat: 2
      - task: calc
"""


def test_mixture_order_is_nanochats_shuffle_of_task_local_pairs(tmp_path):
    out = tmp_path / "train.jsonl"
    result = run("export", str(write_spec(tmp_path, MIXTURE)), "-o", str(out), "-f", "full")
    assert result.exit_code == 0, result.output

    # Independently: the (task number, local index) pairs listed task by task, shuffled once.
    members = [  # (task, subset, split, start, length, step) for each task copy, repeat expanded
        ("letters", "lower", "test", 0, 30, 1),
        ("letters", "upper", "train", 3, 7, 2),
        ("letters", "upper", "train", 3, 7, 2),
        ("calc", None, None, 0, 11, 1),
    ]
    pairs = [(t, local) for t, member in enumerate(members) for local in range(member[4])]
    random.Random(5).shuffle(pairs)
    expected = [
        (members[t][0], members[t][1], members[t][2], members[t][3] + local * members[t][5])
        for t, local in pairs
    ]

    rows = read_jsonl(out)
    got = [
        (r["source"]["task"], r["source"]["subset"], r["source"]["split"], r["source"]["index"])
        for r in rows
    ]
    assert got == expected
    assert len(rows) == 30 + 7 + 7 + 11
    # Each row is exactly the task's conversation at its source index.
    for row in rows:
        source = row.pop("source")
        task = registry.create_task(
            source["task"], source["subset"], source["split"], source.get("params")
        )
        assert row == task[source["index"]]


def test_sequence_mode_concatenates_in_order(tmp_path):
    spec = write_spec(tmp_path, MIXTURE.replace("seed: 5", "mode: sequence"))
    result = run("export", str(spec), "-o", "-", "-f", "full")
    assert result.exit_code == 0, result.output
    got = [
        (r["source"]["subset"], r["source"]["index"])
        for r in map(json.loads, result.stdout.splitlines())
    ]
    upper = [("upper", i) for i in range(3, 17, 2)]
    assert got == [("lower", i) for i in range(30)] + upper + upper + [(None, i) for i in range(11)]


def test_rows_are_read_in_bulk_per_task(tmp_path):
    spec = write_spec(tmp_path, "tasks: [{task: letters, size: 20000}, {task: calc, size: 5}]\n")
    result = run("export", str(spec), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 0, result.output
    # Read a chunk at a time, never one row per call.
    assert Letters.batches == [SCAN_CHUNK] * (20000 // SCAN_CHUNK) + [20000 % SCAN_CHUNK]


FORMATS_SPEC = "seed: 1\ntasks: [{task: calc, size: 4, start: 3}, {task: letters, size: 2}]\n"


def export_rows(tmp_path: Path, fmt: str) -> list:
    out = tmp_path / f"{fmt}.jsonl"
    result = run("export", str(write_spec(tmp_path, FORMATS_SPEC)), "-o", str(out), "-f", fmt)
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    assert len(rows) == 3
    return rows


def calc_row(rows: list) -> object:
    return next(r for r in rows if "Be brief." in json.dumps(r))


def test_messages_format_keeps_parts(tmp_path):
    row = calc_row(export_rows(tmp_path, "messages"))
    assert list(row) == ["messages"]
    assert row["messages"] == Calc()[3]["messages"]


def test_nanochat_format_folds_the_system_message_flattens_tool_calls_and_validates(tmp_path):
    row = calc_row(export_rows(tmp_path, "nanochat"))
    assert row == [
        {"role": "user", "content": "Be brief.\n\nWhat is 3+3?"},
        {"role": "assistant", "content": "3+3 = <<3+3=6>>6. #### 6"},
    ]
    # nanochat's CustomJSON loader refuses system messages: --no-system checks what it checks
    result = run("validate", "--no-system", str(tmp_path / "nanochat.jsonl"))
    assert result.exit_code == 0, result.output


def test_nanochat_format_folds_system_messages_in_the_arrow_path_too(tmp_path, monkeypatch):
    """SmolTalk rows with a system prompt leave the bulk path; the lines are the same bytes."""
    hubdata.write_smoltalk(tmp_path)
    spec = write_spec(tmp_path, "tasks:\n  - task: smoltalk\n    split: train\n")
    bulk = run("export", str(spec), "--data-dir", str(tmp_path), "-o", "-", "-f", "nanochat")
    monkeypatch.setattr(EntryLines, "add", EntryLines.add_examples)  # row by row
    slow = run("export", str(spec), "--data-dir", str(tmp_path), "-o", "-", "-f", "nanochat")
    assert bulk.exit_code == 0 and bulk.stdout_bytes == slow.stdout_bytes
    rows = [json.loads(line) for line in bulk.stdout_bytes.splitlines()]
    assert all(m["role"] != "system" for row in rows for m in row)
    assert any(row[0]["content"].count("\n\n") for row in rows)


def test_openai_format_writes_tool_calls_as_tool_calls(tmp_path):
    row = calc_row(export_rows(tmp_path, "openai"))
    call = {"name": "python", "arguments": '{"code":"3+3"}'}
    assert row == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 3+3?"},
            {
                "role": "assistant",
                "content": "3+3 = ",
                "tool_calls": [{"id": "call_0", "type": "function", "function": call}],
            },
            {"role": "tool", "tool_call_id": "call_0", "content": "6"},
            {"role": "assistant", "content": "6. #### 6"},
        ]
    }


def test_sharegpt_format_renames_roles(tmp_path):
    rows = export_rows(tmp_path, "sharegpt")
    assert calc_row(rows) == {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "What is 3+3?"},
            {"from": "gpt", "value": "3+3 = <<3+3=6>>6. #### 6"},
        ]
    }
    assert {turn["from"] for row in rows for turn in row["conversations"]} == {
        "system",
        "human",
        "gpt",
    }


def test_full_format_rows_are_what_show_prints_at_their_source(tmp_path):
    rows = export_rows(tmp_path, "full")
    calc = calc_row(rows)
    assert calc["source"] == {
        "task": "calc",
        "subset": None,
        "split": None,
        "index": 3,
        "params": {"size": 4},
    }
    for row in rows:
        source = row.pop("source")
        args = ["show", source["task"], "--index", str(source["index"]), "--json"]
        args += ["--subset", source["subset"]] if source["subset"] else []
        args += ["--split", source["split"]] if source["split"] else []
        for key, value in source.get("params", {}).items():
            args += ["-p", f"{key}={value}"]
        shown = run(*args)
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout) == {**row, "index": source["index"]}


def test_limit_writes_the_first_rows_of_the_order(tmp_path):
    spec = str(write_spec(tmp_path, MIXTURE))
    whole = run("export", spec, "-o", "-").stdout.splitlines(keepends=True)
    limited = run("export", spec, "-o", str(tmp_path / "few.jsonl"), "--limit", "9")
    assert limited.exit_code == 0
    assert (tmp_path / "few.jsonl").read_text() == "".join(whole[:9])
    assert len(whole) == 55


@pytest.mark.parametrize("shards", [1, 3, 7])
def test_shards_concatenate_into_exactly_the_whole_file(tmp_path, shards):
    spec = str(write_spec(tmp_path, MIXTURE))
    run("export", spec, "-o", str(tmp_path / "whole.jsonl"))
    parts = []
    for k in range(1, shards + 1):
        part = tmp_path / f"part-{k}.jsonl"
        result = run("export", spec, "-o", str(part), "--shard", f"{k}/{shards}")
        assert result.exit_code == 0, result.output
        parts.append(part.read_bytes())
    assert b"".join(parts) == (tmp_path / "whole.jsonl").read_bytes()
    sizes = [len(p.splitlines()) for p in parts]
    assert max(sizes) - min(sizes) <= 1  # contiguous, balanced chunks


def test_more_shards_than_rows_still_join_into_the_whole(tmp_path):
    spec = str(write_spec(tmp_path, MIXTURE))
    whole = run("export", spec, "-o", "-", "--limit", "3").stdout
    parts = [
        run("export", spec, "-o", "-", "--limit", "3", "--shard", f"{k}/5") for k in range(1, 6)
    ]
    assert [len(p.stdout.splitlines()) for p in parts] == [0, 1, 0, 1, 1]
    assert "".join(p.stdout for p in parts) == whole


def test_a_shard_of_a_limited_export_and_its_manifest(tmp_path):
    spec = str(write_spec(tmp_path, MIXTURE))
    whole = run("export", spec, "-o", "-").stdout.splitlines(keepends=True)
    run("export", spec, "-o", str(tmp_path / "p.jsonl"), "--limit", "30", "--shard", "2/3")
    assert (tmp_path / "p.jsonl").read_text() == "".join(whole[10:20])
    manifest = json.loads((tmp_path / "p.jsonl.manifest.json").read_text())
    assert manifest["shard"] == {"shard": 2, "of": 3, "start": 10, "stop": 20}
    assert (manifest["limit"], manifest["rows"], manifest["total"]) == (30, 10, 55)
    assert sum(entry["written"] for entry in manifest["entries"]) == 10


def test_spilling_to_scratch_files_gives_the_same_bytes(tmp_path, monkeypatch):
    spec = str(write_spec(tmp_path, MIXTURE))
    in_memory = run("export", spec, "-o", "-").stdout_bytes
    monkeypatch.setattr(order.Pending, "ROWS", 3)  # a scratch write every few rows
    monkeypatch.setattr(order, "BUCKET_ROWS", 4)
    assert run("export", spec, "-o", "-").stdout_bytes == in_memory
    monkeypatch.setattr(order, "MAX_BUCKETS", 3)  # buckets grow instead
    assert run("export", spec, "-o", str(tmp_path / "out.jsonl")).exit_code == 0
    assert (tmp_path / "out.jsonl").read_bytes() == in_memory
    assert leftovers(tmp_path) == []


def test_selected_rows_partition_the_order():
    for total in (0, 1, 5, 97):
        for n in (1, 2, 3, 8):
            parts = [selected_rows(total, shard=(k, n)) for k in range(1, n + 1)]
            assert [i for part in parts for i in part] == list(range(total))
    assert selected_rows(10, limit=50) == range(10)


def test_reruns_are_byte_identical_plain_and_gzip(tmp_path):
    spec = str(write_spec(tmp_path, MIXTURE))
    for name in ("train.jsonl", "train.jsonl.gz"):
        out, manifest = tmp_path / name, tmp_path / f"{name}.manifest.json"
        assert run("export", spec, "-o", str(out)).exit_code == 0
        first, first_manifest = out.read_bytes(), manifest.read_bytes()
        assert run("export", spec, "-o", str(out)).exit_code == 0
        assert out.read_bytes() == first
        assert manifest.read_bytes() == first_manifest
    plain = (tmp_path / "train.jsonl").read_bytes()
    assert gzip.decompress((tmp_path / "train.jsonl.gz").read_bytes()) == plain
    assert run("export", spec, "-o", "-").stdout_bytes == plain


def test_manifest_records_what_went_in(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("twelve bytes")
    spec = write_spec(
        tmp_path,
        """
        seed: 3
        tasks:
          - {task: letters, size: 6, notes: notes.txt, repeat: 3}
          - {task: calc, size: 2}
        """,
    )
    out = tmp_path / "train.jsonl.gz"
    result = run("export", str(spec), "-o", str(out), "--format", "openai", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "train.jsonl.gz.manifest.json").read_text())
    assert json.loads(result.stdout) == manifest
    data = out.read_bytes()
    assert manifest["output"] == {
        "file": "train.jsonl.gz",
        "kind": "jsonl.gz",
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert manifest["taskcli_version"] == __version__
    assert (manifest["seed"], manifest["format"], manifest["total"], manifest["rows"]) == (
        3,
        "openai",
        20,
        20,
    )
    assert [(e["task"], e["rows"], e["written"], e["repeat"]) for e in manifest["entries"]] == [
        ("letters", 18, 18, 3),
        ("calc", 2, 2, 1),
    ]
    assert manifest["spec"]["path"] == str(spec)
    assert manifest["spec"]["tasks"][0]["params"] == {"size": 6, "bad": -1, "notes": str(notes)}
    assert manifest["spec"]["tasks"][1]["subset"] is None
    assert manifest["data_files"] == [{"path": str(notes), "revision": None, "size": 12}]


def test_stdout_gets_rows_and_no_manifest(tmp_path):
    result = run("export", str(write_spec(tmp_path, MIXTURE)), "-o", "-", "--limit", "4")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixture.yaml"]


def test_dry_run_prints_rows_and_shares_and_writes_nothing(tmp_path):
    spec = str(write_spec(tmp_path, MIXTURE))
    out = tmp_path / "train.jsonl"
    table = run("export", spec, "-o", str(out), "--dry-run")
    assert table.exit_code == 0, table.output
    text = flat(table.stdout)
    assert "tasks[1]" in text and "14" in text and "25.5%" in text and "55" in text
    plan = run("export", spec, "--dry-run", "--json", "--limit", "50", "--shard", "1/2")
    summary = json.loads(plan.stdout)
    assert [(e["task"], e["rows"]) for e in summary["entries"]] == [
        ("letters", 30),
        ("letters", 14),
        ("calc", 11),
    ]
    assert summary["total"] == 55
    assert sum(e["share"] for e in summary["entries"]) == pytest.approx(1.0)
    assert summary["entries"][2]["share"] == pytest.approx(11 / 55)
    assert summary["selected"] == {"start": 0, "stop": 25, "rows": 25}
    assert not out.exists()


def test_an_invalid_conversation_fails_the_export_and_keeps_the_old_file(tmp_path):
    spec = write_spec(
        tmp_path, "mode: sequence\ntasks: [{task: letters, size: 20000, bad: 15000}]\n"
    )
    out = tmp_path / "train.jsonl"
    out.write_text("old rows\n")
    (tmp_path / "train.jsonl.manifest.json").write_text("old manifest\n")
    result = run("export", str(spec), "-o", str(out))
    assert result.exit_code == 1
    assert "tasks[0] (letters / lower / train) example 15000: messages[0].role:" in flat(
        result.output
    )
    assert out.read_text() == "old rows\n"
    assert (tmp_path / "train.jsonl.manifest.json").read_text() == "old manifest\n"
    assert leftovers(tmp_path) == []


def test_entries_that_cannot_be_opened_are_reported_together(tmp_path):
    spec = write_spec(tmp_path, "tasks: [{task: offline}, {task: calc}, {task: offline}]\n")
    result = run("export", str(spec), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 1
    text = flat(result.output)
    assert "2 entries failed" in text
    assert "tasks[0] (offline): dataset nowhere/offline is not available offline" in text
    assert "tasks[2] (offline):" in text
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "0/3"], "shard must be K/N with 1 <= K <= N"),
        (["--shard", "4/3"], "shard must be K/N"),
        (["--shard", "2"], "shard must be K/N"),
        (["--shard", "a/b"], "shard must be K/N"),
        (["--format", "xml"], "unknown format 'xml'. Choose one of messages, nanochat"),
        (["--format", "nanochatt"], "unknown format 'nanochatt'. Did you mean 'nanochat'?"),
        (["--limit", "-1"], "Invalid value for '--limit'"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path, args, message):
    spec = str(write_spec(tmp_path, MIXTURE))
    result = run("export", spec, "-o", str(tmp_path / "out.jsonl"), *args)
    assert result.exit_code == 2
    assert message in flat(result.output)
    assert not (tmp_path / "out.jsonl").exists()


def test_output_must_be_given_and_writable(tmp_path):
    spec = str(write_spec(tmp_path, MIXTURE))
    missing = run("export", spec)
    assert missing.exit_code == 2
    assert "Error: no output file was given." in flat(missing.output)
    assert "Hint: Add -o OUT (or -o - for stdout)." in flat(missing.output)
    nowhere = run("export", spec, "-o", str(tmp_path / "no" / "such" / "out.jsonl"))
    assert nowhere.exit_code == 2
    assert "does not exist" in flat(nowhere.output)
    folder = run("export", spec, "-o", str(tmp_path))
    assert folder.exit_code == 2
    assert "is a folder" in flat(folder.output)


def test_export_is_quiet_without_a_terminal_and_reports_one_line(tmp_path):
    result = run("export", str(write_spec(tmp_path, MIXTURE)), "-o", str(tmp_path / "t.jsonl"))
    assert result.stdout == ""
    assert (
        flat(result.stderr) == f"wrote 55 rows to {tmp_path / 't.jsonl'} "
        f"(manifest: {tmp_path / 't.jsonl.manifest.json'})"
    )


def test_progress_bar_shows_rows_and_rate_on_a_terminal():
    screen = io.StringIO()
    with progress_bar(100, Console(file=screen, force_terminal=True, width=100)) as advance:
        for _ in range(4):
            advance(25)
            time.sleep(0.01)
    assert "100/100" in screen.getvalue()
    assert "rows/s" in screen.getvalue()
    with progress_bar(100, Console(file=io.StringIO(), force_terminal=False)) as advance:
        assert advance is None


def test_library_api_returns_the_manifest(tmp_path):
    plan = build_plan(load_spec(write_spec(tmp_path, MIXTURE)))
    assert plan.total == 55 and plan.owners == (0, 1, 1, 2)
    manifest = export(plan, tmp_path / "lib.jsonl", fmt="nanochat", limit=5)
    assert manifest["rows"] == 5
    assert len((tmp_path / "lib.jsonl").read_bytes().splitlines()) == 5


SLOW_PLUGIN = """
import time

from taskcli.tasks import Task


class Slow(Task):
    name = "slow"
    description = "Two million rows, slowly."
    dataset = "synthetic"

    def num_examples(self):
        return 2_000_000

    def get_example(self, index):
        return self.get_examples([index])[0]

    def get_examples(self, indices):
        time.sleep(0.02)
        return [
            {"messages": [{"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": f"a{i}"}]}
            for i in indices
        ]
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_killed_export_leaves_the_old_file_and_no_temp_file(tmp_path, signum):
    plugin = tmp_path / "plugin"
    (plugin / "slowtask-0.1.dist-info").mkdir(parents=True)
    (plugin / "slowtask.py").write_text(SLOW_PLUGIN)
    (plugin / "slowtask-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: slowtask\nVersion: 0.1\n"
    )
    (plugin / "slowtask-0.1.dist-info" / "entry_points.txt").write_text(
        "[taskcli.tasks]\nslow = slowtask:Slow\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    spec = write_spec(work, "mode: sequence\ntasks: [{task: slow}]\n")
    out = work / "train.jsonl"
    out.write_text("old rows\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), *sys.path])}
    process = subprocess.Popen(
        [sys.executable, "-m", "taskcli", "export", str(spec), "-o", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        # Mid-export: the output's temporary file and the scratch folder both exist.
        while not (list(work.glob(".train.jsonl.*.tmp")) and list(work.glob(".*.tmp/*"))):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the export never started writing"
            time.sleep(0.02)
        time.sleep(0.3)  # rows are being read and formatted
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode != 0
    assert b"Traceback" not in stderr
    assert out.read_text() == "old rows\n"
    if signum == signal.SIGINT:  # Ctrl-C says what it left, on the last line
        assert process.returncode == 130
        said = stderr.decode().strip().splitlines()[-1]
        assert said == f"interrupted: nothing written, the old {out} is unchanged."
    if signum == signal.SIGKILL:  # nothing could clean up: the next run to OUT does
        assert len(leftovers(work)) == 2
        (work / "one.jsonl").write_text(
            '[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]\n'
        )
        quick = write_spec(work, "tasks: [{task: customjson, path: one.jsonl}]\n", "quick.yaml")
        result = runner.invoke(app, ["export", str(quick), "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert leftovers(work) == []
        return
    assert leftovers(work) == []
    assert sorted(p.name for p in work.iterdir()) == ["mixture.yaml", "train.jsonl"]


REAL_MIXTURE = """
    seed: 7
    tasks:
      - {task: gsm8k, subset: main, split: train, repeat: 2}
      - {task: smoltalk, split: test, start: 1, step: 3}
      - {task: customjson, path: identity.jsonl}
      - {task: spellingbee, split: train, size: 12, word_list: words.txt}
"""


@pytest.fixture
def real_data(tmp_path):
    """Local copies in the Hub layouts, plus the bundled identity conversations and word list."""
    data = tmp_path / "data"
    written = {
        "gsm8k": hubdata.write_gsm8k(data, rows_per_split=30, revision="1" * 40),
        "smoltalk": hubdata.write_smoltalk(data, rows_per_split=25, files_per_split=2),
    }
    for name in ("identity.jsonl", "words.txt"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    return data, written


def test_real_tasks_mix_in_nanochats_order_and_round_trip_gsm8k(tmp_path, real_data):
    data, written = real_data
    spec = str(write_spec(tmp_path, REAL_MIXTURE))
    full, nanochat = tmp_path / "full.jsonl", tmp_path / "nanochat.jsonl"
    for out, fmt in ((full, "full"), (nanochat, "nanochat")):
        result = run("export", spec, "-o", str(out), "-f", fmt, "--data-dir", str(data))
        assert result.exit_code == 0, result.output
    sources = [row["source"] for row in read_jsonl(full)]

    identity = len((EXAMPLES / "identity.jsonl").read_text().splitlines())
    members = [
        ("gsm8k", range(30)),
        ("gsm8k", range(30)),
        ("smoltalk", range(1, 25, 3)),
        ("customjson", range(identity)),
        ("spellingbee", range(12)),
    ]
    pairs = [(t, local) for t, (_, indices) in enumerate(members) for local in range(len(indices))]
    random.Random(7).shuffle(pairs)
    assert [(s["task"], s["index"]) for s in sources] == [
        (members[t][0], members[t][1][local]) for t, local in pairs
    ]

    # GSM8K example i is row perm[i] of the file (datasets' shuffle(seed=42)); its answer comes
    # back from the nanochat format exactly as the dataset has it.
    rows = written["gsm8k"]["main"]["train"]
    perm = np.random.default_rng(42).permutation(len(rows))
    checked = 0
    for source, line in zip(sources, read_jsonl(nanochat), strict=True):
        if source["task"] == "gsm8k":
            original = rows[perm[source["index"]]]
            assert line == [
                {"role": "user", "content": original["question"]},
                {"role": "assistant", "content": original["answer"]},
            ]
            checked += 1
    assert checked == 60
    assert run("validate", str(nanochat)).exit_code == 0


def test_hub_tasks_scan_in_storage_order_reading_each_row_group_once(tmp_path, monkeypatch):
    hubdata.write_gsm8k(tmp_path, rows_per_split=30, files_per_split=2, rows_per_group=4)
    task = registry.create_task("gsm8k", "main", "train", data_dir=str(tmp_path))
    rows_class = type(task.rows)
    reads = []
    read_block = rows_class.read_block
    monkeypatch.setattr(
        rows_class, "read_block", lambda rows, n: reads.append(n) or read_block(rows, n)
    )
    scanned = list(task.iter_examples(range(30)))
    assert reads == list(range(len(task.rows.starts) - 1))  # 8 row groups, each read once
    assert sorted(i for i, _ in scanned) == list(range(30))
    wanted = [5, 0, 29, 5, 17]  # any order, repeats allowed
    got = dict(task.iter_examples(wanted))
    assert [got[i] for i in range(len(wanted))] == task.get_examples(wanted)
    assert dict(scanned) == dict(enumerate(task.get_examples(range(30))))


def test_real_task_rows_are_what_show_prints(tmp_path, real_data):
    data, _ = real_data
    spec = str(write_spec(tmp_path, REAL_MIXTURE))
    result = run("export", spec, "-o", "-", "-f", "full", "--data-dir", str(data))
    seen = set()
    for row in map(json.loads, result.stdout.splitlines()):
        source = row.pop("source")
        if source["task"] in seen:
            continue
        seen.add(source["task"])
        args = ["show", source["task"], "--index", str(source["index"]), "--json"]
        args += ["--data-dir", str(data)]
        args += ["--subset", source["subset"]] if source["subset"] else []
        args += ["--split", source["split"]] if source["split"] else []
        args += [f"-p{key}={value}" for key, value in source.get("params", {}).items()]
        shown = run(*args)
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout) == {**row, "index": source["index"]}
    assert seen == {"gsm8k", "smoltalk", "customjson", "spellingbee"}


def test_manifest_lists_data_files_with_sizes_and_revisions(tmp_path, real_data):
    data, _ = real_data
    spec = write_spec(tmp_path, REAL_MIXTURE)
    out = tmp_path / "train.jsonl"
    assert run("export", str(spec), "-o", str(out), "--data-dir", str(data)).exit_code == 0
    manifest = json.loads((tmp_path / "train.jsonl.manifest.json").read_text())
    files = {Path(f["path"]).relative_to(tmp_path).as_posix(): f for f in manifest["data_files"]}
    assert sorted(files) == [
        "data/HuggingFaceTB/smol-smoltalk/data/test-00000-of-00002.parquet",
        "data/HuggingFaceTB/smol-smoltalk/data/test-00001-of-00002.parquet",
        "data/openai/gsm8k/main/train-00000-of-00001.parquet",
        "identity.jsonl",
        "words.txt",
    ]
    for name, record in files.items():
        assert record["size"] == (tmp_path / name).stat().st_size
    assert files["data/openai/gsm8k/main/train-00000-of-00001.parquet"]["revision"] == "1" * 40
    assert files["identity.jsonl"]["revision"] is None
    assert manifest["output"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert [e["rows"] for e in manifest["entries"]] == [60, 8, 36, 12]


def test_missing_hub_data_is_reported_for_every_entry(tmp_path):
    spec = write_spec(tmp_path, "tasks: [{task: gsm8k}, {task: arc}]\n")
    result = run("export", str(spec), "-o", str(tmp_path / "o.jsonl"), "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    text = flat(result.output)
    assert "2 entries failed" in text
    assert "tasks[0] (gsm8k / main / test)" in text and "openai/gsm8k" in text
    assert "tasks[1] (arc / ARC-Easy / test)" in text and "allenai/ai2_arc" in text
    # The hint `show` gives, for each missing dataset, then the data dir and its flag once.
    hint = flat(result.stderr.split("Hint:", 1)[1])
    for repo in ("openai/gsm8k", "allenai/ai2_arc"):
        assert f"`hf download {repo} --repo-type dataset --local-dir {tmp_path / repo}`" in hint
    assert hint.endswith(
        f"then use {tmp_path} as the data dir (set with --data-dir or TASKCLI_DATA_DIR)."
    )
    assert hint.count("set with") == 1


def test_one_missing_entry_keeps_its_hint_too(tmp_path):
    spec = write_spec(tmp_path, "tasks: [{task: calc}, {task: gsm8k, split: train}]\n")
    shown = run("show", "gsm8k", "--split", "train")
    exported = run("export", str(spec), "-o", str(tmp_path / "o.jsonl"))
    assert exported.exit_code == shown.exit_code == 1
    assert "tasks[1] (gsm8k / main / train): dataset openai/gsm8k" in flat(exported.stderr)
    hint = exported.stderr.split("Hint:", 1)[1]
    assert hint == shown.stderr.split("Hint:", 1)[1]
    assert "hf download openai/gsm8k --repo-type dataset --local-dir DIR/openai/gsm8k" in hint


def test_a_json_output_is_one_array_of_the_rows(tmp_path, monkeypatch):
    """`-o out.json`: the rows of `-o out.jsonl`, as one JSON array, a row per line; staged and
    recorded like any output, and streamed: written run by run, with the buckets small here."""
    spec = str(write_spec(tmp_path, MIXTURE))
    lines, array = tmp_path / "train.jsonl", tmp_path / "train.json"
    assert run("export", spec, "-o", str(lines), "-f", "full").exit_code == 0
    monkeypatch.setattr(order, "BUCKET_ROWS", 4)  # many runs: the array spans their writes
    result = run("export", spec, "-o", str(array), "-f", "FULL")  # a format in any case
    assert result.exit_code == 0, result.output
    data = array.read_bytes()
    assert json.loads(data) == read_jsonl(lines)
    assert data.startswith(b"[\n") and data.endswith(b"\n]\n")
    assert data.count(b"\n") == len(read_jsonl(lines)) + 2  # one row per line
    manifest = json.loads((tmp_path / "train.json.manifest.json").read_text())
    assert manifest["output"]["kind"] == "json"
    assert manifest["output"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert "wrote 55 rows" in result.stderr
    empty = tmp_path / "empty.json"
    assert run("export", spec, "-o", str(empty), "--limit", "0").exit_code == 0
    assert json.loads(empty.read_bytes()) == [] and empty.read_bytes() == b"[]\n"
    assert leftovers(tmp_path) == []


def test_a_failed_json_export_keeps_the_old_file(tmp_path):
    spec = write_spec(tmp_path, "tasks: [{task: letters, size: 50, bad: 40}]\n")
    out = tmp_path / "train.json"
    out.write_text("[]\n")
    result = run("export", str(spec), "-o", str(out))
    assert result.exit_code == 1
    assert out.read_text() == "[]\n"
    assert leftovers(tmp_path) == []
    refused = run("export", str(spec), "-o", str(tmp_path / "t.json"), "-f", "tokens")
    assert refused.exit_code == 2 and "tokens format cannot be written as .json" in refused.output
    unknown = run("export", str(spec), "-o", str(tmp_path / "t.csv"))
    assert unknown.exit_code == 2
    assert "taskcli writes .jsonl, .jsonl.gz, .json, .parquet." in flat(unknown.output)
    assert "give --format to write JSON lines under any name." in flat(unknown.output)
    assert "set with" not in unknown.output  # the hint names its flag already


def test_a_task_that_checks_its_own_rows_is_not_trusted_blindly(tmp_path):
    """SmolTalk checks each row itself, so export skips its re-check; a broken row still fails."""
    assert issubclass(registry.get_task_class("smoltalk"), ChecksMessages)
    rows = [hubdata.smoltalk_row(n) for n in range(40)]
    rows[23]["messages"][1]["role"] = "user"  # two user turns in a row
    hubdata.write_repo(
        tmp_path / "data",
        "HuggingFaceTB/smol-smoltalk",
        {"default": {"train": rows}},
        {"default": hubdata.SMOLTALK_SCHEMA},
        folders={"default": "data"},
        rows_per_group=8,
    )
    spec = write_spec(tmp_path, "tasks: [{task: smoltalk, split: train}]\n")
    out = tmp_path / "train.jsonl"
    result = run("export", str(spec), "-o", str(out), "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 1
    text = flat(result.output)
    assert "HuggingFaceTB/smol-smoltalk (train) row 23 (example" in text
    assert "[roles-not-alternating]" in text
    assert not out.exists() and leftovers(tmp_path) == []


TRICKY_TEXTS = [
    'say "hi",',
    "C:\\path\\",
    ',{"messages":[{"',
    "tab\there\r\n",
    "\x01 é 😀",
    "\\u0000",
]


def tricky_smoltalk(data: Path, content_type: pa.DataType | None = None) -> None:
    """SmolTalk rows whose texts are hard to escape and to cut apart, in many row groups."""
    rows = []
    for n in range(60):
        texts = [TRICKY_TEXTS[(n + k) % len(TRICKY_TEXTS)] + str(n) for k in range(4)]
        messages = [
            {"content": texts[0], "role": "user"},
            {"content": texts[1], "role": "assistant"},
        ]
        if n % 3 == 0:
            messages.insert(0, {"content": texts[2], "role": "system"})
        if n % 4 == 0:
            messages += [
                {"content": texts[3], "role": "user"},
                {"content": "", "role": "assistant"},
            ]
        rows.append({"messages": messages, "source": "tricky"})
    schema = hubdata.SMOLTALK_SCHEMA
    if content_type is not None:
        item = pa.struct([("content", content_type), ("role", pa.string())])
        schema = pa.schema([("messages", pa.list_(item)), ("source", pa.string())])
        for row in rows:
            for m in row["messages"]:
                if m["role"] == "assistant":
                    m["content"] = [{"type": "text", "text": m["content"] or "-"}]
                else:
                    m["content"] = [{"type": "text", "text": m["content"]}]
    hubdata.write_repo(
        data,
        "HuggingFaceTB/smol-smoltalk",
        {"default": {"train": rows}},
        {"default": schema},
        folders={"default": "data"},
        rows_per_group=7,
    )


JSON_FORMATS = [name for name, fmt in FORMATS.items() if not fmt.renders_tokens]


@pytest.mark.parametrize("fmt", JSON_FORMATS)
def test_smoltalk_written_from_arrow_is_byte_identical_to_row_by_row(tmp_path, fmt, monkeypatch):
    tricky_smoltalk(tmp_path / "data")
    spec = write_spec(
        tmp_path,
        """
        tasks:
          - {task: smoltalk, split: train}
          - {task: smoltalk, split: train, start: 5, step: 2, repeat: 2}
          - {task: customjson, path: identity.jsonl}
        """,
    )
    shutil.copy(EXAMPLES / "identity.jsonl", tmp_path / "identity.jsonl")
    args = ("export", str(spec), "-o", "-", "-f", fmt, "--data-dir", str(tmp_path / "data"))
    bulk_rows = []
    json_lines = columnar.json_lines
    monkeypatch.setattr(
        columnar, "json_lines", lambda *a: bulk_rows.append(len(a[0])) or json_lines(*a)
    )
    bulk = run(*args)
    assert bulk.exit_code == 0, bulk.output
    if FORMATS[fmt].layout.fold_system:  # rows with a system prompt go row by row
        assert 0 < sum(bulk_rows) < 60 + 2 * 28
    else:
        assert sum(bulk_rows) == 60 + 2 * 28  # every SmolTalk row went the bulk way
    monkeypatch.setattr(EntryLines, "add", EntryLines.add_examples)  # row by row
    assert run(*args).stdout_bytes == bulk.stdout_bytes
    assert len(bulk.stdout_bytes.splitlines()) == 60 + 2 * 28 + 36


def test_smoltalk_with_parts_goes_row_by_row_and_comes_out_the_same(tmp_path, monkeypatch):
    parts = pa.list_(pa.struct([("type", pa.string()), ("text", pa.string())]))
    tricky_smoltalk(tmp_path / "data", content_type=parts)
    spec = write_spec(tmp_path, "tasks: [{task: smoltalk, split: train}]\n")
    args = ("export", str(spec), "-o", "-", "-f", "messages", "--data-dir", str(tmp_path / "data"))
    result = run(*args)
    assert result.exit_code == 1  # a user message with parts breaks the rules
    assert "[bad-content]" in flat(result.output)
    monkeypatch.setattr(EntryLines, "add", EntryLines.add_examples)  # row by row
    assert flat(run(*args).output) == flat(result.output)


def test_smoltalk_record_batches_from_a_datasets_cache_go_the_bulk_way_too(tmp_path):
    """Rows from the Hub cache come as record batches, not parquet row groups."""
    hubdata.write_smoltalk(tmp_path, rows_per_split=25, files_per_split=2)
    task = registry.create_task("smoltalk", None, "train", data_dir=str(tmp_path))
    expected = [
        orjson.dumps(conversation, option=APPEND_NEWLINE)
        for conversation in task.get_examples(range(25))
    ]
    table = pa.concat_tables(pq.read_table(f.path) for f in task.data_files)
    task.rows = TableRows(pa.Table.from_batches(table.to_batches(max_chunksize=4)), [])
    wanted = [7, 3, 24, 3, 0]
    seen = {}
    for positions, messages in task.iter_message_arrays(wanted, 2):
        assert isinstance(messages, pa.ListArray)
        assert arrow_rules.rows_without_errors(messages).all()
        layout = FORMATS["messages"].layout
        lines = columnar.json_lines(messages, layout).to_pylist()
        seen.update(zip(positions.tolist(), lines, strict=True))
    assert [seen[i] for i in range(len(wanted))] == [expected[i] for i in wanted]
