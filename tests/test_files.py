"""Conversation files, through the CLI: everything taskcli writes reads back in every command,
and the files other tools write (by hand, by pyarrow) read in each of the four formats.

Every export format round-trips in every container: ``export X -f F -o out`` then ``show``,
``validate``, ``stats`` and ``export out`` give back the same conversations, as far as F can say
them (nanochat folds the system message and flattens tool parts, sharegpt flattens tool parts;
only full keeps the metadata).
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from taskcli.cli import app
from taskcli.conversation import flatten_content, fold_system
from taskcli.files.formats import read, write_openai
from taskcli.files.parquet import ROW_KEYS

runner = CliRunner()
FORMATS = ("messages", "nanochat", "openai", "sharegpt", "full")
KINDS = ("jsonl", "jsonl.gz", "json", "parquet")


def invoke(*args: Any) -> Any:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def text(kind: str, said: str) -> dict[str, str]:
    return {"type": kind, "text": said}


GSM8K_PARTS = [
    text("text", "Natalia sold 48/2 = "),
    text("python", "48/2"),
    text("python_output", "24"),
    text("text", "24 clips in May, so 48+24 = "),
    text("python", "48+24"),
    text("python_output", "72"),
    text("text", "72 in all.\n#### 72"),
]
SOURCE = [
    {
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Who are you?"},
            {"role": "assistant", "content": "nanobot, a small model."},
        ],
        "id": "identity-1",
        "tags": ["identity", "short"],
    },
    {
        "messages": [
            {"role": "user", "content": "Natalia sold clips to 48 friends, then half as many."},
            {"role": "assistant", "content": GSM8K_PARTS},
        ],
        "id": "gsm8k-7",
        "difficulty": 2,
    },
    {
        "messages": [
            {"role": "user", "content": "Spell 'cat'."},
            {"role": "assistant", "content": "c-a-t"},
            {"role": "user", "content": 'And backwards, with "quotes" and é?'},
            {"role": "assistant", "content": 't-a-c "é"'},
        ],
        "id": "spell-3",
    },
]


def projected(conversation: dict[str, Any], fmt: str, index: int, path: Path) -> dict[str, Any]:
    """What `fmt` says of `conversation`, read back: the conversation as `show --json` gives
    it (without its index)."""
    messages = conversation["messages"]
    if fmt == "full":
        source = {"task": "customjson", "subset": None, "split": None, "index": index}
        return {**conversation, "source": {**source, "params": {"path": str(path)}}}
    if fmt in ("nanochat", "sharegpt"):
        messages = fold_system(messages) if fmt == "nanochat" else messages
        messages = [{"role": m["role"], "content": flatten_content(m["content"])} for m in messages]
    return {"messages": messages}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.jsonl"
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in SOURCE))
    return path


def shown(path: Path, *args: Any) -> list[dict[str, Any]]:
    count = () if "--count" in args else ("--count", 10)
    result = invoke("show", path, "--json", *count, *args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return [{k: v for k, v in row.items() if k != "index"} for row in rows]


# --- every format, every container -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_export_format_reads_back_in_every_command(tmp_path, source, fmt, kind):
    out = tmp_path / f"out.{kind}"
    result = invoke("export", source, "-f", fmt, "-o", out)
    assert result.exit_code == 0, result.output
    lossy = fmt in ("nanochat", "sharegpt")
    note = f"1 row had tool calls, written as text in the {fmt} format"
    assert (note in result.stderr) is lossy
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["tool_parts_as_text"] == (1 if lossy else 0)
    expected = [projected(row, fmt, i, source) for i, row in enumerate(SOURCE)]

    assert shown(out) == expected

    checked = invoke("validate", out)
    assert checked.exit_code == 0, checked.output
    assert "3 conversations, 0 errors, 0 warnings" in checked.stdout

    stats = invoke("stats", out, "--json")
    assert stats.exit_code == 0, stats.output
    numbers = json.loads(stats.stdout)
    assert numbers["conversations"] == 3
    assert numbers["with_tool_calls"]["count"] == (0 if lossy else 1)
    assert numbers["with_system"]["count"] == (0 if fmt == "nanochat" else 1)
    named = {"full": "messages", "nanochat": "messages" if kind == "parquet" else "nanochat"}
    assert numbers["format"] == named.get(fmt, fmt)

    back = tmp_path / "back.jsonl"
    again = invoke("export", out, "-f", "messages", "-o", back)
    assert again.exit_code == 0, again.output
    lines = [json.loads(line) for line in back.read_text().splitlines()]
    assert lines == [{"messages": row["messages"]} for row in expected]


def test_what_each_format_writes_to_parquet(tmp_path, source):
    """The layouts of docs/files.md: SmolTalk's own for plain messages, `parts` beside a null
    content, OpenAI's tool calls as structs, full's other keys as one marked JSON column."""
    tables = {}
    for fmt in FORMATS:
        assert invoke("export", source, "-f", fmt, "-o", tmp_path / f"{fmt}.parquet").exit_code == 0
        tables[fmt] = pq.read_table(tmp_path / f"{fmt}.parquet")
    plain = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    assert tables["nanochat"].schema.field("messages").type == plain
    assert tables["sharegpt"].schema.field("conversations").type == pa.list_(
        pa.struct([("from", pa.string()), ("value", pa.string())])
    )
    gsm8k = tables["messages"].to_pylist()[1]["messages"][1]
    assert gsm8k == {"role": "assistant", "content": None, "parts": GSM8K_PARTS}
    calls = tables["openai"].to_pylist()[1]["messages"]
    assert [m["role"] for m in calls] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]
    assert calls[1]["tool_calls"][0]["function"] == {
        "name": "python",
        "arguments": '{"code":"48/2"}',
    }
    assert calls[2]["tool_call_id"] == calls[1]["tool_calls"][0]["id"]
    full = tables["full"]
    assert full.column_names == ["messages", "metadata"]
    assert full.schema.field("metadata").metadata == ROW_KEYS
    keys = json.loads(full.to_pylist()[0]["metadata"])
    assert keys["id"] == "identity-1" and keys["tags"] == ["identity", "short"]
    assert keys["source"]["task"] == "customjson"


def test_plain_conversations_keep_smoltalks_layout(tmp_path):
    path = tmp_path / "plain.jsonl"
    path.write_bytes(orjson.dumps(SOURCE[2]) + b"\n")
    for fmt in ("messages", "openai", "full"):
        assert invoke("export", path, "-f", fmt, "-o", tmp_path / f"{fmt}.parquet").exit_code == 0
        kind = pq.read_schema(tmp_path / f"{fmt}.parquet").field("messages").type
        assert kind == pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def test_full_rows_of_different_tasks_write_one_parquet_file(tmp_path, source, monkeypatch):
    from taskcli.export import parquet

    monkeypatch.setattr(parquet, "ROWS_PER_GROUP", 4)  # the schema must hold across groups
    words = Path(__file__).resolve().parent.parent / "examples" / "words.txt"
    spec = tmp_path / "mix.yaml"
    spec.write_text(
        "seed: 1\ntasks:\n  - {task: customjson, path: source.jsonl}\n"
        f"  - {{task: spellingbee, split: train, size: 9, word_list: {words}}}\n"
    )
    out = tmp_path / "full.parquet"
    result = invoke("export", spec, "-f", "full", "-o", out)
    assert result.exit_code == 0, result.output
    assert pq.ParquetFile(out).metadata.num_row_groups == 3
    lines = tmp_path / "full.jsonl"
    assert invoke("export", spec, "-f", "full", "-o", lines).exit_code == 0
    assert shown(out, "--count", 20) == [
        json.loads(line) for line in lines.read_text().splitlines()
    ]


def test_an_empty_export_is_a_typed_parquet_file(tmp_path, source):
    out = tmp_path / "none.parquet"
    assert invoke("export", source, "-o", out, "--limit", 0).exit_code == 0
    assert pq.read_table(out).num_rows == 0
    assert pq.read_schema(out).field("messages").type.value_type.field("role").type == pa.string()


def test_the_loss_is_said_once_on_stderr_even_for_standard_output(source):
    result = invoke("export", source, "-f", "sharegpt", "-o", "-")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 3
    assert result.stderr.count("written as text") == 1


# --- OpenAI tool calls ---------------------------------------------------------------------------


def calls_of(messages: list[dict[str, Any]]) -> list[str]:
    return [
        json.loads(call["function"]["arguments"])["code"]
        for m in messages
        for call in m.get("tool_calls", ())
    ]


@pytest.mark.parametrize(
    "parts",
    [
        GSM8K_PARTS,  # texts before, between and after two calls
        [text("python", "1+1"), text("python_output", "2")],  # nothing but a call
        [text("text", "Let me run it."), text("python", "run()")],  # a call without output
        [text("python", "a()"), text("text", "then"), text("python", "b()")],  # two unanswered
        [text("text", "one"), text("text", "two"), text("python", "x"), text("python_output", "")],
        [text("python", "a"), text("python", "b"), text("python_output", "ab")],  # one answer
    ],
)
def test_openai_tool_calls_are_real_tool_calls_and_read_back_as_the_parts(tmp_path, parts):
    conversation = {
        "messages": [
            {"role": "user", "content": "Compute."},
            {"role": "assistant", "content": parts},
        ]
    }
    written = write_openai(conversation)
    assert not written.lost
    messages = written.record["messages"]
    assert calls_of(messages) == [p["text"] for p in parts if p["type"] == "python"]
    assert [m["content"] for m in messages if m["role"] == "tool"] == [
        p["text"] for p in parts if p["type"] == "python_output"
    ]
    ids = {call["id"] for m in messages for call in m.get("tool_calls", ())}
    assert all(m["tool_call_id"] in ids for m in messages if m["role"] == "tool")
    reading = read(written.record)
    assert reading.fmt == "openai" and reading.problems == []
    assert reading.conversation == conversation
    # and through the CLI, in JSON lines and in Parquet
    path = tmp_path / "one.jsonl"
    path.write_bytes(orjson.dumps(conversation) + b"\n")
    for kind in ("jsonl", "parquet"):
        out = tmp_path / f"openai.{kind}"
        assert invoke("export", path, "-f", "openai", "-o", out).exit_code == 0
        assert shown(out) == [conversation]


def test_an_openai_output_that_answers_no_call_is_written_as_text_and_counted(tmp_path):
    conversation = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": [text("text", "Result: "), text("python_output", "7")],
            },
        ]
    }
    written = write_openai(conversation)
    assert written.lost
    assert written.record["messages"][1] == {
        "role": "assistant",
        "content": [text("text", "Result: "), text("text", "<<=7>>")],
    }
    path = tmp_path / "orphan.jsonl"
    path.write_bytes(orjson.dumps(conversation) + b"\n")
    result = invoke("export", path, "-f", "openai", "-o", tmp_path / "o.jsonl")
    assert "1 row had tool outputs without a call, written as text" in result.stderr
    assert invoke("validate", tmp_path / "o.jsonl").exit_code == 0


def test_an_openai_file_with_names_weights_and_other_functions(tmp_path):
    rows = [
        {
            "messages": [
                {"role": "system", "content": "You may call tools."},
                {"role": "user", "content": "Weather in Paris?", "name": "ann"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "w1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "w1", "name": "weather", "content": "18C"},
                {"role": "assistant", "content": "18 degrees.", "weight": 1},
            ]
        }
    ]
    path = tmp_path / "openai.jsonl"
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    result = invoke("validate", path)
    assert result.exit_code == 0, result.output
    assert "0 warnings" in result.stdout  # name and weight are OpenAI's, not unknown keys
    (row,) = shown(path)
    assert row["messages"][2]["content"] == [
        text("python", 'weather({"city": "Paris"})'),
        text("python_output", "18C"),
        text("text", "18 degrees."),
    ]
    assert json.loads(invoke("stats", path, "--json").stdout)["format"] == "openai"


# --- files written by others --------------------------------------------------------------------


def test_a_sharegpt_file_with_function_calls_and_observations(tmp_path):
    path = tmp_path / "sharegpt.jsonl"
    rows = [
        {
            "conversations": [
                {"from": "system", "value": "Use the calculator."},
                {"from": "human", "value": "What is 6*7?"},
                {"from": "gpt", "value": "Calculating."},
                {
                    "from": "function_call",
                    "value": '{"name": "python", "arguments": {"code": "6*7"}}',
                },
                {"from": "observation", "value": "42"},
                {"from": "gpt", "value": "It is 42."},
            ],
            "id": 1,
        },
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
    ]
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    assert invoke("validate", path).exit_code == 0
    first, second = shown(path)
    assert first["id"] == 1
    assert first["messages"][2] == {
        "role": "assistant",
        "content": [
            text("text", "Calculating."),
            text("python", "6*7"),
            text("python_output", "42"),
            text("text", "It is 42."),
        ],
    }
    assert second == {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    }
    assert json.loads(invoke("stats", path, "--json").stdout)["format"] == "sharegpt"
    header = invoke("show", path).stdout
    assert "sharegpt" in header.splitlines()[0]


@pytest.mark.parametrize(
    ("name", "document", "count"),
    [
        ("array.json", [SOURCE[0], SOURCE[2]], 2),
        ("object.json", SOURCE[1], 1),
        ("nanochat.json", SOURCE[2]["messages"], 1),
    ],
)
def test_json_documents_are_targets(tmp_path, name, document, count):
    path = tmp_path / name
    path.write_text(json.dumps(document, indent=2))
    rows = shown(path)
    assert len(rows) == count
    checked = invoke("validate", path)
    assert checked.exit_code == 0 and f"{count} conversation" in checked.stdout
    assert json.loads(invoke("stats", path, "--json").stdout)["conversations"] == count
    out = tmp_path / "back.jsonl"
    assert invoke("export", path, "-o", out).exit_code == 0
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"messages": row["messages"]} for row in rows
    ]


def write_shards(folder: Path) -> None:
    """A dataset as `hf download` leaves it: two train shards and a test one."""
    data = folder / "data"
    data.mkdir(parents=True)

    def table(numbers: range) -> pa.Table:
        messages = [
            [{"role": "user", "content": f"q{n}"}, {"role": "assistant", "content": f"a{n}"}]
            for n in numbers
        ]
        return pa.table({"messages": messages, "source": [f"s{n}" for n in numbers]})

    pq.write_table(table(range(0, 3)), data / "train-00000-of-00002.parquet")
    pq.write_table(table(range(3, 5)), data / "train-00001-of-00002.parquet")
    pq.write_table(table(range(100, 102)), data / "test-00000-of-00001.parquet")


def test_a_folder_of_shards_with_split(tmp_path):
    folder = tmp_path / "smoltalk-copy"
    write_shards(folder)
    train = shown(folder)
    assert [row["source"] for row in train] == [f"s{n}" for n in range(5)]
    assert [row["source"] for row in shown(folder, "--split", "test")] == ["s100", "s101"]
    checked = invoke("validate", folder, "--split", "test")
    assert checked.exit_code == 0 and "2 conversations" in checked.stdout
    numbers = json.loads(invoke("stats", folder, "--split", "test", "--json").stdout)
    assert numbers["conversations"] == 2
    out = tmp_path / "test.jsonl"
    assert invoke("export", folder, "--split", "test", "-o", out).exit_code == 0
    assert len(out.read_text().splitlines()) == 2
    wrong = invoke("show", folder, "--split", "tset")
    assert wrong.exit_code == 2 and "Did you mean 'test'" in wrong.stderr


def test_parquet_written_by_pyarrow_in_each_format(tmp_path):
    openai = pa.table(
        {
            "messages": [
                [
                    {"role": "user", "content": "2+2?"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "python", "arguments": '{"code": "2+2"}'},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c", "content": "4"},
                    {"role": "assistant", "content": "4", "weight": 1},
                ]
            ]
        }
    )
    sharegpt = pa.table(
        {"conversations": [[{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]]}
    )
    parts = pa.table(
        {
            "messages": [
                [
                    {"role": "user", "content": "Add.", "parts": None},
                    {"role": "assistant", "content": None, "parts": GSM8K_PARTS},
                ]
            ]
        }
    )
    expected = {
        "openai.parquet": [
            {"role": "user", "content": "2+2?"},
            {
                "role": "assistant",
                "content": [text("python", "2+2"), text("python_output", "4"), text("text", "4")],
            },
        ],
        "sharegpt.parquet": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "yo"},
        ],
        "parts.parquet": [
            {"role": "user", "content": "Add."},
            {"role": "assistant", "content": GSM8K_PARTS},
        ],
    }
    for name, table in (
        ("openai.parquet", openai),
        ("sharegpt.parquet", sharegpt),
        ("parts.parquet", parts),
    ):
        pq.write_table(table, tmp_path / name)
        assert shown(tmp_path / name) == [{"messages": expected[name]}]
        assert invoke("validate", tmp_path / name).exit_code == 0


def test_input_format_forces_a_format(tmp_path):
    path = tmp_path / "weights.jsonl"
    row = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Yo", "weight": 0},
        ]
    }
    path.write_bytes(orjson.dumps(row) + b"\n")
    assert "unknown-key" in invoke("validate", path).stdout  # weight alone says no format
    forced = invoke("validate", path, "--input-format", "openai")
    assert forced.exit_code == 0 and "0 warnings" in forced.stdout
    assert shown(path, "--input-format", "openai")[0]["messages"][1] == {
        "role": "assistant",
        "content": "Yo",
    }
    wrong = invoke("validate", path, "--input-format", "sharegpt")
    assert (
        wrong.exit_code == 1
        and "a sharegpt record is an object with 'conversations'" in wrong.stdout
    )


# --- bad input ------------------------------------------------------------------------------------


def conversations_table(count: int, start: int = 0) -> pa.Table:
    messages = [
        [{"role": "user", "content": f"question {n}"}, {"role": "assistant", "content": f"{n}"}]
        for n in range(start, start + count)
    ]
    return pa.table({"messages": messages})


def refused(result: Any, *words: str) -> None:
    """Exit code 1, every word said on stderr, and no traceback (`invoke` checks that)."""
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: "), result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def export_keeps_the_old_output(tmp_path: Path, target: Path, *words: str) -> None:
    out = tmp_path / "kept.jsonl"
    out.write_text("the old output\n")
    refused(invoke("export", target, "-o", out), *words)
    assert out.read_text() == "the old output\n"
    assert not Path(f"{out}.manifest.json").exists()


def test_a_damaged_parquet_row_group_is_an_unreadable_file_after_the_rows_before_it(tmp_path):
    path = tmp_path / "damaged.parquet"
    with pq.ParquetWriter(path, conversations_table(1).schema, compression="none") as writer:
        writer.write_table(conversations_table(3))
        writer.write_table(conversations_table(3, start=3))
    data = bytearray(path.read_bytes())
    second = pq.ParquetFile(path).metadata.row_group(1).column(0).data_page_offset
    data[second : second + 12] = b"\xff" * 12  # the page header of the second row group
    path.write_bytes(bytes(data))

    checked = invoke("validate", path)
    assert checked.exit_code == 1
    assert f"{path}:row 3: [unreadable-file] cannot read row group 1 of {path}" in checked.stdout
    assert "3 conversations" in checked.stdout  # the first row group was checked
    entry = json.loads(invoke("validate", path, "--json").stdout)["files"][0]
    assert [(e["row"], e["rule"]) for e in entry["errors"]] == [(3, "unreadable-file")]
    assert shown(path, "--index", 1, "--count", 1) == [
        {"messages": conversations_table(1, 1).to_pylist()[0]["messages"]}
    ]
    refused(invoke("show", path, "--index", 4), "cannot read row group 1")
    refused(invoke("stats", path), "cannot read row group 1")
    export_keeps_the_old_output(tmp_path, path, "cannot read row group 1")


def test_a_truncated_parquet_file_is_one_line_in_every_command(tmp_path):
    whole = tmp_path / "whole.parquet"
    pq.write_table(conversations_table(50), whole)
    path = tmp_path / "cut.parquet"
    path.write_bytes(whole.read_bytes()[:-100])
    checked = invoke("validate", path, whole)
    assert checked.exit_code == 1
    assert f"{path}: [unreadable-file] {path} is not a readable parquet file" in checked.stdout
    assert f"✓ {whole}: 50 conversations" in checked.stdout  # the next file is still checked
    for command in ("show", "stats"):
        refused(invoke(command, path), "is not a readable parquet file")
        assert len(invoke(command, path).stderr.strip().splitlines()) == 1
    export_keeps_the_old_output(tmp_path, path, "is not a readable parquet file")


def test_a_parquet_file_without_conversations_lists_its_columns(tmp_path):
    path = tmp_path / "prices.parquet"
    pq.write_table(pa.table({"item": ["a"], "price": [1.5]}), path)
    checked = invoke("validate", path)
    assert checked.exit_code == 1
    assert "[unreadable-file]" in checked.stdout and "Its columns: item, price." in checked.stdout
    refused(invoke("show", path), "Its columns: item, price.")
    export_keeps_the_old_output(tmp_path, path, "Its columns: item, price.")


def test_a_cut_gzip_file_is_an_unreadable_file(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    lines = b"".join(orjson.dumps(row) + b"\n" for row in SOURCE * 500)
    path.write_bytes(gzip.compress(lines)[:-50])
    checked = invoke("validate", path)
    assert (
        checked.exit_code == 1 and "[unreadable-file] cannot be read to the end" in checked.stdout
    )
    export_keeps_the_old_output(tmp_path, path, "cannot be read to the end")


@pytest.mark.parametrize("layout", ["indented", "one line"])
def test_a_json_document_too_big_to_parse_whole(tmp_path, monkeypatch, layout):
    from taskcli.files import reader

    monkeypatch.setattr(reader, "JSON_DOCUMENT_BYTES", 2000)  # 2 GB, scaled down
    monkeypatch.chdir(tmp_path)
    path = Path("big data.json")
    rows = [SOURCE[2]] * 20
    path.write_text(json.dumps(rows, indent=2 if layout == "indented" else None))
    checked = invoke("validate", path)
    assert checked.exit_code == 1
    said = checked.stdout
    assert "[unreadable-file]" in said and "is one JSON document of" in said
    hint = "jq -c '.[]' 'big data.json' > 'big data.jsonl'"
    assert hint in said
    shown_error = invoke("show", path)
    refused(shown_error, "taskcli parses a .json document of up to")
    assert f"Hint: Write it as JSON lines first, e.g. `{hint}`." in shown_error.stderr
    export_keeps_the_old_output(tmp_path, path, "is one JSON document")
    # the hint works: jq's output is JSON lines that every command reads
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed")
    subprocess.run(["bash", "-c", hint], check=True)
    checked = invoke("validate", "big data.jsonl")
    assert checked.exit_code == 0 and "20 conversations" in checked.stdout


def test_json_lines_under_a_json_name_are_read_as_lines_however_big(tmp_path, monkeypatch):
    from taskcli.files import reader

    monkeypatch.setattr(reader, "JSON_DOCUMENT_BYTES", 100)
    path = tmp_path / "lines.json"
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in SOURCE))
    checked = invoke("validate", path)
    assert checked.exit_code == 0 and "3 conversations" in checked.stdout
    assert len(shown(path)) == 3


@pytest.mark.parametrize(
    ("record", "rule", "path"),
    [
        (
            {"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "Yo"}]},
            "unknown-role",
            "conversations[1].from",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "2+2?"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "python", "arguments": "{code: 2+2"},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c", "content": "4"},
                ]
            },
            "bad-tool-call",
            "messages[1].tool_calls[0].function.arguments",
        ),
    ],
)
def test_a_broken_record_is_its_rule_in_its_own_terms(tmp_path, record, rule, path):
    target = tmp_path / "broken.jsonl"
    good = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}
    if "conversations" in record:
        good = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}
    target.write_bytes(orjson.dumps(good) + b"\n" + orjson.dumps(record) + b"\n")
    checked = invoke("validate", target)
    assert checked.exit_code == 1
    assert f"{target}:2: [{rule}]" in checked.stdout and f"(at {path})" in checked.stdout
    refused(invoke("show", target, "--index", 1), f"[{rule}]")
    export_keeps_the_old_output(tmp_path, target, f"[{rule}]")


def test_records_that_disagree_on_their_format(tmp_path):
    target = tmp_path / "mixed.json"
    target.write_text(
        json.dumps(
            [
                {
                    "messages": [
                        {"role": "user", "content": "Hi"},
                        {"role": "assistant", "content": "Yo"},
                    ]
                },
                {
                    "conversations": [
                        {"from": "human", "value": "Hi"},
                        {"from": "gpt", "value": "Yo"},
                    ]
                },
            ]
        )
    )
    checked = invoke("validate", target)
    assert checked.exit_code == 1
    assert (
        f"{target}:row 1: [mixed-formats] this row is sharegpt but row 0 is messages"
        in checked.stdout
    )
    export_keeps_the_old_output(tmp_path, target, "[mixed-formats]")


@pytest.mark.parametrize("kind", ["parquet", "json"])
def test_validate_writes_valid_and_rejected_rows_of_parquet_and_json(tmp_path, kind):
    good = {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],
        "n": 0,
    }
    bad = {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Yo"}],
        "n": 1,
    }
    rows = [good, bad, {**good, "n": 2}]
    target = tmp_path / f"rows.{kind}"
    if kind == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), target)
    else:
        target.write_text(json.dumps(rows))
    valid, rejects = tmp_path / "valid.jsonl", tmp_path / "rejects.jsonl"
    checked = invoke("validate", target, "--output-valid", valid, "--rejects", rejects)
    assert checked.exit_code == 1
    assert [json.loads(line) for line in valid.read_text().splitlines()] == [rows[0], rows[2]]
    (rejected,) = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert rejected["file"] == str(target) and rejected["row"] == 1
    assert {e["rule"] for e in rejected["errors"]} == {"roles-not-alternating", "no-exchange"}
    assert all(e["row"] == 1 for e in rejected["errors"])
    assert json.loads(rejected["raw"]) == bad


MEASURED = """
import sys
import pyarrow as pa
from typer.testing import CliRunner
from taskcli.cli import app
from taskcli.files import parquet
parquet.WHOLE_GROUP_BYTES = 16 << 20  # the group below is over it: a big one, by its footer
runner = CliRunner()
path, out = sys.argv[1:]
for args in (["validate", path], ["stats", path], ["export", path, "-o", out]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
print(pa.default_memory_pool().max_memory())
"""


def test_a_huge_row_group_is_read_a_slice_at_a_time(tmp_path):
    """One row group of 100,000 rows (about 45 MB decoded), over the size decoded whole
    (lowered to 16 MB, for a quick test): validate, stats and export of the file hold a few
    slices of 8,192 rows, never the whole group (measured in a fresh process: Arrow's peak
    allocation)."""
    import sys

    long = "x" * 400
    messages = [
        [{"role": "user", "content": f"{n} {long}"}, {"role": "assistant", "content": f"{n}"}]
        for n in range(100_000)
    ]
    table = pa.table({"messages": messages})
    path = tmp_path / "one-group.parquet"
    pq.write_table(table, path, row_group_size=len(messages))
    assert pq.ParquetFile(path).metadata.num_row_groups == 1
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, str(path), str(tmp_path / "out.jsonl")],
        capture_output=True,
        text=True,
        check=True,
    )
    peak = int(done.stdout.split()[-1])
    assert peak < table.nbytes / 2, (peak, table.nbytes)


@pytest.mark.parametrize("with_metadata", [False, True])
@pytest.mark.parametrize("options", [[], ["--no-system"]])
def test_validate_finds_the_same_in_parquet_as_in_the_same_json_lines(
    tmp_path, options, with_metadata
):
    """Parquet rows that plainly break no rule are told so from Arrow in bulk; the verdicts
    are the rules' own, row for row (the report of the same rows as JSON lines, by row)."""
    user, hello = {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}
    rows = [
        [user, hello],
        [{"role": "system", "content": "Be brief."}, user, hello],
        [user, hello, user],  # ends-with-user
        [user, {"role": "assistant", "content": " "}],  # empty-content
        [user, {"role": "assistant", "content": "<|assistant_end|>"}],  # special-token
        [user, {"role": "assistant", "content": "..."}],  # fine, though not told in bulk
        [user, user],  # errors
        [user, {"role": "assistant", "content": "a\x00b"}],  # nul-character
        [user, hello],  # a duplicate
        [{"role": "robot", "content": "beep"}, hello],
        [user, {"role": "assistant", "content": None}],
    ]
    table = pa.table({"messages": rows})
    if with_metadata:  # a column beside the messages: the whole record is compared
        table = table.append_column("n", pa.array([0] * len(rows)))  # row 8 repeats row 0
    parquet_path = tmp_path / "rows.parquet"
    pq.write_table(table, parquet_path, row_group_size=4)
    lines_path = tmp_path / "rows.jsonl"
    lines_path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in table.to_pylist()))

    def problems(path: Path, unit: str, shift: int) -> list[tuple]:
        result = invoke("validate", "--json", *options, path)
        (entry,) = json.loads(result.stdout)["files"]
        found = entry["errors"] + entry["warnings"]
        return sorted((p[unit] - shift, p["rule"], p["path"]) for p in found)

    in_parquet = problems(parquet_path, "row", 0)
    assert in_parquet == problems(lines_path, "line", 1)
    assert {rule for _, rule, _ in in_parquet} >= {
        "ends-with-user",
        "empty-content",
        "special-token",
        "duplicate",
        "roles-not-alternating",
        "nul-character",
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_parquet_file_of_messages_only_is_exported_in_bulk_as_row_by_row(
    tmp_path, monkeypatch, fmt
):
    """SmolTalk's layout and nothing else: export writes its rows straight from Arrow
    (`MessagesColumn`), the very bytes the row-by-row path writes."""
    from taskcli.export import columnar
    from taskcli.files import parquet

    rows = [
        [{"role": "user", "content": f'q{n} "é"'}, {"role": "assistant", "content": f"a{n}"}]
        for n in range(30)
    ]
    rows[4] = [{"role": "system", "content": "Be brief."}, *rows[4]]  # nanochat folds it
    path = tmp_path / "smol.parquet"
    pq.write_table(pa.table({"messages": rows}), path, row_group_size=7)
    bulk_rows = []
    json_lines = columnar.json_lines
    monkeypatch.setattr(
        columnar, "json_lines", lambda *a, **k: bulk_rows.append(len(a[0])) or json_lines(*a, **k)
    )
    assert invoke("export", path, "-f", fmt, "-o", tmp_path / "bulk.jsonl").exit_code == 0
    assert sum(bulk_rows) == (29 if fmt == "nanochat" else 30)
    monkeypatch.setattr(parquet, "messages_only", lambda schema: False)
    bulk_rows.clear()
    slow = tmp_path / "slow.jsonl"
    assert invoke("export", path, "-f", fmt, "-o", slow).exit_code == 0
    assert bulk_rows == []  # row by row
    assert (tmp_path / "bulk.jsonl").read_bytes() == slow.read_bytes()
